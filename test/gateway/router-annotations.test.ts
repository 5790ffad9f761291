// Routing decisions of the annotations issue 20 added, from manifests through the translation to the
// compiled routes: permanent-/temporal-redirect, from-to-www-redirect, server-alias.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compileRoutes,
  type RouteDecision,
  type RouteRequest,
  routeRequest,
} from '../../src/gateway/router.ts';
import { certificateFor } from '../fixtures/gateway/certificates.ts';
import { codes, ingress, service, topologyOf } from '../k8s/helpers.ts';

const P = 'nginx.ingress.kubernetes.io/';

function summary(d: RouteDecision): string {
  switch (d.kind) {
    case 'proxy':
      return `proxy ${d.route.upstreamName} ${d.upstreamPath} (${d.route.serverName})`;
    case 'redirect':
    case 'host-redirect':
      return `${d.kind} ${d.status} ${d.location}`;
    case 'not-found':
      return `404 ${d.serverName}`;
    case 'bad-request':
      return `400 ${d.code}`;
  }
}

function route(yaml: string, request: RouteRequest): string {
  const topology = topologyOf(yaml + service('svc'));
  return summary(routeRequest(compileRoutes(topology.gateway), request));
}

describe('permanent-redirect and temporal-redirect', () => {
  const redirect = (annotations: Record<string, string>, path = '/something') =>
    route(ingress({ name: 'r', host: 'redirect', annotations, paths: [{ path: '/something' }] }), {
      host: 'redirect',
      path,
      scheme: 'http',
    });

  it('answers 301 with the URL as written (e2e: should respond with a standard redirect code)', () => {
    assert.equal(
      redirect({ [`${P}permanent-redirect`]: 'http://redirect.example.com' }),
      'redirect 301 http://redirect.example.com',
    );
  });

  it('takes permanent-redirect-code (e2e: should respond with a custom redirect code)', () => {
    const a = {
      [`${P}permanent-redirect`]: 'http://redirect.example.com',
      [`${P}permanent-redirect-code`]: '302',
    };
    assert.equal(redirect(a), 'redirect 302 http://redirect.example.com');
    assert.equal(
      redirect({ ...a, [`${P}permanent-redirect-code`]: '308' }),
      'redirect 308 http://redirect.example.com',
    );
    // Out of 300-308: the default.
    assert.equal(
      redirect({ ...a, [`${P}permanent-redirect-code`]: '200' }),
      'redirect 301 http://redirect.example.com',
    );
    assert.equal(
      redirect({ ...a, [`${P}permanent-redirect-code`]: '309' }),
      'redirect 301 http://redirect.example.com',
    );
  });

  it('temporal-redirect is 302 (300-307 by its code) and wins over permanent-redirect', () => {
    const t = { [`${P}temporal-redirect`]: 'https://www.google.com/a?b=c' };
    assert.equal(redirect(t), 'redirect 302 https://www.google.com/a?b=c');
    assert.equal(
      redirect({ ...t, [`${P}temporal-redirect-code`]: '307' }),
      'redirect 307 https://www.google.com/a?b=c',
    );
    assert.equal(
      redirect({ ...t, [`${P}temporal-redirect-code`]: '308' }),
      'redirect 302 https://www.google.com/a?b=c',
    );
    assert.equal(
      redirect({ ...t, [`${P}permanent-redirect`]: 'http://other.example' }),
      'redirect 302 https://www.google.com/a?b=c',
    );
  });

  it("on the Ingress's paths and on its host's root location (ingress-nginx gives the root its annotations); before ssl-redirect", () => {
    assert.equal(
      redirect({ [`${P}permanent-redirect`]: 'http://x.example' }, '/other'),
      'redirect 301 http://x.example',
    );
    const yaml = ingress({
      name: 'r',
      host: 'secure.example',
      tls: [{ hosts: ['secure.example'], secretName: 'missing' }],
      annotations: { [`${P}permanent-redirect`]: 'http://x.example' },
    });
    assert.equal(
      route(yaml, { host: 'secure.example', path: '/', scheme: 'http' }),
      'redirect 301 http://x.example',
    );
  });

  it('refuses what ingress-nginx refuses: temporal not http(s), characters outside its set, a code that is not a number', () => {
    for (const [annotations, why] of [
      [{ [`${P}temporal-redirect`]: 'ftp://x.example' }, /not an http\(s\) URL/],
      [{ [`${P}temporal-redirect`]: '/a-path' }, /not an http\(s\) URL/],
      [{ [`${P}permanent-redirect`]: 'http://x.example/$request_uri' }, /not a URL or path/],
      [
        { [`${P}permanent-redirect`]: 'http://x.example', [`${P}permanent-redirect-code`]: 'x' },
        /not a whole number/,
      ],
      [
        { [`${P}temporal-redirect`]: 'javascript:alert(1)', [`${P}permanent-redirect`]: 'http://x.example' },
        /not an http/,
      ],
    ] as const) {
      const t = topologyOf(ingress({ name: 'r', annotations: { ...annotations } }) + service('svc'));
      const loc = t.gateway.virtualHosts[0]!.locations[0]!;
      assert.equal(loc.redirect, undefined, JSON.stringify(annotations));
      const issue = t.issues.find((i) => i.code === 'INVALID_ANNOTATION_VALUE');
      assert.match(issue?.message ?? '', why);
    }
    // permanent-redirect is only checked against the character set (ingress-nginx's isValidURL is for
    // temporal-redirect): a path or another scheme is sent as written (a path made absolute).
    for (const url of ['ftp://x.example', '/new-location']) {
      const t = topologyOf(
        ingress({ name: 'r', annotations: { [`${P}permanent-redirect`]: url } }) + service('svc'),
      );
      assert.deepEqual(t.gateway.virtualHosts[0]!.locations[0]!.redirect, { url, code: 301 });
    }
  });
});

