// Walks the chain for one client: which address each hop sees, and where the request ends. The
// gateway part calls the gateway's own resolver, router and access policy, so the prediction is the
// gateway's decision, not a copy of it.
import { isRoutedPath } from '../config/client-path.ts';
import type { Topology } from '../config/model.ts';
import {
  DEFAULT_SERVER_NAME,
  decideAccess,
  type MatchedRoute,
  type RouteDecision,
  routeRequest,
} from '../gateway/router.ts';
import { traceAccess } from './access-trace.ts';
import { passthroughHostFor } from './passthrough.ts';
import { refusedIngressNote } from './refused-ingress.ts';
import { passthroughEnd, plainHttpNote } from './simulate-passthrough.ts';
import { CidrSet } from '../net/cidr-set.ts';
import { canonicalIp } from '../net/ip.ts';
import {
  buildChain,
  type Chain,
  type ChainOptions,
  describeVia,
  lbPreservation,
  passesLoadBalancer,
} from './chain.ts';
import type { ClientPath, Hop, Outcome, Simulation } from './types.ts';

export interface SimulateRequest {
  client: string;
  host?: string;
  path?: string;
  scheme?: 'http' | 'https';
  via?: ClientPath;
  /** A forwarded-for header value the client sends itself (to show whether it can be spoofed). */
  forwardedFor?: string;
  /**
   * An address the client claims in a PROXY header it writes itself at the start of its connection
   * (to show whether a gateway that expects PROXY believes it when nothing in front writes one).
   */
  proxyHeaderFor?: string;
}

/** Simulates one request. Throws only on programmer mistakes (an invalid client address, a broken model). */
export function simulate(
  topology: Topology,
  request: SimulateRequest,
  chainOptions: Omit<ChainOptions, 'via'> = {},
): Simulation {
  const built = buildChain(topology, { ...chainOptions, ...(request.via ? { via: request.via } : {}) });
  if (!built.ok) throw new Error(`${built.error.code}: ${built.error.message}`);
  return simulateOnChain(built.chain, request);
}

/** The host a request without --host uses: the first host with an access list, else the first host. */
export function defaultHost(topology: Topology): string {
  const hosts = topology.gateway.virtualHosts;
  const withList = hosts.find((v) => v.locations.some((l) => l.allow !== null || l.deny !== null));
  const host = (withList ?? hosts[0])?.host ?? '';
  return concreteHost(host);
}

/** A name a wildcard host (`*.example.com`) matches; '' (rules without a host) becomes "localhost". */
export function concreteHost(host: string): string {
  if (host === '') return 'localhost';
  return host.startsWith('*.') ? `doctor${host.slice(1)}` : host;
}

function inList(entries: readonly string[], address: string): boolean {
  if (entries.length === 0) return true;
  const built = CidrSet.build(entries);
  return built.ok && built.set.has(address);
}

/**
 * One request on its way: the hops so far and what the gateway will see. Each stage below adds its
 * hops and either ends the request (returns the Simulation) or lets it go on (returns null).
 */
interface Walk {
  readonly chain: Chain;
  readonly request: SimulateRequest;
  readonly client: string;
  readonly host: string;
  readonly path: string;
  readonly scheme: 'http' | 'https';
  readonly hops: Hop[];
  /** The TCP peer the gateway sees. */
  peer: string;
  /** The client a PROXY header names, when the LB sends one (or the client's own comes first). */
  proxySource: string | null;
  sentHeader: 'v1' | 'v2' | null;
  /** The client's own PROXY header comes first on the connection (nothing in front wrote one). */
  forgedHeaderFirst: boolean;
}

