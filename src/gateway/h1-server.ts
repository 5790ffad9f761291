// keepip's HTTP/1.1 server side (the gateway's only one): the strict parser of h1-request.ts over
// the sockets the listeners accept, feeding the request pipeline (handler.ts). Per connection: one
// small object, the parser, and a parse buffer only while bytes are pending. There is no timer per
// connection: one sweep per server checks each connection's deadline (client header timeout while a
// head arrives, keep-alive timeout between requests, a short linger after the last response).
// Requests on a connection are handled one at a time, in order: pipelined bytes wait (bounded) until
// the response before them is complete.
import { type IncomingHttpHeaders, STATUS_CODES } from 'node:http';
import type net from 'node:net';
import type { GatewayRequest, GatewayResponse, H1Handler } from './exchange.ts';
import { type RequestHead, type RequestParseError, RequestParser } from './h1-request.ts';

export interface H1ServerOptions {
  /** nginx client_header_timeout: a request head must arrive within this time. */
  clientHeaderTimeoutMs: number;
  /** Idle time allowed between two requests. */
  keepAliveTimeoutMs: number;
  /** Cap on a request head (node:http's maxHeaderSize, 16 KiB). */
  maxHeaderBytes: number;
  /** Every response closes its connection (the plain-HTTP-on-HTTPS server). */
  closeAfterResponse?: boolean;
}

export interface H1Server {
  /** Serves HTTP/1.1 on an accepted (and, for HTTPS, TLS-wrapped) socket. */
  serve(socket: net.Socket): void;
  /** Closes connections that are between requests. */
  closeIdle(): void;
  /** Destroys every connection and stops the sweep. */
  destroyAll(): void;
}

