import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type {
  BackendRef,
  GatewayModel,
  GatewaySettings,
  LocationModel,
  ServedPathType,
  SourceRangeModel,
  VirtualHostModel,
} from '../../src/config/model.ts';
import { DEFAULT_UPSTREAM_NAME } from '../../src/config/model.ts';
import { hostWithoutPort, nginxRefusesHost, normalizeHost, wildcardSuffix } from '../../src/gateway/host.ts';
import { normalizePath, parseRequestTarget } from '../../src/gateway/request-target.ts';
import { defaultGatewaySettings } from '../../src/k8s/annotations.ts';
import {
  compileRoutes,
  type RouteDecision,
  type RouteRequest,
  routeRequest,
} from '../../src/gateway/router.ts';

// ---------------------------------------------------------------------------------------------
// Hand-built models (the manifest translator is a colleague's; these follow src/config/model.ts)

function settings(over: Partial<GatewaySettings> = {}): GatewaySettings {
  return { ...defaultGatewaySettings(), logFormatUpstream: '', ...over };
}

function backend(service: string, port: number | string = 80, namespace = 'default'): BackendRef {
  return { service: { namespace, name: service }, port, upstreamName: `${namespace}-${service}-${port}` };
}

function loc(
  path: string,
  pathType: ServedPathType,
  service: string,
  over: Partial<LocationModel> = {},
): LocationModel {
  return {
    ingress: { namespace: 'default', name: `ing-${service}` },
    ingressOrigin: {
      file: 'test.yaml',
      document: 1,
      kind: 'Ingress',
      namespace: 'default',
      name: `ing-${service}`,
    },
    createdAt: null,
    path,
    pathType,
    regex: null,
    backend: backend(service),
    allow: null,
    deny: null,
    rewriteTarget: null,
    appRoot: null,
    sslRedirect: false,
    forceSslRedirect: false,
    serviceUpstream: false,
    backendProtocol: 'HTTP',
    proxyBodySizeBytes: 1024 * 1024,
    proxyConnectTimeoutMs: 5000,
    proxyReadTimeoutMs: 60000,
    proxySendTimeoutMs: 60000,
    ...over,
  };
}

/** A location whose path is a regex (use-regex on the host), as the translator marks it. */
function rx(path: string, service: string, over: Partial<LocationModel> = {}): LocationModel {
  return loc(path, 'Prefix', service, { regex: path, ...over });
}

const TLS = { secret: { namespace: 'default', name: 'tls' }, hosts: [], certPem: 'x', keyPem: 'y' };

function vhost(host: string, locations: LocationModel[], tls = false): VirtualHostModel {
  return { host, tls: tls ? { ...TLS, hosts: [host] } : null, locations };
}

function model(
  virtualHosts: VirtualHostModel[],
  over: Partial<GatewayModel> = {},
  settingsOver: Partial<GatewaySettings> = {},
): GatewayModel {
  return {
    ingressClass: 'nginx',
    settings: settings(settingsOver),
    virtualHosts,
    defaultBackend: null,
    controllerServices: [],
    ...over,
  };
}

function req(host: string, path: string, scheme: 'http' | 'https' = 'http'): RouteRequest {
  return { host, path, scheme };
}

/** A short description of a decision, for table tests. */
function summary(d: RouteDecision): string {
  switch (d.kind) {
    case 'proxy':
      return `proxy ${d.route.upstreamName} ${d.upstreamPath}`;
    case 'redirect':
    case 'host-redirect':
      return `redirect ${d.status} ${d.location}`;
    case 'not-found':
      return `404 ${d.serverName} ${d.backend?.upstreamName ?? '-'}`;
    case 'bad-request':
      return `400 ${d.code}`;
  }
}

function table(m: GatewayModel, cases: Array<[RouteRequest, string]>): void {
  const routes = compileRoutes(m);
  for (const [r, expected] of cases) {
    it(`${r.scheme} ${r.host} ${r.path} -> ${expected}`, () =>
      assert.equal(summary(routeRequest(routes, r)), expected));
  }
}

// ---------------------------------------------------------------------------------------------

