// PROXY_PROTOCOL_EXPECTED_NOT_SENT: the gateway waits for a PROXY header that nothing sends, so every
// connection is closed without a response (G3; "broken header" in nginx logs).
import { patchConfigMap } from '../fix.ts';
import { proxyProtocolPlan, proxySwitch } from '../plans.ts';
import { configMapSubject, describeLbStart } from './common.ts';
import type { Rule } from './types.ts';

export const rule: Rule = {
  id: 'PROXY_PROTOCOL_EXPECTED_NOT_SENT',
  severity: 'error',
  check(topology, context) {
    const { chain } = context;
    const lb = chain.lb;
    if (!topology.gateway.settings.useProxyProtocol) return [];
    if (lb !== null && lb.proxyProtocol !== null) return [];
    const front =
      lb === null ? 'No load balancer in the manifests sends one' : `${describeLbStart(lb)} sends none`;
    const canSend = lb !== null && proxySwitch(lb.provider) !== null;
    const fix = canSend
      ? proxyProtocolPlan(chain, { lbAnnotations: context.lbAnnotations })
      : {
          summary: `${lb === null ? 'Nothing' : `The ${lb.provider} load balancer`} can send PROXY headers: stop expecting them.`,
          patches: [patchConfigMap(context.configMap, { 'use-proxy-protocol': 'false' })],
        };
    return [
      {
        id: 'PROXY_PROTOCOL_EXPECTED_NOT_SENT',
        severity: 'error',
        hops: ['load-balancer', 'gateway'],
        message:
          `The gateway's ConfigMap sets use-proxy-protocol: "true", so every connection must start with a PROXY header. ${front}. ` +
          'The gateway closes each connection without a response (G3; nginx logs `broken header: "GET / HTTP/1.1..." while reading PROXY protocol`), and TCP health checks add `broken header: ""` noise (G4).',
        fix,
        ...configMapSubject(context),
      },
    ];
  },
};
