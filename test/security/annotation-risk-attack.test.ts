// A tenant who may write Ingresses but not the controller ConfigMap attacks annotations-risk-level and
// annotation-value-word-blocklist: key variants (case, other prefixes, no prefix, aliases, a custom
// --annotations-prefix), blocklist words split, re-cased or padded, long lists, a canary or an older
// Ingress on another tenant's host, the level changed at run time. The reference is ingress-nginx
// v1.15.1 (dbb11b92), transcribed below as a pure model; every keepip view of one Ingress must agree:
// the webhook's verdict (verdictFor, what the webhook answers), whether the translation serves it, its
// Warning Event, and (live controller) its status address.
// - keepip serves or admits what the model refuses, or a risky annotation takes effect: a finding.
// - keepip refuses what the model serves: only where ALLOWED (below) names the reason.
// Generated cases: fast-check, fixed seed; RISK_SEED=<n> or `random` explores.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { verdictFor } from '../../src/controller/admission.ts';
import { ingressEvents } from '../../src/controller/events.ts';
import {
  buildClusterTopology,
  type ClusterObjects,
  type SnapshotOptions,
} from '../../src/controller/snapshot.ts';
import type { Topology } from '../../src/config/model.ts';
import { ANNOTATION_RISK, annotationPolicyRefusals } from '../../src/k8s/annotation-risk.ts';
import type { Obj } from '../fixtures/fake-apiserver.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  DEFAULT_SNAPSHOT_OPTIONS,
  EMPTY_CLUSTER,
  endpointSlice,
  get,
  ingressReview,
  peerCertificate,
  postWebhook,
  service,
  tlsSecret,
  waitForHost,
  webCluster,
  webhookFlags,
} from '../controller/harness.ts';
import { mapLimited } from '../helpers/concurrency.ts';
// Go's strings.TrimSpace (unicode.IsSpace: U+0085 and U+3000 included, U+FEFF not), held against Go by
// test/k8s/go-reference.test.ts.
import { goTrimSpace } from '../helpers/go-net.ts';
import { type NamedBackends, startNamedBackends } from './helpers.ts';

const DEFAULT_PREFIX = 'nginx.ingress.kubernetes.io';
const CUSTOM_PREFIX = 'custom.example.com';
const CM = { namespace: 'ingress-nginx', name: 'risk-cm' };
const RUNS = 100;
const SEED = ((): number => {
  const chosen = process.env.RISK_SEED;
  return chosen === 'random' ? Date.now() % 2 ** 31 : Number(chosen ?? 20260321);
})();

// ---- ingress-nginx (the model) ------------------------------------------------------------------

/** parser/validators.go:37-42 (iota order). */
const RANK = { Low: 0, Medium: 1, High: 2, Critical: 3 } as const;
type Risk = keyof typeof RANK;

/**
 * Every AnnotationFields entry's `Risk:` (internal/ingress/annotations/<parser>/main.go), aliases with
 * their annotation's risk (ipallowlist/main.go:46 whitelist-source-range, ratelimit/main.go:192
 * limit-whitelist); auth-secret from auth/main.go:53-58 (AuthSecretConfig).
 */
const INGRESS_NGINX_RISK_LISTS: Record<Risk, string> = {
  Critical: 'auth-snippet configuration-snippet modsecurity-snippet server-snippet stream-snippet',
  High: 'auth-signin auth-tls-error-page auth-tls-match-cn auth-url mirror-host mirror-target modsecurity-transaction-id proxy-ssl-name server-alias upstream-hash-by',
  Medium:
    'affinity-mode allowlist-source-range app-root auth-cache-duration auth-cache-key auth-proxy-set-headers auth-realm auth-request-redirect auth-response-headers auth-secret auth-signin-redirect-param auth-tls-secret auth-tls-verify-client canary-by-cookie canary-by-header canary-by-header-pattern canary-by-header-value cors-allow-headers cors-allow-methods cors-allow-origin cors-expose-headers custom-headers denylist-source-range fastcgi-index fastcgi-params-configmap force-ssl-redirect opentelemetry-operation-name permanent-redirect preserve-trailing-slash proxy-body-size proxy-cookie-domain proxy-cookie-path proxy-next-upstream proxy-redirect-from proxy-redirect-to proxy-ssl-ciphers proxy-ssl-secret rewrite-target session-cookie-domain session-cookie-expires session-cookie-max-age session-cookie-name session-cookie-path temporal-redirect whitelist-source-range x-forwarded-prefix',
  Low: 'affinity affinity-canary-behavior auth-always-set-cookie auth-keepalive auth-keepalive-requests auth-keepalive-share-vars auth-keepalive-timeout auth-method auth-secret-type auth-tls-pass-certificate-to-upstream auth-tls-verify-depth auth-type backend-protocol canary canary-weight canary-weight-total client-body-buffer-size connection-proxy-header cors-allow-credentials cors-max-age custom-http-errors default-backend disable-proxy-intercept-errors enable-access-log enable-cors enable-global-auth enable-modsecurity enable-opentelemetry enable-owasp-core-rules enable-rewrite-log from-to-www-redirect http2-push-preload limit-allowlist limit-burst-multiplier limit-connections limit-rate limit-rate-after limit-rpm limit-rps limit-whitelist load-balance mirror-request-body opentelemetry-trust-incoming-span permanent-redirect-code proxy-buffer-size proxy-buffering proxy-buffers-number proxy-busy-buffers-size proxy-connect-timeout proxy-http-version proxy-max-temp-file-size proxy-next-upstream-timeout proxy-next-upstream-tries proxy-read-timeout proxy-request-buffering proxy-send-timeout proxy-ssl-protocols proxy-ssl-server-name proxy-ssl-verify proxy-ssl-verify-depth relative-redirects satisfy service-upstream session-cookie-change-on-failure session-cookie-conditional-samesite-none session-cookie-samesite session-cookie-secure ssl-ciphers ssl-passthrough ssl-prefer-server-ciphers ssl-redirect temporal-redirect-code upstream-hash-by-subset upstream-hash-by-subset-size upstream-vhost use-port-in-redirects use-regex',
};
const INGRESS_NGINX_RISK: ReadonlyMap<string, Risk> = new Map(
  (Object.entries(INGRESS_NGINX_RISK_LISTS) as [Risk, string][]).flatMap(([risk, names]) =>
    names.split(' ').map((name) => [name, risk] as const),
  ),
);

