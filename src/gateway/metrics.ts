// The gateway's Prometheus metrics. The per-request counter is counted in plain numbers and handed to
// prom-client when it collects (a scrape): prom-client hashes the label values on every inc() otherwise.
// Histogram children are cached per label combination for the same reason.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface GatewayMetrics {
  registry: Registry;
  /** One request answered (any status, proxied or not). `ingress` is "namespace/name" or "" when none matched. */
  request(ingress: string, host: string, status: number): void;
  /** An access decision that turned a client away: rule is block-cidrs, denylist, allowlist-miss, invalid-rules… */
  denial(rule: string): void;
  /** A PROXY header accepted (reason "ok") or rejected (untrusted, timeout, malformed, oversize, missing…). */
  proxyHeader(result: 'accepted' | 'rejected' | 'unexpected', reason: string): void;
  /** Seconds from dispatch to the end of the upstream response. */
  upstreamDuration(upstream: string, seconds: number): void;
  reload(result: 'applied' | 'rejected', version: number): void;
}

export function createGatewayMetrics(registry: Registry = new Registry()): GatewayMetrics {
  // ingress -> host -> status -> requests not yet handed to prom-client.
  const pendingRequests = new Map<string, Map<string, Map<number, { count: number }>>>();
  // Registered in `registry`; its values come from collect().
  new Counter({
    name: 'keepip_gateway_requests_total',
    help: 'Requests answered by the gateway, by Ingress, host and status',
    labelNames: ['ingress', 'host', 'status'] as const,
    registers: [registry],
    collect() {
      for (const [ingress, hosts] of pendingRequests) {
        for (const [host, statuses] of hosts) {
          for (const [status, pending] of statuses) {
            if (pending.count === 0) continue;
            this.labels(ingress, host, String(status)).inc(pending.count);
            pending.count = 0;
          }
        }
      }
    },
  });
  const denials = new Counter({
    name: 'keepip_gateway_denials_total',
    help: 'Requests turned away by an access rule (403) or a fail-closed location (503), by rule',
    labelNames: ['rule'] as const,
    registers: [registry],
  });
  const proxyHeaders = new Counter({
    name: 'keepip_gateway_proxy_headers_total',
    help: 'PROXY protocol headers accepted or rejected, by reason',
    labelNames: ['result', 'reason'] as const,
    registers: [registry],
  });
  const upstream = new Histogram({
    name: 'keepip_gateway_upstream_duration_seconds',
    help: 'Time from sending a request upstream to the end of its response',
    labelNames: ['upstream'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const reloads = new Counter({
    name: 'keepip_gateway_config_reloads_total',
    help: 'Configuration changes applied or rejected',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const version = new Gauge({
    name: 'keepip_gateway_config_version',
    help: 'Version of the configuration snapshot being served',
    registers: [registry],
  });

  const upstreamChildren = new Map<string, Histogram.Internal<'upstream'>>();
  return {
    registry,
    request(ingress, host, status) {
      // Bounded by the configured hosts and ingresses: `host` is the matched server name, never raw input.
      let hosts = pendingRequests.get(ingress);
      if (hosts === undefined) {
        hosts = new Map();
        pendingRequests.set(ingress, hosts);
      }
      let statuses = hosts.get(host);
      if (statuses === undefined) {
        statuses = new Map();
        hosts.set(host, statuses);
      }
      const pending = statuses.get(status);
      if (pending === undefined) statuses.set(status, { count: 1 });
      else pending.count += 1;
    },
    denial(rule) {
      denials.labels(rule).inc();
    },
    proxyHeader(result, reason) {
      proxyHeaders.labels(result, reason).inc();
    },
    upstreamDuration(name, seconds) {
      let child = upstreamChildren.get(name);
      if (child === undefined) {
        child = upstream.labels(name);
        upstreamChildren.set(name, child);
      }
      child.observe(seconds);
    },
    reload(result, applied) {
      reloads.labels(result).inc();
      if (result === 'applied') version.set(applied);
    },
  };
}
