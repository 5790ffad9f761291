// The gateway part of the topology: controller settings from the ConfigMap, virtual hosts and
// locations from the Ingresses of the served class, TLS certificates from Secrets.
import { ingressNginxOrder } from '../config/location-order.ts';
import { DEFAULT_UPSTREAM_NAME } from '../config/model.ts';
import type {
  AffinityModel,
  BackendRef,
  ConfigIssue,
  GatewayModel,
  GatewaySettings,
  RefusedIngress,
  LocationAccessModel,
  LocationModel,
  ObjectRef,
  NextUpstreamModel,
  Origin,
  ServedPathType,
  ProxySslModel,
  RedirectModel,
  TlsCertificateModel,
  VirtualHostModel,
} from '../config/model.ts';
import { findServicePort } from '../config/lookup.ts';
import { nginxArgument } from '../config/nginx-token.ts';
import { DEFAULT_SERVER_SETTINGS } from '../config/server-settings.ts';
import { type IngressAccess, locationAccess, parseAccessAnnotations } from './access-annotations.ts';
import { annotationPolicyRefusals } from './annotation-risk.ts';
import { type IngressAnnotations, parseControllerConfigMap, parseIngressAnnotations } from './annotations.ts';
import { annotationField, formatFieldPath } from './field-path.ts';
import { DEFAULT_CLASS_ANNOTATION, defaultIngressClass, LEGACY_CLASS_ANNOTATION } from './ingress-class.ts';
import { isLocationInLocationList } from './location-list.ts';
import { applyHeaderSettings, type ConfigMapLookup, readCustomHeaders } from './header-settings.ts';
import { configMapSource } from './scalar-readers.ts';
import { readProxySsl } from './proxy-ssl.ts';
import { certificateCovers } from './certificate-names.ts';
import {
  applyDhParam,
  hostPassthrough,
  hostServerTls,
  type IngressServerTls,
  readServerTlsAnnotations,
} from './server-tls.ts';
import {
  applyLogSettings,
  parseRouteAnnotations,
  type RouteAnnotations,
  proxyRedirectOf,
  readProxyRewrites,
} from './route-annotations.ts';
import {
  type Balancing,
  type CanaryPolicy,
  mergeAffinity,
  mergeCanaries,
  parseAffinity,
  parseBalancing,
  parseCanary,
  readBalancing,
  readNextUpstream,
} from './traffic-annotations.ts';
import type {
  ConfigMapView,
  IngressBackendView,
  IngressClassView,
  IngressPathView,
  IngressRuleView,
  IngressView,
  SecretView,
  ServiceView,
} from './objects.ts';
import { describeOrigin } from './reader.ts';
import { compare } from './translate-services.ts';
import { isPem, parseGoBool } from './values.ts';

export const INGRESS_NGINX_CONTROLLER = 'k8s.io/ingress-nginx';
export const DEFAULT_INGRESS_CLASS = 'nginx';
export const DEFAULT_CONFIGMAP = 'ingress-nginx/ingress-nginx-controller';

export interface GatewayInput {
  ingresses: readonly IngressView[];
  ingressClasses: readonly IngressClassView[];
  services: readonly ServiceView[];
  secrets: readonly SecretView[];
  configMaps: readonly ConfigMapView[];
}

export interface GatewayOptions {
  ingressClass?: string;
  configMap?: string;
  /**
   * --enable-ssl-passthrough: the ssl-passthrough annotation takes effect (off: reported, TLS terminated).
   * Per Ingress when the manifests hold several controllers (the doctor: the one serving its class decides).
   */
  enableSslPassthrough?: boolean | ((ingress: ObjectRef) => boolean);
  /**
   * --default-backend-service (`namespace/name`, the controller): the default server's backend when no
   * Ingress is a catch-all, as ingress-nginx's `upstream-default-backend`.
   */
  defaultBackendService?: string;
}

function issue(
  issues: ConfigIssue[],
  severity: ConfigIssue['severity'],
  code: ConfigIssue['code'],
  origin: Origin | null,
  field: string | null,
  message: string,
): void {
  const where = origin ? `${describeOrigin(origin)}${field ? ` ${field}` : ''}: ` : '';
  issues.push({
    severity,
    code,
    message: `${where}${message}`,
    ...(origin ? { origin } : {}),
    ...(field ? { field } : {}),
  });
}

/** Parses `namespace/name`; null when malformed. */
export function parseObjectRef(text: string): ObjectRef | null {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(text);
  return m ? { namespace: m[1]!, name: m[3]! } : null;
}

export function translateGatewaySettings(
  input: GatewayInput,
  configMapOption: string | undefined,
  issues: ConfigIssue[],
): GatewaySettings {
  let ref = parseObjectRef(configMapOption ?? DEFAULT_CONFIGMAP);
  if (ref === null) {
    issue(
      issues,
      'error',
      'INVALID_CONFIGMAP_OPTION',
      null,
      null,
      `--configmap ${JSON.stringify(configMapOption)} is not "namespace/name"; using ${DEFAULT_CONFIGMAP}`,
    );
    ref = parseObjectRef(DEFAULT_CONFIGMAP)!;
  }
  const cm = input.configMaps.find((c) => c.meta.namespace === ref.namespace && c.meta.name === ref.name);
  if (!cm) {
    issue(
      issues,
      'info',
      'CONFIGMAP_NOT_FOUND',
      null,
      null,
      `controller ConfigMap ${ref.namespace}/${ref.name} not found in the manifests; ingress-nginx defaults apply`,
    );
    return parseControllerConfigMap({}, null, null, issues);
  }
  const settings = parseControllerConfigMap(cm.data, ref, cm.origin, issues);
  applyHeaderSettings(cm.data, settings, configMapLookup(input), cm.origin, issues);
  const secretNamed = (namespace: string, name: string) =>
    input.secrets.find((s) => s.meta.namespace === namespace && s.meta.name === name)?.data ?? null;
  applyDhParam(cm.data, settings, secretNamed, (message) =>
    issue(
      issues,
      'warning',
      'INVALID_CONFIGMAP_VALUE',
      cm.origin,
      formatFieldPath(['data', 'ssl-dh-param']),
      message,
    ),
  );
  const balancing = readBalancing(
    (key) => cm.data[key],
    (key, message) =>
      issue(issues, 'warning', 'INVALID_CONFIGMAP_VALUE', cm.origin, formatFieldPath(['data', key]), message),
  );
  if (balancing.hashBy !== null) settings.upstreamHashBy = balancing.hashBy;
  readNextUpstreamSettings(cm.data, settings, (key, message) =>
    issue(issues, 'warning', 'INVALID_CONFIGMAP_VALUE', cm.origin, formatFieldPath(['data', key]), message),
  );
  if (balancing.loadBalance !== null) settings.loadBalance = balancing.loadBalance;
  const rewrites = readProxyRewrites(
    (key) => cm.data[key],
    (key, message) =>
      issue(issues, 'warning', 'INVALID_CONFIGMAP_VALUE', cm.origin, formatFieldPath(['data', key]), message),
  );
  for (const field of ['proxyCookieDomain', 'proxyCookiePath'] as const) {
    const value = rewrites[field];
    if (value != null) settings[field] = value;
  }
  if (rewrites.proxyRedirectFrom !== undefined) settings.proxyRedirectFrom = rewrites.proxyRedirectFrom;
  if (rewrites.proxyRedirectTo !== undefined) settings.proxyRedirectTo = rewrites.proxyRedirectTo;
  // Written into `proxy_http_version {{ … }};` by ingress-nginx's template: read as nginx's lexer reads it.
  const raw = cm.data['proxy-http-version'];
  const version = raw === undefined ? undefined : (nginxArgument(raw) ?? raw);
  if (version === '1.0' || version === '1.1') settings.proxyHttpVersion = version;
  else if (version !== undefined)
    issue(
      issues,
      'warning',
      'INVALID_CONFIGMAP_VALUE',
      cm.origin,
      formatFieldPath(['data', 'proxy-http-version']),
      `${JSON.stringify(version)} is not 1.0 or 1.1; 1.1 applies`,
    );
  applyLogSettings(cm.data, settings, (key, value) =>
    issue(
      issues,
      'warning',
      'INVALID_CONFIGMAP_VALUE',
      cm.origin,
      formatFieldPath(['data', key]),
      `${JSON.stringify(value)} is not a boolean; false applies`,
    ),
  );
  return settings;
}

