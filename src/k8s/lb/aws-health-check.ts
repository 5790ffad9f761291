// The AWS health-check annotations (`aws-load-balancer-healthcheck-*`) over a provider's defaults,
// each value validated against the target group's limits; a bad value keeps the default.
import type { HealthCheckModel } from '../../config/model.ts';
import { parseUint } from '../values.ts';
import { AWS } from './aws-annotations.ts';
import { type LbContext, warn } from './provider.ts';

/** The health check the annotations ask for, starting from the provider's defaults. */
export function awsHealthCheck(ctx: LbContext, defaults: HealthCheckModel): HealthCheckModel {
  const hc: HealthCheckModel = { ...defaults };
  readProtocol(ctx, hc, defaults);
  readPort(ctx, hc);
  readPath(ctx, hc);
  for (const number of NUMBERS) readNumber(ctx, hc, number);
  return hc;
}

function readProtocol(ctx: LbContext, hc: HealthCheckModel, defaults: HealthCheckModel): void {
  const key = `${AWS}healthcheck-protocol`;
  const proto = ctx.annotations[key];
  if (proto === undefined) return;
  const p = proto.trim().toLowerCase();
  if (p === 'tcp' || p === 'http') hc.protocol = p;
  else if (p === 'https') {
    hc.protocol = 'http';
    warn(
      ctx,
      'LB_HEALTHCHECK_HTTPS_AS_HTTP',
      key,
      'HTTPS health checks are modelled as HTTP (keepip lb does not check certificates)',
      'info',
    );
  } else
    warn(
      ctx,
      'INVALID_LB_ANNOTATION',
      key,
      `${JSON.stringify(proto)} is not tcp, http or https; using ${hc.protocol}`,
    );
  // HTTP and TCP have different default timeouts; an explicit protocol picks its own.
  if (p !== defaults.protocol && ctx.annotations[`${AWS}healthcheck-timeout`] === undefined) {
    hc.timeoutMs = hc.protocol === 'http' ? 6_000 : 10_000;
  }
}

function readPort(ctx: LbContext, hc: HealthCheckModel): void {
  const key = `${AWS}healthcheck-port`;
  const port = ctx.annotations[key];
  if (port === undefined) return;
  if (port.trim() === 'traffic-port') {
    hc.port = 'traffic-port';
    return;
  }
  const n = parseUint(port, 65535);
  if (n !== null && n > 0) hc.port = n;
  else
    warn(
      ctx,
      'INVALID_LB_ANNOTATION',
      key,
      `${JSON.stringify(port)} is not traffic-port or a port number; using ${hc.port}`,
    );
}

function readPath(ctx: LbContext, hc: HealthCheckModel): void {
  const key = `${AWS}healthcheck-path`;
  const path = ctx.annotations[key];
  if (path === undefined) return;
  if (/^\/[\x21-\x7e]*$/.test(path.trim())) hc.path = path.trim();
  else warn(ctx, 'INVALID_LB_ANNOTATION', key, `${JSON.stringify(path)} is not a path; using ${hc.path}`);
}

/** A whole-number annotation, its bounds (in its own unit) and the field it sets. */
interface NumberAnnotation {
  suffix: string;
  min: number;
  max: number;
  get(hc: HealthCheckModel): number;
  set(hc: HealthCheckModel, value: number): void;
}

/** The target group's limits: interval 5-300 s, timeout 2-120 s, thresholds 2-10. */
const NUMBERS: readonly NumberAnnotation[] = [
  {
    suffix: 'healthcheck-interval',
    min: 5,
    max: 300,
    get: (hc) => hc.intervalMs / 1000,
    set: (hc, v) => {
      hc.intervalMs = v * 1000;
    },
  },
  {
    suffix: 'healthcheck-timeout',
    min: 2,
    max: 120,
    get: (hc) => hc.timeoutMs / 1000,
    set: (hc, v) => {
      hc.timeoutMs = v * 1000;
    },
  },
  {
    suffix: 'healthcheck-healthy-threshold',
    min: 2,
    max: 10,
    get: (hc) => hc.healthyThreshold,
    set: (hc, v) => {
      hc.healthyThreshold = v;
    },
  },
  {
    suffix: 'healthcheck-unhealthy-threshold',
    min: 2,
    max: 10,
    get: (hc) => hc.unhealthyThreshold,
    set: (hc, v) => {
      hc.unhealthyThreshold = v;
    },
  },
];

function readNumber(
  ctx: LbContext,
  hc: HealthCheckModel,
  { suffix, min, max, get, set }: NumberAnnotation,
): void {
  const v = ctx.annotations[`${AWS}${suffix}`];
  if (v === undefined) return;
  const n = parseUint(v, max);
  if (n !== null && n >= min) set(hc, n);
  else
    warn(
      ctx,
      'INVALID_LB_ANNOTATION',
      `${AWS}${suffix}`,
      `${JSON.stringify(v)} is not a whole number from ${min} to ${max}; using ${get(hc)}`,
    );
}
