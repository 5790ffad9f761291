// limit-rate / limit-rate-after as nginx's write filter does it: the budget arithmetic (limit_rate after
// limit_rate_after, one second's worth at once), and a response whose chunk goes past the budget: what
// the budget allows goes at once, the rest in pieces as time passes, 'drain' and the end after them.
// Timers mocked: no real waiting.
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { allowanceBytes, throttleResponse } from '../../../src/gateway/access/bandwidth.ts';
import type { GatewayResponse } from '../../../src/gateway/exchange.ts';

test("nginx's budget: limit-rate-after bytes, then limit-rate × (seconds since the first byte + 1)", () => {
  const limit = { rateBytes: 1000, afterBytes: 500 };
  assert.equal(allowanceBytes(limit, 0, 0), 1500);
  assert.equal(allowanceBytes(limit, 1500, 0), 0);
  assert.equal(allowanceBytes(limit, 1500, 250), 250);
  assert.equal(allowanceBytes(limit, 9000, 1000), 0);
  assert.equal(allowanceBytes({ rateBytes: 0, afterBytes: 0 }, 1e9, 0), Number.POSITIVE_INFINITY);
});

/** A response that records what reaches the socket and when, and whether it ended. */
function recordingResponse() {
  const written: [number, number][] = [];
  const state = { ended: -1 };
  const res = {
    write: (chunk: Buffer) => {
      written.push([Date.now(), chunk.length]);
      return true;
    },
    end: () => {
      state.ended = Date.now();
    },
    once: () => res,
  } as unknown as GatewayResponse;
  return { res, written, state };
}

test('one chunk past the budget: the budget at once, the rest paced, then drain; the end waits for it', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  try {
    const { res, written, state } = recordingResponse();
    throttleResponse(res, { rateBytes: 1000, afterBytes: 0 }, () => Date.now());
    assert.equal(res.write(Buffer.alloc(3000)), false, 'more than the first second allows');
    assert.deepEqual(written, [[0, 1000]]);
    let drained = -1;
    res.once('drain', () => {
      drained = Date.now();
    });
    res.end();
    assert.equal(state.ended, -1, 'the end waits for the held bytes');
    mock.timers.tick(2000);
    const total = written.reduce((n, [, length]) => n + length, 0);
    assert.equal(total, 3000);
    // Never ahead of the budget: at each write, everything sent so far fits rate × (t + 1).
    let sent = 0;
    for (const [at, length] of written) {
      sent += length;
      assert.ok(sent <= 1000 * (at / 1000 + 1), `${sent} bytes at ${at} ms`);
    }
    assert.equal(written.at(-1)![0], 2000, 'the last byte when the budget reaches it');
    assert.equal(drained, 2000);
    assert.equal(state.ended, 2000);
  } finally {
    mock.timers.reset();
  }
});

test('a response within the budget passes untouched and ends at once', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  try {
    const { res, written, state } = recordingResponse();
    throttleResponse(res, { rateBytes: 1000, afterBytes: 4096 }, () => Date.now());
    assert.equal(res.write(Buffer.alloc(4096)), true);
    res.end(Buffer.alloc(1000));
    assert.deepEqual(written, [
      [0, 4096],
      [0, 1000],
    ]);
    assert.equal(state.ended, 0);
  } finally {
    mock.timers.reset();
  }
});