/** The ConfigMap's proxy-next-upstream (+ -tries, -timeout) and retry-non-idempotent, over ingress-nginx's defaults. */
function readNextUpstreamSettings(
  data: Readonly<Record<string, string>>,
  settings: GatewaySettings,
  warnAbout: (key: string, message: string) => void,
): void {
  const source = configMapSource(data, (key, value, expected, kept) =>
    warnAbout(key, `${JSON.stringify(value)} is not ${expected}; ${kept}`),
  );
  let policy = readNextUpstream(source, DEFAULT_NEXT_UPSTREAM_POLICY);
  const retry = data['retry-non-idempotent'];
  if (retry !== undefined && parseGoBool(retry) === true) {
    settings.retryNonIdempotent = true;
    policy = withNonIdempotent(policy ?? DEFAULT_NEXT_UPSTREAM_POLICY);
  } else if (retry !== undefined && parseGoBool(retry) === null)
    warnAbout('retry-non-idempotent', `${JSON.stringify(retry)} is not a boolean; false applies`);
  if (policy !== null) settings.nextUpstream = policy;
}

/** `policy` with `non_idempotent` among its conditions (once), as ingress-nginx's buildNextUpstream. */
function withNonIdempotent(policy: NextUpstreamModel): NextUpstreamModel {
  if (policy.conditions.includes('non_idempotent')) return policy;
  return { ...policy, conditions: [...policy.conditions, 'non_idempotent'] };
}

/** ingress-nginx's defaults: proxy-next-upstream "error timeout", tries 3, no time limit. */
const DEFAULT_NEXT_UPSTREAM_POLICY: NextUpstreamModel = {
  conditions: ['error', 'timeout'],
  tries: 3,
  timeoutMs: 0,
};

function configMapLookup(input: GatewayInput): ConfigMapLookup {
  const byRef = new Map(input.configMaps.map((c) => [`${c.meta.namespace}/${c.meta.name}`, c]));
  return (namespace, name) => byRef.get(`${namespace}/${name}`);
}

/** Which Ingresses the gateway serves: those whose class resolves to the requested class name. */
export function selectIngresses(
  input: GatewayInput,
  ingressClass: string,
  issues: ConfigIssue[],
): IngressView[] {
  const requested = input.ingressClasses.find((c) => c.meta.name === ingressClass);
  if (requested && requested.controller !== INGRESS_NGINX_CONTROLLER) {
    issue(
      issues,
      'warning',
      'INGRESS_CLASS_OTHER_CONTROLLER',
      requested.origin,
      'spec.controller',
      `IngressClass "${ingressClass}" names controller ${JSON.stringify(requested.controller)}, not ${INGRESS_NGINX_CONTROLLER}; keepip serves its Ingresses because it was asked to`,
    );
  }
  const chosen = defaultIngressClass(
    input.ingressClasses.map((c) => ({ ...c.meta, isDefault: c.isDefault })),
  );
  if (chosen !== null && chosen.marked.length > 1) {
    const second = input.ingressClasses.find((c) => c.meta.name === chosen.marked[1]);
    issue(
      issues,
      'warning',
      'MULTIPLE_DEFAULT_INGRESS_CLASSES',
      second?.origin ?? null,
      annotationField(DEFAULT_CLASS_ANNOTATION),
      `${chosen.marked.length} IngressClasses are marked default (${chosen.marked.join(', ')}); Ingresses without a class get "${chosen.name}", the newest${chosen.certain ? '' : ' (a class without creationTimestamp counts as the oldest, equal ones by name)'}, as the API server gives it`,
    );
  }
  const fallback = chosen?.name ?? null;
  const served: IngressView[] = [];
  for (const ing of input.ingresses) {
    const legacy = ing.meta.annotations[LEGACY_CLASS_ANNOTATION] ?? null;
    if (ing.ingressClassName !== null && legacy !== null && legacy !== ing.ingressClassName) {
      issue(
        issues,
        'warning',
        'CONFLICTING_INGRESS_CLASS',
        ing.origin,
        annotationField(LEGACY_CLASS_ANNOTATION),
        `differs from spec.ingressClassName "${ing.ingressClassName}", which wins`,
      );
    }
    const cls = ing.ingressClassName ?? legacy ?? fallback;
    if (cls === ingressClass) served.push(ing);
    else {
      issue(
        issues,
        'info',
        'INGRESS_NOT_SERVED',
        ing.origin,
        null,
        cls === null
          ? `no ingress class and no default IngressClass; not served by class "${ingressClass}"`
          : `class "${cls}" is not "${ingressClass}"; not served`,
      );
    }
  }
  // Older Ingresses win merges; objects without a timestamp are the newest (not yet created). Equal
  // times (one-second resolution: one `kubectl apply` of several files) go by namespace/name
  // descending, as ingress-nginx's sortIngressSlice orders them.
  return served.sort((a, b) => {
    const ta = a.meta.creationTimestamp;
    const tb = b.meta.creationTimestamp;
    if (ta !== tb) {
      if (ta === null) return 1;
      if (tb === null) return -1;
      const d = Date.parse(ta) - Date.parse(tb);
      if (d !== 0) return d;
    }
    return compare(`${b.meta.namespace}/${b.meta.name}`, `${a.meta.namespace}/${a.meta.name}`);
  });
}

/**
 * The served Ingresses that keep to the ConfigMap's annotations-risk-level and word blocklist; each
 * one that does not is reported (an error the webhook refuses on) and left out whole, as ingress-nginx.
 */
function withinAnnotationPolicy(
  served: readonly IngressView[],
  settings: GatewaySettings,
  issues: ConfigIssue[],
): { admitted: IngressView[]; refused: RefusedIngress[] } {
  const admitted: IngressView[] = [];
  const refused: RefusedIngress[] = [];
  for (const ing of served) {
    const refusals = annotationPolicyRefusals(ing.meta.annotations, settings);
    for (const r of refusals) issue(issues, 'error', r.code, ing.origin, annotationField(r.key), r.message);
    const first = refusals[0];
    if (first === undefined) admitted.push(ing);
    else
      refused.push({
        ingress: { namespace: ing.meta.namespace, name: ing.meta.name },
        hosts: ing.rules.map((r) => r.host),
        code: first.code,
        annotation: first.key,
      });
  }
  return { admitted, refused };
}

const HOST = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/**
 * Exact and Prefix paths as ingress-nginx accepts them (strict-validate-path-type, on by default):
 * inspector/rules.go's `(?i)^/[[:alnum:]._\-/]*$`, no `~`.
 */
