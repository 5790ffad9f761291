// Every annotation and controller ConfigMap key ingress-nginx has (1.12-1.15: its annotations and
// ConfigMap documentation, and the names its annotation parsers read), each classified as
//   implemented  read and honoured by keepip (docs/ingress-nginx-compat.md says how);
//   no-effect    accepted; it tunes an nginx internal that changes nothing a client or backend
//                observes in keepip (an info ANNOTATION_NO_EFFECT / CONFIGMAP_KEY_NO_EFFECT says why);
//   refused      not honoured: a warning ANNOTATION_REFUSED / CONFIGMAP_KEY_REFUSED names the reason
//                and, where one exists, the keepip way to the same result.
// A name in neither table is not ingress-nginx's (UNSUPPORTED_ANNOTATION / UNSUPPORTED_CONFIGMAP_KEY,
// with the nearest known name). This is the one source: docs/ingress-nginx-compat.md renders it
// (test/k8s/annotation-catalog.test.ts fails when the page drifts), and annotations.ts checks that
// the implemented names are exactly the ones it reads.

export type CatalogStatus = 'implemented' | 'no-effect' | 'refused';

export interface CatalogEntry {
  /** Names without the `nginx.ingress.kubernetes.io/` prefix (annotations) or ConfigMap keys. */
  readonly names: readonly string[];
  readonly status: CatalogStatus;
  /** Accepted values (annotations) or the default (ConfigMap keys), for implemented entries. */
  readonly values?: string;
  /** implemented: what keepip does; no-effect: why nothing observable changes; refused: why. */
  readonly note: string;
  /** refused: how to get the same result with keepip, where there is a way. */
  readonly instead?: string;
}

const NOT_YET = 'not implemented by keepip; the Ingress is served without it';

// Annotations ingress-nginx reads but does not list in its annotations table: documented in the text
// only (†) or read by its parsers without documentation (‡). The rest are the 117 of its table.
export const ANNOTATIONS_IN_TEXT_ONLY: readonly string[] = [
  'auth-always-set-cookie',
  'auth-method',
  'auth-request-redirect',
  'auth-response-headers',
  'auth-signin',
  'auth-signin-redirect-param',
  'limit-burst-multiplier',
  'limit-rate',
  'limit-rate-after',
  'limit-rpm',
  'limit-whitelist',
  'upstream-hash-by-subset',
  'upstream-hash-by-subset-size',
];
export const ANNOTATIONS_IN_CODE_ONLY: readonly string[] = [
  'allowlist-source-range',
  'disable-proxy-intercept-errors',
  'fastcgi-index',
  'fastcgi-params-configmap',
  'limit-allowlist',
  'opentelemetry-operation-name',
  'relative-redirects',
  'use-port-in-redirects',
];

const SNIPPET_REASON =
  'keepip never runs nginx configuration text (snippets run inside the proxy with its privileges: CVE-2021-25742, CVE-2025-1974)';

