// docs/lb.md's claims that no other test runs end to end, checked against `keepip lb` as an operator
// runs it (flags and -f manifests), with real clients bound to distinct 127.x sources and targets
// that record who connected and what header they sent.
//
// The claims (docs/lb.md), each with the test below that checks it:
// - flags table: "`--health-check tcp|http:PATH|none` | active checks (`http:/healthz`; a path without
//   `/` gets one)"; "`--health-port N` | check this port instead of the traffic port"; "`--metrics
//   ADDR:PORT` | Prometheus `/metrics` and `/healthz`"; "Durations: `500ms`, `10s`, `5m`, or plain
//   seconds"; "Start-up lines name … the health check, the algorithm and the timeouts".
//   -> 'flags mode, health checks'
// - Health checks: "Checks come from the source address, every interval (the first at start-up)";
//   "When a target turns unhealthy while another is healthy, its open flows are reset at once (`target …
//   unhealthy: resetting its N open flow(s)`) … a target pulled by its health check keeps no
//   long-lived connection"; "while failing open nothing is reset".
//   Fail-open: "When every registered target is unhealthy, an NLB sends traffic to all of them …
//   (logged once when it starts and when it ends)". Metrics: "`keepip_lb_target_healthy` | 1 in
//   rotation by health, 0 not"; "`keepip_lb_health_checks_total` | lb, target, result".
//   -> 'flags mode, health checks'. Found here, fixed: once fail-open ended, the target still out of
//   rotation kept the flows failing open gave it (the last test of that suite).
// - PROXY header: "an IPv4 client on an IPv6 listener is written as TCP6 with IPv4-mapped addresses".
//   Preservation: "(or when the client's and the target's address families differ) keepip falls back
//   to the source address, logs it (at most once per 10 s per reason) and counts it in
//   `keepip_lb_preservation_fallbacks_total`"; "A preserved client whose address is the target's own …
//   works on loopback but is logged and counted (`keepip_lb_hairpin_flows_total`)". Exit codes: "0
//   stopped (SIGINT/SIGTERM)". -> 'flags mode, a dual-stack listener' (the header: ALLOWED below)
// - Where the addresses come from (-f): "`-f` | manifest file or directory"; "Otherwise the model's
//   `listenAddress`, i.e. `status.loadBalancer.ingress[0].ip`, or keepip's default `127.0.10.N` (N =
//   the Service's place in sorted order), on each TCP port … A Service with several TCP ports gets one
//   listener per port … UDP/SCTP ports are skipped with a warning"; "`instance` (the default …): every
//   node address (Node objects' InternalIP …) on the port's `nodePort`"; "`ip`: the ready endpoints of
//   the Service port (EndpointSlices, else Endpoints)"; "**Source address**: `keepip.dev/lb-source-
//   address`, else `127.0.11.N`"; "AWS NLB (`aws-load-balancer-proxy-protocol: "*"`, target-group
//   attributes … `preserve_client_ip.enabled` …), the legacy in-tree ELB (`proxy-protocol: "*"` means
//   v1)"; flags table "`--preserve-client-ip` … per rule A1 (`-f`)" (instance targets preserve);
//   "Unknown or conflicting annotations are printed as warnings (`UNKNOWN_LB_ANNOTATION`, …) with the
//   file, document and field"; "v2 is what an NLB sends; v1 is what a Classic ELB sends"; with PROXY
//   on "every check connection starts with a header …: v2 `LOCAL` …, v1 `PROXY UNKNOWN`"; metrics
//   "`keepip_lb_proxy_headers_sent_total` | PROXY headers sent on client flows"; "`lb` is the listener's
//   name: the Service (`namespace/name`, with `:port` for multi-port Services)".
//   SIGHUP: "Everything else (listen addresses, PROXY settings and TLVs, …) needs a restart, as does
//   removing a listener". -> 'manifest mode, a directory of three Services'
// - SIGHUP: "targets that disappeared drain for the deregistration delay"; Deregistration delay: "A
//   target removed (`setTargets`, SIGHUP) gets no new flows; its open flows run until they end or the
//   delay expires, when they are reset. A target re-added while draining is back in service at once."
//   "In manifest mode every option given on the command line overrides what the manifest says."
//   -> 'manifest mode, SIGHUP drains and re-registers'
// - SIGHUP: "`--target` pins them, as `--source-ranges` pins the ranges"; flags table
//   "`--preserve-client-ip`, `--no-preserve-client-ip` | … per rule A1 (`-f`)".
//   -> 'manifest mode, --target pins'
// - "Exit codes: … 1 configuration or listen error" (2, usage: test/lb/cli.test.ts);
//   "`--listen` when given (… which then needs a single listener …)" (LB_LISTEN_AMBIGUOUS);
//   "`--service NS/NAME`" (LB_SERVICE_NOT_FOUND); "errors in Services, Endpoints, EndpointSlices or
//   Nodes stop the start (exit 1)". -> 'exit codes'
//
// Every other claim of docs/lb.md has its test elsewhere (the table is in the helper's report).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { metricSum, scrape, scrapeUntil } from '../helpers/metrics.ts';
import { freePort, isPortClash } from '../helpers/net.ts';
import { type Running, runKeepip, startKeepip } from '../helpers/process.ts';
import { type Accepted, echo, exchange, startTarget, type TestTarget, until } from './helpers.ts';

/**
 * Differences from docs/lb.md's wording that are acceptable, each checked below (`allowedSeen`) so the
 * table cannot rot: when keepip changes, the check fails and the entry goes.
 */
