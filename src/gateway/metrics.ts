// The gateway's Prometheus metrics. What moves on every request is counted without prom-client on the
// way (it hashes the label values on every call): request counters in plain tallies flushed when the
// registry is read, upstream durations in histogram.ts.
import { Counter, Gauge, Registry } from 'prom-client';
import type { Topology } from '../config/model.ts';
import { CONNECTION_CLOSE_REASONS, type ConnectionCloseReason } from './client-timeouts.ts';
import { FastHistogram } from './histogram.ts';
import type { ServingCounts } from './process-metrics.ts';
import { createReloadMetrics } from './reload-metrics.ts';
import { createRequestMetrics, type RequestMetrics } from './request-metrics.ts';

export interface GatewayMetrics {
  registry: Registry;
  /** ingress-nginx's per-request metrics (nginx_ingress_controller_*), src/gateway/request-metrics.ts. */
  ingressNginx: RequestMetrics;
  /** Connections accepted and handled, requests: for nginx_process_* (src/gateway/process-metrics.ts). */
  serving: ServingCounts;
  /**
   * One request answered (any status, proxied or not). `ingress` is "namespace/name" or "" when none
   * matched; `protocol` (`HTTP/1.1`, `HTTP/2.0`…; '' when unknown) also counts it by protocol.
   */
  request(ingress: string, host: string, status: number, protocol?: string): void;
  /** An access decision that turned a client away: rule is block-cidrs, denylist, allowlist-miss, invalid-rules… */
  denial(rule: string): void;
  /** A PROXY header accepted (reason "ok") or rejected (untrusted, timeout, malformed, oversize, missing…). */
  proxyHeader(result: 'accepted' | 'rejected' | 'unexpected', reason: string): void;
  /** Seconds from dispatch to the end of the upstream response. */
  upstreamDuration(upstream: string, seconds: number): void;
  /** `served`: the configuration served after it (the new one, or the one kept), for ingress-nginx's reload metrics. */
  reload(result: 'applied' | 'rejected', version: number, served?: Topology): void;
  /** A deadline made the gateway close a client connection (client-timeouts.ts). */
  connectionClosed(reason: ConnectionCloseReason): void;
  /** Buffered request bodies now (request-body-buffer.ts): bytes in memory, temporary files and their bytes. */
  bodyBufferUsage(memoryBytes: number, files: number, fileBytes: number): void;
  /** A request body read whole before the backend, kept in memory or in a temporary file. */
  bodyBuffered(where: 'memory' | 'file'): void;
}

/**
 * A counter child counted in a plain number on the data path; prom-client gets the sum when the
 * registry is read (the counter's collect), instead of hashing the label values on every request.
 */
class Tally {
  readonly child: Counter.Internal;
  pending = 0;

  constructor(child: Counter.Internal) {
    this.child = child;
  }
}

function flushTallies(tallies: readonly Tally[]): void {
  for (const tally of tallies) {
    if (tally.pending === 0) continue;
    tally.child.inc(tally.pending);
    tally.pending = 0;
  }
}

