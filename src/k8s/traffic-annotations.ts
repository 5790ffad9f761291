// ingress-nginx's traffic annotations, read per Ingress: the canary family (canary, canary-by-header,
// -by-header-value, -by-header-pattern, -by-cookie, canary-weight, -weight-total) and sticky sessions
// (affinity: cookie, affinity-mode, affinity-canary-behavior, session-cookie-*). A canary Ingress
// makes no locations of its own: its backend becomes the alternative of the main Ingress's backend for
// the same host, path and pathType (mergeCanaries), as ingress-nginx merges alternative backends.
// Values are validated as ingress-nginx 1.15's canary parser does: an invalid one takes its default.
import { backtrackingRisk } from '../config/regex-backtracking.ts';
import type {
  AffinityModel,
  BackendRef,
  CanaryModel,
  ConfigIssue,
  LocationModel,
  ObjectRef,
  NextUpstreamModel,
  Origin,
  UpstreamHashByModel,
} from '../config/model.ts';
import type { IngressPathView, IngressView } from './objects.ts';
import { describeOrigin } from './reader.ts';
import { BASIC_CHARS, IS_VALID_REGEX } from './validators.ts';
import {
  annotationIssue,
  annotationSource,
  type IssueSink,
  readBool,
  readWhole,
  type ScalarSource,
  warnAnnotation,
} from './scalar-readers.ts';
import { goAnnotationString, parseGoBool, parseGoInt } from './values.ts';

const PREFIX = 'nginx.ingress.kubernetes.io/';

/** The annotations this module reads (without the prefix). */
export const TRAFFIC_ANNOTATIONS: readonly string[] = [
  'canary',
  'canary-by-header',
  'canary-by-header-value',
  'canary-by-header-pattern',
  'canary-by-cookie',
  'canary-weight',
  'canary-weight-total',
  'affinity',
  'affinity-mode',
  'affinity-canary-behavior',
  'session-cookie-name',
  'session-cookie-path',
  'session-cookie-domain',
  'session-cookie-expires',
  'session-cookie-max-age',
  'session-cookie-samesite',
  'session-cookie-secure',
  'session-cookie-conditional-samesite-none',
  'session-cookie-change-on-failure',
  'upstream-hash-by',
  'upstream-hash-by-subset',
  'upstream-hash-by-subset-size',
  'load-balance',
  'proxy-next-upstream',
  'proxy-next-upstream-tries',
  'proxy-next-upstream-timeout',
];

/** The controller ConfigMap keys this module reads. */
export const TRAFFIC_CONFIGMAP_KEYS: readonly string[] = [
  'load-balance',
  'upstream-hash-by',
  'upstream-hash-by-subset',
  'upstream-hash-by-subset-size',
  'proxy-next-upstream',
  'proxy-next-upstream-tries',
  'proxy-next-upstream-timeout',
  'retry-non-idempotent',
];

const NEXT_UPSTREAM =
  /^((error|timeout|invalid_header|http_500|http_502|http_503|http_504|http_403|http_404|http_429|non_idempotent|off)\s?)+$/;

/**
 * proxy-next-upstream (+ -tries, -timeout) from `source` (an Ingress's annotations, or the ConfigMap:
 * each source reads whole numbers as ingress-nginx does there), over `base` (ingress-nginx's defaults,
 * or the ConfigMap's for an Ingress); null when none of them is set. An invalid value keeps the base's.
 */
export function readNextUpstream(source: ScalarSource, base: NextUpstreamModel): NextUpstreamModel | null {
  const conditionsText = source.get('proxy-next-upstream');
  const triesText = source.get('proxy-next-upstream-tries');
  const timeoutText = source.get('proxy-next-upstream-timeout');
  if (conditionsText === undefined && triesText === undefined && timeoutText === undefined) return null;
  let conditions = base.conditions;
  if (conditionsText !== undefined) {
    if (NEXT_UPSTREAM.test(conditionsText.trim())) conditions = conditionsText.trim().split(/\s+/);
    else
      source.invalid(
        'proxy-next-upstream',
        conditionsText,
        "nginx's proxy_next_upstream conditions",
        `${base.conditions.join(' ')} applies`,
      );
  }
  const whole = (name: string, fallback: number): number =>
    readWhole(source, name, fallback, {
      max: 999_999_999,
      expected: 'a whole number',
      kept: `${fallback} applies`,
    });
  return {
    conditions,
    tries: whole('proxy-next-upstream-tries', base.tries),
    timeoutMs: whole('proxy-next-upstream-timeout', base.timeoutMs / 1000) * 1000,
  };
}

