// keepip controller --dashboard with its workers (--workers=2), against what really happened: ONE
// controller process on the fake API server (test/fixtures/fake-apiserver.ts) serves an allowlisted
// Ingress, an open one and a host with no Ingress (404); the truth of each request is its answer here
// and its access log line on stdout (log-format-upstream from the ConfigMap: $pid says which worker
// served it, a marker which ConfigMap).
//   records: /api/decisions has each request once, with its status, client, rule and the worker slot
//     of the pid that served it (one slot per pid); /api/stats counts every request; denied table exact;
//   swaps: the allowlist (an Ingress) and the ConfigMap (block-cidrs, the log marker) change while
//     traffic flows; after the controller's "reloaded: config vN" line every request is served, and
//     recorded, with the new lists and config vN; before it, each record's lists and version are
//     those its answer and log line came from; /api/routes shows the new list; nothing lost or doubled;
//   Chain: /api/chain's verdict is what a real client got on the served model, before and after;
//   an Ingress deleted: its route leaves /api/routes, its old records still render;
//   afterFix: with the hidden fault (test/helpers/hidden-fault.ts) in the cluster, the Chain page's
//     afterFix is exactly what the page shows once the fix is applied to the cluster (no more).
// ALLOWED (not findings): records may be sampled out over the keep budgets (100 allowed + 100 denied per
// second: the bench stays under them, and a missing record is only accepted against sampledOut);
// a request sent before the reload line may be served by either configuration (its record must say
// which one served it).
// Every wait is on a signal (a log line, an access log line, a counter); deadlines are safety nets.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { mergePatch } from '../../src/doctor/fix.ts';
import { type FakeApiServer, type Obj, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import {
  type Backend,
  endpointSlice,
  ingress,
  ingressClass,
  service,
  startBackend,
} from '../controller/harness.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { pollUntil } from '../helpers/descriptors.ts';
import { HIDDEN_FAULT } from '../helpers/hidden-fault.ts';
import { freePort } from '../helpers/net.ts';
import { type Running, startKeepip } from '../helpers/process.ts';
import { type StdoutLines, stdoutOf, workerPids } from '../workers/helpers.ts';
import type { DecisionSummary } from '../../src/dashboard/decision-view.ts';

const V1 = '127.0.9.0/24';
const V2 = '127.0.7.0/24';
const BLOCKED = '127.0.66.0/24';
const CM = { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' };
const logFormat = (marker: string) => `$pid $status $remote_addr ${marker} "$request"`;

/** A decision as /api/decisions lists it. */
type Decision = DecisionSummary;

interface Stats {
  counters: { seen: number; kept: number; sampledOut: number; denied: number; otherDenied: number };
  topDenied: { address: string; count: number; error: number }[];
}

interface ChainFinding {
  id: string;
  severity: string;
  fix: { patches: { target: { kind: string; namespace?: string; name: string }; patch: Obj }[] } | null;
}

interface Chain {
  verdict: string;
  status: number;
  findings: ChainFinding[];
  afterFix: ChainFinding[];
}

/** One request as it happened: its answer, and (once read) its access log line. */
interface Sent {
  from: string;
  host: string;
  path: string;
  status: number;
  /** Sent after the test saw the reload line it waited for. */
  afterLine: boolean;
}

interface Served {
  pid: number;
  status: number;
  addr: string;
  marker: string;
}

interface Bench {
  api: FakeApiServer;
  web: Backend;
  ctl: Running;
  out: StdoutLines;
  port: number;
  board: URL;
  pids: number[];
}

// ---------------------------------------------------------------------------------------------------
// The cluster and the controller

function configMap(marker: string, extra: Record<string, string> = {}): Obj {
  const data = {
    'log-format-upstream': logFormat(marker),
    // The 404s of a host no Ingress has are logged too (ingress-nginx's default: not logged).
    'enable-access-log-for-default-backend': 'true',
    ...extra,
  };
  return { kind: 'ConfigMap', metadata: { ...CM }, data };
}

function allowIngress(list: string): Obj {
  return ingress('allow', 'allow.example.com', 'web', { annotations: annotate(list) });
}

function annotate(list: string): Record<string, string> {
  return { 'nginx.ingress.kubernetes.io/whitelist-source-range': list };
}

function seed(api: FakeApiServer, backendPort: number): void {
  api.apply(ingressClass());
  api.apply(service('web'));
  api.apply(endpointSlice('web', '127.0.0.1', backendPort));
  api.apply(configMap('m1'));
  api.apply(allowIngress(V1));
  api.apply(ingress('open', 'open.example.com', 'web'));
}

async function startBench(): Promise<Bench> {
  const api = await startFakeApiServer();
  const web = await startBackend('web');
  seed(api, web.port);
  const [http, https, health] = [await freePort(), await freePort(), await freePort()];
  const ctl = startKeepip([
    'controller',
    '--kubeconfig',
    api.kubeconfig,
    '--bind-address=127.0.0.1',
    `--http-port=${http}`,
    `--https-port=${https}`,
    `--healthz-port=${health}`,
    '--post-shutdown-grace-period=0',
    '--workers=2',
    '--dashboard=127.0.0.1:0',
    `--configmap=${CM.namespace}/${CM.name}`,
    '--disable-leader-election',
  ]);
  const out = stdoutOf(ctl);
  const board = new URL((await ctl.waitFor(/dashboard (http:\/\/127\.0\.0\.1:\d+\/) \(read-only\)/))[1]!);
  const pids = await workerPids(ctl);
  await ctl.waitFor(/listening http 127\.0\.0\.1:\d+/);
  return { api, web, ctl, out, port: http, board, pids };
}

/** Resolves with the first "reloaded: config vN" line for N >= `version` (the primary logs it once every worker swapped). */
async function reloaded(b: Bench, version: number): Promise<void> {
  const pattern = new RegExp(`reloaded: config v(${version}|[1-9]\\d{${String(version).length},})\\b`);
  await b.ctl.waitFor(pattern, 20_000);
}

// ---------------------------------------------------------------------------------------------------
// Clients, the access log, the dashboard

/** One GET on a fresh connection from `from`; the answer's status (0: closed without one). */
function send(port: number, from: string, host: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
    const chunks: Buffer[] = [];
    socket.on('connect', () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(Buffer.concat(chunks).toString('latin1'));
      resolve(m ? Number(m[1]) : 0);
    });
  });
}

