// The ConfigMap's server-level keys read into ServerSettings (src/k8s/server-settings.ts), the nginx
// map entries they hold (src/config/nginx-map.ts), and what the gateway compiles from them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileMap, readMapEntry } from '../../src/config/nginx-map.ts';
import { DEFAULT_SERVER_SETTINGS } from '../../src/config/server-settings.ts';
import { compileServerFilters } from '../../src/gateway/server-filters.ts';
import { isLocationInLocationList } from '../../src/k8s/location-list.ts';
import { readServerSettings } from '../../src/k8s/server-settings.ts';

function read(data: Record<string, string>) {
  const invalid: string[] = [];
  const errors: string[] = [];
  const settings = readServerSettings(data, {
    invalid: (key) => invalid.push(key),
    failClosed: (key) => errors.push(key),
  });
  return { settings, invalid, errors };
}

test("no keys: ingress-nginx's defaults", () => {
  assert.deepEqual(read({}).settings, DEFAULT_SERVER_SETTINGS);
});

test('hsts values; a bad one keeps its default with a warning', () => {
  assert.equal(read({ hsts: 'false', 'hsts-preload': 'true' }).settings.hsts, null);
  assert.equal(
    read({ 'hsts-preload': 'true' }).settings.hsts,
    'max-age=31536000; includeSubDomains; preload',
  );
  const bad = read({ 'hsts-max-age': '1y', 'hsts-include-subdomains': 'maybe' });
  assert.equal(bad.settings.hsts, 'max-age=31536000; includeSubDomains');
  assert.deepEqual(bad.invalid.sort(), ['hsts-include-subdomains', 'hsts-max-age']);
});

test('lists are split on commas and trimmed; an unusable block entry fails closed, a skip entry is dropped', () => {
  const r = read({ 'block-user-agents': ' AlphaBot , ~*bot ,,', 'no-tls-redirect-locations': '/a, /b' });
  assert.deepEqual(r.settings.blockUserAgents, ['AlphaBot', '~*bot']);
  // Kept as written: isLocationInLocationList trims each entry of spaces only, as ingress-nginx.
  assert.deepEqual(r.settings.noTlsRedirectLocations, ['/a', ' /b']);
  assert.equal(r.settings.blockListError, null);
  const broken = read({ 'block-referers': 'ok,~[', 'skip-access-log-urls': '/x,~(' });
  assert.deepEqual(broken.errors, ['block-referers']);
  assert.match(broken.settings.blockListError ?? '', /block-referers/);
  assert.deepEqual(broken.settings.skipAccessLogUrls, ['/x']);
  assert.deepEqual(broken.invalid, ['skip-access-log-urls']);
});

test('map entries: strings equal the whole value without case, ~ and ~* are regexes', () => {
  const map = compileMap(['AlphaBot', '~^Go-http', '~*curl/']);
  assert.ok(map.matches('alphabot'));
  assert.ok(!map.matches('AlphaBot/2'));
  assert.ok(map.matches('Go-http-client/1.1'));
  assert.ok(!map.matches('go-http-client/1.1'), '~ keeps case');
  assert.ok(map.matches('CURL/8.0'));
  assert.equal(readMapEntry('~').ok, false);
  assert.equal(readMapEntry('~*').ok, false);
  assert.equal(readMapEntry('~a(').ok, false);
  // Matched against User-Agent or Referer: a nested unbounded repeat is refused, not compiled.
  const nested = readMapEntry('~*^(bot+)+$');
  assert.equal(nested.ok, false);
  assert.match(
    nested.ok ? '' : nested.error,
    /repeats "\(bot\+\)\+", a group that itself repeats without bound/,
  );
});

test('the compiled filters: 403 on a match, 503 for every request while a list is unusable', () => {
  const filters = compileServerFilters({
    ...DEFAULT_SERVER_SETTINGS,
    blockUserAgents: ['bad'],
    blockReferers: ['~spam'],
  });
  assert.equal(filters.refusal('bad', undefined), 403);
  assert.equal(filters.refusal(['good', 'bad'], undefined), 0, "nginx's $http_user_agent is the first");
  assert.equal(filters.refusal(undefined, 'x.spam.example'), 403);
  assert.equal(filters.refusal('good', 'ham'), 0);
  assert.equal(filters.refusal(undefined, undefined), 0);
  const closed = compileServerFilters({
    ...DEFAULT_SERVER_SETTINGS,
    blockListError: 'block-referers: broken',
  });
  assert.equal(closed.refusal('anyone', undefined), 503);
  assert.equal(compileServerFilters(DEFAULT_SERVER_SETTINGS).skipsLog('/'), false);
});

test('isLocationInLocationList: prefixes of the Ingress path, from a string or a list', () => {
  assert.ok(isLocationInLocationList('/.well-known/acme-challenge/x', '/.well-known/acme-challenge'));
  assert.ok(isLocationInLocationList('/b/c', ' /a , /b'));
  assert.ok(!isLocationInLocationList('/', ['/a', '']));
});
