// The controller ConfigMap's HTTP/2 keys (src/k8s/http2-settings.ts) through parseControllerConfigMap.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_HTTP2_SETTINGS, http2SettingsOf } from '../../src/config/http2.ts';
import { configMapSettings } from './helpers.ts';

function parse(data: Record<string, string>) {
  const { s, issues } = configMapSettings(data);
  return { http2: http2SettingsOf(s), issues };
}

test('defaults: HTTP/2 on, 128 streams, 8k fields, 32k lists, 1000 requests per connection', () => {
  const { http2, issues } = parse({});
  assert.deepEqual(http2, DEFAULT_HTTP2_SETTINGS);
  assert.deepEqual(issues, []);
});

test('every key is read, none reported as unsupported', () => {
  const { http2, issues } = parse({
    'use-http2': 'false',
    'http2-max-concurrent-streams': '64',
    'http2-max-field-size': '16k',
    'http2-max-header-size': '64k',
    'keep-alive-requests': '500',
  });
  assert.deepEqual(http2, {
    enabled: false,
    maxConcurrentStreams: 64,
    maxFieldSize: 16 * 1024,
    maxHeaderListSize: 64 * 1024,
    maxRequests: 500,
  });
  assert.deepEqual(issues, []);
});

test('http2-max-requests wins over keep-alive-requests when set; "0" (its default) means unset', () => {
  assert.equal(parse({ 'keep-alive-requests': '500', 'http2-max-requests': '20' }).http2.maxRequests, 20);
  assert.equal(parse({ 'keep-alive-requests': '500', 'http2-max-requests': '0' }).http2.maxRequests, 500);
});

test('bad values keep the default with a warning naming the key', () => {
  const { http2, issues } = parse({
    'use-http2': 'maybe',
    'http2-max-concurrent-streams': '0',
    'http2-max-header-size': '10g',
    'keep-alive-requests': '-1',
  });
  assert.deepEqual(http2, DEFAULT_HTTP2_SETTINGS);
  assert.deepEqual(
    issues.map((i) => [i.code, i.field]),
    [
      ['INVALID_CONFIGMAP_VALUE', 'data["use-http2"]'],
      ['INVALID_CONFIGMAP_VALUE', 'data["keep-alive-requests"]'],
      ['INVALID_CONFIGMAP_VALUE', 'data["http2-max-concurrent-streams"]'],
      ['INVALID_CONFIGMAP_VALUE', 'data["http2-max-header-size"]'],
    ],
  );
});
