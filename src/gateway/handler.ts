// The request pipeline (docs/architecture.md, data path), one stage after the other:
//   admission (admission.ts: client address -> route -> body size -> redirects -> access rules)
//   -> upstream (proxy.ts, or websocket.ts for an upgrade)
//   -> one access log line and the metrics (request-log.ts).
// Denials and upstream failures also get an nginx-style error log line. Each request runs on the
// snapshot that was current when it arrived.
import type { Duplex } from 'node:stream';
import type { LocationModel } from '../config/model.ts';
import { throttleResponse } from './access/bandwidth.ts';
import { COOKIE_STATUSES } from './access/state.ts';
import { type Admitted, admit, PENDING, type Respond, resolveClient } from './admission.ts';
import { answer, answerRaw, rawErrorResponse } from './answers.ts';
import { bodyProxy } from './buffered-proxy.ts';
import { type CompressedResponse, compressResponse } from './compression.ts';
import { connectionOf } from './connection.ts';
import { requestContext } from './error-log.ts';
import { errorPageBody, HTML_CONTENT_TYPE, PLAIN_HTTP_ON_HTTPS_BODY, reasonPhrase } from './error-pages.ts';
import {
  beginExchange,
  type ClientError,
  type Exchange,
  type GatewayRequest,
  type GatewayResponse,
  type HandlerContext,
  hideHeadFields,
  type RequestHandler,
} from './exchange.ts';
import { proxyGrpc } from './grpc-proxy.ts';
import { mirrorRequest } from './mirror.ts';
import { isGrpcRequest } from './grpc-status.ts';
import { newProxyOutcome, type ProxyOutcome } from './proxy.ts';
import {
  completeExchange,
  completeWhenSent,
  logBareRequest,
  logUpstreamFailure,
  logInvalidRequest,
  requestLineOf,
} from './request-log.ts';
import type { CaptureRefusal } from './router.ts';
import { applyLocationHeaders, buildUpstreamHeaders } from './upstream-headers.ts';
import {
  errorBackendHeaders,
  setProxyHeaders,
  interceptedStatuses,
  replacesOwnAnswer,
  replacesRefusal,
  serveFromErrorBackend,
} from './custom-errors.ts';
import { addResponseHeaders, needsResponseWrapper } from './response-headers.ts';
import { holdTunnel } from './snapshot.ts';
import { proxyUpgrade, type UpgradeOutcome, upstreamUpgrade } from './websocket.ts';

export type { HandlerContext, RequestHandler } from './exchange.ts';

/**
 * What the backend receives for the request of `ex` (the proxied and the upgraded path alike). An
 * unknown client (resolved to '') is not an address: no X-Real-IP rather than an empty one, and no
 * empty X-Forwarded-For (a computed full chain is kept).
 */
function upstreamHeaders(
  ctx: HandlerContext,
  req: GatewayRequest,
  ex: Exchange,
  admitted: Admitted,
): Record<string, string | string[]> {
  const { conn } = ex;
  const headers = buildUpstreamHeaders({
    incoming: req.headers,
    clientAddress: ex.client,
    headersTrusted: admitted.headersTrusted,
    settings: ex.snap.settings,
    scheme: conn.scheme,
    serverPort: conn.serverPort,
    host: ex.rawHost,
    requestId: ex.reqId,
    peerAddress: conn.peerAddress,
    proxyProtocolAddress: conn.proxySource,
    proxyDestinationPort: conn.proxyDestinationPort,
    httpsPort: conn.httpsPort,
    requestUri: ex.requestUri,
    method: req.method ?? '',
    serverName: ex.serverName,
    location: admitted.location,
  });
  applyLocationHeaders(headers, admitted.location, admitted.forwardedPrefix);
  if (admitted.extraHeaders !== undefined) setProxyHeaders(headers, admitted.extraHeaders);
  if (ex.client === '') {
    if (headers['x-real-ip'] === '') delete headers['x-real-ip'];
    if (headers['x-forwarded-for'] === '') delete headers['x-forwarded-for'];
  }
  // The access stage's edits: auth-response-headers, ssl-client-*, basic auth's Authorization removed.
  const edits = ex.access?.upstreamHeaders;
  if (edits != null) {
    for (const name in edits) {
      const value = edits[name]!;
      if (value === '') delete headers[name];
      else headers[name] = value;
    }
  }
  // enable-opentelemetry: the backend continues the gateway's span.
  ctx.tracing?.inject(ex, req, headers);
  return headers;
}

