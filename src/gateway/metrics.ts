// The gateway's Prometheus metrics. Children are cached per label combination: prom-client hashes the
// label values on every call otherwise, and these counters move on every request.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CONNECTION_CLOSE_REASONS, type ConnectionCloseReason } from './client-timeouts.ts';

export interface GatewayMetrics {
  registry: Registry;
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
  reload(result: 'applied' | 'rejected', version: number): void;
  /** A deadline made the gateway close a client connection (client-timeouts.ts). */
  connectionClosed(reason: ConnectionCloseReason): void;
  /** Buffered request bodies now (request-body-buffer.ts): bytes in memory, temporary files and their bytes. */
  bodyBufferUsage(memoryBytes: number, files: number, fileBytes: number): void;
  /** A request body read whole before the backend, kept in memory or in a temporary file. */
  bodyBuffered(where: 'memory' | 'file'): void;
}

/** The gateway's metric families, registered in `registry`. */
function defineMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: 'keepip_gateway_requests_total',
      help: 'Requests answered by the gateway, by Ingress, host and status',
      labelNames: ['ingress', 'host', 'status'] as const,
      registers: [registry],
    }),
    byProtocol: new Counter({
      name: 'keepip_gateway_requests_by_protocol_total',
      help: 'Requests answered by the gateway, by the protocol the client spoke (HTTP/1.0, HTTP/1.1, HTTP/2.0)',
      labelNames: ['protocol'] as const,
      registers: [registry],
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
    upstream: new Histogram({
      name: 'keepip_gateway_upstream_duration_seconds',
      help: 'Time from sending a request upstream to the end of its response',
      labelNames: ['upstream'] as const,
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
      help: 'Client connections the gateway closed because a deadline passed, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
  };
}

/** The child of `key`, made once: prom-client would hash the label values on every call otherwise. */
function cached<K, C>(children: Map<K, C>, key: K, make: () => C): C {
  let child = children.get(key);
  if (child === undefined) {
    child = make();
    children.set(key, child);
  }
  return child;
}

export function createGatewayMetrics(registry: Registry = new Registry()): GatewayMetrics {
  const m = defineMetrics(registry);
  // Every close reason is exported from the start (as 0), so a rate() never misses the first close.
  const closeChildren = new Map<ConnectionCloseReason, Counter.Internal>();
  for (const reason of CONNECTION_CLOSE_REASONS) {
    const child = m.closes.labels(reason);
    child.inc(0);
    closeChildren.set(reason, child);
  }
  for (const where of ['memory', 'file']) m.bodiesBuffered.labels(where).inc(0);
  const requestChildren = new Map<string, Counter.Internal>();
  const protocolChildren = new Map<string, Counter.Internal>();
  const upstreamChildren = new Map<string, Histogram.Internal<'upstream'>>();
  return {
    registry,
    request(ingress, host, status, protocol = '') {
      // Bounded: the engines only produce HTTP/1.0, HTTP/1.1 and HTTP/2.0.
      if (protocol !== '') cached(protocolChildren, protocol, () => m.byProtocol.labels(protocol)).inc();
      // Bounded by the configured hosts and ingresses: `host` is the matched server name, never raw input.
      const key = `${ingress}\u0000${host}\u0000${status}`;
      cached(requestChildren, key, () => m.requests.labels(ingress, host, String(status))).inc();
    },
    denial(rule) {
      m.denials.labels(rule).inc();
    },
    proxyHeader(result, reason) {
      m.proxyHeaders.labels(result, reason).inc();
    },
    upstreamDuration(name, seconds) {
      cached(upstreamChildren, name, () => m.upstream.labels(name)).observe(seconds);
    },
    reload(result, applied) {
      m.reloads.labels(result).inc();
      if (result === 'applied') m.version.set(applied);
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
