// Who may reach the load balancer: spec.loadBalancerSourceRanges, else the older
// service.beta.kubernetes.io/load-balancer-source-ranges annotation. A bad entry is dropped (an error).
import { sourceRangeModel } from '../source-range.ts';
import { type LbContext, SVC, warn } from './provider.ts';

/** The CIDRs the load balancer admits (empty: everyone), deduplicated. */
export function sourceRanges(ctx: LbContext): string[] {
  const key = `${SVC}load-balancer-source-ranges`;
  const fromSpec = ctx.svc.loadBalancerSourceRanges.length > 0;
  const entries = fromSpec
    ? ctx.svc.loadBalancerSourceRanges
    : (ctx.annotations[key] ?? '').split(',').filter((s) => s.trim() !== '');
  if (fromSpec && ctx.annotations[key] !== undefined) {
    warn(ctx, 'CONFLICTING_LB_ANNOTATIONS', key, 'spec.loadBalancerSourceRanges is also set and wins');
  }
  const out: string[] = [];
  entries.forEach((entry, i) => {
    const parsed = sourceRangeModel(entry, 'annotation');
    if (parsed.valid) out.push(...parsed.cidrs);
    else {
      const field = fromSpec ? `spec.loadBalancerSourceRanges[${i}]` : key;
      warn(
        ctx,
        'INVALID_LB_SOURCE_RANGE',
        field,
        `${JSON.stringify(entry)} is not a CIDR; entry dropped${out.length === 0 && i === entries.length - 1 ? ' and no valid entry remains: the load balancer is open to everyone' : ''}`,
        'error',
      );
    }
  });
  return [...new Set(out)];
}
