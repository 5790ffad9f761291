// The ingress-nginx annotations of issue 20 over real sockets, each case drawn from ingress-nginx's own
// e2e test of it (test/e2e/annotations/<name>.go at release 1.15): a gateway on 127.0.0.1 port 0,
// whoami backends that echo what reached them.
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { certificateFor } from '../fixtures/gateway/certificates.ts';
import { metricSum } from '../helpers/metrics.ts';
import { rawExchange } from '../helpers/net.ts';
import {
  echoOf,
  type Reply,
  request,
  startTestGateway,
  type TestGateway,
} from '../fixtures/gateway/harness.ts';
import {
  configMap,
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';

const json = { accept: 'application/json' };

/** One HTTPS request with SNI `servername` (the certificate is not verified, as the e2e tests do). */
function httpsRequest(
  port: number,
  servername: string,
  path = '/',
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        servername,
        rejectUnauthorized: false,
        agent: false,
        headers: { host: servername, ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The CN of the certificate the gateway presents for `servername`. */
function servedCommonName(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.destroy();
      resolve(Array.isArray(cn) ? cn.join(',') : (cn ?? ''));
    });
    socket.on('error', reject);
  });
}

/** CORS Ingresses of cors.go, one host each: [host, cors-* annotations]. */
const CORS_CASES: Array<[string, Record<string, string>]> = [
  ['cors-default', {}],
  ['cors-methods', { 'cors-allow-methods': 'POST, GET' }],
  ['cors-max-age', { 'cors-max-age': '200' }],
  ['cors-no-credentials', { 'cors-allow-credentials': 'false' }],
  ['cors-origin', { 'cors-allow-origin': 'https://origin.cors.com:8080' }],
  ['cors-headers', { 'cors-allow-headers': 'DNT, User-Agent' }],
  ['cors-expose', { 'cors-expose-headers': 'X-CustomResponseHeader, X-CustomSecondHeader' }],
  [
    'cors-multi',
    { 'cors-allow-origin': 'origin.cors.com:8080, https://origin2.cors.com, https://origin.com' },
  ],
  [
    'cors-trailing',
    { 'cors-allow-origin': 'https://origin-123.cors.com:8080,   ,https://origin-321.cors.com:8080,' },
  ],
  ['cors-wildcard', { 'cors-allow-origin': 'http://*.origin.cors.com, http://*.origin.com:8080' }],
  ['cors-protocols', { 'cors-allow-origin': 'test://localhost, tauri://localhost:3000' }],
  ['cors-spaces', { 'cors-allow-origin': '      ' }],
];

