// Golden bytes: what the encoder (and the load balancer's header builder) writes, compared byte for
// byte with hex written out here by hand from the PROXY protocol spec (haproxy.org proxy-protocol.txt,
// §2.1 for v1, §2.2 for v2). Where a CRC32C is needed, the hex comes from elsewhere: two headers an
// AWS NLB really sent (captures published in aws/elastic-load-balancing-tools and
// kubernetes/kubernetes#57250), or the bitwise textbook CRC-32C below, itself pinned to the
// standard check value and to those captures. Nothing here was produced by running keepip's encoder.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHeaderBuilder } from '../../src/lb/proxy-header.ts';
import {
  authorityTlv,
  awsVpcEndpointIdTlv,
  type EncodeSpec,
  encodeProxyHeader,
  noopTlv,
} from '../../src/proxy-protocol/index.ts';

/** Hex with spaces and line breaks for reading; `crc` marks a CRC32C field filled by refCrc32c. */
function hex(...parts: string[]): string {
  return parts.join('').replace(/\s+/g, '');
}

const SIG = '0d0a0d0a 000d0a51 5549540a'; // \r\n\r\n\0\r\nQUIT\n

/** CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, one bit at a time: the textbook form. */
function refCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Fills the 8 hex digits `crc` with the CRC-32C of the header with that field zeroed (spec §2.2.5). */
function withCrc(template: string): string {
  const at = template.indexOf('crc');
  assert.ok(at >= 0 && template.indexOf('crc', at + 1) < 0, 'exactly one crc field');
  const zeroed = template.replace('crc', '00000000');
  const sum = refCrc32c(Buffer.from(zeroed, 'hex'));
  return template.replace('crc', sum.toString(16).padStart(8, '0'));
}

function encoded(spec: EncodeSpec): string {
  return encodeProxyHeader(spec).toString('hex');
}

// An AWS NLB's header for a client reaching it through a VPC endpoint: CRC32C, AWS TLV 0xEA subtype
// 0x01 with the endpoint id, NOOP padding (go-proxyproto tlvparse/aws_test.go, "VPCE example").
const AWS_VPCE_CAPTURE = hex(
  SIG,
  '21 11 0054', // v2 PROXY, TCP over IPv4, 84 bytes follow
  'ac1f0771 ac1f0a1f c8f2 0050', // 172.31.7.113 -> 172.31.10.31, 51442 -> 80
  '03 0004 e8d6892d', // CRC32C
  'ea 0017 01 767063652d3038643262663135666163353030316339', // AWS, VPCE id "vpce-08d2bf15fac5001c9"
  `04 0024 ${'00'.repeat(36)}`, // NOOP, 36 bytes
);

// An AWS NLB health check: LOCAL with family byte TCP4 but no address block, CRC32C, NOOP padding.
const AWS_HEALTH_CHECK_CAPTURE = hex(SIG, '20 11 0054', '03 0004 bce5951f', `04 004a ${'00'.repeat(74)}`);

test('the reference CRC-32C gives the standard check value and the CRCs AWS computed', () => {
  assert.equal(refCrc32c(Buffer.from('123456789')).toString(16), 'e3069283'); // RFC 3720 B.4 / CRC catalogue
  for (const capture of [AWS_VPCE_CAPTURE, AWS_HEALTH_CHECK_CAPTURE]) {
    const at = capture.indexOf('030004') + 6;
    const template = `${capture.slice(0, at)}crc${capture.slice(at + 8)}`;
    assert.equal(withCrc(template), capture);
  }
});

test('v1 TCP4: the spec §2.1 example', () => {
  const expected = hex(
    '50524f5859 20', // "PROXY "
    '54435034 20', // "TCP4 "
    '3139322e3136382e302e31 20', // "192.168.0.1 "
    '3139322e3136382e302e3131 20', // "192.168.0.11 "
    '3536333234 20', // "56324 "
    '343433 0d0a', // "443\r\n"
  );
  const spec: EncodeSpec = {
    version: 1,
    protocol: 'TCP4',
    source: { address: '192.168.0.1', port: 56324 },
    destination: { address: '192.168.0.11', port: 443 },
  };
  assert.equal(encoded(spec), expected);
});

