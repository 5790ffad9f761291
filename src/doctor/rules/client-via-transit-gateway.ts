// CLIENT_VIA_TRANSIT_GATEWAY: the client reaches an AWS LB through a transit gateway, a VPN or
// PrivateLink (A4), where client-IP preservation cannot work whatever the target-group attribute says:
// only PROXY protocol carries the address (the seed's client came over VPN + transit gateway).
import { isRoutedPath } from '../../config/client-path.ts';
import { isAwsProvider } from '../../config/providers.ts';
import { describeVia, passesLoadBalancer } from '../chain.ts';
import { proxyProtocolPlan } from '../plans.ts';
import { accessConsequence, accessSeverity, describeLb, lbSubject } from './common.ts';
import type { Rule } from './types.ts';

export const rule: Rule = {
  id: 'CLIENT_VIA_TRANSIT_GATEWAY',
  severity: 'error',
  check(_topology, context) {
    const { chain } = context;
    const lb = chain.lb;
    if (lb === null || !passesLoadBalancer(chain) || lb.proxyProtocol !== null) return [];
    if (!isAwsProvider(lb.provider)) return [];
    if (!isRoutedPath(chain.via)) return [];
    const source = {
      option: 'as --via says',
      annotation: 'as the keepip.dev/client-path annotation says',
      'vpc-endpoint': 'as keepip.dev/vpc-endpoint-id says',
      default: '',
    }[chain.viaSource];
    const attribute = lb.preserveClientIp
      ? 'Client-IP preservation is on, but it does not apply to this path'
      : 'Turning client-IP preservation on would not help on this path';
    return [
      {
        id: 'CLIENT_VIA_TRANSIT_GATEWAY',
        severity: accessSeverity(context),
        hops: ['network', 'load-balancer', 'gateway'],
        message:
          `Clients reach ${describeLb(lb)} through ${describeVia(chain.via)}${source ? ` (${source})` : ''}. ` +
          `${attribute}: across a transit gateway, a VPN attachment or PrivateLink the targets see the LB's private address ${lb.sourceAddress} (A4). ` +
          `${accessConsequence(context, lb.sourceAddress)} Only PROXY protocol carries the client's address on this path${chain.via === 'privatelink' ? ' (with the VPC endpoint id in TLV 0xEA, A10)' : ''}.`,
        fix: proxyProtocolPlan(chain, { lbAnnotations: context.lbAnnotations }),
        ...lbSubject(lb),
      },
    ];
  },
};
