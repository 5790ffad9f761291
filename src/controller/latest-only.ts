// One task at a time over the latest argument: a call while a task runs replaces the one waiting, so
// a burst (a snapshot a second during an endpoint rollout, while the API answers slowly) costs the
// running task and one more, never a queue that grows with the burst. Pure.

export interface LatestOnly<T> {
  push(arg: T): void;
  /** Resolves when nothing runs or waits. */
  idle(): Promise<void>;
}

export function latestOnly<T>(run: (arg: T) => Promise<unknown>): LatestOnly<T> {
  let waiting: { arg: T } | null = null;
  let chain: Promise<void> = Promise.resolve();
  return {
    push(arg) {
      const queued = waiting !== null;
      waiting = { arg };
      if (queued) return;
      chain = chain
        .then(async () => {
          const next = waiting!;
          waiting = null;
          await run(next.arg);
        })
        .catch(() => {});
    },
    idle: () => chain,
  };
}
