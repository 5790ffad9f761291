// Events are the leader's, like status: those still queued when leadership is lost are not written.
// A scripted API: no timing.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createEventRecorder } from '../../src/controller/event-recorder.ts';
import type { EventSpec } from '../../src/controller/events.ts';
import type { KubeClient } from '../../src/controller/kube-client.ts';

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
