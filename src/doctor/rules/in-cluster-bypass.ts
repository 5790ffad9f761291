// IN_CLUSTER_BYPASS: kube-proxy sends in-cluster traffic for the LB's IP straight to the endpoints
// (K3), so those connections carry no PROXY header and a gateway that requires one closes them.
import { inClusterGoesThroughLb } from '../chain.ts';
import { patchService } from '../fix.ts';
import { describeLb, lbSubject } from './common.ts';
import type { Rule } from './types.ts';

export const rule: Rule = {
  id: 'IN_CLUSTER_BYPASS',
  severity: 'error',
  check(topology, context) {
    const lb = context.chain.lb;
    if (lb === null || lb.proxyProtocol === null || !topology.gateway.settings.useProxyProtocol) return [];
    if (inClusterGoesThroughLb(lb)) return [];
    const inCluster = context.chain.via === 'in-cluster';
    return [
      {
        id: 'IN_CLUSTER_BYPASS',
        severity: inCluster ? 'error' : 'warning',
        hops: ['client', 'load-balancer', 'gateway'],
        message:
          `The status of ${describeLb(lb)} holds only an IP (${lb.listenAddress}). kube-proxy routes in-cluster connections to that IP straight to the gateway pods, skipping the LB (K3), so they arrive without the PROXY header the gateway requires and are closed without a response ("broken header" in nginx). ` +
          `${inCluster ? 'This client calls from inside the cluster.' : 'External clients are not affected; pods calling the LB address are.'} With ipMode: Proxy in the status (Kubernetes 1.30+, set by the cloud controller) or a hostname, kube-proxy sends them through the LB.`,
        fix: {
          summary:
            'Mark the LB address as a proxy so in-cluster traffic goes through the LB (usually the cloud controller sets this; some providers have a hostname annotation instead).',
          patches: [
            patchService(
              lb.service,
              { status: { loadBalancer: { ingress: [{ ip: lb.listenAddress, ipMode: 'Proxy' }] } } },
              'status',
            ),
          ],
        },
        ...lbSubject(lb),
      },
    ];
  },
};
