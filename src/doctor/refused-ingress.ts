// Why a host answers 404 when an Ingress does name it: the ConfigMap's annotation limits
// (annotations-risk-level, annotation-value-word-blocklist) left that Ingress out whole. Pure.
import type { GatewayModel } from '../config/model.ts';
import { wildcardSuffix } from '../gateway/host.ts';

/** Whether an Ingress rule's host (as written) covers the request's host. */
function ruleCovers(ruleHost: string, host: string): boolean {
  if (ruleHost === '' || ruleHost === host) return true;
  return ruleHost.startsWith('*.') && wildcardSuffix(host) === ruleHost.slice(2);
}

/** `; Ingress ns/name names <host> but is not served (CODE: annotation)` for each such Ingress, or ''. */
export function refusedIngressNote(gateway: GatewayModel, host: string): string {
  const refused = (gateway.refusedIngresses ?? []).filter((r) => r.hosts.some((h) => ruleCovers(h, host)));
  return refused
    .map(
      (r) =>
        `; Ingress ${r.ingress.namespace}/${r.ingress.name} names ${host} but is not served (${r.code}: ${r.annotation}, see the manifest issues)`,
    )
    .join('');
}
