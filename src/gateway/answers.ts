// The gateway's own answers (error pages and redirects), on a response object or, for an upgrade
// request or a head the parser refused, written straight to the socket.
import type { Duplex } from 'node:stream';
import { errorPageBody, HTML_CONTENT_TYPE, reasonPhrase } from './error-pages.ts';
import type { Exchange, GatewayRequest, GatewayResponse, HandlerContext } from './exchange.ts';
import { completeExchange } from './request-log.ts';

/** The error page (or redirect) of `status` on `res`, then the log line. */
export function answer(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  res: GatewayResponse,
  status: number,
  extraHeaders: Record<string, string | string[]> | null,
  closeConnection = false,
): void {
  const body = errorPageBody(status);
  const headers: Record<string, string | number | string[]> = {
    'content-type': HTML_CONTENT_TYPE,
    'content-length': body.length,
    ...extraHeaders,
  };
  if (closeConnection || ctx.isDraining()) headers.connection = 'close';
  res.writeHead(status, reasonPhrase(status), headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  // Whatever body the client still sends is not ours to forward.
  if (!req.complete) req.resume();
  completeExchange(ctx, ex, req, status, req.method === 'HEAD' ? 0 : body.length);
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
