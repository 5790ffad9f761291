// A pool of worker processes (the primary's side of `--workers N`): forks them, hands each its
// configuration, asks them things over IPC, restarts one that exits while serving (with a growing
// delay when it keeps dying), kills and replaces one that has gone silent (watchdog.ts), runs reloads
// and restarts one at a time, and drains them all on stop.
// What a worker does is its role's business (gateway-worker.ts, lb-worker.ts); the pool only carries
// messages. Workers inherit stdout and stderr, so their log lines go where the primary's go.
import { LONGEST_TIMER_MS } from '../config/duration.ts';
import { type ChildProcess, fork as forkProcess } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { WorkersCode } from './errors.ts';
import { silenceOfTick, watchdogTickMs } from './watchdog.ts';
import { boundedExecArgv } from './young-generation.ts';
import {
  type CallMessage,
  CHANNEL_FD,
  type FromWorker,
  isFromWorker,
  type ToWorker,
  type WorkerRole,
} from './protocol.ts';

export interface PoolEvent {
  level: 'info' | 'warning' | 'error';
  event: string;
  message: string;
  code?: WorkersCode;
  [field: string]: unknown;
}

export interface PoolOptions {
  role: WorkerRole;
  size: number;
  /** The configuration a worker starting in `slot` serves, read when it is forked (the latest committed). */
  init(slot: number): unknown;
  log(event: PoolEvent): void;
  /** How long stop() waits for a worker to drain before it is killed (read at each stop). */
  drainBoundMs: () => number;
  /**
   * When given, each worker gets a second channel (a socketpair at CHANNEL_FD in the worker), handed
   * here as it is forked; it closes when the worker exits.
   */
  channel?(slot: number, channel: Duplex): void;
  /** A worker's own events (protocol.ts PostEvent); absent: ignored. */
  onEvent?(slot: number, topic: string, value: unknown): void;
  /** How long a serving worker may say nothing before it is killed and replaced (watchdog.ts). */
  watchdogMs: number;
  /**
   * Time beyond watchdogMs for a call that builds a configuration (a worker's start, a reload's
   * `prepare`), which blocks that worker's loop for as long as the build takes: the primary's own
   * estimate, read at each such call. Absent: none.
   */
  buildAllowanceMs?(): number;
}

export interface BroadcastOptions {
  /** A worker that has not answered by then counts as not answering (ok: false; a late reply is dropped). */
  deadlineMs?: number;
  /**
   * The call builds a configuration: the watchdog leaves each worker to it, and one that has not
   * answered within watchdogMs plus the build allowance is killed as unresponsive (it answers `gone`).
   */
  builds?: boolean;
}

export type CallResult =
  | { slot: number; pid: number; ok: true; value: unknown }
  | { slot: number; pid: number; ok: false; message: string; gone: boolean };

export interface WorkerPool {
  /** Forks every worker and waits until all serve; rejects (and stops them) when one cannot start. */
  start(): Promise<Array<{ slot: number; pid: number; info: unknown }>>;
  /** Asks every serving worker; a worker that exits (or is killed) meanwhile answers `gone`. */
  broadcast(method: string, arg?: unknown, options?: BroadcastOptions): Promise<CallResult[]>;
  /** Runs `task` after every earlier one (reloads and restarts never overlap). */
  exclusive<T>(task: () => Promise<T>): Promise<T>;
  /** Workers serving now. */
  serving(): number;
  pids(): number[];
  /** Restarts so far, by slot (1-based). */
  restarts(): ReadonlyMap<number, number>;
  /** Workers the watchdog killed so far, by slot. */
  watchdogKills(): ReadonlyMap<number, number>;
  /**
   * The first step of a stop (stop() follows at once): no restart from now on, and every serving
   * worker closes its listeners; resolves once each has answered that they are closed, or exited.
   */
  stopAccepting(): Promise<void>;
  /** Drains every worker (in parallel) and waits for them to exit. */
  stop(): Promise<void>;
  /** What drained workers answered last (their final metrics), each handed out once. */
  takeLastWords(): CallResult[];
}

