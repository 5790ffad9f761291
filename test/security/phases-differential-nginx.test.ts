// In which order a location's features decide a request: keepip against real nginx 1.22 configured the
// way ingress-nginx's template renders the same annotations. nginx's phases decide the order there: the
// server's rewrite phase (app-root's `if ($uri = /) { return 302 … }`), find-config (the location, its
// client_max_body_size: 413 for a declared Content-Length over it), the location's rewrite phase (the
// CORS `if`s, whose preflight is `return 204`, then permanent-/temporal-redirect's `return`), the access
// phase (deny/allow, then auth_basic, combined by `satisfy`), then proxy_pass; error_page (custom-http-errors)
// hands the location's 401/403/413 to the error backend. docs/gateway.md ("Request handling") documents
// the same order for keepip. An answer keepip gives where ingress-nginx gives another (status, Location,
// or which backend was reached) is a difference; keepip reaching a backend where ingress-nginx refuses is
// an access-control bypass.
//
// The model of ingress-nginx (controller-v1.12+, the mirror's HEAD): createServers gives each host a
// root `/` location with the annotations of the Ingress that created it, proxying to the default backend
// (here a backend that answers 404, as ingress-nginx's does), until a Prefix `/` rule takes it over;
// updateServerLocations turns a Prefix `/a` into `location /a/` plus `location = /a`; the two stable
// sorts of getBackendServers order the locations (only the server-level app-root `if`s depend on that
// order: the first one returns); the template (rootfs/etc/nginx/template/nginx.tmpl, "SERVER" and
// "CORS") writes, per location: denylist `deny`, allowlist `allow …; deny all;`, the CORS block,
// auth_basic, client_max_body_size, proxy_intercept_errors + error_page, the redirect's `return`,
// proxy_pass. `more_set_headers` (not built into this nginx) is left out of the CORS block: the headers
// are not compared, only the `if`s and the `return 204` that decide the answer.
//
// Generated cases are checked in one batch (one nginx, one keepip, one host per case); the first case
// that differs is shrunk by fast-check against a single-host configuration (the bench:
// test/helpers/nginx-differential.ts). PHASES_SEED=<n> (or `random`) explores other cases; the default
// seed is fixed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { K8sObject } from '../fixtures/gateway/manifests.ts';
import { openRaw } from '../helpers/net.ts';
import {
  type CaseIngress,
  casesTopology,
  checkGenerated,
  type Differential,
  SINGLE_HOST,
  startDifferential,
} from '../helpers/nginx-differential.ts';

/** The allowlist's only address. */
const ALLOWED = '127.0.0.50';
/** An address the narrow denylist names. */
const DENIED = '127.0.0.60';
/** Neither listed: refused by an allowlist, admitted by a denylist. */
const STRANGER = '127.0.0.1';
/** The wide denylist covers ALLOWED and DENIED (deny beats allow). */
const DENY_LISTS = ['127.0.0.60/32', '127.0.0.48/28'] as const;
const USER = 'alice';
const PASSWORD = 'open sesame';
const GOOD_ORIGIN = 'https://ok.test';
const BODY_LIMIT = '1k';
const BIG_BODY = 2048;
const ERROR_CODES = [401, 403, 413] as const;

type PathName = '/' | '/a' | '/b';
interface GenIngress {
  /** The Ingress's one Prefix path; Ingress i is served by backend `p<i>`. */
  path: PathName;
  /** pathType Exact (fixed cases only; else Prefix). */
  exact?: true;
  allow: boolean;
  deny: (typeof DENY_LISTS)[number] | null;
  basic: boolean;
  /** permanent-redirect; the value is permanent-redirect-code, 0 for none. */
  permanent: number | null;
  /** temporal-redirect (wins over permanent); the value is temporal-redirect-code, 0 for none. */
  temporal: number | null;
  /** enable-cors with this cors-allow-origin. */
  cors: '*' | typeof GOOD_ORIGIN | null;
  /** proxy-body-size BODY_LIMIT (else the default 1m). */
  small: boolean;
  /** satisfy any (else nginx's default, all). */
  any: boolean;
  appRoot: '/app' | '/home' | null;
  /** custom-http-errors, with default-backend: the error backend. */
  errors: number[] | null;
}
/** The Ingresses of one host, oldest first (merge order); their paths differ. */
type Case = GenIngress[];

