// A host none of whose rules covers "/" still has ingress-nginx's root location (createServers): it
// carries the annotations of the Ingress that created the host, so a path no rule names is refused to
// a client outside that Ingress's allowlist (403, as nginx), and an allowed client gets the default
// backend's answer: the gateway's 404 without one, the default backend with one. Before, every client
// got the 404, which told strangers which paths exist on an allowlisted host.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { echoOf, request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { type K8sObject, ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';

const ALLOWED = '127.0.0.2';
const STRANGER = '127.0.0.9';
const json = { accept: 'application/json' };

describe("a host's root without a rule for /", () => {
  let app: RunningWhoami;
  let fallback: RunningWhoami;
  let gw: TestGateway;
  let withDefault: TestGateway;

  before(async () => {
    app = await startWhoami({ host: '127.0.0.1', port: 0, name: 'app' });
    fallback = await startWhoami({ host: '127.0.0.1', port: 0, name: 'fallback' });
    const objects: K8sObject[] = [
      ...serviceWithEndpoints({ name: 'app', ports: [app.address.port] }),
      ...serviceWithEndpoints({ name: 'fallback', ports: [fallback.address.port] }),
      ingress({
        name: 'internal',
        host: 'internal.example',
        paths: [{ path: '/app', service: 'app', port: 80 }],
        annotations: { 'whitelist-source-range': `${ALLOWED}/32` },
      }),
      ingress({ name: 'open', host: 'open.example', paths: [{ path: '/app', service: 'app', port: 80 }] }),
    ];
    gw = await startTestGateway(topologyOf(objects));
    // An Ingress without rules names the default backend (ingress-nginx's default server's backend).
    const defaultBackend: K8sObject = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'default-backend', namespace: 'default' },
      spec: {
        ingressClassName: 'nginx',
        defaultBackend: { service: { name: 'fallback', port: { number: 80 } } },
      },
    };
    withDefault = await startTestGateway(topologyOf([...objects, defaultBackend]));
  });

  after(async () => {
    await gw.close();
    await withDefault.close();
    await app.close();
    await fallback.close();
  });

  test("a stranger gets the Ingress's 403 on any path of the host, named or not", async () => {
    for (const path of ['/app', '/other', '/']) {
      const reply = await request(gw.httpPort, { from: STRANGER, host: 'internal.example', path });
      assert.equal(reply.status, 403, path);
    }
    await gw.errors.waitFor(
      /access forbidden by rule, client: 127\.0\.0\.9, server: internal\.example, request: "GET \/other HTTP\/1\.1"/,
    );
  });

  test('an allowed client gets the route, and the default answer (404) elsewhere on the host', async () => {
    const routed = await request(gw.httpPort, {
      from: ALLOWED,
      host: 'internal.example',
      path: '/app/x',
      headers: json,
    });
    assert.equal(routed.status, 200);
    assert.equal(echoOf(routed).name, 'app');
    const elsewhere = await request(gw.httpPort, { from: ALLOWED, host: 'internal.example', path: '/other' });
    assert.equal(elsewhere.status, 404);
    await gw.access.waitFor(/^127\.0\.0\.2 .*"GET \/other HTTP\/1\.1" 404 .*\[upstream-default-backend\]/m);
  });

  test('a host without an allowlist: 404 for everybody off its rules (control)', async () => {
    const reply = await request(gw.httpPort, { from: STRANGER, host: 'open.example', path: '/other' });
    assert.equal(reply.status, 404);
  });

  test('with a default backend: the allowed client reaches it, the stranger still gets 403', async () => {
    const allowed = await request(withDefault.httpPort, {
      from: ALLOWED,
      host: 'internal.example',
      path: '/other',
      headers: json,
    });
    assert.equal(allowed.status, 200);
    assert.equal(echoOf(allowed).name, 'fallback');
    const stranger = await request(withDefault.httpPort, {
      from: STRANGER,
      host: 'internal.example',
      path: '/other',
    });
    assert.equal(stranger.status, 403);
  });
});
