// auth-url (and the ConfigMap's global-auth-url): nginx's auth_request subrequest as ingress-nginx
// configures it. The auth service gets the client's headers (no body, no Content-Length) with:
//   Host <auth-url host>, X-Original-URL $scheme://$http_host$request_uri, X-Original-Method,
//   X-Sent-From nginx-ingress-controller, X-Real-IP and X-Forwarded-For $remote_addr,
//   X-Auth-Request-Redirect (auth-request-redirect, else $request_uri), X-Request-ID,
//   with auth-method also X-Original-URI and X-Scheme, and the auth-proxy-set-headers.
// Its answer: 2xx admits (auth-response-headers are copied to the upstream request, Set-Cookie to the
// client), 401 and 403 refuse with that status (401 with its WWW-Authenticate), anything else, a
// refused connection or a timeout is 500 (nginx: "auth request unexpected status").
// auth-cache-key caches answers per (server, location, key) for the statuses and times of
// auth-cache-duration, as proxy_cache_valid would, or for the time the answer's own X-Accel-Expires,
// Cache-Control or Expires gives (authCacheTtl).
import type { ClientRequest, IncomingMessage } from 'node:http';
import http from '../../node-http.ts';
import https from 'node:https';
import type { AuthKeepaliveModel, ExternalAuthModel } from '../../config/model.ts';
import { fixedAuthority } from '../../config/nginx-variables.ts';
import { parseNginxTimeMs } from '../../config/duration.ts';
import { NGINX_AUTHORITY } from '../../net/host-port.ts';
import { HOP_BY_HOP_FIELDS } from '../../net/hop-by-hop.ts';
import { parseHttpTime } from '../http-time.ts';
import { authAgent } from './auth-connections.ts';
import { expandVariables, type RequestVars } from './nginx-vars.ts';

export interface AuthAnswer {
  status: number;
  /** Lower-case names; Set-Cookie as a list. */
  headers: Record<string, string | string[] | undefined>;
  /**
   * Every header line apart, by lower-case name (Node's headersDistinct): the cache reads each
   * Cache-Control, Vary and X-Accel-Expires line as nginx does, never Node's lines joined with ", ".
   */
  lines: Record<string, string[] | undefined>;
  /** Why the subrequest failed (connection refused, timeout…), for the error log. */
  failure: string | null;
}

export type ExternalAuthOutcome =
  | { kind: 'allow'; upstreamHeaders: Record<string, string>; cookies: string[] }
  | { kind: 'deny'; status: 401 | 403; wwwAuthenticate: string[]; cookies: string[] }
  | { kind: 'error'; status: 500; detail: string; cookies: string[] };

const NOT_PASSED = new Set([
  ...HOP_BY_HOP_FIELDS,
  'expect',
  'content-length',
  'host',
  'x-forwarded-proto',
  'proxy',
  // Set by the gateway for backends or not at all (upstream-headers.ts): a client's would be a
  // forgery to the auth service too.
  'x-scheme',
  'x-forwarded-scheme',
  'x-original-forwarded-for',
  'x-original-forwarded-host',
]);

// As for backends (upstream-headers.ts): headers that tell another URL or host are passed to the auth
// service only from a trusted hop, so a client cannot steer what an auth service (oauth2-proxy's
// skip-auth routes read X-Forwarded-Uri) believes it asked for.
const FROM_TRUSTED_HOPS_ONLY = new Set([
  'forwarded',
  'x-original-url',
  'x-original-uri',
  'x-original-method',
  'x-rewrite-url',
  'x-forwarded-uri',
  'x-forwarded-prefix',
  'x-forwarded-path',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-server',
  'x-forwarded-ssl',
  'x-url-scheme',
  'front-end-https',
  'x-auth-request-redirect',
  'x-sent-from',
]);

export interface SubrequestInput {
  model: ExternalAuthModel;
  vars: RequestVars;
  /** X-Forwarded-For as ingress-nginx sends it ($remote_addr, or $full_x_forwarded_for). */
  forwardedFor: string;
  requestId: string;
  trustedHop: boolean;
  /** ssl-client-* headers of the connection, when the host asks for client certificates. */
  clientCertHeaders: Readonly<Record<string, string>> | null;
}

