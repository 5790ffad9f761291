// Attempts to get past a source-IP allowlist (and a deny list) by lying about the client address.
// Each row: the gateway settings, what arrives (TCP peer, PROXY source, headers), and the attacker's
// real address. The resolver + policy, exactly as the gateway runs them, must never answer 'allow'.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sourceRangeModel } from '../../src/k8s/source-range.ts';
import { compileAccessPolicy } from '../../src/net/access-policy.ts';
import { CidrSet } from '../../src/net/cidr-set.ts';
import {
  type ClientIpSettings,
  createClientIpResolver,
  type RequestHeaders,
} from '../../src/net/client-ip.ts';

const ATTACKER = '203.0.113.7';
const APPENDING_PROXY = '172.16.0.1'; // trusted L7 proxy that appends the real peer to X-Forwarded-For
const PASS_THROUGH_LB = '10.0.0.250'; // trusted, inside the allowlisted VPC range, forwards headers as they are

const trusted = (() => {
  const built = CidrSet.build(['172.16.0.0/12', '10.0.0.250']);
  assert.ok(built.ok);
  return built.set;
})();

const policy = compileAccessPolicy({
  block: sourceRangeModel('198.51.100.0/24', 'configmap'),
  deny: sourceRangeModel('10.66.0.0/16', 'annotation'),
  allow: sourceRangeModel('10.0.0.0/8, 2001:db8:a::/48, 198.51.100.0/24', 'annotation'),
});

const xff: Partial<ClientIpSettings> = { useForwardedHeaders: true };
const pp: Partial<ClientIpSettings> = { useProxyProtocol: true };
const forwarded: Partial<ClientIpSettings> = { useForwardedHeaders: true, forwardedForHeader: 'Forwarded' };
const appended = (forged: string) => ({ 'x-forwarded-for': `${forged}, ${ATTACKER}` });

interface Attempt {
  name: string;
  settings: Partial<ClientIpSettings>;
  peer: string;
  proxySource?: string;
  headers?: RequestHeaders;
}

