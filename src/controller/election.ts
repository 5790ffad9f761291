// The leader-election loop at the edge: read the Lease, let decideElection say what to do, write
// with the resourceVersion read (409 means someone else won this round), and tell the controller
// when leadership starts and stops. A leader that cannot renew within the renew deadline steps down.
import type { Scheduler } from './backoff.ts';
import type { KubeClient } from './kube-client.ts';
import {
  decideElection,
  type ElectionState,
  type ElectionStep,
  failedAttempt,
  INITIAL_ELECTION,
  type LeaseRead,
  type LeaseSpec,
  type LeaseTimings,
  readLeaseSpec,
  releasedLease,
  retryDelay,
  wroteLease,
} from './leader.ts';
import { RESOURCES, resourcePath } from './resources.ts';

export interface Election {
  start(): void;
  leading(): boolean;
  /** Stops trying; a leader releases the Lease (holder "", 1 s) so a standby takes over at once. */
  stop(): Promise<void>;
}

interface ElectionDeps {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  timings: LeaseTimings;
  scheduler: Scheduler;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log: (line: string) => void;
}

/** One election's state between attempts, shared by the steps below. */
interface Run {
  deps: ElectionDeps;
  /** The Lease's path in the API. */
  path: string;
  /** What the decisions say, `state.leading` included. */
  state: ElectionState;
  /** The Lease as last read or written: what a release writes over. */
  lastRead: { spec: LeaseSpec; resourceVersion: string } | null;
  timer: unknown;
  watchdog: unknown;
  stopped: boolean;
  lastHolder: string;
  /** The attempt under way; stop waits for it. */
  running: Promise<void>;
  /** What the controller has been told. */
  announced: boolean;
}

export function createElection(deps: ElectionDeps): Election {
  const run: Run = {
    deps,
    path: resourcePath(RESOURCES.lease, deps.namespace, deps.name),
    state: INITIAL_ELECTION,
    lastRead: null,
    timer: null,
    watchdog: null,
    stopped: true,
    lastHolder: '',
    running: Promise.resolve(),
    announced: false,
  };
  return {
    start() {
      if (!run.stopped) return;
      run.stopped = false;
      loop(run);
    },
    leading: () => run.announced,
    stop: () => stopElection(run),
  };
}

/** One attempt, then the next after the retry period (a leader) or a jittered delay (a candidate). */
function loop(run: Run): void {
  if (run.stopped) return;
  const { scheduler, timings } = run.deps;
  run.running = attempt(run)
    .catch((error: unknown) => run.deps.log(`leader election: ${(error as Error).message}`))
    .finally(() => {
      if (run.stopped) return;
      // A leader renews every retry period; candidates spread their attempts with jitter.
      const delay = run.state.leading ? timings.retryPeriodMs : retryDelay(timings, scheduler.random);
      run.timer = scheduler.setTimeout(() => loop(run), delay);
    });
}

/** Read the Lease, let decideElection say what to do, and wait, create or renew. */
async function attempt(run: Run): Promise<void> {
  const { deps } = run;
  const now = deps.scheduler.now();
  const current = await readLease(run);
  if (run.stopped) return;
  if (current === null) {
    run.state = failedAttempt(run.state, deps.timings, deps.scheduler.now());
    announce(run);
    return;
  }
  const step = decideElection(run.state, current, deps.identity, deps.timings, now, deps.scheduler.now());
  if (step.action === 'wait') {
    run.state = step.state;
    if (step.holder !== run.lastHolder) deps.log(`the leader is ${step.holder}`);
    run.lastHolder = step.holder;
    announce(run);
    return;
  }
  await writeLease(run, step);
}

async function readLease(run: Run): Promise<LeaseRead | null> {
  const got = await run.deps.client.request('GET', run.path);
  if (!got.ok) return got.error.status === 404 ? { exists: false } : null;
  const rv = got.value.metadata?.resourceVersion ?? '';
  run.lastRead = { spec: readLeaseSpec(got.value.spec), resourceVersion: rv };
  return { exists: true, ...run.lastRead };
}

