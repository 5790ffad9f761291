// PROXY_PROTOCOL_EXPECTED_NOT_SENT: the gateway waits for a PROXY header that nothing sends, so every
// connection is closed without a response (G3; "broken header" in nginx logs), and a client that
// writes its own header is believed when the peer the gateway sees is trusted.
import { patchConfigMap } from '../fix.ts';
import { proxyProtocolPlan, proxySwitch } from '../plans.ts';
import { simulateOnChain } from '../simulate.ts';
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
          'The gateway closes each connection without a response (G3; nginx logs `broken header: "GET / HTTP/1.1..." while reading PROXY protocol`), and TCP health checks add `broken header: ""` noise (G4).' +
          forgeryNote(context),
        fix,
        ...configMapSubject(context),
      },
    ];
  },
};

/** Documentation addresses (RFC 5737): a client, and the address its own PROXY header claims. */
const OUTSIDER = '203.0.113.45';
const FORGED = '198.51.100.23';

/** Whether a client's own PROXY header is believed on this chain (the peer is trusted), said in words. */
function forgeryNote(context: Parameters<Rule['check']>[1]): string {
  const client = context.simulation?.client ?? OUTSIDER;
  const probe = simulateOnChain(context.chain, { client, proxyHeaderFor: FORGED });
  if (probe.gatewayLogsAddress !== FORGED) return '';
  const peer = probe.hops.find((h) => h.name === 'gateway')?.sees ?? 'the peer';
  return (
    ` Worse, the peer the gateway sees, ${peer}, is inside proxy-real-ip-cidr, and the load balancer passes the client's bytes unread: ` +
    `a client that starts its connection with a PROXY header of its own is believed, whatever address it claims, past allow and deny lists (${client} claiming ${FORGED} is logged and checked as ${FORGED}; --proxy-header-for shows it).`
  );
}
