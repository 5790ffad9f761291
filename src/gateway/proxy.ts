// Forwarding one request to a backend: round robin over its endpoints, the next endpoint when a
// connection cannot be made (nginx's proxy_next_upstream error timeout), proxy-read/send timeouts,
// the body size limit while the body streams, and backpressure in both directions. The outcome carries
// what the access log and the error log need ($upstream_addr, $upstream_status, times, the failure).
import { DNS_FAILURE_CODES, type UpstreamController, type UpstreamHandler } from './h1-client.ts';
import { type BodyFraming, fieldsToHeaders } from './h1-response.ts';
import { headValue } from './header-value.ts';
import {
  type GatewayRequest,
  type GatewayResponse,
  newUpstreamAttempt,
  type ProxyFailureCode,
  type UpstreamAttempt,
} from './exchange.ts';
import type { NextUpstreamModel } from '../config/model.ts';
import { formatHostPort } from '../net/host-port.ts';
import { DEFAULT_NEXT_UPSTREAM, EndpointRotation, retryOnFailure, retryOnStatus } from './next-upstream.ts';
import type { BalancedUpstream, UpstreamMember } from './upstream.ts';

export interface ProxyRequest {
  upstream: BalancedUpstream;
  method: string;
  /** Request target sent upstream (after rewrite-target), query included. */
  path: string;
  headers: Record<string, string | string[]>;
  readTimeoutMs: number;
  sendTimeoutMs: number;
  /** proxy-body-size in bytes; 0 means unlimited (as nginx's client_max_body_size 0). */
  bodyLimitBytes: number;
  /** Backend response fields the client never sees: hop-by-hop, nginx's hidden ones, hide-headers. */
  hiddenResponseHeaders: ReadonlySet<string>;
  /** Whether the client request has a body to stream (Content-Length > 0 or Transfer-Encoding). */
  hasBody: boolean;
  /** The member to try first (a sticky session); default: the next in round robin. */
  firstMember?: number;
  /** Told each member index tried, in order (session-cookie-change-on-failure follows a retry). */
  onAttempt?: (index: number) => void;
  /** proxy-next-upstream, -tries, -timeout (next-upstream.ts); default: ingress-nginx's. */
  nextUpstream?: NextUpstreamModel;
  /** custom-http-errors: answers with these statuses are not streamed but handed back (custom-errors.ts). */
  interceptStatuses?: readonly number[];
  /** proxy-http-version 1.0 (plain HTTP backends). */
  httpVersion?: '1.0';
  /** proxy-request-buffering on: the body read whole (buffered-proxy.ts), sent from its start on every try. */
  replayBody?: () => AsyncIterable<Buffer>;
  /** The outcome to fill (the caller's, read while the answer is written); default: a new one. */
  outcome?: ProxyOutcome;
}

export type { UpstreamAttempt };

export type { ProxyFailureCode };

export interface ProxyFailure {
  code: ProxyFailureCode;
  /** nginx's wording for the error log, e.g. `connect() failed (111: Connection refused) while connecting to upstream`. */
  message: string;
  /** `http://10.0.0.1:80/path` as nginx prints `upstream: "…"`. */
  upstreamUrl: string | null;
  /** The error log level; absent: error. `warn`: the answer was relayed all the same (extra bytes). */
  level?: 'warn';
}

export interface ProxyOutcome {
  /** Status the client saw: the upstream's, the gateway's own (502, 504, 413), or 499 when the client left. */
  status: number;
  attempts: UpstreamAttempt[];
  /** Body bytes received from the (last) upstream: $upstream_response_length. */
  upstreamBytes: number;
  /** Body bytes written to the client. */
  bodyBytesSent: number;
  /** Request body bytes read from the client (for $request_length). */
  requestBodyBytes: number;
  /**
   * Set when a request failed (even if a later endpoint then answered, the last failure is kept for the
   * log); also a backend's misbehaviour the answer survived (level warn).
   */
  failures: ProxyFailure[];
  /** True when the gateway must answer with its own error page (nothing was sent yet). */
  answeredByGateway: boolean;
  /** A status of `interceptStatuses` the backend answered: nothing was sent, the caller answers. */
  intercepted?: number;
  /** The head of the last backend answer as it came ($upstream_http_<name>); absent without one. */
  upstreamHead?: BackendHead;
}

