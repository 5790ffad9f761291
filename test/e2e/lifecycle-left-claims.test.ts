// Lifecycle claims no other test checks from a real process: how the gateway counts the connections it
// closes (with one process and with --workers 2, the pod's sum), SIGINT's drain with workers, a
// tcp-services client that leaves while its endpoint is being dialled, and the controller's leader
// gauge as the Lease changes hands. Real `keepip gateway` / `keepip controller` processes
// (startKeepip), clients bound to distinct 127.x sources, the fake API server for the controller.
//
// Claims checked here (quoted):
// - docs/gateway.md, Metrics: "`keepip_gateway_http2_connections_closed_total` | `reason`: `rapid-reset`,
//   `control-flood`, `frame-flood`, `protocol-error` (nghttp2's limits), `max-requests`, `idle`, `drain`,
//   `connection-close`"; HTTP/2 limits: "(`rapid-reset`, `control-flood`, `frame-flood`, `protocol-error`,
//   `max-requests`, `idle`, `drain`, `connection-close`: the 421 of a client certificate verified against a
//   replaced CA ends its session with GOAWAY after its stream)"; the HTTP/2 table: "`keep-alive-requests`
//   ... streams per connection; then GOAWAY (NO_ERROR), the streams it took finish" and "`keep-alive` ...
//   idle time without a stream (then GOAWAY)"; "an idle one is closed after `keep-alive` (GOAWAY NO_ERROR)".
// - docs/gateway.md, Metrics: "`keepip_gateway_connections_closed_total` | `reason`: why a deadline closed
//   a client connection — `header_timeout`, `client_body_timeout`, `keepalive_timeout`, `send_timeout`,
//   `lingering_close`, `upgrade_refused` ..., and `max_connections` ...; every reason is exported from the
//   start at 0".
// - docs/gateway.md, Reload and shutdown: "A connection whose client certificate was verified, in its TLS
//   handshake, against a CA or CRL the reload replaced (`auth-tls-secret`) gets 421 for its next request,
//   and then ... an HTTP/2 session gets GOAWAY (NO_ERROR; the streams in flight finish)"; "requests in
//   flight finish on the snapshot they started with"; "SIGTERM/SIGINT: stop accepting, close idle
//   keep-alive connections, let in-flight requests finish (bounded by `--drain-timeout`), exit 0.
//   `/healthz` answers 503 while draining."
// - docs/gateway.md, Workers: "One `/metrics`, served by the primary: every worker's registry, read over
//   IPC and summed"; "Counters never go backwards when a worker is replaced: the primary keeps what each
//   worker last reported ... what a worker counted after the last scrape is lost with it, as with one
//   process that crashes between two scrapes"; "Signals. Only the primary acts on them ...: SIGTERM/SIGINT
//   drain every worker (each stops accepting and finishes its requests within `--drain-timeout`), then the
//   primary exits 0."
// - docs/controller.md, tcp-services: "`$status` is 200 (connected), 400 (a `:PROXY` entry's header
//   refused), 502 (no endpoint answered), ... A connection is not read before its endpoint answers, so
//   a client that resets during the dial is seen, as by nginx, only when the dial ends: 502 after the
//   connect timeout when the endpoint never answers";
//   "The listeners' `keepip_lb_*` metrics count connections
//   (`keepip_lb_flows_rejected_total{reason="connect-failed"|"no-target"|"header"}`)".
// - docs/controller.md, /metrics: "`keepip_controller_synced`, `keepip_controller_api_connected`,
//   `keepip_controller_leader` (gauges, 0/1)"; Leader election: "a Lease held by another identity is taken
//   only after `leaseDurationSeconds` have passed on our clock since we last saw the record change";
//   docs/gateway.md: "`…_leader_election_status{name=<--election-id>}` (1 while leading ...)".
//
// Claim -> covering test (elsewhere) or this file:
//   http2 closed rapid-reset, control-flood, frame-flood,
//     protocol-error (a real process) ................................ test/gateway/h2-grpc-docs-claims.test.ts:587,
//                                                                      test/e2e/gateway-http2-abuse.test.ts
//   http2 closed max-requests, idle, connection-close, drain, one
//     process and --workers 2 (the sum), each once, nothing else ..... this file
//   keep-alive-requests: GOAWAY, the streams taken finish ............. test/e2e/gateway-http2.test.ts:419
//                                                                      (in process), this file (a process)
//   keep-alive idle GOAWAY NO_ERROR ................................... test/e2e/gateway-http2-abuse.test.ts:326
//                                                                      (in process), this file (a process)
//   connections_closed_total keepalive_timeout for an idle HTTP/2
//     session; HTTP/1.1 keep-alive-requests / Connection: close /
//     drain counted under no reason ................................... this file
//   421 + GOAWAY after a CA change (one process) ...................... test/security/reload-staleness-attack.test.ts:547
//   421 + GOAWAY, the stream in flight finishing on the old snapshot,
//     with --workers 2 ................................................ this file
//   SIGTERM drain, one process: in flight finishes, idle closed, new
//     connections refused, /healthz 503, exit 0 ....................... test/gateway/gateway-docs-listeners.test.ts:554,
//                                                                      test/e2e/gateway-reload.test.ts:170
//   drain counted (http2 `drain`) with one process .................... this file
//   SIGTERM drain with --workers 2 (in flight finishes, exit 0) ....... test/workers/gateway-workers.test.ts:254
//   SIGINT drain with --workers 2: in flight finishes, idle closed on
//     every worker, new connections refused, /healthz 503, exit 0 ..... this file
//   tcp-services 200 / 400 / 502 lines, connect-failed ................ test/controller/tcp-stream.test.ts,
//                                                                      test/controller/tcp-services.test.ts
//   tcp-services, a client reset while dialling, a real process ........ this file (seen when the dial
//                                                                      ends: 502, as nginx)
//   leader_election_status 1 while leading (in process) ............... test/controller/features.test.ts:58
//   keepip_controller_leader / leader_election_status 0 -> 1 -> 0 as
//     the Lease is taken and lost, scraped from the process ........... this file
//
// ALLOWED (differences between what one might expect and what the docs define, kept on purpose; each is
// checked below to still be what is seen):
//   A1 h1-closes-uncounted: `max-requests`, `idle`, `drain` and `connection-close` are reasons of
//      keepip_gateway_http2_connections_closed_total (HTTP/2 sessions only). An HTTP/1.1 connection closed
//      because keep-alive-requests was reached, because its client sent `Connection: close`, or because a
//      drain closed it idle is counted under no reason of keepip_gateway_connections_closed_total, whose
//      reasons are deadlines only (the doc's table). Checked in 'HTTP/1.1 closes ...' and the drain test.
//   A2 idle-counted-twice: an idle HTTP/2 session closed at `keep-alive` is counted in both families,
//      `http2_connections_closed_total{reason="idle"}` and `connections_closed_total{reason=
//      "keepalive_timeout"}` (the latter counts deadlines of both protocols). Checked in the idle test.
//   A3 nginx-leader-absent-first: ingress-nginx's `leader_election_status` has no series until this
//      replica first leads (ingress-nginx's collector sets it only in OnStartedLeading/OnStoppedLeading,
//      internal/ingress/metric/collectors/controller.go), while keepip_controller_leader is 0 from the
//      start. Checked in the leader test.
//
// Found here (each failed before; fixed in the code, F1 in the docs):
//   F1 tcp-services, a client that leaves (TCP reset) while its endpoint is being dialled is seen only
//      when the dial ends (the connection is not read before): 502 and connect-failed, as nginx 1.22's
//      stream module (checked by hand); the docs said 499: corrected (499 is for a client keepip sees
//      go, 503 for a controller stopping during the dial).
//   F2 (fixed: the drain answer carries the worker's final metrics) --workers 2: a worker that has
//      finished draining exited without reporting what it counted since
//      the primary's last scrape, so while another worker still drains a request, the pod's /metrics has
//      lost that worker's `drain` closes (and its requests): one process shows them until it exits.
//
// Processes: two gateways (one process, --workers 2) and one controller, started side by side (the
// three suites run concurrently; the tests of a suite one after another). Nothing random. Every wait is
// on a signal (a line, a metric, a GOAWAY, a close, the backend having seen a request, a SYN_SENT socket
// in /proc/net/tcp); the timeouts only bound a broken process.
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import http from '../../src/node-http.ts';
import { type FakeApiServer, type Obj, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { dialling, startBlackhole } from '../helpers/blackhole.ts';
import { metricSum, scrape, scrapeUntil } from '../helpers/metrics.ts';
import { connectOutcome, framedResponses, freePort, openRaw, type RawConnection } from '../helpers/net.ts';
import { makePki, type Pem } from '../helpers/pki.ts';
import { type Running, startKeepip } from '../helpers/process.ts';

/** Bound for a signal that a working process gives at once: only a broken one reaches it. */
const WAIT_MS = 20_000;

const H2_CLOSED = 'keepip_gateway_http2_connections_closed_total';
const CLOSED = 'keepip_gateway_connections_closed_total';
const H2_REASONS = [
  'rapid-reset',
  'control-flood',
  'frame-flood',
  'protocol-error',
  'max-requests',
  'idle',
  'drain',
  'connection-close',
] as const;
const DEADLINE_REASONS = [
  'header_timeout',
  'client_body_timeout',
  'keepalive_timeout',
  'send_timeout',
  'lingering_close',
  'upgrade_refused',
  'max_connections',
] as const;

const WEB = 'web.example.com';
const MTLS = 'tls.example.com';

// ---------------------------------------------------------------------------------------------------
// Small helpers

/** `promise`, or a rejection naming `what` after `ms` (a bound on a broken process, never a window). */
function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Every reason of `family` in `text`, by name (the exported zeros included). */
function reasons(text: string, family: string, names: readonly string[]): Record<string, number> {
  return Object.fromEntries(names.map((reason) => [reason, metricSum(text, family, { reason })]));
}

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether a process with `pid` exists (signal 0 checks without sending anything). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A process's stdout (the access log) as lines, kept apart from its stderr. */
interface StdoutLines {
  /** Resolves with the first `count` stdout lines matching `pattern`; rejects after `timeoutMs`. */
  waitForLines(pattern: RegExp, count: number, timeoutMs?: number): Promise<string[]>;
}

// (test/workers/helpers.ts has the same, but it loads the in-process gateway harness: 0.4 s per start.)
function stdoutOf(running: Running): StdoutLines {
  let stdout = '';
  const waiters = new Set<() => void>();
  running.child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    for (const waiter of [...waiters]) waiter();
  });
  return {
    waitForLines: (pattern, count, timeoutMs = WAIT_MS) =>
      within(
        new Promise<string[]>((resolve) => {
          const check = () => {
            const found = stdout
              .split('\n')
              .slice(0, -1)
              .filter((line) => pattern.test(line));
            if (found.length < count) return;
            waiters.delete(check);
            resolve(found);
          };
          waiters.add(check);
          check();
        }),
        `${count} stdout line(s) ${pattern}; stdout:\n${stdout.slice(-2000)}`,
        timeoutMs,
      ),
  };
}