const ALLOWED = {
  'lb-label-port-name':
    'docs/lb.md said "`lb` is … the Service (`namespace/name`, with `:port` for multi-port Services)". keepip ' +
    "writes the port's name (apps/alpha:web), its number only for an unnamed port: Kubernetes requires a " +
    'name on every port of a multi-port Service, unique in it, so the name names the listener as well. ' +
    'The doc now says so; checked here so that it stays true',
  'ipv4-client-on-dual-stack-listener':
    'docs/lb.md said "an IPv4 client on an IPv6 listener is written as TCP6 with IPv4-mapped addresses". ' +
    'On real sockets an IPv4 client reaches an IPv6 listener only through a dual-stack one (`--listen ' +
    '[::]:P`), and keepip folds both the client (::ffff:a.b.c.d) and the address it reached to IPv4: the ' +
    'header is TCP4 with plain IPv4 addresses, which every PROXY reader takes as the client address (the ' +
    'TCP6 form is what the engine writes for a mixed pair, test/lb/pure.test.ts). The doc now says so',
} as const;
const allowedSeen = new Set<keyof typeof ALLOWED>();

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn().catch(() => {});
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-lb-docs-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function target(options: Parameters<typeof startTarget>[0]): Promise<TestTarget> {
  const t = await startTarget(options);
  cleanup.push(() => t.close());
  return t;
}

function keepip(args: string[]): Running {
  const running = startKeepip(['lb', ...args]);
  cleanup.push(() => running.stop());
  return running;
}

const esc = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const count = (text: string, line: string) => text.split(line).length - 1;
/** Matches once `line` has been written `n` times. */
const nth = (line: string, n: number) => new RegExp(`(?:[\\s\\S]*?${esc(line)}){${n}}`);

/** A client connection kept open: echo round trips, and how it ended. */
interface OpenFlow {
  socket: net.Socket;
  /** The echo of `text`, or 'reset' / 'closed' when the flow ends first. */
  roundTrip(text: string): Promise<string>;
  ended: Promise<'reset' | 'closed'>;
}