const HASH_BY = /^[A-Za-z0-9\-_${}]*$/;
const ALGORITHMS = ['round_robin', 'chash', 'chashsubset', 'sticky_balanced', 'sticky_persistent', 'ewma'];

/** What ingress-nginx's upstreamhashby and loadbalancing parsers read, from annotations or ConfigMap data. */
export interface Balancing {
  hashBy: UpstreamHashByModel | null;
  /** null: not set here. */
  loadBalance: 'round_robin' | 'ewma' | null;
  /** proxy-next-upstream (+ -tries, -timeout) of an Ingress, over the ConfigMap's; undefined: not set here. */
  nextUpstream?: NextUpstreamModel;
}

/** upstream-hash-by-subset: a Go boolean (else warned, false, where ingress-nginx drops the Ingress). */
function hashSubset(
  get: (name: string) => string | undefined,
  warnAbout: (name: string, message: string) => void,
): boolean {
  const text = get('upstream-hash-by-subset');
  if (text === undefined || text === '') return false;
  const subset = parseGoBool(text);
  if (subset === null)
    warnAbout('upstream-hash-by-subset', `${JSON.stringify(text)} is not a boolean; false applies`);
  return subset ?? false;
}

/** upstream-hash-by-subset-size: strconv.Atoi (else warned); 0, absent or refused is 3. */
function hashSubsetSize(
  get: (name: string) => string | undefined,
  warnAbout: (name: string, message: string) => void,
): number {
  const text = get('upstream-hash-by-subset-size');
  if (text === undefined || text === '') return 3;
  if (!/^[0-9]{1,6}$/.test(text)) {
    warnAbout('upstream-hash-by-subset-size', `${JSON.stringify(text)} is not a whole number; 3 applies`);
    return 3;
  }
  return Number(text) > 0 ? Number(text) : 3;
}

/**
 * upstream-hash-by (+ -subset, -subset-size) and load-balance from `get` (an Ingress's annotations or
 * the ConfigMap's data). ingress-nginx's other algorithms (chash, sticky_*) are what affinity and
 * upstream-hash-by select; as a load-balance value they are round robin here, with a warning.
 */
export function readBalancing(
  get: (name: string) => string | undefined,
  warnAbout: (name: string, message: string) => void,
): Balancing {
  let hashBy: UpstreamHashByModel | null = null;
  const by = get('upstream-hash-by');
  if (by !== undefined && by.trim() !== '') {
    if (!HASH_BY.test(by.trim()))
      warnAbout(
        'upstream-hash-by',
        `${JSON.stringify(by)} is not nginx variables and text of [A-Za-z0-9-_]; ignored`,
      );
    else {
      const subset = hashSubset(get, warnAbout);
      const size = hashSubsetSize(get, warnAbout);
      hashBy = { by: by.trim(), subsetSize: subset ? size : null };
    }
  }
  let loadBalance: Balancing['loadBalance'] = null;
  const lb = get('load-balance');
  if (lb !== undefined && lb.trim() !== '') {
    // As written: ingress-nginx's validator is case-sensitive ('EWMA' is refused there).
    const v = lb.trim();
    if (v === 'ewma' || v === 'round_robin') loadBalance = v;
    else {
      warnAbout(
        'load-balance',
        ALGORITHMS.includes(v)
          ? `${v} is chosen by affinity or upstream-hash-by, not load-balance; round_robin applies`
          : `${JSON.stringify(lb)} is not round_robin or ewma; round_robin applies`,
      );
      loadBalance = 'round_robin';
    }
  }
  return { hashBy, loadBalance };
}