/** Polls `check` every 20 ms until it holds; a bound, not a window. */
async function until(what: string, check: () => boolean, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** GET /healthz on a fresh connection: its status. */
function healthz(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

/** One HTTP/1.1 request on a raw kept-alive connection; resolves with its (n-th) response's status. */
async function rawGet(conn: RawConnection, path: string, extra = ''): Promise<number> {
  const before = framedResponses(conn.received()).length;
  conn.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${WEB}\r\n${extra}\r\n`);
  const got = await conn.until((raw) => framedResponses(raw).length > before);
  return framedResponses(got)[before]!.status;
}

// ---------------------------------------------------------------------------------------------------
// A backend that holds the requests whose path has `/hold-` until the test releases them by pattern

interface HoldingBackend {
  port: number;
  arrived(pattern: RegExp): Promise<void>;
  release(pattern: RegExp): void;
  close(): Promise<void>;
}

async function startHoldingBackend(): Promise<HoldingBackend> {
  const seen: string[] = [];
  const held: { url: string; answer: () => void }[] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    req.resume();
    req.on('end', () => {
      const body = `ok ${url}\n`;
      const answer = () =>
        res
          .writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
          .end(body);
      seen.push(url);
      for (const waiter of [...waiters]) waiter();
      if (url.includes('/hold-')) held.push({ url, answer });
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    arrived: (pattern) =>
      within(
        new Promise<void>((resolve) => {
          const check = () => {
            if (!seen.some((url) => pattern.test(url))) return;
            waiters.delete(check);
            resolve();
          };
          waiters.add(check);
          check();
        }),
        `a request ${pattern} at the backend (seen: ${seen.join(', ')})`,
      ),
    release(pattern) {
      for (const h of held.filter((h) => pattern.test(h.url))) {
        held.splice(held.indexOf(h), 1);
        h.answer();
      }
    },
    close() {
      for (const h of held.splice(0)) h.answer();
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// HTTP/2 sessions from a chosen source: plain (prior knowledge) or TLS with a client certificate

interface H2Session {
  /** The error code of the first GOAWAY the server sent. */
  goaway: Promise<number>;
  /** Resolves once the session is closed (by either side). */
  closed: Promise<void>;
  get(path: string): Promise<number>;
  /** Closes it as a client that is done does (GOAWAY, then the close): no reason of either family. */
  shut(): Promise<void>;
  close(): void;
}

async function openH2(options: { port: number; from: string; tlsCert?: Pem }): Promise<H2Session> {
  const { port, from, tlsCert } = options;
  const authority = tlsCert === undefined ? WEB : MTLS;
  const session = http2.connect(`${tlsCert === undefined ? 'http' : 'https'}://${authority}:${port}`, {
    createConnection: () => {
      const tcp = net.connect({ host: '127.0.0.1', port, localAddress: from });
      if (tlsCert === undefined) return tcp;
      return tls.connect({
        socket: tcp,
        servername: MTLS,
        ALPNProtocols: ['h2'],
        rejectUnauthorized: false,
        ...tlsCert,
      });
    },
  });
  session.on('error', () => {});
  const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
  const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
  await within(
    new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    }),
    `an HTTP/2 session from ${from}`,
  );
  return {
    goaway,
    closed,
    get: (path) =>
      within(
        new Promise<number>((resolve, reject) => {
          const stream = session.request({ ':path': path, ':authority': authority });
          let status = 0;
          stream.on('response', (headers) => {
            status = Number(headers[':status']);
          });
          stream.resume();
          stream.on('end', () => resolve(status));
          stream.on('error', reject);
          stream.on('close', () => reject(new Error(`${path}: stream closed (RST ${stream.rstCode})`)));
        }),
        `the answer to ${path}`,
      ),
    shut: () => {
      session.close();
      return within(closed, `the session from ${from} closed`);
    },
    close: () => session.destroy(),
  };
}

