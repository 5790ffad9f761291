// The stages every request passes before it may reach a backend, plain or upgrade alike, in nginx's
// order of phases: resolve the client -> route (host, path; bad targets 400) -> the server's own
// answers (block lists, from-to-www, app-root) -> the location found: its body size limit (413) and
// trailing-slash 301 -> its CORS and redirects -> its access rules.
// Each stage either fills in the exchange or answers through `respond` and stops the request.
import { DEFAULT_UPSTREAM_NAME, type LocationAccessModel, type LocationModel } from '../config/model.ts';
import type { AccessDecision } from '../net/access-policy.ts';
import { parseBasicCredentials } from './access/basic-credentials.ts';
import {
  checkClientCertificate,
  clientCertificateView,
  misdirected,
  verifiedUnderOtherTrust,
} from './access/client-cert.ts';
import { expandVariables, type RequestVars } from './access/nginx-vars.ts';
import { enforceAccess } from './access/stage.ts';
import { formatForbiddenLine } from './access-log.ts';
import { affinitizedTo, affinityCookie, memberKey, stickyChoice } from './affinity.ts';
import { ewmaChoice, hashChoice } from './balance.ts';
import { routeToCanary } from './canary.ts';
import { requestCookies } from './cookies.ts';
import { type CompiledCors, corsAnswer, PREFLIGHT_HEADERS } from './cors.ts';
import { requestContext } from './error-log.ts';
import type { Exchange, GatewayRequest, HandlerContext } from './exchange.ts';
import { normalizeHost } from './host.ts';
import { absoluteFor, serverResponseHeaders } from './response-headers.ts';
import { requestIdFor } from './request-id.ts';
import { logInvalidRequest, requestLineOf, shownClient } from './request-log.ts';
import { parseRequestTarget } from './request-target.ts';
import {
  type CaptureRefusal,
  DEFAULT_SERVER_NAME,
  decideAccess,
  hostHeaderRefusal,
  type MatchedRoute,
  type RouteDecision,
  routeTarget,
  routingHost,
} from './router.ts';
import { forwardedView } from './upstream-headers.ts';
import type { BalancedUpstream } from './upstream.ts';

/**
 * Answers the request with the gateway's own status (and headers, e.g. a redirect's Location).
 * `by`: the location whose answer it is (a refusal of its access phase: allow/deny, limits, auth; or
 * its 413), which its custom-http-errors may hand to the error backend (nginx's error_page there).
 */
export type Respond = (
  status: number,
  headers: Record<string, string | string[]> | null,
  by?: LocationModel,
) => void;

/** admit's answer when the access stage continues asynchronously: it calls `resume` or `respond` later. */
export const PENDING = 'pending';

/** A request the stages let through: where it goes, and how its headers are to be believed. */
export interface Admitted {
  location: LocationModel | null;
  upstream: BalancedUpstream | null;
  upstreamPath: string;
  scheme: 'http' | 'https';
  /** Whether the hop that sent the request's headers is trusted (ClientIp.headersTrusted). */
  headersTrusted: boolean;
  /** x-forwarded-prefix of a rewriting location (RouteDecision); absent: none. */
  forwardedPrefix?: string | null;
  /** A capture of the path x-forwarded-prefix cannot carry (RouteDecision): 400 instead of upstream. */
  refusal?: CaptureRefusal | null;
  /** affinity: the session's member of `upstream`, tried first; absent: round robin. */
  firstMember?: number;
  /** affinity with session-cookie-change-on-failure: told each member tried. */
  onAttempt?: (index: number) => void;
  /** Headers for the upstream request beyond the usual (default-backend's X-Code 503…); '' removes one. */
  extraHeaders?: Record<string, string>;
}

