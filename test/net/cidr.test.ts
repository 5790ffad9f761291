import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cidrContains, coversEveryAddress, formatCidr, parseCidr } from '../../src/net/cidr.ts';
import { parseIp } from '../../src/net/ip.ts';

function normalised(text: string): string {
  const result = parseCidr(text);
  assert.ok(result.ok, `${text}: ${result.ok ? '' : result.error.message}`);
  return formatCidr(result.cidr);
}

test('CIDRs normalise: host bits masked, bare IPs as /32 and /128, IPv6 in RFC 5952 form', () => {
  assert.equal(normalised('10.0.0.1/8'), '10.0.0.0/8');
  assert.equal(normalised('10.0.0.1'), '10.0.0.1/32');
  assert.equal(normalised('0.0.0.0/0'), '0.0.0.0/0');
  assert.equal(normalised('255.255.255.255/31'), '255.255.255.254/31');
  assert.equal(normalised('2001:DB8::1/32'), '2001:db8::/32');
  assert.equal(normalised('2001:db8::1'), '2001:db8::1/128');
  assert.equal(normalised('::/0'), '::/0');
  assert.equal(normalised('10.0.0.0/08'), '10.0.0.0/8');
});

test('mapped IPv6 CIDRs with prefix >= 96 fold to IPv4 prefix - 96; shorter ones stay IPv6', () => {
  assert.equal(normalised('::ffff:10.1.2.3/104'), '10.0.0.0/8');
  assert.equal(normalised('::ffff:10.1.2.3'), '10.1.2.3/32');
  assert.equal(normalised('::ffff:0.0.0.0/96'), '0.0.0.0/0');
  assert.equal(normalised('::ffff:1.2.3.0/120'), '1.2.3.0/24');
  assert.equal(normalised('::ffff:0:0/80'), '::/80');
  const wide = parseCidr('::/0');
  assert.ok(wide.ok);
  assert.equal(
    cidrContains(wide.cidr, parseIp('::ffff:10.0.0.1')!),
    false,
    'an IPv6 prefix never matches IPv4',
  );
});

test('the prefix length takes any number of leading zeros, as Go (dtoi) and nginx (ngx_atoi) read it', () => {
  for (const [input, want] of [
    ['10.0.0.0/0008', '10.0.0.0/8'],
    ['10.1.2.3/00000024', '10.1.2.0/24'],
    ['::/000', '::/0'],
  ] as const) {
    const result = parseCidr(input);
    assert.ok(result.ok, input);
    if (result.ok) assert.equal(formatCidr(result.cidr), want, input);
  }
});

test('invalid CIDRs carry stable codes', () => {
  const cases: [string, string][] = [
    ['', 'CIDR_EMPTY'],
    ['10.0.0.0/33', 'CIDR_BAD_PREFIX'],
    ['::/129', 'CIDR_BAD_PREFIX'],
    ['10.0.0.0/', 'CIDR_BAD_PREFIX'],
    ['10.0.0.0/-1', 'CIDR_BAD_PREFIX'],
    ['10.0.0.0/ 8', 'CIDR_BAD_PREFIX'],
    ['10.0.0.0/8 ', 'CIDR_BAD_PREFIX'],
    ['10.0.0.0/000033', 'CIDR_BAD_PREFIX'],
    ['10.0.0.0/99999999999', 'CIDR_BAD_PREFIX'],
    ['10.0.0.0/255.0.0.0', 'CIDR_BAD_PREFIX'],
    ['010.0.0.0/8', 'CIDR_BAD_ADDRESS'],
    [' 10.0.0.0/8', 'CIDR_BAD_ADDRESS'],
    ['fe80::%eth0/64', 'CIDR_BAD_ADDRESS'],
    ['/8', 'CIDR_BAD_ADDRESS'],
    ['example.com/8', 'CIDR_BAD_ADDRESS'],
  ];
  for (const [input, code] of cases) {
    const result = parseCidr(input);
    assert.equal(result.ok, false, input);
    if (!result.ok) assert.equal(result.error.code, code, input);
  }
});

test('cidrContains respects family and prefix boundaries', () => {
  const net = parseCidr('192.168.0.0/23');
  assert.ok(net.ok);
  assert.equal(cidrContains(net.cidr, parseIp('192.168.1.255')!), true);
  assert.equal(cidrContains(net.cidr, parseIp('192.168.2.0')!), false);
  assert.equal(cidrContains(net.cidr, parseIp('::ffff:192.168.0.7')!), true);
  const v6 = parseCidr('2001:db8:8000::/33');
  assert.ok(v6.ok);
  assert.equal(cidrContains(v6.cidr, parseIp('2001:db8:ffff::1')!), true);
  assert.equal(cidrContains(v6.cidr, parseIp('2001:db8:7fff::1')!), false);
  const all = parseCidr('0.0.0.0/0');
  assert.ok(all.ok);
  assert.equal(cidrContains(all.cidr, parseIp('::1')!), false);
});

test('coversEveryAddress: a /0, or prefixes that together hold a whole family, trust everyone; gaps do not', () => {
  for (const everyone of [
    ['0.0.0.0/0'],
    ['::/0'],
    ['0.0.0.0/1', '128.0.0.0/1'],
    ['10.0.0.0/8', '128.0.0.0/1', '0.0.0.0/2', '64.0.0.0/2'],
    ['::/1', '8000::/1', '10.0.0.0/8'],
    ['::ffff:0.0.0.0/96'],
  ])
    assert.equal(coversEveryAddress(everyone), true, everyone.join(','));
  for (const some of [
    [],
    ['10.0.0.0/8'],
    ['0.0.0.0/1', '128.0.0.0/2'],
    ['0.0.0.0/1', '192.0.0.0/2', '128.0.0.0/3'],
    ['::/1'],
    ['0.0.0.0/1', 'bogus', '128.0.0.0/33'],
  ])
    assert.equal(coversEveryAddress(some), false, some.join(','));
});
