// The one duration grammar of the command lines and whoami's ?wait= (src/config/duration.ts): a plain
// number is seconds, as nginx reads it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ngxParseTime, parseDurationMs, parseNginxTimeMs } from '../../src/config/duration.ts';

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

test('nginx times (ngx_parse_time): groups of a number and a unit in decreasing order, none meaning seconds', () => {
  assert.equal(parseNginxTimeMs('10m'), 600_000);
  assert.equal(parseNginxTimeMs('600'), 600_000);
  assert.equal(parseNginxTimeMs('1h30m'), 5_400_000);
  assert.equal(parseNginxTimeMs('1d2h'), 93_600_000);
  assert.equal(parseNginxTimeMs('1w'), 604_800_000);
  assert.equal(parseNginxTimeMs('250ms'), 250);
  assert.equal(parseNginxTimeMs('1s500ms'), 1500);
  // Blanks around are nginx's lexer's (not \v, which JavaScript's trim would take).
  assert.equal(parseNginxTimeMs(' \t5s\n'), 5000);
  assert.equal(parseNginxTimeMs('\v5s'), null);
  // Directives of whole seconds refuse ms and take y and M; milliseconds ones start at the week.
  assert.equal(parseNginxTimeMs('250ms', true), null);
  assert.equal(parseNginxTimeMs('1M', true), 2_592_000_000);
  assert.equal(parseNginxTimeMs('1y', true), 31_536_000_000);
  // nginx refuses the rest (`nginx -t` in scalar-values-differential-nginx): units out of order or
  // repeated, y and M in milliseconds, and a blank inside, which makes the one unquoted argument
  // ingress-nginx writes two.
  for (const bad of ['30m1h', '83s33d', '1s1s', '1y', '1M', '1h 30m', '10 20', '']) {
    assert.equal(parseNginxTimeMs(bad), null, JSON.stringify(bad));
  }
  for (const bad of ['', ' ', '1.5m', '-1s', '10 minutes', '5x', 'm'])
    assert.equal(parseNginxTimeMs(bad), null, JSON.stringify(bad));
});

test('ngx_parse_time itself (quoted arguments keep their blanks): a blank closes a bare number, the last bare number is seconds', () => {
  assert.equal(ngxParseTime('1h 30m', false), 5_400_000n);
  assert.equal(ngxParseTime('10 20', false), 30_000n);
  assert.equal(ngxParseTime('1h 30', true), 3_630n);
  // A blank after seconds, or before anything, ends the steps: nothing may follow.
  assert.equal(ngxParseTime('5s 1', false), 6_000n);
  assert.equal(ngxParseTime(' 5s', false), null);
  // int64: the largest time is taken, one more is refused.
  assert.equal(ngxParseTime('9223372036854775807ms', false), 2n ** 63n - 1n);
  assert.equal(ngxParseTime('9223372036854775808ms', false), null);
  assert.equal(ngxParseTime('9223372036854775s', false), 9_223_372_036_854_775_000n);
  assert.equal(ngxParseTime('9223372036854776s', false), null);
});
