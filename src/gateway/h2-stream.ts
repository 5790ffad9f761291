// One HTTP/2 stream as the request pipeline sees a request and its response (exchange.ts), so that
// every stream runs through the same stages as an HTTP/1.1 request: GatewayRequest over the stream's
// headers and body, GatewayResponse over stream.respond / write / end, with trailers for gRPC.
// The pseudo-headers become the request line (`GET /x HTTP/2.0`, as nginx logs it) and `:authority`
// becomes the one Host the request is routed, logged and forwarded by.
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type net from 'node:net';
import { trimOws } from '../net/http-field.ts';
import type { GatewayRequest, GatewayResponse } from './exchange.ts';
import { headValue, lengthRefused } from './header-value.ts';

const { NGHTTP2_NO_ERROR } = http2.constants;
/** The error a stream the gateway resets is destroyed with (Node sends RST_STREAM INTERNAL_ERROR for it). */
const RESET_BY_GATEWAY = new Error('stream reset by the gateway');

type Headers = Record<string, string | number | string[]>;

/** Response headers that are connection-specific in HTTP/2 (RFC 9113 §8.2.2); node:http2 refuses them. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'host',
]);

/** Fields node:http2 takes once only (its kSingleValueHeaders; host is dropped before, as connection-specific). */
const SINGLE_VALUE = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

/**
 * The client's socket as one stream sees it: the TLS socket (certificates, SNI, connection info), or the
 * plain one of a prior-knowledge connection, with this stream's bytes.
 */
export type StreamSocket = net.Socket & { bytesWritten: number };

function streamSocket(socket: net.Socket): StreamSocket {
  // A view of the connection's socket: everything is read through to it, except bytesWritten,
  // which counts this stream's bytes ($bytes_sent) rather than the whole connection's.
  const view = Object.create(socket) as StreamSocket;
  Object.defineProperty(view, 'bytesWritten', { value: 0, writable: true });
  return view;
}

/** The request of one stream: headers without pseudo-headers, `host` from `:authority`, the body as the stream's data. */
export class H2Request implements GatewayRequest {
  readonly method: string;
  readonly url: string;
  readonly httpVersion = '2.0';
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly socket: StreamSocket;
  readonly stream: ServerHttp2Stream;
  /** When the pipeline started waiting for the next body chunk (0: not waiting): client_body_timeout. */
  awaitingSince = 0;
  #ended: boolean;
  #failure: Error | null = null;
  #failWaiter: ((error: Error) => void) | null = null;
  /** Counts every body chunk read or drained (the connection's flood accounting, h2-guard.ts). */
  readonly #payload: { payloadBytes: number };
  #draining = false;
  /** The session ends gracefully (GOAWAY) once this stream closes (endConnectionAfter, h2-server.ts). */
  endsConnection = false;
  /** :authority and a Host field that says otherwise (RFC 9113 §8.3.1: malformed; refused in h2-server.ts). */
  readonly hostConflict: boolean;

