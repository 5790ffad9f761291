import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type Cidr, cidrContains, formatCidr, makeCidr } from '../../src/net/cidr.ts';
import { CidrSet } from '../../src/net/cidr-set.ts';
import { type IpAddress, ipv4, ipv6 } from '../../src/net/ip.ts';

function build(entries: string[]): CidrSet {
  const result = CidrSet.build(entries);
  assert.ok(result.ok, result.ok ? '' : result.error.message);
  return result.set;
}

test('match reports the longest matching entry, as given, with its index', () => {
  const set = build([
    '10.0.0.0/8',
    '10.1.0.0/16',
    '10.1.2.3',
    '0.0.0.0/0',
    '2001:db8::/32',
    '::/0',
    '10.1.2.3/32',
  ]);
  assert.equal(set.size, 7);
  assert.deepEqual(set.match('10.1.2.3'), { entry: '10.1.2.3', index: 2 });
  assert.deepEqual(set.match('10.1.9.9'), { entry: '10.1.0.0/16', index: 1 });
  assert.deepEqual(set.match('10.200.0.1'), { entry: '10.0.0.0/8', index: 0 });
  assert.deepEqual(set.match('11.0.0.1'), { entry: '0.0.0.0/0', index: 3 });
  assert.deepEqual(set.match('2001:db8::5'), { entry: '2001:db8::/32', index: 4 });
  assert.deepEqual(set.match('2001:db9::5'), { entry: '::/0', index: 5 });
  assert.deepEqual(set.match('::ffff:10.1.2.3'), { entry: '10.1.2.3', index: 2 });
});

test('strings are parsed strictly: an unparsable address matches nothing, even under 0.0.0.0/0', () => {
  const set = build(['0.0.0.0/0', '::/0']);
  for (const bad of ['010.0.0.1', ' 10.0.0.1', 'fe80::1%eth0', '', 'unknown', '10.0.0.1:80']) {
    assert.equal(set.match(bad), null, bad);
    assert.equal(set.has(bad), false, bad);
  }
  assert.equal(set.has('10.0.0.1'), true);
});

test('IPv4 entries never match IPv6 addresses and vice versa; mapped addresses are IPv4', () => {
  const v4 = build(['0.0.0.0/0']);
  assert.equal(v4.has('::1'), false);
  assert.equal(v4.has('::a00:1'), false);
  assert.equal(v4.has('::ffff:a00:1'), true);
  const v6 = build(['::/0']);
  assert.equal(v6.has('10.0.0.1'), false);
  assert.equal(v6.has('::ffff:10.0.0.1'), false);
  const mappedEntry = build(['::ffff:10.0.0.0/104']);
  assert.deepEqual(mappedEntry.match('10.9.9.9'), { entry: '::ffff:10.0.0.0/104', index: 0 });
});

test('build fails on the first bad entry, naming it and its index', () => {
  const result = CidrSet.build(['10.0.0.0/8', '1.2.3.4/40', 'nope']);
  assert.equal(result.ok, false);
  if (!result.ok) {
    assert.equal(result.error.code, 'CIDR_SET_BAD_ENTRY');
    assert.equal(result.error.index, 1);
    assert.equal(result.error.entry, '1.2.3.4/40');
  }
  assert.equal(CidrSet.empty().has('1.2.3.4'), false);
  assert.equal(CidrSet.empty().size, 0);
});

test('fromCidrs reports labels, or the normalised CIDR without them', () => {
  const cidrs = [makeCidr(ipv4(0x0a000000), 8)];
  assert.deepEqual(CidrSet.fromCidrs(cidrs).match('10.2.3.4'), { entry: '10.0.0.0/8', index: 0 });
  assert.deepEqual(CidrSet.fromCidrs(cidrs, ['office']).match('10.2.3.4'), { entry: 'office', index: 0 });
  assert.throws(() => CidrSet.fromCidrs(cidrs, []));
});

// The naive reference: scan every entry, keep the longest prefix (the first one on a tie).
function linearMatch(cidrs: readonly Cidr[], ip: IpAddress): number {
  let best = -1;
  for (let i = 0; i < cidrs.length; i++) {
    const cidr = cidrs[i]!;
    if (cidrContains(cidr, ip) && (best < 0 || cidr.prefix > cidrs[best]!.prefix)) best = i;
  }
  return best;
}

