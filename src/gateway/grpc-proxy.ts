// Forwarding one request to a gRPC backend (backend-protocol GRPC / GRPCS) over the HTTP/2 pool of
// h2-client.ts: unary and streaming calls alike (the request body streams up, the response streams
// down, each with backpressure), the backend's trailers (grpc-status, grpc-message) relayed to the
// client, the client's deadline (grpc-timeout) enforced by the gateway too, and every failure the
// gateway answers itself given as a gRPC status a gRPC client understands (grpc-status.ts):
// UNAVAILABLE for a backend that cannot be reached or that breaks off, DEADLINE_EXCEEDED for
// proxy-read-timeout, proxy-send-timeout and grpc-timeout, RESOURCE_EXHAUSTED for proxy-body-size.
// A request that is not gRPC (an HTTP/1.1 client, curl) gets the gateway's usual error pages.
import { LONGEST_TIMER_MS } from '../config/duration.ts';
import { type GatewayRequest, type GatewayResponse, newUpstreamAttempt } from './exchange.ts';
import type { UpstreamController, UpstreamHandler } from './h1-client.ts';
import type { H2DispatchOptions } from './h2-client.ts';
import { h2Response } from './h2-stream.ts';
import { GRPC_STATUS, grpcAnswerHeaders, isGrpcRequest, parseGrpcTimeout } from './grpc-status.ts';
import {
  BackendHead,
  classifyUpstreamError,
  newProxyOutcome,
  type ProxyFailureCode,
  type ProxyOutcome,
  type ProxyRequest,
} from './proxy.ts';
import { EndpointRotation, EVERY_ENDPOINT_ONCE } from './next-upstream.ts';
import type { UpstreamMember } from './upstream.ts';

type ErrorWithCode = Error & { code?: string };

/** The gRPC status of an upstream failure the gateway answers. */
function grpcCodeFor(code: ProxyFailureCode): number {
  switch (code) {
    case 'UPSTREAM_READ_TIMEOUT':
    case 'UPSTREAM_SEND_TIMEOUT':
    case 'CLIENT_BODY_TIMEOUT':
      return GRPC_STATUS.DEADLINE_EXCEEDED;
    case 'CLIENT_BODY_TOO_LARGE':
      return GRPC_STATUS.RESOURCE_EXHAUSTED;
    default:
      return GRPC_STATUS.UNAVAILABLE;
  }
}

class GrpcExchange implements UpstreamHandler {
  readonly request: ProxyRequest;
  readonly #req: GatewayRequest;
  readonly #res: GatewayResponse;
  readonly #grpc: boolean;
  readonly #done: (outcome: ProxyOutcome) => void;
  readonly #outcome: ProxyOutcome;
  #controller: UpstreamController | null = null;
  #member: UpstreamMember | null = null;
  readonly #rotation: EndpointRotation;
  #startedAt = 0;
  #responseStarted = false;
  #bodyStarted = false;
  #finished = false;
  #deadline: NodeJS.Timeout | null = null;

  constructor(
    req: GatewayRequest,
    res: GatewayResponse,
    request: ProxyRequest,
    done: (o: ProxyOutcome) => void,
  ) {
    this.#req = req;
    this.#res = res;
    this.#done = done;
    this.#outcome = request.outcome ?? newProxyOutcome();
    this.#grpc = isGrpcRequest(req.headers);
    // gRPC servers expect TE: trailers (a hop-by-hop header, so the pipeline dropped the client's).
    this.request = this.#grpc ? { ...request, headers: { ...request.headers, te: 'trailers' } } : request;
    // The balancer's first choice (affinity, upstream-hash-by, ewma), as for HTTP; then each endpoint
    // once, on connect failures only: ingress-nginx sets no grpc_next_upstream, so nginx's defaults.
    this.#rotation = new EndpointRotation(request.upstream, EVERY_ENDPOINT_ONCE, request.firstMember);
  }