interface ModelConfig {
  level: Risk;
  /** The ConfigMap's annotation-value-word-blocklist as written; '' when absent (config.go default). */
  blocklist: string;
  prefix: string;
}

/** parser/main.go:200-211 StringRiskToRisk over the ConfigMap value (default "High", config.go). */
function modelConfig(data: Readonly<Record<string, string>>, prefix: string): ModelConfig {
  const word = (data['annotations-risk-level'] ?? 'High').toLowerCase();
  const level = (Object.keys(RANK) as Risk[]).find((r) => r.toLowerCase() === word) ?? 'Low';
  return { level, blocklist: data['annotation-value-word-blocklist'] ?? '', prefix };
}

type ModelKind = 'risk' | 'blocklist' | 'prefix' | 'snippet';
interface ModelRefusal {
  kind: ModelKind;
  key: string;
}

/** CheckAnnotationRisk (validators.go:253-266) over every key, TrimAnnotationPrefix (main.go:196-198). */
function modelRisk(annotations: Readonly<Record<string, string>>, cfg: ModelConfig): ModelRefusal[] {
  const out: ModelRefusal[] = [];
  for (const key of Object.keys(annotations)) {
    const pure = key.startsWith(`${cfg.prefix}/`) ? key.slice(cfg.prefix.length + 1) : key;
    const risk = INGRESS_NGINX_RISK.get(pure);
    if (risk !== undefined && RANK[risk] > RANK[cfg.level]) out.push({ kind: 'risk', key });
  }
  return out;
}

/** The blocklist over the prefix's values: admission trims each word (controller.go:381-400), the store does not (store.go:901-914). */
function modelBlocked(
  annotations: Readonly<Record<string, string>>,
  cfg: ModelConfig,
  trimWords: boolean,
): ModelRefusal[] {
  if (cfg.blocklist === '') return [];
  const words = goTrimSpace(cfg.blocklist).split(',');
  return Object.entries(annotations)
    .filter(([key]) => key.startsWith(`${cfg.prefix}/`))
    .filter(([, value]) => words.some((w) => value.includes(trimWords ? goTrimSpace(w) : w)))
    .map(([key]) => ({ kind: 'blocklist', key }));
}

interface ModelVerdict {
  /** syncIngress (store.go:916-964): the blocklist (untrimmed words), then Extract's Validate (risk). */
  served: boolean;
  /** CheckIngress (controller.go:331-420): the refusals of this brief's rules, in order. */
  admission: ModelRefusal[];
  /** Why the store leaves the Ingress out. */
  store: ModelRefusal[];
}

function ingressNginx(annotations: Readonly<Record<string, string>>, cfg: ModelConfig): ModelVerdict {
  const risk = modelRisk(annotations, cfg);
  const store = [...modelBlocked(annotations, cfg, false), ...risk];
  const admission: ModelRefusal[] = [];
  for (const key of Object.keys(annotations)) {
    // controller.go:387-391: a custom prefix refuses the standard one.
    if (cfg.prefix !== DEFAULT_PREFIX && key.startsWith(`${DEFAULT_PREFIX}/`))
      admission.push({ kind: 'prefix', key });
    // controller.go:402-404: allow-snippet-annotations is "false" by default; any key ending so.
    if (key.endsWith('-snippet')) admission.push({ kind: 'snippet', key });
  }
  admission.push(...modelBlocked(annotations, cfg, true), ...risk);
  return { served: store.length === 0, admission, store };
}

// ---- the differences keepip keeps (each met by some case below) ----------------------------------

const ALLOWED = {
  bareKey:
    "a rated name with no prefix at all (`server-alias: x`): ingress-nginx's TrimAnnotationPrefix leaves it as is, so CheckAnnotationRisk counts it (parser/main.go:196-198, validators.go:256-260) and refuses the Ingress; keepip checks only its prefix. No parser of either reads such a key (asserted: no effect), so keepip serving it is harmless",
  otherPrefixSnippet:
    "a key ending in -snippet outside the prefix: ingress-nginx's admission refuses any (controller.go:402, HasSuffix on the whole key); keepip reads none outside its prefix (GAPS 'snippet (other prefix)' of admission-differential-ingress-nginx)",
  storeUntrimmed:
    'a blocklist word written with spaces ("evil, load_module"): ingress-nginx\'s store matches " load_module" untrimmed (store.go:907) while its admission trims (controller.go:396), so a value with `load_module` is refused at admission yet served if it got in; keepip trims both ways and does not serve it',
  runtimeLevel:
    'the level changed at run time: ingress-nginx re-syncs on a ConfigMap change only the Ingresses its store already holds (store.go:754-770) and a failed syncIngress keeps the previous version (store.go:949-953), so an Ingress refused under Medium stays out after raising the level until it is next updated, and one served stays served (stale) after lowering it; keepip re-translates everything each time',
} as const;
type AllowedReason = keyof typeof ALLOWED;
const met = new Set<AllowedReason>();

