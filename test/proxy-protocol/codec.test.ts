// Table tests for the codec's decisions at the edges the spec defines.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  crc32c,
  encodeProxyHeader,
  formatIPv6,
  parseCompleteProxyHeader,
  parseIPv4,
  parseIPv6,
  parseProxyHeader,
  ProxyProtocolError,
  sslTlv,
  tryEncodeProxyHeader,
  uniqueIdTlv,
} from '../../src/proxy-protocol/index.ts';

const SIG = '0d0a0d0a000d0a515549540a';
const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const kind = (input: Uint8Array | string) =>
  parseProxyHeader(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
const code = (input: Uint8Array | string) => {
  const r = kind(input);
  return r.kind === 'error' ? r.error.code : r.kind;
};

test('a prefix of a valid start waits; anything that can no longer be a header fails at once', () => {
  assert.equal(code(''), 'incomplete');
  assert.equal(code('PRO'), 'incomplete');
  assert.equal(code(hex(SIG).subarray(0, 7)), 'incomplete');
  assert.equal(code(hex(SIG)), 'incomplete');
  assert.equal(code('PRX'), 'PP_NOT_PROXY_PROTOCOL');
  assert.equal(code('GET / HTTP/1.1\r\n'), 'PP_NOT_PROXY_PROTOCOL');
  assert.equal(code(hex('0d0a0d0a00')), 'incomplete');
  assert.equal(code(hex('0d0a0d0b')), 'PP_NOT_PROXY_PROTOCOL');
  assert.equal(code(hex(`${SIG}31`)), 'PP_V2_BAD_VERSION');
  assert.equal(code(hex(`${SIG}2f`)), 'PP_V2_BAD_COMMAND');
  assert.equal(code(hex(`${SIG}2113`)), 'PP_V2_BAD_FAMILY');
  // v1: a bad protocol or field is refused before the CRLF arrives.
  assert.equal(code('PROXY TCP4 1.2.3.4 5.6.7.8 80'), 'incomplete');
  assert.equal(code('PROXY TCP5'), 'PP_V1_BAD_PROTOCOL');
  assert.equal(code('PROXY TCP4 1.2.3.4x'), 'PP_V1_BAD_ADDRESS');
  assert.equal(code('PROXY TCP4 01.2.3.4 '), 'PP_V1_BAD_ADDRESS');
  assert.equal(code('PROXY TCP4 1.2.3.4 5.6.7.8 080'), 'PP_V1_BAD_PORT');
  assert.equal(code('PROXY TCP4 1.2.3.4 5.6.7.8 80 443 '), 'PP_V1_BAD_FIELD_COUNT');
  assert.equal(code(`PROXY UNKNOWN ${'x'.repeat(80)}`), 'incomplete');
  assert.equal(code(`PROXY UNKNOWN ${'x'.repeat(92)}`), 'PP_V1_TOO_LONG');
  assert.equal(code(`PROXY UNKNOWN ${'x'.repeat(91)}\r\n`), 'header'); // 107 bytes exactly
  assert.equal(code(`PROXY UNKNOWN ${'x'.repeat(92)}\r\n`), 'PP_V1_TOO_LONG'); // 108
  assert.equal(code('PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r'), 'incomplete');
  assert.equal(code('PROXY TCP4 1.2.3.4 5.6.7.8 80 443\rX'), 'PP_V1_BAD_LINE_END');
  assert.equal(code('PROXY TCP4 1.2.3.4 5.6.7.8 80 443\n'), 'PP_V1_BAD_LINE_END');
});

test('v1 fields: strict addresses, family match, no zone ids, ports without sign or leading zeros', () => {
  const line = (proto: string, a: string, b: string, p = '1', q = '2') =>
    `PROXY ${proto} ${a} ${b} ${p} ${q}\r\n`;
  assert.equal(code(line('TCP4', '0.0.0.0', '255.255.255.255', '0', '65535')), 'header');
  assert.equal(code(line('TCP4', '1.2.3', '1.2.3.4')), 'PP_V1_BAD_ADDRESS');
  assert.equal(code(line('TCP4', '1.2.3.4.5', '1.2.3.4')), 'PP_V1_BAD_ADDRESS');
  assert.equal(code(line('TCP4', '1.2.3.04', '1.2.3.4')), 'PP_V1_BAD_ADDRESS');
  assert.equal(code(line('TCP4', '::ffff:1.2.3.4', '1.2.3.4')), 'PP_V1_BAD_ADDRESS');
  assert.equal(code(line('TCP6', 'fe80::1%eth0', '::1')), 'PP_V1_BAD_ADDRESS');
  assert.equal(code(line('TCP6', '1::2::3', '::1')), 'PP_V1_BAD_ADDRESS');
  assert.equal(code(line('TCP6', '12345::1', '::1')), 'PP_V1_BAD_ADDRESS');
  assert.equal(code(line('TCP6', '[::1]', '::1')), 'PP_V1_BAD_ADDRESS');
  assert.equal(code(line('TCP6', '1:2:3:4:5:6:7:8:9', '::1')), 'PP_V1_BAD_ADDRESS');
  assert.equal(code(line('TCP4', '1.2.3.4', '1.2.3.4', '-1')), 'PP_V1_BAD_PORT');
  assert.equal(code(line('TCP4', '1.2.3.4', '1.2.3.4', '00')), 'PP_V1_BAD_PORT');
  assert.equal(code(line('TCP4', '1.2.3.4', '1.2.3.4', '1', ' 2')), 'PP_V1_BAD_FIELD_COUNT');
  assert.equal(code(`PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n`), 'PP_V1_BAD_FIELD_COUNT');
  assert.equal(code('PROXY UNKNOWNX\r\n'), 'PP_V1_BAD_PROTOCOL');
  assert.equal(code('PROXY\r\n'), 'PP_V1_BAD_SIGNATURE');
  const mapped = kind(line('TCP6', '::FFFF:1.2.3.4', '0:0:0:0:0:0:0:1'));
  assert.ok(mapped.kind === 'header');
  assert.deepEqual(mapped.header.source, { address: '::ffff:1.2.3.4', port: 1 });
  assert.deepEqual(mapped.header.destination, { address: '::1', port: 2 });
});

test('IPv6 text: RFC 5952 output, strict input', () => {
  const cases: Array<[string, string]> = [
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['1::', '1::'],
    ['2001:db8::aaaa:0:0:1', '2001:db8::aaaa:0:0:1'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::192.0.2.1', '::c000:201'],
  ];
  for (const [input, expected] of cases) {
    const bytes = parseIPv6(input);
    assert.ok(bytes, input);
    assert.equal(formatIPv6(bytes, 0), expected, input);
  }
  for (const bad of ['', ':', ':::', '1:2', '::1%lo', '1:2:3:4:5:6:7::8', '::ffff:1.2.3', 'g::1', '1:']) {
    assert.equal(parseIPv6(bad), null, bad);
  }
  assert.deepEqual([...parseIPv4('10.0.0.255')!], [10, 0, 0, 255]);
  assert.equal(parseIPv4('256.0.0.1'), null);
  assert.equal(parseIPv4(' 1.2.3.4'), null);
});

function v2(command: number, family: number, body: string): Buffer {
  const b = hex(body);
  return Buffer.concat([hex(SIG), Buffer.from([0x20 | command, family, b.length >> 8, b.length & 0xff]), b]);
}

test('v2 families: PROXY needs a defined family/transport; LOCAL ignores the family and never the TLV rules', () => {
  assert.equal(code(v2(1, 0x10, '7f0000017f000002005001bb')), 'PP_V2_BAD_FAMILY');
  assert.equal(code(v2(1, 0x01, '')), 'PP_V2_BAD_FAMILY');
  const local = kind(v2(0, 0x10, ''));
  assert.ok(local.kind === 'header' && local.header.command === 'LOCAL' && local.header.source === null);
  // LOCAL with an address block (some senders) or without one (AWS): both skip exactly `length`.
  const withBlock = kind(Buffer.concat([v2(0, 0x11, '7f0000017f000002005001bb'), Buffer.from('GET')]));
  assert.ok(withBlock.kind === 'header');
  assert.equal(withBlock.consumed, 28);
  assert.equal(withBlock.header.source, null);
  assert.equal(code(v2(0, 0x00, '0300040000000')), 'PP_V2_TLV_OVERFLOW'); // odd hex: 6 bytes, CRC needs 7
  assert.equal(code(v2(0, 0x00, '03000400000000')), 'PP_V2_CRC32C_MISMATCH');
  // UNIX: two NUL-padded 108-byte paths.
  const path = (p: string) => Buffer.concat([Buffer.from(p), Buffer.alloc(108 - p.length)]).toString('hex');
  const unix = kind(v2(1, 0x31, path('/run/a.sock') + path('/b')));
  assert.ok(unix.kind === 'header');
  assert.deepEqual(
    [unix.header.protocol, unix.header.source, unix.header.destination],
    ['UNIX_STREAM', { path: '/run/a.sock' }, { path: '/b' }],
  );
  assert.equal(code(v2(1, 0x31, path('/x'))), 'PP_V2_LENGTH_TOO_SMALL');
});

test('v2 TLV rules: bounds, UNIQUE_ID <= 128, UTF-8 AUTHORITY, SSL sub-TLV bounds, duplicate CRC32C', () => {
  const addr = '7f0000017f000002005001bb';
  const tlv = (type: number, value: string) =>
    Buffer.concat([
      Buffer.from([type, (value.length / 2) >> 8, (value.length / 2) & 0xff]),
      hex(value),
    ]).toString('hex');
  assert.equal(code(v2(1, 0x11, addr + tlv(5, '61'.repeat(128)))), 'header');
  assert.equal(code(v2(1, 0x11, addr + tlv(5, '61'.repeat(129)))), 'PP_V2_UNIQUE_ID_TOO_LONG');
  assert.equal(code(v2(1, 0x11, addr + tlv(2, 'c328'))), 'PP_V2_BAD_AUTHORITY');
  assert.equal(code(v2(1, 0x11, addr + tlv(2, 'e697a5e69cac'))), 'header');
  assert.equal(code(v2(1, 0x11, addr + tlv(0x20, '01000000'))), 'PP_V2_SSL_TRUNCATED');
  assert.equal(code(v2(1, 0x11, addr + tlv(0x20, `0100000000${'2200'}`))), 'PP_V2_SSL_TLV_TRUNCATED');
  assert.equal(code(v2(1, 0x11, addr + tlv(0x20, `0100000000${'22000561'}`))), 'PP_V2_SSL_TLV_OVERFLOW');
  assert.equal(code(v2(1, 0x11, addr + tlv(0x20, `0100000000${'220001ff'}`))), 'PP_V2_SSL_BAD_TEXT');
  assert.equal(code(v2(1, 0x11, addr + tlv(3, '00000000') + tlv(3, '00000000'))), 'PP_V2_CRC32C_DUPLICATE');
  assert.equal(code(v2(1, 0x11, `${addr}ff`)), 'PP_V2_TLV_TRUNCATED');
  // A TLV that would run into the application's bytes is refused, even though those bytes are there.
  const overflow = Buffer.concat([v2(1, 0x11, `${addr}0200`), hex('05414243444546')]);
  assert.equal(code(overflow), 'PP_V2_TLV_TRUNCATED');
  // Custom-range TLVs that do not fit a cloud's layout are kept, not refused.
  const odd = kind(v2(1, 0x11, addr + tlv(0xea, '02ffff') + tlv(0xee, '01') + tlv(0xe0, '0102')));
  assert.ok(odd.kind === 'header');
  assert.equal(odd.header.tlvs.length, 3);
  assert.equal(odd.header.awsVpcEndpointId, undefined);
  const ssl = kind(
    encodeProxyHeader({
      version: 2,
      source: { address: '1.2.3.4', port: 1 },
      destination: { address: '5.6.7.8', port: 2 },
      tlvs: [
        sslTlv({
          client: 0x07,
          verify: 0,
          tlvs: [
            { type: 0x21, value: Buffer.from('TLSv1.3') },
            { type: 0x22, value: Buffer.from('client.example') },
          ],
        }),
      ],
    }),
  );
  assert.ok(ssl.kind === 'header' && ssl.header.ssl);
  assert.equal(ssl.header.ssl.version, 'TLSv1.3');
  assert.equal(ssl.header.ssl.cn, 'client.example');
  assert.equal(ssl.header.ssl.clientCertSess, true);
});

test('CRC32C is Castagnoli', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
});

test('encode refuses invalid specs with stable codes', () => {
  const base = { source: { address: '1.2.3.4', port: 1 }, destination: { address: '5.6.7.8', port: 2 } };
  const errorCode = (spec: Parameters<typeof tryEncodeProxyHeader>[0]) => {
    const r = tryEncodeProxyHeader(spec);
    return r.ok ? 'ok' : r.error.code;
  };
  assert.equal(errorCode({ version: 2, ...base }), 'ok');
  assert.equal(errorCode({ version: 2, protocol: 'TCP6', ...base }), 'PP_ENCODE_BAD_ADDRESS');
  assert.equal(
    errorCode({ version: 2, source: { address: '1.2.3.4', port: 70000 }, destination: base.destination }),
    'PP_ENCODE_BAD_PORT',
  );
  assert.equal(
    errorCode({ version: 2, source: { address: 'example.com', port: 1 } }),
    'PP_ENCODE_BAD_ADDRESS',
  );
  assert.equal(errorCode({ version: 1, protocol: 'UDP4', ...base }), 'PP_ENCODE_UNSUPPORTED');
  assert.equal(errorCode({ version: 1, ...base, crc32c: true }), 'PP_ENCODE_UNSUPPORTED');
  assert.equal(
    errorCode({ version: 2, ...base, tlvs: [{ type: 2, value: hex('ff') }] }),
    'PP_ENCODE_BAD_TLV',
  );
  assert.equal(
    errorCode({ version: 2, ...base, tlvs: [{ type: 3, value: hex('00') }], crc32c: true }),
    'PP_ENCODE_BAD_TLV',
  );
  assert.equal(
    errorCode({ version: 2, ...base, tlvs: [{ type: 0xe1, value: new Uint8Array(65530) }] }),
    'PP_ENCODE_TOO_LONG',
  );
  assert.equal(
    errorCode({ version: 2, ...base, tlvs: [{ type: 2, value: hex('ff') }], validate: false }),
    'ok',
  );
  assert.throws(() => encodeProxyHeader({ version: 2, protocol: 'TCP6', ...base }), ProxyProtocolError);
  assert.throws(() => uniqueIdTlv('x'.repeat(129)), { code: 'PP_ENCODE_BAD_TLV' });
  assert.equal(encodeProxyHeader({ version: 1, command: 'LOCAL' }).toString(), 'PROXY UNKNOWN\r\n');
  const local = parseCompleteProxyHeader(encodeProxyHeader({ version: 2, command: 'LOCAL', ...base }));
  assert.ok(local.kind === 'header');
  assert.equal(local.consumed, 16); // LOCAL never carries addresses
});
