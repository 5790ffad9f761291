// ingress-nginx's request metrics (nginx_ingress_controller_requests and the histograms sharing its
// labels), keepip against a transcribed MODEL of ingress-nginx (no OpenResty here: the model is the
// reference). Cited from the mirror (kubernetes/ingress-nginx, HEAD dbb11b92) and nginx 1.2x:
//
// - What each request sends (rootfs/etc/nginx/lua/monitor.lua:34-55): host = $host, namespace,
//   ingress, service, path = the location's `set $namespace/$ingress_name/$service_name/$location_path`
//   (rootfs/etc/nginx/template/nginx.tmpl:1152-1156: the Ingress path AS WRITTEN, never the request's),
//   canary = $proxy_alternative_upstream_name (set "" in the location, nginx.tmpl:1201, the canary's
//   upstream when the balancer picked it), method = $request_method AS SENT, status = $status.
// - When: monitor.call() runs in log_by_lua of every Ingress location (nginx.tmpl:1171,
//   lua/nginx/ngx_conf_log_block.lua) and of the custom-error locations (nginx.tmpl:866); there is no
//   http- or server-level log_by_lua, so a request nginx refuses before a location is found (400 bad
//   Host / request line / header too large) is never counted. A 413 (client_max_body_size) is answered
//   in nginx's find-config phase, after the location was found but before its `set`s ran: it IS
//   counted, with path/namespace/ingress/service/canary "" (ngx_http_rewrite_var yields the empty
//   null value with uninitialized_variable_warn off, nginx.tmpl:344; checked on nginx 1.22 here: the
//   access log shows `[app.example.com][][] 413`).
// - Labels and filter (internal/ingress/metric/collectors/socket.go:89-99, 131-134, 315-349): the
//   request tags, plus `host` with --metrics-per-host (default true, pkg/flags/flags.go:179); with it,
//   a sample whose $host is not in `hosts` is dropped unless --metrics-per-undefined-host (:317);
//   --report-status-classes turns the status into `<first digit>xx` (:322-324).
// - `hosts` (internal/ingress/controller/controller.go:639-664, SetHosts :214): every server's
//   Hostname (the wildcard `*.example.com` as written, and the catch-all `_`, always created at
//   :1299) and every alias. $host (nginx ngx_http_validate_host / ngx_http_variable_host) is the Host
//   lower-cased, without its port and one trailing dot, or the server's name (`_`) when the request has
//   none: so a wildcard instance (`w1.example.com`) is dropped by default, an alias is labelled with
//   the alias, an HTTP/1.0 request without Host (or `Host: _`) is counted as host `_`.
// - Locations (controller.go:1299-1390 createServers; template/template.go:1069-1102
//   getIngressInformation): each host's root `/` (default backend, 404 here) carries the FIRST
//   Ingress of the host (path "/", service ""); the catch-all's root carries none (all "").
//
// Over real sockets: ONE keepip gateway (its registry read in process), one whoami backend. Each test
// reloads the gateway with its own metrics settings (a distinct controller_pod, so series never mix).
// Generated (fast-check, seed METRICS_SEED=<n>|random, METRICS_RUNS requests): Host variants, paths,
// methods, the canary header, bodies over the app's proxy-body-size, under three flag sets. The
// model's label multiset, with the ALLOWED differences below applied, must equal keepip's.
// A difference not in ALLOWED is a finding and fails.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_REQUEST_METRICS, type RequestMetricsSettings } from '../../src/config/request-metrics.ts';
import type { Topology } from '../../src/config/model.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { connectH2 } from '../helpers/h2-client.ts';

const SEED =
  process.env.METRICS_SEED === 'random'
    ? Math.floor(Math.random() * 2 ** 31)
    : Number(process.env.METRICS_SEED ?? 20_260_321);
const RUNS = Number(process.env.METRICS_RUNS ?? 50);
const FLOOD = 2_000;

/**
 * Differences keepip may have, each met by some case below. Everything else the model says is a
 * finding.
 */
