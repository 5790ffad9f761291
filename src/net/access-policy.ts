// Source-IP access policy of one location (invariant I5): block-cidrs, then the deny list, then the
// allow list.
// - deny beats allow; block-cidrs always apply (nginx drops them on locations with their own rules:
//   a deliberate difference, see docs/client-ip.md);
// - any invalid list makes the whole policy fail closed: everyone gets 'fail-closed' (HTTP 503);
// - an address that does not parse (including '' from the client-IP resolver) is denied whenever any
//   rule exists, never allowed;
// - every decision names the list and the entry that decided.
import type { SourceRangeModel } from '../config/model.ts';
import { fail, ok, type Result } from '../result.ts';
import { CidrSet } from './cidr-set.ts';
import { type IpAddress, parseIp } from './ip.ts';

export type AccessOutcome = 'allow' | 'deny' | 'fail-closed';

export type AccessRule =
  | 'block-cidrs'
  | 'denylist'
  | 'allowlist'
  | 'allowlist-miss'
  | 'no-rules'
  | 'invalid-rules';

export interface AccessDecision {
  outcome: AccessOutcome;
  /**
   * What decided. With outcome 'allow' and a null entry, 'denylist' / 'block-cidrs' mean "checked
   * against that list (the last one consulted) and not listed"; 'no-rules' means there is nothing to check.
   */
  rule: AccessRule;
  /** The matching entry as written in the list, or null. */
  entry: string | null;
  /** One human-readable sentence for logs and the doctor. */
  detail: string;
}

export interface AccessRules {
  block: SourceRangeModel | null;
  deny: SourceRangeModel | null;
  allow: SourceRangeModel | null;
}

export interface AccessPolicy {
  decide(address: string | IpAddress): AccessDecision;
  /** True when an invalid list makes every decision 'fail-closed'. */
  readonly failClosed: boolean;
  /** True when at least one list has entries. */
  readonly hasRules: boolean;
}

/** A list's set (null: no restriction), or why the list is invalid. */
type Compiled = Result<CidrSet | null, string>;

// Models are immutable values shared by many locations (block-cidrs and ConfigMap defaults above all):
// compile each one once, so a 100k-entry list costs one CidrSet however many locations use it.
const compiledModels = new WeakMap<SourceRangeModel, Compiled>();

function compileList(model: SourceRangeModel | null): Compiled {
  if (model === null) return ok(null);
  const cached = compiledModels.get(model);
  if (cached !== undefined) return cached;
  let compiled: Compiled;
  if (!model.valid) {
    compiled = fail(model.error);
  } else if (model.cidrs.length === 0 && model.matchesNobody !== true) {
    // An empty list renders no nginx allow/deny lines: no restriction.
    compiled = ok(null);
  } else {
    const built = CidrSet.build(model.cidrs);
    compiled = built.ok ? ok(built.set) : fail(built.error.message);
  }
  compiledModels.set(model, compiled);
  return compiled;
}

function describe(model: SourceRangeModel | null): string {
  return model === null ? '' : `${model.from} value ${JSON.stringify(model.raw)}`;
}

export function compileAccessPolicy(rules: AccessRules): AccessPolicy {
  const lists = [
    { name: 'block-cidrs', model: rules.block },
    { name: 'denylist', model: rules.deny },
    { name: 'allowlist', model: rules.allow },
  ] as const;
  const problems: string[] = [];
  const sets: (CidrSet | null)[] = [];
  for (const { name, model } of lists) {
    const compiled = compileList(model);
    if (compiled.ok) sets.push(compiled.value);
    else {
      problems.push(`invalid ${name} (${describe(model)}): ${compiled.error}`);
      sets.push(null);
    }
  }
  if (problems.length > 0) {
    const decision: AccessDecision = {
      outcome: 'fail-closed',
      rule: 'invalid-rules',
      entry: null,
      detail: `access rules are invalid, failing closed: ${problems.join('; ')}`,
    };
    return { failClosed: true, hasRules: true, decide: () => decision };
  }
  const [block, deny, allow] = sets as [CidrSet | null, CidrSet | null, CidrSet | null];
  if (block === null && deny === null && allow === null) {
    const decision: AccessDecision = {
      outcome: 'allow',
      rule: 'no-rules',
      entry: null,
      detail: 'no access rules',
    };
    return { failClosed: false, hasRules: false, decide: () => decision };
  }
  // The list a non-matching, allowed address was last checked against.
  const lastConsulted: AccessRule = deny !== null ? 'denylist' : 'block-cidrs';

  return {
    failClosed: false,
    hasRules: true,
    decide(address) {
      const ip = typeof address === 'string' ? parseIp(address) : address;
      if (ip === null) {
        const text = typeof address === 'string' ? JSON.stringify(address.slice(0, 64)) : '';
        return {
          outcome: 'deny',
          rule: allow !== null ? 'allowlist-miss' : lastConsulted,
          entry: null,
          detail: `client address ${text} is not a valid IP address; denied because access rules exist`,
        };
      }
      if (block !== null) {
        const index = block.matchIndex(ip);
        if (index >= 0) {
          const entry = block.entry(index);
          return {
            outcome: 'deny',
            rule: 'block-cidrs',
            entry,
            detail: `denied by block-cidrs entry ${entry}`,
          };
        }
      }
      if (deny !== null) {
        const index = deny.matchIndex(ip);
        if (index >= 0) {
          const entry = deny.entry(index);
          return { outcome: 'deny', rule: 'denylist', entry, detail: `denied by denylist entry ${entry}` };
        }
      }
      if (allow !== null) {
        const index = allow.matchIndex(ip);
        if (index >= 0) {
          const entry = allow.entry(index);
          return {
            outcome: 'allow',
            rule: 'allowlist',
            entry,
            detail: `allowed by allowlist entry ${entry}`,
          };
        }
        return { outcome: 'deny', rule: 'allowlist-miss', entry: null, detail: 'not in the allowlist' };
      }
      return { outcome: 'allow', rule: lastConsulted, entry: null, detail: `not listed in ${lastConsulted}` };
    },
  };
}
