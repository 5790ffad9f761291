// Who may reach the load balancer: spec.loadBalancerSourceRanges, else the older
// service.beta.kubernetes.io/load-balancer-source-ranges annotation. A bad entry is an error: every
// runtime refuses the Service (never the list without it, which could open the LB to everyone).
import { sourceRangeModel } from '../source-range.ts';
import { type LbContext, SVC, warn } from './provider.ts';

/**
 * The CIDRs the load balancer admits (empty: everyone), deduplicated, and the entries that are not
 * CIDRs (each an error: every runtime refuses such a Service, as a cloud controller fails to set it up).
 */
export function sourceRanges(ctx: LbContext): { cidrs: string[]; invalid: string[] } {
  const key = `${SVC}load-balancer-source-ranges`;
  const fromSpec = ctx.svc.loadBalancerSourceRanges.length > 0;
  const entries = fromSpec
    ? ctx.svc.loadBalancerSourceRanges
    : (ctx.annotations[key] ?? '').split(',').filter((s) => s.trim() !== '');
  if (fromSpec && ctx.annotations[key] !== undefined) {
    warn(ctx, 'CONFLICTING_LB_ANNOTATIONS', key, 'spec.loadBalancerSourceRanges is also set and wins');
  }
  const out: string[] = [];
  const invalid: string[] = [];
  entries.forEach((entry, i) => {
    const parsed = sourceRangeModel(entry, 'annotation');
    if (parsed.valid) out.push(...parsed.cidrs);
    else {
      invalid.push(entry);
      const field = fromSpec ? `spec.loadBalancerSourceRanges[${i}]` : key;
      warn(
        ctx,
        'INVALID_LB_SOURCE_RANGE',
        field,
        `${JSON.stringify(entry)} is not a CIDR: such a load balancer is never set up (the API server refuses the spec, a cloud controller the annotation), and keepip refuses it`,
        'error',
      );
    }
  });
  return { cidrs: [...new Set(out)], invalid };
}