  constructor(
    stream: ServerHttp2Stream,
    incoming: IncomingHttpHeaders,
    rawHeaders: readonly string[],
    socket: net.Socket,
    payload: { payloadBytes: number },
  ) {
    this.stream = stream;
    this.#payload = payload;
    this.socket = streamSocket(socket);
    this.method = String(incoming[':method'] ?? 'GET');
    // CONNECT has no :path; its target is the authority, as an HTTP/1.1 CONNECT line carries it.
    this.url = String(incoming[':path'] ?? incoming[':authority'] ?? '');
    const headers: IncomingHttpHeaders = {};
    const raw: string[] = [];
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as string;
      if (name.charCodeAt(0) === 0x3a /* : */ || name === 'host') continue;
      // HTTP/2 forbids white space around a value (RFC 9113 §8.2.1); nghttp2 is told to keep such a
      // field (h2-server.ts), and it is read as HTTP/1.1's optional white space is.
      raw.push(name, trimOws(rawHeaders[i + 1] as string));
    }
    for (const name in incoming) {
      if (name.charCodeAt(0) === 0x3a || name === 'host') continue;
      const value = incoming[name] as string | string[];
      headers[name] = typeof value === 'string' ? trimOws(value) : value.map(trimOws);
    }
    // RFC 9113 §8.3.1: :authority wins over Host; route, log and forward by that one value. A Host
    // that names another is a request two readers would route apart: refused (nginx: 400).
    const host = incoming.host === undefined ? undefined : trimOws(String(incoming.host));
    this.hostConflict =
      incoming[':authority'] !== undefined && host !== undefined && String(host) !== incoming[':authority'];
    const authority = incoming[':authority'] ?? host;
    if (authority !== undefined) {
      headers.host = String(authority);
      raw.push('host', String(authority));
    }
    this.#ended = stream.endAfterHeaders;
    // A body without Content-Length is streamed to the backend chunked (the pipeline's marker for "has a body").
    if (!this.#ended && headers['content-length'] === undefined) headers['transfer-encoding'] = 'chunked';
    this.headers = headers;
    this.rawHeaders = raw;
    if (!this.#ended) {
      // A reset (RST_STREAM, even NO_ERROR) ends the readable side too ('aborted', then 'end'): that
      // body did not end, and the request is not complete (a client gone mid-body: nginx's 400).
      let aborted = false;
      stream.once('aborted', () => (aborted = true));
      stream.once('end', () => (this.#ended = !aborted));
    }
  }

  get complete(): boolean {
    return this.#ended;
  }

  endConnectionAfter(): void {
    this.endsConnection = true;
  }

  resume(): this {
    // The body is drained, not read: its bytes still count as the request's.
    if (!this.#draining)
      this.stream.on('data', (chunk: Buffer) => {
        this.#payload.payloadBytes += chunk.length;
      });
    this.#draining = true;
    this.stream.resume();
    return this;
  }

  /** Ends the body with an error (client_body_timeout): the pipeline's read rejects with it. */
  fail(error: Error): void {
    if (this.#ended || this.#failure !== null) return;
    this.#failure = error;
    this.awaitingSince = 0;
    const waiter = this.#failWaiter;
    this.#failWaiter = null;
    waiter?.(error);
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    // destroyOnReturn: false — a consumer that stops early (413) must not reset the stream it answers on.
    const inner = this.stream.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
    return {
      next: () => {
        if (this.#failure !== null) return Promise.reject(this.#failure);
        this.awaitingSince = performance.now();
        return new Promise<IteratorResult<Buffer>>((resolve, reject) => {
          this.#failWaiter = reject;
          inner.next().then(
            (result) => {
              this.awaitingSince = 0;
              this.#failWaiter = null;
              if (result.done !== true) this.#payload.payloadBytes += result.value.length;
              resolve(result);
            },
            (error: unknown) => {
              this.awaitingSince = 0;
              this.#failWaiter = null;
              reject(error);
            },
          );
        });
      },
      return: () => {
        this.awaitingSince = 0;
        this.#failWaiter = null;
        return inner.return?.() ?? Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** The response of one stream. The head goes out with the first body bytes, or alone with END_STREAM. */
export class H2Response implements GatewayResponse {
  statusCode = 200;
  statusMessage = '';
  /** Meaningless per stream: the connection's lifetime is the session's business. */
  shouldKeepAlive = true;
  headersSent = false;
  writableFinished = false;
  readonly #stream: ServerHttp2Stream;
  readonly #request: H2Request;
  #pending: Headers | null = null;
  /** The head as sent, for $sent_http_<name>. */
  #sent: Headers | null = null;
  #noBody = false;
  #trailers: Record<string, string | string[]> | null = null;
  #waitForTrailers = false;
  /** The head went out with waitForTrailers: the stream ends when the trailers are sent. */
  #trailersDue = false;
  /** The gateway reset the stream itself (destroy()); a reset from the client is something else. */
  resetByGateway = false;
  /**
   * Since when response bytes have waited for the client's window (0: none wait): send_timeout. Set when
   * a write is refused, and when the stream is ended with bytes still queued (a small answer, or the
   * last piece of a large one, is taken by node:http2 without a refusal and would wait for ever).
   */
  blockedSince = 0;
  /** Body bytes still due by Content-Length (-1: unknown): the last piece ends the stream with it. */
  #remaining = -1;
  /** The stream was ended with the last piece of a Content-Length body; end() has nothing left to send. */
  #bodyDone = false;

  constructor(stream: ServerHttp2Stream, request: H2Request) {
    this.#stream = stream;
    this.#request = request;
    this.#noBody = request.method === 'HEAD';
  }

  get request(): H2Request {
    return this.#request;
  }

  /** The response will end with trailers (gRPC): must be called before the head is sent. */
  expectTrailers(): void {
    this.#waitForTrailers = true;
  }

  /** Trailers to send when the body ends (after expectTrailers). */
  setTrailers(trailers: Record<string, string | string[]>): void {
    this.#trailers = trailers;
  }

  writeHead(statusCode: number, messageOrHeaders?: string | Headers, maybeHeaders?: Headers): this {
    if (this.headersSent) return this;
    const headers = typeof messageOrHeaders === 'string' ? maybeHeaders : messageOrHeaders;
    if (typeof messageOrHeaders === 'string') this.statusMessage = messageOrHeaders;
    this.statusCode = statusCode;
    const out: Headers = { ':status': statusCode };
    if (headers !== undefined) {
      for (const name in headers) {
        const value = headers[name];
        if (value === undefined) continue;
        const lower = name.toLowerCase();
        if (CONNECTION_SPECIFIC.has(lower)) continue;
        // A 204's length other than 0 would make HTTP/2 clients refuse the stream (nginx drops it).
        if (lower === 'content-length' && lengthRefused(statusCode, value)) continue;
        // node:http2 refuses a repeat of these (and would reset the stream): the first, as nginx keeps
        // the first Content-Type, ETag, Last-Modified or Location a backend repeats.
        out[lower] = Array.isArray(value) && SINGLE_VALUE.has(lower) ? (value[0] as string) : value;
      }
    }
    if (statusCode === 204 || statusCode === 304) this.#noBody = true;
    const length = out['content-length'];
    this.#remaining = length === undefined || this.#noBody ? -1 : Number(length);
    this.#pending = out;
    this.#sent = out;
    this.headersSent = true;
    return this;
  }

  /** $sent_http_<name>: what the head carried under the lower-case `name`; null without it. */
  sentHeader(name: string): string | null {
    return name.startsWith(':') ? null : headValue(this.#sent, null, name);
  }

  #flush(endStream: boolean): void {
    if (!this.headersSent) this.writeHead(this.statusCode, {});
    const head = this.#pending;
    if (head === null) return;
    this.#pending = null;
    const stream = this.#stream;
    if (stream.destroyed || stream.closed) return;
    const waitForTrailers = this.#waitForTrailers && !endStream;
    if (waitForTrailers) {
      this.#trailersDue = true;
      stream.once('wantTrailers', this.#sendTrailers);
    }
    this.#request.socket.bytesWritten += 9 + estimateHeaderBytes(head);
    try {
      stream.respond(head, { endStream, waitForTrailers });
    } catch {
      // A header node:http2 refuses (a value with a bad character, a repeated single-value field):
      // what the backend sent cannot be relayed, so the stream is reset rather than half-answered.
      this.destroy();
    }
  }

  #sendTrailers = (): void => {
    const stream = this.#stream;
    if (stream.destroyed) return;
    // No trailers came (a gRPC backend that ended without them): node sends an empty DATA frame with
    // END_STREAM for empty ones, as nginx ends the stream; close() here sent nothing and left it open.
    const trailers = this.#trailers ?? {};
    this.#request.socket.bytesWritten += 9 + estimateHeaderBytes(trailers);
    try {
      stream.sendTrailers(trailers);
    } catch {
      this.destroy();
      return;
    }
    // The trailers go out once this callback returns (node:http2 sends them from the send under way); a
    // reset submitted now would overtake them and the client would lose grpc-status. So on the next turn.
    setImmediate(() => this.#refuseRestOfBody());
  };

  /** The answer is complete; a body the client is still sending is not wanted (RFC 9113 §8.1). */
  #refuseRestOfBody(): void {
    const stream = this.#stream;
    if (this.#request.complete || stream.destroyed) return;
    // The client already ended its side (an empty body nobody read): nothing to refuse, and a reset
    // now would drop the trailers just queued (gRPC's grpc-status). Reading it out lets the stream close.
    if (stream.state.remoteClose !== 0) {
      stream.resume();
      return;
    }
    stream.close(NGHTTP2_NO_ERROR);
  }

  write(chunk: Buffer): boolean {
    if (this.writableFinished || this.#bodyDone || this.#stream.destroyed) return true;
    this.#flush(false);
    if (this.#noBody || chunk.length === 0) return true;
    this.#request.socket.bytesWritten += chunk.length + 9;
    if (chunk.length === this.#remaining && !this.#waitForTrailers) {
      // The last piece of a body of known length: DATA with END_STREAM at once, no empty frame after.
      this.#bodyDone = true;
      this.#stream.end(chunk);
      this.#watchTail();
      return true;
    }
    if (this.#remaining > 0) this.#remaining = Math.max(0, this.#remaining - chunk.length);
    const ok = this.#stream.write(chunk);
    if (!ok && this.blockedSince === 0) {
      this.blockedSince = performance.now();
      this.#stream.once('drain', this.#unblocked);
    }
    return ok;
  }

  /** 'drain': a stream ended with bytes still queued keeps waiting, from now on. */
  #unblocked = (): void => {
    const stream = this.#stream;
    this.blockedSince = stream.writableEnded && stream.writableLength > 0 ? performance.now() : 0;
  };

  /**
   * After the stream's end: the bytes still queued wait for the client's window too. No listener per
   * stream: the sweep asks waitsForWindow() before it resets, so a tail sent meanwhile is let be.
   */
  #watchTail(): void {
    if (this.blockedSince === 0 && this.#stream.writableLength > 0) this.blockedSince = performance.now();
  }

  /** Whether response bytes are still queued for the client (what blockedSince times). */
  waitsForWindow(): boolean {
    const stream = this.#stream;
    return !stream.destroyed && stream.writableLength > 0;
  }

  end(chunk?: Buffer): this {
    if (this.writableFinished) return this;
    this.writableFinished = true;
    const stream = this.#stream;
    const hasBody = chunk !== undefined && chunk.length > 0 && !this.#noBody;
    const trailing = this.#waitForTrailers && this.#trailers !== null;
    if (this.#pending !== null && !hasBody && !trailing) {
      this.#flush(true);
    } else if (!this.#bodyDone) {
      this.#flush(false);
      if (!stream.destroyed) {
        if (hasBody) this.#request.socket.bytesWritten += chunk.length + 9;
        stream.end(hasBody ? chunk : undefined);
        this.#watchTail();
      }
    }
    // With trailers to come, the rest of the request body is refused after they are sent.
    if (!this.#trailersDue) this.#refuseRestOfBody();
    return this;
  }

  destroy(): this {
    this.resetByGateway = true;
    // Not close(code): on a stream whose writable side is open it ends it first, and the data already
    // queued can then go out with END_STREAM before the RST_STREAM, so a client would take a cut-off
    // answer for a whole one. destroy(error) resets it with INTERNAL_ERROR and sends no END_STREAM.
    if (!this.#stream.destroyed) this.#stream.destroy(RESET_BY_GATEWAY);
    return this;
  }

  once(event: 'close' | 'drain', listener: () => void): this {
    // A stream the client already reset has emitted 'close' before the pipeline listened.
    if (event === 'close' && this.#stream.closed) process.nextTick(listener);
    else this.#stream.once(event, listener);
    return this;
  }

  off(event: 'close', listener: () => void): this {
    this.#stream.off(event, listener);
    return this;
  }
}

/** Bytes of a header block before compression, for $bytes_sent (HPACK makes the wire smaller). */
function estimateHeaderBytes(headers: Record<string, unknown>): number {
  let bytes = 0;
  for (const name in headers) {
    const value = headers[name];
    bytes += name.length + (typeof value === 'string' ? value.length : 8) + 2;
  }
  return bytes;
}

/** The response of an HTTP/2 stream (trailers possible), or null for an HTTP/1.1 response. */
export function h2Response(res: GatewayResponse): H2Response | null {
  return res instanceof H2Response ? res : null;
}
