// keepip's validating admission webhook against ingress-nginx's decision, transcribed below as a pure
// model (mirror: kubernetes/ingress-nginx v1.15.1, dbb11b92). There is no Kubernetes and no nginx here:
// the reviews go over real HTTPS on 127.0.0.1 to `keepip controller`'s webhook (in-process, on port 0),
// which lists a fake API server; the model sees the same Ingresses and the same controller ConfigMap.
//
// Per ConfigMap phase (allow-snippet-annotations, annotations-risk-level, annotation-value-word-blocklist,
// strict-validate-path-type), generated Ingresses (fast-check, fixed seed; ADMISSION_SEED=<n> or
// `random` explores) plus hand-picked ones are reviewed, and allowed/denied compared:
// - keepip allows what ingress-nginx denies: a finding; the test asserts ingress-nginx's denial.
// - keepip denies what ingress-nginx allows: passes only when ALLOWED (below) names the reason.
// - a denial must carry a message (kubectl prints it).
// ingress-nginx's `nginx -t` of the rendered configuration is disabled upstream (controller.go:445-452,
// CVE-2025-1974) and out of scope: it passes here.
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { type AdmissionAnswer, postReview, webCluster, webhookFlags } from '../controller/harness.ts';
import type { Obj } from '../fixtures/fake-apiserver.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { parseBool } from '../helpers/go-annotation-validators.ts';

const PREFIX = 'nginx.ingress.kubernetes.io';
const CONFIGMAP = { namespace: 'ingress-nginx', name: 'adm-cm' };
const RUNS = 24;

// ---- ingress-nginx's decision (the model) ---------------------------------------------------------

/** internal/ingress/annotations/parser/validators.go:38-41 (iota order). */
const RISK = { Low: 0, Medium: 1, High: 2, Critical: 3 } as const;
type Risk = keyof typeof RISK;

/** AnnotationFields[..].Risk of the annotations generated here (each parser's main.go). */
const ANNOTATION_RISK: Record<string, Risk> = {
  'ssl-redirect': 'Low', // annotations/rewrite/main.go:49
  'use-regex': 'Low', // annotations/rewrite/main.go:67
  'proxy-read-timeout': 'Low', // annotations/proxy/main.go:70
  canary: 'Low', // annotations/canary/main.go:41
  'proxy-body-size': 'Medium', // annotations/proxy/main.go:108
  'x-forwarded-prefix': 'Medium', // annotations/xforwardedprefix/main.go:33
  'session-cookie-name': 'Medium', // annotations/sessionaffinity/main.go:95
  'auth-url': 'High', // annotations/authreq/main.go:60
  'mirror-target': 'High', // annotations/mirror/main.go:48
  'upstream-hash-by': 'High', // annotations/upstreamhashby/main.go:43
  'configuration-snippet': 'Critical', // annotations/snippet/main.go:33
  'server-snippet': 'Critical', // annotations/serversnippet/main.go:33
  'auth-snippet': 'Critical', // annotations/authreq/main.go:84
};

/** The controller ConfigMap's keys the decision reads, with their defaults (config/config.go:765-769, 914). */
interface AdmissionConfig {
  allowSnippets: boolean;
  riskLevel: Risk;
  blocklist: string;
  strictPathType: boolean;
}

function configOf(data: Record<string, string>): AdmissionConfig {
  // parser/main.go:200-211 StringRiskToRisk: anything unknown is Low.
  const risk = (data['annotations-risk-level'] ?? 'High').toLowerCase();
  const riskLevel = (Object.keys(RISK) as Risk[]).find((r) => r.toLowerCase() === risk) ?? 'Low';
  return {
    allowSnippets: data['allow-snippet-annotations'] === 'true',
    riskLevel,
    blocklist: data['annotation-value-word-blocklist'] ?? '',
    strictPathType: data['strict-validate-path-type'] !== 'false',
  };
}

/** What part of ingress-nginx's decision refuses: one finding per kind when keepip admits it. */
type Kind = 'deep-inspect' | 'path-type' | 'blocklist' | 'snippet' | 'risk' | 'overlap';
interface Refusal {
  kind: Kind;
  reason: string;
}
type Verdict = { allowed: true } | ({ allowed: false } & Refusal);