describe('from-to-www-redirect', () => {
  const yaml = (host: string, more = '') =>
    ingress({ name: 'www', host, annotations: { [`${P}from-to-www-redirect`]: 'true' } }) + more;

  it('redirects the www name to the host with http-redirect-code, scheme and port (e2e: from www HTTP to HTTP)', () => {
    const y = yaml('fromtowwwredirect.bar.com');
    assert.equal(
      route(y, { host: 'www.fromtowwwredirect.bar.com', path: '/foo', scheme: 'http', port: '80' }),
      'host-redirect 308 http://fromtowwwredirect.bar.com:80/foo',
    );
    assert.equal(
      route(y, {
        host: 'www.fromtowwwredirect.bar.com:8080',
        path: '/a/?x=1',
        scheme: 'https',
        port: '8443',
      }),
      'host-redirect 308 https://fromtowwwredirect.bar.com:8443/a/?x=1',
    );
    // One trailing slash of the request URI is dropped, as ngx_srv_redirect.lua does.
    assert.equal(
      route(y, { host: 'www.fromtowwwredirect.bar.com', path: '/', scheme: 'https' }),
      'host-redirect 308 https://fromtowwwredirect.bar.com:443',
    );
    assert.match(route(y, { host: 'fromtowwwredirect.bar.com', path: '/', scheme: 'http' }), /^proxy /);
  });

  it('and the other way round; not when an Ingress serves the other name', () => {
    assert.equal(
      route(yaml('www.example.com'), { host: 'example.com', path: '/p', scheme: 'http', port: '80' }),
      'host-redirect 308 http://www.example.com:80/p',
    );
    const both = yaml('www.example.com', ingress({ name: 'bare', host: 'example.com' }));
    assert.match(
      route(both, { host: 'example.com', path: '/p', scheme: 'http' }),
      /^proxy default-svc-80 \/p \(example\.com\)/,
    );
  });

  it('takes the ConfigMap http-redirect-code', () => {
    const y = yaml(
      'a.example',
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ingress-nginx-controller, namespace: ingress-nginx}\ndata: {http-redirect-code: "301"}\n---\n',
    );
    assert.equal(
      route(y, { host: 'www.a.example', path: '/', scheme: 'http', port: '80' }),
      'host-redirect 301 http://a.example:80',
    );
  });
});

