// HTTP/2 to a backend (backend-protocol GRPC: cleartext with prior knowledge; GRPCS: TLS with ALPN h2,
// not verified and without SNI, as ingress-nginx's grpc_pass): keep-alive sessions per endpoint, each
// carrying many requests at once up to the backend's SETTINGS_MAX_CONCURRENT_STREAMS (at most 100), a
// new session only when every open one is full. It speaks the proxy's dispatcher protocol
// (h1-client.ts), with the response trailers handed to onResponseEnd (gRPC's grpc-status and
// grpc-message travel there).
//
// Timeouts as nginx's grpc_* ones, from the location's proxy-* values: the connect timeout per session,
// the read timeout once the request is sent (or the response started) and between two reads, the
// send timeout while the backend's flow-control window holds the request body back.
//
// A session carries many clients' calls, so the streams the gateway resets on it (clients that cancel,
// timeouts) are bounded: backends drop a connection that takes too many (nghttp2, and so Node and
// grpc-js: a burst of 1000; Envoy: half of 500 streams), which would fail every call on it. After
// RESETS_PER_SESSION resets a session takes no new stream and closes once its streams are done; with at
// most MAX_STREAMS_PER_SESSION in flight, no session ever takes more than the sum of the two.
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type { LookupFunction } from 'node:net';
import { formatHostPort } from '../net/host-port.ts';
import {
  DNS_FAILURE_CODES,
  type UpstreamController,
  type UpstreamDispatcher,
  type UpstreamDispatchOptions,
  type UpstreamHandler,
} from './h1-client.ts';

const { NGHTTP2_CANCEL } = http2.constants;

/** Streams in flight on one backend session, at most (fewer when the backend's SETTINGS say so). */
const MAX_STREAMS_PER_SESSION = 100;
/** Streams the gateway resets on one session before it takes no new ones (see the module comment). */
const RESETS_PER_SESSION = 100;

export interface H2PoolOptions {
  address: string;
  port: number;
  tls: boolean;
  connectTimeoutMs: number;
  /** Resolves a host name per new session (ExternalName); default node's dns.lookup. */
  lookup?: LookupFunction;
  /** How long a session without streams is kept (default 60 s). */
  idleTimeoutMs?: number;
}

/** The dispatch options, with proxy-send-timeout: the longest a request body may wait for the backend's window. */
export interface H2DispatchOptions extends UpstreamDispatchOptions {
  sendTimeoutMs?: number;
}

type ErrorWithCode = Error & { code?: string };

function codedError(code: string, message: string): ErrorWithCode {
  return Object.assign(new Error(message), { code });
}

/** Request headers that are connection-specific in HTTP/2 (the pseudo-headers carry method, path, host). */
const NOT_SENT = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/** One request on one session; also its controller. */
class H2Exchange implements UpstreamController {
  readonly options: UpstreamDispatchOptions;
  readonly handler: UpstreamHandler;
  readonly #sendTimeoutMs: number;
  /** Told each time this exchange resets its stream on the session. */
  readonly #onReset: () => void;
  #stream: ClientHttp2Stream | null = null;
  #settled = false;
  #started = false;
  #trailers: Record<string, string | string[] | undefined> = {};
  #timer: NodeJS.Timeout | null = null;
  #sendTimer: NodeJS.Timeout | null = null;

  constructor(
    options: UpstreamDispatchOptions,
    handler: UpstreamHandler,
    sendTimeoutMs: number,
    onReset: () => void = () => {},
  ) {
    this.options = options;
    this.handler = handler;
    this.#sendTimeoutMs = sendTimeoutMs;
    this.#onReset = onReset;
  }

  get settled(): boolean {
    return this.#settled;
  }

  abort(reason: Error): void {
    if (this.#settled) return;
    const stream = this.#stream;
    if (stream !== null && !stream.destroyed) {
      stream.close(NGHTTP2_CANCEL);
      this.#onReset();
    }
    this.fail(reason);
  }

  pause(): void {
    this.#stream?.pause();
  }

  resume(): void {
    this.#stream?.resume();
  }

  fail(error: ErrorWithCode): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#clearTimers();
    this.handler.onResponseError?.(this, error);
  }