  start(): void {
    this.#res.once('close', this.#onClientClose);
    const deadlineMs = this.#grpc ? parseGrpcTimeout(this.#req.headers['grpc-timeout']) : null;
    // A deadline past setTimeout's longest (a client's 30 days: "720H") would fire at once: none then.
    if (deadlineMs !== null && deadlineMs <= LONGEST_TIMER_MS)
      this.#deadline = setTimeout(this.#onDeadline, Math.max(1, Math.ceil(deadlineMs)));
    this.#attempt();
  }

  #attempt(): void {
    const { member } = this.#rotation.take();
    this.#member = member;
    this.#startedAt = performance.now();
    this.#outcome.attempts.push(newUpstreamAttempt(member.hostPort));
    const { request } = this;
    const options: H2DispatchOptions = {
      method: request.method,
      path: request.path,
      headers: request.headers,
      body: request.hasBody ? this.#body() : null,
      headersTimeout: request.readTimeoutMs,
      bodyTimeout: request.readTimeoutMs,
      sendTimeoutMs: request.sendTimeoutMs,
    };
    member.pool.dispatch(options, this);
  }

  /** The client's body, counted against proxy-body-size (a gRPC stream counts as one body, as in nginx). */
  async *#body(): AsyncGenerator<Buffer> {
    const limit = this.request.bodyLimitBytes;
    for await (const chunk of this.#req as AsyncIterable<Buffer>) {
      this.#bodyStarted = true;
      this.#outcome.requestBodyBytes += chunk.length;
      if (limit > 0 && this.#outcome.requestBodyBytes > limit) {
        const bytes = this.#outcome.requestBodyBytes;
        throw Object.assign(new Error(`client intended to send too large body: ${bytes} bytes`), {
          code: 'CLIENT_BODY_TOO_LARGE',
        });
      }
      yield chunk;
    }
  }

  #upstreamUrl(): string | null {
    return this.#member === null ? null : `${this.#member.url}${this.request.path}`;
  }

  #recordAttempt(status: number | null): void {
    const attempt = this.#outcome.attempts[this.#outcome.attempts.length - 1];
    if (attempt === undefined) return;
    if (status !== null) attempt.status = status;
    attempt.seconds = (performance.now() - this.#startedAt) / 1000;
  }

  #finish(status: number): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#deadline !== null) clearTimeout(this.#deadline);
    this.#res.off('close', this.#onClientClose);
    this.#outcome.status = status;
    this.#done(this.#outcome);
  }

  #onClientClose = (): void => {
    if (this.#finished || this.#res.writableFinished) return;
    // The client cancelled the call (or went away): the backend's stream is cancelled too (499).
    this.#outcome.failures.push({
      code: 'CLIENT_CLOSED',
      message: 'client prematurely closed stream',
      upstreamUrl: this.#upstreamUrl(),
    });
    this.#finish(499);
    this.#controller?.abort(Object.assign(new Error('client closed the stream'), { code: 'CLIENT_CLOSED' }));
  };

  #onDeadline = (): void => {
    this.#deadline = null;
    if (this.#finished) return;
    const message = `upstream timed out (grpc-timeout ${String(this.#req.headers['grpc-timeout'])} of the client) while ${
      this.#responseStarted ? 'reading upstream' : 'reading response header from upstream'
    }`;
    this.#outcome.failures.push({ code: 'UPSTREAM_READ_TIMEOUT', message, upstreamUrl: this.#upstreamUrl() });
    this.#recordAttempt(this.#responseStarted ? null : 504);
    this.#endWithStatus(GRPC_STATUS.DEADLINE_EXCEEDED, 'deadline exceeded', 504);
    this.#controller?.abort(new Error(message));
  };

  /** Ends the call with a gRPC status: trailers after a started response, else a trailers-only answer. */
  #endWithStatus(code: number, message: string, httpStatus: number): void {
    const res = this.#res;
    const h2 = h2Response(res);
    if (this.#responseStarted && h2 !== null) {
      h2.setTrailers(grpcAnswerHeaders(code, message, null));
      res.end();
      this.#finish(res.statusCode);
      return;
    }
    if (this.#responseStarted || res.headersSent) {
      res.destroy();
      this.#finish(res.statusCode);
      return;
    }
    res.writeHead(200, grpcAnswerHeaders(code, message, null));
    res.end();
    this.#finish(httpStatus);
  }

  onRequestStart(controller: UpstreamController): void {
    this.#controller = controller;
    if (this.#finished) controller.abort(new Error('call already ended'));
    // The HTTP/2 pool starts a stream once its session is up: that is the connect time.
    const attempt = this.#outcome.attempts[this.#outcome.attempts.length - 1];
    if (attempt !== undefined) attempt.connectSeconds = (performance.now() - this.#startedAt) / 1000;
  }

  onResponseStart(
    controller: UpstreamController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (this.#finished) {
      controller.abort(new Error('client gone'));
      return;
    }
    this.#responseStarted = true;
    this.#outcome.upstreamHead = new BackendHead(null, headers);
    this.#recordAttempt(statusCode);
    const answered = this.#outcome.attempts[this.#outcome.attempts.length - 1];
    if (answered !== undefined) answered.headerSeconds = answered.seconds;
    // As nginx's grpc module hides Date, Server, X-Pad and X-Accel-* by default (and the ConfigMap's
    // hide-headers, which keepip applies to every proxied answer).
    const out: Record<string, string | string[]> = {};
    const hidden = this.request.hiddenResponseHeaders;
    for (const name in headers) {
      const value = headers[name];
      if (value !== undefined && !hidden.has(name)) out[name] = value;
    }
    // Trailers may follow the body: the client's stream must wait for them.
    h2Response(this.#res)?.expectTrailers();
    this.#res.writeHead(statusCode, out);
  }

  onResponseData(controller: UpstreamController, chunk: Buffer): void {
    if (this.#finished) return;
    this.#outcome.upstreamBytes += chunk.length;
    this.#outcome.bodyBytesSent += chunk.length;
    if (!this.#res.write(chunk)) {
      controller.pause();
      this.#res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(
    _controller: UpstreamController,
    trailers: Record<string, string | string[] | undefined>,
  ): void {
    this.#recordAttempt(null);
    if (this.#finished) return;
    const relayed: Record<string, string | string[]> = {};
    // The hidden fields stay hidden in the trailers too (nginx's grpc module filters both).
    const hidden = this.request.hiddenResponseHeaders;
    let any = false;
    for (const name in trailers) {
      const value = trailers[name];
      if (value === undefined || hidden.has(name)) continue;
      relayed[name] = value;
      any = true;
    }
    if (any) h2Response(this.#res)?.setTrailers(relayed);
    this.#res.end();
    this.#finish(this.#res.statusCode);
  }

  onResponseError(_controller: UpstreamController, error: ErrorWithCode): void {
    if (this.#finished) return;
    const verdict = classifyUpstreamError(error, this.#responseStarted);
    if (!this.#responseStarted)
      this.#recordAttempt(verdict.code === 'CLIENT_BODY_TOO_LARGE' ? null : verdict.status);
    this.#outcome.failures.push({
      code: verdict.code,
      message: verdict.message,
      upstreamUrl: this.#upstreamUrl(),
    });
    const goOn = verdict.retryable && !this.#responseStarted && !this.#bodyStarted;
    if (goOn && this.#rotation.mayTakeNext()) {
      this.#attempt();
      return;
    }
    if (!this.#grpc && !this.#responseStarted && !this.#res.headersSent) {
      this.#outcome.answeredByGateway = true;
      this.#finish(verdict.status);
      return;
    }
    this.#endWithStatus(grpcCodeFor(verdict.code), verdict.message, verdict.status);
  }
}

/**
 * Sends `req` to one of the gRPC backend's endpoints and streams the answer into `res` (ProxyOutcome as
 * proxyRequest gives it). Failures of a gRPC call are answered here as gRPC statuses; for any other
 * request `answeredByGateway` asks the caller for its error page, as proxyRequest does.
 */
export function proxyGrpc(
  req: GatewayRequest,
  res: GatewayResponse,
  request: ProxyRequest,
  done: (outcome: ProxyOutcome) => void,
): void {
  new GrpcExchange(req, res, request, done).start();
}