interface Member {
  slot: number;
  child: ChildProcess;
  pid: number;
  serving: boolean;
  startedAt: number;
  pending: Map<number, (result: CallResult) => void>;
  exited: Promise<void>;
  /** The watchdog's count of how long nothing came from it; any message sets it back to 0. */
  silentMs: number;
  /** Calls that build a configuration in flight: the watchdog does not count meanwhile. */
  building: number;
  pinging: boolean;
  /** Killed as unresponsive: no longer asked anything, its exit restarts the slot. */
  killed: boolean;
}

const ENTRY = fileURLToPath(new URL('./worker-main.ts', import.meta.url));
/** A worker that dies sooner than this after starting counts towards a crash loop. */
const STABLE_MS = 1_000;
const MAX_RESTART_DELAY_MS = 10_000;
/** A start loads the program before it builds the configuration (seconds on a starved node). */
const START_MARGIN_MS = 30_000;

export function restartDelayMs(failuresInARow: number): number {
  return failuresInARow <= 0 ? 0 : Math.min(100 * 2 ** (failuresInARow - 1), MAX_RESTART_DELAY_MS);
}

/** The pool's state, shared by the steps below (spawn, answer, exit, restart, drain). */
interface PoolState {
  readonly options: PoolOptions;
  readonly members: Map<number, Member>;
  /** Short-lived starts in a row, by slot (the restart delay grows with them). */
  readonly failures: Map<number, number>;
  readonly restarts: Map<number, number>;
  readonly watchdogKills: Map<number, number>;
  /** Workers forked and not yet serving (or failed): watched too, and killed when the pool stops. */
  readonly launching: Set<Member>;
  readonly timers: Set<NodeJS.Timeout>;
  nextCall: number;
  stopping: boolean;
  watchdog: NodeJS.Timeout | null;
  /** Callers' exclusive tasks (reloads) queued or running: a start that never said anything then gets no margin. */
  waiting: number;
  /** The tail of the exclusive tasks (reloads, restarts). */
  queue: Promise<unknown>;
  /** Drain answers that carry a value, until takeLastWords() hands them out. */
  lastWords: CallResult[];
}

export function createWorkerPool(options: PoolOptions): WorkerPool {
  const state: PoolState = {
    options,
    members: new Map(),
    failures: new Map(),
    restarts: new Map(),
    watchdogKills: new Map(),
    launching: new Set(),
    timers: new Set(),
    nextCall: 0,
    stopping: false,
    watchdog: null,
    waiting: 0,
    queue: Promise.resolve(),
    lastWords: [],
  };
  const serving = () => [...state.members.values()].filter((m) => m.serving && !m.killed);
  return {
    start: () => startAll(state),
    broadcast: (method, arg = null, options = {}) =>
      Promise.all(serving().map((m) => callWith(state, m, method, arg, options))),
    exclusive: (task) => {
      state.waiting++;
      return exclusive(state, task).finally(() => {
        state.waiting--;
      });
    },
    serving: () => serving().length,
    pids: () => [...state.members.values()].sort((a, b) => a.slot - b.slot).map((m) => m.pid),
    restarts: () => state.restarts,
    watchdogKills: () => state.watchdogKills,
    stopAccepting: () => stopAcceptingAll(state),
    stop: () => stopAll(state),
    takeLastWords: () => state.lastWords.splice(0),
  };
}

function exclusive<T>(state: PoolState, task: () => Promise<T>): Promise<T> {
  const run = state.queue.then(task, task);
  state.queue = run.catch(() => {});
  return run;
}

/** One broadcast's call to one worker, under the options' deadline or as a build. */
async function callWith(
  state: PoolState,
  member: Member,
  method: string,
  arg: unknown,
  options: BroadcastOptions,
): Promise<CallResult> {
  if (!options.builds) return call(state, member, method, arg, options.deadlineMs);
  member.building++;
  try {
    return await call(state, member, method, arg, buildDeadlineMs(state.options), true);
  } finally {
    member.building--;
  }
}

function buildDeadlineMs(options: PoolOptions): number {
  return Math.min(options.watchdogMs + Math.ceil(options.buildAllowanceMs?.() ?? 0), LONGEST_TIMER_MS);
}

