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

test('every key is read, none reported as unsupported; the field and list limits are large-client-header-buffers', () => {
  const { http2, issues } = parse({
    'use-http2': 'false',
    'http2-max-concurrent-streams': '64',
    'large-client-header-buffers': '8 16k',
    'keep-alive-requests': '500',
  });
  assert.deepEqual(http2, {
    enabled: false,
    maxConcurrentStreams: 64,
    maxFieldSize: 16 * 1024,
    maxHeaderListSize: 128 * 1024,
    maxRequests: 500,
  });
  assert.deepEqual(issues, []);
  // One decoded list is held to 1 MiB whatever the buffers (64 x 1m would be 64 MiB).
  assert.equal(parse({ 'large-client-header-buffers': '64 1m' }).http2.maxHeaderListSize, 1024 * 1024);
});

test('http2-max-field-size and http2-max-header-size change nothing (obsolete since nginx 1.19.7), and say so', () => {
  const { http2, issues } = parse({ 'http2-max-field-size': '64k', 'http2-max-header-size': '512k' });
  assert.deepEqual(http2, DEFAULT_HTTP2_SETTINGS);
  assert.deepEqual(
    issues.map((i) => [i.code, i.field]),
    [
      ['CONFIGMAP_KEY_NO_EFFECT', 'data["http2-max-field-size"]'],
      ['CONFIGMAP_KEY_NO_EFFECT', 'data["http2-max-header-size"]'],
    ],
  );
});

test('http2-max-requests below keep-alive-requests is the HTTP/2 limit, never above it (obsolete in nginx); "0" (its default) means unset', () => {
  assert.equal(parse({ 'keep-alive-requests': '500', 'http2-max-requests': '20' }).http2.maxRequests, 20);
  assert.equal(parse({ 'keep-alive-requests': '500', 'http2-max-requests': '0' }).http2.maxRequests, 500);
  // nginx ends an HTTP/2 connection after keepalive_requests whatever http2_max_requests says.
  assert.equal(parse({ 'keep-alive-requests': '2', 'http2-max-requests': '5' }).http2.maxRequests, 2);
  assert.equal(parse({ 'http2-max-requests': '5000' }).http2.maxRequests, 1000);
});

test('keep-alive-requests "0" is nginx\'s keepalive_requests 0: each connection ends after its first request', () => {
  const { s, issues } = configMapSettings({ 'keep-alive-requests': '0' });
  assert.deepEqual(issues, []);
  assert.equal(s.keepAliveRequests, 0);
  assert.equal(http2SettingsOf(s).maxRequests, 0);
});

test('bad values keep the default with a warning naming the key', () => {
  const { http2, issues } = parse({
    'use-http2': 'maybe',
    'http2-max-concurrent-streams': '0',
    'keep-alive-requests': '-1',
  });
  assert.deepEqual(http2, DEFAULT_HTTP2_SETTINGS);
  assert.deepEqual(
    issues.map((i) => [i.code, i.field]),
    [
      ['INVALID_CONFIGMAP_VALUE', 'data["use-http2"]'],
      ['INVALID_CONFIGMAP_VALUE', 'data["keep-alive-requests"]'],
      ['INVALID_CONFIGMAP_VALUE', 'data["http2-max-concurrent-streams"]'],
    ],
  );
});
