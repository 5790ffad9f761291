// The ingress-nginx access log and error log lines, byte for byte.
//
// A log format is compiled once per config snapshot into a list of (literal, variable getter)
// segments; formatting a line is then one pass of string concatenation with no parsing and no
// regex work for the common all-ASCII values. Escaping follows nginx's `log_format escape=`:
//   default: `"`, `\`, bytes < 0x20 and bytes >= 0x7f become `\xHH` (upper-case hex);
//   json:    `"` and `\` are backslash-escaped, \n \r \t \b \f by name, other bytes < 0x20 as \u00HH;
//   none:    values are written as they are, except control bytes (< 0x20, 0x7f) as `\xHH`, which
//            nginx writes raw: a decoded $remote_user with a line feed would forge a second line.
// A variable that has no value is written as `-` (default) or as nothing (json, none), as nginx
// does; a variable whose value is the empty string is written as nothing (`[]` for
// $proxy_alternative_upstream_name in the seed's lines).
//
// Strings from Node's HTTP parser are byte strings (latin1: one char per byte), so chars
// 0x80-0xFF are treated as bytes; chars above 0xFF are encoded as UTF-8 first.
import { type CookieRequest, nginxCookie, requestCookies } from './cookies.ts';
import { newRequestId } from './request-id.ts';
import { nginxArg, proxyAddXForwardedFor } from './access/nginx-vars.ts';
import {
  formatErrorLogTime,
  formatMsAsSeconds,
  formatTimeIso8601,
  formatTimeLocal,
  perSecondCache,
} from './nginx-time.ts';

/** What a log line reads of a TLS connection ($ssl_*): a node:tls TLSSocket has it. */
export interface TlsFacts {
  getProtocol(): string | null;
  getCipher(): { name: string } | null | undefined;
  isSessionReused(): boolean;
  readonly servername?: string | false | null;
}

/** A response's head as written ($sent_http_<name>): several values joined with ", ", null without. */
export interface SentHeaders {
  sentHeader?(name: string): string | null;
}

/** Header values as Node's IncomingHttpHeaders carries them (lower-case names). */
export type HeaderBag = Readonly<Record<string, string | string[] | number | undefined>>;

/**
 * Everything a log line can refer to. RUNTIME fills one per request (start from
 * `createAccessLogVars()` so every object has the same shape). `null` means "no value" (`-`).
 */
