// One /metrics for a pool: every worker's registry read over IPC and summed (prom-client's own cluster
// aggregation, AggregatorRegistry.aggregate), together with the primary's registry, which owns what
// happens once per pod rather than once per worker (the configuration version and reloads, the pool
// itself, the controller's gauges). Per-worker labels appear only on the restart counter.
//
// Counters never go backwards when a worker is replaced: the primary keeps the monotonic values
// (counters, histogram buckets/sum/count, summary sum/count) each worker last reported, and when the
// worker is gone folds them into a total added to every later sum (retainMonotonic). Gauges are the
// live workers' only. A worker that drains hands its final values with its drain answer; what a
// crashed or SIGKILLed worker counted after the last scrape it answered is lost with it: exactly what
// Prometheus loses when one process dies between two scrapes, at no cost on the data path and no IPC
// while nobody scrapes.
import { type Aggregator, AggregatorRegistry, Counter, Gauge, type Registry } from 'prom-client';
import type { CallResult, WorkerPool } from './pool.ts';

/** One value of a metric as getMetricsAsJSON gives it (histograms: one per bucket, _sum and _count). */
export interface MetricValueJson {
  value: number;
  labels: Readonly<Record<string, string | number>>;
  metricName?: string;
}

/** One metric as getMetricsAsJSON gives it. */
export interface MetricJson {
  name: string;
  help: string;
  type: string;
  aggregator?: string;
  values: readonly MetricValueJson[];
}

/** What one worker answered to a metrics call: its metrics, or null when it failed or exited meanwhile. */
export interface WorkerMetrics {
  pid: number;
  metrics: readonly MetricJson[] | null;
}

/** The monotonic values a primary has seen: the last of each live worker, and the exited ones summed. */
export interface Retained {
  readonly last: ReadonlyMap<number, readonly MetricJson[]>;
  readonly exited: readonly MetricJson[];
}

export const NOTHING_RETAINED: Retained = { last: new Map(), exited: [] };

/** What startMetricsServer needs of a registry. */
export interface MetricsSource {
  readonly contentType: Registry['contentType'];
  metrics(): Promise<string>;
}

export interface AggregationRules {
  /** Metrics the primary counts itself: the workers' copies are left out. */
  primaryOwned: ReadonlySet<string>;
  /** How to combine a metric across workers when a sum is wrong (e.g. a 0/1 health gauge: min). */
  aggregators?: Readonly<Record<string, Aggregator>>;
}

/**
 * How long a scrape waits for a worker's metrics: one whose event loop is wedged counts with its last
 * values (retainMonotonic) instead of holding up the pod's /metrics (Prometheus times out at 10 s).
 */
export const WORKER_METRICS_DEADLINE_MS = 1_000;

export function aggregatedMetrics(own: Registry, pool: WorkerPool, rules: AggregationRules): MetricsSource {
  let retained = NOTHING_RETAINED;
  const scrape = async (): Promise<string> => {
    // The drained workers' last words after the live answers: a worker's final values win.
    const answers = [
      ...(await pool.broadcast('metrics', null, { deadlineMs: WORKER_METRICS_DEADLINE_MS })),
      ...pool.takeLastWords(),
    ];
    const primary = withAggregators((await own.getMetricsAsJSON()) as unknown as MetricJson[], rules);
    const live = new Set(pool.pids());
    const scraped = retainMonotonic(
      retained,
      answers.map((a) => workerMetrics(a, rules)),
      live,
    );
    retained = scraped.next;
    return AggregatorRegistry.aggregate([primary, ...scraped.parts] as never).metrics();
  };
  // Scrapes that overlap (two Prometheus replicas, a scraper and a curl) share one: two holding the
  // answer of a worker that exits meanwhile would each fold its last values into the retained total.
  let inflight: Promise<string> | null = null;
  return {
    contentType: own.contentType,
    metrics() {
      inflight ??= scrape().finally(() => {
        inflight = null;
      });
      return inflight;
    },
  };
}

function workerMetrics(answer: CallResult, rules: AggregationRules): WorkerMetrics {
  if (!answer.ok) return { pid: answer.pid, metrics: null };
  const metrics = (answer.value as MetricJson[]).filter((metric) => !rules.primaryOwned.has(metric.name));
  return { pid: answer.pid, metrics: withAggregators(metrics, rules) };
}

/** The rules' aggregators on every part, the primary's too (the first part's aggregator wins). */
function withAggregators(metrics: readonly MetricJson[], rules: AggregationRules): MetricJson[] {
  return metrics.map((metric) => {
    const aggregator = rules.aggregators?.[metric.name];
    return aggregator === undefined ? metric : { ...metric, aggregator };
  });
}

