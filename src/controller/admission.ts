// The validating admission webhook's verdict: an AdmissionReview v1 for an Ingress → allowed, or
// denied with the lines `keepip doctor` prints for the same problems (`error CODE: message`), so
// `kubectl apply` says at once what the gateway would otherwise fail closed on (503) or drop. The
// Ingress is translated together with everything the controller serves now, as the gateway would
// see it after the apply. Pure.
import { describeOrigin, issueMessage } from '../config/issue-text.ts';
import type { ConfigIssue, LocationModel, Origin, Topology } from '../config/model.ts';
import { compileIngressRegex } from '../gateway/rewrite.ts';
import { DEFAULT_ANNOTATIONS_PREFIX, foldAnnotationsPrefix } from '../k8s/annotation-prefix.ts';
import { annotationField } from '../k8s/field-path.ts';
import { isRecord } from '../k8s/reader.ts';
import { parseCanary } from '../k8s/traffic-annotations.ts';
import { nginxLocationPath } from '../k8s/translate-gateway.ts';
import { backtrackingRisk } from '../config/regex-backtracking.ts';
import type { KubeObject } from './resources.ts';
import {
  buildClusterTopology,
  CLUSTER_ORIGIN,
  type ClusterObjects,
  isCatchAll,
  isOurIngress,
  ourIngresses,
  type SnapshotOptions,
} from './snapshot.ts';

/**
 * Annotations an invalid value of which is refused at admission: rewrite-target and app-root (their
 * fallback would change routing), and those whose ingress-nginx parser hands the validation error up,
 * so that its webhook refuses the Ingress (internal/ingress/annotations/*: redirect, alias,
 * upstreamvhost, xforwardedprefix, connection, upstreamhashby, loadbalancing, defaultbackend,
 * customhttperrors, clientbodybuffersize, sslpassthrough, auth, authtls, opentelemetry).
 */
const REFUSED_INVALID_ANNOTATIONS = [
  'rewrite-target',
  'app-root',
  'permanent-redirect',
  'permanent-redirect-code',
  'temporal-redirect',
  'temporal-redirect-code',
  'relative-redirects',
  'from-to-www-redirect',
  'server-alias',
  'upstream-vhost',
  'x-forwarded-prefix',
  'connection-proxy-header',
  'upstream-hash-by',
  'upstream-hash-by-subset',
  'upstream-hash-by-subset-size',
  'load-balance',
  'default-backend',
  'custom-http-errors',
  'client-body-buffer-size',
  'ssl-passthrough',
  'auth-realm',
  'auth-tls-error-page',
  'auth-tls-pass-certificate-to-upstream',
  'auth-tls-match-cn',
  'opentelemetry-operation-name',
];
/** keepip never runs snippets: an Ingress asking for one is refused, as ingress-nginx does with allow-snippet-annotations off. */
const SNIPPET = /-snippet"\]$/;

export interface AdmissionVerdict {
  allowed: boolean;
  /** The doctor's lines for each refused problem. */
  message: string;
  /** Warnings kubectl prints for problems that do not block the apply. */
  warnings: string[];
  /** The status of a refusal: 400 BadRequest, or 503 while the cluster has not been read. */
  status?: { code: number; reason: string };
  /** What ingress-nginx's admission metrics report, for an Ingress of ours that was checked. */
  check?: AdmissionCheck;
}

/**
 * One check of an Ingress this controller serves, as ingress-nginx's admission metrics and
 * check_success/check_errors counters see it. `ingresses`: the Ingresses translated together (ours,
 * the candidate included); `configBytes`: their size as JSON (keepip renders no nginx.conf).
 */
export interface AdmissionCheck {
  namespace: string;
  name: string;
  allowed: boolean;
  ingresses: number;
  renderSeconds: number;
  testSeconds: number;
  configBytes: number;
  roundtripSeconds: number;
}

/** The clock a review is timed by (milliseconds) and who hears of each check; none in pure tests. */
export interface AdmissionObserver {
  now(): number;
  checked(check: AdmissionCheck): void;
}