/** An Ingress's balancing annotations; proxy-next-upstream* over `nextUpstreamBase` (the ConfigMap's). */
export function parseBalancing(
  annotations: Readonly<Record<string, string>>,
  origin: Origin,
  issues: ConfigIssue[],
  nextUpstreamBase: NextUpstreamModel,
): Balancing {
  const get = (name: string) => annotations[PREFIX + name];
  const warnAbout = (name: string, message: string) => warnAnnotation({ origin, issues }, name, message);
  const balancing = readBalancing(get, warnAbout);
  const nextUpstream = readNextUpstream(annotationSource(annotations, { origin, issues }), nextUpstreamBase);
  return nextUpstream === null ? balancing : { ...balancing, nextUpstream };
}

/** A canary Ingress's traffic policy (its backend comes from each of its paths). */
export type CanaryPolicy = Omit<CanaryModel, 'backend' | 'ingress'>;

// ingress-nginx's validators: BasicCharsRegex for names and values, IsValidRegex for the pattern.
const REGEX_CHARS = IS_VALID_REGEX;

/**
 * A header pattern is matched against what clients send: never one that can backtrack without bound.
 * Refused, it still stands (ingress-nginx would run it): a header never matches it.
 */
function refusedPattern(sink: { origin: Origin; issues: ConfigIssue[] }, pattern: string | null): boolean {
  const risk = pattern === null ? null : backtrackingRisk(pattern);
  if (risk === null) return false;
  warnAnnotation(
    sink,
    'canary-by-header-pattern',
    `${JSON.stringify(pattern)} ${risk}; never run: no header matches it`,
  );
  return true;
}

/**
 * The canary policy of an Ingress with `canary: "true"`; null for any other Ingress. canary-* without
 * `canary: "true"` is ingress-nginx's "configured but not enabled": warned, and the Ingress is a
 * normal one.
 */
export function parseCanary(
  annotations: Readonly<Record<string, string>>,
  origin: Origin,
  issues: ConfigIssue[],
): CanaryPolicy | null {
  const sink = { origin, issues };
  const get = (name: string) => annotations[PREFIX + name];
  // ingress-nginx removes spaces before checking names and values, not before checking the pattern;
  // then it reads the value with its lines trimmed (an empty one is none).
  const text = (name: string, valid: RegExp, keepSpaces = false): string | null => {
    const v = get(name);
    if (v === undefined || v === '') return null;
    const read = goAnnotationString(v);
    if (read !== '' && valid.test(keepSpaces ? v : v.replaceAll(' ', ''))) return read;
    warnAnnotation(sink, name, `${JSON.stringify(v)} is not accepted; ignored`);
    return null;
  };
  const int = (name: string, fallback: number): number => {
    const v = get(name);
    if (v === undefined) return fallback;
    const n = parseGoInt(v);
    if (n !== null) return n;
    warnAnnotation(sink, name, `${JSON.stringify(v)} is not a whole number; ${fallback} applies`);
    return fallback;
  };
  const enabledText = get('canary');
  const enabled = enabledText === undefined ? false : parseGoBool(enabledText);
  if (enabled === null)
    warnAnnotation(sink, 'canary', `${JSON.stringify(enabledText)} is not a boolean; false applies`);
  const headerPattern = text('canary-by-header-pattern', REGEX_CHARS, true);
  const policy: CanaryPolicy = {
    header: text('canary-by-header', BASIC_CHARS),
    headerValue: text('canary-by-header-value', BASIC_CHARS),
    headerPattern,
    ...(refusedPattern(sink, headerPattern) ? { headerPatternRefused: true } : {}),
    cookie: text('canary-by-cookie', BASIC_CHARS),
    weight: int('canary-weight', 0),
    weightTotal: int('canary-weight-total', 100),
  };
  if (enabled === true) {
    accessIgnored(annotations, sink);
    // As written: ingress-nginx's validator is case-sensitive and the balancer compares the raw value.
    const behavior = get('affinity-canary-behavior');
    if (behavior !== undefined && behavior !== '' && behavior !== 'sticky' && behavior !== 'legacy')
      warnAnnotation(
        sink,
        'affinity-canary-behavior',
        `${JSON.stringify(behavior)} is not sticky or legacy; sticky applies`,
      );
    return behavior === 'legacy' ? { ...policy, legacyAffinity: true } : policy;
  }
  const configured =
    policy.weight > 0 ||
    policy.header !== null ||
    policy.headerValue !== null ||
    policy.cookie !== null ||
    policy.headerPattern !== null;
  if (configured)
    warnAnnotation(
      sink,
      'canary',
      'canary-* annotations are configured but canary is not "true"; they have no effect',
    );
  return null;
}

