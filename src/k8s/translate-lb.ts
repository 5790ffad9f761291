// Services of type LoadBalancer → the cloud load balancer they ask for: provider, PROXY protocol,
// client-IP preservation, target type, health check, and where `keepip up` puts it on 127.0.0.0/8.
// Each provider family reads its own annotations in src/k8s/lb/ (recognition: lb/detect.ts).
import type { ConfigIssue, LoadBalancerModel } from '../config/model.ts';
import { canonicalIp } from '../net/ip.ts';
import { detectProvider } from './lb/detect.ts';
import { readKeepipAnnotations } from './lb/keepip-annotations.ts';
import { type LbContext, lbContext, warn } from './lb/provider.ts';
import { sourceRanges } from './lb/source-ranges.ts';
import type { ServiceView } from './objects.ts';
import { compare } from './translate-services.ts';

/** Translates every LoadBalancer Service, numbering them in namespace/name order for loopback defaults. */
export function translateLoadBalancers(
  services: readonly ServiceView[],
  issues: ConfigIssue[],
): LoadBalancerModel[] {
  const lbs = services
    .filter((s) => s.type === 'LoadBalancer')
    .sort((a, b) => compare(`${a.meta.namespace}/${a.meta.name}`, `${b.meta.namespace}/${b.meta.name}`));
  return lbs.map((svc, i) => translateLoadBalancer(svc, i + 1, issues));
}

/** The loopback address `keepip up` gives the N-th load balancer when its status has no IP. */
export function defaultListenAddress(n: number): string {
  return `127.0.10.${n}`;
}
/** The LB's own private address for the N-th load balancer, unless keepip.dev/lb-source-address says. */
export function defaultSourceAddress(n: number): string {
  return `127.0.11.${n}`;
}
const MAX_LOOPBACK_LBS = 254;

/** The N-th load balancer (1-based, in namespace/name order): its provider's settings, then where it runs. */
export function translateLoadBalancer(svc: ServiceView, n: number, issues: ConfigIssue[]): LoadBalancerModel {
  const ctx = lbContext(svc, issues);
  const choice = detectProvider(svc, issues);
  const settings = choice.settings(ctx);
  const slot = loopbackSlot(ctx, n);
  const listenAddress = statusAddress(ctx, defaultListenAddress(slot));
  const keepip = readKeepipAnnotations(ctx, defaultSourceAddress(slot));
  const ranges = sourceRanges(ctx);
  return {
    id: `${svc.meta.namespace}/${svc.meta.name}`,
    service: { namespace: svc.meta.namespace, name: svc.meta.name },
    origin: svc.origin,
    provider: choice.provider,
    scheme: settings.scheme,
    targetType: settings.targetType,
    proxyProtocol: settings.proxyProtocol,
    preserveClientIp: settings.preserveClientIp,
    ...(settings.unhealthyConnectionTermination === undefined
      ? {}
      : { unhealthyConnectionTermination: settings.unhealthyConnectionTermination }),
    listenAddress,
    sourceAddress: keepip.sourceAddress,
    ports: svc.ports,
    externalTrafficPolicy: svc.externalTrafficPolicy,
    healthCheckNodePort: svc.healthCheckNodePort,
    healthCheck: settings.healthCheck,
    loadBalancerSourceRanges: ranges.cidrs,
    ...(ranges.invalid.length > 0 ? { invalidSourceRanges: ranges.invalid } : {}),
    vpcEndpointId: keepip.vpcEndpointId,
    statusHasHostnameOrProxyMode: svc.statusIngress.some(
      (s) => (s.hostname ?? '') !== '' || s.ipMode === 'Proxy',
    ),
    selector: svc.selector,
    clientPath: keepip.clientPath,
    annotations: svc.meta.annotations,
  };
}

/** N for the default loopback addresses; past 254 they run out (an error) and the last one repeats. */
function loopbackSlot(ctx: LbContext, n: number): number {
  if (n > MAX_LOOPBACK_LBS) {
    warn(
      ctx,
      'TOO_MANY_LOAD_BALANCERS',
      null,
      `more than ${MAX_LOOPBACK_LBS} load balancers: the default loopback addresses run out`,
      'error',
    );
  }
  return Math.min(n, MAX_LOOPBACK_LBS);
}

/** Where clients connect: status.loadBalancer.ingress[0].ip, else the loopback default. */
function statusAddress(ctx: LbContext, fallback: string): string {
  const statusIp = ctx.svc.statusIngress[0]?.ip ?? null;
  if (statusIp === null || statusIp === '') return fallback;
  const ip = canonicalIp(statusIp);
  if (ip !== null) return ip;
  warn(
    ctx,
    'MANIFEST_INVALID_FIELD',
    'status.loadBalancer.ingress[0].ip',
    `${JSON.stringify(statusIp)} is not an IP address; using ${fallback}`,
    'error',
  );
  return fallback;
}
