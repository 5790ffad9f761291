import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CidrSet } from '../../src/net/cidr-set.ts';
import {
  type ClientIpInput,
  type ClientIpSettings,
  createClientIpResolver,
  forwardedForStrategy,
  forwardedRfc7239Strategy,
  parseForwardedEntry,
  parseForwardedHeader,
  parseForwardedNode,
  proxyProtocolStrategy,
  socketStrategy,
} from '../../src/net/client-ip.ts';
import { formatIp } from '../../src/net/ip.ts';

function set(...entries: string[]): CidrSet {
  const built = CidrSet.build(entries);
  assert.ok(built.ok);
  return built.set;
}

const base: ClientIpSettings = {
  useProxyProtocol: false,
  trusted: set('172.16.0.0/12', 'fd00::/8'),
  useForwardedHeaders: false,
  enableRealIp: false,
  forwardedForHeader: 'X-Forwarded-For',
};

function resolve(settings: Partial<ClientIpSettings>, input: Partial<ClientIpInput>) {
  return createClientIpResolver({ ...base, ...settings }).resolve({
    peerAddress: '203.0.113.7',
    proxySource: null,
    headers: {},
    ...input,
  });
}

test('socket only: the peer, canonical, and headers ignored', () => {
  const r = resolve({}, { peerAddress: '::ffff:172.16.0.1', headers: { 'x-forwarded-for': '10.0.0.1' } });
  assert.deepEqual(r, {
    address: '172.16.0.1',
    provenance: { kind: 'socket' },
    peerTrusted: true,
    headersTrusted: true,
  });
  const bad = resolve({}, { peerAddress: 'fe80::1%eth0' });
  assert.equal(bad.address, '');
  assert.equal(bad.error?.code, 'CLIENT_IP_BAD_PEER');
  assert.equal(bad.peerTrusted, false);
  assert.deepEqual(createClientIpResolver(base).strategies, ['socket']);
});

test('PROXY header: used from trusted peers only; LOCAL (null source) keeps the peer', () => {
  const on = { useProxyProtocol: true };
  assert.deepEqual(resolve(on, { peerAddress: '172.16.0.1', proxySource: '198.51.100.9' }), {
    address: '198.51.100.9',
    provenance: { kind: 'proxy-protocol' },
    peerTrusted: true,
    // The headers come from the PROXY header's client, which is not trusted.
    headersTrusted: false,
  });
  assert.deepEqual(resolve(on, { peerAddress: '203.0.113.7', proxySource: '10.0.0.1' }), {
    address: '203.0.113.7',
    provenance: { kind: 'socket' },
    peerTrusted: false,
    headersTrusted: false,
  });
  assert.equal(resolve(on, { peerAddress: '172.16.0.1', proxySource: null }).address, '172.16.0.1');
  assert.equal(
    resolve(on, { peerAddress: '172.16.0.1', proxySource: '::ffff:198.51.100.9' }).address,
    '198.51.100.9',
  );
  // Off: a source handed over anyway is never read (invariant 1: never guess).
  assert.equal(resolve({}, { peerAddress: '172.16.0.1', proxySource: '198.51.100.9' }).address, '172.16.0.1');
});

test('X-Forwarded-For walk: right to left past trusted hops, first untrusted wins, left-most if all trusted', () => {
  const on = { useForwardedHeaders: true };
  const peer = '172.16.0.1';
  const cases: [string, string, number][] = [
    ['198.51.100.9', '198.51.100.9', 0],
    ['10.0.0.1, 198.51.100.9', '198.51.100.9', 1],
    ['10.0.0.1, 198.51.100.9, 172.16.5.5, 172.20.0.1', '198.51.100.9', 1],
    ['172.16.9.9, 172.17.0.1', '172.16.9.9', 0],
    ['  ,10.0.0.1 ,, 198.51.100.9 , ', '198.51.100.9', 1],
    ['198.51.100.9:4711', '198.51.100.9', 0],
    ['[2001:db8::9]:443, 172.16.0.2', '2001:db8::9', 0],
    ['2001:DB8::9', '2001:db8::9', 0],
    ['::ffff:198.51.100.9', '198.51.100.9', 0],
  ];
  for (const [xff, address, index] of cases) {
    assert.deepEqual(
      resolve(on, { peerAddress: peer, headers: { 'x-forwarded-for': xff } }),
      {
        address,
        provenance: { kind: 'forwarded-header', header: 'X-Forwarded-For', index },
        peerTrusted: true,
        headersTrusted: true,
      },
      xff,
    );
  }
  // Untrusted peer: header ignored. Missing header: the peer.
  assert.equal(resolve(on, { headers: { 'x-forwarded-for': '10.0.0.1' } }).address, '203.0.113.7');
  assert.equal(resolve(on, { peerAddress: peer }).address, peer);
  // enable-real-ip alone also reads the header; the header name is configurable.
  const realIp = { enableRealIp: true, forwardedForHeader: 'X-Real-IP' };
  assert.deepEqual(
    resolve(realIp, { peerAddress: peer, headers: { 'x-real-ip': '198.51.100.9' } }).provenance,
    {
      kind: 'forwarded-header',
      header: 'X-Real-IP',
      index: 0,
    },
  );
  // Repeated headers arrive as a list from some callers: treated as one list, in order.
  assert.equal(
    resolve(on, { peerAddress: peer, headers: { 'x-forwarded-for': ['198.51.100.1', '198.51.100.2'] } })
      .address,
    '198.51.100.2',
  );
});