export interface AccessLogVars {
  /** $remote_addr: the resolved client address. */
  remoteAddr: string;
  /** $remote_port: the socket peer's port. */
  remotePort: number | null;
  /** $realip_remote_addr: the socket peer address, before client-IP resolution. */
  realipRemoteAddr: string | null;
  /** $proxy_protocol_addr / $proxy_protocol_port: from an accepted PROXY header. */
  proxyProtocolAddr: string | null;
  proxyProtocolPort: number | null;
  /** $remote_user: the user of the client's Basic credentials, verified or not (nginx's). */
  remoteUser: string | null;
  /** When the request finished, ms since the epoch: $time_local, $time_iso8601, $msec. */
  timeMs: number;
  /** $request: the request line as received; null to build it from method, URI and protocol. */
  request: string | null;
  /** $request_method; null: a refused request line without one. */
  requestMethod: string | null;
  /** $request_uri: the raw request-target as received, query included; null: none read. */
  requestUri: string | null;
  /** $server_protocol, e.g. `HTTP/1.1`; null: none read. */
  serverProtocol: string | null;
  /** $status */
  status: number;
  /** $body_bytes_sent */
  bodyBytesSent: number;
  /** $bytes_sent (status line and headers included) */
  bytesSent: number;
  /** $request_length (request line, headers and body) */
  requestLength: number;
  /** $request_time, in milliseconds (logged as seconds with 3 decimals). */
  requestTimeMs: number;
  /** Request headers for $http_<name>. */
  headers: HeaderBag;
  /** The request, for its Cookie lines ($cookie_<name>, read when a format asks: requestCookies). */
  cookieRequest: CookieRequest | null;
  /** The response, for $sent_http_<name>; null when there is none to read (an upgrade, a refused head). */
  response: SentHeaders | null;
  /** The last backend answer's head, for $upstream_http_<name>; null without one. */
  upstreamHead: SentHeaders | null;
  /** $host: the normalised host name (lower case, no port). */
  host: string;
  /** $scheme: `http` or `https`. */
  scheme: string;
  /** $server_name */
  serverName: string;
  /** $server_addr / $server_port: the local end of the client connection. */
  serverAddr: string | null;
  serverPort: number | null;
  /** $proxy_upstream_name, e.g. `gitea-gitea-http-3000` or `upstream-default-backend`. */
  proxyUpstreamName: string | null;
  /** $proxy_alternative_upstream_name: ingress-nginx sets it to "" (canary only). */
  proxyAlternativeUpstreamName: string;
  /** $upstream_addr: `ip:port`, or several joined by `, ` after retries. */
  upstreamAddr: string | null;
  /** $upstream_response_length: a number, or a `, `-joined list after retries. */
  upstreamResponseLength: number | string | null;
  /** $upstream_response_time: milliseconds (logged as seconds with 3 decimals), or a preformatted list. */
  upstreamResponseTimeMs: number | string | null;
  /** $upstream_connect_time and $upstream_header_time, as upstreamResponseTimeMs. */
  upstreamConnectTimeMs: number | string | null;
  upstreamHeaderTimeMs: number | string | null;
  /** $upstream_status: a number, or a `, `-joined list after retries. */
  upstreamStatus: number | string | null;
  /** $req_id: the incoming X-Request-ID or the generated id. */
  reqId: string;
  /** Whether reqId is the id the gateway drew, which is then $request_id too. */
  reqIdIsOwn: boolean;
  /** $request_id when reqId is not the gateway's own: drawn when a line first needs it. */
  requestId: string | null;
  /** $namespace, $ingress_name, $service_name, $service_port of the matched location. */
  namespace: string | null;
  ingressName: string | null;
  serviceName: string | null;
  servicePort: string | number | null;
  /** $connection: the connection's serial number; $connection_requests: its requests so far, this one included. */
  connection: number | null;
  connectionRequests: number | null;
  /** $hostname: the machine's (the pod's) host name. */
  hostname: string;
  /** $location_path: the Ingress path of the location that served the request (ingress-nginx's). */
  locationPath: string | null;
  /** The TLS connection of an HTTPS request ($ssl_protocol, $ssl_cipher…); null over plain HTTP. */
  tls: TlsFacts | null;
  /** The client certificate a host with auth-tls checked ($ssl_client_*); null elsewhere (NONE over TLS). */
  clientCertificate: { verify: string; subjectDn: string; issuerDn: string } | null;
  /** $uri: the decoded, normalised path; null: none (a request refused before its target was read). */
  uri: string | null;
  /** $args: the query string; null to take it from requestUri. */
  args: string | null;
  /** A chunked request body read whole: its length, nginx's $content_length then; else null. */
  chunkedBodyBytes: number | null;
}

/** A blank AccessLogVars with every field present (one hidden class for all requests). */
export function createAccessLogVars(): AccessLogVars {
  return {
    remoteAddr: '',
    remotePort: null,
    realipRemoteAddr: null,
    proxyProtocolAddr: null,
    proxyProtocolPort: null,
    remoteUser: null,
    timeMs: 0,
    request: null,
    requestMethod: 'GET',
    requestUri: '/',
    serverProtocol: 'HTTP/1.1',
    status: 0,
    bodyBytesSent: 0,
    bytesSent: 0,
    requestLength: 0,
    requestTimeMs: 0,
    headers: {},
    cookieRequest: null,
    response: null,
    upstreamHead: null,
    host: '',
    scheme: 'http',
    serverName: '_',
    serverAddr: null,
    serverPort: null,
    proxyUpstreamName: null,
    proxyAlternativeUpstreamName: '',
    upstreamAddr: null,
    upstreamResponseLength: null,
    upstreamResponseTimeMs: null,
    upstreamConnectTimeMs: null,
    upstreamHeaderTimeMs: null,
    upstreamStatus: null,
    reqId: '',
    reqIdIsOwn: false,
    requestId: null,
    namespace: null,
    ingressName: null,
    serviceName: null,
    servicePort: null,
    connection: null,
    connectionRequests: null,
    hostname: '',
    locationPath: null,
    tls: null,
    clientCertificate: null,
    uri: null,
    args: null,
    chunkedBodyBytes: null,
  };
}

