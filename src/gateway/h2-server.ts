// keepip's HTTP/2 server side, for TLS connections that chose `h2` in ALPN and plain ones that open
// with the HTTP/2 preface (prior knowledge, as nginx's `http2 on`), both with use-http2. node:http2
// (nghttp2) does the framing, HPACK and flow control; every stream is adapted to the pipeline's
// GatewayRequest/GatewayResponse (h2-stream.ts) and runs through the same handler as an HTTP/1.1
// request. The connection's PROXY header and TLS facts (connection.ts) apply to each of its streams.
//
// Against abuse (docs/gateway.md, "HTTP/2 limits"): nghttp2 already closes a connection on
// CONTINUATION floods, invalid frames, refused streams beyond SETTINGS_MAX_CONCURRENT_STREAMS and
// unread PING/SETTINGS acknowledgements; on top of it, per connection (h2-guard.ts):
//   - new streams are handed to the pipeline after the read that brought them, so a stream the
//     client resets in the same read (rapid reset, CVE-2023-44487) costs no routing and no backend;
//     streams reset before their response are counted and a connection made of them is closed;
//   - PING and SETTINGS frames draw from a bucket; an empty bucket closes the connection;
//   - a connection whose bytes read outweigh its requests 8 to 1 (beyond 1 MiB) is closed, as nginx's
//     "http2 flood detected": WINDOW_UPDATE, PRIORITY or unknown frames never reach JavaScript;
//   - the header list and each field are checked against http2-max-header-size / -field-size (431),
//     also before the client acknowledged our SETTINGS (nghttp2 enforces them only after);
//   - keep-alive-requests streams per connection, then GOAWAY; the header and keep-alive deadlines
//     per connection, client_body_timeout and send_timeout per stream.
// Abuse closes are a GOAWAY ENHANCE_YOUR_CALM, an error log line and
// keepip_gateway_http2_connections_closed_total{reason}; graceful ones a GOAWAY NO_ERROR.
import http2, { type Http2Server, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type net from 'node:net';
import tls from 'node:tls';
import { Counter, type Registry } from 'prom-client';
import { DEFAULT_HTTP2_ABUSE_LIMITS, type Http2AbuseLimits, type Http2Settings } from '../config/http2.ts';
import { type ClientTimeouts, type ConnectionCloseReason, sweepPeriodMs } from './client-timeouts.ts';
import { type ConnectionInfo, connectionOf } from './connection.ts';
import type { ErrorLog } from './error-log.ts';
import type { GatewayRequest, GatewayResponse } from './exchange.ts';
import { type Http2AbuseKind, Http2Guard } from './h2-guard.ts';
import { H2Request, H2Response } from './h2-stream.ts';
import { repeatedOnceOnlyField } from './unique-fields.ts';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_CANCEL } = http2.constants;

/** The pipeline's entry points an HTTP/2 server side calls. */
export interface H2Handler {
  onRequest(req: GatewayRequest, res: GatewayResponse): void;
  /** A stream refused before the pipeline (431, CONNECT): the answer, its access and error log lines. */
  onRefusedRequest(req: GatewayRequest, res: GatewayResponse, status: number, reason: string): void;
  /** A stream the client reset in the read that brought it: never routed, logged 499 as nginx logs it. */
  onResetRequest?(req: GatewayRequest): void;
}

export interface H2ServerOptions {
  abuse?: Http2AbuseLimits;
  /** A deadline closed a stream or a connection (keepip_gateway_connections_closed_total). */
  onDeadline(reason: ConnectionCloseReason): void;
  errorLog: ErrorLog;
  /** Where keepip_gateway_http2_connections_closed_total is registered. */
  registry: Registry;
}

export interface H2Server {
  /**
   * Serves HTTP/2 on a TLS socket whose handshake chose `h2`, or a plain one that opened with the
   * preface. The deadlines: header (first stream), keep-alive (idle between streams), body and send
   * per stream, as for HTTP/1.1.
   */
  serve(socket: net.Socket, settings: Http2Settings, timeouts: ClientTimeouts): void;
  /** Sends GOAWAY on every connection: streams in flight finish, no new ones start (drain). */
  closeIdle(): void;
  destroyAll(): void;
}

