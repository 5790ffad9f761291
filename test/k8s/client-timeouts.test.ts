// The ConfigMap keys for the client-side deadlines (client-header-timeout, client-body-timeout,
// keep-alive): ingress-nginx's defaults, whole seconds, and invalid values reported with the default kept.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfigIssue } from '../../src/config/model.ts';
import { defaultGatewaySettings } from '../../src/k8s/annotations.ts';
import { configMapSettings as parse } from './helpers.ts';

test('defaults are ingress-nginx 1.12 ones: 60 s head, 60 s between body reads, 75 s keep-alive', () => {
  const s = defaultGatewaySettings();
  assert.equal(s.clientHeaderTimeoutMs, 60_000);
  assert.equal(s.clientBodyTimeoutMs, 60_000);
  assert.equal(s.keepAliveTimeoutMs, 75_000);
});

test('the keys are read in whole seconds and are not reported as unsupported', () => {
  const { s, issues } = parse({
    'client-header-timeout': '10',
    // mapstructure's strconv.ParseInt base 0: a leading 0 is octal, as ingress-nginx reads it.
    'client-body-timeout': '020',
    'keep-alive': '0',
  });
  assert.equal(s.clientHeaderTimeoutMs, 10_000);
  assert.equal(s.clientBodyTimeoutMs, 16_000);
  assert.equal(s.keepAliveTimeoutMs, 0, 'keep-alive "0" disables keep-alive, as nginx');
  assert.deepEqual(issues, []);
  assert.deepEqual(s.unsupportedKeys, []);
});

test('an invalid value keeps the default and says so; a client deadline is never 0', () => {
  for (const [key, value, kept] of [
    ['client-header-timeout', '0', 60_000],
    ['client-header-timeout', '10s', 60_000],
    ['client-header-timeout', ' 20 ', 60_000],
    ['client-body-timeout', '0', 60_000],
    ['client-body-timeout', '-1', 60_000],
    ['client-body-timeout', '86401', 60_000],
    ['keep-alive', 'forever', 75_000],
    ['keep-alive', '1.5', 75_000],
  ] as const) {
    const { s, issues } = parse({ [key]: value });
    const field =
      key === 'client-header-timeout'
        ? s.clientHeaderTimeoutMs
        : key === 'client-body-timeout'
          ? s.clientBodyTimeoutMs
          : s.keepAliveTimeoutMs;
    assert.equal(field, kept, `${key}: ${value}`);
    assert.equal(issues.length, 1, `${key}: ${value}`);
    const issue = issues[0] as ConfigIssue;
    assert.equal(issue.code, 'INVALID_CONFIGMAP_VALUE');
    assert.equal(issue.severity, 'warning');
    assert.equal(issue.field, `data["${key}"]`);
    assert.match(issue.message, new RegExp(`using the default ${kept / 1000}$`));
  }
});

test('large-client-header-buffers: "<count> <size>" as nginx, 4 8k by default; anything else warned, default kept', () => {
  assert.equal(defaultGatewaySettings().largeClientHeaderBuffers, undefined, 'absent: 4 x 8 KiB');
  const { s, issues } = parse({ 'large-client-header-buffers': ' 8  16k ' });
  assert.deepEqual(s.largeClientHeaderBuffers, { count: 8, sizeBytes: 16_384 });
  assert.deepEqual(issues, []);
  assert.deepEqual(s.unsupportedKeys, []);
  // nginx's least size is connection_pool_size, 512: taken; below it refused.
  assert.deepEqual(parse({ 'large-client-header-buffers': '4 512' }).s.largeClientHeaderBuffers, {
    count: 4,
    sizeBytes: 512,
  });
  for (const value of ['4', '0 8k', '65 8k', '4 511', '4 2m', '4 8k x', 'four 8k']) {
    const bad = parse({ 'large-client-header-buffers': value });
    assert.equal(bad.s.largeClientHeaderBuffers, undefined, value);
    assert.equal(bad.issues.length, 1, value);
    assert.match(bad.issues[0]!.message, /large-client-header-buffers/, value);
  }
});
