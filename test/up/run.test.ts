// The chain's log (src/up/run.ts): each line once under its component's name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLoadBalancer } from '../../src/lb/balancer.ts';
import { l4Line } from '../../src/up/run.ts';
import { openRaw, refusingPort } from '../helpers/net.ts';

test("a balancer's line is logged once under its component, not with the name twice", async () => {
  const name = 'lb/ingress-nginx-controller:80';
  const lines: string[] = [];
  const refusing = await refusingPort();
  const lb = await startLoadBalancer({
    name,
    listen: { host: '127.0.0.1', port: 0 },
    targets: [{ host: '127.0.0.1', port: refusing }],
    proxyProtocol: null,
    sourceAddress: null,
    preserveClientIp: false,
    algorithm: 'round-robin',
    healthCheck: null,
    log: (line) => lines.push(l4Line(name, line)),
  });
  try {
    // A target that refuses: the balancer logs the failed connect (its own line names the listener).
    const c = await openRaw({ host: '127.0.0.1', port: lb.address.port });
    await c.until(() => c.closed(), 10_000).catch(() => undefined);
    c.destroy();
    const deadline = Date.now() + 10_000;
    while (!lines.some((l) => l.includes('connect from')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    const line = lines.find((l) => l.includes('connect from'));
    assert.ok(line, lines.join('\n'));
    assert.match(line, /^target 127\.0\.0\.1:\d+: connect from/);
  } finally {
    await lb.close();
  }
  assert.equal(l4Line(name, 'another: line'), 'another: line', "only the component's own name is taken off");
});
