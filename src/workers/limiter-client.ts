// A gateway worker's side of the shared limiter: the SharedLimiter the access stage asks when a
// location has limit-rps, limit-rpm or limit-connections (never for other locations: no message at
// all on their path). The checks of one event-loop turn leave in one write; the primary answers in
// order. Every check has a deadline: without an answer by then the request is refused with 503 and
// WORKER_LIMITER_UNAVAILABLE (fail closed, never open), and a `release` follows it, so that a slot
// the primary grants too late is freed at once. A closed channel (the primary is gone) refuses the
// same way. One timer serves all checks: they expire in the order they were asked.
import type { Duplex } from 'node:stream';
import type {
  ConnectionLimit,
  LimiterFailure,
  LimitVerdict,
  RequestLimit,
  SharedLimiter,
} from '../gateway/access/rate-limit.ts';
import type { WorkersCode } from './errors.ts';
import { decodeVerdict, encodeCheck, encodeRelease, lineReader } from './limiter-wire.ts';

/** How long a worker waits for the primary's verdict by default. */
export const DEFAULT_LIMITER_DEADLINE_MS = 1_000;

type Done = (verdict: LimitVerdict | LimiterFailure, release: (() => void) | null) => void;

interface Pending {
  done: Done;
  /** Asked for a connection slot (so a late grant must be released). */
  slot: boolean;
  askedAt: number;
}

export interface LimiterClient extends SharedLimiter {
  /** Checks waiting for the primary. */
  pending(): number;
  close(): void;
}

const UNAVAILABLE: WorkersCode = 'WORKER_LIMITER_UNAVAILABLE';

export function createLimiterClient(channel: Duplex, options: { deadlineMs: number }): LimiterClient {
  const pending = new Map<number, Pending>();
  const lines = lineReader();
  let nextId = 0;
  let out: string[] = [];
  let flushing = false;
  let timer: NodeJS.Timeout | null = null;
  let broken: string | null = null;

  const send = (line: string): void => {
    if (broken !== null) return;
    out.push(line);
    if (flushing) return;
    flushing = true;
    setImmediate(() => {
      flushing = false;
      const batch = out;
      out = [];
      if (broken === null && batch.length > 0) channel.write(`${batch.join('\n')}\n`);
    });
  };

  const fail = (entry: Pending, message: string): void => entry.done({ code: UNAVAILABLE, message }, null);

  /** Refuses every check past its deadline (the oldest first), then waits for the next one's. */
  const expire = (): void => {
    timer = null;
    const now = performance.now();
    for (const [id, entry] of pending) {
      const left = entry.askedAt + options.deadlineMs - now;
      if (left > 0) {
        timer = setTimeout(expire, left);
        return;
      }
      pending.delete(id);
      if (entry.slot) send(encodeRelease(id));
      fail(entry, `the primary did not answer within ${options.deadlineMs} ms`);
    }
  };

  const breakDown = (why: string): void => {
    if (broken !== null) return;
    broken = why;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const waiting = [...pending.values()];
    pending.clear();
    for (const entry of waiting) fail(entry, why);
  };

  channel.setEncoding('utf8');
  channel.on('data', (chunk: string) => {
    const got = lines.push(chunk);
    if (got === null) {
      breakDown('the channel to the primary carried an invalid line');
      channel.destroy();
      return;
    }
    for (const line of got) settle(line);
  });
  channel.on('error', () => {}); // 'close' follows
  channel.once('close', () => breakDown('the channel to the primary is closed'));

  /** One verdict: its check's callback, with the slot's release when one was granted. */
  const settle = (line: string): void => {
    const answer = decodeVerdict(line);
    const entry = answer === null ? undefined : pending.get(answer.id);
    // Unknown: a check that expired; its release is already on the way.
    if (answer === null || entry === undefined) return;
    pending.delete(answer.id);
    const { id, verdict } = answer;
    entry.done(verdict, verdict === 'admitted' && entry.slot ? () => send(encodeRelease(id)) : null);
  };

  return {
    check(limits: readonly RequestLimit[], connection: ConnectionLimit | null, key: string, done: Done) {
      if (broken !== null) {
        const why = broken;
        queueMicrotask(() => done({ code: UNAVAILABLE, message: why }, null));
        return;
      }
      const id = ++nextId;
      pending.set(id, { done, slot: connection !== null, askedAt: performance.now() });
      send(encodeCheck(id, limits, connection, key));
      timer ??= setTimeout(expire, options.deadlineMs);
    },
    pending: () => pending.size,
    close() {
      breakDown('the worker is stopping');
      channel.destroy();
    },
  };
}
