// Claims of docs/proxy-protocol.md and docs/client-ip.md that no other test exercises with these input
// classes, checked as an attacker or an operator meets them: pure tests against the module the doc names,
// the PROXY reader over real loopback sockets, and one real `keepip gateway` (bin/keepip via startKeepip)
// with clients bound to distinct 127.x sources sending raw PROXY headers.
//
// Claims checked here (quoted):
// - proxy-protocol.md: "Only the first header counts: a second header behind it is application data".
// - "at most 107 bytes with the CRLF" (a TCP6 line, the longest legal kind, at 106/107/108 bytes);
//   "IPv6 as RFC 4291 text (... an optional dotted IPv4 tail)"; "single spaces between fields; no
//   trailing space"; "`PROXY UNKNOWN` followed by anything up to the CRLF: accepted, the socket's own
//   endpoints apply".
// - "a length that holds the address block (12, 36 or 216 bytes)"; "PROXY with UNSPEC is accepted: the
//   socket's endpoints apply"; "LOCAL (health checks): the family is ignored as long as both nibbles are
//   in range (family 0-3, transport 0-2), addresses are never used, and exactly `length` bytes are
//   skipped"; "PROXY needs one of the defined family/transport bytes".
// - "TLVs must fill the rest of the header exactly; unknown types and NOOP are kept in `tlvs` and
//   otherwise ignored"; the error-code table (`PP_V2_TLV_TRUNCATED` "1-2 stray bytes", ...).
// - Reader: "`isTrusted(peer)` the immediate peer's address (IPv4-mapped folded to IPv4) ... A throwing
//   policy counts as "no""; "`timeoutMs` the whole header must arrive within this time"; "`maxHeaderBytes`
//   cap on the header size, default 4096"; "`onReject` called once per refused connection"; "`onAccept`
//   called once per accepted header"; "`closed` (peer closed or reset before the header was complete)";
//   "For LOCAL, UNSPEC, v1 UNKNOWN and UNIX headers, `fromHeader` is false and the client/destination are
//   the socket's own endpoints".
// - client-ip.md §1: "`0x0a.0.0.1`, `167772161`, `1.2.3` rejected (only four decimal octets)";
//   "`::ffff:10.0.0.1` ... **IPv4 10.0.0.1**, everywhere: matching, logs, headers"; "`::10.0.0.1`
//   (IPv4-compatible), ... `64:ff9b::10.0.0.1` (NAT64) IPv6 (... never match IPv4 rules)"; "host bits are
//   masked"; "`/08` is accepted, as Go's `net.ParseCIDR` accepts it"; "`::ffff:a.b.c.d/N` with N ≥ 96 is
//   the IPv4 prefix `a.b.c.d/(N-96)`"; "`0.0.0.0/0, ::/0` is "everyone", `::/0` alone is "every IPv6
//   client"".
// - §2: "the first one when several entries normalise to the same prefix".
// - §3: "(LOCAL/UNKNOWN keep the peer)"; "**v1.13 rule** ... the header is read only when the PROXY
//   address is itself trusted; otherwise the PROXY address is the client"; "Entries may carry a port
//   (`a.b.c.d:port`, `[v6]:port`), as nginx accepts"; "empty entries skipped".
// - §4: "deny list → allow list ... A match in ... the deny list denies"; "An unparsable address
//   (including `''` from the resolver) is **denied** whenever any list exists".
// - §5: "`whitelist-source-range` is read only when the allowlist annotation is absent or blank".
// - §7: "Malformed forwarded entries make the client unknown".
//
// Claim -> covering test (elsewhere) or this file:
//   PP v1 fields, ports, zone ids, brackets, 107/108 (UNKNOWN) .. test/proxy-protocol/codec.test.ts:27,55
//   PP v1 107/108 for TCP6, dotted IPv4 tail, UNKNOWN<TAB> ......... this file (codec)
//   PP v2 families, UNIX, LOCAL 0x10, CRC/UNIQUE_ID/SSL/AUTHORITY .. test/proxy-protocol/codec.test.ts:109,132
//   PP v2 length edges 11/12, 35/36, 215/216; LOCAL nibble matrix . this file (codec)
//   PP unknown TLV types / NOOP kept, 2 stray bytes ................ this file (codec)
//   PP reference vectors (49) ...................................... test/proxy-protocol/vectors.test.ts:78
//   reader: split header, second header, untrusted, deadline, cap . test/proxy-protocol/reader.test.ts:92-240
//   reader: LOCAL -> socket endpoints .............................. test/proxy-protocol/reader.test.ts:265
//   reader: UNSPEC/UNKNOWN/UNIX endpoints, throwing policy, mapped
//     peer on a dual-stack socket, reset, whole-header deadline
//     under a trickle, 4096/4097 default cap, once per connection .. this file (reader)
//   gateway: v1/v2 from LB, allowlist on PROXY client, untrusted,
//     no header, header timeout, TLS ........................... test/e2e/gateway-proxy-protocol.test.ts:85-185
//   gateway: mapped PROXY source, v1 zone id / leading zeros ........ test/security/invariants.test.ts:266,276
//   gateway: CRC32C damaged (error-log code) ........................ test/interop/proxy-wire-gateway.test.ts:245
//   gateway: TLV overflow, CRC mismatch, v1 line end (stream) ....... test/security/tcp-proxy-attack.test.ts:137
//   gateway: second header, UNKNOWN/LOCAL/UNIX/UNSPEC client, bad
//     family, TLV truncated/overflow, length too small, 107/108,
//     0x7f/127.1/trailing dot, split v1, compat/NAT64/hex-mapped
//     sources, v1.13 with PROXY, allowlist /0 /32 /128 host bits,
//     duplicates + overlap + deny, deny-only vs unknown client,
//     mapped peers on a dual-stack listener ........................ this file (gateway)
//   XFF walk vs nginx realip (ports, brackets, zones, unknown, lines) test/security/client-ip-variants-attack.test.ts:260
//   spoofing table (43) ............................................. test/net/spoofing.test.ts:46, spoofing-over-sockets:221
//   ip.ts forms (010., 0x0a, 167772161, zone, mapped) ............... test/net/ip.test.ts:7,38,82
//   ip.ts 0x7f.1, 127.1, trailing dots, ::0:ffff:, 0::ffff: ........ this file (net)
//   cidr.ts masking, mapped >= /96, codes .......................... test/net/cidr.test.ts:12,23,38
//   CidrSet longest prefix, first of equal prefixes ................ test/net/cidr-set.test.ts:14
//   resolver chain, v1.13, headersTrusted, RFC 7239 ................ test/net/client-ip.test.ts:56-231
//   CLIENT_IP_BAD_PROXY_SOURCE ..................................... test/net/client-ip.property.test.ts:498
//   access policy order, fail closed, unparsable denied ............ test/net/access-policy.test.ts:12-119
//   parseSourceRange / ConfigMap lists / alias reading ............. test/k8s/source-range.test.ts:13-147
//   proxy-protocol-header-timeout default 5 s ...................... test/k8s/annotations.test.ts:44
//
// Found here, fixed: with use-proxy-protocol and use-forwarded-headers, a PROXY header without an
// address (LOCAL, v1 UNKNOWN, UNSPEC, UNIX) from the trusted load balancer let the client's own
// X-Forwarded-For name the client (and its X-Forwarded-Host be believed): the resolver kept the trusted
// LB peer, and the forwarded-header step then refined it. ingress-nginx's $proxy_protocol_addr is empty
// there, so its forwarded-for reading falls back to it and realip keeps the peer.
//
// One gateway process (shared by every gateway test), a few in-process servers; nothing random.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseSourceRange, resolveAccessRules, sourceRangeModel } from '../../src/k8s/source-range.ts';
import { compileAccessPolicy } from '../../src/net/access-policy.ts';
import { formatCidr, parseCidr } from '../../src/net/cidr.ts';
import { CidrSet } from '../../src/net/cidr-set.ts';
import { canonicalIp } from '../../src/net/ip.ts';
import {
  encodeProxyHeader,
  noopTlv,
  type ParseResult,
  parseProxyHeader,
} from '../../src/proxy-protocol/index.ts';
import {
  acceptProxyProtocol,
  getProxyInfo,
  type ProxyInfo,
  type ProxyReaderOptions,
  type RejectEvent,
} from '../../src/proxy-protocol/reader.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import {
  controllerConfigMap,
  ingress,
  manifestDir,
  serviceWithEndpoints,
  toYaml,
} from '../fixtures/gateway/manifests.ts';
import { openRaw, rawExchange } from '../helpers/net.ts';
import { type Running, startKeepip } from '../helpers/process.ts';
import { type StdoutLines, stdoutOf } from '../workers/helpers.ts';

