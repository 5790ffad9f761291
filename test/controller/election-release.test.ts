// The Lease is given back on shutdown even when the leader's renewal is on the wire as it stops: the
// release must carry that renewal's resourceVersion (it once reused the one before, got 409, and left
// the Lease held for a whole lease duration). A renewal answered after the renew deadline leads to
// nothing. A scripted API and a manual clock: no timing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createElection } from '../../src/controller/election.ts';
import type { KubeClient } from '../../src/controller/kube-client.ts';

interface Stored {
  spec: Record<string, unknown>;
  resourceVersion: number;
}

function scriptedApi() {
  let lease: Stored | null = null;
  let held: (() => void) | null = null;
  const api = {
    holdNextPut: false,
    lease: () => lease,
    release: () => held?.(),
    putWaiting: () => held !== null,
    client: {
      server: 'scripted',
      async request(method, _path, body) {
        const object = body as { metadata?: { resourceVersion?: string }; spec?: Record<string, unknown> };
        if (method === 'GET') {
          if (lease === null)
            return { ok: false, error: { code: 'KUBE_API_STATUS', status: 404, message: 'not found' } };
          return {
            ok: true,
            value: { metadata: { resourceVersion: String(lease.resourceVersion) }, spec: lease.spec },
          };
        }
        if (method === 'PUT' && api.holdNextPut) {
          api.holdNextPut = false;
          await new Promise<void>((resolve) => {
            held = resolve;
          });
        }
        if (
          method === 'PUT' &&
          lease !== null &&
          object.metadata?.resourceVersion !== String(lease.resourceVersion)
        ) {
          return { ok: false, error: { code: 'KUBE_API_STATUS', status: 409, message: 'conflict' } };
        }
        lease = { spec: object.spec ?? {}, resourceVersion: (lease?.resourceVersion ?? 0) + 1 };
        return {
          ok: true,
          value: { metadata: { resourceVersion: String(lease.resourceVersion) }, spec: lease.spec },
        };
      },
    } as KubeClient,
  };
  return api;
}

/** An election of pod-a against `api` on a manual clock: its timers are run by hand. */
function manualElection(api: ReturnType<typeof scriptedApi>) {
  const timers: { fn: () => void; ms: number }[] = [];
  const clock = { now: 1_000_000 };
  const lines: string[] = [];
  const seen = { leading: false };
  const election = createElection({
    client: api.client,
    namespace: 'ingress-nginx',
    name: 'ingress-nginx-leader',
    identity: 'pod-a',
    timings: { durationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
    scheduler: {
      setTimeout: (fn, ms) => timers.push({ fn, ms }),
      clearTimeout: () => {},
      random: () => 0.5,
      now: () => clock.now,
    },
    onStartedLeading: () => {
      seen.leading = true;
    },
    onStoppedLeading: () => {
      seen.leading = false;
    },
    log: (line) => lines.push(line),
  });
  return { election, timers, clock, lines, seen };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** Leading, then the retry period passes and the renewal's PUT is held on the wire. */
async function renewalOnTheWire(api: ReturnType<typeof scriptedApi>, e: ReturnType<typeof manualElection>) {
  e.election.start();
  while (!e.seen.leading) await turn();
  assert.equal(api.lease()?.spec.holderIdentity, 'pod-a');
  e.clock.now += 2_000;
  api.holdNextPut = true;
  // The renewal loop's timer (the retry period), not the renew-deadline watchdog.
  const renew = e.timers.find((t) => t.ms === 2_000);
  assert.ok(renew, 'a renewal was scheduled');
  renew.fn();
  while (!api.putWaiting()) await turn();
}

test('a leader stopping while its renewal is in flight still releases the Lease', async () => {
  const api = scriptedApi();
  const e = manualElection(api);
  await renewalOnTheWire(api, e);
  const stopped = e.election.stop();
  // The renewal lands after stop() was called.
  for (let i = 0; i < 10; i += 1) await turn();
  api.release();
  await stopped;
  assert.equal(api.lease()?.spec.holderIdentity, '', `the Lease is still held; log: ${e.lines.join(' | ')}`);
  assert.ok(e.lines.includes('released the Lease'), e.lines.join(' | '));
  assert.equal(e.seen.leading, false);
});

test('a renewal answered after the renew deadline does not make the stepped-down leader lead again', async () => {
  // client-go cancels a renewal at the renew deadline; keepip once took the late answer for a fresh
  // renewal and led again beside the replica that had taken the Lease meanwhile.
  const api = scriptedApi();
  const e = manualElection(api);
  await renewalOnTheWire(api, e);
  e.clock.now += 10_000;
  const watchdog = e.timers.find((t) => t.ms === 10_000);
  assert.ok(watchdog, 'the renew-deadline watchdog was armed');
  watchdog.fn();
  assert.equal(e.seen.leading, false);
  // The server applied the renewal; its answer comes back only now.
  api.release();
  for (let i = 0; i < 10; i += 1) await turn();
  assert.equal(e.seen.leading, false, e.lines.join(' | '));
  assert.equal(e.election.leading(), false);
  assert.equal(e.lines.filter((l) => l.startsWith('became the leader')).length, 1, e.lines.join(' | '));
  assert.ok(
    e.lines.some((l) => /past the renew deadline: not leading on it/.test(l)),
    e.lines.join(' | '),
  );
  await e.election.stop();
});
