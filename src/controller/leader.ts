// Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics, as decisions only:
// given what the Lease says now, what this candidate does. A record seen to change restarts the
// expiry clock on *our* clock (observedTime), never trusting the other side's timestamps; a held
// lease is taken over only after leaseDuration without change; every write carries the
// resourceVersion read, so two candidates cannot both win (409 Conflict for the slower one).
// A leader that cannot renew within renewDeadline steps down. Pure.

export interface LeaseSpec {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string | null;
  renewTime: string | null;
  leaseTransitions: number;
}

export interface LeaseTimings {
  durationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface ElectionState {
  /** The last record seen and when (our clock) it was first seen in that form. */
  observed: LeaseSpec | null;
  observedAtMs: number;
  /** When we last renewed successfully, while leading. */
  leading: boolean;
  lastRenewMs: number;
}

export const INITIAL_ELECTION: ElectionState = {
  observed: null,
  observedAtMs: 0,
  leading: false,
  lastRenewMs: 0,
};

/** The Lease as read: absent (404), or its spec and resourceVersion. */
export type LeaseRead = { exists: false } | { exists: true; spec: LeaseSpec; resourceVersion: string };

export type ElectionStep =
  | { action: 'create'; spec: LeaseSpec; state: ElectionState }
  | { action: 'update'; spec: LeaseSpec; resourceVersion: string; state: ElectionState }
  | { action: 'wait'; state: ElectionState; holder: string };

/** The Lease's MicroTime: RFC 3339 with microseconds, as the API server writes it. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function sameRecord(a: LeaseSpec | null, b: LeaseSpec): boolean {
  return (
    a !== null &&
    a.holderIdentity === b.holderIdentity &&
    a.leaseDurationSeconds === b.leaseDurationSeconds &&
    a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime &&
    a.leaseTransitions === b.leaseTransitions
  );
}

/** client-go's tryAcquireOrRenew, minus the write. */
export function decideElection(
  state: ElectionState,
  read: LeaseRead,
  identity: string,
  timings: LeaseTimings,
  nowMs: number,
  /** When the read came back: a changed record is observed then (client-go's setObservedRecord), so
   * a slow answer never shortens another holder's claim. Default: nowMs. */
  readAtMs: number = nowMs,
): ElectionStep {
  const seconds = Math.max(1, Math.round(timings.durationMs / 1000));
  const now = microTime(nowMs);
  if (!read.exists) {
    const spec: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: seconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: 0,
    };
    return { action: 'create', spec, state };
  }
  const current = read.spec;
  let next = state;
  if (!sameRecord(state.observed, current)) next = { ...state, observed: current, observedAtMs: readAtMs };
  const held = current.holderIdentity !== '' && current.holderIdentity !== identity;
  // The holder's own leaseDurationSeconds bounds its claim, measured from when we saw it change. A
  // missing, zero or negative duration is no claim at all (client-go's isLeaseValid: expired).
  const durationMs = current.leaseDurationSeconds * 1000;
  const heldByOther = held && next.observedAtMs + durationMs > nowMs;
  if (heldByOther)
    return { action: 'wait', state: { ...next, leading: false }, holder: current.holderIdentity };
  const ours = current.holderIdentity === identity;
  const spec: LeaseSpec = {
    holderIdentity: identity,
    leaseDurationSeconds: seconds,
    acquireTime: ours ? (current.acquireTime ?? now) : now,
    renewTime: now,
    leaseTransitions: ours ? current.leaseTransitions : current.leaseTransitions + 1,
  };
  return { action: 'update', spec, resourceVersion: read.resourceVersion, state: next };
}

/** After a successful write of `spec`: we lead, and the record is what we wrote. */
export function wroteLease(spec: LeaseSpec, nowMs: number): ElectionState {
  return { observed: spec, observedAtMs: nowMs, leading: true, lastRenewMs: nowMs };
}

/** After a failed attempt (conflict, outage): a leader keeps leading until the renew deadline passes. */
export function failedAttempt(state: ElectionState, timings: LeaseTimings, nowMs: number): ElectionState {
  if (state.leading && nowMs - state.lastRenewMs >= timings.renewDeadlineMs)
    return { ...state, leading: false };
  return state;
}

/** What a leader writes on shutdown (client-go ReleaseOnCancel): no holder, a 1 s lease. */
export function releasedLease(current: LeaseSpec, nowMs: number): LeaseSpec {
  const now = microTime(nowMs);
  return { ...current, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now };
}

/** wait.Jitter(retryPeriod, 1.2), as client-go spaces attempts. */
export function retryDelay(timings: LeaseTimings, random: () => number): number {
  return Math.round(timings.retryPeriodMs * (1 + 1.2 * random()));
}

/** Lease spec from untrusted JSON; null fields become the zero values client-go uses. */
export function readLeaseSpec(raw: unknown): LeaseSpec {
  const spec = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    holderIdentity: text(spec.holderIdentity) ?? '',
    leaseDurationSeconds: num(spec.leaseDurationSeconds),
    acquireTime: text(spec.acquireTime),
    renewTime: text(spec.renewTime),
    leaseTransitions: num(spec.leaseTransitions),
  };
}