describe('issue 20 annotations over sockets', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;
  let wwwHost: string;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0, name: 'echo' });
    wwwHost = 'fromtowww.example';
    const cert = await certificateFor([wwwHost, `www.${wwwHost}`]);
    const aliasCert = await certificateFor(['tls-alias.example', 'covered-alias.example']);
    const echo = (
      name: string,
      host: string,
      annotations: Record<string, string> = {},
      path = '/',
    ): K8sObject => ingress({ name, host, annotations, paths: [{ path, service: 'echo', port: 80 }] });
    const objects: K8sObject[] = [
      ...serviceWithEndpoints({ name: 'echo', ports: [backend.address.port] }),
      echo('permanent', 'redirect', { 'permanent-redirect': 'http://redirect.example.com' }, '/something'),
      echo(
        'custom-code',
        'redirect-code',
        { 'permanent-redirect': 'http://redirect.example.com', 'permanent-redirect-code': '302' },
        '/something',
      ),
      echo(
        'rr-absolute',
        'rr.foo.com',
        { 'permanent-redirect': '/new-location', 'relative-redirects': 'false' },
        '/something',
      ),
      echo(
        'rr-relative',
        'rr2.foo.com',
        { 'permanent-redirect': '/new-location', 'relative-redirects': 'true' },
        '/something',
      ),
      echo('temporal-path', 'temporal-path', { 'temporal-redirect': '/not-a-url' }),
      echo('temporal', 'temporal', {
        'temporal-redirect': 'https://www.example.org/x?y=z',
        'temporal-redirect-code': '307',
      }),
      echo('www', 'fromtowwwredirect.bar.com', { 'from-to-www-redirect': 'true' }),
      tlsSecret('www-tls', cert.cert, cert.key),
      {
        ...ingress({
          name: 'www-tls',
          host: wwwHost,
          annotations: { 'from-to-www-redirect': 'true' },
          paths: [{ path: '/', service: 'echo', port: 80 }],
        }),
        spec: {
          ingressClassName: 'nginx',
          tls: [{ hosts: [wwwHost, `www.${wwwHost}`], secretName: 'www-tls' }],
          rules: [
            {
              host: wwwHost,
              http: {
                paths: [
                  {
                    path: '/',
                    pathType: 'Prefix',
                    backend: { service: { name: 'echo', port: { number: 80 } } },
                  },
                ],
              },
            },
          ],
        },
      },
      echo('alias', 'foo', { 'server-alias': 'bar' }),
      tlsSecret('alias-tls', aliasCert.cert, aliasCert.key),
      ingress({
        name: 'tls-alias',
        host: 'tls-alias.example',
        tlsSecret: 'alias-tls',
        annotations: { 'server-alias': 'covered-alias.example, uncovered-alias.example' },
        paths: [{ path: '/', service: 'echo', port: 80 }],
      }),
      ...CORS_CASES.map(([host, annotations]) => echo(host, host, { 'enable-cors': 'true', ...annotations })),
      echo('cors-private', 'cors-private', {
        'enable-cors': 'true',
        'allowlist-source-range': '127.0.0.2/32',
      }),
      echo('upstreamvhost', 'upstreamvhost.foo.com', { 'upstream-vhost': 'upstreamvhost.bar.com' }),
      echo('xfp', 'xfp.baz.com', { 'x-forwarded-prefix': '/test/value', 'rewrite-target': '/foo' }),
      echo('noxfp', 'noxfp.baz.com', { 'x-forwarded-prefix': '', 'rewrite-target': '/foo' }),
      echo('xfp-plain', 'xfp-plain.baz.com', { 'x-forwarded-prefix': '/test/value' }),
      echo('nolog', 'nolog.example', { 'enable-access-log': 'false' }),
      echo('forcesslredirect.bar.com', 'forcesslredirect.bar.com', {
        'force-ssl-redirect': 'true',
        'preserve-trailing-slash': 'true',
      }),
      echo('port-in-redirect', 'port-in-redirect.bar.com', {
        'force-ssl-redirect': 'true',
        'use-port-in-redirects': 'true',
      }),
      echo('connection.foo.com', 'connection.foo.com', { 'connection-proxy-header': 'keep-alive' }),
      echo('connection-close', 'connection-close.foo.com', { 'connection-proxy-header': 'close' }),
      echo('app-a', 'two.example', {}, '/app-a'),
      echo('app-b', 'two.example', { 'server-alias': 'alias-of-two.example' }, '/app-b'),
    ];
    gw = await startTestGateway(topologyOf(objects));
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  describe('permanent-redirect permanent-redirect-code (redirect.go)', () => {
    test('should respond with a standard redirect code', async () => {
      const reply = await request(gw.httpPort, { host: 'redirect', path: '/something' });
      assert.equal(reply.status, 301);
      assert.equal(reply.headers.location, 'http://redirect.example.com');
      // Answered by the gateway: the access line names no upstream.
      const line = await gw.access.waitFor(/"GET \/something HTTP\/1\.1" 301 /);
      assert.match(line, /\[default-echo-80\] \[\] - - - - /);
    });

    test('should respond with a custom redirect code', async () => {
      const reply = await request(gw.httpPort, { host: 'redirect-code', path: '/something' });
      assert.equal(reply.status, 302);
      assert.equal(reply.headers.location, 'http://redirect.example.com');
    });

    test('temporal-redirect with temporal-redirect-code', async () => {
      const reply = await request(gw.httpPort, {
        host: 'temporal',
        path: '/anything',
        method: 'POST',
        body: 'x',
      });
      assert.equal(reply.status, 307);
      assert.equal(reply.headers.location, 'https://www.example.org/x?y=z');
    });
  });

  describe('relative-redirects (relativeredirects.go)', () => {
    test('should respond with absolute URL in Location', async () => {
      const reply = await request(gw.httpPort, { host: 'rr.foo.com', path: '/something' });
      assert.equal(reply.status, 301);
      // nginx's absolute_redirect: $scheme://<Host without port> before the path (port_in_redirect off).
      assert.equal(reply.headers.location, 'http://rr.foo.com/new-location');
      const withPort = await request(gw.httpPort, { host: `rr.foo.com:${gw.httpPort}`, path: '/something' });
      assert.equal(withPort.headers.location, 'http://rr.foo.com/new-location');
    });

    test('should respond with relative URL in Location', async () => {
      const reply = await request(gw.httpPort, { host: 'rr2.foo.com', path: '/something' });
      assert.equal(reply.status, 301);
      assert.equal(reply.headers.location, '/new-location');
    });

    test('temporal-redirect must be an http(s) URL: a path is refused (no redirect)', async () => {
      const reply = await request(gw.httpPort, { host: 'temporal-path', path: '/', headers: json });
      assert.equal(reply.status, 200);
    });
  });

  describe('from-to-www-redirect (fromtowwwredirect.go)', () => {
    test('should redirect from www HTTP to HTTP', async () => {
      const reply = await request(gw.httpPort, { host: 'www.fromtowwwredirect.bar.com', path: '/foo' });
      assert.equal(reply.status, 308);
      // ingress-nginx listens on 80; keepip's test listener has its own port, which the Location keeps.
      assert.equal(reply.headers.location, `http://fromtowwwredirect.bar.com:${gw.httpPort}/foo`);
      const direct = await request(gw.httpPort, {
        host: 'fromtowwwredirect.bar.com',
        path: '/foo',
        headers: json,
      });
      assert.equal(direct.status, 200);
      assert.equal(echoOf(direct).headers.host, 'fromtowwwredirect.bar.com');
    });

    test('should redirect from www HTTPS to HTTPS', async () => {
      // The host's certificate names both, so the www twin is served with it (not the default one).
      assert.equal(await servedCommonName(gw.httpsPort, `www.${wwwHost}`), wwwHost);
      const reply = await httpsRequest(gw.httpsPort, `www.${wwwHost}`);
      assert.equal(reply.status, 308);
      assert.equal(reply.headers.location, `https://${wwwHost}:${gw.httpsPort}`);
      // The domain itself is not redirected to www.
      const direct = await httpsRequest(gw.httpsPort, wwwHost, '/', json);
      assert.equal(direct.status, 200);
      assert.equal(echoOf(direct).headers.host, wwwHost);
    });
  });

  describe('enable-cors cors-* (cors.go)', () => {
    const get = (host: string, origin?: string, method = 'GET') =>
      request(gw.httpPort, { host, method, headers: origin === undefined ? {} : { origin } });
    const allowed = async (host: string, origin: string) =>
      (await get(host, origin)).headers['access-control-allow-origin'];

    test('should enable cors: every response carries the default CORS headers', async () => {
      const reply = await get('cors-default');
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['access-control-allow-origin'], '*');
      assert.equal(reply.headers['access-control-allow-methods'], 'GET, PUT, POST, DELETE, PATCH, OPTIONS');
      assert.equal(
        reply.headers['access-control-allow-headers'],
        'DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization',
      );
      assert.equal(reply.headers['access-control-max-age'], '1728000');
      assert.equal(reply.headers['access-control-allow-credentials'], 'true');
      assert.equal(reply.headers['access-control-expose-headers'], undefined);
    });

    test('a preflight is answered 204 by the gateway; the backend never sees it', async () => {
      const reply = await get('cors-default', 'https://any.example', 'OPTIONS');
      assert.equal(reply.status, 204);
      assert.equal(reply.body, '');
      // The template's Content-Type is dropped from a 204, as nginx's header filter does; its length stays.
      assert.equal(reply.headers['content-type'], undefined);
      assert.equal(reply.headers['content-length'], '0');
      assert.equal(reply.headers['access-control-allow-origin'], '*');
      const line = await gw.access.waitFor(/"OPTIONS \/ HTTP\/1\.1" 204 /);
      assert.match(line, /\[default-echo-80\] \[\] - - - - /);
      // nginx's status line for a 204.
      const raw = await rawExchange({
        host: '127.0.0.1',
        port: gw.httpPort,
        payload:
          'OPTIONS / HTTP/1.1\r\nHost: cors-default\r\nOrigin: https://any.example\r\nConnection: close\r\n\r\n',
      });
      assert.match(raw.received.toString('latin1'), /^HTTP\/1\.1 204 No Content\r\n/);
    });

    test('should set cors methods, max-age, credentials, allowed and exposed headers', async () => {
      assert.equal((await get('cors-methods')).headers['access-control-allow-methods'], 'POST, GET');
      assert.equal((await get('cors-max-age')).headers['access-control-max-age'], '200');
      assert.equal((await get('cors-no-credentials')).headers['access-control-allow-credentials'], undefined);
      assert.equal((await get('cors-headers')).headers['access-control-allow-headers'], 'DNT, User-Agent');
      assert.equal(
        (await get('cors-expose')).headers['access-control-expose-headers'],
        'X-CustomResponseHeader, X-CustomSecondHeader',
      );
    });

    test('should allow origin for cors, and only the listed ones', async () => {
      assert.equal(
        await allowed('cors-origin', 'https://origin.cors.com:8080'),
        'https://origin.cors.com:8080',
      );
      // single origin with port: the same origin without it is not allowed, nor another port.
      assert.equal(await allowed('cors-origin', 'https://origin.cors.com'), undefined);
      assert.equal(await allowed('cors-origin', 'https://origin.cors.com:8081'), undefined);
      assert.equal((await get('cors-origin')).headers['access-control-allow-origin'], undefined);
      // an origin that is not allowed still gets its answer (the browser blocks it), and a preflight goes on.
      const other = await get('cors-origin', 'http://no.origin.com', 'OPTIONS');
      assert.equal(other.status, 200);
      assert.equal(other.headers['access-control-allow-origin'], undefined);
    });

    test('should allow correct origins - single origin for multiple cors values', async () => {
      assert.equal(await allowed('cors-multi', 'origin.cors.com:8080'), undefined);
      assert.equal(await allowed('cors-multi', 'https://origin2.cors.com'), 'https://origin2.cors.com');
      assert.equal(await allowed('cors-multi', 'https://origin.com'), 'https://origin.com');
      assert.equal(await allowed('cors-multi', 'https://ORIGIN.com'), 'https://ORIGIN.com');
    });

    test('trailing comma and empty entries; missing origins allow all', async () => {
      assert.equal(
        await allowed('cors-trailing', 'https://origin-321.cors.com:8080'),
        'https://origin-321.cors.com:8080',
      );
      assert.equal(await allowed('cors-trailing', 'http://origin-321.cors.com:8080'), undefined);
      assert.equal(await allowed('cors-spaces', 'http://origin.com'), '*');
    });

    test('wildcard origins match one label; origins with non-http[s] protocols', async () => {
      assert.equal(
        await allowed('cors-wildcard', 'http://foo.origin.cors.com'),
        'http://foo.origin.cors.com',
      );
      assert.equal(
        await allowed('cors-wildcard', 'http://bar-foo.origin.cors.com'),
        'http://bar-foo.origin.cors.com',
      );
      assert.equal(await allowed('cors-wildcard', 'http://bar.foo.origin.cors.com'), undefined);
      assert.equal(
        await allowed('cors-wildcard', 'http://abc.origin.com:8080'),
        'http://abc.origin.com:8080',
      );
      assert.equal(await allowed('cors-wildcard', 'http://abc.origin.com'), undefined);
      assert.equal(await allowed('cors-protocols', 'test://localhost'), 'test://localhost');
      assert.equal(await allowed('cors-protocols', 'tauri://localhost:3000'), 'tauri://localhost:3000');
    });

    test('as nginx: the preflight comes before the allowlist, and a refusal carries the headers too', async () => {
      const preflight = await request(gw.httpPort, {
        from: '127.0.0.3',
        host: 'cors-private',
        method: 'OPTIONS',
      });
      assert.equal(preflight.status, 204);
      const denied = await request(gw.httpPort, { from: '127.0.0.3', host: 'cors-private' });
      assert.equal(denied.status, 403);
      assert.equal(denied.headers['access-control-allow-origin'], '*');
    });
  });

  describe('upstream-vhost (upstreamvhost.go), x-forwarded-prefix (xforwardedprefix.go)', () => {
    test("upstream-vhost: the backend gets that Host; X-Forwarded-Host stays the client's", async () => {
      const echo = echoOf(await request(gw.httpPort, { host: 'upstreamvhost.foo.com', headers: json }));
      assert.equal(echo.headers.host, 'upstreamvhost.bar.com');
      assert.equal(echo.headers['x-forwarded-host'], 'upstreamvhost.foo.com');
    });

    test('should set the X-Forwarded-Prefix to the annotation value', async () => {
      const reply = await request(gw.httpPort, {
        host: 'xfp.baz.com',
        headers: { ...json, 'x-forwarded-prefix': '/forged' },
      });
      assert.equal(reply.status, 200);
      assert.equal(echoOf(reply).headers['x-forwarded-prefix'], '/test/value');
      assert.equal(echoOf(reply).url, '/foo');
    });

    test('should not add X-Forwarded-Prefix if the annotation value is empty, nor without a rewrite', async () => {
      for (const host of ['noxfp.baz.com', 'xfp-plain.baz.com']) {
        const echo = echoOf(await request(gw.httpPort, { host, headers: json }));
        assert.equal(echo.headers['x-forwarded-prefix'], undefined, host);
      }
    });
  });

  describe('enable-access-log (log.go)', () => {
    test("set access_log off: the location's requests get no access log line", async () => {
      assert.equal(
        (await request(gw.httpPort, { host: 'nolog.example', path: '/not-logged-here' })).status,
        200,
      );
      // A later request that is logged proves the first had its chance to be.
      assert.equal((await request(gw.httpPort, { host: 'foo', path: '/logged-marker' })).status, 200);
      await gw.access.waitFor(/GET \/logged-marker /);
      assert.deepEqual(
        gw.access.lines.filter((l) => l.includes('/not-logged-here')),
        [],
      );
    });
  });

  describe('preserve-trailing-slash (preservetrailingslash.go), use-port-in-redirects, connection-proxy-header (connection.go)', () => {
    test('should allow preservation of trailing slashes', async () => {
      const reply = await request(gw.httpPort, { host: 'forcesslredirect.bar.com', path: '/' });
      assert.equal(reply.status, 308);
      assert.equal(reply.headers.location, 'https://forcesslredirect.bar.com/');
      // Without it, one trailing slash is dropped.
      assert.equal(
        (await request(gw.httpPort, { host: 'port-in-redirect.bar.com', path: '/a/' })).headers.location,
        'https://port-in-redirect.bar.com:443/a',
      );
    });

    test('set connection header to keep-alive, or close', async () => {
      const keep = echoOf(await request(gw.httpPort, { host: 'connection.foo.com', headers: json }));
      assert.equal(keep.headers.connection, 'keep-alive');
      const close = echoOf(await request(gw.httpPort, { host: 'connection-close.foo.com', headers: json }));
      assert.equal(close.headers.connection, 'close');
    });
  });

  describe('server-alias (alias.go)', () => {
    test("should return status code 200 for host 'foo' and 'bar'", async () => {
      for (const host of ['foo', 'bar']) {
        const reply = await request(gw.httpPort, { host, headers: json });
        assert.equal(reply.status, 200, host);
        assert.equal(echoOf(reply).headers.host, host);
      }
      assert.equal((await request(gw.httpPort, { host: 'baz' })).status, 404);
    });

    test('should return status code 200 for hosts defined in two ingresses, different path with one alias', async () => {
      for (const host of ['two.example', 'alias-of-two.example']) {
        const reply = await request(gw.httpPort, { host, path: '/app-a', headers: json });
        assert.equal(reply.status, 200, host);
        assert.equal(echoOf(reply).headers.host, host);
      }
      // Logged under the host's upstream, as any request of the host.
      await gw.access.waitFor(/"GET \/app-a HTTP\/1\.1" 200 .*\[default-echo-80\]/);
    });

    test("ssl-redirect on an alias only when the host's certificate names it (certificate_servers)", async () => {
      // ingress-nginx's redirect_to_https asks configured_for_current_request(): an alias is in its
      // certificate table only when the host's certificate covers it (configureCertificates).
      for (const host of ['tls-alias.example', 'covered-alias.example']) {
        const reply = await request(gw.httpPort, { host, path: '/a' });
        assert.equal(reply.status, 308, host);
        assert.equal(reply.headers.location, `https://${host}/a`);
      }
      const plain = await request(gw.httpPort, {
        host: 'uncovered-alias.example',
        path: '/a',
        headers: json,
      });
      assert.equal(plain.status, 200);
      assert.equal(echoOf(plain).headers.host, 'uncovered-alias.example');
    });
  });
});