export function simulateOnChain(chain: Chain, request: SimulateRequest): Simulation {
  const client = canonicalIp(request.client);
  if (client === null) throw new Error(`DOCTOR_BAD_CLIENT: "${request.client}" is not an IP address`);
  const host = request.host ?? defaultHost(chain.topology);
  const walk: Walk = {
    chain,
    request,
    client,
    host,
    path: request.path ?? '/',
    // A host that asks for ssl-passthrough is asked about over TLS unless --scheme says otherwise.
    scheme: request.scheme ?? (passthroughHostFor(chain.passthrough, host) === null ? 'http' : 'https'),
    hops: [],
    peer: client,
    proxySource: null,
    sentHeader: null,
    forgedHeaderFirst: false,
  };
  const via = chain.via;
  walk.hops.push({ name: 'client', sees: client, detail: `connects over ${describeVia(via)}` });
  if (isRoutedPath(via)) {
    walk.hops.push({
      name: 'network',
      sees: client,
      detail: `${describeVia(via)} routes the packets to the LB with the client's address`,
    });
  }
  return (
    throughLoadBalancer(walk) ??
    toGatewayEndpoint(walk) ??
    withClientProxyHeader(walk) ??
    throughProxyReader(walk) ??
    afterClientProxyHeader(walk) ??
    throughPassthrough(walk) ??
    throughGateway(walk)
  );
}

function end(
  walk: Walk,
  outcome: Outcome,
  status: number | null,
  decidedBy: string,
  logs: string | null,
): Simulation {
  const { client, host, path, scheme, hops } = walk;
  return {
    client,
    host,
    path,
    scheme,
    via: walk.chain.via,
    hops,
    outcome,
    status,
    decidedBy,
    gatewayLogsAddress: logs,
  };
}

/** The LB (when the path passes it) and the kube-proxy hop of instance targets: the peer, the header. */
function throughLoadBalancer(walk: Walk): Simulation | null {
  const { chain, client, hops } = walk;
  const lb = chain.lb;
  if (lb === null) return null;
  if (!passesLoadBalancer(chain)) {
    hops.push({
      name: 'load-balancer',
      sees: null,
      detail: `skipped: kube-proxy sends in-cluster traffic for the LB address ${lb.listenAddress} straight to the endpoints, so no PROXY header is added (K3)`,
    });
    return null;
  }
  if ((lb.invalidSourceRanges ?? []).length > 0) {
    const bad = (lb.invalidSourceRanges ?? []).map((entry) => JSON.stringify(entry)).join(', ');
    hops.push({
      name: 'load-balancer',
      sees: null,
      detail: `is never set up: loadBalancerSourceRanges has ${bad}, not a CIDR (keepip lb refuses to start; a cloud controller cannot create it), so nobody connects`,
    });
    return end(walk, 'unreachable', null, 'loadBalancerSourceRanges', null);
  }
  if (!inList(lb.loadBalancerSourceRanges, client)) {
    hops.push({
      name: 'load-balancer',
      sees: client,
      detail: `drops the connection: ${client} is outside loadBalancerSourceRanges ${lb.loadBalancerSourceRanges.join(', ')}`,
    });
    return end(walk, 'unreachable', null, 'loadBalancerSourceRanges', null);
  }
  const preservation = lbPreservation(chain, client);
  const targetSide = preservation.preserved ? client : lb.sourceAddress;
  const targets =
    lb.targetType === 'instance'
      ? chain.topology.nodes.map((n) => n.address)
      : chain.gatewayEndpoints.map((e) => e.address);
  const pp = lb.proxyProtocol
    ? `adds a PROXY ${lb.proxyProtocol} header with source ${client}`
    : 'sends no PROXY header';
  const what = `${lb.provider} ${lb.scheme}, ${lb.targetType} targets${lb.targetType === 'ip' ? ' (straight to the pods, K4)' : ''}`;
  hops.push({
    name: 'load-balancer',
    sees: client,
    detail: `${what}: ${preservation.why} (${preservation.rule}), so it connects from ${targetSide}; ${pp}`,
  });
  const hairpin =
    lb.provider === 'aws-nlb' &&
    lb.scheme === 'internal' &&
    preservation.preserved &&
    targets.includes(client);
  if (hairpin) return end(walk, 'unreachable', null, 'A8 hairpin', null);
  if (lb.proxyProtocol) {
    walk.sentHeader = lb.proxyProtocol;
    walk.proxySource = client;
  }
  walk.peer = throughKubeProxy(walk, targetSide);
  return null;
}

