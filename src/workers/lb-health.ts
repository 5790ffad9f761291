// `keepip lb --workers N`: the targets' health checks run once, here in the primary (one prober per
// listener, the same checks one process runs: source address, LOCAL header, thresholds), rather than
// once per worker. Each change of a target's health (into or out of rotation) goes to every worker,
// which takes it as is (healthChecks 'follow'), so all workers agree on which targets are in
// rotation, and a target sees one check per interval whatever the number of workers. A worker that
// starts later is handed the current health of every target with its configuration.
import type { Registry } from 'prom-client';
import { type HealthChecking, type LbRuntimeConfig, startHealthChecking } from '../lb/balancer.ts';
import type { HealthState } from '../lb/health-state.ts';
import { registerLbMetrics } from '../lb/metrics.ts';

/** One target's health, as the primary hands it to the workers. */
export interface HealthUpdate {
  /** The listener's place in the configs. */
  index: number;
  /** The target's key ("host:port"). */
  target: string;
  health: HealthState;
}

export interface LbHealth {
  /** Every checked target's health now. */
  current(): HealthUpdate[];
  /** A listener's new targets (SIGHUP): new ones are checked at once, removed ones no longer. */
  setTargets(index: number, targets: LbRuntimeConfig['targets']): void;
  /** keepip_lb_health_checks_total (and the targets' health) counted here, for the pod. */
  register(registry: Registry): void;
  close(): void;
}

export function startLbHealth(
  configs: readonly Omit<LbRuntimeConfig, 'registry' | 'log'>[],
  options: { log(line: string): void; changed(update: HealthUpdate): void },
): LbHealth {
  const probers = new Map<number, HealthChecking>();
  for (const [index, config] of configs.entries()) {
    if (config.healthCheck === null) continue;
    const prober = startHealthChecking({ ...config, log: options.log }, (entry) =>
      options.changed({ index, target: entry.key, health: entry.health }),
    );
    probers.set(index, prober);
  }
  const unregister: (() => void)[] = [];
  return {
    current: () =>
      [...probers].flatMap(([index, prober]) =>
        prober.group
          .entries()
          .filter((e) => !e.draining)
          .map((e) => ({ index, target: e.key, health: e.health })),
      ),
    setTargets: (index, targets) => probers.get(index)?.setTargets(targets),
    register(registry) {
      for (const prober of probers.values()) {
        const { name, stats, group } = prober;
        const targets = () =>
          group
            .entries()
            .filter((e) => !e.draining)
            .map((e) => ({ key: e.key, healthy: e.health.status === 'healthy' }));
        unregister.push(registerLbMetrics(registry, { name, stats, targets }));
      }
    },
    close() {
      for (const prober of probers.values()) prober.close();
      for (const undo of unregister) undo();
    },
  };
}
