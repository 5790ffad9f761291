// The request pipeline (docs/architecture.md, data path): client-IP resolution -> router (host, path) ->
// redirects -> access policy (block-cidrs, deny, allow; fail closed 503) -> body size -> upstream,
// then one access log line, the metrics and, for denials and upstream failures, an nginx-style error
// log line. Each request runs on the snapshot that was current when it arrived.
import type { Duplex } from 'node:stream';
import type { LocationModel } from '../config/model.ts';
import { type AccessLogVars, createAccessLogVars, formatForbiddenLine } from './access-log.ts';
import type { ConnectionInfo } from './connection.ts';
import { connectionOf } from './connection.ts';
import { type ErrorLog, requestContext } from './error-log.ts';
import { normalizeHost } from './host.ts';
import { errorPageBody, HTML_CONTENT_TYPE, PLAIN_HTTP_ON_HTTPS_BODY, reasonPhrase } from './error-pages.ts';
import type { LineSink } from './line-sink.ts';
import type { GatewayMetrics } from './metrics.ts';
import { type ProxyFailure, type ProxyOutcome, type UpstreamAttempt, proxyRequest } from './proxy.ts';
import { decideAccess, hostHeaderRefusal, type MatchedRoute, routeTarget, routingHost } from './router.ts';
import { parseRequestTarget } from './request-target.ts';
import type { AccessDecision } from '../net/access-policy.ts';
import type { GatewayRequest, GatewayResponse } from './h1-server.ts';
import { type GatewaySnapshot, requestEnded } from './snapshot.ts';
import { newRequestId, requestIdFor } from './request-id.ts';
import { buildUpstreamHeaders, forwardedView } from './upstream-headers.ts';
import type { BalancedUpstream } from './upstream.ts';
import { proxyUpgrade, type UpgradeOutcome } from './websocket.ts';

export interface HandlerContext {
  /** The snapshot new requests start on. */
  current(): GatewaySnapshot;
  metrics: GatewayMetrics;
  accessLog: LineSink;
  errorLog: ErrorLog;
  /** While draining, every response closes its connection. */
  isDraining(): boolean;
  /** Requests being served, across snapshots (drain waits for 0). */
  active: { count: number };
}

/** What one request carries from its start to its access log line. */
interface Exchange {
  snap: GatewaySnapshot;
  conn: ConnectionInfo;
  startedAt: number;
  bytesBefore: number;
  client: string;
  requestLine: string;
  /** The Host header as received (X-Forwarded-Host, error log `host: "…"`). */
  rawHost: string;
  /** $host: normalised host name. */
  host: string;
  serverName: string;
  reqId: string;
  route: MatchedRoute | null;
  upstreamName: string | null;
  attempts: UpstreamAttempt[];
  upstreamBytes: number | null;
  bodyBytes: number;
}

const NO_ATTEMPTS: UpstreamAttempt[] = [];

/**
 * An unknown client (resolved to '') is not an address: the backend gets no X-Real-IP rather than an
 * empty one, and no empty X-Forwarded-For (a computed full chain is kept).
 */
function withoutEmptyClient(headers: Record<string, string | string[]>): void {
  if (headers['x-real-ip'] === '') delete headers['x-real-ip'];
  if (headers['x-forwarded-for'] === '') delete headers['x-forwarded-for'];
}

/** What the backend receives for the request of `ex` (both the proxied and the upgraded path). */
function upstreamHeaders(
  req: GatewayRequest,
  ex: Exchange,
  headersTrusted: boolean,
): Record<string, string | string[]> {
  const { conn } = ex;
  const headers = buildUpstreamHeaders({
    incoming: req.headers,
    clientAddress: ex.client,
    headersTrusted,
    settings: ex.snap.settings,
    scheme: conn.scheme,
    serverPort: conn.serverPort,
    host: ex.rawHost,
    requestId: ex.reqId,
    peerAddress: conn.peerAddress,
    proxyProtocolAddress: conn.proxySource,
    proxyDestinationPort: conn.proxyDestinationPort,
  });
  if (ex.client === '') withoutEmptyClient(headers);
  return headers;
}

/** The client as logs show it: '' (unknown, e.g. after a malformed forwarded header) is `-`. */
function shownClient(client: string): string {
  return client === '' ? '-' : client;
}

function requestLineOf(req: GatewayRequest): string {
  return `${req.method ?? ''} ${req.url ?? ''} HTTP/${req.httpVersion}`;
}

