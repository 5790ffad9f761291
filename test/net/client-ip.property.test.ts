// Client-IP resolution (src/net/client-ip.ts) against a small reference walker written from
// docs/client-ip.md §3, on random chains: random trusted CIDR sets (IPv4, IPv6, mapped prefixes),
// peers, PROXY sources, X-Forwarded-For-style lists and RFC 7239 Forwarded headers with IPv4, IPv6,
// mapped, port-suffixed, malformed and empty entries, short and very long.
//
// The generator builds each hop as a meaning (an address as bytes, or "malformed") plus a text; the
// resolver reads the text, the reference reads the meaning. So the reference needs no address parser,
// only the documented rules: trust by longest-prefix membership (mapped addresses are IPv4, IPv6
// prefixes never match IPv4), each strategy refines only a trusted answer, lists walked right to left.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CidrSet } from '../../src/net/cidr-set.ts';
import { createClientIpResolver, type RequestHeaders } from '../../src/net/client-ip.ts';

// ---------------------------------------------------------------------------------------------
// Addresses as bytes, and their texts

interface Addr {
  v: 4 | 6;
  /** 4 or 16 bytes. An IPv4-mapped address is an IPv4 Addr (only its text says ::ffff:). */
  b: number[];
}

interface Cidr extends Addr {
  len: number;
}

/** An address text with what it means: an address, or nothing (malformed). */
interface Text {
  text: string;
  addr: Addr | null;
}

function groups(b: number[]): number[] {
  return Array.from({ length: 8 }, (_, i) => (b[2 * i] as number) * 256 + (b[2 * i + 1] as number));
}

/** RFC 5952 text, by the WHATWG URL serializer (lower case, first longest zero run as ::). */
function compressed(b: number[]): string {
  return new URL(
    `http://[${groups(b)
      .map((g) => g.toString(16))
      .join(':')}]/`,
  ).hostname.slice(1, -1);
}

/** The canonical text the resolver must answer with. */
function canonical(a: Addr): string {
  return a.v === 4 ? a.b.join('.') : compressed(a.b);
}

const mappedBytes = (v4: number[]) => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4];

type Style = 'plain' | 'mapped' | 'mapped-upper' | 'mapped-hex' | 'mapped-full' | 'upper' | 'expanded';

function render(a: Addr, style: Style): string {
  const dotted = a.b.join('.');
  if (a.v === 4) {
    const hex = groups(mappedBytes(a.b)).slice(6);
    if (style === 'mapped') return `::ffff:${dotted}`;
    if (style === 'mapped-upper') return `::FFFF:${dotted}`;
    if (style === 'mapped-hex') return `::ffff:${hex.map((g) => g.toString(16)).join(':')}`;
    if (style === 'mapped-full') return `0:0:0:0:0:ffff:${dotted}`;
    return dotted;
  }
  if (style === 'upper') return compressed(a.b).toUpperCase();
  if (style === 'expanded')
    return groups(a.b)
      .map((g) => g.toString(16).padStart(4, '0'))
      .join(':');
  return compressed(a.b);
}

function inPrefix(a: Addr, c: Cidr): boolean {
  if (a.v !== c.v) return false;
  for (let bit = 0; bit < c.len; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if (((a.b[byte] as number) & mask) !== ((c.b[byte] as number) & mask)) return false;
  }
  return true;
}

const isTrusted = (trusted: Cidr[], a: Addr | null) => a !== null && trusted.some((c) => inPrefix(a, c));

// ---------------------------------------------------------------------------------------------
// Generators: a small address universe, so hops fall into the trusted prefixes often

const HOSTS = [0, 1, 2, 7, 100, 128, 255];
const v4Arb: fc.Arbitrary<Addr> = fc
  .tuple(
    fc.constantFrom([10, 0, 0], [10, 0, 1], [10, 66, 0], [192, 0, 2], [203, 0, 113], [172, 16, 5]),
    fc.constantFrom(...HOSTS),
  )
  .map(([base, host]) => ({ v: 4, b: [...base, host] }));