/** Access annotations a canary Ingress does not apply (the main Ingress's location serves it). */
const ACCESS_ANNOTATIONS = [
  'allowlist-source-range',
  'whitelist-source-range',
  'denylist-source-range',
  'auth-type',
  'auth-url',
  'auth-tls-secret',
  'limit-rps',
  'limit-rpm',
  'limit-connections',
  'satisfy',
];

/** A canary's own access annotations protect nothing: said once, naming them. */
function accessIgnored(annotations: Readonly<Record<string, string>>, sink: IssueSink): void {
  const present = ACCESS_ANNOTATIONS.filter((name) => annotations[PREFIX + name] !== undefined);
  if (present.length === 0) return;
  sink.issues.push({
    severity: 'warning',
    code: 'CANARY_ACCESS_IGNORED',
    message: `${describeOrigin(sink.origin)}: canary Ingress with ${present.join(', ')}: a canary is served by the main Ingress's locations and takes their access rules; its own are ignored (as in ingress-nginx)`,
    origin: sink.origin,
  });
}

const URL_CHARS = /^[-._~a-zA-Z0-9/:,?&=]*$/;
const SECONDS = /^(0|-?[1-9]\d*)$/;

/**
 * affinity: cookie with its session-cookie-* (ingress-nginx's sessionaffinity parser); null without
 * `affinity: cookie`. An invalid value takes its default, with a warning.
 */
export function parseAffinity(
  annotations: Readonly<Record<string, string>>,
  origin: Origin,
  issues: ConfigIssue[],
): AffinityModel | null {
  const sink = { origin, issues };
  const get = (name: string) => annotations[PREFIX + name];
  const type = get('affinity');
  if (type === undefined) return null;
  // As written: ingress-nginx's validator is case-sensitive and its parser compares the raw value.
  if (type !== 'cookie') {
    warnAnnotation(sink, 'affinity', `${JSON.stringify(type)} is not "cookie"; no affinity`);
    return null;
  }
  const text = (name: string, valid: RegExp): string | null => {
    const v = get(name);
    if (v === undefined || v === '') return null;
    if (valid.test(v)) return v;
    warnAnnotation(sink, name, `${JSON.stringify(v)} is not accepted; ignored`);
    return null;
  };
  const values = annotationSource(annotations, sink);
  const bool = (name: string) => readBool(values, name, false, { kept: 'false applies' });
  const seconds = (name: string): number | null => {
    const v = text(name, SECONDS);
    return v === null ? null : Number(v);
  };
  const mode = get('affinity-mode');
  if (mode !== undefined && mode !== '' && mode !== 'balanced' && mode !== 'persistent')
    warnAnnotation(
      sink,
      'affinity-mode',
      `${JSON.stringify(mode)} is not balanced or persistent; balanced applies`,
    );
  // ValidateOptions trims it, and parseString passes it on trimmed: " Strict " is Strict there.
  const sameSiteText = get('session-cookie-samesite');
  const sameSite = sameSiteText === undefined ? undefined : goAnnotationString(sameSiteText);
  const validSameSite = sameSite !== undefined && ['none', 'lax', 'strict'].includes(sameSite.toLowerCase());
  if (sameSiteText !== undefined && sameSiteText !== '' && !validSameSite)
    warnAnnotation(
      sink,
      'session-cookie-samesite',
      `${JSON.stringify(sameSiteText)} is not None, Lax or Strict; ignored`,
    );
  const path = text('session-cookie-path', URL_CHARS);
  if (path === null && parseGoBool(get('use-regex') ?? '') === true)
    annotationIssue(
      sink,
      'warning',
      'SESSION_COOKIE_PATH_IS_REGEX',
      'session-cookie-path',
      'should be set when use-regex is true: the cookie Path is otherwise the regex as written',
    );
  return {
    mode: mode === 'persistent' ? 'persistent' : 'balanced',
    cookieName: text('session-cookie-name', BASIC_CHARS) ?? 'INGRESSCOOKIE',
    expires: seconds('session-cookie-expires'),
    maxAge: seconds('session-cookie-max-age'),
    path,
    domain: text('session-cookie-domain', BASIC_CHARS),
    secure: bool('session-cookie-secure'),
    sameSite: validSameSite ? sameSite! : null,
    conditionalSameSiteNone: bool('session-cookie-conditional-samesite-none'),
    changeOnFailure: bool('session-cookie-change-on-failure'),
  };
}

