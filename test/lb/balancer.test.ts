// The engine over real sockets: health checks take a dead target out and put it back, fail-open,
// LOCAL headers on checks, each algorithm's distribution, source address and preservation,
// deregistration delay, and the Prometheus metrics.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import type { HealthCheckModel } from '../../src/config/model.ts';
import type { RunningLb } from '../../src/lb/balancer.ts';
import { createSelectionPolicy } from '../../src/lb/selection.ts';
import { echo, exchange, type TestTarget, until, lbTestScope } from './helpers.ts';

const { cleanup, target, lb } = lbTestScope();

const fastCheck = (over: Partial<HealthCheckModel> = {}): HealthCheckModel => ({
  protocol: 'tcp',
  port: 'traffic-port',
  path: '/',
  intervalMs: 30,
  // Generous: a dead target fails at once (refused), so only a stalled machine could reach it.
  timeoutMs: 5_000,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
  ...over,
});

/** Which target (by port) served each of `n` sequential connections (each flow ends before the next). */
async function servedBy(balancer: RunningLb, targets: TestTarget[], n: number, localAddress?: string) {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const before = targets.map((t) => t.accepted.length);
    const active = balancer.stats().flowsActive;
    await exchange(balancer.address.port, 'x', localAddress ? { localAddress } : {});
    // least-conn counts active flows: let the LB see this one end before the next starts.
    await until(() => balancer.stats().flowsActive === active, 'the flow has ended');
    const which = targets.findIndex((t, k) => t.accepted.length > before[k]!);
    ports.push(targets[which]!.port);
  }
  return ports;
}

test('a dead target leaves rotation after unhealthyThreshold failures and returns after healthyThreshold passes', async () => {
  const a = await target();
  // b on an address no other test listens on, so that its port is still free when b comes back.
  const b = await target({ host: '127.0.0.62', behave: echo });
  const bPort = b.port;
  const balancer = await lb({ targets: [a, b], algorithm: 'round-robin', healthCheck: fastCheck() });
  await until(() => balancer.targetHealth().every((t) => t.checks >= 1), 'first checks ran');
  await b.close(); // b dies
  await until(
    () => balancer.targetHealth().find((t) => t.port === bPort)?.status === 'unhealthy',
    'b is marked unhealthy',
  );
  const served = await servedBy(balancer, [a], 6);
  assert.deepEqual(new Set(served), new Set([a.port]), 'only a serves while b is down');
  assert.equal(balancer.failingOpen(), false);

  // b comes back on the same port.
  const revived = net.createServer((s) => s.pipe(s));
  await new Promise<void>((resolve, reject) => {
    revived.once('error', reject);
    revived.listen(bPort, '127.0.0.62', resolve);
  });
  cleanup.push(() => new Promise((r) => revived.close(r)));
  await until(
    () => balancer.targetHealth().find((t) => t.port === bPort)?.status === 'healthy',
    'b is healthy again',
  );
  const health = balancer.targetHealth().find((t) => t.port === bPort)!;
  assert.equal(health.inRotation, true);
  assert.ok(health.checks >= 4);
});

test('when every target is unhealthy the LB fails open and sends traffic to all of them', async () => {
  // Targets that accept traffic but fail their HTTP check (503): the check is wrong, the service is not.
  const failing = () =>
    target({
      behave(socket) {
        socket.once('data', (chunk: Buffer) => {
          if (chunk.toString().startsWith('GET /healthz'))
            socket.end('HTTP/1.1 503 Service Unavailable\r\n\r\n');
          else socket.end(chunk);
        });
      },
    });
  const a = await failing();
  const b = await failing();
  const balancer = await lb({
    targets: [a, b],
    algorithm: 'round-robin',
    healthCheck: fastCheck({ protocol: 'http', path: '/healthz' }),
  });
  await until(() => balancer.targetHealth().every((t) => t.status === 'unhealthy'), 'both unhealthy');
  assert.equal(balancer.failingOpen(), true);
  assert.ok(balancer.targetHealth().every((t) => t.inRotation && t.lastError === 'HTTP 503'));
  const { received } = await exchange(balancer.address.port, 'still served');
  assert.equal(received.toString(), 'still served');
});

test('HTTP checks pass on 200-399; with PROXY on, every check opens with a LOCAL header', async () => {
  const paths: string[] = [];
  const t = await target({
    proxy: true,
    behave(socket, rest) {
      const text = rest.toString();
      if (text.startsWith('GET ')) {
        paths.push(text.split(' ')[1]!);
        socket.end('HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n');
      } else echo(socket, rest);
    },
  });
  const balancer = await lb({
    targets: [t],
    proxyProtocol: 'v2',
    healthCheck: fastCheck({ protocol: 'http', path: '/ready', unhealthyThreshold: 1 }),
  });
  await until(() => balancer.targetHealth()[0]!.checks >= 3, 'three checks ran');
  assert.equal(balancer.targetHealth()[0]!.status, 'healthy');
  await balancer.close(); // no check in flight while we look at what arrived
  await Promise.all(t.accepted.map((a) => a.closed));
  assert.ok(paths.length >= 3 && paths.every((p) => p === '/ready'));
  const checks = t.accepted.filter((a) => a.header?.command === 'LOCAL');
  assert.ok(checks.length >= 3, 'checks carried LOCAL headers');
  assert.ok(
    t.accepted.every((a) => a.header !== null),
    'no connection without a header',
  );
});

