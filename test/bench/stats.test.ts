// The rounds of a benchmark: every system once per round, in an order that rotates (bench/lib/stats.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { interleave, median } from '../../bench/lib/stats.ts';

test('interleave rotates the order each round, so no system is always measured after the same one', async () => {
  const calls: string[] = [];
  const results = await interleave(4, ['A', 'B', 'C'], async (system, round) => {
    calls.push(system);
    return `${system}${round}`;
  });
  assert.deepEqual(calls.join(' '), 'A B C B C A C A B A B C');
  assert.deepEqual([...results.keys()], ['A', 'B', 'C']);
  assert.deepEqual(results.get('B'), ['B0', 'B1', 'B2', 'B3']);
});

test('median of an odd and an even count', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});
