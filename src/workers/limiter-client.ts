// A gateway worker's side of the shared limiter: the SharedLimiter the access stage asks when a
// location has limit-rps, limit-rpm or limit-connections (never for other locations: no message at
// all on their path). The checks of one event-loop turn leave in one write; the primary answers in
// order. Every check has a deadline: without an answer by then the request is refused with 503 and
// WORKER_LIMITER_UNAVAILABLE (fail closed, never open), and a `release` follows it, so that a slot
// the primary grants too late is freed at once. A closed channel (the primary is gone) refuses the
// same way. One timer serves all checks: they expire in the order they were asked. While the primary
// has announced a hold (it is about to block on a reload), no check expires before the hold ends.
import type { Duplex } from 'node:stream';
import type {
  ConnectionLimit,
  LimiterFailure,
  LimitVerdict,
  RequestLimit,
  SharedLimiter,
} from '../gateway/access/rate-limit.ts';
import type { WorkersCode } from './errors.ts';
import { decodeFromPrimary, encodeCheck, encodeRelease, lineReader } from './limiter-wire.ts';

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
  /** The primary has announced a hold that has not ended. */
  holding(): boolean;
  close(): void;
}

const UNAVAILABLE: WorkersCode = 'WORKER_LIMITER_UNAVAILABLE';

/**
 * The checks' one timer: a check expires at its deadline, or not before the end of a hold the primary
 * announced (it is about to block on a reload). When a hold ends, what still waits gets one more
 * deadline from then: the primary answers the checks it queued while blocked.
 */
function expiryTimer(deadlineMs: number, pending: Map<number, Pending>, expired: (id: number) => void) {
  let timer: NodeJS.Timeout | null = null;
  /** No check expires before this (performance.now()). */
  let floor = 0;
  let holding = false;
  /** Expires every check past its deadline (the oldest first), then waits for the next one's. */
  const run = (): void => {
    timer = null;
    const now = performance.now();
    for (const [id, entry] of pending) {
      const left = Math.max(entry.askedAt + deadlineMs, floor) - now;
      if (left > 0) {
        timer = setTimeout(run, left);
        return;
      }
      expired(id);
    }
  };
  const rearm = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (pending.size > 0) run();
  };
  return {
    /** A check was added. */
    arm: () => {
      timer ??= setTimeout(run, Math.max(deadlineMs, floor - performance.now()));
    },
    hold(ms: number): void {
      holding = ms > 0;
      floor = performance.now() + (ms > 0 ? ms : deadlineMs);
      rearm();
    },
    holding: () => holding,
    stop(): void {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    },
  };
}

export function createLimiterClient(channel: Duplex, options: { deadlineMs: number }): LimiterClient {
  const pending = new Map<number, Pending>();
  const lines = lineReader();
  let nextId = 0;
  let out: string[] = [];
  let flushing = false;
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

  const expiry = expiryTimer(options.deadlineMs, pending, (id) => {
    const entry = pending.get(id) as Pending;
    pending.delete(id);
    if (entry.slot) send(encodeRelease(id));
    fail(entry, `the primary did not answer within ${options.deadlineMs} ms`);
  });

  const breakDown = (why: string): void => {
    if (broken !== null) return;
    broken = why;
    expiry.stop();
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

  /** A hold, or one verdict: its check's callback, with the slot's release when one was granted. */
  const settle = (line: string): void => {
    const message = decodeFromPrimary(line);
    if (message?.kind === 'hold') {
      expiry.hold(message.ms);
      return;
    }
    const entry = message === null ? undefined : pending.get(message.id);
    // Unknown: a check that expired; its release is already on the way.
    if (message === null || entry === undefined) return;
    pending.delete(message.id);
    const { id, verdict } = message;
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
      expiry.arm();
    },
    pending: () => pending.size,
    holding: () => expiry.holding(),
    close() {
      breakDown('the worker is stopping');
      channel.destroy();
    },
  };
}