/** A review that came before the first complete list of the cluster: nothing to check against yet. */
export interface NotSyncedRefusal {
  code: 'ADMISSION_NOT_SYNCED';
  line: string;
}

/**
 * Before the first sync an overlap or a duplicate cannot be seen, so the Ingress is refused (503, the
 * API server's caller may retry) rather than admitted unchecked. ingress-nginx does not listen then.
 */
function notSyncedVerdict(): AdmissionVerdict {
  const refusal: NotSyncedRefusal = {
    code: 'ADMISSION_NOT_SYNCED',
    line: 'the controller has not finished reading the cluster yet, so this Ingress cannot be checked against the others; retry in a few seconds',
  };
  return {
    allowed: false,
    message: `error ${refusal.code}: ${refusal.line}`,
    warnings: [],
    status: { code: 503, reason: 'ServiceUnavailable' },
  };
}

/**
 * Every error about the Ingress is something the gateway fails closed on (503) or drops (a bad path
 * or host, an invalid list, a refused backend protocol or access configuration); a refused rewrite or
 * app-root would route differently than asked; the other REFUSED_INVALID_ANNOTATIONS ingress-nginx's
 * webhook refuses; a snippet is never run.
 */
function refuses(issue: ConfigIssue): boolean {
  if (issue.severity === 'error') return true;
  const field = issue.field ?? '';
  if (SNIPPET.test(field)) return true;
  return (
    issue.code === 'INVALID_ANNOTATION_VALUE' &&
    REFUSED_INVALID_ANNOTATIONS.some((a) => field.includes(`nginx.ingress.kubernetes.io/${a}"`))
  );
}

/** A refusal of the webhook's own: a catch-all Ingress under --disable-catch-all. */
export interface CatchAllRefusal {
  code: 'ADMISSION_CATCH_ALL_DISABLED';
  line: string;
}

/** Where the webhook's own lines about the candidate say it comes from: `cluster (Ingress ns/name)`. */
function candidateOrigin(candidate: KubeObject): Origin {
  const namespace = candidate.metadata?.namespace ?? 'default';
  return {
    file: CLUSTER_ORIGIN,
    document: 0,
    kind: 'Ingress',
    namespace,
    name: candidate.metadata?.name ?? '',
  };
}

/** ingress-nginx's checkIngress refuses a catch-all before anything else when the flag is set. */
function catchAllRefusal(candidate: KubeObject, options: SnapshotOptions): string | null {
  if (options.disableCatchAll !== true || !isCatchAll(candidate)) return null;
  const refusal: CatchAllRefusal = {
    code: 'ADMISSION_CATCH_ALL_DISABLED',
    line: `${describeOrigin(candidateOrigin(candidate))} spec.defaultBackend: this controller runs with --disable-catch-all, so a catch-all Ingress is not served; remove spec.defaultBackend`,
  };
  return `error ${refusal.code}: ${refusal.line}`;
}

/** A refusal of the webhook's own: an annotation under the standard prefix with a custom --annotations-prefix. */
export interface PrefixRefusal {
  code: 'ADMISSION_ANNOTATION_PREFIX';
  line: string;
}

/**
 * ingress-nginx's checkIngress refuses `nginx.ingress.kubernetes.io/*` annotations when the controller
 * reads another prefix: they would be ignored without a word (an allowlist among them too).
 */
function prefixRefusals(candidate: KubeObject, options: SnapshotOptions): string[] {
  const prefix = options.annotationsPrefix;
  if (prefix === DEFAULT_ANNOTATIONS_PREFIX) return [];
  const origin = describeOrigin(candidateOrigin(candidate));
  const standard = `${DEFAULT_ANNOTATIONS_PREFIX}/`;
  return Object.keys(candidate.metadata?.annotations ?? {})
    .filter((key) => key.startsWith(standard))
    .sort()
    .map((key) => {
      const refusal: PrefixRefusal = {
        code: 'ADMISSION_ANNOTATION_PREFIX',
        line: `${origin} ${annotationField(key)}: this controller reads annotations under ${prefix}/ (--annotations-prefix), so this one would be ignored; use ${JSON.stringify(`${prefix}/${key.slice(standard.length)}`)}`,
      };
      return `error ${refusal.code}: ${refusal.line}`;
    });
}

