// The decision log on its own: the ring keeps the newest records, sampling keeps a budget per second
// for allowed and denied requests apart while the counters stay exact, and record() never throws.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createDecisionLog } from '../../src/dashboard/decision-log.ts';
import type { Exchange, GatewayRequest } from '../../src/gateway/exchange.ts';

const DENY = { outcome: 'deny', rule: 'allowlist-miss', entry: null, detail: 'not in the allowlist' };

function exchange(client: string, denied: boolean): Exchange {
  return {
    snap: {
      version: 3,
      settings: { forwardedForHeader: 'X-Forwarded-For', useProxyProtocol: false, blockCidrs: null },
      trustedCidrs: ['127.0.0.0/8'],
      trustSource: 'flag',
    },
    conn: {
      id: 1,
      peerAddress: client,
      peerPort: 4000,
      proxySource: null,
      proxyPort: null,
      serverAddress: '127.0.0.1',
      serverPort: 80,
      scheme: 'http',
    },
    startedAt: performance.now(),
    client,
    host: 'a.example',
    serverName: 'a.example',
    reqId: 'r',
    route: null,
    upstreamName: null,
    attempts: [],
    clientIp: null,
    verdict: denied ? DENY : null,
    decidedBy: null,
  } as unknown as Exchange;
}

const req = { method: 'GET', url: '/', headers: {} } as unknown as GatewayRequest;

describe('decision log', () => {
  test('the ring keeps the newest `capacity` records, in order', () => {
    let now = 0;
    const log = createDecisionLog({ capacity: 3, keepPerSecond: 1000, now: () => now });
    for (let i = 1; i <= 5; i += 1) {
      now = i;
      log.sink.record(exchange(`127.0.0.${i}`, false), req, 200);
    }
    assert.deepEqual(
      log.records().map((r) => r.client),
      ['127.0.0.3', '127.0.0.4', '127.0.0.5'],
    );
    assert.equal(log.find(1), undefined);
    assert.equal(log.find(5)?.client, '127.0.0.5');
  });

  test('under load: budgets per second, apart for denials; counters stay exact', () => {
    let now = 10_000;
    const log = createDecisionLog({ keepPerSecond: 2, keepDeniedPerSecond: 1, now: () => now });
    for (let i = 0; i < 10; i += 1) log.sink.record(exchange('127.0.0.1', false), req, 200);
    for (let i = 0; i < 3; i += 1) log.sink.record(exchange('127.0.0.9', true), req, 403);
    assert.equal(log.records().length, 3, 'two allowed and one denied kept');
    assert.equal(log.records().filter((r) => r.denied).length, 1);
    assert.equal(log.counters.sampledOut, 10);
    assert.deepEqual(
      log.topDenied(5).map((t) => [t.address, t.count]),
      [['127.0.0.9', 3]],
    );
    const [bucket] = log.seconds();
    assert.deepEqual(bucket?.routes.get('_'), { requests: 13, denials: 3 });
    now += 1000; // a new second, a new budget
    log.sink.record(exchange('127.0.0.9', true), req, 403);
    assert.equal(log.records().filter((r) => r.denied).length, 2);
  });

  test('record() never throws, whatever it is handed', () => {
    const log = createDecisionLog();
    assert.doesNotThrow(() => log.sink.record({} as Exchange, req, 200));
    assert.equal(log.counters.failures, 1);
  });

  test('subscribers get new records in batches from the timer', async () => {
    const log = createDecisionLog({ flushMs: 10 });
    const batches: number[][] = [];
    let resolve: () => void = () => {};
    const got = new Promise<void>((r) => {
      resolve = r;
    });
    const off = log.subscribe((batch) => {
      batches.push(batch.map((r) => r.id));
      resolve();
    });
    log.sink.record(exchange('127.0.0.1', false), req, 200);
    log.sink.record(exchange('127.0.0.2', true), req, 403);
    await got;
    off();
    log.close();
    assert.deepEqual(batches, [[1, 2]]);
  });
});