/** ssl-client-* headers of a host with auth-tls-*, or its refusal (400/403, or a 302 to auth-tls-error-page). */
function clientCertificateStage(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  vhost: MatchedRouteVhost,
  respond: Respond,
): Record<string, string> | null | false {
  const model = vhost.clientCertificate ?? null;
  if (model === null) return null;
  const view = clientCertificateView(req.socket, model);
  ex.clientCertificate = view;
  // The handshake's verdict, against a CA or CRL a reload has replaced, says nothing now: a 421 on a
  // connection that closes, so the client's next one meets the CA of now (nginx closes the old ones).
  const wrongHost = misdirected(req.socket, ex.rawHost, model);
  if (!wrongHost && verifiedUnderOtherTrust(req.socket, model)) {
    const reason = 'client certificate was verified against the CA of a previous configuration';
    const context = requestContext({
      client: shownClient(ex.client),
      server: ex.serverName,
      request: ex.requestLine,
      host: ex.rawHost,
    });
    ctx.errorLog.write('info', ex.conn.id, `${reason} (TLS_CLIENT_CA_CHANGED)${context}`);
    req.endConnectionAfter?.();
    respond(421, { connection: 'close' });
    return false;
  }
  const check = wrongHost
    ? ({
        ok: false,
        status: 421,
        reason: 'client attempted to request the server name different from the one that was negotiated',
        location: null,
      } as const)
    : checkClientCertificate(model, view, ex.conn.scheme === 'https');
  if (check.ok) return check.headers;
  ctx.metrics.denial('auth-tls');
  ctx.errorLog.write(
    'info',
    ex.conn.id,
    `${check.reason} (nginx.ingress.kubernetes.io/auth-tls-*)` +
      requestContext({
        client: shownClient(ex.client),
        server: ex.serverName,
        request: ex.requestLine,
        host: ex.rawHost,
      }),
  );
  if (check.location !== null) respond(302, { location: check.location });
  else respond(check.status, null);
  return false;
}

type MatchedRouteVhost = NonNullable<Exchange['route']>['vhost'];

/** nginx's $host: the normalised Host header, else the server name. */
function hostVariable(rawHost: string, serverName: string): string {
  const normal = normalizeHost(rawHost);
  return normal === null || normal === '' ? serverName : normal;
}

/** Stage 1: the client address, the request line, and one host for routing, logs and the backend. */
export function resolveClient(ex: Exchange, req: GatewayRequest) {
  const { snap, conn } = ex;
  const resolved = snap.resolveClientIp({
    peerAddress: conn.peerAddress,
    proxySource: conn.proxySource,
    proxied: conn.proxied,
    headers: req.headers,
  });
  ex.client = resolved.address;
  ex.clientIp = resolved;
  ex.requestLine = requestLineOf(req);
  ex.reqId = requestIdFor(req.headers, ex.snap.routes.filters.server.generateRequestId);
  const target = parseRequestTarget(req.url ?? '/');
  if (target.error === null) ex.uri = target.uri;
  ex.requestUri = target.raw;
  ex.rawHost = routingHost(target, req.headers.host ?? '');
  const view = forwardedView({
    incoming: req.headers,
    headersTrusted: resolved.headersTrusted,
    settings: snap.settings,
    scheme: conn.scheme,
    serverPort: conn.serverPort,
    host: ex.rawHost,
    proxyDestinationPort: conn.proxyDestinationPort,
  });
  ex.bestHost = view.host;
  return {
    target,
    scheme: view.routeScheme,
    port: view.port,
    bestHost: view.host,
    headersTrusted: resolved.headersTrusted,
  };
}

/** Stage 2: the route, from the Host header's checks and the parsed target. */
function route(ex: Exchange, req: GatewayRequest, client: ReturnType<typeof resolveClient>): RouteDecision {
  return (
    hostHeaderRefusal(req.headers.host, req.httpVersion, client.target.authority !== null) ??
    routeTarget(ex.snap.routes, {
      host: ex.rawHost,
      target: client.target,
      scheme: client.scheme,
      port: client.port,
      redirectHost: client.bestHost,
    })
  );
}

/** Deletes the request's headers whose names hold `_` (nginx ignores them: underscores_in_headers off). */
function dropUnderscoreHeaders(req: GatewayRequest): void {
  const headers = req.headers as Record<string, unknown>;
  for (const name in headers) if (name.includes('_')) delete headers[name];
}

/**
 * nginx's find-config phase: the location is found, its limit checked, then its auto_redirect. The
 * location's `set`s never run for these answers (no upstream, ingress or service in the log line or the
 * metrics); its access_log, header filters, error_page and log_by_lua (the metrics) do. True: answered.
 */
function answeredAtFindConfig(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  decision: RouteDecision & { route: MatchedRoute },
  respond: Respond,
): boolean {
  const matched = decision.route;
  if (matched.location.accessLog === false) ex.accessLog = false;
  ex.metricsHost = metricsHostOf(matched, ex.host);
  if (bodyTooLarge(ctx, ex, req, matched.location)) {
    respond(413, null, matched.location);
    return true;
  }
  if (decision.kind === 'redirect' && decision.phase === 'find-config') {
    answerRedirect(ex, matched, decision.status, decision.location, respond);
    return true;
  }
  return false;
}