/** NodePort hop of instance targets: SNAT to a node under Cluster (K1), unchanged under Local (K2). */
function throughKubeProxy({ chain, hops }: Walk, targetSide: string): string {
  const kubeProxy = chain.kubeProxy;
  if (kubeProxy === null) return targetSide;
  const node = kubeProxy.nodes[0];
  if (kubeProxy.policy === 'Cluster' && node !== undefined) {
    hops.push({
      name: 'kube-proxy',
      sees: targetSide,
      detail: `NodePort with externalTrafficPolicy: Cluster: SNAT to the node address ${node.address}${kubeProxy.nodes.length > 1 ? ' (or another node)' : ''} (K1)`,
    });
    return node.address;
  }
  hops.push({
    name: 'kube-proxy',
    sees: targetSide,
    detail: 'NodePort with externalTrafficPolicy: Local: the address passes unchanged (K2)',
  });
  return targetSide;
}

/** A gateway Service whose endpoints are all listed as not ready gets nothing through. */
function toGatewayEndpoint(walk: Walk): Simulation | null {
  const { chain } = walk;
  if (chain.gatewayService === null) return null;
  const listed = Object.values(chain.gatewayService.endpoints).flat();
  if (listed.length === 0 || chain.gatewayEndpoints.length > 0) return null;
  walk.hops.push({ name: 'gateway', sees: null, detail: 'no ready gateway endpoint behind the Service' });
  return end(walk, 'unreachable', null, 'no-ready-endpoint', null);
}

/**
 * A PROXY header the client writes itself (--proxy-header-for). The bytes pass an L4 hop unread: when
 * nothing in front wrote a header, the client's is the first thing the gateway reads.
 */
function withClientProxyHeader(walk: Walk): null {
  const claimed = walk.request.proxyHeaderFor;
  if (claimed === undefined || walk.sentHeader !== null) return null;
  const address = canonicalIp(claimed);
  if (address === null) throw new Error(`DOCTOR_BAD_CLIENT: "${claimed}" is not an IP address`);
  walk.sentHeader = 'v2';
  walk.proxySource = address;
  walk.forgedHeaderFirst = true;
  return null;
}

/** The client's own PROXY header after the one the LB wrote: the gateway reads it as a request line. */
function afterClientProxyHeader(walk: Walk): Simulation | null {
  if (walk.request.proxyHeaderFor === undefined || walk.forgedHeaderFirst) return null;
  walk.hops.push({
    name: 'client-ip',
    sees: walk.proxySource,
    detail:
      "the client's own PROXY header comes after the load balancer's, as the first bytes of the HTTP stream: not a request line, 400",
  });
  return end(walk, 'rejected-400', 400, 'client PROXY header after the LB header', null);
}

/** The gateway's PROXY reader and its trust check (G2, G3, G5). */
function throughProxyReader(walk: Walk): Simulation | null {
  const { chain, hops, peer, sentHeader } = walk;
  const settings = chain.topology.gateway.settings;
  if (!settings.useProxyProtocol) {
    if (sentHeader === null) {
      hops.push({ name: 'gateway', sees: peer, detail: 'no PROXY protocol on either side: the TCP peer' });
      return null;
    }
    hops.push({
      name: 'gateway',
      sees: peer,
      detail: `receives a PROXY ${sentHeader} header it does not expect (use-proxy-protocol is off): 400 for every request (G2)`,
    });
    return end(walk, 'rejected-400', 400, 'G2', peer);
  }
  if (sentHeader === null) {
    hops.push({
      name: 'gateway',
      sees: peer,
      detail:
        'expects a PROXY header (use-proxy-protocol) but the request starts without one: closed without a response (G3)',
    });
    return end(
      walk,
      'connection-closed',
      null,
      chain.via === 'in-cluster' && chain.lb !== null ? 'K3' : 'G3',
      null,
    );
  }
  if (!chain.trusted.has(peer)) {
    hops.push({
      name: 'gateway',
      sees: peer,
      detail: `reads a PROXY ${sentHeader} header from ${peer}, which is outside proxy-real-ip-cidr ${settings.trustedCidrs.join(', ') || '(empty or invalid: no peer is trusted)'}: connection closed (keepip; ingress-nginx would ignore the header, G5)`,
    });
    return end(walk, 'connection-closed', null, 'G5 untrusted peer', null);
  }
  hops.push({
    name: 'gateway',
    sees: peer,
    detail: walk.forgedHeaderFirst
      ? `accepts the PROXY header the client wrote itself, as it comes from trusted ${peer} and nothing in front wrote one: client ${walk.proxySource}, whatever address the client claims (G3)`
      : `accepts the PROXY ${sentHeader} header from trusted ${peer}: client ${walk.proxySource}`,
  });
  return null;
}

