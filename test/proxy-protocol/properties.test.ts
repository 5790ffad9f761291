// Property tests (fast-check): encode/parse round trips, chunking, and hostile input.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  alpnTlv,
  authorityTlv,
  awsVpcEndpointIdTlv,
  azureLinkIdTlv,
  type EncodeSpec,
  encodeProxyHeader,
  formatIPv6,
  gcpConnectionIdTlv,
  netnsTlv,
  ProxyHeaderParser,
  type ProxyTransportProtocol,
  parseProxyHeader,
  sslTlv,
  type Tlv,
  TLV,
  uniqueIdTlv,
} from '../../src/proxy-protocol/index.ts';

const text = fc.string({ unit: fc.constantFrom(...'abcXYZ019-._/:é€字'.split('')), maxLength: 40 });
const bytes = (maxLength: number) => fc.uint8Array({ maxLength });
const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => b.join('.'));
const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).chain((b) =>
  // Any valid spelling in; the codec's output is RFC 5952 either way.
  fc.constantFrom(formatIPv6(b, 0), uncompressed(b), uncompressed(b).toUpperCase()),
);
const port = fc.integer({ min: 0, max: 65535 });

function uncompressed(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16).padStart(4, '0'));
  return groups.join(':');
}

const sslSub = fc.oneof(
  fc.record({
    type: fc.integer({ min: 0x21, max: 0x27 }),
    value: text.map((s) => new TextEncoder().encode(s)),
  }),
  fc.record({ type: fc.constant(0x28), value: bytes(64) }),
  fc.record({ type: fc.integer({ min: 0x29, max: 0x2f }), value: bytes(16) }),
);

const tlv: fc.Arbitrary<Tlv> = fc.oneof(
  text.map(authorityTlv),
  bytes(20).map(alpnTlv),
  bytes(128).map(uniqueIdTlv),
  text.map(netnsTlv),
  bytes(40).map((value) => ({ type: TLV.NOOP, value })),
  fc.stringMatching(/^vpce-[0-9a-f]{17}$/).map(awsVpcEndpointIdTlv),
  fc.integer({ min: 0, max: 0xffffffff }).map(azureLinkIdTlv),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(gcpConnectionIdTlv),
  fc
    .record({
      client: fc.integer({ min: 0, max: 7 }),
      verify: fc.nat(),
      tlvs: fc.array(sslSub, { maxLength: 4 }),
    })
    .map(sslTlv),
  // Types without rules of their own (custom range included).
  fc.record({
    type: fc.integer({ min: 0, max: 255 }).filter((t) => ![0x02, 0x03, 0x05, 0x20, 0x30].includes(t)),
    value: bytes(60),
  }),
);

const inet = (family: 4 | 6) =>
  fc.record({ address: family === 4 ? ipv4 : ipv6, port }).map((e) => ({ ...e }));
const unix = text.filter((s) => !s.includes('\0')).map((path) => ({ path }));

const v2Spec: fc.Arbitrary<EncodeSpec> = fc
  .record({
    command: fc.constantFrom('PROXY', 'LOCAL') as fc.Arbitrary<'PROXY' | 'LOCAL'>,
    protocol: fc.constantFrom<ProxyTransportProtocol>(
      'TCP4',
      'UDP4',
      'TCP6',
      'UDP6',
      'UNIX_STREAM',
      'UNIX_DGRAM',
      'UNSPEC',
    ),
    tlvs: fc.array(tlv, { maxLength: 6 }),
    crc32c: fc.boolean(),
    v4: fc.tuple(inet(4), inet(4)),
    v6: fc.tuple(inet(6), inet(6)),
    unix: fc.tuple(unix, unix),
  })
  .map(({ command, protocol, tlvs, crc32c, v4, v6, unix }) => {
    const pair = protocol.endsWith('4') ? v4 : protocol.endsWith('6') ? v6 : unix;
    const spec: EncodeSpec = { version: 2, command, protocol, tlvs, crc32c };
    if (command === 'PROXY' && protocol !== 'UNSPEC') {
      spec.source = pair[0];
      spec.destination = pair[1];
    }
    return spec;
  });

