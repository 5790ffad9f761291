// Posts Events at the edge, one at a time. An Event already written (by us, or by another replica
// under the same derived name) has its count raised with a merge patch instead of a new object.
// Events queued while leading are dropped once leadership is lost: only the leader writes.
import { eventBody, eventName, type EventSpec } from './events.ts';
import type { KubeClient } from './kube-client.ts';
import { RESOURCES, resourcePath } from './resources.ts';

export interface EventRecorder {
  emit(event: EventSpec): void;
  /** Resolves when every emitted event has been written (or failed). */
  idle(): Promise<void>;
}

export function createEventRecorder(deps: {
  client: KubeClient;
  host: string;
  now: () => number;
  log: (line: string) => void;
  /** Whether this replica still holds the Lease (checked before each event is written). */
  leading: () => boolean;
}): EventRecorder {
  const counts = new Map<string, number>();
  let chain: Promise<void> = Promise.resolve();

  /** A merge patch of the Event: its lastTimestamp now, and `count` when given. */
  const touch = async (e: EventSpec, count?: number) => {
    const path = resourcePath(RESOURCES.event, e.involved.namespace, eventName(e));
    const now = new Date(deps.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const body = count === undefined ? { lastTimestamp: now } : { count, lastTimestamp: now };
    return deps.client.request('PATCH', path, body, 'application/merge-patch+json');
  };
  const bump = (e: EventSpec, count: number) => touch(e, count);

  const write = async (e: EventSpec) => {
    const name = eventName(e);
    const known = counts.get(name);
    if (known !== undefined) {
      const patched = await bump(e, known + 1);
      if (patched.ok) {
        counts.set(name, known + 1);
        return;
      }
      if (patched.error.status !== 404) {
        deps.log(
          `event ${e.reason} on Ingress ${e.involved.namespace}/${e.involved.name} not written: ${patched.error.message}`,
        );
        return;
      }
    }
    const created = await deps.client.request(
      'POST',
      resourcePath(RESOURCES.event, e.involved.namespace),
      eventBody(e, deps.now(), deps.host),
    );
    if (created.ok) {
      counts.set(name, 1);
      return;
    }
    if (created.error.status === 409) {
      // Another replica (or an earlier run) wrote it: count on from what the API has. The count is read
      // from a patch's answer (the Event as patched), so RBAC needs no `get` on Events, as the chart's.
      const touched = await touch(e);
      const count = touched.ok && typeof touched.value.count === 'number' ? touched.value.count : 1;
      const patched = await bump(e, count + 1);
      if (patched.ok) counts.set(name, count + 1);
      return;
    }
    deps.log(
      `event ${e.reason} on Ingress ${e.involved.namespace}/${e.involved.name} not written: ${created.error.message}`,
    );
  };

  return {
    emit(event) {
      chain = chain.then(() => (deps.leading() ? write(event) : undefined)).catch(() => {});
    },
    idle: () => chain,
  };
}