/** Bytes of the request line and headers as received (nginx's $request_length without the body). */
function headerLength(req: GatewayRequest): number {
  let length = (req.method?.length ?? 0) + (req.url?.length ?? 0) + 12; // spaces, HTTP/x.y, CRLF
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) length += (raw[i]?.length ?? 0) + (raw[i + 1]?.length ?? 0) + 4;
  return length + 2;
}

/** nginx's $host: the normalised Host header, else the server name. */
function hostVariable(rawHost: string, serverName: string): string {
  const normal = normalizeHost(rawHost);
  return normal === null || normal === '' ? serverName : normal;
}

function hasRequestBody(req: GatewayRequest): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function upstreamList(attempts: UpstreamAttempt[], pick: (a: UpstreamAttempt) => string): string | null {
  if (attempts.length === 0) return null;
  if (attempts.length === 1) return pick(attempts[0] as UpstreamAttempt);
  return attempts.map(pick).join(', ');
}

export interface RequestHandler {
  onRequest(req: GatewayRequest, res: GatewayResponse): void;
  onUpgrade(req: GatewayRequest, socket: Duplex, head: Buffer): void;
  /** node:http could not parse a request (e.g. a PROXY header on a listener not configured for one: 400). */
  onClientError(
    error: Error & { code?: string; rawPacket?: Buffer; statusCode?: number },
    socket: Duplex,
  ): void;
  /** A plain HTTP request on the HTTPS listener: nginx's 400 "The plain HTTP request was sent to HTTPS port". */
  onPlainHttpOnHttps(req: GatewayRequest, res: GatewayResponse): void;
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

export function createRequestHandler(ctx: HandlerContext): RequestHandler {
  const { metrics, errorLog } = ctx;

  const begin = (req: GatewayRequest, snap: GatewaySnapshot, conn: ConnectionInfo): Exchange => {
    snap.inflight += 1;
    ctx.active.count += 1;
    return {
      snap,
      conn,
      startedAt: performance.now(),
      bytesBefore: req.socket.bytesWritten,
      client: conn.peerAddress,
      requestLine: '',
      rawHost: '',
      host: '',
      serverName: '_',
      reqId: '',
      route: null,
      upstreamName: null,
      attempts: NO_ATTEMPTS,
      upstreamBytes: null,
      bodyBytes: 0,
    };
  };

  const complete = (ex: Exchange, req: GatewayRequest, status: number, bodyBytesSent: number): void => {
    const { snap, conn, route } = ex;
    const vars: AccessLogVars = createAccessLogVars();
    vars.remoteAddr = shownClient(ex.client);
    vars.remotePort = conn.proxyPort ?? conn.peerPort;
    vars.realipRemoteAddr = conn.peerAddress;
    vars.proxyProtocolAddr = conn.proxySource;
    vars.proxyProtocolPort = conn.proxyPort;
    vars.timeMs = Date.now();
    vars.request = ex.requestLine;
    vars.requestMethod = req.method ?? '';
    vars.requestUri = req.url ?? '';
    vars.serverProtocol = `HTTP/${req.httpVersion}`;
    vars.status = status;
    vars.bodyBytesSent = bodyBytesSent;
    vars.bytesSent = Math.max(bodyBytesSent, req.socket.bytesWritten - ex.bytesBefore);
    vars.requestLength = headerLength(req) + ex.bodyBytes;
    vars.requestTimeMs = performance.now() - ex.startedAt;
    vars.headers = req.headers;
    vars.host = ex.host;
    vars.scheme = conn.scheme;
    vars.serverName = ex.serverName;
    vars.serverAddr = conn.serverAddress;
    vars.serverPort = conn.serverPort;
    vars.proxyUpstreamName = ex.upstreamName;
    vars.reqId = ex.reqId;
    const attempts = ex.attempts;
    if (attempts.length > 0) {
      vars.upstreamAddr = upstreamList(attempts, (a) => a.hostPort);
      vars.upstreamStatus = upstreamList(attempts, (a) => (a.status === null ? '-' : String(a.status)));
      vars.upstreamResponseTimeMs =
        attempts.length === 1
          ? (attempts[0] as UpstreamAttempt).seconds * 1000
          : attempts.map((a) => a.seconds.toFixed(3)).join(', ');
      vars.upstreamResponseLength = ex.upstreamBytes;
      for (const attempt of attempts) metrics.upstreamDuration(ex.upstreamName ?? '', attempt.seconds);
    }
    if (route !== null) {
      const location = route.location;
      vars.namespace = location.ingress.namespace;
      vars.ingressName = location.ingress.name;
      if (location.backend !== null) {
        vars.serviceName = location.backend.service.name;
        vars.servicePort = location.backend.port;
      }
    }
    ctx.accessLog.write(snap.formatAccessLine(vars));
    metrics.request(
      route === null ? '' : `${route.location.ingress.namespace}/${route.location.ingress.name}`,
      route === null ? '_' : ex.serverName,
      status,
    );
    ctx.active.count -= 1;
    requestEnded(snap);
  };

  /** The gateway's own answer (error page or redirect), then the log line. */
  const answer = (
    ex: Exchange,
    req: GatewayRequest,
    res: GatewayResponse,
    status: number,
    extraHeaders: Record<string, string> | null,
    closeConnection = false,
  ): void => {
    const body = errorPageBody(status);
    const headers: Record<string, string | number> = {
      'content-type': HTML_CONTENT_TYPE,
      'content-length': body.length,
      ...extraHeaders,
    };
    if (closeConnection || ctx.isDraining()) headers.connection = 'close';
    res.writeHead(status, reasonPhrase(status), headers);
    res.end(req.method === 'HEAD' ? undefined : body);
    // Whatever body the client still sends is not ours to forward.
    if (!req.complete) req.resume();
    complete(ex, req, status, req.method === 'HEAD' ? 0 : body.length);
  };

  const logUpstreamFailure = (ex: Exchange, failure: ProxyFailure): void => {
    errorLog.write(
      'error',
      ex.conn.id,
      failure.message +
        requestContext({
          client: shownClient(ex.client),
          server: ex.serverName,
          request: ex.requestLine,
          upstream: failure.upstreamUrl,
          host: ex.rawHost,
        }),
    );
  };

  /** The 403 / 503 of an access rule, with its error log line (nginx's wording for 403). */
  const refuse = (
    ex: Exchange,
    req: GatewayRequest,
    verdict: AccessDecision,
    respond: (status: number, headers: Record<string, string> | null) => void,
  ): void => {
    metrics.denial(verdict.rule);
    const context = {
      client: shownClient(ex.client),
      server: ex.serverName,
      request: ex.requestLine,
      host: ex.rawHost,
    };
    if (verdict.outcome === 'deny') {
      const referrer = typeof req.headers.referer === 'string' ? req.headers.referer : null;
      errorLog.write('error', ex.conn.id, formatForbiddenLine({ ...context, referrer }));
      respond(403, null);
      return;
    }
    errorLog.write(
      'error',
      ex.conn.id,
      `access rules of this location are invalid (${verdict.detail}): failing closed` +
        requestContext(context),
    );
    respond(503, null);
  };

  /**
   * Steps shared by plain requests and upgrades: resolve the client, route, redirect, decide access.
   * Returns the route and upstream to use, or null when the gateway already answered.
   */
  const admit = (
    ex: Exchange,
    req: GatewayRequest,
    respond: (status: number, headers: Record<string, string> | null) => void,
  ): {
    location: LocationModel | null;
    upstream: BalancedUpstream | null;
    upstreamPath: string;
    scheme: 'http' | 'https';
    headersTrusted: boolean;
  } | null => {
    const { snap, conn } = ex;
    const resolved = snap.resolveClientIp({
      peerAddress: conn.peerAddress,
      proxySource: conn.proxySource,
      headers: req.headers,
    });
    ex.client = resolved.address;
    ex.requestLine = requestLineOf(req);
    const target = parseRequestTarget(req.url ?? '/');
    // One host for routing, the access decision, the logs and what the backend receives.
    const rawHost = routingHost(target, req.headers.host ?? '');
    ex.rawHost = rawHost;
    const headersTrusted = resolved.headersTrusted;
    const scheme = forwardedView({
      incoming: req.headers,
      headersTrusted,
      settings: snap.settings,
      scheme: conn.scheme,
      serverPort: conn.serverPort,
      host: rawHost,
      proxyDestinationPort: conn.proxyDestinationPort,
    }).routeScheme;
    ex.reqId = requestIdFor(req.headers);
    const decision =
      hostHeaderRefusal(req.headers.host, req.httpVersion) ??
      routeTarget(snap.routes, { host: rawHost, target, scheme });
    if (decision.kind === 'bad-request') {
      ex.host = hostVariable('', '_');
      errorLog.write(
        'info',
        conn.id,
        `client sent invalid request (${decision.code}: ${decision.message})` +
          requestContext({ client: shownClient(ex.client), server: '_', request: ex.requestLine, host: '' }),
      );
      respond(400, null);
      return null;
    }
    if (decision.kind === 'not-found') {
      ex.serverName = decision.serverName;
      ex.host = hostVariable(rawHost, decision.serverName);
      if (snap.defaultUpstream === null || decision.backend === null) {
        respond(404, null);
        return null;
      }
      ex.upstreamName = snap.defaultUpstream.name;
      return {
        location: null,
        upstream: snap.defaultUpstream,
        upstreamPath: target.raw,
        scheme,
        headersTrusted,
      };
    }
    const route = decision.route;
    ex.route = route;
    ex.serverName = route.serverName;
    ex.host = hostVariable(rawHost, route.serverName);
    ex.upstreamName = route.upstreamName;
    if (decision.kind === 'redirect') {
      respond(decision.status, { location: decision.location });
      return null;
    }
    const { verdict } = decideAccess(route, decision.guards, ex.client);
    if (verdict.outcome !== 'allow') {
      refuse(ex, req, verdict, respond);
      return null;
    }
    const upstream = snap.upstreamFor(route.location) ?? null;
    return {
      location: route.location,
      upstream,
      upstreamPath: decision.upstreamPath,
      scheme,
      headersTrusted,
    };
  };

  const onRequest = (req: GatewayRequest, res: GatewayResponse): void => {
    const conn = connectionOf(req.socket);
    if (conn === undefined) {
      // Only sockets our listeners accepted reach this server; anything else is a programming error.
      res.writeHead(500).end();
      return;
    }
    const snap = ctx.current();
    const ex = begin(req, snap, conn);
    const admitted = admit(ex, req, (status, headers) => answer(ex, req, res, status, headers));
    if (admitted === null) return;
    const { location, upstream } = admitted;

    const limit = location?.proxyBodySizeBytes ?? snap.settings.proxyBodySizeBytes;
    const declared = req.headers['content-length'];
    if (limit > 0 && declared !== undefined && Number(declared) > limit) {
      errorLog.write(
        'error',
        conn.id,
        `client intended to send too large body: ${declared} bytes` +
          requestContext({
            client: shownClient(ex.client),
            server: ex.serverName,
            request: ex.requestLine,
            host: ex.rawHost,
          }),
      );
      answer(ex, req, res, 413, null, true);
      return;
    }
    if (upstream === null || upstream.members.length === 0) {
      // ingress-nginx answers 503 for a backend without endpoints (or without a Service).
      answer(ex, req, res, 503, null);
      return;
    }

    const headers = upstreamHeaders(req, ex, admitted.headersTrusted);
    // node:http already answered 100-continue (and undici refuses Expect); hop-by-hop headers are never
    // copied by buildUpstreamHeaders. Deleting only when present keeps the object in fast mode.
    if (headers.expect !== undefined) delete headers.expect;
    if (ctx.isDraining()) res.shouldKeepAlive = false;

    const hasBody = hasRequestBody(req);
    proxyRequest(
      req,
      res,
      {
        upstream,
        method: req.method ?? 'GET',
        path: admitted.upstreamPath,
        headers,
        readTimeoutMs: location?.proxyReadTimeoutMs ?? snap.settings.proxyReadTimeoutMs,
        sendTimeoutMs: location?.proxySendTimeoutMs ?? snap.settings.proxySendTimeoutMs,
        bodyLimitBytes: limit,
        hasBody,
      },
      (outcome: ProxyOutcome) => {
        ex.attempts = outcome.attempts;
        ex.upstreamBytes = outcome.upstreamBytes;
        ex.bodyBytes = outcome.requestBodyBytes;
        const failure = outcome.failures[outcome.failures.length - 1];
        for (const f of outcome.failures) if (f.code !== 'CLIENT_CLOSED') logUpstreamFailure(ex, f);
        if (outcome.answeredByGateway) {
          answer(ex, req, res, outcome.status, null, failure?.code === 'CLIENT_BODY_TOO_LARGE');
          return;
        }
        complete(ex, req, outcome.status, outcome.bodyBytesSent);
      },
    );
  };

  /** Writes a complete HTTP/1.1 response straight to an upgrade socket (nothing was sent on it yet). */
  const answerRaw = (
    ex: Exchange,
    req: GatewayRequest,
    socket: Duplex,
    status: number,
    headers: Record<string, string> | null,
  ): void => {
    const body = errorPageBody(status);
    let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\ncontent-type: ${HTML_CONTENT_TYPE}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n`;
    if (headers !== null) for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    socket.end(Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), body]));
    complete(ex, req, status, body.length);
  };

  const onUpgrade = (req: GatewayRequest, socket: Duplex, head: Buffer): void => {
    const conn = connectionOf(req.socket);
    socket.on('error', () => socket.destroy());
    if (conn === undefined) {
      socket.destroy();
      return;
    }
    const snap = ctx.current();
    const ex = begin(req, snap, conn);
    const admitted = admit(ex, req, (status, headers) => answerRaw(ex, req, socket, status, headers));
    if (admitted === null) return;
    const { location, upstream } = admitted;
    if (upstream === null || upstream.members.length === 0) {
      answerRaw(ex, req, socket, 503, null);
      return;
    }
    const headers = upstreamHeaders(req, ex, admitted.headersTrusted);
    // As ingress-nginx: `Upgrade $http_upgrade` and `Connection $connection_upgrade`.
    const upgrade = req.headers.upgrade;
    if (upgrade !== undefined) headers.upgrade = upgrade;
    headers.connection = 'upgrade';
    proxyUpgrade(
      socket,
      head,
      {
        upstream,
        method: req.method ?? 'GET',
        path: admitted.upstreamPath,
        headers,
        readTimeoutMs: location?.proxyReadTimeoutMs ?? snap.settings.proxyReadTimeoutMs,
      },
      (outcome: UpgradeOutcome) => {
        ex.attempts = outcome.attempts;
        ex.upstreamBytes = outcome.bytesToClient;
        for (const f of outcome.failures) logUpstreamFailure(ex, f);
        if (outcome.answeredByGateway) {
          if (!socket.destroyed) answerRaw(ex, req, socket, outcome.status, null);
          else complete(ex, req, 499, 0);
          return;
        }
        complete(ex, req, outcome.status, outcome.bytesToClient);
      },
    );
  };

  /** The access log line and metrics for a request that never reached the pipeline. */
  const logBare = (
    conn: ConnectionInfo,
    request: string,
    status: number,
    bodyBytes: number,
    headers: Record<string, string | string[] | undefined>,
  ): void => {
    const snap = ctx.current();
    const vars = createAccessLogVars();
    vars.remoteAddr = conn.proxySource ?? conn.peerAddress;
    vars.remotePort = conn.proxyPort ?? conn.peerPort;
    vars.realipRemoteAddr = conn.peerAddress;
    vars.proxyProtocolAddr = conn.proxySource;
    vars.proxyProtocolPort = conn.proxyPort;
    vars.timeMs = Date.now();
    vars.request = request;
    vars.status = status;
    vars.bodyBytesSent = bodyBytes;
    vars.bytesSent = bodyBytes;
    vars.requestLength = request.length;
    vars.headers = headers;
    vars.scheme = conn.scheme;
    vars.serverAddr = conn.serverAddress;
    vars.serverPort = conn.serverPort;
    vars.reqId = newRequestId();
    ctx.accessLog.write(snap.formatAccessLine(vars));
    metrics.request('', '_', status);
  };

  const onClientError = (
    error: Error & { code?: string; rawPacket?: Buffer; statusCode?: number },
    socket: Duplex,
  ): void => {
    const conn = connectionOf(socket);
    const tlsFailure = typeof error.code === 'string' && error.code.startsWith('ERR_SSL');
    if (conn === undefined || !socket.writable || error.code === 'ECONNRESET' || tlsFailure) {
      socket.destroy();
      return;
    }
    // keepip's parser (h1-request.ts) says which status; node:http's errors are mapped here.
    const status =
      error.statusCode ??
      (error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400);
    const body = errorPageBody(status);
    socket.end(
      Buffer.concat([
        Buffer.from(
          `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\ncontent-type: ${HTML_CONTENT_TYPE}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`,
          'latin1',
        ),
        body,
      ]),
    );
    if (status !== 408) logBare(conn, firstLine(error.rawPacket), status, body.length, {});
  };

  const onPlainHttpOnHttps = (req: GatewayRequest, res: GatewayResponse): void => {
    const conn = connectionOf(req.socket);
    const body = PLAIN_HTTP_ON_HTTPS_BODY;
    res.writeHead(400, reasonPhrase(400), {
      'content-type': HTML_CONTENT_TYPE,
      'content-length': body.length,
      connection: 'close',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    if (conn !== undefined) logBare(conn, requestLineOf(req), 400, body.length, req.headers);
  };

  return { onRequest, onUpgrade, onClientError, onPlainHttpOnHttps };
}