interface IngPath {
  path: string;
  pathType: string;
  service: string | null;
}
interface Ing {
  ns: string;
  name: string;
  created: string;
  cls: 'nginx' | 'annotation-nginx' | 'other' | 'none';
  host: string;
  paths: IngPath[];
  annotations: Record<string, string>;
  deleting?: boolean;
}

/** inspector/rules.go:25-29: what the deep inspector (--deep-inspect, default true) refuses. */
const DEEP_INSPECT = [
  /\s*alias\s*.*;/s,
  /\s*root\s*.*;/s,
  /\/etc\/(passwd|shadow|group|nginx|ingress-controller)/,
  /\/var\/run\/secrets/,
  /.*_by_lua.*/,
];
/** inspector/rules.go:37 validPathType. */
const VALID_PATH_TYPE = /^\/[A-Za-z0-9._\-/]*$/i;

/** GetIngressClass (controller.go:351): ours by ingressClassName nginx or the legacy annotation. */
function isOurs(ing: Ing): boolean {
  return ing.cls === 'nginx' || ing.cls === 'annotation-nginx';
}

/** controller.go:331-405: everything before the configuration is built; null when nothing refuses. */
function earlyRefusal(ing: Ing, cfg: AdmissionConfig): Refusal | null {
  for (const p of ing.paths) {
    // controller.go:344-348, inspector/ingress.go:28-62.
    if (DEEP_INSPECT.some((r) => r.test(p.path)) || DEEP_INSPECT.some((r) => r.test(ing.host)))
      return { kind: 'deep-inspect', reason: `invalid value found: ${p.path}` };
  }
  if (cfg.strictPathType)
    // controller.go:375-379, inspector/inspector.go:45-71.
    for (const p of ing.paths)
      if (p.path !== '' && p.pathType !== 'ImplementationSpecific' && !VALID_PATH_TYPE.test(p.path))
        return {
          kind: 'path-type',
          reason: `ingress contains invalid paths: path ${p.path} cannot be used with pathType ${p.pathType}`,
        };
  // controller.go:381-385: a blocklist "" has no words.
  const words = cfg.blocklist === '' ? [] : cfg.blocklist.trim().split(',');
  for (const [key, value] of Object.entries(ing.annotations)) {
    // controller.go:394-400: only the controller's prefix.
    if (key.startsWith(`${PREFIX}/`))
      for (const w of words)
        if (value.includes(w.trim()))
          return { kind: 'blocklist', reason: `${key} annotation contains invalid word ${w}` };
    // controller.go:402-404: any key, whatever its prefix.
    if (!cfg.allowSnippets && key.endsWith('-snippet'))
      return {
        kind: 'snippet',
        reason: `${key} annotation cannot be used. Snippet directives are disabled by the Ingress administrator`,
      };
  }
  // controller.go:416-420 → annotations.go:186-188 → parser/validators.go:253-266 (CheckAnnotationRisk).
  for (const key of Object.keys(ing.annotations)) {
    const risk = key.startsWith(`${PREFIX}/`) ? ANNOTATION_RISK[key.slice(PREFIX.length + 1)] : undefined;
    if (risk !== undefined && RISK[risk] > RISK[cfg.riskLevel])
      return { kind: 'risk', reason: `annotation ${key} is too risky for environment` };
  }
  return null;
}

/** parser.GetBoolAnnotation("canary"): missing, invalid (not missing), or the boolean (main.go:105-115). */
function canaryOf(ing: Ing): 'missing' | 'invalid' | boolean {
  const v = ing.annotations[`${PREFIX}/canary`];
  if (v === undefined) return 'missing';
  return parseBool(v) ?? 'invalid';
}

interface Loc {
  path: string;
  pathType: string;
  ing: Ing;
}

/** getBackendServers' locations (controller.go:795-873): a canary's upstream has NoServer (1126-1129). */
function serverLocations(ings: readonly Ing[]): Map<string, Loc[]> {
  const servers = new Map<string, Loc[]>();
  for (const ing of ings) {
    if (canaryOf(ing) === true) continue;
    const host = ing.host === '' ? '_' : ing.host;
    const locs = servers.get(host) ?? [];
    servers.set(host, locs);
    for (const p of ing.paths) {
      if (p.service === null) continue;
      const path = p.path === '' ? '/' : p.path;
      // Same path and type: the first keeps it (817-852); another type is a location of its own.
      if (!locs.some((l) => l.path === path && l.pathType === p.pathType))
        locs.push({ path, pathType: p.pathType, ing });
    }
  }
  for (const [host, locs] of servers) servers.set(host, updateServerLocations(locs));
  return servers;
}