/** A refusal of the webhook's own, about a regex path (the doctor's line shape). */
export interface RegexRefusal {
  code: 'ADMISSION_REGEX_BACKTRACKS';
  line: string;
}

const PATH_FIELD = 'spec.rules[].http.paths[].path';

/** Annotations whose regexes the gateway matches against what clients send, and how to find them. */
const CLIENT_MATCHED: readonly [string, (value: string) => string[]][] = [
  // Host header: `~regex` aliases.
  ['server-alias', (v) => v.split(',').flatMap((n) => (n.trim().startsWith('~') ? [n.trim().slice(1)] : []))],
  // A request header's value.
  ['canary-by-header-pattern', (v) => [v]],
  // The client certificate's subject (with optional_no_ca, any self-signed certificate).
  ['auth-tls-match-cn', (v) => [v]],
];

function backtracks(at: string, what: string, source: string): string | null {
  const risk = backtrackingRisk(source);
  if (risk === null) return null;
  const refusal: RegexRefusal = {
    code: 'ADMISSION_REGEX_BACKTRACKS',
    line: `${at}: ${what} ${JSON.stringify(source)} ${risk}; match the same with a single repeat (e.g. "[a-z0-9/]*")`,
  };
  return `error ${refusal.code}: ${refusal.line}`;
}

/**
 * The regexes Ingress ns/name brings: a path the gateway cannot compile (it would answer 503 for it,
 * and ingress-nginx's `nginx -t` refuses it), and any path or client-matched annotation with a nested
 * unbounded repeat, on which V8's backtracking engine, unlike nginx's PCRE with its match limit, can
 * spend minutes per request.
 */
function regexRefusals(topology: Topology, candidate: KubeObject, o: SnapshotOptions): string[] {
  const ns = candidate.metadata?.namespace ?? 'default';
  const name = candidate.metadata?.name ?? '';
  const lines = new Set<string>();
  for (const vhost of topology.gateway.virtualHosts) {
    for (const location of vhost.locations) {
      if (location.regex === null || location.ingress.namespace !== ns || location.ingress.name !== name)
        continue;
      const at = `${describeOrigin(location.ingressOrigin)} ${PATH_FIELD}`;
      // Uncompilable (ROUTE_INVALID_REGEX) or a nested unbounded repeat (ROUTE_REGEX_BACKTRACKS).
      const compiled = compileIngressRegex(location.regex, true);
      if (!compiled.ok) lines.add(`error ${compiled.error.code}: ${at}: ${compiled.error.message}`);
    }
  }
  const annotations = foldAnnotationsPrefix(candidate.metadata?.annotations ?? {}, o.annotationsPrefix);
  const origin = describeOrigin(candidateOrigin(candidate));
  for (const [annotation, sources] of CLIENT_MATCHED) {
    const key = `${DEFAULT_ANNOTATIONS_PREFIX}/${annotation}`;
    const value = annotations[key];
    if (typeof value !== 'string') continue;
    for (const source of sources(value)) {
      const line = backtracks(`${origin} ${annotationField(key)}`, annotation, source);
      if (line !== null) lines.add(line);
    }
  }
  return [...lines];
}

/** A refusal of the webhook's own: a host and path another served Ingress already defines. */
export interface OverlapRefusal {
  code: 'ADMISSION_PATH_OVERLAP';
  line: string;
}

type PathSpec = { path?: string; pathType?: string; backend?: { service?: unknown } };

/** A location of another Ingress under one nginx location path; `exactCopy`: the `= /path` twin of a Prefix. */
interface Holder {
  location: LocationModel;
  exactCopy: boolean;
}

/**
 * The locations of other Ingresses per host and nginx location path, as ingress-nginx's
 * ingressForHostPath reads them after updateServerLocations: a Prefix path (not `/`, not a regex) is
 * `/path/` and its exact twin `/path`; the pathType is not compared. One pass, not one per path.
 */
