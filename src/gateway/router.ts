// Host and path routing with ingress-nginx 1.12 priority, compiled once per config snapshot.
//
// Hosts: an exact name first, then a wildcard `*.<suffix>` matching exactly one leading label
// (ingress-nginx renders it as `~^(?<subdomain>[\w-]+)\.<suffix>$`), then the default server `_`
// (the rules without a host), else the default backend (404 unless one is configured).
// Paths, with nginx's location algorithm over the normalised $uri:
//   1. an Exact path equal to $uri wins;
//   2. the longest element-wise Prefix match is remembered (Prefix without regex, which is also what
//      an ImplementationSpecific path is: `/foo` matches `/foo`, `/foo/`, `/foo/bar`, not `/foobar`;
//      `/foo/` would match `/foo`, but auto_redirect answers that first);
//   3. regex locations (use-regex, or a rewrite on the host) are tried in model order,
//      case-insensitive and anchored at the start; the first match wins;
//   4. else the remembered prefix; else the host's catch-all, which is the default backend.
// Before step 1, nginx's auto_redirect (slashRedirectsOf): a 301 to the name of a location ending in `/`
// for that name without its `/`, on hosts without regex locations.
// Redirects come before access checks, in nginx's order: app-root (server level, $uri = /),
// permanent-/temporal-redirect (the location's `return`), a rewrite-target that is an absolute URL
// (302), then ssl-redirect / force-ssl-redirect. server-alias names are more names of a host;
// from-to-www-redirect's other name is a server of its own that only redirects.

import { asciiCaselessRegExp, caselessRegExp } from '../config/caseless-regex.ts';
import { backtrackingRisk } from '../config/regex-backtracking.ts';
import type {
  BackendRef,
  ConfigIssue,
  GatewayModel,
  GatewaySettings,
  LocationModel,
  SourceRangeModel,
  VirtualHostModel,
} from '../config/model.ts';
import { DEFAULT_UPSTREAM_NAME } from '../config/model.ts';
import { DEFAULT_SERVER_SETTINGS } from '../config/server-settings.ts';
import { ingressNginxOrder } from '../config/location-order.ts';
import { translatePcre } from '../config/pcre-translate.ts';
import { certificateCovers } from '../k8s/certificate-names.ts';
import { type AccessDecision, type AccessPolicy, compileAccessPolicy } from '../net/access-policy.ts';
import { type CompiledCanary, compileCanary } from './canary.ts';
import { type CompiledCors, compileCors } from './cors.ts';
import { UNSENDABLE_VALUE } from './header-value.ts';
import { nginxRefusesHost, normalizeHost, wildcardSuffix } from './host.ts';
import { appRootLocation, httpsRedirectLocation, redirectsToHttps } from './redirects.ts';
import { compileServerFilters, type ServerFilters } from './server-filters.ts';
import { compileHeaderTemplate, type HeaderTemplate, namesVariables } from './header-templates.ts';
import {
  normalizePath,
  parseRequestTarget,
  type RequestTarget,
  type RequestTargetErrorCode,
} from './request-target.ts';
import { type CompiledResponseRewrite, compileResponseRewrite } from './response-rewrite.ts';
import { applyRewrite, type CompiledRewrite, compileIngressRegex, compileRewrite } from './rewrite.ts';

/** nginx's $server_name of the default server (rules without a host). */
export const DEFAULT_SERVER_NAME = '_';

export interface MatchedRoute {
  /** The virtual host's name (`*.example.com` for wildcards), `_` for the default server. */
  serverName: string;
  vhost: VirtualHostModel;
  location: LocationModel;
  /** block-cidrs from the settings, then the location's deny and allow lists. */
  policy: AccessPolicy;
  /** $proxy_upstream_name: `<namespace>-<service>-<port>`, or `upstream-default-backend`. */
  upstreamName: string;
  /** Which rule matched, for the decision trace. */
  matchedBy: 'exact' | 'prefix' | 'regex';
  /** enable-cors, compiled; null when off. */
  cors: CompiledCors | null;
  /** add-headers then custom-headers, merged once per snapshot; null when neither. */
  responseHeaders: Readonly<Record<string, string>> | null;
  /** The same for requests that came over TLS: with Strict-Transport-Security (hsts). */
  httpsResponseHeaders: Readonly<Record<string, string>> | null;
  /** The canary of the location's backend, compiled; null when none. */
  canary: CompiledCanary | null;
  /** proxy-redirect-* / proxy-cookie-*: what changes in the backend's response head; null when none. */
  responseRewrite: CompiledResponseRewrite | null;
}

/**
 * A rewrite capture of the client's decoded path that no header value can carry (a CR, another control
 * byte) went into x-forwarded-prefix: the request is answered 400 where it would have gone upstream.
 */
export interface CaptureRefusal {
  code: 'TARGET_CAPTURE_UNSENDABLE';
  message: string;
}

const CAPTURE_REFUSAL: CaptureRefusal = Object.freeze({
  code: 'TARGET_CAPTURE_UNSENDABLE',
  message: 'a rewrite capture of the path holds a control character, which x-forwarded-prefix cannot carry',
});

