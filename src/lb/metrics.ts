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
  /** Client connections closed without reaching a target, by reason (no-target, connect-failed, header). */
  flowsRejected: Record<string, number>;
  /** Flows ended, by reason (closed, idle, client-reset, target-reset, aborted, connect-failed). */
  flowsEnded: Record<string, number>;
  /** Preservation asked for but impossible for this client, by reason. */
  preservationFallbacks: Record<string, number>;
  hairpinFlows: number;
  /** Flows by how client bytes are read (own buffer, or Node's when adopting the socket was impossible). */
  clientReads: { own: number; node: number };
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
    clientReads: { own: 0, node: 0 },
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

function createMetrics(registry: Registry): SharedMetrics {
  const sources = new Set<LbMetricSource>();
  // Counters grow by what each source added since the last scrape.
  const reported = new WeakMap<LbMetricSource, Map<string, number>>();
  const counter = (
    name: string,
    help: string,
    labelNames: string[],
    read: (stats: LbStats) => Series[],
  ): void => {
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
  };
  const byKey = (record: Record<string, number>, label: string): Series[] =>
    Object.entries(record).map(([k, v]) => [{ [label]: k }, v]);

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
  counter('keepip_lb_flows_total', 'Client connections forwarded to a target', [], (s) => [
    [{}, s.flowsTotal],
  ]);
  counter('keepip_lb_bytes_total', 'Bytes forwarded, by direction', ['direction'], (s) => [
    [{ direction: 'to_target' }, s.bytesToTarget],
    [{ direction: 'to_client' }, s.bytesToClient],
  ]);
  counter(
    'keepip_lb_proxy_headers_sent_total',
    'PROXY protocol headers sent at the start of upstream connections',
    ['version'],
    (s) => [
      [{ version: 'v1' }, s.proxyHeadersSent.v1],
      [{ version: 'v2' }, s.proxyHeadersSent.v2],
    ],
  );
  counter(
    'keepip_lb_flows_rejected_total',
    'Client connections closed without reaching a target',
    ['reason'],
    (s) => byKey(s.flowsRejected, 'reason'),
  );
  counter('keepip_lb_flows_ended_total', 'Flows ended, by how they ended', ['reason'], (s) =>
    byKey(s.flowsEnded, 'reason'),
  );
  counter(
    'keepip_lb_preservation_fallbacks_total',
    'Flows that could not keep the client address (client not local to this machine) and used the source address',
    ['reason'],
    (s) => byKey(s.preservationFallbacks, 'reason'),
  );
  counter(
    'keepip_lb_hairpin_flows_total',
    'Flows whose preserved client address equals the target address (an NLB times these out)',
    [],
    (s) => [[{}, s.hairpinFlows]],
  );
  counter('keepip_lb_health_checks_total', 'Health checks by target and result', ['target', 'result'], (s) =>
    Object.entries(s.healthChecks).flatMap(([target, r]): Series[] => [
      [{ target, result: 'passed' }, r.passed],
      [{ target, result: 'failed' }, r.failed],
    ]),
  );
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