const v1Spec: fc.Arbitrary<EncodeSpec> = fc.oneof(
  fc
    .tuple(inet(4), inet(4))
    .map(([s, d]): EncodeSpec => ({ version: 1, protocol: 'TCP4', source: s, destination: d })),
  fc
    .tuple(inet(6), inet(6))
    .map(([s, d]): EncodeSpec => ({ version: 1, protocol: 'TCP6', source: s, destination: d })),
  fc.constant<EncodeSpec>({ version: 1, protocol: 'UNKNOWN' }),
);

const anySpec = fc.oneof(v2Spec, v1Spec);

function canonical(address: string): string {
  if (!address.includes(':')) return address;
  const b = new Uint8Array(16);
  // Parse via the expanded form the generator used: formatIPv6 of the bytes is the expectation.
  const groups = address.toLowerCase().includes('::') ? null : address.split(':');
  if (groups === null || groups.length !== 8) return address.toLowerCase(); // already RFC 5952
  groups.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    b[2 * i] = v >> 8;
    b[2 * i + 1] = v & 0xff;
  });
  return formatIPv6(b, 0);
}

test('encode -> parse returns the same header, and re-encoding gives the same bytes', () => {
  fc.assert(
    fc.property(anySpec, (spec) => {
      const wire = encodeProxyHeader(spec);
      const result = parseProxyHeader(wire);
      assert.equal(result.kind, 'header', result.kind === 'error' ? result.error.message : '');
      if (result.kind !== 'header') return;
      const h = result.header;
      assert.equal(result.consumed, wire.length);
      assert.equal(h.version, spec.version);
      assert.equal(h.command, spec.command ?? 'PROXY');
      assert.equal(h.protocol, spec.protocol);
      const expectEndpoint = (e: EncodeSpec['source']) =>
        e === undefined ? null : 'path' in e ? e : { address: canonical(e.address), port: e.port };
      assert.deepEqual(h.source, expectEndpoint(spec.source));
      assert.deepEqual(h.destination, expectEndpoint(spec.destination));
      const given = spec.tlvs ?? [];
      const userTlvs = spec.crc32c ? h.tlvs.slice(1) : h.tlvs;
      assert.deepEqual(
        userTlvs.map((t) => [t.type, Buffer.from(t.value).toString('hex')]),
        given.map((t) => [t.type, Buffer.from(t.value).toString('hex')]),
      );
      assert.equal(h.crc32c !== undefined, spec.crc32c === true);
      const first = (type: number) => given.find((t) => t.type === type);
      const authority = first(TLV.AUTHORITY);
      assert.equal(h.authority, authority && new TextDecoder().decode(authority.value));
      assert.deepEqual(h.uniqueId, first(TLV.UNIQUE_ID)?.value);
      const ssl = first(TLV.SSL);
      assert.equal(h.ssl?.client, ssl?.value[0]);
      // The cloud types sit in the custom range: only a value with the cloud's layout is decoded
      // (the first such one); any other value under the same type stays a plain TLV.
      const firstFitting = (type: number, fits: (v: Uint8Array) => boolean) =>
        given.find((t) => t.type === type && fits(t.value));
      const aws = firstFitting(
        TLV.AWS,
        (v) => v.length > 1 && v[0] === 0x01 && v.subarray(1).every((c) => c >= 0x21 && c <= 0x7e),
      );
      assert.equal(h.awsVpcEndpointId, aws && Buffer.from(aws.value.subarray(1)).toString('latin1'));
      const gcp = firstFitting(TLV.GCP, (v) => v.length === 8);
      assert.equal(h.gcpConnectionId, gcp && Buffer.from(gcp.value).readBigUInt64BE(0));
      const azure = firstFitting(TLV.AZURE, (v) => v.length === 5 && v[0] === 0x01);
      assert.equal(h.azureLinkId, azure && Buffer.from(azure.value).readUInt32LE(1));

      // The fuzz law of go-proxyproto: what is accepted re-encodes to the same bytes.
      const again = encodeProxyHeader({
        version: h.version,
        command: h.command,
        protocol: h.protocol,
        ...(h.source ? { source: h.source } : {}),
        ...(h.destination ? { destination: h.destination } : {}),
        tlvs: userTlvs,
        crc32c: h.crc32c !== undefined,
      });
      assert.deepEqual(again, wire);
    }),
    { numRuns: 400 },
  );
});