/** How long a connection closed for abuse or idleness (or a stalled write) lingers before it is destroyed (see #close). */
const ABUSE_LINGER_MS = 1_000;

/** The most a request's header list counts towards the frame-flood allowance (a large real head). */
const HEAD_CREDIT_BYTES = 8 * 1024;

/** How often every connection's frame-flood rule is checked: a flood is cut within this. */
const FLOOD_SWEEP_MS = 100;

type CloseReason = Http2AbuseKind | 'max-requests' | 'idle' | 'protocol-error' | 'drain' | 'connection-close';

interface PendingStream {
  stream: ServerHttp2Stream;
  headers: http2.IncomingHttpHeaders;
  raw: string[];
}

interface Conn {
  readonly session: Http2Session;
  readonly socket: net.Socket;
  readonly info: ConnectionInfo;
  readonly settings: Http2Settings;
  readonly timeouts: ClientTimeouts;
  readonly guard: Http2Guard;
  /** Streams handed to the pipeline and not closed yet: their body and send deadlines. */
  readonly live: Set<H2Response>;
  /** Streams received in the current read, handed to the pipeline once the read is processed. */
  pending: PendingStream[];
  /** Streams not closed yet (handed over or not). */
  active: number;
  /** The header or keep-alive deadline; 0 while streams are open. */
  deadline: number;
  closing: boolean;
}

const closedCounters = new WeakMap<Registry, Counter<'reason'>>();

function closedCounter(registry: Registry): Counter<'reason'> {
  let counter = closedCounters.get(registry);
  if (counter === undefined) {
    counter = new Counter({
      name: 'keepip_gateway_http2_connections_closed_total',
      help: 'HTTP/2 connections closed by the gateway, by reason (abuse limits, keep-alive-requests, idle, drain)',
      labelNames: ['reason'] as const,
      registers: [registry],
    });
    closedCounters.set(registry, counter);
  }
  return counter;
}

/** An error log text with its stable code (src/gateway/errors.ts): `what (CODE: detail)`. */
function coded(code: H2Code, what: string, detail: string): string {
  return `${what} (${code}${detail === '' ? '' : `: ${detail}`})`;
}

/** The codes the HTTP/2 side reports (registered in src/gateway/errors.ts). */
export type H2Code =
  | 'H2_HEADER_FIELD_TOO_LARGE'
  | 'H2_HEADER_LIST_TOO_LARGE'
  | 'H2_CONNECT'
  | 'H2_BAD_METHOD'
  | 'H2_BAD_PATH'
  | 'H2_TRACE'
  | 'H2_DUPLICATE_HEADER'
  | 'H2_HOST_CONFLICT'
  | 'H2_RAPID_RESET'
  | 'H2_CONTROL_FLOOD'
  | 'H2_FRAME_FLOOD'
  | 'H2_PROTOCOL_ERROR';

/**
 * A `:method` nginx takes: upper-case letters, `_` and `-` (nghttp2 lets any token through). It becomes
 * the backend's request line: a backend that upper-cased `post` would run what the gateway took for
 * idempotent (and retried).
 */
function nginxMethod(method: string): boolean {
  for (let i = 0; i < method.length; i++) {
    const c = method.charCodeAt(i);
    if ((c < 0x41 || c > 0x5a) && c !== 0x5f && c !== 0x2d) return false;
  }
  return method.length > 0;
}

/** The decoded header list's size (RFC 9113 §6.5.2) and its largest field (name and value). */
function headerListSize(req: H2Request): { total: number; largestField: number } {
  const raw = req.rawHeaders;
  // Each field counts its name, its value and 32 octets (pseudo-headers included); :path is a field as
  // any other (nginx holds it to one buffer: a long URL is no way around the field limit).
  const path = req.url.length + 5;
  let total = req.method.length + path + 2 + 32 * 3;
  let largestField = path;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const field = (raw[i] as string).length + (raw[i + 1] as string).length;
    if (field > largestField) largestField = field;
    total += field + 32;
  }
  return { total, largestField };
}

