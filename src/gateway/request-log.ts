// The end of every request: one access log line in the snapshot's format, the request metrics, and
// the in-flight counters released. Also the lines for what never became a request (a refused head,
// plain HTTP on the HTTPS port) and the error log line of an upstream failure.
import type { CompressedResponse } from './compression.ts';
import { hostname } from 'node:os';
import { parseBasicCredentials } from './access/basic-credentials.ts';
import { type AccessLogVars, createAccessLogVars, type TlsFacts } from './access-log.ts';
import { METHODS } from './h1-request.ts';
import type { ConnectionInfo } from './connection.ts';
import { requestContext } from './error-log.ts';
import type { Exchange, GatewayRequest, HandlerContext, UpstreamAttempt } from './exchange.ts';
import type { ProxyFailure } from './proxy.ts';
import { recordResponseTime } from './balance.ts';
import { clientRequestId, newRequestId } from './request-id.ts';
import { type GatewaySnapshot, requestEnded } from './snapshot.ts';

const HOSTNAME = hostname();

/** The client as logs show it: '' (unknown, e.g. after a malformed forwarded header) is `-`. */
export function shownClient(client: string): string {
  return client === '' ? '-' : client;
}

/** `HTTP/<version>` without building the string per request. */
function protocolOf(httpVersion: string): string {
  switch (httpVersion) {
    case '1.1':
      return 'HTTP/1.1';
    case '2.0':
      return 'HTTP/2.0';
    case '1.0':
      return 'HTTP/1.0';
    default:
      return `HTTP/${httpVersion}`;
  }
}

/** The `namespace/name` metric label of an Ingress, made once per Ingress object of a snapshot. */
const ingressLabels = new WeakMap<object, string>();

function ingressLabel(ingress: { namespace: string; name: string }): string {
  let label = ingressLabels.get(ingress);
  if (label === undefined) {
    label = `${ingress.namespace}/${ingress.name}`;
    ingressLabels.set(ingress, label);
  }
  return label;
}

export function requestLineOf(req: GatewayRequest): string {
  return `${req.method ?? ''} ${req.url ?? ''} HTTP/${req.httpVersion}`;
}

const METHOD_TOKEN = /^[A-Z_-]+$/;
const PROTOCOL = /^HTTP\/\d\.\d$/;

/**
 * The method, target and protocol of a request line keepip refused, as the client sent them; null
 * for a part it cannot tell (all of them when the line does not start with a method), never a default.
 */
function requestLineParts(line: string): {
  method: string | null;
  target: string | null;
  protocol: string | null;
} {
  const words = line.split(' ').filter((word) => word !== '');
  if (!METHOD_TOKEN.test(words[0] ?? '')) return { method: null, target: null, protocol: null };
  const protocol = words.length >= 3 && PROTOCOL.test(words.at(-1)!) ? words.at(-1)! : null;
  const targetWords = words.slice(1, protocol === null ? undefined : -1);
  return {
    method: words[0]!,
    target: targetWords.length === 0 ? null : targetWords.join(' '),
    protocol,
  };
}

/** Bytes of the request line and headers as received (nginx's $request_length without the body). */
function headerLength(req: GatewayRequest): number {
  let length = (req.method?.length ?? 0) + (req.url?.length ?? 0) + 12; // spaces, HTTP/x.y, CRLF
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) length += (raw[i]?.length ?? 0) + (raw[i + 1]?.length ?? 0) + 4;
  return length + 2;
}

/** $upstream_connect_time and $upstream_header_time of an attempt: one it never reached is its whole time, as nginx prints it. */
function connectSecondsOf(a: UpstreamAttempt): number {
  return a.connectSeconds ?? a.seconds;
}

function headerSecondsOf(a: UpstreamAttempt): number {
  return a.headerSeconds ?? a.seconds;
}

/**
 * $upstream_addr, $upstream_status, $upstream_{connect,header,response}_time and
 * $upstream_response_length. A connect or header time the attempt never reached is its whole time, as
 * nginx prints it (ngx_http_upstream_response_time_variable).
 */
