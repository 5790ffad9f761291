// The nginx variables ingress-nginx lets auth-url, auth-signin, auth-cache-key and
// auth-proxy-set-headers values use ($host, $request_uri, $escaped_request_uri, $http_<name>…),
// expanded per request. A variable keepip does not know expands to "" (nginx would refuse to load).
// Pure.
import type { LocationModel } from '../../config/model.ts';
import { VARIABLE_REFERENCE } from '../../config/nginx-variables.ts';
import { parseIp } from '../../net/ip.ts';
import { formatMsAsSeconds, formatTimeIso8601, formatTimeLocal } from '../nginx-time.ts';
import { type CookieHeader, nginxCookie } from '../cookies.ts';
import { headerText } from '../header-value.ts';

/** What a request offers to the variables. */
export interface RequestVars {
  /** $scheme: the connection's scheme. */
  scheme: string;
  /** $pass_access_scheme: the scheme the client used as far as it can be trusted. */
  passAccessScheme: string;
  /** $http_host: the Host header as received. */
  httpHost: string;
  /** $host: the normalised host. */
  host: string;
  /** $request_uri: the target as received. */
  requestUri: string;
  /** $uri: the normalised path (RequestTarget.uri); absent: the path part of requestUri. */
  uri?: string;
  method: string;
  remoteAddr: string;
  remoteUser: string;
  serverName: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The Cookie lines as nginx reads $cookie_<name> (cookies.ts requestCookies); absent: headers.cookie. */
  cookies?: CookieHeader;
  /** $best_http_host: the trusted X-Forwarded-Host's first entry, else the Host (absent: httpHost). */
  bestHttpHost?: string;
  /** $realip_remote_addr: the connection's peer (absent: remoteAddr). */
  peerAddress?: string;
  /** $proxy_protocol_addr ('' without a PROXY header) and $server_port. */
  proxyProtocolAddr?: string;
  serverPort?: string;
  /** $req_id: the client's X-Request-ID or the gateway's drawn id (absent: ""). */
  reqId?: string;
  /**
   * The location, for $namespace, $ingress_name, $service_name, $service_port and $location_path, as
   * ingress-nginx sets them in every location (absent: "").
   */
  location?: LocationVars | null;
}

/** What the location variables read of a location. */
export type LocationVars = Pick<LocationModel, 'ingress' | 'backend' | 'path'>;