describe('x-forwarded-prefix', () => {
  const prefix = (annotations: Record<string, string>, path: string) => {
    const t = topologyOf(
      ingress({
        name: 'x',
        annotations,
        paths: [{ path: '/app(/|$)(.*)', pathType: 'ImplementationSpecific' }],
      }) + service('svc'),
    );
    const d = routeRequest(compileRoutes(t.gateway), { host: 'example.com', path, scheme: 'http' });
    return d.kind === 'proxy' ? [d.upstreamPath, d.forwardedPrefix] : [summary(d)];
  };
  it("only where the location rewrites; $N are the rewrite's captures", () => {
    const rw = { [`${P}rewrite-target`]: '/$2', [`${P}use-regex`]: 'true' };
    assert.deepEqual(prefix({ ...rw, [`${P}x-forwarded-prefix`]: '/app' }, '/app/x/y'), ['/x/y', '/app']);
    assert.deepEqual(prefix({ ...rw, [`${P}x-forwarded-prefix`]: '/p$1$2' }, '/app/x'), ['/x', '/p/x']);
    assert.deepEqual(prefix({ [`${P}use-regex`]: 'true', [`${P}x-forwarded-prefix`]: '/app' }, '/app/x'), [
      '/app/x',
      null,
    ]);
  });
  it('refuses what ingress-nginx refuses', () => {
    const t = topologyOf(
      ingress({
        name: 'x',
        annotations: { [`${P}x-forwarded-prefix`]: '/a b', [`${P}upstream-vhost`]: '$host' },
      }) + service('svc'),
    );
    const loc = t.gateway.virtualHosts[0]!.locations[0]!;
    assert.equal(loc.xForwardedPrefix, undefined);
    assert.equal(loc.upstreamVhost, undefined);
    assert.equal(codes(t.issues).filter((c) => c === 'INVALID_ANNOTATION_VALUE').length, 2);
  });
});