describe('path priority (no regex)', () => {
  table(
    model([
      vhost('example.com', [
        loc('/foo', 'Exact', 'exact-foo'),
        loc('/foo/bar', 'Prefix', 'foo-bar'),
        loc('/foo', 'Prefix', 'prefix-foo'),
        loc('/docs/', 'Prefix', 'docs'),
        loc('/', 'Prefix', 'root'),
      ]),
    ]),
    [
      [req('example.com', '/foo'), 'proxy default-exact-foo-80 /foo'],
      [req('example.com', '/foo?x=1'), 'proxy default-exact-foo-80 /foo?x=1'],
      [req('example.com', '/foo/'), 'proxy default-prefix-foo-80 /foo/'],
      [req('example.com', '/foo/baz'), 'proxy default-prefix-foo-80 /foo/baz'],
      [req('example.com', '/foo/bar'), 'proxy default-foo-bar-80 /foo/bar'],
      [req('example.com', '/foo/bar/x'), 'proxy default-foo-bar-80 /foo/bar/x'],
      [req('example.com', '/foo/barx'), 'proxy default-prefix-foo-80 /foo/barx'],
      [req('example.com', '/foobar'), 'proxy default-root-80 /foobar'],
      [req('example.com', '/FOO'), 'proxy default-root-80 /FOO'],
      // A Prefix path with a trailing slash: nginx's auto_redirect answers the element itself with a 301
      // (ingress-nginx's `location /docs/`, no `location = /docs`).
      [req('example.com', '/docs'), 'redirect 301 /docs/'],
      [req('example.com', '/docs/a'), 'proxy default-docs-80 /docs/a'],
      [req('example.com', '/docsx'), 'proxy default-root-80 /docsx'],
      [req('example.com', '/'), 'proxy default-root-80 /'],
    ],
  );

  describe('exact wins even when listed after a longer prefix, and the first duplicate wins', () => {
    table(
      model([
        vhost('example.com', [
          loc('/a', 'Prefix', 'prefix-a'),
          loc('/a', 'Prefix', 'prefix-a-dup'),
          loc('/a/b', 'Exact', 'exact-ab'),
          loc('/a/b', 'Exact', 'exact-ab-dup'),
        ]),
      ]),
      [
        [req('example.com', '/a/b'), 'proxy default-exact-ab-80 /a/b'],
        [req('example.com', '/a/b/c'), 'proxy default-prefix-a-80 /a/b/c'],
        [req('example.com', '/b'), '404 example.com -'],
      ],
    );
  });
});

describe("nginx's auto_redirect: $uri + `/` names a proxying location, nothing is named $uri", () => {
  table(
    model([
      vhost('example.com', [
        loc('/a/', 'Prefix', 'a'),
        loc('/b', 'Prefix', 'b'),
        loc('/c/', 'Exact', 'c'),
        loc('/d/', 'Prefix', 'd'),
        loc('/f/', 'Prefix', 'f', {
          access: {
            rateLimit: null,
            basicAuth: null,
            externalAuth: null,
            satisfy: 'all',
            denied: { annotation: 'x', reason: 'y' },
          },
        }),
        loc('/', 'Prefix', 'root'),
      ]),
      vhost('rx.example.com', [rx('/a/', 'rx-a'), rx('/', 'rx-root')]),
    ]),
    [
      [req('example.com', '/a'), 'redirect 301 /a/'],
      [req('example.com', '/a?x=1&y'), 'redirect 301 /a/?x=1&y'],
      [req('example.com', '/a?'), 'redirect 301 /a/'],
      [req('example.com', '/%61'), 'redirect 301 /a/'],
      [req('example.com', '/A'), 'proxy default-root-80 /A'],
      [req('example.com', '/a/'), 'proxy default-a-80 /a/'],
      // A Prefix path without a slash also has `location = /b`.
      [req('example.com', '/b'), 'proxy default-b-80 /b'],
      // An Exact `/c/` is a proxying location named `/c/` too.
      [req('example.com', '/c'), 'redirect 301 /c/'],
      [req('example.com', '/d'), 'redirect 301 /d/'],
      // A denied location (`return 503`, no proxy_pass) has no auto_redirect.
      [req('example.com', '/f'), 'proxy default-f-80 /f'],
      // Regex locations: none.
      [req('rx.example.com', '/a'), 'proxy default-rx-root-80 /a'],
    ],
  );
});