/** nginx's ngx_escape_uri(NGX_ESCAPE_URI_COMPONENT) / set_escape_uri: all but [A-Za-z0-9-._~] as %XX. */
export function escapeUriComponent(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  let out = '';
  for (const byte of bytes) {
    const unreserved =
      (byte >= 0x30 && byte <= 0x39) ||
      (byte >= 0x41 && byte <= 0x5a) ||
      (byte >= 0x61 && byte <= 0x7a) ||
      byte === 0x2d ||
      byte === 0x2e ||
      byte === 0x5f ||
      byte === 0x7e;
    out += unreserved ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function header(vars: RequestVars, name: string): string {
  return headerText(vars.headers[name.toLowerCase().replaceAll('_', '-')]) ?? '';
}

/** nginx's ngx_http_arg: the first `name=` pair, the name compared case-insensitively. */
function arg(vars: RequestVars, name: string): string {
  const q = vars.requestUri.indexOf('?');
  return q < 0 ? '' : (nginxArg(vars.requestUri.slice(q + 1), name) ?? '');
}

/**
 * nginx's $proxy_add_x_forwarded_for: the client's X-Forwarded-For lines (`chain`, null when it sent
 * none; an empty line counts, as nginx copies each line and its `, `), then $remote_addr. Nothing is
 * appended for a client keepip could not resolve ('' $remote_addr), so no dangling `, `.
 */
export function proxyAddXForwardedFor(chain: string | null, remoteAddr: string): string {
  if (chain === null) return remoteAddr;
  return remoteAddr === '' ? chain : `${chain}, ${remoteAddr}`;
}

/**
 * nginx's $arg_<name> (ngx_http_arg) in a query string: the first `name=` (case-insensitive) at its
 * start or after `&`, up to the next `&`; a bare `name` without `=` is passed over. null: none.
 */
export function nginxArg(args: string, name: string): string | null {
  const wanted = name.toLowerCase();
  for (const part of args.split('&')) {
    const eq = part.indexOf('=');
    if (eq >= 0 && part.slice(0, eq).toLowerCase() === wanted) return part.slice(eq + 1);
  }
  return null;
}

/**
 * $binary_remote_addr as text of a fixed length per family, as nginx's 4 or 16 bytes: `x` and 8 hex
 * digits for IPv4, 32 hex digits for IPv6. No form is the start of another, so a key that begins
 * with it (`$binary_remote_addr$http_x_api_key`) cannot be spelled by another address and a header.
 */
function fixedLengthAddress(text: string): string {
  const ip = parseIp(text);
  if (ip === null) return '';
  const hex = (word: number) => (word >>> 0).toString(16).padStart(8, '0');
  return ip.family === 4 ? `x${hex(ip.w0)}` : `${hex(ip.w0)}${hex(ip.w1)}${hex(ip.w2)}${hex(ip.w3)}`;
}

/** The value of one variable (name without `$`). */
export function variable(vars: RequestVars, name: string): string {
  const q = vars.requestUri.indexOf('?');
  switch (name) {
    case 'scheme':
      return vars.scheme;
    case 'pass_access_scheme':
      return vars.passAccessScheme;
    case 'http_host':
      return vars.httpHost;
    case 'best_http_host':
      return vars.bestHttpHost ?? vars.httpHost;
    case 'host':
      return vars.host;
    case 'request_uri':
      return vars.requestUri;
    case 'escaped_request_uri':
      return escapeUriComponent(vars.requestUri);
    case 'uri':
      return vars.uri ?? (q < 0 ? vars.requestUri : vars.requestUri.slice(0, q));
    case 'args':
    case 'query_string':
      return q < 0 ? '' : vars.requestUri.slice(q + 1);
    case 'is_args':
      return q < 0 ? '' : '?';
    case 'request_method':
      return vars.method;
    case 'remote_addr':
      return vars.remoteAddr;
    case 'binary_remote_addr':
      return fixedLengthAddress(vars.remoteAddr);
    case 'remote_user':
      return vars.remoteUser;
    case 'server_name':
      return vars.serverName;
    case 'server_port':
      return vars.serverPort ?? '';
    case 'realip_remote_addr':
      return vars.peerAddress ?? vars.remoteAddr;
    case 'proxy_protocol_addr':
      return vars.proxyProtocolAddr ?? '';
    case 'proxy_add_x_forwarded_for':
      return proxyAddXForwardedFor(headerText(vars.headers['x-forwarded-for']) ?? null, vars.remoteAddr);
    case 'req_id':
      return vars.reqId ?? '';
    case 'namespace':
      return vars.location?.ingress.namespace ?? '';
    case 'ingress_name':
      return vars.location?.ingress.name ?? '';
    case 'service_name':
      return vars.location?.backend?.service.name ?? '';
    case 'service_port': {
      const backend = vars.location?.backend;
      return backend == null ? '' : `${backend.port}`;
    }
    case 'location_path':
      return vars.location?.path ?? '';
    // The time of the expansion (nginx's cached time of the request's event): New Relic's request
    // queueing reads `X-Request-Start: t=${msec}`.
    case 'msec':
      return formatMsAsSeconds(Date.now());
    case 'time_iso8601':
      return formatTimeIso8601(Date.now());
    case 'time_local':
      return formatTimeLocal(Date.now());
  }
  if (name.startsWith('http_')) return header(vars, name.slice(5));
  if (name.startsWith('cookie_'))
    return nginxCookie(vars.cookies ?? vars.headers.cookie, name.slice(7)) ?? '';
  if (name.startsWith('arg_')) return arg(vars, name.slice(4));
  return '';
}

/** Expands `$name` and `${name}` in `template`. */
export function expandVariables(template: string, vars: RequestVars): string {
  if (!template.includes('$')) return template;
  return template.replace(VARIABLE_REFERENCE, (_m, braced: string | undefined, bare: string | undefined) =>
    variable(vars, braced ?? bare ?? ''),
  );
}