/** ingress-nginx's default `log-format-upstream`, exactly. */
export const DEFAULT_LOG_FORMAT_UPSTREAM =
  '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" ' +
  '"$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] ' +
  '$upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id';

export type LogEscape = 'default' | 'json' | 'none';
export type AccessLogFormatter = (vars: AccessLogVars) => string;

// ---------------------------------------------------------------------------------------------
// Escaping

const HEX = '0123456789ABCDEF';
const DEFAULT_ESCAPES: string[] = [];
for (let b = 0; b < 256; b++) DEFAULT_ESCAPES.push(`\\x${HEX[b >> 4]}${HEX[b & 15]}`);

const NEEDS_JSON_ESCAPE = /["\\\x00-\x1f]/;
const HAS_HIGH_BYTES = /[\x80-\xff]/;
const HAS_WIDE_CHARS = /[\u0100-\uffff]/;

/** UTF-8 bytes of the code point at s[i] (surrogate pairs joined, lone surrogates as U+FFFD). */
function utf8Bytes(s: string, i: number): { bytes: number[]; width: number } {
  let cp = s.charCodeAt(i);
  let width = 1;
  if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < s.length) {
    const lo = s.charCodeAt(i + 1);
    if (lo >= 0xdc00 && lo <= 0xdfff) {
      cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      width = 2;
    }
  }
  if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
  if (cp < 0x800) return { bytes: [0xc0 | (cp >> 6), 0x80 | (cp & 63)], width };
  if (cp < 0x10000) return { bytes: [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)], width };
  return {
    bytes: [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)],
    width,
  };
}

function needsDefaultEscape(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f || c === 0x22 || c === 0x5c) return true;
  }
  return false;
}

/** nginx `escape=default`: `"`, `\`, < 0x20 and >= 0x7f as \xHH. */
export function escapeLogDefault(s: string): string {
  // A plain loop: measured faster than a regex test on typical header values.
  if (!needsDefaultEscape(s)) return s;
  let out = '';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c || c < 0x20 || c >= 0x7f) {
      out += s.slice(start, i);
      if (c <= 0xff) {
        out += DEFAULT_ESCAPES[c];
      } else {
        const { bytes, width } = utf8Bytes(s, i);
        for (const b of bytes) out += DEFAULT_ESCAPES[b];
        i += width - 1;
      }
      start = i + 1;
    }
  }
  return out + s.slice(start);
}

/** A byte string (chars <= 0xFF) carrying UTF-8 becomes text; anything else is left alone. */
function bytesToText(s: string): string {
  if (!HAS_HIGH_BYTES.test(s) || HAS_WIDE_CHARS.test(s)) return s;
  return Buffer.from(s, 'latin1').toString('utf8');
}

/** nginx `escape=json` (ngx_escape_json). Bytes >= 0x80 pass through (as UTF-8 text). */
export function escapeLogJson(s: string): string {
  s = bytesToText(s);
  if (!NEEDS_JSON_ESCAPE.test(s)) return s;
  let out = '';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x1f && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(start, i);
    start = i + 1;
    switch (c) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += '\\\\';
        break;
      case 0x0a:
        out += '\\n';
        break;
      case 0x0d:
        out += '\\r';
        break;
      case 0x09:
        out += '\\t';
        break;
      case 0x08:
        out += '\\b';
        break;
      case 0x0c:
        out += '\\f';
        break;
      default:
        out += `\\u00${HEX[c >> 4]}${HEX[c & 15]}`;
    }
  }
  return out + s.slice(start);
}

function escapeLogNone(s: string): string {
  return bytesToText(escapeControlBytes(s));
}

const CONTROL_BYTE = /[\x00-\x1f\x7f]/;
const CONTROL_BYTES = /[\x00-\x1f\x7f]/g;