/** An outcome before any attempt: nothing sent, nothing read. */
export function newProxyOutcome(): ProxyOutcome {
  return {
    status: 0,
    attempts: [],
    upstreamBytes: 0,
    bodyBytesSent: 0,
    requestBodyBytes: 0,
    failures: [],
    answeredByGateway: false,
  };
}

/** A backend's response head as received, read by name ($upstream_http_<name>, several joined with ", "). */
export class BackendHead {
  readonly #fields: readonly string[] | null;
  readonly #headers: Readonly<Record<string, string | string[] | undefined>> | null;

  constructor(
    fields: readonly string[] | null,
    headers: Readonly<Record<string, string | string[] | undefined>> | null,
  ) {
    this.#fields = fields;
    this.#headers = headers;
  }

  sentHeader(name: string): string | null {
    return headValue(this.#headers, this.#fields, name);
  }
}

class BodyTooLargeError extends Error {
  readonly code = 'CLIENT_BODY_TOO_LARGE';
}

class SendTimeoutError extends Error {
  readonly code = 'UPSTREAM_SEND_TIMEOUT';
}

/** What an upstream failure means: its code, the status the client gets, nginx's words. */
export interface UpstreamVerdict {
  code: ProxyFailureCode;
  status: 502 | 504 | 413 | 408 | 400;
  message: string;
  retryable: boolean;
}

/** The client's own failures while its body streamed upstream (h1-server.ts), or null. */
function clientBodyVerdict(code: string, error: Error): UpstreamVerdict | null {
  switch (code) {
    case 'CLIENT_BODY_TOO_LARGE':
      return { code: 'CLIENT_BODY_TOO_LARGE', status: 413, message: error.message, retryable: false };
    case 'CLIENT_BODY_INVALID':
      // The client's body broke its framing while streaming upstream (h1-server.ts): 400, as nginx.
      return { code: 'CLIENT_BODY_INVALID', status: 400, message: error.message, retryable: false };
    case 'CLIENT_CLOSED':
      // The client left while its body was streaming upstream: 400, as nginx logs it (no upstream status).
      return { code: 'CLIENT_CLOSED', status: 400, message: error.message, retryable: false };
    case 'CLIENT_BODY_TIMEOUT':
      // client_body_timeout passed while the body was streaming upstream (h1-server.ts): 408, as nginx.
      return {
        code: 'CLIENT_BODY_TIMEOUT',
        status: 408,
        message: 'client timed out (110: Connection timed out) while reading client request body',
        retryable: false,
      };
    default:
      return null;
  }
}

/** Maps an upstream client (keepip's, undici's) or socket error to nginx's wording and the status the client gets. */
export function classifyUpstreamError(
  error: Error & { code?: string },
  responseStarted: boolean,
): UpstreamVerdict {
  const code = error.code ?? '';
  const byClient = clientBodyVerdict(code, error);
  if (byClient !== null) return byClient;
  const phase = responseStarted ? 'while reading upstream' : 'while reading response header from upstream';
  if (DNS_FAILURE_CODES.has(code)) {
    // A connect failure, in nginx's resolver words.
    return {
      code: 'UPSTREAM_CONNECT_REFUSED',
      status: 502,
      message: `${(error as { hostname?: string }).hostname ?? 'upstream'} could not be resolved (${code === 'EAI_AGAIN' ? '2: Server failure' : '3: Host not found'}) while connecting to upstream`,
      retryable: true,
    };
  }
  switch (code) {
    case 'ECONNREFUSED':
      return {
        code: 'UPSTREAM_CONNECT_REFUSED',
        status: 502,
        message: 'connect() failed (111: Connection refused) while connecting to upstream',
        retryable: true,
      };
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UPSTREAM_CONNECT_TIMEOUT':
      return {
        code: 'UPSTREAM_CONNECT_TIMEOUT',
        status: 504,
        message: 'upstream timed out (110: Connection timed out) while connecting to upstream',
        retryable: true,
      };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return {
        code: 'UPSTREAM_CONNECT_REFUSED',
        status: 502,
        message: `connect() failed (${code}) while connecting to upstream`,
        retryable: true,
      };
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UPSTREAM_READ_TIMEOUT':
      return {
        code: 'UPSTREAM_READ_TIMEOUT',
        status: 504,
        message: `upstream timed out (110: Connection timed out) ${phase}`,
        retryable: false,
      };
    case 'UPSTREAM_SEND_TIMEOUT':
      return {
        code: 'UPSTREAM_SEND_TIMEOUT',
        status: 504,
        message: 'upstream timed out (110: Connection timed out) while sending request to upstream',
        retryable: false,
      };
    case 'UND_ERR_SOCKET':
    case 'UPSTREAM_CLOSED':
    case 'ECONNRESET':
    case 'EPIPE':
      return {
        code: 'UPSTREAM_CLOSED',
        status: 502,
        message: `upstream prematurely closed connection ${phase}`,
        retryable: false,
      };
    case 'UPSTREAM_INVALID_HEADER':
      // keepip's HTTP/1.1 client: a response head it refuses to frame ("upstream sent invalid header"…).
      return {
        code: 'UPSTREAM_INVALID_HEADER',
        status: 502,
        message: `${error.message} ${phase}`,
        retryable: false,
      };
    case 'UPSTREAM_ERROR':
      // keepip's HTTP/1.1 client: a request it cannot send, a body that breaks its framing.
      return { code: 'UPSTREAM_ERROR', status: 502, message: `${error.message} ${phase}`, retryable: false };
    default:
      return {
        code: 'UPSTREAM_ERROR',
        status: 502,
        message: `${code || error.name}: ${error.message} ${phase}`,
        retryable: false,
      };
  }
}

/**
 * Streams the client body upstream, counting bytes against the limit. proxy-send-timeout is the time
 * between two successive writes upstream, whether the upstream is slow to take a piece or the client
 * slow to send the next one (nginx's request_body_blocked); the client side also has
 * client_body_timeout (h1-server.ts), and whichever passes first answers (504 or 408).
 */
async function* streamBody(exchange: ProxyExchange, req: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const limit = exchange.request.bodyLimitBytes;
  let received = 0;
  exchange.armSendTimer();
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      exchange.bodyStarted = true;
      received += chunk.length;
      exchange.countBody(chunk.length);
      if (limit > 0 && received > limit) {
        throw new BodyTooLargeError(`client intended to send too large chunked body: ${received} bytes`);
      }
      yield chunk;
      exchange.armSendTimer(); // the piece was taken: a new interval starts
    }
  } finally {
    exchange.disarmSendTimer();
  }
}

