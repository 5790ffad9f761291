// Selection policies as pure functions: what each one promises, checked on plain data.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSelectionPolicy, type FlowKey } from '../../src/lb/selection.ts';

const targets = (n: number, active: number[] = []) =>
  Array.from({ length: n }, (_, i) => ({ key: `127.0.0.${i + 1}:80`, activeFlows: active[i] ?? 0 }));
const flow = (i: number): FlowKey => ({
  sourceAddress: `127.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
  sourcePort: 1024 + (i % 60000),
  destinationAddress: '127.0.10.1',
  destinationPort: 80,
});

test('flow-hash: the same 5-tuple always picks the same target', () => {
  const policy = createSelectionPolicy('flow-hash');
  const group = targets(5);
  for (let i = 0; i < 500; i++) {
    const first = policy.pick(group, flow(i));
    for (let again = 0; again < 3; again++) assert.equal(policy.pick(group, flow(i)), first);
    // A fresh policy (another process, a restart) agrees: the choice depends on the tuple only.
    assert.equal(createSelectionPolicy('flow-hash').pick(group, flow(i))?.key, first?.key);
  }
});

test('flow-hash: different ports of one client spread over all targets, roughly evenly', () => {
  const policy = createSelectionPolicy('flow-hash');
  const group = targets(4);
  const counts = new Map<string, number>();
  const n = 8000;
  for (let i = 0; i < n; i++) {
    const key = policy.pick(group, { ...flow(7), sourcePort: 1024 + i })!.key;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  assert.equal(counts.size, 4);
  for (const [key, count] of counts) {
    assert.ok(count > n / 4 - n / 20 && count < n / 4 + n / 20, `${key}: ${count} of ${n}`);
  }
});

test('flow-hash: when a target leaves, only its own flows move', () => {
  const policy = createSelectionPolicy('flow-hash');
  const before = targets(5);
  const after = before.filter((t) => t.key !== '127.0.0.3:80');
  let moved = 0;
  for (let i = 0; i < 2000; i++) {
    const a = policy.pick(before, flow(i))!.key;
    const b = policy.pick(after, flow(i))!.key;
    if (a !== '127.0.0.3:80') assert.equal(b, a, `flow ${i} stayed on ${a}`);
    else moved++;
  }
  assert.ok(moved > 0);
});

test('round-robin: targets in turn, and the turn survives a changing candidate list', () => {
  const policy = createSelectionPolicy('round-robin');
  const group = targets(3);
  const picks = Array.from({ length: 7 }, (_, i) => policy.pick(group, flow(i))!.key);
  assert.deepEqual(picks, [
    '127.0.0.1:80',
    '127.0.0.2:80',
    '127.0.0.3:80',
    '127.0.0.1:80',
    '127.0.0.2:80',
    '127.0.0.3:80',
    '127.0.0.1:80',
  ]);
  const two = targets(2);
  const next = [policy.pick(two, flow(0))!.key, policy.pick(two, flow(0))!.key];
  assert.deepEqual(new Set(next).size, 2);
});

test('least-conn: the target with the fewest active flows; equals take turns', () => {
  const policy = createSelectionPolicy('least-conn');
  assert.equal(policy.pick(targets(3, [5, 1, 3]), flow(0))!.key, '127.0.0.2:80');
  assert.equal(policy.pick(targets(3, [0, 4, 4]), flow(0))!.key, '127.0.0.1:80');
  const tied = targets(3, [2, 2, 2]);
  const picks = new Set(Array.from({ length: 3 }, () => policy.pick(tied, flow(0))!.key));
  assert.equal(picks.size, 3);
});

test('every policy returns undefined for an empty candidate list and the only target for one', () => {
  for (const algorithm of ['flow-hash', 'round-robin', 'least-conn'] as const) {
    const policy = createSelectionPolicy(algorithm);
    assert.equal(policy.pick([], flow(1)), undefined);
    assert.equal(policy.pick(targets(1), flow(1))!.key, '127.0.0.1:80');
  }
});