/** The gateway's metric families, registered in `registry`; counted tallies are flushed when read. */
function defineMetrics(registry: Registry, tallies: { requests: Tally[]; byProtocol: Tally[] }) {
  return {
    requests: new Counter({
      name: 'keepip_gateway_requests_total',
      help: 'Requests answered by the gateway, by Ingress, host and status',
      labelNames: ['ingress', 'host', 'status'] as const,
      registers: [registry],
      collect: () => flushTallies(tallies.requests),
    }),
    byProtocol: new Counter({
      name: 'keepip_gateway_requests_by_protocol_total',
      help: 'Requests answered by the gateway, by the protocol the client spoke (HTTP/1.0, HTTP/1.1, HTTP/2.0)',
      labelNames: ['protocol'] as const,
      registers: [registry],
      collect: () => flushTallies(tallies.byProtocol),
    }),
    denials: new Counter({
      name: 'keepip_gateway_denials_total',
      help: 'Requests turned away by an access rule (403) or a fail-closed location (503), by rule',
      labelNames: ['rule'] as const,
      registers: [registry],
    }),
    proxyHeaders: new Counter({
      name: 'keepip_gateway_proxy_headers_total',
      help: 'PROXY protocol headers accepted or rejected, by reason',
      labelNames: ['result', 'reason'] as const,
      registers: [registry],
    }),
    upstream: new FastHistogram({
      name: 'keepip_gateway_upstream_duration_seconds',
      help: 'Time from sending a request upstream to the end of its response',
      labelName: 'upstream',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    reloads: new Counter({
      name: 'keepip_gateway_config_reloads_total',
      help: 'Configuration changes applied or rejected',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    version: new Gauge({
      name: 'keepip_gateway_config_version',
      help: 'Version of the configuration snapshot being served',
      registers: [registry],
    }),
    bodyMemory: new Gauge({
      name: 'keepip_gateway_request_body_buffer_bytes',
      help: 'Request body bytes held in memory by proxy-request-buffering now, across requests',
      registers: [registry],
    }),
    bodyFiles: new Gauge({
      name: 'keepip_gateway_request_body_temp_files',
      help: 'Temporary files holding buffered request bodies now (each unlinked when opened)',
      registers: [registry],
    }),
    bodyFileBytes: new Gauge({
      name: 'keepip_gateway_request_body_temp_file_bytes',
      help: 'Buffered request body bytes in temporary files now (disk in use)',
      registers: [registry],
    }),
    bodiesBuffered: new Counter({
      name: 'keepip_gateway_request_bodies_buffered_total',
      help: 'Request bodies read whole before the backend was contacted, by where they were kept',
      labelNames: ['where'] as const,
      registers: [registry],
    }),
    closes: new Counter({
      name: 'keepip_gateway_connections_closed_total',
      help: 'Client connections the gateway closed because a deadline passed, an upgrade was refused or max-worker-connections were open, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
  };
}

/** Request tallies by ingress, then host, then status: keys the callers hold already, no key string built. */
type RequestTallies = Map<string, Map<string, Map<number, Tally>>>;

function requestTally(
  byIngress: RequestTallies,
  all: Tally[],
  counter: Counter<'ingress' | 'host' | 'status'>,
  ingress: string,
  host: string,
  status: number,
): Tally {
  // Plain lookups, no closure per call: this runs once per request.
  let byHost = byIngress.get(ingress);
  if (byHost === undefined) {
    byHost = new Map();
    byIngress.set(ingress, byHost);
  }
  let byStatus = byHost.get(host);
  if (byStatus === undefined) {
    byStatus = new Map();
    byHost.set(host, byStatus);
  }
  let tally = byStatus.get(status);
  if (tally === undefined) {
    tally = new Tally(counter.labels(ingress, host, String(status)));
    byStatus.set(status, tally);
    all.push(tally);
  }
  return tally;
}

/** The tally of one label value of a one-label counter. */
function labelTally(
  tallies: Map<string, Tally>,
  all: Tally[],
  counter: Counter<string>,
  value: string,
): Tally {
  let tally = tallies.get(value);
  if (tally === undefined) {
    tally = new Tally(counter.labels(value));
    tallies.set(value, tally);
    all.push(tally);
  }
  return tally;
}

export function createGatewayMetrics(registry: Registry = new Registry()): GatewayMetrics {
  const tallies = { requests: [] as Tally[], byProtocol: [] as Tally[] };
  const m = defineMetrics(registry, tallies);
  // Every close reason is exported from the start (as 0), so a rate() never misses the first close.
  const closeChildren = new Map<ConnectionCloseReason, Counter.Internal>();
  for (const reason of CONNECTION_CLOSE_REASONS) {
    const child = m.closes.labels(reason);
    child.inc(0);
    closeChildren.set(reason, child);
  }
  for (const where of ['memory', 'file']) m.bodiesBuffered.labels(where).inc(0);
  const requestTallies: RequestTallies = new Map();
  const reloads = createReloadMetrics(registry);
  const serving: ServingCounts = { accepted: 0, handled: 0, requests: 0 };
  const protocolTallies = new Map<string, Tally>();
  return {
    registry,
    ingressNginx: createRequestMetrics(registry),
    serving,
    request(ingress, host, status, protocol = '') {
      serving.requests += 1;
      // Bounded: the engines only produce HTTP/1.0, HTTP/1.1 and HTTP/2.0.
      if (protocol !== '')
        labelTally(protocolTallies, tallies.byProtocol, m.byProtocol, protocol).pending += 1;
      // Bounded by the configured hosts and ingresses: `host` is the matched server name, never raw input.
      requestTally(requestTallies, tallies.requests, m.requests, ingress, host, status).pending += 1;
    },
    denial(rule) {
      m.denials.labels(rule).inc();
    },
    proxyHeader(result, reason) {
      m.proxyHeaders.labels(result, reason).inc();
    },
    upstreamDuration(name, seconds) {
      m.upstream.child(name).observe(seconds);
    },
    reload(result, applied, served) {
      m.reloads.labels(result).inc();
      if (result === 'applied') m.version.set(applied);
      if (served !== undefined) reloads.reload(result, served);
    },
    connectionClosed(reason) {
      closeChildren.get(reason)?.inc();
    },
    bodyBufferUsage(memoryBytes, files, fileBytes) {
      m.bodyMemory.set(memoryBytes);
      m.bodyFiles.set(files);
      m.bodyFileBytes.set(fileBytes);
    },
    bodyBuffered(where) {
      m.bodiesBuffered.labels(where).inc();
    },
  };
}