/** Control bytes (< 0x20, 0x7f) as `\xHH`, the rest as it is: one line of text stays one line. */
export function escapeControlBytes(text: string): string {
  if (!CONTROL_BYTE.test(text)) return text;
  return text.replace(CONTROL_BYTES, (c) => DEFAULT_ESCAPES[c.charCodeAt(0)]!);
}

// ---------------------------------------------------------------------------------------------
// Variables

/** How one variable of a log format is read from the values of a line (`V`: a request's, a stream session's). */
export interface LogVariable<V> {
  get: (v: V) => string | null;
  /** The value is known to need no escaping (numbers, times, generated ids). */
  safe: boolean;
}

/** The variable a name stands for, or null when the format's kind of line does not have it. */
export type LogVariableLookup<V> = (name: string) => LogVariable<V> | null;

type VariableSpec = LogVariable<AccessLogVars>;

function numOrNull(n: number | null): string | null {
  return n === null ? null : `${n}`;
}

function headerValue(bag: HeaderBag | null, name: string): string | null {
  if (bag === null) return null;
  const v = bag[name];
  if (v === undefined) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return `${v}`;
  return v.join(', ');
}

/** $cookie_<name>: the Cookie lines as nginx scans them, one by one. */
function cookieOf(v: AccessLogVars, name: string): string | null {
  if (v.cookieRequest !== null) return nginxCookie(requestCookies(v.cookieRequest), name) ?? null;
  const raw = v.headers.cookie;
  return nginxCookie(typeof raw === 'number' ? `${raw}` : raw, name) ?? null;
}

/** $args: null (nginx's not found) without a query, a bare `?` included. */
function argsOf(v: AccessLogVars): string | null {
  if (v.args !== null) return v.args;
  const uri = v.requestUri;
  const q = uri === null ? -1 : uri.indexOf('?');
  return uri === null || q < 0 || q === uri.length - 1 ? null : uri.slice(q + 1);
}

function ownRequestId(v: AccessLogVars): string {
  if (v.reqIdIsOwn) return v.reqId;
  v.requestId ??= newRequestId();
  return v.requestId;
}

const timeLocal = perSecondCache(formatTimeLocal);
const timeIso = perSecondCache(formatTimeIso8601);

/** nginx $pid: the worker process that served the request (with --workers, one of several). */
const PID = String(process.pid);

