// The auth subrequest's target as nginx's proxy_pass reads an expanded auth-url: the authority must be
// a host and a port of digits (a Host header expanded into it never names another server), and the rest
// is sent as written, never resolved as a URL (no dot segments climbing out of the annotation's path).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { subrequestTarget } from '../../src/gateway/access/external-auth.ts';

test('the authority of an expanded auth-url is a host and a digits port, or nothing is sent', () => {
  assert.equal(subrequestTarget('http://auth.svc:8080/check?x=1')?.url.host, 'auth.svc:8080');
  assert.equal(subrequestTarget('https://[::1]:9443/')?.url.host, '[::1]:9443');
  for (const refused of [
    'http://hh.test:@127.0.0.1:1/_auth',
    'http://user@auth.svc/',
    'http://auth.svc:80x/',
    'http://auth.svc\\@evil/',
    'http:///_auth',
    'ftp://auth.svc/',
    'auth.svc/check',
  ])
    assert.equal(subrequestTarget(refused), null, refused);
});

test('the path is sent as expanded: backslashes and encoded dots stay, bytes no request line carries are encoded', () => {
  const path = (text: string) => subrequestTarget(text)?.path;
  assert.equal(path('http://a/authz/a\\..\\..\\secret'), '/authz/a\\..\\..\\secret');
  assert.equal(path('http://a/authz/a/%2e%2e/%2e%2e/secret'), '/authz/a/%2e%2e/%2e%2e/secret');
  assert.equal(path('http://a/authz/x\r\nInjected: 1 é'), '/authz/x%0D%0AInjected:%201%20%C3%A9');
  assert.equal(path('http://a?rd=/x'), '/?rd=/x');
  assert.equal(path('http://a'), '/');
});
