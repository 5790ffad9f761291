// The fixes several findings share, computed from the chain rather than written out per rule: "make
// the LB send PROXY, make the gateway expect it, and trust exactly the peers it will come from".
// Trust is derived by re-walking the chain as it will be after the fix, so the patch never trusts
// addresses a client controls.
import type {
  LbProvider,
  LoadBalancerModel,
  ObjectRef,
  ProxyProtocolVersion,
  Topology,
} from '../config/model.ts';
import { coversEveryAddress } from '../net/cidr.ts';
import { type Chain, gatewayPeers, hostCidr } from './chain.ts';
import { annotate, patchConfigMap, patchService } from './fix.ts';
import { entryValue, type StreamEntry } from './stream-services.ts';
import type { Fix, FixPatch } from './types.ts';

const AWS_PROXY = 'service.beta.kubernetes.io/aws-load-balancer-proxy-protocol';
export const AWS_TG_ATTRIBUTES = 'service.beta.kubernetes.io/aws-load-balancer-target-group-attributes';

/** Each provider's PROXY protocol switch (docs/manifests.md, "Other providers"); null: it has none. */
export function proxySwitch(
  provider: LbProvider,
): { annotations: Record<string, string>; version: ProxyProtocolVersion } | null {
  switch (provider) {
    case 'aws-nlb':
      return { annotations: { [AWS_PROXY]: '*' }, version: 'v2' };
    case 'aws-elb':
      return { annotations: { [AWS_PROXY]: '*' }, version: 'v1' };
    case 'digitalocean':
      return {
        annotations: { 'service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol': 'true' },
        version: 'v1',
      };
    case 'hetzner':
      return { annotations: { 'load-balancer.hetzner.cloud/uses-proxyprotocol': 'true' }, version: 'v1' };
    case 'linode':
      return {
        annotations: { 'service.beta.kubernetes.io/linode-loadbalancer-default-proxy-protocol': 'v2' },
        version: 'v2',
      };
    case 'scaleway':
      return {
        annotations: { 'service.beta.kubernetes.io/scw-loadbalancer-proxy-protocol-v2': 'true' },
        version: 'v2',
      };
    case 'openstack':
      return { annotations: { 'loadbalancer.openstack.org/proxy-protocol': 'v2' }, version: 'v2' };
    case 'oracle':
      return {
        annotations: {
          'service.beta.kubernetes.io/oci-load-balancer-connection-proxy-protocol-version': '2',
        },
        version: 'v2',
      };
    case 'azure':
      return {
        annotations: { 'service.beta.kubernetes.io/azure-pls-proxy-protocol': 'true' },
        version: 'v2',
      };
    default:
      return null;
  }
}

