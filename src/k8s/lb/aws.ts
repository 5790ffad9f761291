// The AWS family: Network Load Balancers (made by the AWS Load Balancer Controller or the in-tree
// provider) and the legacy Classic ELB. How a Service asks for one, and what its annotations say:
// target type, scheme, PROXY protocol, client-address preservation (rule A1), health check.
import type { HealthCheckModel, LoadBalancerModel, ProxyProtocolVersion } from '../../config/model.ts';
import { parseGoBool } from '../values.ts';
import { AWS, checkAwsAnnotations } from './aws-annotations.ts';
import { awsHealthCheck } from './aws-health-check.ts';
import {
  type LbContext,
  localHealthCheck,
  defaultTcpHealthCheck,
  type ProviderSettings,
  warn,
} from './provider.ts';

export type AwsProvider = 'aws-nlb' | 'aws-elb';

export interface AwsChoice {
  provider: AwsProvider;
  /** True for NLBs made by the AWS Load Balancer Controller (type external/nlb-ip or the class). */
  awsController: boolean;
}

/**
 * The AWS balancer a Service asks for, or null: the controller's NLB (its class, or type
 * external/nlb-ip), the in-tree NLB (type nlb), else a Classic ELB for any other aws-load-balancer-*
 * annotation.
 */
export function recogniseAws(ctx: LbContext): AwsChoice | null {
  const type = ctx.annotations[`${AWS}type`];
  if (ctx.svc.loadBalancerClass === 'service.k8s.aws/nlb')
    return { provider: 'aws-nlb', awsController: true };
  if (type === 'external' || type === 'nlb-ip') return { provider: 'aws-nlb', awsController: true };
  if (type === 'nlb') return { provider: 'aws-nlb', awsController: false };
  if (!Object.keys(ctx.annotations).some((k) => k.startsWith(AWS))) return null;
  if (type !== undefined)
    warn(
      ctx,
      'CONFLICTING_LB_ANNOTATIONS',
      `${AWS}type`,
      `unknown load balancer type ${JSON.stringify(type)} (external, nlb or nlb-ip); treated as a Classic ELB`,
    );
  return { provider: 'aws-elb', awsController: false };
}

/** Reports the annotations neither provider reads, then reads the chosen one's settings. */
export function awsSettings(ctx: LbContext, choice: AwsChoice): ProviderSettings {
  checkAwsAnnotations(ctx);
  return choice.provider === 'aws-nlb' ? nlbSettings(ctx, choice.awsController) : elbSettings(ctx);
}

function nlbSettings(ctx: LbContext, awsController: boolean): ProviderSettings {
  const targetType = nlbTargetType(ctx);
  // The controller defaults to internal; the in-tree NLB (type nlb) to internet-facing.
  const scheme = awsScheme(ctx, awsController ? 'internal' : 'internet-facing');
  const tgKey = `${AWS}target-group-attributes`;
  const attrs = parseStringMap(ctx, tgKey);
  const ppAttr = attributeBool(ctx, attrs, 'proxy_protocol_v2.enabled', tgKey);
  const preserveAttr = attributeBool(ctx, attrs, 'preserve_client_ip.enabled', tgKey);
  const terminate = attributeBool(
    ctx,
    attrs,
    'target_health_state.unhealthy.connection_termination.enabled',
    tgKey,
  );
  const proxyProtocol = nlbProxyProtocol(ctx, ppAttr);
  // Rule A1: instance targets preserve the client address by default, ip targets (TCP/TLS) do not.
  const preserveClientIp = preserveAttr ?? targetType === 'instance';
  const defaults =
    targetType === 'instance' && ctx.svc.externalTrafficPolicy === 'Local'
      ? localHealthCheck(ctx.svc)
      : defaultTcpHealthCheck();
  return {
    scheme,
    targetType,
    proxyProtocol,
    preserveClientIp,
    healthCheck: awsHealthCheck(ctx, defaults),
    ...(terminate === null ? {} : { unhealthyConnectionTermination: terminate }),
  };
}

/** `nlb-target-type` (instance or ip); type nlb-ip means ip and cannot be contradicted. */
function nlbTargetType(ctx: LbContext): LoadBalancerModel['targetType'] {
  const type = ctx.annotations[`${AWS}type`];
  const targetType = type === 'nlb-ip' ? 'ip' : 'instance';
  const key = `${AWS}nlb-target-type`;
  const tt = ctx.annotations[key];
  if (tt === undefined) return targetType;
  if (tt !== 'instance' && tt !== 'ip') {
    warn(
      ctx,
      'INVALID_LB_ANNOTATION',
      key,
      `${JSON.stringify(tt)} is not instance or ip; using ${targetType}`,
    );
    return targetType;
  }
  if (type === 'nlb-ip' && tt !== 'ip') {
    warn(
      ctx,
      'CONFLICTING_LB_ANNOTATIONS',
      key,
      `"${tt}" contradicts aws-load-balancer-type: nlb-ip; the target type stays ip`,
    );
    return targetType;
  }
  return tt;
}

