// `keepip lb` (the NLB's role) attacked from both ends: hostile TARGETS answering health checks
// (endless headers and bodies, a 200 trickled past the deadline, 1xx floods, redirects, TCP checks
// accepted and held or reset, one hung check next to a live one, a target that turns unhealthy under
// an open flow), and hostile CLIENTS (a client that never reads while the target floods, half-open
// flows left idle, FIN then RST, storms from outside the source ranges, IPv4 clients on a dual-stack
// listener against loadBalancerSourceRanges). HAProxy `mode tcp` is the differential peer where the
// NLB's documentation says nothing. Not here (see test/lb/*, lb-attack.test.ts): a forged client
// PROXY header, 200 resetting clients, garbage / hung / 5 KiB status lines, fail-open, the basic
// idle timeout and resets, a target that stops reading, and SIGHUP reloads.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { HealthCheckModel } from '../../src/config/model.ts';
import { blockingIssues } from '../../src/gateway/snapshot.ts';
import type { RunningLb } from '../../src/lb/balancer.ts';
import { startHaproxy } from '../helpers/haproxy.ts';
import { topologyFromYaml } from './helpers.ts';
import { echo, exchange, type TestTarget, until, lbTestScope } from '../lb/helpers.ts';

const { cleanup, target, lb } = lbTestScope();

const MIB = 1024 * 1024;

const httpCheck = (over: Partial<HealthCheckModel> = {}): HealthCheckModel => ({
  protocol: 'http',
  port: 'traffic-port',
  path: '/healthz',
  intervalMs: 50,
  timeoutMs: 300,
  healthyThreshold: 1,
  unhealthyThreshold: 1,
  ...over,
});

const healthOf = (balancer: RunningLb, t: { port: number }) =>
  balancer.targetHealth().find((h) => h.port === t.port)!;

/** What happened to a socket, in order: 'end', 'error CODE', 'close'. */
function events(socket: net.Socket): string[] {
  const seen: string[] = [];
  socket.on('end', () => seen.push('end'));
  socket.on('error', (e: NodeJS.ErrnoException) => seen.push(`error ${e.code ?? e.message}`));
  socket.on('close', () => seen.push('close'));
  return seen;
}

/** A client connection to `port` (half-open allowed), its events recorded, once connected. */
async function connectClient(
  port: number,
  localAddress?: string,
  host = '127.0.0.1',
): Promise<{ socket: net.Socket; seen: string[] }> {
  const socket = net.connect({
    host,
    port,
    allowHalfOpen: true,
    ...(localAddress === undefined ? {} : { localAddress }),
  });
  const seen = events(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, seen };
}

/** Writes `chunk` over and over while the peer takes it; `blocked` counts the writes that had to wait. */
function flood(socket: net.Socket, chunk: Buffer): { written: () => number; blocked: () => number } {
  let written = 0;
  let blocked = 0;
  const pump = () => {
    while (!socket.destroyed && socket.writable) {
      written += chunk.length;
      if (!socket.write(chunk)) {
        blocked++;
        socket.once('drain', pump);
        return;
      }
    }
  };
  pump();
  return { written: () => written, blocked: () => blocked };
}

/**
 * A target whose health-check connections (a first read starting "GET /healthz") get `answer`
 * (null: never answered) and whose other connections are echoed.
 */
function checkAware(answer: ((s: net.Socket) => void) | null): Promise<TestTarget> {
  return target({
    behave(socket) {
      socket.once('data', (chunk: Buffer) => {
        if (chunk.toString('latin1').startsWith('GET /healthz')) answer?.(socket);
        else echo(socket, chunk);
      });
    },
  });
}

// ---------------------------------------------------------------------------------------------------
// Hostile targets answering health checks.

