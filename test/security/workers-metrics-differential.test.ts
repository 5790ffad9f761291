// `keepip gateway --workers 2` serves ONE /metrics: the primary sums its workers' registries
// (src/workers/metrics.ts aggregatedMetrics; retainMonotonic keeps a replaced worker's counters) and
// adds its own, which owns what happens once per pod (PRIMARY_OWNED in src/workers/gateway-primary.ts:
// the configuration version, reloads, ingress-nginx's reload metrics). docs/gateway.md (Workers, "One
// /metrics"; the ingress-nginx table: nginx_process_* "of the serving processes, summed over workers")
// says what is summed, what is per pod and what is per worker.
//
// The claim checked here, differentially: for the same traffic, the pod's /metrics with 2 workers says
// what ONE process says. Bench: one single-process `keepip gateway` and one `--workers 2` gateway on
// the same manifests file (a host with an allowlist, limit-rpm, basic auth, a backend answer 500,
// request and response bodies of known sizes, a 404 inside a host and a Host no server names;
// log-format-upstream with $pid), fed the same generated list of connections (fast-check, fixed seed;
// WORKERS_METRICS_SEED=<n>|random, WORKERS_METRICS_CONNECTIONS to explore) from distinct 127.x sources,
// fresh and keep-alive, both gateways at once. The access log's $pid shows both workers served. Then
// every family and label set of the two expositions is compared (after waiting for the access log
// lines, which are written in the same call that counts the request, request-log.ts):
//   counters and histograms equal (_count, _sum, _bucket; the duration histograms, which measure time,
//   by _count and the +Inf bucket only); gauges meaningful (connections, body buffers, the config
//   version/hash/last-reload, the process start time: never multiplied by the number of workers);
//   no family or label set in one only; the ALLOWED table below for documented differences, each met.
// Then a worker is SIGKILLed after a scrape, more traffic is sent to both, and everything must still be
// equal, scraped twice (retainMonotonic); a reload (v2) and a refused reload are compared the same way.
// A difference not in ALLOWED is a finding and fails. Two more tests, of findings now fixed:
//   - a worker that does not answer (SIGSTOP: a wedged event loop) must not take the pod's /metrics
//     with it (retainMonotonic's "a live worker that did not answer counts with its last values"):
//     the scrape hung, the pool's call had no deadline (now WORKER_METRICS_DEADLINE_MS);
//   - two scrapes in flight (two Prometheus replicas) while a worker exits: the exited worker's last
//     values were folded into the retained total once per scrape that held its answer, for good
//     (the real aggregatedMetrics over a stand-in pool, to hold the answers deterministically; seen
//     over real processes too: 40 requests, /metrics said 60 from then on); overlapping scrapes now
//     share one.
//
// limit-rpm stands for the rate limits (limit-rps): with a refill of one a minute the refusals do not
// depend on how fast the bench runs, so both gateways refuse as many requests of each source.
import assert from 'node:assert/strict';
import http from '../../src/node-http.ts';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { Counter, Registry } from 'prom-client';
import { aggregatedMetrics, type MetricJson } from '../../src/workers/metrics.ts';
import type { CallResult, WorkerPool } from '../../src/workers/pool.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  manifestDir,
  serviceWithEndpoints,
  toYaml,
} from '../fixtures/gateway/manifests.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { metricSum, scrape, scrapeUntil } from '../helpers/metrics.ts';
import { framedResponses, listenTracked, openRaw, type RawConnection } from '../helpers/net.ts';
import { type Running, startKeepip } from '../helpers/process.ts';
import { type StdoutLines, startWorkersGateway, stdoutOf, type WorkersGateway } from '../workers/helpers.ts';

const SEED =
  process.env.WORKERS_METRICS_SEED === 'random'
    ? Math.floor(Math.random() * 2 ** 31)
    : Number(process.env.WORKERS_METRICS_SEED ?? 20_260_412);
const CONNECTIONS = Number(process.env.WORKERS_METRICS_CONNECTIONS ?? 28);

/**
 * Documented differences between the pod's /metrics with workers and one process's, each with its
 * reason; every one is met by the bench (the last test).
 */