const V6_PREFIXES = [
  [0x20, 0x01, 0x0d, 0xb8, 0, 0x0a],
  [0x20, 0x01, 0x0d, 0xb8, 0, 0x0b],
  [0xfe, 0x80],
  [0, 0x64, 0xff, 0x9b], // NAT64: IPv6, never an IPv4 rule's
  [], // ::x, IPv4-compatible style: IPv6 too
];
const v6Arb: fc.Arbitrary<Addr> = fc
  .tuple(fc.constantFrom(...V6_PREFIXES), fc.constantFrom(...HOSTS), fc.constantFrom(0, 1))
  .map(([prefix, host, high]) => {
    const b = [...prefix, ...new Array(16 - prefix.length).fill(0)];
    b[14] = high;
    b[15] = host;
    return { v: 6, b };
  });
const addrArb = fc.oneof({ weight: 3, arbitrary: v4Arb }, { weight: 2, arbitrary: v6Arb });

/** Some address inside `c` (host bits random). */
function inside(c: Cidr, noise: number[]): Addr {
  const b = c.b.map((byte, i) => {
    const keep = Math.max(0, Math.min(8, c.len - 8 * i));
    const mask = (0xff << (8 - keep)) & 0xff;
    return (byte & mask) | ((noise[i] ?? 0) & ~mask & 0xff);
  });
  // Random host bits could spell ::ffff:a.b.c.d, which is IPv4: keep IPv6 hops IPv6.
  if (c.v === 6 && b.slice(0, 12).join() === mappedBytes([]).join()) b[11] = 0xfe;
  return { v: c.v, b };
}

const cidrArb: fc.Arbitrary<{ cidr: Cidr; text: string }> = fc.oneof(
  fc
    .tuple(v4Arb, fc.constantFrom(0, 8, 16, 24, 28, 31, 32), fc.constantFrom('plain', 'bare', 'mapped'))
    .map(([a, len, form]) => ({
      cidr: { ...a, len },
      text:
        form === 'mapped'
          ? `::ffff:${a.b.join('.')}/${96 + len}` // a mapped prefix of 96 or more is the IPv4 prefix
          : form === 'bare' && len === 32
            ? a.b.join('.')
            : `${a.b.join('.')}/${len}`,
    })),
  fc.tuple(v6Arb, fc.constantFrom(0, 16, 32, 48, 64, 120, 128)).map(([a, len]) => ({
    cidr: { ...a, len },
    text: len === 128 ? compressed(a.b) : `${compressed(a.b)}/${len}`,
  })),
  // A mapped prefix shorter than 96 stays IPv6, so it never matches an IPv4 (or mapped) address.
  fc.tuple(v4Arb, fc.constantFrom(0, 64, 80)).map(([a, len]) => ({
    cidr: { v: 6 as const, b: mappedBytes(a.b), len },
    text: `::ffff:${a.b.join('.')}/${len}`,
  })),
);

const styleArb = (a: Addr): fc.Arbitrary<Style> =>
  a.v === 4
    ? fc.constantFrom<Style>('plain', 'plain', 'mapped', 'mapped-upper', 'mapped-hex', 'mapped-full')
    : fc.constantFrom<Style>('plain', 'plain', 'upper', 'expanded');

/** Addresses from the universe, or (when there are trusted prefixes) from inside one of them. */
function hopAddrArb(trusted: Cidr[], insideWeight = 1): fc.Arbitrary<Addr> {
  if (trusted.length === 0) return addrArb;
  const insideArb = fc
    .tuple(
      fc.constantFrom(...trusted),
      fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 16, maxLength: 16 }),
    )
    .map(([c, noise]) => inside(c, noise));
  return fc.oneof({ weight: 1, arbitrary: addrArb }, { weight: insideWeight, arbitrary: insideArb });
}

const plainTextArb = (addr: fc.Arbitrary<Addr>): fc.Arbitrary<Text> =>
  addr.chain((a) => styleArb(a).map((style) => ({ text: render(a, style), addr: a })));

