// An unknown client address (a malformed X-Forwarded-For from a trusted proxy resolves to '') is not
// an address: the access log shows `-`, the backend gets no empty X-Real-IP / X-Forwarded-For, and
// allowlists do not match it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { echoOf, request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';

describe('gateway: unknown client address', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0, name: 'a' });
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({ 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': '127.0.0.0/8' }),
        ...serviceWithEndpoints({ name: 'svc', ports: [backend.address.port] }),
        ingress({ name: 'open', host: 'open.example.com', paths: [{ path: '/', service: 'svc', port: 80 }] }),
        ingress({
          name: 'closed',
          host: 'closed.example.com',
          paths: [{ path: '/', service: 'svc', port: 80 }],
          annotations: { 'allowlist-source-range': '127.0.0.0/8' },
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  test('a malformed X-Forwarded-For: logged as -, no empty X-Real-IP or X-Forwarded-For upstream', async () => {
    const reply = await request(gw.httpPort, {
      from: '127.0.0.9',
      host: 'open.example.com',
      path: '/who',
      headers: { accept: 'application/json', 'x-forwarded-for': 'not-an-address', 'x-real-ip': '' },
    });
    assert.equal(reply.status, 200);
    const echo = echoOf(reply);
    assert.equal(echo.headers['x-real-ip'], undefined);
    assert.equal(echo.headers['x-forwarded-for'], undefined);
    assert.equal(echo.headers['x-original-forwarded-for'], 'not-an-address');
    const line = await gw.access.waitFor(/GET \/who /);
    assert.match(line, /^- - - \[/);
  });

  test('the unknown client matches no allowlist entry (403), and the error log names it -', async () => {
    const reply = await request(gw.httpPort, {
      from: '127.0.0.9',
      host: 'closed.example.com',
      path: '/secret',
      headers: { 'x-forwarded-for': '1.2.3.4, garbage' },
    });
    assert.equal(reply.status, 403);
    const line = await gw.errors.waitFor(/GET \/secret/);
    assert.match(line, /access forbidden by rule, client: -, server: closed\.example\.com/);
    assert.match(await gw.access.waitFor(/GET \/secret /), /^- - - \[.*" 403 /);
  });
});