/** The access log lines of every path starting with `/${tag}-`, once all `count` are written. */
async function servedLines(b: Bench, tag: string, count: number): Promise<Map<string, Served>> {
  const lines = await b.out.waitForLines(new RegExp(` "GET /${tag}-\\S+ HTTP/1\\.1"$`), count, 20_000);
  const out = new Map<string, Served>();
  for (const line of lines) {
    const m = /^(\d+) (\d{3}) (\S+) (\S+) "GET (\S+) HTTP\/1\.1"$/.exec(line);
    assert.ok(m, `access log line ${line}`);
    assert.ok(!out.has(m[5]!), `one access log line per request: ${m[5]}`);
    out.set(m[5]!, { pid: Number(m[1]), status: Number(m[2]), addr: m[3]!, marker: m[4]! });
  }
  return out;
}

async function apiGet<T>(b: Bench, path: string): Promise<T> {
  const res = await fetch(new URL(path, b.board));
  assert.equal(res.status, 200, `${path} answers 200`);
  return (await res.json()) as T;
}

/** /api/stats once the dashboard has counted `seen` requests in all (every batch in). */
async function statsAt(b: Bench, seen: number): Promise<Stats> {
  let stats: Stats | undefined;
  await pollUntil(`the dashboard counted ${seen} requests`, async () => {
    stats = await apiGet<Stats>(b, '/api/stats');
    return stats.counters.seen >= seen;
  });
  return stats!;
}