const ALLOWED = {
  // docs/gateway.md "ingress-nginx's metrics" and docs/ingress-nginx-compat.md difference 22: bounded
  // where ingress-nginx makes a series per invented method.
  h2InventedMethodIsOther: 'an HTTP/2 method node:http does not know is labelled OTHER',
  // docs/gateway.md "Request parsing" table: 400 H1_BAD_METHOD; nginx proxies any upper-case token.
  h1InventedMethodRefused: 'an HTTP/1.1 method llhttp does not know is a 400, never counted',
  // Safer: ingress-nginx's host label would be the client's Host (one series per name sent,
  // socket.go:347); keepip's is the server name. Not spelled out in docs/gateway.md.
  undefinedHostLabelIsServerName: 'with --metrics-per-undefined-host an unknown Host is labelled `_`',
  // docs/gateway.md: "requests to a host no Ingress names (the default server `_`, …) are not
  // counted"; ingress-nginx has `_` in its hosts set (controller.go:656, :1299), so it counts them.
  defaultServerNotCounted:
    'a request reaching the catch-all by the name `_` (no Host, Host: _) is not counted',
  // Bounded either way (one series per configured wildcard); ingress-nginx drops an instance by default
  // (its hosts set has `*.example.com` as written) and labels it with the instance name (unbounded)
  // under --metrics-per-undefined-host. docs/gateway.md "ingress-nginx's metrics".
  wildcardLabelWithUndefinedHosts: 'a wildcard instance is counted and labelled `*.example.com`',
} as const;

// ---------------------------------------------------------------------------------------------------
// The configuration (the same objects feed the model below).

const CANARY_UPSTREAM = 'default-web-canary-80';
const BODY_LIMIT = 10; // app's proxy-body-size
const HOSTS = new Set(['app.example.com', 'alias.example.com', '*.example.com', 'deny.example.com', '_']);

function objects(port: number) {
  return [
    ...serviceWithEndpoints({ name: 'web', ports: [port] }),
    ...serviceWithEndpoints({ name: 'web-canary', ports: [port] }),
    ingress({
      name: 'app',
      host: 'app.example.com',
      paths: [{ path: '/api', service: 'web', port: 80 }],
      annotations: { 'server-alias': 'alias.example.com', 'proxy-body-size': String(BODY_LIMIT) },
    }),
    ingress({
      name: 'app-canary',
      host: 'app.example.com',
      paths: [{ path: '/api', service: 'web-canary', port: 80 }],
      annotations: { canary: 'true', 'canary-by-header': 'X-Canary' },
    }),
    ingress({ name: 'wild', host: '*.example.com', paths: [{ path: '/', service: 'web', port: 80 }] }),
    ingress({
      name: 'deny',
      host: 'deny.example.com',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations: { 'allowlist-source-range': '10.0.0.0/8' },
    }),
    ingress({ name: 'open', paths: [{ path: '/open', service: 'web', port: 80 }] }),
  ];
}

// ---------------------------------------------------------------------------------------------------
// The model.

interface Probe {
  /** The Host header as sent; null: an HTTP/1.0 request without one. */
  host: string | null;
  /** The request target (path and query). */
  target: string;
  method: string;
  canary: boolean;
  /** Body bytes (Content-Length). */
  body: number;
  /** Extra header lines (client-chosen values). */
  extra?: Record<string, string>;
}

type Labels = Record<string, string>;

