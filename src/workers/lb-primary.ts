// `keepip lb --workers N`: the primary's side. The listeners' configs are planned and checked once,
// here, and handed to every worker; each worker listens on every port (SO_REUSEPORT, the port picked
// here when it is 0) and forwards the flows it accepts. SIGHUP's new targets and source ranges go to
// every worker (and to a worker restarted later). The health checks run here, once for the pod
// (lb-health.ts), each change handed to every worker; one /metrics sums the workers and the checks
// (a replaced worker's counters kept, metrics.ts).
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { type SourceRangesResult, type TargetAddress, validateLbConfig } from '../lb/balancer.ts';
import type { LbListenerConfig, LbWorkerInit, SetAllowedSourcesCall, SetTargetsCall } from './lb-worker.ts';
import { type HealthUpdate, type LbHealth, startLbHealth } from './lb-health.ts';
import { aggregatedMetrics, type MetricsSource, registerPoolMetrics } from './metrics.ts';
import { createWorkerPool, type PoolEvent, type WorkerPool } from './pool.ts';
import { type ReservedPort, reservePort } from './ports.ts';
import { DEFAULT_WATCHDOG_MS } from './watchdog.ts';

export interface LbWorkersOptions {
  workers: number;
  /** Validated configs (validateLbConfig), one per listener. */
  configs: LbListenerConfig[];
  /** Worker exits and restarts. */
  log(event: PoolEvent): void;
  /** --worker-watchdog: how long a worker may say nothing before it is replaced (default 10 s). */
  watchdogMs?: number;
}

/** One listener as the command shows and drives it. */
export interface LbWorkerListener {
  address: AddressInfo;
  name: string;
  /** Every worker's targets for this listener (removed ones drain in each); resolves once all took them. */
  setTargets(targets: TargetAddress[]): Promise<void>;
  /**
   * Every worker's loadBalancerSourceRanges for this listener (empty: everyone), for the connections
   * each accepts from then on; resolves once all took them. An invalid list changes nothing anywhere.
   */
  setAllowedSources(ranges: readonly string[]): Promise<SourceRangesResult>;
}

export interface LbWorkers {
  readonly workers: number;
  readonly listeners: LbWorkerListener[];
  pids(): number[];
  /** The sum over workers plus `own` (the pool's gauges are registered there). */
  metrics(own: Registry): MetricsSource;
  /** Stops every worker's listeners and checks and resets their flows, as `keepip lb` does on SIGTERM. */
  close(): Promise<void>;
}

/** A target is healthy for the pod while it is healthy for every worker (they follow one prober). */
const AGGREGATORS = { keepip_lb_target_healthy: 'min' } as const;

export async function startLbWorkers(options: LbWorkersOptions): Promise<LbWorkers> {
  const reservations: ReservedPort[] = [];
  const configs: LbListenerConfig[] = [];
  try {
    for (const config of options.configs) {
      const reserved = await reservePort(config.listen.host, config.listen.port);
      reservations.push(reserved);
      configs.push({ ...config, listen: { ...config.listen, port: reserved.port } });
    }
  } catch (error) {
    await Promise.all(reservations.map((r) => r.release()));
    throw error;
  }
  let health: LbHealth | null = null;
  const pool = createWorkerPool({
    role: 'lb',
    size: options.workers,
    drainBoundMs: () => 10_000,
    log: options.log,
    watchdogMs: options.watchdogMs ?? DEFAULT_WATCHDOG_MS,
    init: (): LbWorkerInit => ({ configs, health: health?.current() ?? [], workers: options.workers }),
  });
  let started: Awaited<ReturnType<typeof pool.start>>;
  try {
    started = await pool.start();
  } finally {
    await Promise.all(reservations.map((r) => r.release()));
  }
  // After a restart in progress (exclusive): a worker forked before this change gets it here.
  const changed = (update: HealthUpdate) => void pool.exclusive(() => pool.broadcast('setHealth', update));
  health = startLbHealth(configs, {
    log: (line) => options.log({ level: 'info', event: 'target-health', message: line }),
    changed,
  });
  const checks = health;
  const infos = (started[0]?.info ?? []) as { address: AddressInfo; name: string }[];
  const listeners = infos.map(({ address, name }, index) => ({
    address,
    name,
    async setTargets(targets: TargetAddress[]) {
      const checked = validateLbConfig({ ...configs[index]!, targets });
      if (!checked.ok) throw new Error(checked.errors.map((e) => `${e.message} [${e.code}]`).join('; '));
      // Workers restarted later start with these targets.
      configs[index] = { ...configs[index]!, targets };
      const call: SetTargetsCall = { index, targets };
      await pool.exclusive(async () => {
        checks.setTargets(index, targets);
        return pool.broadcast('setTargets', call);
      });
    },
    setAllowedSources: (ranges: readonly string[]) => setAllowedSources(pool, configs, index, ranges),
  }));
  return {
    workers: options.workers,
    listeners,
    pids: () => pool.pids(),
    metrics(own) {
      registerPoolMetrics(own, pool, options.workers);
      checks.register(own);
      return aggregatedMetrics(own, pool, { primaryOwned: new Set(), aggregators: AGGREGATORS });
    },
    async close() {
      checks.close();
      await pool.stop();
    },
  };
}

/** Checked here first (an invalid list reaches no worker), kept for restarts, then sent to every worker. */
async function setAllowedSources(
  pool: WorkerPool,
  configs: LbListenerConfig[],
  index: number,
  ranges: readonly string[],
): Promise<SourceRangesResult> {
  const checked = validateLbConfig({ ...configs[index]!, allowedSources: ranges });
  if (!checked.ok) {
    const error = checked.errors.find((e) => e.code === 'LB_BAD_SOURCE_RANGE') ?? checked.errors[0]!;
    return { ok: false, error };
  }
  // Workers restarted later start with these ranges.
  configs[index] = { ...configs[index]!, allowedSources: [...ranges] };
  const call: SetAllowedSourcesCall = { index, ranges: [...ranges] };
  const answers = await pool.exclusive(() => pool.broadcast('setAllowedSources', call));
  const refused = answers.find((a) => (!a.ok && !a.gone) || (a.ok && !(a.value as SourceRangesResult).ok));
  if (refused === undefined) return { ok: true };
  const why = refused.ok ? (refused.value as { error: { message: string } }).error.message : refused.message;
  const message = `worker ${refused.slot} (pid ${refused.pid}) could not take the source ranges: ${why}`;
  return { ok: false, error: { code: 'LB_BAD_SOURCE_RANGE', message } };
}
