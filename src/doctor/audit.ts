// Without --client: for every location with an allow or deny list, take a client from the list and one
// from no list, walk both through the chain, and say whether listed clients can be recognised at all.
import type { LocationModel, SourceRangeModel, VirtualHostModel } from '../config/model.ts';
import { CidrSet } from '../net/cidr-set.ts';
import type { Chain } from './chain.ts';
import { concreteHost, simulateOnChain } from './simulate.ts';
import type { AccessAudit, Simulation } from './types.ts';

/** Candidates for "a client on no list": documentation and private ranges, the first unlisted one wins. */
const OUTSIDERS = [
  '203.0.113.45',
  '198.51.100.23',
  '192.0.2.77',
  '100.64.77.1',
  '172.31.255.77',
  '10.255.255.77',
  '2001:db8::77',
];

function entries(range: SourceRangeModel | null): readonly string[] | null {
  return range?.valid ? range.cidrs : null;
}

/** The network address of a CIDR: a member of it, and the address a reader recognises from the list. */
function member(cidr: string): string {
  return cidr.slice(0, cidr.lastIndexOf('/'));
}

/** A request path the location matches: the path itself, or a regex path's literal prefix. */
export function samplePath(location: LocationModel): string {
  if (location.regex === null) return location.path;
  const literal = /^[^.*+?()[\]{}|\\^$]*/.exec(location.path)?.[0] ?? '/';
  return literal.startsWith('/') ? literal : `/${literal}`;
}

function describe(sim: Simulation): string {
  return sim.status === null ? sim.outcome : `${sim.status}`;
}

export function auditAccess(chain: Chain): AccessAudit[] {
  const audits: AccessAudit[] = [];
  const all = chain.topology.gateway.virtualHosts.flatMap((vhost: VirtualHostModel) =>
    vhost.locations.map((location) => ({ vhost, location })),
  );
  for (const { vhost, location } of all) {
    if (location.allow === null && location.deny === null) continue;
    const allow = entries(location.allow);
    const deny = entries(location.deny);
    const valid = (location.allow?.valid ?? true) && (location.deny?.valid ?? true);
    const base = {
      ingress: location.ingress,
      host: vhost.host,
      path: location.path,
      allow,
      deny,
      valid,
    };
    const host = concreteHost(vhost.host);
    const path = samplePath(location);
    // Ask over https when the host redirects http, so the request reaches the policy.
    const scheme = location.sslRedirect || location.forceSslRedirect ? ('https' as const) : ('http' as const);
    const listedEntry = allow?.[0] ?? deny?.[0] ?? null;
    const listedClient = listedEntry === null ? null : member(listedEntry);
    const lists = [...(allow ?? []), ...(deny ?? [])];
    const set = CidrSet.build(lists);
    const otherClient = OUTSIDERS.find((a) => set.ok && !set.set.has(a)) ?? null;
    const listed =
      listedClient === null ? null : simulateOnChain(chain, { client: listedClient, host, path, scheme });
    const other =
      otherClient === null ? null : simulateOnChain(chain, { client: otherClient, host, path, scheme });
    // Recognised: the listed client reaches the policy with its own address. A 400 before it (G2: a
    // PROXY header not expected) logs an address too, but no list ever looks at it.
    const seenByPolicy = listed?.outcome === 'rejected-400' ? null : (listed?.gatewayLogsAddress ?? null);
    const recognised = listed !== null && seenByPolicy === listedClient;
    const seenInstead =
      !recognised && seenByPolicy !== null && other?.gatewayLogsAddress === seenByPolicy
        ? seenByPolicy
        : null;
    let note: string;
    if (!valid) {
      note = 'the list is invalid: the location fails closed with 503 for everyone (INVALID_SOURCE_RANGE)';
    } else if (listed === null) {
      note = 'the list is empty';
    } else if (recognised) {
      note = `listed clients are recognised: ${listedClient} -> ${describe(listed)}, ${otherClient} -> ${other ? describe(other) : '?'}`;
    } else if (seenByPolicy === null) {
      note = `requests never reach the policy: ${listed.outcome} (${listed.decidedBy})`;
    } else if (seenInstead !== null) {
      const everyone = listed.outcome === 'allowed';
      note = `no client is recognised: the policy sees ${seenInstead} for everyone, so ${everyone ? `everyone passes (${seenInstead} is allowed)` : `listed clients get ${describe(listed)} too`}`;
    } else {
      note = `listed client ${listedClient} is seen as ${listed.gatewayLogsAddress} -> ${describe(listed)}`;
    }
    audits.push({
      ...base,
      recognised,
      listedClient,
      listedOutcome: listed?.outcome ?? null,
      otherClient,
      otherOutcome: other?.outcome ?? null,
      seenInstead,
      note,
    });
  }
  return audits;
}
