// The Lease is given back on shutdown even when the leader's renewal is on the wire as it stops: the
// release must carry that renewal's resourceVersion (it once reused the one before, got 409, and left
// the Lease held for a whole lease duration). A scripted API and a manual clock: no timing.
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

test('a leader stopping while its renewal is in flight still releases the Lease', async () => {
  const api = scriptedApi();
  const timers: { fn: () => void; ms: number }[] = [];
  let now = 1_000_000;
  const lines: string[] = [];
  let leading = false;
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
      now: () => now,
    },
    onStartedLeading: () => {
      leading = true;
    },
    onStoppedLeading: () => {
      leading = false;
    },
    log: (line) => lines.push(line),
  });
  election.start();
  while (!leading) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(api.lease()?.spec.holderIdentity, 'pod-a');
  // The retry period passes: the leader renews, and that PUT is held on the wire.
  now += 2_000;
  api.holdNextPut = true;
  // The renewal loop's timer (the retry period), not the renew-deadline watchdog.
  const renew = timers.find((t) => t.ms === 2_000);
  assert.ok(renew, 'a renewal was scheduled');
  renew.fn();
  while (!api.putWaiting()) await new Promise((resolve) => setImmediate(resolve));
  const stopped = election.stop();
  // The renewal lands after stop() was called.
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
  api.release();
  await stopped;
  assert.equal(api.lease()?.spec.holderIdentity, '', `the Lease is still held; log: ${lines.join(' | ')}`);
  assert.ok(lines.includes('released the Lease'), lines.join(' | '));
  assert.equal(leading, false);
});