// Tokens no hop writes: the walk must stop at them with the client unknown.
const MALFORMED = [
  'unknown',
  'garbage',
  '010.0.0.1',
  '10.0.0.01',
  '0x0a.0.0.1',
  '167772161',
  '1.2.3',
  '1.2.3.4.5',
  'fe80::1%eth0',
  '[10.0.0.1]:80',
  '10.0.0.1:0',
  '10.0.0.1:65536',
  '10.0.0.1:',
  '10.0.0.1:x',
  '[::1]',
  '[::1]:',
  '::1]:80',
  '[::1:80',
  '1.2.3.4:5:6',
  '_hidden',
  '::ffff:010.0.0.1',
  '10.0.0.1\t',
  'a'.repeat(70),
];
const malformedArb: fc.Arbitrary<Text> = fc.constantFrom(...MALFORMED).map((text) => ({ text, addr: null }));

/** One X-Forwarded-For entry: an address (perhaps with a port, as nginx accepts) or a malformed token. */
function xffEntryArb(trusted: Cidr[]): fc.Arbitrary<Text> {
  const withPort = fc
    .tuple(plainTextArb(hopAddrArb(trusted)), fc.integer({ min: 1, max: 65535 }))
    .map(([t, port]) => ({
      text: t.addr?.v === 4 && !t.text.includes(':') ? `${t.text}:${port}` : `[${t.text}]:${port}`,
      addr: t.addr,
    }));
  return fc.oneof(
    { weight: 8, arbitrary: plainTextArb(hopAddrArb(trusted)) },
    { weight: 2, arbitrary: withPort },
    { weight: 1, arbitrary: malformedArb },
  );
}

interface XffChain {
  entries: Text[];
  /** The header value as it arrives: one string, or a list (node joins repeated headers with ", "). */
  value: string | string[];
}

const SEPARATORS = [', ', ',', ' ', ' , ', ',,', ', ,', '  '];

function renderList(entries: Text[], seps: string[], lead: string, trail: string): string {
  return (
    lead + entries.map((e, i) => (i === 0 ? '' : (seps[i % seps.length] as string)) + e.text).join('') + trail
  );
}

function xffChainArb(trusted: Cidr[]): fc.Arbitrary<XffChain> {
  // Long chains are mostly trusted hops, so the walk goes deep before it stops.
  const deepEntry = fc.oneof(
    { weight: 1, arbitrary: xffEntryArb(trusted) },
    { weight: 30, arbitrary: plainTextArb(hopAddrArb(trusted, 1_000)) },
  );
  const entries = fc.oneof(
    { weight: 6, arbitrary: fc.array(xffEntryArb(trusted), { maxLength: 8 }) },
    { weight: 1, arbitrary: fc.array(deepEntry, { minLength: 50, maxLength: 400 }) },
  );
  return fc
    .record({
      entries,
      seps: fc.array(fc.constantFrom(...SEPARATORS), { minLength: 1, maxLength: 4 }),
      lead: fc.constantFrom('', '', ' ', ',', ', '),
      trail: fc.constantFrom('', '', ' ', ',', ', ,'),
      split: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat() }),
    })
    .map(({ entries, seps, lead, trail, split }) => {
      if (split === null) return { entries, value: renderList(entries, seps, lead, trail) };
      const at = split % (entries.length + 1);
      return {
        entries,
        value: [
          renderList(entries.slice(0, at), seps, lead, ''),
          renderList(entries.slice(at), seps, '', trail),
        ],
      };
    });
}

// RFC 7239: elements of parameters; the for= node is an address in one of the allowed forms, or a
// node that names no address (unknown, obfuscated, bracketed IPv4, bad port), or missing.

interface ForwardedModel {
  /** Per element: the for= node's meaning (null: none or not an address). */
  nodes: (Addr | null)[];
  /** A syntax error somewhere: the whole header is malformed. */
  broken: boolean;
  value: string;
}