/** One client request on its way through one or more endpoints; also the upstream client's handler. */
class ProxyExchange implements UpstreamHandler {
  readonly request: ProxyRequest;
  readonly #req: GatewayRequest;
  readonly #res: GatewayResponse;
  readonly #done: (outcome: ProxyOutcome) => void;
  readonly #outcome: ProxyOutcome;
  #controller: UpstreamController | null = null;
  #member: UpstreamMember | null = null;
  readonly #rotation: EndpointRotation;
  #started = 0;
  #responseStarted = false;
  #finished = false;
  #sendTimer: NodeJS.Timeout | null = null;
  /** Responses skipped for proxy-next-upstream http_*: their remaining events are ignored. */
  #skipped: WeakSet<UpstreamController> | null = null;
  bodyStarted = false;

  constructor(
    req: GatewayRequest,
    res: GatewayResponse,
    request: ProxyRequest,
    done: (outcome: ProxyOutcome) => void,
  ) {
    this.#req = req;
    this.#res = res;
    this.request = request;
    this.#done = done;
    this.#rotation = new EndpointRotation(request.upstream, this.#policy, request.firstMember);
    this.#outcome = request.outcome ?? newProxyOutcome();
  }

  start(): void {
    this.#res.once('close', this.#onClientClose);
    this.#attempt();
  }