// ---------------------------------------------------------------------------------------------
// ingress-nginx's server for a case.

interface NgxLocation {
  /** nginx's location name: `= /a`, `/a/`, `/`. */
  name: string;
  /** The backend id; null: the default backend (404). */
  id: string | null;
  ing: GenIngress;
}

/**
 * createServers + getBackendServers (whose two stable sorts, by Path descending then by its length
 * descending, see the Ingress paths) + updateServerLocations, which runs after them (getConfiguration)
 * and turns each Prefix `/a` into `/a/` followed by its exact copy `= /a`, in place.
 */
function ingressNginxLocations(c: Case): NgxLocation[] {
  const rootIndex = c.findIndex((ing) => ing.path === '/');
  const root = { path: '/', id: rootIndex < 0 ? null : `p${rootIndex}`, ing: c[Math.max(rootIndex, 0)]! };
  const sorted = [
    root,
    ...c.flatMap((ing, i) => (ing.path === '/' ? [] : [{ path: ing.path, id: `p${i}`, ing }])),
  ];
  sorted.sort((a, b) => (a.path > b.path ? -1 : a.path < b.path ? 1 : 0));
  sorted.sort((a, b) => b.path.length - a.path.length);
  return sorted.flatMap(({ path, id, ing }) =>
    path === '/' || ing.exact
      ? [{ name: path === '/' ? '/' : `= ${path}`, id, ing }]
      : [
          { name: `${path}/`, id, ing },
          { name: `= ${path}`, id, ing },
        ],
  );
}

/** The redirect of an Ingress (temporal first, then permanent), as the redirect annotation parser. */
function redirectOf(ing: GenIngress): { code: number; url: string } | null {
  if (ing.temporal !== null) return { code: ing.temporal || 302, url: 'https://r.test/temporal' };
  if (ing.permanent !== null) return { code: ing.permanent || 301, url: 'https://r.test/permanent' };
  return null;
}

/** The template's "CORS" block (its more_set_headers left out, see the top of the file). */
function corsBlock(origin: string): string[] {
  const regex = origin.replace(/[.*+?^${}()|[\]\\/:-]/g, '\\$&');
  return [
    origin === '*'
      ? "set $http_origin *; set $cors 'true';"
      : `if ($http_origin ~* ((${regex}))$ ) { set $cors 'true'; }`,
    // nginx's `${cors}`: the variable, then the text `options`.
    `if ($request_method = 'OPTIONS') { set $cors $\{cors}options; }`,
    'if ($cors = "true") { }',
    'if ($cors = "trueoptions") { return 204; }',
  ];
}

/** One location as the template's "SERVER" writes it (the directives that decide an answer). */
function nginxLocation(loc: NgxLocation, ports: ReadonlyMap<string, number>, dir: string): string {
  const { ing } = loc;
  const lines: string[] = [];
  if (ing.deny !== null) lines.push(`deny ${ing.deny};`);
  if (ing.allow) lines.push(`allow ${ALLOWED}/32;`, 'deny all;');
  if (ing.cors !== null) lines.push(...corsBlock(ing.cors));
  if (ing.basic) lines.push('auth_basic "Protected";', `auth_basic_user_file ${join(dir, 'htpasswd')};`);
  lines.push(`client_max_body_size ${ing.small ? BODY_LIMIT : '1m'};`);
  if (ing.any) lines.push('satisfy any;');
  // The default backend's root keeps the global error location (not modelled: errors are null there).
  if (ing.errors !== null && loc.id !== null) {
    lines.push('proxy_intercept_errors on;');
    for (const code of ing.errors) lines.push(`error_page ${code} = @custom_err_${code};`);
  }
  const redirect = redirectOf(ing);
  if (redirect !== null) lines.push(`return ${redirect.code} ${redirect.url};`);
  lines.push(`proxy_pass http://127.0.0.1:${ports.get(loc.id ?? 'def')};`);
  return `    location ${loc.name} {\n      ${lines.join('\n      ')}\n    }`;
}

