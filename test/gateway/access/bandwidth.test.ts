// limit-rate / limit-rate-after as backpressure: the budget arithmetic, and a response whose writes past
// the budget report "full" until the budget catches up (timers mocked: no real waiting).
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { throttleDelayMs, throttleResponse } from '../../../src/gateway/access/bandwidth.ts';
import type { GatewayResponse } from '../../../src/gateway/exchange.ts';

test('the first limit-rate-after bytes are free; then rate bytes a second', () => {
  const limit = { rateBytes: 1000, afterBytes: 500 };
  assert.equal(throttleDelayMs(limit, 500, 0), 0);
  assert.equal(throttleDelayMs(limit, 1500, 0), 1000);
  assert.equal(throttleDelayMs(limit, 1500, 1000), 0);
  assert.equal(throttleDelayMs(limit, 2500, 1000), 1000);
  assert.equal(throttleDelayMs({ rateBytes: 0, afterBytes: 0 }, 1e9, 0), 0);
});

test('a write past the budget reports full, and drain comes when the budget allows', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  try {
    const written: number[] = [];
    const res = {
      write: (chunk: Buffer) => {
        written.push(chunk.length);
        return true;
      },
      once: () => res,
    } as unknown as GatewayResponse;
    throttleResponse(res, { rateBytes: 1000, afterBytes: 1000 }, () => Date.now());
    assert.equal(res.write(Buffer.alloc(1000)), true, 'within limit-rate-after');
    assert.equal(res.write(Buffer.alloc(1000)), false, 'one second ahead of the rate');
    let drained = 0;
    res.once('drain', () => {
      drained += 1;
    });
    mock.timers.tick(999);
    assert.equal(drained, 0);
    mock.timers.tick(1);
    assert.equal(drained, 1);
    assert.deepEqual(written, [1000, 1000], 'chunks are passed on, never held back');
  } finally {
    mock.timers.reset();
  }
});
