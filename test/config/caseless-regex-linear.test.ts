// The rewritten patterns (src/config/caseless-regex.ts) as the gateway runs a crafted request: in
// V8's linear-time engine, which this process enters after a single backtrack (the gateway's threshold
// is 50,000, src/regex-engine.ts). Its answers must still be those of the `i` regex in the
// backtracking engine, captures included, since rewrite-target substitutes them. A file of its own:
// the V8 flags are the whole process's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { withoutIgnoreCase } from '../../src/config/caseless-regex.ts';
import { boundRegexBacktracking } from '../../src/regex-engine.ts';
import { assertSameAsIgnoreCase } from '../fixtures/regex-patterns.ts';

boundRegexBacktracking();
setFlagsFromString('--regexp-backtracks-before-fallback=1');

test('random patterns and inputs: the linear engine without i agrees with the backtracking one with i', () => {
  const compared = assertSameAsIgnoreCase(withoutIgnoreCase, 3000);
  assert.ok(compared > 1000, `only ${compared} patterns were rewritten`);
});