export type RouteDecision =
  | {
      kind: 'redirect';
      status: number;
      location: string;
      serverName: string;
      route: MatchedRoute;
      /**
       * When nginx answers it; absent: in the location's rewrite phase (its `return`s, ssl-redirect).
       * 'server': app-root, the server's own `if ($uri = /)`, before a location is found. 'find-config':
       * nginx's auto_redirect (see slashRedirectsOf), answered when the location is found, before any
       * directive of it runs (no CORS, no `set`: the log has no upstream name), made absolute by its
       * absolute_redirect / port_in_redirect.
       */
      phase?: 'server' | 'find-config';
    }
  | {
      kind: 'proxy';
      route: MatchedRoute;
      upstreamPath: string;
      /**
       * Other locations of the same host that a backend could take this path for (another case, `;`
       * parameters dropped, `\` read as `/`, escapes left undecoded, a leading `//x` read as a
       * URL's authority, a trailing slash dropped). Their access rules must allow the client too: the router follows nginx,
       * but the backend, not nginx, decides what a path means.
       */
      guards: readonly MatchedRoute[];
      /** x-forwarded-prefix of a location that rewrites, its `$N` filled in; null: none (or refused). */
      forwardedPrefix: string | null;
      /** Set when a capture made x-forwarded-prefix unsendable: answered 400 after the access phase. */
      refusal: CaptureRefusal | null;
    }
  | { kind: 'not-found'; serverName: string; backend: BackendRef | null }
  /** from-to-www-redirect: the other name's server answers a redirect to the host (no location). */
  | { kind: 'host-redirect'; status: number; location: string; serverName: string }
  | { kind: 'bad-request'; code: RequestTargetErrorCode | 'HOST_INVALID' | 'HOST_MISSING'; message: string };

const NO_GUARDS: readonly MatchedRoute[] = Object.freeze([]);

export interface RouteRequest {
  /** The Host header as received (or the authority of an absolute-form target). */
  host: string;
  /** The raw request-target, query included. */
  path: string;
  /**
   * The scheme the client used: the connection's, or ingress-nginx's $pass_access_scheme when
   * forwarded headers from a trusted peer or a PROXY header to port 443 say https
   * (see `forwardedView` in upstream-headers.ts).
   */
  scheme: 'http' | 'https';
  /** The port the client used ($pass_port): from-to-www-redirect keeps it. Default: the scheme's. */
  port?: string;
}

interface CompiledLocation {
  readonly model: LocationModel;
  readonly route: MatchedRoute;
  /** For prefix matching: the path without a trailing `/` ('' for `/`). */
  readonly prefix: string;
  readonly regex: RegExp | null;
  readonly rewrite: CompiledRewrite | null;
  readonly httpsRedirect: boolean;
  /** permanent-/temporal-redirect, decided once per snapshot. */
  readonly redirect: RouteDecision | null;
  /** x-forwarded-prefix (only with a rewrite, as ingress-nginx): literal parts and capture numbers. */
  readonly forwardedPrefix: readonly (string | number)[] | null;
}

interface SlashRedirect {
  /** The location's name as nginx escapes it for the Location header. */
  readonly to: string;
  /** The answer without a query (one per snapshot). */
  readonly decision: RouteDecision & { kind: 'redirect' };
}

interface CompiledVirtualHost {
  readonly serverName: string;
  /** Some location has access rules: other readings of a path are checked against them. */
  readonly guarded: boolean;
  /** Exact and prefix locations keyed case-folded, for the readings of a case-insensitive backend. */
  readonly foldedExact: ReadonlyMap<string, CompiledLocation>;
  readonly foldedPrefixes: readonly { readonly prefix: string; readonly location: CompiledLocation }[];
  readonly model: VirtualHostModel;
  readonly exact: ReadonlyMap<string, CompiledLocation>;
  /** Prefix locations, longest first (stable: the first of equal paths wins). */
  readonly prefixes: readonly CompiledLocation[];
  /** Regex locations in model order. */
  readonly regexes: readonly CompiledLocation[];
  /** nginx's auto_redirect: a $uri -> the location named $uri + `/` that answers it with a 301; null: none. */
  readonly slashRedirects: ReadonlyMap<string, SlashRedirect> | null;
  /** The first location carrying app-root (ingress-nginx emits one server-level `if` per location; the first returns). */
  readonly appRoot: { readonly path: string; readonly location: CompiledLocation } | null;
  /** server-alias names (exact or `*.suffix`, lower case) that the host's certificate names. */
  readonly certifiedAliases: ReadonlySet<string>;
  readonly notFound: RouteDecision;
}

export interface CompiledRoutes {
  readonly exactHosts: ReadonlyMap<string, CompiledVirtualHost>;
  /** Keyed by the suffix after `*.`. */
  readonly wildcardHosts: ReadonlyMap<string, CompiledVirtualHost>;
  /** server-alias `~regex` names, tried after exact and wildcard names. */
  readonly regexHosts: readonly { readonly regex: RegExp; readonly vhost: CompiledVirtualHost }[];
  /** from-to-www-redirect: the other name -> the host it redirects to. */
  readonly hostRedirects: ReadonlyMap<string, string>;
  /**
   * add-headers: on every response, the gateway's own included; null when none. Values naming
   * variables are in addHeaderTemplates instead (an empty object here then marks add-headers present).
   */
  readonly addHeaders: Readonly<Record<string, string>> | null;
  /** add-headers whose values name variables, expanded when each head is written; null when none. */
  readonly addHeaderTemplates: readonly HeaderTemplate[] | null;
  /** The same for requests that came over TLS: with Strict-Transport-Security (hsts). */
  readonly httpsAddHeaders: Readonly<Record<string, string>> | null;
  /** block-user-agents, block-referers, skip-access-log-urls. */
  readonly filters: ServerFilters;
  /** The default server `_`: the rules without a host. */
  readonly defaultServer: CompiledVirtualHost | null;
  readonly defaultBackend: BackendRef | null;
  readonly redirectCode: number;
  readonly notFound: RouteDecision;
  /** Problems found while compiling (invalid regexes are errors: such a snapshot should not serve). */
  readonly issues: readonly ConfigIssue[];
}

function issueFor(
  severity: ConfigIssue['severity'],
  code: ConfigIssue['code'],
  message: string,
  location: LocationModel | null,
  field?: string,
): ConfigIssue {
  const issue: ConfigIssue = { severity, code, message };
  if (location !== null) issue.origin = location.ingressOrigin;
  if (field !== undefined) issue.field = field;
  return issue;
}

const ANNOTATION = 'metadata.annotations["nginx.ingress.kubernetes.io/';