async function decisionsOf(b: Bench, tag: string): Promise<Decision[]> {
  const body = await apiGet<{ decisions: Decision[] }>(b, '/api/decisions?limit=100000');
  return body.decisions.filter((d) => d.target.startsWith(`/${tag}-`));
}

/** The config version a record's trace names (its answer step). */
async function versionOf(b: Bench, id: number): Promise<number> {
  const body = await apiGet<{ trace: { step: string; detail: string }[] }>(b, `/api/decisions/${id}`);
  const answer = body.trace.find((s) => s.step === 'answer')?.detail ?? '';
  return Number(/config v(\d+)/.exec(answer)?.[1] ?? Number.NaN);
}

async function chainOf(b: Bench, client: string, host: string): Promise<Chain> {
  return apiGet<Chain>(b, `/api/chain?client=${client}&host=${host}`);
}

/**
 * The Chain page's verdict for each client on allow.example.com equals the status a real request from
 * it gets (`expected`, 200 or 403); the requests are tagged `tag` and waited for in the access log.
 */
async function chainIsWhatClientsGet(
  b: Bench,
  tag: string,
  expected: Record<string, 200 | 403>,
): Promise<void> {
  for (const [from, status] of Object.entries(expected)) {
    const chain = await chainOf(b, from, 'allow.example.com');
    assert.equal(await send(b.port, from, 'allow.example.com', `/${tag}-${from}`), status);
    assert.deepEqual(
      [chain.verdict, chain.status],
      [status === 200 ? 'allowed' : 'denied-403', status],
      from,
    );
  }
  await servedLines(b, tag, Object.keys(expected).length);
}

interface Routes {
  configVersion: number;
  blockCidrs: { raw: string } | null;
  hosts: { host: string; locations: { ingress: string; allow: { raw: string } | null }[] }[];
}

async function routes(b: Bench): Promise<Routes> {
  return apiGet<Routes>(b, '/api/routes');
}

// ---------------------------------------------------------------------------------------------------
// Checks shared by the tests

/** pid -> slot across the file: each pid named by one slot, each slot by one pid. */
const slotOfPid = new Map<number, number>();

function sameWorker(b: Bench, pid: number, slot: number | null, what: string): void {
  assert.ok(b.pids.includes(pid), `${what}: pid ${pid} is one of the workers ${b.pids.join(', ')}`);
  assert.ok(slot === 1 || slot === 2, `${what}: worker ${slot}`);
  assert.equal(slotOfPid.get(pid) ?? slot, slot, `${what}: served by pid ${pid}, named slot ${slot}`);
  for (const [other, s] of slotOfPid)
    assert.ok(other === pid || s !== slot, `${what}: slot ${slot} names pids ${other} and ${pid}`);
  slotOfPid.set(pid, slot);
}

/**
 * Each request once among the records (a missing one only against sampledOut), with the status it
 * answered, the client it came from and the worker of its log line; returns the records by path.
 */
function checkRecords(
  b: Bench,
  sent: readonly Sent[],
  records: readonly Decision[],
  lines: Map<string, Served>,
  sampledOut: number,
): Map<string, Decision> {
  const byPath = new Map<string, Decision>();
  for (const d of records) {
    assert.ok(!byPath.has(d.target), `${d.target} recorded twice`);
    byPath.set(d.target, d);
  }
  const missing = sent.filter((s) => !byPath.has(s.path)).map((s) => s.path);
  assert.ok(missing.length <= sampledOut, `records lost (sampledOut ${sampledOut}): ${missing.join(' ')}`);
  const known = new Set(sent.map((s) => s.path));
  assert.deepEqual(
    records.filter((d) => !known.has(d.target)).map((d) => d.target),
    [],
    'a record of a request never sent',
  );
  for (const s of sent) {
    const d = byPath.get(s.path);
    const line = lines.get(s.path)!;
    assert.equal(line.status, s.status, `${s.path}: the access log says what the client got`);
    if (d === undefined) continue;
    const what = `${s.path} from ${s.from} to ${s.host}`;
    assert.deepEqual([d.status, d.client, d.host], [s.status, s.from, s.host], what);
    sameWorker(b, line.pid, d.worker, what);
  }
  return byPath;
}