/** The `server { }` ingress-nginx writes for case `c` on `host`. */
function nginxServer(c: Case, host: string, port: number, ports: ReadonlyMap<string, number>, dir: string) {
  const locations = ingressNginxLocations(c);
  // The server-level app-root `if`s, one per location that has it, in the locations' order.
  const appRoots = locations.flatMap((loc) =>
    loc.ing.appRoot === null
      ? []
      : [`    if ($uri = /) { return 302 $scheme://$http_host${loc.ing.appRoot}; }`],
  );
  const codes = new Set(locations.flatMap((loc) => (loc.id === null ? [] : (loc.ing.errors ?? []))));
  const errorLocations = [...codes].map(
    (code) =>
      `    location @custom_err_${code} { internal; proxy_intercept_errors off; proxy_set_header X-Code ${code}; ` +
      `rewrite (.*) / break; proxy_pass http://127.0.0.1:${ports.get('err')}; }`,
  );
  return [
    `server { listen 127.0.0.1:${port}; server_name ${host};`,
    ...appRoots,
    ...errorLocations,
    ...locations.map((loc) => nginxLocation(loc, ports, dir)),
    '}',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The same Ingresses for keepip.

function annotationsOf(ing: GenIngress): Record<string, string> {
  const a: Record<string, string> = {};
  if (ing.allow) a['allowlist-source-range'] = `${ALLOWED}/32`;
  if (ing.deny !== null) a['denylist-source-range'] = ing.deny;
  if (ing.basic)
    Object.assign(a, { 'auth-type': 'basic', 'auth-secret': 'users', 'auth-realm': 'Protected' });
  if (ing.permanent !== null) a['permanent-redirect'] = 'https://r.test/permanent';
  if (ing.permanent) a['permanent-redirect-code'] = String(ing.permanent);
  if (ing.temporal !== null) a['temporal-redirect'] = 'https://r.test/temporal';
  if (ing.temporal) a['temporal-redirect-code'] = String(ing.temporal);
  if (ing.cors !== null) Object.assign(a, { 'enable-cors': 'true', 'cors-allow-origin': ing.cors });
  if (ing.small) a['proxy-body-size'] = BODY_LIMIT;
  if (ing.any) a.satisfy = 'any';
  if (ing.appRoot !== null) a['app-root'] = ing.appRoot;
  if (ing.errors !== null)
    Object.assign(a, { 'custom-http-errors': ing.errors.join(','), 'default-backend': 'svc-err' });
  return a;
}

function keepipIngresses(c: Case): CaseIngress[] {
  return c.map((ing, i) => ({
    annotations: annotationsOf(ing),
    paths: [{ path: ing.path, pathType: ing.exact ? 'Exact' : 'Prefix', service: `svc-p${i}`, port: 80 }],
  }));
}

function htpasswd(): string {
  return `${USER}:{SHA}${createHash('sha1').update(PASSWORD).digest('base64')}\n`;
}

/** The Ingresses of the cases, a Service per backend but the default one, and the basic-auth Secret. */
function keepipTopology(
  cases: readonly Case[],
  hosts: readonly string[],
  backends: ReadonlyMap<string, number>,
) {
  const users: K8sObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'users', namespace: 'default' },
    type: 'Opaque',
    data: { auth: Buffer.from(htpasswd()).toString('base64') },
  };
  return casesTopology({
    cases,
    hosts,
    backends,
    ingressesOf: keepipIngresses,
    objects: [users],
    noService: ['def'],
  });
}

// ---------------------------------------------------------------------------------------------
// Generated cases and the requests sent to both.

/** `arb` one time in `1 + absent`, else null: most locations have a few features, not all of them. */
function sometimes<T>(arb: fc.Arbitrary<T>, absent = 2): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: absent, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });
}