const STRICT_PATH = /^\/[A-Za-z0-9\-._/]*$/;

function tlsCovers(tlsHost: string, host: string): boolean {
  if (tlsHost === host) return true;
  if (tlsHost.startsWith('*.') && host !== '' && !host.startsWith('*.')) {
    const dot = host.indexOf('.');
    return dot > 0 && host.slice(dot + 1) === tlsHost.slice(2);
  }
  return false;
}

/** What a custom-headers annotation gives a location: headers, a denial, or nothing. */
type CustomHeaders = ReturnType<typeof readCustomHeaders>;

/** What each served Ingress's annotations say, read once per Ingress. */
interface IngressReadings {
  annotations: Map<IngressView, IngressAnnotations>;
  accessOf: Map<IngressView, IngressAccess>;
  routeOf: Map<IngressView, RouteAnnotations>;
  headersOf: Map<IngressView, CustomHeaders>;
  /** Ingresses with canary: "true": they make no locations of their own (mergeCanaries). */
  canaryOf: Map<IngressView, CanaryPolicy>;
  /** affinity: cookie, by "namespace/name" of the Ingress (mergeAffinity). */
  affinityOf: Map<string, AffinityModel>;
  /** upstream-hash-by and load-balance of each Ingress. */
  balancingOf: Map<IngressView, Balancing>;
  /** proxy-ssl-* of each Ingress (src/k8s/proxy-ssl.ts). */
  proxySslOf: Map<IngressView, ReturnType<typeof readProxySsl>>;
  /** ssl-ciphers, ssl-prefer-server-ciphers of each Ingress (src/k8s/server-tls.ts). */
  serverTlsOf: Map<IngressView, IngressServerTls>;
}

interface HostBuild {
  host: string;
  locations: LocationModel[];
  keys: Map<string, Origin>;
  creator: IngressView;
}

/** One translation under way: the served Ingresses, what they say, and the hosts built so far. */
interface GatewayBuild extends IngressReadings {
  input: GatewayInput;
  settings: GatewaySettings;
  served: readonly IngressView[];
  issues: ConfigIssue[];
  services: Map<string, ServiceView>;
  /** A host's paths all become regexes when any Ingress of that host asks for use-regex or a rewrite. */
  regexHosts: Set<string>;
  tlsHosts: Set<string>;
  hosts: Map<string, HostBuild>;
  defaultBackend: BackendRef | null;
  defaultBackendOrigin: Origin | null;
  /** --enable-ssl-passthrough, for the controller that serves this Ingress. */
  passthroughEnabled: (ingress: ObjectRef) => boolean;
  /** Locations of Ingresses without use-regex or a rewrite: on a regex host their Prefix paths split (regexHostLocations). */
  plainLocations: WeakSet<LocationModel>;
}

function passthroughSwitch(option: GatewayOptions['enableSslPassthrough']): (ingress: ObjectRef) => boolean {
  if (typeof option === 'function') return option;
  const enabled = option === true;
  return () => enabled;
}

export function translateGateway(
  input: GatewayInput,
  options: GatewayOptions,
  issues: ConfigIssue[],
): GatewayModel {
  const ingressClass = options.ingressClass ?? DEFAULT_INGRESS_CLASS;
  const settings = translateGatewaySettings(input, options.configMap, issues);
  const policy = withinAnnotationPolicy(selectIngresses(input, ingressClass, issues), settings, issues);
  const served = policy.admitted;
  const readings = readIngresses(input, served, settings, issues);
  // Canary Ingresses only lend their backends to the main ones (as ingress-nginx: "marked as Canary, ignoring").
  const mains = served.filter((ing) => !readings.canaryOf.has(ing));
  const b: GatewayBuild = {
    ...readings,
    input,
    settings,
    served: mains,
    issues,
    services: new Map(input.services.map((s) => [`${s.meta.namespace}/${s.meta.name}`, s])),
    ...regexAndTlsHosts(mains, readings.annotations),
    hosts: new Map(),
    defaultBackend: null,
    defaultBackendOrigin: null,
    passthroughEnabled: passthroughSwitch(options.enableSslPassthrough),
    plainLocations: new WeakSet(),
  };
  for (const ing of mains) addIngress(b, ing);
  if (b.defaultBackend === null && options.defaultBackendService)
    b.defaultBackend = flagDefaultBackend(b, options.defaultBackendService);
  addRootFallbacks(b);
  mergeCanaries({
    canaries: readings.canaryOf,
    hosts: b.hosts,
    backendRef: (ing, p) => backendRef(b, ing, p.backend),
    issues,
  });
  mergeAffinity(b.hosts, (l) => readings.affinityOf.get(`${l.ingress.namespace}/${l.ingress.name}`) ?? null);
  warnUnexportedTraces(b);
  return {
    ingressClass,
    settings,
    virtualHosts: encryptPassthroughUpstreams(virtualHosts(b)),
    defaultBackend: b.defaultBackend,
    controllerServices: controllerServices(
      input.services,
      settings.configMap?.namespace ??
        parseObjectRef(options.configMap ?? DEFAULT_CONFIGMAP)?.namespace ??
        'ingress-nginx',
    ),
    ...(policy.refused.length > 0 ? { refusedIngresses: policy.refused } : {}),
  };
}

/** Locations trace (their Ingress's enable-opentelemetry, else the ConfigMap's) with no collector to send to. */
function warnUnexportedTraces(b: GatewayBuild): void {
  const tracing = b.settings.tracing;
  if (tracing?.collector != null) return;
  const traced = [...b.hosts.values()].some((host) =>
    host.locations.some((l) => l.tracing?.enabled ?? tracing?.enabled ?? false),
  );
  if (!traced) return;
  const ref = b.settings.configMap;
  const configMap = b.input.configMaps.find(
    (c) => c.meta.namespace === ref?.namespace && c.meta.name === ref?.name,
  );
  const origin = configMap?.origin ?? null;
  issue(
    b.issues,
    'warning',
    'TRACING_NOT_EXPORTED',
    origin,
    origin === null ? null : 'data.otlp-collector-host',
    'locations trace (enable-opentelemetry) but no otlp-collector-host is set: their spans go to no collector (backends still get traceparent)',
  );
}

