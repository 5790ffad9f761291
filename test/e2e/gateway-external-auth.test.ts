// External auth end to end (auth-url and companions, global-auth-*, satisfy), drawn from what
// ingress-nginx's e2e tests for auth-* and global-auth-url assert, against an auth server of our own:
// the subrequest's headers, 2xx / 401 / 403 / other statuses, the sign-in redirect, auth-response-headers,
// the auth cookie, the answer cache, an invalid auth-url, global auth with its exemptions, satisfy any,
// and the oauth2-proxy pattern from the first 302 to the signed-in request.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, Server } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { echoOf, request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

/** The auth service: httpbun-like routes plus an oauth2-proxy-like /oauth2/*. */
function startAuthServer(): Promise<{
  server: Server;
  port: number;
  seen: IncomingHttpHeaders[];
  calls: () => number;
  setDown(down: boolean): void;
}> {
  const seen: IncomingHttpHeaders[] = [];
  let down = false;
  const server = http.createServer((req, res) => {
    seen.push({ ...req.headers, ':method': req.method, ':path': req.url });
    const url = req.url ?? '/';
    if (down) return void res.writeHead(500).end();
    const basic = /^\/basic-auth\/([^/]+)\/([^/]+)$/.exec(url);
    if (basic) {
      const want = `Basic ${Buffer.from(`${basic[1]}:${basic[2]}`).toString('base64')}`;
      if (req.headers.authorization === want)
        return void res.writeHead(200, { 'x-auth-user': basic[1]! }).end('{}');
      return void res.writeHead(401, { 'www-authenticate': 'Basic realm="Fake Realm"' }).end();
    }
    const cookie = /^\/cookies\/set\/([^/]+)\/([^/]+)$/.exec(url);
    if (cookie) return void res.writeHead(200, { 'set-cookie': `${cookie[1]}=${cookie[2]}` }).end('OK');
    // An answer with one header of the test's choosing: /answer/<status>/<name>/<url-encoded value>.
    const answer = /^\/answer\/(\d+)\/([a-z-]+)\/([^/]+)$/.exec(url);
    if (answer)
      return void res.writeHead(Number(answer[1]), { [answer[2]!]: decodeURIComponent(answer[3]!) }).end();
    const status = /^\/status\/(\d+)$/.exec(url);
    if (status) return void res.writeHead(Number(status[1])).end();
    if (url === '/oauth2/auth') {
      if ((req.headers.cookie ?? '').includes('_oauth2_proxy=alice'))
        return void res
          .writeHead(202, { 'x-auth-request-user': 'alice', 'x-auth-request-email': 'alice@example.com' })
          .end();
      return void res.writeHead(401).end();
    }
    if (url.startsWith('/oauth2/callback')) {
      const rd = new URL(url, 'http://x').searchParams.get('rd') ?? '/';
      return void res
        .writeHead(302, { location: rd, 'set-cookie': '_oauth2_proxy=alice; Path=/; HttpOnly' })
        .end();
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        seen,
        calls: () => seen.length,
        setDown: (d) => {
          down = d;
        },
      }),
    ),
  );
}

/** A backend that answers 503 on /error and 200 elsewhere (the cookie tests' nginx). */
function startErrorBackend(): Promise<{ server: Server; port: number }> {
  const server = http.createServer((req, res) => {
    res.writeHead(req.url?.startsWith('/error') ? 503 : 200, { 'content-type': 'text/plain' }).end('ok');
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port })),
  );
}

const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});
const json = { accept: 'application/json' };