/** An Ingress's features; app-root takes one of `appRoots`. */
function ingressArb(appRoots: readonly ('/app' | '/home')[]): fc.Arbitrary<GenIngress> {
  return fc.record({
    path: fc.constantFrom<PathName>('/', '/a', '/b'),
    allow: sometimes(fc.constant(true), 1).map((v) => v === true),
    deny: sometimes(fc.constantFrom(...DENY_LISTS)),
    basic: sometimes(fc.constant(true), 1).map((v) => v === true),
    permanent: sometimes(fc.constantFrom(0, 301, 308), 4),
    temporal: sometimes(fc.constantFrom(0, 302, 307), 5),
    cors: sometimes(fc.constantFrom<'*' | typeof GOOD_ORIGIN>('*', GOOD_ORIGIN), 1),
    small: sometimes(fc.constant(true), 1).map((v) => v === true),
    any: sometimes(fc.constant(true), 3).map((v) => v === true),
    appRoot: sometimes(fc.constantFrom(...appRoots), 3),
    errors: sometimes(fc.subarray([...ERROR_CODES], { minLength: 1 })),
  });
}

/**
 * Cases: 1-3 Ingresses with distinct paths. Without a `/` rule the host's root location is the default
 * backend's with the first Ingress's annotations; its custom-http-errors would go to ingress-nginx's
 * global default backend (DefaultBackendUpstreamName stays upstream-default-backend there), which this
 * bench does not have: that Ingress gets none.
 */
function caseArb(appRoots: readonly ('/app' | '/home')[]): fc.Arbitrary<Case> {
  return fc
    .uniqueArray(ingressArb(appRoots), { minLength: 1, maxLength: 3, selector: (ing) => ing.path })
    .map((c) => (c.some((ing) => ing.path === '/') ? c : [{ ...c[0]!, errors: null }, ...c.slice(1)]));
}

type Method = 'GET' | 'PREFLIGHT' | 'PREFLIGHT_OTHER' | 'BIG_POST' | 'BIG_PREFLIGHT';
interface Probe {
  target: string;
  from: string;
  auth: boolean;
  method: Method;
}

// `//` is `/` to nginx's $uri (merge_slashes): app-root answers it too.
const TARGETS = ['/', '/?q=1', '//', '/a', '/a/x', '/b/x'];
const METHODS: Method[] = ['GET', 'PREFLIGHT', 'PREFLIGHT_OTHER', 'BIG_POST', 'BIG_PREFLIGHT'];
const PROBES: Probe[] = TARGETS.flatMap((target) =>
  [ALLOWED, DENIED, STRANGER].flatMap((from) =>
    [false, true].flatMap((auth) => METHODS.map((method) => ({ target, from, auth, method }))),
  ),
);

/**
 * The probes worth sending for `c` (fewer requests per case, more cases per second): the other
 * addresses only when an Ingress has an allow- or denylist, credentials only with basic auth, the
 * preflights with a body or another Origin only with CORS, on every case a plain preflight and an
 * oversized POST (a location without those features must not answer them itself).
 */
function probesFor(c: Case): Probe[] {
  const lists = c.some((ing) => ing.allow || ing.deny !== null);
  const basic = c.some((ing) => ing.basic);
  const cors = c.some((ing) => ing.cors !== null);
  return PROBES.filter(
    (probe) =>
      (lists || probe.from === STRANGER) &&
      (basic || !probe.auth) &&
      (cors || (probe.method !== 'PREFLIGHT_OTHER' && probe.method !== 'BIG_PREFLIGHT')),
  );
}

function rawRequest(probe: Probe, host: string): string {
  const big = probe.method === 'BIG_POST' || probe.method === 'BIG_PREFLIGHT';
  const verb = probe.method === 'GET' ? 'GET' : probe.method === 'BIG_POST' ? 'POST' : 'OPTIONS';
  const lines = [`${verb} ${probe.target} HTTP/1.1`, `Host: ${host}`];
  if (probe.auth) lines.push(`Authorization: Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`);
  if (verb === 'OPTIONS') {
    const origin = probe.method === 'PREFLIGHT_OTHER' ? 'https://evil.test' : GOOD_ORIGIN;
    lines.push(`Origin: ${origin}`, 'Access-Control-Request-Method: GET');
  }
  if (big) lines.push(`Content-Length: ${BIG_BODY}`);
  lines.push('Connection: close', '', big ? 'x'.repeat(BIG_BODY) : '');
  return lines.join('\r\n');
}