/** The annotations of every served Ingress: ingress-nginx's, access, route, custom headers. */
function readIngresses(
  input: GatewayInput,
  served: readonly IngressView[],
  settings: GatewaySettings,
  issues: ConfigIssue[],
): IngressReadings {
  const annotations = new Map<IngressView, IngressAnnotations>();
  for (const ing of served)
    annotations.set(ing, parseIngressAnnotations(ing.meta.annotations, settings, ing.origin, issues));
  const accessOf = readAccess(input, served, settings, issues);
  const routeOf = new Map<IngressView, RouteAnnotations>();
  const headersOf = new Map<IngressView, CustomHeaders>();
  const canaryOf = new Map<IngressView, CanaryPolicy>();
  const affinityOf = new Map<string, AffinityModel>();
  const balancingOf = new Map<IngressView, Balancing>();
  const proxySslOf = new Map<IngressView, ReturnType<typeof readProxySsl>>();
  const serverTlsOf = new Map<IngressView, IngressServerTls>();
  const secrets = new Map(input.secrets.map((s) => [`${s.meta.namespace}/${s.meta.name}`, s]));
  const lookup = configMapLookup(input);
  for (const ing of served) {
    const self = { namespace: ing.meta.namespace, name: ing.meta.name };
    const crossNamespace = settings.allowCrossNamespaceResources;
    proxySslOf.set(
      ing,
      readProxySsl(ing.meta.annotations, self, ing.origin, secrets, issues, crossNamespace),
    );
    serverTlsOf.set(ing, readServerTlsAnnotations(ing.meta.annotations, ing.origin, issues));
    const nextUpstreamBase = settings.nextUpstream ?? DEFAULT_NEXT_UPSTREAM_POLICY;
    const balancing = parseBalancing(ing.meta.annotations, ing.origin, issues, nextUpstreamBase);
    // retry-non-idempotent reaches a location's own proxy-next-upstream too (buildNextUpstream).
    if (settings.retryNonIdempotent === true && balancing.nextUpstream !== undefined)
      balancing.nextUpstream = withNonIdempotent(balancing.nextUpstream);
    balancingOf.set(ing, balancing);
    const affinity = parseAffinity(ing.meta.annotations, ing.origin, issues);
    if (affinity !== null) affinityOf.set(`${ing.meta.namespace}/${ing.meta.name}`, affinity);
    const canary = parseCanary(ing.meta.annotations, ing.origin, issues);
    if (canary !== null) canaryOf.set(ing, canary);
    routeOf.set(
      ing,
      parseRouteAnnotations({ annotations: ing.meta.annotations, origin: ing.origin, issues }),
    );
    const ref = { namespace: ing.meta.namespace, name: ing.meta.name };
    headersOf.set(ing, readCustomHeaders(ing.meta.annotations, ref, ing.origin, settings, lookup, issues));
  }
  return {
    annotations,
    accessOf,
    routeOf,
    headersOf,
    canaryOf,
    affinityOf,
    balancingOf,
    proxySslOf,
    serverTlsOf,
  };
}

/** The hosts whose paths are regexes, and the hosts named under spec.tls. */
function regexAndTlsHosts(
  served: readonly IngressView[],
  annotations: ReadonlyMap<IngressView, IngressAnnotations>,
): { regexHosts: Set<string>; tlsHosts: Set<string> } {
  const regexHosts = new Set<string>();
  const tlsHosts = new Set<string>();
  // ingress-nginx's enforceRegexModifier looks at the locations a host keeps: a path an older Ingress
  // already has (same path and type) is dropped with its annotations, and the root location carries
  // the annotations of the first Ingress with a Prefix `/`, else of the Ingress that created the host.
  const taken = new Map<string, Set<string>>();
  const root = new Map<string, IngressAnnotations>();
  for (const ing of served) {
    const a = annotations.get(ing)!;
    for (const rule of ing.rules) {
      const keys = taken.get(rule.host) ?? new Set<string>();
      taken.set(rule.host, keys);
      // The default server's root (rules without a host) exists before any Ingress: none of theirs.
      if (!root.has(rule.host) && rule.host !== '') root.set(rule.host, a);
      for (const p of rule.paths) {
        const path = p.path || '/';
        const key = `${path}\u0000${p.pathType}`;
        if (p.backend === null || keys.has(key)) continue;
        keys.add(key);
        if (path === '/' && p.pathType === 'Prefix') root.set(rule.host, a);
        if (regexLocation(a, path)) regexHosts.add(rule.host);
      }
    }
    // ingress-nginx's createServers: every rule host of an Ingress with a TLS section gets a
    // certificate (its Secret's, else the default), listed under spec.tls or not; a host listed only
    // by another Ingress does not.
    if (ing.tls.length > 0) for (const rule of ing.rules) if (rule.host !== '') tlsHosts.add(rule.host);
  }
  for (const [host, a] of root) if (regexLocation(a, '/')) regexHosts.add(host);
  return { regexHosts, tlsHosts };
}

/**
 * Whether a location makes its host's paths regexes: use-regex, or ingress-nginx's needsRewrite (a
 * target equal to the path is no rewrite at all: the seed's `rewrite-target: /` on path `/`).
 */
function regexLocation(a: IngressAnnotations, path: string): boolean {
  return a.useRegex || (a.rewriteTarget !== null && a.rewriteTarget !== path);
}

/**
 * ssl-redirect and force-ssl-redirect of a location: the annotation, else the ConfigMap; neither for a
 * path under no-tls-redirect-locations (ingress-nginx's force_no_ssl_redirect: ACME HTTP-01
 * challenges stay on plain HTTP by default).
 */
function httpsRedirects(
  a: IngressAnnotations,
  settings: GatewaySettings,
  path: string,
  tls: boolean,
): Pick<LocationModel, 'sslRedirect' | 'forceSslRedirect'> {
  const server = settings.server ?? DEFAULT_SERVER_SETTINGS;
  if (isLocationInLocationList(path, server.noTlsRedirectLocations)) {
    return { sslRedirect: false, forceSslRedirect: false };
  }
  return {
    sslRedirect: (a.sslRedirect ?? settings.sslRedirect) && tls,
    forceSslRedirect: a.forceSslRedirect ?? server.forceSslRedirect,
  };
}

function hasTls(b: GatewayBuild, host: string): boolean {
  return [...b.tlsHosts].some((t) => tlsCovers(t, host));
}

/** A Service reference of an Ingress; a missing Service or port is a warning (503 until it exists). */
function backendRef(
  b: GatewayBuild,
  ing: IngressView,
  backend: IngressBackendView | null,
): BackendRef | null {
  if (backend === null || backend.service === null) return null;
  const { name, port } = backend.service;
  const svc = b.services.get(`${ing.meta.namespace}/${name}`);
  if (!svc) {
    issue(
      b.issues,
      'warning',
      'SERVICE_NOT_FOUND',
      ing.origin,
      `${backend.field}.service.name`,
      `Service ${ing.meta.namespace}/${name} is not in the manifests; requests answer 503 until it exists`,
    );
  } else if (
    // An ExternalName Service without that port number is proxied on the Ingress's port (externalNamePorts).
    !(svc.type === 'ExternalName' && typeof port === 'number') &&
    findServicePort(svc, port) === undefined
  ) {
    issue(
      b.issues,
      'warning',
      'SERVICE_PORT_NOT_FOUND',
      ing.origin,
      `${backend.field}.service.port`,
      `Service ${ing.meta.namespace}/${name} has no port ${JSON.stringify(port)}; requests answer 503`,
    );
  }
  return {
    service: { namespace: ing.meta.namespace, name },
    port,
    upstreamName: `${ing.meta.namespace}-${name}-${port}`,
  };
}

/**
 * --default-backend-service's backend: the Service's first port (80 without one), named as
 * ingress-nginx names it; a Service that is not there is a warning and a 503, as for an Ingress's.
 */
function flagDefaultBackend(b: GatewayBuild, ref: string): BackendRef | null {
  const parsed = parseObjectRef(ref);
  if (parsed === null) return null;
  const svc = b.services.get(`${parsed.namespace}/${parsed.name}`);
  if (svc === undefined)
    issue(
      b.issues,
      'warning',
      'SERVICE_NOT_FOUND',
      null,
      null,
      `--default-backend-service ${ref}: the Service is not there; requests for unknown hosts answer 503 until it exists`,
    );
  const port = svc?.ports[0]?.port ?? 80;
  return { service: parsed, port, upstreamName: DEFAULT_UPSTREAM_NAME };
}