/** location.go:34-100: a Prefix (not /, no use-regex or rewrite) is `path/` plus its Exact twin. */
function updateServerLocations(locs: readonly Loc[]): Loc[] {
  const exact = new Set(locs.filter((l) => l.pathType === 'Exact').map((l) => l.path));
  const out: Loc[] = [];
  for (const l of locs) {
    const regex = l.ing.annotations[`${PREFIX}/use-regex`] === 'true';
    if (l.path === '/' || l.pathType !== 'Prefix' || regex) {
      out.push(l);
      continue;
    }
    const normalized = l.path.endsWith('/') ? l.path : `${l.path}/`;
    out.push({ ...l, path: normalized });
    if (!exact.has(l.path)) out.push({ ...l, pathType: 'Exact' });
  }
  return out;
}

/** controller.go:1822-1898 checkOverlap over the servers of CheckIngress (409-428). */
function overlapRefusal(ing: Ing, existing: readonly Ing[]): Refusal | null {
  // store.ListIngresses, sorted by creationTimestamp (store.go:1102-1115), itself filtered out (411-415),
  // the candidate appended last (421-424).
  const others = existing
    .filter((e) => isOurs(e) && !(e.ns === ing.ns && e.name === ing.name))
    .sort((a, b) =>
      a.created === b.created
        ? `${a.ns}/${a.name}` > `${b.ns}/${b.name}`
          ? -1
          : 1
        : a.created < b.created
          ? -1
          : 1,
    );
  const servers = serverLocations([...others, ing]);
  const candidate = canaryOf(ing);
  for (const p of ing.paths) {
    if (p.service === null) continue;
    const path = p.path === '' ? '/' : p.path;
    const holders = (servers.get(ing.host === '' ? '_' : ing.host) ?? []).filter((l) => l.path === path);
    for (const { ing: holder } of holders) {
      if (holder === ing) continue;
      const theirs = canaryOf(holder);
      if ((candidate === true && theirs === true) || (candidate === 'missing' && theirs === 'missing'))
        return {
          kind: 'overlap',
          reason: `host "${ing.host}" and path "${path}" is already defined in ingress ${holder.ns}/${holder.name}`,
        };
    }
  }
  return null;
}

/**
 * HandleAdmission (admission/controller/main.go:54-112) → CheckIngress (controller.go:331-465). DELETE
 * never comes: the chart registers CREATE and UPDATE (templates/admission-webhooks/validating-webhook.yaml:30-32).
 */
function ingressNginx(ing: Ing, op: string, cfg: AdmissionConfig, existing: readonly Ing[]): Verdict {
  if (op === 'DELETE') return { allowed: true };
  if (ing.deleting === true) return { allowed: true }; // controller.go:340-342
  if (!isOurs(ing)) return { allowed: true }; // controller.go:351-354 (checked after the deep inspector)
  const refusal = earlyRefusal(ing, cfg) ?? overlapRefusal(ing, existing);
  return refusal === null ? { allowed: true } : { allowed: false, ...refusal };
}

// ---- the cluster both see --------------------------------------------------------------------------

function ingress(
  ns: string,
  name: string,
  created: string,
  host: string,
  paths: [string, string][],
  annotations: Record<string, string> = {},
): Ing {
  const service = annotations[`${PREFIX}/canary`] === 'true' ? 'canary-app' : 'app';
  return {
    ns,
    name,
    created,
    cls: 'nginx',
    host,
    paths: paths.map(([path, pathType]) => ({ path, pathType, service })),
    annotations,
  };
}