// ---- the candidates: annotation key forms, values, ConfigMaps -----------------------------------

/** [name, a plain value, a value with a blocked word, an empty value keepip does not fail closed on]. */
const ENTRIES: readonly [string, string, string, boolean][] = [
  ['ssl-redirect', 'false', 'false', true],
  ['limit-whitelist', '10.0.0.0/8', '10.0.0.0/8', true],
  ['proxy-body-size', '8m', '8m', true],
  ['whitelist-source-range', '10.0.0.0/8', '10.0.0.0/8', false],
  ['x-forwarded-prefix', '/prefix', '/evil', true],
  ['session-cookie-name', 'route', 'evilroute', true],
  ['auth-url', 'http://auth.example.com/check', 'http://evil.example.com/check', false],
  ['server-alias', 'alias.example.com', 'evil.example.com', true],
  ['mirror-target', 'http://mirror.example.com/m', 'http://evil.example.com/m', true],
  ['upstream-hash-by', '$request_uri', '$request_uri', true],
  ['configuration-snippet', 'more_set_headers "X-A: b";', 'load_module /tmp/x.so;', true],
  ['server-snippet', 'add_header X-S 1;', 'load_module /tmp/y.so;', true],
];

const FORMS = ['std', 'standard', 'upperName', 'upperPrefix', 'lookalike', 'other', 'bare'] as const;
type Form = (typeof FORMS)[number];

/** The key of `name` in `form` for a controller reading `prefix`. */
function keyOf(name: string, form: Form, prefix: string): string {
  switch (form) {
    case 'std':
      return `${prefix}/${name}`;
    case 'standard':
      return `${DEFAULT_PREFIX}/${name}`;
    case 'upperName':
      return `${prefix}/${name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase())}`;
    case 'upperPrefix':
      return `${prefix.toUpperCase()}/${name}`;
    case 'lookalike':
      return `${prefix}.evil/${name}`;
    case 'other':
      return `example.com/${name}`;
    case 'bare':
      return name;
  }
}

interface Case {
  prefix: string;
  data: Record<string, string>;
  annotations: Record<string, string>;
}

const LEVELS = [null, 'Low', 'medium', 'Medium', 'High', 'CRITICAL', 'hihg', ' High'] as const;
const BLOCKLISTS = [null, 'evil', 'evil, load_module', ' evil ,x', 'EVIL', 'load_module,,zzz', ''] as const;

function caseOf(
  prefix: string,
  level: string | null,
  blocklist: string | null,
  anns: readonly [number, Form, 'plain' | 'tainted' | 'empty'][],
): Case {
  const data: Record<string, string> = {};
  if (level !== null) data['annotations-risk-level'] = level;
  if (blocklist !== null) data['annotation-value-word-blocklist'] = blocklist;
  const annotations: Record<string, string> = {};
  for (const [i, form, value] of anns) {
    const [name, plain, tainted, emptyOk] = ENTRIES[i]!;
    annotations[keyOf(name, form, prefix)] =
      value === 'tainted' ? tainted : value === 'empty' && emptyOk ? '' : plain;
  }
  return { prefix, data, annotations };
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    prefix: fc.constantFrom(DEFAULT_PREFIX, DEFAULT_PREFIX, CUSTOM_PREFIX),
    level: fc.constantFrom(...LEVELS),
    blocklist: fc.constantFrom(...BLOCKLISTS),
    anns: fc.uniqueArray(
      fc.tuple(
        fc.nat(ENTRIES.length - 1),
        fc.constantFrom(...FORMS, 'std', 'std', 'std'),
        fc.constantFrom('plain' as const, 'tainted' as const, 'tainted' as const, 'empty' as const),
      ),
      { minLength: 1, maxLength: 3, selector: ([i, form]) => `${i} ${form}` },
    ),
  })
  .map((g) => caseOf(g.prefix, g.level, g.blocklist, g.anns));