// Addresses drawn near a few anchors so random prefixes actually nest and collide.
const anchors4 = [0x0a000000, 0xc0a80000, 0x00000000, 0xffffffff];
const anchors6 = [
  [0x20010db8, 0, 0, 0],
  [0, 0, 0, 1],
  [0xfe800000, 0, 0, 0],
];
const word = fc.integer({ min: 0, max: 0xffffffff });
const ipv4Arb = fc.oneof(
  word.map((w) => ipv4(w)),
  fc
    .tuple(fc.constantFrom(...anchors4), fc.integer({ min: 0, max: 0xffff }))
    .map(([a, d]) => ipv4((a ^ d) >>> 0)),
);
const ipv6Arb = fc.oneof(
  fc.tuple(word, word, word, word).map(([a, b, c, d]) => ipv6(a, b, c, d)),
  fc
    .tuple(fc.constantFrom(...anchors6), word, fc.integer({ min: 0, max: 3 }))
    .map(([[a, b, c, d], noise, at]) =>
      ipv6(
        at === 0 ? (a! ^ noise) >>> 0 : a!,
        at === 1 ? noise : b!,
        at === 2 ? noise : c!,
        d! ^ (noise & 0xff),
      ),
    ),
);
// Mapped addresses come out of ipv6() folded to IPv4, so they exercise the IPv4 side through IPv6 input.
const mappedArb = word.map((w) => ipv6(0, 0, 0xffff, w));
const addressArb = fc.oneof(ipv4Arb, ipv6Arb, mappedArb);
const cidrArb = fc.oneof(
  fc.tuple(ipv4Arb, fc.integer({ min: 0, max: 32 })).map(([ip, p]) => makeCidr(ip, p)),
  // ipv6() may fold a random draw to IPv4; keep its prefix in range then.
  fc
    .tuple(ipv6Arb, fc.integer({ min: 0, max: 128 }))
    .map(([ip, p]) => makeCidr(ip, ip.family === 4 ? p % 33 : p)),
  // Unfolded mapped prefixes (::ffff:a.b.c.d/96..128, and shorter ones that stay IPv6).
  fc
    .tuple(word, fc.integer({ min: 80, max: 128 }))
    .map(([w, p]) => makeCidr({ family: 6, w0: 0, w1: 0, w2: 0xffff, w3: w }, p)),
);

test('property: the CIDR set agrees with a linear longest-prefix scan (IPv4, IPv6, mapped)', () => {
  fc.assert(
    fc.property(
      fc.array(cidrArb, { maxLength: 60 }),
      fc.array(addressArb, { minLength: 1, maxLength: 30 }),
      (cidrs, addresses) => {
        const set = CidrSet.fromCidrs(cidrs);
        // Built from strings too, so parsing and normalisation are covered by the same law.
        const fromText = build(cidrs.map(formatCidr));
        for (const ip of [...addresses, ...cidrs.map((c) => c.address)]) {
          const expected = linearMatch(cidrs, ip);
          assert.equal(set.matchIndex(ip), expected);
          assert.equal(fromText.matchIndex(ip), expected);
        }
      },
    ),
    { numRuns: 400 },
  );
});

test('property: large sets (the /16 table mode) agree with the linear scan too', () => {
  fc.assert(
    fc.property(
      fc.array(cidrArb, { minLength: 5500, maxLength: 6000 }),
      fc.array(cidrArb, { maxLength: 20 }),
      fc.array(addressArb, { minLength: 50, maxLength: 100 }),
      (bulk, extra, addresses) => {
        // Short prefixes and duplicates on top of the bulk exercise painting and first-wins ties.
        const cidrs = [...extra, ...bulk, ...extra];
        const set = CidrSet.fromCidrs(cidrs);
        for (const ip of [
          ...addresses,
          ...extra.map((c) => c.address),
          ...bulk.slice(0, 50).map((c) => c.address),
        ]) {
          assert.equal(set.matchIndex(ip), linearMatch(cidrs, ip));
        }
      },
    ),
    { numRuns: 8 },
  );
});