/** nginx's $host: lower case, no port, one trailing dot dropped; the server's name without a Host. */
function dollarHost(host: string | null): string {
  if (host === null) return '_';
  let h = host.toLowerCase().replace(/:\d*$/, '');
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** nginx's server_name choice: exact names (aliases included) first, then the leading wildcard. */
function serverOf(h: string): 'app' | 'deny' | 'wild' | 'default' {
  if (h === 'app.example.com' || h === 'alias.example.com') return 'app';
  if (h === 'deny.example.com') return 'deny';
  if (h.endsWith('.example.com')) return 'wild';
  return 'default';
}

const NONE = { path: '', namespace: '', ingress: '', service: '', canary: '' };
/**
 * A location's labels. The canary is the UPSTREAM's alternative backend (controller.go mergeAlternativeBackends
 * appends to upstreams[default-web-80]; balancer.lua:283-300 picks it by $proxy_upstream_name in the
 * rewrite phase, before allow/deny): every location proxying to web:80 takes it, not only app's /api.
 */
const loc = (p: Probe, path: string, name: string, service: string) => ({
  path,
  namespace: 'default',
  ingress: name,
  service,
  canary: p.canary && service === 'web' ? CANARY_UPSTREAM : '',
});

/** The status and location labels ingress-nginx logs for `p` on this configuration. */
function modelAnswer(p: Probe): { status: number } & typeof NONE {
  const uri = p.target.split('?')[0]!;
  const prefix = (at: string) => uri === at || uri.startsWith(`${at}/`);
  switch (serverOf(dollarHost(p.host))) {
    case 'app':
      // Both app locations carry the Ingress's client_max_body_size (locationApplyAnnotations, :1381).
      if (p.body > BODY_LIMIT) return { status: 413, ...NONE };
      if (!prefix('/api')) return { status: 404, ...loc(p, '/', 'app', '') };
      return { status: 200, ...loc(p, '/api', 'app', 'web') };
    case 'deny':
      return { status: 403, ...loc(p, '/', 'deny', 'web') };
    case 'wild':
      return { status: 200, ...loc(p, '/', 'wild', 'web') };
    default:
      return prefix('/open') ? { status: 200, ...loc(p, '/open', 'open', 'web') } : { status: 404, ...NONE };
  }
}

/** ingress-nginx's label set for `p` (socket.go:315-349), null when it is not counted. */
function modelLabels(s: RequestMetricsSettings, p: Probe): Labels | null {
  const host = dollarHost(p.host);
  if (s.perHost && !HOSTS.has(host) && !s.perUndefinedHost) return null;
  const { status, ...where } = modelAnswer(p);
  const labels: Labels = { status: s.statusClasses ? `${String(status)[0]}xx` : String(status) };
  labels.method = p.method;
  Object.assign(labels, where);
  if (s.perHost) labels.host = host;
  return labels;
}

/** The model with the ALLOWED differences applied: what keepip may record instead. */
function allowedLabels(s: RequestMetricsSettings, p: Probe): Labels | null {
  const labels = modelLabels(s, p);
  const host = dollarHost(p.host);
  // ALLOWED.wildcardLabelWithUndefinedHosts: counted under the pattern whatever the flags say.
  if (labels === null && s.perHost && serverOf(host) === 'wild') {
    const all = modelLabels({ ...s, perUndefinedHost: true }, p);
    return all === null ? null : { ...all, host: '*.example.com' };
  }
  if (labels === null || !s.perHost) return labels;
  if (host === '_' && !s.perUndefinedHost) return null; // ALLOWED.defaultServerNotCounted
  if (!HOSTS.has(host)) {
    const server = serverOf(host);
    if (server === 'default') labels.host = '_'; // ALLOWED.undefinedHostLabelIsServerName
    if (server === 'wild') labels.host = '*.example.com'; // ALLOWED.wildcardLabelWithUndefinedHosts
  }
  return labels;
}

const keyOf = (labels: Labels) =>
  JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b))));

