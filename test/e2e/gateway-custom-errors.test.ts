// default-backend and custom-http-errors (+ disable-proxy-intercept-errors) over real sockets, drawn
// from ingress-nginx's e2e tests test/e2e/annotations/default_backend.go, customhttperrors.go and
// disableproxyintercepterrors.go (release 1.15): an error backend that echoes what it got.
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
import { refusingPort } from '../helpers/net.ts';

describe('default-backend, custom-http-errors', () => {
  let errors: RunningWhoami;
  let catchAll: RunningWhoami;
  let statusBackend: Server;
  let gw: TestGateway;

  before(async () => {
    errors = await startWhoami({ host: '127.0.0.1', port: 0, name: 'error-backend' });
    catchAll = await startWhoami({ host: '127.0.0.1', port: 0, name: 'catch-all' });
    // /status/<n> answers n, as httpbin does.
    statusBackend = http.createServer((req, res) => {
      const code = Number(/^\/status\/(\d{3})/.exec(req.url ?? '')?.[1] ?? 200);
      res.writeHead(code, { 'content-type': 'text/plain' }).end(code === 404 ? '' : `status ${code}`);
    });
    await new Promise<void>((resolve) => statusBackend.listen(0, '127.0.0.1', resolve));
    const statusPort = (statusBackend.address() as AddressInfo).port;
    const refused = await refusingPort();
    const ing = (name: string, service: string, annotations: Record<string, string>): K8sObject =>
      ingress({ name, host: name, annotations, paths: [{ path: '/', service, port: 80 }] });
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'echo', ports: [errors.address.port] }),
        ...serviceWithEndpoints({ name: 'catch-all', ports: [catchAll.address.port] }),
        ...serviceWithEndpoints({ name: 'invalid', ports: [] }),
        ...serviceWithEndpoints({ name: 'httpbin', ports: [statusPort] }),
        ...serviceWithEndpoints({ name: 'dead', ports: [refused] }),
        // The catch-all default backend (an Ingress without rules).
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'Ingress',
          metadata: { name: 'catch-all', namespace: 'default' },
          spec: {
            ingressClassName: 'nginx',
            defaultBackend: { service: { name: 'catch-all', port: { number: 80 } } },
          },
        },
        controllerConfigMap({ 'custom-http-errors': '418' }),
        ing('default-backend', 'invalid', { 'default-backend': 'echo' }),
        ing('no-service', 'not-there', { 'default-backend': 'echo' }),
        ing('intercept', 'httpbin', { 'custom-http-errors': '404,503', 'default-backend': 'echo' }),
        ing('no-intercept', 'httpbin', {
          'custom-http-errors': '404',
          'default-backend': 'echo',
          'disable-proxy-intercept-errors': 'true',
        }),
        ing('own-502', 'dead', { 'custom-http-errors': '502' }),
        ing('global', 'httpbin', {}),
        ing('global-beside-own', 'httpbin', { 'default-backend': 'echo' }),
        ing('own-without-endpoints', 'httpbin', {
          'custom-http-errors': '404',
          'default-backend': 'invalid',
        }),
        ing('private', 'httpbin', {
          'allowlist-source-range': '127.0.0.2/32',
          'custom-http-errors': '403',
          'default-backend': 'echo',
        }),
        ing('private-404', 'httpbin', {
          'allowlist-source-range': '127.0.0.2/32',
          'custom-http-errors': '404',
          'default-backend': 'echo',
        }),
        ing('broken-list', 'httpbin', {
          'allowlist-source-range': 'ww',
          'custom-http-errors': '503',
          'default-backend': 'echo',
        }),
        ing('denied', 'httpbin', {
          'auth-type': 'basic',
          'auth-secret': 'missing',
          'custom-http-errors': '503',
          'default-backend': 'echo',
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await errors.close();
    await catchAll.close();
    await new Promise<void>((resolve) => statusBackend.close(() => resolve()));
  });

  const get = (host: string, path = '/', headers: Record<string, string> = {}) =>
    request(gw.httpPort, { host, path, headers: { accept: 'application/json', ...headers } });

  test('should use a custom default backend as upstream (no endpoints)', async () => {
    const reply = await get('default-backend', '/', { 'x-request-id': 'abcdef0123456789abcdef0123456789' });
    assert.equal(reply.status, 200);
    const echo = echoOf(reply);
    assert.equal(echo.name, 'error-backend');
    assert.equal(echo.headers['x-code'], '503');
    assert.equal(echo.headers['x-ingress-name'], 'default-backend');
    assert.equal(echo.headers['x-service-name'], 'invalid');
    assert.equal(echo.headers['x-request-id'], 'abcdef0123456789abcdef0123456789');
    await gw.access.waitFor(/\[custom-default-backend-default-echo\]/);
    // A Service that is not there has no endpoints either (ingress-nginx's upstream without any).
    const missing = echoOf(await get('no-service'));
    assert.deepEqual(
      [missing.name, missing.headers['x-code'], missing.headers['x-service-name']],
      ['error-backend', '503', 'not-there'],
    );
  });

  test('custom-http-errors: a listed status from the backend is answered by the error backend', async () => {
    const reply = await get('intercept', '/status/404?x=1');
    assert.equal(reply.status, 200);
    const echo = echoOf(reply);
    assert.equal(echo.url, '/?x=1'); // the arguments kept, as nginx's `rewrite (.*) / break;`
    assert.equal(echo.headers['x-code'], '404');
    assert.equal(echo.headers['x-original-uri'], '/status/404?x=1');
    assert.equal(echo.headers['x-service-name'], 'httpbin');
    assert.equal(echo.headers['x-format'], 'application/json');
    // Not listed: as the backend answered.
    const teapot = await get('intercept', '/status/500');
    assert.equal(teapot.status, 500);
    assert.equal(teapot.body, 'status 500');
    const line = await gw.access.waitFor(/"GET \/status\/404\?x=1 HTTP\/1\.1" 200 /);
    assert.match(line, / 404, 200 /);
  });

  test("disable-proxy-intercept-errors: the backend's own 404 reaches the client", async () => {
    const reply = await get('no-intercept', '/status/404');
    assert.equal(reply.status, 404);
    assert.equal(reply.body, '');
  });

  test("the gateway's own 502 listed in custom-http-errors goes to the catch-all default backend", async () => {
    const reply = await get('own-502');
    assert.equal(reply.status, 200);
    assert.equal(echoOf(reply).name, 'catch-all');
    assert.equal(echoOf(reply).headers['x-code'], '502');
    // A header whose value would be empty is not sent (nginx's proxy_set_header): no Accept, no X-Format.
    const plain = await request(gw.httpPort, { host: 'own-502' });
    assert.match(plain.body, /^x-code: 502\r?$/im);
    assert.doesNotMatch(plain.body, /^x-format:/im);
  });

  test("the location's own refusals (the allowlist's 403) go to the error backend when listed", async () => {
    // nginx's error_page <code> in the location catches what the access phase answers there too.
    const forbidden = await get('private', '/secret?a=1');
    assert.equal(forbidden.status, 200);
    const echo = echoOf(forbidden);
    assert.equal(echo.name, 'error-backend');
    assert.equal(echo.url, '/?a=1'); // the arguments kept, as nginx's `rewrite (.*) / break;`
    assert.equal(echo.headers['x-code'], '403');
    assert.equal(echo.headers['x-original-uri'], '/secret?a=1');
    assert.equal(echo.headers['x-service-name'], 'httpbin');
    await gw.access.waitFor(/"GET \/secret\?a=1 HTTP\/1\.1" 200 .*\[custom-default-backend-default-echo\]/);
    // The allowed client still reaches the backend; a refusal not listed keeps nginx's own page.
    assert.equal(
      (await request(gw.httpPort, { from: '127.0.0.2', host: 'private', path: '/status/201' })).status,
      201,
    );
    assert.equal((await get('private-404')).status, 403);
    // A location denied by its annotations has no error_page of its own in ingress-nginx: its 503 stays.
    const denied = await get('denied');
    assert.equal(denied.status, 503);
    assert.match(denied.body, /503 Service Temporarily Unavailable/);
    // So does one whose allowlist is invalid (ingress-nginx denies it too).
    const broken = await get('broken-list');
    assert.equal(broken.status, 503);
    assert.match(broken.body, /503 Service Temporarily Unavailable/);
  });

  test('the ConfigMap custom-http-errors applies where the Ingress says nothing', async () => {
    const reply = await get('global', '/status/418');
    assert.equal(echoOf(reply).name, 'catch-all');
    assert.equal(echoOf(reply).headers['x-code'], '418');
  });

  // ingress-nginx sends an Ingress's errors to its default-backend only for its own codes, and only
  // while that Service has endpoints (DefaultBackendUpstreamName); else to the catch-all.
  test("the ConfigMap's codes, and a default-backend without endpoints, go to the catch-all", async () => {
    const inherited = echoOf(await get('global-beside-own', '/status/418'));
    assert.deepEqual([inherited.name, inherited.headers['x-code']], ['catch-all', '418']);
    const emptyOwn = echoOf(await get('own-without-endpoints', '/status/404'));
    assert.deepEqual([emptyOwn.name, emptyOwn.headers['x-code']], ['catch-all', '404']);
  });
});