/**
 * ingress-nginx labels a request by $host and counts it when an Ingress names that host: the server
 * name, or an exact server-alias named by the request; a wildcard instance or a regex alias goes under
 * the server's own name (bounded: one series per configured name).
 */
function metricsHostOf(matched: MatchedRoute, host: string): string {
  return matched.vhost.aliases?.includes(host) === true ? host : matched.serverName;
}

/** A location's redirect (permanent-/temporal-redirect, app-root, ssl-redirect), made absolute as nginx does. */
function answerRedirect(
  ex: Exchange,
  matched: MatchedRoute,
  status: number,
  location: string,
  respond: Respond,
): void {
  const { redirect, relativeRedirects } = matched.location;
  respond(status, { location: absoluteFor(ex, matched, location, redirect?.relative ?? relativeRedirects) });
}

/** A 400 for a target or host the gateway refuses, with the reason in the error log. */
function refuseBadRequest(
  ctx: HandlerContext,
  ex: Exchange,
  decision: RouteDecision & { kind: 'bad-request' },
  respond: Respond,
): void {
  ex.host = hostVariable('', '_');
  logInvalidRequest(ctx, ex, decision, { server: '_', host: '' });
  respond(400, null);
}

/**
 * block-user-agents / block-referers: the server's `return 403` (no error log line, as nginx), or 503
 * while a block list is unusable (that one is logged: the ConfigMap needs fixing).
 */
function refuseByServerFilter(
  ctx: HandlerContext,
  ex: Exchange,
  decision: Exclude<RouteDecision, { kind: 'bad-request' }>,
  status: 403 | 503,
  respond: Respond,
): void {
  const serverName = 'route' in decision ? decision.route.serverName : decision.serverName;
  // The answer of a host's server carries its headers (HSTS over TLS included).
  if ('route' in decision) {
    const { route } = decision;
    ex.responseHeaders = ex.conn.scheme === 'https' ? route.httpsResponseHeaders : route.responseHeaders;
  }
  ex.serverName = serverName;
  ex.host = hostVariable(ex.rawHost, serverName);
  if (status === 503) {
    ctx.errorLog.write(
      'error',
      ex.conn.id,
      `block-user-agents or block-referers of the ConfigMap is invalid: failing closed${requestContext({
        client: shownClient(ex.client),
        server: serverName,
        request: ex.requestLine,
        host: ex.host,
      })}`,
    );
  }
  respond(status, null);
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
    `access rules of this location are invalid (${verdict.detail}): failing closed${requestContext(context)}`,
  );
  respond(503, null);
}

/** The nginx variables auth-url, auth-signin, the cache key and mirror-target may use. */
export function requestVars(ex: Exchange, req: GatewayRequest, scheme: 'http' | 'https'): RequestVars {
  const credentials = parseBasicCredentials(req.headers.authorization);
  return {
    scheme: ex.conn.scheme,
    passAccessScheme: scheme,
    httpHost: ex.rawHost,
    host: ex.host,
    // Origin form: an absolute-form target must not tell an auth service another path than routing saw.
    requestUri: ex.requestUri,
    ...(ex.uri === null ? {} : { uri: ex.uri }),
    method: req.method ?? 'GET',
    remoteAddr: ex.client,
    remoteUser: credentials?.user ?? '',
    serverName: ex.serverName,
    headers: req.headers,
    cookies: requestCookies(req),
    bestHttpHost: ex.bestHost,
    peerAddress: ex.conn.peerAddress,
    proxyProtocolAddr: ex.conn.proxySource ?? '',
    serverPort: `${ex.conn.serverPort}`,
    reqId: ex.reqId,
    location: ex.route?.location ?? null,
  };
}

/** X-Forwarded-For for the auth service: $remote_addr, or $full_x_forwarded_for as for backends. */
function authForwardedFor(ex: Exchange, req: GatewayRequest): string {
  const settings = ex.snap.settings;
  if (!(settings.useForwardedHeaders && settings.computeFullForwardedFor)) return ex.client;
  const chain = req.headers['x-forwarded-for'];
  const text = Array.isArray(chain) ? chain.join(', ') : chain;
  const appended = (settings.useProxyProtocol ? ex.conn.proxySource : null) ?? ex.conn.peerAddress;
  return text === undefined || text === '' ? appended : `${text}, ${appended}`;
}

/** The limits and auth of the first guard location that has some (RouteDecision.guards). */
function guardAccess(guards: readonly MatchedRoute[]): LocationAccessModel | undefined {
  for (const guard of guards) if (guard.location.access !== undefined) return guard.location.access;
  return undefined;
}