const at = (i: string) => ENTRIES.findIndex(([n]) => n === i);
/** Each key form and blocklist shape at least once, whatever the seed. */
const HAND: readonly Case[] = [
  caseOf(DEFAULT_PREFIX, 'Medium', null, [[at('server-alias'), 'bare', 'plain']]),
  caseOf(DEFAULT_PREFIX, 'Medium', null, [[at('server-alias'), 'upperName', 'plain']]),
  caseOf(DEFAULT_PREFIX, 'Medium', null, [[at('server-alias'), 'upperPrefix', 'plain']]),
  caseOf(DEFAULT_PREFIX, 'Medium', null, [[at('server-alias'), 'lookalike', 'plain']]),
  caseOf(DEFAULT_PREFIX, 'Medium', null, [[at('server-alias'), 'std', 'empty']]),
  caseOf(DEFAULT_PREFIX, 'Low', null, [[at('whitelist-source-range'), 'std', 'plain']]),
  caseOf(DEFAULT_PREFIX, 'Critical', null, [[at('configuration-snippet'), 'other', 'plain']]),
  caseOf(DEFAULT_PREFIX, 'High', null, [[at('configuration-snippet'), 'bare', 'empty']]),
  caseOf(CUSTOM_PREFIX, 'Medium', null, [[at('server-alias'), 'standard', 'plain']]),
  caseOf(CUSTOM_PREFIX, 'Medium', null, [[at('upstream-hash-by'), 'std', 'plain']]),
  caseOf(CUSTOM_PREFIX, 'Critical', 'evil', [[at('server-alias'), 'standard', 'tainted']]),
  caseOf(DEFAULT_PREFIX, 'Critical', 'evil, load_module', [[at('configuration-snippet'), 'std', 'tainted']]),
  caseOf(DEFAULT_PREFIX, 'Critical', 'EVIL', [[at('server-alias'), 'std', 'tainted']]),
  caseOf(DEFAULT_PREFIX, 'Critical', 'evil', [[at('server-alias'), 'other', 'tainted']]),
  // "fixrou" split across two values ("/prefix", "route"): neither contains it, so both serve.
  caseOf(DEFAULT_PREFIX, 'Critical', 'fixrou', [
    [at('x-forwarded-prefix'), 'std', 'plain'],
    [at('session-cookie-name'), 'std', 'plain'],
  ]),
  caseOf(DEFAULT_PREFIX, 'Critical', 'load_module,,zzz', [[at('ssl-redirect'), 'std', 'plain']]),
  // The only risky annotation has a value no validator takes: the risk is checked first, whatever the value.
  {
    prefix: DEFAULT_PREFIX,
    data: { 'annotations-risk-level': 'Medium' },
    annotations: { [`${DEFAULT_PREFIX}/server-alias`]: 'bad value; return 200' },
  },
  // The High annotations where the level lets them through: their effect shows (the checks are not vacuous).
  caseOf(DEFAULT_PREFIX, 'High', null, [
    [at('server-alias'), 'std', 'plain'],
    [at('mirror-target'), 'std', 'plain'],
  ]),
  caseOf(CUSTOM_PREFIX, 'CRITICAL', 'zzz', [
    [at('auth-url'), 'std', 'plain'],
    [at('upstream-hash-by'), 'std', 'plain'],
  ]),
];

// ---- keepip's views of one candidate -------------------------------------------------------------

const HOST = 'cand.example.com';
const POLICY_EVENTS = new Set(['RiskyAnnotations', 'AnnotationValueBlocked']);

function ingressObject(
  name: string,
  host: string,
  annotations: Record<string, string>,
  extra: { svc?: string; created?: string; spec?: Record<string, unknown> } = {},
): Obj {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      namespace: 'default',
      name,
      uid: `uid-${name}`,
      resourceVersion: '1',
      creationTimestamp: extra.created ?? '2024-06-01T00:00:00Z',
      annotations,
    },
    spec: {
      ingressClassName: 'nginx',
      ...extra.spec,
      rules: [
        {
          host,
          http: {
            paths: [
              {
                path: '/',
                pathType: 'Prefix',
                backend: { service: { name: extra.svc ?? 'web', port: { number: 80 } } },
              },
            ],
          },
        },
      ],
    },
  };
}

function clusterOf(
  ingresses: Obj[],
  data: Record<string, string>,
  extra: Partial<ClusterObjects> = {},
): ClusterObjects {
  return {
    ...EMPTY_CLUSTER,
    ingresses,
    services: [service('web'), service('main'), service('evil')],
    configMaps: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: CM, data }],
    ...extra,
  };
}

function optionsFor(prefix: string): SnapshotOptions {
  return { ...DEFAULT_SNAPSHOT_OPTIONS, configMap: `${CM.namespace}/${CM.name}`, annotationsPrefix: prefix };
}

type KeepipKind = ModelKind | `other ${string}`;

/** What a line of the webhook's message refuses on. */
function lineKind(line: string): KeepipKind {
  const code = /^(?:error|warning) ([A-Z_]+):/.exec(line)?.[1] ?? '?';
  if (code === 'ANNOTATION_TOO_RISKY') return 'risk';
  if (code === 'ANNOTATION_VALUE_BLOCKED') return 'blocklist';
  if (code === 'ADMISSION_ANNOTATION_PREFIX') return 'prefix';
  if (line.includes('-snippet"]')) return 'snippet';
  return `other ${code}`;
}

interface KeepipViews {
  admitted: boolean;
  kinds: KeepipKind[];
  served: boolean;
  listedRefused: boolean;
  events: string[];
  topology: Topology;
}

function keepip(c: Case): KeepipViews {
  const candidate = ingressObject('cand', HOST, c.annotations);
  const neighbour = ingressObject('plain', 'plain.example.com', {});
  const options = optionsFor(c.prefix);
  const verdict = verdictFor(candidate, clusterOf([neighbour], c.data), options);
  const topology = buildClusterTopology(clusterOf([neighbour, candidate], c.data), options);
  const hosts = topology.gateway.virtualHosts.map((h) => h.host);
  assert.ok(hosts.includes('plain.example.com'), 'the neighbour is served whatever the candidate says');
  return {
    admitted: verdict.allowed,
    kinds: verdict.message === '' ? [] : verdict.message.split('\n').map(lineKind),
    served: hosts.includes(HOST),
    listedRefused: (topology.gateway.refusedIngresses ?? []).some((r) => r.ingress.name === 'cand'),
    events: ingressEvents(candidate, topology.issues, false)
      .map((e) => e.reason)
      .filter((r) => POLICY_EVENTS.has(r)),
    topology,
  };
}