// ---------------------------------------------------------------------------------------------------
// Bytes

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 header from its raw parts: version/command byte, family/transport byte and body. */
function rawV2(versionCommand: number, familyTransport: number, body: Buffer): Buffer {
  const head = Buffer.from([versionCommand, familyTransport, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([SIG, head, body]);
}

/** An IPv4 address block: source 203.0.113.7:1, destination 10.0.0.1:80 unless given. */
function inetBlock(source = '203.0.113.7'): Buffer {
  return Buffer.concat([Buffer.from(source.split('.').map(Number)), Buffer.from([10, 0, 0, 1, 0, 1, 0, 80])]);
}

function unixPath(path: string): Buffer {
  return Buffer.concat([Buffer.from(path), Buffer.alloc(108 - path.length)]);
}

function tlv(type: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, value.length >> 8, value.length & 0xff]), value]);
}

function v2From(source: string, destinationPort = 80): Buffer {
  return encodeProxyHeader({
    version: 2,
    source: { address: source, port: 40001 },
    destination: { address: source.includes(':') ? '2001:db8::80' : '10.0.0.1', port: destinationPort },
  });
}

function v1From(source: string): Buffer {
  const family = source.includes(':') ? 'TCP6' : 'TCP4';
  const destination = source.includes(':') ? '2001:db8::80' : '10.0.0.1';
  return Buffer.from(`PROXY ${family} ${source} ${destination} 40000 80\r\n`, 'latin1');
}

/** The longest legal kind of v1 line: TCP6 with a 45-character source; `length` 106-108 bytes. */
function tcp6LineOf(length: number): string {
  const source = 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255';
  const fixed = `PROXY TCP6 ${source}  65535 65535\r\n`.length;
  // The destination: eight groups of 1-4 digits; leading zeros pad it to the length asked for.
  let digits = length - fixed - 7;
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) {
    const width = Math.min(4, Math.max(1, digits - (7 - i)));
    groups.push(`${'0'.repeat(width - 1)}1`);
    digits -= width;
  }
  const line = `PROXY TCP6 ${source} ${groups.join(':')} 65535 65535\r\n`;
  assert.equal(line.length, length, line);
  return line;
}

function outcome(result: ParseResult): string {
  if (result.kind === 'error') return result.error.code;
  if (result.kind === 'incomplete') return 'incomplete';
  return `header ${result.consumed}`;
}

const parse = (bytes: Buffer | string) =>
  parseProxyHeader(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);

// ---------------------------------------------------------------------------------------------------
// ALLOWED: differences between the docs' words (or ingress-nginx) and what keepip does that are
// acceptable, each with its reason. The last test checks that each is still what is seen.

const ALLOWED = {
  'unknown-then-tab': {
    claim: 'proxy-protocol.md: "`PROXY UNKNOWN` followed by anything up to the CRLF: accepted"',
    seen: '"PROXY UNKNOWN\\tx\\r\\n" is PP_V1_BAD_PROTOCOL (the grammar puts SP after the protocol)',
    reason:
      'a refusal closes a connection from the trusted LB; it never names a client. The line grammar ' +
      'above the bullet has SP after UNKNOWN, and `UNKNOWNX` is refused the same way (codec.test.ts)',
  },
  'blank-allowlist-alias': {
    claim:
      'client-ip.md §5: "`whitelist-source-range` is read only when the allowlist annotation is absent or blank"',
    seen: 'allowlist "  " (spaces) + whitelist "198.51.100.1": the allowlist is invalid, every client gets 503',
    reason:
      'fails closed, as ingress-nginx reads an alias only while the value is empty ("" reads the ' +
      'whitelist: checked too); the doc now says "empty" and that white space alone is an invalid value',
  },
} as const;

type AllowedKey = keyof typeof ALLOWED;
const allowedSeen = new Map<AllowedKey, string>();

// ---------------------------------------------------------------------------------------------------
// 1. The codec (pure)