/** What tenants already have: the paths the generated ones claim, a regex host, a canary, a canary "false". */
const EXISTING: readonly Ing[] = [
  ingress('team-a', 'owner', '2024-01-01T00:00:00Z', 'dup.example.com', [
    ['/shared', 'Prefix'],
    ['/exact', 'Exact'],
    ['/impl', 'ImplementationSpecific'],
  ]),
  ingress('team-a', 'regexy', '2024-01-02T00:00:00Z', 'rx.example.com', [['/api', 'Prefix']], {
    [`${PREFIX}/use-regex`]: 'true',
  }),
  ingress('team-a', 'plain', '2024-01-03T00:00:00Z', 'rx.example.com', [['/plain', 'Prefix']]),
  ingress('team-b', 'canary-old', '2024-01-04T00:00:00Z', 'dup.example.com', [['/shared', 'Prefix']], {
    [`${PREFIX}/canary`]: 'true',
  }),
  ingress('team-b', 'not-canary', '2024-01-05T00:00:00Z', 'nc.example.com', [['/nc', 'Prefix']], {
    [`${PREFIX}/canary`]: 'false',
  }),
];

function toObject(ing: Ing): Obj {
  const annotations = { ...ing.annotations };
  if (ing.cls === 'annotation-nginx') annotations['kubernetes.io/ingress.class'] = 'nginx';
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      namespace: ing.ns,
      name: ing.name,
      uid: '6f1f1f3e-3c1a-4d5e-9f00-000000000001',
      creationTimestamp: ing.created,
      annotations,
      ...(ing.deleting === true ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: {
      ...(ing.cls === 'nginx'
        ? { ingressClassName: 'nginx' }
        : ing.cls === 'other'
          ? { ingressClassName: 'other' }
          : {}),
      rules: [
        {
          host: ing.host,
          http: {
            paths: ing.paths.map((p) => ({
              path: p.path,
              pathType: p.pathType,
              backend:
                p.service === null
                  ? { resource: { kind: 'Bucket', name: 'b' } }
                  : { service: { name: p.service, port: { number: 80 } } },
            })),
          },
        },
      ],
    },
  };
}

function service(ns: string, name: string): Obj {
  return {
    kind: 'Service',
    metadata: { namespace: ns, name },
    spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
  };
}

// ---- generated and hand-picked reviews -------------------------------------------------------------

interface Case {
  ing: Ing;
  op: 'CREATE' | 'UPDATE' | 'DELETE';
}

/** [annotation, a plain value, a value with a blocklisted word], all valid for both controllers' parsers. */
const ANNOTATION_VALUES: readonly [string, string, string][] = [
  ['ssl-redirect', 'false', 'false'],
  ['proxy-read-timeout', '30', '30'],
  ['use-regex', 'true', 'true'],
  ['proxy-body-size', '8m', '8m'],
  ['x-forwarded-prefix', '/prefix', '/evil'],
  ['session-cookie-name', 'route', 'evilroute'],
  ['auth-url', 'http://auth.example.com/check', 'http://evil.example.com/check'],
  ['mirror-target', 'http://mirror.example.com/m', 'http://evil.example.com/m'],
  ['upstream-hash-by', '$request_uri', '$request_uri'],
  ['configuration-snippet', 'more_set_headers "X-A: b";', 'load_module /tmp/x.so;'],
  ['server-snippet', 'add_header X-S 1;', 'load_module /tmp/y.so;'],
  ['auth-snippet', 'proxy_set_header X-Auth 1;', 'load_module /tmp/z.so;'],
];
const BLOCKLIST = 'evil,load_module';

/** Paths the API server accepts for every pathType: ingress-nginx's strict characters, `~`, regexes, `%`. */
const PATHS = [
  '/shared',
  '/shared/',
  '/exact',
  '/impl',
  '/plain',
  '/plain/',
  '/api',
  '/nc',
  '/fresh',
  '/',
  '/a~b',
  '/v1/(.*)',
  '/x[0-9]+',
  '/a+b',
  '/Up_Case.ok-1',
  '/caf%C3%A9',
  '/with:colon',
];

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    ns: fc.constantFrom('team-a', 'team-b'),
    name: fc.constantFrom('cand', 'cand', 'owner', 'plain'),
    op: fc.constantFrom('CREATE' as const, 'UPDATE' as const),
    cls: fc.constantFrom(
      'nginx' as const,
      'nginx' as const,
      'nginx' as const,
      'annotation-nginx' as const,
      'other' as const,
      'none' as const,
    ),
    host: fc.constantFrom('dup.example.com', 'rx.example.com', 'nc.example.com', 'fresh.example.com'),
    paths: fc.uniqueArray(
      fc.tuple(fc.constantFrom(...PATHS), fc.constantFrom('Exact', 'Prefix', 'ImplementationSpecific')),
      { minLength: 1, maxLength: 2, selector: ([p]) => p },
    ),
    annotations: fc.uniqueArray(fc.tuple(fc.nat(ANNOTATION_VALUES.length - 1), fc.boolean()), {
      maxLength: 3,
      selector: ([i]) => i,
    }),
    canary: fc.constantFrom(null, null, null, 'true', 'false'),
  })
  .map((g): Case => {
    const annotations: Record<string, string> = {};
    for (const [i, tainted] of g.annotations) {
      const [key, plain, bad] = ANNOTATION_VALUES[i]!;
      annotations[`${PREFIX}/${key}`] = tainted ? bad : plain;
    }
    if (g.canary !== null) annotations[`${PREFIX}/canary`] = g.canary;
    const ing = ingress(g.ns, g.name, '2026-01-01T00:00:00Z', g.host, g.paths, annotations);
    return { op: g.op, ing: { ...ing, cls: g.cls } };
  });

