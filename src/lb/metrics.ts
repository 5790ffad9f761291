// Prometheus metrics of the load balancers, read from plain counters at scrape time: the byte path
// only adds to numbers, and prom-client's label lookups stay off the hot path. Several load
// balancers may share one registry (`keepip up`); each is a set of series with its own `lb` label.
import { Counter, Gauge, type Registry } from 'prom-client';

export interface LbStats {
  flowsActive: number;
  flowsTotal: number;
  bytesToTarget: number;
  bytesToClient: number;
  proxyHeadersSent: { v1: number; v2: number };
  /**
   * Client connections closed without reaching a target, by reason (no-target, connect-failed, header,
   * source-range).
   */
  flowsRejected: Record<string, number>;
  /** Flows ended, by reason (closed, idle, client-reset, target-reset, aborted, connect-failed). */
  flowsEnded: Record<string, number>;
  /** Preservation asked for but impossible for this client, by reason. */
  preservationFallbacks: Record<string, number>;
  hairpinFlows: number;
  /** Flows by read path: raw handles, a Socket with its own buffer, or Node's 'data' events (flow.ts). */
  clientReads: { raw: number; own: number; node: number };
  healthChecks: Record<string, { passed: number; failed: number }>;
}

export function emptyLbStats(): LbStats {
  return {
    flowsActive: 0,
    flowsTotal: 0,
    bytesToTarget: 0,
    bytesToClient: 0,
    proxyHeadersSent: { v1: 0, v2: 0 },
    flowsRejected: {},
    flowsEnded: {},
    preservationFallbacks: {},
    hairpinFlows: 0,
    clientReads: { raw: 0, own: 0, node: 0 },
    healthChecks: {},
  };
}

export interface LbMetricSource {
  name: string;
  stats: LbStats;
  targets(): readonly { key: string; healthy: boolean }[];
}

type Series = [labels: Record<string, string>, value: number];

interface SharedMetrics {
  sources: Set<LbMetricSource>;
}

const shared = new WeakMap<Registry, SharedMetrics>();

/** Adds a load balancer's series to `registry`; the returned function removes them. */
export function registerLbMetrics(registry: Registry, source: LbMetricSource): () => void {
  let metrics = shared.get(registry);
  if (metrics === undefined) {
    metrics = createMetrics(registry);
    shared.set(registry, metrics);
  }
  metrics.sources.add(source);
  const owner = metrics;
  return () => {
    owner.sources.delete(source);
  };
}

/** A counter read from plain stats at scrape time. */
interface CounterDefinition {
  name: string;
  help: string;
  /** Besides `lb`. */
  labelNames: string[];
  read(stats: LbStats): Series[];
}

const byKey = (record: Record<string, number>, label: string): Series[] =>
  Object.entries(record).map(([k, v]) => [{ [label]: k }, v]);

const COUNTERS: readonly CounterDefinition[] = [
  {
    name: 'keepip_lb_flows_total',
    help: 'Client connections sent to a target (a failed connect included)',
    labelNames: [],
    read: (s) => [[{}, s.flowsTotal]],
  },
  {
    name: 'keepip_lb_bytes_total',
    help: 'Bytes forwarded, by direction',
    labelNames: ['direction'],
    read: (s) => [
      [{ direction: 'to_target' }, s.bytesToTarget],
      [{ direction: 'to_client' }, s.bytesToClient],
    ],
  },
  {
    name: 'keepip_lb_proxy_headers_sent_total',
    help: 'PROXY protocol headers sent at the start of upstream connections',
    labelNames: ['version'],
    read: (s) => [
      [{ version: 'v1' }, s.proxyHeadersSent.v1],
      [{ version: 'v2' }, s.proxyHeadersSent.v2],
    ],
  },
  {
    name: 'keepip_lb_flows_rejected_total',
    help: 'Client connections closed without reaching a target',
    labelNames: ['reason'],
    read: (s) => byKey(s.flowsRejected, 'reason'),
  },
  {
    name: 'keepip_lb_flows_ended_total',
    help: 'Flows ended, by how they ended',
    labelNames: ['reason'],
    read: (s) => byKey(s.flowsEnded, 'reason'),
  },
  {
    name: 'keepip_lb_preservation_fallbacks_total',
    help: 'Flows that could not keep the client address (client not local to this machine) and used the source address',
    labelNames: ['reason'],
    read: (s) => byKey(s.preservationFallbacks, 'reason'),
  },
  {
    name: 'keepip_lb_hairpin_flows_total',
    help: 'Flows whose preserved client address equals the target address (an NLB times these out)',
    labelNames: [],
    read: (s) => [[{}, s.hairpinFlows]],
  },
  {
    name: 'keepip_lb_health_checks_total',
    help: 'Health checks by target and result',
    labelNames: ['target', 'result'],
    read: (s) =>
      Object.entries(s.healthChecks).flatMap(([target, r]): Series[] => [
        [{ target, result: 'passed' }, r.passed],
        [{ target, result: 'failed' }, r.failed],
      ]),
  },
];

function createMetrics(registry: Registry): SharedMetrics {
  const sources = new Set<LbMetricSource>();
  // Counters grow by what each source added since the last scrape.
  const reported = new WeakMap<LbMetricSource, Map<string, number>>();
  new Gauge({
    name: 'keepip_lb_flows_active',
    help: 'Client connections currently forwarded to a target',
    labelNames: ['lb'],
    registers: [registry],
    collect() {
      this.reset();
      for (const source of sources) this.set({ lb: source.name }, source.stats.flowsActive);
    },
  });
  for (const definition of COUNTERS) registerCounter(registry, sources, reported, definition);
  new Gauge({
    name: 'keepip_lb_target_healthy',
    help: '1 when the target is in rotation by its health checks, 0 when not',
    labelNames: ['lb', 'target'],
    registers: [registry],
    collect() {
      this.reset();
      for (const source of sources) {
        for (const t of source.targets()) this.set({ lb: source.name, target: t.key }, t.healthy ? 1 : 0);
      }
    },
  });
  return { sources };
}

function registerCounter(
  registry: Registry,
  sources: ReadonlySet<LbMetricSource>,
  reported: WeakMap<LbMetricSource, Map<string, number>>,
  { name, help, labelNames, read }: CounterDefinition,
): void {
  new Counter({
    name,
    help,
    labelNames: ['lb', ...labelNames],
    registers: [registry],
    collect() {
      for (const source of sources) {
        let seen = reported.get(source);
        if (seen === undefined) {
          seen = new Map();
          reported.set(source, seen);
        }
        for (const [labels, value] of read(source.stats)) {
          const key = `${name}${JSON.stringify(labels)}`;
          const delta = value - (seen.get(key) ?? 0);
          const all = { lb: source.name, ...labels };
          if (delta > 0) this.inc(all, delta);
          else if (!seen.has(key)) this.inc(all, 0); // show the series from the start
          seen.set(key, value);
        }
      }
    },
  });
}