/** Every request sent so far (the truth behind counters.seen). */
let seen = 0;

/** Each request's access log line, the dashboard's counters once all are in, the records (checked) and their versions. */
async function settle(b: Bench, tag: string, sent: readonly Sent[]) {
  const lines = await servedLines(b, tag, sent.length);
  seen += sent.length;
  const stats = await statsAt(b, seen);
  assert.equal(stats.counters.seen, seen, 'counters.seen: every request, once');
  const records = checkRecords(b, sent, await decisionsOf(b, tag), lines, stats.counters.sampledOut);
  const versions = await mapLimited(sent, 8, async (s) => {
    const d = records.get(s.path);
    return d === undefined ? null : versionOf(b, d.id);
  });
  return { lines, records, versions };
}

/** The seed's NLB (examples/seed/before), sending PROXY v2 the gateway does not expect. */
function nlbService(): Obj {
  return {
    kind: 'Service',
    metadata: {
      namespace: CM.namespace,
      name: CM.name,
      annotations: {
        'service.beta.kubernetes.io/aws-load-balancer-type': 'external',
        'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internal',
        'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip',
        'service.beta.kubernetes.io/aws-load-balancer-proxy-protocol': '*',
        'keepip.dev/lb-source-address': '127.0.10.1',
        'keepip.dev/client-path': 'transit-gateway',
      },
    },
    spec: { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 80, protocol: 'TCP' }] },
  };
}

/** A fix's patch applied to the cluster's object, as `kubectl patch --type merge` would. */
function applyPatch(
  api: FakeApiServer,
  target: { kind: string; namespace?: string; name: string },
  patch: Obj,
): void {
  const current = api.get(target.kind, target.namespace ?? '', target.name);
  assert.ok(current, `the fix's target ${target.kind} ${target.namespace}/${target.name} is in the cluster`);
  api.apply(mergePatch(current, patch) as Obj);
}

/** A probe of the flow: who sends, to which host, and the answer each configuration gives it. */
interface FlowProbe {
  from: string;
  host: string;
  /** The status under the configuration before the change, and after it. */
  before: number;
  after: number;
}

/**
 * Traffic while the cluster changes: two senders go round `probes` (fresh connections); once 4
 * requests are answered `change()` runs; the senders go on, paced (at most 120 requests), until the reload
 * line of `version` shows, then send `afterCount` more, each marked sent after the line.
 */