function locationsOfOthers(topology: Topology, ns: string, name: string): Map<string, Holder[]> {
  const byKey = new Map<string, Holder[]>();
  const add = (key: string, holder: Holder) => {
    const list = byKey.get(key);
    if (list === undefined) byKey.set(key, [holder]);
    else list.push(holder);
  };
  for (const vhost of topology.gateway.virtualHosts) {
    // On a regex host a plain Prefix (its own Ingress asks no regex) is split in two as on a plain host,
    // `~* ^/path/` and its exact twin `~* ^/path`: keyed as a Prefix by the holder's own annotations.
    const holderPath = (l: LocationModel) => `${l.ingress.namespace}/${l.ingress.name}\u0000${l.path}`;
    const split = new Set(vhost.locations.filter((l) => l.regex === `${l.path}/`).map(holderPath));
    for (const l of vhost.locations) {
      if (l.defaultBackendRoot === true || (l.ingress.namespace === ns && l.ingress.name === name)) continue;
      if (l.regex === l.path && split.has(holderPath(l))) continue; // the twin: keyed with its Prefix
      const plain = l.regex === null || l.regex === `${l.path}/`;
      const prefix = plain && l.pathType === 'Prefix' && l.path !== '/';
      add(`${vhost.host}\u0000${prefix ? nginxLocationPath(l.path, 'Prefix') : l.path}`, {
        location: l,
        exactCopy: false,
      });
      if (prefix) add(`${vhost.host}\u0000${l.path}`, { location: l, exactCopy: true });
    }
  }
  return byKey;
}

/**
 * ingress-nginx's checkOverlap: a path of the candidate whose host, path and pathType a location of
 * another Ingress holds (it came first and wins the merge, so the candidate's path would not be
 * served). A canary makes no location, so it never overlaps; a path without a Service is skipped.
 */
function overlapRefusals(topology: Topology, candidate: KubeObject, o: SnapshotOptions): string[] {
  const at = candidateOrigin(candidate);
  const { namespace: ns, name } = at;
  const annotations = foldAnnotationsPrefix(candidate.metadata?.annotations ?? {}, o.annotationsPrefix);
  if (parseCanary(annotations, at, []) !== null) return [];
  const origin = describeOrigin(at);
  const spec = (candidate.spec ?? {}) as { rules?: { host?: string; http?: { paths?: PathSpec[] } }[] };
  const lines: string[] = [];
  const holders = locationsOfOthers(topology, ns, name);
  (spec.rules ?? []).forEach((rule, r) => {
    const host = (rule.host ?? '').toLowerCase();
    (rule.http?.paths ?? []).forEach((p, i) => {
      if (p.backend?.service === undefined) return;
      const path = p.path === undefined || p.path === '' ? '/' : p.path;
      const pathType = p.pathType ?? 'ImplementationSpecific';
      // The candidate's own Exact path takes the place of a Prefix's exact twin (updateServerLocations).
      const holder = holders
        .get(`${host}\u0000${path}`)
        ?.find((h) => !(h.exactCopy && pathType === 'Exact'))?.location;
      if (holder === undefined) return;
      const refusal: OverlapRefusal = {
        code: 'ADMISSION_PATH_OVERLAP',
        line: `${origin} spec.rules[${r}].http.paths[${i}]: host ${JSON.stringify(host)} and path ${JSON.stringify(path)} (${pathType}) is already defined in Ingress ${holder.ingress.namespace}/${holder.ingress.name} (its ${holder.pathType} path ${JSON.stringify(holder.path)}); this path would not be served`,
      };
      lines.push(`error ${refusal.code}: ${refusal.line}`);
    });
  });
  return lines;
}

/** The doctor prints configuration issues as `severity CODE: message`. */
export function doctorLine(issue: ConfigIssue): string {
  return `${issue.severity} ${issue.code}: ${issueMessage(issue)}`;
}

