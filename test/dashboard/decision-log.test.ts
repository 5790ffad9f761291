// The decision log on its own: the ring keeps the newest records, sampling keeps a budget per second
// for allowed and denied requests apart while the counters stay exact, record() never throws, and the
// denied-address table (Space-Saving) stays bounded while a late heavy hitter still reaches its top.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createDecisionForwarder } from '../../src/gateway/decision-forwarder.ts';
import { createDecisionLog } from '../../src/gateway/decision-log.ts';
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

/** Records one denial of `client` (one exchange object, its client changed: no allocation per call). */
function denier(log: ReturnType<typeof createDecisionLog>): (client: string) => void {
  const ex = exchange('', true) as { client: string };
  return (client) => {
    ex.client = client;
    log.sink.record(ex as unknown as Exchange, req, 403);
  };
}

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

  test('denied table: a heavy hitter arriving after the table is full reaches the top', () => {
    const log = createDecisionLog({ maxDeniedAddresses: 100 });
    const deny = denier(log);
    for (let i = 0; i < 5_000; i += 1) deny(`100.64.${i >> 8}.${i & 255}`);
    for (let i = 0; i < 60; i += 1) deny('192.0.2.66');
    const [top] = log.topDenied(10);
    assert.equal(top?.address, '192.0.2.66');
    // It took the place of an entry denied `error` times: its own 60 denials are counted exactly.
    assert.equal(top?.count, 60);
    assert.ok(top !== undefined && top.error > 0, 'it entered a full table');
    assert.equal(log.counters.denied, 5_060);
  });

  test('denied table: a full table evicts the least denied address, the least recently denied of those', () => {
    let now = 0;
    const log = createDecisionLog({ maxDeniedAddresses: 3, now: () => (now += 1) });
    const deny = denier(log);
    for (const address of ['10.0.0.1', '10.0.0.2', '10.0.0.2', '10.0.0.3', '10.0.0.4']) deny(address);
    // 10.0.0.4 took the place of 10.0.0.1 (1 denial, like 10.0.0.3, but longer ago), inheriting its 1 as
    // `error`; among equal counts the one that may have had more comes first.
    assert.deepEqual(
      log.topDenied(10).map((t) => [t.address, t.count, t.error]),
      [
        ['10.0.0.2', 2, 0],
        ['10.0.0.4', 1, 1],
        ['10.0.0.3', 1, 0],
      ],
    );
    assert.equal(log.counters.otherDenied, 1);
  });

  test('denied table: never more addresses than its cap, and every denial is accounted for', () => {
    const log = createDecisionLog({ maxDeniedAddresses: 100 });
    const deny = denier(log);
    for (let i = 0; i < 20_000; i += 1) {
      deny(`100.64.${(i % 3_000) >> 8}.${i & 255}`);
      if (i % 997 === 0) {
        const all = log.topDenied(Number.MAX_SAFE_INTEGER);
        assert.ok(all.length <= 100, `${all.length} addresses`);
        const counted = all.reduce((sum, t) => sum + t.count, 0);
        assert.equal(counted + log.counters.otherDenied, log.counters.denied);
      }
    }
    assert.equal(log.topDenied(Number.MAX_SAFE_INTEGER).length, 100);
  });

  test('denied table: counts are bounds of the truth, exact for an entry never evicted', () => {
    const log = createDecisionLog({ maxDeniedAddresses: 50 });
    const record = denier(log);
    const truth = new Map<string, number>();
    const deny = (address: string) => {
      truth.set(address, (truth.get(address) ?? 0) + 1);
      record(address);
    };
    let seed = 7;
    const next = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 30_000; i += 1) {
      // Skewed: a few addresses are denied often, most rarely; one early, steady client is never evicted.
      deny(`10.9.0.${Math.floor(400 * next() ** 4)}`);
      if (i % 20 === 0) deny('192.0.2.1');
    }
    const all = log.topDenied(Number.MAX_SAFE_INTEGER);
    for (const t of all) {
      const real = truth.get(t.address) ?? 0;
      assert.ok(
        t.count <= real && real <= t.count + t.error,
        `${t.address}: ${real} vs ${t.count}+${t.error}`,
      );
      // An error of 0 means it got a free slot and was never evicted since (a return inherits an error).
      if (t.error === 0) assert.equal(t.count, real, t.address);
    }
    const steady = all.find((t) => t.address === '192.0.2.1');
    assert.deepEqual(steady && [steady.count, steady.error], [truth.get('192.0.2.1'), 0]);
    // Space-Saving's guarantee: every address denied more than denied / cap times is tracked.
    for (const [address, real] of truth)
      if (real > log.counters.denied / 50)
        assert.ok(
          all.some((t) => t.address === address),
          address,
        );
  });

  test('denied table: the cost per denial stays bounded (1,000,000 distinct addresses, default cap)', () => {
    const log = createDecisionLog({ keepDeniedPerSecond: 1, now: () => 5_000 });
    const deny = denier(log);
    for (let i = 0; i < 1_000_000; i += 1) {
      deny(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
      if (i % 5 === 0) deny('192.0.2.66');
    }
    assert.equal(log.counters.denied, 1_200_000);
    assert.equal(log.topDenied(Number.MAX_SAFE_INTEGER).length, 10_000);
    const [top] = log.topDenied(1);
    assert.deepEqual(top && [top.address, top.count, top.error], ['192.0.2.66', 200_000, 0]);
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

/** A location as the snapshot holds it: more than the dashboard shows, a function among it (never cloned). */
function location(name: string, path: string) {
  return {
    ingress: { namespace: 'shop', name },
    path,
    pathType: 'Prefix',
    allow: { valid: true, cidrs: ['127.0.9.0/24'], raw: '127.0.9.0/24', from: 'annotation' },
    deny: null,
    backend: { service: { namespace: 'shop', name }, port: 80, upstreamName: `shop-${name}-80` },
    rewriteTarget: null,
    compiled: () => 'a snapshot object the IPC channel could not carry',
  };
}

describe('decision log fed by workers (--workers with --dashboard)', () => {
  const routes = [null, location('web', '/'), location('api', '/v1')];

  /** One request of a generated stream: when, which route, from whom, denied or not. */
  const stream = fc.array(
    fc.record({
      worker: fc.integer({ min: 1, max: 3 }),
      dt: fc.integer({ min: 0, max: 700 }),
      route: fc.integer({ min: 0, max: routes.length - 1 }),
      client: fc.integer({ min: 1, max: 12 }),
      denied: fc.boolean(),
      flush: fc.boolean(),
    }),
    { maxLength: 300 },
  );

  test('the workers batches add up to what one process would count (charts, denied table, counters)', () => {
    const seed = Number(process.env.KEEPIP_FC_SEED ?? 1206);
    fc.assert(
      fc.property(stream, (requests) => {
        let now = 50_000;
        const clock = () => now;
        const single = createDecisionLog({ keepPerSecond: 1e9, keepDeniedPerSecond: 1e9, now: clock });
        const primary = createDecisionLog({ keepPerSecond: 1e9, keepDeniedPerSecond: 1e9, now: clock });
        // The IPC channel: a structured clone of each batch (what process.send with 'advanced' does).
        const forwarders = [1, 2, 3].map((worker) =>
          createDecisionForwarder({
            worker,
            flushMs: 3_600_000,
            keepPerSecond: 1e9,
            keepDeniedPerSecond: 1e9,
            now: clock,
            send: (batch) => primary.ingest(structuredClone(batch)),
          }),
        );
        for (const r of requests) {
          now += r.dt;
          const ex = exchange(`127.0.8.${r.client}`, r.denied) as unknown as { route: unknown };
          ex.route = routes[r.route] === null ? null : { location: routes[r.route], matchedBy: 'prefix' };
          single.sink.record(ex as unknown as Exchange, req, r.denied ? 403 : 200);
          forwarders[r.worker - 1]!.sink.record(ex as unknown as Exchange, req, r.denied ? 403 : 200);
          if (r.flush) forwarders[r.worker - 1]!.flush();
        }
        for (const forwarder of forwarders) forwarder.close();
        assert.deepEqual(primary.counters, single.counters);
        assert.deepEqual(primary.seconds(), single.seconds());
        assert.deepEqual(primary.topDenied(100), single.topDenied(100));
        const shown = (log: typeof single) =>
          log
            .records()
            .map((r) => `${r.time} ${r.client} ${r.status} ${r.location?.path ?? '-'} ${r.denied}`)
            .sort();
        assert.deepEqual(shown(primary), shown(single));
        for (const record of primary.records()) {
          assert.ok(record.worker !== null && record.worker >= 1 && record.worker <= 3);
          assert.ok(
            record.location === null || !('compiled' in record.location),
            'only what is shown crossed',
          );
        }
        assert.deepEqual(
          primary.records().map((r) => r.id),
          primary.records().map((_, i) => i + 1),
          'the primary numbers the records itself',
        );
      }),
      { seed, numRuns: Number(process.env.KEEPIP_FC_RUNS ?? 60) },
    );
  });

  test('a batch for an earlier second lands in that second; one older than the window is dropped', () => {
    let now = 100_000;
    const primary = createDecisionLog({ seconds: 3, now: () => now });
    const early = createDecisionForwarder({
      worker: 1,
      flushMs: 3_600_000,
      now: () => now,
      send: primary.ingest,
    });
    const late = createDecisionForwarder({
      worker: 2,
      flushMs: 3_600_000,
      now: () => now,
      send: primary.ingest,
    });
    early.sink.record(exchange('127.0.8.1', false), req, 200);
    now = 102_500;
    late.sink.record(exchange('127.0.8.2', false), req, 200);
    late.flush();
    early.flush();
    assert.deepEqual(
      primary.seconds().map((s) => [s.second, s.routes.get('_')?.requests]),
      [
        [100, 1],
        [102, 1],
      ],
    );
    now = 110_000;
    late.sink.record(exchange('127.0.8.2', false), req, 200);
    late.sink.record(exchange('127.0.8.3', false), req, 200);
    now = 111_000;
    late.sink.record(exchange('127.0.8.2', false), req, 200);
    now = 112_000;
    late.sink.record(exchange('127.0.8.2', false), req, 200);
    late.flush();
    early.sink.record(exchange('127.0.8.1', false), req, 200);
    now = 100_000;
    early.sink.record(exchange('127.0.8.1', false), req, 200);
    early.flush();
    assert.deepEqual(
      primary.seconds().map((s) => [s.second, s.routes.get('_')?.requests]),
      [
        [110, 2],
        [111, 1],
        [112, 2],
      ],
      'the window keeps three seconds; second 100 came too late for it',
    );
    assert.equal(primary.counters.seen, 8, 'every request is still counted');
    early.close();
    late.close();
  });

  test('a batch names at most maxDeniedAddresses addresses; the rest are counted, not named', () => {
    const primary = createDecisionLog({ keepDeniedPerSecond: 1, now: () => 7_000 });
    const forwarder = createDecisionForwarder({
      worker: 1,
      flushMs: 3_600_000,
      maxDeniedAddresses: 100,
      now: () => 7_000,
      send: primary.ingest,
    });
    for (let i = 0; i < 1_000; i += 1)
      forwarder.sink.record(exchange(`10.0.${i >> 8}.${i & 255}`, true), req, 403);
    for (let i = 0; i < 50; i += 1) forwarder.sink.record(exchange('10.0.0.7', true), req, 403);
    forwarder.close();
    assert.equal(primary.counters.denied, 1_050);
    assert.equal(primary.counters.otherDenied, 900);
    assert.equal(primary.topDenied(1_000).length, 100);
    assert.deepEqual(
      primary.topDenied(1).map((t) => [t.address, t.count]),
      [['10.0.0.7', 51]],
    );
    assert.equal(primary.counters.kept, 1);
    assert.equal(primary.counters.sampledOut, 1_049);
  });

  test('record() never throws and a batch that cannot be read is counted as a failure', () => {
    const primary = createDecisionLog();
    const forwarder = createDecisionForwarder({ worker: 1, flushMs: 3_600_000, send: primary.ingest });
    forwarder.sink.record(null as unknown as Exchange, req, 200);
    forwarder.close();
    assert.equal(primary.counters.failures, 1);
    primary.ingest({ records: 'nonsense' } as unknown as Parameters<typeof primary.ingest>[0]);
    assert.equal(primary.counters.failures, 2);
  });
});