function hand(op: Case['op'], ing: Ing, patch: Partial<Ing> = {}): Case {
  return { op, ing: { ...ing, ...patch } };
}
const at = (
  host: string,
  paths: [string, string][],
  annotations: Record<string, string> = {},
  ns = 'team-b',
) => ingress(ns, 'cand', '2026-01-01T00:00:00Z', host, paths, annotations);
const snippet = { [`${PREFIX}/configuration-snippet`]: 'more_set_headers "X-A: b";' };

/** The same in every phase: classes, operations, deletion, canaries, the regex host's Prefix twin. */
const HAND: readonly Case[] = [
  hand('DELETE', at('dup.example.com', [['/shared', 'Prefix']], snippet)),
  hand('UPDATE', at('dup.example.com', [['/shared', 'Prefix']], snippet), { deleting: true }),
  hand('CREATE', at('dup.example.com', [['/shared', 'Prefix']], snippet), { cls: 'other' }),
  hand('CREATE', at('dup.example.com', [['/shared', 'Prefix']], snippet), { cls: 'none' }),
  hand('CREATE', at('dup.example.com', [['/shared', 'Prefix']], {}, 'team-a')),
  hand('CREATE', at('dup.example.com', [['/shared', 'Prefix']], {}, 'team-b')),
  hand('CREATE', at('dup.example.com', [['/shared', 'Prefix']], { [`${PREFIX}/canary`]: 'true' })),
  hand('UPDATE', { ...EXISTING[0]!, paths: [{ path: '/shared', pathType: 'Prefix', service: 'app' }] }),
  hand('CREATE', at('dup.example.com', [['/exact', 'Exact']])),
  hand('CREATE', at('dup.example.com', [['/impl', 'Prefix']])),
  hand('CREATE', at('dup.example.com', [['/shared', 'Exact']])),
  // ingress-nginx: team-a/plain (no use-regex) is /plain/ and = /plain on the regex host too.
  hand('CREATE', at('rx.example.com', [['/plain/', 'Prefix']])),
  hand('CREATE', at('rx.example.com', [['/plain/', 'ImplementationSpecific']])),
  hand('CREATE', at('nc.example.com', [['/nc', 'Prefix']])),
  // A -snippet key under another prefix (controller.go:402 reads any key).
  hand('CREATE', at('fresh.example.com', [['/fresh', 'Prefix']], { 'example.com/team-snippet': 'notes' })),
  hand('CREATE', at('fresh.example.com', [['/a~b', 'Prefix']])),
  hand('CREATE', at('fresh.example.com', [['/a~b', 'Exact']])),
];

function reviewOf(c: Case, uid: string): Obj {
  const object = toObject(c.ing);
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: 'networking.k8s.io', version: 'v1', kind: 'Ingress' },
      resource: { group: 'networking.k8s.io', version: 'v1', resource: 'ingresses' },
      operation: c.op,
      namespace: c.ing.ns,
      name: c.ing.name,
      object: c.op === 'DELETE' ? null : object,
      oldObject: c.op === 'CREATE' ? null : object,
    },
  };
}

