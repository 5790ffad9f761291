import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_NEXT_UPSTREAM,
  EndpointRotation,
  EVERY_ENDPOINT_ONCE,
  retryOnFailure,
} from '../../src/gateway/next-upstream.ts';
import type { BalancedUpstream, UpstreamMember } from '../../src/gateway/upstream.ts';

const upstreamOf = (n: number, cursor = 0): BalancedUpstream => ({
  name: 'u',
  members: Array.from({ length: n }, (_, i) => ({ hostPort: `10.0.0.${i}:80` }) as UpstreamMember),
  cursor: { value: cursor },
});

/** Every member the rotation hands out until it says no more may be tried. */
function walk(rotation: EndpointRotation): string[] {
  const seen = [rotation.take().member.hostPort];
  while (rotation.mayTakeNext()) seen.push(rotation.take().member.hostPort);
  return seen;
}

test('rotation: starts at the round-robin cursor (and moves it), then goes round, each endpoint once', () => {
  const upstream = upstreamOf(4, 2);
  assert.deepEqual(walk(new EndpointRotation(upstream, EVERY_ENDPOINT_ONCE)), [
    '10.0.0.2:80',
    '10.0.0.3:80',
    '10.0.0.0:80',
    '10.0.0.1:80',
  ]);
  assert.equal(upstream.cursor.value, 3, 'the next request starts one further');
});

test('rotation: proxy-next-upstream-tries bounds the endpoints tried (0: every one; never more than there are)', () => {
  const tries = (n: number, members: number) =>
    walk(new EndpointRotation(upstreamOf(members), { tries: n, timeoutMs: 0 })).length;
  assert.equal(tries(3, 5), 3);
  assert.equal(tries(1, 5), 1);
  assert.equal(tries(0, 5), 5);
  assert.equal(tries(9, 2), 2);
});

test('rotation: a given first member (a sticky or hashed choice) leaves the cursor alone', () => {
  const upstream = upstreamOf(3, 1);
  const rotation = new EndpointRotation(upstream, { tries: 2, timeoutMs: 0 }, 2);
  assert.deepEqual(
    [rotation.take(), rotation.take()].map((t) => t.index),
    [2, 0],
  );
  assert.equal(rotation.mayTakeNext(), false);
  assert.equal(upstream.cursor.value, 1);
});

test('rotation: proxy-next-upstream-timeout counts from the first try', () => {
  const long = new EndpointRotation(upstreamOf(3), { tries: 0, timeoutMs: 3_600_000 });
  long.take();
  assert.equal(long.mayTakeNext(), true, 'within the time limit');
  const short = new EndpointRotation(upstreamOf(3), { tries: 0, timeoutMs: 2 });
  short.take();
  const firstAt = performance.now();
  while (performance.now() - firstAt < 3); // the clock is the signal: no timer, no sleep
  assert.equal(short.mayTakeNext(), false, 'the time limit has passed');
});

test('a response head that cannot be read goes on only under invalid_header, as nginx (not under error)', () => {
  const withInvalid = { ...DEFAULT_NEXT_UPSTREAM, conditions: ['error', 'timeout', 'invalid_header'] };
  assert.equal(retryOnFailure(DEFAULT_NEXT_UPSTREAM, 'UPSTREAM_INVALID_HEADER', 'GET'), false);
  assert.equal(retryOnFailure(withInvalid, 'UPSTREAM_INVALID_HEADER', 'GET'), true);
  assert.equal(retryOnFailure(withInvalid, 'UPSTREAM_INVALID_HEADER', 'POST'), false, 'sent: not idempotent');
  // Other errors talking to the backend (a reset, a TLS failure) are nginx's `error`.
  assert.equal(retryOnFailure(DEFAULT_NEXT_UPSTREAM, 'UPSTREAM_ERROR', 'GET'), true);
  assert.equal(retryOnFailure(DEFAULT_NEXT_UPSTREAM, 'UPSTREAM_CLOSED', 'GET'), true);
});
