// The primary's /metrics keeps what replaced workers counted (src/workers/metrics.ts): the folding as a
// pure function on real prom-client registries' JSON, then aggregatedMetrics over a stand-in pool whose
// workers are replaced between scrapes. Counters and histograms never go backwards; gauges are live only.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import {
  addUp,
  aggregatedMetrics,
  type MetricJson,
  monotonicOnly,
  NOTHING_RETAINED,
  type Retained,
  retainMonotonic,
} from '../../src/workers/metrics.ts';
import type { CallResult, WorkerPool } from '../../src/workers/pool.ts';
import { metricSum } from '../helpers/metrics.ts';

/** A worker's registry: requests by code, an in-flight gauge, a latency histogram, a min-combined gauge. */
function workerRegistry() {
  const registry = new Registry();
  const requests = new Counter({
    name: 'requests_total',
    help: 'h',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const inflight = new Gauge({ name: 'inflight', help: 'h', registers: [registry] });
  const latency = new Histogram({
    name: 'latency_seconds',
    help: 'h',
    buckets: [0.1, 1],
    registers: [registry],
  });
  new Gauge({ name: 'healthy', help: 'h', registers: [registry], aggregator: 'min' }).set(1);
  return { registry, requests, inflight, latency };
}

type Worker = ReturnType<typeof workerRegistry>;

const json = async (w: Worker) => (await w.registry.getMetricsAsJSON()) as unknown as MetricJson[];

/** The parts summed the way the primary sums them, as Prometheus text. */
async function render(parts: MetricJson[][]): Promise<string> {
  const { AggregatorRegistry } = await import('prom-client');
  return AggregatorRegistry.aggregate(parts as never).metrics();
}

describe('retainMonotonic', () => {
  test("an exited worker's counters and histograms are kept; its gauges are not", async () => {
    const a = workerRegistry();
    const b = workerRegistry();
    a.requests.inc({ code: '200' }, 7);
    a.requests.inc({ code: '503' }, 2);
    a.inflight.set(3);
    a.latency.observe(0.05);
    a.latency.observe(0.5);
    b.requests.inc({ code: '200' }, 4);
    b.inflight.set(1);
    const first = retainMonotonic(
      NOTHING_RETAINED,
      [
        { pid: 10, metrics: await json(a) },
        { pid: 11, metrics: await json(b) },
      ],
      new Set([10, 11]),
    );
    const before = await render(first.parts);
    assert.equal(metricSum(before, 'requests_total'), 13);
    assert.equal(metricSum(before, 'inflight'), 4);

    // Worker 10 is killed; 12 replaces it and serves one request.
    const c = workerRegistry();
    c.requests.inc({ code: '200' });
    c.latency.observe(2);
    b.requests.inc({ code: '200' });
    const second = retainMonotonic(
      first.next,
      [
        { pid: 11, metrics: await json(b) },
        { pid: 12, metrics: await json(c) },
      ],
      new Set([11, 12]),
    );
    const after = await render(second.parts);
    assert.equal(metricSum(after, 'requests_total'), 15);
    assert.equal(metricSum(after, 'requests_total', { code: '200' }), 13);
    assert.equal(metricSum(after, 'requests_total', { code: '503' }), 2);
    assert.equal(metricSum(after, 'latency_seconds_count'), 3);
    assert.equal(metricSum(after, 'latency_seconds_bucket', { le: '0.1' }), 1);
    assert.equal(metricSum(after, 'latency_seconds_bucket', { le: '1' }), 2);
    assert.equal(metricSum(after, 'latency_seconds_bucket', { le: '+Inf' }), 3);
    assert.equal(metricSum(after, 'latency_seconds_sum'), 2.55);
    assert.equal(metricSum(after, 'inflight'), 1, "the dead worker's gauge is gone");
    assert.equal(metricSum(after, 'healthy'), 1, 'a min-combined gauge: the live ones only');
    assert.deepEqual([...second.next.last.keys()], [11, 12]);
  });

  test('exits fold into one retained total that keeps growing, whatever the number of restarts', async () => {
    let retained: Retained = NOTHING_RETAINED;
    let total = 0;
    for (let pid = 100; pid < 110; pid++) {
      const w = workerRegistry();
      w.requests.inc({ code: '200' }, pid);
      total += pid;
      // It is scraped while live, then gone by the next scrape.
      retained = retainMonotonic(retained, [{ pid, metrics: await json(w) }], new Set([pid])).next;
      const next = retainMonotonic(retained, [], new Set());
      retained = next.next;
      assert.equal(metricSum(await render(next.parts), 'requests_total'), total);
    }
    assert.equal(retained.last.size, 0, 'nothing kept per dead worker');
    assert.equal(retained.exited.length, 2, 'one retained entry per metric (counter, histogram)');
  });

  test('a live worker that does not answer counts with its last values, once', async () => {
    const a = workerRegistry();
    a.requests.inc({ code: '200' }, 5);
    const first = retainMonotonic(NOTHING_RETAINED, [{ pid: 1, metrics: await json(a) }], new Set([1]));
    const missed = retainMonotonic(first.next, [{ pid: 1, metrics: null }], new Set([1]));
    assert.equal(metricSum(await render(missed.parts), 'requests_total'), 5);
    a.requests.inc({ code: '200' });
    const back = retainMonotonic(missed.next, [{ pid: 1, metrics: await json(a) }], new Set([1]));
    assert.equal(metricSum(await render(back.parts), 'requests_total'), 6, 'fresh replaces last');
  });

  test('a worker that answered and exited before the sum counts once, folded', async () => {
    const a = workerRegistry();
    a.requests.inc({ code: '200' }, 3);
    a.inflight.set(2);
    const scraped = retainMonotonic(NOTHING_RETAINED, [{ pid: 1, metrics: await json(a) }], new Set());
    const text = await render(scraped.parts);
    assert.equal(metricSum(text, 'requests_total'), 3);
    assert.equal(metricSum(text, 'inflight'), 0);
    assert.equal(scraped.next.last.size, 0);
  });

  test('a worker killed before any scrape leaves nothing (its counts were never seen)', async () => {
    const scraped = retainMonotonic(NOTHING_RETAINED, [], new Set([2]));
    assert.deepEqual(scraped, { parts: [], next: { last: new Map(), exited: [] } });
  });
});

test("monotonicOnly: counters, histograms, a summary's sum and count; no gauges, no non-sum aggregators", async () => {
  const registry = new Registry();
  new Counter({ name: 'c_total', help: 'h', registers: [registry] }).inc();
  new Counter({ name: 'c_first_total', help: 'h', registers: [registry], aggregator: 'first' }).inc();
  new Gauge({ name: 'g', help: 'h', registers: [registry] }).set(1);
  new Histogram({ name: 'h_seconds', help: 'h', buckets: [1], registers: [registry] }).observe(1);
  new Summary({ name: 's_seconds', help: 'h', percentiles: [0.5], registers: [registry] }).observe(1);
  const kept = monotonicOnly((await registry.getMetricsAsJSON()) as unknown as MetricJson[]);
  assert.deepEqual(
    kept.map((m) => [m.name, m.values.map((v) => v.metricName ?? m.name)]),
    [
      ['c_total', ['c_total']],
      ['h_seconds', ['h_seconds_bucket', 'h_seconds_bucket', 'h_seconds_sum', 'h_seconds_count']],
      ['s_seconds', ['s_seconds_sum', 's_seconds_count']],
    ],
  );
});

test('addUp sums value by value, labels in any order', () => {
  const metric = (values: MetricJson['values']): MetricJson => ({
    name: 'x',
    help: 'h',
    type: 'counter',
    values,
  });
  const sum = addUp(
    [metric([{ value: 1, labels: { a: '1', b: '2' } }])],
    [
      metric([
        { value: 2, labels: { b: '2', a: '1' } },
        { value: 5, labels: { a: '9', b: '2' } },
      ]),
    ],
  );
  assert.deepEqual(
    sum[0]?.values.map((v) => v.value),
    [3, 5],
  );
});

/** A stand-in pool: the workers are registries answered by pid; `kill` replaces one. */
function fakePool(workers: Map<number, Worker>): WorkerPool {
  return {
    broadcast: async () =>
      Promise.all(
        [...workers].map(
          async ([pid, w], i): Promise<CallResult> => ({ slot: i + 1, pid, ok: true, value: await json(w) }),
        ),
      ),
    pids: () => [...workers.keys()],
    takeLastWords: () => [],
  } as Partial<WorkerPool> as WorkerPool;
}

test('aggregatedMetrics: /metrics never goes backwards as workers are replaced, primary-owned metrics left out', async () => {
  const own = new Registry();
  new Counter({ name: 'reloads_total', help: 'h', registers: [own] }).inc();
  const workers = new Map([
    [1, workerRegistry()],
    [2, workerRegistry()],
  ]);
  const source = aggregatedMetrics(own, fakePool(workers), { primaryOwned: new Set(['reloads_total']) });
  let served = 0;
  let seen = 0;
  for (let round = 0; round < 6; round++) {
    for (const w of workers.values()) {
      w.requests.inc({ code: '200' }, 3);
      served += 3;
    }
    const text = await source.metrics();
    const now = metricSum(text, 'requests_total');
    assert.equal(now, served, `round ${round}: every request scraped before its worker died is kept`);
    assert.ok(now >= seen);
    seen = now;
    assert.equal(metricSum(text, 'reloads_total'), 1, "the primary's own, not the workers' copies");
    // Replace the oldest worker (as a SIGKILL and a restart would) before the next round.
    const [oldest] = workers.keys();
    workers.delete(oldest as number);
    workers.set(100 + round, workerRegistry());
  }
});

test("aggregatedMetrics: a worker's drain answer (its last words) counts what it did after the last scrape", async () => {
  const workers = new Map([
    [1, workerRegistry()],
    [2, workerRegistry()],
  ]);
  const lastWords: CallResult[] = [];
  const pool = {
    ...fakePool(workers),
    takeLastWords: () => lastWords.splice(0),
  } as WorkerPool;
  const source = aggregatedMetrics(new Registry(), pool, { primaryOwned: new Set() });
  workers.get(1)!.requests.inc({ code: '200' }, 2);
  workers.get(2)!.requests.inc({ code: '200' }, 3);
  assert.equal(metricSum(await source.metrics(), 'requests_total'), 5);
  // Worker 2 serves 4 more, drains (its answer carries its final values) and exits before any scrape.
  const leaving = workers.get(2)!;
  leaving.requests.inc({ code: '200' }, 4);
  lastWords.push({ slot: 2, pid: 2, ok: true, value: await json(leaving) });
  workers.delete(2);
  assert.equal(metricSum(await source.metrics(), 'requests_total'), 9, 'nothing it counted is lost');
  // Handed out once: the next scrape folds it in once, not twice.
  workers.get(1)!.requests.inc({ code: '200' }, 1);
  assert.equal(metricSum(await source.metrics(), 'requests_total'), 10);
});
