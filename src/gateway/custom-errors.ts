// default-backend and custom-http-errors, as ingress-nginx's template wires them:
// - a location whose backend has no endpoint is served by its default-backend Service instead (the
//   request as it is, plus X-Code 503, X-Format, X-Namespace, X-Ingress-Name, X-Service-Name,
//   X-Service-Port, X-Request-ID);
// - an answer whose status custom-http-errors lists (the backend's, unless
//   disable-proxy-intercept-errors; the gateway's own 502/503/504; the location's access-phase
//   refusals, which nginx's error_page in the location catches too: handler.ts answerOwn) is
//   replaced by the error backend's answer to `GET /` (the method kept) with X-Code <status>,
//   X-Format, X-Original-URI and the same names; the client gets the error backend's status, as
//   nginx's `error_page <code> = @…`.
// The error backend is the location's default-backend, else the catch-all default backend; without
// either the original answer stands (ingress-nginx would send its own 404).
import type { CompressedResponse } from './compression.ts';
import type { LocationModel } from '../config/model.ts';
import { answer, closesConnection } from './answers.ts';
import type { Exchange, GatewayRequest, GatewayResponse, HandlerContext } from './exchange.ts';
import { headerText } from './header-value.ts';
import { type ProxyOutcome, proxyRequest } from './proxy.ts';
import { serverResponseHeaders } from './response-headers.ts';
import { completeWhenSent, logUpstreamFailure } from './request-log.ts';
import type { BalancedUpstream } from './upstream.ts';

/**
 * The error backend of a location: its default-backend for the Ingress's own codes while it has
 * endpoints, else the catch-all one (as ingress-nginx's DefaultBackendUpstreamName); null without endpoints.
 */
export function errorUpstreamOf(ex: Exchange, location: LocationModel | null): BalancedUpstream | null {
  const own = location?.errorsToDefaultBackend === true ? ex.snap.errorUpstreamFor(location) : undefined;
  const upstream = own !== undefined && own.members.length > 0 ? own : ex.snap.defaultUpstream;
  return upstream !== null && upstream.members.length > 0 ? upstream : null;
}

/** The statuses the proxy hands back instead of streaming (proxy_intercept_errors); undefined: none. */
export function interceptedStatuses(
  ex: Exchange,
  location: LocationModel | null,
): readonly number[] | undefined {
  if (location?.customHttpErrors === undefined || location.disableProxyInterceptErrors === true)
    return undefined;
  return errorUpstreamOf(ex, location) === null ? undefined : location.customHttpErrors;
}

/** Whether the gateway's own answer `status` (502, 503, 504…) goes to the error backend. */
export function replacesOwnAnswer(ex: Exchange, location: LocationModel | null, status: number): boolean {
  return location?.customHttpErrors?.includes(status) === true && errorUpstreamOf(ex, location) !== null;
}

/**
 * Whether a refusal of the location's access phase goes to the error backend. Invalid source lists
 * (failing closed) keep their 503: ingress-nginx denies such a location, and writes the location's
 * error_page only where the location is allowed (`return 503` elsewhere). A location denied by its
 * other annotations never asks (admission.ts accessStage).
 */
export function replacesRefusal(ex: Exchange, location: LocationModel, status: number): boolean {
  if (ex.verdict?.outcome === 'fail-closed') return false;
  return replacesOwnAnswer(ex, location, status);
}

/** The headers ingress-nginx sets towards an error backend (its CUSTOM_ERRORS locations); '' for one not sent. */
export function errorBackendHeaders(
  ex: Exchange,
  req: GatewayRequest,
  code: number,
  intercepted: boolean,
): Record<string, string> {
  const location = ex.route?.location ?? null;
  const backend = location?.backend ?? null;
  const headers: Record<string, string> = {
    'x-code': String(code),
    'x-format': headerText(req.headers.accept) ?? '',
    'x-namespace': location?.ingress.namespace ?? '',
    'x-ingress-name': location?.ingress.name ?? '',
    'x-service-name': backend?.service.name ?? '',
    'x-service-port': backend === null ? '' : String(backend.port),
    'x-request-id': ex.reqId,
  };
  if (intercepted) {
    headers['x-original-uri'] = ex.requestUri;
    headers['x-forwarded-for'] = ex.client;
  }
  return headers;
}

/**
 * nginx's proxy_set_header over the client's fields: each named field replaces the client's, and one
 * whose value is empty ($http_accept absent, no Ingress…) is not sent at all, not even the client's.
 */
export function setProxyHeaders(
  headers: Record<string, string | string[]>,
  fields: Record<string, string>,
): void {
  for (const name in fields) {
    const value = fields[name]!;
    if (value === '') delete headers[name];
    else headers[name] = value;
  }
}

/**
 * `/` and the request's arguments, as ingress-nginx's `rewrite (.*) / break;` in the error location
 * leaves them (a replacement without `?` keeps the arguments; an empty query adds none).
 */
function errorBackendPath(requestUri: string): string {
  const query = requestUri.indexOf('?');
  return query < 0 || query === requestUri.length - 1 ? '/' : `/${requestUri.slice(query)}`;
}

/**
 * The error backend's answer to the request instead of `code` (nothing was sent to the client yet):
 * `/` with the request's arguments and method kept and no body, the headers `base` plus the X-Code set.
 * `location`: whose default-backend serves (the matched one unless told). False without an error backend.
 */
export function serveFromErrorBackend(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  res: GatewayResponse,
  base: Record<string, string | string[]>,
  code: number,
  location: LocationModel | null = ex.route?.location ?? null,
  compressed: CompressedResponse | null = null,
): boolean {
  const upstream = errorUpstreamOf(ex, location);
  if (upstream === null) return false;
  const settings = ex.snap.settings;
  const earlier = ex.attempts;
  ex.upstreamName = upstream.name;
  // ingress-nginx's error location is the server's (@custom_…): add-headers and hsts reach its answer,
  // the location's custom-headers and CORS headers do not.
  ex.responseHeaders = serverResponseHeaders(ex);
  const headers = { ...base };
  setProxyHeaders(headers, errorBackendHeaders(ex, req, code, true));
  delete headers['content-length'];
  delete headers['transfer-encoding'];
  const request = {
    upstream,
    method: req.method ?? 'GET',
    path: errorBackendPath(ex.requestUri),
    headers,
    readTimeoutMs: location?.proxyReadTimeoutMs ?? settings.proxyReadTimeoutMs,
    sendTimeoutMs: location?.proxySendTimeoutMs ?? settings.proxySendTimeoutMs,
    bodyLimitBytes: 0,
    hiddenResponseHeaders: ex.snap.routes.filters.hiddenResponseHeaders,
    hasBody: false,
  };
  if (!req.complete) req.resume();
  // An intercepted 400, 500 or 501 (a backend's or the gateway's own) ends the connection, as nginx's.
  if (closesConnection(code)) res.shouldKeepAlive = false;
  proxyRequest(req, res, request, (outcome: ProxyOutcome) => {
    ex.attempts = [...earlier, ...outcome.attempts];
    ex.upstreamBytes = outcome.upstreamBytes;
    ex.upstreamHead = outcome.upstreamHead ?? null;
    for (const f of outcome.failures) if (f.code !== 'CLIENT_CLOSED') logUpstreamFailure(ctx, ex, f);
    if (outcome.answeredByGateway) answer(ctx, ex, req, res, outcome.status, null);
    else completeWhenSent(ctx, ex, req, compressed, outcome.status, outcome.bodyBytesSent);
  });
  return true;
}