/** Asks one worker; with a deadline, no answer by then is ok: false (and the worker killed when `kill`). */
function call(
  state: PoolState,
  member: Member,
  method: string,
  arg: unknown,
  deadlineMs?: number,
  kill = false,
): Promise<CallResult> {
  return new Promise((resolve) => {
    const id = ++state.nextCall;
    let timer: NodeJS.Timeout | null = null;
    member.pending.set(id, (result) => {
      if (timer !== null) clearTimeout(timer);
      resolve(result);
    });
    if (deadlineMs !== undefined)
      timer = setTimeout(() => {
        member.pending.delete(id);
        const message = `did not answer ${method} within ${deadlineMs} ms`;
        if (kill) killUnresponsive(state, member, message);
        resolve({ slot: member.slot, pid: member.pid, ok: false, message, gone: kill });
      }, deadlineMs);
    const message: CallMessage = { kind: 'call', id, method, arg };
    send(member, message);
  });
}

function send(member: Member, message: ToWorker): void {
  try {
    member.child.send(message);
  } catch {
    // The channel is closing: the exit handler answers the pending calls.
  }
}

/** Forks a worker process into `slot`, with the second channel when the pool has one. */
function fork(options: PoolOptions, slot: number): Member {
  const child = forkProcess(ENTRY, [], {
    execArgv: boundedExecArgv(process.execArgv, process.env.NODE_OPTIONS),
    serialization: 'advanced',
    stdio: options.channel
      ? ['ignore', 'inherit', 'inherit', 'ipc', 'pipe']
      : ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const channel = child.stdio[CHANNEL_FD];
  if (options.channel && channel) options.channel(slot, channel as Duplex);
  child.on('error', () => {}); // a send to a worker that just died; 'exit' follows
  return {
    slot,
    child,
    pid: child.pid ?? 0,
    serving: false,
    startedAt: Date.now(),
    pending: new Map(),
    exited: new Promise((resolve) => child.once('exit', () => resolve())),
    silentMs: 0,
    building: 0,
    pinging: false,
    killed: false,
  };
}

/**
 * Forks a worker into `slot`; resolves once it serves, rejects when it cannot. Its start loads the
 * program and builds the configuration: one that has not started within a build's deadline and
 * START_MARGIN_MS is killed.
 */
function launch(state: PoolState, slot: number): Promise<{ member: Member; info: unknown }> {
  const member = fork(state.options, slot);
  const { child } = member;
  state.launching.add(member);
  return new Promise((resolve, reject) => {
    const deadlineMs = buildDeadlineMs(state.options) + START_MARGIN_MS;
    const settle = (error: Error | null, info?: unknown) => {
      clearTimeout(startDeadline);
      state.launching.delete(member);
      child.off('exit', onEarlyExit);
      if (error !== null) reject(error);
      else resolve({ member, info });
    };
    const startDeadline = setTimeout(() => {
      child.kill('SIGKILL');
      settle(new Error(`worker ${slot} did not start serving within ${deadlineMs} ms (killed)`));
    }, deadlineMs);
    const onMessage = (message: unknown) => {
      if (!isFromWorker(message)) return;
      member.silentMs = 0;
      if (message.kind === 'ready') {
        member.serving = true;
        settle(null, message.info);
      } else if (message.kind === 'init-failed') settle(new Error(message.message));
      else if (message.kind === 'event') state.options.onEvent?.(slot, message.topic, message.value);
      else answer(member, message);
    };
    const onEarlyExit = (code: number | null, signal: string | null) =>
      settle(new Error(`worker ${slot} exited before serving (${exitText(code, signal)})`));
    child.on('message', onMessage);
    child.once('exit', onEarlyExit);
    child.once('exit', (code, signal) => onExit(state, member, code, signal));
    const payload = state.options.init(slot);
    send(member, { kind: 'init', role: state.options.role, slot, payload });
  });
}

function answer(member: Member, message: FromWorker): void {
  if (message.kind !== 'reply') return;
  const resolve = member.pending.get(message.id);
  if (resolve === undefined) return;
  member.pending.delete(message.id);
  resolve(
    message.ok
      ? { slot: member.slot, pid: member.pid, ok: true, value: message.value }
      : { slot: member.slot, pid: member.pid, ok: false, message: message.message, gone: false },
  );
}

/** A worker exited: its calls answer `gone`; one that was serving is logged and restarted. */
function onExit(state: PoolState, member: Member, code: number | null, signal: string | null): void {
  const wasServing = member.serving;
  member.serving = false;
  for (const resolve of member.pending.values()) {
    resolve({ slot: member.slot, pid: member.pid, ok: false, message: 'the worker exited', gone: true });
  }
  member.pending.clear();
  if (state.stopping || state.members.get(member.slot) !== member || !wasServing) return;
  state.members.delete(member.slot);
  state.options.log({
    level: 'error',
    event: 'worker-exited',
    code: 'WORKER_EXITED',
    message: `worker ${member.slot} (pid ${member.pid}) exited (${exitText(code, signal)}); starting another [WORKER_EXITED]`,
    slot: member.slot,
    pid: member.pid,
  });
  // A worker the watchdog killed counts as short-lived: one that wedges again at each start backs off.
  scheduleRestart(state, member.slot, member.killed ? 0 : Date.now() - member.startedAt);
}

/**
 * Every tick: each serving worker not busy with a build is pinged (one ping at a time) and its
 * silence counted; one silent for longer than watchdogMs is killed (its exit restarts the slot). A
 * starting worker answers pings too (worker-main.ts listens before it loads anything), except while
 * node evaluates keepip's modules and the worker builds its configuration: until it serves it is
 * allowed watchdogMs and the build allowance, and START_MARGIN_MS more (seconds on a starved node)
 * unless a reload waits for the start to end.
 */
function startWatchdog(state: PoolState): NodeJS.Timeout {
  const { watchdogMs } = state.options;
  const tickMs = watchdogTickMs(watchdogMs);
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const silence = silenceOfTick(now - last, tickMs);
    last = now;
    for (const member of state.members.values()) {
      const watched = member.serving && !member.killed && member.building === 0;
      watch(state, member, watched ? silence : null, watchdogMs);
    }
    // A start gets a margin, unless a reload waits behind it (restarts hold the queue). Having answered
    // a ping is no sign the rest is quick: evaluating the modules blocks the worker's loop for seconds
    // on a starved node (a 1 s watchdog killed such starts under a loaded test run).
    const starting = buildDeadlineMs(state.options) + (state.waiting > 0 ? 0 : START_MARGIN_MS);
    for (const member of state.launching) watch(state, member, silence, starting);
  }, tickMs);
  timer.unref();
  return timer;
}

