// The hop chain a Topology describes: client -> [network path] -> load balancer -> kube-proxy (NodePort,
// instance targets only: K4) -> gateway (PROXY reader, trust, client-IP resolution) -> route -> policy
// -> backend. Built once per doctor run; simulate.ts walks it for one client and the rules read it.
// Pure: the gateway's own modules (CidrSet, client-IP resolver, router) decide, so the doctor and the
// running gateway cannot disagree.
import { isRoutedPath } from '../config/client-path.ts';
import { findService, sameRef } from '../config/lookup.ts';
import { isAwsProvider } from '../config/providers.ts';
import type { EndpointModel, LoadBalancerModel, NodeModel, ServiceModel, Topology } from '../config/model.ts';
import { type CompiledRoutes, compileRoutes } from '../gateway/router.ts';
import { CidrSet } from '../net/cidr-set.ts';
import { createClientIpResolver } from '../net/client-ip.ts';
import { addressFamily } from '../net/ip.ts';
import {
  FLAG_UNKNOWN,
  type PassthroughFlag,
  type PassthroughFlags,
  type PassthroughHost,
  passthroughHosts,
} from './passthrough.ts';
import { NO_STREAM_SERVICES, type StreamServices, type StreamServicesOf } from './stream-services.ts';
import type { ClientPath } from './types.ts';

export interface ChainOptions {
  /** `--via`; overrides the LB's keepip.dev/client-path annotation. */
  via?: ClientPath;
  /** The LB to diagnose ("namespace/name"); default: the controller's LoadBalancer Service. */
  loadBalancer?: string;
  /**
   * --enable-ssl-passthrough as known: one answer (the doctor's flag), or each Ingress's (the args of
   * the controller that serves its class: passthroughFlagsOf); default: from the model.
   */
  sslPassthrough?: PassthroughFlag | PassthroughFlags;
  /** tcp-services and udp-services of the controller behind the LB (streamServicesOf); default: none known. */
  streamServices?: StreamServicesOf;
}

export type ViaSource = 'option' | 'annotation' | 'vpc-endpoint' | 'default';

export type ClientIpResolver = ReturnType<typeof createClientIpResolver>;

export interface Chain {
  topology: Topology;
  via: ClientPath;
  viaSource: ViaSource;
  lb: LoadBalancerModel | null;
  /** The Service behind the LB (the gateway's), when it is in the manifests. */
  gatewayService: ServiceModel | null;
  /** Ready endpoints of that Service; empty when the manifests list none. */
  gatewayEndpoints: readonly EndpointModel[];
  /** Present for instance targets (the LB sends to NodePorts); absent for ip targets (K4) and no LB. */
  kubeProxy: { policy: 'Cluster' | 'Local'; nodes: readonly NodeModel[] } | null;
  trusted: CidrSet;
  resolver: ClientIpResolver;
  routes: CompiledRoutes;
  /** --enable-ssl-passthrough for each Ingress, as the options or the model say. */
  passthroughFlags: PassthroughFlags;
  /** Hosts that ask for ssl-passthrough, and what each gets (passthrough.ts). */
  passthrough: readonly PassthroughHost[];
  /** The controller's tcp-services and udp-services entries and the LB port of each. */
  streamServices: StreamServices;
}

export type ChainResult =
  | { ok: true; chain: Chain }
  | { ok: false; error: { code: string; message: string } };

/** Picks the LB in front of the gateway: the one asked for, else a controller Service, else the first. */
export function selectLoadBalancer(
  topology: Topology,
  wanted?: string,
): LoadBalancerModel | null | undefined {
  if (wanted !== undefined) return topology.loadBalancers.find((lb) => lb.id === wanted);
  const controller = topology.loadBalancers.find((lb) =>
    topology.gateway.controllerServices.some((ref) => sameRef(ref, lb.service)),
  );
  return controller ?? topology.loadBalancers[0] ?? null;
}

export function buildChain(topology: Topology, options: ChainOptions = {}): ChainResult {
  const lb = selectLoadBalancer(topology, options.loadBalancer);
  if (lb === undefined) {
    const known = topology.loadBalancers.map((l) => l.id).join(', ') || 'none';
    return {
      ok: false,
      error: {
        code: 'DOCTOR_UNKNOWN_LB',
        message: `no LoadBalancer Service "${options.loadBalancer}" in the manifests (known: ${known})`,
      },
    };
  }
  const settings = topology.gateway.settings;
  const built = CidrSet.build(settings.trustedCidrs);
  if (!built.ok) {
    return {
      ok: false,
      error: {
        code: 'DOCTOR_BAD_TRUSTED_CIDRS',
        message: `proxy-real-ip-cidr: ${built.error.message}`,
      },
    };
  }
  const trusted = built.set;
  const resolver = createClientIpResolver({ ...settings, trusted }); // the ConfigMap's switches, by name

  let via: ClientPath = 'direct';
  let viaSource: ViaSource = 'default';
  const annotated = lb?.clientPath ?? undefined;
  if (options.via !== undefined) {
    via = options.via;
    viaSource = 'option';
  } else if (annotated !== undefined) {
    via = annotated;
    viaSource = 'annotation';
  } else if (lb?.vpcEndpointId) {
    via = 'privatelink';
    viaSource = 'vpc-endpoint';
  }

  const gatewayService = lb ? (findService(topology.services, lb.service) ?? null) : null;
  const gatewayEndpoints = gatewayService
    ? Object.values(gatewayService.endpoints)
        .flat()
        .filter((e) => e.ready)
    : [];
  const kubeProxy =
    lb && lb.targetType === 'instance' ? { policy: lb.externalTrafficPolicy, nodes: topology.nodes } : null;

  const given = options.sslPassthrough ?? flagFromModel(topology);
  const passthroughFlags: PassthroughFlags = typeof given === 'function' ? given : () => given;
  return {
    ok: true,
    chain: {
      passthroughFlags,
      passthrough: passthroughHosts(topology, passthroughFlags),
      streamServices: options.streamServices?.(lb) ?? NO_STREAM_SERVICES,
      topology,
      via,
      viaSource,
      lb,
      gatewayService,
      gatewayEndpoints,
      kubeProxy,
      trusted,
      resolver,
      routes: compileRoutes(topology.gateway),
    },
  };
}

