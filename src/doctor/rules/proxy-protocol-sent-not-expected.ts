// PROXY_PROTOCOL_SENT_NOT_EXPECTED: the LB prepends a PROXY header but the gateway does not read one,
// so the header is parsed as the request line: 400 for every request (G2).
import { passesLoadBalancer } from '../chain.ts';
import { proxyProtocolPlan } from '../plans.ts';
import { describeLbStart, lbSubject } from './common.ts';
import type { Rule } from './types.ts';

export const rule: Rule = {
  id: 'PROXY_PROTOCOL_SENT_NOT_EXPECTED',
  severity: 'error',
  check(topology, context) {
    const { chain } = context;
    const lb = chain.lb;
    if (lb === null || lb.proxyProtocol === null || topology.gateway.settings.useProxyProtocol) return [];
    const signature =
      lb.proxyProtocol === 'v2' ? 'the binary v2 signature ("\\x00" in nginx logs)' : '"PROXY TCP4 ..."';
    const inCluster = passesLoadBalancer(chain) ? '' : ' (in-cluster callers that skip the LB still work)';
    return [
      {
        id: 'PROXY_PROTOCOL_SENT_NOT_EXPECTED',
        severity: 'error',
        hops: ['load-balancer', 'gateway'],
        message:
          `${describeLbStart(lb)} starts every connection with a PROXY ${lb.proxyProtocol} header, but the gateway's ConfigMap ${context.configMap.namespace}/${context.configMap.name} does not set use-proxy-protocol: "true". ` +
          `The gateway reads the header as the request line and answers 400 to every request through the LB (G2); the access log shows ${signature} as the request${inCluster}. Both ends must agree.`,
        fix: proxyProtocolPlan(chain, { lbAnnotations: context.lbAnnotations }),
        ...lbSubject(lb),
      },
    ];
  },
};