describe('custom-headers (customheaders.go), add-headers and proxy-set-headers (settings/custom_header.go)', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0, name: 'echo' });
    const echo = (name: string, annotations: Record<string, string> = {}): K8sObject =>
      ingress({ name, host: name, annotations, paths: [{ path: '/', service: 'echo', port: 80 }] });
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'echo', ports: [backend.address.port] }),
        controllerConfigMap({
          'global-allowed-response-headers': 'My-Custom-Header,My-Custom-Header-Dollar',
          'add-headers': 'ingress-nginx/add-headers-configmap',
          'proxy-set-headers': 'ingress-nginx/proxy-headers',
          'disable-access-log': 'true',
        }),
        configMap('add-headers-configmap', 'ingress-nginx', {
          'X-First': 'Prepare for trouble!',
          'X-Second': 'And make it double!',
        }),
        configMap('proxy-headers', 'ingress-nginx', {
          'X-Custom': 'from-the-gateway',
          'X-Client': '$remote_addr $request_method',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's ${name} form (New Relic's)
          'X-Request-Start': 't=${msec}',
          'X-Correlation-Id': '$req_id',
        }),
        configMap('custom-headers', 'default', {
          'My-Custom-Header': '42',
          'My-Custom-Header-Dollar': '$remote_addr',
        }),
        configMap('not-allowed', 'default', { 'X-Not-Listed': '1' }),
        echo('custom-headers-none'),
        echo('custom-headers-missing', { 'custom-headers': 'default/nothing-here' }),
        echo('custom-headers', { 'custom-headers': 'default/custom-headers' }),
        echo('custom-headers-not-allowed', { 'custom-headers': 'default/not-allowed' }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  test('should return status code 200 when no custom-headers is configured', async () => {
    const reply = await request(gw.httpPort, { host: 'custom-headers-none' });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['my-custom-header'], undefined);
  });

  test('should return status code 503 when custom-headers is configured with an invalid secret', async () => {
    const reply = await request(gw.httpPort, { host: 'custom-headers-missing' });
    assert.equal(reply.status, 503);
    assert.match(reply.body, /503 Service Temporarily Unavailable/);
    // A header global-allowed-response-headers does not list denies the location too.
    assert.equal((await request(gw.httpPort, { host: 'custom-headers-not-allowed' })).status, 503);
  });

  test("should set \"more_set_headers 'My-Custom-Header' '42';\" when custom-headers are set", async () => {
    const reply = await request(gw.httpPort, { host: 'custom-headers' });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['my-custom-header'], '42');
    // Sent as written: not an nginx variable.
    assert.equal(reply.headers['my-custom-header-dollar'], '$remote_addr');
  });

  test("add-headers: multiple custom headers on every response, the gateway's own 404 included", async () => {
    for (const host of ['custom-headers-none', 'nobody.example']) {
      const reply = await request(gw.httpPort, { host });
      assert.equal(reply.headers['x-first'], 'Prepare for trouble!', host);
      assert.equal(reply.headers['x-second'], 'And make it double!', host);
    }
  });

  test('disable-access-log (settings/access_log.go): no access log line at all', async () => {
    assert.equal(
      (await request(gw.httpPort, { host: 'custom-headers-none', path: '/unlogged' })).status,
      200,
    );
    const counted = async () =>
      metricSum(await gw.gateway.metrics.registry.metrics(), 'keepip_gateway_requests_total', {
        host: 'custom-headers-none',
      });
    // The request is counted when it ends, in the same step as its log line would be written.
    for (let i = 0; i < 1500 && (await counted()) < 1; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok((await counted()) >= 1, 'the request was counted');
    assert.deepEqual(gw.access.lines, []);
  });

  test('proxy-set-headers: request headers to the backend, nginx variables expanded', async () => {
    const echo = echoOf(
      await request(gw.httpPort, { from: '127.0.0.7', host: 'custom-headers-none', headers: json }),
    );
    assert.equal(echo.headers['x-custom'], 'from-the-gateway');
    assert.equal(echo.headers['x-client'], '127.0.0.7 GET');
  });

  test('proxy-set-headers: $msec is the time the request went out, $req_id the X-Request-ID the backend gets', async () => {
    const before = Date.now();
    const echo = echoOf(await request(gw.httpPort, { host: 'custom-headers-none', headers: json }));
    const start = /^t=(\d+)\.(\d{3})$/.exec(echo.headers['x-request-start'] ?? '');
    assert.ok(start, `X-Request-Start: ${echo.headers['x-request-start']}`);
    const ms = Number(start[1]) * 1000 + Number(start[2]);
    assert.ok(ms >= before && ms <= Date.now(), `${ms} not within the request`);
    assert.match(echo.headers['x-correlation-id'] ?? '', /^[0-9a-f]{32}$/);
    assert.equal(echo.headers['x-correlation-id'], echo.headers['x-request-id']);
  });
});
