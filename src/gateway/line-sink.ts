// Buffered line output for the access and error logs: lines written in one event-loop turn leave in
// one write, instead of a (synchronous, on Linux pipes and files) write per request.
import type { Writable } from 'node:stream';

export interface LineSink {
  /** Queues one line (without its newline). */
  write(line: string): void;
  /** Writes what is queued and resolves when the stream took it. */
  flush(): Promise<void>;
  /** Flushes and, for files this sink opened, closes. */
  close(): Promise<void>;
  /** Lines dropped because the stream could not keep up (buffer above the cap). */
  readonly dropped: number;
  /**
   * A sink that opened a file by its path: writes what is queued to the file it has, then opens the
   * path again (nginx's reopen on SIGUSR1, after logrotate moved the file). When the path cannot be
   * opened it keeps the file it had.
   */
  reopen?(): Promise<ReopenResult>;
}

export type ReopenFailure = { ok: false; code: 'ACCESS_LOG_REOPEN_FAILED'; message: string };
export type ReopenResult = { ok: true } | ReopenFailure;

const MAX_PENDING_BYTES = 16 * 1024 * 1024;

export function createLineSink(stream: Writable, options: { ownsStream?: boolean } = {}): LineSink {
  let pending = '';
  let scheduled = false;
  let blocked = false;
  let dropped = 0;
  let closed = false;

  const drain = (): void => {
    scheduled = false;
    if (pending === '' || blocked || closed) return;
    const chunk = pending;
    pending = '';
    if (!stream.write(chunk)) {
      blocked = true;
      stream.once('drain', () => {
        blocked = false;
        if (pending !== '') schedule();
      });
    }
  };
  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(drain);
  };
  stream.on('error', () => {
    // A broken log destination must not take the gateway down; lines are dropped from then on.
    closed = true;
  });

  return {
    write(line) {
      if (closed) {
        dropped += 1;
        return;
      }
      if (pending.length > MAX_PENDING_BYTES) {
        dropped += 1;
        return;
      }
      pending += `${line}\n`;
      schedule();
    },
    async flush() {
      if (closed) return;
      const chunk = pending;
      pending = '';
      if (chunk === '') return;
      await new Promise<void>((resolve) => {
        stream.write(chunk, () => resolve());
      });
    },
    async close() {
      await this.flush();
      closed = true;
      if (options.ownsStream) await new Promise<void>((resolve) => stream.end(() => resolve()));
    },
    get dropped() {
      return dropped;
    },
  };
}
