// The Locations ingress-nginx's own redirects carry (src/gateway/redirects.ts): nginx's
// absolute_redirect for `return 301 /path`, and the https redirect's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { absoluteLocation, appRootLocation, httpsRedirectLocation } from '../../src/gateway/redirects.ts';

const plain = { scheme: 'http', rawHost: 'rr.foo.com:8080', serverName: 'rr.foo.com', serverPort: 8080 };

test('a path becomes $scheme://host<path>: Host without its port, port_in_redirect off', () => {
  assert.equal(absoluteLocation('/new', plain, {}), 'http://rr.foo.com/new');
  assert.equal(absoluteLocation('/new', { ...plain, scheme: 'https' }, {}), 'https://rr.foo.com/new');
  // No Host header (HTTP/1.0): the server name.
  assert.equal(absoluteLocation('/new', { ...plain, rawHost: '' }, {}), 'http://rr.foo.com/new');
  // The host as nginx validated it (r->headers_in.server): lower case, no final dot.
  assert.equal(
    absoluteLocation('/new', { ...plain, rawHost: 'RR.Foo.COM.:8080' }, {}),
    'http://rr.foo.com/new',
  );
  // `//x` starts with `/` for nginx too.
  assert.equal(absoluteLocation('//x', plain, {}), 'http://rr.foo.com//x');
});

test('use-port-in-redirects names the listener port unless it is the scheme own; relative keeps the path', () => {
  assert.equal(absoluteLocation('/new', plain, { usePortInRedirects: true }), 'http://rr.foo.com:8080/new');
  assert.equal(
    absoluteLocation('/new', { ...plain, serverPort: 80 }, { usePortInRedirects: true }),
    'http://rr.foo.com/new',
  );
  assert.equal(absoluteLocation('/new', plain, { relative: true }), '/new');
  assert.equal(absoluteLocation('https://x.example/a', plain, {}), 'https://x.example/a');
  assert.equal(absoluteLocation('new', plain, {}), 'new', 'nginx leaves a Location without / as it is');
});

test('the https redirect drops a final / unless preserve-trailing-slash, names 443 with use-port-in-redirects', () => {
  assert.equal(httpsRedirectLocation('a.example:8080', '/x/'), 'https://a.example/x');
  assert.equal(
    httpsRedirectLocation('a.example', '/x/', { preserveTrailingSlash: true }),
    'https://a.example/x/',
  );
  assert.equal(
    httpsRedirectLocation('a.example', '/x', { usePortInRedirects: true }),
    'https://a.example:443/x',
  );
});

test('app-root: $scheme://$http_host<app-root>, a numeric port kept; a Host whose port is not digits names no other host', () => {
  assert.equal(appRootLocation('http', 'x.example:8080', '/app'), 'http://x.example:8080/app');
  assert.equal(appRootLocation('https', 'X.Example', '/app'), 'https://X.Example/app');
  assert.equal(appRootLocation('http', '[::1]:8080', '/app'), 'http://[::1]:8080/app');
  // A browser reads `x.example:@evil.com` as user `x.example` at evil.com.
  for (const host of ['x.example:@evil.com', 'x.example:443@evil.com', 'x.example:a b'])
    assert.equal(appRootLocation('http', host, '/app'), 'http://x.example/app', host);
});
