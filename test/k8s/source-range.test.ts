import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SourceRangeModel } from '../../src/config/model.ts';
import {
  mappedEntries,
  parseConfigMapSourceRange,
  parseSourceRange,
  resolveAccessRules,
  sourceRangeModel,
} from '../../src/k8s/source-range.ts';

const P = 'nginx.ingress.kubernetes.io/';

test('the ingress-nginx annotation parser vectors', () => {
  const valid: [string, string[]][] = [
    ['10.0.0.0/24', ['10.0.0.0/24']],
    ['2.2.2.2/32,1.1.1.1/32,3.3.3.0/24', ['1.1.1.1/32', '2.2.2.2/32', '3.3.3.0/24']],
    ['1.0.0.0,2.0.0.0/8,3.0.0.0/8', ['1.0.0.0', '2.0.0.0/8', '3.0.0.0/8']],
    ['192.0.0.1, 192.0.1.0/24', ['192.0.0.1', '192.0.1.0/24']],
  ];
  for (const [value, cidrs] of valid) assert.deepEqual(parseSourceRange(value), { ok: true, cidrs }, value);
  for (const value of ['ww', '', '10.0.0.0/8"rm /tmp",11.0.0.0/8', 'invalid.com']) {
    const result = parseSourceRange(value);
    assert.equal(result.ok, false, value);
    if (!result.ok) assert.equal(result.error.code, 'INVALID_SOURCE_RANGE');
  }
});

test('entries are trimmed, host bits masked, duplicates dropped, output sorted like Go sort.Strings', () => {
  assert.deepEqual(parseSourceRange(' 10.1.2.3/8 ,\t10.0.0.0/8,\n2001:DB8::1/32 , 10.0.0.5 '), {
    ok: true,
    cidrs: ['10.0.0.0/8', '10.0.0.5', '2001:db8::/32'],
  });
  // Go prints a mapped address as IPv4 and a mapped /120 as the IPv4 /24.
  assert.deepEqual(parseSourceRange('::ffff:1.2.3.4,::ffff:5.6.7.0/120'), {
    ok: true,
    cidrs: ['1.2.3.4', '5.6.7.0/24'],
  });
  // A bare IP and the same /32 are different strings to Go, so both stay.
  assert.deepEqual(parseSourceRange('1.1.1.1,1.1.1.1/32'), { ok: true, cidrs: ['1.1.1.1', '1.1.1.1/32'] });
  assert.deepEqual(parseSourceRange('\u00a010.0.0.0/8\u3000'), { ok: true, cidrs: ['10.0.0.0/8'] });
});

test('any empty or bad entry rejects the whole value', () => {
  for (const value of [
    '   ',
    '10.0.0.0/8,',
    ',10.0.0.0/8',
    '10.0.0.0/8,,11.0.0.0/8',
    '10.0.0.0/8, ,11.0.0.0/8',
    '010.0.0.0/8',
    '10.0.0.0/33',
    'fe80::1%eth0',
    '10.0.0.0/8;11.0.0.0/8',
    '10.0.0.0/8 11.0.0.0/8',
    '\ufeff10.0.0.0/8',
  ]) {
    assert.equal(parseSourceRange(value).ok, false, JSON.stringify(value));
  }
});

const defaults = {
  allow: sourceRangeModel('192.168.0.0/16', 'configmap'),
  deny: sourceRangeModel('192.168.66.0/24', 'configmap'),
};

test('allowlist wins over whitelist; an annotation replaces the ConfigMap default (no merge)', () => {
  const both = resolveAccessRules(
    { [`${P}allowlist-source-range`]: '10.0.0.0/8', [`${P}whitelist-source-range`]: '11.0.0.0/8' },
    defaults,
  );
  assert.deepEqual(both.allow, { valid: true, cidrs: ['10.0.0.0/8'], raw: '10.0.0.0/8', from: 'annotation' });
  assert.equal(both.deny, defaults.deny);

  const legacy = resolveAccessRules({ [`${P}whitelist-source-range`]: '11.0.0.1, 11.0.0.1/32' }, defaults);
  assert.deepEqual(legacy.allow, {
    valid: true,
    cidrs: ['11.0.0.1/32'],
    raw: '11.0.0.1, 11.0.0.1/32',
    from: 'annotation',
  });

  // As ingress-nginx's checkAnnotation: only an empty value goes on to the legacy name; white space
  // alone is an invalid list (the location is denied), never the legacy name's wider ranges.
  const emptyAllow = resolveAccessRules(
    { [`${P}allowlist-source-range`]: '', [`${P}whitelist-source-range`]: '11.0.0.0/8' },
    defaults,
  );
  assert.equal(emptyAllow.allow?.valid && emptyAllow.allow.cidrs[0], '11.0.0.0/8');
  for (const blank of [' ', '\t', ' , ']) {
    const blankAllow = resolveAccessRules(
      { [`${P}allowlist-source-range`]: blank, [`${P}whitelist-source-range`]: '11.0.0.0/8' },
      defaults,
    );
    assert.equal(blankAllow.allow?.valid, false, JSON.stringify(blank));
  }

  const deny = resolveAccessRules({ [`${P}denylist-source-range`]: '18.0.0.0/8, 56.0.0.1' }, defaults);
  assert.deepEqual(deny.deny, {
    valid: true,
    cidrs: ['18.0.0.0/8', '56.0.0.1/32'],
    raw: '18.0.0.0/8, 56.0.0.1',
    from: 'annotation',
  });
  assert.equal(deny.allow, defaults.allow);
});

