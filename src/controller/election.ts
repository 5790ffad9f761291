// The leader-election loop at the edge: read the Lease, let decideElection say what to do, write
// with the resourceVersion read (409 means someone else won this round), and tell the controller
// when leadership starts and stops. A leader that cannot renew within the renew deadline steps down.
import type { Scheduler } from './backoff.ts';
import type { KubeClient } from './kube-client.ts';
import {
  decideElection,
  type ElectionState,
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

export function createElection(deps: {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  timings: LeaseTimings;
  scheduler: Scheduler;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log: (line: string) => void;
}): Election {
  const { client, scheduler, timings } = deps;
  const path = resourcePath(RESOURCES.lease, deps.namespace, deps.name);
  let state: ElectionState = INITIAL_ELECTION;
  let lastRead: { spec: LeaseSpec; resourceVersion: string } | null = null;
  let timer: unknown = null;
  let watchdog: unknown = null;
  let stopped = true;
  let lastHolder = '';
  let running: Promise<void> = Promise.resolve();

  // What the controller has been told; `state.leading` is what the decisions say.
  let announced = false;
  const announce = () => {
    if (state.leading === announced) return;
    announced = state.leading;
    if (announced) {
      deps.log(`became the leader (Lease ${deps.namespace}/${deps.name}, identity ${deps.identity})`);
      deps.onStartedLeading();
    } else {
      deps.log(`stopped leading (Lease ${deps.namespace}/${deps.name})`);
      deps.onStoppedLeading();
    }
  };

  const armWatchdog = () => {
    if (watchdog !== null) scheduler.clearTimeout(watchdog);
    watchdog = scheduler.setTimeout(() => {
      watchdog = null;
      if (!stopped && state.leading) {
        deps.log(`could not renew the Lease within ${timings.renewDeadlineMs} ms`);
        state = { ...state, leading: false };
        announce();
      }
    }, timings.renewDeadlineMs);
  };

  const read = async (): Promise<LeaseRead | null> => {
    const got = await client.request('GET', path);
    if (!got.ok) return got.error.status === 404 ? { exists: false } : null;
    const rv = got.value.metadata?.resourceVersion ?? '';
    lastRead = { spec: readLeaseSpec(got.value.spec), resourceVersion: rv };
    return { exists: true, ...lastRead };
  };

  const attempt = async () => {
    const now = scheduler.now();
    const current = await read();
    if (stopped) return;
    if (current === null) {
      state = failedAttempt(state, timings, scheduler.now());
      announce();
      return;
    }
    const step = decideElection(state, current, deps.identity, timings, now);
    if (step.action === 'wait') {
      state = step.state;
      if (step.holder !== lastHolder) deps.log(`the leader is ${step.holder}`);
      lastHolder = step.holder;
      announce();
      return;
    }
    const body = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: deps.name,
        namespace: deps.namespace,
        ...(step.action === 'update' ? { resourceVersion: step.resourceVersion } : {}),
      },
      spec: step.spec,
    };
    const wrote =
      step.action === 'create'
        ? await client.request('POST', resourcePath(RESOURCES.lease, deps.namespace), body)
        : await client.request('PUT', path, body);
    if (stopped) return;
    if (!wrote.ok) {
      state = failedAttempt(step.state, timings, scheduler.now());
      announce();
      return;
    }
    lastRead = { spec: step.spec, resourceVersion: wrote.value.metadata?.resourceVersion ?? '' };
    state = wroteLease(step.spec, scheduler.now());
    lastHolder = deps.identity;
    armWatchdog();
    announce();
  };

  const loop = () => {
    if (stopped) return;
    running = attempt()
      .catch((error: unknown) => deps.log(`leader election: ${(error as Error).message}`))
      .finally(() => {
        if (stopped) return;
        // A leader renews every retry period; candidates spread their attempts with jitter.
        const delay = state.leading ? timings.retryPeriodMs : retryDelay(timings, scheduler.random);
        timer = scheduler.setTimeout(loop, delay);
      });
  };

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      loop();
    },
    leading: () => announced,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer !== null) scheduler.clearTimeout(timer);
      if (watchdog !== null) scheduler.clearTimeout(watchdog);
      await running;
      if (!announced) return;
      if (lastRead !== null && lastRead.spec.holderIdentity === deps.identity) {
        const released = await client.request('PUT', path, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: deps.name, namespace: deps.namespace, resourceVersion: lastRead.resourceVersion },
          spec: releasedLease(lastRead.spec, scheduler.now()),
        });
        deps.log(
          released.ok ? 'released the Lease' : `could not release the Lease: ${released.error.message}`,
        );
      }
      state = { ...state, leading: false };
      announce();
    },
  };
}