/** ingress-nginx's annotations (prefix `nginx.ingress.kubernetes.io/`), in the order the docs show them. */
export const ANNOTATION_CATALOG: readonly CatalogEntry[] = [
  // --- Implemented: access by address, routing, redirects, backends, sizes and timeouts.
  {
    names: ['allowlist-source-range'],
    status: 'implemented',
    values: 'comma-separated CIDRs or IPs',
    note: 'allow only these clients. Wins over `whitelist-source-range`',
  },
  {
    names: ['whitelist-source-range'],
    status: 'implemented',
    values: 'same',
    note: 'legacy alias, read only when `allowlist-source-range` is absent or empty (white space alone is an invalid list: the location is denied)',
  },
  {
    names: ['denylist-source-range'],
    status: 'implemented',
    values: 'same',
    note: 'deny these clients; checked before the allowlist (deny beats allow)',
  },
  {
    names: ['rewrite-target'],
    status: 'implemented',
    values: 'must match `^/?[-._~a-zA-Z0-9/:$]*$`',
    note: "`$1`, `$2`… from the path regex. Anything else is ignored with a warning (CVE-2026-3288 came from not validating it). A target equal to the path is no rewrite at all (ingress-nginx's `needsRewrite`): the seed's `rewrite-target: /` on path `/` neither rewrites nor makes the host regex",
  },
  {
    names: ['use-regex'],
    status: 'implemented',
    values: 'Go boolean',
    note: 'every path of the host becomes a regex (see Routing)',
  },
  {
    names: ['ssl-redirect'],
    status: 'implemented',
    values: 'Go boolean',
    note: "default: ConfigMap `ssl-redirect` (true), effective only on TLS hosts (the rule hosts of Ingresses with a `spec.tls` section: see Routing, TLS). The Location is `https://<host without port><request_uri>`, the host a trusted X-Forwarded-Host's (its first entry) with use-forwarded-headers, as ingress-nginx's $best_http_host",
  },
  {
    names: ['force-ssl-redirect'],
    status: 'implemented',
    values: 'Go boolean',
    note: 'redirect even without TLS on the host. Default false',
  },
  {
    names: ['app-root'],
    status: 'implemented',
    values: 'absolute path of `[-._~a-zA-Z0-9/:]`',
    note: "`/` answers 302 to `$scheme://$http_host` and it. A `$` (an nginx variable in ingress-nginx's `return`) is refused with a warning. A Host whose port is not digits (`x.example:@evil.com`) is refused (400) before it, where nginx echoes it into the Location (a browser would go to evil.com)",
  },
  {
    names: ['service-upstream'],
    status: 'implemented',
    values: 'Go boolean',
    note: "send to the Service's ClusterIP:port instead of the endpoints",
  },
  {
    names: ['backend-protocol'],
    status: 'implemented',
    values: '`HTTP` (default), `HTTPS`, `AUTO_HTTP`, `GRPC`, `GRPCS`',
    note: "`GRPC`/`GRPCS`: HTTP/2 to the backend (cleartext / TLS, not verified), multiplexed keep-alive sessions, trailers relayed, `grpc-timeout` enforced, the gateway's own answers as gRPC statuses (403: PERMISSION_DENIED, 502/503: UNAVAILABLE). `AUTO_HTTP`: the client's scheme towards the backend (HTTPS for a request that came over TLS, as ingress-nginx's `$scheme://`). `FCGI` is refused: error `UNSUPPORTED_BACKEND_PROTOCOL`, and that Ingress's locations get no backend (503) rather than speaking the wrong protocol. Other values: warning, HTTP",
  },
  {
    names: ['proxy-body-size'],
    status: 'implemented',
    values: '`^\\d+[kmg]?$`, case-insensitive',
    note: "request body limit (413); `0` means no limit. Default: the ConfigMap's, 1m. As in ingress-nginx, a value its validator takes but its template does not write (`8b`, `0b`, `1 m`) is nginx's own 1m, and one the validator refuses (a tab or line break around it) keeps the ConfigMap's; both with a warning",
  },
  {
    names: ['proxy-connect-timeout', 'proxy-read-timeout', 'proxy-send-timeout'],
    status: 'implemented',
    values: 'whole seconds',
    note: 'defaults: the ConfigMap\'s, 5s / 60s / 60s. `"30s"` is not accepted (ingress-nginx reads an integer). `0` is no wait, as in nginx (its timer of 0 expires at once: 504), never no deadline; here it is 1 ms, the shortest timer Node has',
  },
  // --- Implemented: redirects and names (route-annotations.ts).
  {
    names: ['permanent-redirect', 'permanent-redirect-code'],
    status: 'implemented',
    values: 'a URL or path of `[-._~a-zA-Z0-9/:,?&=]`; a code 300-308 (default 301)',
    note: "every request to the Ingress's locations is answered `<code>` with `Location: <url>`, before ssl-redirect and any access check (nginx's `return` in the rewrite phase); a path (`/new`) is made absolute as nginx's absolute_redirect does (`$scheme://<Host without port>/new`) unless relative-redirects. A code out of range is 301; a code that is not a number drops the redirect (ingress-nginx's parse error), with a warning",
  },
  {
    names: ['relative-redirects'],
    status: 'implemented',
    values: 'Go boolean (default: the ConfigMap key, false)',
    note: "nginx's `absolute_redirect off`: a permanent-redirect to a path is sent as that path instead of an absolute URL",
  },
  {
    names: ['temporal-redirect', 'temporal-redirect-code'],
    status: 'implemented',
    values: 'same; a code 300-307 (default 302)',
    note: 'as `permanent-redirect`, and wins over it when both are set',
  },
  {
    names: ['from-to-www-redirect'],
    status: 'implemented',
    values: 'Go boolean',
    note: "the other name of the host (`www.` added or removed) answers `http-redirect-code` (308) to `<scheme>://<host>:<port><request_uri>` (one trailing `/` dropped; scheme and port the client used, or X-Forwarded-Proto/-Port from a trusted hop with use-forwarded-headers), unless an Ingress serves that name. HTTPS needs a certificate for it (the Secret's hosts)",
  },
  {
    names: ['server-alias'],
    status: 'implemented',
    values: 'comma-separated names: exact, `*.suffix`, or `~regex`',
    note: "more names of the host's server: the same locations, `$server_name` the host's. Per host, the first Ingress (merge order) that sets some wins; a name another Ingress serves as its host is dropped. Exact aliases are matched with exact hosts, `*.` ones with wildcard hosts, regexes (case-insensitive) after both. ssl-redirect applies to an alias only when the host's certificate names it (a `~regex` alias never), as ingress-nginx; force-ssl-redirect always",
  },
  {
    names: ['enable-cors'],
    status: 'implemented',
    values: 'Go boolean',
    note: "CORS on every location of the Ingress, as ingress-nginx's template: a request whose Origin is allowed gets Access-Control-Allow-Origin (the Origin, or `*`), -Allow-Credentials, -Allow-Methods, -Allow-Headers, -Expose-Headers and -Max-Age on its response, the gateway's own answers included, replacing the backend's; such a preflight (OPTIONS) is answered 204 by the gateway, before redirects and access rules (nginx's rewrite phase). Other requests, and preflights from other origins, go on unchanged",
  },
  {
    names: ['cors-allow-origin'],
    status: 'implemented',
    values: '`*` (default), or comma-separated `scheme://host[:port]` (one `*.` label wildcard) or `null`',
    note: "matched case-insensitively and whole (ingress-nginx anchors only the end: difference 15); entries it would skip are skipped, with a warning; empty: `*`. A value ingress-nginx's validator refuses as a whole (an upper-case scheme, a path) is `*` there, every origin; keepip keeps the valid entries and warns about the others (fails closed)",
  },
  {
    names: ['cors-allow-methods', 'cors-allow-headers', 'cors-expose-headers'],
    status: 'implemented',
    values: 'comma-separated methods (letters) / header names / header names or `*`',
    note: 'defaults `GET, PUT, POST, DELETE, PATCH, OPTIONS` / `DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization` / none; an empty value takes the default, with a warning. An unreadable cors-allow-methods or cors-allow-headers (`GET;POST`) allows no origin, with a warning: ingress-nginx takes its default, every method and Authorization among the headers, wider than the author wrote (fails closed). An unreadable cors-expose-headers exposes none',
  },
  {
    names: ['cors-allow-credentials', 'cors-max-age'],
    status: 'implemented',
    values: 'Go boolean (default true); seconds (default 1728000)',
    note: 'Access-Control-Allow-Credentials `true` (absent when false) and Access-Control-Max-Age. A cors-allow-credentials that is not a Go boolean is false, with a warning (ingress-nginx takes true: fails closed); an invalid max-age keeps the default',
  },
  {
    names: ['upstream-vhost'],
    status: 'implemented',
    values: 'a host name, optional `:port` (no variables)',
    note: "the Host header the backend gets instead of the client's (X-Forwarded-Host stays the client's). nginx would expand variables in it; a value with `$` is refused with a warning",
  },
  {
    names: ['x-forwarded-prefix'],
    status: 'implemented',
    values: "a path of `[-._~a-zA-Z0-9/:$]`, `$1`… the rewrite's captures",
    note: "X-Forwarded-Prefix to the backend, on locations that rewrite (a `rewrite-target` that differs from the path), as ingress-nginx sets it only beside its rewrite; empty: none. A client's own X-Forwarded-Prefix passes only from a trusted hop with use-forwarded-headers",
  },
  {
    names: ['custom-headers'],
    status: 'implemented',
    values: 'ConfigMap `name` or `namespace/name` (same namespace)',
    note: "its keys and values are response headers of the Ingress's locations, on every response (the gateway's own included, not an error page from the error backend: nginx's error location is the server's), replacing the backend's; values are sent as written. Content-Length and hop-by-hop fields (Connection, Transfer-Encoding…) are left out, with a warning (nginx sends them and breaks the answer's framing). Only names the ConfigMap key `global-allowed-response-headers` lists are allowed: another name, a missing ConfigMap or an invalid name or value denies the locations (503, `ACCESS_CONFIG_DENIED`), as ingress-nginx does",
  },
  {
    names: ['enable-access-log'],
    status: 'implemented',
    values: 'Go boolean, default true',
    note: "`false`: requests to the Ingress's locations get no access log line (metrics still count them)",
  },
  // --- Implemented: canaries (traffic-annotations.ts, gateway/canary.ts).
  {
    names: ['canary'],
    status: 'implemented',
    values: 'Go boolean',
    note: "`true`: the Ingress makes no locations of its own; each of its paths lends its backend to the main Ingress's location with the same host, path and pathType and another Service (else `CANARY_NOT_MERGED`, not served). As in ingress-nginx the canary belongs to the main upstream: every location proxying to that Service has it, and the first canary of an upstream wins. The access log's `$proxy_alternative_upstream_name` names the canary when it served the request. A canary's own access annotations (allowlist, auth, limits) are ignored, as in ingress-nginx: the main Ingress's apply, and `CANARY_ACCESS_IGNORED` says so",
  },
  {
    names: ['canary-by-header', 'canary-by-header-value', 'canary-by-header-pattern'],
    status: 'implemented',
    values: 'a header name; a value; a regex',
    note: 'decided first: with a value, that exact value goes to the canary; else with a pattern, a match does (a pattern that does not compile: the main backend; one that can backtrack without bound is never run and no header matches it); else `always` goes to the canary and `never` to the main backend. Anything else falls through to the cookie and the weight. Names and values are read with their surrounding spaces trimmed, as ingress-nginx reads them',
  },
  {
    names: ['canary-by-cookie'],
    status: 'implemented',
    values: 'a cookie name',
    note: "`always` / `never` in that cookie, after the header; each HTTP/1.1 Cookie line is read apart, as nginx's $cookie_. Without canary-by-cookie no cookie decides (ingress-nginx reads $cookie_ with an empty name there, so `Cookie: =always` picks its canary)",
  },
  {
    names: ['canary-weight', 'canary-weight-total'],
    status: 'implemented',
    values: 'whole numbers; total default 100 (only a larger total counts)',
    note: 'the rest of the requests go to the canary with probability weight / total. canary-* without `canary: "true"` is a warning and has no effect',
  },
  // --- Implemented: sticky sessions (traffic-annotations.ts, gateway/affinity.ts).
  {
    names: ['affinity', 'affinity-mode'],
    status: 'implemented',
    values: '`cookie`; `balanced` (default) or `persistent`',
    note: "sticky sessions on the Service, as ingress-nginx keeps them per upstream: a request whose cookie names an endpoint of it goes there first; one without (or naming an endpoint that is gone) gets a random endpoint and, on the locations of the Ingresses that asked for affinity, a Set-Cookie `<name>=<md5(upstream + address:port)>|<md5(md5(upstream) + upstream)>` (ingress-nginx's persistent form: its cookies keep working). Both modes keep a session on its endpoint while it exists (ingress-nginx's balanced mode may move some when endpoints are added: difference 17). Per Service, the last Ingress (merge order) with affinity gives the cookie's settings, the first the mode",
  },
  {
    names: ['affinity-canary-behavior'],
    status: 'implemented',
    values: '`sticky` (default), `legacy` (on the canary Ingress)',
    note: 'sticky: a session on the main backend or on the canary stays there whatever the canary rules say, and the canary sets its own cookie; legacy: the canary is not sticky',
  },
  {
    names: [
      'session-cookie-name',
      'session-cookie-path',
      'session-cookie-domain',
      'session-cookie-expires',
      'session-cookie-max-age',
    ],
    status: 'implemented',
    values: "name (default `INGRESSCOOKIE`); path (default: the location's path); domain; seconds; seconds",
    note: "the cookie's name, Path, Domain, Expires (now + seconds, nginx's date form) and Max-Age; invalid values are ignored with a warning. With use-regex and no session-cookie-path the Path is the regex as written: warned (`SESSION_COOKIE_PATH_IS_REGEX`), as ingress-nginx warns",
  },
  {
    names: ['session-cookie-secure', 'session-cookie-samesite', 'session-cookie-conditional-samesite-none'],
    status: 'implemented',
    values: 'Go boolean; `None`, `Lax` or `Strict`; Go boolean',
    note: 'Secure when `true` or when the request came over TLS; SameSite as written, left out for `None` on the clients ingress-nginx lists as mishandling it (Chrome 4x-6x, iOS 12, macOS 10.14 Safari) when conditional',
  },
  {
    names: ['session-cookie-change-on-failure'],
    status: 'implemented',
    values: 'Go boolean',
    note: "when the session's endpoint fails and another answers, the cookie names the one that answered. Without it keepip still tries the next endpoint on a connect failure (nginx retries the same one) but keeps the cookie",
  },
  {
    names: ['preserve-trailing-slash'],
    status: 'implemented',
    values: 'Go boolean (default: the ConfigMap key, false)',
    note: 'the ssl-redirect / force-ssl-redirect Location keeps a final `/` of the request URI',
  },
  {
    names: ['use-port-in-redirects'],
    status: 'implemented',
    values: 'Go boolean (default: the ConfigMap key, false)',
    note: "the ssl-redirect / force-ssl-redirect Location names ingress-nginx's HTTPS port, `https://<host>:443<uri>`",
  },
  {
    names: ['connection-proxy-header'],
    status: 'implemented',
    values: '`close` or `keep-alive`',
    note: 'the Connection header the backend gets (`close` also ends that upstream connection after the response; WebSocket upgrades still send `upgrade`). keepip sends `keep-alive` by default',
  },
  {
    names: ['upstream-hash-by', 'upstream-hash-by-subset', 'upstream-hash-by-subset-size'],
    status: 'implemented',
    values:
      'nginx variables and text (`$request_uri`, `$remote_addr`, `$http_x_user`…); Go boolean; whole number (default 3)',
    note: "the value picks the endpoint, the same one for the same value while it exists (rendezvous hashing: when an endpoint goes, only its values move; ingress-nginx's consistent hash moves a few more). With the subset, the value picks a group of subset-size endpoints (ingress-nginx's layout) and a random one of it answers. Default: the ConfigMap keys of the same names. Sticky sessions (affinity) come first",
  },
  {
    names: ['load-balance'],
    status: 'implemented',
    values: '`round_robin` (default), `ewma`',
    note: 'ewma: of two endpoints drawn at random, the one with the lower decaying average of its response times (10 s, as ingress-nginx). The other values ingress-nginx lists (chash, sticky_*) are what upstream-hash-by and affinity select: round robin, with a warning. Default: the ConfigMap key',
  },
  {
    names: ['proxy-next-upstream', 'proxy-next-upstream-tries', 'proxy-next-upstream-timeout'],
    status: 'implemented',
    values:
      "nginx's conditions (`error timeout` default, `invalid_header`, `http_500`… `http_429`, `non_idempotent`, `off`); whole number (default 3, 0: all); seconds (default 0: none)",
    note: 'when a request goes on to the next endpoint, each tried once; `$upstream_addr` / `$upstream_status` list every try. An answer whose head cannot be read (invalid, ambiguous or too big: `UPSTREAM_INVALID_HEADER`) is `invalid_header`, not `error`, as in nginx. A buffered body (`proxy-request-buffering: on`, the default) is sent again; with `off`, a request whose body has started to go out is not tried again; POST, LOCK and PATCH are tried again only when they never reached a backend, unless `non_idempotent`. WebSocket upgrades follow the same conditions, tries and timeout (as nginx: the upgrade is a proxied request); gRPC and ssl-passthrough try every endpoint once. Defaults: the ConfigMap keys',
  },
  {
    names: ['default-backend'],
    status: 'implemented',
    values: "a Service of the Ingress's namespace (its first port)",
    note: "serves the requests of a location whose backend has no endpoint (the request as it is, plus X-Code 503, X-Format, X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port, X-Request-ID; `$proxy_upstream_name` `custom-default-backend-<ns>-<name>`), and answers the Ingress's own `custom-http-errors` while it has endpoints",
  },
  {
    names: ['custom-http-errors', 'disable-proxy-intercept-errors'],
    status: 'implemented',
    values: 'comma-separated 4xx/5xx codes (default: the ConfigMap key); Go boolean',
    note: "an answer with a listed status (the backend's, unless disable-proxy-intercept-errors, which keepip honours also where the codes are the ConfigMap's: ingress-nginx writes no `proxy_intercept_errors off`, so there the ConfigMap's `on` still replaces the backend's answers; the gateway's own 502/503/504; the location's refusals: allow/deny 403, auth 401 without auth-signin and 500, limits; not the 503 of a location its annotations deny, which has no error_page in ingress-nginx) is replaced by the error backend's answer to `/` (the method and the request's arguments kept, `/?a=1`, as ingress-nginx's `rewrite (.*) / break;`; no body: a POST's body is not sent again, where nginx re-sends the one it buffered) with X-Code, X-Format, X-Original-URI, X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port, X-Request-ID: the client gets the error backend's status. The error backend is `default-backend` when the Ingress sets custom-http-errors itself and that Service has endpoints; else (the ConfigMap's codes, a host's root without a \"/\" rule) the catch-all default backend, as ingress-nginx; without one the original answer stands (ingress-nginx would send its own 404)",
  },
  {
    names: ['proxy-redirect-from', 'proxy-redirect-to'],
    status: 'implemented',
    values: 'URLs of `[-._~a-zA-Z0-9/:,?&=]`; `off` (default) or `default`',
    note: "nginx's `proxy_redirect from to`: the backend's Location (and Refresh) URL starting with `from` starts with `to` instead. `default` rewrites what nginx's own upstream name would carry, which no keepip backend sends: nothing. Each half alone defaults to its ConfigMap key (an invalid annotation half too), then the two are paired: a `from` in the Ingress with a `to` in the ConfigMap rewrites. A rewritten Location starting with `/` is made absolute on the request's scheme and host, as nginx's absolute_redirect (relative-redirects, use-port-in-redirects apply), so `//other.host` never leaves protocol-relative. nginx's regex form (`~…`) is not run: warned and ignored",
  },
  {
    names: ['proxy-cookie-domain', 'proxy-cookie-path'],
    status: 'implemented',
    values: '`off` (default) or `<from> <to>`',
    note: "nginx's `proxy_cookie_domain` / `proxy_cookie_path`: in the backend's Set-Cookie, a Domain equal to `from` (case-insensitive; one leading dot of `from` and `to` dropped, the cookie's own kept, as nginx) becomes `to`; a Path starting with `from` starts with `to`. Default: the ConfigMap keys, which an invalid annotation leaves in force (as ingress-nginx); nginx's regex form (`~…`) is not run: warned and ignored",
  },
  {
    names: ['proxy-http-version'],
    status: 'implemented',
    values: '`1.1` (default), `1.0` (blanks around it trimmed, as ingress-nginx)',
    note: '1.0: plain-HTTP backends get HTTP/1.0 requests with `Connection: close`, and a body of unknown length is read whole first and sent with its Content-Length (nginx buffers it too). HTTPS backends are spoken to in HTTP/1.1. Default: the ConfigMap key',
  },
  {
    names: ['proxy-ssl-secret'],
    status: 'implemented',
    values:
      '`namespace/name` (same namespace; another with allow-cross-namespace-resources) with PEM `ca.crt`, and `tls.crt` / `tls.key` for a client certificate',
    note: "TLS towards an HTTPS backend (`backend-protocol: HTTPS`): the client certificate is presented, and with `proxy-ssl-verify: on` the backend's certificate must chain to ca.crt and name proxy-ssl-name. Nothing else of proxy-ssl-* applies without it; a Secret that is missing, in another namespace (without allow-cross-namespace-resources) or without ca.crt denies the locations (503, `ACCESS_CONFIG_DENIED`). The host's first Ingress with a usable Secret gives its proxy-ssl-* to the host's other HTTPS locations too (see the ConfigMap's proxy-ssl-location-only). Values are read trimmed, as ingress-nginx's parser (`\" on\"` is on)",
  },
  {
    names: ['proxy-ssl-verify', 'proxy-ssl-verify-depth'],
    status: 'implemented',
    values: '`on` / `off` (default); whole number (default 1)',
    note: "verify the backend's certificate (a failure is 502), with at most `depth` CAs between it and the trust anchor, as OpenSSL counts (depth 1: one intermediate). The same settings apply to WebSocket upgrades and to a canary's backend, as ingress-nginx's location does",
  },
  {
    names: ['proxy-ssl-name', 'proxy-ssl-server-name'],
    status: 'implemented',
    values: "a server name (default nginx's `upstream_balancer`); `on` / `off` (default)",
    note: "the name the backend's certificate is verified against, and sent by SNI only with proxy-ssl-server-name on (by default no SNI, as nginx). As nginx's X509_check_host: an IP address or a name with a final dot matches no certificate (and an IP is never sent by SNI). Taken literally: a `$variable` is not expanded (nginx would let the client's Host or header choose the name verified), so it matches nothing: 502",
  },
  {
    names: ['proxy-ssl-protocols', 'proxy-ssl-ciphers'],
    status: 'implemented',
    values: '`TLSv1.2` (default), `TLSv1.3`, or both; an OpenSSL cipher list (default `DEFAULT`)',
    note: 'the TLS versions and ciphers offered to the backend. `TLS_*` names in the cipher list restrict the TLS 1.3 suites too (nginx leaves those at their defaults). Values OpenSSL refuses (no cipher it knows, `TLSv1.2TLSv1.3`) fail every request to the backend (502), said when the configuration loads (`UPSTREAM_TLS_SETTINGS_INVALID`), where nginx would refuse the whole configuration',
  },
  // --- Implemented: limits, basic and external auth, satisfy, client certificates (access-annotations.ts).
  {
    names: ['limit-rps', 'limit-rpm'],
    status: 'implemented',
    values: 'whole numbers',
    note: "nginx's `limit_req` with `nodelay`: a leaky bucket per client address (or per limit-conn-zone-variable's value), rate N per second (per minute), burst N × `limit-burst-multiplier`, so burst + 1 requests pass at once. Both may be set (both apply). Refused: ConfigMap `limit-req-status-code` (503). A value that is not a whole number (`1.5`) denies the Ingress's locations (503, `ACCESS_CONFIG_DENIED`): ingress-nginx serves no such Ingress, and dropping the limit would serve it unlimited",
  },
  {
    names: ['limit-connections'],
    status: 'implemented',
    values: 'whole number',
    note: "nginx's `limit_conn`: requests in progress per client address (or per limit-conn-zone-variable's value); one more is refused with `limit-conn-status-code` (503). Held until the response ends. A value that is not a whole number, or above 65535 (nginx refuses `limit_conn` past it), denies the Ingress's locations, as for limit-rps",
  },
  {
    names: ['limit-rate', 'limit-rate-after'],
    status: 'implemented',
    values: 'whole numbers of KB',
    note: "nginx's `limit_rate` / `limit_rate_after` on the response, per request, by its write filter's budget: after `limit-rate-after` KB, `limit-rate` KB for each second since the first byte plus one; a chunk past it goes out in pieces as the budget grows (backpressure on the backend: nothing is buffered beyond the chunk read). Defaults: the ConfigMap keys of the same names",
  },
  {
    names: ['limit-burst-multiplier'],
    status: 'implemented',
    values: 'whole number',
    note: 'default 5; a value that is not a whole number above 0 (`1.5`, or `0`, which makes nginx refuse `burst=0`) is 1, with a warning (ingress-nginx takes 5, or keeps its previous configuration: fails closed)',
  },
  {
    names: ['limit-whitelist', 'limit-allowlist'],
    status: 'implemented',
    values: 'CIDRs',
    note: 'clients never limited; limit-whitelist is read when limit-allowlist is absent or empty. An invalid list denies the locations (503, `ACCESS_CONFIG_DENIED`)',
  },
  {
    names: ['auth-type'],
    status: 'implemented',
    values: '`basic`',
    note: '`digest` (and anything else) denies the locations: 503',
  },
  {
    names: ['auth-secret', 'auth-secret-type'],
    status: 'implemented',
    values:
      '`name` or `namespace/name` (same namespace; another with allow-cross-namespace-resources); `auth-file` (default: htpasswd in key `auth`) or `auth-map` (each key a user, each value a hash)',
    note: 'a missing Secret or key, another namespace, a bad type: 503 (`ACCESS_CONFIG_DENIED`). Hashes: bcrypt (`$2a$`/`$2b$`/`$2y$`), `$apr1$`, `$1$` (MD5-crypt), `{SHA}`, `{SSHA}`, `{PLAIN}`; DES crypt and SHA-crypt are not verified (`AUTH_HASH_UNSUPPORTED`, that user cannot log in). 401 with `WWW-Authenticate: Basic realm="…"` and nginx\'s "401 Authorization Required" page; the Authorization header is not passed to the backend; `$remote_user` is logged (as nginx, the Basic user the client sent, verified or not, on any location)',
  },
  {
    names: ['auth-realm'],
    status: 'implemented',
    values: 'letters, digits, `-._~/: `',
    note: 'the realm of the challenge',
  },
  {
    names: ['auth-url'],
    status: 'implemented',
    values:
      'http(s) URL, nginx variables allowed (`$host`, `$request_uri`, `$escaped_request_uri`, `$http_*`, `$cookie_*`, `$arg_*`…)',
    note: "nginx's `auth_request`: a GET (or `auth-method`) with the client's headers and no body, plus Host (the URL's host), X-Original-URL, X-Original-Method, X-Sent-From, X-Real-IP, X-Forwarded-For, X-Auth-Request-Redirect, X-Request-ID (and X-Original-URI, X-Scheme with `auth-method`). 2xx admits; 401 (with the service's WWW-Authenticate) and 403 are passed on; any other status, a refused connection or a timeout (the location's connect + read timeouts) is 500. A URL that is not http(s) with a host, or has `..` in the host, denies the location (503). As nginx's proxy_pass, the expanded URL's authority must be a host and a port of digits (a client's Host with `@` or junk after `:` is refused before, 400: it never picks the auth server), and its path is sent as expanded, never resolved (`\\..\\` or `%2e%2e` from `$request_uri` stay in it)",
  },
  {
    names: ['auth-method'],
    status: 'implemented',
    values: 'GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS, TRACE',
    note: "the subrequest's method",
  },
  {
    names: ['auth-signin', 'auth-signin-redirect-param'],
    status: 'implemented',
    values: 'URL with variables; parameter name (default `rd`)',
    note: "a final 401 is a 302 to `auth-signin?rd=$pass_access_scheme://$http_host$escaped_request_uri` (kept as written when the URL already carries the parameter), with the auth service's Set-Cookie",
  },
  {
    names: ['auth-response-headers'],
    status: 'implemented',
    values: 'comma-separated header names',
    note: "copied from the auth answer to the upstream request, replacing the client's (absent in the answer: removed; when `satisfy: any` admits without the subrequest, removed too, as nginx's empty `$authHeaderN`)",
  },
  {
    names: ['auth-request-redirect'],
    status: 'implemented',
    values: 'URL',
    note: 'X-Auth-Request-Redirect (default `$request_uri`)',
  },
  {
    names: ['auth-cache-key', 'auth-cache-duration'],
    status: 'implemented',
    values: 'variables; `"200 202 401 5m"` (default), comma-separated',
    note: "answers cached per host, location, auth-url (with its method: ingress-nginx's key has neither, so after a change of auth-url it could serve the old service's answer) and key, for the listed statuses and times (a time alone: 200 301 302). As nginx's proxy cache, the answer's own X-Accel-Expires, then Cache-Control s-maxage/max-age, then Expires set the time, for any status; Set-Cookie, `Vary: *`, Cache-Control no-store/no-cache/private, max-age=0, X-Accel-Expires: 0 and an Expires in the past keep it out, each header line read apart as nginx reads them (a second `Cache-Control: max-age=0` line keeps it out; the first X-Accel-Expires counts). An answer with `Vary` holds only for requests whose named headers, as the auth service got them, are the same (nginx keeps one variant per value, keepip the latest). An answer unused for 30 minutes is dropped (the zone's inactive=30m). At most 10,000 entries per gateway, kept by the key's SHA-256. A key that names nothing of the client (no `$http_authorization`, `$cookie_<name>`, `$remote_user`, `$remote_addr`…) shares one answer among all clients, as nginx does: a warning, AUTH_CACHE_SHARED. A request for which every such variable of the key is empty is neither answered from the cache nor kept in it (nginx keeps it under the empty key: an allow the auth service gave on something the key leaves out, another header or a cookie `$cookie_` cannot read, admitted every client without credentials, as the first one)",
  },
  {
    names: ['auth-proxy-set-headers'],
    status: 'implemented',
    values:
      'ConfigMap `name` or `namespace/name` (same namespace; another with allow-cross-namespace-resources)',
    note: 'its keys and values (variables allowed) are sent to the auth service; a missing ConfigMap denies the location',
  },
  {
    names: ['auth-always-set-cookie'],
    status: 'implemented',
    values: 'Go boolean',
    note: "the auth service's Set-Cookie on every response; by default only on 200, 201, 204, 206, 301, 302, 303, 304, 307, 308 (nginx's add_header)",
  },
  {
    names: [
      'auth-keepalive',
      'auth-keepalive-share-vars',
      'auth-keepalive-requests',
      'auth-keepalive-timeout',
    ],
    status: 'implemented',
    values: 'whole numbers: 0 (not set), 1000, 60 seconds; share-vars a Go boolean',
    note: "with auth-keepalive N: N idle connections kept to the auth service, each closed after auth-keepalive-requests subrequests or auth-keepalive-timeout seconds idle, as nginx's upstream keepalive (ingress-nginx also ignores it under its default use-http2 true; keepip does not). A subrequest sent on a kept connection the service had just closed is sent again on another (nginx's retry of a cached connection). Without auth-keepalive, connections to the auth service are kept alive (up to 64 idle per service, each closed after 60 s idle; ingress-nginx opens one per check). auth-keepalive-share-vars changes nothing keepip's subrequest shows. Keep-alive never applies when a variable names the auth-url's host (`http://$http_host/auth`): those subrequests get a connection of their own, closed after the answer, so the names a client sends never hold connections open (ingress-nginx's auth-keepalive does not apply to them either)",
  },
  {
    names: ['enable-global-auth'],
    status: 'implemented',
    values: 'Go boolean, default true',
    note: "`false`: the ConfigMap's `global-auth-url` does not apply to this Ingress",
  },
  {
    names: ['satisfy'],
    status: 'implemented',
    values: '`all` (default), `any`',
    note: "`any`: an allowlist match admits without auth, and valid basic credentials admit without the auth subrequest (then no `auth-response-headers` reach the backend, not even the client's own); otherwise 401 if any check said 401, else 403. A denylist or block-cidrs match refuses whatever `satisfy` says (difference 8)",
  },
  {
    names: ['auth-tls-secret'],
    status: 'implemented',
    values:
      '`namespace/name` (same namespace; another with allow-cross-namespace-resources) with PEM `ca.crt`, and optionally a PEM CRL in `ca.crl`',
    note: "per host (the first Ingress of the host that sets it): clients that send the host's name by SNI are asked for a certificate verified against the CA; with `ca.crl`, a revoked certificate is refused (400) and, as nginx's ssl_crl, every CA of the chain needs its CRL there (one PEM block each, all read); sessions that carry a client certificate are never resumed (a full handshake each time: a resumed session would bring the certificate without its chain); an unusable Secret (no PEM certificate in ca.crt, a ca.crl that is not a PEM CRL): 403 for every request to the host",
  },
  {
    names: ['auth-tls-verify-client'],
    status: 'implemented',
    values: '`on` (default), `off`, `optional`, `optional_no_ca`',
    note: "`on`: no certificate 400, one that does not verify 400; `optional`: none passes (ssl-client-verify NONE); `optional_no_ca`: one whose issuer is unknown or untrusted passes (FAILED:…), an expired, revoked or badly signed one is 400 as nginx's; `off`: none is asked for",
  },
  {
    names: ['auth-tls-verify-depth'],
    status: 'implemented',
    values: 'whole number, default 1 (0 is 1, as ingress-nginx)',
    note: "how many intermediate CAs may stand between the client certificate and the CA, as OpenSSL's verify depth: 1 takes a certificate signed by the CA or by one intermediate the client sends. Each link of the chain counted must verify (signature, dates): a chain whose certificates cannot be linked that way (a decoy named as an intermediate) is refused (400) even where OpenSSL found a path through others",
  },
  {
    names: ['auth-tls-error-page'],
    status: 'implemented',
    values: 'URL or path',
    note: 'a 302 to it instead of the 400',
  },
  {
    names: ['auth-tls-pass-certificate-to-upstream'],
    status: 'implemented',
    values: 'Go boolean',
    note: '`ssl-client-cert`: the PEM URL-escaped, as `$ssl_client_escaped_cert`',
  },
  {
    names: ['auth-tls-match-cn'],
    status: 'implemented',
    values: '`CN=` + regex',
    note: "matched (unanchored) against the subject DN in RFC 2253 form (`CN=x,O=y`): no match is 403. The backend and auth service always get `ssl-client-verify`, `ssl-client-subject-dn`, `ssl-client-issuer-dn` on such a host (the client's own are removed)",
  },
  // --- Traffic: canaries, affinity, balancing, retries, default backends and error pages.
  // --- Requests and responses.
  {
    names: ['ssl-passthrough'],
    status: 'implemented',
    values: 'Go boolean',
    note: "with `--enable-ssl-passthrough` (gateway or controller): TLS connections whose SNI is exactly the host go unread to the backend of its `/` path (ready endpoints round robin, the next on a connect error), which presents its own certificate; the client (the PROXY header's) must pass that location's source-address rules first, which ingress-nginx cannot apply; one stream-style access log line each. Other annotations do not apply to those connections; plain HTTP to the host is served as usual. Without the flag, or without a `/` backend: reported (`SSL_PASSTHROUGH_IGNORED`) and keepip terminates TLS, as ingress-nginx",
  },
  {
    names: ['ssl-ciphers'],
    status: 'implemented',
    values: 'an OpenSSL cipher list (`[A-Za-z0-9!:+-_]`, `@STRENGTH`, `@SECLEVEL=0-5`)',
    note: "the TLS 1.2 (and older) suites a handshake for the host may use, chosen by the client's SNI before the handshake starts (aliases and the www twin included); TLS 1.3 suites stay the defaults unless `TLS_*` names are listed. Per host: the first Ingress of the host that sets it. A list that fails the syntax or that OpenSSL refuses is an error (`INVALID_TLS_SETTINGS`) and the host's handshakes are refused, never served with the defaults. Default: the ConfigMap's `ssl-ciphers`",
  },
  {
    names: ['ssl-prefer-server-ciphers'],
    status: 'implemented',
    values: "Go boolean (default true, as ingress-nginx's `ssl_prefer_server_ciphers on`)",
    note: "the server's cipher order wins among suites both sides accept (`false`: the client's). Per host: the first Ingress of the host that sets it",
  },
  {
    names: ['proxy-request-buffering'],
    status: 'implemented',
    values:
      "`on` or `off`, blanks around it trimmed, case kept as ingress-nginx's validator (default: the ConfigMap's, `on`; the ConfigMap's own is read without case, as nginx)",
    note: '`on`: the whole request body is read before the backend is contacted, then sent with `Content-Length` (a chunked or HTTP/2 body too), and sent again to the next endpoint on a retry; a client that stalls mid-body never reaches the backend. `off`: the body streams as it arrives. gRPC and upgrades always stream',
  },
  {
    names: ['client-body-buffer-size'],
    status: 'implemented',
    values:
      "digits and an optional `k` or `m`, spaces around it (default: the ConfigMap's, `8k`; a tab or line break around it is refused, as ingress-nginx's validator)",
    note: 'how much of a buffered body stays in memory; the rest goes to a temporary file (0600, unlinked as soon as it is opened). Memory for bodies is also capped across all requests: past the cap, bodies go to files',
  },
  // --- nginx internals: nothing a client or backend observes changes.
  {
    names: [
      'proxy-buffering',
      'proxy-buffer-size',
      'proxy-buffers-number',
      'proxy-busy-buffers-size',
      'proxy-max-temp-file-size',
    ],
    status: 'no-effect',
    note: "nginx's response buffers and temporary files: keepip streams every response to the client as it arrives, with backpressure, and never spools one to disk; response heads up to Node's header limit are accepted",
  },
  {
    names: ['http2-push-preload'],
    status: 'no-effect',
    note: 'HTTP/2 server push: keepip never pushes (its HTTP/2 side answers each stream the client opens); Chromium and Firefox dropped push support and nginx 1.25.1 removed http2_push_preload, so `Link: rel=preload` headers reach the browser as the backend sent them, as hints',
  },
  {
    names: ['enable-rewrite-log'],
    status: 'no-effect',
    note: "nginx's debugging of rewrite directives in its error log: keepip has no rewrite directives to trace (`keepip doctor` explains the route a request takes)",
  },
  // --- Refused by design.
  {
    names: [
      'configuration-snippet',
      'server-snippet',
      'auth-snippet',
      'stream-snippet',
      'modsecurity-snippet',
    ],
    status: 'refused',
    note: SNIPPET_REASON,
    instead: 'express it with the annotations keepip implements',
  },
  {
    names: ['enable-modsecurity', 'enable-owasp-core-rules', 'modsecurity-transaction-id'],
    status: 'refused',
    note: 'keepip has no web application firewall (ModSecurity, the OWASP core rule set): requests are NOT inspected',
    instead: 'a WAF in front of the load balancer or beside the backend',
  },
  {
    names: ['enable-opentelemetry'],
    status: 'implemented',
    values: 'a Go boolean; unset: the ConfigMap decides',
    note: '"true": the Ingress\'s locations trace (an OpenTelemetry SERVER span per request, exported with the ConfigMap\'s otlp-collector-* and otel-* settings; the backend gets the span as `traceparent`/`tracestate`); "false": they do not, and the client\'s `traceparent` reaches the backend as sent. The two below are read only with "true", as ingress-nginx\'s parser',
  },
  {
    names: ['opentelemetry-trust-incoming-span'],
    status: 'implemented',
    values: 'a Go boolean; default the ConfigMap key of that name (true)',
    note: "whether the request's W3C `traceparent` (and `tracestate`) is the span's parent; false starts a new trace at the gateway",
  },
  {
    names: ['opentelemetry-operation-name'],
    status: 'implemented',
    values: "letters, digits, `_` and `-` (ingress-nginx's validator); anything else is ignored, warned",
    note: "the span's name; default the ConfigMap key of that name, else the Ingress path as written (nginx's module names the span after the nginx location ingress-nginx renders for the path)",
  },
  {
    names: ['mirror-target'],
    status: 'implemented',
    values:
      "an `http://` or `https://` URL whose host (and port) is written out, made of ingress-nginx's server-name characters; nginx variables (`$request_uri`, `$host`, `$scheme`, `$http_<name>`…) expanded per request",
    note: "a copy of each proxied request of the Ingress's locations goes to this URL (its path: the expanded target; without one, the request's URI where nginx sends its internal `/_mirror-<uid>`; a target without variables gets the request's arguments appended, as `proxy_pass`; `$uri` is the request's normalised path, where nginx's is `/_mirror-<uid>` inside the mirror location, and what a request line cannot carry in it, a space or a line feed, is percent-encoded); its answer is read and discarded. The copy carries the method, the headers the backend gets (the gateway's X-Forwarded-For / X-Real-IP, never a forged one from an untrusted client; nginx passes the client's own headers) with hop-by-hop fields removed and `Connection: close`. Unlike nginx, the client's answer never waits for the mirror: a failing or slow mirror is a rate-limited error log line and `keepip_gateway_mirror_requests_total{result}`. At most 256 copies in flight per process (beyond: dropped, counted); deadlines: the location's proxy-connect/send/read timeouts, their sum in all; HTTPS mirrors are not verified (nginx's `proxy_ssl_verify off`). A target nginx could not use (not http(s), no host, a variable in the host) is an INVALID_ANNOTATION_VALUE warning and no mirror; an expansion that changes the host is refused per request (counted `refused`). Not for gRPC or upgrades",
  },
  {
    names: ['mirror-host'],
    status: 'implemented',
    values:
      "server-name characters; nginx variables expanded (default: the target's host name without its port)",
    note: 'the Host header of the copy',
  },
  {
    names: ['mirror-request-body'],
    status: 'implemented',
    values: '`on` (default) or `off`; anything else is `on`, warned',
    note: "`on`: the copy carries the body, and the location reads a request body whole before the backend even with `proxy-request-buffering: off` (nginx's mirror module does so too); the one buffered body is replayed to both. `off`: the copy has an empty body (nginx would still send the client's Content-Length with it)",
  },
  {
    names: ['fastcgi-index', 'fastcgi-params-configmap'],
    status: 'refused',
    note: 'FastCGI backends are refused (`backend-protocol: FCGI`)',
    instead: 'put an HTTP server (php-fpm behind nginx or Caddy) in front of the FastCGI application',
  },
];

