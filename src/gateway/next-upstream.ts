// When a request goes on to the next endpoint (nginx's proxy_next_upstream, -tries, -timeout, as
// ingress-nginx sets them: default `error timeout`, 3 tries, no time limit). A buffered body
// (proxy-request-buffering on, buffered-proxy.ts) is sent again; a streamed one that has started to go
// out is never tried again (proxy.ts); a non-idempotent request (POST, LOCK, PATCH) is tried again only when it never reached a backend,
// unless `non_idempotent` is listed (the ConfigMap's retry-non-idempotent adds it).
// Which endpoint comes next, and whether one may still be tried, is EndpointRotation's, for every path
// that goes through an upstream's endpoints (HTTP, gRPC, upgrades, ssl-passthrough).
import type { NextUpstreamModel } from '../config/model.ts';
import type { ProxyFailureCode } from './exchange.ts';
import { type BalancedUpstream, firstMember, type UpstreamMember } from './upstream.ts';

export const DEFAULT_NEXT_UPSTREAM: NextUpstreamModel = Object.freeze({
  conditions: Object.freeze(['error', 'timeout']),
  tries: 3,
  timeoutMs: 0,
});

const NON_IDEMPOTENT = new Set(['POST', 'LOCK', 'PATCH']);

/** The failures that never reached the backend: trying another one is safe for any method. */
function notSent(code: ProxyFailureCode): boolean {
  return code === 'UPSTREAM_CONNECT_REFUSED' || code === 'UPSTREAM_CONNECT_TIMEOUT';
}

function allowsMethod(policy: NextUpstreamModel, method: string, sent: boolean): boolean {
  return !sent || !NON_IDEMPOTENT.has(method) || policy.conditions.includes('non_idempotent');
}

/** Whether this failure (before any response) may go to the next endpoint. */
export function retryOnFailure(policy: NextUpstreamModel, code: ProxyFailureCode, method: string): boolean {
  const c = policy.conditions;
  if (c.includes('off')) return false;
  const wanted =
    code === 'UPSTREAM_CONNECT_TIMEOUT' ||
    code === 'UPSTREAM_READ_TIMEOUT' ||
    code === 'UPSTREAM_SEND_TIMEOUT'
      ? c.includes('timeout')
      : code === 'UPSTREAM_INVALID_HEADER'
        ? c.includes('invalid_header') // nginx's NGX_HTTP_UPSTREAM_FT_INVALID_HEADER, not `error`
        : code === 'UPSTREAM_CONNECT_REFUSED' || code === 'UPSTREAM_CLOSED' || code === 'UPSTREAM_ERROR'
          ? c.includes('error')
          : false;
  return wanted && allowsMethod(policy, method, !notSent(code));
}

/** Whether this response status sends the request to the next endpoint (http_500, http_502…). */
export function retryOnStatus(policy: NextUpstreamModel, status: number, method: string): boolean {
  return (
    !policy.conditions.includes('off') &&
    policy.conditions.includes(`http_${status}`) &&
    allowsMethod(policy, method, true)
  );
}

/** The limits of a rotation: proxy-next-upstream-tries (0: every endpoint) and -timeout (0: none). */
export type RotationLimits = Pick<NextUpstreamModel, 'tries' | 'timeoutMs'>;

/** Every endpoint once, without a time limit: the paths proxy-next-upstream does not govern. */
export const EVERY_ENDPOINT_ONCE: RotationLimits = Object.freeze({ tries: 0, timeoutMs: 0 });

/**
 * The endpoints one request (or connection) goes through: the first (a sticky or hashed choice, else
 * the upstream's round robin), then each next one in round-robin order, each at most once, while tries
 * and time remain (proxy-next-upstream-tries and -timeout, the time counted from the first try).
 * Whether a failure goes on at all (conditions, method, a body already sent) is the caller's.
 */
export class EndpointRotation {
  readonly #members: readonly UpstreamMember[];
  readonly #limits: RotationLimits;
  #next: number;
  #tried = 0;
  #firstAt = 0;

  constructor(upstream: BalancedUpstream, limits: RotationLimits, first?: number) {
    this.#members = upstream.members;
    this.#limits = limits;
    this.#next = first ?? firstMember(upstream);
  }

  /** The member to try now and its index; moves on to the next one. */
  take(): { index: number; member: UpstreamMember } {
    const index = this.#next;
    const member = this.#members[index] as UpstreamMember;
    this.#next = (index + 1) % this.#members.length;
    if (this.#tried === 0) this.#firstAt = performance.now();
    this.#tried += 1;
    return { index, member };
  }

  /** Whether another endpoint may be tried: one not tried yet, within the tries and the time limit. */
  mayTakeNext(): boolean {
    const { tries, timeoutMs } = this.#limits;
    // 0 tries: every endpoint.
    const limit = tries === 0 ? this.#members.length : Math.min(tries, this.#members.length);
    return this.#tried < limit && (timeoutMs === 0 || performance.now() - this.#firstAt < timeoutMs);
  }
}
