// Walks the chain for one client: which address each hop sees, and where the request ends. The
// gateway part calls the gateway's own resolver, router and access policy, so the prediction is the
// gateway's decision, not a copy of it.
import { isRoutedPath } from '../config/client-path.ts';
import type { Topology } from '../config/model.ts';
import { decideAccess, routeRequest } from '../gateway/router.ts';
import { traceAccess } from './access-trace.ts';
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

export function simulateOnChain(chain: Chain, request: SimulateRequest): Simulation {
  const client = canonicalIp(request.client);
  if (client === null) throw new Error(`DOCTOR_BAD_CLIENT: "${request.client}" is not an IP address`);
  const host = request.host ?? defaultHost(chain.topology);
  const path = request.path ?? '/';
  const scheme = request.scheme ?? 'http';
  const via = chain.via;
  const hops: Hop[] = [];
  const settings = chain.topology.gateway.settings;
  const end = (
    outcome: Outcome,
    status: number | null,
    decidedBy: string,
    logs: string | null,
  ): Simulation => ({
    client,
    host,
    path,
    scheme,
    via,
    hops,
    outcome,
    status,
    decidedBy,
    gatewayLogsAddress: logs,
  });

  hops.push({ name: 'client', sees: client, detail: `connects over ${describeVia(via)}` });
  if (isRoutedPath(via)) {
    hops.push({
      name: 'network',
      sees: client,
      detail: `${describeVia(via)} routes the packets to the LB with the client's address`,
    });
  }

  // Load balancer and kube-proxy: the TCP peer the gateway will see, and the PROXY header (if any).
  let peer = client;
  let proxySource: string | null = null;
  let sentHeader: string | null = null;
  const lb = chain.lb;
  if (lb !== null && !passesLoadBalancer(chain)) {
    hops.push({
      name: 'load-balancer',
      sees: null,
      detail: `skipped: kube-proxy sends in-cluster traffic for the LB address ${lb.listenAddress} straight to the endpoints, so no PROXY header is added (K3)`,
    });
  } else if (lb !== null) {
    if (!inList(lb.loadBalancerSourceRanges, client)) {
      hops.push({
        name: 'load-balancer',
        sees: client,
        detail: `drops the connection: ${client} is outside loadBalancerSourceRanges ${lb.loadBalancerSourceRanges.join(', ')}`,
      });
      return end('unreachable', null, 'loadBalancerSourceRanges', null);
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
    if (
      lb.provider === 'aws-nlb' &&
      lb.scheme === 'internal' &&
      preservation.preserved &&
      targets.includes(client)
    ) {
      return end('unreachable', null, 'A8 hairpin', null);
    }
    if (lb.proxyProtocol) {
      sentHeader = lb.proxyProtocol;
      proxySource = client;
    }
    peer = targetSide;
    if (chain.kubeProxy !== null) {
      const node = chain.kubeProxy.nodes[0];
      if (chain.kubeProxy.policy === 'Cluster' && node !== undefined) {
        hops.push({
          name: 'kube-proxy',
          sees: targetSide,
          detail: `NodePort with externalTrafficPolicy: Cluster: SNAT to the node address ${node.address}${chain.kubeProxy.nodes.length > 1 ? ' (or another node)' : ''} (K1)`,
        });
        peer = node.address;
      } else {
        hops.push({
          name: 'kube-proxy',
          sees: targetSide,
          detail: 'NodePort with externalTrafficPolicy: Local: the address passes unchanged (K2)',
        });
      }
    }
  }
  if (chain.gatewayService !== null) {
    const listed = Object.values(chain.gatewayService.endpoints).flat();
    if (listed.length > 0 && chain.gatewayEndpoints.length === 0) {
      hops.push({ name: 'gateway', sees: null, detail: 'no ready gateway endpoint behind the Service' });
      return end('unreachable', null, 'no-ready-endpoint', null);
    }
  }

  // Gateway: the PROXY reader and its trust check.
  if (settings.useProxyProtocol) {
    if (sentHeader === null) {
      hops.push({
        name: 'gateway',
        sees: peer,
        detail:
          'expects a PROXY header (use-proxy-protocol) but the request starts without one: closed without a response (G3)',
      });
      return end('connection-closed', null, via === 'in-cluster' && lb !== null ? 'K3' : 'G3', null);
    }
    if (!chain.trusted.has(peer)) {
      hops.push({
        name: 'gateway',
        sees: peer,
        detail: `reads a PROXY ${sentHeader} header from ${peer}, which is outside proxy-real-ip-cidr ${settings.trustedCidrs.join(', ')}: connection closed (keepip; ingress-nginx would ignore the header, G5)`,
      });
      return end('connection-closed', null, 'G5 untrusted peer', null);
    }
    hops.push({
      name: 'gateway',
      sees: peer,
      detail: `accepts the PROXY ${sentHeader} header from trusted ${peer}: client ${proxySource}`,
    });
  } else if (sentHeader !== null) {
    hops.push({
      name: 'gateway',
      sees: peer,
      detail: `receives a PROXY ${sentHeader} header it does not expect (use-proxy-protocol is off): 400 for every request (G2)`,
    });
    return end('rejected-400', 400, 'G2', peer);
  } else {
    hops.push({ name: 'gateway', sees: peer, detail: 'no PROXY protocol on either side: the TCP peer' });
  }

  const headers: Record<string, string> = {};
  if (request.forwardedFor !== undefined)
    headers[settings.forwardedForHeader.toLowerCase()] = request.forwardedFor;
  const resolved = chain.resolver.resolve({ peerAddress: peer, proxySource, headers });
  const address = resolved.address;
  hops.push({ name: 'client-ip', sees: address, detail: describeProvenance(resolved.provenance, peer) });

  const decision = routeRequest(chain.routes, { host, path, scheme });
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
      return end('allowed', 200, 'default-backend', address);
    }
    hops.push({ name: 'route', sees: address, detail: `no Ingress rule matches ${host}${path}: 404` });
    return end('not-found-404', 404, 'no-route', address);
  }
  if (decision.kind === 'bad-request') {
    hops.push({ name: 'route', sees: address, detail: `${decision.code}: ${decision.message}: 400` });
    return end('rejected-400', 400, decision.code, address);
  }
  const route = decision.route;
  const where = `${route.location.ingress.namespace}/${route.location.ingress.name} ${route.serverName || '*'}${route.location.path}`;
  if (decision.kind === 'redirect') {
    hops.push({
      name: 'route',
      sees: address,
      detail: `${where}: redirect ${decision.status} to ${decision.location}`,
    });
    return end('redirected', decision.status, `redirect ${decision.status}`, address);
  }
  hops.push({ name: 'route', sees: address, detail: `${where} -> ${route.upstreamName}` });
  const { verdict, decidedBy } = decideAccess(route, decision.guards, address);
  if (decidedBy !== route) {
    const other = `${decidedBy.location.ingress.namespace}/${decidedBy.location.ingress.name} ${decidedBy.serverName || '*'}${decidedBy.location.path}`;
    hops.push({
      name: 'policy',
      sees: address,
      detail: `a backend may read ${path} as ${other}: its rules apply too`,
    });
  }
  const rule = verdict.entry ? `${verdict.rule} ${verdict.entry}` : verdict.rule;
  hops.push({ name: 'policy', sees: address, detail: `${verdict.outcome}: ${verdict.detail}` });
  // Limits and auth (access-trace.ts), each named by its annotation.
  const access = traceAccess(route.location, verdict, address);
  for (const detail of access.details) hops.push({ name: 'policy', sees: address, detail });
  if (access.end !== null) return end(access.end.outcome, access.end.status, access.end.decidedBy, address);
  if (verdict.outcome === 'deny') return end('denied-403', 403, rule, address);
  if (verdict.outcome === 'fail-closed') return end('fail-closed-503', 503, rule, address);
  hops.push({
    name: 'backend',
    sees: address,
    detail: `${route.upstreamName}: X-Real-IP and X-Forwarded-For ${address}`,
  });
  return end('allowed', 200, access.following === null ? rule : `${rule}; then ${access.following}`, address);
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