// ---------------------------------------------------------------------------------------------------
// The gateways: one process and --workers 2, the same manifests, the same stages

interface TestPki {
  ca1: string;
  ca2: string;
  client1: Pem;
  server: Pem;
}

let pkiMade: Promise<TestPki> | null = null;

/** Two CAs, a client certificate of the first, the server's certificate: made once for both gateways. */
function testPki(): Promise<TestPki> {
  pkiMade ??= (async () => {
    const { certs } = await makePki({
      certificates: [
        { name: 'ca1' },
        { name: 'ca2' },
        { name: 'client1', issuer: 'ca1' },
        { name: 'server', subject: `/CN=${MTLS}`, extensions: `subjectAltName=DNS:${MTLS}\n` },
      ],
    });
    return {
      ca1: certs.ca1.cert,
      ca2: certs.ca2.cert,
      client1: certs.client1,
      server: certs.server,
    };
  })();
  return pkiMade;
}

/** An Ingress sending `host`/ to Service web (port 80), with TLS from Secret `tls` when `annotations` say. */
function webIngress(name: string, host: string, annotations: Record<string, string> | null): Obj {
  const path = { path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } };
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: 'default', annotations: annotations ?? {} },
    spec: {
      ingressClassName: 'nginx',
      ...(annotations === null ? {} : { tls: [{ hosts: [host], secretName: 'tls' }] }),
      rules: [{ host, http: { paths: [path] } }],
    },
  };
}

