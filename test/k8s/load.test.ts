import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadManifests, manifestObjectsOf, parseManifestText } from '../../src/k8s/load.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/manifests');

test('a directory is read recursively, sorted, manifests only, with List items flattened', async () => {
  const { objects, issues } = await loadManifests([join(FIXTURES, 'tree')]);
  assert.deepEqual(issues, []);
  assert.deepEqual(
    objects.map(
      (o) =>
        `${o.kind} ${o.origin.namespace}/${o.origin.name} ${o.origin.file.slice(FIXTURES.length + 1)}#${o.origin.document}`,
    ),
    [
      'IngressClass default/nginx tree/a-list.yml#1',
      'Service shop/web tree/b-services.yaml#1',
      // document 2 is empty; the List is document 3 and its items keep that index
      'Service shop/api tree/b-services.yaml#3',
      'ConfigMap default/settings tree/b-services.yaml#3',
      'Node default/n1 tree/sub/node.json#1',
    ],
  );
});

test('the same file named twice is read once; a missing path is an error naming it', async () => {
  const file = join(FIXTURES, 'tree/a-list.yml');
  const missing = join(FIXTURES, 'does-not-exist.yaml');
  const { objects, issues } = await loadManifests([file, file, missing]);
  assert.equal(objects.length, 1);
  assert.equal(issues.length, 1);
  assert.equal(issues[0]!.code, 'MANIFEST_READ_ERROR');
  assert.equal(issues[0]!.severity, 'error');
  assert.match(issues[0]!.message, /does-not-exist\.yaml/);
});

test('errors name the file, the document and the field', async () => {
  const { objects, issues } = await loadManifests([join(FIXTURES, 'broken.yaml')]);
  assert.deepEqual(
    objects.map((o) => o.origin.name),
    ['good'],
  );
  const byDoc = new Map(issues.map((i) => [i.origin?.document, i]));
  const missingName = byDoc.get(2)!;
  assert.equal(missingName.code, 'MANIFEST_MISSING_FIELD');
  assert.equal(missingName.field, 'metadata.name');
  assert.match(
    missingName.message,
    /broken\.yaml, document 2 \(Service\): missing or invalid field metadata\.name/,
  );
  const notObject = byDoc.get(3)!;
  assert.equal(notObject.code, 'MANIFEST_NOT_AN_OBJECT');
  assert.match(notObject.message, /document 3: expected a Kubernetes object \(a mapping\), found a sequence/);
  const noVersion = byDoc.get(4)!;
  assert.equal(noVersion.code, 'MANIFEST_MISSING_FIELD');
  assert.equal(noVersion.field, 'apiVersion');
  assert.match(noVersion.message, /Service "noversion"/);
  const yaml = byDoc.get(5)!;
  assert.equal(yaml.code, 'MANIFEST_YAML_ERROR');
  assert.match(yaml.message, /broken\.yaml, document 5: invalid YAML \(line \d+, column \d+\)/);
  assert.ok(issues.every((i) => i.severity === 'error'));
});

test('a List item with a problem names its place inside the List', () => {
  const text =
    'apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Secret\n    metadata: {}\n  - 42\n';
  const { objects, issues } = parseManifestText(text, 'list.yaml');
  assert.equal(objects.length, 0);
  assert.deepEqual(
    issues.map((i) => [i.code, i.field]),
    [
      ['MANIFEST_MISSING_FIELD', 'items[0].metadata.name'],
      ['MANIFEST_NOT_AN_OBJECT', 'items[1]'],
    ],
  );
});

test('duplicate keys, exponential aliases and non-string namespaces are refused, not crashed on', () => {
  const dup = parseManifestText(
    'apiVersion: v1\nkind: Service\nkind: Secret\nmetadata: {name: x}\n',
    'dup.yaml',
  );
  assert.equal(dup.objects.length, 0);
  assert.equal(dup.issues[0]!.code, 'MANIFEST_YAML_ERROR');

  let bomb = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
  for (let i = 1; i < 12; i++)
    bomb += `a${i}: &a${i} [*a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}]\n`;
  const laughs = parseManifestText(
    `${bomb}apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n`,
    'bomb.yaml',
  );
  assert.equal(laughs.objects.length, 0);
  assert.equal(laughs.issues[0]!.code, 'MANIFEST_YAML_ERROR');

  const ns = parseManifestText(
    'apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: [a]}\n',
    'ns.yaml',
  );
  assert.equal(ns.objects.length, 0);
  assert.equal(ns.issues[0]!.field, 'metadata.namespace');
});

test('an empty file or a file of comments yields nothing and no issue', () => {
  assert.deepEqual(parseManifestText('', 'empty.yaml'), { objects: [], issues: [] });
  assert.deepEqual(parseManifestText('# nothing\n---\n', 'c.yaml'), { objects: [], issues: [] });
});

test('unknown kinds are kept by the loader (translation decides)', () => {
  const { objects, issues } = parseManifestText(
    'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: x}\n',
    'd.yaml',
  );
  assert.deepEqual(issues, []);
  assert.deepEqual(objects[0]!.origin, {
    file: 'd.yaml',
    document: 1,
    kind: 'Deployment',
    namespace: 'x',
    name: 'd',
  });
});

test('already-parsed documents (manifestObjectsOf) give the objects and issues their YAML text gives', () => {
  const documents = [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' } },
    null,
    {
      apiVersion: 'v1',
      kind: 'List',
      items: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }, 'not an object'],
    },
    { kind: 'Service', metadata: {} },
  ];
  const text = documents.map((d) => (d === null ? '' : JSON.stringify(d))).join('\n---\n');
  const fromText = parseManifestText(text, 'f.yaml');
  const fromValues = manifestObjectsOf(documents, 'f.yaml');
  assert.deepEqual(fromValues, fromText);
  assert.deepEqual(
    fromValues.objects.map((o) => `${o.kind} ${o.origin.namespace}/${o.origin.name}#${o.origin.document}`),
    ['Service shop/web#1', 'ConfigMap default/c#3'],
  );
  assert.deepEqual(
    fromValues.issues.map((i) => i.code),
    ['MANIFEST_NOT_AN_OBJECT', 'MANIFEST_MISSING_FIELD', 'MANIFEST_MISSING_FIELD'],
  );
});
