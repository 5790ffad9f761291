// Attacks on external auth (auth-url and companions) and custom-http-errors from the outside: forged
// headers towards the auth service, an auth service's answer that carries CR/LF or hop-by-hop fields,
// the sign-in redirect, auth services that never answer, answer slowly or answer big, the answer cache,
// and what an intercepted error shows the client or the error backend.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, Server } from 'node:http';
import http from '../../src/node-http.ts';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
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
import { rawExchange } from '../helpers/net.ts';

/** One raw HTTP/1.1 exchange (the request says Connection: close): everything the gateway sent. */
async function raw(port: number, data: string): Promise<{ text: string }> {
  const reply = await rawExchange({ host: '127.0.0.1', port, payload: data });
  return { text: reply.received.toString('latin1') };
}

interface Seen {
  path: string;
  headers: IncomingHttpHeaders;
}

/** The auth service: records every subrequest; routes pick the answer. */
function startAuth() {
  const seen: Seen[] = [];
  const waiters: Array<() => void> = [];
  let slowBodyEndedAt = 0;
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    seen.push({ path, headers: req.headers });
    for (const w of waiters.splice(0)) w();
    if (path === '/ok') return void res.writeHead(200, { 'x-auth-user': 'alice' }).end();
    if (path === '/ok-none') return void res.writeHead(200).end();
    if (path === '/deny') return void res.writeHead(401, { 'www-authenticate': 'Bearer' }).end();
    if (path === '/hang') return; // never answers
    if (path === '/path-rule') {
      // An auth service with a per-path rule on X-Original-URL (Authelia's way): /admin is refused.
      const original = new URL(String(req.headers['x-original-url']));
      return void res.writeHead(original.pathname.startsWith('/admin') ? 403 : 200).end();
    }
    if (path === '/token')
      return void res
        .writeHead(req.headers.authorization === 'Bearer good' ? 200 : 401, { 'x-auth-user': 'alice' })
        .end();
    if (path === '/huge') {
      res.writeHead(200, { 'x-auth-user': 'alice', 'content-type': 'text/plain' });
      res.end(Buffer.alloc(4 * 1024 * 1024, 0x61));
      return;
    }
    if (path === '/te') return void res.writeHead(200, { 'transfer-encoding': 'chunked' }).end('ok');
    if (path === '/slow-body') {
      // The status and headers at once, then the body a byte at a time, well inside the read timeout.
      res.writeHead(200, { 'x-auth-user': 'alice' });
      let left = 8;
      const tick = setInterval(() => {
        res.write('.');
        if (--left === 0) {
          clearInterval(tick);
          slowBodyEndedAt = performance.now();
          res.end();
        }
      }, 250);
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise<{
    server: Server;
    port: number;
    seen: Seen[];
    next(): Promise<void>;
    slowBodyEndedAt(): number;
  }>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        seen,
        next: () => new Promise((r) => waiters.push(r)),
        slowBodyEndedAt: () => slowBodyEndedAt,
      }),
    ),
  );
}

/** An auth service that answers raw bytes of the test's choosing (after reading the request head). */
function startRawAuth(answer: string) {
  const server = net.createServer((socket) => {
    let head = '';
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n')) socket.end(answer, 'latin1');
    });
    socket.on('error', () => {});
  });
  return new Promise<{ server: net.Server; port: number }>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port })),
  );
}

/** A backend that answers 500 with a secret body, a secret header and a cookie (or 401). */
function startLeakyBackend() {
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/401'))
      return void res
        .writeHead(401, { 'www-authenticate': 'Basic realm="backend"', 'x-secret': 's3cr3t' })
        .end('SECRET-BODY');
    res
      .writeHead(500, { 'x-secret': 's3cr3t', 'set-cookie': 'session=s3cr3t', 'content-type': 'text/plain' })
      .end('SECRET-BODY');
  });
  return new Promise<{ server: Server; port: number }>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port })),
  );
}

/** A backend that records the bytes it gets and answers every request head with an empty 200. */
function startCapture() {
  const received: Buffer[] = [];
  const server = net.createServer((socket) => {
    socket.on('data', (chunk) => {
      received.push(chunk);
      if (chunk.includes('\r\n\r\n')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    });
    socket.on('error', () => {});
  });
  return new Promise<{ server: net.Server; port: number; text(): string }>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        text: () => Buffer.concat(received).toString('latin1'),
      }),
    ),
  );
}

