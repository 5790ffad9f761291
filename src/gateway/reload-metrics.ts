// ingress-nginx's reload metrics, by the names its alert rules read (NGINXConfigFailed:
// nginx_ingress_controller_config_last_reload_successful == 0): whether the last reload applied, when
// the last one did, how many did and did not, and a hash of the configuration being served, equal on
// replicas that serve the same (its labels: the controller's namespace, class and pod).
import { createHash } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Topology } from '../config/model.ts';
import { DEFAULT_REQUEST_METRICS } from '../config/request-metrics.ts';

const PREFIX = 'nginx_ingress_controller_';
const LABELS = ['controller_namespace', 'controller_class', 'controller_pod'] as const;

export interface ReloadMetrics {
  /** A configuration applied (`served` is the new one) or refused (`served` is the one kept). */
  reload(result: 'applied' | 'rejected', served: Topology): void;
}

/**
 * Where each object was read from (an Origin: file and document), and the issues that quote it: not
 * what is served, so the same objects from other files, or in another order, hash alike. (A mirror's
 * `origin` is a served string: kept.)
 */
function servedOnly(key: string, value: unknown): unknown {
  if (key === 'issues') return undefined;
  if ((key === 'origin' || key === 'ingressOrigin') && typeof value === 'object') return undefined;
  return value;
}

/** A 52-bit hash of what is served (not the per-pod metrics labels), exact in a float64 gauge. */
export function configHash(topology: Topology): number {
  const { requestMetrics: _perPod, ...gateway } = topology.gateway;
  const text = JSON.stringify({ ...topology, gateway }, servedOnly);
  return Number.parseInt(createHash('sha256').update(text).digest('hex').slice(0, 13), 16);
}

export function createReloadMetrics(registry: Registry): ReloadMetrics {
  const gauge = (name: string, help: string) =>
    new Gauge({ name: `${PREFIX}${name}`, help, labelNames: LABELS, registers: [registry] });
  const counter = (name: string, help: string) =>
    new Counter({ name: `${PREFIX}${name}`, help, labelNames: LABELS, registers: [registry] });
  // The hash serialises the whole configuration: done when /metrics is read, once per configuration,
  // not on every reload of every worker (whose copy the primary's replaces anyway).
  let applied: { topology: Topology; labels: Record<(typeof LABELS)[number], string> } | null = null;
  let hashed: Topology | null = null;
  const m = {
    hash: new Gauge({
      name: `${PREFIX}config_hash`,
      help: 'Running configuration hash actually running',
      labelNames: LABELS,
      registers: [registry],
      collect() {
        if (applied === null || applied.topology === hashed) return;
        hashed = applied.topology;
        this.reset();
        this.set(applied.labels, configHash(applied.topology));
      },
    }),
    successful: gauge(
      'config_last_reload_successful',
      'Whether the last configuration reload attempt was successful',
    ),
    successTime: gauge(
      'config_last_reload_successful_timestamp_seconds',
      'Timestamp of the last successful configuration reload.',
    ),
    success: counter('success', 'Cumulative number of Ingress controller reload operations'),
    errors: counter('errors', 'Cumulative number of Ingress controller errors during reload operations'),
  };
  return {
    reload(result, served) {
      const s = served.gateway.requestMetrics ?? DEFAULT_REQUEST_METRICS;
      const labels = {
        controller_namespace: s.controllerNamespace,
        controller_class: s.controllerClass,
        controller_pod: s.controllerPod,
      };
      if (result === 'rejected') {
        m.successful.set(labels, 0);
        m.errors.inc(labels);
        return;
      }
      m.successful.set(labels, 1);
      m.successTime.set(labels, Math.floor(Date.now() / 1000));
      m.success.inc(labels);
      applied = { topology: served, labels };
    },
  };
}
