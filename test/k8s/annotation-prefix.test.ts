// --annotations-prefix: a controller told to read `custom.example.com/` reads its annotations there
// (keepip folds them onto ingress-nginx's names) and ignores nginx.ingress.kubernetes.io/ ones, as
// ingress-nginx does; the default prefix changes nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  annotationsPrefixProblem,
  DEFAULT_ANNOTATIONS_PREFIX,
  foldAnnotationsPrefix,
} from '../../src/k8s/annotation-prefix.ts';
import { codes, ingress, service, topologyOf } from './helpers.ts';

const STANDARD = 'nginx.ingress.kubernetes.io/';
const CUSTOM = 'custom.example.com/';

test('a custom prefix is read, the standard prefix then ignored, other keys kept', () => {
  const folded = foldAnnotationsPrefix(
    {
      [`${CUSTOM}ssl-redirect`]: 'false',
      [`${STANDARD}ssl-redirect`]: 'true',
      [`${STANDARD}whitelist-source-range`]: '10.0.0.0/8',
      'kubernetes.io/ingress.class': 'nginx',
      'custom.example.comx/other': 'kept',
    },
    'custom.example.com',
  );
  assert.deepEqual(folded, {
    [`${STANDARD}ssl-redirect`]: 'false',
    'kubernetes.io/ingress.class': 'nginx',
    'custom.example.comx/other': 'kept',
  });
  const same = { [`${STANDARD}ssl-redirect`]: 'true' };
  assert.equal(foldAnnotationsPrefix(same, DEFAULT_ANNOTATIONS_PREFIX), same);
});

test('the allowlist of an Ingress comes from the prefix the controller reads', () => {
  const manifests =
    service('svc') +
    ingress({
      name: 'custom',
      host: 'a.example',
      annotations: { [`${CUSTOM}whitelist-source-range`]: '10.0.0.0/8' },
    }) +
    ingress({
      name: 'std',
      host: 'b.example',
      annotations: { [`${STANDARD}whitelist-source-range`]: '192.0.2.0/24' },
    });
  const allowOf = (t: ReturnType<typeof topologyOf>, host: string) =>
    t.gateway.virtualHosts.find((v) => v.host === host)!.locations[0]!.allow;
  const cidrsOf = (allow: ReturnType<typeof allowOf>) => (allow?.valid ? allow.cidrs : allow);
  const custom = topologyOf(manifests, { annotationsPrefix: 'custom.example.com' });
  assert.deepEqual(cidrsOf(allowOf(custom, 'a.example')), ['10.0.0.0/8']);
  assert.equal(allowOf(custom, 'b.example'), null, 'the standard prefix is not read under a custom one');
  // Neither is reported: the custom one is known, the standard one is another controller's.
  assert.deepEqual(
    codes(custom.issues).filter((c) => c.includes('ANNOTATION')),
    [],
  );
  const standard = topologyOf(manifests);
  assert.equal(allowOf(standard, 'a.example'), null);
  assert.deepEqual(cidrsOf(allowOf(standard, 'b.example')), ['192.0.2.0/24']);
});

test('a prefix must be a DNS subdomain', () => {
  assert.equal(annotationsPrefixProblem('custom.example.com'), null);
  assert.equal(annotationsPrefixProblem(DEFAULT_ANNOTATIONS_PREFIX), null);
  for (const bad of ['', 'Custom.Example', 'a/b', '-a.com', 'a..b', 'x'.repeat(254)]) {
    assert.notEqual(annotationsPrefixProblem(bad), null, bad);
  }
});