/**
 * The auth service's Set-Cookie on the backend's response: for the statuses nginx's add_header covers,
 * or all with auth-always-set-cookie. The response's writeHead is wrapped for this one request.
 */
function addAuthCookies(ex: Exchange, res: GatewayResponse): void {
  const access = ex.access;
  if (access === null || access.cookies === null) return;
  const { cookies, alwaysSetCookie } = access;
  const writeHead = res.writeHead.bind(res) as (
    status: number,
    headers: Record<string, string | number | string[]>,
  ) => GatewayResponse;
  (res as { writeHead: unknown }).writeHead = (status: number, a?: unknown, b?: unknown) => {
    const headers = (typeof a === 'string' ? b : a) as Record<string, string | number | string[]> | undefined;
    const out = { ...headers };
    if (alwaysSetCookie || COOKIE_STATUSES.has(status)) {
      const existing = out['set-cookie'];
      const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
      out['set-cookie'] = [...list, ...cookies];
    }
    if (typeof a === 'string') res.statusMessage = a;
    return writeHead(status, out);
  };
  hideHeadFields(res);
}

function hasRequestBody(req: GatewayRequest): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The request line of an unparsable request as nginx logs it: leading empty lines skipped (HTTP
 * allows them), then up to the next CR or LF — "PROXY TCP4 …" for v1, "\x00" for a v2 signature.
 */
function firstLine(raw: Buffer | undefined): string {
  if (raw === undefined) return '';
  let start = 0;
  while (start < raw.length && (raw[start] === 0x0d || raw[start] === 0x0a)) start += 1;
  let end = start;
  while (end < raw.length && end - start < 256 && raw[end] !== 0x0d && raw[end] !== 0x0a) end += 1;
  return raw.toString('latin1', start, end);
}

/** The upstream stage of a plain request: proxy it, then log what happened. */
function forward(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  res: GatewayResponse,
  admitted: Admitted,
  limit: number,
  compressed: CompressedResponse | null = null,
): void {
  const { location } = admitted;
  const headers = upstreamHeaders(ctx, req, ex, admitted);
  if (ctx.isDraining()) res.shouldKeepAlive = false;
  const settings = ex.snap.settings;
  const request = {
    upstream: admitted.upstream!,
    method: req.method ?? 'GET',
    path: admitted.upstreamPath,
    headers,
    readTimeoutMs: location?.proxyReadTimeoutMs ?? settings.proxyReadTimeoutMs,
    sendTimeoutMs: location?.proxySendTimeoutMs ?? settings.proxySendTimeoutMs,
    bodyLimitBytes: limit,
    hiddenResponseHeaders: ex.snap.routes.filters.hiddenResponseHeaders,
    hasBody: hasRequestBody(req),
    // affinity: the session's endpoint first, and a cookie that can follow a retry.
    firstMember: admitted.firstMember,
    onAttempt: admitted.onAttempt,
    nextUpstream: location?.nextUpstream,
    interceptStatuses: interceptedStatuses(ex, location),
    httpVersion: location?.proxyHttpVersion,
    outcome: newProxyOutcome(),
  };
  // A head written while proxying (add-headers' $upstream_addr…) reads the attempts so far.
  ex.proxying = request.outcome;
  // gRPC backends over HTTP/2, with trailers, deadlines and gRPC statuses (grpc-proxy.ts).
  const protocol = admitted.upstream?.members[0]?.protocol;
  // proxy-request-buffering: the body read whole before the backend, or streamed (buffered-proxy.ts).
  const proxy =
    protocol === 'GRPC' || protocol === 'GRPCS' ? proxyGrpc : bodyProxy(ctx, ex, location, request.hasBody);
  // mirror-target: a copy to the mirror, beside the request (mirror.ts); not for gRPC.
  if (location?.mirror !== undefined && proxy !== proxyGrpc)
    mirrorRequest(ctx, ex, req, location, headers, request.hasBody);
  proxy(req, res, request, (outcome: ProxyOutcome) => {
    ex.proxying = null;
    ex.attempts = outcome.attempts;
    ex.upstreamBytes = outcome.upstreamBytes;
    ex.bodyBytes = outcome.requestBodyBytes;
    ex.upstreamHead = outcome.upstreamHead ?? null;
    for (const f of outcome.failures) if (f.code !== 'CLIENT_CLOSED') logUpstreamFailure(ctx, ex, f);
    // custom-http-errors: the backend's listed status, or the gateway's own, from the error backend.
    const replaced = outcome.intercepted ?? (outcome.answeredByGateway ? outcome.status : 0);
    if (replaced !== 0 && (outcome.intercepted !== undefined || replacesOwnAnswer(ex, location, replaced))) {
      const errorLocation = ex.route?.location ?? null;
      if (serveFromErrorBackend(ctx, ex, req, res, headers, replaced, errorLocation, compressed)) return;
    }
    if (outcome.answeredByGateway) {
      answer(ctx, ex, req, res, outcome.status, null);
      return;
    }
    completeWhenSent(ctx, ex, req, compressed, outcome.status, outcome.bodyBytesSent);
  });
}