describe('PROXY codec: the edges docs/proxy-protocol.md names', () => {
  test('v1 at most 107 bytes with the CRLF: a TCP6 line of 106 and 107 bytes parses, 108 is PP_V1_TOO_LONG', () => {
    assert.equal(outcome(parse(tcp6LineOf(106))), 'header 106');
    assert.equal(outcome(parse(tcp6LineOf(107))), 'header 107');
    assert.equal(outcome(parse(tcp6LineOf(108))), 'PP_V1_TOO_LONG');
    // Without its CRLF yet, 106 bytes already cannot end within 107: refused at once, not waited for.
    assert.equal(outcome(parse(tcp6LineOf(108).slice(0, 106))), 'PP_V1_TOO_LONG');
    const at107 = parse(tcp6LineOf(107));
    assert.ok(at107.kind === 'header');
    assert.deepEqual(at107.header.source, {
      address: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      port: 65535,
    });
  });

  test('v1 IPv6 text: a dotted IPv4 tail is accepted and written in RFC 5952 form; mapped stays IPv6', () => {
    const tail = parse('PROXY TCP6 ::1.2.3.4 ::FFFF:5.6.7.8 1 2\r\n');
    assert.ok(tail.kind === 'header');
    assert.deepEqual(tail.header.source, { address: '::102:304', port: 1 });
    assert.deepEqual(tail.header.destination, { address: '::ffff:5.6.7.8', port: 2 });
    for (const bad of ['::1.2.3.04', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3', '::ffff:1.2.3.4.5']) {
      assert.equal(outcome(parse(`PROXY TCP6 ${bad} ::1 1 2\r\n`)), 'PP_V1_BAD_ADDRESS', bad);
    }
  });

  test('v1 spacing: single spaces only, no trailing space; UNKNOWN then anything up to CRLF', () => {
    assert.equal(outcome(parse('PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n')), 'PP_V1_BAD_FIELD_COUNT');
    assert.equal(outcome(parse('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n')), 'PP_V1_BAD_FIELD_COUNT');
    assert.equal(outcome(parse('PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n')), 'PP_V1_BAD_PROTOCOL');
    for (const line of [
      'PROXY UNKNOWN\r\n',
      'PROXY UNKNOWN \r\n',
      'PROXY UNKNOWN 203.0.113.7 x y z w v\r\n',
    ]) {
      const result = parse(line);
      assert.ok(result.kind === 'header', line);
      assert.equal(result.header.source, null, line);
      assert.equal(result.consumed, line.length, line);
    }
    const tab = outcome(parse('PROXY UNKNOWN\tx\r\n'));
    allowedSeen.set('unknown-then-tab', tab);
  });

  test('v2 PROXY: the length must hold the family address block (12, 36, 216), one byte less is refused', () => {
    for (const [family, need] of [
      [0x11, 12],
      [0x12, 12],
      [0x21, 36],
      [0x22, 36],
      [0x31, 216],
      [0x32, 216],
    ] as const) {
      const name = `0x${family.toString(16)}`;
      assert.equal(
        outcome(parse(rawV2(0x21, family, Buffer.alloc(need - 1)))),
        'PP_V2_LENGTH_TOO_SMALL',
        name,
      );
      assert.equal(outcome(parse(rawV2(0x21, family, Buffer.alloc(need)))), `header ${16 + need}`, name);
    }
    const unspec = parse(rawV2(0x21, 0x00, Buffer.alloc(0)));
    assert.ok(unspec.kind === 'header');
    assert.deepEqual([unspec.header.command, unspec.header.source], ['PROXY', null]);
  });

  test('v2 family/transport: LOCAL takes any in-range nibbles, PROXY only the seven defined bytes', () => {
    const localAccepted: string[] = [];
    const proxyAccepted: string[] = [];
    for (let family = 0; family <= 5; family++) {
      for (let transport = 0; transport <= 4; transport++) {
        const byte = (family << 4) | transport;
        const hex = byte.toString(16).padStart(2, '0');
        if (parse(rawV2(0x20, byte, Buffer.alloc(0))).kind === 'header') localAccepted.push(hex);
        else assert.equal(outcome(parse(rawV2(0x20, byte, Buffer.alloc(0)))), 'PP_V2_BAD_FAMILY', hex);
        const proxy = parse(rawV2(0x21, byte, Buffer.alloc(216)));
        if (proxy.kind === 'header') proxyAccepted.push(hex);
        else assert.equal(outcome(proxy), 'PP_V2_BAD_FAMILY', hex);
      }
    }
    assert.deepEqual(localAccepted, ['00', '01', '02', '10', '11', '12', '20', '21', '22', '30', '31', '32']);
    assert.deepEqual(proxyAccepted, ['00', '11', '12', '21', '22', '31', '32']);
  });

  test('v2 LOCAL with an IPv6 address block naming a client: exactly `length` skipped, no address used', () => {
    const block = Buffer.concat([
      Buffer.from('20010db8000000000000000000000007', 'hex'),
      Buffer.alloc(20, 0xaa),
    ]);
    const result = parse(Buffer.concat([rawV2(0x20, 0x21, block), Buffer.from('GET / HTTP/1.1\r\n')]));
    assert.ok(result.kind === 'header');
    assert.equal(result.consumed, 16 + 36);
    assert.deepEqual(
      [result.header.command, result.header.source, result.header.destination],
      ['LOCAL', null, null],
    );
  });

  test('v2 TLVs: NOOP and unknown types are kept in order and set no field; 1-2 stray bytes are refused', () => {
    const body = Buffer.concat([
      inetBlock(),
      tlv(0x04, Buffer.alloc(3)),
      tlv(0x99, Buffer.from('ab')),
      tlv(0xe5, Buffer.alloc(0)),
      tlv(0x31, Buffer.from([0xff])), // unassigned type next to NETNS: not UTF-8 checked
    ]);
    const result = parse(rawV2(0x21, 0x11, body));
    assert.ok(result.kind === 'header');
    assert.deepEqual(
      result.header.tlvs.map((t) => [t.type, Buffer.from(t.value).toString('hex')]),
      [
        [0x04, '000000'],
        [0x99, '6162'],
        [0xe5, ''],
        [0x31, 'ff'],
      ],
    );
    for (const field of ['alpn', 'authority', 'uniqueId', 'ssl', 'netns', 'crc32c'] as const) {
      assert.equal(result.header[field], undefined, field);
    }
    for (const stray of [Buffer.from([0x04]), Buffer.from([0x04, 0x00])]) {
      const bytes = rawV2(0x21, 0x11, Buffer.concat([inetBlock(), tlv(0x04, Buffer.alloc(1)), stray]));
      assert.equal(outcome(parse(bytes)), 'PP_V2_TLV_TRUNCATED', stray.toString('hex'));
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// 2. Addresses, CIDRs, lists (pure)

describe('client-ip.md addresses, CIDRs and lists: the input classes of the brief', () => {
  test('only four decimal octets: 0x7f.1, 127.1, trailing and leading dots are rejected; mapped spellings fold', () => {
    for (const bad of [
      '0x7f.1',
      '0x7f.0.0.1',
      '127.1',
      '10.0.0.1.',
      '10.0.0.1..',
      '.10.0.0.1',
      '::ffff:10.0.0.1.',
      '[10.0.0.1]',
      '::ffff:010.0.0.1',
      '10.0.0.1%eth0',
    ]) {
      assert.equal(canonicalIp(bad), null, bad);
    }
    for (const mapped of ['::0:ffff:10.0.0.1', '0::ffff:a00:1', '0:0::FFFF:10.0.0.1']) {
      assert.equal(canonicalIp(mapped), '10.0.0.1', mapped);
    }
  });

  test('CIDR edges: /0 of one family only, /32 and /128 exact, host bits masked, mapped /96 is all of IPv4', () => {
    const cidr = (text: string) => {
      const result = parseCidr(text);
      return result.ok ? formatCidr(result.cidr) : result.error.code;
    };
    assert.equal(cidr('198.51.100.77/24'), '198.51.100.0/24');
    assert.equal(cidr('2001:db8::7/128'), '2001:db8::7/128');
    assert.equal(cidr('::ffff:203.0.113.7/96'), '0.0.0.0/0');
    assert.equal(cidr('::ffff:203.0.113.7/95'), '::fffe:0:0/95');
    assert.equal(cidr('10.0.0.0/008'), '10.0.0.0/8');
    const set = (entries: string[]) => {
      const built = CidrSet.build(entries);
      assert.ok(built.ok);
      return built.set;
    };
    const v4 = set(['0.0.0.0/0']);
    assert.deepEqual(
      [v4.has('203.0.113.7'), v4.has('::ffff:203.0.113.7'), v4.has('2001:db8::1')],
      [true, true, false],
    );
    const v6 = set(['::/0']);
    assert.deepEqual(
      [v6.has('203.0.113.7'), v6.has('::ffff:203.0.113.7'), v6.has('::cb00:7107')],
      [false, false, true],
    );
    const exact = set(['203.0.113.7/32', '2001:db8::7/128']);
    assert.deepEqual(
      ['203.0.113.6', '203.0.113.7', '203.0.113.8', '2001:db8::6', '2001:db8::7', '2001:db8::8'].map((a) =>
        exact.has(a),
      ),
      [false, true, false, false, true, false],
    );
    // Duplicates normalising to one prefix: the first as written; overlapping ones: the longest.
    const dup = set(['203.0.113.9/24', '203.0.113.0/24', '203.0.113.7', '203.0.113.7/32']);
    assert.deepEqual(dup.match('203.0.113.7'), { entry: '203.0.113.7', index: 2 });
    assert.deepEqual(dup.match('203.0.113.8'), { entry: '203.0.113.9/24', index: 0 });
    // Any number of leading zeros, as Go's dtoi (an ALLOWED row here once: 4 digits were refused).
    assert.deepEqual(parseSourceRange('10.0.0.0/0008'), { ok: true, cidrs: ['10.0.0.0/8'] });
  });

  test('deny beats allow whatever overlaps; an unparsable client is denied by a deny-only list', () => {
    const policy = compileAccessPolicy({
      block: null,
      deny: sourceRangeModel('203.0.113.7', 'annotation'),
      allow: sourceRangeModel('203.0.113.0/24, 203.0.113.7/32, 203.0.113.7', 'annotation'),
    });
    assert.equal(policy.decide('203.0.113.7').outcome, 'deny');
    assert.equal(policy.decide('::ffff:203.0.113.7').outcome, 'deny');
    assert.equal(policy.decide('203.0.113.9').outcome, 'allow');
    const denyOnly = compileAccessPolicy({
      block: null,
      deny: sourceRangeModel('203.0.113.8', 'annotation'),
      allow: null,
    });
    for (const unknown of ['', '203.0.113.9:80', '0x7f.1']) {
      assert.equal(denyOnly.decide(unknown).outcome, 'deny', JSON.stringify(unknown));
    }
    assert.equal(denyOnly.decide('203.0.113.9').outcome, 'allow');
  });

  test('allowlist annotation absent or empty: the whitelist alias is read (spaces: see ALLOWED)', () => {
    const prefix = 'nginx.ingress.kubernetes.io/';
    const defaults = { allow: sourceRangeModel('10.0.0.0/8', 'configmap'), deny: null };
    const alias = { [`${prefix}whitelist-source-range`]: '198.51.100.1' };
    for (const allowlist of [undefined, '']) {
      const annotations =
        allowlist === undefined ? alias : { ...alias, [`${prefix}allowlist-source-range`]: allowlist };
      const rules = resolveAccessRules(annotations, defaults);
      assert.deepEqual(
        rules.allow?.valid && rules.allow.cidrs,
        ['198.51.100.1/32'],
        JSON.stringify(allowlist),
      );
    }
    const blank = resolveAccessRules({ ...alias, [`${prefix}allowlist-source-range`]: '  ' }, defaults);
    const decision = compileAccessPolicy({ block: null, deny: null, allow: blank.allow }).decide(
      '198.51.100.1',
    );
    allowedSeen.set('blank-allowlist-alias', decision.outcome);
  });
});

// ---------------------------------------------------------------------------------------------------
// 3. The reader over real sockets

interface ReaderUnderTest {
  port: number;
  rejects: RejectEvent[];
  accepts: ProxyInfo[];
  /** What the target saw: the info and the socket's own remote address, per handed-on connection. */
  handedOn: { info: ProxyInfo | undefined; remote: string | undefined; data: Buffer }[];
  trustedCalls: string[];
  nextEvent(): Promise<void>;
  close(): Promise<void>;
}

async function startReader(host: string, extra: Partial<ProxyReaderOptions> = {}): Promise<ReaderUnderTest> {
  const state: Omit<ReaderUnderTest, 'port' | 'close' | 'nextEvent'> = {
    rejects: [],
    accepts: [],
    handedOn: [],
    trustedCalls: [],
  };
  const waiters: (() => void)[] = [];
  const event = () => {
    for (const waiter of waiters.splice(0)) waiter();
  };
  const target = net.createServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      state.handedOn.push({
        info: getProxyInfo(socket),
        remote: socket.remoteAddress,
        data: Buffer.concat(chunks),
      });
      socket.end();
      event();
    });
  });
  const server = acceptProxyProtocol(target, {
    isTrusted: (peer) => {
      state.trustedCalls.push(peer);
      return peer.startsWith('127.0.0.');
    },
    timeoutMs: 5_000,
    onReject: (e) => {
      state.rejects.push(e);
      event();
    },
    onAccept: (e) => state.accepts.push(e.info),
    ...extra,
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return {
    ...state,
    port: (server.address() as net.AddressInfo).port,
    nextEvent: () => new Promise<void>((resolve) => waiters.push(resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Connects from `from`, writes `bytes`, half-closes; resolves when the server closes. */
function sendAndEnd(port: number, from: string, bytes: Buffer, host = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host, port, localAddress: from }, () => socket.end(bytes));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

describe('PROXY reader (src/proxy-protocol/reader.ts) over loopback sockets', () => {
  let reader: ReaderUnderTest;
  before(async () => {
    // A dual-stack socket bound to the mapped loopback address: every IPv4 peer arrives as ::ffff:127.x.
    reader = await startReader('::ffff:127.0.0.1');
  });
  after(() => reader.close());

  test('UNSPEC, v1 UNKNOWN and UNIX: fromHeader false, the socket endpoints; the mapped peer folded for isTrusted', async () => {
    const cases: [string, Buffer][] = [
      ['127.0.0.21', rawV2(0x21, 0x00, Buffer.alloc(0))],
      ['127.0.0.22', Buffer.from('PROXY UNKNOWN 203.0.113.7 10.0.0.1 1 80\r\n')],
      ['127.0.0.23', rawV2(0x21, 0x31, Buffer.concat([unixPath('/run/lb.sock'), unixPath('/x')]))],
      ['127.0.0.24', rawV2(0x20, 0x11, inetBlock())],
    ];
    for (const [from, header] of cases) {
      await sendAndEnd(reader.port, from, Buffer.concat([header, Buffer.from(`after ${from}`)]));
    }
    assert.deepEqual(
      reader.handedOn.map((h) => [
        h.info?.fromHeader,
        h.info?.clientAddress,
        h.info?.peerAddress,
        h.info?.destinationAddress,
        h.info?.destinationPort === reader.port,
        h.data.toString(),
        h.remote?.startsWith('::ffff:'),
      ]),
      cases.map(([from]) => [false, from, from, '127.0.0.1', true, `after ${from}`, true]),
    );
    assert.deepEqual(
      reader.trustedCalls,
      cases.map(([from]) => from),
    );
    assert.equal(reader.accepts.length, cases.length, 'onAccept once per accepted header');
  });

  test('a PROXY UDP4 header on a TCP socket names no client: the endpoints of the socket apply', async () => {
    const before = reader.handedOn.length;
    await sendAndEnd(reader.port, '127.0.0.25', rawV2(0x21, 0x12, inetBlock('198.51.100.9')));
    const info = reader.handedOn[before]?.info;
    // proxy-protocol.md: UDP4 and UDP6 on a TCP connection keep the socket's endpoints (as nginx).
    assert.equal(`${info?.fromHeader} ${info?.clientAddress}`, 'false 127.0.0.25');
  });

  test('an untrusted mapped peer is closed unread; a throwing policy counts as "no"; a reset is "closed"', async () => {
    const before = reader.rejects.length;
    const untrusted = await sendAndEnd(
      reader.port,
      '127.0.1.9',
      Buffer.concat([v2From('203.0.113.7'), Buffer.from('x')]),
    );
    assert.equal(untrusted.length, 0);
    assert.deepEqual(
      reader.rejects.slice(before).map((r) => [r.reason, r.peer]),
      [['untrusted', '127.0.1.9']],
    );
    const throwing = await startReader('127.0.0.1', {
      isTrusted: () => {
        throw new Error('policy broke');
      },
    });
    try {
      await sendAndEnd(throwing.port, '127.0.0.26', Buffer.concat([v2From('203.0.113.7'), Buffer.from('x')]));
      assert.deepEqual(
        throwing.rejects.map((r) => r.reason),
        ['untrusted'],
      );
      assert.equal(throwing.handedOn.length, 0);
      // A peer that resets mid-header.
      const resetting = await startReader('127.0.0.1');
      try {
        const event = resetting.nextEvent();
        const socket = net.connect({ host: '127.0.0.1', port: resetting.port, localAddress: '127.0.0.27' });
        socket.on('error', () => {});
        // Reset only once the reader holds the connection (its trust check ran): a signal, not a delay.
        for (let i = 0; i < 1000 && resetting.trustedCalls.length === 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        socket.write(v2From('203.0.113.7').subarray(0, 20), () => socket.resetAndDestroy());
        await event;
        assert.deepEqual(
          resetting.rejects.map((r) => [r.reason, r.peer]),
          [['closed', '127.0.0.27']],
        );
        assert.equal(resetting.handedOn.length, 0);
      } finally {
        await resetting.close();
      }
    } finally {
      await throwing.close();
    }
    assert.equal(reader.rejects.length - before, 1, 'onReject once per refused connection');
  });

  test('the whole header must arrive within timeoutMs: a peer trickling bytes is cut while it still sends', async () => {
    const slow = await startReader('127.0.0.1', { timeoutMs: 800 });
    try {
      const socket = net.connect({ host: '127.0.0.1', port: slow.port, localAddress: '127.0.0.28' });
      socket.setNoDelay(true);
      socket.on('error', () => {});
      let closed = false;
      socket.on('close', () => {
        closed = true;
      });
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write('PROXY UNKNOWN ');
      // At most 85 more bytes (never 106 without CRLF, so never PP_V1_TOO_LONG), one every 40 ms: at
      // least 3.4 s of sending, four times the deadline. An idle timer would never fire while it trickles.
      let sent = 0;
      while (!closed && sent < 85) {
        await new Promise((resolve) => setTimeout(resolve, 40));
        if (!closed) socket.write('x');
        sent++;
      }
      const stillOpen = !closed;
      socket.destroy();
      assert.equal(stillOpen, false, `still open after trickling ${sent} bytes for more than 3 s`);
      assert.deepEqual(
        slow.rejects.map((r) => r.reason),
        ['timeout'],
      );
      assert.match(slow.rejects[0]?.detail ?? '', /within 800 ms/);
    } finally {
      await slow.close();
    }
  });

  test('maxHeaderBytes defaults to 4096: a v2 header of 4096 bytes is read, one of 4097 is oversize', async () => {
    const sized = (total: number) =>
      encodeProxyHeader({
        version: 2,
        source: { address: '203.0.113.7', port: 1 },
        destination: { address: '10.0.0.1', port: 80 },
        tlvs: [noopTlv(total - 16 - 12 - 3)],
      });
    assert.equal(sized(4096).length, 4096);
    const before = reader.handedOn.length;
    const rejectsBefore = reader.rejects.length;
    await sendAndEnd(reader.port, '127.0.0.29', Buffer.concat([sized(4096), Buffer.from('tail')]));
    assert.equal(reader.handedOn[before]?.data.toString(), 'tail');
    assert.equal(reader.handedOn[before]?.info?.clientAddress, '203.0.113.7');
    await sendAndEnd(reader.port, '127.0.0.30', sized(4097).subarray(0, 16));
    assert.deepEqual(
      reader.rejects.slice(rejectsBefore).map((r) => [r.reason, r.peer]),
      [['oversize', '127.0.0.30']],
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// 4. A real keepip gateway

/** Trusted load balancers: any peer in 127.0.0.0/26 (each test case uses its own, for the error log). */
const TRUSTED = '127.0.0.0/26';
const LB = '127.0.0.10';
/** A trusted proxy a PROXY header may name as its source (then X-Forwarded-For is walked). */
const HOP = '127.0.0.12';
const ALLOWED_CLIENT = '203.0.113.7';

function routes(backendPort: number) {
  const at = (name: string, annotations: Record<string, string> = {}) =>
    ingress({
      name,
      host: `${name}.example.com`,
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations,
    });
  return [
    ...serviceWithEndpoints({ name: 'web', ports: [backendPort] }),
    at('open'),
    at('allow', { 'allowlist-source-range': `${ALLOWED_CLIENT}/32` }),
    at('v6only', { 'allowlist-source-range': '::/0' }),
    at('v4all', { 'allowlist-source-range': '0.0.0.0/0' }),
    at('edges', { 'allowlist-source-range': '203.0.113.7/32, 2001:db8::7/128, 198.51.100.77/24' }),
    at('overlap', {
      'allowlist-source-range': '203.0.113.0/24, 203.0.113.7/32, 203.0.113.7',
      'denylist-source-range': '203.0.113.7',
    }),
    at('denyonly', { 'denylist-source-range': '203.0.113.8/32' }),
  ];
}

interface Answer {
  status: number;
  closedSilently: boolean;
  realIp: string | undefined;
  forwardedHost: string | undefined;
}

function request(host: string, path: string, fields: string[] = []): string {
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${host}.example.com`, 'Accept: application/json', ...fields];
  return `${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`;
}

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('keepip gateway with use-proxy-protocol and use-forwarded-headers (one process)', () => {
  let backend: RunningWhoami;
  let gateway: Running;
  let access: StdoutLines;
  let dir: ReturnType<typeof manifestDir>;
  let port = 0;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    dir = manifestDir();
    const file = dir.write(
      'gateway.yaml',
      toYaml([
        controllerConfigMap({
          'use-proxy-protocol': 'true',
          'use-forwarded-headers': 'true',
          'proxy-real-ip-cidr': TRUSTED,
        }),
        ...routes(backend.address.port),
      ]),
    );
    // Bound to the mapped loopback address: every 127.x client arrives as ::ffff:127.x.
    gateway = startKeepip(['gateway', '-f', file, '--http', '[::ffff:127.0.0.1]:0']);
    access = stdoutOf(gateway);
    port = Number((await gateway.waitFor(/listening http \[::ffff:127\.0\.0\.1\]:(\d+)/))[1]);
  });

  after(async () => {
    await gateway?.stop();
    await backend?.close();
    dir?.remove();
  });

  async function send(from: string, header: Buffer, text: string): Promise<Answer> {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port,
      localAddress: from,
      payload: Buffer.concat([header, Buffer.from(text, 'latin1')]),
    });
    const raw = reply.received.toString('latin1');
    const status = /^HTTP\/1\.1 (\d{3})/.exec(raw);
    const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
    const headers =
      status && body.startsWith('{') ? (JSON.parse(body) as { headers: Record<string, string> }).headers : {};
    return {
      status: status ? Number(status[1]) : 0,
      closedSilently: reply.closedByServer && reply.received.length === 0,
      realIp: headers['x-real-ip'],
      forwardedHost: headers['x-forwarded-host'],
    };
  }

  /** $remote_addr of the access log line (stdout) for `path` ('-' for an unknown client). */
  async function loggedClient(path: string): Promise<string> {
    const pattern = new RegExp(`^(\\S+) - - \\[[^\\]]*\\] "GET ${literal(path)} HTTP/1\\.1" `);
    const [line] = await access.waitForLines(pattern, 1);
    return pattern.exec(line!)![1]!;
  }

  /** The error-log line the PROXY reader writes for peer `from`, with its code. */
  async function refusedWith(from: string): Promise<string> {
    const match = await gateway.waitFor(
      new RegExp(
        `broken header: "[^"\\n]*" while reading PROXY protocol \\((PP_[A-Z0-9_]+):[^\\n]*client: ${literal(from)},`,
      ),
    );
    return match[1]!;
  }

  test('only the first header counts: a second (forged) header behind it is a bad request, logged for the first client', async () => {
    const rows: [string, string, Buffer][] = [
      ['127.0.0.31', '203.0.113.21', v1From(ALLOWED_CLIENT)],
      ['127.0.0.32', '203.0.113.22', v2From(ALLOWED_CLIENT)],
    ];
    for (const [from, client, forged] of rows) {
      const answer = await send(
        from,
        Buffer.concat([v2From(client), forged]),
        request('allow', `/second/${from}`),
      );
      assert.equal(answer.status, 400, from);
      await access.waitForLines(new RegExp(`^${literal(client)} - - \\[[^\\]]*\\] "[^"]*" 400 `), 1);
    }
  });

  test('LOCAL (an address block naming an allowed client), v1 UNKNOWN, UNSPEC, UNIX: the load balancer is the client', async () => {
    const headers: [string, Buffer][] = [
      ['local', rawV2(0x20, 0x11, inetBlock(ALLOWED_CLIENT))],
      ['unknown', Buffer.from(`PROXY UNKNOWN ${ALLOWED_CLIENT} 10.0.0.1 1 80\r\n`)],
      ['unspec', rawV2(0x21, 0x00, Buffer.alloc(0))],
      ['unix', rawV2(0x21, 0x31, Buffer.concat([unixPath('/run/lb.sock'), unixPath('/x')]))],
    ];
    for (const [name, header] of headers) {
      const denied = await send(LB, header, request('allow', `/noaddr/${name}`));
      assert.equal(denied.status, 403, name);
      await gateway.waitFor(
        new RegExp(
          `access forbidden by rule, client: ${literal(LB)}, server: allow\\.example\\.com, request: "GET /noaddr/${name} `,
        ),
      );
      const open = await send(LB, header, request('open', `/noaddr/${name}`));
      assert.equal(open.realIp, LB, name);
      assert.equal(await loggedClient(`/noaddr/${name}`), LB, name);
    }
  });

  test('a PROXY header without an address does not let the client name itself with X-Forwarded-For (found here, fixed)', async () => {
    // docs/client-ip.md §3: "(LOCAL/UNKNOWN keep the peer)"; "v1.13 rule: ... the header is read only when
    // the PROXY address is itself trusted" (ingress-nginx: real_ip_header proxy_protocol, the header alone).
    const forged = [`X-Forwarded-For: ${ALLOWED_CLIENT}`, 'X-Forwarded-Host: evil.example'];
    const seen: string[] = [];
    for (const [name, header] of [
      ['local', rawV2(0x20, 0x00, Buffer.alloc(0))],
      ['unknown', Buffer.from('PROXY UNKNOWN\r\n')],
    ] as const) {
      const answer = await send(LB, header, request('allow', `/forged/${name}`, forged));
      seen.push(
        `${name}: ${answer.status} client ${answer.realIp ?? '-'} x-forwarded-host ${answer.forwardedHost ?? '-'}`,
      );
    }
    // Where no list stops it, the backend sees the load balancer as the client and no forged host.
    for (const [name, header] of [
      ['local', rawV2(0x20, 0x00, Buffer.alloc(0))],
      ['unknown', Buffer.from('PROXY UNKNOWN\r\n')],
    ] as const) {
      const answer = await send(LB, header, request('open', `/forged-open/${name}`, forged));
      seen.push(
        `${name} open: ${answer.status} client ${answer.realIp} forged host ${answer.forwardedHost === 'evil.example'}`,
      );
    }
    assert.deepEqual(seen, [
      'local: 403 client - x-forwarded-host -',
      'unknown: 403 client - x-forwarded-host -',
      `local open: 200 client ${LB} forged host false`,
      `unknown open: 200 client ${LB} forged host false`,
    ]);
  });

  test('broken headers from a trusted peer: closed without an answer, the error log names the code', async () => {
    const cases: [string, Buffer, string][] = [
      ['127.0.0.33', rawV2(0x21, 0x41, inetBlock()), 'PP_V2_BAD_FAMILY'],
      ['127.0.0.34', rawV2(0x21, 0x10, inetBlock()), 'PP_V2_BAD_FAMILY'],
      [
        '127.0.0.35',
        rawV2(0x21, 0x11, Buffer.concat([inetBlock(), Buffer.from([0x04])])),
        'PP_V2_TLV_TRUNCATED',
      ],
      [
        '127.0.0.36',
        rawV2(0x21, 0x11, Buffer.concat([inetBlock(), Buffer.from([0x04, 0x00])])),
        'PP_V2_TLV_TRUNCATED',
      ],
      [
        '127.0.0.37',
        rawV2(0x21, 0x11, Buffer.concat([inetBlock(), Buffer.from([0x04, 0x00, 0x09, 0x00])])),
        'PP_V2_TLV_OVERFLOW',
      ],
      ['127.0.0.38', rawV2(0x21, 0x11, inetBlock().subarray(0, 11)), 'PP_V2_LENGTH_TOO_SMALL'],
      ['127.0.0.39', rawV2(0x21, 0x21, Buffer.alloc(35)), 'PP_V2_LENGTH_TOO_SMALL'],
      ['127.0.0.40', Buffer.from(tcp6LineOf(108)), 'PP_V1_TOO_LONG'],
      ['127.0.0.41', Buffer.from('PROXY TCP4 0x7f.0.0.1 10.0.0.1 1 80\r\n'), 'PP_V1_BAD_ADDRESS'],
      ['127.0.0.42', Buffer.from('PROXY TCP4 127.1 10.0.0.1 1 80\r\n'), 'PP_V1_BAD_ADDRESS'],
      ['127.0.0.43', Buffer.from(`PROXY TCP4 ${ALLOWED_CLIENT}. 10.0.0.1 1 80\r\n`), 'PP_V1_BAD_ADDRESS'],
      ['127.0.0.44', Buffer.from('PROXY TCP6 [2001:db8::7] ::1 1 80\r\n'), 'PP_V1_BAD_ADDRESS'],
      ['127.0.0.45', Buffer.from(`PROXY TCP4 ${ALLOWED_CLIENT} 10.0.0.1 1 80\n`), 'PP_V1_BAD_LINE_END'],
    ];
    for (const [from, header, code] of cases) {
      const answer = await send(from, header, request('allow', `/broken/${from}`));
      assert.equal(answer.closedSilently, true, `${code} from ${from}: answered ${answer.status}`);
      assert.equal(await refusedWith(from), code, from);
    }
    // An untrusted peer (outside 127.0.0.0/26, mapped on this socket) is closed unread.
    const untrusted = await send(
      '127.0.0.100',
      v2From(ALLOWED_CLIENT),
      request('allow', '/broken/untrusted'),
    );
    assert.equal(untrusted.closedSilently, true);
    await gateway.waitFor(
      /PROXY protocol peer 127\.0\.0\.100 is not a trusted proxy[^\n]*client: 127\.0\.0\.100,/,
    );
  });

  test('v1 at 107 bytes and split across writes: served for the header client', async () => {
    const long = await send('127.0.0.46', Buffer.from(tcp6LineOf(107)), request('open', '/v1-107'));
    assert.equal(long.status, 200);
    assert.equal(await loggedClient('/v1-107'), 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
    const raw = await openRaw({ host: '127.0.0.1', port, localAddress: '127.0.0.47' });
    try {
      const header = v1From(ALLOWED_CLIENT).toString('latin1');
      const cut = header.indexOf('113.') + 2; // inside the source address
      raw.socket.write(header.slice(0, cut));
      await new Promise((resolve) => setTimeout(resolve, 20));
      raw.socket.write(header.slice(cut));
      raw.socket.write(request('allow', '/v1-split'));
      const text = (await raw.until((b) => b.includes('\r\n\r\n'))).toString('latin1');
      assert.match(text, /^HTTP\/1\.1 200 /);
    } finally {
      raw.destroy();
    }
    assert.equal(await loggedClient('/v1-split'), ALLOWED_CLIENT);
  });

  test('PROXY sources: mapped text is the IPv4 client everywhere; IPv4-compatible and NAT64 forms stay IPv6', async () => {
    const mapped = await send(
      LB,
      Buffer.from('PROXY TCP6 ::FFFF:CB00:7107 ::1 40000 80\r\n'),
      request('allow', '/src/mapped'),
    );
    assert.equal(mapped.status, 200);
    assert.equal(mapped.realIp, ALLOWED_CLIENT);
    assert.equal(await loggedClient('/src/mapped'), ALLOWED_CLIENT);
    for (const [name, source] of [
      ['compat', '::cb00:7107'],
      ['nat64', '64:ff9b::cb00:7107'],
    ] as const) {
      assert.equal((await send(LB, v2From(source), request('allow', `/src/${name}`))).status, 403, name);
      assert.equal(await loggedClient(`/src/${name}`), source, name);
    }
  });

  test('v1.13 rule: a forged X-Forwarded-For never wins over an untrusted PROXY client; from a trusted one it is walked', async () => {
    const forged = [`X-Forwarded-For: ${ALLOWED_CLIENT}`];
    const untrusted = await send(LB, v1From('203.0.113.8'), request('allow', '/v113/untrusted', forged));
    assert.equal(untrusted.status, 403);
    assert.equal(await loggedClient('/v113/untrusted'), '203.0.113.8');
    const walked: [string, string[], number, string][] = [
      ['spaces', [`X-Forwarded-For:   ${ALLOWED_CLIENT} , ,`], 200, ALLOWED_CLIENT],
      [
        'two-lines',
        [`X-Forwarded-For: ${ALLOWED_CLIENT}`, 'X-Forwarded-For: 203.0.113.8'],
        403,
        '203.0.113.8',
      ],
      ['port-zero', [`X-Forwarded-For: ${ALLOWED_CLIENT}:0`], 403, '-'],
      ['bracketed-v4', [`X-Forwarded-For: [${ALLOWED_CLIENT}]:80`], 403, '-'],
      ['unknown', ['X-Forwarded-For: unknown'], 403, '-'],
      ['obfuscated', ['X-Forwarded-For: _hidden'], 403, '-'],
      ['port', [`X-Forwarded-For: 198.51.100.1, ${ALLOWED_CLIENT}:8080`], 200, ALLOWED_CLIENT],
    ];
    for (const [name, fields, status, client] of walked) {
      const answer = await send(LB, v1From(HOP), request('allow', `/v113/${name}`, fields));
      assert.equal(answer.status, status, name);
      assert.equal(await loggedClient(`/v113/${name}`), client, name);
    }
    const v6 = await send(
      LB,
      v1From(HOP),
      request('edges', '/v113/v6-port', ['X-Forwarded-For: [2001:db8::7]:443']),
    );
    assert.equal(v6.status, 200);
    assert.equal(v6.realIp, '2001:db8::7');
  });

  test('allowlist edges: /0 of one family, /32 and /128, host bits set, duplicates and overlap under a deny entry', async () => {
    const rows: [string, string, number][] = [
      ['v6only', ALLOWED_CLIENT, 403],
      ['v6only', `::ffff:${ALLOWED_CLIENT}`, 403],
      ['v6only', '2001:db8::1', 200],
      ['v4all', '2001:db8::1', 403],
      ['v4all', '203.0.113.9', 200],
      ['v4all', '::ffff:203.0.113.9', 200],
      ['edges', '203.0.113.6', 403],
      ['edges', '203.0.113.8', 403],
      ['edges', ALLOWED_CLIENT, 200],
      ['edges', '2001:db8::6', 403],
      ['edges', '2001:db8::7', 200],
      ['edges', '198.51.100.1', 200],
      ['edges', '198.51.101.1', 403],
      ['overlap', ALLOWED_CLIENT, 403],
      ['overlap', '203.0.113.9', 200],
      ['denyonly', '203.0.113.8', 403],
      ['denyonly', '203.0.113.9', 200],
    ];
    const seen: string[] = [];
    for (const [host, client] of rows) {
      const answer = await send(LB, v2From(client), request(host, `/edge/${host}/${client}`));
      seen.push(`${host} ${client} ${answer.status}`);
    }
    assert.deepEqual(
      seen,
      rows.map(([host, client, status]) => `${host} ${client} ${status}`),
    );
    // An unknown client (a malformed entry from a trusted hop) is denied by a deny-only list.
    const unknown = await send(
      LB,
      v1From(HOP),
      request('denyonly', '/edge/denyonly/unknown', ['X-Forwarded-For: unknown']),
    );
    assert.equal(unknown.status, 403);
    assert.equal(await loggedClient('/edge/denyonly/unknown'), '-');
  });

  test('a PROXY UDP4 header names no client on the TCP listener: the relay stays the client, as nginx', async () => {
    const answer = await send(LB, rawV2(0x21, 0x12, inetBlock(ALLOWED_CLIENT)), request('allow', '/udp4'));
    assert.equal(`${answer.status} ${await loggedClient('/udp4')}`, `403 ${LB}`);
  });
});

// ---------------------------------------------------------------------------------------------------
// 5. The ALLOWED table cannot rot

describe('ALLOWED differences are still what is seen', () => {
  test('each ALLOWED row matches what the tests above observed', () => {
    const expected: Record<AllowedKey, string> = {
      'unknown-then-tab': 'PP_V1_BAD_PROTOCOL',
      'blank-allowlist-alias': 'fail-closed',
    };
    for (const key of Object.keys(ALLOWED) as AllowedKey[]) {
      assert.equal(
        allowedSeen.get(key),
        expected[key],
        `${key}: ${ALLOWED[key].seen} (${ALLOWED[key].reason})`,
      );
    }
  });
});