/** The method, URL and headers of the auth subrequest. */
export function buildSubrequest(input: SubrequestInput): {
  method: string;
  url: URL | null;
  /** The request target sent, as expanded (subrequestTarget). */
  path: string;
  headers: Record<string, string | string[]>;
  /** Whether its connection may be reused (fixedAuthority). */
  keepAlive: boolean;
  /** auth-keepalive's pool, when the Ingress sets it. */
  keepalive?: AuthKeepaliveModel;
} {
  const { model, vars } = input;
  const headers: Record<string, string | string[]> = {};
  for (const name in vars.headers) {
    const value = vars.headers[name];
    if (value === undefined || NOT_PASSED.has(name)) continue;
    if (!input.trustedHop && FROM_TRUSTED_HOPS_ONLY.has(name)) continue;
    headers[name] = value;
  }
  const target = subrequestTarget(expandVariables(model.url, vars));
  const url = target?.url ?? null;
  headers.host = url?.hostname ?? '';
  if (input.requestId !== '') headers['x-request-id'] = input.requestId;
  if (model.method !== null) {
    headers['x-original-uri'] = vars.requestUri;
    headers['x-scheme'] = vars.passAccessScheme;
  }
  headers['x-original-url'] = `${vars.scheme}://${vars.httpHost}${vars.requestUri}`;
  headers['x-original-method'] = vars.method;
  headers['x-sent-from'] = 'nginx-ingress-controller';
  headers['x-real-ip'] = vars.remoteAddr;
  headers['x-forwarded-for'] = input.forwardedFor;
  headers['x-auth-request-redirect'] =
    model.requestRedirect !== null ? expandVariables(model.requestRedirect, vars) : vars.requestUri;
  if (input.clientCertHeaders !== null) {
    // '' marks a header to drop (a client's own ssl-client-*), as nginx drops an empty proxy_set_header.
    for (const [name, value] of Object.entries(input.clientCertHeaders)) {
      if (value === '') delete headers[name];
      else headers[name] = value;
    }
  }
  for (const [name, value] of Object.entries(model.proxySetHeaders)) {
    const expanded = expandVariables(value, vars);
    if (expanded === '') delete headers[name.toLowerCase()];
    else headers[name.toLowerCase()] = expanded;
  }
  const keepAlive = fixedAuthority(model.url);
  const sub = { method: model.method ?? 'GET', url, path: target?.path ?? '/', headers, keepAlive };
  return model.keepalive === undefined ? sub : { ...sub, keepalive: model.keepalive };
}

/**
 * The expanded auth-url as nginx's proxy_pass reads it: the authority up to the first `/` or `?`,
 * refused unless a plain host and a port of digits (a client's Host `a:@evil:80` in `$http_host` must
 * never pick the auth server: nginx fails it as an invalid port), and the rest sent as it is, never
 * resolved as a URL would be (`\..\` or `%2e%2e` in `$request_uri` must not climb out of the path);
 * bytes a request line cannot carry are percent-encoded. Null: not an http(s) URL nginx would take.
 */
export function subrequestTarget(text: string): { url: URL; path: string } | null {
  const m = /^(https?):\/\/([^/?]*)(.*)$/is.exec(text);
  if (m === null || !NGINX_AUTHORITY.test(m[2]!)) return null;
  let url: URL;
  try {
    url = new URL(`${m[1]!.toLowerCase()}://${m[2]}/`);
  } catch {
    return null;
  }
  const rest = m[3]!;
  const path = rest.startsWith('/') ? rest : `/${rest}`;
  return { url, path: path.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c)) };
}

const MAX_AUTH_BODY = 64 * 1024;

/** Sends the subrequest; `done` gets the answer, or status 0 with `failure` when none came. */
export function sendSubrequest(
  request: Subrequest,
  timeoutMs: number,
  done: (answer: AuthAnswer) => void,
): void {
  const { url } = request;
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    done({ status: 0, headers: {}, lines: {}, failure: 'auth-url does not expand to an http(s) URL' });
    return;
  }
  let finished = false;
  sendAttempt(request, url, timeoutMs, 0, (answer) => {
    if (finished) return;
    finished = true;
    done(answer);
  });
}