/** An Ingress's default backend (the first one wins) and its rules. */
function addIngress(b: GatewayBuild, ing: IngressView): void {
  if (ing.defaultBackend !== null && ing.rules.length === 0) {
    if (b.defaultBackend === null) {
      b.defaultBackend = backendRef(b, ing, ing.defaultBackend);
      b.defaultBackendOrigin = ing.origin;
    } else {
      issue(
        b.issues,
        'warning',
        'DUPLICATE_DEFAULT_BACKEND',
        ing.origin,
        'spec.defaultBackend',
        `the default backend is already set by ${b.defaultBackendOrigin ? describeOrigin(b.defaultBackendOrigin) : 'an older Ingress'}; ignored`,
      );
    }
  }
  for (const rule of ing.rules) addRule(b, ing, rule);
}

function addRule(b: GatewayBuild, ing: IngressView, rule: IngressRuleView): void {
  if (rule.host !== '' && !HOST.test(rule.host)) {
    issue(
      b.issues,
      'error',
      'INVALID_HOST',
      ing.origin,
      `${rule.field}.host`,
      `${JSON.stringify(rule.host)} is not a host name or a single leading wildcard (*.example.com); rule ignored`,
    );
    return;
  }
  let build = b.hosts.get(rule.host);
  if (!build) {
    build = { host: rule.host, locations: [], keys: new Map(), creator: ing };
    b.hosts.set(rule.host, build);
  }
  for (const p of rule.paths) addPath(b, ing, build, p);
}

/** One path of a rule as a location of its host, unless it is invalid or an older Ingress has it. */
function addPath(b: GatewayBuild, ing: IngressView, build: HostBuild, p: IngressPathView): void {
  // A path without a Service (a `resource` backend) is skipped, as ingress-nginx does: the host's
  // root location answers it (the default backend), and the path does not count as taken.
  if (p.backend === null) return;
  const path = p.path === '' ? '/' : p.path;
  if (!isValidPath(b, ing, p, path)) return;
  // Compiling the regex (nginx PCRE → JavaScript) is the router's job: it fails an
  // uncompilable location closed, and the doctor uses the same router.
  const regex = b.regexHosts.has(build.host) ? path : null;
  const key = `${regex === null ? nginxLocationPath(path, p.pathType) : path}\u0000${p.pathType}`;
  const first = build.keys.get(key);
  if (first) {
    issue(
      b.issues,
      'warning',
      'DUPLICATE_PATH',
      ing.origin,
      p.field,
      `host ${JSON.stringify(build.host)} path ${JSON.stringify(path)} (${p.pathType}) is already defined by ${describeOrigin(first)}, which comes first (older, or as old and a later namespace/name) and wins`,
    );
    return;
  }
  build.keys.set(key, ing.origin);
  const made = location(b, ing, path, p.pathType, regex, backendRef(b, ing, p.backend), build.host);
  if (!b.annotations.get(ing)!.useRegex && made.rewriteTarget === null) b.plainLocations.add(made);
  // A Prefix `/` takes the place of ingress-nginx's root location, created first with the host: on a
  // regex host it comes before an Exact `/` (every `/` being `~* ^/` there).
  if (path === '/' && p.pathType === 'Prefix') build.locations.unshift(made);
  else build.locations.push(made);
}

/**
 * The path of the nginx location a path becomes on a host without regexes, as ingress-nginx's
 * updateServerLocations writes it: a Prefix path ends in `/` (`/admin` and `/admin/` are one
 * location, so a second one never takes the first's requests).
 */
export function nginxLocationPath(path: string, pathType: string): string {
  return pathType === 'Prefix' && !path.endsWith('/') ? `${path}/` : path;
}

function isValidPath(b: GatewayBuild, ing: IngressView, p: IngressPathView, path: string): boolean {
  const strict = b.settings.strictValidatePathType !== false;
  if (p.declaredPathType !== 'ImplementationSpecific' && strict && !STRICT_PATH.test(path)) {
    issue(
      b.issues,
      'error',
      'INVALID_PATH',
      ing.origin,
      `${p.field}.path`,
      `${JSON.stringify(path)} is not a valid ${p.declaredPathType ?? 'Prefix (no pathType)'} path (only /[A-Za-z0-9-._/]*, as ingress-nginx validates it with strict-validate-path-type); path ignored. Use pathType ImplementationSpecific for a regex, or the ConfigMap's strict-validate-path-type "false"`,
    );
    return false;
  }
  if (!path.startsWith('/')) {
    issue(
      b.issues,
      'error',
      'INVALID_PATH',
      ing.origin,
      `${p.field}.path`,
      `${JSON.stringify(path)} must start with "/"; path ignored`,
    );
    return false;
  }
  return true;
}

/** A location: the path and its backend with everything the Ingress's annotations say for it. */
function location(
  b: GatewayBuild,
  ing: IngressView,
  path: string,
  pathType: ServedPathType,
  regex: string | null,
  backend: BackendRef | null,
  host: string,
): LocationModel {
  const a = b.annotations.get(ing)!;
  const custom = b.headersOf.get(ing) ?? null;
  const ssl = b.proxySslOf.get(ing) ?? null;
  const access = withDenial(
    withDenial(locationAccess(b.accessOf.get(ing)!, path, b.settings), custom, 'custom-headers'),
    ssl,
    'proxy-ssl-secret',
  );
  const route = b.routeOf.get(ing)!;
  const { redirect, cors, upstreamVhost, xForwardedPrefix, accessLog, tracing } = route;
  return {
    ...(access ? { access } : {}),
    ...(redirect !== null ? { redirect: relativeOrNot(redirect, route, b.settings) } : {}),
    ...(cors !== null ? { cors } : {}),
    ...(upstreamVhost !== null ? { upstreamVhost } : {}),
    ...(xForwardedPrefix !== null ? { xForwardedPrefix } : {}),
    ...(custom !== null && 'headers' in custom ? { customHeaders: custom.headers } : {}),
    ...(accessLog ? {} : { accessLog: false as const }),
    ...(tracing !== null ? { tracing } : {}),
    ...redirectOptions(route, b.settings),
    ...balancingFor(b.balancingOf.get(ing) ?? null, b.settings),
    ...errorPages(b, ing, route),
    ...proxyRewrites(route, b.settings),
    ...(ssl !== null && 'ssl' in ssl ? { proxySsl: ssl.ssl } : {}),
    ...(a.autoHttp ? { autoHttp: true as const } : {}),
    ...a.bodyBuffering,
    ...(a.mirror !== null ? { mirror: a.mirror } : {}),
    ingress: { namespace: ing.meta.namespace, name: ing.meta.name },
    ingressOrigin: ing.origin,
    createdAt: ing.meta.creationTimestamp,
    path,
    pathType,
    regex,
    backend: a.backendRefused ? null : backend,
    allow: a.allow,
    deny: a.deny,
    rewriteTarget: a.rewriteTarget === path ? null : a.rewriteTarget,
    appRoot: a.appRoot,
    ...httpsRedirects(a, b.settings, path, hasTls(b, host)),
    serviceUpstream: a.serviceUpstream,
    backendProtocol: a.backendProtocol,
    proxyBodySizeBytes: a.proxyBodySizeBytes,
    proxyConnectTimeoutMs: a.proxyConnectTimeoutMs,
    proxyReadTimeoutMs: a.proxyReadTimeoutMs,
    proxySendTimeoutMs: a.proxySendTimeoutMs,
  };
}