test('v1 TCP6: addresses given uncompressed go out in RFC 5952 form', () => {
  const expected = hex(
    '50524f5859 20 54435036 20', // "PROXY TCP6 "
    '323030313a6462383a3a31 20', // "2001:db8::1 "
    '3a3a31 20', // "::1 "
    '3132333435 20', // "12345 "
    '343433 0d0a', // "443\r\n"
  );
  const spec: EncodeSpec = {
    version: 1,
    protocol: 'TCP6',
    source: { address: '2001:0db8:0000:0000:0000:0000:0000:0001', port: 12345 },
    destination: { address: '0:0:0:0:0:0:0:1', port: 443 },
  };
  assert.equal(encoded(spec), expected);
});

test('v1 UNKNOWN: what v1 writes for a connection without addresses (LOCAL)', () => {
  const expected = hex('50524f5859 20 554e4b4e4f574e 0d0a'); // "PROXY UNKNOWN\r\n"
  assert.equal(encoded({ version: 1, command: 'LOCAL' }), expected);
  assert.equal(encoded({ version: 1, protocol: 'UNKNOWN' }), expected);
});

test('v2 TCP4 without TLVs', () => {
  const expected = hex(
    SIG,
    '21', // version 2, command PROXY
    '11', // AF_INET, STREAM
    '000c', // 12 bytes: the IPv4 address block
    '7f000001 7f000002', // 127.0.0.1 -> 127.0.0.2
    '0050 01bb', // 80 -> 443
  );
  const spec: EncodeSpec = {
    version: 2,
    source: { address: '127.0.0.1', port: 80 },
    destination: { address: '127.0.0.2', port: 443 },
  };
  assert.equal(encoded(spec), expected);
});

test('v2 TCP6 without TLVs', () => {
  const expected = hex(
    SIG,
    '21 21 0024', // PROXY, AF_INET6 STREAM, 36 bytes
    '20010db8 00000000 00000000 00000001', // 2001:db8::1
    '00000000 00000000 00000000 00000001', // ::1
    '3039 01bb', // 12345 -> 443
  );
  const spec: EncodeSpec = {
    version: 2,
    source: { address: '2001:db8::1', port: 12345 },
    destination: { address: '::1', port: 443 },
  };
  assert.equal(encoded(spec), expected);
});

test('v2 TCP4 with an AUTHORITY TLV (HAProxy reg-test proxy_protocol_tlv_validation)', () => {
  const expected = hex(
    SIG,
    '21 11 0014', // 20 bytes: 12 of addresses, 8 of TLV
    '7f000001 7f000001 002a 0539', // 127.0.0.1:42 -> 127.0.0.1:1337
    '02 0005 3132333435', // AUTHORITY "12345"
  );
  const spec: EncodeSpec = {
    version: 2,
    source: { address: '127.0.0.1', port: 42 },
    destination: { address: '127.0.0.1', port: 1337 },
    tlvs: [authorityTlv('12345')],
  };
  assert.equal(encoded(spec), expected);
});

test('v2 TCP4 with CRC32C, AWS VPC endpoint and NOOP TLVs: the bytes an AWS NLB sent', () => {
  const spec: EncodeSpec = {
    version: 2,
    source: { address: '172.31.7.113', port: 51442 },
    destination: { address: '172.31.10.31', port: 80 },
    crc32c: true,
    tlvs: [awsVpcEndpointIdTlv('vpce-08d2bf15fac5001c9'), noopTlv(36)],
  };
  assert.equal(encoded(spec), AWS_VPCE_CAPTURE);
});