/** The controller ConfigMap the gateway reads (settings.configMap, else ingress-nginx's default name). */
export function configMapRef(topology: Topology): ObjectRef {
  return (
    topology.gateway.settings.configMap ?? { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' }
  );
}

/** Rewrites an AWS target-group-attributes value with preserve_client_ip off, keeping the other attributes. */
export function withPreservationOff(current: string | undefined): string {
  const kept = (current ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(
      (s) =>
        s !== '' &&
        !s.startsWith('preserve_client_ip.enabled=') &&
        !s.startsWith('proxy_protocol_v2.enabled='),
    );
  return [...kept, 'preserve_client_ip.enabled=false'].join(',');
}

/**
 * The proxy-real-ip-cidr value that trusts the given peers: the current narrowed list plus what is
 * missing, or only the peers when the current list trusts everyone. Null when nothing needs to change.
 */
export function trustedCidrsFor(chain: Chain, peers: readonly string[]): string[] | null {
  const settings = chain.topology.gateway.settings;
  const everyone = coversEveryAddress(settings.trustedCidrs);
  const missing = peers.filter((p) => everyone || !chain.trusted.has(p));
  if (missing.length === 0) return null;
  const base = everyone ? [] : [...settings.trustedCidrs];
  for (const p of missing) {
    const cidr = hostCidr(p);
    if (!base.includes(cidr)) base.push(cidr);
  }
  return base;
}

export interface ProxyPlanOptions {
  /** Raw annotations of the LB Service, so attribute strings are edited rather than replaced. */
  lbAnnotations?: Readonly<Record<string, string>>;
  /** Turn AWS client-IP preservation off even where the peers would otherwise be fixed (A8). */
  preservationOff?: boolean;
}

/**
 * PROXY protocol end to end: the LB's switch, preservation or externalTrafficPolicy changed where the
 * gateway would otherwise see the client itself (so trust can be narrowed), use-proxy-protocol, and
 * proxy-real-ip-cidr set to the peers of the chain after the change. Null when the LB cannot send PROXY.
 */
export function proxyProtocolPlan(chain: Chain, options: ProxyPlanOptions = {}): Fix | null {
  const lb = chain.lb;
  if (lb === null) return null;
  const sw = proxySwitch(lb.provider);
  if (sw === null) return null;
  const patches: FixPatch[] = [];
  const annotations: Record<string, string | null> = {};
  const steps: string[] = [];
  let after: LoadBalancerModel = lb;
  if (lb.proxyProtocol === null) {
    Object.assign(annotations, sw.annotations);
    after = { ...after, proxyProtocol: sw.version };
    steps.push(`make the LB send PROXY ${sw.version}`);
  }
  const isAws = lb.provider === 'aws-nlb';
  if (isAws && lb.preserveClientIp && (options.preservationOff || lb.targetType === 'ip')) {
    annotations[AWS_TG_ATTRIBUTES] = withPreservationOff(options.lbAnnotations?.[AWS_TG_ATTRIBUTES]);
    after = { ...after, preserveClientIp: false };
    steps.push('turn client-IP preservation off so that only the LB connects to the gateway');
  }
  if (Object.keys(annotations).length > 0) patches.push(annotate('Service', lb.service, annotations));
  // The switch covers every port: SSH and other tcp-services entries must read the header too.
  const streams = after.proxyProtocol === null ? null : tcpServicesProxyPatch(chain, true);
  if (streams !== null) {
    patches.push(streams.patch);
    steps.push(`read it on the tcp-services entries it carries (${streams.ports.join(', ')}: …:PROXY)`);
  }
  // Instance targets with Local: the gateway would see clients directly (no narrow trust possible), and
  // PROXY health checks to healthCheckNodePort fail (A7). Cluster fixes both.
  if (
    lb.targetType === 'instance' &&
    lb.externalTrafficPolicy === 'Local' &&
    (after.preserveClientIp || after.proxyProtocol)
  ) {
    patches.push(patchService(lb.service, { spec: { externalTrafficPolicy: 'Cluster' } }));
    after = { ...after, externalTrafficPolicy: 'Cluster' };
    steps.push('use externalTrafficPolicy: Cluster (A7)');
  }
  // Peers as external clients see them (in-cluster callers skipping the LB are IN_CLUSTER_BYPASS's business).
  const afterChain: Chain = {
    ...chain,
    via: chain.via === 'in-cluster' ? 'direct' : chain.via,
    lb: after,
    kubeProxy:
      after.targetType === 'instance'
        ? { policy: after.externalTrafficPolicy, nodes: chain.topology.nodes }
        : null,
  };
  const data: Record<string, string | null> = {};
  if (!chain.topology.gateway.settings.useProxyProtocol) {
    data['use-proxy-protocol'] = 'true';
    steps.push('make the gateway expect it');
  }
  const peers = gatewayPeers(afterChain);
  if (peers.kind === 'fixed') {
    const cidrs = trustedCidrsFor(chain, peers.addresses);
    if (cidrs !== null) {
      data['proxy-real-ip-cidr'] = cidrs.join(',');
      steps.push(`accept headers only from ${peers.addresses.join(', ')}`);
    }
  }
  if (Object.keys(data).length > 0) patches.push(patchConfigMap(configMapRef(chain.topology), data));
  if (patches.length === 0) return null;
  return { summary: `${capitalise(steps.join(', '))}.`, patches };
}

/** The tcp-services entries the LB carries whose `:PROXY` differs from `decode`. */
export function entriesToSwitch(chain: Chain, decode: boolean): StreamEntry[] {
  const set = chain.streamServices.tcp;
  return set === null ? [] : set.entries.filter((e) => e.lbPort !== null && e.decode !== decode);
}

/** Sets `:PROXY` on (or off) for those entries; null when none differs. */
export function tcpServicesProxyPatch(
  chain: Chain,
  decode: boolean,
): { patch: FixPatch; ports: number[] } | null {
  const set = chain.streamServices.tcp;
  const entries = entriesToSwitch(chain, decode);
  if (set === null || entries.length === 0) return null;
  const data = Object.fromEntries(entries.map((e) => [String(e.port), entryValue(e, decode)]));
  return { patch: patchConfigMap(set.configMap, data), ports: entries.map((e) => e.port) };
}

export function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