test('HTTP check: a 200 followed by endless headers or an endless body passes, and the check hangs up on it', async () => {
  for (const tail of ['X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n', 'b'.repeat(4096)]) {
    const writers: net.Socket[] = [];
    const t = await target({
      behave(socket) {
        socket.once('data', () => {
          writers.push(socket);
          socket.write('HTTP/1.1 200 OK\r\n');
          if (tail.startsWith('X-')) flood(socket, Buffer.from(tail.repeat(64)));
          else flood(socket, Buffer.from(`Content-Length: 99999999999\r\n\r\n${tail}`));
        });
      },
    });
    const balancer = await lb({ targets: [t], healthCheck: httpCheck({ timeoutMs: 10_000 }) });
    await until(() => healthOf(balancer, t).checks >= 3, 'three checks ran');
    assert.equal(healthOf(balancer, t).status, 'healthy');
    assert.equal(healthOf(balancer, t).lastError, null);
    // Each check closed its connection once it had the status line: far before its 10 s deadline,
    // the flooding target's connections are gone (none is held open reading the endless answer).
    await Promise.all(t.accepted.slice(0, 3).map((a) => a.closed));
    assert.ok(writers.length >= 3);
    await balancer.close();
  }
});

test('HTTP check: a "200 OK" trickled a byte at a time past the timeout fails on its own deadline', async () => {
  const t = await target({
    behave(socket) {
      socket.once('data', () => {
        const line = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
        let i = 0;
        // The hostile peer: one byte every 60 ms, so the whole 200 would take ~2.4 s.
        const timer = setInterval(() => {
          if (i >= line.length || socket.destroyed) clearInterval(timer);
          else socket.write(line.subarray(i, ++i));
        }, 60);
        socket.once('close', () => clearInterval(timer));
      });
    },
  });
  const good = await target({
    behave: (s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')),
  });
  const balancer = await lb({ targets: [t, good], healthCheck: httpCheck({ timeoutMs: 300 }) });
  await until(() => healthOf(balancer, t).status === 'unhealthy', 'the trickling target is unhealthy');
  assert.equal(healthOf(balancer, t).lastError, 'timeout after 300 ms');
  assert.equal(healthOf(balancer, good).status, 'healthy');
});

test('HTTP check: a 1xx flood (100 Continue x 2,000, then 200) never makes the target healthy, bounded', async () => {
  const interim = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n'.repeat(2000));
  const t = await target({
    behave(socket) {
      socket.once('data', () => {
        socket.write(interim);
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
      });
    },
  });
  const balancer = await lb({ targets: [t], healthCheck: httpCheck({ unhealthyThreshold: 2 }) });
  await until(() => healthOf(balancer, t).status === 'unhealthy', 'the 1xx target is unhealthy');
  assert.equal(healthOf(balancer, t).lastError, 'HTTP 100');
  // Fail-open: the only target is still used, so the service is not taken down by a bad check.
  assert.equal(balancer.failingOpen(), true);
});

test('HTTP check: a 302 counts as healthy (NLB 200-399) and its Location is never followed', async () => {
  const elsewhere = await target({ behave: (s) => s.end('HTTP/1.1 200 OK\r\n\r\n') });
  const t = await target({
    behave(socket) {
      socket.once('data', () =>
        socket.end(
          `HTTP/1.1 302 Found\r\nLocation: http://${elsewhere.host}:${elsewhere.port}/x\r\nContent-Length: 0\r\n\r\n`,
        ),
      );
    },
  });
  const balancer = await lb({ targets: [t], healthCheck: httpCheck() });
  await until(() => healthOf(balancer, t).checks >= 3, 'three checks ran');
  assert.equal(healthOf(balancer, t).status, 'healthy');
  assert.equal(elsewhere.accepted.length, 0, 'the check never went where the redirect pointed');
});

test('TCP check: accept-and-hold passes and is hung up within the timeout; accept-and-RST never stalls the checks', async () => {
  // Holds every check connection open, and pokes it every 50 ms: a write to a connection the LB has
  // closed is answered with a reset, which is how the target learns the LB let go.
  const hold = await target({
    behave(socket) {
      const timer = setInterval(() => socket.write('x'), 50);
      socket.once('close', () => clearInterval(timer));
    },
  });
  const rst = await target({ behave: (s) => s.resetAndDestroy() });
  const balancer = await lb({
    targets: [hold, rst],
    healthCheck: httpCheck({ protocol: 'tcp', path: '/', timeoutMs: 200 }),
  });
  await until(
    () => healthOf(balancer, hold).checks >= 5 && healthOf(balancer, rst).checks >= 5,
    'five checks of each ran',
  );
  assert.equal(healthOf(balancer, hold).status, 'healthy');
  // An NLB's TCP check passes on the handshake; keepip sees the reset that follows it on loopback
  // before its connect callback (ECONNRESET) and may count it failed: the safe side, never an error.
  assert.ok([null, 'ECONNRESET'].includes(healthOf(balancer, rst).lastError));
  // The held check connections do not pile up: each is closed within the check timeout, so the
  // holding target sees its first ones close while later checks go on.
  await Promise.all(hold.accepted.slice(0, 3).map((a) => a.closed));
});

test('a check that hangs on one target does not delay the other target’s checks or any flow', async () => {
  const hung = await checkAware(null); // reads the GET, never answers
  const good = await checkAware((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
  const balancer = await lb({
    targets: [hung, good],
    algorithm: 'round-robin',
    healthCheck: httpCheck({ timeoutMs: 15_000 }),
  });
  await until(() => healthOf(balancer, good).checks >= 5, 'the good target was checked five times');
  // The hung target's first check is still waiting on its 15 s deadline.
  assert.equal(healthOf(balancer, hung).checks, 0);
  // Both are in rotation (the hung one has not failed yet); flows to either are served.
  for (const word of ['one', 'two']) {
    const { received } = await exchange(balancer.address.port, word);
    assert.equal(received.toString(), word);
  }
});

test('HTTP check: a 100 KB status line (CRLF only at its end) fails without being buffered whole', async () => {
  const t = await checkAware((s) => s.end(`HTTP/1.1 200 ${'r'.repeat(100 * 1024)}\r\n\r\n`));
  const balancer = await lb({ targets: [t], healthCheck: httpCheck({ unhealthyThreshold: 2 }) });
  await until(() => healthOf(balancer, t).status === 'unhealthy', 'the target is unhealthy');
  // No single read holds 100 KB (64 KiB at most), so the 4 KiB cap always trips first.
  assert.equal(healthOf(balancer, t).lastError, 'no HTTP status line');
});

test('a flapping target (200, 500, 200, ...) under thresholds of 2 never leaves rotation and logs no change', async () => {
  let n = 0;
  const t = await checkAware((s) =>
    s.end(n++ % 2 === 0 ? 'HTTP/1.1 200 OK\r\n\r\n' : 'HTTP/1.1 500 Flap\r\n\r\n'),
  );
  const lines: string[] = [];
  const balancer = await lb({
    targets: [t],
    healthCheck: httpCheck({ healthyThreshold: 2, unhealthyThreshold: 2 }),
    log: (line) => lines.push(line),
  });
  await until(() => healthOf(balancer, t).checks >= 10, 'ten checks ran');
  assert.equal(healthOf(balancer, t).status, 'healthy');
  assert.deepEqual(
    lines.filter((l) => /healthy|fail/.test(l)),
    [],
  );
});

test('an open flow on a target that turns unhealthy is reset at its next packet, as an NLB does (not failing open)', async () => {
  let aHealthy = true;
  const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';
  const a = await checkAware((s) => s.end(aHealthy ? ok : 'HTTP/1.1 503 Down\r\n\r\n'));
  const b = await checkAware((s) => s.end(ok));
  const balancer = await lb({ targets: [a, b], algorithm: 'round-robin', healthCheck: httpCheck() });
  // Round-robin starts with the first target: this flow is on a.
  const client = await connectClient(balancer.address.port);
  const got: Buffer[] = [];
  client.socket.on('data', (c: Buffer) => got.push(c));
  client.socket.write('before');
  await until(() => Buffer.concat(got).toString() === 'before', 'the flow to a works');
  assert.equal(balancer.targetHealth().find((h) => h.port === a.port)?.activeFlows, 1);
  aHealthy = false;
  await until(() => healthOf(balancer, a).status === 'unhealthy', 'a is unhealthy');
  assert.equal(balancer.failingOpen(), false, 'b is healthy: no fail-open');
  // An NLB answers the next packets of the client connections on a target that became unhealthy with
  // a TCP RST, unless that makes it fail open (target-group-health-checks.html; the attribute
  // target_health_state.unhealthy.connection_termination.enabled defaults to true). keepip resets
  // them as the target turns unhealthy; the client's next write would meet the reset.
  client.socket.write('after');
  const text = () => Buffer.concat(got).toString();
  // Either the client is reset, or the unhealthy target's echo of "after" comes back.
  await until(() => client.seen.includes('close') || text() === 'beforeafter', 'a reset or the echo');
  assert.equal(text(), 'before', 'the unhealthy target still served the open flow (it echoed "after")');
  assert.match(client.seen[0] ?? '', /^error (ECONNRESET|EPIPE)$/, client.seen.join(' '));
  client.socket.destroy();
});

test('with connection termination off (the target group attribute), an open flow outlives its target turning unhealthy', async () => {
  let aHealthy = true;
  const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';
  const a = await checkAware((s) => s.end(aHealthy ? ok : 'HTTP/1.1 503 Down\r\n\r\n'));
  const b = await checkAware((s) => s.end(ok));
  const balancer = await lb({
    targets: [a, b],
    algorithm: 'round-robin',
    healthCheck: httpCheck(),
    unhealthyConnectionTermination: false,
  });
  const client = await connectClient(balancer.address.port);
  const got: Buffer[] = [];
  client.socket.on('data', (c: Buffer) => got.push(c));
  client.socket.write('before');
  await until(() => Buffer.concat(got).toString() === 'before', 'the flow to a works');
  aHealthy = false;
  await until(() => healthOf(balancer, a).status === 'unhealthy', 'a is unhealthy');
  client.socket.write('after');
  await until(() => Buffer.concat(got).toString() === 'beforeafter', 'the echo of the open flow');
  assert.deepEqual(client.seen, []);
  client.socket.destroy();
});

// ---------------------------------------------------------------------------------------------------
// Hostile clients.

test('a client that never reads while the target floods: the LB stops reading the target, then resets both at the idle timeout', async () => {
  let stream: ReturnType<typeof flood> | null = null;
  let targetSeen: string[] = [];
  const t = await target({
    behave(socket) {
      targetSeen = events(socket);
      stream = flood(socket, Buffer.alloc(64 * 1024, 0x5a));
    },
  });
  const balancer = await lb({ targets: [t], idleTimeoutMs: 1_000 });
  const client = await connectClient(balancer.address.port);
  client.socket.pause(); // never reads
  // Nothing moves once the buffers are full, so the idle timeout is what ends the flow.
  await until(() => targetSeen.includes('close'), 'the target side is closed');
  assert.equal(balancer.stats().flowsEnded.idle, 1);
  // The client notices the reset once it reads again.
  client.socket.resume();
  await until(() => client.seen.includes('close'), 'the client side is closed');
  assert.ok(client.seen.includes('error ECONNRESET'), `${client.seen}`);
  assert.ok(targetSeen.includes('error ECONNRESET') || targetSeen.includes('error EPIPE'), `${targetSeen}`);
  // Backpressure reached the target (its writes had to wait), and what the LB took from it is
  // bounded by socket buffers, not by what the target wanted to send.
  const s = stream as ReturnType<typeof flood> | null;
  assert.ok(s !== null && s.blocked() > 0, 'the target was made to wait');
  const taken = balancer.stats().bytesToClient;
  assert.ok(taken > 0 && taken < 32 * MIB, `the LB read ${taken} bytes for a client that read none`);
});

test('a half-open flow left idle (client FIN, silent target) ends at the idle timeout; the target’s next write is reset', async () => {
  let targetSeen: string[] = [];
  let targetSocket: net.Socket | null = null;
  const t = await target({
    behave(socket) {
      targetSocket = socket;
      targetSeen = events(socket);
    },
  });
  const balancer = await lb({ targets: [t], idleTimeoutMs: 300 });
  const client = await connectClient(balancer.address.port);
  client.socket.end();
  await until(() => targetSeen.includes('end'), 'the FIN reached the target');
  await until(() => balancer.stats().flowsEnded.idle === 1, 'the idle end is counted');
  await until(() => client.seen.includes('close'), 'the client connection is closed');
  assert.deepEqual(client.seen, ['error ECONNRESET', 'close']);
  assert.equal(balancer.stats().flowsActive, 0);
  // The LB had already sent the target a FIN, so it closes that side plainly; like an NLB after its
  // idle timeout, it answers the target's next packets with a reset.
  const ts = targetSocket as net.Socket | null;
  const timer = setInterval(() => ts?.write('late'), 50);
  await until(() => targetSeen.includes('close'), 'the target learns the flow is gone');
  clearInterval(timer);
  assert.ok(
    targetSeen.some((e) => e === 'error EPIPE' || e === 'error ECONNRESET'),
    `${targetSeen}`,
  );
});

/** Client FIN, then RST, then the target writes: how the proxy on `port` ends the target's side. */
async function finThenReset(t: TestTarget, port: number, seen: () => string[]): Promise<string[]> {
  const client = await connectClient(port);
  await until(() => t.accepted.length > 0, 'the target has the connection');
  const accepted = t.accepted.at(-1)!;
  client.socket.end();
  await until(() => seen().includes('end'), 'the FIN reached the target');
  client.socket.resetAndDestroy();
  // Nothing is read on the client side after its FIN (neither keepip nor HAProxy sees the RST then):
  // the target's next writes are what find the connection gone.
  const timer = setInterval(() => accepted.socket.write('x'), 50);
  await until(() => seen().includes('close'), 'the target side is closed');
  clearInterval(timer);
  return seen().filter((e) => e !== 'error ECONNRESET' && e !== 'error EPIPE');
}

test('client FIN then RST: the target’s next write ends the flow at once, as with HAProxy mode tcp', async () => {
  let seen: string[] = [];
  const t = await target({
    behave(socket) {
      seen = events(socket);
    },
  });
  const balancer = await lb({ targets: [t], idleTimeoutMs: 60_000 });
  assert.deepEqual(await finThenReset(t, balancer.address.port, () => seen), ['end', 'close']);
  await until(() => balancer.stats().flowsActive === 0, 'the flow has ended');
  assert.equal(balancer.stats().flowsEnded['client-reset'], 1);
  assert.equal(balancer.stats().flowsEnded.idle, undefined, 'not left to the idle timeout');

  let hapSeen: string[] = [];
  const t2 = await target({
    behave(socket) {
      hapSeen = events(socket);
    },
  });
  const haproxy = await startHaproxy({
    freePorts: 1,
    config: (_dir, [port]) => `listen l\n  bind 127.0.0.1:${port}\n  server t 127.0.0.1:${t2.port}\n`,
    waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
  });
  cleanup.push(() => haproxy.stop());
  assert.deepEqual(await finThenReset(t2, haproxy.ports[0]!, () => hapSeen), ['end', 'close']);
});

test('a storm of 500 connections from outside loadBalancerSourceRanges: every one reset, none reaches a target, none left open', async () => {
  const t = await target({ record: true, behave: echo });
  const balancer = await lb({ targets: [t], allowedSources: ['127.0.20.0/28'] });
  const N = 500;
  const outcomes = await Promise.all(
    Array.from(
      { length: N },
      (_, i) =>
        new Promise<string>((resolve) => {
          // 127.0.21.x and 127.0.22.x: outside the range, many source addresses.
          const s = net.connect({
            host: '127.0.0.1',
            port: balancer.address.port,
            localAddress: `127.0.${21 + (i % 2)}.${1 + (i % 250)}`,
          });
          s.on('connect', () => s.write('let me in'));
          s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
          s.on('close', () => resolve('closed'));
        }),
    ),
  );
  assert.ok(
    outcomes.every((o) => o === 'ECONNRESET' || o === 'closed'),
    `outcomes: ${[...new Set(outcomes)]}`,
  );
  // Accepts are taken in order: a client inside the range served afterwards means the storm is done.
  const { received } = await exchange(balancer.address.port, 'inside', { localAddress: '127.0.20.9' });
  assert.equal(received.toString(), 'inside');
  assert.equal(balancer.stats().flowsRejected['source-range'], N);
  assert.equal(balancer.stats().flowsTotal, 1);
  assert.equal(t.accepted.length, 1, 'only the inside client reached the target');
  await until(() => balancer.stats().flowsActive === 0, 'no flow left open');
});

test('dual-stack listener: IPv4 clients (arriving as ::ffff:a.b.c.d) meet IPv4 ranges; ::/0 admits no IPv4 client', async () => {
  const t = await target({ proxy: true, record: true, behave: echo });
  const v4 = await lb({
    targets: [t],
    listen: { host: '::', port: 0 },
    proxyProtocol: 'v2',
    allowedSources: ['127.0.20.0/28', '::ffff:127.0.23.0/124'],
  });
  for (const [from, admitted] of [
    ['127.0.20.5', true],
    ['127.0.20.66', false],
    ['127.0.23.7', true], // the IPv4-mapped form of a range is the same IPv4 range, as Go's IPNet reads it
    ['127.0.23.17', false],
  ] as const) {
    const outcome = await exchange(v4.address.port, 'hi', { localAddress: from }).then(
      (r) => r.received.toString(),
      (error: NodeJS.ErrnoException) => error.code ?? 'error',
    );
    if (admitted) {
      assert.equal(outcome, 'hi', from);
      const header = t.accepted.at(-1)?.header;
      assert.equal(header?.protocol, 'TCP4', `${from}: the header names an IPv4 client`);
      assert.deepEqual((header?.source as { address?: string } | undefined)?.address, from);
    } else assert.ok(outcome === '' || outcome === 'ECONNRESET', `${from} got ${outcome}`);
  }
  assert.equal(v4.stats().flowsRejected['source-range'], 2);

  const v6only = await lb({ targets: [t], listen: { host: '::', port: 0 }, allowedSources: ['::/0'] });
  const seen = t.accepted.length;
  const outcome = await exchange(v6only.address.port, 'hi', { localAddress: '127.0.0.1' }).then(
    (r) => r.received.toString(),
    (error: NodeJS.ErrnoException) => error.code ?? 'error',
  );
  assert.ok(outcome === '' || outcome === 'ECONNRESET', `an IPv4 client through ::/0 got ${outcome}`);
  assert.equal(t.accepted.length, seen);
  assert.equal(v6only.stats().flowsRejected['source-range'], 1);
});

test('manifests: a loadBalancerSourceRanges list whose only entry is invalid is a blocking error, never an open LB', () => {
  const service = (extra: string) => `apiVersion: v1
kind: Service
metadata:
  name: lb
  namespace: ingress-nginx
${extra}
spec:
  type: LoadBalancer
  selector: {app: x}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}]
${extra === '' ? '  loadBalancerSourceRanges: ["10.0.0.0/33"]' : ''}
---
`;
  for (const extra of [
    '',
    '  annotations:\n    service.beta.kubernetes.io/load-balancer-source-ranges: "10.0.0.0/8/8"',
  ]) {
    const topology = topologyFromYaml(service(extra));
    // The model drops the entry, which leaves an empty list: "everyone". What keeps that from being
    // served is the error: `keepip lb -f` and `keepip up` refuse manifests with it.
    assert.deepEqual(topology.loadBalancers[0]?.loadBalancerSourceRanges, []);
    const blocking = blockingIssues(topology.issues).filter((i) => i.code === 'INVALID_LB_SOURCE_RANGE');
    assert.equal(blocking.length, 1, extra);
    assert.equal(blocking[0]!.origin?.kind, 'Service');
  }
});
