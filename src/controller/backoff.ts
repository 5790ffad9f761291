// Exponential backoff with jitter, as client-go's wait.Backoff with Jitter 1.0: attempt n waits
// initial * 2^n plus up to the same again at random (so replicas that lost the API server together do
// not come back in lockstep), never more than max. Pure: the random source is passed in.

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

/** client-go's reflector: 800 ms, doubling, at most 30 s. */
export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 800, maxMs: 30_000 };

export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number): number {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.min(policy.maxMs, Math.round(base * (1 + random())));
}

/** Timers and randomness, injected so the decisions can be tested without waiting. */
export interface Scheduler {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
  now(): number;
}

export const realScheduler: Scheduler = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  random: Math.random,
  now: Date.now,
};