/**
 * One scrape's parts to sum, and what to retain for the next. `live` are the pool's workers now: a
 * worker seen before and no longer live has exited, and its last monotonic values join `exited`. A
 * live worker that did not answer counts with its last values (stale, never lower); one that
 * answered and exited meanwhile counts once, folded. Pure.
 */
export function retainMonotonic(
  previous: Retained,
  answers: readonly WorkerMetrics[],
  live: ReadonlySet<number>,
): { parts: MetricJson[][]; next: Retained } {
  const last = new Map(previous.last);
  const parts: MetricJson[][] = [];
  const fresh = new Set<number>();
  for (const { pid, metrics } of answers) {
    if (metrics === null) continue;
    fresh.add(pid);
    last.set(pid, monotonicOnly(metrics));
    if (live.has(pid)) parts.push([...metrics]);
  }
  let exited = previous.exited;
  for (const [pid, values] of last) {
    if (!live.has(pid)) {
      exited = addUp(exited, values);
      last.delete(pid);
    } else if (!fresh.has(pid)) parts.push([...values]);
  }
  if (exited.length > 0) parts.push([...exited]);
  return { parts, next: { last, exited } };
}

/** The values that only grow while a process lives, of the metrics summed across workers. */
export function monotonicOnly(metrics: readonly MetricJson[]): MetricJson[] {
  return metrics.flatMap((metric) => {
    // A metric combined otherwise (min, first…) has no meaning once its worker is gone.
    if (metric.aggregator !== undefined && metric.aggregator !== 'sum') return [];
    if (metric.type === 'counter' || metric.type === 'histogram') return [metric];
    if (metric.type !== 'summary') return [];
    // A summary's quantiles come and go; its sum and count grow.
    const values = metric.values.filter((v) => /_(?:sum|count)$/.test(v.metricName ?? ''));
    return values.length === 0 ? [] : [{ ...metric, values }];
  });
}

/** `a` and `b` summed, value by value (same metric name, value name and labels). */
export function addUp(a: readonly MetricJson[], b: readonly MetricJson[]): MetricJson[] {
  const byName = new Map<string, { metric: MetricJson; values: Map<string, MetricValueJson> }>();
  for (const metric of [...a, ...b]) {
    let entry = byName.get(metric.name);
    if (entry === undefined) {
      entry = { metric, values: new Map() };
      byName.set(metric.name, entry);
    }
    for (const value of metric.values) {
      const key = valueKey(value);
      const sum = (entry.values.get(key)?.value ?? 0) + value.value;
      entry.values.set(key, { ...value, value: sum });
    }
  }
  return [...byName.values()].map(({ metric, values }) => ({ ...metric, values: [...values.values()] }));
}

function valueKey(value: MetricValueJson): string {
  const labels = Object.entries(value.labels).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  return JSON.stringify([value.metricName ?? '', labels.map(([k, v]) => [k, String(v)])]);
}

/**
 * keepip_workers, keepip_workers_serving, keepip_worker_restarts_total{worker} and
 * keepip_worker_watchdog_kills_total{worker}, read from the pool.
 */
export function registerPoolMetrics(registry: Registry, pool: WorkerPool, size: number): void {
  if (registry.getSingleMetric('keepip_workers') !== undefined) return;
  new Gauge({
    name: 'keepip_workers',
    help: 'Worker processes configured (--workers, worker-processes)',
    registers: [registry],
    collect() {
      this.set(size);
    },
  });
  new Gauge({
    name: 'keepip_workers_serving',
    help: 'Worker processes serving now (less than keepip_workers while one is being restarted)',
    registers: [registry],
    collect() {
      this.set(pool.serving());
    },
  });
  new Counter({
    name: 'keepip_worker_restarts_total',
    help: 'Worker processes started again after one exited while serving, by worker slot',
    labelNames: ['worker'] as const,
    registers: [registry],
    collect() {
      // The pool keeps the count; the counter shows it.
      this.reset();
      for (const [slot, count] of pool.restarts()) this.labels(String(slot)).inc(count);
    },
  });
  new Counter({
    name: 'keepip_worker_watchdog_kills_total',
    help: 'Worker processes killed because they said nothing to the primary for --worker-watchdog, by worker slot',
    labelNames: ['worker'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [slot, count] of pool.watchdogKills()) this.labels(String(slot)).inc(count);
    },
  });
}
