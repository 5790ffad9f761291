// Lines (a log, a connection log, answers) that a test can wait on: each push wakes the waiters, so a
// test waits for the line itself, never for a time.

export interface LineCollector {
  readonly lines: string[];
  push(line: string): void;
  /** Resolves with the first `count` lines (from index `from` on) that match, or rejects after 20 s. */
  wait(pattern: RegExp, options?: { count?: number; from?: number }): Promise<string[]>;
}

export function lineCollector(): LineCollector {
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  return {
    lines,
    push(line) {
      lines.push(line);
      for (const w of [...waiters]) w();
    },
    wait(pattern, { count = 1, from = 0 } = {}) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`not ${count} line(s) ${pattern} in 20 s:\n${lines.join('\n')}`));
        }, 20_000);
        const check = () => {
          const hits = lines.slice(from).filter((l) => pattern.test(l));
          if (hits.length < count) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hits.slice(0, count));
        };
        waiters.add(check);
        check();
      });
    },
  };
}
