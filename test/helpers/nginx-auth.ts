// ingress-nginx's internal auth location (rootfs/etc/nginx/template/nginx.tmpl, `location =
// {{ $authPath }}`) as nginx directives, for the differential tests that run external auth through
// real nginx. The Lua step of a cached location (ngx_conf_rewrite_auth.lua: $cache_key =
// base64(sha1($tmp_cache_key))) is not run here (no OpenResty): the key is used unhashed.

export interface AuthLocationOptions {
  /** `location = <path>`. */
  path: string;
  /** The auth-url as nginx's `$target`. */
  authUrl: string;
  /** auth-method, or null. */
  method: string | null;
  /** auth-request-redirect, else `$request_uri`. */
  requestRedirect?: string;
  /** auth-cache-key with the server's host name, and auth-cache-duration's entries. */
  cache?: { host: string; key: string; durations: readonly string[] };
  /** auth-proxy-set-headers, in the order given. */
  proxySetHeaders?: readonly (readonly [string, string])[];
}

/** The `location = …` block, indented as a server's child. */
export function ingressNginxAuthLocation(o: AuthLocationOptions): string {
  // enable-auth-access-log is false by default: no line of the subrequest's own.
  const lines = ['internal;', 'access_log off;'];
  if (o.cache !== undefined)
    lines.push(
      `set $tmp_cache_key '${o.cache.host}${o.path}${o.cache.key}';`,
      "set $cache_key '';",
      'proxy_cache auth_cache;',
      ...o.cache.durations.map((d) => `proxy_cache_valid ${d.trim()};`),
      'proxy_cache_key "$tmp_cache_key";',
    );
  lines.push(
    'proxy_intercept_errors off;',
    'proxy_pass_request_body off;',
    'proxy_set_header Content-Length "";',
    'proxy_set_header X-Forwarded-Proto "";',
    'proxy_set_header X-Request-ID $request_id;',
  );
  if (o.method !== null)
    lines.push(
      `proxy_method ${o.method};`,
      'proxy_set_header X-Original-URI $request_uri;',
      'proxy_set_header X-Scheme $pass_access_scheme;',
    );
  lines.push(
    'proxy_set_header Host 127.0.0.1;',
    'proxy_set_header X-Original-URL $scheme://$http_host$request_uri;',
    'proxy_set_header X-Original-Method $request_method;',
    'proxy_set_header X-Sent-From "nginx-ingress-controller";',
    'proxy_set_header X-Real-IP $remote_addr;',
    'proxy_set_header X-Forwarded-For $remote_addr;',
    `proxy_set_header X-Auth-Request-Redirect ${o.requestRedirect ?? '$request_uri'};`,
    // The template's proxy_buffering "on" with a cache, else the location's (off by default).
    `proxy_buffering ${o.cache === undefined ? 'off' : '"on"'};`,
    'proxy_ssl_server_name on;',
    'proxy_pass_request_headers on;',
    'client_max_body_size 1m;',
    ...(o.proxySetHeaders ?? []).map(([k, v]) => `proxy_set_header "${k}" "${v}";`),
    'proxy_http_version 1.1;',
    `set $target "${o.authUrl}";`,
    'proxy_pass $target;',
  );
  return `  location = ${o.path} {\n    ${lines.join('\n    ')}\n  }`;
}