test('round-robin and least-conn distribute as specified over real connections', async () => {
  const targets = [await target(), await target(), await target()];
  const rr = await lb({ targets, algorithm: 'round-robin' });
  const served = await servedBy(rr, targets, 6);
  assert.deepEqual(served, [...targets.map((t) => t.port), ...targets.map((t) => t.port)]);

  // least-conn: hold two flows open on the first two targets; the next ones go to the idle third.
  const held: TestTarget[] = [await target({ behave: () => {} }), await target({ behave: () => {} })];
  const third = await target();
  const lc = await lb({ targets: [...held, third], algorithm: 'least-conn' });
  const open: net.Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const s = net.connect({ host: '127.0.0.1', port: lc.address.port });
    s.on('error', () => {});
    open.push(s);
  }
  await until(() => held.every((t) => t.accepted.length === 1), 'each held target has one flow');
  const next = await servedBy(lc, [...held, third], 3);
  assert.deepEqual(next, [third.port, third.port, third.port]);
  for (const s of open) s.destroy();
});

test('flow-hash sends each client 5-tuple where the hash says, and spreads distinct clients', async () => {
  const targets = [await target(), await target(), await target()];
  const balancer = await lb({ targets, algorithm: 'flow-hash' });
  const policy = createSelectionPolicy('flow-hash');
  const candidates = targets.map((t) => ({ key: `127.0.0.1:${t.port}`, activeFlows: 0 }));
  const seen = new Set<number>();
  for (let i = 0; i < 30; i++) {
    const before = targets.map((t) => t.accepted.length);
    const localAddress = `127.0.${40 + i}.1`;
    const { localPort } = await new Promise<{ localPort: number }>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: balancer.address.port, localAddress });
      s.on('connect', () => {
        const port = s.localPort!;
        s.end('x');
        s.on('close', () => resolve({ localPort: port }));
      });
      s.on('data', () => {});
      s.on('error', reject);
    });
    await until(() => targets.some((t, k) => t.accepted.length > before[k]!), 'a target got the flow');
    const actual = targets.find((t, k) => t.accepted.length > before[k]!)!.port;
    const expected = policy.pick(candidates, {
      sourceAddress: localAddress,
      sourcePort: localPort,
      destinationAddress: '127.0.0.1',
      destinationPort: balancer.address.port,
    })!.key;
    assert.equal(`127.0.0.1:${actual}`, expected, `client ${localAddress}:${localPort}`);
    seen.add(actual);
  }
  assert.equal(seen.size, 3, '30 clients reach all three targets');
});

test('source address: targets see the LB address; with preservation, a loopback client its own', async () => {
  const t = await target({ proxy: false, behave: (socket) => socket.end(socket.remoteAddress ?? '') });
  const plain = await lb({ targets: [t], sourceAddress: '127.0.11.1' });
  assert.equal(
    (await exchange(plain.address.port, '', { localAddress: '127.0.0.77' })).received.toString(),
    '127.0.11.1',
  );
  const preserving = await lb({ targets: [t], sourceAddress: '127.0.11.1', preserveClientIp: true });
  assert.equal(
    (await exchange(preserving.address.port, '', { localAddress: '127.0.0.77' })).received.toString(),
    '127.0.0.77',
  );
  assert.deepEqual(preserving.stats().preservationFallbacks, {});
});

test('preservation that cannot work says so: an IPv4 client towards an IPv6 target falls back, counted', async () => {
  const t6 = await target({ host: '::1', behave: (socket) => socket.end(socket.remoteAddress ?? '') });
  const lines: string[] = [];
  const balancer = await lb({
    targets: [{ host: '::1', port: t6.port }],
    sourceAddress: '127.0.11.1',
    preserveClientIp: true,
    log: (line) => lines.push(line),
  });
  const { received } = await exchange(balancer.address.port, '', { localAddress: '127.0.0.77' });
  assert.equal(received.toString(), '::1');
  assert.deepEqual(balancer.stats().preservationFallbacks, { 'family-mismatch': 1 });
  assert.ok(
    lines.some((l) => /127\.0\.0\.77 cannot be preserved/.test(l)),
    lines.join('\n'),
  );
});

test('hairpin: a preserved client whose address is the target address is reported (rule A8)', async () => {
  const t = await target({ host: '127.0.0.61', behave: (socket) => socket.end(socket.remoteAddress ?? '') });
  const lines: string[] = [];
  const balancer = await lb({
    targets: [{ host: '127.0.0.61', port: t.port }],
    preserveClientIp: true,
    log: (line) => lines.push(line),
  });
  const { received } = await exchange(balancer.address.port, '', { localAddress: '127.0.0.61' });
  assert.equal(received.toString(), '127.0.0.61');
  assert.equal(balancer.stats().hairpinFlows, 1);
  assert.ok(lines.some((l) => l.includes('hairpin')));
});

