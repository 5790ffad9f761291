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
  /** A ConfigMap value that could not be read (the fallback applies). */
  warning: string | null;
}

/**
 * keepip controller's worker count, as ingress-nginx chooses its `worker_processes`: the flag when
 * given, else the ConfigMap's `worker-processes`, else auto (the available cores).
 */
export function chooseWorkerCount(input: {
  flag: number | 'auto' | null;
  configMap: string | undefined;
  available: number;
}): ChosenWorkers {
  const auto = Math.max(1, Math.floor(input.available));
  if (input.flag !== null) {
    return { value: input.flag === 'auto' ? auto : input.flag, from: '--workers', warning: null };
  }
  if (input.configMap !== undefined) {
    const parsed = parseWorkerCount(input.configMap, input.available);
    if (parsed.ok) return { value: parsed.value, from: 'ConfigMap worker-processes', warning: null };
    return {
      value: auto,
      from: 'auto',
      warning: `ConfigMap worker-processes: ${parsed.error}; using auto (${auto}) [${parsed.code}]`,
    };
  }
  return { value: auto, from: 'auto', warning: null };
}