/** How long a connection lingers after its last response, reading and discarding, before it is cut. */
const LINGER_MS = 2_000;
/** Pipelined bytes held while a response is in progress before reading from the socket pauses. */
const PIPELINE_HOLD_BYTES = 64 * 1024;
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
const UNSAFE_VALUE = /[\r\n\0]/;
/** A first body piece up to this size goes out in one buffer with the response head. */
const COALESCE_BYTES = 16 * 1024;

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
  readonly #conn: H1Connection;
  readonly #head: boolean;
  readonly #http10: boolean;
  #chunked = false;
  #noBody = false;
  #pendingHead: string | null = null;
  #closeListeners: (() => void)[] | null = null;

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
    this.statusCode = statusCode;
    if (this.statusMessage === '') this.statusMessage = STATUS_CODES[statusCode] ?? 'unknown';
    let out = `HTTP/1.1 ${statusCode} ${this.statusMessage.replace(UNSAFE_VALUE, ' ')}\r\n`;
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
        if (lower === 'content-length') hasLength = true;
        else if (lower === 'date') hasDate = true;
        if (Array.isArray(value)) {
          for (const item of value) if (!UNSAFE_VALUE.test(item)) out += `${name}: ${item}\r\n`;
        } else {
          const text = typeof value === 'number' ? String(value) : value;
          if (!UNSAFE_VALUE.test(text)) out += `${name}: ${text}\r\n`;
        }
      }
    }
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
    if (this.shouldKeepAlive) {
      out += `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(this.#conn.keepAliveSeconds())}\r\n\r\n`;
    } else out += 'connection: close\r\n\r\n';
    this.#pendingHead = out;
    this.headersSent = true;
    return this;
  }

  #flushHead(): void {
    if (!this.headersSent) this.writeHead(this.statusCode, {});
    const head = this.#pendingHead;
    if (head !== null) {
      this.#pendingHead = null;
      this.#conn.socket.write(head, 'latin1');
    }
  }

  write(chunk: Buffer): boolean {
    if (this.writableFinished || this.#conn.socket.destroyed) return true;
    const socket = this.#conn.socket;
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
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
    } else ok = socket.write(chunk);
    socket.uncork();
    return ok;
  }

  end(chunk?: Buffer): this {
    if (this.writableFinished) return this;
    const socket = this.#conn.socket;
    socket.cork();
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    else this.#flushHead();
    if (this.#chunked) socket.write('0\r\n\r\n', 'latin1');
    socket.uncork();
    this.writableFinished = true;
    this.#closeListeners = null;
    this.#conn.responseDone(this);
    return this;
  }

  destroy(): this {
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

const PHASE_IDLE = 0; // between requests (keep-alive deadline)
const PHASE_HEAD = 1; // a head is arriving (header deadline)
const PHASE_ACTIVE = 2; // a request is being served (no deadline)
const PHASE_LINGER = 3; // the last response was sent; discarding until the client closes
const PHASE_DONE = 4; // handed to the upgrade path or closed

class H1Connection {
  readonly socket: net.Socket;
  readonly #server: ServerState;
  readonly #parser: RequestParser;
  /** Bytes read but not parsed yet (pipelined requests waiting for the response before them). */
  #held: Buffer | null = null;
  #request: H1Request | null = null;
  #response: H1Response | null = null;
  #parsing = false;
  phase = PHASE_IDLE;
  deadline: number;

  constructor(socket: net.Socket, server: ServerState) {
    this.socket = socket;
    this.#server = server;
    this.#parser = new RequestParser({ maxHeaderBytes: server.options.maxHeaderBytes });
    this.deadline = performance.now() + server.options.clientHeaderTimeoutMs;
    this.phase = PHASE_HEAD;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.once('close', this.#onClose);
  }

  closing(): boolean {
    return this.#server.options.closeAfterResponse === true;
  }

  keepAliveSeconds(): number {
    return this.#server.options.keepAliveTimeoutMs / 1000;
  }

  #onData = (chunk: Buffer): void => {
    if (this.phase === PHASE_LINGER || this.phase === PHASE_DONE) return;
    if (this.#parsing || this.#request?.complete === true) {
      // A response is still on its way: hold what follows (bounded), in order.
      this.#held = this.#held === null ? chunk : Buffer.concat([this.#held, chunk]);
      if (this.#held.length > PIPELINE_HOLD_BYTES) this.socket.pause();
      return;
    }
    if (this.phase === PHASE_IDLE) {
      this.phase = PHASE_HEAD;
      this.deadline = performance.now() + this.#server.options.clientHeaderTimeoutMs;
    }
    this.#parse(chunk);
  };

  #parse(input: Buffer): void {
    const parser = this.#parser;
    this.#parsing = true;
    let offset = 0;
    for (;;) {
      const step = parser.execute(input, offset);
      offset += parser.consumed;
      if (step.kind === 'more') break;
      if (step.kind === 'body') {
        this.#request?.push(step.chunk);
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
        const request = this.#request;
        if (request !== null) request.finish();
        if (this.#response !== null && !this.#response.writableFinished) {
          // Wait for the response; keep the rest for after it.
          if (offset < input.length) this.#held = input.subarray(offset);
          break;
        }
        this.#next();
        if (this.phase !== PHASE_IDLE) break;
        if (offset < input.length) {
          this.phase = PHASE_HEAD;
          this.deadline = performance.now() + this.#server.options.clientHeaderTimeoutMs;
        }
        continue;
      }
      // A request that cannot be parsed: answer (if nothing is being answered) and close.
      const raw = this.#request === null ? input : undefined;
      this.#fail(step.error, raw);
      break;
    }
    this.#parsing = false;
  }

  /** Returns true when the connection left HTTP (upgrade) or closed. */
  #startRequest(head: RequestHead, input: Buffer, offset: number): boolean {
    this.phase = PHASE_ACTIVE;
    this.deadline = 0;
    const request = new H1Request(this, head);
    const server = this.#server;
    if (head.upgrade) {
      this.phase = PHASE_DONE;
      this.socket.off('data', this.#onData);
      this.socket.off('end', this.#onEnd);
      this.socket.off('close', this.#onClose);
      server.connections.delete(this);
      this.socket.pause();
      const rest = Buffer.from(input.subarray(offset));
      request.complete = true;
      server.handler.onUpgrade(request, this.socket, rest);
      return true;
    }
    if (head.expectUnsupported) {
      this.#fail({ code: 'H1_BAD_HEADER', status: 400, message: 'unsupported expectation' }, undefined, 417);
      return true;
    }
    const response = new H1Response(this, head, server.options.closeAfterResponse === true);
    this.#request = request;
    this.#response = response;
    server.handler.onRequest(request, response);
    return false;
  }

  /** Called by the response when it has been written completely. */
  responseDone(response: H1Response): void {
    if (response !== this.#response) return;
    const request = this.#request;
    if (!response.shouldKeepAlive) {
      this.#linger();
      return;
    }
    if (request !== null && !request.complete) {
      // The body is not ours to forward any more; read past it, then the next request.
      request.resume();
      return;
    }
    if (this.#parsing) return; // #parse continues with the next request itself
    this.#next();
    const held = this.#held;
    if (held !== null) {
      this.#held = null;
      this.socket.resume();
      this.phase = PHASE_HEAD;
      this.deadline = performance.now() + this.#server.options.clientHeaderTimeoutMs;
      this.#parse(held);
    }
  }

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
    this.phase = PHASE_IDLE;
    this.deadline = performance.now() + this.#server.options.keepAliveTimeoutMs;
  }

  #linger(): void {
    if (this.phase === PHASE_LINGER || this.phase === PHASE_DONE) return;
    this.phase = PHASE_LINGER;
    this.#held = null;
    this.#request?.fail(Object.assign(new Error('connection closing'), { code: 'ECONNRESET' }));
    this.deadline = performance.now() + LINGER_MS;
    this.socket.end();
    this.socket.resume();
  }

  #fail(error: RequestParseError, raw: Buffer | undefined, status: number = error.status): void {
    const response = this.#response;
    if (response !== null && !response.writableFinished) {
      // Part of a body was bad after the pipeline started answering: all we can do is cut.
      this.#request?.fail(Object.assign(new Error(error.message), { code: error.code }));
      this.socket.destroy();
      return;
    }
    this.phase = PHASE_LINGER;
    this.deadline = performance.now() + LINGER_MS;
    this.#server.handler.onClientError(
      Object.assign(clientError(error, raw), { statusCode: status }),
      this.socket,
    );
  }

  /** The deadline passed. */
  expire(): void {
    if (this.phase === PHASE_HEAD && this.#parser.holdsPartial) {
      this.phase = PHASE_LINGER;
      this.deadline = performance.now() + LINGER_MS;
      this.#server.handler.onClientError(
        Object.assign(new Error('client header timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }),
        this.socket,
      );
      return;
    }
    this.socket.destroy();
  }

  isIdle(): boolean {
    return this.phase === PHASE_IDLE || (this.phase === PHASE_HEAD && !this.#parser.holdsPartial);
  }

  #onEnd = (): void => {
    // As node:http (httpAllowHalfOpen off): a client that half-closes abandons what is in flight.
    if (this.#response !== null && !this.#response.writableFinished) {
      this.#request?.fail(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
      this.socket.destroy();
      return;
    }
    if (this.phase === PHASE_LINGER) this.socket.destroy();
    else this.socket.end();
  };

  #onClose = (): void => {
    this.phase = PHASE_DONE;
    this.#server.connections.delete(this);
    this.#held = null;
    this.#request?.fail(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    const response = this.#response;
    if (response !== null && !response.writableFinished) response.closed();
  };
}

interface ServerState {
  readonly options: H1ServerOptions;
  readonly handler: H1Handler;
  readonly connections: Set<H1Connection>;
}

export function createH1Server(handler: H1Handler, options: H1ServerOptions): H1Server {
  const state: ServerState = { options, handler, connections: new Set() };
  let sweep: NodeJS.Timeout | null = null;
  const period = Math.max(
    50,
    Math.min(
      1_000,
      options.clientHeaderTimeoutMs,
      options.keepAliveTimeoutMs > 0 ? options.keepAliveTimeoutMs : 1_000,
    ),
  );
  const check = () => {
    const now = performance.now();
    for (const conn of state.connections) if (conn.deadline !== 0 && now >= conn.deadline) conn.expire();
    if (state.connections.size === 0 && sweep !== null) {
      clearInterval(sweep);
      sweep = null;
    }
  };
  return {
    serve(socket) {
      state.connections.add(new H1Connection(socket, state));
      if (sweep === null) {
        sweep = setInterval(check, period);
        sweep.unref();
      }
      socket.resume();
    },
    closeIdle() {
      for (const conn of state.connections) if (conn.isIdle()) conn.socket.destroy();
    },
    destroyAll() {
      for (const conn of state.connections) conn.socket.destroy();
      if (sweep !== null) clearInterval(sweep);
      sweep = null;
    },
  };
}