/**
 * The manifests: web.example.com (plain) and tls.example.com (auth-tls against `ca`), as JSON documents
 * (YAML 1.2 is a superset of JSON: the gateway reads them as any .yaml file).
 */
function manifests(pki: TestPki, backendPort: number, ca: string, keepAlive: string): string {
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const objects: Obj[] = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'ingress-nginx-controller', namespace: 'ingress-nginx' },
      data: {
        'keep-alive': keepAlive,
        'keep-alive-requests': '3',
        'log-format-upstream': '$pid $status "$request"',
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'default' },
      spec: { ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    },
    {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: 'web', namespace: 'default' },
      subsets: [{ addresses: [{ ip: '127.0.0.1' }], ports: [{ name: 'http', port: backendPort }] }],
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name: 'tls', namespace: 'default' },
      data: { 'tls.crt': b64(pki.server.cert), 'tls.key': b64(pki.server.key), 'ca.crt': b64(ca) },
    },
    webIngress('web', WEB, null),
    webIngress('mtls', MTLS, { 'nginx.ingress.kubernetes.io/auth-tls-secret': 'default/tls' }),
  ];
  return objects.map((o) => JSON.stringify(o)).join('\n---\n');
}

interface Gateway extends StdoutLines {
  run: Running;
  workers: number;
  http: number;
  https: number;
  metrics: number;
  /** The worker pids (the process itself with one). */
  pids: number[];
  /** Replaces the manifest file (atomically) and resolves once the reload to `version` is applied. */
  apply(text: string, version: number): Promise<void>;
}

async function startGateway(dir: string, text: string, workers: number): Promise<Gateway> {
  const file = join(dir, 'gateway.yaml');
  const write = (content: string) => {
    writeFileSync(join(dir, 'next.tmp'), content);
    renameSync(join(dir, 'next.tmp'), file);
  };
  write(text);
  const free = '127.0.0.1:0';
  const run = startKeepip(
    [
      'gateway',
      '-f',
      file,
      '--http',
      free,
      '--https',
      free,
      '--metrics',
      free,
      '--drain-timeout',
      '60s',
    ].concat(workers > 1 ? ['--workers', String(workers)] : []),
  );
  const lines = stdoutOf(run);
  try {
    const port = async (pattern: RegExp) => Number((await run.waitFor(pattern))[1]);
    const httpPort = await port(/listening http 127\.0\.0\.1:(\d+)/);
    const httpsPort = await port(/listening https 127\.0\.0\.1:(\d+)/);
    const metricsPort = await port(/metrics http:\/\/127\.0\.0\.1:(\d+)\/metrics/);
    const pids =
      workers > 1
        ? ((await run.waitFor(/workers: \d+ processes \(pids ([\d, ]+)\)/))[1] ?? '').split(', ').map(Number)
        : [run.child.pid!];
    await run.waitFor(/access log to stdout/);
    return {
      ...lines,
      run,
      workers,
      http: httpPort,
      https: httpsPort,
      metrics: metricsPort,
      pids,
      async apply(content, version) {
        write(content);
        await run.waitFor(new RegExp(`reloaded: config v${version} `));
      },
    };
  } catch (error) {
    await run.stop();
    throw error;
  }
}