async function flow(
  b: Bench,
  tag: string,
  probes: readonly FlowProbe[],
  change: () => void,
  version: number,
  afterCount: number,
): Promise<Sent[]> {
  let lineSeen = false;
  let changed = false;
  const line = reloaded(b, version).then(() => {
    lineSeen = true;
  });
  const sent: Sent[] = [];
  let next = 0;
  let afterSent = 0;
  const sender = async () => {
    for (;;) {
      if (!lineSeen && next >= 120) await line;
      const afterLine = lineSeen;
      if (afterLine && afterSent >= afterCount) return;
      if (afterLine) afterSent += 1;
      const i = next++;
      const p = probes[i % probes.length]!;
      const path = `/${tag}-${i}`;
      const status = await send(b.port, p.from, p.host, path);
      sent.push({ from: p.from, host: p.host, path, status, afterLine });
      if (sent.length >= 4 && !changed) {
        changed = true;
        change();
      }
      // Paced until the line (about 80 requests a second in all): the swap happens under traffic, and the
      // records stay under the keep budgets (100 allowed + 100 denied a second), so none is sampled out.
      if (!lineSeen) await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };
  await Promise.all([sender(), sender()]);
  await line;
  return sent;
}

/** How many requests each configuration answered, before and after the reload line (the run's diagnostic). */
function flowSummary(probes: readonly FlowProbe[], sent: readonly Sent[]): string {
  const count = new Map<string, number>();
  for (const s of sent) {
    const p = probes.find((q) => q.from === s.from)!;
    const key = `${s.afterLine ? 'after the line' : 'before the line'}: ${p.before === p.after ? 'either' : s.status === p.before ? 'old' : 'new'}`;
    count.set(key, (count.get(key) ?? 0) + 1);
  }
  return JSON.stringify([...count]);
}

/** Which configuration a request's answer came from: 'before', 'after', or 'either' (both answer alike). */
function answeredBy(p: FlowProbe, status: number, what: string): 'before' | 'after' | 'either' {
  assert.ok(
    status === p.before || status === p.after,
    `${what}: ${status}, neither ${p.before} nor ${p.after}`,
  );
  return p.before === p.after ? 'either' : status === p.before ? 'before' : 'after';
}

// ---------------------------------------------------------------------------------------------------

describe('keepip controller --dashboard --workers=2, against what happened', () => {
  let b: Bench;
  /** Test 1's requests to open.example.com, whose records outlive its Ingress. */
  const openRecords: Decision[] = [];
  before(async () => {
    b = await startBench();
  });
  after(async () => {
    if (b) {
      const code = await b.ctl.stop();
      await b.api.close();
      await b.web.close();
      assert.equal(code, 0, 'the controller stops cleanly');
    }
  });

  test('records: each request once, its status, client, rule and worker; counters and denied table exact', async () => {
    // The pages a controller serves: no Load balancer page (it runs none), the Chain page on the cluster.
    const info = await apiGet<{ mode: string; pages: object }>(b, '/api/info');
    assert.deepEqual(
      [info.mode, info.pages],
      ['controller', { decisions: true, routes: true, chain: true, lb: false }],
    );
    const probes: { from: string; host: string; expect: number; rule: string }[] = [];
    for (let i = 1; i <= 6; i += 1) {
      probes.push({ from: `127.0.9.${i}`, host: 'allow.example.com', expect: 200, rule: 'allowlist' });
      probes.push({ from: `127.0.7.${i}`, host: 'allow.example.com', expect: 403, rule: 'allowlist-miss' });
      probes.push({ from: `127.0.5.${i}`, host: 'open.example.com', expect: 200, rule: 'no-rules' });
      probes.push({ from: `127.0.6.${i}`, host: 'missing.example.com', expect: 404, rule: 'no-route' });
    }
    const sent: Sent[] = [];
    // Fresh connections until both workers served (SO_REUSEPORT spreads them; a few rounds suffice).
    let lines = new Map<string, Served>();
    for (let round = 0; round < 5; round += 1) {
      const batch = await mapLimited(probes, 8, async (p, i) => {
        const path = `/t1-${round}-${i}`;
        return { ...p, path, status: await send(b.port, p.from, p.host, path), afterLine: false };
      });
      for (const s of batch) assert.equal(s.status, s.expect, `${s.path} from ${s.from} to ${s.host}`);
      sent.push(...batch);
      lines = await servedLines(b, 't1', sent.length);
      if (new Set([...lines.values()].map((l) => l.pid)).size === 2) break;
    }
    assert.equal(new Set([...lines.values()].map((l) => l.pid)).size, 2, 'both workers served');
    seen += sent.length;
    const stats = await statsAt(b, seen);
    assert.equal(stats.counters.seen, seen, 'counters.seen: every request, once');
    const records = checkRecords(b, sent, await decisionsOf(b, 't1'), lines, stats.counters.sampledOut);
    const rules = probes.map((p) => p.rule);
    for (const s of sent) {
      const d = records.get(s.path);
      if (d === undefined) continue;
      assert.equal(d.rule, rules[Number(s.path.split('-')[2])], `${s.path}: rule`);
      assert.equal(d.denied, s.status === 403, `${s.path}: denied`);
      if (s.host === 'open.example.com') openRecords.push(d);
    }
    // The denied table: each 127.0.7.x refused once per round, nobody else.
    const deniedBy = new Map<string, number>();
    for (const s of sent) if (s.status === 403) deniedBy.set(s.from, (deniedBy.get(s.from) ?? 0) + 1);
    assert.equal(stats.counters.denied, sent.filter((s) => s.status === 403).length, 'counters.denied');
    assert.deepEqual(
      new Map(stats.topDenied.map((d) => [d.address, d.count - d.error])),
      deniedBy,
      'the denied table',
    );
  });

  test('Chain before the change: the verdict a real client got', async () => {
    await chainIsWhatClientsGet(b, 'c1', { '127.0.9.5': 200, '127.0.7.5': 403 });
    seen += 2;
  });

  test('allowlist swap under traffic: after the reload line every record has the new list and config v2', async (t) => {
    const probes: FlowProbe[] = [
      { from: '127.0.9.21', host: 'allow.example.com', before: 200, after: 403 },
      { from: '127.0.7.21', host: 'allow.example.com', before: 403, after: 200 },
      { from: '127.0.5.21', host: 'open.example.com', before: 200, after: 200 },
    ];
    const sent = await flow(b, 's1', probes, () => b.api.apply(allowIngress(V2)), 2, 6);
    t.diagnostic(flowSummary(probes, sent));
    const { records, versions } = await settle(b, 's1', sent);
    sent.forEach((s, i) => {
      const p = probes.find((q) => q.from === s.from)!;
      const by = answeredBy(p, s.status, s.path);
      assert.ok(
        !(s.afterLine && by === 'before'),
        `${s.path}: sent after the reload line, the old allowlist answered`,
      );
      const d = records.get(s.path);
      if (d === undefined) return;
      if (s.afterLine)
        assert.equal(versions[i], 2, `${s.path}: sent after the reload line, recorded as config v2`);
      if (by === 'either') return;
      const what = `${s.path} (${s.status} from ${s.from}): the record says which allowlist answered`;
      assert.deepEqual([d.lists.allow?.raw, versions[i]], by === 'before' ? [V1, 1] : [V2, 2], what);
    });
    const r = await routes(b);
    assert.equal(r.configVersion, 2, '/api/routes: config v2');
    const allow = r.hosts.find((h) => h.host === 'allow.example.com');
    assert.equal(allow?.locations[0]?.allow?.raw, V2, '/api/routes shows the new allowlist');
    // The Chain page walks the served model: what a real client gets now.
    await chainIsWhatClientsGet(b, 'c2', { '127.0.9.5': 403, '127.0.7.5': 200 });
    seen += 2;
  });

  test('ConfigMap swap under traffic: the log marker, block-cidrs and the version of each record agree', async (t) => {
    const probes: FlowProbe[] = [
      { from: '127.0.66.21', host: 'open.example.com', before: 200, after: 403 },
      { from: '127.0.5.22', host: 'open.example.com', before: 200, after: 200 },
      { from: '127.0.7.22', host: 'allow.example.com', before: 200, after: 200 },
    ];
    const change = () => b.api.apply(configMap('m2', { 'block-cidrs': BLOCKED }));
    const sent = await flow(b, 's2', probes, change, 3, 6);
    t.diagnostic(flowSummary(probes, sent));
    const { records, versions, lines } = await settle(b, 's2', sent);
    sent.forEach((s, i) => {
      const p = probes.find((q) => q.from === s.from)!;
      const by = answeredBy(p, s.status, s.path);
      const line = lines.get(s.path)!;
      const what = `${s.path} (${s.status} from ${s.from}, logged ${line.marker})`;
      assert.ok(
        by === 'either' || (by === 'after') === (line.marker === 'm2'),
        `${what}: answer and log line agree`,
      );
      if (s.afterLine)
        assert.equal(line.marker, 'm2', `${what}: sent after the reload line, logged by the old ConfigMap`);
      const d = records.get(s.path);
      if (d === undefined) return;
      const expected = line.marker === 'm2' ? [BLOCKED, 3] : [undefined, 2];
      assert.deepEqual(
        [d.lists.block?.raw, versions[i]],
        expected,
        `${what}: the record's block-cidrs and version`,
      );
    });
    const r = await routes(b);
    assert.deepEqual(
      [r.configVersion, r.blockCidrs?.raw],
      [3, BLOCKED],
      '/api/routes: config v3, its block-cidrs',
    );
  });

  test('an Ingress deleted: its route leaves /api/routes, its old records still render', async () => {
    b.api.remove('Ingress', 'default', 'open');
    await reloaded(b, 4);
    const r = await routes(b);
    assert.deepEqual(
      r.hosts.map((h) => h.host),
      ['allow.example.com'],
      '/api/routes without open.example.com',
    );
    assert.equal(await send(b.port, '127.0.5.30', 'open.example.com', '/d1-0'), 404);
    await servedLines(b, 'd1', 1);
    seen += 1;
    await statsAt(b, seen);
    const [now] = await decisionsOf(b, 'd1');
    assert.deepEqual(
      [now?.status, now?.rule, now?.route],
      [404, 'no-route', null],
      'the 404 after the deletion',
    );
    assert.ok(openRecords.length > 0, 'test 1 kept records of open.example.com');
    const listed = new Map((await decisionsOf(b, 't1')).map((d) => [d.id, d]));
    for (const old of openRecords) {
      assert.deepEqual(listed.get(old.id)?.route, old.route, `record ${old.id} still listed with its route`);
      const res = await fetch(new URL(`/api/decisions/${old.id}`, b.board));
      assert.equal(res.status, 200, `record ${old.id} renders`);
      const trace = (await res.json()) as { summary: Decision };
      assert.equal(trace.summary.route?.ingress, 'default/open', `record ${old.id}: its Ingress`);
    }
  });

  test('afterFix: the hidden fault in the cluster; applying the fix shows exactly what afterFix predicted', async (t) => {
    b.api.apply(nlbService());
    b.api.apply(configMap('m3', { 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': '127.0.0.0/8' }));
    // Two objects, one or two reloads: until the served model has both (the Service's PROXY, the ConfigMap's trust).
    await pollUntil('the hidden fault is served', async () => {
      const served = await apiGet<{ clientAddress: { useForwardedHeaders: boolean } }>(b, '/api/routes');
      const chain = await chainOf(b, '127.0.20.10', 'allow.example.com');
      return (
        served.clientAddress.useForwardedHeaders &&
        chain.findings.some((f) => f.id === HIDDEN_FAULT.findings[0])
      );
    });
    const before = await chainOf(b, '127.0.20.10', 'allow.example.com');
    const errors = before.findings.filter((f) => f.severity === 'error');
    assert.deepEqual(
      [errors.map((f) => f.id), before.afterFix.map((f) => [f.id, f.fix?.patches[0]?.patch])],
      [HIDDEN_FAULT.findings, HIDDEN_FAULT.afterFix],
      'the Chain page: the fault, and what its fix reveals',
    );
    const version = (await routes(b)).configVersion;
    for (const f of errors) for (const p of f.fix?.patches ?? []) applyPatch(b.api, p.target, p.patch);
    await reloaded(b, version + 1);
    const after = await chainOf(b, '127.0.20.10', 'allow.example.com');
    t.diagnostic(`before: ${JSON.stringify(before.findings.map((f) => [f.id, f.severity]))}`);
    t.diagnostic(`afterFix: ${JSON.stringify(before.afterFix.map((f) => f.id))}`);
    t.diagnostic(`after: ${JSON.stringify(after.findings.map((f) => [f.id, f.severity]))} ${after.verdict}`);
    const shown = (c: ChainFinding[]) =>
      c.filter((f) => f.severity !== 'info').map((f) => [f.id, f.fix?.patches]);
    const stayed = before.findings.filter((f) => f.severity === 'warning');
    assert.deepEqual(
      shown(after.findings),
      shown([...stayed, ...before.afterFix]),
      'the findings once the fix is applied to the cluster are exactly the warnings before and afterFix',
    );
  });
});