/** A list that denies everyone: used for a location whose path regex cannot be compiled. */
function failClosed(raw: string, error: string): SourceRangeModel {
  return { valid: false, raw, error, from: 'annotation' };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * add-headers, and with server-tokens a Server header of keepip's (nginx's own `Server: nginx/…`):
 * on every answer, the gateway's own included. Without server-tokens there is none (ingress-nginx's
 * more_clear_headers Server); with allow-backend-server-header too, the backend's passes instead.
 */
function addHeadersOf(settings: GatewaySettings): Readonly<Record<string, string>> | null {
  // Every location of a snapshot asks: made once per settings (splitting reads each value).
  const known = ADD_HEADERS.get(settings);
  if (known !== undefined) return known;
  const server = settings.server ?? DEFAULT_SERVER_SETTINGS;
  const fixed = fixedAddHeaders(settings.addHeaders);
  const headers =
    !server.serverTokens || server.allowBackendServerHeader
      ? fixed
      : Object.freeze({ ...fixed, server: 'keepip' });
  ADD_HEADERS.set(settings, headers);
  return headers;
}

const ADD_HEADERS = new WeakMap<GatewaySettings, Readonly<Record<string, string>> | null>();

/** add-headers without the values that name variables (those are templates). */
function fixedAddHeaders(
  headers: Readonly<Record<string, string>> | undefined,
): Readonly<Record<string, string>> | null {
  if (headers === undefined) return null;
  const fixed: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (!namesVariables(value)) fixed[name] = value;
  return Object.freeze(fixed);
}

function addHeaderTemplatesOf(settings: GatewaySettings): readonly HeaderTemplate[] | null {
  const templates = Object.entries(settings.addHeaders ?? {})
    .filter(([, value]) => namesVariables(value))
    .map(([name, value]) => compileHeaderTemplate(name, value));
  return templates.length === 0 ? null : templates;
}

/** The same headers over TLS: with hsts (Strict-Transport-Security) when it is on, else themselves. */
function withHsts(
  settings: GatewaySettings,
  headers: Readonly<Record<string, string>> | null,
): Readonly<Record<string, string>> | null {
  const hsts = (settings.server ?? DEFAULT_SERVER_SETTINGS).hsts;
  return hsts === null ? headers : Object.freeze({ ...headers, 'strict-transport-security': hsts });
}

/**
 * The headers of answers no location gives (the default server's 404, a 400, a server-level refusal):
 * add-headers, and over TLS hsts, which ingress-nginx's default server `_` sends on its answers too.
 */
function serverHeadersOf(
  settings: GatewaySettings,
): Pick<CompiledRoutes, 'addHeaders' | 'httpsAddHeaders' | 'addHeaderTemplates'> {
  const addHeaders = addHeadersOf(settings);
  return {
    addHeaders,
    httpsAddHeaders: withHsts(settings, addHeaders),
    addHeaderTemplates: addHeaderTemplatesOf(settings),
  };
}

/**
 * The headers a location sets on every answer (nginx's more_set_headers): add-headers, then
 * custom-headers; over TLS also hsts, replacing the backend's. ingress-nginx's header filter
 * (lua_ingress.lua header()) means to send it only where a certificate is configured for the request,
 * but tests the function `certificate_configured_for_current_request` without calling it (since
 * 2019), so every https answer carries it, default certificate included; so does keepip's.
 */
function responseHeadersOf(
  settings: GatewaySettings,
  location: LocationModel,
): Pick<MatchedRoute, 'responseHeaders' | 'httpsResponseHeaders'> {
  const responseHeaders =
    location.customHeaders === undefined
      ? addHeadersOf(settings)
      : Object.freeze({ ...addHeadersOf(settings), ...location.customHeaders });
  return { responseHeaders, httpsResponseHeaders: withHsts(settings, responseHeaders) };
}

function compileLocation(
  model: GatewayModel,
  vhost: VirtualHostModel,
  serverName: string,
  location: LocationModel,
  issues: ConfigIssue[],
): CompiledLocation {
  const settings = model.settings;
  let allow = location.allow ?? settings.defaultAllow;
  const deny = location.deny ?? settings.defaultDeny;
  let regex: RegExp | null = null;
  if (location.regex !== null) {
    const compiled = compileIngressRegex(location.regex, true);
    if (compiled.ok) {
      regex = compiled.regex;
    } else {
      // Fail closed: the location still claims its literal path, and answers 503 to everyone.
      issues.push(
        issueFor(
          'error',
          compiled.error.code,
          compiled.error.message,
          location,
          'spec.rules[].http.paths[].path',
        ),
      );
      regex = caselessRegExp(`^${escapeRegex(location.regex)}`);
      allow = failClosed(location.regex, compiled.error.message);
    }
  }
  let rewrite: CompiledRewrite | null = null;
  const rw = compileRewrite(location.regex ?? location.path, location.rewriteTarget);
  if (rw.ok) {
    rewrite = rw.rewrite;
  } else {
    issues.push(
      issueFor('warning', rw.error.code, rw.error.message, location, `${ANNOTATION}rewrite-target"]`),
    );
  }
  const policy = compileAccessPolicy({ block: settings.blockCidrs, deny, allow });
  const route: MatchedRoute = {
    serverName,
    vhost,
    location,
    policy,
    upstreamName: location.backend?.upstreamName ?? DEFAULT_UPSTREAM_NAME,
    matchedBy: regex !== null ? 'regex' : location.pathType === 'Exact' ? 'exact' : 'prefix',
    cors: location.cors === undefined ? null : compileCors(location.cors),
    canary: location.canary === undefined ? null : compileCanary(location.canary),
    responseRewrite: compileResponseRewrite(location),
    ...responseHeadersOf(settings, location),
  };
  const path = location.path;
  const redirect: RouteDecision | null =
    location.redirect === undefined
      ? null
      : Object.freeze({
          kind: 'redirect',
          status: location.redirect.code,
          location: location.redirect.url,
          serverName,
          route,
        });
  return {
    model: location,
    route,
    prefix: path.length > 1 && path.endsWith('/') ? withoutTrailingSlashes(path) : path === '/' ? '' : path,
    regex,
    rewrite,
    httpsRedirect: redirectsToHttps(location, vhost),
    redirect,
    forwardedPrefix:
      rewrite !== null && !rewrite.redirect && location.xForwardedPrefix !== undefined
        ? prefixParts(location.xForwardedPrefix)
        : null,
  };
}

