import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  collectHeaders,
  describeRequest,
  foldMappedIpv4,
  parseWait,
  renderText,
  wantsJson,
} from '../../src/whoami/echo.ts';

const facts = {
  name: 'gitea',
  hostname: 'pod-1',
  remoteAddress: '::ffff:127.0.0.42',
  remotePort: 40000,
  localAddress: '::ffff:127.0.0.1',
  localPort: 8080,
  method: 'GET',
  url: '/a/b?x=1&format=json',
  httpVersion: '1.1',
  rawHeaders: ['Host', 'git.example.com', 'X-Forwarded-For', '1.2.3.4', 'x-forwarded-for', '5.6.7.8'],
};

test('the record folds v4-mapped addresses, splits path from query and joins repeated headers', () => {
  const echo = describeRequest(facts);
  assert.deepEqual(echo, {
    name: 'gitea',
    hostname: 'pod-1',
    remoteAddress: '127.0.0.42',
    remotePort: 40000,
    localAddress: '127.0.0.1',
    localPort: 8080,
    method: 'GET',
    url: '/a/b?x=1&format=json',
    host: 'git.example.com',
    path: '/a/b',
    protocol: 'HTTP/1.1',
    headers: { host: 'git.example.com', 'x-forwarded-for': '1.2.3.4, 5.6.7.8' },
  });
  assert.equal('body' in echo, false);
  assert.deepEqual(describeRequest({ ...facts, body: { bytes: 3, sha256: 'ab' } }).body, {
    bytes: 3,
    sha256: 'ab',
  });
});

test('only true IPv4-mapped forms are folded', () => {
  assert.equal(foldMappedIpv4('::FFFF:10.0.0.1'), '10.0.0.1');
  assert.equal(foldMappedIpv4('::1'), '::1');
  assert.equal(foldMappedIpv4('2001:db8::ffff:10.0.0.1'), '2001:db8::ffff:10.0.0.1');
  assert.equal(foldMappedIpv4('127.0.0.1'), '127.0.0.1');
});

test('a header named __proto__ is echoed as data', () => {
  const headers = collectHeaders(['__proto__', 'x', 'constructor', 'y']);
  assert.deepEqual(Object.entries(headers), [
    ['__proto__', 'x'],
    ['constructor', 'y'],
  ]);
  const echo = describeRequest({ ...facts, rawHeaders: ['__proto__', 'x'] });
  assert.equal(JSON.stringify(echo.headers), '{"__proto__":"x"}');
  assert.equal(Object.getPrototypeOf(echo.headers), Object.prototype);
});

test('the text form names the peer and repeats the request as received', () => {
  const text = renderText(describeRequest(facts), facts.rawHeaders);
  assert.match(text, /^Name: gitea$/m);
  assert.match(text, /^Hostname: pod-1$/m);
  assert.match(text, /^RemoteAddr: 127\.0\.0\.42:40000$/m);
  assert.match(text, /^GET \/a\/b\?x=1&format=json HTTP\/1\.1$/m);
  assert.match(text, /^X-Forwarded-For: 1\.2\.3\.4$/m);
  assert.match(text, /^x-forwarded-for: 5\.6\.7\.8$/m);
  const v6 = renderText(describeRequest({ ...facts, remoteAddress: '::1' }), []);
  assert.match(v6, /^RemoteAddr: \[::1\]:40000$/m);
});

test('JSON is chosen by Accept or ?format=json; ?format=text wins over Accept', () => {
  assert.equal(wantsJson('/', 'application/json'), true);
  assert.equal(wantsJson('/', 'text/html, application/json;q=0.9'), true);
  assert.equal(wantsJson('/?format=json', undefined), true);
  assert.equal(wantsJson('/?format=text', 'application/json'), false);
  assert.equal(wantsJson('/', '*/*'), false);
  assert.equal(wantsJson('/', undefined), false);
});

test('?wait= accepts ms and s, bounded, and rejects junk with a code', () => {
  // A plain number is seconds, as every duration keepip reads (src/config/duration.ts).
  assert.deepEqual(parseWait('2'), { ok: true, ms: 2000 });
  assert.equal(parseWait('250').ok, false);
  assert.deepEqual(parseWait('250ms'), { ok: true, ms: 250 });
  assert.deepEqual(parseWait('1.5s'), { ok: true, ms: 1500 });
  const junk = parseWait('soon');
  assert.equal(junk.ok, false);
  if (!junk.ok) assert.equal(junk.error.code, 'WHOAMI_BAD_WAIT');
  const long = parseWait('31s');
  assert.equal(long.ok, false);
  if (!long.ok) assert.equal(long.error.code, 'WHOAMI_WAIT_TOO_LONG');
});
