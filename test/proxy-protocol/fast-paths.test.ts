// The codec's fast paths against plain references: the octet table, slice-by-8 CRC32C, the
// one-pass v1 TCP4 scanner, and the encoder's allocation-free address writing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DEC, DEC_DOT, formatIPv4, parseIPv4, parseIPv4Into } from '../../src/proxy-protocol/address.ts';
import { crc32c, headerCrc32c } from '../../src/proxy-protocol/crc32c.ts';
import { encodeProxyHeader, parseProxyHeader } from '../../src/proxy-protocol/index.ts';
import { parseV1, parseV1Reference } from '../../src/proxy-protocol/v1.ts';

/** Bit-at-a-time CRC-32C (reflected 0x82F63B78): the definition the tables are derived from. */
function crc32cBitwise(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

test('the octet table spells every value 0-255, in v2 addresses and through formatIPv4', () => {
  for (let v = 0; v < 256; v++) {
    assert.equal(DEC[v], String(v));
    assert.equal(DEC_DOT[v], `${v}.`);
    const w = 255 - v;
    const bytes = new Uint8Array([v, w, v, w]);
    assert.equal(formatIPv4(bytes, 0), `${v}.${w}.${v}.${w}`);
    const wire = encodeProxyHeader({
      version: 2,
      source: { address: `${v}.${w}.0.${v}`, port: v },
      destination: { address: `${w}.${v}.255.${w}`, port: w },
    });
    const r = parseProxyHeader(wire);
    assert.equal(r.kind, 'header');
    if (r.kind !== 'header') return;
    assert.deepEqual(r.header.source, { address: `${v}.${w}.0.${v}`, port: v });
    assert.deepEqual(r.header.destination, { address: `${w}.${v}.255.${w}`, port: w });
  }
});

test('slice-by-8 CRC32C equals the bitwise definition on random inputs, ranges and chains', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.nat(),
      fc.nat(),
      fc.boolean(),
      (bytes, a, b, asBuffer) => {
        const input = asBuffer ? Buffer.from(bytes) : bytes;
        assert.equal(crc32c(input), crc32cBitwise(bytes));
        const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
        const end = start + (bytes.length === start ? 0 : b % (bytes.length - start + 1));
        assert.equal(crc32c(input, start, end), crc32cBitwise(bytes.subarray(start, end)));
        // Chaining two ranges is the CRC of their concatenation.
        assert.equal(crc32c(input, end, bytes.length, crc32c(input, 0, end)), crc32cBitwise(bytes));
      },
    ),
    { numRuns: 300 },
  );
});

test('headerCrc32c is the CRC of the header with its 4-byte field zeroed', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 200 }), fc.nat(), (bytes, at) => {
      const field = at % (bytes.length - 3);
      const zeroed = Uint8Array.from(bytes);
      zeroed.fill(0, field, field + 4);
      assert.equal(headerCrc32c(Buffer.from(bytes), bytes.length, field), crc32cBitwise(zeroed));
    }),
    { numRuns: 300 },
  );
});

// TCP4 lines that are valid, or valid but for one field: what the one-pass scanner must get
// exactly right (it must accept only what the reference accepts, with the same result).
const validOctet = fc.integer({ min: 0, max: 255 }).map(String);
const badOctet = fc.constantFrom('256', '999', '1000', '01', '00', '007', '', '-1', '1a', ' 1');
const validPort = fc.integer({ min: 0, max: 65535 }).map(String);
const badPort = fc.constantFrom('65536', '99999', '123456', '00', '080', '', '+1', '1 ', '0x1');
const validAddress = fc.array(validOctet, { minLength: 4, maxLength: 4 }).map((o) => o.join('.'));
const badAddress = fc.oneof(
  fc
    .tuple(fc.array(validOctet, { minLength: 4, maxLength: 4 }), badOctet, fc.nat(3))
    .map(([o, bad, at]) => o.map((v, k) => (k === at ? bad : v)).join('.')),
  fc.array(validOctet, { minLength: 3, maxLength: 3 }).map((o) => o.join('.')),
  fc.array(validOctet, { minLength: 5, maxLength: 5 }).map((o) => o.join('.')),
  fc.constantFrom('::1', '1.2.3.4.', '.1.2.3'),
);
const fields = ['head', 'source', 'sep', 'destination', 'sport', 'dport', 'end'] as const;
const badField: Record<(typeof fields)[number], fc.Arbitrary<string>> = {
  head: fc.constantFrom('PROXY TCP4  ', 'PROXY TCP6 ', 'PROXY tcp4 ', 'PROXY UNKNOWN ', 'PROXY  TCP4 '),
  source: badAddress,
  sep: fc.constantFrom('  ', '\t', ''),
  destination: badAddress,
  sport: badPort,
  dport: badPort,
  end: fc.constantFrom('\r', '\n', '', ' \r\n', '\r\r\n', '\rX', '\n\r'),
};
const tcp4Line = fc
  .record({
    head: fc.constant('PROXY TCP4 '),
    source: validAddress,
    sep: fc.constant(' '),
    destination: validAddress,
    sport: validPort,
    dport: validPort,
    end: fc.constantFrom('\r\n', '\r\nGET / HTTP/1.1\r\n'),
    broken: fc.option(fc.constantFrom(...fields), { freq: 2 }),
  })
  .chain((line) =>
    (line.broken === null ? fc.constant(null) : badField[line.broken]).map((bad) => {
      const f = { ...line, ...(line.broken === null ? {} : { [line.broken]: bad }) };
      return `${f.head}${f.source}${f.sep}${f.destination} ${f.sport} ${f.dport}${f.end}`;
    }),
  );

