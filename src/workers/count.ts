// `--workers N|auto` and the ConfigMap's `worker-processes`: how many serving processes to run.
// `auto` is the cores this process may use (os.availableParallelism(), given by the caller), as
// nginx's `worker_processes auto` is the CPUs it may run on.

import type { WorkersCode } from './errors.ts';

/** More workers than this is a typo, not a machine. */
export const MAX_WORKERS = 1024;

export type WorkerCount = { ok: true; value: number } | { ok: false; code: WorkersCode; error: string };

const INVALID: WorkersCode = 'WORKER_COUNT_INVALID';

export function parseWorkerCount(text: string, available: number): WorkerCount {
  const trimmed = text.trim();
  if (trimmed === 'auto') return { ok: true, value: Math.max(1, Math.floor(available)) };
  if (!/^\d+$/.test(trimmed)) {
    return { ok: false, code: INVALID, error: `"${text}" is not a number of workers or auto` };
  }
  const value = Number(trimmed);
  if (value < 1 || value > MAX_WORKERS) {
    return { ok: false, code: INVALID, error: `"${text}" is not between 1 and ${MAX_WORKERS} (or auto)` };
  }
  return { ok: true, value };
}

export interface ChosenWorkers {
  value: number;
  /** Where the number came from, for the start-up line. */
  from: string;
}

/**
 * How many workers serve, as ingress-nginx chooses its `worker_processes`: the flag when given, else
 * the ConfigMap's `worker-processes` (GatewaySettings.workerProcesses), else the command's default
 * (`auto` for keepip controller, 1 for keepip gateway).
 */
export function chooseWorkerCount(input: {
  flag: number | 'auto' | null;
  configMap: number | 'auto' | undefined;
  fallback: number | 'auto';
  available: number;
}): ChosenWorkers {
  const count = (value: number | 'auto') =>
    value === 'auto' ? Math.max(1, Math.floor(input.available)) : value;
  if (input.flag !== null) return { value: count(input.flag), from: '--workers' };
  if (input.configMap !== undefined)
    return { value: count(input.configMap), from: 'ConfigMap worker-processes' };
  return { value: count(input.fallback), from: input.fallback === 'auto' ? 'auto' : 'the default' };
}

/**
 * The CPUs a cgroup's quota allows, rounded up: cgroup v2's `cpu.max` ("150000 100000" is 1.5 CPUs,
 * so 2; "max 100000" is no limit) or cgroup v1's cfs quota and period (-1: no limit). A pod with a CPU
 * limit gets as many workers as it may use, not one per core of the node. Null: no limit, or unreadable.
 */
export function cgroupCpuLimit(
  v2CpuMax: string | null,
  v1: { quota: string; period: string } | null,
): number | null {
  const cores = (quota: number, period: number) =>
    Number.isFinite(quota) && Number.isFinite(period) && quota > 0 && period > 0
      ? Math.ceil(quota / period)
      : null;
  if (v2CpuMax !== null) {
    const [quota, period] = v2CpuMax.trim().split(/\s+/);
    if (quota === 'max') return null;
    return cores(Number(quota), Number(period ?? '100000'));
  }
  if (v1 !== null) return cores(Number(v1.quota.trim()), Number(v1.period.trim()));
  return null;
}
