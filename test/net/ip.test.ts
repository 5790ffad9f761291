import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { canonicalIp, formatIp, ipv6, parseIp, parseIpUnfolded } from '../../src/net/ip.ts';

test('IPv4: dotted quads parse, anything ambiguous or malformed is rejected', () => {
  assert.equal(canonicalIp('1.2.3.4'), '1.2.3.4');
  assert.equal(canonicalIp('0.0.0.0'), '0.0.0.0');
  assert.equal(canonicalIp('255.255.255.255'), '255.255.255.255');
  assert.deepEqual(parseIp('10.0.0.1'), { family: 4, w0: 0x0a000001, w1: 0, w2: 0, w3: 0 });
  for (const bad of [
    '010.0.0.1', // leading zero: octal to inet_aton, decimal to others
    '10.0.0.01',
    '00.0.0.0',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '1.2.3.1000',
    '1.2.3.',
    '.1.2.3',
    '1..2.3',
    ' 1.2.3.4',
    '1.2.3.4 ',
    '1.2.3.4\n',
    '0x0a.0.0.1',
    '167772161',
    '1.2.3.4:80',
    '1.2.3.4/32',
    '+1.2.3.4',
    '１.2.3.4',
    '',
  ]) {
    assert.equal(parseIp(bad), null, bad);
  }
});

test('IPv6: RFC 4291 text forms parse and format per RFC 5952', () => {
  const cases: [string, string][] = [
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['2001:db8:1:1:1:1:0:1', '2001:db8:1:1:1:1:0:1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['fe80::abcd', 'fe80::abcd'],
    ['::1.2.3.4', '::102:304'],
    ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
    ['::ffff:0:1.2.3.4', '::ffff:0:102:304'],
  ];
  for (const [input, expected] of cases) assert.equal(canonicalIp(input), expected, input);
  for (const bad of [
    'fe80::1%eth0',
    'fe80::1%25eth0',
    '[::1]',
    '[::1]:80',
    ':::',
    '1:::2',
    '1::2::3',
    ':1::',
    '1::2:',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8::',
    '::12345',
    '::g',
    ':: 1',
    '::1 ',
    '::1.2.3',
    '::1.2.3.4:5',
    '::010.0.0.1',
    '1:2:3:4:5:6:7:1.2.3.4',
  ]) {
    assert.equal(parseIp(bad), null, bad);
  }
});

test('IPv4-mapped IPv6 folds to the IPv4 address in every spelling', () => {
  for (const form of [
    '::ffff:10.0.0.1',
    '::FFFF:10.0.0.1',
    '::ffff:a00:1',
    '0:0:0:0:0:ffff:10.0.0.1',
    '0:0:0:0:0:ffff:0a00:0001',
    '0000:0000:0000:0000:0000:FFFF:0A00:0001',
  ]) {
    const ip = parseIp(form);
    assert.deepEqual(ip, { family: 4, w0: 0x0a000001, w1: 0, w2: 0, w3: 0 }, form);
    assert.equal(formatIp(ip!), '10.0.0.1');
  }
  assert.equal(parseIpUnfolded('::ffff:10.0.0.1')?.family, 6);
  assert.equal(ipv6(0, 0, 0xffff, 0x7f000001).family, 4);
  // Not mapped: compatible (::a.b.c.d), translated (::ffff:0:a.b.c.d) and NAT64 stay IPv6.
  assert.equal(parseIp('::10.0.0.1')?.family, 6);
  assert.equal(parseIp('::ffff:0:10.0.0.1')?.family, 6);
  assert.equal(parseIp('64:ff9b::10.0.0.1')?.family, 6);
});

test('property: formatting agrees with Node and re-parses to the same address', () => {
  const v6 = fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 3 }));
  fc.assert(
    fc.property(v6, ([a, b, c, d, zeros]) => {
      // Bias towards zero runs so "::" placement is exercised.
      const words = [a >>> 0, zeros & 1 ? 0 : b >>> 0, zeros & 2 ? 0 : c >>> 0, d >>> 0];
      const ip = ipv6(words[0]!, words[1]!, words[2]!, words[3]!);
      const text = formatIp(ip);
      assert.deepEqual(parseIp(text), ip);
      assert.equal(isIP(text), ip.family);
      if (ip.family === 6) {
        // Node's URL parser writes IPv6 hosts in RFC 5952 form too.
        assert.equal(new URL(`http://[${text}]/`).hostname, `[${text}]`);
      }
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.ipV4(), (text) => {
      assert.equal(canonicalIp(text), text);
    }),
  );
  fc.assert(
    fc.property(fc.ipV6(), (text) => {
      // fast-check's generator writes many equivalent forms; Node agrees on which are valid.
      const ip = parseIp(text);
      assert.notEqual(ip, null, text);
      assert.equal(isIP(formatIp(ip!)), ip!.family);
    }),
  );
});

test('property: random strings never crash the parser, and anything accepted is a valid IP to Node', () => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF:.%/ []'), maxLength: 50 }),
      (s) => {
        const ip = parseIp(s);
        if (ip !== null) assert.notEqual(isIP(s), 0, s);
      },
    ),
    { numRuns: 5000 },
  );
});