describe('external auth and custom-http-errors under attack', () => {
  let echo: RunningWhoami;
  let errorPages: RunningWhoami;
  let auth: Awaited<ReturnType<typeof startAuth>>;
  let obsFold: Awaited<ReturnType<typeof startRawAuth>>;
  let bareLf: Awaited<ReturnType<typeof startRawAuth>>;
  let leaky: Awaited<ReturnType<typeof startLeakyBackend>>;
  let gw: TestGateway;
  let capture: Awaited<ReturnType<typeof startCapture>>;

  before(async () => {
    echo = await startWhoami({ host: '127.0.0.1', port: 0, name: 'echo' });
    errorPages = await startWhoami({ host: '127.0.0.1', port: 0, name: 'error-pages' });
    auth = await startAuth();
    obsFold = await startRawAuth(
      'HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\n X-Injected: folded\r\nContent-Length: 0\r\n\r\n',
    );
    bareLf = await startRawAuth(
      'HTTP/1.1 200 OK\r\nX-Auth-User: alice\nX-Injected: bare-lf\r\nContent-Length: 0\r\n\r\n',
    );
    leaky = await startLeakyBackend();
    capture = await startCapture();
    const a = `http://127.0.0.1:${auth.port}`;
    const route = (host: string, annotations: Record<string, string>, service = 'echo'): K8sObject =>
      ingress({ name: host, host, paths: [{ path: '/', service, port: 80 }], annotations });
    const objects: K8sObject[] = [
      ...serviceWithEndpoints({ name: 'echo', ports: [echo.address.port] }),
      ...serviceWithEndpoints({ name: 'error-pages', ports: [errorPages.address.port] }),
      ...serviceWithEndpoints({ name: 'leaky', ports: [leaky.port] }),
      controllerConfigMap({ 'proxy-connect-timeout': '1', 'proxy-read-timeout': '1' }),
      route('forge', { 'auth-url': `${a}/ok`, 'auth-response-headers': 'X-Auth-User' }),
      route('strip', { 'auth-url': `${a}/ok-none`, 'auth-response-headers': 'X-Auth-User' }),
      route('signin', {
        'auth-url': `${a}/deny`,
        'auth-signin': 'https://login.example/start',
      }),
      route('path-rule', { 'auth-url': `${a}/path-rule`, 'auth-signin': 'https://login.example/start' }),
      route('hang', { 'auth-url': `${a}/hang` }),
      route('slow-body', { 'auth-url': `${a}/slow-body`, 'auth-response-headers': 'X-Auth-User' }),
      route('huge', { 'auth-url': `${a}/huge`, 'auth-response-headers': 'X-Auth-User' }),
      route('obs-fold', {
        'auth-url': `http://127.0.0.1:${obsFold.port}/`,
        'auth-response-headers': 'X-Auth-User, X-Injected',
      }),
      route('bare-lf', {
        'auth-url': `http://127.0.0.1:${bareLf.port}/`,
        'auth-response-headers': 'X-Auth-User, X-Injected',
      }),
      ...serviceWithEndpoints({ name: 'capture', ports: [capture.port] }),
      route('te', { 'auth-url': `${a}/te`, 'auth-response-headers': 'Transfer-Encoding' }, 'capture'),
      route('cache-host', { 'auth-url': `${a}/token`, 'auth-cache-key': '$host' }),
      route('cache-cred', { 'auth-url': `${a}/token`, 'auth-cache-key': '$http_authorization' }),
      route('cache-cookie', {
        'auth-url': `${a}/token`,
        'auth-cache-key': '$cookie_session',
        'auth-response-headers': 'X-Auth-User',
      }),
      route('errors', { 'custom-http-errors': '500,401', 'default-backend': 'error-pages' }, 'leaky'),
    ];
    gw = await startTestGateway(topologyOf(objects));
  });

  after(async () => {
    await gw?.close();
    await echo?.close();
    await errorPages?.close();
    auth?.server.closeAllConnections();
    auth?.server.close();
    obsFold?.server.close();
    bareLf?.server.close();
    leaky?.server.close();
    capture?.server.close();
  });

  const json = { accept: 'application/json' };

  test('forged URL, method, redirect and forwarding headers never reach the auth service from a client', async () => {
    const next = auth.next();
    const reply = await request(gw.httpPort, {
      from: '127.0.0.21',
      host: 'forge',
      path: '/real?a=1',
      headers: {
        ...json,
        'x-original-url': 'http://forge/admin',
        'x-original-uri': '/admin',
        'x-original-method': 'DELETE',
        'x-auth-request-redirect': 'https://evil.example/',
        'x-forwarded-host': 'admin.internal',
        'x-forwarded-uri': '/admin',
        'x-forwarded-proto': 'https',
        'x-forwarded-port': '443',
        'x-forwarded-for': '10.0.0.1',
        'x-real-ip': '10.0.0.1',
        'x-sent-from': 'trusted-sidecar',
        forwarded: 'for=10.0.0.1;host=admin.internal;proto=https',
        'x-rewrite-url': '/admin',
      },
    });
    await next;
    assert.equal(reply.status, 200);
    const seen = auth.seen.at(-1)!.headers;
    assert.equal(seen['x-original-url'], 'http://forge/real?a=1');
    assert.equal(seen['x-original-method'], 'GET');
    assert.equal(seen['x-auth-request-redirect'], '/real?a=1');
    assert.equal(seen['x-real-ip'], '127.0.0.21');
    assert.equal(seen['x-forwarded-for'], '127.0.0.21');
    assert.equal(seen['x-sent-from'], 'nginx-ingress-controller');
    assert.equal(seen.host, '127.0.0.1');
    for (const name of [
      'x-original-uri',
      'x-forwarded-host',
      'x-forwarded-uri',
      'x-forwarded-proto',
      'x-forwarded-port',
      'forwarded',
      'x-rewrite-url',
    ])
      assert.equal(seen[name], undefined, `${name} reached the auth service`);
  });

  test('over HTTP/2 (prior knowledge) the subrequest is the same: no pseudo-header, no forged URL', async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.httpPort}`);
    try {
      const next = auth.next();
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({
          ':path': '/h2?a=1',
          ':authority': 'forge',
          'x-original-url': 'http://forge/admin',
          'x-auth-user': 'admin',
        });
        stream.on('response', (headers) => resolve(Number(headers[':status'])));
        stream.on('error', reject);
        stream.resume();
        stream.end();
      });
      await next;
      assert.equal(status, 200);
      const seen = auth.seen.at(-1)!.headers;
      assert.equal(seen['x-original-url'], 'http://forge/h2?a=1');
      assert.ok(Object.keys(seen).every((name) => !name.startsWith(':')));
    } finally {
      session.close();
    }
  });

  test('a forged header with underscores (X_Original_URL) is dropped before the subrequest', async () => {
    const next = auth.next();
    const answer = await raw(
      gw.httpPort,
      'GET /u HTTP/1.1\r\nHost: forge\r\nX_Original_URL: http://forge/admin\r\nX_Forwarded_Uri: /admin\r\nConnection: close\r\n\r\n',
    );
    await next;
    assert.match(answer.text, /^HTTP\/1\.1 200 /);
    const seen = auth.seen.at(-1)!.headers;
    assert.equal(seen.x_original_url, undefined);
    assert.equal(seen.x_forwarded_uri, undefined);
    assert.equal(seen['x-original-url'], 'http://forge/u');
  });

  test('X-Scheme, X-Forwarded-Scheme, X-Original-Forwarded-For/-Host from an untrusted client never reach the auth service', async () => {
    const next = auth.next();
    await request(gw.httpPort, {
      from: '127.0.0.22',
      host: 'forge',
      headers: {
        ...json,
        'x-scheme': 'https',
        'x-forwarded-scheme': 'https',
        'x-original-forwarded-for': '10.9.9.9',
        'x-original-forwarded-host': 'admin.internal',
      },
    });
    await next;
    const seen = auth.seen.at(-1)!.headers;
    assert.equal(seen['x-scheme'], undefined);
    assert.equal(seen['x-forwarded-scheme'], undefined);
    assert.equal(seen['x-original-forwarded-for'], undefined);
    assert.equal(seen['x-original-forwarded-host'], undefined);
  });

  test("a client's own auth-response-headers never reach the backend when the auth answer lacks them", async () => {
    const reply = await request(gw.httpPort, {
      host: 'strip',
      headers: { ...json, 'x-auth-user': 'admin' },
    });
    assert.equal(reply.status, 200);
    assert.equal(echoOf(reply).headers['x-auth-user'], undefined);
    // Twice, and with the other spelling.
    const answer = await raw(
      gw.httpPort,
      'GET / HTTP/1.1\r\nHost: strip\r\nAccept: application/json\r\nX-Auth-User: admin\r\nx-auth-user: root\r\nX_Auth_User: admin\r\nConnection: close\r\n\r\n',
    );
    assert.match(answer.text, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(answer.text, /admin|root/);
  });

  test("the auth service's value replaces the client's (auth-response-headers)", async () => {
    const reply = await request(gw.httpPort, { host: 'forge', headers: { ...json, 'x-auth-user': 'admin' } });
    assert.equal(echoOf(reply).headers['x-auth-user'], 'alice');
  });

  test('an auth answer with an obs-fold or a bare LF in a header is 500; nothing reaches the backend', async () => {
    for (const host of ['obs-fold', 'bare-lf']) {
      const reply = await request(gw.httpPort, { host, headers: json });
      assert.equal(reply.status, 500, host);
      assert.doesNotMatch(reply.body, /Injected|folded|bare-lf/);
    }
    await gw.errors.waitFor(/auth request failed: Parse Error: Unexpected whitespace after header value/);
    await gw.errors.waitFor(/auth request failed: Parse Error: Missing expected CR after header value/);
  });

  test("auth-response-headers: an auth answer's Transfer-Encoding never reaches the backend beside the gateway's own framing (no smuggling)", async () => {
    const smuggled = '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
    const reply = await request(gw.httpPort, { host: 'te', method: 'POST', body: smuggled });
    assert.equal(reply.status, 200);
    const head = capture.text().split('\r\n\r\n')[0]!.toLowerCase();
    assert.ok(!(head.includes('transfer-encoding:') && head.includes('content-length:')), head);
  });

  test('auth-signin: the request URI is escaped into one rd, and a foreign Host never reaches the location', async () => {
    const reply = await request(gw.httpPort, {
      host: 'signin',
      path: '/a/b?x=1&rd=https://evil.example/&next=//evil.example',
    });
    assert.equal(reply.status, 302);
    const location = new URL(String(reply.headers.location));
    assert.equal(location.origin, 'https://login.example');
    assert.deepEqual(location.searchParams.getAll('rd'), [
      'http://signin/a/b?x=1&rd=https://evil.example/&next=//evil.example',
    ]);
    assert.equal(location.searchParams.get('next'), null);
    // The rd's host is $http_host: a Host the rule does not name is not this location at all…
    const foreign = await request(gw.httpPort, { host: 'evil.example', path: '/a' });
    assert.equal(foreign.status, 404);
  });

  test('an absolute-form target: $request_uri is the path and query, so the auth service sees the path routing saw', async () => {
    const origin = await raw(
      gw.httpPort,
      'GET /admin HTTP/1.1\r\nHost: path-rule\r\nConnection: close\r\n\r\n',
    );
    assert.match(origin.text, /^HTTP\/1\.1 403 /); // holds in origin-form
    const next = auth.next();
    const absolute = await raw(
      gw.httpPort,
      'GET http://path-rule/admin HTTP/1.1\r\nHost: path-rule\r\nConnection: close\r\n\r\n',
    );
    await next;
    const seen = auth.seen.at(-1)!.headers['x-original-url'];
    assert.match(
      absolute.text,
      /^HTTP\/1\.1 403 /,
      `auth saw ${seen}; the gateway answered ${absolute.text.split('\r\n')[0]}`,
    );
    assert.equal(seen, 'http://path-rule/admin');
  });

  test('an auth service that never answers: 500 after connect + read timeouts, logged', async () => {
    const started = performance.now();
    const reply = await request(gw.httpPort, { host: 'hang', headers: json });
    assert.equal(reply.status, 500);
    assert.ok(performance.now() - started < 10_000);
    await gw.errors.waitFor(/auth request failed: auth request timed out after 2000 ms/);
  });

  test('an auth service that answers 2xx with a 4 MiB body: admitted, the body not kept', async () => {
    const reply = await request(gw.httpPort, { host: 'huge', headers: json });
    assert.equal(reply.status, 200);
    assert.equal(echoOf(reply).headers['x-auth-user'], 'alice');
  });

  test('an auth service whose 2xx body trickles does not hold the client: decided on the status and headers', async () => {
    const reply = await request(gw.httpPort, { host: 'slow-body', headers: json });
    const answeredAt = performance.now();
    assert.equal(reply.status, 200);
    const ended = auth.slowBodyEndedAt();
    assert.ok(ended === 0 || answeredAt < ended, 'the client was answered only after the auth body ended');
  });

  test('auth-cache-key without the credentials: as nginx, one answer serves every user of the key', async () => {
    // A 401 (cached by the default "200 202 401 5m") locks out the next user, whatever the token…
    const anonymous = await request(gw.httpPort, { from: '127.0.0.31', host: 'cache-host', headers: json });
    assert.equal(anonymous.status, 401);
    const calls = auth.seen.length;
    const good = await request(gw.httpPort, {
      from: '127.0.0.32',
      host: 'cache-host',
      headers: { ...json, authorization: 'Bearer good' },
    });
    assert.equal(good.status, 401);
    assert.equal(auth.seen.length, calls, 'answered from the cache');
    // …and a key that holds the credentials keeps users apart.
    const bad = await request(gw.httpPort, {
      from: '127.0.0.33',
      host: 'cache-cred',
      headers: { ...json, authorization: 'Bearer bad' },
    });
    assert.equal(bad.status, 401);
    const good2 = await request(gw.httpPort, {
      from: '127.0.0.34',
      host: 'cache-cred',
      headers: { ...json, authorization: 'Bearer good' },
    });
    assert.equal(good2.status, 200);
    const mallory = await request(gw.httpPort, { from: '127.0.0.35', host: 'cache-cred', headers: json });
    assert.equal(mallory.status, 401);
  });

  test('auth-cache-key $cookie_session: an allow given without the cookie (on a header the key leaves out) is not kept for the next client without one; nginx keeps it under the empty key', async () => {
    const alice = await request(gw.httpPort, {
      from: '127.0.0.36',
      host: 'cache-cookie',
      headers: { ...json, authorization: 'Bearer good' },
    });
    assert.equal(alice.status, 200);
    const calls = auth.seen.length;
    const mallory = await request(gw.httpPort, { from: '127.0.0.37', host: 'cache-cookie', headers: json });
    assert.equal(mallory.status, 401, "mallory rode on alice's allow");
    assert.equal(auth.seen.length, calls + 1, 'the auth service was asked for mallory');
    // A key with its credential is still cached: the same session is answered without asking again.
    const withSession = { ...json, cookie: 'session=s1' };
    const first = await request(gw.httpPort, {
      from: '127.0.0.38',
      host: 'cache-cookie',
      headers: { ...withSession, authorization: 'Bearer good' },
    });
    assert.equal(first.status, 200);
    const cached = auth.seen.length;
    const again = await request(gw.httpPort, {
      from: '127.0.0.38',
      host: 'cache-cookie',
      headers: withSession,
    });
    assert.equal(again.status, 200);
    assert.equal(auth.seen.length, cached, 'answered from the cache');
  });

  test("custom-http-errors: the backend's body, headers and cookie never reach the client", async () => {
    const reply = await request(gw.httpPort, {
      from: '127.0.0.41',
      host: 'errors',
      path: '/x',
      headers: json,
    });
    assert.equal(reply.status, 200); // the error backend's own status (whoami)
    const got = echoOf(reply);
    assert.equal(got.name, 'error-pages');
    assert.equal(got.headers['x-code'], '500');
    assert.doesNotMatch(reply.body, /SECRET-BODY|s3cr3t/);
    assert.equal(reply.headers['x-secret'], undefined);
    assert.equal(reply.headers['set-cookie'], undefined);
  });

  test('custom-http-errors: X-Code, X-Original-URI and X-Forwarded-For to the error backend cannot be forged', async () => {
    const reply = await request(gw.httpPort, {
      from: '127.0.0.42',
      host: 'errors',
      path: '/401',
      headers: {
        ...json,
        'x-code': '200',
        'x-original-uri': '/admin',
        'x-forwarded-for': '10.0.0.1',
        'x-namespace': 'kube-system',
      },
    });
    const got = echoOf(reply);
    assert.equal(got.headers['x-code'], '401');
    assert.equal(got.headers['x-original-uri'], '/401');
    assert.equal(got.headers['x-forwarded-for'], '127.0.0.42');
    assert.equal(got.headers['x-namespace'], 'default');
    assert.doesNotMatch(reply.body, /SECRET-BODY|s3cr3t/);
    assert.equal(reply.headers['x-secret'], undefined);
  });
});
