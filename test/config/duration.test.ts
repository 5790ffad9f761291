// The one duration grammar of the command lines and whoami's ?wait= (src/config/duration.ts): a plain
// number is seconds, as nginx reads it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDurationMs } from '../../src/config/duration.ts';

test('units and plain seconds', () => {
  assert.equal(parseDurationMs('500ms'), 500);
  assert.equal(parseDurationMs('10s'), 10_000);
  assert.equal(parseDurationMs('1.5s'), 1500);
  assert.equal(parseDurationMs('5m'), 300_000);
  assert.equal(parseDurationMs('1h'), 3_600_000);
  assert.equal(parseDurationMs('10'), 10_000);
  assert.equal(parseDurationMs('0.25'), 250);
  assert.equal(parseDurationMs('0'), 0);
  assert.equal(parseDurationMs(' 2s '), 2000);
});

test('fractions of a millisecond round', () => {
  assert.equal(parseDurationMs('0.0004'), 0);
  assert.equal(parseDurationMs('1.6ms'), 2);
});

test('anything else is refused', () => {
  for (const text of [
    '',
    's',
    '-1',
    '+1',
    '1e3',
    '1.',
    '.5',
    '1 s',
    '1sec',
    '1d',
    '5m30s',
    'Infinity',
    '0x10',
  ]) {
    assert.equal(parseDurationMs(text), null, JSON.stringify(text));
  }
});