/** Risky annotations whose effect the translation shows, by the name of each. */
const EFFECTS: Readonly<Record<string, (t: Topology) => boolean>> = {
  'server-alias': (t) => t.gateway.virtualHosts.some((h) => (h.aliases ?? []).length > 0),
  'mirror-target': (t) => candLocations(t).some((l) => l.mirror !== undefined),
  'upstream-hash-by': (t) => candLocations(t).some((l) => l.upstreamHashBy !== undefined),
  'auth-url': (t) => candLocations(t).some((l) => (l.access?.externalAuth ?? null) !== null),
};

function candLocations(t: Topology) {
  return t.gateway.virtualHosts.filter((h) => h.host === HOST).flatMap((h) => h.locations);
}

// ---- comparing -----------------------------------------------------------------------------------

interface Outcome {
  /** By kind: keepip serves or admits what ingress-nginx refuses, or its views disagree. */
  findings: Map<string, string[]>;
  unexplained: string[];
  /** Generated cases in which ingress-nginx refuses, by kind (non-vacuity). */
  exercised: Map<string, number>;
}

function describeCase(c: Case): string {
  return `prefix ${c.prefix} ConfigMap ${JSON.stringify(c.data)} annotations ${JSON.stringify(c.annotations)}`;
}

const isBare = (key: string) => !key.includes('/');

/** Which ALLOWED reason covers a refusal of ingress-nginx's that keepip does not make, or null. */
function allowedLaxer(r: ModelRefusal, prefix: string): AllowedReason | null {
  if (r.kind === 'risk' && isBare(r.key)) return 'bareKey';
  if (r.kind === 'snippet' && !r.key.startsWith(`${prefix}/`) && !r.key.startsWith(`${DEFAULT_PREFIX}/`))
    return 'otherPrefixSnippet';
  return null;
}

function note(out: Outcome, kind: string, line: string): void {
  out.findings.set(kind, [...(out.findings.get(kind) ?? []), line]);
}

/** keepip's four views of one Ingress agree: webhook policy refusal, refusal list, not served, Event. */
function checkViews(c: Case, k: KeepipViews, m: ModelVerdict, what: string, out: Outcome): void {
  // A standard-prefix key under a custom prefix is refused before anything is translated (as
  // ingress-nginx, controller.go:387-391): the webhook then says nothing of the limits.
  const early = k.kinds.length > 0 && k.kinds.every((x) => x === 'prefix');
  const views = {
    ...(early ? {} : { webhook: k.kinds.some((x) => x === 'risk' || x === 'blocklist') }),
    listedRefused: k.listedRefused,
    notServed: !k.served,
    event: k.events.length > 0,
  };
  if (new Set(Object.values(views)).size !== 1) note(out, 'views', `${what}: ${JSON.stringify(views)}`);
  // Refused at admission yet served: only where ingress-nginx's admission refuses what its store serves.
  const modelServes = m.served || m.store.every((r) => allowedLaxer(r, c.prefix) !== null);
  if (!k.admitted && k.served && !(m.admission.length > 0 && modelServes))
    note(out, 'views', `${what}: the webhook refuses (${k.kinds.join(', ')}) what keepip serves`);
  if (k.admitted && !k.served) note(out, 'views', `${what}: admitted but not served`);
}

function compareServed(c: Case, k: KeepipViews, m: ModelVerdict, what: string, out: Outcome): void {
  if (!m.served && k.served) {
    const reasons = m.store.map((r) => allowedLaxer(r, c.prefix));
    if (reasons.includes(null))
      note(
        out,
        'served',
        `${what}: ingress-nginx's store refuses (${m.store.map((r) => `${r.kind} ${r.key}`).join(', ')})`,
      );
    else for (const r of reasons) met.add(r as AllowedReason);
  }
  if (m.served && !k.served) {
    const admissionBlocks = m.admission.some((r) => r.kind === 'blocklist');
    if (admissionBlocks && !m.store.some((r) => r.kind === 'blocklist')) met.add('storeUntrimmed');
    else out.unexplained.push(`${what}: keepip does not serve what ingress-nginx serves`);
  }
}

function compareAdmission(c: Case, k: KeepipViews, m: ModelVerdict, what: string, out: Outcome): void {
  if (m.admission.length > 0 && k.admitted) {
    const reasons = m.admission.map((r) => allowedLaxer(r, c.prefix));
    if (reasons.includes(null))
      note(
        out,
        'admitted',
        `${what}: ingress-nginx's webhook refuses (${m.admission.map((r) => `${r.kind} ${r.key}`).join(', ')})`,
      );
    else for (const r of reasons) met.add(r as AllowedReason);
  }
  if (m.admission.length === 0 && !k.admitted)
    out.unexplained.push(`${what}: keepip's webhook refuses (${k.kinds.join(', ')}); ingress-nginx admits`);
  for (const kind of k.kinds)
    if (kind.startsWith('other'))
      out.unexplained.push(`${what}: refused for ${kind}, outside this file's cases`);
}