/**
 * As in ingress-nginx (createServers), a host none of whose rules covers "/" still has a root
 * location with the annotations of the Ingress that created the host, its allowlist included: the
 * creator's spec.defaultBackend behind it, else the default backend (defaultBackendRoot). A stranger
 * asking for a path no rule names gets that Ingress's 403, not a 404 that tells which paths exist.
 */
function addRootFallbacks(b: GatewayBuild): void {
  for (const build of b.hosts.values()) {
    const creator = build.creator;
    if (build.locations.some((l) => l.path === '/' && l.pathType !== 'Exact')) continue;
    // Rules without a host join ingress-nginx's default server `_`, whose root exists before any
    // Ingress: it takes none of their annotations (only the spec.defaultBackend, as before).
    if (build.host === '' && creator.defaultBackend === null) continue;
    const regex = b.regexHosts.has(build.host) ? '/' : null;
    const own = creator.defaultBackend === null ? null : backendRef(b, creator, creator.defaultBackend);
    const root = location(b, creator, '/', 'Prefix', regex, own, build.host);
    // First, as ingress-nginx creates it with the server: on a regex host (`~* ^/` for every `/`) it
    // comes before an Exact `/`, which it then shadows, as there.
    // The default backend's root keeps ingress-nginx's DefaultBackendUpstreamName: its errors go to
    // the catch-all default backend, whatever the creator's default-backend.
    const { errorsToDefaultBackend: _, ...catchAllErrors } = root;
    build.locations.unshift(
      creator.defaultBackend === null ? { ...catchAllErrors, defaultBackendRoot: true } : root,
    );
  }
}

/** The served Ingresses that have a rule for each host, in merge order (each Ingress once per host). */
function ingressesByHost(served: readonly IngressView[]): Map<string, IngressView[]> {
  const byHost = new Map<string, IngressView[]>();
  for (const ing of served) {
    for (const host of new Set(ing.rules.map((r) => r.host))) {
      const list = byHost.get(host);
      if (list === undefined) byHost.set(host, [ing]);
      else list.push(ing);
    }
  }
  return byHost;
}

/** The hosts in name order, each with its certificate, sorted locations, client certificate and names. */
function virtualHosts(b: GatewayBuild): VirtualHostModel[] {
  const secrets = new Map(b.input.secrets.map((s) => [`${s.meta.namespace}/${s.meta.name}`, s]));
  // Looked up per host once: scanning every Ingress for every host made 10,000 Ingresses take seconds.
  const byHost = ingressesByHost(b.served);
  return [...b.hosts.values()]
    .sort((x, y) => compare(x.host, y.host))
    .map((h) => {
      const own = byHost.get(h.host) ?? [];
      return {
        host: h.host,
        tls: hasTls(b, h.host) ? certificateFor(b, secrets, h.host, own) : null,
        // ingress-nginx sorts (getBackendServers), then expands plain Prefix paths in place
        // (updateServerLocations): `/p` is sorted as `/p`, its `^/p/` and `^/p` copies where it lands.
        locations: withServerProxySsl(
          b.regexHosts.has(h.host)
            ? regexHostLocations(sortLocations(h.locations, true), b.plainLocations)
            : sortLocations(h.locations, false),
          own,
          b,
        ),
        ...clientCertificateOf(h.host, own, b.accessOf),
        ...hostNames(h.host, b.hosts, own, b.routeOf),
        ...serverTlsFor(h, own, b),
      };
    });
}

/**
 * proxy-ssl-* as ingress-nginx's server block carries them (createServers, nginx.tmpl): the first of the
 * host's Ingresses (merge order) with a usable proxy-ssl-secret gives the server its proxy_ssl_* lines,
 * and nginx lets every location inherit each line it does not write itself. A location without
 * proxy-ssl-* of its own takes them all (its HTTPS backend is verified, with the server's client
 * certificate); one with its own writes all but proxy_ssl_name (when it has none) and the client
 * certificate (when its Secret has none). The server writes proxy_ssl_name / _server_name only with a
 * name. ConfigMap proxy-ssl-location-only: none of this.
 */
function withServerProxySsl(
  locations: LocationModel[],
  own: readonly IngressView[],
  b: GatewayBuild,
): LocationModel[] {
  if (b.settings.proxySslLocationOnly === true) return locations;
  let server: ProxySslModel | null = null;
  for (const ing of own) {
    const read = b.proxySslOf.get(ing) ?? null;
    if (read !== null && 'ssl' in read) {
      server = read.ssl;
      break;
    }
  }
  if (server === null) return locations;
  const inherited: ProxySslModel = { ...server, serverName: server.name !== null && server.serverName };
  return locations.map((l) => {
    if (l.proxySsl === undefined) return { ...l, proxySsl: inherited };
    const mine = l.proxySsl;
    const client = mine.certPem !== null ? mine : server;
    return {
      ...l,
      proxySsl: { ...mine, name: mine.name ?? server.name, certPem: client.certPem, keyPem: client.keyPem },
    };
  });
}

/**
 * As ingress-nginx marks the upstream of a passthrough host's "/" (SSLPassthrough) and then proxies
 * every location of that upstream, on any host, in https:// (grpcs:// for gRPC): the backend speaks
 * TLS, and an HTTP request that names the host (port 80, or another host's TLS) must not reach it in
 * cleartext.
 */
function encryptPassthroughUpstreams(hosts: VirtualHostModel[]): VirtualHostModel[] {
  const tlsOnly = new Set<string>();
  for (const h of hosts)
    if (h.sslPassthrough === true)
      for (const l of h.locations)
        if (l.path === '/' && l.backend !== null) tlsOnly.add(l.backend.upstreamName);
  if (tlsOnly.size === 0) return hosts;
  const encrypted = (l: LocationModel): LocationModel => {
    if (l.backend === null || !tlsOnly.has(l.backend.upstreamName)) return l;
    const { autoHttp: _auto, ...rest } = l;
    const grpc = l.backendProtocol === 'GRPC' || l.backendProtocol === 'GRPCS';
    return { ...rest, backendProtocol: grpc ? 'GRPCS' : 'HTTPS' };
  };
  return hosts.map((h) => ({ ...h, locations: h.locations.map(encrypted) }));
}

/**
 * ssl-ciphers / ssl-prefer-server-ciphers (per host, the first Ingress in merge order that sets them)
 * and ssl-passthrough (any Ingress of the host; the backend of its "/" path).
 */
function serverTlsFor(
  h: HostBuild,
  ingresses: readonly IngressView[],
  b: GatewayBuild,
): Pick<VirtualHostModel, 'serverTls' | 'sslPassthrough'> {
  const own = ingresses.map((ing) => ({
    name: `${ing.meta.namespace}/${ing.meta.name}`,
    origin: ing.origin,
    tls: b.serverTlsOf.get(ing)!,
    passthroughEnabled: b.passthroughEnabled({ namespace: ing.meta.namespace, name: ing.meta.name }),
  }));
  const out: Pick<VirtualHostModel, 'serverTls' | 'sslPassthrough'> = {};
  const serverTls = hostServerTls(own, b.settings.serverTls);
  if (serverTls !== undefined) out.serverTls = serverTls;
  const rootBackend = h.locations.some((l) => l.path === '/' && l.backend !== null);
  if (h.host !== '' && hostPassthrough(own, rootBackend, b.issues)) out.sslPassthrough = true;
  return out;
}