  #attempt(): void {
    const { index, member } = this.#rotation.take();
    this.request.onAttempt?.(index);
    this.#member = member;
    this.#started = performance.now();
    // The previous attempt's controller must not answer for this one (its peer, its connect time).
    this.#controller = null;
    this.#outcome.attempts.push(newUpstreamAttempt(member.hostPort));
    const { request } = this;
    member.pool.dispatch(
      {
        method: request.method,
        path: request.path,
        headers: request.headers,
        // The generator is what lets us count bytes against the limit and time each write.
        body: request.hasBody ? streamBody(this, request.replayBody?.() ?? this.#req) : null,
        headersTimeout: request.readTimeoutMs,
        bodyTimeout: request.readTimeoutMs,
        ...(request.httpVersion !== undefined ? { httpVersion: request.httpVersion } : {}),
      },
      this,
    );
  }

  get #policy(): NextUpstreamModel {
    return this.request.nextUpstream ?? DEFAULT_NEXT_UPSTREAM;
  }

  /** Nothing went to the client or left with the body yet, tries and time remain (proxy_next_upstream_*). */
  #mayTryNext(): boolean {
    return (
      !this.#responseStarted &&
      (!this.bodyStarted || this.request.replayBody !== undefined) &&
      this.#rotation.mayTakeNext()
    );
  }

  countBody(bytes: number): void {
    this.#outcome.requestBodyBytes += bytes;
  }

  /** Starts (or restarts) the proxy-send-timeout interval; one timer per request, refreshed per piece. */
  armSendTimer(): void {
    if (this.request.sendTimeoutMs <= 0 || this.#finished) return;
    if (this.#sendTimer !== null) {
      this.#sendTimer.refresh();
      return;
    }
    this.#sendTimer = setTimeout(this.#onSendTimeout, this.request.sendTimeoutMs);
  }

  #onSendTimeout = (): void => {
    this.#sendTimer = null;
    this.#controller?.abort(
      Object.assign(new SendTimeoutError('send timeout'), { code: 'UPSTREAM_SEND_TIMEOUT' }),
    );
  };

  disarmSendTimer(): void {
    if (this.#sendTimer !== null) {
      clearTimeout(this.#sendTimer);
      this.#sendTimer = null;
    }
  }

  #onClientClose = (): void => {
    if (this.#finished) return;
    // The client went away before the response ended: stop the upstream request (nginx logs 499).
    if (!this.#res.writableFinished) {
      this.#outcome.failures.push({
        code: 'CLIENT_CLOSED',
        message: 'client prematurely closed connection',
        upstreamUrl: this.#upstreamUrl(),
      });
      if (!this.#responseStarted) this.#recordAttempt(null, false);
      // Finished before the abort, whose error callback would otherwise read it as the backend's
      // failure: a 502, and with proxy-next-upstream the same request sent to the next endpoint.
      // nginx's 499 is for a client gone before the response head (400 while its body was still
      // coming: "client prematurely closed connection"); after it, the status sent.
      const gone = this.#req.complete ? 499 : 400;
      this.#finish(this.#res.headersSent ? this.#res.statusCode : gone);
      this.#controller?.abort(
        Object.assign(new Error('client closed the connection'), { code: 'CLIENT_CLOSED' }),
      );
    }
  };

  #upstreamUrl(): string | null {
    return this.#member === null ? null : `${this.#member.url}${this.request.path}`;
  }

  /**
   * A connection refused (or timed out) before any peer: the address tried, from the error, for
   * $upstream_addr, as nginx logs it; an ExternalName member's name says nothing of where it pointed.
   */
  #noteRefusedAddress(error: Error & { address?: unknown; port?: unknown }): void {
    const attempt = this.#outcome.attempts[this.#outcome.attempts.length - 1];
    if (attempt === undefined || attempt.addr !== null || typeof error.address !== 'string') return;
    attempt.addr = formatHostPort(
      error.address,
      typeof error.port === 'number' ? error.port : this.#member!.port,
    );
  }

  /** The attempt's status and time; `answered`: a response head came (its time is $upstream_header_time). */
  #recordAttempt(status: number | null, answered: boolean): void {
    const attempt = this.#outcome.attempts[this.#outcome.attempts.length - 1];
    if (attempt !== undefined) {
      // $upstream_addr is the address connected to, as nginx's (an ExternalName member's resolved IP).
      const controller = this.#controller;
      const peer = controller?.peer;
      if (peer) attempt.addr = peer;
      attempt.status = status;
      attempt.seconds = (performance.now() - this.#started) / 1000;
      if (answered) attempt.headerSeconds = attempt.seconds;
      const connectedAt = controller?.connectedAt;
      // A kept-alive connection was up before the attempt: 0, as nginx's for a cached connection.
      if (typeof connectedAt === 'number' && attempt.connectSeconds === null)
        attempt.connectSeconds = Math.max(0, connectedAt - this.#started) / 1000;
    }
  }

  #finish(status: number): void {
    if (this.#finished) return;
    this.#finished = true;
    this.disarmSendTimer();
    this.#res.off('close', this.#onClientClose);
    this.#outcome.status = status;
    this.#done(this.#outcome);
  }

  onRequestStart(controller: UpstreamController): void {
    this.#controller = controller;
    // Clients without connectedAt start a request once its connection is up: that is the connect time.
    if (controller.connectedAt === undefined) {
      const attempt = this.#outcome.attempts[this.#outcome.attempts.length - 1];
      if (attempt !== undefined) attempt.connectSeconds = (performance.now() - this.#started) / 1000;
    }
  }

  /** Whether the answer goes to the client: not when it is skipped for the next endpoint or intercepted. */
  #takeResponse(controller: UpstreamController, statusCode: number): boolean {
    if (this.#finished) {
      controller.abort(new Error('client gone'));
      return false;
    }
    if (statusCode > 599 && this.#req.httpVersion === '2.0') {
      // HTTP/2 has no such status (RFC 9110 15: 100-599; node:http2 refuses it): a 502 the client
      // can read, where relaying would reset the stream. HTTP/1.x clients get it relayed, as nginx's.
      const error = Object.assign(
        new Error(`upstream sent status ${statusCode}, which HTTP/2 cannot carry,`),
        {
          code: 'UPSTREAM_INVALID_HEADER',
        },
      );
      this.#skipped ??= new WeakSet();
      this.#skipped.add(controller);
      controller.abort(error);
      this.#fail(error);
      return false;
    }
    if (this.#mayTryNext() && retryOnStatus(this.#policy, statusCode, this.request.method)) {
      // proxy-next-upstream http_<status>: this answer is dropped and the next endpoint asked.
      this.#recordAttempt(statusCode, true);
      this.#skipped ??= new WeakSet();
      this.#skipped.add(controller);
      controller.abort(new Error('answer skipped for the next upstream'));
      this.#attempt();
      return false;
    }
    if (this.request.interceptStatuses?.includes(statusCode)) {
      // proxy_intercept_errors: the error backend answers instead (custom-errors.ts).
      this.#recordAttempt(statusCode, true);
      this.#skipped ??= new WeakSet();
      this.#skipped.add(controller);
      controller.abort(new Error('answer intercepted for custom-http-errors'));
      this.#outcome.intercepted = statusCode;
      this.#finish(statusCode);
      return false;
    }
    this.#responseStarted = true;
    this.#recordAttempt(statusCode, true);
    const res = this.#res;
    res.statusCode = statusCode;
    return true;
  }

  onResponseStart(
    controller: UpstreamController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    // undici passes informational answers (102, 103) here too: they come before the final answer, which
    // is the one to send (nginx passes none on; taken as final, the real answer would be dropped).
    if (statusCode < 200 && statusCode !== 101) return;
    this.#outcome.upstreamHead = new BackendHead(null, headers);
    if (!this.#takeResponse(controller, statusCode)) return;
    const res = this.#res;
    const out: Record<string, string | string[]> = {};
    const hidden = this.request.hiddenResponseHeaders;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined || hidden.has(name)) continue;
      out[name] = value;
    }
    if (statusMessage) res.statusMessage = statusMessage;
    res.writeHead(statusCode, out);
  }

  /** keepip's HTTP/1.1 client: the fields as a flat list, passed on without a header object when `res` can. */
  onResponseFields(
    controller: UpstreamController,
    statusCode: number,
    fields: readonly string[],
    statusMessage: string,
  ): void {
    this.#outcome.upstreamHead = new BackendHead(fields, null);
    if (!this.#takeResponse(controller, statusCode)) return;
    const res = this.#res;
    const out: string[] = [];
    const hidden = this.request.hiddenResponseHeaders;
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i] as string;
      if (!hidden.has(name)) out.push(name, fields[i + 1] as string);
    }
    if (statusMessage) res.statusMessage = statusMessage;
    if (res.writeHeadFields !== undefined) res.writeHeadFields(statusCode, out);
    else res.writeHead(statusCode, fieldsToHeaders(out));
  }

  onResponseData(controller: UpstreamController, chunk: Buffer): void {
    if (this.#finished || this.#skipped?.has(controller)) return;
    this.#outcome.upstreamBytes += chunk.length;
    this.#outcome.bodyBytesSent += chunk.length;
    if (!this.#res.write(chunk)) {
      controller.pause();
      this.#res.once('drain', () => controller.resume());
    }
  }

  /** Bytes beyond the answer's framing (keepip's client dropped them): nginx's warning, worded as its. */
  onResponseExtra(controller: UpstreamController, framing: BodyFraming['kind']): void {
    if (this.#finished || this.#skipped?.has(controller)) return;
    const what =
      framing === 'chunked'
        ? 'upstream sent data after final chunk'
        : 'upstream sent more data than specified in "Content-Length" header';
    this.#outcome.failures.push({
      code: 'UPSTREAM_EXTRA_DATA',
      message: `${what} while reading upstream`,
      upstreamUrl: this.#upstreamUrl(),
      level: 'warn',
    });
  }

  onResponseEnd(controller: UpstreamController): void {
    if (this.#skipped?.has(controller)) return;
    const attempt = this.#outcome.attempts[this.#outcome.attempts.length - 1];
    if (attempt !== undefined) attempt.seconds = (performance.now() - this.#started) / 1000;
    if (this.#finished) return;
    this.#outcome.upstreamBytes += controller.framingBytes ?? 0;
    this.#res.end();
    this.#finish(this.#res.statusCode);
  }

  onResponseError(controller: UpstreamController, error: Error & { code?: string }): void {
    if (this.#skipped?.has(controller)) return;
    this.#fail(error);
  }

  /** The attempt failed: the next endpoint when proxy-next-upstream allows, else the gateway's answer. */
  #fail(error: Error & { code?: string }): void {
    this.disarmSendTimer();
    if (this.#finished) return;
    const verdict = classifyUpstreamError(error, this.#responseStarted);
    // The client's own failures are not the upstream's status ($upstream_status "-").
    const clientSide =
      verdict.code === 'CLIENT_BODY_TOO_LARGE' ||
      verdict.code === 'CLIENT_BODY_TIMEOUT' ||
      verdict.code === 'CLIENT_BODY_INVALID' ||
      verdict.code === 'CLIENT_CLOSED';
    if (!this.#responseStarted) {
      this.#noteRefusedAddress(error);
      this.#recordAttempt(clientSide ? null : verdict.status, false);
    }
    this.#outcome.failures.push({
      code: verdict.code,
      message: verdict.message,
      upstreamUrl: this.#upstreamUrl(),
    });
    // Which failures go on to the next endpoint is proxy-next-upstream's (next-upstream.ts).
    const canRetry = this.#mayTryNext() && retryOnFailure(this.#policy, verdict.code, this.request.method);
    if (canRetry) {
      this.#attempt();
      return;
    }
    if (this.#responseStarted || this.#res.headersSent) {
      // Part of the response is already with the client: all we can do is cut the connection, as nginx does.
      this.#res.destroy();
      this.#finish(this.#res.statusCode);
      return;
    }
    this.#outcome.answeredByGateway = true;
    this.#finish(verdict.status);
  }
}

/**
 * Sends `req` to one of `request.upstream`'s endpoints and streams the answer into `res`. When nothing
 * could be sent to the client (connect failures, timeouts before the response, body too large), `done`
 * gets `answeredByGateway: true` and the caller writes the error page for `status`.
 */
export function proxyRequest(
  req: GatewayRequest,
  res: GatewayResponse,
  request: ProxyRequest,
  done: (outcome: ProxyOutcome) => void,
): void {
  new ProxyExchange(req, res, request, done).start();
}