function setUpstreamVars(
  attempts: readonly UpstreamAttempt[],
  upstreamBytes: number | null,
  vars: AccessLogVars,
): void {
  if (attempts.length === 0) return;
  const first = attempts[0] as UpstreamAttempt;
  if (attempts.length === 1) {
    // The usual case, without the lists' closures and joins.
    vars.upstreamAddr = first.addr ?? first.hostPort;
    vars.upstreamStatus = first.status === null ? '-' : first.status;
    vars.upstreamResponseTimeMs = first.seconds * 1000;
    vars.upstreamConnectTimeMs = connectSecondsOf(first) * 1000;
    vars.upstreamHeaderTimeMs = headerSecondsOf(first) * 1000;
  } else {
    vars.upstreamAddr = attempts.map((a) => a.addr ?? a.hostPort).join(', ');
    vars.upstreamStatus = attempts.map((a) => (a.status === null ? '-' : String(a.status))).join(', ');
    vars.upstreamResponseTimeMs = attempts.map((a) => a.seconds.toFixed(3)).join(', ');
    vars.upstreamConnectTimeMs = attempts.map((a) => connectSecondsOf(a).toFixed(3)).join(', ');
    vars.upstreamHeaderTimeMs = attempts.map((a) => headerSecondsOf(a).toFixed(3)).join(', ');
  }
  vars.upstreamResponseLength = upstreamBytes;
}

/**
 * The upstream metric of each attempt, and with load-balance ewma the response times of those that
 * got an answer, fed to their endpoint's average.
 */
function recordAttempts(ctx: HandlerContext, ex: Exchange): void {
  const attempts = ex.attempts;
  if (attempts.length === 0) return;
  for (const attempt of attempts) ctx.metrics.upstreamDuration(ex.upstreamName ?? '', attempt.seconds);
  const ewma = ex.ewmaUpstream;
  if (ewma !== null) {
    const now = performance.now();
    for (const a of attempts)
      if (a.status !== null) recordResponseTime(ewma, a.hostPort, a.seconds * 1000, now);
  }
}

/** The connection's part of a log line: who connected, through which PROXY header, to which listener. */
function setConnectionVars(vars: AccessLogVars, conn: ConnectionInfo): void {
  vars.remotePort = conn.proxyPort ?? conn.peerPort;
  vars.realipRemoteAddr = conn.peerAddress;
  vars.proxyProtocolAddr = conn.proxySource;
  vars.proxyProtocolPort = conn.proxyPort;
  vars.scheme = conn.scheme;
  vars.serverAddr = conn.serverAddress;
  vars.serverPort = conn.serverPort;
  vars.connection = conn.id;
  vars.connectionRequests = conn.requests;
  vars.hostname = HOSTNAME;
}

/** The TLS socket under a request for $ssl_* (an HTTP/2 request's is its session's); null over plain HTTP. */
function tlsOf(socket: unknown): TlsFacts | null {
  return typeof (socket as Partial<TlsFacts>).getProtocol === 'function' ? (socket as TlsFacts) : null;
}

/**
 * $remote_user: the user of the client's Basic credentials, verified or not, as nginx's
 * ngx_http_auth_basic_user reads it for the log; null (`-`) without them or with an empty name.
 */
function remoteUserOf(authorization: string | string[] | undefined): string | null {
  if (authorization === undefined) return null;
  return parseBasicCredentials(authorization)?.user || null;
}

/** Ends an exchange once its body is out: a compressed one with the bytes the client got ($body_bytes_sent). */
export function completeWhenSent(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  compressed: CompressedResponse | null,
  status: number,
  bodyBytesSent: number,
): void {
  if (compressed === null) completeExchange(ctx, ex, req, status, bodyBytesSent);
  else compressed.whenSent(bodyBytesSent, (bytes) => completeExchange(ctx, ex, req, status, bytes));
}

/**
 * Ends an exchange once: the access log line, the metrics, and the in-flight counters released (also
 * when recording throws, so a drain never waits on a request that is gone).
 */
export function completeExchange(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  status: number,
  bodyBytesSent: number,
): void {
  if (ex.ended) return;
  ex.ended = true;
  try {
    recordExchange(ctx, ex, req, status, bodyBytesSent);
  } finally {
    ctx.active.count -= 1;
    requestEnded(ex.snap);
  }
}