/** Without a flag given: an active passthrough host shows it is on; otherwise it is unknown. */
function flagFromModel(topology: Topology): PassthroughFlag {
  if (topology.gateway.virtualHosts.some((v) => v.sslPassthrough === true))
    return { enabled: true, source: 'the model (a passthrough host is active)' };
  return FLAG_UNKNOWN;
}

/**
 * True when in-cluster callers of the LB address go through the LB: its status has a hostname or
 * ipMode: Proxy. AWS load balancers always do: the AWS controllers publish the LB's DNS name.
 */
export function inClusterGoesThroughLb(lb: LoadBalancerModel): boolean {
  return lb.statusHasHostnameOrProxyMode || isAwsProvider(lb.provider);
}

/** True when traffic from this client path goes through the LB (K3: in-cluster callers may skip it). */
export function passesLoadBalancer(chain: Chain): boolean {
  if (chain.lb === null) return false;
  if (chain.via !== 'in-cluster') return true;
  return inClusterGoesThroughLb(chain.lb);
}

/**
 * Whether the LB's targets see the client's own address at the TCP level, and if not, which rule says
 * so. A3: preservation off; A4: a transit gateway, VPN, PrivateLink or IPv4<->IPv6 translation on an
 * AWS LB loses it whatever the attribute says.
 */
export function lbPreservation(
  chain: Chain,
  client: string | null,
): { preserved: boolean; rule: 'A2' | 'A3' | 'A4'; why: string } {
  const lb = chain.lb;
  if (lb === null) return { preserved: true, rule: 'A2', why: 'no load balancer' };
  if (!lb.preserveClientIp) {
    const why =
      lb.provider === 'aws-nlb'
        ? `client-IP preservation is off (${lb.targetType} targets${lb.targetType === 'ip' ? ': off by default, A1' : ''})`
        : `the ${lb.provider} load balancer connects from its own address`;
    return { preserved: false, rule: 'A3', why };
  }
  if (isAwsProvider(lb.provider)) {
    if (isRoutedPath(chain.via)) {
      return {
        preserved: false,
        rule: 'A4',
        why: `the client arrives through ${describeVia(chain.via)}, where AWS cannot preserve its address`,
      };
    }
    if (client !== null && addressFamily(client) !== addressFamily(lb.sourceAddress)) {
      return {
        preserved: false,
        rule: 'A4',
        why: 'the client address is translated between IPv4 and IPv6, which loses it',
      };
    }
  }
  return { preserved: true, rule: 'A2', why: 'client-IP preservation keeps the address' };
}

export function describeVia(via: ClientPath): string {
  switch (via) {
    case 'direct':
      return 'a direct route';
    case 'vpn':
      return 'a VPN';
    case 'transit-gateway':
      return 'a transit gateway';
    case 'privatelink':
      return 'PrivateLink (a VPC endpoint)';
    case 'in-cluster':
      return 'the cluster network';
  }
}

/** The peer addresses the gateway can see for external clients: the client itself, or a fixed set. */
export type GatewayPeers =
  | { kind: 'client'; why: string }
  | { kind: 'fixed'; addresses: readonly string[]; why: string };

export function gatewayPeers(chain: Chain, client: string | null = null): GatewayPeers {
  const lb = chain.lb;
  if (lb === null) return { kind: 'client', why: 'no load balancer in front of the gateway' };
  if (!passesLoadBalancer(chain)) return { kind: 'client', why: 'in-cluster callers skip the LB (K3)' };
  const preservation = lbPreservation(chain, client);
  if (chain.kubeProxy !== null && chain.kubeProxy.policy === 'Cluster') {
    const nodes = chain.kubeProxy.nodes.map((n) => n.address);
    if (nodes.length > 0)
      return { kind: 'fixed', addresses: nodes, why: 'kube-proxy SNATs to a node address (K1)' };
  }
  if (preservation.preserved) return { kind: 'client', why: preservation.why };
  return { kind: 'fixed', addresses: [lb.sourceAddress], why: `${preservation.why} (${preservation.rule})` };
}

/** Host CIDR of an address: /32 for IPv4, /128 for IPv6. */
export function hostCidr(address: string): string {
  return `${address}/${addressFamily(address) === 4 ? 32 : 128}`;
}
