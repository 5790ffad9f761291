// An lb worker: every listener of `keepip lb` on ports it shares with the other workers
// (SO_REUSEPORT), each flow handled whole in the worker whose listener accepted it. It runs its own
// health checks (each worker judges its targets itself), takes new targets from the primary
// (SIGHUP), and answers the primary's metrics calls. Its log lines name the worker.
import { Registry } from 'prom-client';
import {
  type LbRuntimeConfig,
  type RunningLb,
  startLoadBalancer,
  type TargetAddress,
} from '../lb/balancer.ts';
import type { ServedRole } from './protocol.ts';

/** A listener's config without what cannot cross IPC (the registry, the log function). */
export type LbListenerConfig = Omit<LbRuntimeConfig, 'registry' | 'log'>;

export interface LbWorkerInit {
  /** Listen ports already resolved by the primary (never 0). */
  configs: LbListenerConfig[];
}

export interface SetTargetsCall {
  index: number;
  targets: TargetAddress[];
}

export async function serve(init: LbWorkerInit, slot: number): Promise<ServedRole> {
  const registry = new Registry();
  const log = (line: string) => process.stdout.write(`keepip lb: worker ${slot}: ${line}\n`);
  const running: RunningLb[] = [];
  try {
    for (const config of init.configs) {
      running.push(await startLoadBalancer({ ...config, registry, log, reusePort: true }));
    }
  } catch (error) {
    await Promise.all(running.map((lb) => lb.close()));
    throw error;
  }
  return {
    info: running.map((lb) => ({ address: lb.address, name: lb.name })),
    methods: {
      setTargets(arg) {
        const { index, targets } = arg as SetTargetsCall;
        running[index]?.setTargets(targets);
        return null;
      },
      metrics: () => registry.getMetricsAsJSON(),
    },
    async drain() {
      await Promise.all(running.map((lb) => lb.close()));
    },
  };
}