/** The pid that logged the request for `path` (log-format-upstream `$pid $status "$request"`). */
async function servedBy(gw: Gateway, path: string): Promise<number> {
  const [line] = await gw.waitForLines(new RegExp(`^\\d+ \\d{3} "GET ${escaped(path)} HTTP/`), 1, WAIT_MS);
  return Number(line!.split(' ')[0]);
}

async function scrapeReasons(gw: Gateway, ready: (text: string) => boolean, what: string) {
  const text = await scrapeUntil('127.0.0.1', gw.metrics, ready, what, WAIT_MS);
  return { h2: reasons(text, H2_CLOSED, H2_REASONS), closed: reasons(text, CLOSED, DEADLINE_REASONS) };
}

function counts(h2: Partial<Record<(typeof H2_REASONS)[number], number>>): Record<string, number> {
  return Object.fromEntries(H2_REASONS.map((r) => [r, h2[r] ?? 0]));
}

function deadlines(
  closed: Partial<Record<(typeof DEADLINE_REASONS)[number], number>>,
): Record<string, number> {
  return Object.fromEntries(DEADLINE_REASONS.map((r) => [r, closed[r] ?? 0]));
}

/** Kept-alive HTTP/1.1 connections and HTTP/2 sessions, each placed on a known worker. */
interface Placed {
  /** The connection whose worker (`holder`) gets the request in flight. */
  held: RawConnection;
  holder: number;
  /** One idle HTTP/1.1 connection per worker. */
  idleH1: Map<number, RawConnection>;
  /** One idle HTTP/2 session per worker. */
  idleH2: Map<number, H2Session>;
  extra: (RawConnection | H2Session)[];
}

/**
 * Opens connections from distinct sources (the kernel's SO_REUSEPORT hash places them) until every
 * worker holds an idle HTTP/1.1 connection and an idle HTTP/2 session, and the first worker one more
 * HTTP/1.1 connection for the request in flight. Bounded: 40 of each.
 */
async function place(gw: Gateway, from: (i: number) => string): Promise<Placed> {
  const placed: Placed = { held: null as never, holder: 0, idleH1: new Map(), idleH2: new Map(), extra: [] };
  for (let i = 0; i < 40 && (placed.holder === 0 || placed.idleH1.size < gw.pids.length); i++) {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.http, localAddress: from(100 + i) });
    assert.equal(await rawGet(conn, `/where-h1-${i}`), 200);
    const pid = await servedBy(gw, `/where-h1-${i}`);
    if (placed.holder === 0) [placed.held, placed.holder] = [conn, pid];
    else if (!placed.idleH1.has(pid)) placed.idleH1.set(pid, conn);
    else placed.extra.push(conn);
  }
  for (let i = 0; i < 40 && placed.idleH2.size < gw.pids.length; i++) {
    const session = await openH2({ port: gw.http, from: from(150 + i) });
    assert.equal(await session.get(`/where-h2-${i}`), 200);
    const pid = await servedBy(gw, `/where-h2-${i}`);
    if (!placed.idleH2.has(pid)) placed.idleH2.set(pid, session);
    else placed.extra.push(session);
  }
  assert.equal(placed.idleH1.size, gw.pids.length, 'an idle HTTP/1.1 connection on every worker');
  assert.equal(placed.idleH2.size, gw.pids.length, 'an idle HTTP/2 session on every worker');
  return placed;
}