const attempts: Attempt[] = [
  // Forged headers from an untrusted peer.
  {
    name: 'forged XFF, untrusted peer',
    settings: xff,
    peer: ATTACKER,
    headers: { 'x-forwarded-for': '10.0.0.1' },
  },
  {
    name: 'forged XFF as a list, untrusted peer',
    settings: xff,
    peer: ATTACKER,
    headers: { 'x-forwarded-for': ['10.0.0.1', '10.0.0.2'] },
  },
  {
    name: 'X-Real-IP when XFF is configured',
    settings: xff,
    peer: ATTACKER,
    headers: { 'x-real-ip': '10.0.0.1' },
  },
  {
    name: 'Forwarded when XFF is configured',
    settings: xff,
    peer: APPENDING_PROXY,
    headers: { forwarded: 'for=10.0.0.1', 'x-forwarded-for': ATTACKER },
  },
  {
    name: 'forged XFF, headers not enabled',
    settings: {},
    peer: ATTACKER,
    headers: { 'x-forwarded-for': '10.0.0.1' },
  },
  {
    name: 'forged XFF, untrusted mapped peer',
    settings: xff,
    peer: `::ffff:${ATTACKER}`,
    headers: { 'x-forwarded-for': '10.0.0.1' },
  },
  // Left-most entries behind a proxy that appends the real peer.
  { name: 'left-most XFF entry', settings: xff, peer: APPENDING_PROXY, headers: appended('10.0.0.1') },
  {
    name: 'forged trusted hop before the real peer',
    settings: xff,
    peer: APPENDING_PROXY,
    headers: appended('10.0.0.1, 172.16.0.2'),
  },
  { name: 'forged mapped form', settings: xff, peer: APPENDING_PROXY, headers: appended('::ffff:10.0.0.1') },
  {
    name: 'trailing comma and empty entries',
    settings: xff,
    peer: APPENDING_PROXY,
    headers: appended('10.0.0.1,,, ,'),
  },
  { name: 'whitespace padding', settings: xff, peer: APPENDING_PROXY, headers: appended('   10.0.0.1   ') },
  {
    name: 'very long forged chain',
    settings: xff,
    peer: APPENDING_PROXY,
    headers: appended('10.0.0.1, '.repeat(5000)),
  },
  {
    name: 'very long chain of forged trusted hops',
    settings: xff,
    peer: APPENDING_PROXY,
    headers: appended('172.16.0.9,'.repeat(5000)),
  },
  // Malformed entries reaching a trusted hop whose own address is allowlisted (nginx falls back to it).
  {
    name: 'garbage entry via pass-through LB',
    settings: xff,
    peer: PASS_THROUGH_LB,
    headers: { 'x-forwarded-for': 'garbage' },
  },
  {
    name: 'leading-zero octets',
    settings: xff,
    peer: PASS_THROUGH_LB,
    headers: { 'x-forwarded-for': '010.0.0.1' },
  },
  {
    name: 'zone id',
    settings: xff,
    peer: PASS_THROUGH_LB,
    headers: { 'x-forwarded-for': '2001:db8:a::1%eth0' },
  },
  {
    name: '"unknown" entry',
    settings: xff,
    peer: PASS_THROUGH_LB,
    headers: { 'x-forwarded-for': 'unknown' },
  },
  {
    name: 'bracketed IPv4 with port',
    settings: xff,
    peer: PASS_THROUGH_LB,
    headers: { 'x-forwarded-for': '[10.0.0.1]:80' },
  },
  { name: 'empty XFF header', settings: xff, peer: PASS_THROUGH_LB, headers: { 'x-forwarded-for': '' } },
  { name: 'separators only', settings: xff, peer: PASS_THROUGH_LB, headers: { 'x-forwarded-for': ' , ,' } },
  {
    name: 'tab inside an entry',
    settings: xff,
    peer: PASS_THROUGH_LB,
    headers: { 'x-forwarded-for': '10.0.0.1\t' },
  },
  {
    name: 'octal/hex/integer forms',
    settings: xff,
    peer: PASS_THROUGH_LB,
    headers: { 'x-forwarded-for': '0x0a.0.0.1' },
  },
  {
    name: 'integer address',
    settings: xff,
    peer: PASS_THROUGH_LB,
    headers: { 'x-forwarded-for': '167772161' },
  },
  // RFC 7239 quirks.
  {
    name: 'Forwarded for=unknown',
    settings: forwarded,
    peer: PASS_THROUGH_LB,
    headers: { forwarded: 'for=unknown' },
  },
  {
    name: 'Forwarded obfuscated node',
    settings: forwarded,
    peer: PASS_THROUGH_LB,
    headers: { forwarded: 'for=_gazonk' },
  },
  {
    name: 'Forwarded duplicate for=',
    settings: forwarded,
    peer: PASS_THROUGH_LB,
    headers: { forwarded: 'for=10.0.0.1;for=10.0.0.2' },
  },
  {
    name: 'Forwarded unbalanced quote',
    settings: forwarded,
    peer: PASS_THROUGH_LB,
    headers: { forwarded: 'for="10.0.0.1' },
  },
  {
    name: 'Forwarded unquoted IPv6',
    settings: forwarded,
    peer: PASS_THROUGH_LB,
    headers: { forwarded: 'for=2001:db8:a::1' },
  },
  {
    name: 'Forwarded element without for=',
    settings: forwarded,
    peer: PASS_THROUGH_LB,
    headers: { forwarded: 'proto=https;host=x' },
  },
  {
    name: 'Forwarded quoted comma to fake an element',
    settings: forwarded,
    peer: APPENDING_PROXY,
    headers: { forwarded: `for="10.0.0.1, for=10.0.0.2", for=${ATTACKER}` },
  },
  {
    name: 'Forwarded left-most element',
    settings: forwarded,
    peer: APPENDING_PROXY,
    headers: { forwarded: `for=10.0.0.1, for="${ATTACKER}:4711"` },
  },
  // PROXY protocol.
  { name: 'PROXY header from an untrusted peer', settings: pp, peer: ATTACKER, proxySource: '10.0.0.1' },
  {
    name: 'PROXY header from an untrusted mapped peer',
    settings: pp,
    peer: `::ffff:${ATTACKER}`,
    proxySource: '10.0.0.1',
  },
  {
    name: 'PROXY + XFF: forged XFF behind an untrusted PROXY source',
    settings: { ...pp, ...xff },
    peer: APPENDING_PROXY,
    proxySource: ATTACKER,
    headers: { 'x-forwarded-for': '10.0.0.1' },
  },
  {
    name: 'PROXY + XFF: mapped PROXY source',
    settings: { ...pp, ...xff },
    peer: APPENDING_PROXY,
    proxySource: `::ffff:${ATTACKER}`,
    headers: { 'x-forwarded-for': '10.0.0.1' },
  },
  { name: 'PROXY source with a zone', settings: pp, peer: APPENDING_PROXY, proxySource: 'fe80::1%eth0' },
  // Other forms of denied or blocked addresses.
  { name: 'denied insider as a mapped socket address', settings: {}, peer: '::ffff:10.66.0.5' },
  {
    name: 'denied insider as hex-mapped PROXY source',
    settings: pp,
    peer: APPENDING_PROXY,
    proxySource: '::ffff:a42:5',
  },
  {
    name: 'denied insider with a port in XFF',
    settings: xff,
    peer: APPENDING_PROXY,
    headers: { 'x-forwarded-for': '10.66.0.5:4711' },
  },
  {
    name: 'denied insider as [mapped]:port in XFF',
    settings: xff,
    peer: APPENDING_PROXY,
    headers: { 'x-forwarded-for': '[::ffff:10.66.0.5]:443' },
  },
  { name: 'blocked address that is also allowlisted', settings: {}, peer: '198.51.100.20' },
  { name: 'IPv6 outside the allowlisted /48', settings: {}, peer: '2001:db8:b::7' },
  {
    name: 'IPv4-compatible form of an allowlisted address',
    settings: xff,
    peer: APPENDING_PROXY,
    headers: { 'x-forwarded-for': '::10.0.0.1' },
  },
];