/** A subrequest as sendSubrequest takes it. */
interface Subrequest {
  method: string;
  url: URL | null;
  path: string;
  headers: Record<string, string | string[]>;
  keepAlive: boolean;
  keepalive?: AuthKeepaliveModel;
}

/**
 * Times a subrequest is sent again after a kept connection the auth service had closed failed it
 * before any answer (nginx retries a cached upstream connection that fails, ngx_http_upstream_next):
 * a service that closes idle connections sooner than keepip would otherwise cost a client a 500.
 */
const STALE_CONNECTION_RETRIES = 2;

function isStaleConnection(req: ClientRequest, error: NodeJS.ErrnoException): boolean {
  return req.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
}

function sendAttempt(
  request: Subrequest,
  url: URL,
  timeoutMs: number,
  retries: number,
  finish: (answer: AuthAnswer) => void,
): void {
  const client = url.protocol === 'https:' ? https : http;
  let req: ClientRequest;
  try {
    req = client.request(url, {
      method: request.method,
      path: request.path,
      headers: request.headers,
      agent: authAgent(url.protocol as 'http:' | 'https:', request.keepAlive ? request.keepalive : null),
      timeout: timeoutMs,
    });
  } catch (error) {
    // A header value Node refuses (a CR/LF expanded into auth-proxy-set-headers): no auth request,
    // the client's 500 as nginx's for a failed subrequest, never an alert with a stack.
    finish({ status: 0, headers: {}, lines: {}, failure: (error as Error).message });
    return;
  }
  let answered = false;
  let retried = false;
  req.on('response', (res) => {
    answered = true;
    readAnswer(res, timeoutMs, finish);
  });
  // A 101 comes as 'upgrade' (without a listener Node drops the socket and says nothing more): an
  // unexpected status, as nginx's "auth request unexpected status: 101".
  req.on('upgrade', (res, socket) => {
    answered = true;
    socket.destroy();
    finish({
      status: res.statusCode ?? 101,
      headers: res.headers,
      lines: res.headersDistinct,
      failure: null,
    });
  });
  req.on('timeout', () => req.destroy(new Error(`auth request timed out after ${timeoutMs} ms`)));
  req.on('error', (error: NodeJS.ErrnoException) => {
    if (!answered && retries < STALE_CONNECTION_RETRIES && isStaleConnection(req, error)) {
      retried = true;
      sendAttempt(request, url, timeoutMs, retries + 1, finish);
      return;
    }
    finish({ status: 0, headers: {}, lines: {}, failure: error.message });
  });
  // Whatever else ends the request without an answer still ends the wait.
  req.on('close', () => {
    if (!retried)
      finish({ status: 0, headers: {}, lines: {}, failure: 'the auth request closed without an answer' });
  });
  req.end();
}

/**
 * Decided on the status and headers, as nginx's auth_request: a body that trickles must not hold the
 * client. It is still read (for the connection's reuse), within the same deadline.
 */
function readAnswer(res: IncomingMessage, timeoutMs: number, finish: (answer: AuthAnswer) => void): void {
  finish({ status: res.statusCode ?? 0, headers: res.headers, lines: res.headersDistinct, failure: null });
  let size = 0;
  const deadline = setTimeout(() => res.destroy(), timeoutMs);
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_AUTH_BODY) res.destroy();
  });
  res.on('close', () => clearTimeout(deadline));
  res.on('error', () => {});
}