function describeCase(c: Case): string {
  const paths = c.ing.paths.map((p) => `${p.pathType} ${p.path}`).join(', ');
  const anns = Object.entries(c.ing.annotations).map(
    ([k, v]) => `${k.replace(`${PREFIX}/`, '')}=${JSON.stringify(v)}`,
  );
  return `${c.op} ${c.ing.ns}/${c.ing.name} class ${c.ing.cls}${c.ing.deleting ? ' (deleting)' : ''} ${c.ing.host} [${paths}] {${anns.join(' ')}}`;
}

// ---- where keepip denies more: each reason, and where it is documented ------------------------------

const ALLOWED = {
  snippets:
    'a *-snippet annotation is refused even with allow-snippet-annotations "true" and annotations-risk-level Critical: keepip never runs snippets (documented: docs/controller.md "any `*-snippet` annotation", docs/ingress-nginx-compat.md allow-snippet-annotations)',
  canaryFalse:
    'an Ingress (or the holder of the path) with canary "false" still overlaps: ingress-nginx skips checkOverlap when the annotation is present at all (controller.go:1864); keepip only exempts canary "true" (documented only as "A canary (`canary: \\"true\\"`) is allowed" in docs/controller.md; asserted in tenant-conflict-attack.test.ts)',
} as const;
type AllowedReason = keyof typeof ALLOWED;

/** Why keepip may deny what ingress-nginx allows here, per line of its message; null when a line is not covered. */
function stricterReasons(c: Case, message: string): AllowedReason[] | null {
  const prefixedSnippet = Object.keys(c.ing.annotations).some(
    (k) => k.startsWith(`${PREFIX}/`) && k.endsWith('-snippet'),
  );
  const reasons = message
    .split('\n')
    .filter((l) => l !== '')
    .map((line): AllowedReason | null => {
      if (prefixedSnippet && /-snippet/.test(line)) return 'snippets';
      if (!/ADMISSION_PATH_OVERLAP/.test(line)) return null;
      return canaryOf(c.ing) !== 'missing' || /team-b\/not-canary/.test(line) ? 'canaryFalse' : null;
    });
  return reasons.length === 0 || reasons.includes(null) ? null : (reasons as AllowedReason[]);
}

// ---- the bench: one controller, its webhook, one ConfigMap per phase --------------------------------

const SEED = ((): number => {
  const chosen = process.env.ADMISSION_SEED;
  return chosen === 'random' ? Date.now() % 2 ** 31 : Number(chosen ?? 20260321);
})();

