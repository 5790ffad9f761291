import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readBool, readWhole, type ScalarSource } from '../../src/k8s/scalar-readers.ts';

function source(data: Record<string, string>): ScalarSource & { reports: string[] } {
  const reports: string[] = [];
  return {
    reports,
    get: (key) => data[key],
    invalid: (key, value, expected, kept) => reports.push(`${key}=${value}: ${expected} / ${kept}`),
  };
}

test("readBool: Go's strconv.ParseBool forms; absent is the fallback, silently", () => {
  for (const yes of ['1', 't', 'T', 'true', 'TRUE', 'True'])
    assert.equal(readBool(source({ k: yes }), 'k', false), true);
  for (const no of ['0', 'f', 'F', 'false', 'FALSE', 'False'])
    assert.equal(readBool(source({ k: no }), 'k', true), false);
  const absent = source({});
  assert.equal(readBool(absent, 'k', null), null);
  assert.deepEqual(absent.reports, []);
});

test('readBool: a malformed value is reported with what applies, and the fallback applies', () => {
  const s = source({ a: 'yes', b: 'on' });
  assert.equal(readBool(s, 'a', true), true);
  assert.equal(readBool(s, 'b', null, { expected: 'a boolean ("true" or "false")', kept: 'ignored' }), null);
  assert.deepEqual(s.reports, ['a=yes: a boolean / true', 'b=on: a boolean ("true" or "false") / ignored']);
});

test("readWhole: a whole number within [min, max] as Go's Atoi reads it (a leading +, leading zeros, no space); out of range, negative, spaced or a fraction is reported", () => {
  const rule = { min: 1, max: 10, expected: 'a whole number from 1 to 10', kept: '5' };
  const s = source({
    ok: '7',
    zeros: '007',
    plus: '+3',
    spaced: ' 7 ',
    low: '0',
    high: '11',
    negative: '-3',
    twice: '++3',
    frac: '2.5',
  });
  assert.equal(readWhole(s, 'ok', 5, rule), 7);
  assert.equal(readWhole(s, 'zeros', 5, rule), 7);
  assert.equal(
    readWhole(s, 'plus', 5, rule),
    3,
    "strconv.Atoi('+3') is 3: limit-rpm '+2' limits in ingress-nginx",
  );
  // parser.ValidateInt refuses a value with spaces: the annotation is invalid there, not 7.
  for (const key of ['spaced', 'low', 'high', 'negative', 'twice', 'frac'])
    assert.equal(readWhole(s, key, null, rule), null, key);
  assert.equal(readWhole(s, 'absent', 5, rule), 5);
  assert.equal(s.reports.length, 6);
});
