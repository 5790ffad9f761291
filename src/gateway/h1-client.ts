// A lean HTTP/1.1 keep-alive client for plain-HTTP upstreams: one request at a time per connection
// (no pipelining), idle connections kept per endpoint and reused last-in first-out. It speaks the same
// handler protocol as undici's dispatcher (onRequestStart, onResponseStart, onResponseData,
// onResponseEnd, onResponseError with a controller to abort, pause and resume), so the proxy step works
// with either. It exists because undici's generality costs about as much CPU per request as the whole
// rest of the gateway hop (docs/gateway.md, performance).
//
// A connection is reused only when its last response was framed unambiguously and read to its exact
// end (h1-response.ts); anything else (extra bytes, a close-delimited body, an error, an abort)
// destroys it. Bytes arriving while a connection is idle destroy it too. Extra bytes read with the
// answer are told to the handler (onResponseExtra), for nginx's warning.
import http from '../node-http.ts';
import net, { type LookupFunction } from 'node:net';
import { formatHostPort } from '../net/host-port.ts';
import { UNSENDABLE_VALUE } from './header-value.ts';
import { HOP_BY_HOP_FIELDS } from '../net/hop-by-hop.ts';
import {
  type BodyFraming,
  ChunkedDecoder,
  fieldsToHeaders,
  parseResponseFields,
  type ResponseFields,
} from './h1-response.ts';
import { batchWritesThisTurn } from './write-batch.ts';
import { IdleConnections } from './upstream-keepalive.ts';

/** getaddrinfo's failures of a connect to a name member (ExternalName) that does not resolve. */
export const DNS_FAILURE_CODES: ReadonlySet<string> = new Set([
  'ENOTFOUND',
  'ENODATA',
  'EAI_FAIL',
  'EAI_AGAIN',
]);

