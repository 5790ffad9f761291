// The codes src/controller/ reports: talking to the Kubernetes API server (ApiError, src/controller/
// reflector.ts), reviewing admissions (ReviewOutcome, RegexRefusal, CatchAllRefusal, OverlapRefusal,
// MalformedRefusal, PrefixRefusal and NotSyncedRefusal, src/controller/admission.ts; WebhookRefusal,
// src/controller/servers.ts), building the served configuration (SnapshotFailure,
// src/controller/serving.ts) and reading the TCP/UDP services ConfigMaps
// (TcpServiceProblem, src/controller/tcp-services.ts). src/errors.ts merges this table into the
// registry behind docs/errors.md; test/errors.test.ts holds those unions equal to it.
import type { CodeTable } from '../error-table.ts';

const RETRIED =
  'lists and watches retry with backoff and the last objects read stay served; a failed status or event write is logged';

export const CONTROLLER_CODES = {
  KUBE_API_UNREACHABLE: {
    kind: 'error',
    summary: `a request to the Kubernetes API server got no answer (refused, DNS, TLS, a dropped connection); ${RETRIED}`,
    fix: 'check the API server address (--kubeconfig, $KUBECONFIG, --apiserver-host or the in-cluster service account) and the network path to it',
  },
  KUBE_API_STATUS: {
    kind: 'error',
    summary: `the Kubernetes API server answered with an error status (the message gives it); ${RETRIED}`,
    fix: "401/403: the service account's token or RBAC (list and watch what the controller reads, Ingress status, events); 404: a resource the cluster does not serve",
  },
  KUBE_API_BAD_RESPONSE: {
    kind: 'error',
    summary: `the Kubernetes API server answered with something other than the expected JSON (not JSON, a list without items, watches that close without events); ${RETRIED}`,
    fix: 'check what sits between the controller and the API server (a proxy answering in its place)',
  },
  KUBE_LIST_CONTINUE_LOOP: {
    kind: 'error',
    summary: `a paged list did not end: the Kubernetes API server (or a proxy in front of it) handed back a continue token it had already given in the same list, or went on past 10,000 pages or 5,000,000 objects (more than any cluster stores of one resource); the list is given up rather than grown for ever; ${RETRIED}`,
    fix: 'check what sits between the controller and the API server (a proxy or cache answering lists with a stale continue token), then the API server itself',
  },
  CONTROLLER_SNAPSHOT_FAILED: {
    kind: 'error',
    summary:
      "building the configuration from the cluster's objects failed (a bug, or an object with a type no API server stores); the running configuration stays served, and the next change is tried afresh",
    fix: 'report the logged message; find the object changed last (kubectl get events) and correct or remove it',
  },
  ADMISSION_BAD_REVIEW: {
    kind: 'error',
    summary:
      'the admission webhook was sent a body that is not an admission.k8s.io/v1 AdmissionReview with request.uid (answered 400, as ingress-nginx); nothing is reviewed',
    fix: 'register the webhook with admissionReviewVersions ["v1"], and let only the API server call it',
  },
  ADMISSION_REVIEW_FAILED: {
    kind: 'error',
    summary:
      "the admission webhook failed while reviewing a body (a bug, or an object no API server would send); it is answered 500 and the controller goes on serving; with the chart's failurePolicy Fail the apply is refused",
    fix: 'let only the API server call the webhook; report the logged message if the API server sent it',
  },
  ADMISSION_MALFORMED_INGRESS: {
    kind: 'error',
    summary:
      'the admission webhook was sent an Ingress whose fields have the wrong types (spec.rules not a list, a host that is not a string, an annotation value that is not a string…); the API server never sends one, so it is refused without being translated',
    fix: 'let only the API server call the webhook',
  },
  ADMISSION_BODY_TOO_LARGE: {
    kind: 'error',
    summary:
      "the admission webhook was sent a body over 9 MiB (ingress-nginx's limit); it is answered 413 and not read, nothing is reviewed",
    fix: 'let only the API server call the webhook; its requests stay far below the limit',
  },
  ADMISSION_REGEX_BACKTRACKS: {
    kind: 'error',
    summary:
      "the admission webhook refused an Ingress whose `~` server-alias, canary-by-header-pattern or auth-tls-match-cn repeats a group that itself repeats without bound (`(a+)+`, `(.*)*`), or has a backreference, a lookaround or a counted repeat of more than 16 and repeats a group without bound (`(a|a)*\\1`) or by a count with a choice inside (`(a|aa){40}`): one request could keep the regex engine busy for minutes, which has no match limit (nginx's PCRE has one); the gateway never matches such a regex either (a use-regex path is refused as ROUTE_REGEX_BACKTRACKS)",
    fix: 'match the same with a single repeat (a character class, e.g. `[a-z0-9/]*`, instead of a repeated group of repeats)',
  },
  ADMISSION_CATCH_ALL_DISABLED: {
    kind: 'error',
    summary:
      'the admission webhook refused an Ingress with a spec.defaultBackend while the controller runs with --disable-catch-all, as ingress-nginx does; without the webhook such an Ingress is ignored (not served, no status)',
    fix: 'remove spec.defaultBackend from the Ingress, or run the controller without --disable-catch-all',
  },
  ADMISSION_ANNOTATION_PREFIX: {
    kind: 'error',
    summary:
      'the admission webhook refused an Ingress with annotations under nginx.ingress.kubernetes.io/ while the controller reads another --annotations-prefix, as ingress-nginx does: they would be ignored (an allowlist among them too)',
    fix: 'write the annotations under the prefix the controller reads (the message names it), or run the controller with the default prefix',
  },
  ADMISSION_PATH_OVERLAP: {
    kind: 'error',
    summary:
      "the admission webhook refused an Ingress with a host and path whose nginx location another served Ingress already defines (a Prefix /admin is /admin/ and /admin; the pathType is not compared), as ingress-nginx's checkOverlap does: the other keeps the path, so this one's path would not be served (a canary is allowed: it adds no path of its own)",
    fix: 'serve the path from one Ingress, or make the second one a canary (`canary: "true"` and its rule)',
  },
  ADMISSION_NOT_SYNCED: {
    kind: 'error',
    summary:
      'the admission webhook was asked to review an Ingress before the controller had listed the cluster once: an overlap with another Ingress could not be seen, so it is refused (status 503) rather than admitted unchecked; ingress-nginx does not answer at all until then',
    fix: 'apply it again once the controller is ready (its /healthz answers 200), normally a few seconds after start',
  },
  TCP_SERVICE_INVALID: {
    kind: 'error',
    summary:
      'an entry of the TCP services ConfigMap is not "port": "namespace/service:port[:PROXY][:PROXY]", takes one of the controller\'s own ports, or names a Service port that does not exist; that entry is not served',
    fix: 'correct the entry the message names (data["port"])',
  },
  UDP_SERVICE_INVALID: {
    kind: 'error',
    summary:
      'an entry of the UDP services ConfigMap is not "port": "namespace/service:port", takes one of the controller\'s own ports, or names a Service UDP port that does not exist; that entry is not served',
    fix: 'correct the entry the message names (data["port"])',
  },
  UDP_SERVICE_PROXY_IGNORED: {
    kind: 'error',
    summary:
      'an entry of the UDP services ConfigMap has PROXY fields: PROXY protocol is for TCP, so the entry is served without it, as ingress-nginx serves it',
    fix: 'remove the :PROXY fields from the UDP entry',
  },
} as const satisfies CodeTable;

export type ControllerCode = keyof typeof CONTROLLER_CODES;
