// The simulation's ssl-passthrough stage (G10): TLS whose SNI is a passthrough host is not terminated.
// The client the gateway knows at connection time (the PROXY header's, else the TCP peer: there is no
// HTTP, so no X-Forwarded-For) goes through the "/" location's source-address rules, and the bytes go
// unread to that location's backend, which sees the gateway pod as its peer. Nothing HTTP applies.
import type { Chain } from './chain.ts';
import { describeWorkload } from './controllers.ts';
import { describeIngresses, passthroughDecision, passthroughHostFor } from './passthrough.ts';
import type { Hop, Outcome } from './types.ts';

/** The part of simulate.ts's walk this stage reads (structural, so the two modules do not import each other). */
export interface PassthroughWalk {
  readonly chain: Chain;
  readonly client: string;
  readonly host: string;
  readonly path: string;
  readonly scheme: 'http' | 'https';
  readonly hops: Hop[];
  readonly peer: string;
  readonly proxySource: string | null;
}

export interface PassthroughEnd {
  outcome: Outcome;
  decidedBy: string;
  /** The address the stream-style access log line names ([client]). */
  logs: string;
}

/** The address a passthrough backend connects from: a gateway pod's, when the manifests list one. */
export function gatewayPodAddress(chain: Chain): string | null {
  return chain.gatewayEndpoints[0]?.address ?? null;
}

/** Adds the passthrough hops and ends the walk, or null when the request is not TLS to an active passthrough host. */
export function passthroughEnd(walk: PassthroughWalk): PassthroughEnd | null {
  const { chain, hops } = walk;
  if (walk.scheme !== 'https') return null;
  const target = passthroughHostFor(chain.passthrough, walk.host);
  if (target === null || target.state !== 'active' || target.location === null) return null;
  const location = target.location;
  const backend = location.backend?.upstreamName ?? '-';
  const fromHeader = chain.topology.gateway.settings.useProxyProtocol && walk.proxySource !== null;
  const client = fromHeader && walk.proxySource !== null ? walk.proxySource : walk.peer;
  hops.push({
    name: 'client-ip',
    sees: client,
    detail: `at connection time, ${fromHeader ? 'from the PROXY header' : 'the TCP peer (no PROXY header)'}; the TLS is not terminated, so no X-Forwarded-For can be read`,
  });
  const workload = target.flag.workload;
  const controller = workload === undefined ? '' : `, on the controller ${describeWorkload(workload)}`;
  const elsewhere =
    walk.path === '/'
      ? ''
      : ` ${walk.path} travels inside the TLS stream: keepip never sees it, and every path goes there;`;
  hops.push({
    name: 'route',
    sees: client,
    detail: `TLS for ${target.host} passes through (ssl-passthrough, ${describeIngresses(target.ingresses)}${controller}, G10): the bytes go unread to ${backend}, the backend of the "/" path;${elsewhere} HTTP-level annotations (other paths, redirects, auth, rate limits, headers) do not apply`,
  });
  const verdict = passthroughDecision(chain.topology, location, client);
  const rule = verdict.entry ? `${verdict.rule} ${verdict.entry}` : verdict.rule;
  const closed = verdict.outcome !== 'allow';
  hops.push({
    name: 'policy',
    sees: client,
    detail: `${verdict.outcome} at connection time: ${verdict.detail}${closed ? `; the connection is closed before any byte reaches ${backend} (logged with status ${verdict.outcome === 'deny' ? 403 : 503})` : ''}`,
  });
  if (closed) return { outcome: 'connection-closed', decidedBy: `ssl-passthrough ${rule}`, logs: client };
  const pod = gatewayPodAddress(chain);
  hops.push({
    name: 'backend',
    sees: pod,
    detail: `${backend} terminates the TLS itself and sees the gateway pod${pod === null ? '' : ` ${pod}`} as its peer, not ${client}: no X-Forwarded-For, X-Real-IP or PROXY header reaches it`,
  });
  return { outcome: 'allowed', decidedBy: `ssl-passthrough ${rule}`, logs: client };
}

/** On plain HTTP, a passthrough host is served as any host (ingress-nginx's port-80 server). */
export function plainHttpNote(walk: PassthroughWalk): string | null {
  if (walk.scheme !== 'http') return null;
  const target = passthroughHostFor(walk.chain.passthrough, walk.host);
  if (target === null || target.state !== 'active') return null;
  return `${target.host} has ssl-passthrough, which applies to TLS only: plain HTTP is served as for any host (G10)`;
}
