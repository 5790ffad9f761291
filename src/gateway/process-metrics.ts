// ingress-nginx's nginx process metrics, by the names its Grafana dashboard reads
// (nginx_ingress_controller_nginx_process_connections{state="active"}, _cpu_seconds_total,
// _resident_memory_bytes): here of the process serving traffic, one per worker, which the workers'
// /metrics sums (the oldest start time takes the minimum). Read when the registry is read.
import { readFileSync } from 'node:fs';
import { Counter, Gauge, type Registry } from 'prom-client';
import { DEFAULT_REQUEST_METRICS, type RequestMetricsSettings } from '../config/request-metrics.ts';

const PREFIX = 'nginx_ingress_controller_nginx_process_';
const LABELS = ['controller_namespace', 'controller_class', 'controller_pod'] as const;

/** Counted on the data path: connections accepted and handled (not closed over max-worker-connections), requests. */
export interface ServingCounts {
  accepted: number;
  handled: number;
  requests: number;
}

export interface ServingSources {
  counts: ServingCounts;
  /** Client connections open now. */
  open(): number;
  /** Of those, connections with part of a request head read. */
  reading(): number;
  /** Requests being served now. */
  inflight(): number;
  /** The controller's labels (the served snapshot's). */
  labels(): RequestMetricsSettings | undefined;
}

const registered = new WeakMap<Registry, { sources: ServingSources }>();

/** VmSize of /proc/self/status in bytes; null where there is no /proc. */
function virtualMemoryBytes(): number | null {
  try {
    const kb = /^VmSize:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kb === undefined ? null : Number(kb) * 1024;
  } catch {
    return null;
  }
}

/** Registers the metrics once per registry; a later call (a gateway started again) takes the new sources. */
export function registerProcessMetrics(registry: Registry, sources: ServingSources): void {
  const existing = registered.get(registry);
  if (existing !== undefined) {
    existing.sources = sources;
    return;
  }
  const holder = { sources };
  registered.set(registry, holder);
  const labelsNow = () => {
    const s = holder.sources.labels() ?? DEFAULT_REQUEST_METRICS;
    return {
      controller_namespace: s.controllerNamespace,
      controller_class: s.controllerClass,
      controller_pod: s.controllerPod,
    };
  };
  const gauge = (
    name: string,
    help: string,
    read: () => Array<[Record<string, string>, number]>,
    aggregator?: 'min',
  ) =>
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      labelNames: [...LABELS, 'state'],
      registers: [registry],
      ...(aggregator === undefined ? {} : { aggregator }),
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.set({ ...labelsNow(), ...labels }, value);
      },
    });
  const counter = (name: string, help: string, read: () => Array<[Record<string, string>, number]>) =>
    new Counter({
      name: `${PREFIX}${name}`,
      help,
      labelNames: [...LABELS, 'state'],
      registers: [registry],
      collect() {
        // Totals kept elsewhere: the counter is reset to them (they only grow).
        this.reset();
        for (const [labels, value] of read()) this.inc({ ...labelsNow(), ...labels }, value);
      },
    });
  const c = () => holder.sources.counts;
  gauge(
    'connections',
    'current number of client connections with state {active, reading, writing, waiting}',
    () => {
      const open = holder.sources.open();
      const writing = Math.min(open, holder.sources.inflight());
      const reading = Math.min(open - writing, holder.sources.reading());
      return [
        [{ state: 'active' }, open],
        [{ state: 'reading' }, reading],
        [{ state: 'writing' }, writing],
        [{ state: 'waiting' }, open - writing - reading],
      ];
    },
  );
  counter('connections_total', 'total number of connections with state {accepted, handled}', () => [
    [{ state: 'accepted' }, c().accepted],
    [{ state: 'handled' }, c().handled],
  ]);
  counter('requests_total', 'total number of client requests', () => [[{}, c().requests]]);
  gauge('num_procs', 'number of processes', () => [[{}, 1]]);
  counter('cpu_seconds_total', 'Cpu usage in seconds', () => {
    const used = process.cpuUsage();
    return [[{}, (used.user + used.system) / 1e6]];
  });
  gauge('resident_memory_bytes', 'number of bytes of memory in use', () => [[{}, process.memoryUsage.rss()]]);
  gauge('virtual_memory_bytes', 'number of bytes of memory in use', () => {
    const bytes = virtualMemoryBytes();
    return bytes === null ? [] : [[{}, bytes]];
  });
  gauge(
    'oldest_start_time_seconds',
    'start time in seconds since 1970/01/01',
    () => [[{}, Math.floor(Date.now() / 1000 - process.uptime())]],
    'min',
  );
}
