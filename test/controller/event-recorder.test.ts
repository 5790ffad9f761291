// Events are the leader's, like status: those still queued when leadership is lost are not written.
// A scripted API: no timing.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createEventRecorder } from '../../src/controller/event-recorder.ts';
import type { EventSpec } from '../../src/controller/events.ts';
import { createKubeClient, type KubeClient, loadKubeConfig } from '../../src/controller/kube-client.ts';
import { startFakeApiServer } from '../fixtures/fake-apiserver.ts';

const event = (name: string): EventSpec => ({
  involved: { namespace: 'default', name, uid: `uid-${name}`, resourceVersion: '1' },
  type: 'Normal',
  reason: 'Sync',
  message: 'Scheduled for sync',
});

it('events queued while leading are dropped once leadership is lost', async () => {
  let leading = true;
  const posts: string[] = [];
  const client = {
    server: 'scripted',
    async request(method: string, _path: string, body?: unknown) {
      if (method === 'POST') {
        posts.push((body as { involvedObject: { name: string } }).involvedObject.name);
        leading = false; // the Lease is lost while the first event is on the wire
      }
      return { ok: true, value: {} };
    },
  } as unknown as KubeClient;
  const recorder = createEventRecorder({
    client,
    host: 'me',
    now: () => 0,
    log: () => {},
    leading: () => leading,
  });
  recorder.emit(event('a'));
  recorder.emit(event('b'));
  recorder.emit(event('c'));
  await recorder.idle();
  assert.deepEqual(posts, ['a']);
});

it('an Event another replica already wrote is counted on from the patch answer, with no GET (RBAC has none)', async () => {
  const api = await startFakeApiServer();
  try {
    const client = createKubeClient(
      loadKubeConfig({ kubeconfig: api.kubeconfig, apiserverHost: null, certificateAuthority: null }, {}),
    );
    const recorder = (host: string) =>
      createEventRecorder({
        client,
        host,
        now: () => Date.parse('2026-12-05T12:00:00Z'),
        log: () => {},
        leading: () => true,
      });
    const a = recorder('replica-a');
    a.emit(event('web'));
    await a.idle();
    const b = recorder('replica-b');
    b.emit(event('web'));
    await b.idle();
    const events = api.list('Event');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.count, 2);
    assert.deepEqual(
      api.requests.filter((r) => r.path.includes('/events')).map((r) => r.method),
      ['POST', 'POST', 'PATCH', 'PATCH'],
    );
  } finally {
    await api.close();
  }
});