/** One tick for one worker: `silence` added (null: not watched now), killed past `allowedMs`, else pinged. */
function watch(state: PoolState, member: Member, silence: number | null, allowedMs: number): void {
  if (silence === null || member.killed) {
    member.silentMs = 0;
    return;
  }
  member.silentMs += silence;
  if (member.silentMs > allowedMs) {
    killUnresponsive(state, member, `said nothing for ${allowedMs} ms`);
  } else if (!member.pinging) {
    member.pinging = true;
    void call(state, member, 'ping', null).then(() => {
      member.pinging = false;
    });
  }
}

/** A worker that stopped answering: killed (SIGKILL reaches a stopped process too) and logged. */
function killUnresponsive(state: PoolState, member: Member, why: string): void {
  if (member.killed) return;
  member.killed = true;
  state.watchdogKills.set(member.slot, (state.watchdogKills.get(member.slot) ?? 0) + 1);
  state.options.log({
    level: 'error',
    event: 'worker-unresponsive',
    code: 'WORKER_UNRESPONSIVE',
    message: `worker ${member.slot} (pid ${member.pid}) ${why}: killing it [WORKER_UNRESPONSIVE]`,
    slot: member.slot,
    pid: member.pid,
  });
  member.child.kill('SIGKILL');
}

function scheduleRestart(state: PoolState, slot: number, livedMs: number): void {
  if (state.stopping) return;
  const inARow = livedMs < STABLE_MS ? (state.failures.get(slot) ?? 0) + 1 : 0;
  state.failures.set(slot, inARow);
  const timer = setTimeout(() => {
    state.timers.delete(timer);
    void exclusive(state, () => restart(state, slot));
  }, restartDelayMs(inARow));
  state.timers.add(timer);
}