/** PROXY v2 from `proxy-protocol: "*"`, which overrides the target group's proxy_protocol_v2.enabled. */
function nlbProxyProtocol(ctx: LbContext, ppAttr: boolean | null): ProxyProtocolVersion | null {
  const fromAttr = ppAttr === true ? 'v2' : null;
  const key = `${AWS}proxy-protocol`;
  const pp = ctx.annotations[key];
  if (pp === undefined) return fromAttr;
  if (pp.trim() !== '*') {
    warn(
      ctx,
      'CONFLICTING_LB_ANNOTATIONS',
      key,
      `${JSON.stringify(pp)} is not "*", the only value the controller accepts; ignored (PROXY protocol ${fromAttr ? 'stays on from target-group-attributes' : 'stays off'})`,
    );
    return fromAttr;
  }
  if (ppAttr === false)
    warn(
      ctx,
      'CONFLICTING_LB_ANNOTATIONS',
      key,
      '"*" enables PROXY protocol v2 but target-group-attributes says proxy_protocol_v2.enabled=false; the proxy-protocol annotation wins (PROXY v2 on)',
    );
  return 'v2';
}

function elbSettings(ctx: LbContext): ProviderSettings {
  const proxyProtocol = elbProxyProtocol(ctx);
  for (const suffix of ['nlb-target-type', 'target-group-attributes']) {
    if (ctx.annotations[`${AWS}${suffix}`] !== undefined) {
      warn(
        ctx,
        'CONFLICTING_LB_ANNOTATIONS',
        `${AWS}${suffix}`,
        'an NLB annotation on a Service without aws-load-balancer-type (external, nlb or nlb-ip): the in-tree provider makes a Classic ELB, which ignores it',
      );
    }
  }
  // In-tree Classic ELB health-check defaults: TCP to the node port every 10s, timeout 5s, 2/6.
  const defaults: HealthCheckModel =
    ctx.svc.externalTrafficPolicy === 'Local'
      ? localHealthCheck(ctx.svc)
      : {
          protocol: 'tcp',
          port: 'traffic-port',
          path: '/',
          intervalMs: 10_000,
          timeoutMs: 5_000,
          healthyThreshold: 2,
          unhealthyThreshold: 6,
        };
  return {
    scheme: awsScheme(ctx, 'internet-facing'),
    targetType: 'instance',
    proxyProtocol,
    // A Classic ELB is a proxy: targets always see its address.
    preserveClientIp: false,
    healthCheck: awsHealthCheck(ctx, defaults),
  };
}

/** A Classic ELB speaks PROXY v1 only, with `proxy-protocol: "*"`. */
function elbProxyProtocol(ctx: LbContext): ProxyProtocolVersion | null {
  const pp = ctx.annotations[`${AWS}proxy-protocol`];
  if (pp === undefined) return null;
  if (pp.trim() === '*') return 'v1';
  warn(
    ctx,
    'CONFLICTING_LB_ANNOTATIONS',
    `${AWS}proxy-protocol`,
    `${JSON.stringify(pp)} is not "*"; ignored (PROXY protocol stays off)`,
  );
  return null;
}

/** `scheme`, else the deprecated `internal`, else the provider's default; `scheme` wins a conflict. */
function awsScheme(ctx: LbContext, fallback: LoadBalancerModel['scheme']): LoadBalancerModel['scheme'] {
  const scheme = ctx.annotations[`${AWS}scheme`];
  const internalRaw = ctx.annotations[`${AWS}internal`];
  let fromInternal: LoadBalancerModel['scheme'] | null = null;
  if (internalRaw !== undefined) {
    const b = parseGoBool(internalRaw);
    // The in-tree provider also took a CIDR such as 0.0.0.0/0 to mean "internal".
    fromInternal =
      b === false ? 'internet-facing' : b === true || internalRaw.includes('/') ? 'internal' : null;
    if (fromInternal === null)
      warn(
        ctx,
        'INVALID_LB_ANNOTATION',
        `${AWS}internal`,
        `${JSON.stringify(internalRaw)} is not true or false; ignored`,
      );
  }
  if (scheme !== undefined) {
    if (scheme !== 'internal' && scheme !== 'internet-facing') {
      warn(
        ctx,
        'INVALID_LB_ANNOTATION',
        `${AWS}scheme`,
        `${JSON.stringify(scheme)} is not internal or internet-facing; ignored`,
      );
    } else {
      if (fromInternal !== null && fromInternal !== scheme) {
        warn(
          ctx,
          'CONFLICTING_LB_ANNOTATIONS',
          `${AWS}internal`,
          `says ${fromInternal} but aws-load-balancer-scheme says ${scheme}, which wins`,
        );
      }
      return scheme;
    }
  }
  return fromInternal ?? fallback;
}

/** `k1=v1,k2=v2` as the controller's stringMap annotations are written. */
function parseStringMap(ctx: LbContext, key: string): Map<string, string> {
  const out = new Map<string, string>();
  const raw = ctx.annotations[key];
  if (raw === undefined) return out;
  for (const part of raw.split(',')) {
    const entry = part.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      warn(ctx, 'INVALID_LB_ANNOTATION', key, `${JSON.stringify(entry)} is not key=value; ignored`);
      continue;
    }
    out.set(entry.slice(0, eq).trim(), entry.slice(eq + 1).trim());
  }
  return out;
}

function attributeBool(
  ctx: LbContext,
  attrs: Map<string, string>,
  name: string,
  key: string,
): boolean | null {
  const v = attrs.get(name);
  if (v === undefined) return null;
  if (v === 'true') return true;
  if (v === 'false') return false;
  warn(ctx, 'INVALID_LB_ANNOTATION', key, `${name}=${JSON.stringify(v)} is not true or false; ignored`);
  return null;
}
