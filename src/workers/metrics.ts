// One /metrics for a pool: every worker's registry read over IPC and summed (prom-client's own cluster
// aggregation, AggregatorRegistry.aggregate), together with the primary's registry, which owns what
// happens once per pod rather than once per worker (the configuration version and reloads, the pool
// itself, the controller's gauges). Per-worker labels appear only on the restart counter.
import { type Aggregator, AggregatorRegistry, Counter, Gauge, type Registry } from 'prom-client';
import type { CallResult, WorkerPool } from './pool.ts';

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

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

export function aggregatedMetrics(own: Registry, pool: WorkerPool, rules: AggregationRules): MetricsSource {
  return {
    contentType: own.contentType,
    async metrics() {
      const answers = await pool.broadcast('metrics');
      const parts = [
        withAggregators(await own.getMetricsAsJSON(), rules),
        ...answers.flatMap((a) => workerPart(a, rules)),
      ];
      return AggregatorRegistry.aggregate(parts as never).metrics();
    },
  };
}

function workerPart(answer: CallResult, rules: AggregationRules): MetricsJson[] {
  if (!answer.ok) return [];
  const metrics = (answer.value as MetricsJson).filter((metric) => !rules.primaryOwned.has(metric.name));
  return [withAggregators(metrics, rules)];
}

/** The rules' aggregators on every part, the primary's too (the first part's aggregator wins). */
function withAggregators(metrics: MetricsJson, rules: AggregationRules): MetricsJson {
  return metrics.map((metric) => {
    const aggregator = rules.aggregators?.[metric.name];
    return aggregator === undefined ? metric : { ...metric, aggregator };
  });
}

/** keepip_workers, keepip_workers_serving and keepip_worker_restarts_total{worker}, read from the pool. */
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
}