test('a malformed entry reached by the walk makes the client unknown, not the trusted hop', () => {
  const on = { useForwardedHeaders: true };
  for (const xff of ['garbage', '10.0.0.1, unknown', '010.0.0.1', '10.0.0.1%eth0', '\t10.0.0.1', '', ' , ']) {
    const r = resolve(on, { peerAddress: '172.16.0.1', headers: { 'x-forwarded-for': xff } });
    assert.equal(r.address, '', JSON.stringify(xff));
    assert.equal(r.error?.code, 'CLIENT_IP_MALFORMED_ENTRY');
  }
  // A malformed entry left of the first untrusted one is never reached.
  assert.equal(
    resolve(on, { peerAddress: '172.16.0.1', headers: { 'x-forwarded-for': 'garbage, 198.51.100.9' } })
      .address,
    '198.51.100.9',
  );
});

test('v1.13 rule: with PROXY and forwarded headers on, the header counts only when the PROXY address is trusted', () => {
  const both = { useProxyProtocol: true, useForwardedHeaders: true };
  const headers = { 'x-forwarded-for': '198.51.100.9' };
  assert.deepEqual(resolve(both, { peerAddress: '172.16.0.1', proxySource: '203.0.113.50', headers }), {
    address: '203.0.113.50',
    provenance: { kind: 'proxy-protocol' },
    peerTrusted: true,
    headersTrusted: false,
  });
  assert.equal(
    resolve(both, { peerAddress: '172.16.0.1', proxySource: '172.16.8.8', headers }).address,
    '198.51.100.9',
  );
  assert.equal(
    resolve(both, { peerAddress: '203.0.113.7', proxySource: '172.16.8.8', headers }).address,
    '203.0.113.7',
  );
  assert.deepEqual(createClientIpResolver({ ...base, ...both }).strategies, [
    'socket',
    'proxy-protocol',
    'forwarded-header:X-Forwarded-For',
  ]);
});

test("PROXY with enable-real-ip but not use-forwarded-headers: the PROXY source only (nginx's real_ip_header proxy_protocol)", () => {
  const settings = { useProxyProtocol: true, enableRealIp: true };
  const headers = { 'x-forwarded-for': '198.51.100.9' };
  // A trusted PROXY source does not open the header: the client wrote it.
  assert.deepEqual(resolve(settings, { peerAddress: '172.16.0.1', proxySource: '172.16.8.8', headers }), {
    address: '172.16.8.8',
    provenance: { kind: 'proxy-protocol' },
    peerTrusted: true,
    headersTrusted: true,
  });
  assert.deepEqual(createClientIpResolver({ ...base, ...settings }).strategies, ['socket', 'proxy-protocol']);
  // Without PROXY, enable-real-ip reads the header as before.
  assert.equal(
    resolve({ enableRealIp: true }, { peerAddress: '172.16.0.1', headers }).address,
    '198.51.100.9',
  );
});