export interface UpstreamController {
  /** "ip:port" the connection reached, once connected (a name member's resolved address); else null. */
  readonly peer?: string | null;
  /**
   * performance.now() when the connection the request went out on was up; null while it connects.
   * Absent for clients that start the request only once connected (undici, the HTTP/2 pool).
   */
  readonly connectedAt?: number | null;
  /** Bytes of the answer's chunk framing read so far (keepip's own client): $upstream_response_length counts them. */
  readonly framingBytes?: number;
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

/** The subset of undici's DispatchHandler the proxy implements. */
export interface UpstreamHandler {
  onRequestStart?(controller: UpstreamController, context: unknown): void;
  onResponseStart?(
    controller: UpstreamController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void;
  /**
   * keepip's own client calls this instead of onResponseStart when the handler has it: the fields as
   * lower-case names and values, alternating, in order (no header object per response).
   */
  onResponseFields?(
    controller: UpstreamController,
    statusCode: number,
    fields: readonly string[],
    statusMessage: string,
  ): void;
  onResponseData?(controller: UpstreamController, chunk: Buffer): void;
  /**
   * keepip's own client, just before onResponseEnd: bytes came with the answer beyond its `framing`
   * (more body than its Content-Length, data after the last chunk); dropped, the connection closed.
   */
  onResponseExtra?(controller: UpstreamController, framing: BodyFraming['kind']): void;
  onResponseEnd?(
    controller: UpstreamController,
    trailers: Record<string, string | string[] | undefined>,
  ): void;
  onResponseError?(controller: UpstreamController, error: Error): void;
}

export interface UpstreamDispatchOptions {
  method: string;
  /** Request target, query included. */
  path: string;
  /** Lower-case names; `host` and `content-length` are taken out and written first/last as undici does. */
  headers: Record<string, string | string[]>;
  body: AsyncIterable<Buffer> | null;
  /** Time allowed for the response head, then between two reads of the body (0: none). */
  headersTimeout: number;
  bodyTimeout: number;
  /** proxy-http-version 1.0: an HTTP/1.0 request, not kept alive; default 1.1. */
  httpVersion?: '1.0' | '1.1';
}

/** What a pool of upstream connections offers the proxy step (undici's Pool fits it through an adapter). */
export interface UpstreamDispatcher {
  dispatch(options: UpstreamDispatchOptions, handler: UpstreamHandler): void;
  /** Lets in-flight requests finish, then closes every connection. */
  close(): Promise<void>;
  destroy(): Promise<void>;
}

export interface H1PoolOptions {
  address: string;
  port: number;
  connectTimeoutMs: number;
  /** Resolves a host name per new connection (ExternalName); default node's dns.lookup. */
  lookup?: LookupFunction;
  /** The process's idle-connection cache and keep-alive limits (default: a cache of this pool's own). */
  idle?: IdleConnections;
}

type ErrorWithCode = Error & { code?: string };

function codedError(code: string, message: string): ErrorWithCode {
  return Object.assign(new Error(message), { code });
}

/**
 * Where every upstream connection reads into (net's `onread`): no buffer allocated per read, and no
 * stream machinery between the socket and the parser. Reads are handled one at a time and what is
 * kept past one (a partial head, body bytes handed to the proxy) is copied out first.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

const EMPTY_TRAILERS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const INVALID_TARGET = /[^\u0021-\u00ff]/;

/** Bytes of a head looked for in a string first: most heads end within them (no Buffer search call). */
const HEAD_PROBE_BYTES = 1024;

/** The head that starts at `start`, in latin1 and without its CRLF CRLF; null when not all in `buf` yet. */
function headText(buf: Buffer, start: number): string | null {
  const probe = Math.min(buf.length, start + HEAD_PROBE_BYTES);
  const text = buf.toString('latin1', start, probe);
  const at = text.indexOf('\r\n\r\n');
  if (at !== -1) return text.slice(0, at);
  if (probe === buf.length) return null;
  const end = buf.indexOf(HEAD_END, Math.max(start, probe - 3));
  return end === -1 ? null : buf.toString('latin1', start, end);
}

/** Methods whose requests carry a body by meaning: a missing one is sent as `content-length: 0`. */
function expectsPayload(method: string): boolean {
  return (
    method === 'POST' ||
    method === 'PUT' ||
    method === 'PATCH' ||
    method === 'QUERY' ||
    method === 'PROPFIND' ||
    method === 'PROPPATCH'
  );
}

/** Fields this client writes itself or never passes on (nginx's proxy module clears the same). */
const NOT_COPIED: ReadonlySet<string> = new Set([...HOP_BY_HOP_FIELDS, 'host', 'content-length']);

/** Request head up to (not including) the framing header and the final CRLF; null when a value is unsafe. */
function requestHead(options: UpstreamDispatchOptions, keepAlive: boolean): string | null {
  const { method, path, headers } = options;
  if (path === '' || INVALID_TARGET.test(path)) return null;
  const host = headers.host;
  if (typeof host !== 'string' || UNSENDABLE_VALUE.test(host)) return null;
  let head = `${method} ${path} HTTP/${options.httpVersion ?? '1.1'}\r\nhost: ${host}\r\nconnection: ${keepAlive ? 'keep-alive' : 'close'}\r\n`;
  for (const name in headers) {
    // connection: only its keep-alive or close (connection-proxy-header), written above; the body's
    // framing is this client's; other hop-by-hop fields never go on, whoever set them (an auth
    // service's Transfer-Encoding next to the Content-Length would be request smuggling), as nginx.
    if (NOT_COPIED.has(name)) continue;
    const value = headers[name] as string | string[];
    if (typeof value === 'string') {
      if (UNSENDABLE_VALUE.test(value)) return null;
      head += `${name}: ${value}\r\n`;
    } else {
      for (const item of value) {
        if (UNSENDABLE_VALUE.test(item)) return null;
        head += `${name}: ${item}\r\n`;
      }
    }
  }
  return head;
}

/** One request on one connection; also its controller. */
class H1Request implements UpstreamController {
  readonly options: UpstreamDispatchOptions;
  readonly handler: UpstreamHandler;
  /** Sent on a connection that had served a request before (a stale one may fail before answering). */
  reused = false;
  settled = false;
  responseStarted = false;
  framingBytes = 0;
  #conn: H1Connection | null = null;

  constructor(options: UpstreamDispatchOptions, handler: UpstreamHandler) {
    this.options = options;
    this.handler = handler;
  }

  attach(conn: H1Connection): void {
    this.#conn = conn;
  }

  get peer(): string | null {
    return this.#conn?.peer ?? null;
  }

  get connectedAt(): number | null {
    return this.#conn?.connectedAt ?? null;
  }

  abort(reason: Error): void {
    if (this.settled) return;
    this.#conn?.abortRequest(this, reason);
  }