function tally(keys: readonly (string | null)[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const k of keys) if (k !== null) out.set(k, (out.get(k) ?? 0) + 1);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The bench: one gateway, one backend, raw HTTP/1.x over sockets.

let backend: RunningWhoami;
let gw: TestGateway;
let topology: Topology;

before(async () => {
  backend = await startWhoami({ host: '127.0.0.1', port: 0 });
  topology = topologyOf(objects(backend.address.port));
  gw = await startTestGateway(topology);
});

after(async () => {
  await gw?.close();
  await backend?.close();
});

let configured = 0;
/** Reloads with `over`; a pod label of its own keeps this test's series apart from earlier ones. */
function configure(over: Partial<RequestMetricsSettings>): RequestMetricsSettings {
  configured += 1;
  const settings = { ...DEFAULT_REQUEST_METRICS, controllerPod: `t${configured}`, ...over };
  const result = gw.gateway.reload({
    ...topology,
    gateway: { ...topology.gateway, requestMetrics: settings },
  });
  assert.ok(result.ok, 'reload');
  return settings;
}

function wire(p: Probe): string {
  const version = p.host === null ? 'HTTP/1.0' : 'HTTP/1.1';
  const lines = [`${p.method} ${p.target} ${version}`];
  if (p.host !== null) lines.push(`Host: ${p.host}`, 'Connection: close');
  if (p.canary) lines.push('X-Canary: always');
  for (const [k, v] of Object.entries(p.extra ?? {})) lines.push(`${k}: ${v}`);
  if (p.body > 0) lines.push(`Content-Length: ${p.body}`);
  return `${lines.join('\r\n')}\r\n\r\n${'b'.repeat(p.body)}`;
}

/**
 * Sends `p` on a connection of its own (Connection: close, or HTTP/1.0) and keeps its write side open:
 * a half-close would read as the client leaving (499). The status once the gateway closed it.
 */
function send(p: Probe): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: gw.httpPort });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no answer: ${JSON.stringify(p)}`)), 20_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'))?.[1] ?? 0));
    });
    socket.write(wire(p));
  });
}

/** keepip's nginx_ingress_controller_requests for `settings` (its pod), label key to count. */
async function recorded(settings: RequestMetricsSettings): Promise<Map<string, number>> {
  const metric = await gw.gateway.metrics.registry
    .getSingleMetric('nginx_ingress_controller_requests')
    ?.get();
  const out = new Map<string, number>();
  for (const { labels, value } of metric?.values ?? []) {
    const { controller_namespace: _n, controller_class: _c, controller_pod: pod, ...rest } = labels;
    if (pod !== settings.controllerPod || value === 0) continue;
    const key = keyOf(rest as Labels);
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

/** What keepip recorded under `s` for `probes` against the model of ingress-nginx. */
async function fromModel(s: RequestMetricsSettings, probes: readonly Probe[]): Promise<string[]> {
  return differences(probes, (p) => modelLabels(s, p), await recorded(s));
}

/** The same against the model with keepip's ALLOWED differences. */
async function fromAllowed(s: RequestMetricsSettings, probes: readonly Probe[]): Promise<string[]> {
  return differences(probes, (p) => allowedLabels(s, p), await recorded(s));
}

/** Differences between what `want` expects (per probe) and what keepip recorded, with an example probe. */
function differences(probes: readonly Probe[], want: (p: Probe) => Labels | null, got: Map<string, number>) {
  const keys = probes.map((p) => {
    const l = want(p);
    return l === null ? null : keyOf(l);
  });
  const expected = tally(keys);
  const out: string[] = [];
  for (const key of new Set([...expected.keys(), ...got.keys()])) {
    const e = expected.get(key) ?? 0;
    const g = got.get(key) ?? 0;
    if (e === g) continue;
    const example = probes[keys.indexOf(key)];
    out.push(`${key}: model ${e}, keepip ${g}${example ? ` e.g. ${JSON.stringify(example)}` : ''}`);
  }
  return out;
}

async function run(probes: readonly Probe[]): Promise<number[]> {
  return mapLimited(probes, 16, send);
}

// ---------------------------------------------------------------------------------------------------
// Generated probes.

function probeArb(): fc.Arbitrary<Probe> {
  const host = fc.oneof(
    fc.constantFrom(
      'app.example.com',
      'APP.Example.COM',
      'app.example.com.',
      'app.example.com:8080',
      'alias.example.com',
      'deny.example.com',
    ),
    fc.nat(9999).map((n) => `w${n}.example.com`),
    fc.nat(9999).map((n) => `rogue${n}.test`),
    fc.constantFrom('_', null),
  );
  const target = fc.oneof(
    fc.constantFrom('/api', '/api/x', '/apix', '/open', '/open/y', '/'),
    fc.nat(9999).map((n) => `/api/n${n}?q=${n}`),
    fc.nat(9999).map((n) => `/n${n}?q=${n}`),
  );
  return fc.record({
    host,
    target,
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PURGE', 'OPTIONS'),
    canary: fc.boolean(),
    body: fc.constantFrom(0, 0, 0, 100),
  });
}

const FLAG_SETS: readonly Partial<RequestMetricsSettings>[] = [
  {},
  { perUndefinedHost: true },
  { perHost: false, statusClasses: true },
];

describe('nginx_ingress_controller_requests against the ingress-nginx model', () => {
  test(`generated requests under three flag sets (METRICS_SEED=${SEED}, ${RUNS} requests each)`, async () => {
    const probes = fc.sample(probeArb(), { seed: SEED, numRuns: RUNS });
    const failures: string[] = [];
    for (const flags of FLAG_SETS) {
      const s = configure(flags);
      const statuses = await run(probes);
      probes.forEach((p, i) => {
        const want = modelAnswer(p).status;
        if (statuses[i] !== want) failures.push(`status ${statuses[i]}, model ${want}: ${JSON.stringify(p)}`);
      });
      for (const d of await fromAllowed(s, probes)) failures.push(`${JSON.stringify(flags)} ${d}`);
    }
    assert.deepEqual([...new Set(failures)], [], `METRICS_SEED=${SEED}`);
  });

  test('holds: exact host and its case/port/trailing-dot spellings share one series; path as written; canary; 403; root 404', async () => {
    const s = configure({});
    const probes: Probe[] = [
      { host: 'app.example.com', target: '/api/deep/er?x=1', method: 'GET', canary: false, body: 0 },
      { host: 'APP.Example.COM.:8080', target: '/api', method: 'GET', canary: false, body: 0 },
      { host: 'app.example.com', target: '/api/c', method: 'POST', canary: true, body: 4 },
      { host: 'app.example.com', target: '/elsewhere', method: 'GET', canary: true, body: 0 },
      { host: 'deny.example.com', target: '/x', method: 'DELETE', canary: false, body: 0 },
      { host: 'rogue.test', target: '/open/z', method: 'GET', canary: false, body: 0 },
    ];
    assert.deepEqual(await run(probes), [200, 200, 200, 404, 403, 200]);
    assert.deepEqual(await fromModel(s, probes), []);
  });
});

describe('differences from the model', () => {
  test('a request to a server alias is labelled with the alias ($host), as ingress-nginx', async () => {
    const s = configure({});
    const probes: Probe[] = [
      { host: 'alias.example.com', target: '/api/a', method: 'GET', canary: false, body: 0 },
      { host: 'Alias.Example.com', target: '/api/b', method: 'GET', canary: false, body: 0 },
    ];
    assert.deepEqual(await run(probes), [200, 200]);
    assert.deepEqual(await fromModel(s, probes), []);
  });

  test('a 413 (body over proxy-body-size) on a defined host is counted, as ingress-nginx', async () => {
    const s = configure({});
    const probes: Probe[] = [
      { host: 'app.example.com', target: '/api/up', method: 'POST', canary: false, body: 100 },
      { host: 'alias.example.com', target: '/api/up', method: 'PUT', canary: true, body: 100 },
    ];
    assert.deepEqual(await run(probes), [413, 413]);
    assert.deepEqual(await fromModel(s, probes), []);
  });

  test(`ALLOWED: ${ALLOWED.wildcardLabelWithUndefinedHosts}, by default too (ingress-nginx drops it)`, async () => {
    const s = configure({});
    const probes: Probe[] = [
      { host: 'w1.example.com', target: '/a', method: 'GET', canary: false, body: 0 },
      { host: 'w2.example.com', target: '/b', method: 'GET', canary: false, body: 0 },
    ];
    assert.deepEqual(await run(probes), [200, 200]);
    assert.deepEqual(await fromAllowed(s, probes), []);
    assert.ok((await fromModel(s, probes)).length > 0, 'met');
  });

  test('a 400 refused before any location (bad Host) is never counted, as ingress-nginx (no log_by_lua)', async () => {
    const bad: Probe = { host: 'a/b', target: '/api', method: 'GET', canary: false, body: 0 };
    const counted: string[] = [];
    for (const flags of [{ perUndefinedHost: true }, { perHost: false }]) {
      const s = configure(flags);
      assert.deepEqual(await run([bad, bad]), [400, 400]);
      for (const [key, n] of await recorded(s)) counted.push(`${JSON.stringify(flags)} ${key} ${n}`);
    }
    assert.deepEqual(counted, []);
  });

  test(`ALLOWED: ${ALLOWED.defaultServerNotCounted}; ${ALLOWED.undefinedHostLabelIsServerName}; ${ALLOWED.wildcardLabelWithUndefinedHosts}`, async () => {
    const probes: Probe[] = [
      { host: null, target: '/open', method: 'GET', canary: false, body: 0 },
      { host: '_', target: '/nothing', method: 'GET', canary: false, body: 0 },
      { host: 'rogue.test', target: '/open', method: 'GET', canary: false, body: 0 },
      { host: 'w3.example.com', target: '/', method: 'GET', canary: false, body: 0 },
    ];
    for (const flags of [{}, { perUndefinedHost: true }]) {
      const s = configure(flags);
      const these = probes;
      assert.deepEqual(await run(these), [200, 404, 200, 200]);
      const model = await fromModel(s, these);
      const allowed = await fromAllowed(s, these);
      assert.deepEqual(allowed, [], JSON.stringify(flags));
      assert.ok(model.length > 0, 'the allowed differences are met');
    }
  });

  test(`ALLOWED: ${ALLOWED.h2InventedMethodIsOther}; ${ALLOWED.h1InventedMethodRefused}`, async () => {
    const s = configure({});
    const h2 = await connectH2({ port: gw.httpsPort, host: 'app.example.com' });
    try {
      // Both proxy the invented method; the backend (node:http) answers it 400, as it would to nginx.
      const replies = await Promise.all(['FROB', 'ZAP-IT'].map((m) => h2.request('/api/m', { method: m })));
      assert.deepEqual(
        replies.map((r) => r.status),
        [400, 400],
      );
    } finally {
      await h2.close();
    }
    const h1: Probe = { host: 'app.example.com', target: '/api', method: 'FROB', canary: false, body: 0 };
    assert.deepEqual(await run([h1]), [400]);
    // ingress-nginx: {method="FROB"} 2 (one HTTP/2, one proxied HTTP/1.1) and {method="ZAP-IT"} 1.
    const where = { path: '/api', namespace: 'default', ingress: 'app', service: 'web', canary: '' };
    const other = keyOf({ status: '400', method: 'OTHER', ...where, host: 'app.example.com' });
    assert.deepEqual([...(await recorded(s))], [[other, 2]]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Cardinality: what a client controls must not make series.

const MARK = 'zq';
/** A custom method token (upper-case letters, as nginx takes them) carrying the mark. */
const methodOf = (i: number) =>
  `ZQ${i
    .toString(26)
    .toUpperCase()
    .replace(/\d/g, (d) => 'QRSTUVWXYZ'[Number(d)]!)}`;

const STANDARD = ['GET', 'POST', 'PUT', 'DELETE', 'PURGE', 'OPTIONS', 'PATCH'];

/** The i-th flood request: distinct Host, path, query and header values; one in 20 an invented method. */
function floodProbe(i: number): Probe {
  const extra = { 'X-Junk': `${MARK}-${i}`, 'User-Agent': `${MARK}ua${i}`, Cookie: `s=${MARK}${i}` };
  const method = i % 20 === 2 ? methodOf(i) : STANDARD[i % STANDARD.length]!;
  const base = { canary: i % 3 === 0, body: 0, extra, method };
  switch (i % 5) {
    case 0:
      return { ...base, host: `${MARK}${i}.test`, target: `/open/${MARK}${i}?${MARK}=${i}` };
    case 1:
      return { ...base, host: `${MARK}${i}.example.com`, target: `/${MARK}${i}?q=${i}` };
    case 2:
      return { ...base, host: 'app.example.com', target: `/api/${MARK}${i}?q=${MARK}${i}` };
    case 3:
      return { ...base, host: `app.example.com:${1024 + i}`, target: `/${MARK}/${i}` };
    default:
      return { ...base, host: `${MARK}${i}.nowhere`, target: `/${MARK}${i}` };
  }
}

/**
 * Sends `probes` pipelined on one keep-alive connection (the last one asks to close); resolves with
 * the statuses once the gateway closed it.
 */
function pipeline(probes: readonly Probe[]): Promise<number[]> {
  const text = probes
    .map((p, i) =>
      wire(p).replace('Connection: close\r\n', i === probes.length - 1 ? 'Connection: close\r\n' : ''),
    )
    .join('');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: gw.httpPort });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error('pipeline: no close')), 20_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks).toString('latin1');
      resolve([...all.matchAll(/HTTP\/1\.1 (\d{3}) [^\r\n]*\r\n/g)].map((m) => Number(m[1])));
    });
    socket.write(text);
  });
}

/** The flood: invented HTTP/1.1 methods on connections of their own (a 400 closes), the rest pipelined. */
async function flood(probes: readonly Probe[]): Promise<number> {
  const invented = probes.filter((p) => !STANDARD.includes(p.method));
  const standard = probes.filter((p) => STANDARD.includes(p.method));
  const slices = Array.from({ length: 8 }, (_, k) => standard.filter((_p, i) => i % 8 === k));
  const [own, piped] = await Promise.all([mapLimited(invented, 16, send), mapLimited(slices, 8, pipeline)]);
  assert.deepEqual(
    piped.map((s) => s.length),
    slices.map((s) => s.length),
    'every pipelined request answered',
  );
  assert.ok(own.every((st) => st === 400));
  return own.length + piped.flat().length;
}

/** Every sample line's name and labels in the whole registry (what a scraper stores as series). */
async function seriesOf(): Promise<string[]> {
  const text = await gw.gateway.metrics.registry.metrics();
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.slice(0, l.lastIndexOf(' ')));
}

/** One half of the flood: HTTP/1.1 requests `from`..`to`, and 100 invented HTTP/2 methods on distinct paths. */
async function floodHalf(from: number, to: number): Promise<Probe[]> {
  const probes = Array.from({ length: to - from }, (_, i) => floodProbe(from + i));
  assert.equal(await flood(probes), probes.length);
  const h2 = await connectH2({ port: gw.httpsPort, host: 'app.example.com' });
  try {
    await mapLimited(
      Array.from({ length: 100 }, (_, i) => from + i),
      32,
      (i) => h2.request(`/api/${MARK}h2/${i}?${MARK}=${i}`, { method: methodOf(i + FLOOD) }),
    );
  } finally {
    await h2.close();
  }
  // ingress-nginx's method label is the token as sent (monitor.lua:43): the model counts them too.
  return [
    ...probes,
    ...Array.from({ length: 100 }, (_, i) => ({
      host: 'app.example.com',
      target: '/api',
      method: methodOf(from + i + FLOOD),
      canary: false,
      body: 0,
    })),
  ];
}

function modelSeriesOf(s: RequestMetricsSettings, probes: readonly Probe[]): number {
  const keys = new Set<string>();
  for (const p of probes) {
    const labels = modelLabels(s, p);
    if (labels !== null) keys.add(keyOf(labels));
  }
  return keys.size;
}

describe('cardinality: up to 2,000 requests with client-chosen Host, path, query, method and headers', () => {
  // The default flags bound hosts in ingress-nginx too (test/security/attacker-keyed-state-attack.test.ts
  // sends 4,000 there): a quarter of the flood; --metrics-per-undefined-host, where only keepip bounds it: all.
  for (const [flags, total] of [
    [{}, FLOOD / 4],
    [{ perUndefinedHost: true }, FLOOD],
  ] as const) {
    test(`${total} requests: no series grows with them, none carries their text (${JSON.stringify(flags)})`, async () => {
      const s = configure(flags);
      const first = await floodHalf(0, total / 2);
      const seen = new Set(await seriesOf());
      const firstCount = (await recorded(s)).size;
      const second = await floodHalf(total / 2, total);
      const series = await seriesOf();
      const marked = series.filter((l) => l.toLowerCase().includes(MARK));
      assert.deepEqual(marked.slice(0, 5), [], 'no series carries client-chosen text');
      // ingress-nginx (the model) for the same requests: a series per invented method, and with
      // --metrics-per-undefined-host one per Host sent. keepip must not grow where it would not.
      const model = [modelSeriesOf(s, first), modelSeriesOf(s, [...first, ...second])];
      const counts = `nginx_ingress_controller_requests series: keepip ${firstCount} then ${(await recorded(s)).size}; ingress-nginx ${model[0]} then ${model[1]}`;
      assert.deepEqual(
        series.filter((l) => !seen.has(l)).slice(0, 5),
        [],
        `series made by the second ${total / 2} requests (${counts})`,
      );
      if (process.env.METRICS_VERBOSE) console.log(counts);
    });
  }
});
