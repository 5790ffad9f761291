// proxy-request-buffering: which body source a proxied request uses. `on` (nginx's and ingress-nginx's
// default) reads the body whole (request-body-buffer.ts) before the backend is contacted, then sends it
// with Content-Length, from its start again on a retry; `off` streams it as it arrives (proxy.ts).
// gRPC (grpc-proxy.ts) and upgrades (websocket.ts) never come here: they always stream, as in nginx.
//
// Failures while reading are the client's and are answered as the streamed path answers them: more
// than proxy-body-size 413, client_body_timeout 408; a temporary file that cannot be written 500; a
// client gone mid-body is logged 400 as nginx logs it (499 is for a client gone while the backend
// works). None of them reaches a backend, so the access log shows no upstream.
import type { LocationModel } from '../config/model.ts';
import { DEFAULT_CLIENT_BODY_BUFFER_BYTES } from '../k8s/body-buffering.ts';
import { requestContext } from './error-log.ts';
import type { Exchange, GatewayRequest, GatewayResponse, HandlerContext } from './exchange.ts';
import { shareWithMirror } from './mirror.ts';
import {
  classifyUpstreamError,
  newProxyOutcome,
  type ProxyOutcome,
  type ProxyRequest,
  proxyRequest,
} from './proxy.ts';
import { shownClient } from './request-log.ts';
import { type BodyReadFailure, defaultBodyBuffers, readWholeBody } from './request-body-buffer.ts';

type Proxy = typeof proxyRequest;

/** The proxy step for a request of `location` (null: the gateway's own default backend): buffered or streamed. */
export function bodyProxy(
  ctx: HandlerContext,
  ex: Exchange,
  location: LocationModel | null,
  hasBody: boolean,
): Proxy {
  const settings = ex.snap.settings;
  // A mirror that takes the body reads it whole first, as nginx's mirror module does (mirror.ts).
  const buffering =
    location === null
      ? settings.requestBuffering !== false
      : location.requestBuffering !== false || location.mirror?.requestBody === true;
  if (!buffering || !hasBody) return proxyRequest;
  const memoryBytes =
    location?.clientBodyBufferBytes ?? settings.clientBodyBufferBytes ?? DEFAULT_CLIENT_BODY_BUFFER_BYTES;
  return (req, res, request, done) => proxyBuffered(ctx, ex, { req, res, request, done, memoryBytes });
}

interface BufferedCall {
  req: GatewayRequest;
  res: GatewayResponse;
  request: ProxyRequest;
  done: (outcome: ProxyOutcome) => void;
  memoryBytes: number;
}

function proxyBuffered(ctx: HandlerContext, ex: Exchange, call: BufferedCall): void {
  const { req, res, request, done } = call;
  const closed = new AbortController();
  const onClose = (): void => closed.abort();
  res.once('close', onClose);
  const limits = {
    maxBytes: request.bodyLimitBytes,
    memoryBytes: call.memoryBytes,
    // nginx's warning, with the file's name (already unlinked: see request-body-buffer.ts).
    onSpill: (path: string) =>
      ctx.errorLog.write(
        'warn',
        ex.conn.id,
        `a client request body is buffered to a temporary file ${path}${context(ex)}`,
      ),
  };
  void readWholeBody(req, limits, ctx.bodyBuffers ?? defaultBodyBuffers(), closed.signal).then((read) => {
    res.off('close', onClose);
    if (!read.ok) {
      done(failedRead(read.error, closed.signal.aborted));
      return;
    }
    const body = read.value;
    if (closed.signal.aborted) {
      body.release();
      done(failedRead({ code: 'CLIENT_CLOSED', received: body.length }, true));
      return;
    }
    // The length is known now: a chunked or HTTP/2 body goes to the backend with Content-Length.
    const headers = { ...request.headers, 'content-length': String(body.length) };
    const release = shareWithMirror(ex, body);
    proxyRequest(req, res, { ...request, headers, replayBody: () => body.chunks() }, (outcome) => {
      release();
      outcome.requestBodyBytes = body.length;
      done(outcome);
    });
  });
}

function context(ex: Exchange): string {
  return requestContext({
    client: shownClient(ex.client),
    server: ex.serverName,
    request: ex.requestLine,
    host: ex.rawHost,
  });
}

/** The outcome of a body that could not be read whole: no upstream was tried. */
function failedRead(failure: BodyReadFailure, clientGone: boolean): ProxyOutcome {
  const outcome = newProxyOutcome();
  outcome.status = 400;
  outcome.requestBodyBytes = failure.received;
  if (failure.code === 'CLIENT_CLOSED' || clientGone) {
    // Nothing can be answered; the access log line says 400, as nginx's does for this case.
    outcome.failures.push({
      code: 'CLIENT_CLOSED',
      message: 'client prematurely closed connection',
      upstreamUrl: null,
    });
    return outcome;
  }
  if (failure.code === 'CLIENT_BODY_BUFFER_FAILED') {
    outcome.status = 500;
    outcome.failures.push({
      code: failure.code,
      message: `${failure.message} while reading client request body`,
      upstreamUrl: null,
    });
  } else {
    // The same status and wording as when the limit, the deadline or broken framing strikes a streamed body.
    const message =
      failure.code === 'CLIENT_BODY_TOO_LARGE'
        ? `client intended to send too large chunked body: ${failure.received} bytes`
        : failure.code === 'CLIENT_BODY_INVALID'
          ? failure.message
          : 'client timed out';
    const verdict = classifyUpstreamError(Object.assign(new Error(message), { code: failure.code }), false);
    outcome.status = verdict.status;
    outcome.failures.push({ code: verdict.code, message: verdict.message, upstreamUrl: null });
  }
  outcome.answeredByGateway = true;
  return outcome;
}
