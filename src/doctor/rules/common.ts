// Helpers the rules share: subjects, severities that depend on access lists, the LB's description.
import type { LoadBalancerModel, Topology } from '../../config/model.ts';
import { type PassthroughHost, type PassthroughState, passthroughHostFor } from '../passthrough.ts';
import type { Finding, Severity } from '../types.ts';
import type { RuleContext } from './types.ts';

export function lbSubject(lb: LoadBalancerModel): Pick<Finding, 'subject' | 'origin'> {
  return {
    subject: { kind: 'Service', namespace: lb.service.namespace, name: lb.service.name },
    origin: lb.origin,
  };
}

export function configMapSubject(context: RuleContext): Pick<Finding, 'subject'> {
  return { subject: { kind: 'ConfigMap', ...context.configMap } };
}

/** A lost or forgeable client address breaks access control when there is any; otherwise it is a warning. */
export function accessSeverity(context: RuleContext): Severity {
  return context.hasAccessLists ? 'error' : 'warning';
}

export function accessConsequence(context: RuleContext, address: string): string {
  return context.hasAccessLists
    ? `Allow and deny lists compare ${address} instead of the client: listed clients get 403 ("access forbidden by rule, client: ${address}"), and if ${address} itself is listed, everyone passes.`
    : `Access logs and backends (X-Real-IP, X-Forwarded-For) show ${address} instead of the client; no allow or deny list depends on it yet.`;
}

export function hasAccessLists(topology: Topology): boolean {
  const s = topology.gateway.settings;
  if (s.defaultAllow || s.defaultDeny || s.blockCidrs) return true;
  return topology.gateway.virtualHosts.some((v) =>
    v.locations.some((l) => l.allow !== null || l.deny !== null),
  );
}

export function describeLb(lb: LoadBalancerModel): string {
  return `the ${lb.provider} load balancer ${lb.id} (${lb.scheme}, ${lb.targetType} targets)`;
}

/** describeLb at the start of a sentence. */
export function describeLbStart(lb: LoadBalancerModel): string {
  const text = describeLb(lb);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * The passthrough hosts a rule speaks about, in the given states: with --client, only the host asked
 * about; without, every host that asks for ssl-passthrough.
 */
export function passthroughHostsFor(
  context: RuleContext,
  states: readonly PassthroughState[],
): PassthroughHost[] {
  const sim = context.simulation;
  const asked = sim === null ? null : passthroughHostFor(context.chain.passthrough, sim.host);
  return context.chain.passthrough.filter((h) => states.includes(h.state) && (sim === null || h === asked));
}

/** The Ingress a passthrough finding is about: the first that asks for it. */
export function passthroughSubject(host: PassthroughHost): Pick<Finding, 'subject'> {
  const ref = host.ingresses[0];
  return ref === undefined ? {} : { subject: { kind: 'Ingress', namespace: ref.namespace, name: ref.name } };
}
