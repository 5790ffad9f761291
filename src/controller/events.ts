// Kubernetes Events about Ingresses, as ingress-nginx writes them ("Sync" when an Ingress is taken
// in; Warnings naming the annotation for annotation and source-range problems), deduplicated: one
// Event object per (object, type, reason, message), its name derived from that key so every replica
// names it the same, its count raised instead of a new object each time. Pure.
import { issueMessage } from '../config/issue-text.ts';
import { createHash } from 'node:crypto';
import type { ConfigIssue } from '../config/model.ts';
import type { KubeObject } from './resources.ts';

export interface EventSpec {
  /** The Ingress the event is about. */
  involved: { namespace: string; name: string; uid: string; resourceVersion: string };
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export const COMPONENT = 'nginx-ingress-controller';

/** Codes that become Warning events, with their reason (ingress-nginx's words where it has them). */
const WARNING_REASONS: Readonly<Record<string, string>> = {
  INVALID_SOURCE_RANGE: 'AnnotationParsingFailed',
  INVALID_ANNOTATION_VALUE: 'AnnotationParsingFailed',
  UNSUPPORTED_ANNOTATION: 'UnsupportedAnnotation',
  // An ingress-nginx annotation keepip does not honour (a snippet, ModSecurity, …): the Ingress's owner
  // sees it where they look, not only in the controller's log.
  ANNOTATION_REFUSED: 'AnnotationRefused',
  // Over the ConfigMap's annotation limits: the whole Ingress is not served.
  ANNOTATION_TOO_RISKY: 'RiskyAnnotations',
  ANNOTATION_VALUE_BLOCKED: 'AnnotationValueBlocked',
  UNSUPPORTED_BACKEND_PROTOCOL: 'UnsupportedAnnotation',
  INVALID_PATH: 'InvalidPath',
  INVALID_HOST: 'InvalidHost',
};

export function eventKey(e: EventSpec): string {
  return `${e.involved.namespace}/${e.involved.name}/${e.involved.uid}/${e.type}/${e.reason}/${e.message}`;
}

/** Stable across replicas: `<ingress>.<16 hex of the key>`. */
export function eventName(e: EventSpec): string {
  const digest = createHash('sha256').update(eventKey(e)).digest('hex').slice(0, 16);
  return `${e.involved.name.slice(0, 200)}.${digest}`;
}

function involved(ing: KubeObject): EventSpec['involved'] {
  return {
    namespace: ing.metadata?.namespace ?? 'default',
    name: ing.metadata?.name ?? '',
    uid: ing.metadata?.uid ?? '',
    resourceVersion: ing.metadata?.resourceVersion ?? '',
  };
}

/** The events one version of a served Ingress gives: Sync, then one Warning per issue about it. */
export function ingressEvents(
  ing: KubeObject,
  issues: readonly ConfigIssue[],
  syncEvents: boolean,
): EventSpec[] {
  const who = involved(ing);
  const out: EventSpec[] = [];
  if (syncEvents) out.push({ involved: who, type: 'Normal', reason: 'Sync', message: 'Scheduled for sync' });
  for (const issue of issues) {
    const reason = WARNING_REASONS[issue.code];
    if (!reason || issue.origin?.kind !== 'Ingress') continue;
    if (issue.origin.namespace !== who.namespace || issue.origin.name !== who.name) continue;
    out.push({ involved: who, type: 'Warning', reason, message: `${issueMessage(issue)} [${issue.code}]` });
  }
  return out;
}

/** The Event object to create (count 1) for `e` at `nowMs`. */
export function eventBody(e: EventSpec, nowMs: number, host: string): KubeObject {
  const now = new Date(nowMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: eventName(e), namespace: e.involved.namespace },
    involvedObject: {
      kind: 'Ingress',
      apiVersion: 'networking.k8s.io/v1',
      namespace: e.involved.namespace,
      name: e.involved.name,
      uid: e.involved.uid,
      resourceVersion: e.involved.resourceVersion,
    },
    type: e.type,
    reason: e.reason,
    message: e.message,
    source: { component: COMPONENT, host },
    reportingComponent: COMPONENT,
    reportingInstance: host,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

/** What an Ingress's events depend on: its spec and annotations, not its status (which we write). */
export function ingressFingerprint(ing: KubeObject): string {
  return JSON.stringify([ing.spec ?? null, ing.metadata?.annotations ?? {}]);
}

/** Ingresses whose spec or annotations changed since their events were last emitted. */
export function newVersions(
  ingresses: readonly KubeObject[],
  emitted: ReadonlyMap<string, string>,
): KubeObject[] {
  return ingresses.filter((ing) => {
    const key = `${ing.metadata?.namespace ?? ''}/${ing.metadata?.name ?? ''}`;
    return emitted.get(key) !== ingressFingerprint(ing);
  });
}