// ingress-nginx gives a host none of whose rules covers "/" a root location with the creating
// Ingress's annotations (createServers, locationApplyAnnotations) in front of the default backend.
// The catch-all case is in test/security/custom-errors-differential-nginx.test.ts (root.test).
describe('custom-http-errors on the root of a host without a "/" rule', () => {
  let errors: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    errors = await startWhoami({ host: '127.0.0.1', port: 0, name: 'error-backend' });
    const apiOnly = (name: string, annotations: Record<string, string>): K8sObject =>
      ingress({ name, host: name, annotations, paths: [{ path: '/api', service: 'echo', port: 80 }] });
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'echo', ports: [errors.address.port] }),
        apiOnly('root-404', { 'custom-http-errors': '404', 'default-backend': 'echo' }),
        apiOnly('root-plain', {}),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await errors.close();
  });

  // That root's error_page names the catch-all (its DefaultBackendUpstreamName stays
  // upstream-default-backend), not the creator's default-backend: without a catch-all, the own page.
  test("a path no rule names: the own 404 page, not the creator's default-backend", async () => {
    const reply = await request(gw.httpPort, { host: 'root-404', path: '/elsewhere?q=1' });
    assert.equal(reply.status, 404);
    assert.match(reply.body, /404 Not Found/);
    assert.equal((await request(gw.httpPort, { host: 'root-404', path: '/api' })).status, 200);
    const plain = await request(gw.httpPort, { host: 'root-plain', path: '/elsewhere' });
    assert.equal(plain.status, 404);
    assert.match(plain.body, /404 Not Found/);
  });
});
