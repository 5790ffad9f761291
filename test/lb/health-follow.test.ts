// Health checks run in one place and followed elsewhere (what `keepip lb --workers` does across
// processes), over real sockets: startHealthChecking checks the targets without a listener and says
// when one enters or leaves rotation; a balancer with healthChecks 'follow' sends no check of its own
// and takes each change through setHealth, out of rotation and back.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { HealthCheckModel } from '../../src/config/model.ts';
import { startHealthChecking } from '../../src/lb/balancer.ts';
import type { HealthState } from '../../src/lb/health-state.ts';
import { exchange, lbConfig, startTarget, startTestLb, type TestTarget, until } from './helpers.ts';

const cleanup: (() => unknown)[] = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

const check: HealthCheckModel = {
  protocol: 'http',
  port: 'traffic-port',
  path: '/healthz',
  intervalMs: 30,
  timeoutMs: 5_000,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
};

/** Answers /healthz with 200 or 503 (counting the checks), anything else with its name. */
async function target(name: string, state: { healthy: boolean; checks: number }): Promise<TestTarget> {
  const t = await startTarget({
    behave(socket) {
      socket.once('data', (chunk: Buffer) => {
        if (!chunk.toString().startsWith('GET /healthz')) return void socket.end(name);
        state.checks++;
        socket.end(`HTTP/1.1 ${state.healthy ? '200 OK' : '503 Service Unavailable'}\r\n\r\n`);
      });
    },
  });
  cleanup.push(() => t.close());
  return t;
}

test('startHealthChecking: the checks without a listener, each change of rotation reported', async () => {
  const state = { healthy: true, checks: 0 };
  const a = await target('a', state);
  const changes: { key: string; health: HealthState }[] = [];
  const lines: string[] = [];
  const checking = startHealthChecking(
    lbConfig({
      listen: { host: '127.0.0.1', port: 1 },
      targets: [a],
      healthCheck: check,
      log: (l) => lines.push(l),
    }),
    (entry) => changes.push({ key: entry.key, health: entry.health }),
  );
  cleanup.push(() => checking.close());
  assert.equal(checking.name, '127.0.0.1:1');
  await until(() => state.checks >= 3, 'three checks');
  assert.equal(changes.length, 0, 'passing checks change nothing');
  state.healthy = false;
  await until(() => changes.length === 1, 'a leaves rotation');
  assert.equal(changes[0]!.key, `127.0.0.1:${a.port}`);
  assert.equal(changes[0]!.health.status, 'unhealthy');
  assert.equal(changes[0]!.health.lastError, 'HTTP 503');
  assert.ok(lines.some((l) => l.includes('unhealthy after 2 failed check(s): HTTP 503')));
  assert.ok((checking.stats.healthChecks[changes[0]!.key]?.failed ?? 0) >= 2);
  state.healthy = true;
  await until(() => changes.length === 2, 'a is back');
  assert.equal(changes[1]!.health.status, 'healthy');
  checking.setTargets([]);
  assert.deepEqual(checking.group.entries(), []);
});

test("healthChecks 'follow': no checks of its own; setHealth takes a target out of rotation and back", async () => {
  const aState = { healthy: true, checks: 0 };
  const bState = { healthy: true, checks: 0 };
  const a = await target('a', aState);
  const b = await target('b', bState);
  const balancer = await startTestLb({
    targets: [a, b],
    algorithm: 'round-robin',
    healthCheck: check,
    healthChecks: 'follow',
  });
  cleanup.push(() => balancer.close());
  const answers = async (n: number) => {
    const got = new Set<string>();
    for (let i = 0; i < n; i++) got.add((await exchange(balancer.address.port, 'x')).received.toString());
    return got;
  };
  assert.deepEqual(await answers(4), new Set(['a', 'b']));
  const key = `127.0.0.1:${b.port}`;
  const down: HealthState = {
    status: 'unhealthy',
    consecutiveSuccesses: 0,
    consecutiveFailures: 2,
    lastError: 'HTTP 503',
    checks: 7,
  };
  balancer.setHealth(key, down);
  assert.deepEqual(await answers(4), new Set(['a']));
  assert.deepEqual(
    balancer.targetHealth().find((t) => t.target === key),
    {
      target: key,
      host: '127.0.0.1',
      port: b.port,
      status: 'unhealthy',
      inRotation: false,
      activeFlows: 0,
      checks: 7,
      lastError: 'HTTP 503',
    },
  );
  balancer.setHealth('127.0.0.1:1', down); // not a target here: ignored
  balancer.setHealth(key, { ...down, status: 'healthy', consecutiveFailures: 0, consecutiveSuccesses: 2 });
  assert.deepEqual(await answers(4), new Set(['a', 'b']));
  // The flows above were the only connections: no check ever reached either target.
  assert.equal(aState.checks + bState.checks, 0);
});