function describeProbe(probe: Probe): string {
  return `${probe.method} ${probe.target} from ${probe.from}${probe.auth ? ' with credentials' : ''}`;
}

interface Outcome {
  /** `status 403`, `status 302 -> /app`, `status 200 from p1`: what the comparison is on. */
  kind: string;
  status: number;
  /** The id of the backend that answered (`p<i>`, `err`), null when none did. */
  backend: string | null;
  gen: string | null;
}

function outcomeOf(raw: Buffer): Outcome {
  const text = raw.toString('latin1');
  const head = text.slice(0, text.indexOf('\r\n\r\n') + 2);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  const gen = /\r\nx-gen: (\d+)/i.exec(head)?.[1] ?? null;
  const backend = /\r\nx-loc: (\w+)\r\n/i.exec(head)?.[1] ?? null;
  // The Location header, reduced to its path (nginx and keepip may spell scheme and authority apart).
  const location = /\r\nlocation: (?:https?:\/\/[^/\r]*)?(\S*)/i.exec(head)?.[1];
  let kind = `status ${status}`;
  if (location !== undefined) kind += ` -> ${location}`;
  if (backend !== null) kind += ` from ${backend}`;
  return { kind, status, backend, gen };
}

/**
 * The head of the answer to `probe`; the connection is dropped once it is in (a 413 would otherwise
 * keep nginx's lingering close waiting for the client to close first).
 */
