// `keepip lb` attacked from outside: clients that send nothing, half-close or reset at once, clients
// that try to smuggle their own PROXY header in front of the lb's, and health-check targets that answer
// garbage or hang. (Backpressure of a target that never reads, idle timeouts, resets passed on and one
// header per connection are covered by test/lb/*.test.ts and invariants.test.ts.)
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { HealthCheckModel } from '../../src/config/model.ts';
import { echo, exchange, type TestTarget, until, lbTestScope } from '../lb/helpers.ts';

const { target, lb } = lbTestScope();

/** The source address a PROXY header named (an inet endpoint), or undefined. */
function sourceAddress(header: { source?: unknown } | null | undefined): string | undefined {
  return (header?.source as { address?: string } | undefined)?.address;
}

test('a client that connects and half-closes at once: the target still gets the header, then EOF; the flow ends', async () => {
  const t = await target({ proxy: true, record: true, behave: (s) => s.on('end', () => s.end('bye')) });
  const balancer = await lb({ targets: [t], proxyProtocol: 'v2' });
  const { received } = await exchange(balancer.address.port, '', { localAddress: '127.0.0.61' });
  assert.equal(received.toString(), 'bye');
  assert.equal(t.accepted.length, 1);
  assert.equal(sourceAddress(t.accepted[0]!.header), '127.0.0.61');
  assert.equal(t.accepted[0]!.data().length, 0);
  await until(() => balancer.stats().flowsActive === 0, 'the flow has ended');
});

test('a client that smuggles its own PROXY v1/v2 header: the target reads the lb header, the forged one is payload', async () => {
  const t = await target({ proxy: true, record: true, behave: echo });
  const balancer = await lb({ targets: [t], proxyProtocol: 'v2' });
  const v1 = 'PROXY TCP4 6.6.6.6 10.0.0.1 1111 80\r\n';
  const v2 = Buffer.from([
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0, 12,
  ]);
  const v2Addr = Buffer.from([6, 6, 6, 6, 10, 0, 0, 1, 0x04, 0x57, 0, 80]);
  for (const forged of [Buffer.from(v1), Buffer.concat([v2, v2Addr])]) {
    const { received } = await exchange(balancer.address.port, forged, { localAddress: '127.0.0.62' });
    assert.deepEqual(received, forged); // echoed back as data: it was never taken as a header
    const seen = t.accepted.at(-1)!;
    assert.equal(sourceAddress(seen.header), '127.0.0.62');
    assert.deepEqual(seen.data(), forged);
  }
});

test('200 clients that reset right after connecting: every flow ends, none left open, target sockets closed', async () => {
  const t = await target({ proxy: true, behave: (s, rest) => (rest.length > 0 ? echo(s, rest) : s.pipe(s)) });
  const balancer = await lb({ targets: [t], proxyProtocol: 'v2' });
  const N = 200;
  await Promise.all(
    Array.from(
      { length: N },
      () =>
        new Promise<void>((resolve) => {
          const s = net.connect({ port: balancer.address.port, host: '127.0.0.1' }, () =>
            s.resetAndDestroy(),
          );
          s.on('error', () => {});
          s.on('close', () => resolve());
        }),
    ),
  );
  // Accepts are taken in order: once a later ordinary client is served, the resets were all taken.
  const { received } = await exchange(balancer.address.port, 'after');
  assert.equal(received.toString(), 'after');
  assert.ok(balancer.stats().flowsTotal <= N + 1);
  await until(
    () => balancer.stats().flowsActive === 0,
    `every flow has ended (${balancer.stats().flowsActive} open)`,
  );
  await Promise.all(t.accepted.map((a) => a.closed));
});

const check = (over: Partial<HealthCheckModel>): HealthCheckModel => ({
  protocol: 'http',
  port: 'traffic-port',
  path: '/healthz',
  intervalMs: 50,
  timeoutMs: 300,
  healthyThreshold: 1,
  unhealthyThreshold: 1,
  ...over,
});

/** A health target answering with `answer` (null: reads and never answers) to each check. */
async function checkTarget(answer: ((s: net.Socket) => void) | null): Promise<TestTarget> {
  return target({
    behave: (s) => {
      s.once('data', () => answer?.(s));
    },
  });
}

for (const [what, answer, reason] of [
  ['garbage (an SSH banner)', (s: net.Socket) => s.write('SSH-2.0-OpenSSH_9.6\r\n'), /not an HTTP response/],
  [
    'a status line that never ends (5 KiB, no CRLF)',
    (s: net.Socket) => s.write('H'.repeat(5000)),
    /no HTTP status line/,
  ],
  ['nothing at all (hangs)', null, /timeout after 300 ms/],
  ['"HTTP/1.1 2000 OK"', (s: net.Socket) => s.write('HTTP/1.1 2000 OK\r\n\r\n'), /./],
  ['a 500 status', (s: net.Socket) => s.end('HTTP/1.1 500 Oops\r\n\r\n'), /HTTP 500/],
] as const) {
  test(`an HTTP health check answered with ${what} marks the target unhealthy, bounded`, async () => {
    const bad = await checkTarget(answer);
    const good = await checkTarget((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    const balancer = await lb({ targets: [bad, good], healthCheck: check({}) });
    await until(
      () => balancer.targetHealth().find((h) => h.port === bad.port)?.status === 'unhealthy',
      `${what}: unhealthy`,
    );
    await until(
      () => balancer.targetHealth().find((h) => h.port === good.port)?.status === 'healthy',
      'the good target is healthy',
    );
    const last = balancer.targetHealth().find((h) => h.port === bad.port)!;
    assert.match(String(last.lastError), reason);
  });
}
