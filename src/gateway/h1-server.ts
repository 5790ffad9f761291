// keepip's HTTP/1.1 server side (the gateway's only one): the strict parser of h1-request.ts over
// the sockets the listeners accept, feeding the request pipeline (handler.ts). Per connection: one
// small object, the parser, and a parse buffer only while bytes are pending. There is no timer per
// connection or request: one sweep per server compares each connection's deadlines with the clock
// (client-timeouts.ts: header, body, keep-alive, send, lingering). Requests on a connection are handled
// one at a time, in order: pipelined bytes wait (bounded) until the response before them is complete
// and taken by the client.
import type { IncomingHttpHeaders } from 'node:http';
import http from '../node-http.ts';
import type net from 'node:net';
import { type ClientTimeouts, type ConnectionCloseReason, sweepPeriodMs } from './client-timeouts.ts';
import type { GatewayRequest, GatewayResponse, H1Handler } from './exchange.ts';
import { type RequestHead, type RequestParseError, RequestParser } from './h1-request.ts';
import { setBorrowedReader } from './borrowed-reads.ts';
import { headValue, lengthRefused, UNSENDABLE_CHARS, UNSENDABLE_VALUE } from './header-value.ts';
import { HeldBytes } from './held-bytes.ts';
import { batchWritesThisTurn, flushBatchedWrites } from './write-batch.ts';

export interface H1ServerOptions {
  /** Every response closes its connection (the plain-HTTP-on-HTTPS server). */
  closeAfterResponse?: boolean;
  /** A deadline closed a connection (counted in keepip_gateway_connections_closed_total). */
  onDeadline?: (reason: ConnectionCloseReason) => void;
}

export interface H1Server {
  /** Serves HTTP/1.1 on an accepted (and, for HTTPS, TLS-wrapped) socket, with these deadlines. */
  serve(socket: net.Socket, timeouts: ClientTimeouts): void;
  /** Closes connections that are between requests. */
  closeIdle(): void;
  /** Destroys every connection and stops the sweep. */
  destroyAll(): void;
  /** Connections with part of a request head read (counted when asked: nothing on the hot path). */
  readingHeads(): number;
}

/** Pipelined bytes held while a response is in progress before reading from the socket pauses. */
const PIPELINE_HOLD_BYTES = 64 * 1024;
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
/** A first body piece up to this size goes out in one buffer with the response head. */
const COALESCE_BYTES = 16 * 1024;

/** `HTTP/1.1 <status> <standard reason>` lines, made once per status (most responses use one of a few). */
const STATUS_LINES = new Map<number, string>();

function standardStatusLine(statusCode: number, reason: string): string {
  let line = STATUS_LINES.get(statusCode);
  if (line === undefined) {
    line = `HTTP/1.1 ${statusCode} ${reason}\r\n`;
    STATUS_LINES.set(statusCode, line);
  }
  return line;
}

let cachedDate = '';
let cachedDateSecond = 0;
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== cachedDateSecond) {
    cachedDateSecond = second;
    cachedDate = new Date(second * 1000).toUTCString();
  }
  return cachedDate;
}

function clientError(
  error: RequestParseError,
  raw: Buffer | undefined,
): Error & { code: string; statusCode: number; rawPacket?: Buffer } {
  return Object.assign(new Error(error.message), {
    code: error.code,
    statusCode: error.status,
    ...(raw === undefined ? {} : { rawPacket: raw }),
  });
}

/** A request whose body arrives through the connection, with backpressure (reading pauses while chunks wait). */
class H1Request implements GatewayRequest {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly socket: net.Socket;
  complete = false;
  wireBytes: number;
  /** Body bytes are dropped (the response is already decided, or the consumer stopped). */
  discarding = false;
  readonly #conn: H1Connection;
  #queue: Buffer[] = [];
  #waiter: ((result: IteratorResult<Buffer>) => void) | null = null;
  #failer: ((error: Error) => void) | null = null;
  #error: Error | null = null;
  #continueDue: boolean;

  constructor(conn: H1Connection, head: RequestHead) {
    this.#conn = conn;
    this.socket = conn.socket;
    this.method = head.method;
    this.url = head.url;
    this.httpVersion = head.httpVersion;
    this.headers = head.headers as IncomingHttpHeaders;
    this.rawHeaders = head.rawHeaders;
    this.wireBytes = head.headBytes;
    this.#continueDue = head.expectContinue && head.framing !== 'none';
  }

