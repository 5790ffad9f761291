// The contract of one rule: a stable id, the worst severity it reports, and a pure check.
import type { ObjectRef, Topology } from '../../config/model.ts';
import type { Chain } from '../chain.ts';
import type { Finding, Severity, Simulation } from '../types.ts';

export interface RuleContext {
  chain: Chain;
  /** The simulated request when the doctor runs with --client, else null. */
  simulation: Simulation | null;
  /** Raw annotations of the LB Service (empty when only a model is at hand). */
  lbAnnotations: Readonly<Record<string, string>>;
  /** Whether any location (or the ConfigMap default) has an allow or deny list or block-cidrs. */
  hasAccessLists: boolean;
  configMap: ObjectRef;
}

export interface Rule {
  id: string;
  /** The worst severity this rule reports. */
  severity: Severity;
  check(topology: Topology, context: RuleContext): Finding[];
}
