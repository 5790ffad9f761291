// The limiter as nginx's limit_req / limit_conn count (leaky bucket in milli-requests, nodelay, burst =
// limit × multiplier; requests in progress per key), with time passed in, and its LRU bound.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { leak, MemoryLimiterStore, type RequestLimit } from '../../../src/gateway/access/rate-limit.ts';

const rps = (limit: number, burst: number): RequestLimit => ({
  zone: 'z rps',
  perSecond: limit * 1000,
  burst,
});

test('limit-rps 1 with burst 5: 6 requests pass at once, the 7th is refused, one more a second later', () => {
  const store = new MemoryLimiterStore();
  const limits = [rps(1, 5)];
  const at = (ms: number) => store.takeRequest(limits, '10.0.0.1', ms);
  assert.deepEqual(
    [0, 0, 0, 0, 0, 0, 0].map(() => at(1000)),
    [true, true, true, true, true, true, false],
  );
  assert.equal(at(1999), false, 'not yet leaked a whole request');
  assert.equal(at(2000), true, 'one second later: one more');
  assert.equal(at(2000), false);
  assert.equal(store.takeRequest(limits, '10.0.0.2', 2000), true, 'another client has its own bucket');
});

test('limit-rpm: the bucket leaks limit/60 per second', () => {
  const store = new MemoryLimiterStore();
  const limits: RequestLimit[] = [{ zone: 'z rpm', perSecond: (60 * 1000) / 60, burst: 0 }];
  // 60 per minute: one a second.
  assert.equal(store.takeRequest(limits, 'a', 0), true);
  assert.equal(store.takeRequest(limits, 'a', 500), false);
  assert.equal(store.takeRequest(limits, 'a', 1000), true);
});

test('a request refused by one zone is charged to none', () => {
  const store = new MemoryLimiterStore();
  const generous = rps(100, 100);
  const strict: RequestLimit = { zone: 'z rpm', perSecond: 1000 / 60, burst: 0 };
  assert.equal(store.takeRequest([generous, strict], 'a', 0), true);
  for (let i = 0; i < 50; i += 1) assert.equal(store.takeRequest([generous, strict], 'a', 0), false);
  // Had the refusals been charged to the generous zone, it would now be over its burst of 100.
  assert.equal(store.takeRequest([generous], 'a', 0), true);
});

test('leak: an unknown key starts empty; excess never goes below zero', () => {
  assert.equal(leak(undefined, rps(1, 0), 0), 0);
  assert.equal(leak({ excess: 500, lastMs: 0 }, rps(1, 5), 10_000), 0);
  assert.equal(leak({ excess: 3000, lastMs: 0 }, rps(1, 5), 1000), 3000);
});

test('limit-connections: the limit-th + 1 in progress is refused until one is released', () => {
  const store = new MemoryLimiterStore();
  for (let i = 0; i < 3; i += 1) assert.equal(store.acquireConnection('z', 'a', 3), true);
  assert.equal(store.acquireConnection('z', 'a', 3), false);
  assert.equal(store.acquireConnection('z', 'b', 3), true);
  store.releaseConnection('z', 'a');
  assert.equal(store.acquireConnection('z', 'a', 3), true);
  for (let i = 0; i < 3; i += 1) store.releaseConnection('z', 'a');
  store.releaseConnection('z', 'b');
  assert.equal(store.connectionKeys, 0, 'released keys are forgotten');
});

test('the zone keeps at most maxKeys buckets; a key in use survives the spray', () => {
  const store = new MemoryLimiterStore(4);
  const limits = [rps(1, 0)];
  store.takeRequest(limits, 'steady', 0);
  for (let i = 0; i < 100; i += 1) {
    store.takeRequest(limits, `spray-${i}`, 0);
    assert.ok(store.zoneSize('z rps') <= 4);
    // Looked up (and refused) often enough, the steady key is never the least recently used.
    if (i % 2 === 0) assert.equal(store.takeRequest(limits, 'steady', 0), false);
  }
  assert.equal(store.takeRequest(limits, 'spray-0', 0), true, 'an old key was evicted: a fresh bucket');
});