async function openFlow(port: number, localAddress: string, host = '127.0.0.1'): Promise<OpenFlow> {
  const socket = net.connect({ host, port, localAddress });
  cleanup.push(async () => socket.destroy());
  let received = '';
  const waiters = new Set<() => void>();
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    received += chunk;
    for (const w of waiters) w();
  });
  const ended = new Promise<'reset' | 'closed'>((resolve) => {
    socket.once('error', () => resolve('reset'));
    socket.once('close', () => resolve('closed'));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return {
    socket,
    ended,
    roundTrip(text) {
      const from = received.length;
      return new Promise<string>((resolve) => {
        const check = () => {
          if (received.length - from < text.length) return;
          waiters.delete(check);
          resolve(received.slice(from, from + text.length));
        };
        waiters.add(check);
        void ended.then((how) => {
          waiters.delete(check);
          resolve(how);
        });
        socket.write(text);
      });
    },
  };
}

/** Which of `targets` accepted a connection while `act` ran (exactly one must have). */
async function landedOn<T>(targets: Record<string, TestTarget>, act: () => Promise<T>): Promise<[string, T]> {
  const before = Object.fromEntries(Object.entries(targets).map(([k, t]) => [k, t.accepted.length]));
  const result = await act();
  const grew = Object.entries(targets).filter(([k, t]) => t.accepted.length > before[k]!);
  assert.equal(grew.length, 1, `one target got the flow: ${grew.map(([k]) => k).join(', ')}`);
  return [grew[0]![0], result];
}

// ---------------------------------------------------------------------------------------------------

/** An HTTP health endpoint on host:port answering every request with `status`, recording each. */
interface HealthServer {
  status: number;
  requests: { line: string; from: string }[];
  close(): Promise<void>;
}

async function healthServer(host: string, port: number): Promise<HealthServer> {
  const sockets = new Set<net.Socket>();
  const health: HealthServer = { status: 200, requests: [], close: async () => {} };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      health.requests.push({ line: text.slice(0, text.indexOf('\r\n')), from: socket.remoteAddress ?? '' });
      socket.end(`HTTP/1.1 ${health.status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => resolve());
  });
  health.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  cleanup.push(() => health.close());
  return health;
}

/** One port free on both addresses, with a health server on each. */
async function healthPair(hosts: [string, string]): Promise<{ port: number; servers: HealthServer[] }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort(hosts[0]);
    const servers: HealthServer[] = [];
    try {
      for (const host of hosts) servers.push(await healthServer(host, port));
      return { port, servers };
    } catch (error) {
      for (const s of servers) await s.close();
      if (attempt >= 5 || !isPortClash(error)) throw error;
    }
  }
}

// The suites are independent (their own processes, addresses and targets): they run side by side.
describe('keepip lb against docs/lb.md', { concurrency: true }, () => {
  describe('flags mode, health checks: --health-port, http:PATH, connection termination, fail-open', {
    concurrency: 1,
  }, () => {
    const A_HOST = '127.0.96.1';
    const B_HOST = '127.0.96.2';
    const SOURCE = '127.0.96.9';
    let a: TestTarget;
    let b: TestTarget;
    let ha: HealthServer;
    let hb: HealthServer;
    let healthPort: number;
    let lb: Running;
    let port: number;
    let metricsPort: number;
    let aKey: string;
    let bKey: string;
    const metrics = () => scrape('127.0.0.1', metricsPort);
    const checks = (text: string, key: string, result: 'passed' | 'failed') =>
      metricSum(text, 'keepip_lb_health_checks_total', { target: key, result });
    // A line on stdout after everything written before it: SIGHUP in flags mode says it has nothing to
    // reload. Counting lines after it counts every line the checks before it could have written.
    let markers = 0;
    const marker = async () => {
      lb.child.kill('SIGHUP');
      await lb.waitFor(nth('SIGHUP: nothing to reload in flags mode', ++markers));
    };

    // Started as the file loads, so that every process starts at once: the suites share the wait.
    const ready = (async () => {
      [a, b] = await Promise.all([
        target({ host: A_HOST, behave: echo }),
        target({ host: B_HOST, behave: echo }),
      ]);
      const pair = await healthPair([A_HOST, B_HOST]);
      [ha, hb] = pair.servers as [HealthServer, HealthServer];
      healthPort = pair.port;
      aKey = `${A_HOST}:${a.port}`;
      bKey = `${B_HOST}:${b.port}`;
      lb = keepip([
        ...['--listen', '127.0.0.1:0', '--target', aKey, '--target', bKey, '--algorithm', 'round-robin'],
        ...['--health-check', 'http:healthz', '--health-port', String(healthPort)],
        ...['--health-interval', '100ms', '--health-timeout', '5s'],
        ...['--healthy-threshold', '2', '--unhealthy-threshold', '2', '--source-address', SOURCE],
        ...['--idle-timeout', '30', '--connect-timeout', '5m', '--deregistration-delay', '1500ms'],
        ...['--metrics', '127.0.0.1:0'],
      ]);
      port = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]);
      metricsPort = Number((await lb.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
    })();
    ready.catch(() => {}); // awaited by before(); this only keeps an early failure from being unhandled
    before(() => ready);

    test('start-up lines: the path given without / gets one, the health port, and every duration form', () => {
      const out = lb.output();
      assert.match(
        out,
        new RegExp(
          `health check: http /healthz on port ${healthPort} every 100 ms, timeout 5000 ms, healthy after 2, unhealthy after 2;`,
        ),
      );
      assert.match(
        out,
        /algorithm: round-robin; idle timeout 30000 ms; connect timeout 300000 ms; deregistration delay 1500 ms/,
      );
    });

    test('checks: GET /healthz on the health port, from the source address, none on the traffic port; /healthz of --metrics', async () => {
      const text = await scrapeUntil(
        '127.0.0.1',
        metricsPort,
        (t) => checks(t, aKey, 'passed') >= 2 && checks(t, bKey, 'passed') >= 2,
        'two passed checks per target',
      );
      assert.equal(metricSum(text, 'keepip_lb_target_healthy', { target: aKey }), 1);
      assert.equal(metricSum(text, 'keepip_lb_target_healthy', { target: bKey }), 1);
      for (const h of [ha, hb]) {
        assert.ok(h.requests.length >= 2);
        for (const r of h.requests) assert.deepEqual(r, { line: 'GET /healthz HTTP/1.1', from: SOURCE });
      }
      assert.equal(a.accepted.length + b.accepted.length, 0, 'no check reached the traffic port');
      const healthz = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
      assert.equal(healthz.status, 200);
      await healthz.arrayBuffer();
    });

    let onA: OpenFlow;
    let onB: OpenFlow;
    test('a target turning unhealthy while the other is healthy: its open flow is reset at once, logged; the other goes on', async () => {
      const targets = { a, b };
      const first = await landedOn(targets, async () => {
        const f = await openFlow(port, '127.0.96.51');
        assert.equal(await f.roundTrip('one'), 'one');
        return f;
      });
      const second = await landedOn(targets, async () => {
        const f = await openFlow(port, '127.0.96.52');
        assert.equal(await f.roundTrip('two'), 'two');
        return f;
      });
      assert.notEqual(first[0], second[0], 'round-robin: one flow on each target');
      [onA, onB] = first[0] === 'a' ? [first[1], second[1]] : [second[1], first[1]];
      ha.status = 503;
      await lb.waitFor(new RegExp(`target ${esc(aKey)} unhealthy after 2 failed check\\(s\\): HTTP 503`));
      await lb.waitFor(new RegExp(`target ${esc(aKey)} unhealthy: resetting its 1 open flow\\(s\\)`));
      assert.equal(await onA.ended, 'reset');
      assert.equal(await onB.roundTrip('still'), 'still');
      const text = await metrics();
      assert.equal(metricSum(text, 'keepip_lb_target_healthy', { target: aKey }), 0);
      assert.equal(metricSum(text, 'keepip_lb_target_healthy', { target: bKey }), 1);
      for (const from of ['127.0.96.53', '127.0.96.54']) {
        const [where] = await landedOn(targets, () => exchange(port, 'x', { localAddress: from }));
        assert.equal(where, 'b', 'only the healthy target is a candidate');
      }
    });

    let duringFailOpenOnA: OpenFlow;
    test('every target unhealthy: fail-open (logged once), traffic to all, and nothing is reset', async () => {
      hb.status = 503;
      await lb.waitFor(/all 2 target\(s\) unhealthy: failing open, traffic goes to all of them/);
      assert.equal(await onB.roundTrip('kept'), 'kept', 'failing open resets nothing');
      const targets = { a, b };
      const seen = new Set<string>();
      for (const from of ['127.0.96.55', '127.0.96.56']) {
        const [where, f] = await landedOn(targets, async () => {
          const flow = await openFlow(port, from);
          assert.equal(await flow.roundTrip('open'), 'open');
          return flow;
        });
        seen.add(where);
        if (where === 'a') duringFailOpenOnA = f;
      }
      assert.deepEqual([...seen].sort(), ['a', 'b'], 'failing open: both targets take flows');
      // Later failed checks of both: still one fail-open line.
      const now = await metrics();
      const bFailed = checks(now, bKey, 'failed');
      await scrapeUntil(
        '127.0.0.1',
        metricsPort,
        (t) => checks(t, bKey, 'failed') >= bFailed + 3,
        'three more failed checks',
      );
      await marker();
      assert.equal(count(lb.output(), 'failing open'), 1);
    });

    test('fail-open ends (logged once): the unhealthy target keeps no flow it was given while failing open', async () => {
      hb.status = 200;
      await lb.waitFor(new RegExp(`target ${esc(bKey)} healthy after 2 passed check\\(s\\)`));
      await lb.waitFor(/a target is healthy again: fail-open ends/);
      assert.equal(await onB.roundTrip('after'), 'after');
      const now = await metrics();
      const bPassed = checks(now, bKey, 'passed');
      await scrapeUntil(
        '127.0.0.1',
        metricsPort,
        (t) => checks(t, bKey, 'passed') >= bPassed + 3,
        'three more passed checks',
      );
      await marker();
      assert.equal(count(lb.output(), 'fail-open ends'), 1);
      // docs/lb.md "a target pulled by its health check keeps no long-lived connection": the flow that
      // failing open gave to A, out of rotation again now that B is healthy, is reset (found here, fixed).
      assert.equal(
        await duringFailOpenOnA.roundTrip('pulled?'),
        'reset',
        'a flow on a target out of rotation by health once fail-open ends is reset',
      );
    });
  });

  // ---------------------------------------------------------------------------------------------------

  describe('flags mode, a dual-stack listener: IPv4 clients in the header, family fallback, hairpin, SIGINT', {
    concurrency: 1,
  }, () => {
    let t6: TestTarget;
    let lb: Running;
    let port: number;
    let metricsPort: number;

    const ready = (async () => {
      t6 = await target({ host: '::1', proxy: true, record: true, behave: echo });
      lb = keepip([
        ...['--listen', '[::]:0', '--target', `[::1]:${t6.port}`, '--proxy-protocol', 'v2'],
        ...['--preserve-client-ip', '--metrics', '127.0.0.1:0'],
      ]);
      port = Number((await lb.waitFor(/listening on \[::\]:(\d+)/))[1]);
      metricsPort = Number((await lb.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
    })();
    ready.catch(() => {});
    before(() => ready);

    test('IPv4 clients: their addresses in the header (ALLOWED: TCP4); the family fallback logged once, counted per flow', async () => {
      const started = Date.now();
      const clients = ['127.0.97.1', '127.0.97.2', '127.0.97.3'];
      const ports: number[] = [];
      for (const from of clients) {
        const { received, localPort } = await exchange(port, `from ${from}`, {
          host: '127.0.97.10',
          localAddress: from,
        });
        assert.equal(received.toString(), `from ${from}`);
        ports.push(localPort);
      }
      const elapsed = Date.now() - started;
      const flows = t6.accepted.slice(-3);
      for (const [i, from] of clients.entries()) {
        const header = flows[i]!.header!;
        // ALLOWED ipv4-client-on-dual-stack-listener: TCP4 with the plain IPv4 addresses.
        assert.equal(header.protocol, 'TCP4');
        assert.deepEqual(header.source, { address: from, port: ports[i] });
        assert.deepEqual(header.destination, { address: '127.0.97.10', port });
        assert.equal(
          flows[i]!.remoteAddress,
          '::1',
          'fallback: the kernel-chosen address (no --source-address)',
        );
      }
      allowedSeen.add('ipv4-client-on-dual-stack-listener');
      // A later line on the same stream proves every earlier line has arrived.
      const { received } = await exchange(port, 'hairpin', { host: '::1', localAddress: '::1' });
      assert.equal(received.toString(), 'hairpin');
      await lb.waitFor(new RegExp(`hairpin: client ::1 is target \\[::1\\]:${t6.port} itself`));
      const fallbackLines = count(
        lb.output(),
        'cannot be preserved (address family differs from the target)',
      );
      assert.ok(fallbackLines >= 1, 'the fallback is logged');
      assert.ok(
        fallbackLines <= 1 + Math.floor(elapsed / 10_000),
        `at most once per 10 s: ${fallbackLines} lines in ${elapsed} ms`,
      );
      const text = await scrapeUntil(
        '127.0.0.1',
        metricsPort,
        (s) => metricSum(s, 'keepip_lb_hairpin_flows_total') === 1,
        'the hairpin flow counted',
      );
      assert.equal(
        metricSum(text, 'keepip_lb_preservation_fallbacks_total', { reason: 'family-mismatch' }),
        3,
      );
      const hairpin = t6.accepted.at(-1)!;
      assert.equal(hairpin.remoteAddress, '::1', 'preserved: the client address, which is the target’s');
      assert.equal(
        hairpin.header?.source && 'address' in hairpin.header.source && hairpin.header.source.address,
        '::1',
      );
    });

    test('SIGINT stops it with exit code 0', async () => {
      lb.child.kill('SIGINT');
      assert.equal(await lb.exited(), 0);
      assert.match(lb.output(), /keepip lb: stopped\n/);
    });
  });

  // ---------------------------------------------------------------------------------------------------

  /** The client flows a PROXY target received (health checks carry LOCAL or UNKNOWN headers). */
  const clientFlows = (t: TestTarget): Accepted[] =>
    t.accepted.filter((e) => e.header?.command === 'PROXY' && e.header.source !== null);

  interface ThreeServices {
    alphaWeb: number;
    alphaAlt: number;
    alphaDns: number;
    bravo: number;
    charlie: number;
    nodePorts: { web: number; alt: number; charlie: number };
    bravoEndpoint: { host: string; port: number };
    charlieProxy: boolean;
    alphaAltPort: boolean;
  }

  /** alpha: in-tree NLB, instance targets, PROXY "*", two TCP ports and a UDP one, an annotation typo. */
  function alphaYaml(s: ThreeServices): string {
    const alt = s.alphaAltPort
      ? `\n    - { name: alt, port: ${s.alphaAlt}, targetPort: 81, nodePort: ${s.nodePorts.alt}, protocol: TCP }`
      : '';
    return `apiVersion: v1
kind: Node
metadata: { name: node-a }
status:
  addresses: [{ type: InternalIP, address: 127.0.98.1 }]
---
apiVersion: v1
kind: Service
metadata:
  name: alpha
  namespace: apps
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: nlb
    service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: "*"
    service.beta.kubernetes.io/aws-load-balancer-proxy-protocl: "*"
spec:
  type: LoadBalancer
  ports:
    - { name: web, port: ${s.alphaWeb}, targetPort: 80, nodePort: ${s.nodePorts.web}, protocol: TCP }${alt}
    - { name: dns, port: ${s.alphaDns}, targetPort: 53, nodePort: ${s.nodePorts.web}, protocol: UDP }
`;
  }

  /** bravo: controller NLB, ip targets from an EndpointSlice (and stale Endpoints), preserve_client_ip. */
  function bravoYaml(s: ThreeServices): string {
    return `apiVersion: v1
kind: Service
metadata:
  name: bravo
  namespace: apps
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip
    service.beta.kubernetes.io/aws-load-balancer-target-group-attributes: preserve_client_ip.enabled=true
spec:
  type: LoadBalancer
  ports: [{ name: tcp, port: ${s.bravo}, targetPort: 8080, protocol: TCP }]
status:
  loadBalancer:
    ingress: [{ ip: 127.0.98.20 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: bravo-x
  namespace: apps
  labels: { kubernetes.io/service-name: bravo }
addressType: IPv4
endpoints:
  - addresses: [${s.bravoEndpoint.host}]
    conditions: { ready: true }
  - addresses: [127.0.98.3]
    conditions: { ready: false }
ports: [{ name: tcp, port: ${s.bravoEndpoint.port}, protocol: TCP }]
---
apiVersion: v1
kind: Endpoints
metadata: { name: bravo, namespace: apps }
subsets:
  - addresses: [{ ip: 127.0.98.5 }]
    ports: [{ name: tcp, port: ${s.bravoEndpoint.port} }]
`;
  }

  /** charlie: a legacy in-tree Classic ELB (no type), PROXY "*" = v1, instance targets. */
  function charlieYaml(s: ThreeServices): string {
    const pp = s.charlieProxy ? '\n    service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: "*"' : '';
    return `apiVersion: v1
kind: Service
metadata:
  name: charlie
  namespace: apps
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout: "60"${pp}
spec:
  type: LoadBalancer
  ports: [{ name: tcp, port: ${s.charlie}, targetPort: 80, nodePort: ${s.nodePorts.charlie}, protocol: TCP }]
`;
  }

  function writeThree(dir: string, s: ThreeServices): void {
    // Written so that file order is not namespace/name order: N comes from the sorted Services.
    writeFileSync(join(dir, 'c-alpha.yaml'), alphaYaml(s));
    writeFileSync(join(dir, 'a-bravo.yaml'), bravoYaml(s));
    writeFileSync(join(dir, 'b-charlie.yaml'), charlieYaml(s));
  }

  describe('manifest mode, a directory of three Services: addresses, target types, annotations, reload limits', {
    concurrency: 1,
  }, () => {
    let dir: string;
    let web: TestTarget;
    let alt: TestTarget;
    let charlieT: TestTarget;
    let bravoT: TestTarget;
    let bravoNext: TestTarget;
    let services: ThreeServices;
    let lb: Running;
    let metricsPort: number;
    const metrics = () => scrape('127.0.0.1', metricsPort);

    const ready = (async () => {
      dir = tempDir();
      [web, alt, charlieT, bravoT, bravoNext] = await Promise.all([
        target({ host: '127.0.98.1', proxy: true, record: true, behave: echo }),
        target({ host: '127.0.98.1', proxy: true, record: true, behave: echo }),
        target({ host: '127.0.98.1', proxy: true, record: true, behave: echo }),
        target({ host: '127.0.98.2', record: true, behave: echo }),
        target({ host: '127.0.98.4', record: true, behave: echo }),
      ]);
      // The listen ports are the Service's own: free ones, and a new set if one was taken meanwhile.
      for (let attempt = 1; ; attempt++) {
        services = {
          alphaWeb: await freePort('127.0.10.1'),
          alphaAlt: await freePort('127.0.10.1'),
          alphaDns: await freePort('127.0.10.1'),
          bravo: await freePort('127.0.98.20'),
          charlie: await freePort('127.0.10.3'),
          nodePorts: { web: web.port, alt: alt.port, charlie: charlieT.port },
          bravoEndpoint: { host: '127.0.98.2', port: bravoT.port },
          charlieProxy: true,
          alphaAltPort: true,
        };
        if (services.alphaWeb === services.alphaAlt) continue;
        writeThree(dir, services);
        lb = startKeepip(['lb', '-f', dir, '--metrics', '127.0.0.1:0']);
        const running = lb;
        cleanup.push(() => running.stop());
        const started = await lb
          .waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/)
          .then((m) => Number(m[1]))
          .catch(() => null);
        if (started !== null) {
          metricsPort = started;
          break;
        }
        if (attempt >= 5 || !/cannot listen on .*EADDRINUSE/.test(lb.output())) {
          throw new Error(`keepip lb -f did not start:\n${lb.output()}`);
        }
      }
    })();
    ready.catch(() => {});
    before(() => ready);

    test('start-up: one listener per TCP port at 127.0.10.N by sorted name or the status IP; UDP skipped; the typo warned with file, document and field', () => {
      const out = lb.output();
      assert.match(
        out,
        new RegExp(`listening on 127\\.0\\.10\\.1:${services.alphaWeb} \\(apps/alpha:web\\)`),
      );
      assert.match(
        out,
        new RegExp(`listening on 127\\.0\\.10\\.1:${services.alphaAlt} \\(apps/alpha:alt\\)`),
      );
      assert.match(out, new RegExp(`listening on 127\\.0\\.98\\.20:${services.bravo} \\(apps/bravo\\)`));
      assert.match(out, new RegExp(`listening on 127\\.0\\.10\\.3:${services.charlie} \\(apps/charlie\\)`));
      assert.doesNotMatch(out, new RegExp(`:${services.alphaDns} `), 'no listener on the UDP port');
      assert.match(
        out,
        /warning: apps\/alpha port dns\/UDP: keepip lb forwards TCP only; skipped \[LB_NO_TCP_PORT\]/,
      );
      assert.match(
        out,
        new RegExp(
          `warning: ${esc(join(dir, 'c-alpha.yaml'))}, document 2 \\(Service apps/alpha\\) metadata\\.annotations\\["service\\.beta\\.kubernetes\\.io/aws-load-balancer-proxy-protocl"\\]: .*\\[UNKNOWN_LB_ANNOTATION\\]`,
        ),
      );
      assert.match(
        out,
        new RegExp(
          `targets: 127\\.0\\.98\\.2:${bravoT.port} \\(1 ready endpoint\\(s\\) of port tcp \\(ip targets\\)\\)`,
        ),
        'the ready endpoint of the EndpointSlice only: not the unready one, not the Endpoints object',
      );
    });

    test('alpha (NLB, instance): the node on each nodePort, PROXY v2 naming the client and the listener, the client’s own address (A1)', async () => {
      const cases = [
        { listen: services.alphaWeb, t: web, from: '127.0.98.50' },
        { listen: services.alphaAlt, t: alt, from: '127.0.98.51' },
      ];
      for (const { listen, t, from } of cases) {
        const { received, localPort } = await exchange(listen, `alpha ${listen}`, {
          host: '127.0.10.1',
          localAddress: from,
        });
        assert.equal(received.toString(), `alpha ${listen}`);
        const flows = clientFlows(t);
        assert.equal(flows.length, 1);
        const flow = flows[0]!;
        assert.equal(flow.header!.version, 2);
        assert.deepEqual(flow.header!.source, { address: from, port: localPort });
        assert.deepEqual(flow.header!.destination, { address: '127.0.10.1', port: listen });
        assert.equal(flow.remoteAddress, from, 'instance targets preserve the client address');
      }
    });

    test('bravo (NLB, ip, preserve_client_ip.enabled=true): the endpoint sees the client, no header', async () => {
      const { received } = await exchange(services.bravo, 'bravo bytes', {
        host: '127.0.98.20',
        localAddress: '127.0.98.52',
      });
      assert.equal(received.toString(), 'bravo bytes');
      const flows = bravoT.accepted.filter((e) => e.remoteAddress === '127.0.98.52');
      assert.equal(flows.length, 1);
      assert.equal(flows[0]!.data().toString(), 'bravo bytes', 'bytes unchanged, no PROXY header');
    });

    test('charlie (Classic ELB): PROXY v1 from 127.0.11.N (N by sorted name); its checks open with PROXY UNKNOWN; headers counted on client flows only', async () => {
      const { received, localPort } = await exchange(services.charlie, 'charlie', {
        host: '127.0.10.3',
        localAddress: '127.0.98.53',
      });
      assert.equal(received.toString(), 'charlie');
      const flows = clientFlows(charlieT);
      assert.equal(flows.length, 1);
      assert.equal(flows[0]!.header!.version, 1);
      assert.equal(flows[0]!.header!.protocol, 'TCP4');
      assert.deepEqual(flows[0]!.header!.source, { address: '127.0.98.53', port: localPort });
      assert.deepEqual(flows[0]!.header!.destination, { address: '127.0.10.3', port: services.charlie });
      assert.equal(flows[0]!.remoteAddress, '127.0.11.3', 'a Classic ELB is a proxy: its own address');
      // The first check runs at start-up.
      const text = await scrapeUntil(
        '127.0.0.1',
        metricsPort,
        (s) => metricSum(s, 'keepip_lb_health_checks_total', { lb: 'apps/charlie', result: 'passed' }) >= 1,
        'charlie’s first check',
      );
      // Counted at connect; its header reaches the target just after.
      const isCheck = (e: Accepted) => e.header?.protocol === 'UNKNOWN';
      await until(() => charlieT.accepted.some(isCheck), 'the check’s header reached the target');
      const check = charlieT.accepted.find(isCheck)!;
      assert.equal(check.header!.version, 1);
      assert.equal(check.remoteAddress, '127.0.11.3', 'checks come from the source address');
      assert.equal(
        metricSum(text, 'keepip_lb_proxy_headers_sent_total', { lb: 'apps/charlie', version: 'v1' }),
        1,
        'the check’s header is not counted',
      );
      // The start-up line names what a v1 check sends (it said LOCAL, a v2 command; found here, fixed).
      assert.match(lb.output(), /apps\/charlie\)\n[\s\S]*?each opened with a PROXY UNKNOWN header/);
    });

    test('metrics: one `lb` per listener; a multi-port Service’s listeners are named by port name (ALLOWED)', async () => {
      const text = await metrics();
      for (const name of ['apps/alpha:web', 'apps/alpha:alt', 'apps/bravo', 'apps/charlie'])
        assert.equal(metricSum(text, 'keepip_lb_flows_total', { lb: name }), 1, name);
      assert.equal(metricSum(text, 'keepip_lb_flows_total', { lb: `apps/alpha:${services.alphaWeb}` }), 0);
      allowedSeen.add('lb-label-port-name');
    });

    test('SIGHUP: new endpoints apply; PROXY settings and a removed listener need a restart', async () => {
      writeThree(dir, {
        ...services,
        charlieProxy: false,
        alphaAltPort: false,
        bravoEndpoint: { host: '127.0.98.4', port: bravoNext.port },
      });
      lb.child.kill('SIGHUP');
      await lb.waitFor(
        new RegExp(
          `reload: apps/alpha port ${services.alphaAlt} is gone from the manifests; restart keepip lb to remove it`,
        ),
      );
      await lb.waitFor(new RegExp(`reload: apps/bravo targets 127\\.0\\.98\\.4:${bravoNext.port}\\n`));
      await lb.waitFor(/reload: apps\/charlie targets /);
      const bravo = await exchange(services.bravo, 'next', {
        host: '127.0.98.20',
        localAddress: '127.0.98.54',
      });
      assert.equal(bravo.received.toString(), 'next');
      assert.equal(bravoNext.accepted.filter((e) => e.remoteAddress === '127.0.98.54').length, 1);
      const charlie = await exchange(services.charlie, 'again', {
        host: '127.0.10.3',
        localAddress: '127.0.98.55',
      });
      assert.equal(charlie.received.toString(), 'again');
      const flows = clientFlows(charlieT);
      assert.equal(flows.length, 2, 'PROXY v1 still on: it needs a restart');
      assert.equal(flows[1]!.header!.version, 1);
      const still = await exchange(services.alphaAlt, 'alt', {
        host: '127.0.10.1',
        localAddress: '127.0.98.56',
      });
      assert.equal(still.received.toString(), 'alt', 'the removed port still listens until a restart');
    });
  });

  // ---------------------------------------------------------------------------------------------------

  /** An AWS NLB Service `drain/svc` with ip targets: the given endpoints (one subset each). */
  function ipService(
    endpoints: readonly { host: string; port: number }[],
    ranges: readonly string[] = [],
    annotations: readonly string[] = [],
  ): string {
    const subsets = endpoints
      .map((e) => `\n  - addresses: [{ ip: ${e.host} }]\n    ports: [{ name: tcp, port: ${e.port} }]`)
      .join('');
    return `apiVersion: v1
kind: Service
metadata:
  name: svc
  namespace: drain
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip${annotations.map((a) => `\n    ${a}`).join('')}
spec:
  type: LoadBalancer
  loadBalancerSourceRanges: [${ranges.join(', ')}]
  ports: [{ name: tcp, port: 7000, targetPort: 7000, protocol: TCP }]
---
apiVersion: v1
kind: Endpoints
metadata: { name: svc, namespace: drain }
subsets:${subsets}
`;
  }

  describe('manifest mode, SIGHUP drains and re-registers (deregistration delay)', { concurrency: 1 }, () => {
    let x: TestTarget;
    let y: TestTarget;
    let file: string;
    let lb: Running;
    let port: number;
    let metricsPort: number;
    const ep = (t: TestTarget) => ({ host: t.host, port: t.port });
    const key = (t: TestTarget) => `${t.host}:${t.port}`;
    let reloads = 0;
    const reload = async (endpoints: TestTarget[]) => {
      writeFileSync(file, ipService(endpoints.map(ep)));
      lb.child.kill('SIGHUP');
      reloads++;
      await lb.waitFor(nth('reload: drain/svc targets', reloads));
    };

    const ready = (async () => {
      [x, y] = await Promise.all([
        target({ host: '127.0.95.1', behave: echo }),
        target({ host: '127.0.95.2', behave: echo }),
      ]);
      file = join(tempDir(), 'svc.yaml');
      writeFileSync(file, ipService([ep(x)]));
      lb = keepip([
        ...['-f', file, '--listen', '127.0.0.1:0', '--health-check', 'none', '--algorithm', 'round-robin'],
        ...['--deregistration-delay', '2s', '--metrics', '127.0.0.1:0'],
      ]);
      port = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+) \(drain\/svc\)/))[1]);
      metricsPort = Number((await lb.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
    })();
    ready.catch(() => {});
    before(() => ready);

    test('command-line options override the manifest (health check, algorithm, delay)', () => {
      const out = lb.output();
      assert.match(out, /health check: none \(every target stays in rotation\)/);
      assert.match(
        out,
        /algorithm: round-robin; idle timeout 350000 ms; connect timeout 10000 ms; deregistration delay 2000 ms/,
      );
    });

    test('a removed target drains; re-added, it is back at once and its flow outlives the delay; the other’s flow is reset at the delay', async () => {
      const onX = await openFlow(port, '127.0.95.50');
      assert.equal(await onX.roundTrip('x1'), 'x1');
      assert.equal(x.accepted.length, 1);

      await reload([y]);
      await lb.waitFor(
        new RegExp(`target ${esc(key(x))} deregistering: 1 flow\\(s\\) may finish within 2000 ms`),
      );
      const [where] = await landedOn({ x, y }, () => exchange(port, 'new', { localAddress: '127.0.95.51' }));
      assert.equal(where, 'y', 'a draining target gets no new flow');
      assert.equal(await onX.roundTrip('x2'), 'x2', 'its open flow runs on');

      await reload([x, y]);
      await lb.waitFor(new RegExp(`target ${esc(key(x))} registered again`));
      const targets = { x, y };
      const seen = new Set<string>();
      let onY: OpenFlow | null = null;
      for (const from of ['127.0.95.52', '127.0.95.53']) {
        const [w, f] = await landedOn(targets, async () => {
          const flow = await openFlow(port, from);
          assert.equal(await flow.roundTrip('rr'), 'rr');
          return flow;
        });
        seen.add(w);
        if (w === 'y') onY = f;
        else f.socket.destroy();
      }
      assert.deepEqual([...seen].sort(), ['x', 'y'], 'x is back in service at once');

      // y drains now, with the same delay as x's, which started earlier: y's delay ending proves x's
      // (had it not been cancelled) would have ended before.
      await reload([x]);
      await lb.waitFor(new RegExp(`target ${esc(key(y))}: deregistration delay over, closing 1 flow\\(s\\)`));
      assert.equal(await onY!.ended, 'reset', 'the drained flow is reset at the delay');
      assert.equal(await onX.roundTrip('x3'), 'x3', 'the re-registered target’s flow was not cut');
      assert.doesNotMatch(lb.output(), new RegExp(`target ${esc(key(x))}: deregistration delay over`));
      const text = await scrapeUntil(
        '127.0.0.1',
        metricsPort,
        (s) => metricSum(s, 'keepip_lb_flows_ended_total', { reason: 'aborted' }) === 1,
        'the drained flow counted as aborted',
      );
      assert.equal(metricSum(text, 'keepip_lb_flows_active'), 1, 'only the re-registered target’s flow');
    });
  });

  const PRESERVE =
    'service.beta.kubernetes.io/aws-load-balancer-target-group-attributes: preserve_client_ip.enabled=true';

  describe('manifest mode, --target pins the targets over SIGHUP; --no-preserve-client-ip', {
    concurrency: 1,
  }, () => {
    let pinned: TestTarget;
    let manifestT: TestTarget;
    let next: TestTarget;
    let file: string;
    let lb: Running;
    let port: number;
    const pinManifest = (t: TestTarget, range: string) =>
      ipService([{ host: t.host, port: t.port }], [range], [PRESERVE]);
    const ready = (async () => {
      [pinned, manifestT, next] = await Promise.all([
        target({ host: '127.0.94.1', behave: echo }),
        target({ host: '127.0.94.2', behave: echo }),
        target({ host: '127.0.94.3', behave: echo }),
      ]);
      file = join(tempDir(), 'svc.yaml');
      writeFileSync(file, pinManifest(manifestT, '127.0.94.0/28'));
      lb = keepip([
        ...['-f', file, '--listen', '127.0.0.1:0', '--target', `${pinned.host}:${pinned.port}`],
        ...['--health-check', 'none', '--no-preserve-client-ip'],
      ]);
      port = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+) \(drain\/svc\)/))[1]);
      await lb.waitFor(/algorithm: /);
    })();
    ready.catch(() => {});
    before(() => ready);

    test('the manifests’ new endpoints and ranges: the ranges apply, the targets stay the --target ones', async () => {
      assert.match(lb.output(), /targets: 127\.0\.94\.1:\d+ \(1 target\(s\) from --target\)/);
      const targets = { pinned, manifestT, next };
      const [first] = await landedOn(targets, () => exchange(port, 'a', { localAddress: '127.0.94.10' }));
      assert.equal(first, 'pinned');
      assert.match(lb.output(), /source address: 127\.0\.11\.1; client IP preservation: off/);
      assert.equal(
        pinned.accepted[0]!.remoteAddress,
        '127.0.11.1',
        '--no-preserve-client-ip over the attribute',
      );
      writeFileSync(file, pinManifest(next, '127.0.94.16/28'));
      lb.child.kill('SIGHUP');
      // The ranges are applied, then the targets would be, in the same turn: a flow accepted after the
      // ranges line meets whatever the reload did to the targets.
      await lb.waitFor(/reload: drain\/svc source ranges 127\.0\.94\.16\/28\n/);
      const [afterReload] = await landedOn(targets, () =>
        exchange(port, 'b', { localAddress: '127.0.94.20' }),
      );
      assert.equal(afterReload, 'pinned', '--target pins the targets');
    });
  });

  // ---------------------------------------------------------------------------------------------------

  describe('exit codes', { concurrency: 1 }, () => {
    const ready = (async () => {
      const held = net.createServer();
      await new Promise<void>((resolve) => held.listen(0, '127.0.93.1', resolve));
      cleanup.push(() => new Promise<void>((resolve) => held.close(() => resolve())));
      const busy = `127.0.93.1:${(held.address() as net.AddressInfo).port}`;
      const dir = tempDir();
      const twoPorts = join(dir, 'two.yaml');
      writeFileSync(
        twoPorts,
        `${ipService([{ host: '127.0.93.2', port: 9 }])}---
apiVersion: v1
kind: Service
metadata: { name: other, namespace: drain }
spec:
  type: LoadBalancer
  ports: [{ name: a, port: 7001, nodePort: 31001 }, { name: b, port: 7002, nodePort: 31002 }]
`,
      );
      const badSlice = join(dir, 'bad.yaml');
      writeFileSync(
        badSlice,
        `${ipService([{ host: '127.0.93.2', port: 9 }])}---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: svc-x, namespace: drain, labels: { kubernetes.io/service-name: svc } }
addressType: IPv4
endpoints: [{ addresses: [127.0.93.300] }]
ports: [{ name: tcp, port: 9 }]
`,
      );
      const target = ['--target', '127.0.93.2:9'];
      const cases: [string[], RegExp][] = [
        [['lb', '--listen', busy, ...target], new RegExp(`cannot listen on ${esc(busy)}: .*EADDRINUSE`)],
        [['lb', '--listen', '127.0.93.1:0', ...target, '--metrics', busy], /cannot serve metrics on /],
        [['lb', '-f', twoPorts, '--listen', '127.0.0.1:0'], /\[LB_LISTEN_AMBIGUOUS\]/],
        [
          ['lb', '-f', twoPorts, '--service', 'drain/nope'],
          /no LoadBalancer Service drain\/nope .*\[LB_SERVICE_NOT_FOUND\]/,
        ],
        [
          ['lb', '-f', badSlice, '--listen', '127.0.0.1:0'],
          /"127\.0\.93\.300" is not an IP address.*\[MANIFEST_INVALID_FIELD\]/,
        ],
      ];
      const results = await Promise.all(cases.map(([args]) => runKeepip(args, { timeoutMs: 30_000 })));
      return cases.map(([args, message], i) => ({ args, message, result: results[i]! }));
    })();
    ready.catch(() => {});

    test('1: a listen error, a metrics listen error, --listen for several listeners, an unknown --service, a bad EndpointSlice', async () => {
      for (const { args, message, result } of await ready) {
        assert.equal(result.code, 1, `${args.join(' ')}\n${result.stderr}`);
        assert.match(result.stderr, message);
      }
    });
  });
});

test('every ALLOWED difference was met', () => {
  assert.deepEqual([...allowedSeen].sort(), Object.keys(ALLOWED).sort());
});