test('RFC 7239 Forwarded: for= walked right to left, quoted IPv6 and ports, strict syntax', () => {
  const on = { useForwardedHeaders: true, forwardedForHeader: 'Forwarded' };
  const peer = '172.16.0.1';
  const cases: [string, string, number][] = [
    ['for=198.51.100.9', '198.51.100.9', 0],
    ['for=10.0.0.1;proto=https, For=198.51.100.9;by=172.16.0.1', '198.51.100.9', 1],
    ['for="[2001:db8:cafe::17]:4711"', '2001:db8:cafe::17', 0],
    ['for="198.51.100.9:80", for=172.16.3.3', '198.51.100.9', 0],
    ['for="198.51.100.9:_port"', '198.51.100.9', 0],
    ['for=172.16.1.1, for=172.16.2.2', '172.16.1.1', 0],
    [' , for=198.51.100.9 ; proto=http ,', '198.51.100.9', 0],
  ];
  for (const [value, address, index] of cases) {
    assert.deepEqual(
      resolve(on, { peerAddress: peer, headers: { forwarded: value } }),
      { address, provenance: { kind: 'forwarded-rfc7239', index }, peerTrusted: true, headersTrusted: true },
      value,
    );
  }
  for (const value of [
    'for=unknown',
    'for=_hidden',
    'proto=https',
    'for=2001:db8::1',
    'for=[2001:db8::1]',
    'for="198.51.100.9',
    'for=10.0.0.1;for=10.0.0.2',
    'for = 198.51.100.9',
    'for=198.51.100.9 by=x',
    'for="[10.0.0.1]"',
    '',
  ]) {
    const r = resolve(on, { peerAddress: peer, headers: { forwarded: value } });
    assert.equal(r.address, '', value);
    assert.match(r.error?.code ?? '', /^CLIENT_IP_MALFORMED_/);
  }
  assert.deepEqual(parseForwardedHeader('for="a\\"b";x=1'), [
    new Map([
      ['for', 'a"b'],
      ['x', '1'],
    ]),
  ]);
  assert.equal(parseForwardedNode('198.51.100.9:0'), null);
  assert.equal(parseForwardedEntry('198.51.100.9:65536'), null);
  assert.equal(formatIp(parseForwardedEntry('198.51.100.9:65535')!), '198.51.100.9');
});

test('strategies compose by hand: socket, then PROXY, then an RFC 7239 walk under another header name', () => {
  const trusted = set('172.16.0.0/12');
  const chain = [
    proxyProtocolStrategy,
    forwardedRfc7239Strategy('X-Forwarded'),
    forwardedForStrategy('X-Client'),
  ];
  const input: ClientIpInput = {
    peerAddress: '172.16.0.1',
    proxySource: '172.16.0.2',
    headers: { 'x-forwarded': 'for=198.51.100.1, for=172.16.0.3', 'x-client': '10.0.0.1' },
  };
  let result = socketStrategy(input, trusted);
  for (const step of chain) result = step(input, result, trusted);
  // The RFC 7239 step settles on an untrusted address, so the last step has nothing to say.
  assert.deepEqual(result, {
    address: '198.51.100.1',
    provenance: { kind: 'forwarded-rfc7239', index: 0 },
    peerTrusted: true,
    headersTrusted: true,
  });
});

test('a PROXY header without a source (LOCAL, UNKNOWN) keeps the peer and trusts none of its forwarded headers', () => {
  const resolver = createClientIpResolver({ ...base, useProxyProtocol: true, useForwardedHeaders: true });
  const forged = { 'x-forwarded-for': '203.0.113.7', forwarded: 'for=203.0.113.8' };
  const local = resolver.resolve({ peerAddress: '172.16.0.1', proxySource: null, headers: forged });
  assert.deepEqual(local, {
    address: '172.16.0.1',
    provenance: { kind: 'socket' },
    peerTrusted: true,
    headersTrusted: false,
  });
  // The same load balancer with a source: its client's header is walked as before.
  const carried = resolver.resolve({ peerAddress: '172.16.0.1', proxySource: '172.16.0.9', headers: forged });
  assert.equal(carried.address, '203.0.113.7');
  assert.equal(carried.headersTrusted, true);
});

test('a connection that began with a PROXY header, under settings that no longer accept it: the client is unknown', () => {
  // After a reload: PROXY turned off, or the relay no longer trusted. Its address is never the client.
  const lb = { peerAddress: '172.16.0.9', proxySource: '198.51.100.4', proxied: true };
  for (const settings of [
    { useProxyProtocol: false },
    { useProxyProtocol: true, trusted: set('10.0.0.0/8') },
  ] satisfies Partial<ClientIpSettings>[]) {
    const r = resolve(settings, { ...lb, headers: { 'x-forwarded-for': '172.16.0.1' } });
    assert.equal(r.address, '');
    assert.equal(r.headersTrusted, false);
    assert.equal(r.error?.code, 'CLIENT_IP_UNTRUSTED_RELAY');
  }
  // Still accepted: the PROXY source, as before the reload.
  assert.equal(resolve({ useProxyProtocol: true }, lb).address, '198.51.100.4');
  // A LOCAL header (no source) from a trusted relay keeps the relay, as nginx does.
  assert.equal(resolve({ useProxyProtocol: true }, { ...lb, proxySource: null }).address, '172.16.0.9');
});
