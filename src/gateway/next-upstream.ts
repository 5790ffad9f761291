// When a request goes on to the next endpoint (nginx's proxy_next_upstream, -tries, -timeout, as
// ingress-nginx sets them: default `error timeout`, 3 tries, no time limit). A buffered body
// (proxy-request-buffering on, buffered-proxy.ts) is sent again; a streamed one that has started to go
// out is never tried again (proxy.ts); a non-idempotent request (POST, LOCK, PATCH) is tried again only when it never reached a backend,
// unless `non_idempotent` is listed (the ConfigMap's retry-non-idempotent adds it).
import type { NextUpstreamModel } from '../config/model.ts';
import type { ProxyFailureCode } from './exchange.ts';

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
      : code === 'UPSTREAM_ERROR'
        ? c.includes('invalid_header') || c.includes('error')
        : code === 'UPSTREAM_CONNECT_REFUSED' || code === 'UPSTREAM_CLOSED'
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

/** How many endpoints may be tried in all (0 tries: every one). */
export function maxTries(policy: NextUpstreamModel, members: number): number {
  return policy.tries === 0 ? members : Math.min(policy.tries, members);
}