/** Why a stream is refused before the pipeline, or null: CONNECT, a bad method, fields over the limits. */
function refusal(
  req: H2Request,
  settings: Http2Settings,
  size: ReturnType<typeof headerListSize>,
): { status: number; reason: string } | null {
  if (req.method === 'CONNECT')
    return { status: 400, reason: coded('H2_CONNECT', 'client sent CONNECT over HTTP/2', '') };
  if (!nginxMethod(req.method))
    return { status: 400, reason: coded('H2_BAD_METHOD', 'client sent invalid method', '') };
  // nghttp2 checks :path only with an http or https :scheme; nginx takes an origin-form one alone, so an
  // absolute URL naming another host than :authority is never routed by it.
  if (req.url.charCodeAt(0) !== 0x2f)
    return { status: 400, reason: coded('H2_BAD_PATH', 'client sent invalid :path header', '') };
  // As nginx (and H1_TRACE): never passed on for a backend to echo.
  if (req.method === 'TRACE')
    return { status: 405, reason: coded('H2_TRACE', 'client sent TRACE method', '') };
  if (req.hostConflict) {
    const reason = 'client sent a Host header that differs from :authority';
    return { status: 400, reason: coded('H2_HOST_CONFLICT', reason, '') };
  }
  const repeated = repeatedOnceOnlyField(req.rawHeaders);
  if (repeated !== null) {
    const reason = `client sent duplicate header line: "${repeated}"`;
    return { status: 400, reason: coded('H2_DUPLICATE_HEADER', reason, '') };
  }
  if (size.largestField > settings.maxFieldSize)
    return {
      status: 431,
      reason: coded(
        'H2_HEADER_FIELD_TOO_LARGE',
        'client sent too large header field',
        'large-client-header-buffers',
      ),
    };
  if (size.total > settings.maxHeaderListSize)
    return {
      status: 431,
      reason: coded(
        'H2_HEADER_LIST_TOO_LARGE',
        'client sent too large request headers',
        'large-client-header-buffers',
      ),
    };
  return null;
}

function codedError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

class H2ServerState implements H2Server {
  readonly #handler: H2Handler;
  readonly #options: H2ServerOptions;
  readonly #limits: Http2AbuseLimits;
  readonly #closed: Counter<'reason'>;
  readonly #conns = new Set<Conn>();
  readonly #responses = new WeakMap<ServerHttp2Stream, H2Response>();
  #server: { key: string; server: Http2Server } | null = null;
  #incoming: { socket: net.Socket; settings: Http2Settings; timeouts: ClientTimeouts } | null = null;
  #sweep: { timer: NodeJS.Timeout; period: number } | null = null;
  /** The frame-flood check of every connection (nginx checks after each read; we can only poll). */
  #floodSweep: NodeJS.Timeout | null = null;

  constructor(handler: H2Handler, options: H2ServerOptions) {
    this.#handler = handler;
    this.#options = options;
    this.#limits = options.abuse ?? DEFAULT_HTTP2_ABUSE_LIMITS;
    this.#closed = closedCounter(options.registry);
  }

