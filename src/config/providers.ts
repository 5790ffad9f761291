// What the LB providers have in common, where a rule depends on it.
import type { LbProvider } from './model.ts';

/** An AWS load balancer (NLB or Classic ELB): rules A4 and K3 and its annotations apply. */
export function isAwsProvider(provider: LbProvider): boolean {
  return provider === 'aws-nlb' || provider === 'aws-elb';
}