const NGINX_INTERNAL = 'an nginx process, buffer or memory setting';

/** ingress-nginx's controller ConfigMap keys: its ConfigMap documentation, and the keys its configuration reads. */
export const CONFIGMAP_CATALOG: readonly CatalogEntry[] = [
  // --- Implemented.
  {
    names: ['use-proxy-protocol'],
    status: 'implemented',
    values: 'false',
    note: 'every listener expects a PROXY header (v1 or v2)',
  },
  {
    names: ['proxy-protocol-header-timeout'],
    status: 'implemented',
    values: '5s',
    note: 'Go duration (`5s`, `500ms`, `1m`)',
  },
  {
    names: ['annotations-risk-level'],
    status: 'implemented',
    values: 'High',
    note: "`Critical`, `High`, `Medium` or `Low` (any case): an Ingress that uses an annotation rated above the level (ingress-nginx's rating of each, e.g. the snippets Critical; auth-url, server-alias, mirror-target, upstream-hash-by High; rewrite-target, whitelist-source-range Medium) is **not served at all** and the admission webhook refuses it (`ANNOTATION_TOO_RISKY`), as ingress-nginx 1.12+. Any other word is read as `Low`, as there (warned). At `Critical` the snippets pass this check and are still never run (`ANNOTATION_REFUSED`)",
  },
  {
    names: ['annotation-value-word-blocklist'],
    status: 'implemented',
    values: '""',
    note: "comma-separated words: an Ingress with an annotation (under the controller's prefix) whose value contains one is **not served at all** and refused at admission (`ANNOTATION_VALUE_BLOCKED`), as ingress-nginx. Words are trimmed; an empty entry (`a,,b`, a trailing comma) is contained in every value, so it blocks every Ingress with an annotation, as there",
  },
  {
    names: ['proxy-real-ip-cidr'],
    status: 'implemented',
    values: '0.0.0.0/0',
    note: 'peers trusted for the PROXY header and forwarded headers. The default 0.0.0.0/0 applies only when the key is absent: present but empty, **nobody** is trusted (ingress-nginx then writes no `set_real_ip_from`). Invalid value: error `INVALID_TRUSTED_CIDR`: the configuration is not served (the gateway does not start, a reload keeps the trust it had), as nginx refuses it. An IPv4-mapped entry (`::ffff:…`) trusts no IPv4 peer, as nginx reads it (warning `SOURCE_RANGE_MAPPED_ENTRY`)',
  },
  {
    names: ['use-forwarded-headers'],
    status: 'implemented',
    values: 'false',
    note: 'client from `forwarded-for-header`, walked right to left past trusted peers',
  },
  {
    names: ['forwarded-for-header'],
    status: 'implemented',
    values: 'X-Forwarded-For',
    note: 'must be an HTTP header name',
  },
  {
    names: ['compute-full-forwarded-for'],
    status: 'implemented',
    values: 'false',
    note: 'append to the incoming X-Forwarded-For',
  },
  {
    names: ['enable-real-ip'],
    status: 'implemented',
    values: 'false',
    note: 'real IP from the header only; with `use-proxy-protocol` (and not `use-forwarded-headers`) the PROXY header alone names the client, as ingress-nginx',
  },
  {
    names: ['whitelist-source-range', 'denylist-source-range'],
    status: 'implemented',
    values: 'none',
    note: 'defaults for locations without the annotation. Empty entries are skipped (ingress-nginx splits ConfigMap lists); a bad entry fails closed. An IPv4-mapped entry (`::ffff:…`) admits nobody in `whitelist-source-range`, as nginx reads it, and denies its IPv4 range in `denylist-source-range` (stricter than nginx); warning `SOURCE_RANGE_MAPPED_ENTRY`',
  },
  {
    names: ['block-cidrs'],
    status: 'implemented',
    values: 'none',
    note: 'denied everywhere; a bad entry fails closed',
  },
  { names: ['ssl-redirect'], status: 'implemented', values: 'true', note: 'see the annotation' },
  {
    names: ['http-redirect-code'],
    status: 'implemented',
    values: '308',
    note: '301, 302, 307 or 308; anything else: warning, 308',
  },
  {
    names: ['log-format-upstream'],
    status: 'implemented',
    values: "ingress-nginx's default line (below)",
    note: "the access log line, in nginx's log_format syntax. Variables: `$remote_addr` `$the_real_ip` `$remote_port` `$realip_remote_addr` `$proxy_protocol_addr` `$proxy_protocol_port` `$remote_user` `$time_local` `$time_iso8601` `$msec` `$request` `$request_method` `$request_uri` `$uri` `$document_uri` `$args` `$query_string` `$is_args` `$server_protocol` `$scheme` `$https` `$status` `$body_bytes_sent` `$bytes_sent` `$request_length` `$request_time` `$host` `$server_name` `$server_addr` `$server_port` `$proxy_upstream_name` `$proxy_host` `$proxy_alternative_upstream_name` `$upstream_addr` `$upstream_response_length` `$upstream_response_time` `$upstream_connect_time` `$upstream_header_time` `$upstream_status` `$req_id` `$pid` `$request_id` `$namespace` `$ingress_name` `$service_name` `$service_port` `$location_path` `$connection` `$connection_requests` `$hostname` `$proxy_add_x_forwarded_for` `$ssl_protocol` `$ssl_cipher` `$ssl_server_name` `$ssl_session_reused` `$ssl_client_verify` `$ssl_client_s_dn` `$ssl_client_i_dn` `$content_length` `$content_type`, and `$http_<name>`, `$sent_http_<name>`, `$upstream_http_<name>`, `$cookie_<name>`, `$arg_<name>`. An unknown one is `-` (nothing with log-format-escape-json), with a warning, where nginx would refuse the format",
  },
  {
    names: ['log-format-escape-json'],
    status: 'implemented',
    values: 'false',
    note: 'JSON escaping in the access log',
  },
  {
    names: ['enable-syslog', 'syslog-host', 'syslog-port'],
    status: 'implemented',
    values: 'false, none, 514',
    note: "both logs to a syslog server over UDP instead of stdout and stderr, as nginx's `syslog:server=`: one datagram per line, `<PRI>Mmm dd hh:mm:ss hostname nginx: line` (facility local7; severity info for access lines, the line's level for error lines; the tag `nginx`, so existing filters match). The host is an IP address or a DNS name (resolved once per change); an invalid one keeps the logs on stdout/stderr with a warning, one that does not resolve with an error line there. A reload turns it on, off or elsewhere. Lines are not retried: UDP, as nginx",
  },
  {
    names: ['limit-conn-zone-variable'],
    status: 'implemented',
    values: '$binary_remote_addr',
    note: "what every rate and connection limit (limit-rps, limit-rpm, limit-connections) keys on, as ingress-nginx's `$limit_<id>` map: the resolved client address by default (`$binary_remote_addr` or `$remote_addr`), or nginx request variables (`$http_x_api_key`, `$cookie_session`, `$host`, `$server_name`, combinations): one bucket per value. A request whose key is empty (the header missing) is not limited, as nginx; limit-whitelist still exempts by address. `$binary_remote_addr` in a combination has a fixed length per address family, as nginx's 4 or 16 bytes, so `$binary_remote_addr$http_x_api_key` cannot be spelled by another address and a header. Keys over 64 characters are kept as their SHA-256, apart from the short ones (a client cannot send the text of another's hashed key). A variable new on every request (`$msec`, `$req_id`: nginx would count each request alone) is refused too. A variable keepip does not expand is warned and the client address stays (nginx would refuse the configuration; an empty key would turn limits off)",
  },
  {
    names: ['access-log-params'],
    status: 'implemented',
    values: 'none',
    note: "nginx's access_log parameters. `buffer=<size>` and `flush=<time>` ask for fewer, larger writes, which keepip's access log makes already (one write per event-loop turn, whole lines, never held longer than that turn, where nginx holds them up to flush=): accepted as they are. `gzip[=level]` and `if=` are warned (INVALID_CONFIGMAP_VALUE) and ignored: lines are written uncompressed, all of them",
  },
  {
    names: ['error-log-level'],
    status: 'implemented',
    values: 'notice',
    note: "the least severe error log line written, among nginx's emerg, alert, crit, error, warn, notice, info, debug: the default leaves out keepip's info lines (a client's invalid request, a TLS name refused by ssl-reject-handshake, an HTTP/2 connection closed for abuse), as nginx; `info` shows them. Anything else is notice, with a warning",
  },
  {
    names: ['log-format-escape-none'],
    status: 'implemented',
    values: 'false',
    note: "no escaping in the access log (wins over log-format-escape-json, as ingress-nginx's template); unlike nginx, control bytes (< 0x20, 0x7f) are still written as `\\xHH`, so a value (a decoded Basic user) cannot break a line in two",
  },
  {
    names: ['proxy-body-size'],
    status: 'implemented',
    values: '1m',
    note: "as the annotation; a value ingress-nginx's template does not write (`8b`, `0b`, `1 m`) is nginx's own 1m, with a warning",
  },
  {
    names: ['proxy-connect-timeout', 'proxy-read-timeout', 'proxy-send-timeout'],
    status: 'implemented',
    values: '5, 60, 60',
    note: 'whole seconds; `0` is no wait (504), as the annotation',
  },
  {
    names: ['ssl-ecdh-curve'],
    status: 'implemented',
    values: 'auto',
    note: 'the key exchange groups of every handshake, colon-separated OpenSSL names (`X25519:prime256v1:secp384r1`), for TLS 1.2 and 1.3. A value that is not such a list, or names OpenSSL refuses, is an error (`INVALID_TLS_SETTINGS`) and every handshake is refused',
  },
  {
    names: ['enable-ocsp'],
    status: 'implemented',
    values: 'false',
    note: "`true`: a TLS client that asks for the certificate status (status_request) gets the certificate's OCSP response stapled, as ingress-nginx's certificate.lua: the responder is the one the certificate's Authority Information Access names, the issuer must be in the Secret's tls.crt chain; a handshake never waits for the responder (the first ones after a start or a new certificate go without, while it is fetched within 4 s). A response is stapled only when it is successful, signed by the issuer or a responder it delegated to (OCSPSigning), `good` and current; until its nextUpdate (at most 3 days), fetched again from halfway there; a failure is an error log line with its code (`OCSP_*`) and a retry a minute later. No SNI: no staple",
  },
  {
    names: ['ssl-reject-handshake'],
    status: 'implemented',
    values: 'false',
    note: "`true`: a TLS handshake for a name no host has (no host, alias, wildcard or from-to-www twin), or without SNI, is answered with the alert unrecognized_name and closed, as nginx's default server with ssl_reject_handshake: the default certificate is never shown to name scanners. An info line in the error log says so",
  },
  {
    names: ['ssl-session-tickets'],
    status: 'implemented',
    values: 'false',
    note: 'session tickets on every TLS handshake (TLS 1.2 and 1.3), sealed with ssl-session-ticket-key or a random key the gateway makes at start and hands to all its workers, so a ticket is read by every worker and across reloads (nginx makes new keys at each reload). `false`: no ticket is issued; TLS 1.2 clients resume from the session cache, TLS 1.3 ones do not (see ssl-session-cache)',
  },
  {
    names: ['ssl-session-timeout'],
    status: 'implemented',
    values: '10m',
    note: "how long a session may be resumed: the ticket lifetime (an nginx time, 1s to 7d). A bad value keeps 10m with a warning. With ssl-session-cache false it has no effect: ingress-nginx writes it only beside the cache, so tickets live nginx's default 5m",
  },
  {
    names: ['ssl-session-ticket-key'],
    status: 'implemented',
    values: 'none',
    note: "the base64 of 48 random bytes (`openssl rand 48 | base64`) every ticket is sealed with, so replicas read each other's tickets. The 80-byte (AES-256) form nginx also reads is not available in Node: such a key, or any other size, is a warning and the random key applies; the warning does not repeat the key",
  },
  {
    names: ['ssl-session-cache', 'ssl-session-cache-size'],
    status: 'implemented',
    values: 'true, 10m',
    note: "TLS sessions kept by the gateway for ssl-session-timeout, at most ssl-session-cache-size bytes of them (least recently used dropped), so a TLS 1.2 client resumes with its session id. One cache per worker process (nginx's is shared by its workers). Node's TLS looks sessions up by the TLS 1.2 session id only, so TLS 1.3 clients resume by tickets (ssl-session-tickets) alone. The size as nginx reads it: k or m (no b, no g), 32k (nginx's least) to 1024m; anything else keeps 10m, with a warning",
  },
  {
    names: ['ssl-protocols'],
    status: 'implemented',
    values: '`TLSv1.2 TLSv1.3`',
    note: 'the TLS versions every handshake may use (TLS hosts and the default certificate), among TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, exactly as listed (a gap is kept); SSLv2 and SSLv3 are skipped with a warning. An unknown version is an error (`INVALID_TLS_SETTINGS`) and every handshake is refused',
  },
  {
    names: ['ssl-ciphers'],
    status: 'implemented',
    values: "ingress-nginx's Mozilla intermediate list",
    note: "the TLS 1.2 (and older) suites of every TLS host without its own `ssl-ciphers` annotation, and of the default certificate; TLS 1.3 suites stay the defaults unless `TLS_*` names are listed. Invalid (syntax, or OpenSSL refuses it): an error (`INVALID_TLS_SETTINGS`) and those handshakes are refused. Empty: nginx's own default `HIGH:!aNULL:!MD5` with the client's order, as ingress-nginx then writes neither ssl_ciphers nor ssl_prefer_server_ciphers",
  },
  {
    names: ['large-client-header-buffers'],
    status: 'implemented',
    values: '4 8k',
    note: "HTTP/1: a head must fit as nginx packs it: read into the `client-header-buffer-size` buffer, a line that does not fit there moves, with the lines after it, into one of these buffers, at most their count; a line that moves must fit in one. Else a request line is 414, a header 431 (nginx answers 414 and 400). A count 1-64 and a size 512-1m (nginx's least, connection_pool_size); anything else keeps 4 8k, with a warning. HTTP/2, as nginx ≥ 1.19.7: a decoded field (`:path` included) larger than one buffer or a decoded list larger than all of them (1 MiB at most) is 431",
  },
  {
    names: ['client-header-buffer-size'],
    status: 'implemented',
    values: '1k',
    note: 'the first buffer of a request head: a line that lies whole in it needs no large buffer, and the whole head may take it beside the `large-client-header-buffers` (as nginx). A size from 1k to 1m (k or m, as nginx reads it: no b, no g); anything else keeps 1k, with a warning',
  },
  {
    names: ['client-header-timeout'],
    status: 'implemented',
    values: '60',
    note: 'whole seconds (1–86400): a request head must arrive within it, else 408 and close (nginx `client_header_timeout`). `0` is refused with a warning (the default applies): a state without a deadline is a connection that never ends',
  },
  {
    names: ['client-body-timeout'],
    status: 'implemented',
    values: '60',
    note: 'whole seconds (1–86400): the longest wait between two reads of a request body, else 408 and close (nginx `client_body_timeout`); `0` refused as above',
  },
  {
    names: ['proxy-request-buffering'],
    status: 'implemented',
    values: 'on',
    note: 'default of the annotation: `on` reads a request body whole before the backend is contacted, `off` streams it',
  },
  {
    names: ['client-body-buffer-size'],
    status: 'implemented',
    values: '8k',
    note: 'default of the annotation: the part of a buffered body kept in memory, the rest in a temporary file under `$TMPDIR`',
  },
  {
    names: ['keep-alive'],
    status: 'implemented',
    values: '75',
    note: 'whole seconds (0–86400) a connection may idle between requests (nginx `keepalive_timeout`); `0` disables keep-alive (every response closes its connection)',
  },
  {
    names: ['use-http2'],
    status: 'implemented',
    values: 'true',
    note: "ALPN `h2` (then `http/1.1`) on the TLS listener, and HTTP/2 with prior knowledge beside HTTP/1.1 on the HTTP listener (nginx's `http2 on`: gRPC clients without TLS); every stream runs through the same pipeline as an HTTP/1.1 request (docs/gateway.md, HTTP/2)",
  },
  {
    names: ['http2-max-concurrent-streams'],
    status: 'implemented',
    values: '128',
    note: 'SETTINGS_MAX_CONCURRENT_STREAMS: a stream over it is refused (REFUSED_STREAM) before the client acknowledged it, a connection error (GOAWAY PROTOCOL_ERROR) after',
  },
  {
    names: ['http2-max-field-size', 'http2-max-header-size'],
    status: 'no-effect',
    note: "obsolete since nginx 1.19.7, which ingress-nginx's nginx ignores (with a warning): the HTTP/2 field and list limits are `large-client-header-buffers`' (one buffer, all of them), the list size also SETTINGS_MAX_HEADER_LIST_SIZE",
  },
  {
    names: ['keep-alive-requests', 'http2-max-requests'],
    status: 'implemented',
    values: '1000, 0 (keep-alive-requests applies)',
    note: "requests per connection: on HTTP/1.1 the answer to the last one says `connection: close` and the connection closes (nginx keepalive_requests; `0`: after the first); on HTTP/2 streams, then GOAWAY (the streams in flight finish). http2-max-requests is obsolete in ingress-nginx's nginx, which ends HTTP/2 connections after keep-alive-requests whatever it says; keepip honours it when it is lower, never when higher",
  },
  {
    names: ['allow-cross-namespace-resources'],
    status: 'implemented',
    values: 'false',
    note: "`true` lets auth-secret, auth-tls-secret, proxy-ssl-secret and auth-proxy-set-headers name a Secret or ConfigMap of another namespace (`namespace/name`), as ingress-nginx; by default such a reference denies the locations (503; auth-tls: 403). custom-headers stays same-namespace either way, as in ingress-nginx. The controller then also reads those Secrets (never another namespace's otherwise)",
  },
  {
    names: ['max-worker-connections'],
    status: 'implemented',
    values: '16384',
    note: 'nginx\'s worker_connections: the client connections one process (each of worker-processes) holds at most; one more is closed at once, counted in `keepip_gateway_connections_closed_total{reason="max_connections"}`, with an alert line `16384 worker_connections are not enough` (at most one a second). tcp-services connections have a budget of the same size in the controller\'s process (`alert: … worker_connections are not enough, tcp-services <port> connection from … closed`, `keepip_lb_flows_rejected_total{reason="max_connections"}`). nginx counts its backend connections in the same budget; keepip counts client connections only. `0` is no limit (nginx would take max-worker-open-files)',
  },
  {
    names: ['proxy-stream-timeout'],
    status: 'implemented',
    values: '600s',
    note: "nginx's stream proxy_timeout for tcp-services: a connection with no byte either way for this long is closed (an SSH session left idle, say). An nginx time above 0; anything else is 600s, with a warning. A change applies to the connections opened after it, as over an nginx reload",
  },
  {
    names: ['log-format-stream', 'disable-stream-access-log'],
    status: 'implemented',
    values:
      '`[$remote_addr] [$time_local] $protocol $status $bytes_sent $bytes_received $session_time`, false',
    note: "one line per tcp-services connection (udp-services session, `$protocol` UDP) when it ends, in the controller's access log (stdout), as nginx's stream access_log: `$status` 200, 400 (a `:PROXY` entry's header refused), 502 (no endpoint answered). Variables: nginx's stream ones (`$remote_addr` `$remote_port` `$server_addr` `$server_port` `$protocol` `$status` `$bytes_sent` `$bytes_received` `$session_time` `$upstream_addr` `$upstream_bytes_sent` `$upstream_bytes_received` `$upstream_connect_time` `$proxy_protocol_addr` `$proxy_protocol_port` `$realip_remote_addr` `$realip_remote_port` `$time_local` `$time_iso8601` `$msec` `$connection` `$pid` `$hostname`) and `$proxy_upstream_name` (`tcp-<namespace>-<service>-<port>`); an unknown one is `-`, with a warning. For a `:PROXY` entry `$remote_addr` is the client the trusted header names (ingress-nginx needs enable-real-ip for that). `disable-stream-access-log` or `disable-access-log`: no line",
  },
  {
    names: ['proxy-stream-responses'],
    status: 'implemented',
    values: '1',
    note: "nginx's stream proxy_responses for udp-services: a session (the datagrams of one client address and port, to one endpoint) ends once it got this many answers for each datagram it forwarded (1: a DNS query and its answer); `0`: once the datagram left. Read as ingress-nginx reads it (strconv.Atoi: `010` is 10). Else it ends idle for proxy-stream-timeout, or when the endpoint refuses (ICMP: logged 502)",
  },
  {
    names: [
      'proxy-stream-next-upstream',
      'proxy-stream-next-upstream-tries',
      'proxy-stream-next-upstream-timeout',
    ],
    status: 'implemented',
    values: 'true, 3, 600s',
    note: "nginx's stream proxy_next_upstream for tcp-services: a connect to an endpoint that fails (refused, unreachable, 60 s without an answer) is retried on the next endpoint round robin, up to `-tries` attempts in all and never the same endpoint twice for one connection (nginx may come back to one), none started once `-timeout` has passed since the connection came (0: no limit); the client's bytes wait, and it is closed only when every attempt failed. `false`: one attempt. Tries `0` (nginx: no limit) is each endpoint once",
  },
  {
    names: ['worker-shutdown-timeout'],
    status: 'implemented',
    values: '240s',
    note: "how long `keepip controller` waits after SIGTERM (and --shutdown-grace-period) for in-flight requests and upgraded connections before closing them, as nginx's worker_shutdown_timeout; then it exits after --post-shutdown-grace-period, as ingress-nginx. An nginx time; anything else is 240s, with a warning. `keepip gateway` waits its --drain-timeout instead (default 10s)",
  },
  {
    names: ['upstream-keepalive-connections'],
    status: 'implemented',
    values: '320',
    note: "idle HTTP backend connections kept per process over all backends (ingress-nginx's one `upstream_balancer`), the least recently used closed beyond it; `0`: every backend connection closes after its response (HTTPS backends too; their pools have no count over all backends, so only `0` applies to them)",
  },
  {
    names: ['upstream-keepalive-timeout', 'upstream-keepalive-requests', 'upstream-keepalive-time'],
    status: 'implemented',
    values: '60, 10000, 1h',
    note: "nginx's keepalive_timeout (whole seconds an idle backend connection is kept), keepalive_requests (requests one connection serves, then it closes) and keepalive_time (an nginx time: after it, a connection closes once its current response ends), for HTTP backends. A reload applies to connections as they next go idle. HTTPS backends follow the timeout and the requests (a change makes new connection pools; the old ones close when idle), not keepalive_time; gRPC backends keep their HTTP/2 sessions 60 s idle with no request or time limit. A HEAD goes out with `Connection: close` on a connection of its own (nginx keeps the connection): a backend that wrongly sends a body after its HEAD answer could otherwise have those bytes read as the next request's answer",
  },
  {
    names: ['worker-processes'],
    status: 'implemented',
    values: '`auto`',
    note: 'serving processes sharing the ports (one per available core with `auto`): keepip controller reads it unless `--workers` is given, keepip gateway when `--workers` is not given (its default there is 1); read at start, a change takes effect at the next start',
  },
  {
    names: ['limit-rate', 'limit-rate-after'],
    status: 'implemented',
    values: '0',
    note: 'defaults of the annotations (KB)',
  },
  {
    names: ['limit-req-status-code', 'limit-conn-status-code'],
    status: 'implemented',
    values: '503',
    note: 'the status of a refused request (400-599)',
  },
  {
    names: [
      'global-auth-url',
      'global-auth-method',
      'global-auth-signin',
      'global-auth-signin-redirect-param',
      'global-auth-response-headers',
      'global-auth-request-redirect',
      'global-auth-cache-key',
      'global-auth-cache-duration',
      'global-auth-always-set-cookie',
    ],
    status: 'implemented',
    values: 'none',
    note: 'external auth for every location without its own `auth-url` (unless `enable-global-auth: "false"`), as the annotations. An unusable `global-auth-url` fails closed: 503 on the locations it covers',
  },
  {
    names: ['no-auth-locations'],
    status: 'implemented',
    values: '`/.well-known/acme-challenge`',
    note: 'comma-separated prefixes of Ingress paths where basic and external auth do not apply; each entry loses the spaces around it and nothing else, as ingress-nginx\'s `strings.Trim(item, " ")`: an entry after a line break (a YAML `|` block) keeps it and exempts nothing',
  },
  {
    names: ['service-upstream'],
    status: 'implemented',
    values: 'false',
    note: 'the default of the `service-upstream` annotation',
  },
  {
    names: ['proxy-ssl-location-only'],
    status: 'implemented',
    values: 'false',
    note: "`false`: as ingress-nginx's server block, the proxy-ssl-* of a host's first Ingress (merge order) with a usable proxy-ssl-secret apply to every HTTPS location of the host: the other Ingresses' locations without their own take them all, and one with its own takes the server's proxy-ssl-name (when it has none) and client certificate (when its Secret has none); `true`: each Ingress's proxy-ssl-* apply to its own locations only",
  },
  {
    names: ['strict-validate-path-type'],
    status: 'implemented',
    values: 'true',
    note: "`true`: an Exact or Prefix path with other characters than `/[A-Za-z0-9-._/]` is dropped (`INVALID_PATH`), as ingress-nginx's admission webhook refuses its Ingress. `false`: such paths are served, a regex with use-regex (see Routing)",
  },
  {
    names: ['enable-access-log-for-default-backend'],
    status: 'implemented',
    values: 'false',
    note: "requests the controller's own default backend answers (an unknown host, or a path no rule of the default server `_` covers: its 404, or the controller's --default-backend-service) are access-logged only when `\"true\"`. A default backend an Ingress without rules names is logged, as ingress-nginx applies that Ingress's annotations to it",
  },
  {
    names: ['forwarded-host-header'],
    status: 'implemented',
    values: 'X-Forwarded-Host',
    note: 'the request header X-Original-Forwarded-Host copies (must be an HTTP header name)',
  },
  {
    names: ['add-headers'],
    status: 'implemented',
    values: 'none',
    note: "`namespace/name` (or `name` in the controller's namespace) of a ConfigMap whose keys and values are headers on every response, the gateway's own included (before custom-headers and CORS, which win); values as their UTF-8 bytes, as nginx, with nginx variables (`$req_id`, `$host`, `$status`, `$upstream_addr`, `$http_*`…: those of log-format-upstream) expanded when each head is written (empty: the field is removed; a variable keepip does not expand, such as nginx's `$proxy_host`, is \"\" with a warning at start-up). Content-Length and hop-by-hop fields (Connection, Transfer-Encoding…) are left out, with a warning (nginx sends them and breaks the answer's framing). A missing ConfigMap, a key that is not a header name or a value with a control byte (HTAB aside): warning, none",
  },
  {
    names: ['proxy-set-headers'],
    status: 'implemented',
    values: 'none',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's ${name} form, as users write it
    note: 'a ConfigMap as for add-headers (Content-Length and hop-by-hop fields left out, with a warning) whose headers are sent to every backend after keepip\'s own (they win); nginx variables in values (`$remote_addr`, `$http_*`, `$request_uri`, `$best_http_host`, `$proxy_add_x_forwarded_for`, `$realip_remote_addr`, `$server_port`, `$remote_user`, `$req_id`, `$msec`, `$time_iso8601`, `$namespace`, `$ingress_name`, `$service_name`, `$service_port`, `$location_path`…) are expanded as nginx expands them (`X-Request-Start: t=${msec}`, the request queueing New Relic reads, is seconds with milliseconds at the time the request is sent) (`$remote_user`: the Basic user the client sent, verified only where auth-type basic guards the location, so a backend that trusts `X-WEBAUTH-USER: $remote_user` must be reachable only through such a location), an empty result sends none; a variable keepip does not expand is a warning at load (`INVALID_CONFIGMAP_VALUE`) and reads as ""',
  },
  {
    names: ['global-allowed-response-headers'],
    status: 'implemented',
    values: 'none',
    note: 'comma-separated header names a `custom-headers` ConfigMap may set (see the annotation)',
  },
  {
    names: ['disable-access-log', 'disable-http-access-log'],
    status: 'implemented',
    values: 'false',
    note: '`"true"`: no access log line at all (metrics still count the requests)',
  },
  {
    names: ['preserve-trailing-slash', 'use-port-in-redirects'],
    status: 'implemented',
    values: 'false',
    note: 'defaults of the annotations',
  },
  {
    names: ['load-balance', 'upstream-hash-by', 'upstream-hash-by-subset', 'upstream-hash-by-subset-size'],
    status: 'implemented',
    values: 'round_robin; none; false; 3',
    note: 'defaults of the annotations, for every location without its own',
  },
  {
    names: [
      'proxy-next-upstream',
      'proxy-next-upstream-tries',
      'proxy-next-upstream-timeout',
      'retry-non-idempotent',
    ],
    status: 'implemented',
    values: 'error timeout; 3; 0; false',
    note: "defaults of the annotations; `retry-non-idempotent: \"true\"` adds `non_idempotent` to every location's conditions, those of an Ingress's own proxy-next-upstream too (as ingress-nginx's buildNextUpstream)",
  },
  {
    names: ['custom-http-errors', 'disable-proxy-intercept-errors'],
    status: 'implemented',
    values: 'none; false',
    note: 'defaults of the annotations',
  },
  {
    names: ['proxy-redirect-from', 'proxy-redirect-to', 'proxy-cookie-domain', 'proxy-cookie-path'],
    status: 'implemented',
    values: 'off',
    note: 'defaults of the annotations',
  },
  {
    names: ['proxy-http-version'],
    status: 'implemented',
    values: '1.1',
    note: 'the default of the annotation',
  },
  {
    names: ['allow-snippet-annotations'],
    status: 'implemented',
    values: 'false',
    note: 'keepip never runs snippets; `"false"` is accepted silently, anything else is refused (`CONFIGMAP_KEY_REFUSED`)',
  },
  {
    names: ['force-ssl-redirect'],
    status: 'implemented',
    values: 'false',
    note: 'the default of the annotation: plain-HTTP requests are redirected to HTTPS even on hosts without TLS',
  },
  {
    names: ['no-tls-redirect-locations'],
    status: 'implemented',
    values: '`/.well-known/acme-challenge`',
    note: 'comma-separated path prefixes: a location whose Ingress path starts with one is never redirected to HTTPS (neither ssl- nor force-ssl-redirect), so ACME HTTP-01 challenges are answered over HTTP; entries are trimmed of spaces only, as no-auth-locations',
  },
  {
    names: ['hsts', 'hsts-include-subdomains', 'hsts-max-age', 'hsts-preload'],
    status: 'implemented',
    values: 'true, true, 31536000, false',
    note: "`Strict-Transport-Security: max-age=…[; includeSubDomains][; preload]` on every answer to an HTTPS request, replacing the backend's; hosts served with the default certificate included, as ingress-nginx's header filter does (its certificate check in lua_ingress.lua tests a function without calling it). An `hsts-max-age` that is not a whole number is warned and 31536000 applies (ingress-nginx writes it as given, `max-age=1y`, a header browsers ignore)",
  },
  {
    names: ['block-user-agents', 'block-referers'],
    status: 'implemented',
    values: 'comma-separated nginx `map` entries',
    note: '403 in every server, before redirects and access rules, when the first User-Agent (Referer) header equals an entry (ASCII letters without case, bytes as sent: a UTF-8 entry matches the client\'s UTF-8) or matches a `~` / `~*` regular expression (never run on an empty value). Each entry is read as nginx reads ingress-nginx\'s line `<entry> 1;`: `"Bad Bot"` and `\'~*evil agent\'` are one entry with a space, `\\"`, `\\\\` and `\\t` are escapes, a leading `\\` is dropped (`\\~x` is the string `~x`), `""` blocks requests without the header (an absent header is the empty value), an entry starting with `#` is a comment. An entry nginx would not load (a space outside quotes, an unclosed quote, `;`, `{`, `default`, `include`, or a regular expression that is not usable) is an error and every request answers 503 until it is fixed; the same entry twice is taken once (nginx refuses it). A value\'s white space around it is not part of it, over HTTP/2 too (nginx keeps a trailing tab and HTTP/2 spaces): `~\\t$` matches nothing',
  },
  {
    names: ['enable-underscores-in-headers', 'ignore-invalid-headers'],
    status: 'implemented',
    values: 'false, true',
    note: 'request headers whose names hold `_` are dropped before routing, access rules, auth subrequests and the backend (as nginx: a backend that folds `_` and `-` would otherwise read a forged `X_Forwarded_For`); `enable-underscores-in-headers: "true"` or `ignore-invalid-headers: "false"` passes them. Other malformed names are refused by the parser (400) either way',
  },
  {
    names: ['generate-request-id'],
    status: 'implemented',
    values: 'true',
    note: '`$req_id` (X-Request-ID to the backend, the auth service and in the log) is the client\'s X-Request-ID, else a fresh 32-hex id; with `"false"` none is made up and no X-Request-ID is sent when the client sent none',
  },
  {
    names: ['proxy-add-original-uri-header'],
    status: 'implemented',
    values: 'false',
    note: '`"true"`: backends get `X-Original-URI: $request_uri` (the target as the client sent it, arguments included)',
  },
  {
    names: ['hide-headers'],
    status: 'implemented',
    values: 'none',
    note: "comma-separated header names a backend's response never passes on, beside nginx's own (Date, Server, X-Pad, X-Accel-*), which keepip hides too",
  },
  {
    names: ['server-tokens', 'allow-backend-server-header'],
    status: 'implemented',
    values: 'false, false',
    note: "without server-tokens no answer has a Server header (ingress-nginx clears it); with it, `Server: keepip` (nginx would name itself and its version), or the backend's own with allow-backend-server-header",
  },
  {
    names: ['skip-access-log-urls'],
    status: 'implemented',
    values: 'comma-separated nginx `map` entries',
    note: 'requests whose URI as sent (arguments included) equals an entry (case-insensitive) or matches a `~` / `~*` regular expression are not access-logged; entries are read as block-user-agents reads them, and one nginx would not load is left out with a warning',
  },
  // --- Not implemented yet: observable behaviour keepip does not have.
  {
    names: ['use-gzip'],
    status: 'implemented',
    values: 'false',
    note: 'gzip for responses of status 200, 403 and 404 whose type gzip-types lists (text/html always; the type is the Content-Type before a `; charset=`, else the whole value, as nginx sets it apart: `text/plain; format=flowed` is not `text/plain`; `*` takes every answer, one without Content-Type too) and whose Content-Length, when the backend sends one, is at least gzip-min-length, to HTTP/1.1 and HTTP/2 clients whose Accept-Encoding takes gzip (no parameter, or a first parameter q= above 0), unless the backend already encoded it or gzip-disable matches the User-Agent; as nginx: Content-Length and Accept-Ranges dropped, a strong ETag made weak, `Vary: Accept-Encoding` on every response of a compressible type, a HEAD answered with the head a GET gets, 204/304 untouched, each piece the backend sends flushed at once (ingress-nginx streams: proxy-buffering off). `$body_bytes_sent` counts the compressed bytes',
  },
  {
    names: ['gzip-level', 'gzip-min-length', 'gzip-types'],
    status: 'implemented',
    values: "1, 256, ingress-nginx's list",
    note: 'level 1-9; bytes; space-separated MIME types (`*`: any). A bad level or length keeps the default with a warning',
  },
  {
    names: ['gzip-disable'],
    status: 'implemented',
    values: 'none',
    note: "space-separated regular expressions matched case-insensitively against the User-Agent (`msie6`: MSIE 4-6), as nginx's gzip_disable; an unusable one is left out with a warning",
  },
  {
    names: ['enable-brotli', 'brotli-level', 'brotli-min-length', 'brotli-types'],
    status: 'implemented',
    values: "false, 4, 20, ingress-nginx's list",
    note: "brotli (Node's zlib) on the same terms as gzip, chosen over gzip when the client takes `br`, as the brotli module runs before nginx's gzip; level 0-11",
  },
  {
    names: ['ssl-early-data'],
    status: 'refused',
    note: `${NOT_YET}: TLS 1.3 0-RTT data is never accepted (Node's TLS server has no early data)`,
  },
  {
    names: ['ssl-dh-param'],
    status: 'implemented',
    values: 'none',
    note: "`namespace/name` of a Secret whose `dhparam.pem` holds DH parameters (`openssl dhparam 4096`): the DHE suites of ssl-ciphers (with an RSA certificate, TLS 1.2) become available, as nginx's ssl_dhparam. A missing Secret or key is a warning and no DHE suite is offered (as without the key); parameters OpenSSL refuses are `INVALID_TLS_SETTINGS` and every handshake is refused. The controller watches the Secret",
  },
  {
    names: ['use-geoip', 'use-geoip2', 'geoip2-autoreload-in-minutes'],
    status: 'refused',
    note: 'keepip has no GeoIP databases or variables',
  },
  {
    names: ['nginx-status-ipv4-whitelist', 'nginx-status-ipv6-whitelist'],
    status: 'refused',
    note: 'keepip has no nginx status page',
    instead: '`--metrics` (Prometheus `/metrics` and `/healthz`)',
  },
  // --- nginx internals: nothing a client or backend observes changes.
  {
    names: [
      'worker-cpu-affinity',
      'max-worker-open-files',
      'enable-multi-accept',
      'reuse-port',
      'enable-aio-write',
      'enable-serial-reloads',
      'lua-shared-dicts',
      'debug-connections',
      'map-hash-bucket-size',
      'server-name-hash-bucket-size',
      'server-name-hash-max-size',
      'proxy-headers-hash-bucket-size',
      'proxy-headers-hash-max-size',
      'variables-hash-bucket-size',
      'variables-hash-max-size',
      'grpc-buffer-size-kb',
      'proxy-buffering',
      'proxy-buffer-size',
      'proxy-buffers-number',
      'proxy-busy-buffers-size',
      'proxy-max-temp-file-size',
      'ssl-buffer-size',
      'default-type',
    ],
    status: 'no-effect',
    note: `${NGINX_INTERNAL}: keepip runs Node processes (worker-processes of them) that stream requests and responses and keep no nginx tables`,
  },
  {
    names: ['bind-address', 'bind-address-ipv4', 'bind-address-ipv6', 'disable-ipv6', 'disable-ipv6-dns'],
    status: 'no-effect',
    note: 'where nginx listens and resolves: keepip listens where `--http` / `--https` say',
  },
  {
    names: ['access-log-path', 'http-access-log-path', 'error-log-path'],
    status: 'no-effect',
    note: 'where nginx writes its logs: keepip writes the access log where `--access-log` says and the error log to stderr',
  },
  {
    names: ['stream-access-log-path'],
    status: 'no-effect',
    note: "where nginx's stream module writes its connection log: keepip writes the tcp- and udp-services lines with the controller's access log (stdout)",
  },
  {
    names: ['enable-auth-access-log'],
    status: 'no-effect',
    note: 'auth subrequests are not requests of their own in keepip: they are never access-logged (the default `false`)',
  },
  {
    names: ['forwarded-for-proxy-protocol-header'],
    status: 'no-effect',
    note: "the name of an internal header nginx uses between its own listeners; keepip has none, and never passes a client's `X-Forwarded-For-Proxy-Protocol` on (ingress-nginx overwrites it with use-proxy-protocol and use-forwarded-headers)",
  },
  {
    names: ['relative-redirects'],
    status: 'implemented',
    values: 'false',
    note: 'the default of the annotation',
  },
  {
    names: ['app-root'],
    status: 'no-effect',
    note: "a setting of nginx's own redirects: keepip makes none beyond ingress-nginx's (app-root is an annotation)",
  },
  // --- Refused by design.
  {
    names: [
      'http-snippet',
      'main-snippet',
      'server-snippet',
      'location-snippet',
      'stream-snippet',
      'global-auth-snippet',
      'modsecurity-snippet',
    ],
    status: 'refused',
    note: SNIPPET_REASON,
    instead: 'express it with the keys and annotations keepip implements',
  },
  {
    names: ['enable-modsecurity', 'enable-owasp-modsecurity-crs'],
    status: 'refused',
    note: 'keepip has no web application firewall: requests are NOT inspected',
    instead: 'a WAF in front of the load balancer or beside the backend',
  },
  {
    names: ['enable-opentelemetry', 'opentelemetry-trust-incoming-span', 'opentelemetry-operation-name'],
    status: 'implemented',
    values: 'false, true, none',
    note: "OpenTelemetry for every location (an Ingress's enable-opentelemetry overrides it): one SERVER span per request as ingress-nginx's nginx module makes it (attributes http.method, http.flavor, http.target, http.host, http.server_name, http.status_code, http.scheme; instrumentation scope `nginx`), started when the request arrives, also for requests an access rule refuses; its parent the request's `traceparent` when trusted; the backend gets the span's `traceparent`/`tracestate` (also when not sampled, with flags 00). The span's name: opentelemetry-operation-name, else the Ingress path",
  },
  {
    names: ['otlp-collector-host', 'otlp-collector-port'],
    status: 'implemented',
    values: 'none, 4317',
    note: "where spans go, over OTLP/gRPC without TLS (the collector's 4317), as ingress-nginx's module. An IP address or a DNS name; without one (or an invalid one, warned) spans are made and propagated but not exported. Export failures are an error log line at most once a minute",
  },
  {
    names: ['otel-service-name', 'otel-sampler', 'otel-sampler-ratio', 'otel-sampler-parent-based'],
    status: 'implemented',
    values: 'nginx, AlwaysOn, 0.01, true',
    note: "the resource's `service.name`; the sampler: AlwaysOn, AlwaysOff or TraceIdRatioBased with the ratio (0 to 1), inside a parent-based sampler unless otel-sampler-parent-based is false (then a sampled parent does not force sampling). Invalid values keep the default, warned",
  },
  {
    names: ['otel-max-queuesize', 'otel-schedule-delay-millis', 'otel-max-export-batch-size'],
    status: 'implemented',
    values: '2048, 5000, 512',
    note: 'the batch span processor: spans queued at most (more are dropped), milliseconds between exports, spans per export (at most the queue size). A change of any exporter setting makes a new exporter at the next request; the old one exports what it holds and stops',
  },
  {
    names: ['opentelemetry-config'],
    status: 'no-effect',
    note: "the path of the configuration file ingress-nginx writes for its nginx module: keepip reads the ConfigMap's otel-* keys themselves",
  },
  {
    names: [
      'jaeger-collector-host',
      'jaeger-collector-port',
      'jaeger-endpoint',
      'jaeger-service-name',
      'jaeger-propagation-format',
      'jaeger-sampler-type',
      'jaeger-sampler-param',
      'jaeger-sampler-host',
      'jaeger-sampler-port',
      'jaeger-trace-context-header-name',
      'jaeger-debug-header',
      'jaeger-baggage-header',
      'jaeger-trace-baggage-header-prefix',
      'jaeger-tracer-baggage-header-prefix',
    ],
    status: 'refused',
    note: 'the Jaeger tracer (removed from ingress-nginx in 1.10 with OpenTracing): keepip exports OpenTelemetry only',
    instead: 'enable-opentelemetry with otlp-collector-host (Jaeger accepts OTLP on 4317)',
  },
];