  push(chunk: Buffer): void {
    if (this.discarding) return;
    const waiter = this.#waiter;
    if (waiter !== null) {
      this.#waiter = null;
      this.#failer = null;
      waiter({ value: chunk, done: false });
      return;
    }
    this.#queue.push(chunk);
    this.#conn.socket.pause();
  }

  finish(): void {
    this.complete = true;
    const waiter = this.#waiter;
    if (waiter !== null && this.#queue.length === 0) {
      this.#waiter = null;
      this.#failer = null;
      waiter({ value: undefined, done: true });
    }
  }

  fail(error: Error): void {
    if (this.complete) return;
    this.#error = error;
    const failer = this.#failer;
    if (failer !== null) {
      this.#waiter = null;
      this.#failer = null;
      failer(error);
    }
  }

  #bodyLimit = 0;

  limitBody(bytes: number): void {
    this.#bodyLimit = bytes;
    this.checkAnnounced(this.#conn.announcedBody);
  }

  /** A chunked body announced past the limit fails now, as nginx's 413 on the chunk-size line. */
  checkAnnounced(announced: number): void {
    if (this.#bodyLimit <= 0 || announced <= this.#bodyLimit || this.complete || this.#error !== null) return;
    const error = coded(
      'CLIENT_BODY_TOO_LARGE',
      `client intended to send too large chunked body: ${announced} bytes`,
    );
    this.fail(Object.assign(error, { announced }));
  }

  /** The pipeline waits for body bytes the client has not sent yet (client_body_timeout runs). */
  get awaitingBody(): boolean {
    return (
      !this.complete &&
      !this.discarding &&
      !this.#continueDue &&
      this.#error === null &&
      this.#queue.length === 0
    );
  }

  resume(): this {
    this.discarding = true;
    this.#queue = [];
    this.#conn.socket.resume();
    return this;
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return {
      next: () => {
        if (this.#continueDue) {
          // nginx sends 100 Continue only when it starts reading the body; so do we.
          this.#continueDue = false;
          if (!this.complete && this.#queue.length === 0) this.#conn.socket.write(CONTINUE);
        }
        const chunk = this.#queue.shift();
        if (chunk !== undefined) {
          if (this.#queue.length === 0) this.#conn.socket.resume();
          return Promise.resolve({ value: chunk, done: false });
        }
        if (this.#error !== null) return Promise.reject(this.#error);
        if (this.complete) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.#waiter = resolve;
          this.#failer = reject;
        });
      },
      return: () => {
        this.discarding = true;
        this.#queue = [];
        this.#conn.socket.resume();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** A response written straight to the socket: the head goes out with the first body bytes. */
class H1Response implements GatewayResponse {
  statusCode = 200;
  /** '' until set: the standard reason phrase for the status is used then. */
  statusMessage = '';
  shouldKeepAlive: boolean;
  headersSent = false;
  writableFinished = false;
  framingBytes = 0;
  readonly #conn: H1Connection;
  readonly #head: boolean;
  readonly #http10: boolean;
  #chunked = false;
  #noBody = false;
  #pendingHead: string | null = null;
  #closeListeners: (() => void)[] | null = null;
  /** What the head was written from, kept for $sent_http_<name>: a header object or flat fields. */
  #sentObject: Readonly<Record<string, string | number | string[]>> | null = null;
  #sentFields: readonly string[] | null = null;

  constructor(conn: H1Connection, head: RequestHead, closeAfter: boolean) {
    this.#conn = conn;
    this.#head = head.method === 'HEAD';
    this.#http10 = head.httpVersion === '1.0';
    this.shouldKeepAlive = head.keepAlive && !closeAfter;
  }

  writeHead(
    statusCode: number,
    messageOrHeaders?: string | Record<string, string | number | string[]>,
    maybeHeaders?: Record<string, string | number | string[]>,
  ): this {
    if (this.headersSent) return this;
    const headers = typeof messageOrHeaders === 'string' ? maybeHeaders : messageOrHeaders;
    if (typeof messageOrHeaders === 'string') this.statusMessage = messageOrHeaders;
    this.#sentObject = headers ?? null;
    let out = this.#statusLine(statusCode);
    let hasLength = false;
    let hasDate = false;
    if (headers !== undefined) {
      for (const name in headers) {
        const value = headers[name];
        if (value === undefined) continue;
        const lower = name.toLowerCase();
        if (lower === 'connection') {
          if (String(value).toLowerCase() === 'close') this.shouldKeepAlive = false;
          continue;
        }
        if (lower === 'transfer-encoding') continue;
        if (lower === 'content-length') {
          if (lengthRefused(statusCode, value)) continue;
          hasLength = true;
        } else if (lower === 'date') hasDate = true;
        if (Array.isArray(value)) {
          for (const item of value) if (!UNSENDABLE_VALUE.test(item)) out += `${name}: ${item}\r\n`;
        } else {
          const text = typeof value === 'number' ? String(value) : value;
          if (!UNSENDABLE_VALUE.test(text)) out += `${name}: ${text}\r\n`;
        }
      }
    }
    this.#endHead(out, hasLength, hasDate);
    return this;
  }

  /**
   * The head from a flat list of lower-case names and values, in order (an upstream's fields, its
   * hop-by-hop ones already left out by the proxy): no header object is built on the way.
   */
  writeHeadFields(statusCode: number, fields: readonly string[]): this {
    if (this.headersSent) return this;
    this.#sentFields = fields;
    let out = this.#statusLine(statusCode);
    let hasLength = false;
    let hasDate = false;
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i] as string;
      const value = fields[i + 1] as string;
      if (name === 'content-length') {
        if (lengthRefused(statusCode, value)) continue;
        hasLength = true;
      } else if (name === 'date') hasDate = true;
      else if (name === 'transfer-encoding') continue;
      else if (name === 'connection') {
        if (value.toLowerCase() === 'close') this.shouldKeepAlive = false;
        continue;
      }
      if (!UNSENDABLE_VALUE.test(value)) out += `${name}: ${value}\r\n`;
    }
    this.#endHead(out, hasLength, hasDate);
    return this;
  }

  /** $sent_http_<name>: what the head carried under `name` (several joined with ", "); null without it. */
  sentHeader(name: string): string | null {
    if (!this.headersSent) return null;
    if (name === 'transfer-encoding') return this.#chunked ? 'chunked' : null;
    if (name === 'connection') return this.shouldKeepAlive ? 'keep-alive' : 'close';
    return headValue(this.#sentObject, this.#sentFields, name);
  }

  #statusLine(statusCode: number): string {
    this.statusCode = statusCode;
    const standard = http.STATUS_CODES[statusCode];
    if (this.statusMessage === '') this.statusMessage = standard ?? 'unknown';
    if (this.statusMessage === standard) return standardStatusLine(statusCode, standard);
    return `HTTP/1.1 ${statusCode} ${this.statusMessage.replace(UNSENDABLE_CHARS, ' ')}\r\n`;
  }

  /** Date, framing and connection fields after the given ones; the head waits for the first body bytes. */
  #endHead(head: string, hasLength: boolean, hasDate: boolean): void {
    let out = head;
    const statusCode = this.statusCode;
    if (!hasDate) out += `date: ${httpDate()}\r\n`;
    this.#noBody = this.#head || statusCode === 204 || statusCode === 304 || statusCode < 200;
    if (!hasLength && !this.#noBody) {
      // Without a length: chunked for HTTP/1.1, close-delimited for HTTP/1.0.
      if (this.#http10) this.shouldKeepAlive = false;
      else {
        this.#chunked = true;
        out += 'transfer-encoding: chunked\r\n';
      }
    }
    if (this.#conn.closing()) this.shouldKeepAlive = false;
    out += this.shouldKeepAlive ? this.#conn.keepAliveTail() : 'connection: close\r\n\r\n';
    this.#pendingHead = out;
    this.headersSent = true;
  }

  #flushHead(): void {
    if (!this.headersSent) this.writeHead(this.statusCode, {});
    const head = this.#pendingHead;
    if (head !== null) {
      this.#pendingHead = null;
      batchWritesThisTurn(this.#conn.socket);
      this.#conn.socket.write(head, 'latin1');
    }
  }

  write(chunk: Buffer): boolean {
    if (this.writableFinished || this.#conn.socket.destroyed) return true;
    const socket = this.#conn.socket;
    batchWritesThisTurn(socket);
    if (this.#noBody || chunk.length === 0) {
      this.#flushHead();
      return !socket.writableNeedDrain;
    }
    const head = this.#pendingHead;
    if (head !== null && !this.#chunked && chunk.length <= COALESCE_BYTES) {
      // Head and a small first body piece in one buffer: one plain write instead of a corked writev.
      this.#pendingHead = null;
      const out = Buffer.allocUnsafe(head.length + chunk.length);
      out.write(head, 0, 'latin1');
      chunk.copy(out, head.length);
      return socket.write(out);
    }
    socket.cork();
    this.#flushHead();
    let ok: boolean;
    if (this.#chunked) {
      const size = chunk.length.toString(16);
      this.framingBytes += size.length + 4;
      socket.write(`${size}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
    } else ok = socket.write(chunk);
    socket.uncork();
    return ok;
  }

  end(chunk?: Buffer): this {
    if (this.writableFinished) return this;
    const socket = this.#conn.socket;
    batchWritesThisTurn(socket);
    socket.cork();
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    else this.#flushHead();
    if (this.#chunked) {
      this.framingBytes += 5;
      socket.write('0\r\n\r\n', 'latin1');
    }
    socket.uncork();
    this.writableFinished = true;
    this.#closeListeners = null;
    this.#conn.responseDone(this);
    return this;
  }

  destroy(): this {
    flushBatchedWrites(this.#conn.socket);
    this.#conn.socket.destroy();
    return this;
  }

  once(event: 'close' | 'drain', listener: () => void): this {
    if (event === 'drain') this.#conn.socket.once('drain', listener);
    else {
      this.#closeListeners ??= [];
      this.#closeListeners.push(listener);
    }
    return this;
  }

  off(_event: 'close', listener: () => void): this {
    const listeners = this.#closeListeners;
    if (listeners !== null) {
      const at = listeners.indexOf(listener);
      if (at !== -1) listeners.splice(at, 1);
    }
    return this;
  }

  /** The connection closed: tell whoever waits (the proxy step stops the upstream request: 499). */
  closed(): void {
    const listeners = this.#closeListeners;
    this.#closeListeners = null;
    if (listeners !== null) for (const listener of listeners) listener();
  }
}

const PHASE_IDLE = 0; // between requests: keep-alive deadline
const PHASE_HEAD = 1; // a head is arriving: header deadline
const PHASE_ACTIVE = 2; // a request is being served: body deadline while its body is awaited
const PHASE_DISCARD = 3; // answered and kept alive; the rest of the body is read and dropped: lingering deadlines
const PHASE_LINGER = 4; // closing: the last response is flushed, then reading and dropping: lingering deadlines
const PHASE_UPGRADED = 5; // handed to the upgrade path: lingering deadlines once the gateway has ended its side
const PHASE_DONE = 6; // closed

/** Upgrade sockets that switched protocols (101): their end is a tunnel's end, not a refusal. */
const switchedSockets = new WeakSet<object>();

/** The upgrade path tells the server side that a socket it was handed now carries a tunnel. */
export function markUpgradeSwitched(socket: object): void {
  switchedSockets.add(socket);
}

type CodedError = Error & { code: string };

function coded(code: string, message: string): CodedError {
  return Object.assign(new Error(message), { code });
}

/** A request body the client left before its end (FIN or reset): nginx's "client prematurely closed connection", 400. */
function clientClosed(): CodedError {
  return coded('CLIENT_CLOSED', 'client prematurely closed connection');
}

/** A body's framing error (a bad chunk, bad trailers) as the pipeline's 400 outcome. */
function invalidBody(error: RequestParseError): CodedError {
  return coded('CLIENT_BODY_INVALID', `client sent invalid chunked body (${error.code}: ${error.message})`);
}

/**
 * Closes with RST. Plainly where Node cannot: a TLS socket, and a socket whose write side is already
 * shut down (libuv refuses the reset and Node would keep the handle, see src/lb/socket-reset.ts).
 */
function resetOrDestroy(socket: net.Socket): void {
  if (socket.destroyed) return;
  if ((socket as { encrypted?: boolean }).encrypted === true || socket.writableEnded) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/**
 * One client connection. Deadlines are plain numbers (performance.now() milliseconds) that the
 * server's sweep compares (check()); reads only raise a flag, so the hot path sets no timer.
 */
class H1Connection {
  readonly socket: net.Socket;
  readonly timeouts: ClientTimeouts;
  readonly #server: ServerState;
  readonly #parser: RequestParser;
  /** Bytes read but not parsed yet (pipelined requests waiting for the response before them). */
  readonly #held = new HeldBytes();
  #request: H1Request | null = null;
  #response: H1Response | null = null;
  #parsing = false;
  /** The next response closes the connection (after a body timeout or a broken body). */
  #mustClose = false;
  /** The body broke its framing: nothing more the client sends is parsed (read and dropped). */
  #inputBroken = false;
  /** Bytes came from the client since the last sweep: body and lingering deadlines run between reads. */
  #read = false;
  phase = PHASE_HEAD;
  /** Header or keep-alive deadline, or the backstop after a body timeout; 0: none. */
  deadline: number;
  /** Deadline between two reads (request body, lingering); 0: not running. */
  #readDeadline = 0;
  /** lingering_time: when reading and dropping ends at the latest; 0: not lingering (yet). */
  #lingerEnd = 0;
  #lingerReason: ConnectionCloseReason = 'lingering_close';
  /** Response bytes the client has not taken, and until when they may stay so (send timeout). */
  #unsent = 0;
  #sendDeadline = 0;
  #keepAliveTail: string | null = null;
  /** Requests started on this connection (keep-alive-requests). */
  #requests = 0;
  /**
   * Reads arrive as views into the listener's shared buffer (borrowed-reads.ts), overwritten by the
   * next read: body pieces and bytes held for later are copied. Bytes the socket had buffered before
   * (after a PROXY header) still come as 'data' events.
   */
  readonly #borrowed: boolean;

  /** The chunked body bytes the current request has announced (H1Request.checkAnnounced). */
  get announcedBody(): number {
    return this.#parser.announced;
  }

  constructor(socket: net.Socket, server: ServerState, timeouts: ClientTimeouts) {
    this.socket = socket;
    this.timeouts = timeouts;
    this.#server = server;
    // The head limits are the snapshot's at accept time (large-client-header-buffers), as the deadlines.
    this.#parser = new RequestParser({
      maxHeaderBytes: timeouts.maxHeadBytes,
      headBuffers: timeouts.headBuffers,
    });
    this.deadline = performance.now() + timeouts.headerMs;
    this.#borrowed = setBorrowedReader(socket, this.#onData);
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.once('close', this.#onClose);
  }

  closing(): boolean {
    return (
      this.#mustClose ||
      this.timeouts.keepAliveMs <= 0 ||
      this.#server.options.closeAfterResponse === true ||
      this.#requests >= this.timeouts.keepAliveRequests
    );
  }

  /** The end of a kept-alive response head (made once per connection: its deadlines do not change). */
  keepAliveTail(): string {
    this.#keepAliveTail ??= `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(this.timeouts.keepAliveMs / 1000)}\r\n\r\n`;
    return this.#keepAliveTail;
  }

  #onData = (chunk: Buffer): void => {
    this.#read = true;
    if (this.phase >= PHASE_LINGER || this.#inputBroken) return;
    if (this.#held.length > 0 || this.#parsing || this.#request?.complete === true) {
      // A response is still on its way (or the client is not reading it): hold what follows, bounded, in order.
      this.#held.append(chunk);
      if (this.#held.length > PIPELINE_HOLD_BYTES) this.socket.pause();
      return;
    }
    if (this.phase === PHASE_IDLE) this.#expectHead();
    this.#parse(chunk);
  };

  #expectHead(): void {
    this.phase = PHASE_HEAD;
    this.deadline = performance.now() + this.timeouts.headerMs;
  }

  #parse(input: Buffer): void {
    const parser = this.#parser;
    this.#parsing = true;
    let offset = 0;
    for (;;) {
      const step = parser.execute(input, offset);
      offset += parser.consumed;
      // The body's bytes as read, framing included (the head's are counted by the request itself).
      const reading = this.#request;
      if (step.kind !== 'head' && reading !== null && !reading.complete) reading.wireBytes += parser.consumed;
      if (step.kind === 'more') {
        this.#request?.checkAnnounced(parser.announced);
        break;
      }
      if (step.kind === 'body') {
        this.#request?.push(this.#borrowed ? Buffer.from(step.chunk) : step.chunk);
        continue;
      }
      if (step.kind === 'head') {
        if (this.#startRequest(step.head, input, offset)) {
          this.#parsing = false;
          return;
        }
        continue;
      }
      if (step.kind === 'end') {
        if (this.#ended(input, offset)) continue;
        break;
      }
      // A request that cannot be parsed: answer (if nothing is being answered) and close.
      const raw = this.#request === null ? input : undefined;
      this.#fail(step.error, raw);
      break;
    }
    this.#parsing = false;
  }

  /** A request's body ended at `offset`; true when parsing goes on with the next request in `input`. */
  #ended(input: Buffer, offset: number): boolean {
    this.#request?.finish();
    if (this.#response !== null && !this.#response.writableFinished) {
      // Wait for the response; keep the rest for after it.
      if (offset < input.length) this.#holdRest(input, offset);
      return false;
    }
    this.#next();
    if (this.phase !== PHASE_IDLE) return false;
    if (offset >= input.length) return true;
    if (this.socket.writableNeedDrain) {
      // The client does not take its answers: read no further requests until it does.
      this.#holdRest(input, offset);
      this.#awaitDrain();
      return false;
    }
    this.#expectHead();
    return true;
  }

  /** Holds input[offset..] (held bytes are empty): copied when it is a borrowed read. */
  #holdRest(input: Buffer, offset: number): void {
    const rest = input.subarray(offset);
    if (this.#borrowed) this.#held.append(rest);
    else this.#held.replace(rest);
  }

  /** Returns true when the connection left HTTP (upgrade) or closed. */
  #startRequest(head: RequestHead, input: Buffer, offset: number): boolean {
    this.phase = PHASE_ACTIVE;
    this.deadline = 0;
    this.#readDeadline = 0;
    const request = new H1Request(this, head);
    this.#requests += 1;
    if (head.upgrade) {
      this.#upgrade(request, Buffer.from(input.subarray(offset)));
      return true;
    }
    const response = new H1Response(this, head, this.closing());
    this.#request = request;
    this.#response = response;
    this.#server.handler.onRequest(request, response);
    return false;
  }

  /** The socket leaves HTTP: the upgrade path owns its bytes; this server keeps its deadlines. */
  #upgrade(request: H1Request, rest: Buffer): void {
    flushBatchedWrites(this.socket); // the answers before it, ahead of whatever the upgrade path writes
    this.phase = PHASE_UPGRADED;
    setBorrowedReader(this.socket, null);
    this.socket.off('data', this.#onData);
    this.socket.off('end', this.#onEnd);
    this.socket.pause();
    this.socket.once('finish', this.#upgradeEnded);
    request.complete = true;
    this.#server.handler.onUpgrade(request, this.socket, rest);
  }

  /** The gateway ended its side of an upgraded socket (a refusal, or the tunnel's end). */
  #upgradeEnded = (): void => {
    if (this.phase !== PHASE_UPGRADED) return;
    if (this.socket.readableEnded) {
      this.socket.destroy();
      return;
    }
    // The client gets the lingering deadlines to close its side: never a half-open socket for good.
    this.phase = PHASE_LINGER;
    this.#lingerReason = switchedSockets.has(this.socket) ? 'lingering_close' : 'upgrade_refused';
    this.socket.on('data', this.#onLingerData);
    this.socket.once('end', this.#destroy);
    this.#startLingering();
    this.socket.resume();
  };

  #onLingerData = (): void => {
    this.#read = true;
  };

  #destroy = (): void => {
    flushBatchedWrites(this.socket);
    this.socket.destroy();
  };

  /** Called by the response when it has been written completely. */
  responseDone(response: H1Response): void {
    if (response !== this.#response) return;
    const request = this.#request;
    if (!response.shouldKeepAlive) {
      this.#linger();
      return;
    }
    if (request !== null && !request.complete) {
      // The body is not ours to forward any more: read past it (within nginx's lingering deadlines),
      // then the next request.
      this.phase = PHASE_DISCARD;
      this.#lingerReason = 'lingering_close';
      this.#startLingering();
      request.resume();
      return;
    }
    if (this.#parsing) return; // #parse continues with the next request itself
    this.#next();
    this.#continueHeld();
  }

  /** Parses the bytes held back, once the client has taken the responses before them. */
  #continueHeld(): void {
    if (this.#held.length === 0 || this.phase !== PHASE_IDLE) return;
    if (this.socket.writableNeedDrain) {
      this.#awaitDrain();
      return;
    }
    const held = this.#held.view();
    this.#held.clear();
    this.socket.resume();
    this.#expectHead();
    this.#parse(held);
  }

  #awaitDrain(): void {
    this.socket.pause();
    this.socket.once('drain', this.#onDrain);
  }

  #onDrain = (): void => {
    if (this.phase === PHASE_IDLE && !this.#parsing) this.#continueHeld();
  };

  /** The request and its response are done: back to waiting for the next one. */
  #next(): void {
    const response = this.#response;
    if (response !== null && !response.writableFinished) return;
    if (response !== null && !response.shouldKeepAlive) {
      this.#linger();
      return;
    }
    this.#request = null;
    this.#response = null;
    this.#lingerEnd = 0;
    this.#readDeadline = 0;
    this.phase = PHASE_IDLE;
    this.deadline = performance.now() + this.timeouts.keepAliveMs;
  }

  /**
   * Closes after the last response. As nginx's lingering close: when the client may still be sending
   * (a body left unread, pipelined bytes), read and drop until it closes, within lingering_time and
   * lingering_timeout; otherwise close as soon as the response is out.
   */
  #linger(): void {
    if (this.phase === PHASE_LINGER || this.phase === PHASE_DONE) return;
    const request = this.#request;
    const quiet =
      (request === null || request.complete) && this.#held.length === 0 && !this.#parser.holdsPartial;
    this.#enterLinger();
    // Built only for a body still being read: an Error (its stack) per closed connection is not free.
    if (request !== null && !request.complete) request.fail(coded('ECONNRESET', 'connection closing'));
    this.socket.once('finish', quiet ? this.#destroy : this.#startLingering);
    this.socket.end();
    this.socket.resume();
  }

  #enterLinger(): void {
    this.phase = PHASE_LINGER;
    this.#lingerReason = 'lingering_close';
    this.#held.clear();
    this.deadline = 0;
    this.#lingerEnd = 0;
  }

  /** Starts lingering_time and lingering_timeout (once the last response is out). */
  #startLingering = (): void => {
    if (this.phase === PHASE_DONE) return;
    const now = performance.now();
    this.#lingerEnd = now + this.timeouts.lingeringTimeMs;
    this.#readDeadline = now + this.timeouts.lingeringTimeoutMs;
    this.#read = false;
  };

  #fail(error: RequestParseError, raw: Buffer | undefined, status: number = error.status): void {
    const response = this.#response;
    if (response !== null && !response.headersSent) {
      // A body that breaks its framing before anything was answered: the pipeline answers 400 (as
      // nginx's "client sent invalid chunked body") and the connection closes after it.
      this.#inputBroken = true;
      this.#mustClose = true;
      this.#request?.fail(invalidBody(error));
      return;
    }
    if (response !== null && !response.writableFinished) {
      // Part of a body was bad after the pipeline started answering: all we can do is cut.
      this.#request?.fail(coded(error.code, error.message));
      flushBatchedWrites(this.socket);
      this.socket.destroy();
      return;
    }
    if (this.phase === PHASE_DISCARD) {
      // A body being dropped after its answer is bad: no second answer, just the closing.
      this.#linger();
      return;
    }
    this.#answerAndLinger(Object.assign(clientError(error, raw), { statusCode: status }));
  }

  /** The pipeline answers an error and ends the socket; what the client still sends is read and dropped. */
  #answerAndLinger(error: Error & { code: string }): void {
    this.#enterLinger();
    this.socket.once('finish', this.#startLingering);
    this.#server.handler.onClientError(error, this.socket);
    if (!this.socket.destroyed) this.socket.resume();
  }

  /** The sweep: compares this connection's deadlines with `now`. */
  check(now: number): void {
    if (this.phase === PHASE_DONE || !this.#checkSend(now)) return;
    switch (this.phase) {
      case PHASE_ACTIVE:
        this.#checkBody(now);
        return;
      case PHASE_DISCARD:
      case PHASE_LINGER:
        this.#checkLinger(now);
        return;
      case PHASE_UPGRADED:
        return;
      default:
        if (this.deadline !== 0 && now >= this.deadline) this.#expire();
    }
  }

  /** send_timeout: output the client leaves untaken. False when that closed the connection. */
  #checkSend(now: number): boolean {
    const unsent = this.socket.writableLength;
    if (unsent === 0) {
      this.#sendDeadline = 0;
      this.#unsent = 0;
      return true;
    }
    // Progress is output leaving the buffer; output added to it is not.
    if (this.#sendDeadline === 0 || unsent < this.#unsent) this.#sendDeadline = now + this.timeouts.sendMs;
    this.#unsent = unsent;
    if (now < this.#sendDeadline) return true;
    // As ingress-nginx (reset_timedout_connection on): a reset frees what the kernel still holds for it.
    this.#shut('send_timeout', true);
    return false;
  }

  /** A deadline passed: counted once, closed (reset when `reset`); the sweep looks at it no more. */
  #shut(reason: ConnectionCloseReason | null, reset: boolean): void {
    if (reason !== null) this.#server.closed(reason);
    this.phase = PHASE_DONE;
    if (reset) resetOrDestroy(this.socket);
    else {
      flushBatchedWrites(this.socket);
      this.socket.destroy();
    }
  }

  /** client_body_timeout: between two reads of a body the pipeline is waiting for. */
  #checkBody(now: number): void {
    if (this.deadline !== 0 && now >= this.deadline) {
      this.#shut(null, false); // the pipeline did not answer the body timeout in time (counted then)
      return;
    }
    const request = this.#request;
    if (request === null || !request.awaitingBody) {
      this.#readDeadline = 0;
      return;
    }
    if (this.#read || this.#readDeadline === 0) {
      this.#read = false;
      this.#readDeadline = now + this.timeouts.bodyMs;
    } else if (now >= this.#readDeadline) {
      this.#server.closed('client_body_timeout');
      this.#mustClose = true;
      this.#readDeadline = 0;
      // The pipeline answers 408 (or cuts a response already under way); the backstop closes otherwise.
      this.deadline = now + this.timeouts.lingeringTimeoutMs;
      request.fail(coded('CLIENT_BODY_TIMEOUT', 'client timed out while reading client request body'));
    }
  }

  /** lingering_timeout between two reads, lingering_time in all. */
  #checkLinger(now: number): void {
    if (this.#lingerEnd === 0) return; // the last response is still going out (the send timeout applies)
    if (this.#read) {
      this.#read = false;
      this.#readDeadline = now + this.timeouts.lingeringTimeoutMs;
    }
    if (now < this.#readDeadline && now < this.#lingerEnd) return;
    this.#shut(this.#lingerReason, false);
  }

  /** The header or keep-alive deadline passed. */
  #expire(): void {
    if (this.phase === PHASE_HEAD && this.#parser.holdsPartial) {
      this.#server.closed('header_timeout');
      // What came of the head goes with it: nginx logs a timed-out request line as far as it got.
      const partial = this.#parser.heldHead;
      const error = coded('ERR_HTTP_REQUEST_TIMEOUT', 'client header timeout');
      this.#answerAndLinger(partial === undefined ? error : Object.assign(error, { rawPacket: partial }));
      return;
    }
    this.#shut(this.phase === PHASE_IDLE ? 'keepalive_timeout' : 'header_timeout', false);
  }

  isIdle(): boolean {
    return this.phase === PHASE_IDLE || (this.phase === PHASE_HEAD && !this.#parser.holdsPartial);
  }

  /** Part of a request head has come and the rest has not: nginx's `reading` connection state. */
  isReadingHead(): boolean {
    return this.phase === PHASE_HEAD && this.#parser.holdsPartial;
  }

  #onEnd = (): void => {
    // A client that half-closes abandons what is in flight (a body still coming is cut: nginx's 400).
    if (this.#response !== null && !this.#response.writableFinished) {
      this.#request?.fail(clientClosed());
      flushBatchedWrites(this.socket);
      this.socket.destroy();
      return;
    }
    if (this.phase === PHASE_LINGER || this.phase === PHASE_DISCARD) this.#destroy();
    else this.socket.end();
  };

  #onClose = (): void => {
    this.phase = PHASE_DONE;
    this.#server.connections.delete(this);
    this.#held.clear();
    this.#request?.fail(clientClosed());
    const response = this.#response;
    if (response !== null && !response.writableFinished) response.closed();
  };
}

interface ServerState {
  readonly options: H1ServerOptions;
  readonly handler: H1Handler;
  readonly connections: Set<H1Connection>;
  /** A deadline closed a connection. */
  closed(reason: ConnectionCloseReason): void;
}

export function createH1Server(handler: H1Handler, options: H1ServerOptions): H1Server {
  const state: ServerState = {
    options,
    handler,
    connections: new Set(),
    closed: options.onDeadline ?? (() => {}),
  };
  let sweep: NodeJS.Timeout | null = null;
  let period = 0;
  const check = () => {
    const now = performance.now();
    for (const conn of state.connections) conn.check(now);
    if (state.connections.size === 0 && sweep !== null) {
      clearInterval(sweep);
      sweep = null;
    }
  };
  return {
    serve(socket, timeouts) {
      state.connections.add(new H1Connection(socket, state, timeouts));
      // One sweep for all connections, as often as the shortest deadline in use needs.
      const wanted = sweepPeriodMs(timeouts);
      if (sweep === null || wanted < period) {
        if (sweep !== null) clearInterval(sweep);
        period = wanted;
        sweep = setInterval(check, period);
        sweep.unref();
      }
      socket.resume();
    },
    closeIdle() {
      for (const conn of state.connections) {
        if (!conn.isIdle()) continue;
        flushBatchedWrites(conn.socket); // an answer finished this turn is still held
        conn.socket.destroy();
      }
    },
    destroyAll() {
      for (const conn of state.connections) {
        flushBatchedWrites(conn.socket); // an answer finished this turn is still held
        conn.socket.destroy();
      }
      if (sweep !== null) clearInterval(sweep);
      sweep = null;
    },
    readingHeads() {
      let reading = 0;
      for (const conn of state.connections) if (conn.isReadingHead()) reading += 1;
      return reading;
    },
  };
}
