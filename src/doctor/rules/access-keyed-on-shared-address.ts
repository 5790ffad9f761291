// ACCESS_KEYED_ON_SHARED_ADDRESS: rate and connection limits (limit-rps, limit-rpm, limit-connections),
// their exemptions (limit-whitelist), `satisfy any` with an allowlist and the auth service's X-Real-IP
// all key on the address the gateway resolves. When that is the load balancer's or a node's (G1, K1),
// every client shares one bucket: one busy client gets everyone 429/503, or a listed load balancer
// address exempts or admits everyone. The seed's problem again, for limits and auth.
import type { LocationModel, Topology } from '../../config/model.ts';
import { proxyProtocolPlan } from '../plans.ts';
import { concreteHost, simulateOnChain } from '../simulate.ts';
import type { Finding } from '../types.ts';
import type { Rule, RuleContext } from './types.ts';

/** A documentation address (RFC 5737) standing for "any client" when the doctor runs without --client. */
const PROBE_CLIENT = '203.0.113.7';

/**
 * What on this location keys on the client address, by annotation; empty when nothing does. The
 * limits do unless limit-conn-zone-variable keys them on something without $remote_addr.
 */
export function addressKeyedAnnotations(location: LocationModel, limitKey?: string): string[] {
  const access = location.access;
  if (access === undefined) return [];
  const out: string[] = [];
  const rl = access.rateLimit;
  const limitsByAddress = limitKey === undefined || /\$\{?(binary_)?remote_addr\b/.test(limitKey);
  if (rl !== null && limitsByAddress) {
    if (rl.rps > 0) out.push('limit-rps');
    if (rl.rpm > 0) out.push('limit-rpm');
    if (rl.connections > 0) out.push('limit-connections');
  }
  if (rl !== null && rl.exempt !== null) out.push('limit-whitelist');
  if (access.satisfy === 'any' && location.allow !== null) out.push('satisfy any (with the allowlist)');
  if (access.externalAuth !== null)
    out.push(access.externalAuth.global ? 'global-auth-url (X-Real-IP)' : 'auth-url (X-Real-IP)');
  return out;
}

function findingFor(
  topology: Topology,
  context: RuleContext,
  host: string,
  location: LocationModel,
  keyed: string[],
): Finding | null {
  const sim =
    context.simulation ??
    simulateOnChain(context.chain, { client: PROBE_CLIENT, host: concreteHost(host), path: location.path });
  const seen = sim.hops.find((h) => h.name === 'client-ip')?.sees ?? null;
  if (seen === null || seen === sim.client) return null;
  const lb = context.chain.lb;
  const whose =
    lb !== null && seen === lb.sourceAddress
      ? "the load balancer's"
      : topology.nodes.some((n) => n.address === seen)
        ? "a node's (kube-proxy SNAT, K1)"
        : "not the client's";
  const ingress = `${location.ingress.namespace}/${location.ingress.name}`;
  const limited = keyed.some((k) => k.startsWith('limit-r') || k === 'limit-connections');
  return {
    id: 'ACCESS_KEYED_ON_SHARED_ADDRESS',
    severity: 'error',
    hops: ['gateway', 'client-ip', 'policy'],
    message:
      `${limited ? '429/503: ' : ''}Ingress ${ingress} (${host || '*'}${location.path}) keys ${keyed.join(', ')} by ${seen}, and that address is ${whose}: ` +
      `every client shares one bucket (G1). ${limited ? 'One busy client makes the limit answer everyone (limit-req-status-code, limit-conn-status-code). ' : ''}` +
      `An exemption or allowlist that lists ${seen} admits everyone; the auth service sees X-Real-IP ${seen} for every user. The client address is lost before the gateway, as in the seed's 403.`,
    fix: proxyProtocolPlan(context.chain, { lbAnnotations: context.lbAnnotations }),
    subject: { kind: 'Ingress', ...location.ingress },
    origin: location.ingressOrigin,
  };
}

export const rule: Rule = {
  id: 'ACCESS_KEYED_ON_SHARED_ADDRESS',
  severity: 'error',
  check(topology, context) {
    const findings: Finding[] = [];
    const seen = new Set<string>();
    for (const vhost of topology.gateway.virtualHosts) {
      for (const location of vhost.locations) {
        const keyed = addressKeyedAnnotations(location, topology.gateway.settings.limitKey);
        const key = `${location.ingress.namespace}/${location.ingress.name}`;
        if (keyed.length === 0 || seen.has(key)) continue;
        seen.add(key);
        const finding = findingFor(topology, context, vhost.host, location, keyed);
        if (finding !== null) findings.push(finding);
      }
    }
    return findings;
  },
};