test(`spoofing: ${attempts.length} attempts to get past the allowlist, none allowed`, () => {
  assert.ok(attempts.length >= 25);
  const through: string[] = [];
  for (const attempt of attempts) {
    const resolver = createClientIpResolver({
      useProxyProtocol: false,
      trusted,
      useForwardedHeaders: false,
      enableRealIp: false,
      forwardedForHeader: 'X-Forwarded-For',
      ...attempt.settings,
    });
    const client = resolver.resolve({
      peerAddress: attempt.peer,
      proxySource: attempt.proxySource ?? null,
      headers: attempt.headers ?? {},
    });
    const decision = policy.decide(client.address);
    if (decision.outcome === 'allow')
      through.push(`${attempt.name}: resolved ${client.address} (${decision.detail})`);
  }
  assert.deepEqual(through, []);
});

test('control: the same settings let genuine clients through (the table can fail)', () => {
  const resolver = createClientIpResolver({
    useProxyProtocol: true,
    trusted,
    useForwardedHeaders: true,
    enableRealIp: false,
    forwardedForHeader: 'X-Forwarded-For',
  });
  const viaPp = resolver.resolve({ peerAddress: APPENDING_PROXY, proxySource: '10.1.2.3', headers: {} });
  assert.equal(policy.decide(viaPp.address).outcome, 'allow');
  const viaXff = resolver.resolve({
    peerAddress: APPENDING_PROXY,
    proxySource: '172.16.0.7',
    headers: { 'x-forwarded-for': '203.0.113.1, 2001:db8:a::9' },
  });
  assert.equal(viaXff.address, '2001:db8:a::9');
  assert.equal(policy.decide(viaXff.address).outcome, 'allow');
  const mappedPeer = createClientIpResolver({
    useProxyProtocol: false,
    trusted,
    useForwardedHeaders: false,
    enableRealIp: false,
    forwardedForHeader: 'X-Forwarded-For',
  }).resolve({ peerAddress: '::ffff:10.1.2.3', proxySource: null, headers: {} });
  assert.equal(policy.decide(mappedPeer.address).outcome, 'allow');
});