function forwardedNodeArb(trusted: Cidr[]): fc.Arbitrary<Text | null> {
  const address = fc
    .tuple(plainTextArb(hopAddrArb(trusted)), fc.constantFrom('', ':8080', ':_obf', ':1'), fc.boolean())
    .map(([t, port, quoted]) => {
      if (t.addr?.v === 4 && !t.text.includes(':')) {
        return { text: quoted || port !== '' ? `"${t.text}${port}"` : t.text, addr: t.addr };
      }
      return { text: `"[${t.text}]${port}"`, addr: t.addr };
    });
  const bad = fc
    .constantFrom(
      'unknown',
      '"unknown"',
      '_hidden',
      '"_x"',
      '"[10.0.0.1]"',
      '"010.0.0.1"',
      '"10.0.0.1:0"',
      '"10.0.0.1:"',
      '"[fe80::1%25eth0]"',
    )
    .map((text) => ({ text, addr: null }));
  return fc.oneof(
    { weight: 6, arbitrary: address },
    { weight: 1, arbitrary: bad },
    { weight: 1, arbitrary: fc.constant(null) },
  );
}

const BREAKERS = [
  'for=2001:db8::1',
  'for=10.0.0.1:80',
  'for =10.0.0.1',
  'for=10.0.0.1;FOR=10.0.0.2',
  'for=a b',
  '=x',
  'for="a\x01"',
];

function forwardedArb(trusted: Cidr[]): fc.Arbitrary<ForwardedModel> {
  const element = fc.record({
    node: forwardedNodeArb(trusted),
    name: fc.constantFrom('for', 'For', 'FOR'),
    extras: fc.subarray(['proto=https', 'by=_lb', 'host="a.example"']),
    first: fc.boolean(),
    sep: fc.constantFrom(';', '; ', ' ; '),
  });
  return fc
    .record({
      elements: fc.array(element, { maxLength: 6 }),
      joiner: fc.constantFrom(', ', ',', ' , '),
      breaker: fc.oneof(
        { weight: 6, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...BREAKERS, 'for="10.0.0.1'), fc.nat()) },
      ),
    })
    .map(({ elements, joiner, breaker }) => {
      const texts = elements.map((e) => {
        const params = [...e.extras];
        if (e.node !== null) params.splice(e.first ? 0 : params.length, 0, `${e.name}=${e.node.text}`);
        // An element needs a parameter; one without for= still says nothing about the client.
        return (params.length > 0 ? params : ['proto=http']).join(e.sep);
      });
      if (breaker !== null) {
        const [text, at] = breaker;
        // An unterminated quote only stays unterminated at the end.
        texts.splice(
          text.endsWith('"') || !text.includes('"') ? at % (texts.length + 1) : texts.length,
          0,
          text,
        );
      }
      return {
        nodes: elements.map((e) => e.node?.addr ?? null),
        broken: breaker !== null || texts.length === 0,
        value: texts.join(joiner),
      };
    });
}

// ---------------------------------------------------------------------------------------------
// One request: settings, peer, PROXY source, headers

const HEADER_NAMES = [
  'X-Forwarded-For',
  'x-forwarded-for',
  'X-Real-IP',
  'X-Client-IP',
  '',
  '  ',
  'Forwarded',
  ' forwarded ',
];

interface Case {
  trusted: { cidr: Cidr; text: string }[];
  useProxyProtocol: boolean;
  useForwardedHeaders: boolean;
  enableRealIp: boolean;
  headerName: string;
  peer: Text;
  proxySource: Text | null;
  xff: XffChain | null;
  forwarded: ForwardedModel | null;
  /** Headers the configuration does not name: they must change nothing. */
  decoys: Record<string, string>;
}

const caseArb: fc.Arbitrary<Case> = fc.array(cidrArb, { maxLength: 6 }).chain((trusted) => {
  const cidrs = trusted.map((t) => t.cidr);
  const address = plainTextArb(hopAddrArb(cidrs));
  return fc.record({
    trusted: fc.constant(trusted),
    useProxyProtocol: fc.boolean(),
    useForwardedHeaders: fc.boolean(),
    enableRealIp: fc.boolean(),
    headerName: fc.constantFrom(...HEADER_NAMES),
    peer: fc.oneof(
      { weight: 10, arbitrary: address },
      {
        weight: 1,
        arbitrary: fc.constantFrom('fe80::1%eth0', '', 'garbage').map((text) => ({ text, addr: null })),
      },
    ),
    proxySource: fc.option(
      fc.oneof(
        { weight: 8, arbitrary: address },
        {
          weight: 1,
          arbitrary: fc
            .constantFrom('fe80::1%eth0', '010.0.0.1', '10.0.0.1:80')
            .map((text) => ({ text, addr: null })),
        },
      ),
      { freq: 3 },
    ),
    xff: fc.option(xffChainArb(cidrs), { freq: 6 }),
    forwarded: fc.option(forwardedArb(cidrs), { freq: 6 }),
    decoys: fc.record(
      {
        'x-forwarded-for': address.map((t) => t.text),
        'x-real-ip': address.map((t) => t.text),
        forwarded: address.map((t) => `for="${t.text}"`),
      },
      { requiredKeys: [] },
    ),
  });
});

