// The YAML/JSON the CLI reads, written by someone hostile: `keepip gateway -f` and `keepip doctor -f`
// (src/k8s/load.ts) and `keepip manifests --values` (src/deploy/values-file.ts). Alias bombs, deep and
// dense documents, duplicate keys, tags, merge keys, `__proto__`, sizes past the cap. What must hold: a
// clear coded error or bounded work; never a hang, a crash with a stack trace, or code execution.
import assert from 'node:assert/strict';
import { truncateSync } from 'node:fs';
import { test } from 'node:test';
import { parseValues } from '../../src/deploy/values-file.ts';
import { loadManifests, MAX_MANIFEST_BYTES, parseManifestText } from '../../src/k8s/load.ts';
import { manifestDir } from '../fixtures/gateway/manifests.ts';
import { keepipBin, runKeepip } from '../helpers/process.ts';

const configMap = (data: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: default}\ndata:\n${data}`;

/** Nine levels of nine aliases each: 9^9 strings once expanded. */
function laughs(indent = ''): string {
  let text = `${indent}l0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n`;
  for (let i = 1; i < 10; i++)
    text += `${indent}l${i}: &a${i} [${Array.from({ length: 9 }, () => `*a${i - 1}`).join(',')}]\n`;
  return text;
}

/** A stack trace in a CLI's output: a crash, not an answer. */
const STACK = /^\s+at .+:\d+:\d+\)?$/m;

test('an alias bomb in a manifest is a coded error, at once (gateway -f, doctor -f)', async () => {
  const started = performance.now();
  const parsed = parseManifestText(configMap(laughs('  ')), 'bomb.yaml');
  assert.ok(performance.now() - started < 2_000);
  assert.deepEqual(
    parsed.issues.map((i) => i.code),
    ['MANIFEST_YAML_ERROR'],
  );
  assert.match(parsed.issues[0]!.message, /Excessive alias count/);
  const dir = manifestDir();
  try {
    const file = dir.write('bomb.yaml', configMap(laughs('  ')));
    for (const args of [
      ['doctor', '-f', file],
      ['gateway', '-f', file, '--http', '127.0.0.1:0', '--https', '127.0.0.1:0'],
    ]) {
      const run = await runKeepip(args, { timeoutMs: 30_000 });
      assert.equal(run.code, 1, `${args[0]}: ${run.stderr}`);
      assert.match(run.stdout + run.stderr, /Excessive alias count/);
      assert.doesNotMatch(run.stdout + run.stderr, STACK);
    }
  } finally {
    dir.remove();
  }
});

test('an alias bomb in a values file (manifests --values) is a coded error', async () => {
  const dir = manifestDir();
  try {
    const file = dir.write('values.yaml', laughs());
    const run = await runKeepip(['manifests', '--values', file], { timeoutMs: 30_000 });
    assert.equal(run.code, 1);
    assert.doesNotMatch(run.stderr, STACK);
    assert.match(run.stderr, /DEPLOY_VALUES_YAML_ERROR/);
  } finally {
    dir.remove();
  }
});

test('a merge-key bomb is stopped by the alias count; merge keys themselves work', () => {
  let bomb = 'a0: &a0 {k0: 1, k1: 1, k2: 1}\n';
  for (let i = 1; i < 12; i++)
    bomb += `a${i}: &a${i} {<<: [${Array.from({ length: 9 }, () => `*a${i - 1}`).join(',')}], x${i}: 1}\n`;
  const started = performance.now();
  const parsed = parseManifestText(configMap(bomb.replace(/^/gm, '  ')), 'merge.yaml');
  assert.ok(performance.now() - started < 2_000);
  assert.equal(parsed.issues[0]?.code, 'MANIFEST_YAML_ERROR');
  const ok = parseManifestText(
    'base: &b {apiVersion: v1, kind: ConfigMap}\n---\n' +
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\ndata: {<<: {a: "1"}, b: "2"}\n',
    'merge-ok.yaml',
  );
  assert.deepEqual(ok.objects.at(-1)?.raw.data, { a: '1', b: '2' });
});

test('duplicate keys are refused, in manifests and in values', () => {
  const manifest = parseManifestText(configMap('  a: "1"\n  a: "2"\n'), 'dup.yaml');
  assert.equal(manifest.issues[0]?.code, 'MANIFEST_YAML_ERROR');
  assert.match(manifest.issues[0]!.message, /Map keys must be unique/);
  const json = parseManifestText(
    '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","name":"y"}}',
    'dup.json',
  );
  assert.equal(json.issues[0]?.code, 'MANIFEST_YAML_ERROR');
  const values = parseValues('controller:\n  replicaCount: 1\n  replicaCount: 9\n', 'values.yaml');
  assert.equal(values.ok, false);
  assert.equal(!values.ok && values.problem.code, 'DEPLOY_VALUES_YAML_ERROR');
});

test('YAML tags never run code: !!js/function, !!python/object and custom tags stay data', () => {
  const g = globalThis as { __keepipPwned?: boolean };
  const payload = 'function(){ globalThis.__keepipPwned = true; return 1 }';
  const parsed = parseManifestText(
    configMap(
      `  a: !!js/function "${payload}"\n  b: !!python/object/apply:os.system ["true"]\n  c: !custom x\n  d: !!js/undefined ""\n`,
    ),
    'tags.yaml',
  );
  const data = parsed.objects[0]?.raw.data as Record<string, unknown> | undefined;
  assert.equal(typeof data?.a, 'string');
  assert.equal(typeof data?.c, 'string');
  const values = parseValues(`controller: !!js/function "${payload}"\n`, 'values.yaml');
  assert.ok(values.ok && typeof values.values.controller === 'string');
  for (const v of Object.values(data ?? {})) if (typeof v === 'function') v();
  assert.equal(g.__keepipPwned, undefined);
});

test('deep nesting (flow and block) is a coded error, and the CLI says so without a stack trace', async () => {
  const depth = 5_000;
  for (const text of [
    configMap(`  a: ${'['.repeat(depth)}${']'.repeat(depth)}\n`),
    configMap(`  a: ${'{a: '.repeat(depth)}1${'}'.repeat(depth)}\n`),
    `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`,
    Array.from({ length: 2_000 }, (_, i) => `${' '.repeat(i)}- `).join('\n'),
  ]) {
    const parsed = parseManifestText(text, 'deep.yaml');
    assert.equal(parsed.issues[0]?.code, 'MANIFEST_YAML_ERROR');
  }
  const values = parseValues(`a: ${'['.repeat(depth)}${']'.repeat(depth)}\n`, 'values.yaml');
  assert.equal(!values.ok && values.problem.code, 'DEPLOY_VALUES_YAML_ERROR');
  const dir = manifestDir();
  try {
    const file = dir.write('deep.yaml', configMap(`  a: ${'['.repeat(depth)}${']'.repeat(depth)}\n`));
    const run = await runKeepip(['doctor', '-f', file], { timeoutMs: 30_000 });
    assert.equal(run.code, 1);
    assert.match(run.stdout + run.stderr, /invalid YAML/);
    assert.doesNotMatch(run.stdout + run.stderr, STACK);
  } finally {
    dir.remove();
  }
});

test('a manifest file over the 32 MiB cap is refused before it is read', async () => {
  const dir = manifestDir();
  try {
    const file = dir.write('huge.yaml', '');
    truncateSync(file, MAX_MANIFEST_BYTES + 1);
    const started = performance.now();
    const loaded = await loadManifests([file]);
    assert.ok(performance.now() - started < 2_000);
    assert.deepEqual(
      loaded.issues.map((i) => i.code),
      ['MANIFEST_TOO_LARGE'],
    );
  } finally {
    dir.remove();
  }
});

test('`__proto__` in a manifest is data: a coded error, no prototype changed', () => {
  const parsed = parseManifestText(
    'apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  __proto__: {namespace: kube-system}\n  annotations:\n    __proto__: {a: b}\n',
    'proto.yaml',
  );
  const raw = parsed.objects[0]?.raw as { metadata: Record<string, unknown> } | undefined;
  assert.equal(Object.getPrototypeOf(raw?.metadata), Object.prototype);
  assert.equal(parsed.objects[0]?.origin.namespace, 'default');
  assert.equal(({} as Record<string, unknown>).a, undefined);
});

test('`__proto__` in a values file is reported like any unknown key, and has no effect', async () => {
  const dir = manifestDir();
  try {
    const file = dir.write('values.yaml', '__proto__:\n  fullnameOverride: smuggled\nconstructor: 1\n');
    const run = await runKeepip(['manifests', '--values', file], { timeoutMs: 30_000 });
    assert.doesNotMatch(run.stdout, /smuggled/, 'a value under __proto__ took effect');
    assert.match(run.stderr, /DEPLOY_VALUES_UNKNOWN_KEY: __proto__/);
    assert.match(run.stderr, /DEPLOY_VALUES_UNKNOWN_KEY: constructor/);
  } finally {
    dir.remove();
  }
});

/**
 * Milliseconds of this process's CPU to parse a flat mapping of `n` keys through `parse`: the least of
 * three runs, so another process on a busy machine (wall time) or one collection does not count.
 */
function timeFlatMapping(n: number, parse: (text: string) => void, indent: string): number {
  const lines = Array.from({ length: n }, (_, i) => `${indent}k${i}: "v"`).join('\n');
  let least = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 3; run++) {
    const before = process.cpuUsage();
    parse(lines);
    const used = process.cpuUsage(before);
    least = Math.min(least, (used.user + used.system) / 1000);
  }
  return least;
}

test('a flat mapping of many keys parses in time linear in its size', () => {
  const manifest = (lines: string) => parseManifestText(configMap(lines), 'flat.yaml');
  const values = (lines: string) => parseValues(lines, 'values.yaml');
  for (const [name, parse, indent] of [
    ['manifest', manifest, '  '],
    ['values', values, ''],
  ] as const) {
    timeFlatMapping(500, parse, indent); // warm up
    const small = timeFlatMapping(2_000, parse, indent);
    const large = timeFlatMapping(8_000, parse, indent);
    // Linear work: ~4x for 4x the keys; quadratic: ~16x.
    assert.ok(
      large / small < 8,
      `${name}: 4x the keys took ${(large / small).toFixed(1)}x the time (${small.toFixed(0)} ms, ${large.toFixed(0)} ms)`,
    );
  }
});

test('values from stdin are capped like manifest files', async () => {
  const chunk = `#${'x'.repeat(1_022)}\n`.repeat(1_024); // 1 MiB of comments
  const input = Buffer.from(`controller: {}\n${chunk.repeat(40)}`);
  const run = await runKeepip(['manifests', '--values', '-'], { input, timeoutMs: 60_000 });
  assert.notEqual(run.code, 0, 'a 40 MiB values stream was read whole and rendered');
  assert.doesNotMatch(run.stderr, STACK);
});

test('the keepip binary under test is the repository one', () => {
  assert.match(keepipBin, /bin\/keepip$/);
});