/** Stage 4 for a location with limits or auth (access/stage.ts); see admit for the result. */
function accessStage(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  verdict: AccessDecision,
  admitted: Admitted,
  model: LocationAccessModel,
  respond: Respond,
  proceed: (admitted: Admitted) => void,
): Admitted | null | typeof PENDING {
  const location = admitted.location!;
  // A location its annotations deny has no error_page in ingress-nginx: its 503 is not the location's.
  const refuse: Respond = model.denied === null ? (s, h) => respond(s, h, location) : respond;
  const result = enforceAccess({
    ctx,
    ex,
    req,
    model,
    verdict,
    vars: requestVars(ex, req, admitted.scheme),
    forwardedFor: authForwardedFor(ex, req),
    trustedHop: admitted.headersTrusted && ex.snap.settings.useForwardedHeaders,
    clientCertHeaders: ex.access?.upstreamHeaders ?? null,
    timeouts: { connectMs: location.proxyConnectTimeoutMs, readMs: location.proxyReadTimeoutMs },
    refuseByVerdict: (v) => refuseAccess(ctx, ex, req, v, refuse),
    respond: refuse,
    resume: () => proceed(admitted),
  });
  return result === true ? admitted : result === false ? null : PENDING;
}

/** enable-cors: the headers of this request's responses; true when it was a preflight, answered 204. */
function corsStage(cors: CompiledCors, ex: Exchange, req: GatewayRequest, respond: Respond): boolean {
  const answer = corsAnswer(cors, req.method, req.headers.origin);
  if (answer === null) return false;
  ex.responseHeaders =
    ex.responseHeaders === null ? answer.headers : { ...ex.responseHeaders, ...answer.headers };
  if (!answer.preflight) return false;
  respond(204, PREFLIGHT_HEADERS);
  return true;
}

/**
 * The location's upstream; with backend-protocol AUTO_HTTP, in HTTPS for a request that came over TLS;
 * for a host's default-backend root, the default backend (null: the gateway's own 404).
 */
function mainUpstream(ex: Exchange, location: LocationModel): BalancedUpstream | null {
  if (location.defaultBackendRoot === true) return ex.snap.defaultUpstream;
  if (location.autoHttp === true && ex.conn.scheme === 'https')
    return ex.snap.httpsUpstreamFor(location) ?? null;
  return ex.snap.upstreamFor(location) ?? null;
}

/**
 * canary: the alternative upstream when the request goes there ($proxy_alternative_upstream_name),
 * else the main one. A request with a sticky session on either stays there (affinity-canary-behavior
 * sticky, the default), as ingress-nginx's balancer checks affinity before the traffic shaping.
 */
function canaryOrMain(ex: Exchange, req: GatewayRequest, matched: MatchedRoute): BalancedUpstream | null {
  const main = mainUpstream(ex, matched.location);
  const alternative = ex.snap.canaryUpstreamFor(matched.location);
  if (matched.canary === null || alternative === undefined) return main;
  const affinity = matched.location.affinity;
  const sticky = affinity !== undefined && matched.canary.model.legacyAffinity !== true;
  let toCanary: boolean;
  if (affinity !== undefined && main !== null && affinitizedTo(affinity, main, req.headers.cookie))
    toCanary = false;
  else if (sticky && affinitizedTo(affinity, alternative, req.headers.cookie)) toCanary = true;
  else {
    // The Cookie lines are read apart only for a canary-by-cookie (a scan of the raw header list).
    const cookies = matched.canary.cookie === null ? undefined : requestCookies(req);
    toCanary = routeToCanary(matched.canary, req.headers, Math.random, cookies) !== null;
  }
  if (!toCanary) return main;
  ex.alternativeUpstreamName = alternative.name;
  return alternative;
}

/**
 * upstream-hash-by (the request value picks the endpoint), else load-balance ewma (the faster of two
 * at random, its response times recorded when the request ends). After affinity, as in ingress-nginx.
 */
function balance(ex: Exchange, req: GatewayRequest, admitted: Admitted): void {
  const upstream = admitted.upstream;
  const location = admitted.location!;
  if (upstream === null || upstream.members.length === 0) return;
  if (location.upstreamHashBy !== undefined) {
    const key = expandVariables(location.upstreamHashBy.by, requestVars(ex, req, admitted.scheme));
    admitted.firstMember = hashChoice(upstream, location.upstreamHashBy, key);
    return;
  }
  admitted.firstMember = ewmaChoice(upstream, performance.now());
  ex.ewmaUpstream = upstream;
}

