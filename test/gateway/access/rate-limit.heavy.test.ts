// A spray of a million distinct client addresses against one zone: the limiter's memory stays bounded
// (DEFAULT_MAX_KEYS_PER_ZONE buckets), and a client that keeps sending stays limited throughout.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DEFAULT_MAX_KEYS_PER_ZONE, MemoryLimiterStore } from '../../../src/gateway/access/rate-limit.ts';

test('1,000,000 distinct addresses: at most 65,536 buckets and bounded heap; a steady client stays limited', () => {
  const store = new MemoryLimiterStore();
  const limits = [{ zone: 'spray rps', perSecond: 1000, burst: 5 }];
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  let steadyPassed = 0;
  for (let i = 0; i < 1_000_000; i += 1) {
    const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    store.takeRequest(limits, address, 0);
    // The attacker's victim, or a steady client: one request per 1,000 sprayed, all at the same instant.
    if (i % 1000 === 0 && store.takeRequest(limits, '192.0.2.1', 0)) steadyPassed += 1;
  }
  gc();
  const grown = process.memoryUsage().heapUsed - heapBefore;
  assert.ok(store.zoneSize('spray rps') <= DEFAULT_MAX_KEYS_PER_ZONE);
  // A bucket is a Map entry, a key string and two numbers: well under 300 bytes each.
  assert.ok(grown < DEFAULT_MAX_KEYS_PER_ZONE * 300, `heap grew by ${grown} bytes`);
  // It touches its bucket every 1,000 sprayed keys, so the LRU never evicts it: burst + 1 passed.
  assert.equal(steadyPassed, 6);
  console.log(
    `# heap growth for 1M distinct addresses: ${(grown / 1024 / 1024).toFixed(1)} MiB, ${store.zoneSize('spray rps')} buckets`,
  );
});
