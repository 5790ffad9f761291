// SSL_PASSTHROUGH_FLAG_UNKNOWN: an Ingress asks for ssl-passthrough, and nothing tells the doctor
// whether the controller runs with --enable-ssl-passthrough. The report simulates the default (off:
// keepip terminates TLS, G11); this finding tells the other case (G10), simulated on the same chain.
import type { Chain } from '../chain.ts';
import { describeIngresses, type PassthroughHost, passthroughHosts } from '../passthrough.ts';
import { simulateOnChain } from '../simulate.ts';
import type { Simulation } from '../types.ts';
import { passthroughHostsFor, passthroughSubject } from './common.ts';
import type { Rule } from './types.ts';

function withFlagOn(chain: Chain): Chain {
  const flag = { enabled: true, source: 'assumed on' };
  return { ...chain, passthroughFlags: () => flag, passthrough: passthroughHosts(chain.topology, flag) };
}

/** What the simulated client would meet with the flag on: the same request, over TLS. */
function ifEnabled(chain: Chain, sim: Simulation, host: PassthroughHost): string {
  const other = simulateOnChain(withFlagOn(chain), {
    client: sim.client,
    host: host.host,
    path: sim.path,
    scheme: 'https',
  });
  if (other.passthrough !== true)
    return `the connection from ${sim.client} would end before that (${other.decidedBy}).`;
  const seen = other.gatewayLogsAddress ?? sim.client;
  return other.outcome === 'allowed'
    ? `${sim.client}, checked as ${seen}, is admitted at connection time (${other.decidedBy}) and reaches the backend, which sees the gateway pod, not the client.`
    : `${sim.client}, checked as ${seen}, is refused at connection time (${other.decidedBy}): the connection is closed before any byte reaches the backend.`;
}

function lists(host: PassthroughHost): string {
  const l = host.location;
  const parts = [l?.allow ? `allow ${l.allow.raw}` : null, l?.deny ? `deny ${l.deny.raw}` : null].filter(
    (p) => p !== null,
  );
  return parts.length === 0 ? 'no allow or deny list' : parts.join('; ');
}

export const rule: Rule = {
  id: 'SSL_PASSTHROUGH_FLAG_UNKNOWN',
  severity: 'info',
  check(_topology, context) {
    const { chain, simulation } = context;
    return passthroughHostsFor(context, ['unknown']).map((h) => {
      const backend = h.location?.backend?.upstreamName ?? '-';
      const client = simulation === null ? '' : ` For this client: ${ifEnabled(chain, simulation, h)}`;
      return {
        id: 'SSL_PASSTHROUGH_FLAG_UNKNOWN',
        severity: 'info' as const,
        hops: ['gateway', 'route', 'policy', 'backend'],
        message:
          `${describeIngresses(h.ingresses)} set${h.ingresses.length === 1 ? 's' : ''} ssl-passthrough on ${h.host}, and ${h.flag.source}. ` +
          `Without --enable-ssl-passthrough (the default, and what the doctor simulates) keepip terminates TLS for ${h.host} and serves it as any host (G11). ` +
          `With it, TLS for ${h.host} passes through unread to ${backend} (G10): the "/" path's source-address rules (${lists(h)}, with block-cidrs) decide at connection time on the client the gateway sees (the PROXY header's, else the TCP peer), nothing HTTP applies, and the backend sees the gateway pod's address.${client} ` +
          `Run the doctor with --enable-ssl-passthrough, or give it the controller's Deployment, to simulate that case.`,
        fix: null,
        ...passthroughSubject(h),
        ...(h.location !== null ? { origin: h.location.ingressOrigin } : {}),
      };
    });
  },
};