const VARIABLES: Readonly<Record<string, VariableSpec>> = {
  remote_addr: { get: (v) => v.remoteAddr, safe: false },
  // ingress-nginx's older templates call the resolved client address $the_real_ip.
  the_real_ip: { get: (v) => v.remoteAddr, safe: false },
  remote_port: { get: (v) => numOrNull(v.remotePort), safe: true },
  realip_remote_addr: { get: (v) => v.realipRemoteAddr, safe: false },
  proxy_protocol_addr: { get: (v) => v.proxyProtocolAddr, safe: false },
  proxy_protocol_port: { get: (v) => numOrNull(v.proxyProtocolPort), safe: true },
  remote_user: { get: (v) => v.remoteUser, safe: false },
  time_local: { get: (v) => timeLocal(v.timeMs), safe: true },
  time_iso8601: { get: (v) => timeIso(v.timeMs), safe: true },
  msec: { get: (v) => formatMsAsSeconds(v.timeMs), safe: true },
  request: {
    get: (v) => v.request ?? `${v.requestMethod} ${v.requestUri} ${v.serverProtocol}`,
    safe: false,
  },
  request_method: { get: (v) => v.requestMethod, safe: false },
  request_uri: { get: (v) => v.requestUri, safe: false },
  // The decoded, normalised path; a request refused before it had one has none (nginx's `-`).
  uri: { get: (v) => v.uri, safe: false },
  document_uri: { get: (v) => v.uri, safe: false },
  args: { get: argsOf, safe: false },
  query_string: { get: argsOf, safe: false },
  is_args: { get: (v) => (argsOf(v) === null ? '' : '?'), safe: true },
  server_protocol: { get: (v) => v.serverProtocol, safe: false },
  scheme: { get: (v) => v.scheme, safe: false },
  https: { get: (v) => (v.scheme === 'https' ? 'on' : ''), safe: true },
  status: { get: (v) => (v.status < 100 ? `${v.status}`.padStart(3, '0') : `${v.status}`), safe: true },
  body_bytes_sent: { get: (v) => `${v.bodyBytesSent}`, safe: true },
  bytes_sent: { get: (v) => `${v.bytesSent}`, safe: true },
  request_length: { get: (v) => `${v.requestLength}`, safe: true },
  request_time: { get: (v) => formatMsAsSeconds(v.requestTimeMs), safe: true },
  host: { get: (v) => v.host, safe: false },
  server_name: { get: (v) => v.serverName, safe: false },
  server_addr: { get: (v) => v.serverAddr, safe: false },
  server_port: { get: (v) => numOrNull(v.serverPort), safe: true },
  proxy_upstream_name: { get: (v) => v.proxyUpstreamName, safe: false },
  // ingress-nginx sets it in every location: `set $proxy_host $proxy_upstream_name;`.
  proxy_host: { get: (v) => v.proxyUpstreamName, safe: false },
  proxy_alternative_upstream_name: { get: (v) => v.proxyAlternativeUpstreamName, safe: false },
  upstream_addr: { get: (v) => v.upstreamAddr, safe: false },
  upstream_response_length: {
    get: (v) => (v.upstreamResponseLength === null ? null : `${v.upstreamResponseLength}`),
    safe: false,
  },
  upstream_response_time: { get: (v) => upstreamTime(v.upstreamResponseTimeMs), safe: false },
  upstream_connect_time: { get: (v) => upstreamTime(v.upstreamConnectTimeMs), safe: false },
  upstream_header_time: { get: (v) => upstreamTime(v.upstreamHeaderTimeMs), safe: false },
  upstream_status: {
    get: (v) => (v.upstreamStatus === null ? null : `${v.upstreamStatus}`),
    safe: false,
  },
  req_id: { get: (v) => v.reqId, safe: false },
  pid: { get: () => PID, safe: true },
  // nginx's $request_id is its own random id, never the client's X-Request-ID ($req_id's).
  request_id: { get: ownRequestId, safe: true },
  namespace: { get: (v) => v.namespace, safe: false },
  ingress_name: { get: (v) => v.ingressName, safe: false },
  service_name: { get: (v) => v.serviceName, safe: false },
  service_port: { get: (v) => (v.servicePort === null ? null : `${v.servicePort}`), safe: false },
  location_path: { get: (v) => v.locationPath, safe: false },
  connection: { get: (v) => numOrNull(v.connection), safe: true },
  connection_requests: { get: (v) => numOrNull(v.connectionRequests), safe: true },
  hostname: { get: (v) => v.hostname, safe: false },
  proxy_add_x_forwarded_for: {
    get: (v) => proxyAddXForwardedFor(headerValue(v.headers, 'x-forwarded-for'), v.remoteAddr),
    safe: false,
  },
  ssl_protocol: { get: (v) => v.tls?.getProtocol() ?? null, safe: false },
  ssl_cipher: { get: (v) => v.tls?.getCipher()?.name ?? null, safe: false },
  ssl_server_name: { get: (v) => v.tls?.servername || null, safe: false },
  ssl_client_verify: {
    get: (v) => (v.tls === null ? null : (v.clientCertificate?.verify ?? 'NONE')),
    safe: false,
  },
  ssl_client_s_dn: { get: (v) => v.clientCertificate?.subjectDn || null, safe: false },
  ssl_client_i_dn: { get: (v) => v.clientCertificate?.issuerDn || null, safe: false },
  ssl_session_reused: {
    get: (v) => (v.tls === null ? null : v.tls.isSessionReused() ? 'r' : '.'),
    safe: true,
  },
};

/** The names of the variables a format may use besides the `http_`, `sent_http_`, `cookie_`, `arg_` families. */
export const LOG_VARIABLE_NAMES: readonly string[] = [
  ...Object.keys(VARIABLES),
  'content_length',
  'content_type',
];