/** A finding's kind: the model's refusal, split where keepip's cause differs. */
function findingKind(c: Case, model: Refusal): string {
  if (model.kind === 'path-type') {
    if (canaryOf(c.ing) === true) return 'path-type (canary)';
    return c.ing.paths.some((p) => p.path.includes('~') && p.pathType !== 'ImplementationSpecific')
      ? 'path-type (~)'
      : 'path-type';
  }
  if (model.kind === 'snippet' && !/^nginx\.ingress\.kubernetes\.io\//.test(model.reason))
    return 'snippet (other prefix)';
  return model.kind;
}

interface Outcome {
  /** keepip admits what ingress-nginx refuses, by findingKind. */
  findings: Map<string, string[]>;
  /** No verdict, a denial without a message, or keepip stricter without an ALLOWED reason. */
  unexplained: string[];
  met: Set<AllowedReason>;
  /** Reviews the model refuses, by findingKind, whatever keepip says: each kind must be exercised. */
  exercised: Map<string, number>;
}

/** Compares keepip's answer to each case with the model's under the ConfigMap `data`, into `out`. */
function compare(
  cases: readonly Case[],
  answers: readonly AdmissionAnswer[],
  data: Record<string, string>,
  out: Outcome,
): string[] {
  const cfg = configOf(data);
  const unexplained: string[] = [];
  cases.forEach((c, i) => {
    const answer = answers[i]!;
    const model = ingressNginx(c.ing, c.op, cfg, EXISTING);
    const what = describeCase(c);
    if (!model.allowed)
      out.exercised.set(findingKind(c, model), (out.exercised.get(findingKind(c, model)) ?? 0) + 1);
    if (answer.status !== 200 || answer.allowed === null)
      unexplained.push(`${what}: HTTP ${answer.status}, no verdict`);
    else if (!model.allowed && answer.allowed) {
      const kind = findingKind(c, model);
      out.findings.set(kind, [...(out.findings.get(kind) ?? []), `${what}: ingress-nginx: ${model.reason}`]);
    } else if (!answer.allowed && answer.message.trim() === '')
      unexplained.push(`${what}: denied without a message`);
    else if (model.allowed && !answer.allowed) {
      const reasons = stricterReasons(c, answer.message);
      if (reasons === null)
        unexplained.push(`${what}: keepip denies (${answer.message}); ingress-nginx allows`);
      else for (const r of reasons) out.met.add(r);
    }
  });
  return unexplained;
}

function show(list: readonly string[]): string {
  return list.slice(0, 5).join('\n  ') + (list.length > 5 ? `\n  … ${list.length - 5} more` : '');
}

/** The ConfigMap phases: each knob of CheckIngress, one at a time. */
const PHASES: readonly [string, Record<string, string>][] = [
  ['defaults (snippets off, risk High, strict path types)', {}],
  [
    'allow-snippet-annotations "true", annotations-risk-level Critical',
    { 'allow-snippet-annotations': 'true', 'annotations-risk-level': 'Critical' },
  ],
  ['allow-snippet-annotations "true" under the default risk High', { 'allow-snippet-annotations': 'true' }],
  ['annotations-risk-level Medium', { 'annotations-risk-level': 'Medium' }],
  ['annotations-risk-level Low', { 'annotations-risk-level': 'Low' }],
  [
    `annotation-value-word-blocklist "${BLOCKLIST}" (snippets on, risk Critical)`,
    {
      'annotation-value-word-blocklist': BLOCKLIST,
      'allow-snippet-annotations': 'true',
      'annotations-risk-level': 'Critical',
    },
  ],
  ['strict-validate-path-type "false"', { 'strict-validate-path-type': 'false' }],
];

/**
 * Where keepip admits what ingress-nginx refuses, and why it stays so for now (each documented in
 * docs/ingress-nginx-compat.md): listed by a test of their own, which also checks each is still met.
 */
const GAPS: Readonly<Record<string, string>> = {
  'path-type (canary)':
    'a canary makes no location: its path is only merged into a main location with the same path, which the check passed',
  'snippet (other prefix)':
    'keepip reads no annotation outside its prefix: a `*-snippet` key under another one is never run',
};

/** One test per kind of finding: what ingress-nginx refuses there, and where. */
const FINDINGS: readonly [string, string][] = [
  [
    'risk',
    'annotations-risk-level: an annotation riskier than the level is refused (annotations.go:186-188, validators.go:253-266)',
  ],
  [
    'blocklist',
    'annotation-value-word-blocklist: a value containing a listed word is refused (controller.go:381-400)',
  ],
  [
    'overlap',
    'a host and path another Ingress already has is refused; a Prefix without its own use-regex is `path/` and `= path` whatever else the host has (controller.go:1822-1898, location.go:34-88)',
  ],
  [
    'path-type (canary)',
    'strict-validate-path-type applies to a canary Ingress too (controller.go:375-379 runs before anything reads canary)',
  ],
  [
    'path-type (~)',
    "strict-validate-path-type: `~` is not among ingress-nginx's path characters (inspector/rules.go:37 `^/[[:alnum:]._\\-/]*$`)",
  ],
  [
    'path-type',
    'strict-validate-path-type: an Exact or Prefix path with other characters is refused (controller.go:375-379)',
  ],
  ['snippet', 'allow-snippet-annotations "false": a *-snippet annotation is refused (controller.go:402-404)'],
  [
    'snippet (other prefix)',
    'allow-snippet-annotations "false": a key ending in -snippet under any prefix is refused (controller.go:402, strings.HasSuffix on the whole key)',
  ],
];

/** Bodies that are no AdmissionReview v1 of a decodable Ingress. */
function malformedBodies(): string[] {
  const valid = reviewOf(HAND[5]!, 'uid-malformed') as { request: Obj };
  return [
    '',
    'not json',
    '{"apiVersion":',
    JSON.stringify({ ...valid, apiVersion: 'admission.k8s.io/v1beta1' }),
    JSON.stringify({ ...valid, kind: 'TokenReview' }),
    JSON.stringify({ ...valid, request: null }),
    JSON.stringify({ ...valid, request: { ...valid.request, uid: 7 } }),
    // An Ingress whose fields do not decode (main.go:73-84: allowed false, 400).
    JSON.stringify({
      ...valid,
      request: { ...valid.request, object: { ...valid.request.object, spec: { rules: 'x' } } },
    }),
  ];
}

describe('admission webhook decisions against ingress-nginx (model), over HTTPS to the controller', () => {
  const cluster = webCluster(
    async () => [...(await webhookFlags()), `--configmap=${CONFIGMAP.namespace}/${CONFIGMAP.name}`],
    {
      prepare: (api) => {
        api.apply({
          kind: 'IngressClass',
          metadata: { name: 'other' },
          spec: { controller: 'example.com/other' },
        });
        for (const ns of ['team-a', 'team-b'])
          for (const name of ['app', 'canary-app']) api.apply(service(ns, name));
        for (const ing of EXISTING) api.apply(toObject(ing));
        api.apply({ kind: 'ConfigMap', metadata: CONFIGMAP, data: {} });
      },
    },
  );
  const agent = new https.Agent({ keepAlive: true, maxSockets: 8, rejectUnauthorized: false });
  after(() => agent.destroy());
  const outcome: Outcome = { findings: new Map(), unexplained: [], met: new Set(), exercised: new Map() };
  let phase = 0;

  /** Applies the controller ConfigMap `data` and waits until the controller serves it. */
  async function configure(data: Record<string, string>): Promise<void> {
    const marker = `keepip-admission-phase-${++phase}`;
    cluster.api.apply({ kind: 'ConfigMap', metadata: CONFIGMAP, data: { ...data, [marker]: 'x' } });
    await cluster.ctl.waitFor(
      () =>
        cluster.ctl.running
          .gateway()
          ?.snapshot()
          .topology.gateway.settings.unsupportedKeys.includes(marker) === true,
      `ConfigMap phase ${phase} served`,
    );
  }

  for (const [title, data] of PHASES)
    it(`${title}: every review answered, every denial with a message, keepip stricter only as ALLOWED says`, async () => {
      await configure(data);
      const cases = [...fc.sample(caseArb, { numRuns: RUNS, seed: SEED + phase }), ...HAND];
      const port = cluster.ctl.running.webhookAddress!.port;
      const answers = await mapLimited(cases, 8, (c, i) =>
        postReview(agent, port, JSON.stringify(reviewOf(c, `uid-${phase}-${i}`))),
      );
      const unexplained = compare(cases, answers, data, outcome);
      assert.deepEqual(
        unexplained,
        [],
        `seed ${SEED}: keepip differs in a way ALLOWED does not cover:\n  ${show(unexplained)}`,
      );
    });

  it('the differences kept (GAPS) are each still met, and documented', () => {
    for (const [kind, why] of Object.entries(GAPS))
      assert.ok((outcome.findings.get(kind) ?? []).length > 0, `GAPS.${kind} no longer met: ${why}`);
  });

  for (const [kind, rule] of FINDINGS.filter(([kind]) => GAPS[kind] === undefined))
    it(`ingress-nginx refuses and keepip must too: ${rule}`, () => {
      assert.ok(
        (outcome.exercised.get(kind) ?? 0) > 0,
        `no review ingress-nginx refuses for ${kind}: the run is vacuous`,
      );
      const admitted = outcome.findings.get(kind) ?? [];
      assert.deepEqual(
        admitted,
        [],
        `seed ${SEED}: keepip admits ${admitted.length} review(s) ingress-nginx refuses:\n  ${show(admitted)}`,
      );
    });

  it('every ALLOWED difference was met by the runs above (the table has no dead entries)', () => {
    assert.deepEqual([...outcome.met].sort(), (Object.keys(ALLOWED) as AllowedReason[]).sort());
  });

  it('malformed AdmissionReview bodies get no allowed: true (ingress-nginx: 400 from its decoder, server.go:86-91)', async () => {
    const port = cluster.ctl.running.webhookAddress!.port;
    const bodies = malformedBodies();
    const answers = await mapLimited(bodies, 8, (body) => postReview(agent, port, body));
    answers.forEach((a, i) => {
      assert.notEqual(a.allowed, true, `body ${i} (${bodies[i]!.slice(0, 80)}) was allowed`);
      if (a.status === 200) assert.notEqual(a.message, '', `body ${i} denied without a message`);
    });
  });
});