test('v2 LOCAL: the bare 16 bytes, and an AWS NLB health check with CRC32C', () => {
  assert.equal(encoded({ version: 2, command: 'LOCAL' }), hex(SIG, '20 00 0000'));
  const healthCheck: EncodeSpec = {
    version: 2,
    command: 'LOCAL',
    protocol: 'TCP4',
    crc32c: true,
    tlvs: [noopTlv(74)],
  };
  assert.equal(encoded(healthCheck), AWS_HEALTH_CHECK_CAPTURE);
});

// keepip lb's header builder: the TLVs it adds and their order (CRC32C, AWS, UNIQUE_ID).
const FIXED_ID = () => Uint8Array.from({ length: 16 }, (_, i) => i);
const VPCE = 'vpce-0123456789abcdef0';
// AWS TLV: subtype 0x01 and the 22 characters "vpce-" "0123456789abcdef" "0": 23 bytes of value.
const VPCE_TLV = 'ea 0017 01 767063652d 30313233343536373839616263646566 30';
const FLOW = {
  client: { address: '127.0.0.77', port: 51234 },
  listener: { address: '127.0.10.1', port: 80 },
};

test('lb v2 flow header with CRC32C, AWS VPC endpoint and UNIQUE_ID', () => {
  const builder = createHeaderBuilder(
    'v2',
    { crc32c: true, uniqueId: true, awsVpcEndpointId: VPCE },
    FIXED_ID,
  );
  const expected = withCrc(
    hex(
      SIG,
      '21 11 0040', // 64 bytes: 12 addresses + 7 CRC32C + 26 AWS + 19 UNIQUE_ID
      '7f00004d 7f000a01 c822 0050', // 127.0.0.77:51234 -> 127.0.10.1:80
      '03 0004 crc',
      VPCE_TLV,
      '05 0010 000102030405060708090a0b0c0d0e0f', // UNIQUE_ID, 16 bytes
    ),
  );
  const flow = builder.forFlow(FLOW);
  assert.ok(flow.ok, JSON.stringify(flow));
  assert.equal(flow.value.toString('hex'), expected);
});

test('lb v2 health-check header: LOCAL with CRC32C and the AWS TLV, no UNIQUE_ID', () => {
  const builder = createHeaderBuilder(
    'v2',
    { crc32c: true, uniqueId: true, awsVpcEndpointId: VPCE },
    FIXED_ID,
  );
  const expected = withCrc(hex(SIG, '20 00 0021', '03 0004 crc', VPCE_TLV)); // 33 = 7 + 26
  assert.equal(builder.local().toString('hex'), expected);
});

test('lb v2: an IPv4 client on an IPv6 listener is written as TCP6 with IPv4-mapped addresses', () => {
  const builder = createHeaderBuilder('v2', {}, FIXED_ID);
  const expected = hex(
    SIG,
    '21 21 0024',
    '00000000 00000000 0000ffff 7f00004d', // ::ffff:127.0.0.77
    '00000000 00000000 00000000 00000001', // ::1
    'c822 0050',
  );
  const flow = builder.forFlow({ client: FLOW.client, listener: { address: '::1', port: 80 } });
  assert.ok(flow.ok, JSON.stringify(flow));
  assert.equal(flow.value.toString('hex'), expected);
});

test('lb v1: the flow header and the health-check header', () => {
  const builder = createHeaderBuilder('v1', {}, FIXED_ID);
  const flow = builder.forFlow(FLOW);
  assert.ok(flow.ok, JSON.stringify(flow));
  const expected = hex(
    '50524f5859 20 54435034 20', // "PROXY TCP4 "
    '3132372e302e302e3737 20', // "127.0.0.77 "
    '3132372e302e31302e31 20', // "127.0.10.1 "
    '3531323334 20 3830 0d0a', // "51234 80\r\n"
  );
  assert.equal(flow.value.toString('hex'), expected);
  assert.equal(builder.local().toString('hex'), hex('50524f5859 20 554e4b4e4f574e 0d0a'));
});
