// Bursts of watch events become one snapshot swap: the swap runs once the events have been quiet for
// `quietMs`, and at the latest `maxDelayMs` after the first event of the burst, so a steady trickle
// of changes cannot hold the gateway on an old view forever. Pure: timers come from the scheduler.
import type { Scheduler } from './backoff.ts';

export interface Debouncer {
  trigger(): void;
  cancel(): void;
  /** Bursts flushed so far. */
  flushes(): number;
}

export function createDebouncer(options: {
  quietMs: number;
  maxDelayMs: number;
  scheduler: Scheduler;
  flush: () => void;
}): Debouncer {
  const { scheduler } = options;
  let timer: unknown = null;
  let firstAt: number | null = null;
  let count = 0;
  const fire = () => {
    timer = null;
    firstAt = null;
    count++;
    options.flush();
  };
  return {
    trigger() {
      const now = scheduler.now();
      firstAt ??= now;
      if (timer !== null) scheduler.clearTimeout(timer);
      const wait = Math.max(0, Math.min(options.quietMs, firstAt + options.maxDelayMs - now));
      timer = scheduler.setTimeout(fire, wait);
    },
    cancel() {
      if (timer !== null) scheduler.clearTimeout(timer);
      timer = null;
      firstAt = null;
    },
    flushes: () => count,
  };
}