test('deregistration: a removed target gets no new flows; its open flow keeps working while it drains', async () => {
  const a = await target();
  const b = await target();
  // A delay no test run reaches: the flow is still open at every step below, however busy the machine.
  const balancer = await lb({ targets: [a, b], algorithm: 'round-robin', deregistrationDelayMs: 600_000 });
  // One long-lived flow on a (round-robin starts at a), with a request/answer in the middle of draining.
  const s = net.connect({ host: '127.0.0.1', port: balancer.address.port });
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  await until(() => a.accepted.length === 1, 'a has the flow');
  balancer.setTargets([{ host: '127.0.0.1', port: b.port }]);
  assert.equal(balancer.targetHealth().find((t) => t.port === a.port)?.status, 'draining');
  const answer = await new Promise<string>((resolve) => {
    s.once('data', (c: Buffer) => resolve(c.toString()));
    s.write('still here');
  });
  assert.equal(answer, 'still here', 'the draining flow still works');
  const served = await servedBy(balancer, [a, b], 3);
  assert.deepEqual(served, [b.port, b.port, b.port]);
  assert.equal(balancer.targetHealth().find((t) => t.port === a.port)?.status, 'draining');
  s.destroy();
});

test('deregistration: an open flow on a removed target is closed at the delay, counted as aborted', async () => {
  const a = await target();
  const balancer = await lb({ targets: [a], deregistrationDelayMs: 200 });
  const s = net.connect({ host: '127.0.0.1', port: balancer.address.port });
  s.on('error', () => {});
  const closed = new Promise((r) => s.once('close', r));
  await new Promise((r) => s.once('connect', r));
  await until(() => a.accepted.length === 1, 'a has the flow');
  balancer.setTargets([]);
  // Eventually, within the generous bound of until(): the delay is a deadline, not a window.
  await closed;
  await until(() => balancer.targetHealth().every((t) => t.port !== a.port), 'a is gone after the delay');
  await until(() => balancer.stats().flowsEnded.aborted === 1, 'the flow is counted as aborted');
});

test('deregistration of an idle target is immediate; registering it again brings it back', async () => {
  const a = await target();
  const b = await target();
  const balancer = await lb({ targets: [a, b], algorithm: 'round-robin' });
  balancer.setTargets([{ host: '127.0.0.1', port: a.port }]);
  assert.deepEqual(
    balancer.targetHealth().map((t) => t.port),
    [a.port],
  );
  balancer.setTargets([a, b]);
  const served = await servedBy(balancer, [a, b], 4);
  assert.deepEqual(new Set(served), new Set([a.port, b.port]));
  assert.throws(() => balancer.setTargets([{ host: 'nope', port: 1 }]), /LB_BAD_TARGET/);
});

test('metrics: flows, bytes, PROXY headers and target health in Prometheus text', async () => {
  const registry = new Registry();
  const t = await target({ proxy: true, behave: echo });
  const balancer = await lb({
    targets: [t],
    proxyProtocol: 'v1',
    healthCheck: fastCheck(),
    registry,
    name: 'edge',
  });
  await exchange(balancer.address.port, 'abcdef');
  await exchange(balancer.address.port, 'ghi');
  await until(() => balancer.stats().flowsActive === 0, 'flows ended');
  await until(() => balancer.targetHealth()[0]!.checks >= 1, 'a check ran');
  const text = await registry.metrics();
  const value = (pattern: string) => {
    const line = text.split('\n').find((l) => l.startsWith(pattern));
    assert.ok(line, `${pattern} in\n${text}`);
    return Number(line.slice(pattern.length).trim());
  };
  assert.equal(value('keepip_lb_flows_total{lb="edge"}'), 2);
  assert.equal(value('keepip_lb_flows_active{lb="edge"}'), 0);
  assert.equal(value('keepip_lb_bytes_total{lb="edge",direction="to_target"}'), 9);
  assert.equal(value('keepip_lb_bytes_total{lb="edge",direction="to_client"}'), 9);
  assert.equal(value('keepip_lb_proxy_headers_sent_total{lb="edge",version="v1"}'), 2);
  assert.equal(value(`keepip_lb_target_healthy{lb="edge",target="127.0.0.1:${t.port}"}`), 1);
  // A second scrape does not count the same bytes twice.
  assert.match(await registry.metrics(), /keepip_lb_flows_total\{lb="edge"\} 2\n/);
});

test('IPv6: a client on [::1] through an IPv6 listener; the v2 header says TCP6', async () => {
  const t = await target({ proxy: true, behave: echo });
  const balancer = await lb({ listen: { host: '::1', port: 0 }, targets: [t], proxyProtocol: 'v2' });
  const { received, localPort } = await exchange(balancer.address.port, 'six', { host: '::1' });
  assert.equal(received.toString(), 'six');
  const header = t.accepted[0]!.header!;
  assert.equal(header.protocol, 'TCP6');
  assert.deepEqual(header.source, { address: '::1', port: localPort });
  assert.deepEqual(header.destination, { address: '::1', port: balancer.address.port });
});
