// The shapes the request pipeline works on, apart from any one engine or stage: what it reads from a
// request, what it does with a response, the entry points an HTTP server side calls, and the exchange
// that one request carries from its start to its access log line.
import type { IncomingHttpHeaders } from 'node:http';
import type { TracingSettings } from '../config/model.ts';
import type { Duplex } from 'node:stream';
import type { ClientCertificateView } from './access/client-cert.ts';
import type { AccessState } from './access/state.ts';
import type { ClientIp } from '../net/client-ip.ts';
import type { ConnectionInfo } from './connection.ts';
import type { ErrorLog } from './error-log.ts';
import type { LineSink } from './line-sink.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { BodyBuffers } from './request-body-buffer.ts';
import type { Mirrors } from './mirror-sender.ts';
import type { MatchedRoute } from './router.ts';
import type { GatewaySnapshot } from './snapshot.ts';
import type { SpanContext } from './trace-context.ts';
import type { BalancedUpstream } from './upstream.ts';

/** What the pipeline reads from a request. */
export interface GatewayRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly httpVersion: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly socket: Duplex & { readonly bytesWritten: number };
  readonly complete: boolean;
  /**
   * The bytes of this request read from the wire so far: its head as sent and its body with the
   * chunk framing (nginx's $request_length); absent where the engine does not see them (HTTP/2).
   */
  readonly wireBytes?: number;
  /** Discards the rest of the body. */
  resume(): unknown;
  /**
   * The body limit (proxy-body-size): a chunked body whose chunk sizes announce more fails at once
   * with CLIENT_BODY_TOO_LARGE, before its bytes come (HTTP/1.1; nginx answers 413 on the size line).
   */
  limitBody?(bytes: number): void;
  /**
   * The connection ends after this request's answer. HTTP/1.1 says it in the answer (`connection:
   * close`); an HTTP/2 session gets GOAWAY once the stream closes, the streams in flight finishing.
   */
  endConnectionAfter?(): void;
  [Symbol.asyncIterator](): AsyncIterator<Buffer>;
}