/** A risky annotation takes effect only under the key ingress-nginx's parser reads, and never from a refused Ingress. */
function compareEffects(c: Case, k: KeepipViews, what: string, out: Outcome): void {
  for (const [name, shows] of Object.entries(EFFECTS)) {
    if (!shows(k.topology)) continue;
    const read = c.annotations[`${c.prefix}/${name}`];
    if (!k.served || read === undefined || read === '')
      note(
        out,
        'effect',
        `${what}: ${name} took effect ${k.served ? 'from a key no parser reads' : 'from a refused Ingress'}`,
      );
    else out.exercised.set(`effect ${name}`, (out.exercised.get(`effect ${name}`) ?? 0) + 1);
  }
}

function compare(c: Case, out: Outcome): void {
  const m = ingressNginx(c.annotations, modelConfig(c.data, c.prefix));
  const k = keepip(c);
  const what = describeCase(c);
  for (const r of [...m.store, ...m.admission])
    out.exercised.set(r.kind, (out.exercised.get(r.kind) ?? 0) + 1);
  checkViews(c, k, m, what, out);
  compareServed(c, k, m, what, out);
  compareAdmission(c, k, m, what, out);
  compareEffects(c, k, what, out);
}

function show(list: readonly string[]): string {
  return list.slice(0, 4).join('\n  ') + (list.length > 4 ? `\n  … ${list.length - 4} more` : '');
}

// ---- the tests -------------------------------------------------------------------------------------

describe('ratings and the ConfigMap keys, read as ingress-nginx reads them', () => {
  it("every annotation has ingress-nginx's rating (a lower one would let it through), none missing", () => {
    const wrong = [...INGRESS_NGINX_RISK].filter(([name, risk]) => ANNOTATION_RISK[name] !== risk);
    assert.deepEqual(
      wrong.map(([n, r]) => `${n}: ingress-nginx ${r}, keepip ${ANNOTATION_RISK[n]}`),
      [],
    );
    const extra = Object.keys(ANNOTATION_RISK).filter((n) => !INGRESS_NGINX_RISK.has(n));
    assert.deepEqual(extra, [], 'rated by keepip, by no parser of ingress-nginx');
  });

  it('annotations-risk-level: any case is the word; padded, empty or unknown is Low (StringRiskToRisk)', () => {
    const served = (level: string, name: string, value: string) =>
      keepip({
        prefix: DEFAULT_PREFIX,
        data: { 'annotations-risk-level': level },
        annotations: { [`${DEFAULT_PREFIX}/${name}`]: value },
      }).served;
    const cases: [string, string, string][] = [
      ['HIGH', 'auth-url', 'http://auth.example.com/'],
      [' High', 'x-forwarded-prefix', '/p'],
      ['High ', 'x-forwarded-prefix', '/p'],
      ['', 'x-forwarded-prefix', '/p'],
      ['hihg', 'x-forwarded-prefix', '/p'],
      ['cRiTiCaL', 'upstream-hash-by', '$request_uri'],
    ];
    for (const [level, name, value] of cases) {
      const model = ingressNginx(
        { [`${DEFAULT_PREFIX}/${name}`]: value },
        modelConfig({ 'annotations-risk-level': level }, DEFAULT_PREFIX),
      );
      assert.equal(served(level, name, value), model.served, `level ${JSON.stringify(level)}, ${name}`);
    }
  });

  it('annotation-value-word-blocklist is cut as Go\'s strings.TrimSpace trims: U+0085 (NEL) and U+3000 are spaces there, so "evil,\\u0085" has an empty word that blocks every value; U+FEFF is not, so "evil,\\ufeff" blocks only a value holding it', () => {
    const differ: string[] = [];
    const lists: [string, boolean][] = [
      [' evil ,\t', false],
      ['evil,\u2028', false],
      ['evil,\u0085', false],
      ['evil,\u3000', false],
      ['evil,\ufeff', true],
    ];
    for (const [list, served] of lists) {
      const c = caseOf(DEFAULT_PREFIX, 'Critical', list, [[at('ssl-redirect'), 'std', 'plain']]);
      const model = ingressNginx(c.annotations, modelConfig(c.data, c.prefix));
      const k = keepip(c);
      assert.equal(
        model.served,
        served,
        `the model on ${JSON.stringify(list)}: an empty word blocks every value`,
      );
      if (k.served !== served || k.admitted !== served)
        differ.push(`${JSON.stringify(list)}: served ${k.served}, admitted ${k.admitted}`);
    }
    assert.deepEqual(differ, [], 'ingress-nginx serves and admits only the last (U+FEFF is a word there)');
  });
});

