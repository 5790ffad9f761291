// ingress-nginx's http- and server-level behaviours that keepip follows, from the controller ConfigMap
// (read by src/k8s/server-settings.ts, applied by src/gateway/server-filters.ts and the router):
// HSTS on HTTPS answers of hosts with their own certificate, the HTTPS-redirect defaults, requests
// refused by User-Agent or Referer, and request URIs left out of the access log.

export interface ServerSettings {
  /** The Strict-Transport-Security value (hsts, hsts-max-age, -include-subdomains, -preload); null: off. */
  hsts: string | null;
  /** force-ssl-redirect: the default of the annotation. */
  forceSslRedirect: boolean;
  /** no-tls-redirect-locations: Ingress paths starting with one of these are never sent to HTTPS. */
  noTlsRedirectLocations: readonly string[];
  /** block-user-agents / block-referers: nginx `map` entries (`~` regex, `~*` without case, else the whole value without case). */
  blockUserAgents: readonly string[];
  blockReferers: readonly string[];
  /** Set when a block list holds an entry nginx would refuse: keepip then answers every request 503. */
  blockListError: string | null;
  /** skip-access-log-urls: request URIs (as sent, arguments included) that are not logged; `map` entries too. */
  skipAccessLogUrls: readonly string[];
  /**
   * Whether request headers with `_` in their name reach the backend (enable-underscores-in-headers, or
   * ignore-invalid-headers off). nginx ignores them by default: a backend that reads `X_Forwarded_For`
   * as X-Forwarded-For (CGI and WSGI servers fold `-` and `_`) would otherwise take a client's forgery.
   */
  underscoresInHeaders: boolean;
  /** generate-request-id: make up $req_id when the client sent no X-Request-ID (else none is sent). */
  generateRequestId: boolean;
  /** proxy-add-original-uri-header: send X-Original-URI ($request_uri) to backends. */
  proxyAddOriginalUriHeader: boolean;
  /** hide-headers: more backend response headers not passed to clients (lower-case names). */
  hideHeaders: readonly string[];
  /** allow-backend-server-header: the backend's Server header is passed (shown only with server-tokens). */
  allowBackendServerHeader: boolean;
  /** server-tokens: answers carry a Server header (else none at all: ingress-nginx's more_clear_headers Server). */
  serverTokens: boolean;
}

/** ingress-nginx 1.15's defaults: HSTS on (a year, includeSubDomains), ACME challenges never redirected. */
export const DEFAULT_SERVER_SETTINGS: ServerSettings = Object.freeze({
  hsts: 'max-age=31536000; includeSubDomains',
  forceSslRedirect: false,
  noTlsRedirectLocations: Object.freeze(['/.well-known/acme-challenge']),
  blockUserAgents: Object.freeze([]),
  blockReferers: Object.freeze([]),
  blockListError: null,
  skipAccessLogUrls: Object.freeze([]),
  underscoresInHeaders: false,
  generateRequestId: true,
  proxyAddOriginalUriHeader: false,
  hideHeaders: Object.freeze([]),
  allowBackendServerHeader: false,
  serverTokens: false,
});