/** TLS to an ssl-passthrough host: decided at connection time, relayed unread (simulate-passthrough.ts). */
function throughPassthrough(walk: Walk): Simulation | null {
  const ended = passthroughEnd(walk);
  return ended === null
    ? null
    : { ...end(walk, ended.outcome, null, ended.decidedBy, ended.logs), passthrough: true };
}

/** Inside the gateway: the client address it settles on, the route, then the access rules. */
function throughGateway(walk: Walk): Simulation {
  const { chain, request, hops, peer } = walk;
  const settings = chain.topology.gateway.settings;
  const headers: Record<string, string> = {};
  if (request.forwardedFor !== undefined)
    headers[settings.forwardedForHeader.toLowerCase()] = request.forwardedFor;
  const resolved = chain.resolver.resolve({ peerAddress: peer, proxySource: walk.proxySource, headers });
  const address = resolved.address;
  hops.push({ name: 'client-ip', sees: address, detail: describeProvenance(resolved.provenance, peer) });
  const note = plainHttpNote(walk);
  if (note !== null) hops.push({ name: 'route', sees: address, detail: note });
  const decision = routeRequest(chain.routes, { host: walk.host, path: walk.path, scheme: walk.scheme });
  if (decision.kind !== 'proxy') return endWithoutProxy(walk, decision, address);
  return throughPolicy(walk, decision, address);
}

/** Routing ended the request: a default backend, a 404, a 400 or a redirect. */
function endWithoutProxy(
  walk: Walk,
  decision: Exclude<RouteDecision, { kind: 'proxy' }>,
  address: string,
): Simulation {
  const { hops, host, path } = walk;
  if (decision.kind === 'not-found') {
    if (decision.backend !== null) {
      hops.push({
        name: 'route',
        sees: address,
        detail: `no rule matches ${host}${path}: default backend ${decision.backend.upstreamName}`,
      });
      hops.push({
        name: 'backend',
        sees: address,
        detail: `${decision.backend.upstreamName} (X-Real-IP ${address})`,
      });
      return end(walk, 'allowed', 200, 'default-backend', address);
    }
    // ingress-nginx's own default backend (the `_` server) is access-logged only when asked to.
    const logged =
      decision.serverName !== DEFAULT_SERVER_NAME ||
      walk.chain.topology.gateway.settings.enableAccessLogForDefaultBackend === true;
    const unlogged = logged ? '' : ' (not access-logged: enable-access-log-for-default-backend is off)';
    hops.push({
      name: 'route',
      sees: address,
      detail: `no Ingress rule matches ${host}${path}: 404${unlogged}${refusedIngressNote(walk.chain.topology.gateway, host)}`,
    });
    return end(walk, 'not-found-404', 404, 'no-route', logged ? address : null);
  }
  if (decision.kind === 'bad-request') {
    hops.push({ name: 'route', sees: address, detail: `${decision.code}: ${decision.message}: 400` });
    return end(walk, 'rejected-400', 400, decision.code, address);
  }
  if (decision.kind === 'host-redirect') {
    hops.push({
      name: 'route',
      sees: address,
      detail: `${host} is the www twin of a host with from-to-www-redirect: redirect ${decision.status} to ${decision.location}`,
    });
    return end(walk, 'redirected', decision.status, `redirect ${decision.status}`, address);
  }
  // nginx's auto_redirect: the location is named with a trailing slash the path lacks.
  const why =
    decision.phase === 'find-config' ? ` (${path} lacks its trailing slash; no access rule applies)` : '';
  hops.push({
    name: 'route',
    sees: address,
    detail: `${describeRoute(decision.route)}: redirect ${decision.status} to ${decision.location}${why}`,
  });
  return end(walk, 'redirected', decision.status, `redirect ${decision.status}`, address);
}

