// affinity: cookie and session-cookie-* over real sockets, each case drawn from ingress-nginx's e2e
// tests test/e2e/annotations/affinity.go, affinitymode.go and canary.go ("canary affinity behavior"),
// release 1.15: two whoami endpoints behind one Service, Set-Cookie read as a browser would.
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import {
  echoOf,
  type Reply,
  request,
  startTestGateway,
  type TestGateway,
} from '../fixtures/gateway/harness.ts';
import { ingress, type K8sObject, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';

const json = { accept: 'application/json' };

function setCookie(reply: Reply): string {
  const value = reply.headers['set-cookie'];
  return value === undefined ? '' : value.join('\n');
}

/** `name=value` of the Set-Cookie, as a browser sends it back. */
function cookieOf(reply: Reply): string {
  return setCookie(reply).split(';')[0]!;
}

describe('affinity session-cookie-* (affinity.go, affinitymode.go)', () => {
  let a: RunningWhoami;
  let b: RunningWhoami;
  let canary: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    a = await startWhoami({ host: '127.0.0.1', port: 0, name: 'a' });
    b = await startWhoami({ host: '127.0.0.1', port: 0, name: 'b' });
    canary = await startWhoami({ host: '127.0.0.1', port: 0, name: 'canary' });
    const sticky = (
      name: string,
      host: string | undefined,
      more: Record<string, string> = {},
      paths = ['/'],
    ) =>
      ingress({
        name,
        ...(host === undefined ? {} : { host }),
        annotations: { affinity: 'cookie', 'session-cookie-name': 'SERVERID', ...more },
        paths: paths.map((path) => ({ path, service: `svc-${name}`, port: 80 })),
      });
    const names = [
      'sticky',
      'path',
      'two-paths',
      'expires',
      'domain',
      'regex',
      'no-host',
      'alias',
      'secure',
      'insecure',
      'persistent',
      'separate',
      'main',
    ];
    const objects: K8sObject[] = [
      ...names.flatMap((n) =>
        serviceWithEndpoints({ name: `svc-${n}`, ports: [a.address.port, b.address.port] }),
      ),
      ...serviceWithEndpoints({ name: 'svc-canary', ports: [canary.address.port] }),
      sticky('sticky', 'sticky.foo.com'),
      sticky('path', 'path.foo.com', {}, ['/something']),
      sticky('two-paths', 'two.foo.com', {}, ['/something', '/somewhereelse']),
      sticky('expires', 'expires.foo.com', {
        'session-cookie-expires': '172800',
        'session-cookie-max-age': '259200',
      }),
      sticky('domain', 'domain.foo.com', { 'session-cookie-domain': 'foo.bar' }),
      ingress({
        name: 'regex',
        host: 'regex.foo.com',
        annotations: {
          affinity: 'cookie',
          'session-cookie-name': 'SERVERID',
          'use-regex': 'true',
          'session-cookie-path': '/foo/bar',
        },
        paths: [{ path: '/foo/.*', pathType: 'ImplementationSpecific', service: 'svc-regex', port: 80 }],
      }),
      sticky('no-host', undefined),
      sticky('alias', 'alias.foo.com', { 'server-alias': 'alias1.foo.com, alias2.foo.com' }),
      sticky('secure', 'secure.foo.com', { 'session-cookie-secure': 'true' }),
      sticky('insecure', 'insecure.foo.com', { 'session-cookie-secure': 'false' }),
      sticky('persistent', 'persistent.foo.com', { 'affinity-mode': 'persistent' }),
      // separate Ingresses of one Service: only the one with affinity sets the cookie.
      sticky('separate', 'separate.foo.com', {}, ['/foo/bar']),
      ingress({
        name: 'separate-plain',
        host: 'separate.foo.com',
        paths: [{ path: '/foo', service: 'svc-separate', port: 80 }],
      }),
      // canary affinity behaviour: a sticky main and a canary forced by a header, weight 1.
      sticky('main', 'canary.foo.com', {}, ['/info']),
      ingress({
        name: 'main-canary',
        host: 'canary.foo.com',
        annotations: {
          canary: 'true',
          'canary-by-header': 'ForceCanary',
          'canary-by-header-value': 'yes',
          'canary-weight': '1',
        },
        paths: [{ path: '/info', service: 'svc-canary', port: 80 }],
      }),
    ];
    gw = await startTestGateway(topologyOf(objects));
  });

  after(async () => {
    await gw.close();
    await Promise.all([a.close(), b.close(), canary.close()]);
  });

  const get = (host: string, path = '/', headers: Record<string, string> = {}) =>
    request(gw.httpPort, { host, path, headers: { ...json, ...headers } });

  test('should set sticky cookie SERVERID, and the cookie keeps the endpoint', async () => {
    const first = await get('sticky.foo.com');
    assert.match(setCookie(first), /^SERVERID=[0-9a-f]{32}\|[0-9a-f]{32}; Path=\/; HttpOnly$/);
    const name = echoOf(first).name;
    for (let i = 0; i < 10; i++) {
      const again = await get('sticky.foo.com', '/', { cookie: cookieOf(first) });
      assert.equal(echoOf(again).name, name);
      assert.equal(again.headers['set-cookie'], undefined, 'a known session gets no new cookie');
    }
  });

  test('the session is the last SERVERID the client sends, by its exact name (lua-resty-cookie)', async () => {
    const first = await get('sticky.foo.com');
    const cookie = cookieOf(first);
    const stale = 'SERVERID=00000000000000000000000000000000|x';
    const kept = await get('sticky.foo.com', '/', { cookie: `${stale}; ${cookie}` });
    assert.equal(echoOf(kept).name, echoOf(first).name);
    assert.equal(kept.headers['set-cookie'], undefined, 'the last one is a known session');
    const staleLast = await get('sticky.foo.com', '/', { cookie: `${cookie}; ${stale}` });
    assert.match(setCookie(staleLast), /^SERVERID=/, 'the last one is stale: a new session');
    const otherCase = await get('sticky.foo.com', '/', { cookie: cookie.replace('SERVERID', 'serverid') });
    assert.match(setCookie(otherCase), /^SERVERID=/, 'serverid is another cookie');
  });

  test('should set the path to /something on the generated cookie; one path per rule', async () => {
    assert.match(setCookie(await get('path.foo.com', '/something')), /; Path=\/something;/);
    assert.match(setCookie(await get('two.foo.com', '/something')), /; Path=\/something;/);
    assert.match(setCookie(await get('two.foo.com', '/somewhereelse')), /; Path=\/somewhereelse;/);
  });

  test('should set cookie with expires and max-age, with domain, and none without the annotation', async () => {
    const now = Date.now();
    const expires = setCookie(await get('expires.foo.com'));
    const m = /; Expires=(\w{3}, \d{2}-\w{3}-\d{2} \d{2}:\d{2}:\d{2} GMT); Max-Age=259200;/.exec(expires);
    assert.ok(m, expires);
    const at = Date.parse(m[1]!.replace(/-(\w{3})-(\d{2}) /, ' $1 20$2 '));
    assert.ok(Math.abs(at - (now + 172_800_000)) < 60_000, `${m[1]} is 48 h from now`);
    assert.match(setCookie(await get('domain.foo.com')), /; Domain=foo\.bar;/);
    assert.doesNotMatch(setCookie(await get('sticky.foo.com')), /; Domain/);
  });

  test('should work with use-regex annotation and session-cookie-path', async () => {
    const cookie = setCookie(await get('regex.foo.com', '/foo/x'));
    assert.match(cookie, /^SERVERID=.*; Path=\/foo\/bar;/);
  });

  test('should not set affinity across all server locations when using separate ingresses', async () => {
    assert.equal((await get('separate.foo.com', '/foo')).headers['set-cookie'], undefined);
    assert.match(setCookie(await get('separate.foo.com', '/foo/bar')), /; Path=\/foo\/bar;/);
  });

  test('should set sticky cookie without host, and with server-alias', async () => {
    assert.match(setCookie(await get('anything.example')), /^SERVERID=/);
    for (const host of ['alias.foo.com', 'alias1.foo.com', 'alias2.foo.com'])
      assert.match(setCookie(await get(host)), /^SERVERID=/, host);
  });

  test('session-cookie-secure: true on http sets Secure, false on http does not, false on https does', async () => {
    assert.match(setCookie(await get('secure.foo.com')), /; Secure;/);
    assert.doesNotMatch(setCookie(await get('insecure.foo.com')), /; Secure/);
    const overTls = await new Promise<Reply>((resolve, reject) => {
      https
        .get(
          {
            host: '127.0.0.1',
            port: gw.httpsPort,
            path: '/',
            servername: 'insecure.foo.com',
            rejectUnauthorized: false,
            agent: false,
            headers: { host: 'insecure.foo.com' },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' }));
          },
        )
        .on('error', reject);
    });
    assert.match(setCookie(overTls), /; Secure;/);
  });

  test('Check persistent affinity mode: every request with the cookie reaches the same endpoint', async () => {
    const first = await get('persistent.foo.com');
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++)
      seen.add(echoOf(await get('persistent.foo.com', '/', { cookie: cookieOf(first) })).name);
    assert.deepEqual([...seen], [echoOf(first).name]);
    // A cookie for an endpoint that is not there is replaced.
    const stale = await get('persistent.foo.com', '/', {
      cookie: 'SERVERID=00000000000000000000000000000000|x',
    });
    assert.match(setCookie(stale), /^SERVERID=[0-9a-f]{32}\|/);
  });

  test('canary: always routes traffic to canary if first request was affinitized to canary (default behavior)', async () => {
    const forced = await get('canary.foo.com', '/info', { ForceCanary: 'yes' });
    assert.equal(echoOf(forced).name, 'canary');
    const cookie = cookieOf(forced);
    assert.match(cookie, /^SERVERID=/);
    for (let i = 0; i < 20; i++)
      assert.equal(echoOf(await get('canary.foo.com', '/info', { cookie })).name, 'canary');
    // And a session on the main backend stays there, whatever the weight says.
    const mainFirst = await get('canary.foo.com', '/info');
    if (echoOf(mainFirst).name !== 'canary') {
      const mainCookie = cookieOf(mainFirst);
      for (let i = 0; i < 20; i++)
        assert.notEqual(echoOf(await get('canary.foo.com', '/info', { cookie: mainCookie })).name, 'canary');
    }
  });
});