function list(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** nginx auth_request's reading of the answer. */
export function interpretAnswer(model: ExternalAuthModel, answer: AuthAnswer): ExternalAuthOutcome {
  const cookies = list(answer.headers['set-cookie']);
  if (answer.status >= 200 && answer.status < 300) {
    const upstreamHeaders: Record<string, string> = {};
    for (const name of model.responseHeaders) {
      const value = answer.headers[name.toLowerCase()];
      upstreamHeaders[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : (value ?? '');
    }
    return { kind: 'allow', upstreamHeaders, cookies };
  }
  if (answer.status === 401 || answer.status === 403) {
    // auth_request copies the service's WWW-Authenticate onto a 401 only; a 403 goes out bare.
    const wwwAuthenticate = answer.status === 401 ? list(answer.headers['www-authenticate']) : [];
    return { kind: 'deny', status: answer.status, wwwAuthenticate, cookies };
  }
  const detail =
    answer.failure !== null
      ? `auth request failed: ${answer.failure}`
      : `auth request unexpected status: ${answer.status}`;
  return { kind: 'error', status: 500, detail, cookies };
}

/** ingress-nginx's buildAuthSignURL with the request's variables: the redirect of a 401. */
export function signinLocation(model: ExternalAuthModel, vars: RequestVars): string | null {
  if (model.signin === null) return null;
  const param = model.signinRedirectParam ?? 'rd';
  const base = expandVariables(model.signin, vars);
  const q = model.signin.indexOf('?');
  const query = q < 0 ? '' : model.signin.slice(q + 1);
  if (query === '')
    return `${base}?${param}=${vars.passAccessScheme}://${vars.httpHost}${escapeRequestUri(vars)}`;
  const present = query.split('&').some((p) => {
    const eq = p.indexOf('=');
    return eq > 0 && p.slice(0, eq) === param && p.slice(eq + 1) !== '';
  });
  if (present) return base;
  return `${base}&${param}=${vars.passAccessScheme}://${vars.httpHost}${escapeRequestUri(vars)}`;
}

function escapeRequestUri(vars: RequestVars): string {
  return expandVariables('$escaped_request_uri', vars);
}

// ---------------------------------------------------------------------------------------------
// auth-cache-key / auth-cache-duration

/** proxy_cache_valid lines → time to keep an answer of each status (nginx: time alone means 200 301 302). */
export function cacheTimes(durations: readonly string[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of durations) {
    const parts = entry.split(' ').filter((p) => p !== '');
    const time = parts[parts.length - 1] ?? '';
    // auth-cache-duration's times carry a unit (parseCacheDurations); nginx reads them as whole
    // seconds (proxy_cache_valid: ngx_parse_time(value, 1)) and refuses ms: such a time caches nothing.
    const ms = /^\d+$/.test(time) ? null : parseNginxTimeMs(time, true);
    if (ms === null) continue;
    const codes = parts.slice(0, -1).map(Number);
    for (const code of codes.length === 0 ? [200, 301, 302] : codes) if (!out.has(code)) out.set(code, ms);
  }
  return out;
}

/**
 * How long nginx's proxy cache keeps this answer, in ms (0: not stored), as ingress-nginx's auth
 * location has it (no proxy_ignore_headers): the answer's own X-Accel-Expires, then Cache-Control
 * s-maxage / max-age, then Expires set the time for any status; without them the status's time from
 * auth-cache-duration. Set-Cookie, `Vary: *` (or a Vary too long to key), Cache-Control no-cache /
 * no-store / private, max-age=0, an Expires in the past or not a date, and X-Accel-Expires: 0 keep it
 * out. Each header line is read apart, in order, as nginx does: a second Cache-Control line saying
 * max-age=0 keeps the answer out whatever the first said; the first X-Accel-Expires and Expires count.
 */
export function authCacheTtl(
  answer: AuthAnswer,
  statusTimes: ReadonlyMap<number, number>,
  nowMs: number,
): number {
  const h = answer.lines;
  if (answer.failure !== null || (h['set-cookie'] ?? []).length > 0) return 0;
  if (varyNames(answer) === null) return 0;
  const accel = h['x-accel-expires']?.[0];
  if (accel !== undefined) {
    // X-Accel-Expires wins over the other two in whatever order they come; an invalid one is ignored.
    const absolute = accel.startsWith('@');
    const n = atoi(absolute ? accel.slice(1) : accel);
    if (n === 0 && !absolute) return 0;
    if (n !== null && n > 0) return Math.max(absolute ? n * 1000 - nowMs : n * 1000, 0);
  }
  let validUntil: number | null = null;
  for (const control of h['cache-control'] ?? []) {
    const lower = control.toLowerCase();
    if (lower.includes('no-cache') || lower.includes('no-store') || lower.includes('private')) return 0;
    const at = lower.indexOf('s-maxage=');
    const maxAge = at >= 0 ? at + 9 : lower.indexOf('max-age=') + 8;
    if (maxAge < 8) continue;
    const seconds = deltaSeconds(lower.slice(maxAge));
    if (seconds === null || seconds === 0) return 0;
    validUntil = nowMs + seconds * 1000;
  }
  if (validUntil === null) {
    const expires = h.expires?.[0];
    if (expires !== undefined) {
      const at = parseHttpTime(expires);
      if (at === null || at < nowMs) return 0;
      validUntil = at;
    }
  }
  return validUntil !== null ? Math.max(validUntil - nowMs, 0) : (statusTimes.get(answer.status) ?? 0);
}

// nginx's NGX_HTTP_CACHE_VARY_LEN: a longer Vary line is not stored.
const LONGEST_VARY = 128;

/**
 * The request header names an answer's Vary lines list (lower case), by which a cached answer holds
 * for one variant of the request only; null when nothing may be stored (`*`, or a line too long).
 */
function varyNames(answer: AuthAnswer): string[] | null {
  const names: string[] = [];
  for (const line of answer.lines.vary ?? []) {
    if (line.length > LONGEST_VARY) return null;
    for (const item of line.split(',')) {
      const name = item.trim().toLowerCase();
      if (name === '*') return null;
      if (name !== '' && !names.includes(name)) names.push(name);
    }
  }
  return names.sort();
}

/** The values the named headers had in a request: the variant a cached answer was given for. */
function variantOf(names: readonly string[], headers: RequestHeaders): string {
  return JSON.stringify(names.map((name) => headers[name] ?? null));
}

/** nginx's ngx_atoi: digits only, at least one. */
function atoi(text: string): number | null {
  return /^\d+$/.test(text) ? Number(text) : null;
}

/** The seconds of a Cache-Control delta up to `,` `;` or a space; null when other bytes come first. */
function deltaSeconds(text: string): number | null {
  const m = /^(\d*)(?:[,; ]|$)/.exec(text);
  return m === null ? null : Number(m[1] || '0');
}

const AUTH_CACHE_INACTIVE_MS = 30 * 60_000;

type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * A bounded cache of auth answers. An answer with a Vary holds only for requests whose named headers
 * (as the auth service got them) equal those of the request that fetched it, as nginx's cache keeps a
 * variant; another variant is a miss, and its answer replaces the entry.
 */
export class AuthAnswerCache {
  readonly #entries = new Map<
    string,
    { answer: AuthAnswer; expires: number; used: number; vary: string[]; variant: string }
  >();
  readonly maxEntries: number;
  constructor(maxEntries = 10_000) {
    this.maxEntries = maxEntries;
  }

  /** `request`: the headers the auth service would get, asked for only when the answer varies. */
  get(key: string, nowMs: number, request: () => RequestHeaders): AuthAnswer | null {
    const hit = this.#entries.get(key);
    if (hit === undefined) return null;
    if (hit.vary.length > 0 && variantOf(hit.vary, request()) !== hit.variant) return null;
    // ingress-nginx's auth cache zone has inactive=30m: an answer not used for 30 minutes is dropped,
    // however long its own time.
    if (hit.expires <= nowMs || nowMs - hit.used > AUTH_CACHE_INACTIVE_MS) {
      this.#entries.delete(key);
      return null;
    }
    hit.used = nowMs;
    return hit.answer;
  }

  put(key: string, answer: AuthAnswer, ttlMs: number, nowMs: number, request: RequestHeaders): void {
    const vary = varyNames(answer);
    this.#entries.delete(key);
    if (vary === null) return;
    const variant = variantOf(vary, request);
    this.#entries.set(key, { answer, expires: nowMs + ttlMs, used: nowMs, vary, variant });
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }
}