test('without annotations the ConfigMap defaults apply; other annotations and prefixes are ignored', () => {
  assert.deepEqual(resolveAccessRules({}, defaults), defaults);
  assert.deepEqual(resolveAccessRules({}, { allow: null, deny: null }), { allow: null, deny: null });
  assert.deepEqual(
    resolveAccessRules({ 'allowlist-source-range': '1.1.1.1', [`${P}rewrite-target`]: '/' }, defaults),
    defaults,
  );
  const custom = resolveAccessRules(
    { 'example.com/allowlist-source-range': '1.1.1.1' },
    defaults,
    'example.com/',
  );
  assert.equal(custom.allow?.valid && custom.allow.cidrs[0], '1.1.1.1/32');
});

test('invalid or blank annotation values fail closed instead of falling back to the default', () => {
  const cases: Record<string, string>[] = [
    { [`${P}allowlist-source-range`]: 'ww' },
    { [`${P}allowlist-source-range`]: '' },
    { [`${P}whitelist-source-range`]: '' },
    { [`${P}allowlist-source-range`]: '', [`${P}whitelist-source-range`]: '  ' },
    { [`${P}allowlist-source-range`]: '10.0.0.0/8', [`${P}whitelist-source-range`]: 'bad' },
  ];
  const outcomes = cases.map((annotations) => resolveAccessRules(annotations, defaults).allow);
  for (const model of outcomes.slice(0, 4)) {
    assert.equal(model?.valid, false, JSON.stringify(model));
    assert.equal(model?.from, 'annotation');
  }
  // The legacy alias is not read when the allowlist is set, so its bad value does not matter.
  assert.equal(outcomes[4]?.valid, true);
  const deny = resolveAccessRules({ [`${P}denylist-source-range`]: '' }, defaults).deny;
  assert.equal(deny?.valid, false);
  const model = sourceRangeModel('10.0.0.0/8"rm /tmp"', 'annotation') as Extract<
    SourceRangeModel,
    { valid: false }
  >;
  assert.equal(model.raw, '10.0.0.0/8"rm /tmp"');
  assert.match(model.error, /not a valid IP address or network/);
});

test('ConfigMap lists: empty means none, empty fields are skipped, a bad or blank entry fails closed', () => {
  assert.equal(parseConfigMapSourceRange(undefined), null);
  assert.equal(parseConfigMapSourceRange(''), null);
  // splitAndTrimSpace keeps a field of spaces as an empty entry: nginx would not load `allow ;`.
  for (const blank of ['  ', '10.0.0.0/8, ,192.168.1.0/24', ' ,10.0.0.0/8'])
    assert.equal(parseConfigMapSourceRange(blank)?.valid, false, blank);
  assert.deepEqual(parseConfigMapSourceRange('10.0.0.0/8,, 1.2.3.4 ,'), {
    valid: true,
    cidrs: ['1.2.3.4/32', '10.0.0.0/8'],
    raw: '10.0.0.0/8,1.2.3.4',
    from: 'configmap',
  });
  const bad = parseConfigMapSourceRange('10.0.0.0/8, 300.0.0.0/8');
  assert.equal(bad?.valid, false);
  assert.equal(bad?.raw, '10.0.0.0/8, 300.0.0.0/8');
});

test('IPv4-mapped entries: what Go prints for each, and a ConfigMap allow/trust list reads them as nginx does (matching nobody)', () => {
  assert.deepEqual(mappedEntries('10.0.0.0/8, ::ffff:0:0/96 ,::ffff:10.0.0.1,::/0,::ffff:0:0/80'), [
    { entry: '::ffff:0:0/96', ipv4: '0.0.0.0/0' },
    { entry: '::ffff:10.0.0.1', ipv4: '10.0.0.1/32' },
  ]);
  // Folded (annotations, and the ConfigMap's deny lists): the IPv4 range.
  assert.deepEqual(parseConfigMapSourceRange('::ffff:0:0/96'), {
    valid: true,
    cidrs: ['0.0.0.0/0'],
    raw: '::ffff:0:0/96',
    from: 'configmap',
  });
  // As nginx (whitelist-source-range, proxy-real-ip-cidr): dropped; alone, the list matches nobody.
  assert.deepEqual(parseConfigMapSourceRange('::ffff:0:0/96', 'as-nginx'), {
    valid: true,
    cidrs: [],
    raw: '::ffff:0:0/96',
    from: 'configmap',
    matchesNobody: true,
  });
  assert.deepEqual(parseConfigMapSourceRange('10.0.0.0/8, ::ffff:0:0/96,::ffff:192.0.2.1', 'as-nginx'), {
    valid: true,
    cidrs: ['10.0.0.0/8'],
    raw: '10.0.0.0/8, ::ffff:0:0/96,::ffff:192.0.2.1',
    from: 'configmap',
  });
  // A bad entry still fails the whole list closed.
  assert.equal(parseConfigMapSourceRange('::ffff:0:0/96, nope', 'as-nginx')?.valid, false);
});

test('255.255.255.255, which nginx reads as no address, makes a list invalid where ingress-nginx writes it so', () => {
  // Annotations are written as Go prints them: the all-ones address alone (or /32) is refused.
  for (const value of ['255.255.255.255', '10.0.0.0/8, 255.255.255.255/32', '::ffff:255.255.255.255'])
    assert.equal(parseSourceRange(value).ok, false, value);
  // Go prints 255.255.255.255/8 as 255.0.0.0/8, which nginx takes.
  assert.deepEqual(parseSourceRange('255.255.255.255/8'), { ok: true, cidrs: ['255.0.0.0/8'] });
  // ConfigMap lists reach nginx as written: any prefix on that address is refused.
  for (const value of ['255.255.255.255/8', '127.0.0.0/8, ::ffff:255.255.255.255'])
    assert.equal(parseConfigMapSourceRange(value)?.valid, false, value);
  assert.equal(parseConfigMapSourceRange('255.255.255.254')?.valid, true);
});