async function drainScenario(
  gw: Gateway,
  backend: HoldingBackend,
  signal: 'SIGTERM' | 'SIGINT',
  from: (i: number) => string,
): Promise<void> {
  const placed = await place(gw, from);
  // Client-side closes of the connections not needed: no reason of either family.
  for (const c of placed.extra) {
    if ('socket' in c) c.destroy();
    else await c.shut();
  }
  // The gateway has read those closes too: one it had not yet read would be an open session to the
  // drain, closed and counted as `drain` (seen once on a loaded run: 3 drain closes for 2 sessions).
  const kept = 1 + placed.idleH1.size + placed.idleH2.size;
  await scrapeUntil(
    '127.0.0.1',
    gw.metrics,
    (t) => metricSum(t, 'nginx_ingress_controller_nginx_process_connections', { state: 'active' }) === kept,
    `${kept} client connections open (the held one, the idle ones)`,
    WAIT_MS,
  );
  const tag = `/hold-drain-${gw.workers}`;
  const exited = gw.run.exited();
  try {
    placed.held.socket.write(`GET ${tag} HTTP/1.1\r\nHost: ${WEB}\r\n\r\n`);
    await backend.arrived(new RegExp(`^${escaped(tag)}$`));
    gw.run.child.kill(signal);
    await gw.run.waitFor(new RegExp(`${signal}: stopped accepting, draining`));
    // Every worker closes its idle connections once it stopped accepting: the signal that it did.
    for (const conn of placed.idleH1.values()) await conn.whenClosed(WAIT_MS);
    for (const session of placed.idleH2.values()) {
      assert.equal(await within(session.goaway, 'the GOAWAY of the drain'), http2.constants.NGHTTP2_NO_ERROR);
      await within(session.closed, 'the idle session closed by the drain');
    }
    for (const [i, port] of [gw.http, gw.https].entries())
      assert.equal(
        await connectOutcome('127.0.0.1', port, { localAddress: from(200 + i) }),
        'ECONNREFUSED',
        `a new connection to ${port}`,
      );
    assert.equal(await healthz(gw.metrics), 503, '/healthz while draining');
    assert.equal(placed.held.closed(), false, 'the request in flight was cut');
    // A worker without the request in flight is done: it has exited (the pod's sum must still hold its count).
    for (const pid of gw.pids.filter((p) => p !== placed.holder && gw.workers > 1))
      await until(`worker ${pid} exited`, () => !alive(pid));
    const seen = await scrapeReasons(gw, () => true, 'a scrape while draining');
    backend.release(new RegExp(`^${escaped(tag)}$`));
    const answers = framedResponses(await placed.held.until((raw) => framedResponses(raw).length >= 2));
    assert.equal(answers[1]!.status, 200, 'the request in flight was answered');
    assert.equal(await within(exited, 'the exit after the drain'), 0);
    assert.match(gw.run.output(), /keepip gateway: stopped/);
    for (const pid of gw.pids) assert.ok(!alive(pid), `worker ${pid} exited`);
    assert.deepEqual(
      seen.closed,
      deadlines({ keepalive_timeout: 1 }),
      'ALLOWED A1: no reason for HTTP/1.1 drain closes',
    );
    // Last, so that a wrong count (F2, found here, fixed, with workers) leaves the drain itself checked above.
    const drained = gw.pids.length;
    assert.deepEqual(
      seen.h2,
      counts({ 'max-requests': 1, idle: 1, 'connection-close': 1, drain: drained }),
      `one drain close per idle HTTP/2 session (${drained}), summed over the workers (F2, found here, fixed)`,
    );
  } finally {
    backend.release(/./);
    placed.held.destroy();
    for (const conn of placed.idleH1.values()) conn.destroy();
    for (const session of placed.idleH2.values()) session.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// The controller: tcp-services and the leader gauge

const LEASE = { namespace: 'ingress-nginx', name: 'lc-leader' };

function lease(holder: string, seconds: number): Obj {
  const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
  return {
    kind: 'Lease',
    apiVersion: 'coordination.k8s.io/v1',
    metadata: { ...LEASE },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: seconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: 0,
    },
  };
}

// The three suites run side by side (each one's tests one after another): the processes start together.
describe('lifecycle claims left untested', { concurrency: true }, () => {
  for (const mode of [
    { workers: 1, name: 'one process', signal: 'SIGTERM', net: 61 },
    { workers: 2, name: '--workers 2', signal: 'SIGINT', net: 62 },
  ] as const) {
    describe(`keepip gateway, ${mode.name}: connections closed, counted; ${mode.signal} drains`, {
      concurrency: false,
    }, () => {
      const from = (i: number) => `127.0.${mode.net}.${i}`;
      let pki: TestPki;
      let backend: HoldingBackend;
      let dir: string;
      let gw: Gateway;
      /** Opened as the gateway starts (keep-alive 1 s): its idle deadline runs while the next tests do. */
      let idle: H2Session;

      before(async () => {
        [pki, backend] = await Promise.all([testPki(), startHoldingBackend()]);
        dir = mkdtempSync(join(tmpdir(), 'keepip-lifecycle-'));
        gw = await startGateway(dir, manifests(pki, backend.port, pki.ca1, '1'), mode.workers);
        idle = await openH2({ port: gw.http, from: from(2) });
        assert.equal(await idle.get('/idle-1'), 200);
      });

      after(async () => {
        idle?.close();
        backend?.release(/./);
        await gw?.run.stop();
        await backend?.close();
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      });

      test('keep-alive-requests 3 over HTTP/2: three streams at once, all answered, GOAWAY (NO_ERROR); counted once as max-requests', async () => {
        const h2 = await openH2({ port: gw.http, from: from(1) });
        try {
          const statuses = await Promise.all([h2.get('/mr-1'), h2.get('/mr-2'), h2.get('/mr-3')]);
          assert.deepEqual(statuses, [200, 200, 200]);
          assert.equal(
            await within(h2.goaway, 'the GOAWAY after the third stream'),
            http2.constants.NGHTTP2_NO_ERROR,
          );
          await within(h2.closed, 'the session closed after its streams');
        } finally {
          h2.close();
        }
        const seen = await scrapeReasons(
          gw,
          (t) => metricSum(t, H2_CLOSED, { reason: 'max-requests' }) >= 1,
          'max-requests counted',
        );
        // The idle session of before() may have been closed by now: its own test checks it.
        assert.deepEqual({ ...seen.h2, idle: 0 }, counts({ 'max-requests': 1 }));
        assert.deepEqual({ ...seen.closed, keepalive_timeout: 0 }, deadlines({}));
      });

      test('a reload that replaces the auth-tls CA: the next stream of a session verified against the old one is 421, then GOAWAY (NO_ERROR); the stream in flight finishes; counted once as connection-close', async () => {
        const h2 = await openH2({ port: gw.https, from: from(3), tlsCert: pki.client1 });
        try {
          // A stream in flight across the reload: the session is never idle meanwhile (keep-alive is 1 s).
          const inFlight = h2.get(`/hold-cc-${mode.net}`);
          await backend.arrived(new RegExp(`^/hold-cc-${mode.net}$`));
          // The reload also sets keep-alive back to 75 s for the connections opened after it.
          await gw.apply(manifests(pki, backend.port, pki.ca2, '75'), 2);
          assert.equal(await h2.get('/after-ca-change'), 421, 'the handshake against ca1 was taken as valid');
          assert.equal(await within(h2.goaway, 'the GOAWAY after the 421'), http2.constants.NGHTTP2_NO_ERROR);
          backend.release(new RegExp(`^/hold-cc-${mode.net}$`));
          assert.equal(await inFlight, 200, 'the stream in flight finished');
          await within(h2.closed, 'the session closed after its streams');
        } finally {
          h2.close();
        }
        const seen = await scrapeReasons(
          gw,
          (t) => metricSum(t, H2_CLOSED, { reason: 'connection-close' }) >= 1,
          'connection-close counted',
        );
        assert.deepEqual({ ...seen.h2, idle: 0 }, counts({ 'max-requests': 1, 'connection-close': 1 }));
        assert.deepEqual({ ...seen.closed, keepalive_timeout: 0 }, deadlines({}));
      });

      test('keep-alive 1 s over HTTP/2: an idle session gets GOAWAY (NO_ERROR) and is closed; counted once as idle and once as keepalive_timeout (A2)', async () => {
        assert.equal(
          await within(idle.goaway, 'the GOAWAY of an idle session'),
          http2.constants.NGHTTP2_NO_ERROR,
        );
        await within(idle.closed, 'the idle session closed');
        const seen = await scrapeReasons(
          gw,
          (t) => metricSum(t, H2_CLOSED, { reason: 'idle' }) >= 1,
          'idle counted',
        );
        assert.deepEqual(seen.h2, counts({ 'max-requests': 1, idle: 1, 'connection-close': 1 }));
        // ALLOWED A2: the same close in the deadlines' family too.
        assert.deepEqual(seen.closed, deadlines({ keepalive_timeout: 1 }));
      });

      test("HTTP/1.1 closes that are no deadline: keep-alive-requests reached, a client's Connection: close; counted under no reason (A1)", async () => {
        const kept = await openRaw({ host: '127.0.0.1', port: gw.http, localAddress: from(4) });
        const asked = await openRaw({ host: '127.0.0.1', port: gw.http, localAddress: from(5) });
        try {
          for (let i = 1; i <= 3; i++) assert.equal(await rawGet(kept, `/kar-${i}`), 200);
          await kept.whenClosed(WAIT_MS);
          assert.match(framedResponses(kept.received())[2]!.head, /\r\nconnection: close(\r\n|$)/i);
          assert.equal(await rawGet(asked, '/asked-close', 'Connection: close\r\n'), 200);
          await asked.whenClosed(WAIT_MS);
        } finally {
          kept.destroy();
          asked.destroy();
        }
        // Both closes happened before this scrape was answered (the client saw them).
        const seen = await scrapeReasons(gw, () => true, 'a scrape');
        assert.deepEqual(seen.h2, counts({ 'max-requests': 1, idle: 1, 'connection-close': 1 }));
        assert.deepEqual(seen.closed, deadlines({ keepalive_timeout: 1 }), 'ALLOWED A1');
      });

      test(`${mode.signal} while HTTP/2 and HTTP/1.1 connections idle and a request is in flight: idle ones closed on every worker (drain counted once per HTTP/2 session), new connections refused, /healthz 503, the request finishes, exit 0`, async () => {
        await drainScenario(gw, backend, mode.signal, from);
      });
    });
  }

  describe('keepip controller: the leader gauge as the Lease changes hands; a tcp-services client that leaves while dialling', {
    concurrency: true,
  }, () => {
    let api: FakeApiServer;
    let hole: Awaited<ReturnType<typeof startBlackhole>>;
    let ctl: Running;
    let access: StdoutLines;
    let tcpPort: number;
    let metricsPort: number;

    before(async () => {
      [api, hole, tcpPort] = await Promise.all([startFakeApiServer(), startBlackhole(), freePort()]);
      // Another replica leads, for an hour: this one must wait (and say so).
      api.apply(lease('ctl-other', 3600));
      api.apply({
        kind: 'ConfigMap',
        metadata: { namespace: 'ingress-nginx', name: 'tcp-services' },
        data: { [String(tcpPort)]: 'gitea/gitea-ssh:22' },
      });
      api.apply({
        kind: 'Service',
        metadata: { namespace: 'gitea', name: 'gitea-ssh' },
        spec: { ports: [{ name: 'ssh', port: 22, targetPort: 2222, protocol: 'TCP' }] },
      });
      api.apply({
        kind: 'EndpointSlice',
        metadata: {
          namespace: 'gitea',
          name: 'gitea-ssh-1',
          labels: { 'kubernetes.io/service-name': 'gitea-ssh' },
        },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
        ports: [{ name: 'ssh', port: hole.port, protocol: 'TCP' }],
      });
      ctl = startKeepip(
        [
          'controller',
          `--kubeconfig=${api.kubeconfig}`,
          '--bind-address=127.0.0.1',
          '--http-port=0',
          '--https-port=0',
          '--healthz-port=0',
          '--workers=1',
          '--enable-metrics',
          `--election-id=${LEASE.name}`,
          '--election-ttl=2s',
          '--tcp-services-configmap=ingress-nginx/tcp-services',
          '--post-shutdown-grace-period=0',
        ],
        { env: { POD_NAMESPACE: 'ingress-nginx', POD_NAME: 'ctl-0' } },
      );
      access = stdoutOf(ctl);
      metricsPort = Number((await ctl.waitFor(/health http:\/\/127\.0\.0\.1:(\d+)\/healthz, metrics/))[1]);
      await ctl.waitFor(new RegExp(`tcp-services ${tcpPort}: listening 127\\.0\\.0\\.1:${tcpPort} `));
    });

    after(async () => {
      await ctl?.stop();
      hole?.close();
      await api?.close();
    });

    test('keepip_controller_leader 0 while another replica holds the Lease, 1 once this one takes it, 0 once another holder has it; leader_election_status follows (A3)', async () => {
      const leaderNow = (text: string) => ({
        keepip: metricSum(text, 'keepip_controller_leader'),
        nginx:
          /nginx_ingress_controller_leader_election_status\{[^}]*name="lc-leader"[^}]*\} (\d+)/.exec(
            text,
          )?.[1] ?? 'absent',
      });
      await ctl.waitFor(/the leader is ctl-other/);
      // ALLOWED A3: no ingress-nginx series before this replica first leads; keepip's own gauge is 0.
      assert.deepEqual(leaderNow(await scrape('127.0.0.1', metricsPort)), { keepip: 0, nginx: 'absent' });
      // The other replica releases it (holder "", as a graceful stop writes): taken at the next retry.
      api.apply(lease('', 1));
      await ctl.waitFor(/became the leader \(Lease ingress-nginx\/lc-leader, identity ctl-0\)/);
      const leading = await scrapeUntil(
        '127.0.0.1',
        metricsPort,
        (t) => leaderNow(t).keepip === 1,
        'leader 1',
        WAIT_MS,
      );
      assert.deepEqual(leaderNow(leading), { keepip: 1, nginx: '1' });
      assert.equal(api.get('Lease', LEASE.namespace, LEASE.name)?.spec?.holderIdentity, 'ctl-0');
      // Another holder writes the Lease (this replica's renewals lost to it): the next renewal sees it.
      api.apply(lease('ctl-other', 3600));
      await ctl.waitFor(/stopped leading \(Lease ingress-nginx\/lc-leader\)/);
      const lost = await scrapeUntil(
        '127.0.0.1',
        metricsPort,
        (t) => leaderNow(t).keepip === 0,
        'leader 0',
        WAIT_MS,
      );
      assert.deepEqual(leaderNow(lost), { keepip: 0, nginx: '0' });
      assert.equal(api.get('Lease', LEASE.namespace, LEASE.name)?.spec?.holderIdentity, 'ctl-other');
    });

    test('tcp-services: a client that resets while its endpoint is being dialled is seen when the dial ends, as by nginx: 502, connect-failed (found here; docs corrected)', async () => {
      const client = net.connect({ host: '127.0.0.1', port: tcpPort, localAddress: '127.0.63.21' });
      client.on('error', () => {});
      await within(new Promise((resolve) => client.once('connect', resolve)), 'the client connected');
      client.write('SSH-2.0-lifecycle\r\n');
      // The dial is under way: the controller's SYN to the endpoint sits in SYN_SENT (the SYN is dropped).
      await until('the dial to the endpoint', () => dialling(hole.port));
      client.resetAndDestroy();
      // The connection is not read before its endpoint answers: the reset is seen when the dial ends.
      // End it (the listener goes; the next SYN retransmit is refused) rather than wait 60 s for it.
      hole.close();
      const line = /^\[127\.0\.63\.21\] \[[^\]]+\] TCP (\d{3}) /;
      const found = await access.waitForLines(line, 1, WAIT_MS);
      const text = await scrape('127.0.0.1', metricsPort);
      const rejected = metricSum(text, 'keepip_lb_flows_rejected_total', { lb: `tcp-services-${tcpPort}` });
      assert.deepEqual(
        { status: line.exec(found[0]!)?.[1], rejected },
        { status: '502', rejected: 1 },
        found[0],
      );
    });
  });
});