describe('paths are matched on the normalised $uri (no allowlist bypass by encoding)', () => {
  table(model([vhost('example.com', [loc('/admin', 'Prefix', 'admin'), loc('/', 'Prefix', 'public')])]), [
    [req('example.com', '/%61dmin'), 'proxy default-admin-80 /%61dmin'],
    [req('example.com', '//admin'), 'proxy default-admin-80 //admin'],
    [req('example.com', '/x/../admin'), 'proxy default-admin-80 /x/../admin'],
    [req('example.com', '/./admin/'), 'proxy default-admin-80 /./admin/'],
    [req('example.com', '/../../admin'), '400 TARGET_ABOVE_ROOT'],
    [req('example.com', '/%2e%2e/admin'), '400 TARGET_ABOVE_ROOT'],
    [req('example.com', '/admin%2Fx'), 'proxy default-admin-80 /admin%2Fx'],
    [req('example.com', '/adm%69n?q=/admin'), 'proxy default-admin-80 /adm%69n?q=/admin'],
    [req('example.com', '/public/%2e%2e/admin'), 'proxy default-admin-80 /public/%2e%2e/admin'],
    [req('example.com', '/admin/..'), 'proxy default-public-80 /admin/..'],
    [req('example.com', '/%zzadmin'), '400 TARGET_BAD_ESCAPE'],
  ]);

  const vectors: Array<[string, string | null]> = [
    ['/', '/'],
    ['/a/b', '/a/b'],
    ['/a//b///c', '/a/b/c'],
    ['/a/./b/.', '/a/b/'],
    ['/a/b/..', '/a/'],
    ['/a/b/../..', '/'],
    ['/..', null],
    ['/a/%00', null],
    ['/a%20b', '/a b'],
    ['/%25', '/%'],
    ['/%252e', '/%2e'],
    ['/%C3%A9', '/\xc3\xa9'],
    ['/a%', '/a%'],
  ];
  for (const [input, expected] of vectors) {
    it(`normalizePath ${input} -> ${JSON.stringify(expected)}`, () =>
      assert.equal(normalizePath(input), expected));
  }

  it('splits absolute-form and OPTIONS * targets', () => {
    assert.deepEqual(parseRequestTarget('http://Example.com:8080/a/../b?x=1'), {
      raw: '/a/../b?x=1',
      authority: 'Example.com:8080',
      uri: '/b',
      args: 'x=1',
      error: null,
    });
    assert.deepEqual(parseRequestTarget('http://example.com'), {
      raw: '/',
      authority: 'example.com',
      uri: '/',
      args: null,
      error: null,
    });
    assert.deepEqual(parseRequestTarget('http://example.com?a'), {
      raw: '/?a',
      authority: 'example.com',
      uri: '/',
      args: 'a',
      error: null,
    });
    assert.equal(parseRequestTarget('*').uri, '*');
    assert.equal(parseRequestTarget('/p?').args, '');
  });
});