/** One name's entry, by name. */
export type CatalogIndex = ReadonlyMap<string, CatalogEntry>;

function indexOf(catalog: readonly CatalogEntry[]): CatalogIndex {
  const index = new Map<string, CatalogEntry>();
  for (const entry of catalog) for (const name of entry.names) index.set(name, entry);
  return index;
}

export const ANNOTATION_INDEX: CatalogIndex = indexOf(ANNOTATION_CATALOG);
export const CONFIGMAP_INDEX: CatalogIndex = indexOf(CONFIGMAP_CATALOG);

/** The names of a catalog with a status. */
export function namesWithStatus(catalog: readonly CatalogEntry[], status: CatalogStatus): string[] {
  return catalog.filter((e) => e.status === status).flatMap((e) => e.names);
}

/** Levenshtein distance, bounded: stops counting past `max` (returns max + 1). */
export function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    let best = i;
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      const value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      current.push(value);
      if (value < best) best = value;
    }
    if (best > max) return max + 1;
    previous = current;
  }
  return previous[b.length]!;
}

/** The known name nearest to an unknown one (a typo), or null when none is close. */
export function nearestName(name: string, index: CatalogIndex): string | null {
  const max = Math.max(2, Math.floor(name.length / 4));
  let best: string | null = null;
  let bestDistance = max + 1;
  for (const known of index.keys()) {
    const d = editDistance(name, known, max);
    if (d < bestDistance) {
      best = known;
      bestDistance = d;
    }
  }
  return best;
}

/** The text of the issue for a catalogued name that is not implemented. */
export function catalogMessage(entry: CatalogEntry): string {
  if (entry.status === 'no-effect') return `accepted, no effect: ${entry.note}`;
  return `refused: ${entry.note}${entry.instead ? `. The keepip way: ${entry.instead}` : ''}`;
}