const ALLOWED = {
  poolFamilies: {
    families: [
      'keepip_workers',
      'keepip_workers_serving',
      'keepip_worker_restarts_total',
      'keepip_worker_watchdog_kills_total',
    ],
    reason:
      'docs/gateway.md Workers, "One /metrics": the pool (configured, serving, restarts and watchdog kills by slot) exists only with --workers',
  },
  numProcs: {
    families: ['nginx_ingress_controller_nginx_process_num_procs'],
    reason:
      'docs/gateway.md ingress-nginx table: "the serving processes (each worker; not the primary)": how many, N with N workers',
  },
  processResources: {
    families: [
      'nginx_ingress_controller_nginx_process_cpu_seconds_total',
      'nginx_ingress_controller_nginx_process_resident_memory_bytes',
      'nginx_ingress_controller_nginx_process_virtual_memory_bytes',
    ],
    reason:
      'docs/gateway.md ingress-nginx table: CPU, RSS and VmSize "summed" over the serving processes: a measure of the processes, not of the traffic',
  },
  startAndReloadTimes: {
    families: [
      'nginx_ingress_controller_nginx_process_oldest_start_time_seconds',
      'nginx_ingress_controller_config_last_reload_successful_timestamp_seconds',
    ],
    reason:
      'when each pod started / last reloaded (the oldest start is the minimum over workers): a plausible time in both, never a sum',
  },
} as const;

/** Histograms of durations: their buckets and sums measure time; their counts are the traffic's. */
const TIMING = new Set([
  'keepip_gateway_upstream_duration_seconds',
  'nginx_ingress_controller_request_duration_seconds',
  'nginx_ingress_controller_response_duration_seconds',
  'nginx_ingress_controller_connect_duration_seconds',
  'nginx_ingress_controller_header_duration_seconds',
]);

const ALLOWED_FAMILY = new Map<string, keyof typeof ALLOWED>(
  Object.entries(ALLOWED).flatMap(([key, entry]) =>
    entry.families.map((family) => [family, key as keyof typeof ALLOWED] as const),
  ),
);

// ---------------------------------------------------------------------------------------------------
// The configuration.

const HOST = 'app.example.com';
const OTHER = 'other.example.com';
const ALLOWED_SOURCE = '127.0.0.2';
const SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'] as const;
const USER = `Basic ${Buffer.from('alice:wonderland').toString('base64')}`;
const WRONG = `Basic ${Buffer.from('alice:wrongwrong').toString('base64')}`;

function manifests(backendPort: number, marker: string): string {
  const secret: K8sObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'users', namespace: 'default' },
    type: 'Opaque',
    data: { auth: Buffer.from('alice:{PLAIN}wonderland\n').toString('base64') },
  };
  const route = (name: string, path: string, annotations: Record<string, string> = {}, host = HOST) =>
    ingress({ name, host, paths: [{ path, service: 'web', port: 80 }], annotations });
  return toYaml([
    controllerConfigMap({
      'log-format-upstream': `$pid $status ${marker} "$request"`,
      // A line for the catch-all's own 404 too (ingress-nginx's default backend logs only when asked).
      'enable-access-log-for-default-backend': 'true',
    }),
    ...serviceWithEndpoints({ name: 'web', ports: [backendPort] }),
    secret,
    route('open', '/ok'),
    route('boom', '/boom'),
    route('allow', '/allow', { 'whitelist-source-range': `${ALLOWED_SOURCE}/32` }),
    route('rpm', '/rpm', { 'limit-rpm': '1', 'limit-burst-multiplier': '1' }),
    route('auth', '/auth', { 'auth-type': 'basic', 'auth-secret': 'users' }),
    route('other', '/only', {}, OTHER),
  ]);
}

/** The backend: `?s=N` answers N bytes (Content-Length), /boom answers 500; reads the body first. */
async function startBackend(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const body = 'b'.repeat(Number(url.searchParams.get('s') ?? 0));
      res.writeHead(url.pathname.startsWith('/boom') ? 500 : 200, {
        'content-type': 'text/plain',
        'content-length': String(body.length),
      });
      res.end(body);
    });
  });
  return listenTracked(server);
}

