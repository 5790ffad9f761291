// The validating admission webhook's verdict: an AdmissionReview v1 for an Ingress → allowed, or
// denied with the lines `keepip doctor` prints for the same problems (`error CODE: message`), so
// `kubectl apply` says at once what the gateway would otherwise fail closed on (503) or drop. The
// Ingress is translated together with everything the controller serves now, as the gateway would
// see it after the apply. Pure.
import type { ConfigIssue } from '../config/model.ts';
import { type ClusterObjects, isOurIngress, type SnapshotOptions, buildClusterTopology } from './snapshot.ts';
import type { KubeObject } from './resources.ts';

/** Annotations a refused value of which is refused at admission (their fallback would change routing). */
const REFUSED_INVALID_ANNOTATIONS = ['rewrite-target', 'app-root'];
/** keepip never runs snippets: an Ingress asking for one is refused, as ingress-nginx does with allow-snippet-annotations off. */
const SNIPPET = /-snippet"\]$/;

export interface AdmissionVerdict {
  allowed: boolean;
  /** The doctor's lines for each refused problem. */
  message: string;
  /** Warnings kubectl prints for problems that do not block the apply. */
  warnings: string[];
}

/**
 * Every error about the Ingress is something the gateway fails closed on (503) or drops (a bad path
 * or host, an invalid list, a refused backend protocol or access configuration); a refused rewrite or
 * app-root would route differently than asked; a snippet is never run.
 */
function refuses(issue: ConfigIssue): boolean {
  if (issue.severity === 'error') return true;
  const field = issue.field ?? '';
  if (SNIPPET.test(field)) return true;
  return (
    issue.code === 'INVALID_ANNOTATION_VALUE' &&
    REFUSED_INVALID_ANNOTATIONS.some((a) => field.includes(`nginx.ingress.kubernetes.io/${a}"`))
  );
}

/** The doctor prints configuration issues as `severity CODE: message`. */
export function doctorLine(issue: ConfigIssue): string {
  return `${issue.severity} ${issue.code}: ${issue.message}`;
}

export function verdictFor(
  candidate: KubeObject,
  current: ClusterObjects,
  options: SnapshotOptions,
): AdmissionVerdict {
  if (!isOurIngress(candidate, current.ingressClasses, options))
    return { allowed: true, message: '', warnings: [] };
  const ns = candidate.metadata?.namespace ?? 'default';
  const name = candidate.metadata?.name ?? '';
  const others = current.ingresses.filter(
    (i) => !(i.metadata?.namespace === ns && i.metadata?.name === name),
  );
  const topology = buildClusterTopology(
    {
      ...current,
      ingresses: [...others, { ...candidate, metadata: { ...candidate.metadata, namespace: ns } }],
      namespaces: null,
    },
    options,
  );
  const mine = topology.issues.filter(
    (i) => i.origin?.kind === 'Ingress' && i.origin.namespace === ns && i.origin.name === name,
  );
  const refused = mine.filter(refuses);
  const warnings = mine.filter((i) => !refused.includes(i) && i.severity !== 'info').map(doctorLine);
  if (refused.length === 0) return { allowed: true, message: '', warnings };
  return { allowed: false, message: refused.map(doctorLine).join('\n'), warnings };
}

export type ReviewOutcome =
  | { ok: true; response: KubeObject }
  | { ok: false; code: 'ADMISSION_BAD_REVIEW'; message: string };

/** AdmissionReview v1 in → AdmissionReview v1 out. Non-Ingress kinds and DELETE are allowed. */
export function reviewAdmission(
  body: unknown,
  current: ClusterObjects,
  options: SnapshotOptions,
): ReviewOutcome {
  const review = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const request = (review.request ?? null) as Record<string, unknown> | null;
  if (review.kind !== 'AdmissionReview' || request === null || typeof request.uid !== 'string') {
    return { ok: false, code: 'ADMISSION_BAD_REVIEW', message: 'not an AdmissionReview with request.uid' };
  }
  const kind = (request.kind ?? {}) as Record<string, unknown>;
  const object = request.object as KubeObject | undefined;
  let verdict: AdmissionVerdict = { allowed: true, message: '', warnings: [] };
  if (
    kind.kind === 'Ingress' &&
    request.operation !== 'DELETE' &&
    typeof object === 'object' &&
    object !== null
  ) {
    verdict = verdictFor(
      {
        ...object,
        metadata: {
          ...object.metadata,
          namespace: object.metadata?.namespace ?? (request.namespace as string),
        },
      },
      current,
      options,
    );
  }
  return {
    ok: true,
    response: {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: request.uid,
        allowed: verdict.allowed,
        ...(verdict.allowed ? {} : { status: { code: 400, reason: 'BadRequest', message: verdict.message } }),
        ...(verdict.warnings.length > 0 ? { warnings: verdict.warnings } : {}),
      },
    },
  };
}
