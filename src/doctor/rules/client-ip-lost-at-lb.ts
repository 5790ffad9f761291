// CLIENT_IP_LOST_AT_LB: the LB connects from its own address (A3, A4) and sends no PROXY header, so
// the gateway cannot know the client (G1: the seed's 403).
import { gatewayPeers, lbPreservation, passesLoadBalancer } from '../chain.ts';
import { proxyProtocolPlan } from '../plans.ts';
import { accessConsequence, accessSeverity, describeLbStart, lbSubject } from './common.ts';
import type { Rule } from './types.ts';

export const rule: Rule = {
  id: 'CLIENT_IP_LOST_AT_LB',
  severity: 'error',
  check(topology, context) {
    const { chain } = context;
    const lb = chain.lb;
    if (lb === null || !passesLoadBalancer(chain) || lb.proxyProtocol !== null) return [];
    if (topology.gateway.settings.useProxyProtocol) return []; // PROXY_PROTOCOL_EXPECTED_NOT_SENT explains it
    const preservation = lbPreservation(chain, context.simulation?.client ?? null);
    if (preservation.preserved) return [];
    const peers = gatewayPeers(chain, context.simulation?.client ?? null);
    const seen = peers.kind === 'fixed' ? peers.addresses.join(' or ') : lb.sourceAddress;
    const kubeProxy =
      chain.kubeProxy?.policy === 'Cluster' ? ', and kube-proxy then SNATs to a node address (K1)' : '';
    const plan = proxyProtocolPlan(chain, { lbAnnotations: context.lbAnnotations });
    return [
      {
        id: 'CLIENT_IP_LOST_AT_LB',
        severity: accessSeverity(context),
        hops: ['load-balancer', 'gateway'],
        message:
          `${describeLbStart(lb)} connects to its targets from its own address ${lb.sourceAddress}: ${preservation.why} (${preservation.rule})${kubeProxy}. ` +
          `It sends no PROXY header, so the gateway sees ${seen} for every client (G1). ${accessConsequence(context, seen)} ` +
          'PROXY protocol carries the client address past the LB whatever the network path.',
        fix: plan,
        ...lbSubject(lb),
      },
    ];
  },
};
