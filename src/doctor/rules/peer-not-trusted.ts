// PEER_NOT_TRUSTED: PROXY on both ends, but the address the header arrives from is outside
// proxy-real-ip-cidr (e.g. narrowed to the NLB subnets while kube-proxy SNATs to node IPs, G5).
// keepip closes such connections (invariant I2); ingress-nginx ignores the header and answers 403 (G1).
import { coversEveryAddress } from '../../net/cidr.ts';
import { gatewayPeers, passesLoadBalancer } from '../chain.ts';
import { proxyProtocolPlan } from '../plans.ts';
import { configMapSubject } from './common.ts';
import type { Rule } from './types.ts';

export const rule: Rule = {
  id: 'PEER_NOT_TRUSTED',
  severity: 'error',
  check(topology, context) {
    const settings = topology.gateway.settings;
    const { chain } = context;
    const lb = chain.lb;
    if (!settings.useProxyProtocol || lb === null || lb.proxyProtocol === null) return [];
    if (coversEveryAddress(settings.trustedCidrs)) return [];
    const client = context.simulation?.client ?? null;
    const external = passesLoadBalancer(chain) ? chain : { ...chain, via: 'direct' as const };
    const peers = gatewayPeers(external, client);
    let untrusted: string[];
    let why: string;
    if (peers.kind === 'fixed') {
      untrusted = peers.addresses.filter((a) => !chain.trusted.has(a));
      why = peers.why;
    } else {
      untrusted =
        client !== null && !chain.trusted.has(client)
          ? [client]
          : client === null
            ? ['the clients themselves']
            : [];
      why = peers.why;
    }
    if (untrusted.length === 0) return [];
    return [
      {
        id: 'PEER_NOT_TRUSTED',
        severity: 'error',
        hops: chain.kubeProxy ? ['load-balancer', 'kube-proxy', 'gateway'] : ['load-balancer', 'gateway'],
        message:
          `PROXY headers reach the gateway from ${untrusted.join(', ')} (${why}), which proxy-real-ip-cidr ${settings.trustedCidrs.join(',')} does not include. ` +
          'keepip closes connections that carry a PROXY header from an untrusted peer (so every request through the LB fails without a response); ingress-nginx would instead ignore the header and check the peer address, answering 403 to allowlisted clients (G5, then G1). ' +
          'Trust exactly the addresses the LB hop connects from.',
        fix: proxyProtocolPlan(chain, { lbAnnotations: context.lbAnnotations }),
        ...configMapSubject(context),
      },
    ];
  },
};
