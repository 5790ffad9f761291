// proxy-redirect-from/-to and proxy-cookie-domain/-path over real sockets: what a client sees of the
// backend's Location, Refresh and Set-Cookie (ingress-nginx's e2e tests, annotations/proxy.go "should
// set proxy_redirect to …" and "should setup proxy cookies", check the directives; these check what
// the directives do, as nginx documents proxy_redirect, proxy_cookie_domain and proxy_cookie_path).
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';

describe('proxy-redirect-*, proxy-cookie-*', () => {
  let backend: Server;
  let gw: TestGateway;

  before(async () => {
    backend = http.createServer((req, res) => {
      res.setHeader('location', 'http://internal.example:8080/app/next');
      res.setHeader('refresh', '5; url=http://internal.example:8080/app/later');
      res.setHeader('set-cookie', [
        'a=1; Domain=localhost; Path=/one/two; HttpOnly',
        'b=2; domain=.LOCALHOST; path=/elsewhere',
        'c=3; Domain=other.example; Path=/one',
      ]);
      res.writeHead(302).end();
      req.resume();
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as AddressInfo).port;
    const ing = (name: string, annotations: Record<string, string>) =>
      ingress({ name, host: name, annotations, paths: [{ path: '/', service: 'app', port: 80 }] });
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'app', ports: [port] }),
        controllerConfigMap({ 'proxy-cookie-path': '/elsewhere /moved' }),
        ing('rewrites', {
          'proxy-redirect-from': 'http://internal.example:8080/app/',
          'proxy-redirect-to': 'https://public.example/',
          'proxy-cookie-domain': 'localhost example.org',
          'proxy-cookie-path': '/one/ /',
        }),
        ing('off', { 'proxy-redirect-from': 'off', 'proxy-cookie-path': 'off' }),
        ing('global', {}),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
  });

  test('Location and Refresh from `from` to `to`; Set-Cookie Domain and Path', async () => {
    const reply = await request(gw.httpPort, { host: 'rewrites' });
    assert.equal(reply.status, 302);
    assert.equal(reply.headers.location, 'https://public.example/next');
    assert.equal(reply.headers.refresh, '5; url=https://public.example/later');
    assert.deepEqual(reply.headers['set-cookie'], [
      'a=1; Domain=example.org; Path=/two; HttpOnly',
      'b=2; domain=.example.org; path=/elsewhere',
      'c=3; Domain=other.example; Path=/one',
    ]);
  });

  test('off changes nothing; the ConfigMap key applies where the Ingress says nothing', async () => {
    const off = await request(gw.httpPort, { host: 'off' });
    assert.equal(off.headers.location, 'http://internal.example:8080/app/next');
    assert.match(off.headers['set-cookie']![1]!, /path=\/elsewhere$/);
    const global = await request(gw.httpPort, { host: 'global' });
    assert.match(global.headers['set-cookie']![1]!, /path=\/moved$/);
  });
});
