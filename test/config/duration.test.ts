// The one duration grammar of the command lines and whoami's ?wait= (src/config/duration.ts): a plain
// number is seconds, as nginx reads it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDurationMs, parseNginxTimeMs } from '../../src/config/duration.ts';

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

test('nginx times (ngx_parse_time): groups of a number and a unit, none meaning seconds', () => {
  assert.equal(parseNginxTimeMs('10m'), 600_000);
  assert.equal(parseNginxTimeMs('600'), 600_000);
  assert.equal(parseNginxTimeMs('1h 30m'), 5_400_000);
  assert.equal(parseNginxTimeMs('1d2h'), 93_600_000);
  assert.equal(parseNginxTimeMs('1w'), 604_800_000);
  assert.equal(parseNginxTimeMs('1M'), 2_592_000_000);
  assert.equal(parseNginxTimeMs('1y'), 31_536_000_000);
  assert.equal(parseNginxTimeMs('250ms'), 250);
  // Directives that take seconds refuse ms; fractions, signs and unknown units are not times.
  assert.equal(parseNginxTimeMs('250ms', true), null);
  for (const bad of ['', ' ', '1.5m', '-1s', '10 minutes', '5x', 'm'])
    assert.equal(parseNginxTimeMs(bad), null, JSON.stringify(bad));
});
