// The per-process cache of idle backend connections (src/gateway/upstream-keepalive.ts): nginx's
// `keepalive N` drops the least recently used beyond N; keepalive_requests and keepalive_time decide
// whether a connection may take another request.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_KEEPALIVE, IdleConnections } from '../../src/gateway/upstream-keepalive.ts';

function conn(name: string, closed: string[]) {
  return {
    name,
    closeIfIdle() {
      closed.push(name);
      return true;
    },
  };
}

test('beyond maxIdle, the connection idle the longest is closed', () => {
  const closed: string[] = [];
  const idle = new IdleConnections<ReturnType<typeof conn>>();
  idle.limits = { ...DEFAULT_KEEPALIVE, maxIdle: 2 };
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => conn(n, closed)) as [
    ReturnType<typeof conn>,
    ReturnType<typeof conn>,
    ReturnType<typeof conn>,
    ReturnType<typeof conn>,
  ];
  idle.park(a);
  idle.park(b);
  assert.deepEqual(closed, []);
  // a is used again, then idle again: b is now the least recently used.
  idle.unpark(a);
  idle.park(a);
  idle.park(c);
  assert.deepEqual(closed, ['b']);
  idle.park(d);
  assert.deepEqual(closed, ['b', 'a']);
  assert.equal(idle.size, 2);
  idle.unpark(c);
  assert.equal(idle.size, 1);
});

test('maxIdle 0 keeps no connection; requests and lifetime end reuse', () => {
  const idle = new IdleConnections();
  assert.deepEqual(idle.limits, {
    maxIdle: 320,
    idleTimeoutMs: 60_000,
    maxRequests: 10_000,
    maxLifetimeMs: 3_600_000,
  });
  assert.equal(idle.keeps(1, 0, 1000), true);
  idle.limits = { ...DEFAULT_KEEPALIVE, maxRequests: 3, maxLifetimeMs: 5000 };
  assert.equal(idle.keeps(2, 0, 4999), true);
  assert.equal(idle.keeps(3, 0, 1000), false);
  assert.equal(idle.keeps(1, 0, 5000), false);
  idle.limits = { ...DEFAULT_KEEPALIVE, maxIdle: 0 };
  assert.equal(idle.keeps(1, 0, 1), false);
});