describe('external auth (auth-url)', () => {
  let echo: RunningWhoami;
  let auth: Awaited<ReturnType<typeof startAuthServer>>;
  let errorBackend: Awaited<ReturnType<typeof startErrorBackend>>;
  let gw: TestGateway;
  let global: TestGateway;
  let authBase: string;

  before(async () => {
    echo = await startWhoami({ host: '127.0.0.1', port: 0, name: 'echo' });
    auth = await startAuthServer();
    errorBackend = await startErrorBackend();
    authBase = `http://127.0.0.1:${auth.port}`;
    const bcrypt = (
      await runCommand(requireBinary('htpasswd'), ['-nbB', '-C', '4', 'uname', 'pwd'])
    ).stdout.trim();
    const route = (
      name: string,
      host: string,
      annotations: Record<string, string>,
      path = '/',
      service = 'echo',
    ) => ingress({ name, host, paths: [{ path, service, port: 80 }], annotations });
    const objects: K8sObject[] = [
      ...serviceWithEndpoints({ name: 'echo', ports: [echo.address.port] }),
      ...serviceWithEndpoints({ name: 'errors', ports: [errorBackend.port] }),
      ...serviceWithEndpoints({ name: 'oauth2-proxy', ports: [auth.port] }),
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'basic-secret', namespace: 'default' },
        data: { auth: Buffer.from(`${bcrypt}\n`).toString('base64') },
      },
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'auth-headers', namespace: 'default' },
        data: { 'My-Custom-Header': '42' },
      },
      route('auth', 'auth', {
        'auth-url': `${authBase}/basic-auth/user/password`,
        'auth-signin': 'http://$host/auth/start',
        'auth-response-headers': 'Foo, X-Auth-User',
        'auth-proxy-set-headers': 'auth-headers',
      }),
      route('param', 'param', {
        'auth-url': `${authBase}/basic-auth/user/password`,
        'auth-signin': 'http://$host/auth/start',
        'auth-signin-redirect-param': 'orig',
      }),
      route('nosignin', 'nosignin', { 'auth-url': `${authBase}/basic-auth/user/password` }),
      route('forbidden', 'forbidden', { 'auth-url': `${authBase}/status/403` }),
      route('broken', 'broken', { 'auth-url': `${authBase}/status/302` }),
      route('method', 'method', {
        'auth-url': `${authBase}/status/200`,
        'auth-method': 'POST',
        'auth-request-redirect': 'http://login.example/x',
      }),
      route('invalid', 'invalid', { 'auth-url': 'https://invalid..auth.url' }, '/denied-auth'),
      route(
        'cookies',
        'cookies',
        { 'auth-url': `${authBase}/cookies/set/alma/armud`, 'auth-signin': 'http://$host/auth/start' },
        '/',
        'errors',
      ),
      route(
        'cookies-always',
        'cookies-always',
        {
          'auth-url': `${authBase}/cookies/set/alma/armud`,
          'auth-always-set-cookie': 'true',
        },
        '/',
        'errors',
      ),
      ...['cache-this', 'cache-that'].flatMap((host) =>
        ['/foo', '/bar'].map((path) =>
          route(
            `${host}${path.replace('/', '-')}`,
            host,
            {
              'auth-url': `${authBase}/basic-auth/user/password`,
              'auth-cache-key': 'fixed',
              'auth-cache-duration': '200 201 401 30m',
            },
            path,
          ),
        ),
      ),
      route('cache-by-header', 'cache-by-header', {
        'auth-url': `${authBase}/answer/403/cache-control/max-age=600`,
        'auth-cache-key': 'fixed',
        'auth-cache-duration': '200 30m',
      }),
      route('cache-refused', 'cache-refused', {
        'auth-url': `${authBase}/answer/200/x-accel-expires/0`,
        'auth-cache-key': 'fixed',
        'auth-cache-duration': '200 30m',
      }),
      route('satisfy', 'satisfy', {
        'auth-type': 'basic',
        'auth-secret': 'basic-secret',
        'auth-realm': 'test basic auth',
        'auth-url': `${authBase}/basic-auth/user/password`,
        'auth-signin': 'http://$host/auth/start',
        satisfy: 'any',
      }),
      route('satisfy-headers', 'satisfy-headers', {
        'auth-type': 'basic',
        'auth-secret': 'basic-secret',
        'auth-url': `${authBase}/basic-auth/user/password`,
        'auth-response-headers': 'X-Auth-User',
        satisfy: 'any',
      }),
      route('satisfy-allowlist', 'satisfy-allowlist', {
        'allowlist-source-range': '127.0.0.1/32',
        'auth-url': `${authBase}/basic-auth/user/password`,
        'auth-response-headers': 'X-Auth-User',
        satisfy: 'any',
      }),
      route('app', 'app.example', {
        'auth-url': `${authBase}/oauth2/auth`,
        'auth-signin': 'http://$host/oauth2/start?rd=$escaped_request_uri',
        'auth-response-headers': 'X-Auth-Request-User, X-Auth-Request-Email',
      }),
      route('app-oauth2', 'app.example', {}, '/oauth2', 'oauth2-proxy'),
    ];
    gw = await startTestGateway(topologyOf(objects));
    const globalObjects: K8sObject[] = [
      ...serviceWithEndpoints({ name: 'echo', ports: [echo.address.port] }),
      controllerConfigMap({ 'global-auth-url': `${authBase}/status/401`, 'no-auth-locations': '/public' }),
      route('foo', 'global', {}, '/foo'),
      route('bar', 'global', { 'enable-global-auth': 'false' }, '/bar'),
      route('public', 'global', {}, '/public'),
      route('own', 'global', { 'auth-url': `${authBase}/status/200` }, '/own'),
    ];
    global = await startTestGateway(topologyOf(globalObjects));
  });

  after(async () => {
    await gw?.close();
    await global?.close();
    await echo?.close();
    auth?.server.close();
    errorBackend?.server.close();
  });

  test('signed in (the auth service says 2xx): 200', async () => {
    const reply = await request(gw.httpPort, {
      host: 'auth',
      headers: { ...basic('user', 'password'), ...json },
    });
    assert.equal(reply.status, 200);
  });

  test('the subrequest carries what ingress-nginx sends', async () => {
    const before = auth.calls();
    await request(gw.httpPort, {
      from: '127.0.0.7',
      host: 'auth',
      path: '/some/path?x=1',
      method: 'POST',
      body: 'body',
      headers: { ...basic('user', 'password'), 'x-original-url': 'http://evil/', 'x-forwarded-host': 'evil' },
    });
    const seen = auth.seen[before]!;
    assert.equal(seen[':method'], 'GET');
    assert.equal(seen[':path'], '/basic-auth/user/password');
    assert.equal(seen.host, '127.0.0.1');
    assert.equal(seen['x-original-url'], 'http://auth/some/path?x=1');
    assert.equal(seen['x-original-method'], 'POST');
    assert.equal(seen['x-sent-from'], 'nginx-ingress-controller');
    assert.equal(seen['x-real-ip'], '127.0.0.7');
    assert.equal(seen['x-forwarded-for'], '127.0.0.7');
    assert.equal(seen['x-auth-request-redirect'], '/some/path?x=1');
    assert.equal(seen['my-custom-header'], '42');
    assert.equal(seen['content-length'], undefined);
    assert.equal(seen['x-forwarded-host'], undefined, 'a client cannot tell the auth service another host');
    assert.ok(typeof seen['x-request-id'] === 'string' && seen['x-request-id'].length > 0);
  });

  test('auth-method: the method, X-Original-URI and X-Scheme; auth-request-redirect', async () => {
    const before = auth.calls();
    const reply = await request(gw.httpPort, { host: 'method', path: '/p?q' });
    assert.equal(reply.status, 200);
    const seen = auth.seen[before]!;
    assert.equal(seen[':method'], 'POST');
    assert.equal(seen['x-original-uri'], '/p?q');
    assert.equal(seen['x-scheme'], 'http');
    assert.equal(seen['x-auth-request-redirect'], 'http://login.example/x');
  });

  test('not signed in: 302 to auth-signin with rd (and a custom redirect param)', async () => {
    const reply = await request(gw.httpPort, { host: 'auth', path: '/?a=b&c=d' });
    assert.equal(reply.status, 302);
    assert.equal(
      reply.headers.location,
      `http://auth/auth/start?rd=http://auth${encodeURIComponent('/?a=b&c=d')}`,
    );
    const param = await request(gw.httpPort, { host: 'param', path: '/?a=b&c=d' });
    assert.equal(param.status, 302);
    assert.equal(
      param.headers.location,
      `http://param/auth/start?orig=http://param${encodeURIComponent('/?a=b&c=d')}`,
    );
  });

  test('401 without auth-signin: 401 with the auth service WWW-Authenticate; 403 is 403; another status is 500', async () => {
    const unauthorized = await request(gw.httpPort, { host: 'nosignin' });
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.headers['www-authenticate'], 'Basic realm="Fake Realm"');
    assert.equal((await request(gw.httpPort, { host: 'forbidden' })).status, 403);
    assert.equal((await request(gw.httpPort, { host: 'broken' })).status, 500);
    await gw.errors.waitFor(
      /auth request unexpected status: 302 \(nginx\.ingress\.kubernetes\.io\/auth-url\)/,
    );
  });

  test('auth-response-headers overwrite what the client sent', async () => {
    const reply = await request(gw.httpPort, {
      host: 'auth',
      headers: { ...basic('user', 'password'), foo: 'bar', 'x-auth-user': 'mallory', ...json },
    });
    assert.equal(reply.status, 200);
    const headers = echoOf(reply).headers;
    assert.equal(headers.foo, undefined);
    assert.equal(headers['x-auth-user'], 'user');
  });

  test('an invalid auth-url denies the location: 503', async () => {
    assert.equal((await request(gw.httpPort, { host: 'invalid', path: '/denied-auth' })).status, 503);
    await gw.errors.waitFor(/could not parse auth-url: invalid url host/);
  });

  test('the auth cookie: kept on success, not on an upstream error, unless auth-always-set-cookie', async () => {
    const ok = await request(gw.httpPort, { host: 'cookies', path: '/?a=b' });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.headers['set-cookie'], ['alma=armud']);
    const error = await request(gw.httpPort, { host: 'cookies', path: '/error' });
    assert.equal(error.status, 503);
    assert.equal(error.headers['set-cookie'], undefined);
    const always = await request(gw.httpPort, { host: 'cookies-always', path: '/error' });
    assert.equal(always.status, 503);
    assert.deepEqual(always.headers['set-cookie'], ['alma=armud']);
  });

  test('auth-cache-key: cached per server and location while the auth service is down', async () => {
    const creds = basic('user', 'password');
    assert.equal(
      (await request(gw.httpPort, { host: 'cache-this', path: '/foo', headers: creds })).status,
      200,
    );
    auth.setDown(true);
    try {
      assert.equal(
        (await request(gw.httpPort, { host: 'cache-this', path: '/foo', headers: creds })).status,
        200,
      );
      assert.equal(
        (await request(gw.httpPort, { host: 'cache-this', path: '/bar', headers: creds })).status,
        500,
      );
      assert.equal(
        (await request(gw.httpPort, { host: 'cache-that', path: '/foo', headers: creds })).status,
        500,
      );
    } finally {
      auth.setDown(false);
    }
  });

  test("auth-cache-key: the answer's own Cache-Control and X-Accel-Expires decide, as nginx's proxy cache", async () => {
    // A 403 with max-age=600 is kept though auth-cache-duration lists only 200; a 200 with
    // X-Accel-Expires: 0 is not kept though it does.
    assert.equal((await request(gw.httpPort, { host: 'cache-by-header' })).status, 403);
    assert.equal((await request(gw.httpPort, { host: 'cache-refused' })).status, 200);
    auth.setDown(true);
    try {
      assert.equal((await request(gw.httpPort, { host: 'cache-by-header' })).status, 403, 'from the cache');
      assert.equal((await request(gw.httpPort, { host: 'cache-refused' })).status, 500, 'asked again');
    } finally {
      auth.setDown(false);
    }
  });

  test('satisfy any: basic credentials admit; without them the final 401 goes to the sign-in', async () => {
    assert.equal(
      (await request(gw.httpPort, { host: 'satisfy', headers: basic('uname', 'pwd') })).status,
      200,
    );
    const reply = await request(gw.httpPort, { host: 'satisfy', path: '/?a=b&c=d' });
    assert.equal(reply.status, 302);
    assert.equal(
      reply.headers.location,
      `http://satisfy/auth/start?rd=http://satisfy${encodeURIComponent('/?a=b&c=d')}`,
    );
  });

  test("satisfy any: admitted without the subrequest, the backend never gets the client's auth-response-headers", async () => {
    // nginx's proxy_set_header 'X-Auth-User' $authHeader0 stands whatever admitted the request: when
    // basic auth or the allowlist admits first, auth_request_set never ran and the header is not sent.
    const viaBasic = await request(gw.httpPort, {
      host: 'satisfy-headers',
      headers: { ...basic('uname', 'pwd'), 'x-auth-user': 'mallory', ...json },
    });
    assert.equal(viaBasic.status, 200);
    assert.equal(echoOf(viaBasic).headers['x-auth-user'], undefined);
    const viaAllowlist = await request(gw.httpPort, {
      host: 'satisfy-allowlist',
      headers: { 'x-auth-user': 'mallory', ...json },
    });
    assert.equal(viaAllowlist.status, 200);
    assert.equal(echoOf(viaAllowlist).headers['x-auth-user'], undefined);
    // A client outside the allowlist still goes through the auth service, whose answer sets the header.
    const viaAuth = await request(gw.httpPort, {
      from: '127.0.0.2',
      host: 'satisfy-allowlist',
      headers: { ...basic('user', 'password'), 'x-auth-user': 'mallory', ...json },
    });
    assert.equal(viaAuth.status, 200);
    assert.equal(echoOf(viaAuth).headers['x-auth-user'], 'user');
  });

  test('the oauth2-proxy pattern end to end: 302 to sign in, the callback sets the cookie, then 200 as alice', async () => {
    const first = await request(gw.httpPort, { host: 'app.example', path: '/dashboard?tab=1' });
    assert.equal(first.status, 302);
    const signin = new URL(first.headers.location!);
    assert.equal(signin.pathname, '/oauth2/start');
    assert.equal(signin.searchParams.get('rd'), '/dashboard?tab=1');
    // The sign-in flow ends at the callback (served through the gateway by /oauth2), which sets the cookie.
    const callback = await request(gw.httpPort, {
      host: 'app.example',
      path: `/oauth2/callback?rd=${encodeURIComponent('/dashboard?tab=1')}`,
    });
    assert.equal(callback.status, 302);
    const cookie = String(callback.headers['set-cookie']?.[0]).split(';')[0]!;
    const signedIn = await request(gw.httpPort, {
      host: 'app.example',
      path: callback.headers.location!,
      headers: { cookie, ...json },
    });
    assert.equal(signedIn.status, 200);
    const headers = echoOf(signedIn).headers;
    assert.equal(headers['x-auth-request-user'], 'alice');
    assert.equal(headers['x-auth-request-email'], 'alice@example.com');
    assert.equal(echoOf(signedIn).url, '/dashboard?tab=1');
  });

  test('global-auth-url: 401 everywhere, except enable-global-auth false, no-auth-locations and an own auth-url', async () => {
    assert.equal((await request(global.httpPort, { host: 'global', path: '/foo' })).status, 401);
    assert.equal((await request(global.httpPort, { host: 'global', path: '/bar' })).status, 200);
    assert.equal((await request(global.httpPort, { host: 'global', path: '/public' })).status, 200);
    assert.equal((await request(global.httpPort, { host: 'global', path: '/own' })).status, 200);
  });
});