/** `/a/$1/b` -> ['/a/', 1, '/b']: ingress-nginx's x-forwarded-prefix may name the rewrite's captures. */
function prefixParts(value: string): (string | number)[] {
  return value.split(/\$(\d)/).map((part, i) => (i % 2 === 1 ? Number(part) : part));
}

/**
 * The X-Forwarded-Prefix of a request to `loc`, captures from the rewrite's match of `uri`. Only the
 * captures are checked: the literal parts are the annotation's, validated at load.
 */
function forwardedPrefixOf(loc: CompiledLocation, uri: string): string | null | CaptureRefusal {
  const parts = loc.forwardedPrefix;
  if (parts === null) return null;
  if (parts.length === 1) return parts[0] as string;
  const m = loc.rewrite!.pattern.exec(uri);
  let out = '';
  for (const part of parts) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const captured = m?.[part] ?? '';
    // The decoded path can hold a CR or another control byte; nginx would write it raw into the head.
    if (UNSENDABLE_VALUE.test(captured)) return CAPTURE_REFUSAL;
    out += captured;
  }
  return out;
}

function compileVirtualHost(
  model: GatewayModel,
  vhost: VirtualHostModel,
  serverName: string,
  issues: ConfigIssue[],
): CompiledVirtualHost {
  const exact = new Map<string, CompiledLocation>();
  const prefixes: CompiledLocation[] = [];
  const regexes: CompiledLocation[] = [];
  const compiledOf = new Map<LocationModel, CompiledLocation>();
  for (const location of vhost.locations) {
    const compiled = compileLocation(model, vhost, serverName, location, issues);
    compiledOf.set(location, compiled);
    if (compiled.regex !== null) {
      regexes.push(compiled);
    } else if (location.pathType === 'Exact') {
      if (!exact.has(location.path)) exact.set(location.path, compiled);
    } else {
      prefixes.push(compiled);
    }
  }
  // ingress-nginx writes one `if ($uri = /)` per location with an app-root, in its own location order:
  // the first of that order answers.
  const rooted = ingressNginxOrder(vhost.locations).find((l) => l.appRoot !== null && l.appRoot !== '');
  const appRoot: CompiledVirtualHost['appRoot'] =
    rooted === undefined ? null : { path: rooted.appRoot!, location: compiledOf.get(rooted)! };
  // Longest first; Array.prototype.sort is stable, so among equal paths the model's order holds.
  prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  const foldedExact = new Map<string, CompiledLocation>();
  for (const [path, loc] of exact)
    if (!foldedExact.has(path.toLowerCase())) foldedExact.set(path.toLowerCase(), loc);
  const all = [...exact.values(), ...prefixes, ...regexes];
  return {
    serverName,
    // Limits and auth (LocationModel.access) guard a path as much as source ranges do.
    guarded: all.some(
      (loc) => loc.route.policy.hasRules || loc.route.policy.failClosed || loc.model.access !== undefined,
    ),
    foldedExact,
    foldedPrefixes: prefixes.map((location) => ({ prefix: location.prefix.toLowerCase(), location })),
    model: vhost,
    exact,
    prefixes,
    regexes,
    slashRedirects:
      regexes.length === 0 ? slashRedirectsOf([...exact.values(), ...prefixes], serverName) : null,
    appRoot,
    certifiedAliases: certifiedAliasesOf(vhost),
    notFound: Object.freeze({ kind: 'not-found', serverName, backend: model.defaultBackend }),
  };
}

/**
 * nginx's auto_redirect as ingress-nginx's locations give it (updateServerLocations): a Prefix path `P`
 * other than `/` is `location P/` plus `location = P` (the copy's name as written: `/foo/` for `/foo/`;
 * none when an Exact `P` exists), an Exact path `= P` (an ImplementationSpecific path is a Prefix one). A
 * proxying location whose name ends in `/` answers a $uri of that name without its `/` with a 301 to the
 * name, unless a location is named that $uri itself (an exact one, or a prefix one, which nginx finds
 * first). A denied location (`return 503`, no proxy_pass) has none; only hosts without regex locations.
 */
function slashRedirectsOf(
  locations: readonly CompiledLocation[],
  serverName: string,
): ReadonlyMap<string, SlashRedirect> | null {
  const exactNames = new Map<string, CompiledLocation>();
  const prefixNames = new Map<string, CompiledLocation>();
  const name = (names: Map<string, CompiledLocation>, path: string, loc: CompiledLocation) => {
    if (!names.has(path)) names.set(path, loc);
  };
  for (const loc of locations) if (loc.model.pathType === 'Exact') name(exactNames, loc.model.path, loc);
  for (const loc of locations) {
    const { path, pathType } = loc.model;
    if (pathType === 'Exact') continue;
    if (pathType === 'Prefix' && path !== '/') {
      name(prefixNames, path.endsWith('/') ? path : `${path}/`, loc);
      name(exactNames, path, loc);
    } else name(prefixNames, path, loc);
  }
  const out = new Map<string, SlashRedirect>();
  for (const [path, loc] of [...exactNames, ...prefixNames]) {
    const uri = path.slice(0, -1);
    if (!path.endsWith('/') || uri === '' || exactNames.has(uri) || prefixNames.has(uri) || out.has(uri))
      continue;
    // The exact location of the name answers, else the prefix one (ngx_http_core_find_static_location).
    const by = exactNames.get(path) ?? loc;
    if (by.route.policy.failClosed || (by.model.access?.denied ?? null) !== null) continue;
    const to = escapeLocationName(path);
    const decision = Object.freeze({
      kind: 'redirect',
      status: 301,
      location: to,
      serverName,
      route: by.route,
      phase: 'find-config',
    } as const);
    out.set(uri, { to, decision });
  }
  return out.size === 0 ? null : out;
}