  pause(): void {
    this.#conn?.pauseReading(this);
  }

  resume(): void {
    this.#conn?.resumeReading(this);
  }
}

class H1Connection {
  readonly #pool: H1Pool;
  readonly socket: net.Socket;
  #connected = false;
  /** "ip:port" reached, set on connect. */
  peer: string | null = null;
  /** performance.now() at connect: $upstream_connect_time of the request that waited for it. */
  connectedAt: number | null = null;
  #request: H1Request | null = null;
  /** Bytes of a response head not complete yet. */
  #pending: Buffer | null = null;
  #framing: BodyFraming | null = null;
  #remaining = 0;
  #chunked: ChunkedDecoder | null = null;
  #keepAlive = false;
  #timeoutMs = -1;
  #served = 0;
  readonly #openedAt = Date.now();
  #dead = false;
  /** A request body is still going out: the connection cannot be reused before it is all sent. */
  #sending = false;

  constructor(pool: H1Pool, options: H1PoolOptions) {
    this.#pool = pool;
    const socket = net.connect({
      host: options.address,
      port: options.port,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: this.#onRead },
      ...(options.lookup !== undefined ? { lookup: options.lookup } : {}),
    });
    this.socket = socket;
    this.#setTimeout(options.connectTimeoutMs);
    socket.once('connect', () => {
      this.#connected = true;
      this.connectedAt = performance.now();
      if (socket.remoteAddress !== undefined)
        this.peer = formatHostPort(socket.remoteAddress, socket.remotePort ?? options.port);
      const request = this.#request;
      this.#setTimeout(request === null ? pool.keepalive.limits.idleTimeoutMs : this.#readTimeout(request));
    });
    socket.on('end', () => this.#onEnd());
    socket.on('error', (error: ErrorWithCode) => this.#fail(error));
    socket.on('close', () => this.#fail(codedError('UPSTREAM_CLOSED', 'upstream closed the connection')));
    socket.on('timeout', () => this.#onTimeout());
  }

  get served(): number {
    return this.#served;
  }

  /**
   * The upstream read timeout for a request that has no response yet: as nginx's proxy_read_timeout,
   * it starts once the request is sent; while the body is still going out, proxy-send-timeout and the
   * client's client_body_timeout bound the wait instead (proxy.ts, h1-server.ts).
   */
  #readTimeout(request: H1Request): number {
    return this.#sending ? 0 : request.options.headersTimeout;
  }

  #setTimeout(ms: number): void {
    if (ms === this.#timeoutMs) return;
    this.#timeoutMs = ms;
    this.socket.setTimeout(Math.max(ms, 0));
  }

  get usable(): boolean {
    return !this.#dead && !this.socket.destroyed;
  }

  send(request: H1Request): void {
    this.#request = request;
    // A body to send: no read timeout until it is out, also when the connect comes first (#readTimeout).
    this.#sending = request.options.body !== null;
    request.reused = this.#served > 0;
    request.attach(this);
    const { options } = request;
    this.#keepAlive =
      options.method !== 'HEAD' && options.headers.connection !== 'close' && options.httpVersion !== '1.0';
    const head = requestHead(options, this.#keepAlive);
    batchWritesThisTurn(this.socket);
    if (this.#connected) this.#setTimeout(options.body === null ? options.headersTimeout : 0);
    request.handler.onRequestStart?.(request, null);
    if (request.settled) return;
    if (head === null) {
      this.#failRequest(
        request,
        codedError('UPSTREAM_ERROR', 'invalid request target or header value'),
        true,
      );
      return;
    }
    const contentLength = options.headers['content-length'];
    if (options.body === null) {
      const framing = expectsPayload(options.method) ? 'content-length: 0\r\n\r\n' : '\r\n';
      this.socket.write(head + framing, 'latin1');
      return;
    }
    // Sending a body with a method that does not expect one: the connection is not reused afterwards.
    if (!expectsPayload(options.method)) this.#keepAlive = false;
    const body = options.body;
    const start = (): void => {
      if (request.settled || this.#request !== request) return;
      // HTTP/1.0 has no chunked framing: a body of unknown length is read whole first, as nginx buffers it.
      if (options.httpVersion === '1.0' && typeof contentLength !== 'string') {
        void this.#sendWhole(request, body, head);
        return;
      }
      void this.#sendBody(
        request,
        body,
        head,
        typeof contentLength === 'string' ? Number(contentLength) : null,
      );
    };
    // The body is taken from the client only once the backend accepted the connection: a refused
    // connect leaves a streamed body untouched, so the request can still go to the next endpoint.
    if (this.#connected) start();
    else this.socket.once('connect', start);
  }

  async #sendWhole(request: H1Request, body: AsyncIterable<Buffer>, head: string): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of body) chunks.push(chunk);
    } catch (error) {
      if (!request.settled && this.#request === request) this.abortRequest(request, error as Error);
      return;
    }
    const whole = Buffer.concat(chunks);
    await this.#sendBody(
      request,
      (async function* () {
        yield whole;
      })(),
      head,
      whole.length,
    );
  }

  async #sendBody(
    request: H1Request,
    body: AsyncIterable<Buffer>,
    head: string,
    contentLength: number | null,
  ): Promise<void> {
    const socket = this.socket;
    let written = 0;
    this.#sending = true;
    try {
      for await (const chunk of body) {
        if (request.settled || this.#request !== request) return;
        if (chunk.length === 0) continue;
        if (contentLength !== null && written + chunk.length > contentLength) {
          throw codedError('UPSTREAM_ERROR', 'request body longer than its Content-Length');
        }
        socket.cork();
        if (written === 0) {
          socket.write(
            contentLength === null
              ? `${head}transfer-encoding: chunked\r\n`
              : `${head}content-length: ${contentLength}\r\n\r\n`,
            'latin1',
          );
        }
        if (contentLength === null) socket.write(`\r\n${chunk.length.toString(16)}\r\n`, 'latin1');
        written += chunk.length;
        const flowing = socket.write(chunk);
        socket.uncork();
        if (!flowing) await this.#drained();
      }
      if (request.settled || this.#request !== request) return;
      if (written === 0) {
        socket.write(
          expectsPayload(request.options.method) ? `${head}content-length: 0\r\n\r\n` : `${head}\r\n`,
          'latin1',
        );
      } else if (contentLength === null) {
        socket.write('\r\n0\r\n\r\n', 'latin1');
      } else if (written !== contentLength) {
        throw codedError('UPSTREAM_ERROR', 'request body shorter than its Content-Length');
      }
      this.#sending = false;
      if (this.#connected && !request.responseStarted) this.#setTimeout(request.options.headersTimeout);
    } catch (error) {
      if (!request.settled && this.#request === request) this.abortRequest(request, error as Error);
    }
  }

  #drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  pauseReading(request: H1Request): void {
    if (this.#request !== request || request.settled) return;
    this.socket.pause();
    // A client slow to read is not the upstream being slow: the read timeout waits. The wait is bounded
    // by the client's send timeout (h1-server.ts), which closes the client and so aborts this request.
    this.#setTimeout(0);
  }

  resumeReading(request: H1Request): void {
    if (this.#request !== request || request.settled) return;
    this.#setTimeout(request.options.bodyTimeout);
    this.socket.resume();
  }

  abortRequest(request: H1Request, reason: Error): void {
    if (this.#request !== request || request.settled) return;
    this.#failRequest(request, reason, true);
  }

  #onTimeout(): void {
    const request = this.#request;
    if (request === null) {
      this.#destroy();
      return;
    }
    const error = this.#connected
      ? codedError('UPSTREAM_READ_TIMEOUT', 'upstream timed out')
      : codedError('UPSTREAM_CONNECT_TIMEOUT', 'connect timed out');
    this.#failRequest(request, error, true);
  }

  #onRead = (bytes: number, buffer: Uint8Array): boolean => {
    this.#onData((buffer as Buffer).subarray(0, bytes));
    return true;
  };

  /** Bytes read into READ_BUFFER: parsed now, copied where they must outlive this call. */
  #onData(chunk: Buffer): void {
    const request = this.#request;
    if (request === null) {
      // Nothing was asked: whatever this is, the connection can no longer be trusted.
      this.#destroy();
      return;
    }
    let buf = chunk;
    let start = 0;
    if (this.#framing === null) {
      buf = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
      this.#pending = null;
      for (;;) {
        const text = headText(buf, start);
        if (text === null) {
          if (buf.length - start > http.maxHeaderSize) {
            this.#failRequest(
              request,
              codedError('UPSTREAM_INVALID_HEADER', 'upstream sent too big header'),
              true,
            );
            return;
          }
          this.#pending = Buffer.from(buf.subarray(start));
          return;
        }
        if (text.length > http.maxHeaderSize) {
          this.#failRequest(
            request,
            codedError('UPSTREAM_INVALID_HEADER', 'upstream sent too big header'),
            true,
          );
          return;
        }
        const parsed = parseResponseFields(text, request.options.method);
        start += text.length + 4;
        if (!parsed.ok) {
          this.#failRequest(request, codedError('UPSTREAM_INVALID_HEADER', parsed.error.message), true);
          return;
        }
        const { head } = parsed;
        if (head.interim) continue;
        request.responseStarted = true;
        this.#framing = head.framing;
        if (!head.keepAlive) this.#keepAlive = false;
        if (head.framing.kind === 'length') this.#remaining = head.framing.length;
        else if (head.framing.kind === 'chunked') this.#chunked = new ChunkedDecoder();
        this.#setTimeout(request.options.bodyTimeout);
        this.#responseStart(request, head);
        if (request.settled || this.#request !== request) return;
        break;
      }
    }
    this.#body(request, buf, start);
  }

  #responseStart(request: H1Request, head: ResponseFields): void {
    const handler = request.handler;
    if (handler.onResponseFields !== undefined) {
      handler.onResponseFields(request, head.status, head.fields, head.statusMessage);
    } else {
      handler.onResponseStart?.(request, head.status, fieldsToHeaders(head.fields), head.statusMessage);
    }
  }

  #body(request: H1Request, buf: Buffer, start: number): void {
    const framing = this.#framing as BodyFraming;
    const handler = request.handler;
    switch (framing.kind) {
      case 'none':
        this.#complete(request, buf.length - start);
        return;
      case 'length': {
        const available = buf.length - start;
        if (available === 0 && this.#remaining > 0) return;
        const take = Math.min(this.#remaining, available);
        if (take > 0) {
          this.#remaining -= take;
          handler.onResponseData?.(request, Buffer.from(buf.subarray(start, start + take)));
          if (request.settled || this.#request !== request) return;
        }
        if (this.#remaining === 0) this.#complete(request, available - take);
        return;
      }
      case 'chunked': {
        const decoder = this.#chunked as ChunkedDecoder;
        let dataBytes = 0;
        const result = decoder.feed(buf, start, (data) => {
          dataBytes += data.length;
          if (!request.settled && this.#request === request) {
            handler.onResponseData?.(request, Buffer.from(data));
          }
        });
        if (request.settled || this.#request !== request) return;
        const read = (result.ok && result.done ? result.rest : buf.length) - start;
        request.framingBytes += read - dataBytes;
        if (!result.ok) {
          this.#failRequest(request, codedError('UPSTREAM_ERROR', result.error.message), true);
        } else if (result.done) {
          this.#complete(request, buf.length - result.rest);
        }
        return;
      }
      case 'close':
        if (buf.length > start) handler.onResponseData?.(request, Buffer.from(buf.subarray(start)));
        return;
    }
  }

  /** The response ended; `extra` bytes followed it (a misbehaving upstream: never reuse the connection). */
  #complete(request: H1Request, extra: number): void {
    const framing = (this.#framing as BodyFraming).kind;
    request.settled = true;
    this.#request = null;
    this.#framing = null;
    this.#chunked = null;
    this.#served += 1;
    const { keepalive } = this.#pool;
    const reusable =
      this.#keepAlive &&
      !this.#sending &&
      extra === 0 &&
      !this.#pool.closing &&
      this.usable &&
      keepalive.keeps(this.#served, this.#openedAt, Date.now());
    if (reusable) {
      this.#setTimeout(keepalive.limits.idleTimeoutMs);
      // A client slow to take the response paused reading (pauseReading); the next request must be read.
      this.socket.resume();
    } else this.#destroy();
    // Relayed as framed, the rest dropped: nginx does the same, with a warning in its error log.
    if (extra > 0) request.handler.onResponseExtra?.(request, framing);
    request.handler.onResponseEnd?.(request, EMPTY_TRAILERS);
    if (reusable && this.usable) this.#pool.release(this);
  }

  #onEnd(): void {
    const request = this.#request;
    if (request !== null && this.#framing?.kind === 'close') {
      this.#keepAlive = false;
      this.#complete(request, 0);
      return;
    }
    this.#fail(codedError('UPSTREAM_CLOSED', 'upstream closed the connection'));
  }

  #fail(error: ErrorWithCode): void {
    const request = this.#request;
    if (request === null) {
      this.#destroy();
      return;
    }
    // A kept-alive connection the upstream closed just as the request went out: try once more on a
    // fresh one when nothing can have been processed twice (no body, safe method, no answer yet).
    const stale =
      request.reused &&
      !request.responseStarted &&
      this.#pending === null &&
      request.options.body === null &&
      (request.options.method === 'GET' ||
        request.options.method === 'HEAD' ||
        request.options.method === 'OPTIONS') &&
      (error.code === 'ECONNRESET' || error.code === 'EPIPE' || error.code === 'UPSTREAM_CLOSED');
    if (stale) {
      this.#request = null;
      this.#destroy();
      this.#pool.redispatch(request);
      return;
    }
    this.#failRequest(request, error, true);
  }

  #failRequest(request: H1Request, error: Error, destroy: boolean): void {
    if (request.settled) return;
    request.settled = true;
    if (this.#request === request) this.#request = null;
    if (destroy) this.#destroy();
    request.handler.onResponseError?.(request, error);
  }

  #destroy(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#pool.forget(this);
    this.socket.destroy();
  }

  /** Closes the connection if no request is on it; true when it did. */
  closeIfIdle(): boolean {
    if (this.#request !== null) return false;
    this.#destroy();
    return true;
  }

  destroyNow(): void {
    const request = this.#request;
    if (request !== null)
      this.#failRequest(request, codedError('UPSTREAM_CLOSED', 'upstream pool destroyed'), true);
    this.#destroy();
  }
}

export class H1Pool implements UpstreamDispatcher {
  readonly #options: H1PoolOptions;
  readonly #idle: H1Connection[] = [];
  readonly #all = new Set<H1Connection>();
  /** Shared with every pool of the process: the keep-alive limits and the idle connections' LRU. */
  readonly keepalive: IdleConnections;
  closing = false;
  #closed: (() => void) | null = null;

  constructor(options: H1PoolOptions) {
    this.#options = options;
    this.keepalive = options.idle ?? new IdleConnections();
  }

  /** Connections open (idle or busy). */
  get connections(): number {
    return this.#all.size;
  }

  dispatch(options: UpstreamDispatchOptions, handler: UpstreamHandler): void {
    const request = new H1Request(options, handler);
    if (this.closing) {
      queueMicrotask(() => {
        request.settled = true;
        handler.onResponseError?.(request, codedError('UPSTREAM_CLOSED', 'upstream pool closed'));
      });
      return;
    }
    let conn = this.#idle.pop();
    while (conn !== undefined && !conn.usable) conn = this.#idle.pop();
    if (conn !== undefined) this.keepalive.unpark(conn);
    this.#send(conn ?? this.#open(), request);
  }

  /** A request that met a stale kept-alive connection goes out once more, on a new connection. */
  redispatch(request: H1Request): void {
    request.responseStarted = false;
    this.#send(this.#open(), request);
  }

  #open(): H1Connection {
    const conn = new H1Connection(this, this.#options);
    this.#all.add(conn);
    return conn;
  }

  #send(conn: H1Connection, request: H1Request): void {
    conn.send(request);
  }

  release(conn: H1Connection): void {
    if (this.closing) {
      conn.closeIfIdle();
      return;
    }
    this.#idle.push(conn);
    this.keepalive.park(conn);
  }

  forget(conn: H1Connection): void {
    this.keepalive.unpark(conn);
    this.#all.delete(conn);
    const at = this.#idle.indexOf(conn);
    if (at >= 0) this.#idle.splice(at, 1);
    if (this.closing && this.#all.size === 0) this.#closed?.();
  }

  close(): Promise<void> {
    this.closing = true;
    return new Promise((resolve) => {
      this.#closed = resolve;
      for (const conn of [...this.#all]) conn.closeIfIdle();
      if (this.#all.size === 0) resolve();
    });
  }

  async destroy(): Promise<void> {
    this.closing = true;
    for (const conn of [...this.#all]) conn.destroyNow();
    this.#closed?.();
  }
}