/**
 * Create or update the Lease with the resourceVersion read; a failure (409: someone else won) is a failed
 * attempt. So is a write whose answer comes back after the renew deadline (client-go cancels such a
 * renewal): a replica the watchdog stepped down meanwhile, or whose Lease others may soon take as
 * expired, must not lead on it. The lease counts from when the write was sent, never from its answer.
 */
async function writeLease(run: Run, step: Exclude<ElectionStep, { action: 'wait' }>): Promise<void> {
  const { deps } = run;
  const sentAt = deps.scheduler.now();
  const wrote =
    step.action === 'create'
      ? await deps.client.request(
          'POST',
          resourcePath(RESOURCES.lease, deps.namespace),
          leaseObject(deps, step.spec, null),
        )
      : await deps.client.request('PUT', run.path, leaseObject(deps, step.spec, step.resourceVersion));
  // Kept even when stopping meanwhile: the release that follows must carry this write's version.
  if (wrote.ok)
    run.lastRead = { spec: step.spec, resourceVersion: wrote.value.metadata?.resourceVersion ?? '' };
  if (run.stopped) return;
  const took = deps.scheduler.now() - sentAt;
  if (wrote.ok && took >= deps.timings.renewDeadlineMs)
    deps.log(`the Lease write took ${took} ms, past the renew deadline: not leading on it`);
  if (!wrote.ok || took >= deps.timings.renewDeadlineMs) {
    run.state = failedAttempt(step.state, deps.timings, deps.scheduler.now());
    announce(run);
    return;
  }
  run.state = wroteLease(step.spec, sentAt);
  run.lastHolder = deps.identity;
  armWatchdog(run, deps.timings.renewDeadlineMs - took);
  announce(run);
}

function leaseObject(deps: ElectionDeps, spec: LeaseSpec, resourceVersion: string | null): object {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: deps.name,
      namespace: deps.namespace,
      ...(resourceVersion !== null ? { resourceVersion } : {}),
    },
    spec,
  };
}

/** A leader that cannot renew within the renew deadline (from the last renewal's sending) steps down. */
function armWatchdog(run: Run, delayMs: number): void {
  const { scheduler, timings } = run.deps;
  if (run.watchdog !== null) scheduler.clearTimeout(run.watchdog);
  run.watchdog = scheduler.setTimeout(() => {
    run.watchdog = null;
    if (!run.stopped && run.state.leading) {
      run.deps.log(`could not renew the Lease within ${timings.renewDeadlineMs} ms`);
      run.state = { ...run.state, leading: false };
      announce(run);
    }
  }, delayMs);
}

/** Tells the controller when leadership starts and stops (once per change). */
function announce(run: Run): void {
  const { deps } = run;
  if (run.state.leading === run.announced) return;
  run.announced = run.state.leading;
  if (run.announced) {
    deps.log(`became the leader (Lease ${deps.namespace}/${deps.name}, identity ${deps.identity})`);
    deps.onStartedLeading();
  } else {
    deps.log(`stopped leading (Lease ${deps.namespace}/${deps.name})`);
    deps.onStoppedLeading();
  }
}

/** Stops the loop; a leader that still holds the Lease releases it, then says it stopped leading. */
/** Gives the Lease back if we hold it; a conflict (our own write crossed it) is retried once over a fresh read. */
async function releaseLease(run: Run): Promise<void> {
  const { deps } = run;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    if (attempt > 0 && (await readLease(run))?.exists !== true) return;
    const held = run.lastRead;
    if (held === null || held.spec.holderIdentity !== deps.identity) return;
    const lease = leaseObject(deps, releasedLease(held.spec, deps.scheduler.now()), held.resourceVersion);
    const released = await deps.client.request('PUT', run.path, lease);
    if (released.ok) {
      deps.log('released the Lease');
      return;
    }
    if (released.error.status !== 409 || attempt === 1) {
      deps.log(`could not release the Lease: ${released.error.message}`);
      return;
    }
  }
}

async function stopElection(run: Run): Promise<void> {
  const { deps } = run;
  if (run.stopped) return;
  run.stopped = true;
  if (run.timer !== null) deps.scheduler.clearTimeout(run.timer);
  if (run.watchdog !== null) deps.scheduler.clearTimeout(run.watchdog);
  await run.running;
  if (!run.announced) return;
  await releaseLease(run);
  run.state = { ...run.state, leading: false };
  announce(run);
}
