// The gateway's own answers (error pages and redirects), on a response object or, for an upgrade
// request or a head the parser refused, written straight to the socket.
import type { Duplex } from 'node:stream';
import { errorPageBody, HTML_CONTENT_TYPE, reasonPhrase } from './error-pages.ts';
import type { Exchange, GatewayRequest, GatewayResponse, HandlerContext } from './exchange.ts';
import { grpcAnswerHeaders, grpcStatusForHttp, isGrpcRequest } from './grpc-status.ts';
import { completeExchange } from './request-log.ts';
import { answerHeaders } from './response-headers.ts';

const NO_BODY = Buffer.alloc(0);

/**
 * The gateway's own answers after which the connection closes, as nginx's special responses turn
 * keep-alive off: a request it refused as bad (400), too big (413: the rest of the body is not read
 * for another request), a target too long (414), its own failure (500) or an unknown method or coding
 * (501). Nothing pipelined after such a request reaches a backend.
 */
const CLOSES_CONNECTION: ReadonlySet<number> = new Set([400, 413, 414, 500, 501]);

/**
 * Whether the connection closes after an answer to `status`, the gateway's own or the error backend's
 * in its place (nginx clears keep-alive for these before error_page runs).
 */
export function closesConnection(status: number): boolean {
  return CLOSES_CONNECTION.has(status);
}

/** The error page (or redirect) of `status` on `res`, then the log line. */
export function answer(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  res: GatewayResponse,
  status: number,
  extraHeaders: Record<string, string | string[]> | null,
): void {
  if (isGrpcRequest(req.headers)) {
    // The location's and the server's headers (HSTS…) as on any answer of the gateway's own.
    grpcAnswer(res, status, { ...extraHeaders, ...answerHeaders(ex, req, status) });
    if (!req.complete) req.resume();
    completeExchange(ctx, ex, req, status, 0);
    return;
  }
  // A 204 (a CORS preflight) has no body, and no Content-Type: nginx's header filter drops it from every
  // 204, the one ingress-nginx's preflight sets included. No Content-Length of ours either.
  const body = status === 204 ? NO_BODY : errorPageBody(status);
  const headers: Record<string, string | number | string[]> =
    status === 204
      ? { ...extraHeaders, ...answerHeaders(ex, req, status) }
      : {
          'content-type': HTML_CONTENT_TYPE,
          'content-length': body.length,
          ...extraHeaders,
          ...answerHeaders(ex, req, status),
        };
  if (closesConnection(status) || ctx.isDraining()) headers.connection = 'close';
  res.writeHead(status, reasonPhrase(status), headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  // Whatever body the client still sends is not ours to forward.
  if (!req.complete) req.resume();
  completeExchange(ctx, ex, req, status, req.method === 'HEAD' ? 0 : body.length);
}

/**
 * The gateway's answer `status` as a gRPC client reads it: a trailers-only response whose grpc-status
 * says the same (403: PERMISSION_DENIED, 502/503: UNAVAILABLE…; grpc-status.ts).
 */
export function grpcAnswer(
  res: GatewayResponse,
  status: number,
  extraHeaders: Record<string, string | string[]> | null,
): void {
  const message = `HTTP ${status} ${reasonPhrase(status)} from the gateway`;
  res.writeHead(200, grpcAnswerHeaders(grpcStatusForHttp(status), message, extraHeaders));
  res.end();
}

/** A complete HTTP/1.1 error response (`connection: close`) as bytes, for a socket nothing was sent on. */
export function rawErrorResponse(
  status: number,
  headers: Record<string, string | string[]> | null = null,
): Buffer {
  const body = errorPageBody(status);
  let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\ncontent-type: ${HTML_CONTENT_TYPE}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n`;
  if (headers !== null)
    for (const name in headers) for (const value of [headers[name]!].flat()) head += `${name}: ${value}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), body]);
}

/** The error page (or redirect) of `status` straight to an upgrade socket, then the log line. */
export function answerRaw(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  socket: Duplex,
  status: number,
  headers: Record<string, string | string[]> | null,
): void {
  socket.end(rawErrorResponse(status, headers));
  completeExchange(ctx, ex, req, status, errorPageBody(status).length);
}