/** An upstream time: milliseconds as seconds with 3 decimals, or a list already formatted. */
function upstreamTime(t: number | string | null): string | null {
  return t === null ? null : typeof t === 'number' ? formatMsAsSeconds(t) : t;
}

const NAME_CHAR = /[A-Za-z0-9_]/;

function lookupVariable(name: string): VariableSpec | null {
  const fixed = VARIABLES[name];
  if (fixed !== undefined) return fixed;
  if (name.startsWith('http_') && name.length > 5) {
    const header = name.slice(5).toLowerCase().replaceAll('_', '-');
    return { get: (v) => headerValue(v.headers, header), safe: false };
  }
  if (name.startsWith('sent_http_') && name.length > 10) {
    const header = name.slice(10).toLowerCase().replaceAll('_', '-');
    return { get: (v) => v.response?.sentHeader?.(header) ?? null, safe: false };
  }
  if (name.startsWith('upstream_http_') && name.length > 14) {
    const header = name.slice(14).toLowerCase().replaceAll('_', '-');
    return { get: (v) => v.upstreamHead?.sentHeader?.(header) ?? null, safe: false };
  }
  if (name.startsWith('arg_') && name.length > 4) {
    const arg = name.slice(4).toLowerCase();
    return {
      get: (v) => {
        const args = argsOf(v);
        return args === null ? null : nginxArg(args, arg);
      },
      safe: false,
    };
  }
  if (name.startsWith('cookie_') && name.length > 7) {
    const cookie = name.slice(7);
    return { get: (v) => cookieOf(v, cookie), safe: false };
  }
  if (name === 'content_type') return { get: (v) => headerValue(v.headers, 'content-type'), safe: false };
  if (name === 'content_length') {
    const chunked = (v: AccessLogVars) => (v.chunkedBodyBytes === null ? null : `${v.chunkedBodyBytes}`);
    return { get: (v) => headerValue(v.headers, 'content-length') ?? chunked(v), safe: false };
  }
  return null;
}

type Token = { literal: string } | { variable: string };

/** Splits a format into literals and variable names (`$name` or `${name}`, as nginx's script parser). */
function tokenize(format: string): Token[] {
  const tokens: Token[] = [];
  let literal = '';
  let i = 0;
  while (i < format.length) {
    const c = format[i];
    if (c !== '$') {
      literal += c;
      i++;
      continue;
    }
    let name = '';
    let end = i + 1;
    if (format[end] === '{') {
      const close = format.indexOf('}', end + 1);
      if (close > end + 1) {
        name = format.slice(end + 1, close);
        end = close + 1;
      }
    } else {
      while (end < format.length && NAME_CHAR.test(format[end]!)) end++;
      name = format.slice(i + 1, end);
    }
    if (name === '') {
      // A lone `$` is kept as text (nginx would refuse the format).
      literal += c;
      i++;
      continue;
    }
    if (literal !== '') tokens.push({ literal });
    literal = '';
    tokens.push({ variable: name });
    i = end;
  }
  if (literal !== '') tokens.push({ literal });
  return tokens;
}

/**
 * The variables a format uses, and those keepip does not know. Unknown variables are logged as
 * `-` (nothing in JSON mode) where nginx would refuse the format; RUNTIME reports them at start-up.
 */
export function describeLogFormat(format: string): { variables: string[]; unknown: string[] } {
  return describeFormat(format, lookupVariable);
}

/** describeLogFormat for any kind of line. */
export function describeFormat<V>(
  format: string,
  lookup: LogVariableLookup<V>,
): { variables: string[]; unknown: string[] } {
  const variables: string[] = [];
  const unknown: string[] = [];
  for (const t of tokenize(format)) {
    if (!('variable' in t)) continue;
    if (!variables.includes(t.variable)) variables.push(t.variable);
    if (lookup(t.variable) === null && !unknown.includes(t.variable)) unknown.push(t.variable);
  }
  return { variables, unknown };
}

const UNKNOWN_VARIABLE: LogVariable<unknown> = { get: () => null, safe: true };

