import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LbConfigInvalid } from '../../src/lb/balancer.ts';
import { echo, exchange, startTarget, startTestLb } from './helpers.ts';

test('loadBalancerSourceRanges: clients inside pass, clients outside are reset and counted', async (t) => {
  const target = await startTarget({ behave: echo });
  const lb = await startTestLb({
    targets: [{ host: target.host, port: target.port }],
    allowedSources: ['127.0.20.0/28', '::1/128'],
  });
  t.after(async () => {
    await lb.close();
    await target.close();
  });
  const inside = await exchange(lb.address.port, 'hello', { localAddress: '127.0.20.5' });
  assert.equal(inside.received.toString(), 'hello');

  const outside = await exchange(lb.address.port, 'hello', { localAddress: '127.0.20.66' }).then(
    (r) => r.received.toString(),
    (error: NodeJS.ErrnoException) => error.code,
  );
  assert.ok(outside === '' || outside === 'ECONNRESET', `outside client got ${outside}`);
  assert.equal(target.accepted.length, 1, 'the outside client never reached a target');
  assert.equal(lb.stats().flowsRejected['source-range'], 1);
});

test('an invalid source range refuses to start (never an open door)', async () => {
  await assert.rejects(
    startTestLb({ targets: [{ host: '127.0.0.1', port: 9 }], allowedSources: ['127.0.20.0/33'] }),
    (error: unknown) =>
      error instanceof LbConfigInvalid && error.errors.some((e) => e.code === 'LB_BAD_SOURCE_RANGE'),
  );
});