async function restart(state: PoolState, slot: number): Promise<void> {
  if (state.stopping) return;
  const { options } = state;
  try {
    const { member } = await launch(state, slot);
    if (state.stopping) {
      await drainOne(state, member);
      return;
    }
    state.members.set(slot, member);
    state.restarts.set(slot, (state.restarts.get(slot) ?? 0) + 1);
    options.log({
      level: 'info',
      event: 'worker-restarted',
      message: `worker ${slot} serving again (pid ${member.pid})`,
      slot,
      pid: member.pid,
    });
  } catch (error) {
    if (state.stopping) return; // killed by the stop, not a failure to report
    options.log({
      level: 'error',
      event: 'worker-start-failed',
      code: 'WORKER_START_FAILED',
      message: `worker ${slot} could not start: ${(error as Error).message}; trying again [WORKER_START_FAILED]`,
      slot,
    });
    scheduleRestart(state, slot, 0);
  }
}

async function drainOne(state: PoolState, member: Member): Promise<void> {
  // A worker-shutdown-timeout of a year waits 24.8 days, not 1 ms.
  const bound = Math.min(state.options.drainBoundMs(), LONGEST_TIMER_MS);
  const timer = setTimeout(() => member.child.kill('SIGKILL'), bound);
  if (member.child.exitCode === null && member.child.signalCode === null) {
    // A worker's drain answer is what it counted last: its metrics after its last request.
    const answer = await call(state, member, 'drain', null);
    if (answer.ok && answer.value !== null && answer.value !== undefined) state.lastWords.push(answer);
  }
  await member.exited;
  clearTimeout(timer);
}

/** Every slot forked at once; when one cannot start, the others are drained and the reason thrown. */
async function startAll(state: PoolState): Promise<Array<{ slot: number; pid: number; info: unknown }>> {
  const watchdog = startWatchdog(state);
  state.watchdog = watchdog;
  const started = await Promise.allSettled(
    Array.from({ length: state.options.size }, (_, i) =>
      launch(state, i + 1).then((launched) => {
        state.members.set(launched.member.slot, launched.member);
        return launched;
      }),
    ),
  );
  const failed = started.find((r) => r.status === 'rejected');
  if (failed !== undefined) {
    state.stopping = true;
    await Promise.all([...state.members.values()].map((m) => drainOne(state, m)));
    clearInterval(watchdog); // after the drains, as in stopAll: a wedged one is killed at the watchdog's bound
    throw (failed as PromiseRejectedResult).reason;
  }
  return started.flatMap((r) =>
    r.status === 'fulfilled'
      ? [{ slot: r.value.member.slot, pid: r.value.member.pid, info: r.value.info }]
      : [],
  );
}

/**
 * Every serving worker drains at once, each under its bound, and a starting one is killed (it serves
 * nothing yet), without waiting for the task in progress: a reload waiting on a worker would hold the
 * stop. That task then ends as its workers answer `gone`. The watchdog watches until the last has
 * exited: a draining worker still answers pings, so a wedged one is killed at the watchdog's bound
 * rather than held until the drain bound (minutes with worker-shutdown-timeout's default).
 */
async function stopAll(state: PoolState): Promise<void> {
  endRestarts(state);
  await Promise.all([...state.members.values()].map((m) => drainOne(state, m)));
  if (state.watchdog !== null) clearInterval(state.watchdog);
  // A restart that started meanwhile drains what it started (restart() checks `stopping`).
  await exclusive(state, async () => {});
}

/** No restart from now on: the pending ones are cancelled and a starting worker killed (it serves nothing yet). */
function endRestarts(state: PoolState): void {
  state.stopping = true;
  for (const timer of state.timers) clearTimeout(timer);
  state.timers.clear();
  for (const member of state.launching) member.child.kill('SIGKILL');
}

/**
 * Every serving worker closes its listeners, in parallel. No deadline of its own: a worker that does
 * not answer is killed by the watchdog, or at the latest at the drain bound (stop() runs beside this),
 * and its exit answers `gone`.
 */
async function stopAcceptingAll(state: PoolState): Promise<void> {
  endRestarts(state);
  const members = [...state.members.values()];
  await Promise.all([
    ...members.filter((m) => m.serving && !m.killed).map((m) => call(state, m, 'stopAccepting', null)),
    // One killed a moment ago (the watchdog, or a start endRestarts ended) holds its listener until it is gone.
    ...[...members.filter((m) => m.killed), ...state.launching].map((m) => m.exited),
  ]);
}

function exitText(code: number | null, signal: string | null): string {
  return signal !== null ? `signal ${signal}` : `exit code ${code ?? '?'}`;
}