// ---------------------------------------------------------------------------------------------------
// The traffic: connections of one or several requests, each request's bytes fixed by its kind and
// sizes (never by the connection it is on), so that refusals landing on different requests in the two
// gateways leave the size histograms equal.

const KINDS = [
  'ok',
  'post',
  'boom',
  'allow',
  'rpm',
  'auth',
  'auth-bad',
  'auth-none',
  'miss',
  'nohost',
] as const;
type Kind = (typeof KINDS)[number];

interface Probe {
  kind: Kind;
  /** Response body bytes asked of the backend. */
  size: number;
  /** Request body bytes (POST). */
  body: number;
}

interface Connection {
  source: string;
  probes: Probe[];
}

function wire(p: Probe): string {
  const lines: string[] = [];
  const get = (path: string, host = HOST) => lines.push(`GET ${path} HTTP/1.1`, `Host: ${host}`);
  switch (p.kind) {
    case 'ok':
      get(`/ok/${p.size}?s=${p.size}`);
      break;
    case 'post':
      lines.push(`POST /ok/up?s=${p.size} HTTP/1.1`, `Host: ${HOST}`, `Content-Length: ${p.body}`);
      break;
    case 'boom':
      get(`/boom?s=${p.size}`);
      break;
    case 'allow':
      get(`/allow?s=${p.size}`);
      break;
    case 'rpm':
      get('/rpm?s=10');
      break;
    case 'auth':
    case 'auth-bad':
      get(`/auth?s=${p.size}`);
      lines.push(`Authorization: ${p.kind === 'auth' ? USER : WRONG}`);
      break;
    case 'auth-none':
      get(`/auth?s=${p.size}`);
      break;
    case 'miss':
      get(`/none/${p.size}`, OTHER);
      break;
    case 'nohost':
      get(`/x/${p.size}`, 'nowhere.test');
      break;
  }
  const body = p.kind === 'post' ? 'q'.repeat(p.body) : '';
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

function connectionsArb(count: number): fc.Arbitrary<Connection[]> {
  const probe = fc.record({
    kind: fc.constantFrom<Kind>(...KINDS),
    size: fc.constantFrom(0, 7, 90, 1_000, 30_000),
    body: fc.constantFrom(0, 5, 60, 5_000),
  });
  const connection = fc.record({
    source: fc.constantFrom(...SOURCES),
    keepAlive: fc.boolean(),
    probes: fc.array(probe, { minLength: 1, maxLength: 4 }),
  });
  return fc.array(connection, { minLength: count, maxLength: count }).map((all) =>
    // A fresh connection carries one request; a keep-alive one all of its requests.
    all.flatMap((c) =>
      c.keepAlive
        ? [{ source: c.source, probes: c.probes }]
        : c.probes.map((p) => ({ source: c.source, probes: [p] })),
    ),
  );
}

/**
 * Sends a connection's requests one after the other, each once the previous answer is whole; an answer
 * with `Connection: close` ends the connection (the rest go on a new one). Ends with the client's FIN
 * and waits for the gateway's close. Returns how many connections it opened.
 */
async function sendConnection(port: number, c: Connection): Promise<number> {
  let opened = 0;
  let raw: RawConnection | null = null;
  let answered = 0;
  for (const probe of c.probes) {
    if (raw === null) {
      raw = await openRaw({ host: '127.0.0.1', port, localAddress: c.source });
      opened += 1;
      answered = 0;
    }
    raw.socket.write(wire(probe));
    const got = await raw.until((b) => framedResponses(b).length > answered, 20_000);
    const answer = framedResponses(got)[answered];
    answered += 1;
    if (/\r\nconnection: *close/i.test(answer?.head ?? '')) {
      await raw.whenClosed(20_000);
      raw = null;
    }
  }
  if (raw !== null) {
    raw.socket.end();
    await raw.whenClosed(20_000);
  }
  return opened;
}

// ---------------------------------------------------------------------------------------------------
// The two gateways.

interface Bench extends StdoutLines {
  running: Running;
  port: number;
  metricsPort: number;
}

async function startSingle(file: string): Promise<Bench> {
  const running = startKeepip(['gateway', '-f', file, '--http', '127.0.0.1:0', '--metrics', '127.0.0.1:0']);
  const stdout = stdoutOf(running);
  try {
    const port = Number((await running.waitFor(/listening http 127\.0\.0\.1:(\d+)/))[1]);
    const metricsPort = Number((await running.waitFor(/metrics http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
    return { running, port, metricsPort, ...stdout };
  } catch (error) {
    await running.stop();
    throw error;
  }
}

/** Access log lines of `marker`: the pid that served and the status. */
function servedLines(gw: StdoutLines, marker: string): { pid: number; status: number }[] {
  return gw
    .stdoutLines()
    .map((line) => new RegExp(`^(\\d+) (\\d{3}) ${marker} "`).exec(line))
    .filter((m) => m !== null)
    .map((m) => ({ pid: Number(m[1]), status: Number(m[2]) }));
}

/**
 * Sends `connections` to a gateway, then waits for the access log to show `expected` lines in all
 * (each written in the call that counts its request) and for every client connection to be closed.
 */
async function drive(gw: Bench, connections: readonly Connection[], expected: number, marker: string) {
  const opened = await mapLimited(connections, 8, (c) => sendConnection(gw.port, c));
  await gw.waitForLines(new RegExp(`^\\d+ \\d{3} ${marker} "`), expected);
  await scrapeUntil(
    '127.0.0.1',
    gw.metricsPort,
    (text) =>
      metricSum(text, 'nginx_ingress_controller_nginx_process_connections', { state: 'active' }) === 0,
    'every client connection is closed',
  );
  return opened.reduce((a, b) => a + b, 0);
}

// ---------------------------------------------------------------------------------------------------
// Prometheus text, read into families and series.

interface Exposition {
  /** Family name to type. */
  types: Map<string, string>;
  /** `name{labels}` (labels sorted) to value. */
  series: Map<string, number>;
}

function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) types.set(type[1]!, type[2]!);
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (sample === null) continue;
    const labels = [...(sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)]
      .map((m) => `${m[1]}="${m[2]}"`)
      .sort();
    series.set(`${sample[1]}{${labels.join(',')}}`, Number(sample[3]));
  }
  return { types, series };
}

const nameOf = (key: string) => key.slice(0, key.indexOf('{'));

/** The family a sample belongs to (a histogram's _bucket/_sum/_count are its family's). */
function familyOf(name: string, types: ReadonlyMap<string, string>): string {
  if (types.has(name)) return name;
  const base = name.replace(/_(?:bucket|sum|count)$/, '');
  return types.has(base) ? base : name;
}

/** Whether a sample of a duration histogram measures time (its buckets and sum, not its count). */
const measuresTime = (key: string, family: string) =>
  TIMING.has(family) && !key.startsWith(`${family}_count{`) && !/le="\+Inf"/.test(key);

/** A time in seconds since 1970 within the bench's run: not a sum of N of them, not 0. */
const plausibleTime = (value: number, since: number) =>
  value >= Math.floor(since / 1000) - 1 && value <= Date.now() / 1000 + 1;

/**
 * Every difference between the one-process exposition and the pod's, outside ALLOWED and the
 * duration histograms' times. Gauges of time are checked for plausibility in both instead.
 */
function differences(
  single: Exposition,
  pod: Exposition,
  since: number,
  only: (family: string) => boolean = () => true,
): string[] {
  const out: string[] = [];
  const types = new Map([...pod.types, ...single.types]);
  for (const family of types.keys()) {
    if (ALLOWED_FAMILY.has(family) || !only(family)) continue;
    if (single.types.get(family) !== pod.types.get(family))
      out.push(`${family}: type ${single.types.get(family)} alone, ${pod.types.get(family)} with workers`);
  }
  const keys = new Set([...single.series.keys(), ...pod.series.keys()]);
  for (const key of [...keys].sort()) {
    const family = familyOf(nameOf(key), types);
    const allowed = ALLOWED_FAMILY.get(family);
    if ((allowed !== undefined && allowed !== 'startAndReloadTimes') || !only(family)) continue;
    const a = single.series.get(key);
    const b = pod.series.get(key);
    if (a === undefined || b === undefined) {
      out.push(
        `${key}: ${a === undefined ? 'absent' : a} alone, ${b === undefined ? 'absent' : b} with workers`,
      );
      continue;
    }
    if (allowed === 'startAndReloadTimes') {
      if (!plausibleTime(a, since) || !plausibleTime(b, since))
        out.push(`${key}: ${a} alone, ${b} with workers (not a time of this run)`);
      continue;
    }
    if (measuresTime(key, family)) continue;
    if (a !== b) out.push(`${key}: ${a} alone, ${b} with workers`);
  }
  return out;
}

/** Opens `count` keep-alive connections (distinct sources), each answered once and then left idle. */
async function holdOpen(gw: Bench, count: number): Promise<RawConnection[]> {
  return mapLimited(
    Array.from({ length: count }, (_, i) => SOURCES[i % SOURCES.length]!),
    8,
    async (from) => {
      const raw = await openRaw({ host: '127.0.0.1', port: gw.port, localAddress: from });
      raw.socket.write(wire({ kind: 'ok', size: 7, body: 0 }));
      await raw.until((b) => framedResponses(b).length === 1, 20_000);
      return raw;
    },
  );
}

/** Waits until the gateway's /metrics shows `count` client connections open. */
const openConnections = (gw: Bench, count: number) =>
  scrapeUntil(
    '127.0.0.1',
    gw.metricsPort,
    (text) =>
      metricSum(text, 'nginx_ingress_controller_nginx_process_connections', { state: 'active' }) === count,
    `${count} client connections open`,
  );

/** GET /metrics; null when no answer came within `ms` (the request is then abandoned). */
function scrapeWithin(port: number, ms: number): Promise<string | null> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve(text);
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve(null);
    }, ms);
    req.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