async function send(port: number, probe: Probe, host: string): Promise<Outcome> {
  const conn = await openRaw({ host: '127.0.0.1', port, localAddress: probe.from });
  try {
    conn.socket.write(rawRequest(probe, host));
    return outcomeOf(await conn.until((received) => received.includes('\r\n\r\n'), 10_000));
  } catch {
    return outcomeOf(conn.received());
  } finally {
    conn.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// The two servers under test.

type Bench = Differential<Probe, Outcome> & {
  /** Every answer nginx gave in the generated batch (`kind`): the batch must exercise each feature. */
  seen: Set<string>;
};

/** A backend that answers 200 with its id in X-Loc (def: 404 without; err: X-Code's status). */
function backendHandler(id: string): http.RequestListener {
  return (req, res) => {
    req.resume();
    req.on('end', () => {
      if (id === 'def') {
        res.writeHead(404, { 'content-length': 0 });
        res.end();
        return;
      }
      const code = id === 'err' ? Number(req.headers['x-code']) || 500 : 200;
      res.writeHead(code, { 'content-type': 'text/plain', 'content-length': id.length, 'x-loc': id });
      res.end(id);
    });
  };
}

/** Swaps in the cases, each on its host, for both servers (keepip reload); resolves when both serve them. */
async function configure(bench: Bench, cases: readonly Case[], hosts: readonly string[]): Promise<void> {
  const { backends, nginx } = bench;
  await bench.configure(
    (port) => cases.map((c, i) => nginxServer(c, hosts[i]!, port, backends, nginx.dir)),
    keepipTopology(cases, hosts, backends),
  );
}

function describeCase(c: Case): string {
  const ingresses = c.map(
    (ing, i) =>
      `  ing${i} (backend p${i}) ${JSON.stringify(annotationsOf(ing))} ${ing.exact ? 'Exact' : 'Prefix'} ${ing.path}`,
  );
  const order = ingressNginxLocations(c).map((l) => `${l.name} -> ${l.id ?? 'default backend'}`);
  return `Ingresses (merge order):\n${ingresses.join('\n')}\ningress-nginx's locations: ${order.join(', ')}`;
}

/** The Ingress whose location serves `target` (ingress-nginx's prefix match over these paths). */
function servingIngress(c: Case, target: string): GenIngress {
  const segment = /^\/([ab])(?:[/?]|$)/.exec(target)?.[1];
  const own = segment === undefined ? undefined : c.find((ing) => ing.path === `/${segment}`);
  const matches = own !== undefined && (!own.exact || target.split('?')[0] === own.path);
  return (matches ? own : undefined) ?? c.find((ing) => ing.path === '/') ?? c[0]!;
}

function denylisted(ing: GenIngress, from: string): boolean {
  if (ing.deny === '127.0.0.60/32') return from === DENIED;
  return ing.deny !== null && (from === DENIED || from === ALLOWED);
}

/**
 * A difference keepip documents as deliberate. docs/ingress-nginx-compat.md:383-385 (difference 8):
 * "`satisfy: any` never overrides a deny. A denylist or block-cidrs match refuses even with valid
 * credentials (nginx's access module would let a passed auth admit a denylisted client)", and :106
 * ("A denylist or block-cidrs match refuses whatever `satisfy` says"): a denylisted client of a
 * `satisfy: any` location is 403 in keepip, where nginx admits it with credentials and asks for them
 * (401) without. Only that refusal is excused, nothing keepip admits.
 */
function documentedDifference(c: Case, probe: Probe, _ngx: Outcome, kip: Outcome): boolean {
  const ing = servingIngress(c, probe.target);
  return ing.any && denylisted(ing, probe.from) && kip.status === 403 && kip.backend !== `p${c.indexOf(ing)}`;
}

/** The probes on which nginx and keepip disagree, for the case served on `host`. */
function differences(bench: Bench, c: Case, host: string, probes = probesFor(c)): Promise<string[]> {
  return bench.disagreements(probes, host, (probe, ngx, kip) => {
    bench.seen.add(ngx.kind);
    // Both must answer: a request neither answers within the deadline is no agreement.
    if (ngx.status === 0 || kip.status === 0) {
      return `${describeProbe(probe)}: no answer (nginx ${ngx.kind}, keepip ${kip.kind})`;
    }
    if (ngx.kind === kip.kind || documentedDifference(c, probe, ngx, kip)) return null;
    const bypass = kip.backend !== null && kip.backend !== 'err' && ngx.backend !== kip.backend;
    return `${describeProbe(probe)}: nginx ${ngx.kind}, keepip ${kip.kind}${bypass ? '  <-- keepip reached a backend nginx did not' : ''}`;
  });
}

async function caseDifferences(bench: Bench, c: Case, probes = probesFor(c)): Promise<string[]> {
  await configure(bench, [c], [SINGLE_HOST]);
  return differences(bench, c, SINGLE_HOST, probes);
}

/** The batch is not vacuous: nginx gave each kind of answer the features make somewhere in it. */
function assertExercised(seen: ReadonlySet<string>): void {
  const kinds = [...seen];
  const expected: [string, RegExp][] = [
    ['a backend', /^status 200 from p\d$/],
    ['the default backend', /^status 404$/],
    ['allow/deny', /^status 403$/],
    ['basic auth', /^status 401$/],
    ['proxy-body-size', /^status 413$/],
    ['a CORS preflight', /^status 204$/],
    ['app-root', /^status 302 -> \/(app|home)$/],
    ['permanent-redirect', /^status 30[18] -> \/permanent$/],
    ['temporal-redirect', /^status 30[27] -> \/temporal$/],
    ['custom-http-errors', /^status (401|403|413) from err$/],
  ];
  for (const [feature, pattern] of expected) {
    assert.ok(
      kinds.some((kind) => pattern.test(kind)),
      `no answer of ${feature} in the batch: ${kinds.join(', ')}`,
    );
  }
}

/** Asserts that `c` shows no difference; the message names the case and the first differing requests. */
function assertNoDifference(c: Case, diff: readonly string[]): void {
  const shown = diff.length > 16 ? [...diff.slice(0, 16), `… and ${diff.length - 16} more`] : diff;
  assert.equal(diff.length, 0, `${describeCase(c)}\n${shown.join('\n')}`);
}

/** `runs` generated cases in one batch (see checkGenerated), which must exercise every feature. */
async function checkPhases(bench: Bench, arb: fc.Arbitrary<Case>, runs: number): Promise<void> {
  await checkGenerated({
    arb,
    runs,
    seedVariable: 'PHASES_SEED',
    defaultSeed: 20261206,
    configure: (cases, hosts) => configure(bench, cases, hosts),
    differences: (c, host) => differences(bench, c, host),
    assertAlone: async (c) => assertNoDifference(c, await caseDifferences(bench, c)),
    describe: describeCase,
    shrinkTimeLimitMs: 15_000,
  });
  assertExercised(bench.seen);
}

/** An Ingress without features on `path`; `features` override. */
function plain(path: PathName, features: Partial<GenIngress> = {}): GenIngress {
  const none = { allow: false, deny: null, basic: false, permanent: null, temporal: null, cors: null };
  return { path, ...none, small: false, any: false, appRoot: null, errors: null, ...features };
}

const EVERYTHING: Partial<GenIngress> = {
  allow: true,
  deny: '127.0.0.60/32',
  basic: true,
  cors: GOOD_ORIGIN,
  small: true,
  appRoot: '/app',
  errors: [401, 403, 413],
};

/** The generated runs' findings, in the shape where they matter, and the documented order on one location. */
const FIXED_CASES: { name: string; ingresses: Case; targets: string[] }[] = [
  {
    // ingress-nginx writes one server-level `if ($uri = /) { return 302 … }` per location that has
    // app-root, in the order of server.Locations (getBackendServers: the greater path first, then the
    // longer one); the first returns. keepip takes the first in its own order (merge order among equal
    // lengths).
    name: "app-root on two Ingresses of a host: `/` goes where ingress-nginx's first server-level `if` sends it",
    ingresses: [plain('/a', { appRoot: '/app' }), plain('/b', { appRoot: '/home' })],
    targets: ['/', '/?q=1', '//', '/a', '/b/x'],
  },
  {
    // The same with an Exact path: ingress-nginx's sort puts `/b` (created first) ahead of the Exact
    // `/a`; keepip's order puts Exact locations first.
    name: 'app-root on a Prefix and an Exact Ingress of a host: the same first `if` as ingress-nginx',
    ingresses: [plain('/b', { appRoot: '/home' }), plain('/a', { exact: true, appRoot: '/app' })],
    targets: ['/', '/a', '/b/x'],
  },
  {
    // `/` has every feature (its redirect answers whatever the access phase would say); `/a` the same
    // without the redirect, so that its requests reach deny/allow and basic auth.
    name: 'locations with every feature: app-root, then 413, then the CORS preflight, then the redirect, then deny/allow, then basic auth',
    ingresses: [plain('/', { ...EVERYTHING, temporal: 307 }), plain('/a', { ...EVERYTHING, appRoot: null })],
    targets: ['/', '/?q=1', '/a', '/a/x', '/b/x'],
  },
  {
    name: "a location whose redirect is behind an allowlist, basic auth and custom-http-errors: the redirect is answered to everyone, as nginx's rewrite phase does",
    ingresses: [
      plain('/', { allow: true, basic: true, errors: [401, 403] }),
      plain('/a', { permanent: 308, allow: true, basic: true, errors: [401, 403, 413], small: true }),
    ],
    targets: ['/', '/a', '/a/x'],
  },
];

describe('phases: keepip decides a request in the order ingress-nginx (real nginx 1.22) does', () => {
  let bench: Bench;

  before(async () => {
    const differential = await startDifferential({
      // p0..p2: the Ingresses' Services; def: the default backend (404); err: X-Code's status.
      ids: ['p0', 'p1', 'p2', 'def', 'err'],
      handler: backendHandler,
      send,
      genProbe: { target: '/__gen', from: STRANGER, auth: false, method: 'GET' },
    });
    bench = Object.assign(differential, { seen: new Set<string>() });
    writeFileSync(join(bench.nginx.dir, 'htpasswd'), htpasswd());
  });

  after(async () => {
    await bench?.close();
  });

  for (const fixed of FIXED_CASES) {
    it(fixed.name, async () => {
      const c = fixed.ingresses;
      const diff = await caseDifferences(
        bench,
        c,
        probesFor(c).filter((probe) => fixed.targets.includes(probe.target)),
      );
      assertNoDifference(c, diff);
    });
  }

  // Ingresses of one host with different app-root values meet the difference of the first fixed case
  // above on every `/`: the generated cases give them one value, so that they check everything else.
  it('generated locations (allow/deny, basic auth, satisfy, redirects, CORS, body size, custom errors, app-root): the same answers', async () => {
    await checkPhases(bench, caseArb(['/app']), 40);
  });
});