/**
 * affinity: the member the session cookie names, or a new one (its Set-Cookie on the locations whose
 * Ingress asked for affinity). A legacy canary is not sticky.
 */
function stickySession(
  ex: Exchange,
  req: GatewayRequest,
  admitted: Admitted,
  canary: MatchedRoute['canary'],
): void {
  const location = admitted.location!;
  const affinity = location.affinity!;
  const upstream = admitted.upstream;
  if (upstream === null) return;
  if (ex.alternativeUpstreamName !== null && canary?.model.legacyAffinity === true) return;
  const choice = stickyChoice(affinity, upstream, req.headers.cookie);
  if (choice === null) return;
  admitted.firstMember = choice.index;
  if (location.setsAffinityCookie !== true) return;
  const cookieFor = (key: string) =>
    affinityCookie(affinity, {
      upstream,
      key,
      locationPath: location.path,
      https: ex.conn.scheme === 'https',
      userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : undefined,
      nowMs: Date.now(),
    });
  if (choice.newKey !== null) ex.setCookie = cookieFor(choice.newKey);
  if (affinity.changeOnFailure)
    admitted.onAttempt = (index) => {
      if (index !== choice.index) ex.setCookie = cookieFor(memberKey(upstream, index));
    };
}

/** Keeps the ssl-client-* headers for the upstream request ('' removes a header the client sent). */
function keepClientCertHeaders(ex: Exchange, headers: Record<string, string>): void {
  const edits: Record<string, string> = {
    'ssl-client-cert': '',
    'ssl-client-verify': '',
    'ssl-client-subject-dn': '',
    'ssl-client-issuer-dn': '',
    ...headers,
  };
  ex.access = { release: null, upstreamHeaders: edits, cookies: null, alwaysSetCookie: false };
}

/**
 * nginx's find-config check: a declared Content-Length over the limit of the location found
 * (proxy-body-size, else the ConfigMap's) is 413 before any directive of the location runs. A body
 * without a declared length is measured while it is read (proxy.ts).
 */
function bodyTooLarge(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  location: LocationModel | null,
): boolean {
  const limit = location?.proxyBodySizeBytes ?? ex.snap.settings.proxyBodySizeBytes;
  const declared = req.headers['content-length'];
  if (limit <= 0 || declared === undefined || Number(declared) <= limit) return false;
  ctx.errorLog.write(
    'error',
    ex.conn.id,
    `client intended to send too large body: ${declared} bytes` +
      requestContext({
        client: shownClient(ex.client),
        server: ex.serverName,
        request: ex.requestLine,
        host: ex.rawHost,
      }),
  );
  return true;
}

/** No location matched: the default backend, else 404 (a body over the default limit: 413 first). */
function noLocation(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  decision: RouteDecision & { kind: 'not-found' },
  client: ReturnType<typeof resolveClient>,
  respond: Respond,
): Admitted | null {
  const { snap } = ex;
  ex.serverName = decision.serverName;
  ex.host = hostVariable(ex.rawHost, decision.serverName);
  // The host's root or the catch-all's `/`: a location, counted.
  ex.metricsHost = decision.serverName;
  const ownAnswer = snap.defaultUpstream === null || decision.backend === null;
  // ingress-nginx's own default backend (the `_` server's `/`: its 404, or --default-backend-service's
  // upstream-default-backend; not a catch-all Ingress's) logs only when asked to.
  const builtIn = ownAnswer || snap.defaultUpstream.name === DEFAULT_UPSTREAM_NAME;
  if (
    builtIn &&
    decision.serverName === DEFAULT_SERVER_NAME &&
    snap.settings.enableAccessLogForDefaultBackend !== true
  )
    ex.accessLog = false;
  if (bodyTooLarge(ctx, ex, req, null)) {
    respond(413, null);
    return null;
  }
  if (ownAnswer) {
    respond(404, null);
    return null;
  }
  ex.upstreamName = snap.defaultUpstream.name;
  return {
    location: null,
    upstream: snap.defaultUpstream,
    upstreamPath: client.target.raw,
    scheme: client.scheme,
    headersTrusted: client.headersTrusted,
  };
}

/**
 * Runs the stages for one request. Returns where it goes, null when the gateway already answered
 * (400, 404, a redirect, 403, 503, a limit, a refused auth), or PENDING when the access stage waits for
 * a password check or an auth subrequest: it then calls `proceed` or `respond` itself. Locations
 * without limits or auth never wait and allocate nothing for it.
 */