describe('hosts', () => {
  const m = model(
    [
      vhost('example.com', [loc('/', 'Prefix', 'exact-host')]),
      vhost('*.example.com', [loc('/', 'Prefix', 'wildcard')]),
      vhost('api.example.com', [loc('/', 'Prefix', 'api')]),
      vhost('*.b.example.com', [loc('/', 'Prefix', 'wildcard-b')]),
      vhost('Upper.Example.ORG.', [loc('/', 'Prefix', 'upper')]),
      vhost('only-foo.example.net', [loc('/foo', 'Prefix', 'foo')]),
      vhost('', [loc('/', 'Prefix', 'no-host')]),
    ],
    { defaultBackend: backend('fallback', 8080, 'ingress-nginx') },
  );
  table(m, [
    [req('example.com', '/'), 'proxy default-exact-host-80 /'],
    [req('EXAMPLE.com:8080', '/'), 'proxy default-exact-host-80 /'],
    [req('example.com.', '/'), 'proxy default-exact-host-80 /'],
    [req('api.example.com', '/'), 'proxy default-api-80 /'],
    [req('www.example.com', '/'), 'proxy default-wildcard-80 /'],
    [req('my_host-1.example.com', '/'), 'proxy default-wildcard-80 /'],
    // A wildcard covers exactly one label.
    [req('x.b.example.com', '/'), 'proxy default-wildcard-b-80 /'],
    [req('x.y.b.example.com', '/'), 'proxy default-no-host-80 /'],
    [req('a.c.example.com', '/'), 'proxy default-no-host-80 /'],
    [req('.example.com', '/'), '400 HOST_INVALID'],
    [req('upper.example.org', '/'), 'proxy default-upper-80 /'],
    // Rules without a host form the default server `_`.
    [req('unknown.test', '/'), 'proxy default-no-host-80 /'],
    [req('', '/'), 'proxy default-no-host-80 /'],
    [req('bad/host', '/'), '400 HOST_INVALID'],
    [req('ex..ample.com', '/'), '400 HOST_INVALID'],
    // Host matched, no path matched: that host's catch-all is the default backend.
    [req('only-foo.example.net', '/bar'), '404 only-foo.example.net ingress-nginx-fallback-8080'],
    // The authority of an absolute-form request-target wins over the Host header (nginx).
    [req('unknown.test', 'http://api.example.com/x'), 'proxy default-api-80 /x'],
  ]);

  describe('without a default server', () => {
    table(model([vhost('example.com', [loc('/', 'Prefix', 'a')])]), [
      [req('other.com', '/'), `404 _ -`],
      [req('example.com', '*'), '404 example.com -'],
    ]);
    table(model([vhost('example.com', [loc('/', 'Prefix', 'a')])], { defaultBackend: backend('def', 80) }), [
      [req('other.com', '/'), '404 _ default-def-80'],
    ]);
  });

  it('names the server: the host, the wildcard, or _', () => {
    const routes = compileRoutes(m);
    const names = ['example.com', 'www.example.com', 'unknown.test'].map((h) => {
      const d = routeRequest(routes, req(h, '/'));
      return d.kind === 'proxy' ? d.route.serverName : d.kind;
    });
    assert.deepEqual(names, ['example.com', '*.example.com', '_']);
  });

  const hosts: Array<[string, string | null]> = [
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['example.com:443', 'example.com'],
    ['example.com.', 'example.com'],
    ['EXAMPLE.com.:80', 'example.com'],
    ['[::1]:8080', '[::1]'],
    ['[2001:DB8::1]', '[2001:db8::1]'],
    ['[::1', null],
    ['[::1]x', null],
    ['', ''],
    ['.example.com', null],
    ['a..b', null],
    ['example.com..', null],
    ['example.com..:80', null],
    ['.', null],
    ['a/b', null],
    ['a\\b', null],
    ['user@host', null],
    ['a b', null],
    ['10.0.0.1:80', '10.0.0.1'],
  ];
  for (const [input, expected] of hosts) {
    it(`normalizeHost ${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () =>
      assert.equal(normalizeHost(input), expected));
  }

  it("nginx's own Host refusals (checked beside an absolute-form target), as nginx 1.22 answers them", () => {
    // Checked against nginx 1.22.1: these are 400 there, whatever the request target.
    for (const refused of ['h test', 'a..b', 'a.example..', 'evil.example/x', 'a\tb', 'a\u007fb', '', '.'])
      assert.equal(nginxRefusesHost(refused), true, JSON.stringify(refused));
    // And these 200 (keepip's normalizeHost refuses some of them where it routes by the header).
    for (const served of [
      'a.example',
      'a@b',
      '@evil',
      'a\\b',
      'a%b',
      'a,b',
      'x:@evil',
      'a.example.',
      '[::1]:80',
    ])
      assert.equal(nginxRefusesHost(served), false, JSON.stringify(served));
  });

  it('wildcard suffixes and redirect hosts', () => {
    assert.equal(wildcardSuffix('a.example.com'), 'example.com');
    assert.equal(wildcardSuffix('example'), null);
    assert.equal(wildcardSuffix('a*b.example.com'), null);
    assert.equal(hostWithoutPort('Example.com:8080'), 'Example.com');
    assert.equal(hostWithoutPort('[::1]:8443'), '[::1]');
  });
});

describe('use-regex', () => {
  table(
    model([
      vhost('example.com', [
        rx('/api/v[0-9]+/users', 'users'),
        rx('/api', 'api'),
        rx('/api/v1/users/special', 'never-reached'),
        rx('/(?P<name>img|css)/.*', 'static'),
        // With use-regex an Exact path is rendered `~* "^/exact"` too: a prefix regex.
        loc('/exact', 'Exact', 'exact', { regex: '/exact' }),
        rx('/', 'root'),
      ]),
    ]),
    [
      [req('example.com', '/api/v2/users/7'), 'proxy default-users-80 /api/v2/users/7'],
      [req('example.com', '/API/V2/USERS'), 'proxy default-users-80 /API/V2/USERS'],
      // First match in order, not the longest.
      [req('example.com', '/api/v1/users/special'), 'proxy default-users-80 /api/v1/users/special'],
      // Anchored at the start only: a regex path is a prefix match.
      [req('example.com', '/apifoo'), 'proxy default-api-80 /apifoo'],
      [req('example.com', '/x/api'), 'proxy default-root-80 /x/api'],
      [req('example.com', '/css/a.css'), 'proxy default-static-80 /css/a.css'],
      [req('example.com', '/%61pi'), 'proxy default-api-80 /%61pi'],
      [req('example.com', '/exact/more'), 'proxy default-exact-80 /exact/more'],
    ],
  );

  describe('regex and plain locations together follow nginx (exact, then regex, then prefix)', () => {
    table(
      model([
        vhost('example.com', [
          loc('/static', 'Exact', 'exact'),
          loc('/static', 'Prefix', 'prefix'),
          rx('/stat', 'regex'),
        ]),
      ]),
      [
        [req('example.com', '/static'), 'proxy default-exact-80 /static'],
        [req('example.com', '/static/x'), 'proxy default-regex-80 /static/x'],
      ],
    );
  });

  it('an invalid regex is an error and its location fails closed', () => {
    const routes = compileRoutes(model([vhost('example.com', [rx('/bad(', 'bad'), rx('/', 'root')])]));
    assert.deepEqual(
      routes.issues.map((i) => [i.severity, i.code]),
      [['error', 'ROUTE_INVALID_REGEX']],
    );
    const d = routeRequest(routes, req('example.com', '/bad('));
    assert.equal(d.kind, 'proxy');
    assert.equal(d.kind === 'proxy' && d.route.policy.decide('10.0.0.1').outcome, 'fail-closed');
    assert.equal(summary(routeRequest(routes, req('example.com', '/good'))), 'proxy default-root-80 /good');
  });
});

describe('a regex that can backtrack without bound is never matched', () => {
  it('its location fails closed (ROUTE_REGEX_BACKTRACKS), and the crafted path is answered at once', () => {
    const routes = compileRoutes(
      model([vhost('example.com', [rx('/api/(a+)+x', 'nested'), rx('/', 'root')])]),
    );
    assert.deepEqual(
      routes.issues.map((i) => [i.severity, i.code]),
      [['error', 'ROUTE_REGEX_BACKTRACKS']],
    );
    // Matched with the regex, 40 a's and no x would take V8 about 2^40 steps: this call would hang.
    const crafted = `/api/${'a'.repeat(40)}`;
    assert.equal(
      summary(routeRequest(routes, req('example.com', crafted))),
      `proxy default-root-80 ${crafted}`,
    );
    const literal = routeRequest(routes, req('example.com', '/api/(a+)+x'));
    assert.equal(literal.kind === 'proxy' && literal.route.policy.decide('10.0.0.1').outcome, 'fail-closed');
  });
});

describe('rewrite-target through the router', () => {
  table(
    model([
      vhost('example.com', [
        rx('/something(/|$)(.*)', 'something', { rewriteTarget: '/$2' }),
        rx('/strip', 'strip', { rewriteTarget: '/' }),
        rx('/bad', 'bad', { rewriteTarget: '/x;rm -rf /' }),
        rx('/var', 'var', { rewriteTarget: '/$host/x' }),
        rx('/moved(/|$)(.*)', 'moved', {
          rewriteTarget: 'https://new.example.com/$2',
          forceSslRedirect: true,
        }),
        rx('/', 'root'),
      ]),
    ]),
    [
      [req('example.com', '/something'), 'proxy default-something-80 /'],
      [req('example.com', '/something/'), 'proxy default-something-80 /'],
      [req('example.com', '/something/new'), 'proxy default-something-80 /new'],
      [req('example.com', '/something/new/deep?x=1&y=2'), 'proxy default-something-80 /new/deep?x=1&y=2'],
      [req('example.com', '/SOMETHING/New'), 'proxy default-something-80 /New'],
      [req('example.com', '/something/a%20b%3Fc'), 'proxy default-something-80 /a%20b%3Fc'],
      // Normalised first: `/something/..%2f/x` is `/x`, which the rewrite location does not match.
      [req('example.com', '/something/..%2f/x'), 'proxy default-root-80 /something/..%2f/x'],
      [req('example.com', '/something?'), 'proxy default-something-80 /'],
      // nginx replaces the whole URI: rewrite-target `/` sends everything to `/`.
      [req('example.com', '/strip/a/b?q=1'), 'proxy default-strip-80 /?q=1'],
      // Invalid targets and unsupported variables are ignored: the request goes upstream unchanged.
      [req('example.com', '/bad/x'), 'proxy default-bad-80 /bad/x'],
      [req('example.com', '/var/x'), 'proxy default-var-80 /var/x'],
      // An absolute target makes nginx answer 302 itself (before ssl-redirect and access checks).
      [req('example.com', '/moved/a?b=1'), 'redirect 302 https://new.example.com/a?b=1'],
    ],
  );

  it('reports ignored rewrite targets', () => {
    const routes = compileRoutes(
      model([
        vhost('e.com', [
          rx('/a', 'a', { rewriteTarget: '/a b' }),
          rx('/b', 'b', { rewriteTarget: '/$host' }),
        ]),
      ]),
    );
    assert.deepEqual(
      routes.issues.map((i) => [i.severity, i.code, i.origin?.name]),
      [
        ['warning', 'ROUTE_INVALID_REWRITE_TARGET', 'ing-a'],
        ['warning', 'ROUTE_REWRITE_VARIABLE', 'ing-b'],
      ],
    );
  });
});

describe('redirects', () => {
  const m = model(
    [
      vhost('secure.example.com', [loc('/', 'Prefix', 'secure', { sslRedirect: true })], true),
      vhost('optout.example.com', [loc('/', 'Prefix', 'optout', { sslRedirect: false })], true),
      vhost('plain.example.com', [loc('/', 'Prefix', 'plain', { sslRedirect: true })]),
      vhost('forced.example.com', [loc('/', 'Prefix', 'forced', { forceSslRedirect: true })]),
      vhost(
        'app.example.com',
        [loc('/', 'Prefix', 'app', { appRoot: '/dashboard', sslRedirect: true })],
        true,
      ),
      vhost('approot-elsewhere.example.com', [
        loc('/other', 'Prefix', 'other', { appRoot: '/app' }),
        loc('/', 'Prefix', 'root'),
      ]),
    ],
    {},
    { httpRedirectCode: 308 },
  );
  table(m, [
    [req('secure.example.com', '/a/b?x=1'), 'redirect 308 https://secure.example.com/a/b?x=1'],
    // ingress-nginx drops one trailing slash of request_uri (preserve-trailing-slash is off).
    [req('secure.example.com', '/a/'), 'redirect 308 https://secure.example.com/a'],
    [req('secure.example.com', '/'), 'redirect 308 https://secure.example.com'],
    [req('secure.example.com:8080', '/p'), 'redirect 308 https://secure.example.com/p'],
    [req('Secure.Example.com', '/p'), 'redirect 308 https://Secure.Example.com/p'],
    [req('secure.example.com', '/p', 'https'), 'proxy default-secure-80 /p'],
    [req('optout.example.com', '/p'), 'proxy default-optout-80 /p'],
    // The model's sslRedirect is already limited to spec.tls hosts (translate-gateway.ts); a TLS host
    // whose Secret is missing (tls null) still redirects, as ingress-nginx does.
    [req('plain.example.com', '/p'), 'redirect 308 https://plain.example.com/p'],
    [req('forced.example.com', '/p'), 'redirect 308 https://forced.example.com/p'],
    [req('forced.example.com', '/p', 'https'), 'proxy default-forced-80 /p'],
    // app-root: only `/`, 302, scheme and Host (with port) kept, before ssl-redirect.
    [req('app.example.com:8080', '/'), 'redirect 302 http://app.example.com:8080/dashboard'],
    [req('app.example.com', '/?x=1'), 'redirect 302 http://app.example.com/dashboard'],
    [req('app.example.com', '/', 'https'), 'redirect 302 https://app.example.com/dashboard'],
    [req('app.example.com', '/dashboard'), 'redirect 308 https://app.example.com/dashboard'],
    [req('app.example.com', '/dashboard', 'https'), 'proxy default-app-80 /dashboard'],
    // app-root is server-wide in ingress-nginx: any location carrying it redirects `/`.
    [req('approot-elsewhere.example.com', '/'), 'redirect 302 http://approot-elsewhere.example.com/app'],
    [req('approot-elsewhere.example.com', '/x'), 'proxy default-root-80 /x'],
  ]);

  describe('http-redirect-code', () => {
    table(
      model(
        [vhost('s.example.com', [loc('/', 'Prefix', 's', { sslRedirect: true })], true)],
        {},
        { httpRedirectCode: 301 },
      ),
      [[req('s.example.com', '/'), 'redirect 301 https://s.example.com']],
    );
  });

  it('carries the matched route, so the decision trace can name it', () => {
    const d = routeRequest(compileRoutes(m), req('secure.example.com', '/x'));
    assert.equal(d.kind, 'redirect');
    assert.equal(d.kind === 'redirect' && d.route.location.ingress.name, 'ing-secure');
    assert.equal(d.kind === 'redirect' && d.serverName, 'secure.example.com');
  });
});

describe('upstream names and access policies', () => {
  const range = (cidrs: string[]): SourceRangeModel => ({
    valid: true,
    cidrs,
    raw: cidrs.join(','),
    from: 'annotation',
  });
  const m = model(
    [
      vhost('example.com', [
        loc('/gitea', 'Prefix', 'gitea-http', {
          backend: backend('gitea-http', 3000, 'gitea'),
          allow: range(['10.1.0.0/16']),
        }),
        loc('/named', 'Prefix', 'named', { backend: backend('svc', 'http', 'ns') }),
        loc('/nobackend', 'Prefix', 'x', { backend: null }),
        loc('/deny', 'Prefix', 'deny', {
          deny: range(['18.1.0.0/16', '56.0.0.0/8']),
          allow: range(['18.0.0.0/8', '55.0.0.0/8']),
        }),
        loc('/invalid', 'Prefix', 'invalid', {
          allow: { valid: false, raw: 'ww', error: 'bad', from: 'annotation' },
        }),
        loc('/', 'Prefix', 'root'),
      ]),
    ],
    {},
    {
      blockCidrs: range(['10.1.2.0/24']),
      defaultDeny: range(['192.0.2.0/24']),
    },
  );
  const routes = compileRoutes(m);
  const route = (path: string) => {
    const d = routeRequest(routes, req('example.com', path));
    assert.equal(d.kind, 'proxy');
    return (d as Extract<RouteDecision, { kind: 'proxy' }>).route;
  };

  it('names upstreams <namespace>-<service>-<port>, or upstream-default-backend', () => {
    assert.equal(route('/gitea').upstreamName, 'gitea-gitea-http-3000');
    assert.equal(route('/named').upstreamName, 'ns-svc-http');
    assert.equal(route('/nobackend').upstreamName, DEFAULT_UPSTREAM_NAME);
    assert.equal(DEFAULT_UPSTREAM_NAME, 'upstream-default-backend');
  });

  const outcomes: Array<[string, string, string]> = [
    ['/gitea', '10.1.9.9', 'allow'],
    ['/gitea', '10.2.0.1', 'deny'],
    // block-cidrs apply even on a location with its own allowlist (keepip's deliberate difference).
    ['/gitea', '10.1.2.3', 'deny'],
    ['/', '10.1.2.3', 'deny'],
    ['/', '8.8.8.8', 'allow'],
    // The ConfigMap denylist is the default for locations without one.
    ['/', '192.0.2.7', 'deny'],
    // The reference page's end-to-end vector.
    ['/deny', '18.1.0.1', 'deny'],
    ['/deny', '10.10.10.10', 'deny'],
    ['/deny', '18.4.0.1', 'allow'],
    ['/deny', '55.55.55.55', 'allow'],
    ['/invalid', '10.0.0.1', 'fail-closed'],
  ];
  for (const [path, ip, outcome] of outcomes) {
    it(`${path} from ${ip}: ${outcome}`, () => assert.equal(route(path).policy.decide(ip).outcome, outcome));
  }

  it('compiles each policy once per snapshot (routing returns the same route object)', () => {
    assert.equal(route('/gitea/a'), route('/gitea/b'));
  });
});

describe('robustness', () => {
  const m = model(
    [
      vhost(
        'example.com',
        [
          rx('/something(/|$)(.*)', 'something', { rewriteTarget: '/$2' }),
          loc('/e', 'Exact', 'e'),
          loc('/', 'Prefix', 'root', { sslRedirect: true, appRoot: '/app' }),
        ],
        true,
      ),
      vhost('*.example.com', [loc('/p', 'Prefix', 'p')]),
      vhost('', [rx('/(a|b)+$', 'ab')]),
    ],
    { defaultBackend: backend('def') },
  );
  const routes = compileRoutes(m);

  it('never throws and always answers a well-formed decision (property)', () => {
    const hostArb = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.constantFrom('example.com', 'a.example.com', 'EXAMPLE.COM:80', '[::1]:80', '', '.', '..', 'a.'),
    );
    const pathArb = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc
        .array(
          fc.constantFrom('/', '.', '..', '%', '%2e', '%2F', 'something', 'a', '?', '%zz', '//', 'http://'),
          {
            maxLength: 12,
          },
        )
        .map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(
        hostArb,
        pathArb,
        fc.constantFrom('http' as const, 'https' as const),
        (host, path, scheme) => {
          const d = routeRequest(routes, { host, path, scheme });
          assert.ok(['proxy', 'redirect', 'not-found', 'bad-request'].includes(d.kind));
          if (d.kind === 'bad-request') assert.match(d.code, /^(TARGET_|HOST_INVALID$)/);
          if (d.kind === 'proxy') {
            assert.equal(typeof d.upstreamPath, 'string');
            assert.equal(typeof d.route.upstreamName, 'string');
          }
          if (d.kind === 'redirect') assert.ok(/^https?:\/\//.test(d.location));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('a rewritten upstream path is always a valid origin-form target (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (tail) => {
        const d = routeRequest(routes, req('example.com', `/something/${encodeURIComponent(tail)}`, 'https'));
        // A decoded NUL or `..` above the root is refused (400) as nginx does; anything else is proxied.
        if (d.kind === 'bad-request') assert.ok(['TARGET_NUL', 'TARGET_ABOVE_ROOT'].includes(d.code), d.code);
        else assert.equal(d.kind, 'proxy');
        if (d.kind === 'proxy') assert.match(d.upstreamPath, /^\/[\x21-\x7e]*$/);
      }),
      { numRuns: 1000 },
    );
  });
});