/** Compiles a log format once; the returned function formats one line (without the newline). */
export function compileLogFormat(format: string, options: { escape: LogEscape }): AccessLogFormatter {
  return compileFormat(format, options.escape, lookupVariable);
}

/** compileLogFormat for any kind of line: the variables are `lookup`'s. */
export function compileFormat<V>(
  format: string,
  escaping: LogEscape,
  lookup: LogVariableLookup<V>,
): (v: V) => string {
  const escapeValue =
    escaping === 'json' ? escapeLogJson : escaping === 'none' ? escapeLogNone : escapeLogDefault;
  return compileWith(format, escapeValue, escaping === 'default' ? '-' : '', lookup);
}

/**
 * A value written with the access log's variables outside a log line (an add-headers value): each
 * variable's value through `escapeValue`; a variable without a value, or unknown, is "".
 */
export function compileValueTemplate(
  template: string,
  escapeValue: (value: string) => string,
): AccessLogFormatter {
  return compileWith(template, escapeValue, '', lookupVariable);
}

function compileWith<V>(
  format: string,
  escapeValue: (value: string) => string,
  missing: string,
  lookup: LogVariableLookup<V>,
): (v: V) => string {
  const prefixes: string[] = [];
  const specs: LogVariable<V>[] = [];
  let pending = '';
  for (const t of tokenize(format)) {
    if ('literal' in t) {
      pending += t.literal;
      continue;
    }
    prefixes.push(pending);
    specs.push(lookup(t.variable) ?? UNKNOWN_VARIABLE);
    pending = '';
  }
  const tail = pending;
  const n = specs.length;
  const getters = specs.map((s) => s.get);
  const safe = specs.map((s) => s.safe);
  // One-entry memo per variable: user agents, hosts and upstream names repeat from line to line,
  // and comparing two equal strings is cheaper than scanning one for bytes to escape.
  const lastRaw: string[] = specs.map(() => '');
  const lastEscaped: string[] = specs.map(() => '');
  return (v) => {
    let out = '';
    for (let i = 0; i < n; i++) {
      out += prefixes[i];
      const value = getters[i]!(v);
      if (value === null) {
        out += missing;
      } else if (safe[i] || value.length < 8) {
        out += safe[i] ? value : escapeValue(value);
      } else if (value === lastRaw[i]) {
        out += lastEscaped[i];
      } else {
        const escaped = escapeValue(value);
        lastRaw[i] = value;
        lastEscaped[i] = escaped;
        out += escaped;
      }
    }
    return out + tail;
  };
}

// ---------------------------------------------------------------------------------------------
// Error log

// nginx writes these fields unescaped; control bytes are still escaped (escapeControlBytes) so that a
// request cannot forge extra log lines (Node's parser already refuses most of them).

/**
 * The text nginx logs for a denied client:
 * `access forbidden by rule, client: <ip>, server: <name>, request: "<line>", host: "<host>"`
 * plus `, referrer: "<referrer>"` when the request had one.
 */
export function formatForbiddenLine(input: {
  client: string;
  server: string;
  request: string;
  host: string;
  referrer?: string | null;
}): string {
  let line =
    `access forbidden by rule, client: ${escapeControlBytes(input.client)}, server: ${escapeControlBytes(input.server)}, ` +
    `request: "${escapeControlBytes(input.request)}", host: "${escapeControlBytes(input.host)}"`;
  if (input.referrer !== undefined && input.referrer !== null && input.referrer !== '') {
    line += `, referrer: "${escapeControlBytes(input.referrer)}"`;
  }
  return line;
}

/** nginx's error log prefix: `2025/03/19 10:01:03 [error] 31#31: *1393 ` (no `*N ` without a connection). */
export function formatErrorLogPrefix(
  date: Date | number,
  pid: number,
  connectionId: number | null,
  level: 'emerg' | 'alert' | 'crit' | 'error' | 'warn' | 'notice' | 'info' | 'debug' = 'error',
): string {
  const conn = connectionId === null ? '' : `*${connectionId} `;
  return `${formatErrorLogTime(date)} [${level}] ${pid}#${pid}: ${conn}`;
}