test('v1: the one-pass TCP4 scanner and the reference parser agree on every input and prefix', () => {
  fc.assert(
    fc.property(tcp4Line, fc.boolean(), (line, asBuffer) => {
      const whole = Buffer.from(line, 'latin1');
      for (let cut = 0; cut <= whole.length; cut++) {
        const piece = whole.subarray(0, cut);
        const input = asBuffer ? piece : Uint8Array.from(piece);
        if (input.length === 0 || input[0] !== 0x50) continue;
        assert.deepEqual(parseV1(input), parseV1Reference(input), JSON.stringify(line.slice(0, cut)));
      }
    }),
    { numRuns: 400 },
  );
  // And the fast path is actually taken for the common header: same answer, found in one pass.
  const r = parseV1(Buffer.from('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET', 'latin1'));
  assert.deepEqual(r, {
    kind: 'header',
    header: {
      version: 1,
      command: 'PROXY',
      protocol: 'TCP4',
      source: { address: '192.168.0.1', port: 56324 },
      destination: { address: '192.168.0.11', port: 443 },
      tlvs: [],
    },
    consumed: 47,
  });
});

test('parseIPv4Into agrees with parseIPv4 and writes only its 4 bytes', () => {
  fc.assert(
    fc.property(fc.oneof(validAddress, badAddress, fc.string({ maxLength: 16 })), (text) => {
      const out = new Uint8Array(8).fill(0xaa);
      const ok = parseIPv4Into(text, out, 2);
      const expected = parseIPv4(text);
      assert.equal(ok, expected !== null);
      if (expected !== null) assert.deepEqual([...out.subarray(2, 6)], [...expected]);
      assert.deepEqual([out[0], out[1], out[6], out[7]], [0xaa, 0xaa, 0xaa, 0xaa]);
    }),
    { numRuns: 500 },
  );
});

test('the encoder reuses no bytes between headers: a short UNIX path after a long one is NUL-padded', () => {
  const long = `/${'x'.repeat(100)}`;
  encodeProxyHeader({
    version: 2,
    protocol: 'UNIX_STREAM',
    source: { path: long },
    destination: { path: long },
  });
  const wire = encodeProxyHeader({
    version: 2,
    protocol: 'UNIX_STREAM',
    source: { path: '/a' },
    destination: { path: '/b' },
  });
  assert.equal(wire.length, 16 + 216);
  assert.equal(
    wire.subarray(18, 16 + 108).every((b) => b === 0),
    true,
  );
  assert.equal(
    wire.subarray(16 + 110, 16 + 216).every((b) => b === 0),
    true,
  );
  const r = parseProxyHeader(wire);
  assert.equal(r.kind, 'header');
  if (r.kind === 'header')
    assert.deepEqual([r.header.source, r.header.destination], [{ path: '/a' }, { path: '/b' }]);
  // v4 after v6, and v1 after v2: each header carries its own addresses only.
  encodeProxyHeader({
    version: 2,
    source: { address: 'ffff::ffff', port: 1 },
    destination: { address: '::2', port: 2 },
  });
  const v4 = encodeProxyHeader({
    version: 2,
    source: { address: '1.2.3.4', port: 5 },
    destination: { address: '6.7.8.9', port: 10 },
  });
  assert.equal(v4.toString('hex'), '0d0a0d0a000d0a515549540a2111000c01020304060708090005000a');
  assert.equal(
    encodeProxyHeader({
      version: 1,
      source: { address: '1.2.3.4', port: 5 },
      destination: { address: '6.7.8.9', port: 10 },
    }).toString('latin1'),
    'PROXY TCP4 1.2.3.4 6.7.8.9 5 10\r\n',
  );
});