function effectiveHeader(c: Case): string {
  return c.headerName.trim() || 'X-Forwarded-For';
}

function headersOf(c: Case): RequestHeaders {
  const name = effectiveHeader(c);
  const key = name.toLowerCase();
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(c.decoys)) if (k !== key) headers[k] = v;
  if (key === 'forwarded') {
    if (c.forwarded !== null) headers[key] = c.forwarded.value;
  } else if (c.xff !== null) {
    headers[key] = c.xff.value;
  }
  return headers;
}

// ---------------------------------------------------------------------------------------------
// The reference: docs/client-ip.md §3, step by step, over the meanings

interface Answer {
  address: string;
  provenance: Record<string, unknown>;
  peerTrusted: boolean;
  code: string | undefined;
}

const unknown = (provenance: Answer['provenance'], peerTrusted: boolean, code: string): Answer => ({
  address: '',
  provenance,
  peerTrusted,
  code,
});

function walkList(entries: Text[], header: string, trusted: Cidr[], peerTrusted: boolean): Answer {
  const at = (index: number) => ({ kind: 'forwarded-header', header, index });
  for (let i = entries.length - 1; i >= 0; i--) {
    const addr = (entries[i] as Text).addr;
    if (addr === null) return unknown(at(i), peerTrusted, 'CLIENT_IP_MALFORMED_ENTRY');
    if (!isTrusted(trusted, addr))
      return { address: canonical(addr), provenance: at(i), peerTrusted, code: undefined };
  }
  const first = entries[0];
  if (first?.addr == null) return unknown(at(0), peerTrusted, 'CLIENT_IP_MALFORMED_ENTRY'); // present, no entries
  return { address: canonical(first.addr), provenance: at(0), peerTrusted, code: undefined };
}

function walkForwarded(model: ForwardedModel, trusted: Cidr[], peerTrusted: boolean): Answer {
  const at = (index: number) => ({ kind: 'forwarded-rfc7239', index });
  if (model.broken) return unknown(at(0), peerTrusted, 'CLIENT_IP_MALFORMED_FORWARDED');
  for (let i = model.nodes.length - 1; i >= 0; i--) {
    const addr = model.nodes[i] ?? null;
    if (addr === null) return unknown(at(i), peerTrusted, 'CLIENT_IP_MALFORMED_ENTRY');
    if (!isTrusted(trusted, addr))
      return { address: canonical(addr), provenance: at(i), peerTrusted, code: undefined };
  }
  return { address: canonical(model.nodes[0] as Addr), provenance: at(0), peerTrusted, code: undefined };
}

/** ingress-nginx's template: real_ip_header is the forwarded header, or with PROXY only with use-forwarded-headers. */
function readsHeader(c: Case): boolean {
  if (c.useProxyProtocol) return c.useForwardedHeaders;
  return c.useForwardedHeaders || c.enableRealIp;
}