/** nginx's escaped_name (ngx_escape_uri, NGX_ESCAPE_URI): controls, space, `"#%<>?\^\`{|}`, DEL and non-ASCII. */
function escapeLocationName(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    out +=
      byte <= 0x20 || byte >= 0x7f || '"#%<>?\\^`{|}'.includes(c)
        ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
        : c;
  }
  return out;
}

/** The exact and `*.` aliases the host's certificate names (ingress-nginx's configureCertificates). */
function certifiedAliasesOf(vhost: VirtualHostModel): ReadonlySet<string> {
  const tls = vhost.tls;
  if (tls === null || vhost.aliases === undefined) return new Set();
  const names = vhost.aliases.filter((a) => !a.startsWith('~') && certificateCovers(tls.certPem, a));
  return new Set(names.map((a) => a.toLowerCase()));
}

/**
 * ssl-redirect needs a certificate configured for the name the client asked for (lua_ingress's
 * configured_for_current_request): the host's own names have the host's; an alias has it only when the
 * certificate names the alias, and a `~regex` alias never (no name of it is in that table).
 */
function certifiedName(routes: CompiledRoutes, vhost: CompiledVirtualHost, host: string): boolean {
  const own = vhost.model.host;
  if (vhost.model.aliases === undefined || vhost.model.aliases.length === 0 || host === own) return true;
  if (routes.exactHosts.get(host) === vhost) return vhost.certifiedAliases.has(host);
  const suffix = wildcardSuffix(host);
  if (suffix !== null && routes.wildcardHosts.get(suffix) === vhost) {
    return `*.${suffix}` === own || vhost.certifiedAliases.has(`*.${suffix}`);
  }
  return false;
}

/** Compiles the gateway model's routes: once per config snapshot. */
export function compileRoutes(model: GatewayModel): CompiledRoutes {
  const issues: ConfigIssue[] = [];
  const exactHosts = new Map<string, CompiledVirtualHost>();
  const wildcardHosts = new Map<string, CompiledVirtualHost>();
  let defaultServer: CompiledVirtualHost | null = null;
  for (const vhost of model.virtualHosts) {
    if (vhost.host === '') {
      if (defaultServer === null)
        defaultServer = compileVirtualHost(model, vhost, DEFAULT_SERVER_NAME, issues);
      continue;
    }
    const wildcard = vhost.host.startsWith('*.');
    const name = normalizeHost(wildcard ? vhost.host.slice(2) : vhost.host);
    if (name === null || name === '' || name.includes('*')) {
      issues.push(
        issueFor(
          'warning',
          'ROUTE_INVALID_HOST',
          `host ${JSON.stringify(vhost.host)} can never match a request; ignored`,
          vhost.locations[0] ?? null,
          'spec.rules[].host',
        ),
      );
      continue;
    }
    const table = wildcard ? wildcardHosts : exactHosts;
    if (table.has(name)) {
      issues.push(
        issueFor(
          'warning',
          'ROUTE_DUPLICATE_HOST',
          `host ${JSON.stringify(vhost.host)} appears twice; the first is used`,
          vhost.locations[0] ?? null,
          'spec.rules[].host',
        ),
      );
      continue;
    }
    table.set(name, compileVirtualHost(model, vhost, wildcard ? `*.${name}` : name, issues));
  }
  const names = compileHostNames(model, { exactHosts, wildcardHosts, defaultServer }, issues);
  return {
    exactHosts,
    wildcardHosts,
    ...names,
    ...serverHeadersOf(model.settings),
    filters: compileServerFilters(model.settings.server ?? DEFAULT_SERVER_SETTINGS),
    defaultServer,
    defaultBackend: model.defaultBackend,
    redirectCode: model.settings.httpRedirectCode,
    notFound: Object.freeze({
      kind: 'not-found',
      serverName: DEFAULT_SERVER_NAME,
      backend: model.defaultBackend,
    }),
    issues,
  };
}

/**
 * server-alias names into the host tables (exact and `*.` names beside the hosts, never over one;
 * `~regex` ones in a list of their own) and from-to-www-redirect's other names.
 */
function compileHostNames(
  model: GatewayModel,
  tables: {
    exactHosts: Map<string, CompiledVirtualHost>;
    wildcardHosts: Map<string, CompiledVirtualHost>;
    defaultServer: CompiledVirtualHost | null;
  },
  issues: ConfigIssue[],
): Pick<CompiledRoutes, 'regexHosts' | 'hostRedirects'> {
  const regexHosts: { regex: RegExp; vhost: CompiledVirtualHost }[] = [];
  const hostRedirects = new Map<string, string>();
  const compiledOf = (host: string): CompiledVirtualHost | null => {
    if (host === '') return tables.defaultServer;
    const wildcard = host.startsWith('*.');
    const name = normalizeHost(wildcard ? host.slice(2) : host);
    if (name === null) return null;
    return (wildcard ? tables.wildcardHosts : tables.exactHosts).get(name) ?? null;
  };
  for (const vhost of model.virtualHosts) {
    const compiled = compiledOf(vhost.host);
    if (compiled === null || compiled.model !== vhost) continue;
    for (const alias of vhost.aliases ?? []) {
      if (alias.startsWith('~')) {
        const regex = aliasRegex(alias);
        if (regex.ok) regexHosts.push({ regex: regex.regex, vhost: compiled });
        else
          issues.push(
            issueFor(
              'warning',
              regex.code,
              `server-alias ${JSON.stringify(alias)} ${regex.why}; ignored`,
              vhost.locations[0] ?? null,
              `${ANNOTATION}server-alias"]`,
            ),
          );
        continue;
      }
      const wildcard = alias.startsWith('*.');
      const name = normalizeHost(wildcard ? alias.slice(2) : alias);
      const table = wildcard ? tables.wildcardHosts : tables.exactHosts;
      if (name !== null && name !== '' && !name.includes('*') && !table.has(name)) table.set(name, compiled);
    }
    if (vhost.redirectFrom !== undefined) {
      const from = normalizeHost(vhost.redirectFrom);
      if (from !== null && !hostRedirects.has(from)) hostRedirects.set(from, vhost.host);
    }
  }
  return { regexHosts, hostRedirects };
}