describe(`key variants, values and ConfigMaps: keepip's webhook, serving and Event against ingress-nginx (seed ${SEED})`, () => {
  const out: Outcome = { findings: new Map(), unexplained: [], exercised: new Map() };

  it('every case compared; keepip stricter only where ALLOWED says; a refused Ingress is one no view serves', () => {
    const cases = [...HAND, ...fc.sample(caseArb, { numRuns: RUNS, seed: SEED })];
    for (const c of cases) compare(c, out);
    assert.deepEqual(out.unexplained, [], `seed ${SEED}:\n  ${show(out.unexplained)}`);
    for (const kind of [
      'risk',
      'blocklist',
      'prefix',
      'snippet',
      ...Object.keys(EFFECTS).map((n) => `effect ${n}`),
    ])
      assert.ok(
        (out.exercised.get(kind) ?? 0) > 0,
        `no case for ${kind} (a refusal of ingress-nginx's, or an effect): vacuous`,
      );
  });

  const KINDS: readonly [string, string][] = [
    [
      'served',
      "keepip serves no Ingress ingress-nginx's store refuses (store.go:925-953: blocklist, then Extract's Validate)",
    ],
    [
      'admitted',
      "keepip's webhook admits no Ingress ingress-nginx's refuses for the risk level, blocklist, prefix or a snippet (controller.go:381-420)",
    ],
    ['views', 'the webhook, the refusal list, the served hosts and the Warning Event agree on every Ingress'],
    [
      'effect',
      'a risky annotation takes effect only from its exact key under the prefix, and never from a refused Ingress',
    ],
  ];
  for (const [kind, rule] of KINDS)
    it(rule, () => {
      const found = out.findings.get(kind) ?? [];
      assert.deepEqual(found, [], `seed ${SEED}: ${found.length} case(s):\n  ${show(found)}`);
    });
});

/** String#includes calls and the characters they could scan, while `run` executes. */
function includesWork(run: () => void): { calls: number; chars: number } {
  const work = { calls: 0, chars: 0 };
  const { includes } = String.prototype;
  String.prototype.includes = function (this: string, ...args: Parameters<string['includes']>) {
    work.calls++;
    work.chars += this.length;
    return includes.apply(this, args);
  } as string['includes'];
  try {
    run();
  } finally {
    Object.assign(String.prototype, { includes });
  }
  return work;
}

describe('a long blocklist against many annotations: work bounded by words × values, as ingress-nginx', () => {
  const words = Array.from({ length: 10_000 }, (_, i) => `word${i}x`);
  const annotations: Record<string, string> = {};
  for (let i = 0; i < 100; i++) annotations[`${DEFAULT_PREFIX}/note-${i}`] = `value-${i}-`.repeat(20);
  const valueChars = Object.values(annotations).reduce((n, v) => n + v.length, 0);

  it('10k words × 100 annotations: at most one search per word and value, no more characters than they hold', () => {
    const work = includesWork(() =>
      annotationPolicyRefusals(annotations, {
        annotationsRiskLevel: 'High',
        annotationValueWordBlocklist: words,
      }),
    );
    assert.ok(work.calls <= words.length * 100, `${work.calls} searches`);
    assert.ok(work.chars <= words.length * valueChars, `${work.chars} characters`);
  });

  it('the webhook and the translation of such an Ingress answer (one pass each), the last word still blocking', () => {
    const data = { 'annotation-value-word-blocklist': words.join(','), 'annotations-risk-level': 'Critical' };
    const tainted = { ...annotations, [`${DEFAULT_PREFIX}/note-last`]: `x${words.at(-1)}` };
    const c: Case = { prefix: DEFAULT_PREFIX, data, annotations: tainted };
    let k: KeepipViews | null = null;
    const work = includesWork(() => {
      k = keepip(c);
    });
    const views = k as KeepipViews | null;
    assert.equal(views?.served, false);
    assert.deepEqual(views?.kinds, ['blocklist']);
    // Two translations (webhook, serving) of two Ingresses: a few passes, not one per word or per value.
    assert.ok(work.calls <= 4 * words.length * 101, `${work.calls} searches`);
  });
});

// ---- live: a refused Ingress on another tenant's host, the level changed at run time -------------

const SHARED = 'shared.example.com';
const ALIAS = 'alias.example.com';

/** Tenant A's Ingress, and tenant B's older one (TLS, default backend, alias) and canary, both High risk. */
function sharedHostIngresses(): Obj[] {
  return [
    ingressObject('victim', SHARED, {}, { svc: 'main' }),
    ingressObject(
      'intruder',
      SHARED,
      { [`${DEFAULT_PREFIX}/server-alias`]: ALIAS },
      {
        svc: 'evil',
        created: '2020-01-01T00:00:00Z',
        spec: {
          tls: [{ hosts: [SHARED], secretName: 'intruder-tls' }],
          defaultBackend: { service: { name: 'evil', port: { number: 80 } } },
        },
      },
    ),
    ingressObject(
      'canary',
      SHARED,
      {
        [`${DEFAULT_PREFIX}/canary`]: 'true',
        [`${DEFAULT_PREFIX}/canary-weight`]: '100',
        [`${DEFAULT_PREFIX}/upstream-hash-by`]: '$request_uri',
      },
      { svc: 'evil', created: '2020-01-02T00:00:00Z' },
    ),
  ];
}

interface Seen {
  shared: string;
  alias: string;
  unknown: string;
  cert: string;
}