/**
 * The host's certificate, as ingress-nginx's createServers picks it: the first of the host's own
 * Ingresses (merge order) with a TLS section decides, and a later one is never asked (another
 * tenant's Ingress cannot serve its certificate for a host whose first Secret is missing). In that
 * Ingress, as extractTLSSecretName: the spec.tls entry that lists the host, else an entry whose
 * certificate names it; null (the default certificate) when the Secret is missing, unusable, or its
 * certificate does not name the host (VerifyHostname).
 */
function certificateFor(
  b: GatewayBuild,
  secrets: ReadonlyMap<string, SecretView>,
  host: string,
  own: readonly IngressView[],
): TlsCertificateModel | null {
  const first = own.find((ing) => ing.tls.length > 0);
  if (first === undefined) return null;
  const listed = first.tls.find((t) => t.hosts.some((h) => tlsCovers(h, host)));
  if (listed === undefined) return certificateNaming(secrets, host, first);
  if (listed.secretName === null || listed.secretName === '') return null;
  const secret = secrets.get(`${first.meta.namespace}/${listed.secretName}`);
  const cert = readTlsSecret(secret, first, listed.field, listed.secretName, listed.hosts, b.issues);
  if (cert === null) return null;
  if (certificateCovers(cert.certPem, host)) return cert;
  issue(
    b.issues,
    'warning',
    'TLS_SECRET_HOST_MISMATCH',
    first.origin,
    `${listed.field}.secretName`,
    `the certificate of Secret ${first.meta.namespace}/${listed.secretName} does not name ${host} (neither a subjectAltName nor, without DNS names, the CN); ${host} uses the default certificate`,
  );
  return null;
}

/** A certificate of `ing`'s spec.tls entries (none listing the host) that names the host; null: none. */
function certificateNaming(
  secrets: ReadonlyMap<string, SecretView>,
  host: string,
  ing: IngressView,
): TlsCertificateModel | null {
  for (const t of ing.tls) {
    if (t.secretName === null || t.secretName === '') continue;
    // Not reported here: an entry is reported for the hosts it lists.
    const secret = secrets.get(`${ing.meta.namespace}/${t.secretName}`);
    const cert = readTlsSecret(secret, ing, t.field, t.secretName, t.hosts, []);
    if (cert && certificateCovers(cert.certPem, host)) return cert;
  }
  return null;
}

type ErrorPages = Pick<
  LocationModel,
  'defaultBackend' | 'errorsToDefaultBackend' | 'customHttpErrors' | 'disableProxyInterceptErrors'
>;

/**
 * default-backend (the Service's first port, upstream `custom-default-backend-<ns>-<name>`, as
 * ingress-nginx names it), custom-http-errors and disable-proxy-intercept-errors (else the ConfigMap's).
 * The error pages come from default-backend only for the Ingress's own codes: the ConfigMap's are
 * ingress-nginx's server-wide error_page, towards the catch-all default backend.
 */
function errorPages(b: GatewayBuild, ing: IngressView, route: RouteAnnotations): ErrorPages {
  const out: ErrorPages = {};
  const name = route.defaultBackend;
  if (name !== null) {
    const svc = b.services.get(`${ing.meta.namespace}/${name}`);
    const port = svc?.ports[0];
    if (port === undefined)
      issue(
        b.issues,
        'warning',
        'SERVICE_NOT_FOUND',
        ing.origin,
        annotationField('nginx.ingress.kubernetes.io/default-backend'),
        `Service ${ing.meta.namespace}/${name} (with a port) is not in the manifests; no default backend`,
      );
    else
      out.defaultBackend = {
        service: { namespace: ing.meta.namespace, name },
        port: port.port,
        upstreamName: `custom-default-backend-${ing.meta.namespace}-${name}`,
      };
  }
  const codes = route.customHttpErrors ?? b.settings.customHttpErrors;
  if (codes !== undefined && codes.length > 0) out.customHttpErrors = codes;
  if (out.defaultBackend !== undefined && (route.customHttpErrors?.length ?? 0) > 0)
    out.errorsToDefaultBackend = true;
  if (route.disableProxyInterceptErrors ?? b.settings.disableProxyInterceptErrors)
    out.disableProxyInterceptErrors = true;
  return out;
}

/**
 * proxy-redirect-*: each half the Ingress's, else the ConfigMap's, then paired (ingress-nginx's proxy
 * annotation parser defaults each alone); proxy-cookie-*: the Ingress's (off included), else the ConfigMap's.
 */
function proxyRewrites(
  route: RouteAnnotations,
  settings: GatewaySettings,
): Pick<LocationModel, 'proxyRedirect' | 'proxyCookieDomain' | 'proxyCookiePath' | 'proxyHttpVersion'> {
  const out: Pick<
    LocationModel,
    'proxyRedirect' | 'proxyCookieDomain' | 'proxyCookiePath' | 'proxyHttpVersion'
  > = {};
  const { proxyRedirectFrom, proxyRedirectTo } = route.rewrites;
  const redirect = proxyRedirectOf(
    proxyRedirectFrom ?? settings.proxyRedirectFrom,
    proxyRedirectTo ?? settings.proxyRedirectTo,
  );
  if (redirect !== null) out.proxyRedirect = redirect;
  for (const field of ['proxyCookieDomain', 'proxyCookiePath'] as const) {
    const own = route.rewrites[field];
    const value = own === undefined ? settings[field] : own;
    if (value != null) out[field] = value;
  }
  if ((route.proxyHttpVersion ?? settings.proxyHttpVersion) === '1.0') out.proxyHttpVersion = '1.0';
  return out;
}

/** upstream-hash-by and load-balance: the Ingress's, else the ConfigMap's. */
function balancingFor(
  own: Balancing | null,
  settings: GatewaySettings,
): Pick<LocationModel, 'upstreamHashBy' | 'loadBalance' | 'nextUpstream'> {
  const out: Pick<LocationModel, 'upstreamHashBy' | 'loadBalance' | 'nextUpstream'> = {};
  // proxy-next-upstream: the Ingress's over the ConfigMap's.
  const nextUpstream = own?.nextUpstream ?? settings.nextUpstream;
  if (nextUpstream !== undefined) out.nextUpstream = nextUpstream;
  const hashBy = own?.hashBy ?? settings.upstreamHashBy;
  if (hashBy !== undefined) out.upstreamHashBy = hashBy;
  if ((own?.loadBalance ?? settings.loadBalance) === 'ewma') out.loadBalance = 'ewma';
  return out;
}

/** relative-redirects: the annotation, else the ConfigMap (nginx's absolute_redirect off at either level). */
function relativeOrNot(
  redirect: RedirectModel,
  route: RouteAnnotations,
  settings: GatewaySettings,
): RedirectModel {
  return (route.relativeRedirects ?? settings.relativeRedirects) === true
    ? { ...redirect, relative: true }
    : redirect;
}

type RedirectOption =
  | 'preserveTrailingSlash'
  | 'usePortInRedirects'
  | 'relativeRedirects'
  | 'connectionHeader';

/** preserve-trailing-slash, use-port-in-redirects, relative-redirects (the annotation, else the ConfigMap) and connection-proxy-header. */
function redirectOptions(
  route: RouteAnnotations,
  settings: GatewaySettings,
): Pick<LocationModel, RedirectOption> {
  const out: Pick<LocationModel, RedirectOption> = {};
  if (route.preserveTrailingSlash ?? settings.preserveTrailingSlash) out.preserveTrailingSlash = true;
  if (route.usePortInRedirects ?? settings.usePortInRedirects) out.usePortInRedirects = true;
  if ((route.relativeRedirects ?? settings.relativeRedirects) === true) out.relativeRedirects = true;
  if (route.connectionHeader !== null) out.connectionHeader = route.connectionHeader;
  return out;
}