/** A `~` server-alias as a Host matcher; never one that can backtrack without bound (Hosts are the client's). */
function aliasRegex(
  alias: string,
):
  | { ok: true; regex: RegExp }
  | { ok: false; code: 'ROUTE_INVALID_HOST' | 'ROUTE_REGEX_BACKTRACKS'; why: string } {
  const risk = backtrackingRisk(alias.slice(1));
  if (risk !== null) return { ok: false, code: 'ROUTE_REGEX_BACKTRACKS', why: risk };
  // nginx's server_name regex is PCRE: its meaning, or refused (translatePcre).
  const translated = translatePcre(alias.slice(1));
  if (!translated.ok) return { ok: false, code: 'ROUTE_INVALID_HOST', why: translated.message };
  try {
    return { ok: true, regex: asciiCaselessRegExp(translated.js) };
  } catch {
    return { ok: false, code: 'ROUTE_INVALID_HOST', why: 'is not a regex' };
  }
}

function findVirtualHost(routes: CompiledRoutes, host: string | null): CompiledVirtualHost | null {
  return (host !== null && host !== '' ? namedVirtualHost(routes, host) : null) ?? routes.defaultServer;
}

/** The host a normalised name selects (its own name, a wildcard, a server-alias); null: none. */
function namedVirtualHost(routes: CompiledRoutes, host: string): CompiledVirtualHost | null {
  const exact = routes.exactHosts.get(host);
  if (exact !== undefined) return exact;
  if (routes.wildcardHosts.size > 0) {
    const suffix = wildcardSuffix(host);
    if (suffix !== null) {
      const wildcard = routes.wildcardHosts.get(suffix);
      if (wildcard !== undefined) return wildcard;
    }
  }
  for (const { regex, vhost } of routes.regexHosts) if (regex.test(host)) return vhost;
  return null;
}

/**
 * The host a TLS server name selects, as nginx picks the server of a handshake by SNI among the same
 * names as by Host (server-alias included); null when none does (the default server's settings apply).
 */
export function hostForServerName(routes: CompiledRoutes, servername: string): VirtualHostModel | null {
  const name = normalizeHost(servername);
  return name === null || name === '' ? null : (namedVirtualHost(routes, name)?.model ?? null);
}

/** Whether some server has `servername` among its names (a host, an alias, a wildcard, a from-to-www twin). */
export function knownServerName(routes: CompiledRoutes, servername: string | null): boolean {
  const name = servername === null ? null : normalizeHost(servername);
  if (name === null || name === '') return false;
  return namedVirtualHost(routes, name) !== null || routes.hostRedirects.has(name);
}

/** from-to-www-redirect: `<scheme>://<host>:<port><request_uri>`, one trailing `/` dropped (ngx_srv_redirect.lua). */
function hostRedirect(
  routes: CompiledRoutes,
  from: string,
  to: string,
  request: RouteTargetRequest,
): RouteDecision {
  const raw = request.target.raw;
  const uri = raw.charCodeAt(raw.length - 1) === 0x2f ? raw.slice(0, -1) : raw;
  const port = request.port ?? (request.scheme === 'https' ? '443' : '80');
  return {
    kind: 'host-redirect',
    status: routes.redirectCode,
    location: `${request.scheme}://${to}:${port}${uri}`,
    serverName: from,
  };
}

/** findLocation for a case-insensitive backend: `uri` is already lower case. */
function findLocationFolded(vhost: CompiledVirtualHost, uri: string): CompiledLocation | null {
  const exact = vhost.foldedExact.get(uri);
  if (exact !== undefined) return exact;
  for (const loc of vhost.regexes) if (loc.regex!.test(uri)) return loc;
  for (const { prefix, location } of vhost.foldedPrefixes) {
    if (prefixMatches(prefix, uri)) return location;
  }
  return null;
}

/** Whether `uri` falls under a location's `prefix` (its own, or its case-folded one): whole segments. */
function prefixMatches(prefix: string, uri: string): boolean {
  if (prefix === '') return true;
  if (!uri.startsWith(prefix)) return false;
  return uri.length === prefix.length || uri.charCodeAt(prefix.length) === 0x2f;
}

/** A segment that ends in a dot, a space or a tab (decoded), before a `/` or at the end. */
const TRAILING_DOT_OR_SPACE = /[. \t](?:\/|$)/;
const TRIMMED: ReadonlySet<number> = new Set([0x2e, 0x20, 0x09]);

/**
 * The path as Windows file systems (IIS) and suffix-pattern matchers (Spring before 5.3) read it: each
 * segment's trailing dots, spaces and tabs dropped, so `/admin.`, `/admin..` and `/admin%20` are
 * `/admin` to them. A segment of dots alone is left as it is. Null when it is the same path.
 */
function trimmedSegmentsReading(uri: string): string | null {
  if (!TRAILING_DOT_OR_SPACE.test(uri)) return null;
  const segments = uri.split('/');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    // Trimmed by hand: `[. \t]+$` backtracks over a long run of dots that a letter ends.
    let end = segment.length;
    while (end > 0 && TRIMMED.has(segment.charCodeAt(end - 1))) end--;
    if (!/^\.*$/.test(segment)) segments[i] = segment.slice(0, end);
  }
  const reading = segments.join('/');
  return reading === uri ? null : reading;
}

