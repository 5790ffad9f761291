// The nginx request variables keepip expands in values ingress-nginx lets carry them (auth-url,
// auth-cache-key, limit-conn-zone-variable…): their names, so a reader can refuse a name the gateway
// would expand to "" (src/gateway/access/nginx-vars.ts expands them). Pure.

/** Variables by name; `http_`, `cookie_` and `arg_` take any suffix. */
export const REQUEST_VARIABLE_NAMES: ReadonlySet<string> = new Set([
  'scheme',
  'pass_access_scheme',
  'http_host',
  'best_http_host',
  'host',
  'request_uri',
  'escaped_request_uri',
  'uri',
  'args',
  'query_string',
  'is_args',
  'request_method',
  'remote_addr',
  'binary_remote_addr',
  'remote_user',
  'server_name',
  'server_port',
  'realip_remote_addr',
  'proxy_protocol_addr',
  'proxy_add_x_forwarded_for',
  'req_id',
  'namespace',
  'ingress_name',
  'service_name',
  'service_port',
  'location_path',
  'msec',
  'time_iso8601',
  'time_local',
]);

export function isRequestVariable(name: string): boolean {
  return REQUEST_VARIABLE_NAMES.has(name) || /^(http|cookie|arg)_[A-Za-z0-9_]+$/.test(name);
}

/** Variables new on every request (the time, a request id): a limit keyed on one never counts twice. */
const EVERY_REQUEST_ITS_OWN: ReadonlySet<string> = new Set(['req_id', 'msec', 'time_iso8601', 'time_local']);

/** A variable a limit may key on: one keepip expands that two requests can share. */
export function isKeyVariable(name: string): boolean {
  return isRequestVariable(name) && !EVERY_REQUEST_ITS_OWN.has(name);
}

/** One `$name` or `${name}` reference: the braced name in group 1, the bare one in group 2. */
export const VARIABLE_REFERENCE = /\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))/g;

/** The `$name` / `${name}` references of a template, in order. */
export function variablesOf(template: string): string[] {
  return [...template.matchAll(VARIABLE_REFERENCE)].map((m) => m[1] ?? m[2] ?? '');
}

/** Variables that tell clients apart: a request header (not Host), cookie, argument, user or address. */
const CLIENT_VARIABLE = /^((http_(?!host$)|cookie_|arg_).+|remote_user|remote_addr|binary_remote_addr)$/;

/** The variables of `template` that tell clients apart (an auth-cache-key's credentials), in order. */
export function clientVariablesOf(template: string): string[] {
  return variablesOf(template).filter((name) => CLIENT_VARIABLE.test(name));
}

/**
 * Whether a URL template's authority is fixed by the configuration (auth-url). When a variable names
 * the host (`$http_host`, `$host`…), every name a client sends would keep its own idle connection open
 * (to a server the client may run, which never closes it): such subrequests are not kept alive, as
 * ingress-nginx's auth-keepalive does not apply to them.
 */
export function fixedAuthority(urlTemplate: string): boolean {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?]*)/i.exec(urlTemplate);
  return m !== null && !m[1]!.includes('$');
}