describe("a refused Ingress on another tenant's host leaves nothing behind, whatever the level was before (live gateway)", () => {
  let backends: NamedBackends;
  let gw: TestGateway;
  let secret: Obj;
  const topologyAt = (level: string) =>
    buildClusterTopology(
      clusterOf(
        sharedHostIngresses(),
        { 'annotations-risk-level': level },
        {
          endpointSlices: [
            endpointSlice('main', '127.0.0.1', backends.port('main')),
            endpointSlice('evil', '127.0.0.1', backends.port('evil')),
          ],
          secrets: [secret],
        },
      ),
      optionsFor(DEFAULT_PREFIX),
    );
  before(async () => {
    backends = await startNamedBackends(['main', 'evil']);
    secret = await tlsSecret('intruder-tls', SHARED);
    gw = await startTestGateway(topologyAt('Medium'));
  });
  after(async () => {
    await gw?.close();
    await backends?.close();
  });

  /** Who answers each name: the backend's name, or the status; the certificate's CN for SNI shared. */
  async function probe(): Promise<Seen> {
    // Over HTTPS: at Critical the intruder's TLS section redirects the host's plain HTTP (308).
    const who = async (host: string) => {
      const a = await get(gw.httpsPort, host, '/probe', true);
      return a.status === 200 ? a.body.split(' ')[0]! : String(a.status);
    };
    const [shared, alias, unknown, cert] = await mapLimited(
      [
        () => who(SHARED),
        () => who(ALIAS),
        () => who('unknown.example.com'),
        () => peerCertificate(gw.httpsPort, SHARED),
      ],
      4,
      (f) => f(),
    );
    return { shared: shared!, alias: alias!, unknown: unknown!, cert: cert! };
  }

  it("Medium: the host is tenant A's alone (no older path, alias, canary, TLS or default backend of B); Critical: B's parts serve; Medium again: gone", async () => {
    const refusedOnly = (seen: Seen) => {
      assert.equal(seen.shared, 'main', 'the host and path go to tenant A');
      assert.notEqual(seen.alias, 'evil', 'no server-alias of the refused Ingress');
      assert.notEqual(seen.unknown, 'evil', 'no spec.defaultBackend of the refused Ingress');
      assert.notEqual(seen.cert, SHARED, "no certificate of the refused Ingress's TLS");
    };
    refusedOnly(await probe());
    const raised = gw.gateway.reload(topologyAt('Critical'));
    assert.equal(raised.ok, true);
    const open = await probe();
    assert.deepEqual(
      [open.shared, open.alias, open.cert],
      ['evil', 'evil', SHARED],
      'at Critical B is served (the probes are not vacuous)',
    );
    met.add('runtimeLevel');
    const lowered = gw.gateway.reload(topologyAt('Medium'));
    assert.equal(lowered.ok, true);
    const evilSoFar = backends.seen.filter((s) => s.backend === 'evil').length;
    refusedOnly(await probe());
    assert.equal(
      backends.seen.filter((s) => s.backend === 'evil').length,
      evilSoFar,
      'tenant B got no request',
    );
    assert.deepEqual(
      (gw.gateway.snapshot().topology.gateway.refusedIngresses ?? []).map((r) => r.ingress.name).sort(),
      ['canary', 'intruder'],
    );
  });
});

describe('the controller when the level is lowered at run time: the status address and Warning Event follow the refusal', () => {
  const cluster = webCluster(
    async () => [
      `--configmap=${CM.namespace}/${CM.name}`,
      '--election-ttl=2s',
      '--publish-status-address=192.0.2.10',
      ...(await webhookFlags()),
    ],
    {
      prepare: (api) => {
        api.apply({ kind: 'ConfigMap', metadata: CM, data: { 'annotations-risk-level': 'Critical' } });
        api.apply(
          ingressObject('aliased', 'aliased.example.com', { [`${DEFAULT_PREFIX}/server-alias`]: ALIAS }),
        );
      },
    },
  );
  const hasAddress = (name: string) =>
    (cluster.api.get('Ingress', 'default', name)?.status?.loadBalancer?.ingress?.length ?? 0) > 0;

  it('served with an address under Critical; under Medium not served, and the webhook refuses an update of it', async () => {
    const { api, ctl, httpPort } = cluster;
    await waitForHost(ctl, 'aliased.example.com');
    await api.waitUntil(() => hasAddress('aliased'));
    assert.equal((await get(httpPort, ALIAS)).status, 200);
    api.apply({ kind: 'ConfigMap', metadata: CM, data: { 'annotations-risk-level': 'Medium' } });
    await waitForHost(ctl, 'aliased.example.com', false);
    assert.equal((await get(httpPort, ALIAS)).status, 404);
    const object = api.get('Ingress', 'default', 'aliased')!;
    const review = ingressReview(object, { operation: 'UPDATE', name: 'aliased', oldObject: object });
    const answer = JSON.parse(
      (await postWebhook(ctl.running.webhookAddress!.port, JSON.stringify(review))).body,
    );
    assert.equal(answer.response.allowed, false);
    assert.match(answer.response.status.message, /ANNOTATION_TOO_RISKY/);
  });

  it('the status address is taken away from the Ingress no longer served (ingress-nginx keeps one only on what it still serves)', async () => {
    await cluster.api.waitUntil(() => !hasAddress('aliased'));
  });

  it('a RiskyAnnotations Warning Event says why the Ingress stopped being served, though nobody edited it', async () => {
    await cluster.api.waitUntil(() =>
      cluster.api
        .list('Event')
        .find(
          (e) =>
            e.involvedObject.name === 'aliased' && e.type === 'Warning' && e.reason === 'RiskyAnnotations',
        ),
    );
  });
});

describe('ALLOWED', () => {
  it('every documented difference was met by some case above (the table has no dead entries)', () => {
    assert.deepEqual([...met].sort(), (Object.keys(ALLOWED) as AllowedReason[]).sort());
  });
});
