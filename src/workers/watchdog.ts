// The pool's watchdog (`--worker-watchdog D`): a serving worker that has said nothing to its primary
// for D (no answer to the pings sent every tick, no reply, no event) is wedged (an endless loop, a
// SIGSTOP, a livelock) and is killed, so that the primary starts another in its slot: a wedged worker
// would keep its share of new connections (SO_REUSEPORT hashes them to its socket) and hold up every
// reload waiting for it. This is gunicorn's --timeout and Envoy's kill_timeout; nginx's master does
// not watch its workers. The arithmetic lives here, pure; pool.ts runs it.
import { LONGEST_TIMER_MS, parseDurationMs } from '../config/duration.ts';
import type { WorkersCode } from './errors.ts';

export const DEFAULT_WATCHDOG_MS = 10_000;
/** Shorter than this would kill workers that are only busy (a long GC pause, a starved CPU). */
export const MIN_WATCHDOG_MS = 1_000;
const LONGEST_TICK_MS = 1_000;

export type WatchdogSetting = { ok: true; value: number } | { ok: false; code: WorkersCode; error: string };

/** `--worker-watchdog`: a duration (10, 10s, 1500ms) from MIN_WATCHDOG_MS to setTimeout's longest. */
export function parseWatchdog(text: string): WatchdogSetting {
  const ms = parseDurationMs(text);
  if (ms === null || ms < MIN_WATCHDOG_MS || ms > LONGEST_TIMER_MS) {
    return {
      ok: false,
      code: 'WORKER_WATCHDOG_INVALID',
      error: `"${text}" is not a duration from 1s to 24 days (10, 10s, 1500ms)`,
    };
  }
  return { ok: true, value: ms };
}

/** How often the watchdog pings and counts: at least four ticks fit in the allowed silence. */
export function watchdogTickMs(watchdogMs: number): number {
  return Math.min(LONGEST_TICK_MS, Math.floor(watchdogMs / 4));
}

/**
 * The silence one tick adds. A primary that was itself blocked (a long snapshot check, a stopped or
 * starved process) saw nothing for that time through no fault of its workers, and their answers are
 * read only after this tick: a tick counts for at most one tick, so a worker is killed only after
 * more than watchdogMs / tickMs ticks in a row without a word from it.
 */
export function silenceOfTick(elapsedMs: number, tickMs: number): number {
  return Math.max(0, Math.min(elapsedMs, tickMs));
}