/** The upstream stage of an upgrade: tunnel it, then log what happened. */
function tunnel(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  socket: Duplex,
  head: Buffer,
  admitted: Admitted,
): void {
  const headers = upstreamHeaders(ctx, req, ex, admitted);
  // As ingress-nginx: `Upgrade $http_upgrade` and `Connection $connection_upgrade`. A request offering
  // h2c never gets here (the HTTP/1.1 parser reads it as an ordinary one); upstreamUpgrade is the
  // second lock: such a request would go as a plain one, its answer then the close.
  const upgrade = req.headers.upgrade === undefined ? undefined : upstreamUpgrade(req.headers.upgrade);
  if (upgrade != null) headers.upgrade = upgrade;
  headers.connection = upgrade === null ? 'close' : 'upgrade';
  const readTimeoutMs = admitted.location?.proxyReadTimeoutMs ?? ex.snap.settings.proxyReadTimeoutMs;
  const request = {
    upstream: admitted.upstream!,
    method: req.method ?? 'GET',
    path: admitted.upstreamPath,
    headers,
    readTimeoutMs,
    nextUpstream: admitted.location?.nextUpstream,
  };
  holdTunnel(ex.snap, socket);
  proxyUpgrade(socket, head, request, (outcome: UpgradeOutcome) => {
    if (ex.snap.tunnelsClosedByReload) {
      const after = `${ex.snap.settings.workerShutdownTimeoutMs / 1000}s`;
      const why = `upgraded connection closed ${after} (worker-shutdown-timeout) after a reload replaced its configuration v${ex.snap.version}`;
      ctx.errorLog.write('notice', ex.conn.id, why);
    }
    ex.attempts = outcome.attempts;
    ex.upstreamBytes = outcome.bytesToClient;
    for (const f of outcome.failures) logUpstreamFailure(ctx, ex, f);
    if (!outcome.answeredByGateway) completeExchange(ctx, ex, req, outcome.status, outcome.bytesToClient);
    else if (!socket.destroyed) answerRaw(ctx, ex, req, socket, outcome.status, null);
    else completeExchange(ctx, ex, req, 499, 0);
  });
}

/** A location whose backend has no endpoint: its default-backend, the error backend for 503, or 503. */
function withoutEndpoints(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  res: GatewayResponse,
  admitted: Admitted,
  limit: number,
): void {
  const location = admitted.location;
  // A host's default-backend root without a default backend: the default server's own 404, which
  // the location's custom-http-errors take, as nginx intercepts the default backend's.
  if (location?.defaultBackendRoot === true && admitted.upstream === null) {
    if (
      !replacesOwnAnswer(ex, location, 404) ||
      !serveFromErrorBackend(ctx, ex, req, res, upstreamHeaders(ctx, req, ex, admitted), 404)
    )
      answer(ctx, ex, req, res, 404, null);
    return;
  }
  const own = location === null ? undefined : ex.snap.errorUpstreamFor(location);
  if (own !== undefined && own.members.length > 0) {
    ex.upstreamName = own.name;
    const extraHeaders = errorBackendHeaders(ex, req, 503, false);
    forward(ctx, ex, req, res, { ...admitted, upstream: own, extraHeaders }, limit);
  } else if (
    !replacesOwnAnswer(ex, location, 503) ||
    !serveFromErrorBackend(ctx, ex, req, res, upstreamHeaders(ctx, req, ex, admitted), 503)
  )
    answer(ctx, ex, req, res, 503, null);
}

function hasEndpoints(admitted: Admitted): boolean {
  return admitted.upstream !== null && admitted.upstream.members.length > 0;
}