/**
 * As ingress-nginx's CheckIngress: an Ingress being deleted (refusing an update, a finalizer's
 * removal, would keep it from ever going), of another class, or outside --watch-namespace (another
 * controller's) is not reviewed.
 */
/** An Ingress whose fields have types no API server would send: refused before any translation. */
export interface MalformedRefusal {
  code: 'ADMISSION_MALFORMED_INGRESS';
  line: string;
}

function malformedVerdict(field: string): AdmissionVerdict {
  const refusal: MalformedRefusal = {
    code: 'ADMISSION_MALFORMED_INGRESS',
    line: `${field} has a type the Ingress schema does not allow`,
  };
  return { allowed: false, message: `error ${refusal.code}: ${refusal.line}`, warnings: [] };
}

/** The first field of `candidate` whose type the Ingress schema forbids, among those read here; null when none. */
function malformedField(candidate: KubeObject): string | null {
  const meta: unknown = candidate.metadata ?? {};
  if (!isRecord(meta)) return 'metadata';
  for (const key of ['name', 'namespace'] as const)
    if (meta[key] !== undefined && typeof meta[key] !== 'string') return `metadata.${key}`;
  for (const key of ['annotations', 'labels'] as const) {
    const map = meta[key];
    if (map === undefined) continue;
    if (!isRecord(map)) return `metadata.${key}`;
    for (const [name, value] of Object.entries(map))
      if (typeof value !== 'string') return `metadata.${key}[${JSON.stringify(name.slice(0, 100))}]`;
  }
  const spec: unknown = candidate.spec ?? {};
  if (!isRecord(spec)) return 'spec';
  const rules = spec.rules ?? [];
  if (!Array.isArray(rules)) return 'spec.rules';
  for (const [r, rule] of rules.entries()) {
    if (!isRecord(rule)) return `spec.rules[${r}]`;
    if (rule.host !== undefined && typeof rule.host !== 'string') return `spec.rules[${r}].host`;
    if (rule.http === undefined) continue;
    if (!isRecord(rule.http) || !Array.isArray(rule.http.paths ?? [])) return `spec.rules[${r}].http.paths`;
    for (const [i, path] of ((rule.http.paths ?? []) as unknown[]).entries())
      if (!isRecord(path)) return `spec.rules[${r}].http.paths[${i}]`;
  }
  return null;
}

function underReview(candidate: KubeObject, current: ClusterObjects, options: SnapshotOptions): boolean {
  if (candidate.metadata?.deletionTimestamp) return false;
  const watched = options.watchNamespace ?? '';
  if (watched !== '' && (candidate.metadata?.namespace ?? 'default') !== watched) return false;
  return isOurIngress(candidate, current.ingressClasses, options);
}

export function verdictFor(
  candidate: KubeObject,
  current: ClusterObjects,
  options: SnapshotOptions,
  now: () => number = () => 0,
): AdmissionVerdict {
  const started = now();
  const malformed = malformedField(candidate);
  if (malformed !== null) return malformedVerdict(malformed);
  if (!underReview(candidate, current, options)) return { allowed: true, message: '', warnings: [] };
  const ns = candidate.metadata?.namespace ?? 'default';
  const name = candidate.metadata?.name ?? '';
  const refusedEarly = catchAllRefusal(candidate, options) ?? prefixRefusals(candidate, options).join('\n');
  if (refusedEarly !== '')
    return { allowed: false, message: refusedEarly, warnings: [], check: refusedCheck(ns, name) };
  const others = current.ingresses.filter(
    (i) => !(i.metadata?.namespace === ns && i.metadata?.name === name),
  );
  const cluster = {
    ...current,
    // As ingress-nginx's CheckIngress, the candidate merges last whatever its age: an update of an
    // older Ingress never takes another's host and path through the webhook.
    ingresses: [
      ...others,
      { ...candidate, metadata: { ...candidate.metadata, namespace: ns, creationTimestamp: undefined } },
    ],
    namespaces: null,
  };
  const rendering = now();
  const topology = buildClusterTopology(cluster, options);
  const testing = now();
  const mine = topology.issues.filter(
    (i) => i.origin?.kind === 'Ingress' && i.origin.namespace === ns && i.origin.name === name,
  );
  const refused = mine.filter(refuses);
  const warnings = mine.filter((i) => !refused.includes(i) && i.severity !== 'info').map(doctorLine);
  const lines = [
    ...refused.map(doctorLine),
    ...overlapRefusals(topology, candidate, options),
    ...regexRefusals(topology, candidate, options),
  ];
  const tested = ourIngresses(cluster, options);
  const done = now();
  const check: AdmissionCheck = {
    namespace: ns,
    name,
    allowed: lines.length === 0,
    ingresses: tested.length,
    renderSeconds: (testing - rendering) / 1000,
    testSeconds: (done - testing) / 1000,
    configBytes: jsonBytes(tested),
    roundtripSeconds: (done - started) / 1000,
  };
  if (lines.length === 0) return { allowed: true, message: '', warnings, check };
  return { allowed: false, message: lines.join('\n'), warnings, check };
}