/** What the pipeline does with a response. */
export interface GatewayResponse {
  statusCode: number;
  statusMessage: string;
  shouldKeepAlive: boolean;
  readonly headersSent: boolean;
  readonly writableFinished: boolean;
  /** Bytes of chunk framing written around the body so far (HTTP/1.1): nginx's $body_bytes_sent counts them. */
  readonly framingBytes?: number;
  writeHead(
    statusCode: number,
    statusMessage: string,
    headers: Record<string, string | number | string[]>,
  ): this;
  writeHead(statusCode: number, headers?: Record<string, string | number | string[]>): this;
  /**
   * The head from a flat list of lower-case names and values (an upstream's fields, hop-by-hop ones
   * left out), without a header object. Only some engines have it (HTTP/1.1); a stage that wraps
   * writeHead for one response hides it (hideHeadFields), so every head goes through the wrapper.
   */
  writeHeadFields?: ((statusCode: number, fields: readonly string[]) => unknown) | undefined;
  /** What the written head carried under a lower-case name ($sent_http_<name>); null without it. */
  sentHeader?(name: string): string | null;
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer): unknown;
  destroy(): unknown;
  once(event: 'close' | 'drain', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/** A stage wrapped `res.writeHead` for this response: the flat-field shortcut must not bypass it. */
export function hideHeadFields(res: GatewayResponse): void {
  res.writeHeadFields = undefined;
}

/** A request the HTTP/1.1 parser refused, with the status to answer and the bytes it saw. */
export type ClientError = Error & { code?: string; rawPacket?: Buffer; statusCode?: number };

/** The pipeline's entry points, called by an HTTP server side. */
export interface RequestHandler {
  onRequest(req: GatewayRequest, res: GatewayResponse): void;
  onUpgrade(req: GatewayRequest, socket: Duplex, head: Buffer): void;
  /** The server side could not parse a request (a PROXY header on a listener not configured for one: 400). */
  onClientError(error: ClientError, socket: Duplex): void;
  /** A plain HTTP request on the HTTPS listener: nginx's 400 "The plain HTTP request was sent to HTTPS port". */
  onPlainHttpOnHttps(req: GatewayRequest, res: GatewayResponse): void;
  /** An HTTP/2 stream refused before the pipeline (431: headers over http2-max-*, 400: CONNECT): its answer and log lines. */
  onRefusedRequest(req: GatewayRequest, res: GatewayResponse, status: number, reason: string): void;
  /** An HTTP/2 stream the client reset in the read that brought it: not routed, its 499 access line. */
  onResetRequest(req: GatewayRequest): void;
}

/** The entry points an HTTP/1.1 server side calls (the plain-HTTP-on-HTTPS server gives its own onRequest). */
export type H1Handler = Pick<RequestHandler, 'onRequest' | 'onUpgrade' | 'onClientError'>;

export interface HandlerContext {
  /** The snapshot new requests start on. */
  current(): GatewaySnapshot;
  metrics: GatewayMetrics;
  accessLog: LineSink;
  errorLog: ErrorLog;
  /** While draining, every response closes its connection. */
  isDraining(): boolean;
  /** Requests being served, across snapshots (drain waits for 0). */
  active: { count: number };
  /** Sees every request that ends (the dashboard); absent by default, which costs one check per request. */
  decisions?: DecisionSink | undefined;
  /** Where buffered request bodies go (proxy-request-buffering); absent: os.tmpdir() and the default memory cap. */
  bodyBuffers?: BodyBuffers | undefined;
  /** mirror-target's copies in flight (mirror-sender.ts); absent: one set made for this context. */
  mirrors?: Mirrors | undefined;
  /** OpenTelemetry spans of the locations that trace (tracing.ts); absent: none. */
  tracing?: Tracing | undefined;
}

/** A request's OpenTelemetry span while it runs (tracing.ts). */
export interface RequestSpan {
  context: SpanContext;
  /** '' when the span starts a trace. */
  parentSpanId: string;
  name: string;
  startNanos: bigint;
  /** The settings of the request's snapshot, and its version: where the span goes when it ends. */
  settings: TracingSettings;
  version: number;
}

/** OpenTelemetry spans of the locations that trace (tracing.ts). */
export interface Tracing {
  /** The request's span context as `traceparent`/`tracestate` for the backend (when its location traces). */
  inject(ex: Exchange, req: GatewayRequest, headers: Record<string, string | string[]>): void;
  /** Ends the request's span, if it has one (started now when none was needed before). */
  finish(ex: Exchange, req: GatewayRequest, status: number): void;
  /** Exports what is queued and stops. */
  close(): Promise<void>;
}

/**
 * An observer of finished requests. It runs on the data path: record() must be O(1), never throw and
 * never wait (copy what it needs, sample under load, do any I/O later).
 */
export interface DecisionSink {
  record(ex: Exchange, req: GatewayRequest, status: number): void;
}

/**
 * The verdict of the stage that admitted or refused a request. An AccessDecision (the source lists,
 * src/net/access-policy.ts) is one; a later stage (auth, rate limits) may set its own rule name.
 */
export interface ExchangeVerdict {
  readonly outcome: string;
  readonly rule: string;
  readonly entry: string | null;
  readonly detail: string;
}

/** Why forwarding a request failed (the gateway's error codes for upstream outcomes). */
export type ProxyFailureCode =
  | 'UPSTREAM_CONNECT_REFUSED'
  | 'UPSTREAM_CONNECT_TIMEOUT'
  | 'UPSTREAM_READ_TIMEOUT'
  | 'UPSTREAM_SEND_TIMEOUT'
  | 'UPSTREAM_CLOSED'
  | 'UPSTREAM_ERROR'
  | 'UPSTREAM_INVALID_HEADER'
  | 'UPSTREAM_EXTRA_DATA'
  | 'CLIENT_BODY_TOO_LARGE'
  | 'CLIENT_BODY_TIMEOUT'
  | 'CLIENT_BODY_INVALID'
  | 'CLIENT_BODY_BUFFER_FAILED'
  | 'CLIENT_CLOSED';

/**
 * One try of one upstream endpoint: $upstream_addr, $upstream_status, $upstream_connect_time,
 * $upstream_header_time, $upstream_response_time.
 */
export interface UpstreamAttempt {
  /** The member's "address:port" (a name for an ExternalName member). */
  hostPort: string;
  /**
   * "ip:port" actually connected to, once known (an ExternalName member's resolved address): what
   * $upstream_addr shows. Null until then; set when the attempt is made, so every attempt has one shape.
   */
  addr: string | null;
  status: number | null;
  /** From the attempt's start to its end (the response's last byte, or the failure). */
  seconds: number;
  /** Until the connection was up (0 on a kept-alive one); null when it never was (nginx then logs `seconds`). */
  connectSeconds: number | null;
  /** Until the response head arrived; null without one (nginx then logs `seconds`). */
  headerSeconds: number | null;
}

/** A new attempt at `hostPort`, every field present (one shape for all). */
export function newUpstreamAttempt(hostPort: string): UpstreamAttempt {
  return { hostPort, addr: null, status: null, seconds: 0, connectSeconds: null, headerSeconds: null };
}

/** What one request carries from its start to its access log line. */
export interface Exchange {
  snap: GatewaySnapshot;
  conn: ConnectionInfo;
  startedAt: number;
  bytesBefore: number;
  client: string;
  requestLine: string;
  /** nginx's $uri: the decoded, normalised path routing used; after a rewrite-target, the rewritten one. */
  uri: string | null;
  /**
   * nginx's $request_uri: the target's path and query as received, in origin form (`/admin` for
   * `GET http://host/admin`); '' before the target is read.
   */
  requestUri: string;
  /** The host the request is routed and forwarded by, as received (Host header or absolute-form authority). */
  rawHost: string;
  /** $best_http_host: the Host, or the trusted X-Forwarded-Host's first entry (use-forwarded-headers). */
  bestHost: string;
  /** $host: normalised host name. */
  host: string;
  serverName: string;
  reqId: string;
  /** $request_id when reqId is the client's: drawn once, when a header template or the log first asks. */
  requestId: string | null;
  route: MatchedRoute | null;
  upstreamName: string | null;
  attempts: UpstreamAttempt[];
  /** The proxy's outcome while it fills it (attempts, the backend's head), for a head written meanwhile. */
  proxying: { readonly attempts: UpstreamAttempt[]; readonly upstreamHead?: Exchange['upstreamHead'] } | null;
  upstreamBytes: number | null;
  bodyBytes: number;
  /** How the client address was found (socket, PROXY header, a forwarded header's entry); null before admission. */
  clientIp: ClientIp | null;
  /** The access verdict, and the route whose rules gave it (a guard's when a guard refused); null when none ran. */
  verdict: ExchangeVerdict | null;
  decidedBy: MatchedRoute | null;
  /** Set by the access stage of a location with limits or auth (access/stage.ts). */
  access: AccessState | null;
  /** False when this request gets no access log line (enable-access-log-for-default-backend, enable-access-log). */
  accessLog: boolean;
  /** $proxy_alternative_upstream_name: the canary's upstream when the request went there; null otherwise. */
  alternativeUpstreamName: string | null;
  /** load-balance ewma: the upstream whose response times this request's attempts feed; null otherwise. */
  ewmaUpstream: BalancedUpstream | null;
  /** affinity: the Set-Cookie of a sticky session picked for this request; null when none. */
  setCookie: string | null;
  /** Headers every response to this request carries, replacing the backend's (add-headers, custom-headers, enable-cors); null: none. */
  responseHeaders: Readonly<Record<string, string>> | null;
  /** The request's OpenTelemetry span: undefined until asked for, null when its location does not trace. */
  span: RequestSpan | null | undefined;
  /** The response, for the log line's $sent_http_<name>; null for an upgrade (its answer is the backend's bytes). */
  res: GatewayResponse | null;
  /** True once completeExchange() ran: a request is logged, counted and released once. */
  ended: boolean;
  /**
   * The host label of ingress-nginx's request metrics once a location was found (nginx's find-config:
   * only a location runs log_by_lua, monitor.lua): the server name, or the exact server-alias the
   * request named. null: answered before any location (a bad request, a server-level redirect), not counted.
   */
  metricsHost: string | null;
  /** The last backend answer's head as it came ($upstream_http_<name>); null without one. */
  upstreamHead: { sentHeader(name: string): string | null } | null;
  /** The client certificate as auth-tls checked it ($ssl_client_verify, _s_dn, _i_dn); null on hosts without auth-tls. */
  clientCertificate: ClientCertificateView | null;
}

const NO_ATTEMPTS: UpstreamAttempt[] = [];

/** Starts an exchange on `snap`: counted in flight until completeExchange() (request-log.ts). */
export function beginExchange(
  ctx: HandlerContext,
  req: GatewayRequest,
  res: GatewayResponse | null,
  snap: GatewaySnapshot,
  conn: ConnectionInfo,
): Exchange {
  snap.inflight += 1;
  ctx.active.count += 1;
  conn.requests += 1;
  return {
    snap,
    conn,
    startedAt: performance.now(),
    bytesBefore: req.socket.bytesWritten,
    client: conn.peerAddress,
    requestLine: '',
    uri: null,
    requestUri: '',
    rawHost: '',
    bestHost: '',
    host: '',
    serverName: '_',
    reqId: '',
    requestId: null,
    route: null,
    upstreamName: null,
    attempts: NO_ATTEMPTS,
    proxying: null,
    upstreamBytes: null,
    bodyBytes: 0,
    clientIp: null,
    verdict: null,
    decidedBy: null,
    access: null,
    accessLog: true,
    alternativeUpstreamName: null,
    setCookie: null,
    ewmaUpstream: null,
    responseHeaders: null,
    span: undefined,
    res,
    ended: false,
    metricsHost: null,
    upstreamHead: null,
    clientCertificate: null,
  };
}