/**
 * The gateway's own answer to a request; an answer of the location `by` (a refusal of its access
 * phase, its 413) whose status the location's custom-http-errors lists goes to the error backend
 * instead (nginx's error_page catches what the location itself answers, not only the backend's
 * statuses). gRPC keeps its own answers.
 */
function answerOwn(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  res: GatewayResponse,
  status: number,
  headers: Record<string, string | string[]> | null,
  by: LocationModel | undefined,
): void {
  if (by !== undefined && !isGrpcRequest(req.headers) && replacesRefusal(ex, by, status)) {
    const location = by;
    const headersTrusted = ex.clientIp?.headersTrusted ?? false;
    const base = upstreamHeaders(ctx, req, ex, {
      location,
      upstream: null,
      upstreamPath: '/',
      scheme: ex.conn.scheme,
      headersTrusted,
    });
    if (needsResponseWrapper(ex)) addResponseHeaders(ex, req, res);
    // The rest of a body over the limit is not read for another request (answers.ts answer).
    if (status === 413) res.shouldKeepAlive = false;
    if (serveFromErrorBackend(ctx, ex, req, res, base, status, location)) return;
  }
  answer(ctx, ex, req, res, status, headers);
}

/** A request: admission, then the upstream stage (possibly after an async access stage). */
function handleRequest(ctx: HandlerContext, ex: Exchange, req: GatewayRequest, res: GatewayResponse): void {
  // The access stage may call these later, from an auth answer or a timer, outside onRequest's catch.
  const proceed = (admitted: Admitted): void => {
    try {
      toUpstream(ctx, ex, req, res, admitted);
    } catch (error) {
      requestFailed(ctx, ex, req, res, error);
    }
  };
  const respond: Respond = (status, headers, by) => {
    try {
      answerOwn(ctx, ex, req, res, status, headers, by);
    } catch (error) {
      requestFailed(ctx, ex, req, res, error);
    }
  };
  const admitted = admit(ctx, ex, req, respond, proceed);
  if (admitted !== null && admitted !== PENDING) proceed(admitted);
}

/**
 * A capture of the client's path that x-forwarded-prefix cannot carry: the client's fault, so a 400 with
 * the code, logged as the target's other refusals are (nginx would send the raw byte upstream).
 */
function logCaptureRefusal(ctx: HandlerContext, ex: Exchange, refusal: CaptureRefusal): void {
  logInvalidRequest(ctx, ex, refusal, { server: ex.serverName, host: ex.rawHost });
}

/** An admitted request to its upstream: body limit, response headers, rate limit, compression, forward. */
function toUpstream(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  res: GatewayResponse,
  admitted: Admitted,
): void {
  // A declared body over the limit was answered 413 by admission (nginx's find-config phase);
  // a streamed one is measured against the same limit while it is read.
  const limit = admitted.location?.proxyBodySizeBytes ?? ex.snap.settings.proxyBodySizeBytes;
  if (limit > 0) req.limitBody?.(limit);
  // Refused after the access phase, where the request would have gone upstream; the location's
  // custom-http-errors may take the 400 as they take its other refusals.
  if (admitted.refusal != null) {
    logCaptureRefusal(ctx, ex, admitted.refusal);
    answerOwn(ctx, ex, req, res, 400, null, admitted.location ?? undefined);
    return;
  }
  // ingress-nginx answers 503 for a backend without endpoints (or without a Service), unless the
  // location names a default-backend, or lists 503 in custom-http-errors (custom-errors.ts).
  if (!hasEndpoints(admitted)) withoutEndpoints(ctx, ex, req, res, admitted, limit);
  else {
    addAuthCookies(ex, res);
    // A session that may move on a retry (change-on-failure) gets its cookie when the head is written.
    if (needsResponseWrapper(ex) || admitted.onAttempt !== undefined) addResponseHeaders(ex, req, res);
    // limit-rate / limit-rate-after: the response to this client, per request (access/bandwidth.ts).
    const bandwidth = admitted.location?.access?.bandwidth;
    if (bandwidth) throttleResponse(res, bandwidth);
    // use-gzip / enable-brotli: inside the rate limit, which counts the bytes the client gets. gRPC
    // has its own message compression (and trailers a re-encoded body would lose).
    const compression = ex.snap.settings.compression;
    const compressed =
      compression === undefined || isGrpcRequest(req.headers)
        ? null
        : compressResponse(res, req, compression);
    forward(ctx, ex, req, res, admitted, limit, compressed);
  }
}