/**
 * Prometheus's default scrape_timeout is 10 s; a scrape on loopback takes tens of milliseconds. A pool
 * that waits on a worker for WORKER_METRICS_DEADLINE_MS (1 s) at most answers well within this bound,
 * even on a busy machine.
 */
const STUCK_SCRAPE_BOUND_MS = 5_000;

// ---------------------------------------------------------------------------------------------------

describe('/metrics with --workers 2 against one process, for the same traffic', () => {
  const dir = manifestDir();
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let single: Bench;
  let pod: WorkersGateway;
  /** The pod's workers now (a killed one replaced by its successor). */
  let workers: number[] = [];
  const since = Date.now();
  const first = fc.sample(connectionsArb(CONNECTIONS), { seed: SEED, numRuns: 1 })[0]!;
  const second = fc.sample(connectionsArb(6), { seed: SEED + 1, numRuns: 1 })[0]!;
  const HELD = 6;
  const requests = (cs: readonly Connection[]) => cs.reduce((n, c) => n + c.probes.length, 0);
  /** Requests sent to each gateway so far. */
  let sent = 0;
  let scraped = { single: '', pod: '' };

  const scrapeBoth = async () => {
    const [s, p] = await Promise.all([single, pod].map((gw) => scrape('127.0.0.1', gw.metricsPort)));
    scraped = { single: s!, pod: p! };
    return scraped;
  };
  const compareAll = async () => {
    const { single: s, pod: p } = await scrapeBoth();
    assert.equal(metricSum(s, 'keepip_gateway_requests_total'), sent, 'one process counted every request');
    return differences(parseExposition(s), parseExposition(p), since);
  };

  before(async () => {
    backend = await startBackend();
    const file = dir.write('app.yaml', manifests(backend.port, 'v1'));
    [single, pod] = await Promise.all([startSingle(file), startWorkersGateway(file, ['--workers', '2'])]);
    workers = [...pod.pids];
  });

  after(async () => {
    await Promise.all([single?.running.stop(), pod?.running.stop()]);
    await backend?.close();
    dir.remove();
  });

  test(`the same generated traffic reaches both workers (WORKERS_METRICS_SEED=${SEED})`, async () => {
    sent = requests(first);
    const [a, b] = await Promise.all([single, pod].map((gw) => drive(gw, first, sent, 'v1')));
    assert.equal(a, b, 'connections opened');
    const pids = new Set(servedLines(pod, 'v1').map((l) => l.pid));
    assert.deepEqual([...pids].sort(), [...workers].sort(), 'both workers served ($pid)');
    const statuses = (gw: StdoutLines) =>
      servedLines(gw, 'v1')
        .map((l) => l.status)
        .sort();
    assert.deepEqual(statuses(pod), statuses(single), 'the same answers');
    assert.ok(statuses(single).includes(503), 'limit-rpm refused some');
  });

  test(`every family and label set, with ${HELD} idle connections open: counters and histograms equal, gauges never multiplied`, async () => {
    const held = await Promise.all([single, pod].map((gw) => holdOpen(gw, HELD)));
    sent += HELD;
    try {
      await Promise.all([single, pod].map((gw) => gw.waitForLines(/^\d+ \d{3} v1 "/, sent)));
      await Promise.all([single, pod].map((gw) => openConnections(gw, HELD)));
      const found = await compareAll();
      assert.equal(
        metricSum(scraped.pod, 'nginx_ingress_controller_nginx_process_connections', { state: 'waiting' }),
        HELD,
      );
      assert.deepEqual(found, [], `WORKERS_METRICS_SEED=${SEED}`);
    } finally {
      for (const raw of held.flat()) raw.socket.end();
      await Promise.all(held.flat().map((raw) => raw.whenClosed(20_000)));
      await Promise.all([single, pod].map((gw) => openConnections(gw, 0)));
    }
  });

  test('a SIGKILLed worker: what it counted up to the last scrape stays in the sum, once (retainMonotonic)', async () => {
    const { pod: before } = await scrapeBoth(); // what the primary retains of the victim
    assert.equal(metricSum(before, 'keepip_gateway_requests_total'), sent);
    const victim = workers[0]!;
    process.kill(victim, 'SIGKILL');
    const exited = await pod.running.waitFor(new RegExp(`worker (\\d) \\(pid ${victim}\\) exited`));
    // The survivor serves the second traffic while the replacement starts.
    sent += requests(second);
    await Promise.all([single, pod].map((gw) => drive(gw, second, sent, 'v1')));
    const again = await pod.running.waitFor(new RegExp(`worker ${exited[1]} serving again \\(pid (\\d+)\\)`));
    workers = [Number(again[1]), workers[1]!];
    const afterKill = await compareAll();
    // Scraped again: the victim's retained values are added to every sum, not once more each time.
    const again2 = await compareAll();
    assert.deepEqual(
      { afterKill, again: again2 },
      { afterKill: [], again: [] },
      `WORKERS_METRICS_SEED=${SEED}`,
    );
  });

  test('a reload (v2) and a refused one: config and reload families equal, counted once per pod', async () => {
    dir.write('app.yaml', manifests(backend.port, 'v2'));
    await Promise.all([single, pod].map((gw) => gw.running.waitFor(/reloaded: config v2 from/)));
    const v2 = await compareAll();
    assert.equal(metricSum(scraped.pod, 'keepip_gateway_config_version'), 2);
    dir.write('app.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {name: x\n');
    await Promise.all(
      [single, pod].map((gw) => gw.running.waitFor(/reload rejected \(.*\); still serving config v2/)),
    );
    const refused = await compareAll();
    assert.equal(metricSum(scraped.pod, 'nginx_ingress_controller_config_last_reload_successful'), 0);
    assert.deepEqual({ v2, refused }, { v2: [], refused: [] });
  });

  test('ALLOWED: each documented difference is met', () => {
    const s = parseExposition(scraped.single);
    const p = parseExposition(scraped.pod);
    const value = (e: Exposition, family: string) => [...e.series].find(([k]) => nameOf(k) === family)?.[1];
    const met: string[] = [];
    // A family of the pool is exposed (its TYPE line) with workers only; one counted by slot has no
    // sample until something happened in a slot.
    if (ALLOWED.poolFamilies.families.every((f) => p.types.has(f) && !s.types.has(f)))
      met.push('poolFamilies');
    const procs = ALLOWED.numProcs.families[0];
    if (value(s, procs) === 1 && value(p, procs) === 2) met.push('numProcs');
    const resources = ALLOWED.processResources.families.every(
      (f) => (value(s, f) ?? 0) > 0 && (value(p, f) ?? 0) > 0 && value(s, f) !== value(p, f),
    );
    if (resources) met.push('processResources');
    const times = ALLOWED.startAndReloadTimes.families.every((f) =>
      [s, p].every((e) => plausibleTime(value(e, f) ?? 0, since)),
    );
    if (times) met.push('startAndReloadTimes');
    assert.deepEqual(met, Object.keys(ALLOWED));
  });

  test('a worker that does not answer (stopped) leaves /metrics answering, with its last values', async () => {
    const { pod: before } = await scrapeBoth();
    const stuck = workers[1]!;
    process.kill(stuck, 'SIGSTOP');
    try {
      const text = await scrapeWithin(pod.metricsPort, STUCK_SCRAPE_BOUND_MS);
      assert.notEqual(
        text,
        null,
        `/metrics answered nothing within ${STUCK_SCRAPE_BOUND_MS} ms while worker pid ${stuck} was stopped`,
      );
      assert.equal(
        metricSum(text ?? '', 'keepip_gateway_requests_total'),
        metricSum(before, 'keepip_gateway_requests_total'),
      );
    } finally {
      process.kill(stuck, 'SIGCONT');
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// Two scrapes at once (two Prometheus replicas, a scraper and a person's curl) while a worker exits:
// the real aggregatedMetrics over a stand-in pool whose broadcast is held after the exiting worker
// answered, as the real pool's is while another worker has not answered yet.

/** A worker's registry: requests_total, counted by the test. */
function counting(): { registry: Registry; requests: Counter } {
  const registry = new Registry();
  return { registry, requests: new Counter({ name: 'requests_total', help: 'h', registers: [registry] }) };
}

describe('retainMonotonic with scrapes in flight', () => {
  test('a worker that exits while two scrapes hold its answer is counted once, not once per scrape', async () => {
    const members = new Map([
      [1, counting()],
      [2, counting()],
    ]);
    let hold: Promise<void> = Promise.resolve();
    const pool = {
      async broadcast(): Promise<CallResult[]> {
        // Every live worker answers now; the call resolves once `hold` does (a slower worker).
        const answers = await Promise.all(
          [...members].map(
            async ([pid, w], i): Promise<CallResult> => ({
              slot: i + 1,
              pid,
              ok: true,
              value: (await w.registry.getMetricsAsJSON()) as unknown as MetricJson[],
            }),
          ),
        );
        await hold;
        return answers;
      },
      pids: () => [...members.keys()],
      takeLastWords: () => [],
    } as Partial<WorkerPool> as WorkerPool;
    const source = aggregatedMetrics(new Registry(), pool, { primaryOwned: new Set() });
    members.get(1)!.requests.inc(10);
    members.get(2)!.requests.inc(5);
    assert.equal(metricSum(await source.metrics(), 'requests_total'), 15);

    let release = () => {};
    hold = new Promise((resolve) => {
      release = resolve;
    });
    const inFlight = [source.metrics(), source.metrics()];
    // Both scrapes hold worker 1's answer (10); it exits (SIGKILL) and worker 3 replaces it.
    await new Promise((resolve) => setImmediate(resolve));
    members.delete(1);
    members.set(3, counting());
    release();
    const texts = await Promise.all(inFlight);
    hold = Promise.resolve();
    const next = await source.metrics();
    assert.deepEqual(
      [...texts, next].map((text) => metricSum(text, 'requests_total')),
      [15, 15, 15],
      'requests_total in the two scrapes in flight and in the next one',
    );
  });
});
