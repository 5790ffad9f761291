// HAIRPIN_TIMEOUT: an internal AWS NLB with client-IP preservation, called by one of its own targets:
// source = destination, and connections time out whenever the NLB picks the caller (A8).
import { proxyProtocolPlan } from '../plans.ts';
import { describeLbStart, lbSubject } from './common.ts';
import type { Rule } from './types.ts';

export const rule: Rule = {
  id: 'HAIRPIN_TIMEOUT',
  severity: 'error',
  check(_topology, context) {
    const lb = context.chain.lb;
    if (lb === null || lb.provider !== 'aws-nlb' || lb.scheme !== 'internal' || !lb.preserveClientIp)
      return [];
    const hit = context.simulation?.decidedBy === 'A8 hairpin';
    const who = hit
      ? `The client ${context.simulation?.client} is one of the NLB's own targets.`
      : 'Pods and nodes behind it that call it by its DNS name go through the NLB and may be sent back to themselves.';
    return [
      {
        id: 'HAIRPIN_TIMEOUT',
        severity: hit ? 'error' : 'warning',
        hops: ['client', 'load-balancer'],
        message:
          `${describeLbStart(lb)} preserves client addresses. ${who} When the NLB sends such a connection back to the caller's own address, source and destination are the same and the connection times out, intermittently (A8). ` +
          'Turn preservation off and carry the client address in a PROXY header instead.',
        fix: proxyProtocolPlan(context.chain, {
          lbAnnotations: context.lbAnnotations,
          preservationOff: true,
        }),
        ...lbSubject(lb),
      },
    ];
  },
};