  #clearTimers(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#sendTimer !== null) clearTimeout(this.#sendTimer);
    this.#timer = null;
    this.#sendTimer = null;
  }

  /** proxy-read-timeout: armed once the request is sent or the response started, re-armed on each read. */
  #armRead(): void {
    const ms = this.#started ? this.options.bodyTimeout : this.options.headersTimeout;
    if (ms <= 0 || this.#settled) return;
    if (this.#timer !== null) this.#timer.refresh();
    else
      this.#timer = setTimeout(() => {
        const phase = this.#started ? 'reading upstream' : 'reading response header from upstream';
        this.abort(codedError('UPSTREAM_READ_TIMEOUT', `upstream timed out while ${phase}`));
      }, ms);
  }

  start(session: ClientHttp2Session, scheme: 'http' | 'https'): void {
    const { options } = this;
    const headers: http2.OutgoingHttpHeaders = {
      ':method': options.method,
      ':path': options.path,
      ':scheme': scheme,
      ':authority': String(options.headers.host ?? ''),
    };
    for (const name in options.headers) if (!NOT_SENT.has(name)) headers[name] = options.headers[name];
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: options.body === null });
    } catch (error) {
      this.fail(
        codedError('UPSTREAM_ERROR', `cannot send the request upstream: ${(error as Error).message}`),
      );
      return;
    }
    this.#stream = stream;
    this.handler.onRequestStart?.(this, null);
    stream.on('response', (h, flags) => this.#onResponse(h, flags));
    stream.on('data', (chunk: Buffer) => {
      this.#armRead();
      if (!this.#settled) this.handler.onResponseData?.(this, chunk);
    });
    stream.on('trailers', (t) => {
      this.#trailers = stripPseudo(t);
    });
    stream.on('end', () => this.#onEnd());
    stream.on('error', (error: ErrorWithCode) => this.fail(mapStreamError(error, this.#started)));
    stream.on('close', () => {
      if (!this.#settled) this.fail(closedBeforeEnd(stream.rstCode, this.#started));
    });
    if (options.body === null) this.#armRead();
    else void this.#pump(stream, options.body);
  }

  #onResponse(headers: http2.IncomingHttpHeaders, flags: number): void {
    if (this.#settled) return;
    this.#started = true;
    this.#armRead();
    const status = Number(headers[':status']);
    // 1xx: informational, the final head follows.
    if (status < 200) return;
    this.handler.onResponseStart?.(this, status, stripPseudo(headers), '');
    // A HEADERS frame with END_STREAM is the whole response (gRPC's trailers-only answer): its fields
    // are in the head, and 'end' follows.
    void flags;
  }

  #onEnd(): void {
    if (this.#settled) return;
    const ended = this.#stream;
    // A backend connection that closed (even with a clean FIN) ends its open streams too, already
    // destroyed with a reset code: a cut answer, never a complete one (nginx: "upstream prematurely
    // closed connection").
    if (ended !== null && (ended.destroyed || (ended.rstCode ?? 0) !== 0)) {
      this.fail(closedBeforeEnd(ended.rstCode, this.#started));
      return;
    }
    this.#settled = true;
    this.#clearTimers();
    // The answer is complete while the request body is still going out (a backend that answered first):
    // the rest is not sent (the pump stops), and our side ends so the stream closes on both sides.
    const stream = this.#stream;
    if (stream !== null && !stream.writableEnded && !stream.destroyed) stream.end();
    this.handler.onResponseEnd?.(this, this.#trailers);
  }

  /** Streams the request body with the backend's flow control; proxy-send-timeout while it holds it back. */
  async #pump(stream: ClientHttp2Stream, body: AsyncIterable<Buffer>): Promise<void> {
    try {
      for await (const chunk of body) {
        if (this.#settled || stream.destroyed) return;
        if (!stream.write(chunk)) await this.#drained(stream);
      }
      if (!this.#settled && !stream.destroyed) {
        stream.end();
        if (!this.#started) this.#armRead();
      }
    } catch (error) {
      // The client side ended the body (too large, client_body_timeout, gone): the request is abandoned.
      this.abort(error as ErrorWithCode);
    }
  }

  #drained(stream: ClientHttp2Stream): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        stream.off('drain', done);
        stream.off('close', done);
        if (this.#sendTimer !== null) clearTimeout(this.#sendTimer);
        this.#sendTimer = null;
        resolve();
      };
      stream.once('drain', done);
      stream.once('close', done);
      if (this.#sendTimeoutMs > 0)
        this.#sendTimer = setTimeout(() => {
          this.abort(
            codedError('UPSTREAM_SEND_TIMEOUT', 'upstream timed out while sending request to upstream'),
          );
          done();
        }, this.#sendTimeoutMs);
    });
  }
}

function stripPseudo(headers: http2.IncomingHttpHeaders): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const name in headers) if (name.charCodeAt(0) !== 0x3a) out[name] = headers[name];
  return out;
}

/** A stream the backend reset, or whose session failed, in the words the proxy classifies. */
function mapStreamError(error: ErrorWithCode, started: boolean): ErrorWithCode {
  const code = error.code ?? '';
  // A name that did not resolve stays as it is: a connect failure for the proxy.
  if (DNS_FAILURE_CODES.has(code) || code === 'ECONNREFUSED' || code.startsWith('UPSTREAM_')) return error;
  const phase = started ? 'while reading upstream' : 'while reading response header from upstream';
  return codedError('UPSTREAM_CLOSED', `upstream reset the stream (${code || error.message}) ${phase}`);
}

function closedBeforeEnd(rstCode: number | undefined, started: boolean): ErrorWithCode {
  const phase = started ? 'while reading upstream' : 'while reading response header from upstream';
  return codedError('UPSTREAM_CLOSED', `upstream closed the stream (RST_STREAM ${rstCode ?? 0}) ${phase}`);
}

interface PooledSession {
  readonly session: ClientHttp2Session;
  connected: boolean;
  /** GOAWAY received or closing: no new streams. */
  closing: boolean;
  active: number;
  /** Streams the gateway reset on this session (RESETS_PER_SESSION). */
  resets: number;
  /** Requests waiting for the connection to be made. */
  waiting: H2Exchange[];
  idleTimer: NodeJS.Timeout | null;
}

export class H2Pool implements UpstreamDispatcher {
  readonly #options: H2PoolOptions;
  readonly #authority: string;
  readonly #scheme: 'http' | 'https';
  readonly #sessions: PooledSession[] = [];
  #closing = false;

  constructor(options: H2PoolOptions) {
    this.#options = options;
    this.#scheme = options.tls ? 'https' : 'http';
    this.#authority = `${this.#scheme}://${formatHostPort(options.address, options.port)}`;
  }

  /** Sessions open (connecting, busy or idle). */
  get sessions(): number {
    return this.#sessions.length;
  }

  dispatch(options: UpstreamDispatchOptions, handler: UpstreamHandler): void {
    const sendTimeoutMs = (options as H2DispatchOptions).sendTimeoutMs ?? 0;
    if (this.#closing) {
      const refused = new H2Exchange(options, handler, sendTimeoutMs);
      queueMicrotask(() => refused.fail(codedError('UPSTREAM_CLOSED', 'upstream pool closed')));
      return;
    }
    const pooled = this.#pick() ?? this.#open();
    pooled.active += 1;
    if (pooled.idleTimer !== null) {
      clearTimeout(pooled.idleTimer);
      pooled.idleTimer = null;
    }
    const exchange = new H2Exchange(options, this.#counted(pooled, handler), sendTimeoutMs, () =>
      this.#reset(pooled),
    );
    if (pooled.connected) exchange.start(pooled.session, this.#scheme);
    else pooled.waiting.push(exchange);
  }

  /** The handler, with the session's stream count released when the exchange settles (either way). */
  #counted(pooled: PooledSession, handler: UpstreamHandler): UpstreamHandler {
    const release = () => {
      pooled.active -= 1;
      if (pooled.active > 0) return;
      // A session that takes no new stream (GOAWAY, a backend's SETTINGS_MAX_CONCURRENT_STREAMS 0)
      // is closed once its last stream ends, not kept for the idle timeout: one per call otherwise.
      if (pooled.closing) {
        if (!pooled.session.destroyed && !pooled.session.closed) pooled.session.close();
        return;
      }
      if (pooled.idleTimer !== null) return;
      pooled.idleTimer = setTimeout(() => {
        pooled.closing = true;
        pooled.session.close();
      }, this.#options.idleTimeoutMs ?? 60_000);
      pooled.idleTimer.unref();
    };
    return {
      onRequestStart: (controller, context) => handler.onRequestStart?.(controller, context),
      onResponseStart: (controller, status, headers, message) =>
        handler.onResponseStart?.(controller, status, headers, message),
      onResponseData: (controller, chunk) => handler.onResponseData?.(controller, chunk),
      onResponseEnd: (controller, trailers) => {
        release();
        handler.onResponseEnd?.(controller, trailers);
      },
      onResponseError: (controller, error) => {
        release();
        handler.onResponseError?.(controller, error);
      },
    };
  }

  /** The gateway reset a stream on `pooled`: past the budget, it takes no new stream and closes when done. */
  #reset(pooled: PooledSession): void {
    pooled.resets += 1;
    if (pooled.resets < RESETS_PER_SESSION || pooled.closing) return;
    pooled.closing = true;
    if (pooled.idleTimer !== null) clearTimeout(pooled.idleTimer);
    pooled.idleTimer = null;
    if (!pooled.session.destroyed) pooled.session.close();
  }

  /** A session with room for one more stream (the backend's SETTINGS_MAX_CONCURRENT_STREAMS, at most 100). */
  #pick(): PooledSession | null {
    for (const pooled of this.#sessions) {
      if (pooled.closing || pooled.session.destroyed) continue;
      const remote = pooled.connected ? pooled.session.remoteSettings.maxConcurrentStreams : undefined;
      if (pooled.active < Math.min(remote ?? MAX_STREAMS_PER_SESSION, MAX_STREAMS_PER_SESSION)) return pooled;
    }
    return null;
  }

  #open(): PooledSession {
    const { connectTimeoutMs } = this.#options;
    const session = http2.connect(this.#authority, {
      settings: { enablePush: false },
      ...(this.#options.lookup !== undefined ? { lookup: this.#options.lookup } : {}),
      // ingress-nginx does not verify backend certificates (grpc_ssl_verify off); an IP sends no SNI.
      ...(this.#options.tls ? { rejectUnauthorized: false, ALPNProtocols: ['h2'] } : {}),
    });
    const pooled: PooledSession = {
      session,
      connected: false,
      closing: false,
      active: 0,
      resets: 0,
      waiting: [],
      idleTimer: null,
    };
    this.#sessions.push(pooled);
    const timer = setTimeout(() => {
      this.#drop(
        pooled,
        codedError('UPSTREAM_CONNECT_TIMEOUT', 'upstream timed out while connecting to upstream'),
      );
    }, connectTimeoutMs);
    session.once('connect', () => {
      clearTimeout(timer);
      pooled.connected = true;
      const waiting = pooled.waiting;
      pooled.waiting = [];
      for (const exchange of waiting) exchange.start(session, this.#scheme);
    });
    session.on('goaway', () => {
      pooled.closing = true;
    });
    session.on('remoteSettings', (settings: http2.Settings) => {
      if (settings.maxConcurrentStreams !== 0) return;
      pooled.closing = true;
      if (pooled.active === 0 && !session.closed) session.close();
    });
    session.on('error', (error: ErrorWithCode) => {
      clearTimeout(timer);
      this.#drop(pooled, error);
    });
    session.once('close', () => {
      clearTimeout(timer);
      this.#drop(pooled, codedError('UPSTREAM_CLOSED', 'upstream closed the connection'));
    });
    return pooled;
  }

  /** A session that failed or closed: its waiting requests fail with the cause, it leaves the pool. */
  #drop(pooled: PooledSession, error: ErrorWithCode): void {
    const at = this.#sessions.indexOf(pooled);
    if (at !== -1) this.#sessions.splice(at, 1);
    pooled.closing = true;
    if (pooled.idleTimer !== null) clearTimeout(pooled.idleTimer);
    const waiting = pooled.waiting;
    pooled.waiting = [];
    for (const exchange of waiting) exchange.fail(error);
    if (!pooled.session.destroyed) pooled.session.destroy();
  }

  close(): Promise<void> {
    this.#closing = true;
    const open = [...this.#sessions];
    return Promise.all(
      open.map(
        (pooled) =>
          new Promise<void>((resolve) => {
            if (pooled.session.closed || pooled.session.destroyed) return resolve();
            pooled.session.close(() => resolve());
          }),
      ),
    ).then(() => undefined);
  }

  destroy(): Promise<void> {
    this.#closing = true;
    for (const pooled of [...this.#sessions])
      this.#drop(pooled, codedError('UPSTREAM_CLOSED', 'upstream pool destroyed'));
    return Promise.resolve();
  }
}
