// The doctor's vocabulary: the client's network path, the hops a request crosses, the outcome of one
// simulated request, and the findings with their fixes. Plain data, JSON-serialisable.
import type { ClientPath } from '../config/client-path.ts';
import type { ObjectRef, Origin } from '../config/model.ts';

export type { ClientPath } from '../config/client-path.ts';

export type HopName =
  | 'client'
  | 'network'
  | 'load-balancer'
  | 'kube-proxy'
  | 'gateway'
  | 'client-ip'
  | 'route'
  | 'policy'
  | 'backend';

export interface Hop {
  name: HopName;
  /** The source address this hop sees (the TCP peer; for client-ip/policy/backend, the resolved client). */
  sees: string | null;
  /** One line a person reads: what this hop does to the address and why. */
  detail: string;
}

export type Outcome =
  | 'allowed'
  | 'redirected'
  | 'denied-403'
  | 'rejected-400'
  | 'connection-closed'
  | 'fail-closed-503'
  | 'unreachable'
  | 'not-found-404';

export interface Simulation {
  client: string;
  host: string;
  path: string;
  scheme: 'http' | 'https';
  via: ClientPath;
  hops: Hop[];
  outcome: Outcome;
  /** The HTTP status the client gets; null when it gets none (connection closed, unreachable). */
  status: number | null;
  /** The rule that decided, e.g. "allowlist-miss 127.0.20.10/32", "G2", "K3", "A4". */
  decidedBy: string;
  /**
   * The address the gateway logs as $remote_addr (the resolved client), or null when the request never
   * reached HTTP processing. With `status`, this is what a run of `keepip up` is compared against.
   */
  gatewayLogsAddress: string | null;
  /** Set when the connection is TLS to an ssl-passthrough host and keepip relays it unread (G10). */
  passthrough?: true;
}

export type Severity = 'error' | 'warning' | 'info';

/** One object change: a JSON merge patch, the same as YAML, and the equivalent kubectl command. */
export interface FixPatch {
  target: { kind: 'Service' | 'ConfigMap' | 'Ingress'; namespace: string; name: string };
  /** RFC 7386 merge patch (null deletes a key). */
  patch: Record<string, unknown>;
  yaml: string;
  kubectl: string;
}

export interface Fix {
  summary: string;
  patches: FixPatch[];
}

export interface Finding {
  id: string;
  severity: Severity;
  /** The hops involved, in chain order. */
  hops: HopName[];
  /** One paragraph: what happens, why (rule numbers from the rule book), and what the symptom looks like. */
  message: string;
  fix: Fix | null;
  /** The object the finding is about (an Ingress, the LB Service, the ConfigMap). */
  subject?: { kind: string; namespace: string; name: string };
  origin?: Origin;
  /** In the audit, a finding of another of the controller's LoadBalancer Services than the report's. */
  loadBalancer?: string;
}

/** Per Ingress location with an allow or deny list: can a listed client be recognised at all? */
export interface AccessAudit {
  ingress: ObjectRef;
  host: string;
  path: string;
  allow: readonly string[] | null;
  deny: readonly string[] | null;
  valid: boolean;
  /** True when a listed client reaches the policy with its own address. */
  recognised: boolean;
  /** A client taken from the list, and what happens to it. */
  listedClient: string | null;
  listedOutcome: Outcome | null;
  /** A client on no list, and what happens to it. */
  otherClient: string | null;
  otherOutcome: Outcome | null;
  /** The address the policy sees instead of the client's, when it is the same for everyone. */
  seenInstead: string | null;
  note: string;
}

/** On a gRPC route (backend-protocol GRPC / GRPCS): what a gRPC client reads of the answer. */
export interface GrpcAnswer {
  backendProtocol: 'GRPC' | 'GRPCS';
  /** The gRPC status a gRPC client gets; null when the backend's own status reaches it (allowed). */
  code: number | null;
  name: string | null;
  text: string;
}

/** What the client sees beyond the HTTP status (client-answer.ts). */
export interface ClientAnswer {
  /** ALPN the listener the request arrives at offers, preferred first; empty for ssl-passthrough (the backend answers the handshake). */
  protocols: readonly string[];
  grpc: GrpcAnswer | null;
}

export interface DoctorReport {
  mode: 'client' | 'audit';
  /** client mode: the outcome; audit mode: "ok" or "problems". */
  verdict: Outcome | 'ok' | 'problems';
  summary: string;
  status: number | null;
  decidedBy: string | null;
  via: ClientPath;
  loadBalancer: string | null;
  hops: Hop[];
  simulation: Simulation | null;
  audit: AccessAudit[];
  findings: Finding[];
  /**
   * Findings (errors, warnings) that show once the error findings' fixes are applied (a fault the
   * first ones hid), with their own fixes; set by follow-fix.ts when the manifests are at hand.
   */
  afterFix?: Finding[];
  /** Configuration problems the manifest reader reported (errors and warnings). */
  configIssues: { severity: Severity; code: string; message: string }[];
  /** client mode: the protocols offered and, for a gRPC route, the gRPC status the client reads (client-answer.ts). */
  clientAnswer?: ClientAnswer | null;
  exitCode: 0 | 1;
}

/** What one `doctor --probe` request saw (src/doctor/probe.ts sends it). */
export interface ProbeResult {
  /** The local address the request left from. */
  from: string | null;
  status: number | null;
  /** Connection-level failure (reset, closed without a response, timeout), as a code. */
  error: string | null;
  /** The client address the backend received: X-Real-IP, else X-Forwarded-For's last entry, else its TCP peer. */
  backendSaw: string | null;
  source: 'x-real-ip' | 'x-forwarded-for' | 'remote-address' | null;
  /** True when the backend saw the source address; null when the request did not reach the backend. */
  matches: boolean | null;
}
