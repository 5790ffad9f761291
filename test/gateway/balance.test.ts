import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ewmaChoice, hashChoice, recordResponseTime } from '../../src/gateway/balance.ts';
import type { BalancedUpstream, UpstreamMember } from '../../src/gateway/upstream.ts';

const upstreamOf = (n: number): BalancedUpstream => ({
  name: 'u',
  members: Array.from({ length: n }, (_, i) => ({ hostPort: `10.0.0.${i}:80` }) as UpstreamMember),
  cursor: { value: 0 },
});

test('upstream-hash-by: a key keeps its endpoint; removing another endpoint does not move it', () => {
  const six = upstreamOf(6);
  const byKey = new Map<string, string>();
  for (let k = 0; k < 200; k++)
    byKey.set(`/k${k}`, six.members[hashChoice(six, { by: '', subsetSize: null }, `/k${k}`)]!.hostPort);
  assert.ok(new Set(byKey.values()).size === 6, 'the keys spread over every endpoint');
  const five: BalancedUpstream = { ...six, members: six.members.filter((m) => m.hostPort !== '10.0.0.3:80') };
  for (const [key, hostPort] of byKey) {
    if (hostPort === '10.0.0.3:80') continue;
    assert.equal(five.members[hashChoice(five, { by: '', subsetSize: null }, key)]!.hostPort, hostPort, key);
  }
});

test('upstream-hash-by-subset: the key picks a group of subset-size endpoints (the last padded)', () => {
  const seven = upstreamOf(7);
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++)
    seen.add(hashChoice(seven, { by: '', subsetSize: 3 }, '/same', () => (i % 3) / 3));
  assert.equal(seen.size, 3);
  assert.equal(hashChoice(upstreamOf(0), { by: '', subsetSize: null }, 'x'), -1);
});

test('ewma: the better of two at random, by decayed average response time', () => {
  const two = upstreamOf(2);
  recordResponseTime(two, '10.0.0.0:80', 500, 0);
  recordResponseTime(two, '10.0.0.1:80', 5, 0);
  for (const r of [0, 0.3, 0.6, 0.99])
    assert.equal(
      ewmaChoice(two, 100, () => r),
      1,
    );
  // Far later the averages have decayed towards 0 alike: the first drawn wins a tie.
  assert.equal(ewmaChoice(upstreamOf(1), 0), 0);
});

test("upstream-hash-by-subset: each slot of a group is ingress-nginx's layout (groups of size, padded from the start), for any size", () => {
  for (let n = 1; n <= 7; n++) {
    for (const size of [1, 2, 3, 5, 9, 999_999]) {
      const upstream = upstreamOf(n);
      // ingress-nginx's build_subset_map, written out: group g holds (g × size + j) mod n, j < size.
      const groups = Math.ceil(n / size);
      for (const key of ['a', 'b', '/k1', '/k2']) {
        const slots = new Set<number>();
        for (const slot of [0, 1, 2, size - 1].filter((j) => j < size)) {
          const pick = hashChoice(upstream, { by: '', subsetSize: size }, key, () => (slot + 0.5) / size);
          slots.add(pick);
          const expectedFromSomeGroup = Array.from({ length: groups }, (_, g) => (g * size + slot) % n);
          assert.ok(expectedFromSomeGroup.includes(pick), `n=${n} size=${size} slot=${slot}`);
        }
        // One key stays in one group: its picks are that group's members only.
        const picks = [...slots];
        assert.ok(picks.length <= Math.min(size, n));
      }
    }
  }
});