/**
 * Sticky sessions belong to the upstream, as in ingress-nginx: every location proxying to a Service
 * that some Ingress asks affinity for honours the cookie; the locations of those Ingresses set it. The
 * last such Ingress (merge order) gives the cookie's settings, the first one the mode.
 */
export function mergeAffinity(
  hosts: ReadonlyMap<string, { locations: LocationModel[] }>,
  affinityOf: (location: LocationModel) => AffinityModel | null,
): void {
  const byUpstream = new Map<string, AffinityModel>();
  const all = [...hosts.values()].flatMap((h) => h.locations);
  for (const l of all) {
    const own = l.backend === null ? null : affinityOf(l);
    if (own === null) continue;
    const first = byUpstream.get(l.backend!.upstreamName);
    byUpstream.set(l.backend!.upstreamName, first === undefined ? own : { ...own, mode: first.mode });
    l.setsAffinityCookie = true;
  }
  if (byUpstream.size === 0) return;
  for (const l of all) {
    const affinity = l.backend === null ? undefined : byUpstream.get(l.backend.upstreamName);
    if (affinity !== undefined) l.affinity = affinity;
  }
}

export interface CanaryMerge {
  canaries: ReadonlyMap<IngressView, CanaryPolicy>;
  /** Every location built from the main Ingresses, by host. */
  hosts: ReadonlyMap<string, { locations: LocationModel[] }>;
  backendRef(ing: IngressView, p: IngressPathView): BackendRef | null;
  issues: ConfigIssue[];
}

/**
 * Each canary path's backend becomes the alternative of the main backend of the same host, path and
 * pathType. As in ingress-nginx the alternative belongs to the main upstream, so every location that
 * proxies to it (whatever its host) has the canary; the first canary of an upstream wins. A canary
 * path with no such main location is not served (a warning).
 */
export function mergeCanaries(m: CanaryMerge): void {
  const byUpstream = new Map<string, CanaryModel>();
  for (const [ing, policy] of m.canaries) {
    const ingress: ObjectRef = { namespace: ing.meta.namespace, name: ing.meta.name };
    for (const rule of ing.rules) {
      for (const p of rule.paths) {
        const path = p.path === '' ? '/' : p.path;
        const main = m.hosts
          .get(rule.host)
          ?.locations.find((l) => l.path === path && l.pathType === p.pathType && l.backend !== null);
        const backend = main === undefined ? null : m.backendRef(ing, p);
        if (main === undefined || backend === null || backend.upstreamName === main.backend!.upstreamName) {
          notMerged(m.issues, ing, p, rule.host, path);
          continue;
        }
        if (!byUpstream.has(main.backend!.upstreamName))
          byUpstream.set(main.backend!.upstreamName, { ...policy, ingress, backend });
      }
    }
  }
  if (byUpstream.size === 0) return;
  for (const build of m.hosts.values()) {
    for (const l of build.locations) {
      const canary = l.backend === null ? undefined : byUpstream.get(l.backend.upstreamName);
      if (canary !== undefined) l.canary = canary;
    }
  }
}

function notMerged(
  issues: ConfigIssue[],
  ing: IngressView,
  p: IngressPathView,
  host: string,
  path: string,
): void {
  issues.push({
    severity: 'warning',
    code: 'CANARY_NOT_MERGED',
    message: `${describeOrigin(ing.origin)} ${p.field}: no main Ingress serves host ${JSON.stringify(host)} path ${JSON.stringify(path)} (${p.pathType}) with another Service; this canary path is not served`,
    origin: ing.origin,
    field: p.field,
  });
}
