// canary and canary-* read and merged (src/k8s/traffic-annotations.ts), as ingress-nginx 1.15 does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codes, ingress, service, topologyOf } from './helpers.ts';

const P = 'nginx.ingress.kubernetes.io/';

test('a canary Ingress makes no location; its backend is the alternative of the main one', () => {
  const t = topologyOf(
    ingress({
      name: 'main',
      paths: [
        { path: '/', service: 'web' },
        { path: '/api', service: 'web' },
      ],
    }) +
      ingress({
        name: 'next',
        annotations: { [`${P}canary`]: 'true', [`${P}canary-weight`]: '20', [`${P}canary-by-cookie`]: 'c' },
        paths: [{ path: '/', service: 'web-next' }],
      }) +
      service('web') +
      service('web-next'),
  );
  const locations = t.gateway.virtualHosts[0]!.locations;
  assert.equal(locations.length, 2);
  // The alternative belongs to the main upstream: every location proxying to it has the canary.
  for (const l of locations) {
    assert.equal(l.ingress.name, 'main');
    assert.equal(l.canary?.backend.upstreamName, 'default-web-next-80');
    assert.equal(l.canary?.weight, 20);
    assert.equal(l.canary?.cookie, 'c');
    assert.deepEqual(l.canary?.ingress, { namespace: 'default', name: 'next' });
  }
});

test('no main for the host and path, or the same Service: CANARY_NOT_MERGED, nothing served', () => {
  const t = topologyOf(
    ingress({ name: 'main', paths: [{ path: '/a', service: 'web' }] }) +
      ingress({
        name: 'other-path',
        annotations: { [`${P}canary`]: 'true' },
        paths: [{ path: '/b', service: 'web-next' }],
      }) +
      ingress({
        name: 'same-svc',
        annotations: { [`${P}canary`]: 'true' },
        paths: [{ path: '/a', service: 'web' }],
      }) +
      service('web') +
      service('web-next'),
  );
  assert.equal(codes(t.issues).filter((c) => c === 'CANARY_NOT_MERGED').length, 2);
  // Its rule, and the host's root location (no rule covers "/"); neither has a canary.
  const locations = t.gateway.virtualHosts[0]!.locations;
  assert.deepEqual(
    locations.map((l) => [l.path, l.defaultBackendRoot === true]),
    [
      ['/a', false],
      ['/', true],
    ],
  );
  for (const l of locations) assert.equal(l.canary, undefined);
});

test('canary-* without canary: "true" is a normal Ingress, warned; invalid values take their defaults', () => {
  const t = topologyOf(
    ingress({ name: 'a', host: 'a.test', annotations: { [`${P}canary-weight`]: '10' } }) +
      ingress({
        name: 'b',
        host: 'a.test',
        paths: [{ path: '/x', service: 'svc' }],
        annotations: {
          [`${P}canary`]: 'true',
          [`${P}canary-weight`]: 'ten',
          [`${P}canary-by-header`]: 'bad header!',
        },
      }) +
      service('svc'),
  );
  const warnings = t.issues.filter((i) => i.code === 'INVALID_ANNOTATION_VALUE').map((i) => i.message);
  assert.equal(warnings.length, 3);
  assert.match(warnings.join('\n'), /configured but canary is not "true"/);
  assert.equal(t.gateway.virtualHosts[0]!.locations.length, 1);
});

test('canary-by-header-pattern that can backtrack without bound is never run (no header matches it), with a warning; a plain one is kept', () => {
  const canary = (pattern: string) =>
    topologyOf(
      ingress({ name: 'main', paths: [{ path: '/', service: 'web' }] }) +
        ingress({
          name: 'next',
          annotations: {
            [`${P}canary`]: 'true',
            [`${P}canary-by-header`]: 'x-c',
            [`${P}canary-by-header-pattern`]: pattern,
          },
          paths: [{ path: '/', service: 'web-next' }],
        }) +
        service('web') +
        service('web-next'),
    );
  const nested = canary('^(a+)+$');
  const refused = nested.gateway.virtualHosts[0]!.locations[0]!.canary;
  // It still stands (ingress-nginx runs it): `always` is no keyword then, and cookie and weight decide.
  assert.deepEqual([refused?.headerPattern, refused?.headerPatternRefused], ['^(a+)+$', true]);
  const warning = nested.issues.find((i) => i.message.includes('canary-by-header-pattern'));
  assert.match(
    warning?.message ?? '',
    /"\^\(a\+\)\+\$" repeats "\(a\+\)\+", a group that itself repeats without bound/,
  );
  assert.equal(
    canary('^(on|yes)$').gateway.virtualHosts[0]!.locations[0]!.canary?.headerPattern,
    '^(on|yes)$',
  );
});

test('canary-by-header-pattern is checked with its spaces (IsValidRegex, no space removal) and canary-weight as strconv.Atoi: both refused, warned', () => {
  const t = topologyOf(
    ingress({ name: 'a', host: 'a.test', paths: [{ path: '/', service: 'web' }] }) +
      ingress({
        name: 'b',
        host: 'a.test',
        paths: [{ path: '/', service: 'svc' }],
        annotations: {
          [`${P}canary`]: 'true',
          [`${P}canary-by-header`]: 'x-canary',
          [`${P}canary-by-header-pattern`]: 'a b',
          [`${P}canary-weight`]: ' 50',
        },
      }) +
      service('web') +
      service('svc'),
  );
  const warned = t.issues.filter((i) => i.code === 'INVALID_ANNOTATION_VALUE').map((i) => i.field);
  assert.deepEqual(warned.sort(), [
    `metadata.annotations["${P}canary-by-header-pattern"]`,
    `metadata.annotations["${P}canary-weight"]`,
  ]);
  const canary = t.gateway.virtualHosts[0]!.locations[0]!.canary;
  assert.equal(canary?.header, 'x-canary');
  assert.equal(canary?.headerPattern, null);
  assert.equal(canary?.weight, 0);
});

