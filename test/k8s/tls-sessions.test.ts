// The controller ConfigMap's ssl-session-* keys (src/k8s/tls-sessions.ts) through parseControllerConfigMap.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_TLS_SESSIONS } from '../../src/k8s/tls-sessions.ts';
import { configMapSettings } from './helpers.ts';

function parse(data: Record<string, string>) {
  const { s, issues } = configMapSettings(data);
  return { sessions: s.tlsSessions, unsupported: s.unsupportedKeys, issues };
}

test("defaults are ingress-nginx's: no tickets, 10 minutes, no key, a 10m cache", () => {
  assert.equal(parse({}).sessions, undefined);
  assert.deepEqual(DEFAULT_TLS_SESSIONS, {
    tickets: false,
    timeoutSeconds: 600,
    ticketKey: null,
    cache: true,
    cacheSizeBytes: 10 * 1024 * 1024,
  });
});

test('every key is read; none is reported unsupported', () => {
  const key = Buffer.alloc(48, 7).toString('base64');
  const { sessions, unsupported, issues } = parse({
    'ssl-session-tickets': 'true',
    'ssl-session-timeout': '1h',
    'ssl-session-ticket-key': key,
    'ssl-session-cache': 'false',
    'ssl-session-cache-size': '1m',
  });
  assert.deepEqual(sessions, {
    tickets: true,
    // Without the cache ingress-nginx writes no ssl_session_timeout: nginx's 5m.
    timeoutSeconds: 300,
    ticketKey: key,
    cache: false,
    cacheSizeBytes: 1024 * 1024,
  });
  assert.deepEqual(unsupported, []);
  assert.deepEqual(issues, []);
  const cached = parse({ 'ssl-session-tickets': 'true', 'ssl-session-timeout': '1h' }).sessions;
  assert.equal(cached?.timeoutSeconds, 3600, 'with the cache (the default) ssl-session-timeout counts');
});

test('bad values keep the defaults with a warning naming the key; a bad ticket key is not repeated', () => {
  const secret = 'c2VjcmV0LXRoYXQtaXMtdG9vLXNob3J0';
  const { sessions, issues } = parse({
    'ssl-session-tickets': 'maybe',
    'ssl-session-timeout': '10 minutes',
    'ssl-session-ticket-key': secret,
  });
  assert.deepEqual(sessions, DEFAULT_TLS_SESSIONS);
  assert.deepEqual(
    issues.map((i) => [i.severity, i.code, i.field]),
    [
      ['warning', 'INVALID_CONFIGMAP_VALUE', 'data["ssl-session-tickets"]'],
      ['warning', 'INVALID_CONFIGMAP_VALUE', 'data["ssl-session-timeout"]'],
      ['warning', 'INVALID_CONFIGMAP_VALUE', 'data["ssl-session-ticket-key"]'],
    ],
  );
  assert.ok(issues.every((i) => !i.message.includes(secret)));
  // Out of range: less than a second, more than a week.
  for (const timeout of ['0', '500ms', '8d'])
    assert.equal(parse({ 'ssl-session-timeout': timeout }).issues.length, 1, timeout);
});

test('a bad ssl-session-cache-size keeps 10m with a warning', () => {
  for (const size of ['lots', '0', '2g']) {
    const { sessions, issues } = parse({ 'ssl-session-cache-size': size });
    assert.equal(sessions?.cacheSizeBytes, 10 * 1024 * 1024, size);
    assert.deepEqual(
      issues.map((i) => i.field),
      ['data["ssl-session-cache-size"]'],
      size,
    );
  }
});
