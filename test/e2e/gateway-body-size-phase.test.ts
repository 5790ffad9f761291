// When proxy-body-size answers 413, in nginx's order of phases. nginx compares a declared
// Content-Length with the location's client_max_body_size as soon as it has found the location (its
// find-config phase): after the server's own `return`s (block-user-agents, app-root's
// `if ($uri = /)`), before the location's directives (auto_redirect's trailing-slash 301, CORS,
// permanent-redirect, ssl-redirect) and before its access phase (allow/deny, auth-url). The 413 is
// the location's answer, so its custom-http-errors send it to the error backend.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
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

/** An HTTP server that counts what reached it and answers 200. */
async function countingServer(): Promise<{ server: Server; port: number; hits: () => number }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits += 1;
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, hits: () => hits };
}

const big = Buffer.alloc(2048, 0x61);

describe('proxy-body-size: 413 in the find-config phase, as nginx', () => {
  let backend: Awaited<ReturnType<typeof countingServer>>;
  let auth: Awaited<ReturnType<typeof countingServer>>;
  let errorBackend: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    backend = await countingServer();
    auth = await countingServer();
    errorBackend = await startWhoami({ host: '127.0.0.1', port: 0, name: 'error-backend' });
    const ing = (host: string, annotations: Record<string, string>, path = '/'): K8sObject =>
      ingress({ name: host.split('.')[0]!, host, annotations, paths: [{ path, service: 'app', port: 80 }] });
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'app', ports: [backend.port] }),
        ...serviceWithEndpoints({ name: 'errors', ports: [errorBackend.address.port] }),
        controllerConfigMap({ 'proxy-body-size': '1k', 'block-user-agents': '~*blocked-agent' }),
        ing('allow.example.com', { 'allowlist-source-range': '127.0.0.2/32' }),
        ing('auth.example.com', { 'auth-url': `http://127.0.0.1:${auth.port}/check` }),
        ing('ssl.example.com', { 'force-ssl-redirect': 'true' }),
        ing('moved.example.com', { 'permanent-redirect': 'https://elsewhere.example.com/' }),
        ing('cors.example.com', { 'enable-cors': 'true' }),
        ing('slash.example.com', {}, '/docs/'),
        ing('root.example.com', { 'app-root': '/app', 'enable-cors': 'true' }),
        ing('custom.example.com', {
          'custom-http-errors': '413',
          'default-backend': 'errors',
          'allowlist-source-range': '127.0.0.2/32',
        }),
        ing('big.example.com', { 'proxy-body-size': '4k', 'allowlist-source-range': '127.0.0.2/32' }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await errorBackend.close();
    for (const { server } of [backend, auth]) await new Promise((resolve) => server.close(resolve));
  });

  const post = (
    host: string,
    extra: { path?: string; method?: string; headers?: Record<string, string> } = {},
  ) => request(gw.httpPort, { from: '127.0.0.3', host, method: 'POST', body: big, ...extra });

  test('a client the allowlist refuses gets 413, not 403, for a body over the limit; the error log says why', async () => {
    const reply = await post('allow.example.com', { path: '/upload' });
    assert.equal(reply.status, 413);
    assert.equal(reply.headers.connection, 'close');
    await gw.errors.waitFor(
      /client intended to send too large body: 2048 bytes, client: 127\.0\.0\.3, server: allow\.example\.com, request: "POST \/upload HTTP\/1\.1"/,
    );
    // Within the limit, the same client meets the allowlist.
    const small = await request(gw.httpPort, {
      from: '127.0.0.3',
      host: 'allow.example.com',
      method: 'POST',
      body: 'x',
    });
    assert.equal(small.status, 403);
    assert.equal(backend.hits(), 0);
  });

  test('auth-url: a body over the limit is 413 and the auth service is never asked', async () => {
    const reply = await post('auth.example.com');
    assert.equal(reply.status, 413);
    assert.equal(auth.hits(), 0);
  });

  test('the location redirects come after: ssl-redirect, permanent-redirect and a CORS preflight all get 413', async () => {
    assert.equal((await post('ssl.example.com')).status, 413);
    assert.equal((await post('moved.example.com')).status, 413);
    const preflight = await post('cors.example.com', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://site.example.com',
        'access-control-request-method': 'PUT',
        'content-length': String(big.length),
      },
    });
    assert.equal(preflight.status, 413);
    // Without a body these locations answer as before.
    assert.equal((await request(gw.httpPort, { host: 'ssl.example.com' })).status, 308);
    assert.equal((await request(gw.httpPort, { host: 'moved.example.com' })).status, 301);
    assert.equal((await request(gw.httpPort, { host: 'cors.example.com', method: 'OPTIONS' })).status, 204);
    assert.equal(backend.hits(), 0);
  });

  test("nginx's trailing-slash 301 comes after the 413", async () => {
    assert.equal((await post('slash.example.com', { path: '/docs' })).status, 413);
    const redirect = await request(gw.httpPort, { host: 'slash.example.com', path: '/docs' });
    assert.equal(redirect.status, 301);
  });

  test("app-root's server-level redirect comes first: 302 for a large body and for a CORS preflight of /", async () => {
    const reply = await post('root.example.com', { path: '/' });
    assert.equal(reply.status, 302);
    assert.equal(reply.headers.location, 'http://root.example.com/app');
    const preflight = await request(gw.httpPort, {
      host: 'root.example.com',
      method: 'OPTIONS',
      headers: { origin: 'https://site.example.com', 'access-control-request-method': 'PUT' },
    });
    assert.equal(preflight.status, 302);
    // Other paths of the host are the location's: 413 over the limit, the preflight 204.
    assert.equal((await post('root.example.com', { path: '/x' })).status, 413);
    const other = await request(gw.httpPort, { host: 'root.example.com', path: '/x', method: 'OPTIONS' });
    assert.equal(other.status, 204);
  });

  test('a server-level block (block-user-agents) still answers 403 first', async () => {
    const reply = await post('allow.example.com', { headers: { 'user-agent': 'blocked-agent/1' } });
    assert.equal(reply.status, 403);
  });

  test('an unknown host is measured against the default limit: 413 before the 404', async () => {
    assert.equal((await post('nobody.example.com')).status, 413);
    assert.equal(
      (await request(gw.httpPort, { host: 'nobody.example.com', method: 'POST', body: 'x' })).status,
      404,
    );
  });

  test('the location limit, not the default, decides: 4k lets 2 KiB through to the access rules', async () => {
    assert.equal((await post('big.example.com')).status, 403);
  });

  test('custom-http-errors listing 413: the error backend answers, told X-Code 413, the body not sent', async () => {
    const reply = await post('custom.example.com', {
      path: '/upload',
      headers: { accept: 'application/json' },
    });
    assert.equal(reply.status, 200);
    const echo = echoOf(reply);
    assert.equal(echo.name, 'error-backend');
    assert.equal(echo.url, '/');
    assert.equal(echo.headers['x-code'], '413');
    assert.equal(echo.headers['x-original-uri'], '/upload');
    assert.ok([undefined, '0'].includes(echo.headers['content-length']), echo.headers['content-length']);
    assert.equal(reply.headers.connection, 'close');
    assert.equal(backend.hits(), 0);
  });
});