test('any split of valid bytes into chunks parses the same, and the bytes after the header are kept', () => {
  fc.assert(
    fc.property(anySpec, bytes(30), fc.array(fc.nat(), { maxLength: 8 }), (spec, tail, cuts) => {
      const wire = encodeProxyHeader(spec);
      const input = Buffer.concat([wire, tail]);
      const whole = parseProxyHeader(input);
      const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
      const parser = new ProxyHeaderParser();
      let last = 0;
      let result: ReturnType<ProxyHeaderParser['push']> | undefined;
      for (const end of [...points, input.length]) {
        if (end <= last) continue;
        result = parser.push(input.subarray(last, end));
        last = end;
        if (result.kind !== 'incomplete') break;
        assert.ok(end < wire.length, 'incomplete although the whole header was there');
      }
      assert.deepEqual(result, whole);
      assert.deepEqual(Buffer.from(parser.rest()), input.subarray(wire.length, last));
    }),
    { numRuns: 300 },
  );
});

/** The law for any input: no exception, and a header never depends on bytes past `consumed`. */
function checkHostile(input: Uint8Array, tail: Uint8Array): void {
  let result: ReturnType<typeof parseProxyHeader>;
  try {
    result = parseProxyHeader(input);
  } catch (error) {
    assert.fail(`parseProxyHeader threw: ${(error as Error).stack}`);
  }
  assert.ok(['incomplete', 'header', 'error'].includes(result.kind));
  if (result.kind === 'error') {
    assert.match(result.error.code, /^PP_[A-Z0-9_]+$/);
  } else if (result.kind === 'header') {
    assert.ok(result.consumed > 0 && result.consumed <= input.length);
    const exact = input.subarray(0, result.consumed);
    assert.deepEqual(parseProxyHeader(exact), result);
    assert.deepEqual(parseProxyHeader(Buffer.concat([exact, tail])), result);
  } else if (result.need !== undefined) {
    assert.ok(result.need > input.length);
  }
}

test('random input never throws and never reads past the declared length', () => {
  const prefixed = fc.oneof(
    bytes(200),
    bytes(200).map((b) => Buffer.concat([Buffer.from('PROXY '), b])),
    fc
      .tuple(fc.constantFrom('TCP4 ', 'TCP6 ', 'UNKNOWN '), fc.string({ maxLength: 100 }))
      .map(([p, s]) => Buffer.from(`PROXY ${p}${s}\r\n`, 'latin1')),
    bytes(200).map((b) => Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), b])),
  );
  fc.assert(fc.property(prefixed, bytes(20), checkHostile), { numRuns: 2000 });
});

test('mutated valid headers never throw and never read past the declared length', () => {
  const mutation = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
    minLength: 1,
    maxLength: 4,
  });
  fc.assert(
    fc.property(anySpec, mutation, fc.nat(), bytes(20), (spec, flips, cut, tail) => {
      const wire = Buffer.from(encodeProxyHeader(spec));
      for (const [at, value] of flips) wire[at % wire.length] = value;
      checkHostile(wire, tail);
      checkHostile(wire.subarray(0, cut % (wire.length + 1)), tail);
    }),
    { numRuns: 1500 },
  );
});
