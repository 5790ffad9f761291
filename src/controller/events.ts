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
  // An IPv4-mapped allowlist entry: `::ffff:0:0/96` admits every IPv4 client (keepip's own reason).
  SOURCE_RANGE_MAPPED_ENTRY: 'MappedSourceRange',
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

/** The issues about each Ingress, by namespace/name: one pass, so a sync over every Ingress stays linear. */
export function issuesByIngress(issues: readonly ConfigIssue[]): Map<string, ConfigIssue[]> {
  const out = new Map<string, ConfigIssue[]>();
  for (const issue of issues) {
    if (issue.origin?.kind !== 'Ingress') continue;
    const key = `${issue.origin.namespace ?? ''}/${issue.origin.name ?? ''}`;
    const list = out.get(key);
    if (list === undefined) out.set(key, [issue]);
    else list.push(issue);
  }
  return out;
}

/** Per Ingress (namespace/name): the version whose events went out, and the warnings they said. */
export type EmittedEvents = Map<string, { version: string; warnings: string }>;

/**
 * The events to emit for `ing` now, and the state to remember: all of them (Sync and warnings) for a
 * new version of the Ingress; for the same version, its warnings when they changed (a ConfigMap
 * change, such as a lower annotations-risk-level, can refuse an Ingress nobody edited); else none.
 */
export function eventsToEmit(
  ing: KubeObject,
  issues: ReadonlyMap<string, readonly ConfigIssue[]>,
  syncEvents: boolean,
  emitted: EmittedEvents,
): EventSpec[] {
  const who = involved(ing);
  const key = `${who.namespace}/${who.name}`;
  const version = ingressFingerprint(ing);
  const events = ingressEvents(ing, issues.get(key) ?? [], syncEvents);
  const warningEvents = events.filter((e) => e.type === 'Warning');
  const warnings = JSON.stringify(warningEvents.map((e) => [e.reason, e.message]));
  const last = emitted.get(key);
  if (last !== undefined && last.version === version && last.warnings === warnings) return [];
  emitted.set(key, { version, warnings });
  return last !== undefined && last.version === version ? warningEvents : events;
}