/** The route's access rules (and those of the other readings of the path), limits and auth, then the backend. */
function throughPolicy(
  walk: Walk,
  decision: Extract<RouteDecision, { kind: 'proxy' }>,
  address: string,
): Simulation {
  const { hops } = walk;
  const route = decision.route;
  hops.push({
    name: 'route',
    sees: address,
    detail: `${describeRoute(route)}${aliasNote(walk.host, route)} -> ${route.upstreamName}`,
  });
  const { verdict, decidedBy } = decideAccess(route, decision.guards, address);
  if (decidedBy !== route) {
    hops.push({
      name: 'policy',
      sees: address,
      detail: `a backend may read ${walk.path} as ${describeRoute(decidedBy)}: its rules apply too`,
    });
  }
  const rule = verdict.entry ? `${verdict.rule} ${verdict.entry}` : verdict.rule;
  hops.push({ name: 'policy', sees: address, detail: `${verdict.outcome}: ${verdict.detail}` });
  // Limits and auth (access-trace.ts), each named by its annotation.
  const access = traceAccess(route.location, verdict, address);
  for (const detail of access.details) hops.push({ name: 'policy', sees: address, detail });
  if (access.end !== null)
    return end(walk, access.end.outcome, access.end.status, access.end.decidedBy, address);
  if (verdict.outcome === 'deny') return end(walk, 'denied-403', 403, rule, address);
  if (verdict.outcome === 'fail-closed') return end(walk, 'fail-closed-503', 503, rule, address);
  if (route.location.defaultBackendRoot === true && walk.chain.topology.gateway.defaultBackend === null) {
    hops.push({
      name: 'route',
      sees: address,
      detail: `no Ingress rule names ${walk.host}${walk.path}: the host's root answers as the default backend, 404`,
    });
    return end(walk, 'not-found-404', 404, rule, address);
  }
  hops.push({
    name: 'backend',
    sees: address,
    detail: `${route.upstreamName}: X-Real-IP and X-Forwarded-For ${address}${canaryNote(route)}`,
  });
  const decided = access.following === null ? rule : `${rule}; then ${access.following}`;
  return end(walk, 'allowed', 200, decided, address);
}

/** "namespace/ingress host/path" of a matched route. */
/** A canary shares the location: which requests go to it instead, and the address it sees (the same). */
function canaryNote(route: MatchedRoute): string {
  const canary = route.location.canary;
  if (canary === undefined) return '';
  const when: string[] = [];
  // A refused pattern is never run: no header takes the canary then.
  if (canary.header !== null && canary.headerPatternRefused !== true) {
    const value =
      canary.headerValue ?? (canary.headerPattern !== null ? `~ ${canary.headerPattern}` : 'always');
    when.push(`header ${canary.header}: ${value}`);
  }
  if (canary.cookie !== null) when.push(`cookie ${canary.cookie}=always`);
  const total = Math.max(canary.weightTotal, 100);
  if (canary.weight > 0) when.push(`${canary.weight} of ${total} others by weight`);
  const who = `${canary.ingress.namespace}/${canary.ingress.name}`;
  return `; canary ${who} -> ${canary.backend.upstreamName} takes ${when.length > 0 ? when.join(', ') : 'no request'} (same addresses)`;
}

/** How a host reached a server it is not the name of: one of its server-alias names. */
function aliasNote(host: string, route: MatchedRoute): string {
  const aliases = route.vhost.aliases;
  if (aliases === undefined || aliases.length === 0) return '';
  const name = host.replace(/:\d+$/, '').toLowerCase();
  return name === route.serverName ? '' : ` (${name} is a server-alias of ${route.serverName})`;
}

function describeRoute(route: MatchedRoute): string {
  return `${route.location.ingress.namespace}/${route.location.ingress.name} ${route.serverName || '*'}${route.location.path}`;
}

function describeProvenance(
  provenance: { kind: string; header?: string; index?: number },
  peer: string,
): string {
  switch (provenance.kind) {
    case 'proxy-protocol':
      return 'from the PROXY header';
    case 'forwarded-header':
      return `from ${provenance.header} entry ${provenance.index} (peer ${peer} is trusted)`;
    case 'forwarded-rfc7239':
      return `from Forwarded entry ${provenance.index} (peer ${peer} is trusted)`;
    default:
      return 'the TCP peer (no trusted header says otherwise)';
  }
}