/**
 * The path as a lenient backend may read it: `\` as `/` (WHATWG URL, Windows servers) and path
 * parameters dropped (`/admin;x/y` is `/admin/y` to Tomcat and Spring). Null when it is the same path.
 */
function lenientReading(uri: string): string | null {
  if (!uri.includes('\\') && !uri.includes(';')) return null;
  const slashed = normalizePath(uri.replaceAll('\\', '/'));
  if (slashed === null) return null;
  const stripped = slashed.replace(/;[^/]*/g, '');
  const reading = normalizePath(stripped === '' ? '/' : stripped);
  return reading === null || reading === uri ? null : reading;
}

/**
 * The path a WHATWG URL parser reads in a target that starts with `//` or `/\`: `new URL('//x/admin',
 * base)`, the pattern of Node's documentation, takes `x` for the host and `/admin` for the path, where
 * nginx merges the slashes and matches `/x/admin`. Slashes and backslashes after the first two are
 * skipped and the authority ends at the next one, as WHATWG reads a special scheme. Null for any other
 * target. `raw` is the origin-form target as received (RequestTarget.raw).
 */
function networkPathReading(raw: string): string | null {
  const second = raw.charCodeAt(1);
  if (raw.charCodeAt(0) !== 0x2f || (second !== 0x2f && second !== 0x5c)) return null;
  const query = raw.indexOf('?');
  const end = query < 0 ? raw.length : query;
  let i = 2;
  while (i < end && isSlash(raw.charCodeAt(i))) i++;
  while (i < end && !isSlash(raw.charCodeAt(i))) i++;
  const path = raw.slice(i, end).replaceAll('\\', '/');
  return normalizePath(path === '' ? '/' : path);
}

/**
 * The path as a backend that matches it as received reads it (Express's route parameters, Node's URL
 * for `%2F`): no escape decoded, dot segments resolved only where they are written as dots. nginx
 * decodes first, so `/admin/x%2f..%2f..%2fx` and `/admin/%2e%2e/x` are `/x` to nginx and paths under
 * `/admin/` to such a backend. Null when the target has no escape (the reading is `uri` then) or the
 * reading climbs above the root.
 */
function undecodedReading(raw: string): string | null {
  const query = raw.indexOf('?');
  const path = query < 0 ? raw : raw.slice(0, query);
  if (!path.includes('%')) return null;
  // normalizePath decodes once: `%25` gives back each `%` as text, so no escape means anything to it.
  return normalizePath(path.replaceAll('%', '%25'));
}

function isSlash(c: number): boolean {
  return c === 0x2f || c === 0x5c;
}

/**
 * What a lenient backend may take `uri` (or, read as a URL, the raw target) for: see
 * RouteDecision.guards. The first is `uri` itself.
 */
function readingsOf(uri: string, raw: string): string[] {
  const readings = [uri];
  const add = (reading: string | null) => {
    if (reading !== null && !readings.includes(reading)) readings.push(reading);
  };
  add(lenientReading(uri));
  add(undecodedReading(raw));
  const network = networkPathReading(raw);
  if (network !== null) {
    add(network);
    add(lenientReading(network));
  }
  // Trailing dots and spaces of a segment dropped (Windows and IIS, suffix-pattern matchers).
  for (const reading of [...readings]) add(trimmedSegmentsReading(reading));
  // A trailing slash dropped (Express's default, Spring before 6): `/exact/` is `/exact` to them.
  for (const reading of [...readings]) {
    if (reading.length > 1 && reading.endsWith('/')) add(reading.slice(0, -1));
  }
  return readings;
}

/** The locations other than `primary` that another reading of the target lands on (see RouteDecision.guards). */
function guardsFor(
  vhost: CompiledVirtualHost,
  uri: string,
  raw: string,
  primary: CompiledLocation,
): readonly MatchedRoute[] {
  if (!vhost.guarded) return NO_GUARDS;
  const found: MatchedRoute[] = [];
  const add = (loc: CompiledLocation | null) => {
    if (loc !== null && loc !== primary && !found.includes(loc.route)) found.push(loc.route);
  };
  for (const reading of readingsOf(uri, raw)) {
    if (reading !== uri) add(findLocation(vhost, reading));
    const folded = reading.toLowerCase();
    if (folded !== reading || reading !== uri) add(findLocationFolded(vhost, folded));
  }
  return found.length === 0 ? NO_GUARDS : found;
}

function findLocation(vhost: CompiledVirtualHost, uri: string): CompiledLocation | null {
  if (uri.charCodeAt(0) !== 0x2f) return null;
  if (vhost.exact.size > 0) {
    const exact = vhost.exact.get(uri);
    if (exact !== undefined) return exact;
  }
  let prefix: CompiledLocation | null = null;
  for (const loc of vhost.prefixes) {
    if (prefixMatches(loc.prefix, uri)) {
      prefix = loc;
      break;
    }
  }
  for (const loc of vhost.regexes) {
    if (loc.regex!.test(uri)) return loc;
  }
  return prefix;
}

/** Routes one request (the raw target as received). Never throws. */
export function routeRequest(routes: CompiledRoutes, request: RouteRequest): RouteDecision {
  return routeTarget(routes, {
    host: request.host,
    target: parseRequestTarget(request.path),
    scheme: request.scheme,
    ...(request.port !== undefined ? { port: request.port } : {}),
  });
}

