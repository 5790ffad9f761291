import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SourceRangeModel } from '../../src/config/model.ts';
import { resolveAccessRules, sourceRangeModel } from '../../src/k8s/source-range.ts';
import { type AccessDecision, compileAccessPolicy } from '../../src/net/access-policy.ts';
import { parseIp } from '../../src/net/ip.ts';

const P = 'nginx.ingress.kubernetes.io/';
const status = (d: AccessDecision) => ({ allow: 200, deny: 403, 'fail-closed': 503 })[d.outcome];
const model = (raw: string, from: 'annotation' | 'configmap' = 'annotation') => sourceRangeModel(raw, from);

test('ingress-nginx end-to-end vectors: client IP -> status', () => {
  const noDefaults = { allow: null, deny: null };
  const denyOnly = resolveAccessRules({ [`${P}denylist-source-range`]: '18.0.0.0/8, 56.0.0.1' }, noDefaults);
  const p1 = compileAccessPolicy({ block: null, ...denyOnly });
  assert.deepEqual(
    ['18.0.0.1', '56.0.0.1', '56.0.0.2'].map((ip) => status(p1.decide(ip))),
    [403, 403, 200],
  );
  const both = resolveAccessRules(
    {
      [`${P}denylist-source-range`]: '18.1.0.0/16, 56.0.0.0/8',
      [`${P}allowlist-source-range`]: '18.0.0.0/8, 55.0.0.0/8',
    },
    noDefaults,
  );
  const p2 = compileAccessPolicy({ block: null, ...both });
  assert.deepEqual(
    ['18.1.0.1', '10.10.10.10', '18.4.0.1', '55.55.55.55'].map((ip) => status(p2.decide(ip))),
    [403, 403, 200, 200],
  );
});

test('every decision names the rule and the entry that decided', () => {
  const policy = compileAccessPolicy({
    block: model('198.51.100.0/24', 'configmap'),
    deny: model('10.66.0.0/16'),
    allow: model('10.0.0.0/8, 198.51.100.7'),
  });
  assert.deepEqual(policy.decide('198.51.100.7'), {
    outcome: 'deny',
    rule: 'block-cidrs',
    entry: '198.51.100.0/24',
    detail: 'denied by block-cidrs entry 198.51.100.0/24',
  });
  assert.deepEqual(policy.decide('10.66.1.1'), {
    outcome: 'deny',
    rule: 'denylist',
    entry: '10.66.0.0/16',
    detail: 'denied by denylist entry 10.66.0.0/16',
  });
  assert.deepEqual(policy.decide(parseIp('::ffff:10.1.1.1')!), {
    outcome: 'allow',
    rule: 'allowlist',
    entry: '10.0.0.0/8',
    detail: 'allowed by allowlist entry 10.0.0.0/8',
  });
  assert.equal(policy.decide('11.0.0.1').rule, 'allowlist-miss');
  assert.equal(policy.failClosed, false);
  assert.equal(policy.hasRules, true);
});

test('block-cidrs apply even where a location has its own allowlist (unlike nginx)', () => {
  const policy = compileAccessPolicy({
    block: model('10.9.0.0/16', 'configmap'),
    deny: null,
    allow: model('10.0.0.0/8'),
  });
  assert.equal(policy.decide('10.9.0.1').outcome, 'deny');
  assert.equal(policy.decide('10.8.0.1').outcome, 'allow');
});

test('no rules allows with rule no-rules; deny-only lists report the list consulted', () => {
  const none = compileAccessPolicy({ block: null, deny: null, allow: null });
  assert.deepEqual(none.decide('1.2.3.4'), {
    outcome: 'allow',
    rule: 'no-rules',
    entry: null,
    detail: 'no access rules',
  });
  assert.equal(none.hasRules, false);
  assert.equal(none.decide('not an ip').outcome, 'allow', 'no rules: nothing to protect');
  const empty: SourceRangeModel = { valid: true, cidrs: [], raw: '', from: 'configmap' };
  assert.equal(compileAccessPolicy({ block: empty, deny: empty, allow: empty }).hasRules, false);
  const denyOnly = compileAccessPolicy({ block: null, deny: model('10.0.0.0/8'), allow: null });
  assert.deepEqual(denyOnly.decide('11.0.0.1'), {
    outcome: 'allow',
    rule: 'denylist',
    entry: null,
    detail: 'not listed in denylist',
  });
  const blockOnly = compileAccessPolicy({ block: model('10.0.0.0/8', 'configmap'), deny: null, allow: null });
  assert.equal(blockOnly.decide('11.0.0.1').rule, 'block-cidrs');
});

test('a list that matches nobody (IPv4-mapped ConfigMap entries, as nginx) restricts to nobody, unlike an empty one', () => {
  const nobody: SourceRangeModel = {
    valid: true,
    cidrs: [],
    raw: '::ffff:0:0/96',
    from: 'configmap',
    matchesNobody: true,
  };
  const policy = compileAccessPolicy({ block: null, deny: null, allow: nobody });
  assert.equal(policy.hasRules, true);
  for (const client of ['127.0.0.1', '10.0.0.1', '::1'])
    assert.equal(policy.decide(client).outcome, 'deny', client);
  assert.equal(
    compileAccessPolicy({ block: null, deny: nobody, allow: null }).decide('10.0.0.1').outcome,
    'allow',
  );
});

test('invalid rules fail closed for everyone, with a distinct outcome and the reason', () => {
  for (const rules of [
    { block: null, deny: null, allow: model('ww') },
    { block: null, deny: model(''), allow: model('10.0.0.0/8') },
    { block: model('10.0.0.0/8"rm /tmp"', 'configmap'), deny: null, allow: null },
    {
      block: null,
      deny: null,
      allow: { valid: true, cidrs: ['10.0.0.0/8', 'bogus'], raw: 'x', from: 'annotation' } as const,
    },
  ]) {
    const policy = compileAccessPolicy(rules);
    assert.equal(policy.failClosed, true);
    for (const ip of ['10.0.0.1', '1.2.3.4', '', '::1']) {
      const d = policy.decide(ip);
      assert.equal(d.outcome, 'fail-closed');
      assert.equal(d.rule, 'invalid-rules');
      assert.equal(status(d), 503);
    }
    assert.match(policy.decide('1.1.1.1').detail, /invalid (allowlist|denylist|block-cidrs)/);
  }
});

test('an unparsable client address is denied whenever any rule exists, even under 0.0.0.0/0', () => {
  const allowAll = compileAccessPolicy({ block: null, deny: null, allow: model('0.0.0.0/0, ::/0') });
  const denyOne = compileAccessPolicy({ block: null, deny: model('10.0.0.1'), allow: null });
  for (const address of ['', 'unknown', '010.0.0.1', '10.0.0.1 ', 'fe80::1%eth0', '10.0.0.1:80']) {
    assert.equal(allowAll.decide(address).outcome, 'deny', address);
    assert.equal(allowAll.decide(address).rule, 'allowlist-miss');
    assert.equal(denyOne.decide(address).outcome, 'deny', address);
  }
});

test('a list shared by many locations is compiled once (same model object, same decisions)', () => {
  const shared = model('10.0.0.0/8', 'configmap');
  const a = compileAccessPolicy({ block: shared, deny: null, allow: null });
  const b = compileAccessPolicy({ block: shared, deny: null, allow: model('11.0.0.0/8') });
  assert.equal(a.decide('10.1.1.1').entry, '10.0.0.0/8');
  assert.equal(b.decide('10.1.1.1').rule, 'block-cidrs');
  assert.equal(b.decide('11.1.1.1').outcome, 'allow');
});