test('affinity with use-regex and no session-cookie-path is warned (the cookie Path would be the regex), as ingress-nginx warns', () => {
  const affinity = (name: string, more: Record<string, string>) =>
    ingress({
      name,
      host: `${name}.test`,
      paths: [{ path: '/foo/.*', service: 'web', pathType: 'ImplementationSpecific' }],
      annotations: { [`${P}affinity`]: 'cookie', [`${P}use-regex`]: 'true', ...more },
    });
  const t = topologyOf(
    affinity('bare', {}) + affinity('pathed', { [`${P}session-cookie-path`]: '/foo' }) + service('web'),
  );
  const warned = t.issues.filter((i) => i.code === 'SESSION_COOKIE_PATH_IS_REGEX');
  assert.equal(warned.length, 1);
  assert.equal(warned[0]!.severity, 'warning');
  assert.equal(warned[0]!.origin?.name, 'bare');
  assert.match(warned[0]!.message, /session-cookie-path.*use-regex/);
});

test('upstream-hash-by-subset and -subset-size that ingress-nginx refuses (ParseBool, Atoi) are warned, not silently defaulted', () => {
  const t = topologyOf(
    ingress({
      name: 'hash',
      paths: [{ path: '/', service: 'web' }],
      annotations: {
        [`${P}upstream-hash-by`]: '$request_uri',
        [`${P}upstream-hash-by-subset`]: 'yes',
        [`${P}upstream-hash-by-subset-size`]: 'many',
      },
    }) + service('web'),
  );
  const warned = t.issues.filter((i) => i.code === 'INVALID_ANNOTATION_VALUE').map((i) => i.field);
  assert.deepEqual(warned.sort(), [
    `metadata.annotations["${P}upstream-hash-by-subset"]`,
    `metadata.annotations["${P}upstream-hash-by-subset-size"]`,
  ]);
  // The hash itself still applies, without a subset (the default of the refused value).
  assert.deepEqual(t.gateway.virtualHosts[0]!.locations[0]!.upstreamHashBy, {
    by: '$request_uri',
    subsetSize: null,
  });
});

test('affinity, affinity-mode and affinity-canary-behavior as written (ValidateOptions, case-sensitive): other spellings are warned and take the default', () => {
  const main = (name: string, annotations: Record<string, string>) =>
    ingress({ name, host: `${name}.test`, paths: [{ path: '/', service: name }], annotations });
  const t = topologyOf(
    main('upper', { [`${P}affinity`]: 'Cookie' }) +
      main('mode', { [`${P}affinity`]: 'cookie', [`${P}affinity-mode`]: 'Persistent' }) +
      main('web', {}) +
      ingress({
        name: 'next',
        host: 'web.test',
        paths: [{ path: '/', service: 'next' }],
        annotations: { [`${P}canary`]: 'true', [`${P}affinity-canary-behavior`]: 'Legacy' },
      }) +
      service('upper') +
      service('mode') +
      service('web') +
      service('next'),
  );
  const warned = t.issues.filter((i) => i.code === 'INVALID_ANNOTATION_VALUE').map((i) => i.field);
  assert.deepEqual(warned.sort(), [
    `metadata.annotations["${P}affinity"]`,
    `metadata.annotations["${P}affinity-canary-behavior"]`,
    `metadata.annotations["${P}affinity-mode"]`,
  ]);
  const location = (host: string) => t.gateway.virtualHosts.find((v) => v.host === host)!.locations[0]!;
  assert.equal(location('upper.test').affinity, undefined);
  assert.equal(location('mode.test').affinity?.mode, 'balanced');
  assert.equal(location('web.test').canary?.legacyAffinity, undefined);
});

test('load-balance as written (case-sensitive ValidateOptions): "EWMA" is warned and round robin applies', () => {
  const t = topologyOf(
    ingress({
      name: 'lb',
      paths: [{ path: '/', service: 'web' }],
      annotations: { [`${P}load-balance`]: 'EWMA' },
    }) + service('web'),
  );
  assert.deepEqual(
    t.issues.filter((i) => i.code === 'INVALID_ANNOTATION_VALUE').map((i) => i.field),
    [`metadata.annotations["${P}load-balance"]`],
  );
  assert.notEqual(t.gateway.virtualHosts[0]!.locations[0]!.loadBalance, 'ewma');
});

test('a canary path written ImplementationSpecific merges with the main Prefix path: both are Prefix there', () => {
  // ingress-nginx compares the pathTypes after SetDefaultNGINXPathType (mergeAlternativeBackends).
  const t = topologyOf(
    ingress({ name: 'main', paths: [{ path: '/', service: 'web' }] }) +
      ingress({
        name: 'next',
        annotations: { [`${P}canary`]: 'true', [`${P}canary-by-header`]: 'X-Canary' },
        paths: [{ path: '/', pathType: 'ImplementationSpecific', service: 'web-next' }],
      }) +
      service('web') +
      service('web-next'),
  );
  assert.equal(codes(t.issues).includes('CANARY_NOT_MERGED'), false);
  assert.equal(t.gateway.virtualHosts[0]!.locations[0]!.canary?.backend.upstreamName, 'default-web-next-80');
});