function reference(c: Case): Answer {
  const trusted = c.trusted.map((t) => t.cidr);
  const peer = c.peer.addr;
  if (peer === null) return unknown({ kind: 'socket' }, false, 'CLIENT_IP_BAD_PEER');
  const peerTrusted = isTrusted(trusted, peer);
  let settled: Addr = peer;
  let answer: Answer = {
    address: canonical(peer),
    provenance: { kind: 'socket' },
    peerTrusted,
    code: undefined,
  };
  // PROXY header: only from a trusted peer, and only when it carried a source.
  if (c.useProxyProtocol && peerTrusted && c.proxySource !== null) {
    const source = c.proxySource.addr;
    if (source === null)
      return unknown({ kind: 'proxy-protocol' }, peerTrusted, 'CLIENT_IP_BAD_PROXY_SOURCE');
    settled = source;
    answer = {
      address: canonical(source),
      provenance: { kind: 'proxy-protocol' },
      peerTrusted,
      code: undefined,
    };
  }
  // Forwarded header: only when the address settled so far is trusted (the v1.13 rule falls out), and
  // never with PROXY unless use-forwarded-headers (nginx's real_ip_header proxy_protocol); nor after a
  // PROXY header without a source (LOCAL, UNKNOWN): ingress-nginx's $proxy_protocol_addr is then empty.
  if (!readsHeader(c) || !isTrusted(trusted, settled)) return answer;
  if (c.useProxyProtocol && c.proxySource === null) return answer;
  const header = effectiveHeader(c);
  if (header.toLowerCase() === 'forwarded') {
    return c.forwarded === null ? answer : walkForwarded(c.forwarded, trusted, peerTrusted);
  }
  return c.xff === null ? answer : walkList(c.xff.entries, header, trusted, peerTrusted);
}

function resolved(c: Case): Answer {
  const built = CidrSet.build(c.trusted.map((t) => t.text));
  assert.ok(built.ok, `trusted set ${JSON.stringify(c.trusted.map((t) => t.text))} does not build`);
  const resolver = createClientIpResolver({
    useProxyProtocol: c.useProxyProtocol,
    trusted: built.set,
    useForwardedHeaders: c.useForwardedHeaders,
    enableRealIp: c.enableRealIp,
    forwardedForHeader: c.headerName,
  });
  const client = resolver.resolve({
    peerAddress: c.peer.text,
    proxySource: c.proxySource?.text ?? null,
    headers: headersOf(c),
  });
  return {
    address: client.address,
    provenance: { ...client.provenance },
    peerTrusted: client.peerTrusted,
    code: client.error?.code,
  };
}

// ---------------------------------------------------------------------------------------------

test('client IP: the resolver agrees with the reference walker on random chains', () => {
  const seen = new Map<string, number>();
  fc.assert(
    fc.property(caseArb, (c) => {
      const expected = reference(c);
      assert.deepEqual(resolved(c), expected);
      const kind = `${expected.provenance.kind}${expected.code ? ` ${expected.code}` : ''}`;
      seen.set(kind, (seen.get(kind) ?? 0) + 1);
    }),
    { numRuns: 2_000 },
  );
  // The generator reaches every outcome (so a property that passes has been exercised everywhere).
  for (const kind of [
    'socket',
    'socket CLIENT_IP_BAD_PEER',
    'proxy-protocol',
    'proxy-protocol CLIENT_IP_BAD_PROXY_SOURCE',
    'forwarded-header',
    'forwarded-header CLIENT_IP_MALFORMED_ENTRY',
    'forwarded-rfc7239',
    'forwarded-rfc7239 CLIENT_IP_MALFORMED_ENTRY',
    'forwarded-rfc7239 CLIENT_IP_MALFORMED_FORWARDED',
  ]) {
    assert.ok((seen.get(kind) ?? 0) > 0, `no case ended in ${kind}: ${JSON.stringify([...seen])}`);
  }
});

test('client IP: the strategy names follow the settings', () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const built = CidrSet.build(c.trusted.map((t) => t.text));
      assert.ok(built.ok);
      const { strategies } = createClientIpResolver({
        ...c,
        trusted: built.set,
        forwardedForHeader: c.headerName,
      });
      const header = effectiveHeader(c);
      const expected = ['socket'];
      if (c.useProxyProtocol) expected.push('proxy-protocol');
      if (readsHeader(c)) {
        expected.push(
          header.toLowerCase() === 'forwarded' ? 'forwarded-rfc7239' : `forwarded-header:${header}`,
        );
      }
      assert.deepEqual(strategies, expected);
    }),
    { numRuns: 200 },
  );
});
