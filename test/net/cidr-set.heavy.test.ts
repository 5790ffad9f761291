// The CIDR set at scale: a million prefixes build and answer correctly. Heavy (seconds of CPU and
// hundreds of MB): it runs in `npm run test:heavy`, one file at a time, so that it cannot starve the
// timing of other tests. The properties on small and /16-table-sized sets are in cidr-set.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Cidr, cidrContains, formatCidr, makeCidr } from '../../src/net/cidr.ts';
import { CidrSet } from '../../src/net/cidr-set.ts';
import { type IpAddress, ipv4 } from '../../src/net/ip.ts';

function build(entries: string[]): CidrSet {
  const result = CidrSet.build(entries);
  assert.ok(result.ok, result.ok ? '' : result.error.message);
  return result.set;
}

/** The reference: the longest prefix containing `ip`, first one on ties, by a linear scan. */
function linearMatch(cidrs: readonly Cidr[], ip: IpAddress): number {
  let best = -1;
  for (let i = 0; i < cidrs.length; i++) {
    const cidr = cidrs[i]!;
    if (cidrContains(cidr, ip) && (best < 0 || cidr.prefix > cidrs[best]!.prefix)) best = i;
  }
  return best;
}

test('a million prefixes build and answer correctly', () => {
  const count = 1_000_000;
  const entries: string[] = new Array(count);
  let seed = 12345;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed;
  };
  const cidrs: Cidr[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const cidr = makeCidr(ipv4(next()), 16 + (next() % 17));
    cidrs[i] = cidr;
    entries[i] = formatCidr(cidr);
  }
  const set = build(entries);
  assert.equal(set.size, count);
  for (let i = 0; i < count; i += 9973) {
    const hit = set.match(cidrs[i]!.address);
    assert.ok(hit);
    // The match is at least as specific as the entry the address was taken from.
    assert.ok(set.cidr(hit.index).prefix >= cidrs[i]!.prefix);
  }
  // A fully sampled check against the linear scan for a handful of addresses.
  for (let k = 0; k < 5; k++) {
    const ip = ipv4(next());
    assert.equal(set.matchIndex(ip), linearMatch(cidrs, ip));
  }
});
