// The per-connection HTTP/2 accounting (src/gateway/h2-guard.ts), with the time passed in.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_HTTP2_ABUSE_LIMITS } from '../../src/config/http2.ts';
import { Http2Guard } from '../../src/gateway/h2-guard.ts';

const limits = {
  prematureResets: 10,
  controlFrameBurst: 5,
  controlFramesPerSecond: 2,
  frameFloodSlackBytes: 1_000,
};

test('keep-alive-requests: the stream that reaches the limit is the last one', () => {
  const guard = new Http2Guard(limits, 3, 0);
  assert.deepEqual([guard.streamOpened(), guard.streamOpened(), guard.streamOpened()], [false, false, true]);
});

test('resets are abuse only past the limit and when they are half the streams or more', () => {
  const mostlyReset = new Http2Guard(limits, 1_000, 0);
  const verdicts: boolean[] = [];
  for (let i = 0; i < 10; i++) {
    mostlyReset.streamOpened();
    verdicts.push(mostlyReset.streamReset());
  }
  assert.deepEqual(verdicts, [...Array(9).fill(false), true]);
  // A browser that cancels now and then: 10 resets among 100 streams is not abuse.
  const browser = new Http2Guard(limits, 1_000, 0);
  for (let i = 0; i < 100; i++) browser.streamOpened();
  const cancels = Array.from({ length: 10 }, () => browser.streamReset());
  assert.ok(cancels.every((v) => !v));
});

test('PING/SETTINGS: a burst, then the refill rate', () => {
  const guard = new Http2Guard(limits, 1_000, 0);
  const burst = Array.from({ length: 6 }, () => guard.controlFrame(0));
  assert.deepEqual(burst, [false, false, false, false, false, true]);
  // 2 per second: after 1 s two more are allowed, the third is not.
  assert.deepEqual(
    [guard.controlFrame(1_000), guard.controlFrame(1_000), guard.controlFrame(1_000)],
    [false, false, true],
  );
  // A client pinging every 10 s (gRPC keepalive) never runs dry.
  const steady = new Http2Guard(DEFAULT_HTTP2_ABUSE_LIMITS, 1_000, 0);
  for (let second = 0; second < 3_600; second += 10) assert.equal(steady.controlFrame(second * 1_000), false);
});

test("frame flood: nginx's rule, more than 8 bytes read per byte of requests beyond the slack", () => {
  const guard = new Http2Guard(limits, 1_000, 0);
  // No request yet: 8 × the slack may be read (a client's SETTINGS, WINDOW_UPDATE, PING…).
  assert.equal(guard.frameFlood(8_000), false);
  assert.equal(guard.frameFlood(8_001), true);
  // Requests earn room: 10 KB of header lists and DATA allow 8 × (10 KB + slack).
  guard.payloadBytes += 10_000;
  assert.equal(guard.frameFlood(88_000), false);
  assert.equal(guard.frameFlood(88_001), true);
  assert.equal(DEFAULT_HTTP2_ABUSE_LIMITS.frameFloodSlackBytes, 1024 * 1024);
});