  serve(socket: net.Socket, settings: Http2Settings, timeouts: ClientTimeouts): void {
    // node:http2 sets a session up once the socket says its handshake is over; a TLSSocket made by
    // hand (server.ts) never says so itself (tls.Server does this very step).
    if (socket instanceof tls.TLSSocket)
      (socket as tls.TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
    this.#incoming = { socket, settings, timeouts };
    this.#serverFor(settings).emit('connection', socket);
    this.#incoming = null;
  }

  closeIdle(): void {
    for (const conn of this.#conns) this.#close(conn, 'drain', null);
  }

  destroyAll(): void {
    for (const conn of this.#conns) conn.session.destroy();
    this.#conns.clear();
    if (this.#sweep !== null) clearInterval(this.#sweep.timer);
    this.#sweep = null;
    if (this.#floodSweep !== null) clearInterval(this.#floodSweep);
    this.#floodSweep = null;
  }

  /** One node:http2 server per SETTINGS the ConfigMap asks for (a reload may change them). */
  #serverFor(settings: Http2Settings): Http2Server {
    const key = `${settings.maxConcurrentStreams}|${settings.maxHeaderListSize}`;
    if (this.#server !== null && this.#server.key === key) return this.#server.server;
    const server = http2.createServer({
      settings: {
        maxConcurrentStreams: settings.maxConcurrentStreams,
        maxHeaderListSize: settings.maxHeaderListSize,
        enablePush: false,
      },
      // Cookies arrive one crumb per field in HTTP/2: the list size, not the count, is the limit.
      maxHeaderListPairs: Math.ceil(settings.maxHeaderListSize / 32) + 8,
      // With the default (true) nghttp2 drops a field whose value starts or ends with white space, without
      // a word: `user-agent: " BadBot"` passed block-user-agents, and a trusted proxy's X-Forwarded-For
      // so written left the proxy's own address to the access rules. Kept, and trimmed as HTTP/1.1's
      // optional white space is (h2-stream.ts); nginx keeps such a value too.
      strictFieldWhitespaceValidation: false,
    });
    server.on('session', (session: Http2Session) => {
      const taken = this.#incoming;
      this.#incoming = null;
      if (taken === null) session.destroy();
      else this.#adopt(session, taken.socket, taken.settings, taken.timeouts);
    });
    this.#server = { key, server };
    return server;
  }

  #adopt(session: Http2Session, socket: net.Socket, settings: Http2Settings, timeouts: ClientTimeouts): void {
    const info = connectionOf(socket);
    if (info === undefined) {
      session.destroy();
      return;
    }
    const now = performance.now();
    const conn: Conn = {
      session,
      socket,
      info,
      settings,
      timeouts,
      guard: new Http2Guard(this.#limits, settings.maxRequests, now),
      live: new Set(),
      pending: [],
      active: 0,
      deadline: now + timeouts.headerMs,
      closing: false,
    };
    this.#conns.add(conn);
    const onControl = () => {
      if (!conn.closing && conn.guard.controlFrame(performance.now()))
        this.#close(
          conn,
          'control-flood',
          coded('H2_CONTROL_FLOOD', 'client sent too many PING/SETTINGS frames', ''),
        );
    };
    session.on('ping', onControl);
    session.on('remoteSettings', onControl);
    session.on('stream', (stream, headers, _flags, raw) => this.#onStream(conn, stream, headers, raw));
    session.on('error', (error: Error & { code?: string }) => {
      // nghttp2's own limits (CONTINUATION flood, invalid frames, refused streams) end here.
      this.#close(
        conn,
        'protocol-error',
        coded('H2_PROTOCOL_ERROR', 'HTTP/2 protocol error', error.code ?? error.message),
      );
    });
    session.once('close', () => this.#conns.delete(conn));
    // The listeners allow half-open sockets (for HTTP/1.1); an HTTP/2 client that sends FIN is gone.
    socket.once('end', () => session.destroy());
    this.#startSweep(sweepPeriodMs(timeouts));
    if (this.#floodSweep === null) {
      this.#floodSweep = setInterval(() => this.#checkFloods(), FLOOD_SWEEP_MS);
      this.#floodSweep.unref();
    }
  }

  /** Closes the connections whose frames outweigh their requests (h2-guard.ts frameFlood). */
  #checkFloods(): void {
    for (const conn of this.#conns) this.#checkFlood(conn);
    if (this.#conns.size === 0 && this.#floodSweep !== null) {
      clearInterval(this.#floodSweep);
      this.#floodSweep = null;
    }
  }

  #checkFlood(conn: Conn): void {
    const read = conn.socket.bytesRead;
    if (conn.closing || !conn.guard.frameFlood(read)) return;
    const what = `client sent ${read} bytes of HTTP/2 frames for ${conn.guard.payloadBytes} bytes of requests`;
    this.#close(conn, 'frame-flood', coded('H2_FRAME_FLOOD', what, ''));
  }

  #onStream(conn: Conn, stream: ServerHttp2Stream, headers: http2.IncomingHttpHeaders, raw: string[]): void {
    conn.active += 1;
    conn.deadline = 0;
    stream.on('error', () => {});
    stream.once('close', () => this.#onStreamClose(conn, stream));
    if (conn.guard.streamOpened()) this.#close(conn, 'max-requests', null);
    conn.pending.push({ stream, headers, raw });
    if (conn.pending.length === 1) setImmediate(() => this.#dispatch(conn));
  }

  /** Hands the streams of one read to the pipeline; those the client reset meanwhile cost nothing more. */
  #dispatch(conn: Conn): void {
    const batch = conn.pending;
    conn.pending = [];
    for (const { stream, headers, raw } of batch) {
      const req = new H2Request(stream, headers, raw, conn.socket, conn.guard);
      // Reset meanwhile: no routing, no backend (rapid reset costs nothing more); nginx had begun it
      // and logs a 499, and so is it logged here (an attacker's requests do not vanish from the log).
      if (stream.destroyed || stream.closed) {
        this.#handler.onResetRequest?.(req);
        continue;
      }
      const res = new H2Response(stream, req);
      this.#responses.set(stream, res);
      conn.live.add(res);
      const size = headerListSize(req);
      const refused = refusal(req, conn.settings, size);
      // nginx credits a request's header block by its wire bytes, and only a request it processes.
      // The decoded size can be thousands of times the wire's (HPACK references): a refused stream
      // earns nothing, a served one at most HEAD_CREDIT_BYTES, so headers cannot buy a frame flood.
      if (refused === null) conn.guard.payloadBytes += Math.min(size.total, HEAD_CREDIT_BYTES);
      if (refused !== null) this.#handler.onRefusedRequest(req, res, refused.status, refused.reason);
      else this.#handler.onRequest(req, res);
    }
    this.#checkFlood(conn);
  }

  #onStreamClose(conn: Conn, stream: ServerHttp2Stream): void {
    conn.active -= 1;
    if (conn.active === 0) conn.deadline = performance.now() + conn.timeouts.keepAliveMs;
    const res = this.#responses.get(stream);
    if (res !== undefined) conn.live.delete(res);
    if (res?.request.endsConnection === true && !conn.closing) this.#close(conn, 'connection-close', null);
    const premature = res === undefined || (!res.writableFinished && !res.resetByGateway);
    if (!premature || conn.closing || conn.session.destroyed || !conn.guard.streamReset()) return;
    const { prematureResets, streams } = conn.guard;
    this.#close(
      conn,
      'rapid-reset',
      coded(
        'H2_RAPID_RESET',
        `client reset ${prematureResets} of ${streams} streams before their response`,
        'CVE-2023-44487',
      ),
    );
  }

  #close(conn: Conn, reason: CloseReason, detail: string | null): void {
    if (conn.closing) return;
    conn.closing = true;
    this.#closed.labels(reason).inc();
    const { info } = conn;
    if (detail !== null)
      this.#options.errorLog.write(
        'info',
        info.id,
        `${detail}, closing HTTP/2 connection, client: ${info.proxySource ?? info.peerAddress}, server: ${info.serverAddress}:${info.serverPort}`,
      );
    if (reason === 'rapid-reset' || reason === 'control-flood' || reason === 'frame-flood') {
      // GOAWAY, then a short linger before the close: closing a socket with the flood still unread
      // sends a TCP reset, which makes the client's kernel drop the GOAWAY unread. Meanwhile nghttp2
      // opens no new stream (GOAWAY sent) and nothing reaches the pipeline.
      const { session } = conn;
      session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
      setTimeout(() => session.destroy(), ABUSE_LINGER_MS).unref();
      return;
    }
    // Graceful: GOAWAY with the last stream taken; the streams in flight finish (each bounded by its
    // body and send deadlines), then the session closes itself.
    conn.session.close();
    // Idle means no stream in flight: a header block left unfinished would hold the graceful close
    // open for ever (nghttp2 counts its stream as taken), so the connection ends after a linger.
    if (reason === 'idle') {
      const { session } = conn;
      setTimeout(() => session.destroy(), ABUSE_LINGER_MS).unref();
    }
  }

  #startSweep(period: number): void {
    if (this.#sweep !== null && this.#sweep.period <= period) return;
    if (this.#sweep !== null) clearInterval(this.#sweep.timer);
    const timer = setInterval(() => this.#check(), period);
    timer.unref();
    this.#sweep = { timer, period };
  }

  #check(): void {
    const now = performance.now();
    for (const conn of this.#conns) {
      if (conn.active === 0 && conn.deadline !== 0 && now >= conn.deadline && !conn.closing) {
        this.#options.onDeadline(conn.guard.streams === 0 ? 'header_timeout' : 'keepalive_timeout');
        this.#close(conn, 'idle', null);
      }
      for (const res of conn.live) this.#checkStream(conn, res, now);
    }
    if (this.#conns.size === 0 && this.#sweep !== null) {
      clearInterval(this.#sweep.timer);
      this.#sweep = null;
    }
  }

  /** send_timeout: response bytes the client leaves untaken; client_body_timeout: a body that stalls. */
  #checkStream(conn: Conn, res: H2Response, now: number): void {
    const { timeouts } = conn;
    const due = res.blockedSince !== 0 && now - res.blockedSince >= timeouts.sendMs;
    // A tail the client took since the stream ended is no wait (H2Response.#watchTail).
    if (due && !res.waitsForWindow()) res.blockedSince = 0;
    else if (due) {
      conn.live.delete(res);
      this.#options.onDeadline('send_timeout');
      res.destroy();
      // A client that reads nothing at all cannot even be sent the reset, and the stream never
      // closes: as nginx's timed-out write event, the whole connection ends then (its other streams
      // and their backends with it).
      const stream = res.request.stream;
      const { session } = conn;
      setTimeout(() => {
        if (!stream.destroyed) session.destroy();
      }, ABUSE_LINGER_MS).unref();
      return;
    }
    const req = res.request;
    if (req.awaitingSince !== 0 && now - req.awaitingSince >= timeouts.bodyMs) {
      this.#options.onDeadline('client_body_timeout');
      // The pipeline answers 408 (or cuts a response under way); the stream is reset if it does not.
      req.fail(codedError('CLIENT_BODY_TIMEOUT', 'client timed out while reading client request body'));
      const stream = req.stream;
      setTimeout(() => {
        if (!stream.closed) stream.close(NGHTTP2_CANCEL);
      }, timeouts.lingeringTimeoutMs).unref();
    }
  }
}

export function createH2Server(handler: H2Handler, options: H2ServerOptions): H2Server {
  return new H2ServerState(handler, options);
}

/**
 * After the TLS handshake: `h2` to the HTTP/2 side, anything else to HTTP/1.1. A handshake that does
 * not finish within `timeoutMs` closes the connection.
 */
export function serveByAlpn(
  secure: tls.TLSSocket,
  timeoutMs: number,
  serve: (protocol: 'h2' | 'http/1.1') => void,
  onTimeout: () => void,
): void {
  const timer = setTimeout(() => {
    onTimeout();
    secure.destroy();
  }, timeoutMs);
  // A client that leaves before the handshake completes (it may never send its Finished) is gone:
  // without this the socket would wait out the whole header timeout.
  const gone = () => secure.destroy();
  secure.once('end', gone);
  secure.once('close', () => clearTimeout(timer));
  secure.once('secure', () => {
    clearTimeout(timer);
    secure.off('end', gone);
    serve(secure.alpnProtocol === 'h2' ? 'h2' : 'http/1.1');
  });
}
