import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classCandidate, defaultIngressClass, isOurIngress } from '../../src/k8s/ingress-class.ts';

const marked = (name: string, creationTimestamp: string | null, isDefault = true) => ({
  name,
  isDefault,
  creationTimestamp,
});

test('defaultIngressClass: none marked is none; one marked is it, whatever its time', () => {
  assert.equal(
    defaultIngressClass([marked('a', null, false), marked('b', '2025-01-01T00:00:00Z', false)]),
    null,
  );
  assert.deepEqual(defaultIngressClass([marked('a', null, false), marked('b', null)]), {
    name: 'b',
    marked: ['b'],
    certain: true,
  });
});

test('defaultIngressClass: several marked, the newest creationTimestamp wins, equal times by name', () => {
  const classes = [
    marked('old', '2024-01-01T00:00:00Z'),
    marked('zeta', '2025-03-01T10:00:00Z'),
    marked('alpha', '2025-03-01T10:00:00Z'),
    marked('not-default', '2026-01-01T00:00:00Z', false),
  ];
  assert.deepEqual(defaultIngressClass(classes), {
    name: 'alpha',
    marked: ['alpha', 'zeta', 'old'],
    certain: true,
  });
});

test('defaultIngressClass: a marked class without a time counts as the oldest, and the pick is uncertain', () => {
  const pick = defaultIngressClass([marked('undated', null), marked('dated', '2020-01-01T00:00:00Z')]);
  assert.deepEqual(pick, { name: 'dated', marked: ['dated', 'undated'], certain: false });
  assert.equal(defaultIngressClass([marked('b', null), marked('a', 'not a time')])?.name, 'a');
});

test('classCandidate reads name, the default annotation ("true" only) and the creation time', () => {
  const raw = {
    metadata: {
      name: 'nginx',
      creationTimestamp: '2025-01-01T00:00:00Z',
      annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' },
    },
  };
  assert.deepEqual(classCandidate(raw), {
    name: 'nginx',
    isDefault: true,
    creationTimestamp: '2025-01-01T00:00:00Z',
  });
  const notTrue = {
    metadata: { name: 'x', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'True' } },
  };
  assert.equal(classCandidate(notTrue).isDefault, false);
});

test('isOurIngress with ignoreIngressClass (no permission to list IngressClasses): only the annotation and --watch-ingress-without-class decide', () => {
  const o = {
    ingressClass: 'testclass',
    controllerClass: 'k8s.io/ingress-nginx',
    watchIngressWithoutClass: false,
    ingressClassByName: true,
  };
  const classes = [{ metadata: { name: 'testclass' }, spec: { controller: 'k8s.io/ingress-nginx' } }];
  const byName = { spec: { ingressClassName: 'testclass' } };
  const annotated = {
    metadata: { annotations: { 'kubernetes.io/ingress.class': 'testclass' } },
    spec: { ingressClassName: 'other' },
  };
  assert.equal(isOurIngress(byName, classes, o), true);
  assert.equal(isOurIngress(annotated, classes, o), false);
  const ignoring = { ...o, ignoreIngressClass: true };
  assert.equal(isOurIngress(byName, classes, ignoring), false);
  assert.equal(isOurIngress(annotated, classes, ignoring), true);
  assert.equal(isOurIngress(byName, classes, { ...ignoring, watchIngressWithoutClass: true }), true);
});