export function admit(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  respond: Respond,
  proceed: (admitted: Admitted) => void,
): Admitted | null | typeof PENDING {
  // nginx's ignore_invalid_headers: headers named with `_` are dropped before anything reads them.
  if (!ex.snap.routes.filters.server.underscoresInHeaders) dropUnderscoreHeaders(req);
  const client = resolveClient(ex, req);
  // add-headers (http level in nginx): every response, the gateway's own included; over TLS with hsts.
  ex.responseHeaders = serverResponseHeaders(ex);
  const decision = route(ex, req, client);
  if (decision.kind === 'bad-request') {
    refuseBadRequest(ctx, ex, decision, respond);
    return null;
  }
  const { snap } = ex;
  const { filters } = snap.routes;
  // skip-access-log-urls, block-user-agents, block-referers: nginx's http and server level.
  if (filters.skipsLog(ex.requestUri)) ex.accessLog = false;
  const refusal = filters.refusal(req.headers['user-agent'], req.headers.referer);
  if (refusal !== 0) {
    refuseByServerFilter(ctx, ex, decision, refusal, respond);
    return null;
  }
  if (decision.kind === 'host-redirect') {
    // from-to-www-redirect: a server of its own that only redirects (no location, no access rules).
    ex.serverName = decision.serverName;
    ex.host = hostVariable(ex.rawHost, decision.serverName);
    respond(decision.status, { location: decision.location });
    return null;
  }
  if (decision.kind === 'not-found') return noLocation(ctx, ex, req, decision, client, respond);
  const matched = decision.route;
  ex.serverName = matched.serverName;
  ex.host = hostVariable(ex.rawHost, matched.serverName);
  ex.responseHeaders = ex.conn.scheme === 'https' ? matched.httpsResponseHeaders : matched.responseHeaders;
  // nginx verifies client certificates before any location runs (and before redirects).
  if (matched.vhost.clientCertificate) {
    const headers = clientCertificateStage(ctx, ex, req, matched.vhost, respond);
    if (headers === false) return null;
    if (headers !== null) keepClientCertHeaders(ex, headers);
  }
  // app-root is the server's own `if ($uri = /) { return 302 … }`: answered before a location is found.
  if (decision.kind === 'redirect' && decision.phase === 'server') {
    answerRedirect(ex, matched, decision.status, decision.location, respond);
    return null;
  }
  if (answeredAtFindConfig(ctx, ex, req, decision, respond)) return null;
  ex.route = matched;
  ex.upstreamName = matched.upstreamName;
  // rewrite-target's `rewrite … break` changes $uri for the rest of the request (logs, auth-url).
  if (decision.kind === 'proxy' && decision.upstreamPath !== client.target.raw) {
    const q = decision.upstreamPath.indexOf('?');
    ex.uri = q < 0 ? decision.upstreamPath : decision.upstreamPath.slice(0, q);
  }
  // enable-cors runs in nginx's rewrite phase: before the location's redirects and access rules.
  if (matched.cors !== null && corsStage(matched.cors, ex, req, respond)) return null;
  if (decision.kind === 'redirect') {
    answerRedirect(ex, matched, decision.status, decision.location, respond);
    return null;
  }
  const { verdict, decidedBy } = decideAccess(matched, decision.guards, ex.client);
  // For a decision observer (the dashboard): two stores, no allocation.
  ex.verdict = verdict;
  ex.decidedBy = decidedBy;
  const admitted: Admitted = {
    location: matched.location,
    upstream: matched.canary === null ? mainUpstream(ex, matched.location) : canaryOrMain(ex, req, matched),
    upstreamPath: decision.upstreamPath,
    scheme: client.scheme,
    headersTrusted: client.headersTrusted,
    forwardedPrefix: decision.forwardedPrefix,
    refusal: decision.refusal,
  };
  if (matched.location.affinity !== undefined) stickySession(ex, req, admitted, matched.canary);
  else if (matched.location.upstreamHashBy !== undefined || matched.location.loadBalance !== undefined)
    balance(ex, req, admitted);
  // Limits and auth of the location, or of another location a lenient backend could read this path as.
  const access = matched.location.access ?? guardAccess(decision.guards);
  if (access === undefined) {
    if (verdict.outcome === 'allow') return admitted;
    refuseAccess(ctx, ex, req, verdict, (s, h) => respond(s, h, matched.location));
    return null;
  }
  return accessStage(ctx, ex, req, verdict, admitted, access, respond, proceed);
}