/**
 * The variables of `ex`'s access log line, as they stand when `status` and `bodyBytesSent` are known:
 * at the end of the exchange, or when its head is written (add-headers values: header-templates.ts).
 */
export function exchangeVars(
  ex: Exchange,
  req: GatewayRequest,
  status: number,
  bodyBytesSent: number,
): AccessLogVars {
  const { conn, route } = ex;
  const vars = createAccessLogVars();
  setConnectionVars(vars, conn);
  vars.remoteAddr = shownClient(ex.client);
  vars.timeMs = Date.now();
  vars.request = ex.requestLine;
  vars.remoteUser = remoteUserOf(req.headers.authorization);
  if (conn.scheme === 'https') vars.tls = tlsOf(req.socket);
  vars.response = ex.res;
  // While the proxy runs (a head written now), its outcome so far.
  const live = ex.proxying;
  vars.upstreamHead = live === null ? ex.upstreamHead : (live.upstreamHead ?? null);
  vars.clientCertificate = ex.clientCertificate;
  vars.requestMethod = req.method ?? '';
  vars.requestUri = ex.requestUri !== '' ? ex.requestUri : (req.url ?? '');
  vars.uri = ex.uri;
  vars.serverProtocol = protocolOf(req.httpVersion);
  vars.status = status;
  vars.bodyBytesSent = bodyBytesSent + (ex.res?.framingBytes ?? 0);
  vars.bytesSent = Math.max(vars.bodyBytesSent, req.socket.bytesWritten - ex.bytesBefore);
  vars.requestLength = req.wireBytes ?? headerLength(req) + ex.bodyBytes;
  // nginx sets a chunked body's length once it has read it whole ($content_length).
  if (req.complete && req.headers['transfer-encoding'] !== undefined) vars.chunkedBodyBytes = ex.bodyBytes;
  vars.requestTimeMs = performance.now() - ex.startedAt;
  vars.headers = req.headers;
  vars.cookieRequest = req;
  vars.host = ex.host;
  vars.serverName = ex.serverName;
  vars.proxyUpstreamName = ex.upstreamName;
  if (ex.alternativeUpstreamName !== null) vars.proxyAlternativeUpstreamName = ex.alternativeUpstreamName;
  vars.reqId = ex.reqId;
  vars.reqIdIsOwn = ex.reqId !== '' && clientRequestId(req.headers) === null;
  vars.requestId = ex.requestId;
  setUpstreamVars(live === null ? ex.attempts : live.attempts, ex.upstreamBytes, vars);
  if (route !== null) {
    const location = route.location;
    vars.namespace = location.ingress.namespace;
    vars.ingressName = location.ingress.name;
    vars.locationPath = location.path;
    if (location.backend !== null) {
      vars.serviceName = location.backend.service.name;
      vars.servicePort = location.backend.port;
    }
  }
  return vars;
}

/** The access log line, metrics, trace and decision of an ending exchange. */
function recordExchange(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  status: number,
  bodyBytesSent: number,
): void {
  const { snap, route } = ex;
  if (ex.access !== null) {
    // The limit-connections slot is held until the request ends, as nginx's limit_conn.
    ex.access.release?.();
    ex.access.release = null;
  }
  const vars = exchangeVars(ex, req, status, bodyBytesSent);
  recordAttempts(ctx, ex);
  // enable-access-log "false" on the location, disable-access-log in the ConfigMap: no line.
  if (ex.accessLog && route?.location.accessLog !== false && snap.settings.disableAccessLog !== true)
    ctx.accessLog.write(snap.formatAccessLine(vars));
  ctx.metrics.request(
    route === null ? '' : ingressLabel(route.location.ingress),
    // The matched server even when no location answered (app-root, block-user-agents); `_` is the default.
    ex.serverName,
    status,
    req.httpVersion === '2.0' ? 'HTTP/2.0' : req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1',
  );
  if (ex.metricsHost !== null)
    recordIngressNginxMetrics(ctx, snap, route, vars, ex.metricsHost, ex.attempts.at(-1) ?? null);
  ctx.tracing?.finish(ex, req, status);
  const decisions = ctx.decisions;
  if (decisions !== undefined) decisions.record(ex, req, status);
}

