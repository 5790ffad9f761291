// The stages every request passes before it may reach a backend, plain or upgrade alike:
//   resolve the client -> route (host, path; bad targets 400) -> redirects -> access rules.
// Each stage either fills in the exchange or answers through `respond` and stops the request.
import type { LocationModel } from '../config/model.ts';
import type { AccessDecision } from '../net/access-policy.ts';
import { formatForbiddenLine } from './access-log.ts';
import { requestContext } from './error-log.ts';
import type { Exchange, GatewayRequest, HandlerContext } from './exchange.ts';
import { normalizeHost } from './host.ts';
import { requestIdFor } from './request-id.ts';
import { requestLineOf, shownClient } from './request-log.ts';
import { parseRequestTarget } from './request-target.ts';
import { decideAccess, hostHeaderRefusal, type RouteDecision, routeTarget, routingHost } from './router.ts';
import { forwardedView } from './upstream-headers.ts';
import type { BalancedUpstream } from './upstream.ts';

/** Answers the request with the gateway's own status (and headers, e.g. a redirect's Location). */
export type Respond = (status: number, headers: Record<string, string> | null) => void;

/** A request the stages let through: where it goes, and how its headers are to be believed. */
export interface Admitted {
  location: LocationModel | null;
  upstream: BalancedUpstream | null;
  upstreamPath: string;
  scheme: 'http' | 'https';
  /** Whether the hop that sent the request's headers is trusted (ClientIp.headersTrusted). */
  headersTrusted: boolean;
}

/** nginx's $host: the normalised Host header, else the server name. */
function hostVariable(rawHost: string, serverName: string): string {
  const normal = normalizeHost(rawHost);
  return normal === null || normal === '' ? serverName : normal;
}

/** Stage 1: the client address, the request line, and one host for routing, logs and the backend. */
function resolveClient(ex: Exchange, req: GatewayRequest) {
  const { snap, conn } = ex;
  const resolved = snap.resolveClientIp({
    peerAddress: conn.peerAddress,
    proxySource: conn.proxySource,
    headers: req.headers,
  });
  ex.client = resolved.address;
  ex.clientIp = resolved;
  ex.requestLine = requestLineOf(req);
  ex.reqId = requestIdFor(req.headers);
  const target = parseRequestTarget(req.url ?? '/');
  ex.rawHost = routingHost(target, req.headers.host ?? '');
  const scheme = forwardedView({
    incoming: req.headers,
    headersTrusted: resolved.headersTrusted,
    settings: snap.settings,
    scheme: conn.scheme,
    serverPort: conn.serverPort,
    host: ex.rawHost,
    proxyDestinationPort: conn.proxyDestinationPort,
  }).routeScheme;
  return { target, scheme, headersTrusted: resolved.headersTrusted };
}

/** Stage 2: the route, from the Host header's checks and the parsed target. */
function route(ex: Exchange, req: GatewayRequest, client: ReturnType<typeof resolveClient>): RouteDecision {
  return (
    hostHeaderRefusal(req.headers.host, req.httpVersion) ??
    routeTarget(ex.snap.routes, { host: ex.rawHost, target: client.target, scheme: client.scheme })
  );
}

/** A 400 for a target or host the gateway refuses, with the reason in the error log. */
function refuseBadRequest(
  ctx: HandlerContext,
  ex: Exchange,
  decision: RouteDecision & { kind: 'bad-request' },
  respond: Respond,
): void {
  ex.host = hostVariable('', '_');
  ctx.errorLog.write(
    'info',
    ex.conn.id,
    `client sent invalid request (${decision.code}: ${decision.message})` +
      requestContext({ client: shownClient(ex.client), server: '_', request: ex.requestLine, host: '' }),
  );
  respond(400, null);
}

/** Stage 4: the 403 / 503 of an access rule, with its error log line (nginx's wording for 403). */
function refuseAccess(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  verdict: AccessDecision,
  respond: Respond,
): void {
  ctx.metrics.denial(verdict.rule);
  const context = {
    client: shownClient(ex.client),
    server: ex.serverName,
    request: ex.requestLine,
    host: ex.rawHost,
  };
  if (verdict.outcome === 'deny') {
    const referrer = typeof req.headers.referer === 'string' ? req.headers.referer : null;
    ctx.errorLog.write('error', ex.conn.id, formatForbiddenLine({ ...context, referrer }));
    respond(403, null);
    return;
  }
  ctx.errorLog.write(
    'error',
    ex.conn.id,
    `access rules of this location are invalid (${verdict.detail}): failing closed` + requestContext(context),
  );
  respond(503, null);
}

/**
 * Runs the stages for one request. Returns where it goes, or null when the gateway already answered
 * (400, 404, a redirect, 403, 503).
 */
export function admit(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  respond: Respond,
): Admitted | null {
  const client = resolveClient(ex, req);
  const { scheme, headersTrusted } = client;
  const decision = route(ex, req, client);
  if (decision.kind === 'bad-request') {
    refuseBadRequest(ctx, ex, decision, respond);
    return null;
  }
  const { snap } = ex;
  if (decision.kind === 'not-found') {
    ex.serverName = decision.serverName;
    ex.host = hostVariable(ex.rawHost, decision.serverName);
    if (snap.defaultUpstream === null || decision.backend === null) {
      respond(404, null);
      return null;
    }
    ex.upstreamName = snap.defaultUpstream.name;
    return {
      location: null,
      upstream: snap.defaultUpstream,
      upstreamPath: client.target.raw,
      scheme,
      headersTrusted,
    };
  }
  const matched = decision.route;
  ex.route = matched;
  ex.serverName = matched.serverName;
  ex.host = hostVariable(ex.rawHost, matched.serverName);
  ex.upstreamName = matched.upstreamName;
  if (decision.kind === 'redirect') {
    respond(decision.status, { location: decision.location });
    return null;
  }
  const { verdict, decidedBy } = decideAccess(matched, decision.guards, ex.client);
  ex.verdict = verdict;
  ex.decidedBy = decidedBy;
  if (verdict.outcome !== 'allow') {
    refuseAccess(ctx, ex, req, verdict, respond);
    return null;
  }
  const upstream = snap.upstreamFor(matched.location) ?? null;
  return {
    location: matched.location,
    upstream,
    upstreamPath: decision.upstreamPath,
    scheme,
    headersTrusted,
  };
}
