// FORWARDED_HEADERS_SPOOFABLE: use-forwarded-headers (or enable-real-ip) behind an L4 load balancer
// with a peer the gateway trusts: the client writes its own X-Forwarded-For (G6). Decided by asking the
// gateway's own resolver whether a forged header from an outside client wins.
import { parseCidr } from '../../net/cidr.ts';
import { readsForwardedHeader } from '../../net/client-ip.ts';
import { formatIp } from '../../net/ip.ts';
import { simulateOnChain } from '../simulate.ts';
import { accessSeverity, configMapSubject } from './common.ts';
import { patchConfigMap } from '../fix.ts';
import type { Rule } from './types.ts';

/** Documentation addresses (RFC 5737): an outside client and the address it pretends to be. */
const OUTSIDER = '203.0.113.45';
const FORGED = '198.51.100.23';

export const rule: Rule = {
  id: 'FORWARDED_HEADERS_SPOOFABLE',
  severity: 'error',
  check(topology, context) {
    const settings = topology.gateway.settings;
    if (!readsForwardedHeader(settings)) return [];
    const { chain } = context;
    const outside = { ...chain, via: chain.via === 'in-cluster' ? ('direct' as const) : chain.via };
    // A client the LB lets in: inside loadBalancerSourceRanges when the LB has them; and the client
    // the doctor was asked about, whose own address may be in proxy-real-ip-cidr (an internal LB
    // that keeps client addresses, in front of a gateway trusting the whole network).
    const range = chain.lb?.loadBalancerSourceRanges[0];
    const candidates = [range === undefined ? OUTSIDER : range.slice(0, range.lastIndexOf('/'))];
    if (context.simulation !== null) candidates.push(context.simulation.client);
    // A client of a network proxy-real-ip-cidr trusts (a VPC CIDR): without --client, one is asked for.
    const insiders = settings.trustedCidrs.slice(0, 8).flatMap((cidr) => clientInside(cidr) ?? []);
    const spoofed = [...candidates, ...insiders]
      .map((client) => ({ client, probe: simulateOnChain(outside, { client, forwardedFor: FORGED }) }))
      .find(({ probe }) => probe.gatewayLogsAddress === FORGED);
    if (spoofed === undefined) return [];
    const { client, probe } = spoofed;
    const insider = !candidates.includes(client);
    const peer = probe.hops.find((h) => h.name === 'gateway')?.sees ?? 'the peer';
    const keys = [
      settings.useForwardedHeaders ? 'use-forwarded-headers' : null,
      settings.enableRealIp ? 'enable-real-ip' : null,
    ].filter((k): k is string => k !== null);
    const data: Record<string, string> = {};
    for (const k of keys) data[k] = 'false';
    return [
      {
        id: 'FORWARDED_HEADERS_SPOOFABLE',
        severity: accessSeverity(context),
        hops: ['gateway', 'client-ip'],
        message:
          `The gateway takes the client address from ${settings.forwardedForHeader} (${keys.join(', ')}) when the peer is trusted, and the peer it sees, ${peer}, is inside proxy-real-ip-cidr ${settings.trustedCidrs.join(',')}. ` +
          `The load balancer in front works at layer 4 and writes no ${settings.forwardedForHeader}, so the header is whatever the client sent: a client at ${client}${insider ? ' (inside proxy-real-ip-cidr: a range that holds clients trusts them as proxies)' : ''} sending "${settings.forwardedForHeader}: ${FORGED}" is logged and checked as ${FORGED} (G6)${context.hasAccessLists ? ', which walks past allow and deny lists' : ''}. ` +
          'Behind an L4 load balancer use PROXY protocol for the client address; trust forwarded headers only from an L7 proxy you run, by its own addresses.',
        fix: {
          summary: `Stop taking the client address from ${settings.forwardedForHeader}.`,
          patches: [patchConfigMap(context.configMap, data)],
        },
        ...configMapSubject(context),
      },
    ];
  },
};

/**
 * An address inside a trusted range wider than a few hosts, where a client of that network could be
 * (its middle, not a network address); null for a host-sized range or one that covers everyone.
 */
function clientInside(text: string): string | null {
  const parsed = parseCidr(text);
  if (!parsed.ok) return null;
  const { address, prefix } = parsed.cidr;
  const bits = address.family === 4 ? 32 : 128;
  if (prefix === 0 || prefix > bits - 2) return null;
  const words = [address.w0, address.w1, address.w2, address.w3];
  const word = Math.floor(prefix / 32);
  words[word] = (words[word] ?? 0) | (1 << (31 - (prefix % 32)));
  const last = address.family === 4 ? 0 : 3;
  words[last] = (words[last] ?? 0) | 1;
  const [w0, w1, w2, w3] = words as [number, number, number, number];
  return formatIp({ family: address.family, w0: w0 | 0, w1: w1 | 0, w2: w2 | 0, w3: w3 | 0 });
}
