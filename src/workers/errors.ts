// The codes src/workers/ reports: the worker processes behind `--workers` (gateway, lb, controller).
// src/errors.ts merges this table into the registry behind docs/errors.md.
import type { CodeTable } from '../error-table.ts';

export const WORKERS_CODES = {
  WORKER_COUNT_INVALID: {
    kind: 'error',
    summary: '--workers (or the ConfigMap key worker-processes) is not a number from 1 to 1024 or auto',
    fix: 'write a whole number of processes, or auto for one per available core',
  },
  WORKER_START_FAILED: {
    kind: 'error',
    summary:
      'a worker process could not start serving (a listener could not bind, the configuration was refused)',
    fix: 'read the reason in the line; the same start with --workers 1 shows it without the pool',
  },
  WORKER_EXITED: {
    kind: 'outcome',
    summary:
      'a worker process exited while serving (a crash or a kill); the primary starts another in its place',
    fix: 'the connections it held were reset; look for its last error lines, and for a crash loop in keepip_worker_restarts_total',
  },
  WORKER_WATCHDOG_INVALID: {
    kind: 'error',
    summary: '--worker-watchdog is not a duration from 1s to 24 days',
    fix: 'write how long a worker may stay silent before it is replaced, e.g. 10s (the default)',
  },
  WORKER_UNRESPONSIVE: {
    kind: 'outcome',
    summary:
      'a worker process said nothing to its primary for --worker-watchdog (default 10 s), or did not answer a configuration it was building within that and ten times the time the primary took to check it: it was killed, and another starts in its slot',
    fix: "the worker was wedged (an endless loop, a stopped process, a starved CPU); the connections it held were reset; look at its last lines and at the node's load; raise --worker-watchdog if the node is only slow",
  },
  WORKER_RELOAD_ABORTED: {
    kind: 'error',
    summary: 'a worker could not prepare a new configuration, so no worker switched to it',
    fix: 'read the worker error in the line; every worker keeps serving the previous version',
  },
  WORKER_LIMITER_UNAVAILABLE: {
    kind: 'outcome',
    summary:
      'a gateway worker got no answer from the primary, which counts limit-rps, limit-rpm and limit-connections for all workers, within its deadline (1 s; during a reload the primary announces, up to 30 s), or the channel to it closed: the request was refused with 503 (fail closed)',
    fix: 'the primary is stalled or gone (CPU starvation, a crash, a reload longer than 30 s); look at its load and its last lines; locations without limits are not affected',
  },
} as const satisfies CodeTable;

export type WorkersCode = keyof typeof WORKERS_CODES;
