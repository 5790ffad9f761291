// access-log-params (src/k8s/annotations.ts): nginx's buffer= and flush= are accepted (keepip already
// writes the access log in batches); gzip and if= change what nginx writes and are warned, one warning
// per parameter, the rest of the value still read.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configMapSettings } from './helpers.ts';

const warnings = (value: string) =>
  configMapSettings({ 'access-log-params': value }).issues.map(
    (i) => i.message.match(/"([^"]+)" is not/)?.[1],
  );

test('buffer= and flush= pass silently, gzip and if= and malformed sizes are warned one by one', () => {
  assert.deepEqual(warnings('buffer=16k flush=5m'), []);
  assert.deepEqual(warnings('  buffer=64k  '), []);
  assert.deepEqual(warnings('buffer=32k gzip=1 flush=1m'), ['gzip=1']);
  assert.deepEqual(warnings('gzip if=$loggable'), ['gzip', 'if=$loggable']);
  assert.deepEqual(warnings('buffer=lots flush=soon buffer'), ['buffer=lots', 'flush=soon', 'buffer']);
  const { s, issues } = configMapSettings({ 'access-log-params': 'gzip' });
  assert.deepEqual(s.unsupportedKeys, [], 'no longer a refused key');
  assert.equal(issues[0]?.code, 'INVALID_CONFIGMAP_VALUE');
  assert.match(issues[0]!.message, /data\["access-log-params"\].*the parameter is ignored/);
});
