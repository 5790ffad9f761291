// PROXY_PROTOCOL_TRUSTS_EVERYONE: use-proxy-protocol with proxy-real-ip-cidr 0.0.0.0/0 (the default):
// anything that reaches the pod or a NodePort directly can write its own header (G7).
import { coversEveryAddress } from '../../net/cidr.ts';
import { type GatewayPeers, gatewayPeers, hostCidr } from '../chain.ts';
import { patchConfigMap } from '../fix.ts';
import { proxyProtocolPlan } from '../plans.ts';
import { accessSeverity, configMapSubject } from './common.ts';
import type { Rule } from './types.ts';

export const rule: Rule = {
  id: 'PROXY_PROTOCOL_TRUSTS_EVERYONE',
  severity: 'error',
  check(topology, context) {
    const settings = topology.gateway.settings;
    if (!settings.useProxyProtocol || !coversEveryAddress(settings.trustedCidrs)) return [];
    const { chain } = context;
    const peers: GatewayPeers = gatewayPeers({
      ...chain,
      via: chain.via === 'in-cluster' ? 'direct' : chain.via,
    });
    const origin = settings.trustedCidrsDefaulted
      ? 'proxy-real-ip-cidr is not set, and its default 0.0.0.0/0 trusts every peer'
      : `proxy-real-ip-cidr ${settings.trustedCidrs.join(',')} trusts every peer`;
    const bypass = context.hasAccessLists
      ? 'That walks past every allow and deny list.'
      : 'Logs and backends then show whatever address the sender chose.';
    let fix = proxyProtocolPlan(chain, { lbAnnotations: context.lbAnnotations });
    if (fix === null && peers.kind === 'fixed') {
      fix = {
        summary: `Accept PROXY headers only from ${peers.addresses.join(', ')}.`,
        patches: [
          patchConfigMap(context.configMap, {
            'proxy-real-ip-cidr': peers.addresses.map(hostCidr).join(','),
          }),
        ],
      };
    }
    return [
      {
        id: 'PROXY_PROTOCOL_TRUSTS_EVERYONE',
        severity: accessSeverity(context),
        hops: ['gateway'],
        message:
          `The gateway reads PROXY headers and ${origin}. Anything that can open a connection to the gateway pod or a NodePort without going through the LB (another pod, a node, a host in the VPC) can send a header claiming any client address, and the gateway believes it (G7). ${bypass} ` +
          (peers.kind === 'fixed'
            ? `Only ${peers.addresses.join(', ')} (${peers.why}) should be trusted.`
            : `Today the gateway sees clients directly (${peers.why}), so trust cannot be narrowed until only the LB connects.`),
        fix,
        ...configMapSubject(context),
      },
    ];
  },
};