describe('server-alias', () => {
  it("serves the alias with the host's locations and server name (e2e: 200 for 'foo' and 'bar')", () => {
    const y = ingress({ name: 'foo', host: 'foo', annotations: { [`${P}server-alias`]: 'bar' } });
    assert.equal(route(y, { host: 'bar', path: '/', scheme: 'http' }), 'proxy default-svc-80 / (foo)');
    assert.equal(route(y, { host: 'baz', path: '/', scheme: 'http' }), '404 _');
  });

  it('two Ingresses of one host, one alias: every path of the host (e2e: different path with one alias)', () => {
    const y =
      ingress({ name: 'app-a', host: 'foo', paths: [{ path: '/app-a' }] }) +
      ingress({
        name: 'app-b',
        host: 'foo',
        paths: [{ path: '/app-b' }],
        annotations: { [`${P}server-alias`]: 'bar' },
      });
    assert.equal(
      route(y, { host: 'bar', path: '/app-a', scheme: 'http' }),
      'proxy default-svc-80 /app-a (foo)',
    );
  });

  it("wildcard and regex aliases, after exact hosts; never over another Ingress's host", () => {
    const y =
      ingress({
        name: 'main',
        host: 'main.example',
        annotations: { [`${P}server-alias`]: 'other.example, *.alias.example, ~^www\\d+\\.example$' },
      }) + ingress({ name: 'other', host: 'other.example', paths: [{ path: '/', service: 'other' }] });
    const t = topologyOf(y + service('svc') + service('other'));
    const routes = compileRoutes(t.gateway);
    const to = (host: string) => summary(routeRequest(routes, { host, path: '/', scheme: 'http' }));
    assert.equal(to('other.example'), 'proxy default-other-80 / (other.example)');
    assert.equal(to('x.alias.example'), 'proxy default-svc-80 / (main.example)');
    assert.equal(to('WWW42.example'), 'proxy default-svc-80 / (main.example)');
    assert.equal(to('www.example'), '404 _');
    assert.deepEqual(t.gateway.virtualHosts.find((v) => v.host === 'main.example')?.aliases, [
      '*.alias.example',
      '~^www\\d+\\.example$',
    ]);
  });

  it('a ~ alias is PCRE as nginx server_name reads it: POSIX classes and \\z; one without a translation is ignored (ROUTE_INVALID_HOST)', () => {
    const y = ingress({
      name: 'main',
      host: 'main.example',
      annotations: { [`${P}server-alias`]: '~^[[:alpha:]]+\\.pcre\\.example\\z, ~^\\Qq.example\\E' },
    });
    const routes = compileRoutes(topologyOf(y + service('svc')).gateway);
    assert.deepEqual(
      routes.issues.map((i) => i.code),
      ['ROUTE_INVALID_HOST'],
    );
    const to = (host: string) => summary(routeRequest(routes, { host, path: '/', scheme: 'http' }));
    assert.equal(to('abc.pcre.example'), 'proxy default-svc-80 / (main.example)');
    assert.equal(to('a1.pcre.example'), '404 _');
    assert.equal(to('q.example'), '404 _');
  });

  it('a ~ alias that can backtrack without bound is ignored (ROUTE_REGEX_BACKTRACKS); a crafted Host does not hang', () => {
    const y = ingress({
      name: 'main',
      host: 'main.example',
      annotations: { [`${P}server-alias`]: '~^(a+)+\\.example$, ~^www\\d+\\.example$' },
    });
    const routes = compileRoutes(topologyOf(y + service('svc')).gateway);
    assert.deepEqual(
      routes.issues.map((i) => i.code),
      ['ROUTE_REGEX_BACKTRACKS'],
    );
    const to = (host: string) => summary(routeRequest(routes, { host, path: '/', scheme: 'http' }));
    // 40 a's and no ".example": about 2^40 steps for the nested alias, were it matched.
    assert.equal(to(`${'a'.repeat(40)}!`), '404 _');
    assert.equal(to('www7.example'), 'proxy default-svc-80 / (main.example)');
  });

  it("ssl-redirect on an alias only when the host's certificate names it; a regex alias never; force-ssl-redirect always", async () => {
    const { cert, key } = await certificateFor(['main.example', '*.alias.example', 'exact.example']);
    const secret = [
      'apiVersion: v1',
      'kind: Secret',
      'metadata: {name: tls, namespace: default}',
      'type: kubernetes.io/tls',
      'stringData:',
      `  tls.crt: ${JSON.stringify(cert)}`,
      `  tls.key: ${JSON.stringify(key)}`,
      '---',
      '',
    ].join('\n');
    const aliases = 'exact.example, plain.example, *.alias.example, *.other.example, ~^www\\d+\\.example$';
    const site = (force: boolean) =>
      topologyOf(
        secret +
          ingress({
            name: 'main',
            host: 'main.example',
            tls: [{ hosts: ['main.example'], secretName: 'tls' }],
            annotations: {
              [`${P}server-alias`]: aliases,
              ...(force ? { [`${P}force-ssl-redirect`]: 'true' } : {}),
            },
          }) +
          service('svc'),
      );
    const to = (routes: ReturnType<typeof compileRoutes>, host: string) =>
      summary(routeRequest(routes, { host, path: '/a', scheme: 'http' })).split(' ')[0];
    const routes = compileRoutes(site(false).gateway);
    const redirected = ['main.example', 'exact.example', 'x.alias.example'];
    for (const host of redirected) assert.equal(to(routes, host), 'redirect', host);
    for (const host of ['plain.example', 'x.other.example', 'www7.example'])
      assert.equal(to(routes, host), 'proxy', host);
    const forced = compileRoutes(site(true).gateway);
    for (const host of [...redirected, 'plain.example', 'x.other.example', 'www7.example'])
      assert.equal(to(forced, host), 'redirect', host);
  });

  it('an alias that is not a server name drops the annotation, with a warning', () => {
    const t = topologyOf(
      ingress({ name: 'a', annotations: { [`${P}server-alias`]: 'ok.example, bad name;' } }) + service('svc'),
    );
    assert.equal(t.gateway.virtualHosts[0]!.aliases, undefined);
    assert.ok(codes(t.issues).includes('INVALID_ANNOTATION_VALUE'));
  });
});