/** An upgrade request: admission, then the tunnel. */
function handleUpgrade(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  socket: Duplex,
  head: Buffer,
): void {
  // As for requests, these may run later, outside onUpgrade's catch: a throw closes this connection only.
  const proceed = (admitted: Admitted): void => {
    try {
      if (admitted.refusal != null) {
        logCaptureRefusal(ctx, ex, admitted.refusal);
        answerRaw(ctx, ex, req, socket, 400, null);
      } else if (!hasEndpoints(admitted))
        answerRaw(ctx, ex, req, socket, admitted.location?.defaultBackendRoot === true ? 404 : 503, null);
      else tunnel(ctx, ex, req, socket, head, admitted);
    } catch (error) {
      upgradeFailed(ctx, ex, req, socket, error);
    }
  };
  const respond: Respond = (status, headers) => {
    try {
      answerRaw(ctx, ex, req, socket, status, headers);
    } catch (error) {
      upgradeFailed(ctx, ex, req, socket, error);
    }
  };
  const admitted = admit(ctx, ex, req, respond, proceed);
  if (admitted !== null && admitted !== PENDING) proceed(admitted);
}

/** A head the parser refused: its status (keepip's parser says which), straight to the socket, and a log line. */
function handleClientError(ctx: HandlerContext, error: ClientError, socket: Duplex): void {
  const conn = connectionOf(socket);
  const tlsFailure = typeof error.code === 'string' && error.code.startsWith('ERR_SSL');
  if (conn === undefined || !socket.writable || error.code === 'ECONNRESET' || tlsFailure) {
    socket.destroy();
    return;
  }
  // keepip's parser (h1-request.ts) says which status.
  const status =
    error.statusCode ??
    (error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400);
  socket.end(rawErrorResponse(status));
  const request = firstLine(error.rawPacket);
  // The parser's refusal by its code, as the router's are (nginx logs them at info too).
  if (error.code?.startsWith('H1_')) {
    const context = requestContext({
      client: conn.proxySource ?? conn.peerAddress,
      server: '_',
      request,
      host: '',
    });
    ctx.errorLog.write(
      'info',
      conn.id,
      `client sent invalid request (${error.code}: ${error.message})${context}`,
    );
  }
  // A header timeout is logged too (nginx: `"GET /ab" 408`): a slow-header client shows in the log.
  // $request_length: the bytes read when it was refused (nginx counts up to the refused line).
  const length = error.rawPacket?.length ?? request.length;
  logBareRequest(ctx, conn, request, status, errorPageBody(status).length, {}, length);
}