/** The size of `value` as JSON; 0 when it cannot be written (nested deeper than the stack allows). */
function jsonBytes(value: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(value));
  } catch {
    return 0;
  }
}

/** A refusal before the translation: counted as a failed check, with nothing rendered or tested. */
function refusedCheck(namespace: string, name: string): AdmissionCheck {
  return {
    namespace,
    name,
    allowed: false,
    ingresses: 0,
    renderSeconds: 0,
    testSeconds: 0,
    configBytes: 0,
    roundtripSeconds: 0,
  };
}

export type ReviewOutcome =
  | { ok: true; response: KubeObject }
  | { ok: false; code: 'ADMISSION_BAD_REVIEW'; message: string };

/**
 * AdmissionReview v1 in → AdmissionReview v1 out. Non-Ingress kinds and DELETE are allowed.
 * `current` is null until the cluster has been listed once.
 */
export function reviewAdmission(
  body: unknown,
  current: ClusterObjects | null,
  options: SnapshotOptions,
  observer?: AdmissionObserver,
): ReviewOutcome {
  const review = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const request = (review.request ?? null) as Record<string, unknown> | null;
  // Only v1, as ingress-nginx decodes it: the API server refuses a response of another version.
  if (
    review.apiVersion !== 'admission.k8s.io/v1' ||
    review.kind !== 'AdmissionReview' ||
    request === null ||
    typeof request.uid !== 'string'
  ) {
    return {
      ok: false,
      code: 'ADMISSION_BAD_REVIEW',
      message: 'not an admission.k8s.io/v1 AdmissionReview with request.uid',
    };
  }
  const kind = (request.kind ?? {}) as Record<string, unknown>;
  const object: unknown = request.object;
  let verdict: AdmissionVerdict = { allowed: true, message: '', warnings: [] };
  if (kind.kind === 'Ingress' && request.operation !== 'DELETE' && !isRecord(object)) {
    // A CREATE or UPDATE always carries the object: a string, a number, a list or nothing is no
    // Ingress (ingress-nginx refuses what it cannot decode too).
    verdict = malformedVerdict('request.object');
  } else if (kind.kind === 'Ingress' && request.operation !== 'DELETE' && isRecord(object)) {
    verdict =
      current === null
        ? notSyncedVerdict()
        : verdictFor(
            {
              ...(object as KubeObject),
              metadata: {
                ...(object as KubeObject).metadata,
                namespace: (object as KubeObject).metadata?.namespace ?? (request.namespace as string),
              },
            },
            current,
            options,
            observer?.now,
          );
    if (verdict.check !== undefined) observer?.checked(verdict.check);
  }
  return {
    ok: true,
    response: {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: request.uid,
        allowed: verdict.allowed,
        ...(verdict.allowed
          ? {}
          : {
              status: {
                ...(verdict.status ?? { code: 400, reason: 'BadRequest' }),
                message: verdict.message,
              },
            }),
        ...(verdict.warnings.length > 0 ? { warnings: verdict.warnings } : {}),
      },
    },
  };
}
