// Attempts to get past a source-IP allowlist (and a deny list) by lying about the client address.
// The rows (test/fixtures/spoofing.ts, shared with the replay over sockets in
// test/security/spoofing-over-sockets.test.ts): the gateway settings, what arrives (TCP peer, PROXY
// source, headers), and the verdict. The resolver + policy, exactly as the gateway runs them, must never
// answer 'allow', and must reach each row's verdict: the client it settles on and the rule that decides.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sourceRangeModel } from '../../src/k8s/source-range.ts';
import { compileAccessPolicy } from '../../src/net/access-policy.ts';
import { CidrSet } from '../../src/net/cidr-set.ts';
import { createClientIpResolver } from '../../src/net/client-ip.ts';
import { type Attempt, DOCUMENTATION_PLAN, spoofingTable } from '../fixtures/spoofing.ts';

const table = spoofingTable(DOCUMENTATION_PLAN);

const trusted = (() => {
  const built = CidrSet.build(table.trusted);
  assert.ok(built.ok);
  return built.set;
})();

const policy = compileAccessPolicy({
  block: sourceRangeModel(table.access.block, 'configmap'),
  deny: sourceRangeModel(table.access.deny, 'annotation'),
  allow: sourceRangeModel(table.access.allow, 'annotation'),
});

function verdictOf(attempt: Attempt) {
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
  return { outcome: decision.outcome, rule: decision.rule, client: client.address, detail: decision.detail };
}

test(`spoofing: ${table.attempts.length} attempts to get past the allowlist, none allowed`, () => {
  assert.ok(table.attempts.length >= 25);
  const through: string[] = [];
  for (const attempt of table.attempts) {
    const { outcome, rule, client, detail } = verdictOf(attempt);
    if (outcome === 'allow') through.push(`${attempt.name}: resolved ${client} (${detail})`);
    assert.deepEqual({ outcome, rule, client }, attempt.expect, attempt.name);
  }
  assert.deepEqual(through, []);
});

test('control: the same settings let genuine clients through (the table can fail)', () => {
  for (const attempt of table.genuine) {
    const { outcome, rule, client } = verdictOf(attempt);
    assert.deepEqual({ outcome, rule, client }, attempt.expect, attempt.name);
  }
});