/** A plain HTTP request on the HTTPS listener: nginx's 400 "The plain HTTP request was sent to HTTPS port". */
function answerPlainHttpOnHttps(ctx: HandlerContext, req: GatewayRequest, res: GatewayResponse): void {
  const conn = connectionOf(req.socket);
  const body = PLAIN_HTTP_ON_HTTPS_BODY;
  res.writeHead(400, reasonPhrase(400), {
    'content-type': HTML_CONTENT_TYPE,
    'content-length': body.length,
    connection: 'close',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  if (conn !== undefined) logBareRequest(ctx, conn, requestLineOf(req), 400, body.length, req.headers);
}

/** A request an engine refused before the pipeline (e.g. an HTTP/2 CONNECT): its status and the log lines. */
function answerRefusedRequest(
  ctx: HandlerContext,

  req: GatewayRequest,
  res: GatewayResponse,
  status: number,
  reason: string,
): void {
  const conn = connectionOf(req.socket);
  // Refused before any location, as nginx refuses it: its error page, a gRPC client's too (which
  // reads the HTTP status, 400 as INTERNAL); its head used to go out with no body after it.
  const body = errorPageBody(status);
  res.writeHead(status, reasonPhrase(status), {
    'content-type': HTML_CONTENT_TYPE,
    'content-length': body.length,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  if (conn === undefined) return;
  const request = requestLineOf(req);
  const host = typeof req.headers.host === 'string' ? req.headers.host : '';
  const client = conn.proxySource ?? conn.peerAddress;
  ctx.errorLog.write('info', conn.id, reason + requestContext({ client, server: '_', request, host }));
  logBareRequest(ctx, conn, request, status, body.length, req.headers);
}

/**
 * An HTTP/2 stream reset by the client before it was routed: an exchange that ends at once, 499
 * (nginx's for it), with the client and request line of the access phase's first stage and no route:
 * its access line, metrics and the dashboard's record agree.
 */
function logResetRequest(ctx: HandlerContext, req: GatewayRequest): void {
  const conn = connectionOf(req.socket);
  if (conn === undefined) return;
  const ex = beginExchange(ctx, req, null, ctx.current(), conn);
  try {
    resolveClient(ex, req);
  } catch (error) {
    // A keepip bug: logged, and the line still written (with the connection's address).
    logRequestFailure(ctx, req, error);
  }
  completeExchange(ctx, ex, req, 499, 0);
}

/** A request whose handling threw: a keepip bug, answered 500 instead of ending every client's process. */
export interface RequestFailure {
  code: 'GATEWAY_REQUEST_FAILED';
  message: string;
}

/** Logs a request whose handling threw (a keepip bug), with its stack. */
function logRequestFailure(ctx: HandlerContext, req: GatewayRequest, error: unknown): void {
  const failure: RequestFailure = {
    code: 'GATEWAY_REQUEST_FAILED',
    message: String((error as Error)?.stack ?? error),
  };
  ctx.errorLog.write('alert', connectionOf(req.socket)?.id ?? null, `${failure.code}: ${failure.message}`);
}

/** Answers a request whose handling threw, and ends its exchange (logged 500, released) when it had begun. */
function requestFailed(
  ctx: HandlerContext,
  ex: Exchange | null,
  req: GatewayRequest,
  res: GatewayResponse,
  error: unknown,
): void {
  logRequestFailure(ctx, req, error);
  if (res.headersSent) res.destroy();
  else
    res
      .writeHead(500, { 'content-type': 'text/plain', connection: 'close' })
      .end(Buffer.from('500 Internal Server Error\n'));
  endFailedExchange(ctx, ex, req);
}

/** Ends the exchange of a request whose handling threw (logged 500), when it had begun. */
function endFailedExchange(ctx: HandlerContext, ex: Exchange | null, req: GatewayRequest): void {
  if (ex === null) return;
  try {
    completeExchange(ctx, ex, req, 500, 0);
  } catch {
    // The same bug may throw again while logging; the counters were released all the same.
  }
}

/** Begins the exchange of a request and handles it; a throw is answered 500 instead of ending the process. */
function onRequest(ctx: HandlerContext, req: GatewayRequest, res: GatewayResponse): void {
  let ex: Exchange | null = null;
  try {
    const conn = connectionOf(req.socket);
    if (conn === undefined) {
      // Only sockets our listeners accepted reach this server; anything else is a programming error.
      res.writeHead(500).end();
      return;
    }
    ex = beginExchange(ctx, req, res, ctx.current(), conn);
    handleRequest(ctx, ex, req, res);
  } catch (error) {
    requestFailed(ctx, ex, req, res, error);
  }
}

/** Begins the exchange of an upgrade request and handles it; a throw closes that connection only. */
function onUpgrade(ctx: HandlerContext, req: GatewayRequest, socket: Duplex, head: Buffer): void {
  let ex: Exchange | null = null;
  socket.on('error', () => socket.destroy());
  try {
    const conn = connectionOf(req.socket);
    if (conn === undefined) {
      socket.destroy();
      return;
    }
    ex = beginExchange(ctx, req, null, ctx.current(), conn);
    handleUpgrade(ctx, ex, req, socket, head);
  } catch (error) {
    upgradeFailed(ctx, ex, req, socket, error);
  }
}

/** Closes an upgrade whose handling threw, and ends its exchange (logged 500) when it had begun. */
function upgradeFailed(
  ctx: HandlerContext,
  ex: Exchange | null,
  req: GatewayRequest,
  socket: Duplex,
  error: unknown,
): void {
  logRequestFailure(ctx, req, error);
  socket.destroy();
  endFailedExchange(ctx, ex, req);
}

export function createRequestHandler(ctx: HandlerContext): RequestHandler {
  return {
    onRequest: (req, res) => onRequest(ctx, req, res),
    onUpgrade: (req, socket, head) => onUpgrade(ctx, req, socket, head),
    onClientError: (error, socket) => handleClientError(ctx, error, socket),
    onPlainHttpOnHttps: (req, res) => answerPlainHttpOnHttps(ctx, req, res),
    onRefusedRequest: (req, res, status, reason) => answerRefusedRequest(ctx, req, res, status, reason),
    onResetRequest: (req) => logResetRequest(ctx, req),
  };
}