export interface RouteTargetRequest {
  /**
   * The Host header as received. An absolute-form target's authority takes its place (RFC 9112
   * §3.2.2): the caller must forward by the same host (see `routingHost`).
   */
  host: string;
  target: RequestTarget;
  scheme: 'http' | 'https';
  /** $pass_port, for from-to-www-redirect (default: the scheme's port). */
  port?: string;
  /**
   * $best_http_host, the https redirect's host: a trusted X-Forwarded-Host with use-forwarded-headers
   * (see `forwardedView`), else the host routed by. Default: `host`.
   */
  redirectHost?: string;
}

/** The host a request is routed and forwarded by: the absolute-form authority, else the Host header. */
export function routingHost(target: RequestTarget, hostHeader: string): string {
  return target.authority ?? hostHeader;
}

/**
 * nginx's checks of the Host header itself: an HTTP/1.1 request must carry one (RFC 9112 §3.2), and an
 * empty one is invalid. Null when the header is fine. routeTarget checks the value it routes by; with an
 * absolute-form target that is the target's authority, and the header is checked here as nginx checks
 * it whatever the target (`Host: h test` beside `GET http://a.example/` is 400 there; `Host: a@b` is not).
 */
export function hostHeaderRefusal(
  host: string | undefined,
  httpVersion: string,
  absoluteForm = false,
): RouteDecision | null {
  if (host === undefined) {
    return httpVersion === '1.0'
      ? null
      : {
          kind: 'bad-request',
          code: 'HOST_MISSING',
          message: 'client sent HTTP/1.1 request without "Host" header',
        };
  }
  return host === '' || (absoluteForm && nginxRefusesHost(host))
    ? { kind: 'bad-request', code: 'HOST_INVALID', message: 'client sent invalid host header' }
    : null;
}

/** Routes one parsed request target. Allocates only the proxy/redirect decision. */
export function routeTarget(routes: CompiledRoutes, request: RouteTargetRequest): RouteDecision {
  const target = request.target;
  if (target.error !== null)
    return { kind: 'bad-request', code: target.error.code, message: target.error.message };
  const rawHost = routingHost(target, request.host);
  const hostKey = normalizeHost(rawHost);
  if (hostKey === null) {
    return target.authority === null
      ? { kind: 'bad-request', code: 'HOST_INVALID', message: 'client sent invalid host header' }
      : {
          kind: 'bad-request',
          code: 'TARGET_BAD_AUTHORITY',
          message: 'the absolute-form target has no valid authority',
        };
  }
  if (routes.hostRedirects.size > 0) {
    const to = routes.hostRedirects.get(hostKey);
    if (to !== undefined) return hostRedirect(routes, hostKey, to, request);
  }
  const vhost = findVirtualHost(routes, hostKey);
  if (vhost === null) return routes.notFound;
  const uri = target.uri;
  if (vhost.appRoot !== null && uri === '/') {
    const loc = findLocation(vhost, uri) ?? vhost.appRoot.location;
    return {
      kind: 'redirect',
      status: 302,
      location: appRootLocation(request.scheme, rawHost, vhost.appRoot.path),
      serverName: vhost.serverName,
      route: loc.route,
      phase: 'server',
    };
  }
  if (vhost.slashRedirects !== null) {
    const slash = vhost.slashRedirects.get(uri);
    if (slash !== undefined) return slashRedirect(slash, target.args);
  }
  const loc = findLocation(vhost, uri);
  if (loc === null) return vhost.notFound;
  if (loc.redirect !== null) return loc.redirect;
  // nginx's rewrite directives run before lua's ssl-redirect; an absolute target is a 302.
  if (loc.rewrite?.redirect) {
    const location = applyRewrite(loc.rewrite, uri, target.args);
    if (location !== null) {
      return { kind: 'redirect', status: 302, location, serverName: vhost.serverName, route: loc.route };
    }
  }
  if (
    loc.httpsRedirect &&
    request.scheme === 'http' &&
    (loc.model.forceSslRedirect || certifiedName(routes, vhost, hostKey))
  ) {
    return {
      kind: 'redirect',
      status: routes.redirectCode,
      location: httpsRedirectLocation(request.redirectHost ?? rawHost, target.raw, loc.model),
      serverName: vhost.serverName,
      route: loc.route,
    };
  }
  let upstreamPath = target.raw;
  if (loc.rewrite !== null && !loc.rewrite.redirect) {
    const rewritten = applyRewrite(loc.rewrite, uri, target.args);
    if (rewritten !== null) upstreamPath = rewritten;
  }
  const prefix = forwardedPrefixOf(loc, uri);
  return {
    kind: 'proxy',
    route: loc.route,
    upstreamPath,
    guards: guardsFor(vhost, uri, target.raw, loc),
    forwardedPrefix: typeof prefix === 'string' ? prefix : null,
    refusal: typeof prefix === 'object' ? prefix : null,
  };
}

/** nginx's auto_redirect answer: the location's name, then `?` and $args when there are any. */
function slashRedirect(slash: SlashRedirect, args: string | null): RouteDecision {
  if (args === null || args === '') return slash.decision;
  return { ...slash.decision, location: `${slash.to}?${args}` };
}

/**
 * The access decision for a routed request: the route's own rules, then every guard's (the first
 * refusal wins, and names the location whose rules refused).
 */
export function decideAccess(
  route: MatchedRoute,
  guards: readonly MatchedRoute[],
  client: string,
): { verdict: AccessDecision; decidedBy: MatchedRoute } {
  const verdict = route.policy.decide(client);
  if (verdict.outcome !== 'allow' || guards.length === 0) return { verdict, decidedBy: route };
  for (const guard of guards) {
    const other = guard.policy.decide(client);
    if (other.outcome !== 'allow') return { verdict: other, decidedBy: guard };
  }
  return { verdict, decidedBy: route };
}

/** `path` without its trailing slashes; a loop: `/\/+$/` is quadratic in a run of slashes before the end. */
export function withoutTrailingSlashes(path: string): string {
  let end = path.length;
  while (end > 0 && path[end - 1] === '/') end--;
  return path.slice(0, end);
}
