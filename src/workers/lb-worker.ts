// An lb worker: every listener of `keepip lb` on ports it shares with the other workers
// (SO_REUSEPORT), each flow handled whole in the worker whose listener accepted it. It runs no
// health checks: the primary runs them once for all (lb-health.ts) and hands in each change, so every
// worker keeps the same targets in rotation. It takes new targets and source ranges from the primary
// (SIGHUP) and answers the primary's metrics calls. Its log lines name the worker.
import { Registry } from 'prom-client';
import {
  ephemeralPorts,
  type LbRuntimeConfig,
  type RunningLb,
  startLoadBalancer,
  type TargetAddress,
} from '../lb/balancer.ts';
import { createSourcePorts, portSlice } from '../lb/source-ports.ts';
import type { HealthUpdate } from './lb-health.ts';
import type { ServedRole } from './protocol.ts';

/** A listener's config without what cannot cross IPC (the registry, the log function). */
export type LbListenerConfig = Omit<LbRuntimeConfig, 'registry' | 'log'>;

export interface LbWorkerInit {
  /** Listen ports already resolved by the primary (never 0). */
  configs: LbListenerConfig[];
  /** The targets' health as the primary's checks judge it now. */
  health: HealthUpdate[];
  /** How many workers there are: each walks its own slice of the source ports (source-ports.ts). */
  workers: number;
}

export interface SetTargetsCall {
  index: number;
  targets: TargetAddress[];
}

export interface SetAllowedSourcesCall {
  index: number;
  /** loadBalancerSourceRanges; empty: everyone. */
  ranges: string[];
}

export async function serve(init: LbWorkerInit, slot: number): Promise<ServedRole> {
  const registry = new Registry();
  const log = (line: string) => process.stdout.write(`keepip lb: worker ${slot}: ${line}\n`);
  const running: RunningLb[] = [];
  // Slots are 1-based.
  const sourcePorts = createSourcePorts(portSlice(ephemeralPorts(), slot - 1, init.workers));
  try {
    for (const config of init.configs) {
      const settings = { ...config, registry, log, sourcePorts, reusePort: true };
      running.push(await startLoadBalancer({ ...settings, healthChecks: 'follow' }));
    }
  } catch (error) {
    await Promise.all(running.map((lb) => lb.close()));
    throw error;
  }
  const setHealth = ({ index, target, health }: HealthUpdate) => running[index]?.setHealth(target, health);
  for (const update of init.health) setHealth(update);
  return {
    info: running.map((lb) => ({ address: lb.address, name: lb.name })),
    methods: {
      setTargets(arg) {
        const { index, targets } = arg as SetTargetsCall;
        running[index]?.setTargets(targets);
        return null;
      },
      setAllowedSources(arg) {
        const { index, ranges } = arg as SetAllowedSourcesCall;
        return running[index]?.setAllowedSources(ranges) ?? { ok: true };
      },
      setHealth(arg) {
        setHealth(arg as HealthUpdate);
        return null;
      },
      metrics: () => registry.getMetricsAsJSON(),
    },
    async drain() {
      await Promise.all(running.map((lb) => lb.close()));
    },
  };
}
