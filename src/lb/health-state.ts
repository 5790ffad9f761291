// The health of one target as a pure state machine over check results, with NLB's thresholds:
// `unhealthyThreshold` consecutive failures take a target out of rotation, `healthyThreshold`
// consecutive successes put it back.
//
// A registered target starts healthy (in rotation) and the first check runs at once. AWS starts new
// targets as "initial" and sends them nothing until they pass; keepip does not, because `keepip up`
// starts the whole chain at the same moment and a target that is still booting would otherwise stay
// out for healthyThreshold x interval. A target that is really down leaves after its first
// unhealthyThreshold failures, and fail-open (see target-group.ts) covers the all-down case anyway.

export type HealthStatus = 'healthy' | 'unhealthy';

export interface HealthState {
  status: HealthStatus;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
  /** Why the last failed check failed, e.g. "ECONNREFUSED" or "HTTP 503". */
  lastError: string | null;
  checks: number;
}

export type CheckResult = { ok: true } | { ok: false; reason: string };

export interface Thresholds {
  healthyThreshold: number;
  unhealthyThreshold: number;
}

export function initialHealth(): HealthState {
  return { status: 'healthy', consecutiveSuccesses: 0, consecutiveFailures: 0, lastError: null, checks: 0 };
}

/** The state after one more check result; `changed` says whether the target entered or left rotation. */
export function recordCheck(
  state: HealthState,
  result: CheckResult,
  thresholds: Thresholds,
): { state: HealthState; changed: boolean } {
  const checks = state.checks + 1;
  if (result.ok) {
    const successes = state.consecutiveSuccesses + 1;
    const status =
      state.status === 'unhealthy' && successes >= thresholds.healthyThreshold ? 'healthy' : state.status;
    return {
      state: {
        status,
        consecutiveSuccesses: successes,
        consecutiveFailures: 0,
        lastError: state.lastError,
        checks,
      },
      changed: status !== state.status,
    };
  }
  const failures = state.consecutiveFailures + 1;
  const status =
    state.status === 'healthy' && failures >= thresholds.unhealthyThreshold ? 'unhealthy' : state.status;
  return {
    state: {
      status,
      consecutiveSuccesses: 0,
      consecutiveFailures: failures,
      lastError: result.reason,
      checks,
    },
    changed: status !== state.status,
  };
}
