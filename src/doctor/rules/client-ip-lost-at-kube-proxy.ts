// CLIENT_IP_LOST_AT_KUBE_PROXY: the LB keeps the client address, but the NodePort hop with
// externalTrafficPolicy: Cluster SNATs it to a node address (K1).
import { lbPreservation, passesLoadBalancer } from '../chain.ts';
import { patchService } from '../fix.ts';
import { accessConsequence, accessSeverity, describeLbStart, lbSubject } from './common.ts';
import type { Rule } from './types.ts';

export const rule: Rule = {
  id: 'CLIENT_IP_LOST_AT_KUBE_PROXY',
  severity: 'error',
  check(topology, context) {
    const { chain } = context;
    const lb = chain.lb;
    if (lb === null || chain.kubeProxy === null || chain.kubeProxy.policy !== 'Cluster') return [];
    if (!passesLoadBalancer(chain) || lb.proxyProtocol !== null || topology.gateway.settings.useProxyProtocol)
      return [];
    if (!lbPreservation(chain, context.simulation?.client ?? null).preserved) return []; // lost at the LB already
    const nodes = chain.kubeProxy.nodes.map((n) => n.address);
    const seen = nodes.join(' or ') || 'a node address';
    return [
      {
        id: 'CLIENT_IP_LOST_AT_KUBE_PROXY',
        severity: accessSeverity(context),
        hops: ['load-balancer', 'kube-proxy', 'gateway'],
        message:
          `${describeLbStart(lb)} keeps the client's address, but it sends to NodePort ${
            lb.ports
              .map((p) => p.nodePort)
              .filter((p) => p !== null)
              .join(', ') || ''
          } and the Service has externalTrafficPolicy: Cluster, ` +
          `so kube-proxy SNATs every connection to the node's address and the gateway sees ${seen} (K1). ${accessConsequence(context, seen)} ` +
          'With externalTrafficPolicy: Local the node passes the address unchanged; nodes without a gateway pod then fail the LB health check and get no traffic (K2), which is intended.',
        fix: {
          summary: 'Keep the address at the node: externalTrafficPolicy: Local.',
          patches: [patchService(lb.service, { spec: { externalTrafficPolicy: 'Local' } })],
        },
        ...lbSubject(lb),
      },
    ];
  },
};
