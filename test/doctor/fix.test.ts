// Fix rendering: YAML patch and kubectl command agree with the merge patch, quoting is shell-safe, and
// applying patches behaves as `kubectl patch --type merge` does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'yaml';
import {
  annotate,
  applyPatches,
  mergePatch,
  patchConfigMap,
  patchService,
  shellQuote,
} from '../../src/doctor/fix.ts';

const controller = { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' };

test("the brief's two kubectl commands, byte for byte", () => {
  assert.equal(
    patchConfigMap(controller, { 'use-proxy-protocol': 'true' }).kubectl,
    `kubectl -n ingress-nginx patch configmap ingress-nginx-controller --type merge -p '{"data":{"use-proxy-protocol":"true"}}'`,
  );
  assert.equal(
    annotate('Service', controller, { 'service.beta.kubernetes.io/aws-load-balancer-proxy-protocol': '*' })
      .kubectl,
    `kubectl -n ingress-nginx annotate service ingress-nginx-controller 'service.beta.kubernetes.io/aws-load-balancer-proxy-protocol=*' --overwrite`,
  );
});

test('the YAML patch parses back to the merge patch, with every value a string', () => {
  for (const p of [
    patchConfigMap(controller, {
      'use-proxy-protocol': 'true',
      'proxy-real-ip-cidr': '10.0.0.0/8,10.1.0.0/16',
    }),
    annotate('Service', controller, { 'service.beta.kubernetes.io/aws-load-balancer-proxy-protocol': '*' }),
    patchService(controller, { spec: { externalTrafficPolicy: 'Cluster' } }),
  ]) {
    assert.deepEqual(parse(p.yaml), p.patch);
  }
  assert.match(
    patchConfigMap(controller, { 'use-proxy-protocol': 'true' }).yaml,
    /use-proxy-protocol: "true"/,
  );
});

test('removing an annotation uses key- and null in the patch', () => {
  const p = annotate(
    'Ingress',
    { namespace: 'app', name: 'web' },
    { 'nginx.ingress.kubernetes.io/app-root': null },
  );
  assert.equal(
    p.kubectl,
    'kubectl -n app annotate ingress web nginx.ingress.kubernetes.io/app-root- --overwrite',
  );
  assert.deepEqual(p.patch, { metadata: { annotations: { 'nginx.ingress.kubernetes.io/app-root': null } } });
});

test('shell quoting survives single quotes and spaces', () => {
  assert.equal(shellQuote('plain-word_1.2/3:4'), 'plain-word_1.2/3:4');
  assert.equal(shellQuote("it's a test"), `'it'\\''s a test'`);
  assert.equal(shellQuote('*'), `'*'`);
  assert.equal(patchService(controller, { status: { x: "a'b" } }, 'status').kubectl.includes(`'\\''`), true);
});

test('mergePatch follows RFC 7386', () => {
  assert.deepEqual(mergePatch({ a: 'b' }, { a: 'c' }), { a: 'c' });
  assert.deepEqual(mergePatch({ a: 'b' }, { b: 'c' }), { a: 'b', b: 'c' });
  assert.deepEqual(mergePatch({ a: 'b' }, { a: null }), {});
  assert.deepEqual(mergePatch({ a: ['b'] }, { a: ['c', 'd'] }), { a: ['c', 'd'] });
  assert.deepEqual(mergePatch({ a: { b: 'c' } }, { a: { b: 'd', c: null } }), { a: { b: 'd' } });
  assert.deepEqual(mergePatch('text', { a: 1 }), { a: 1 });
  const original = { a: { b: 1 } };
  mergePatch(original, { a: { b: 2 } });
  assert.deepEqual(original, { a: { b: 1 } }, 'the input is not modified');
});

test('applyPatches patches the named object, creates a missing ConfigMap, refuses a missing Service', () => {
  const objects = [
    {
      apiVersion: 'v1',
      kind: 'Service',
      raw: { kind: 'Service', metadata: { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' } },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      raw: { kind: 'Service', metadata: { namespace: 'other', name: 'ingress-nginx-controller' } },
    },
  ];
  const make = (raw: Record<string, unknown>) => ({ apiVersion: 'v1', kind: String(raw.kind), raw });
  const result = applyPatches(
    objects,
    [
      annotate('Service', controller, { 'a.example/b': 'c' }),
      patchConfigMap(controller, { 'use-proxy-protocol': 'true' }),
    ],
    make,
  );
  assert.ok(result.ok);
  assert.deepEqual((result.objects[0]!.raw.metadata as { annotations: unknown }).annotations, {
    'a.example/b': 'c',
  });
  assert.equal(
    (result.objects[1]!.raw.metadata as { annotations?: unknown }).annotations,
    undefined,
    'other namespace untouched',
  );
  assert.deepEqual(result.objects[2]!.raw, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: controller,
    data: { 'use-proxy-protocol': 'true' },
  });
  const missing = applyPatches(
    objects,
    [annotate('Service', { namespace: 'x', name: 'y' }, { k: 'v' })],
    make,
  );
  assert.deepEqual(missing.ok ? null : missing.error.code, 'DOCTOR_PATCH_TARGET_MISSING');
});