/**
 * nginx_ingress_controller_requests and its histograms, from the access log line's values; the
 * upstream times are the last attempt's, the answer the client got.
 */
function recordIngressNginxMetrics(
  ctx: HandlerContext,
  snap: GatewaySnapshot,
  route: Exchange['route'],
  vars: AccessLogVars,
  host: string,
  last: UpstreamAttempt | null,
): void {
  ctx.metrics.ingressNginx.record(snap.topology.gateway.requestMetrics, {
    location: route?.location ?? null,
    host,
    // Rules without a host are served by the default server `_`, which no Ingress names.
    hostDefined: host !== '_',
    // HTTP/2 takes any upper-case token: one series per invented method would grow without bound.
    method: vars.requestMethod !== null && METHODS.has(vars.requestMethod) ? vars.requestMethod : 'OTHER',
    status: vars.status,
    canary: vars.proxyAlternativeUpstreamName,
    requestSeconds: vars.requestTimeMs / 1000,
    // No backend answer (refused, reset, timed out before a head): no response time.
    upstreamSeconds: last === null || last.headerSeconds === null ? null : last.seconds,
    connectSeconds: last === null ? null : connectSecondsOf(last),
    headerSeconds: last === null ? null : headerSecondsOf(last),
    requestLength: vars.requestLength,
    bytesSent: vars.bytesSent,
  });
}

/**
 * nginx's `client sent invalid request` line for a request keepip refuses with a 400 and a code
 * (`server` / `host`: where it got, `_` and '' before a server was chosen).
 */
export function logInvalidRequest(
  ctx: HandlerContext,
  ex: Exchange,
  refusal: { code: string; message: string },
  at: { server: string; host: string },
): void {
  const context = requestContext({ client: shownClient(ex.client), request: ex.requestLine, ...at });
  ctx.errorLog.write(
    'info',
    ex.conn.id,
    `client sent invalid request (${refusal.code}: ${refusal.message})${context}`,
  );
}

/** The access log line and metrics for a request that never reached the pipeline. */
export function logBareRequest(
  ctx: HandlerContext,
  conn: ConnectionInfo,
  request: string,
  status: number,
  bodyBytes: number,
  headers: Record<string, string | string[] | undefined>,
  /** The bytes read of it ($request_length), when more than its request line. */
  requestLength: number = request.length,
): void {
  const vars = createAccessLogVars();
  setConnectionVars(vars, conn);
  vars.connectionRequests = conn.requests + 1; // a request that began no exchange, counted as nginx does
  vars.remoteAddr = conn.proxySource ?? conn.peerAddress;
  vars.timeMs = Date.now();
  vars.request = request;
  const parts = requestLineParts(request);
  vars.requestMethod = parts.method;
  vars.requestUri = parts.target;
  vars.serverProtocol = parts.protocol;
  vars.status = status;
  vars.bodyBytesSent = bodyBytes;
  vars.bytesSent = bodyBytes;
  vars.requestLength = requestLength;
  vars.headers = headers;
  vars.reqId = newRequestId();
  vars.reqIdIsOwn = true;
  const snap = ctx.current();
  if (snap.settings.disableAccessLog !== true) ctx.accessLog.write(snap.formatAccessLine(vars));
  ctx.metrics.request('', '_', status, / HTTP\/(1\.0|1\.1|2\.0)$/.exec(request)?.[0].slice(1) ?? '');
}

/** nginx's error log line for a failed upstream attempt (or a warning about a backend's answer). */
export function logUpstreamFailure(ctx: HandlerContext, ex: Exchange, failure: ProxyFailure): void {
  ctx.errorLog.write(
    failure.level ?? 'error',
    ex.conn.id,
    failure.message +
      requestContext({
        client: shownClient(ex.client),
        server: ex.serverName,
        request: ex.requestLine,
        upstream: failure.upstreamUrl,
        host: ex.rawHost,
      }),
  );
}
