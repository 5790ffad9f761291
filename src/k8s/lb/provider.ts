// What every load balancer provider module is given (one Service, its annotations, the issue list)
// and what it answers (its settings), with the pieces several providers share.
import type {
  ConfigIssue,
  HealthCheckModel,
  LbProvider,
  LoadBalancerModel,
  ProxyProtocolVersion,
} from '../../config/model.ts';
import { annotationField } from '../field-path.ts';
import type { ServiceView } from '../objects.ts';
import { describeOrigin } from '../reader.ts';
import { parseGoBool } from '../values.ts';

/** Where core Kubernetes and most clouds put their Service annotations. */
export const SVC = 'service.beta.kubernetes.io/';

/** One LoadBalancer Service being translated. */
export interface LbContext {
  svc: ServiceView;
  issues: ConfigIssue[];
  annotations: Readonly<Record<string, string>>;
}

export function lbContext(svc: ServiceView, issues: ConfigIssue[]): LbContext {
  return { svc, issues, annotations: svc.meta.annotations };
}

/** Reports an issue on the Service; `key` is an annotation name, a `spec.`/`status.` path, or null. */
export function warn(
  ctx: LbContext,
  code: ConfigIssue['code'],
  key: string | null,
  message: string,
  severity: ConfigIssue['severity'] = 'warning',
): void {
  const field =
    key === null ? null : key.startsWith('spec.') || key.startsWith('status.') ? key : annotationField(key);
  ctx.issues.push({
    severity,
    code,
    message: `${describeOrigin(ctx.svc.origin)}${field ? ` ${field}` : ''}: ${message}`,
    origin: ctx.svc.origin,
    ...(field ? { field } : {}),
  });
}

/** What a provider decides about one load balancer. */
export interface ProviderSettings {
  scheme: LoadBalancerModel['scheme'];
  targetType: LoadBalancerModel['targetType'];
  proxyProtocol: ProxyProtocolVersion | null;
  preserveClientIp: boolean;
  healthCheck: HealthCheckModel;
  /** LoadBalancerModel's; absent: true. */
  unhealthyConnectionTermination?: boolean;
}

/** A provider whose settings are a PROXY switch and an internal flag (every one but AWS). */
export type HostedProviderName = Exclude<LbProvider, 'aws-nlb' | 'aws-elb'>;

/** What a hosted provider's annotations say. */
export interface HostedReading {
  proxyProtocol: ProxyProtocolVersion | null;
  internal: boolean;
}

export interface HostedProvider {
  name: HostedProviderName;
  /** The Service is this provider's when it has an annotation with one of these prefixes. */
  annotationPrefixes: readonly string[];
  /** Or when its spec.loadBalancerClass says so. */
  recognisesClass?: (loadBalancerClass: string) => boolean;
  /** Pass-through balancers keep the client address; proxies replace it with their own. */
  keepsClientAddress: boolean;
  read(ctx: LbContext): HostedReading;
}

/** A hosted provider's settings: node targets, its own PROXY switch, the default health check. */
export function hostedSettings(ctx: LbContext, provider: HostedProvider): ProviderSettings {
  const { proxyProtocol, internal } = provider.read(ctx);
  return {
    scheme: internal ? 'internal' : 'internet-facing',
    targetType: 'instance',
    proxyProtocol,
    preserveClientIp: provider.keepsClientAddress,
    healthCheck:
      ctx.svc.externalTrafficPolicy === 'Local' ? localHealthCheck(ctx.svc) : defaultTcpHealthCheck(),
  };
}

/** A Go boolean annotation; absent or invalid (an issue) is false. */
export function boolAnnotation(ctx: LbContext, key: string): boolean {
  const v = ctx.annotations[key];
  if (v === undefined) return false;
  const b = parseGoBool(v);
  if (b === null)
    warn(ctx, 'INVALID_LB_ANNOTATION', key, `${JSON.stringify(v)} is not true or false; treated as false`);
  return b === true;
}

/** TCP to the traffic port, AWS's target-group defaults (interval 10s, timeout 10s, 3/3). */
export function defaultTcpHealthCheck(): HealthCheckModel {
  return {
    protocol: 'tcp',
    port: 'traffic-port',
    path: '/',
    intervalMs: 10_000,
    timeoutMs: 10_000,
    healthyThreshold: 3,
    unhealthyThreshold: 3,
  };
}

/** externalTrafficPolicy Local with node targets: kube-proxy's health check node port, HTTP /healthz (rule A7). */
export function localHealthCheck(svc: ServiceView): HealthCheckModel {
  return {
    protocol: 'http',
    port: svc.healthCheckNodePort ?? 'traffic-port',
    path: '/healthz',
    intervalMs: 10_000,
    timeoutMs: 6_000,
    healthyThreshold: 2,
    unhealthyThreshold: 2,
  };
}