/** A custom-headers ConfigMap that cannot be used denies the location (503), as ingress-nginx does. */
function withDenial(
  access: LocationAccessModel | undefined,
  reading: object | null,
  name: string,
): LocationAccessModel | undefined {
  if (reading === null || !('denied' in reading) || access?.denied) return access;
  const denied = { annotation: `nginx.ingress.kubernetes.io/${name}`, reason: String(reading.denied) };
  return { rateLimit: null, basicAuth: null, externalAuth: null, satisfy: 'all', ...access, denied };
}

/** The access annotations of each served Ingress (src/k8s/access-annotations.ts). */
function readAccess(
  input: GatewayInput,
  served: readonly IngressView[],
  settings: GatewaySettings,
  issues: ConfigIssue[],
): Map<IngressView, IngressAccess> {
  const secrets = new Map(input.secrets.map((s) => [`${s.meta.namespace}/${s.meta.name}`, s]));
  const configMaps = new Map(input.configMaps.map((c) => [`${c.meta.namespace}/${c.meta.name}`, c]));
  const out = new Map<IngressView, IngressAccess>();
  for (const ing of served) {
    const ingress = { namespace: ing.meta.namespace, name: ing.meta.name };
    const annotations = ing.meta.annotations;
    out.set(
      ing,
      parseAccessAnnotations({
        annotations,
        ingress,
        origin: ing.origin,
        secrets,
        configMaps,
        settings,
        issues,
      }),
    );
  }
  return out;
}

/**
 * server-alias and from-to-www-redirect, per host as ingress-nginx keeps them: the aliases of the first
 * Ingress (merge order) of the host that sets some, without the host itself or another Ingress's host;
 * the www twin when any Ingress of the host asks for it and no Ingress serves that name.
 */
function hostNames(
  host: string,
  hosts: ReadonlyMap<string, unknown>,
  own: readonly IngressView[],
  routeOf: ReadonlyMap<IngressView, RouteAnnotations>,
): Pick<VirtualHostModel, 'aliases' | 'redirectFrom'> {
  const out: Pick<VirtualHostModel, 'aliases' | 'redirectFrom'> = {};
  const first = own.find((ing) => routeOf.get(ing)!.aliases.length > 0);
  const aliases = first ? routeOf.get(first)!.aliases.filter((a) => a !== host && !hosts.has(a)) : [];
  if (aliases.length > 0) out.aliases = aliases;
  if (host !== '' && !host.startsWith('*.') && own.some((ing) => routeOf.get(ing)!.fromToWwwRedirect)) {
    const from = host.startsWith('www.') ? host.slice(4) : `www.${host}`;
    if (!hosts.has(from)) out.redirectFrom = from;
  }
  return out;
}

/** auth-tls-* is per host in ingress-nginx: the first Ingress (merge order) of the host that sets it. */
function clientCertificateOf(
  host: string,
  own: readonly IngressView[],
  accessOf: ReadonlyMap<IngressView, IngressAccess>,
): Pick<VirtualHostModel, 'clientCertificate'> | Record<string, never> {
  if (host === '') return {};
  for (const ing of own) {
    const cert = accessOf.get(ing)?.clientCertificate ?? null;
    if (cert !== null) return { clientCertificate: cert };
  }
  return {};
}

/**
 * ingress-nginx priority. Plain hosts: Exact first, then longer paths first (nginx picks the longest
 * prefix anyway; equal lengths keep merge order). Regex hosts: every path is a regex tried in order, as
 * ingress-nginx writes them after its two stable sorts: by the path's bytes, greater first, then by
 * length, longest first (so among equal lengths `/app/admin/.*` comes before `/(api|app)/.*`).
 */
export function sortLocations(locations: readonly LocationModel[], regexHost: boolean): LocationModel[] {
  if (regexHost) return ingressNginxOrder(locations);
  const rank = (l: LocationModel) => (l.pathType !== 'Exact' ? 1 : 0);
  return [...locations].sort((a, b) => rank(a) - rank(b) || b.path.length - a.path.length);
}

/**
 * ingress-nginx's updateServerLocations on a regex host, after its sort: a Prefix `/p` of an Ingress
 * without use-regex or a rewrite is `~* ^/p/` where `/p` was sorted, followed by `~* ^/p` (its Exact
 * copy) unless the host has an Exact `/p`. Each copy is the same location otherwise (its Ingress,
 * annotations and rate-limit zone).
 */
function regexHostLocations(
  locations: readonly LocationModel[],
  plain: WeakSet<LocationModel>,
): LocationModel[] {
  const exact = new Set(locations.filter((l) => l.pathType === 'Exact').map((l) => l.path));
  const out: LocationModel[] = [];
  for (const l of locations) {
    if (l.pathType !== 'Prefix' || l.path === '/' || l.path.endsWith('/') || !plain.has(l)) {
      out.push(l);
      continue;
    }
    out.push({ ...l, regex: `${l.path}/` });
    if (!exact.has(l.path)) out.push({ ...l, regex: l.path });
  }
  return out;
}

function readTlsSecret(
  secret: SecretView | undefined,
  ing: IngressView,
  field: string,
  secretName: string,
  hosts: readonly string[],
  issues: ConfigIssue[],
): TlsCertificateModel | null {
  if (!secret) {
    issue(
      issues,
      'warning',
      'TLS_SECRET_NOT_FOUND',
      ing.origin,
      `${field}.secretName`,
      `Secret ${ing.meta.namespace}/${secretName} is not in the manifests; these hosts use the default certificate`,
    );
    return null;
  }
  // Any type, as ingress-nginx's getPemCertificate: what counts is a tls.crt and a tls.key (an Opaque
  // Secret from a certificate tool serves as well as a kubernetes.io/tls one).
  const problem = !isPem(secret.data['tls.crt'], 'CERTIFICATE')
    ? 'has no PEM certificate in tls.crt'
    : !isPem(secret.data['tls.key'], 'PRIVATE KEY')
      ? 'has no PEM private key in tls.key'
      : null;
  if (problem) {
    issue(
      issues,
      'warning',
      'TLS_SECRET_INVALID',
      secret.origin,
      null,
      `${problem}; the hosts of ${describeOrigin(ing.origin)} use the default certificate`,
    );
    return null;
  }
  return {
    secret: { namespace: secret.meta.namespace, name: secret.meta.name },
    hosts,
    certPem: secret.data['tls.crt']!,
    keyPem: secret.data['tls.key']!,
  };
}

/**
 * The controller's own Services: LoadBalancer or NodePort Services in the ConfigMap's namespace, or
 * anywhere when their selector picks the ingress-nginx controller pods.
 */
export function controllerServices(services: readonly ServiceView[], namespace: string): ObjectRef[] {
  return services
    .filter(
      (s) =>
        (s.type === 'LoadBalancer' || s.type === 'NodePort') &&
        (s.meta.namespace === namespace ||
          (s.selector['app.kubernetes.io/name'] === 'ingress-nginx' &&
            s.selector['app.kubernetes.io/component'] === 'controller')),
    )
    .map((s) => ({ namespace: s.meta.namespace, name: s.meta.name }))
    .sort((a, b) => compare(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`));
}
