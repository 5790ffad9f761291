// Where keepip differed from ingress-nginx 1.15 on what it already supported, found by ingress-nginx's
// own e2e tests (issue 20, "Also"): ssl-redirect on a TLS host whose Secret is missing
// (test/e2e/ssl/http_redirect.go), the ConfigMap key service-upstream, access logging of the default
// backend (test/e2e/defaultbackend/default_backend.go) and X-Original-Forwarded-Host
// (test/e2e/settings/forwarded_headers.go). Real sockets on 127.0.0.0/8.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { echoOf, request, type TestGateway, withTestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { refusingPort } from '../helpers/net.ts';

const json = { accept: 'application/json' };

/** An Ingress with a TLS section whose Secret does not exist (NewSingleIngressWithTLS without the Secret). */
function withMissingSecret(object: K8sObject, host: string): K8sObject {
  const spec = object.spec as Record<string, unknown>;
  return { ...object, spec: { ...spec, tls: [{ hosts: [host], secretName: host }] } };
}

describe('divergences from ingress-nginx, fixed', () => {
  let backend: RunningWhoami;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0, name: 'echo' });
  });
  after(async () => {
    await backend.close();
  });

  const withGateway = (objects: K8sObject[], run: (gw: TestGateway) => Promise<void>) =>
    withTestGateway(topologyOf(objects), run);

  test('ssl-redirect on a TLS host whose Secret is missing: 308 to https, as ingress-nginx', async () => {
    const objects = [
      ...serviceWithEndpoints({ name: 'echo', ports: [backend.address.port] }),
      withMissingSecret(
        ingress({
          name: 'redirect',
          host: 'redirect.com',
          paths: [{ path: '/', service: 'echo', port: 80 }],
        }),
        'redirect.com',
      ),
    ];
    await withGateway(objects, async (gw) => {
      const reply = await request(gw.httpPort, { host: 'redirect.com' });
      assert.equal(reply.status, 308);
      assert.equal(reply.headers.location, 'https://redirect.com');
      // The default certificate serves it over https, where it is proxied.
      const other = await request(gw.httpPort, { host: 'redirect.com', path: '/a/b?c=d' });
      assert.equal(other.headers.location, 'https://redirect.com/a/b?c=d');
    });
  });

  test('ConfigMap service-upstream: the Service address instead of the endpoints; the annotation overrides it', async () => {
    const refused = await refusingPort();
    const objects = [
      // The endpoints refuse connections; the "ClusterIP" 127.0.0.1:<backend> answers.
      ...serviceWithEndpoints({
        name: 'svc',
        ports: [refused],
        clusterIP: '127.0.0.1',
        servicePort: backend.address.port,
      }),
      controllerConfigMap({ 'service-upstream': 'true' }),
      ingress({
        name: 'up',
        host: 'up.example.com',
        paths: [{ path: '/', service: 'svc', port: backend.address.port }],
      }),
      ingress({
        name: 'eps',
        host: 'eps.example.com',
        paths: [{ path: '/', service: 'svc', port: backend.address.port }],
        annotations: { 'service-upstream': 'false' },
      }),
    ];
    await withGateway(objects, async (gw) => {
      const viaService = await request(gw.httpPort, { host: 'up.example.com', headers: json });
      assert.equal(viaService.status, 200);
      assert.equal(echoOf(viaService).name, 'echo');
      const viaEndpoints = await request(gw.httpPort, { host: 'eps.example.com' });
      assert.equal(viaEndpoints.status, 502);
    });
  });

  test('the default backend is not access-logged unless enable-access-log-for-default-backend is "true"', async () => {
    const known = ingress({
      name: 'known',
      host: 'known.example.com',
      paths: [{ path: '/', service: 'echo', port: 80 }],
    });
    const service = serviceWithEndpoints({ name: 'echo', ports: [backend.address.port] });
    await withGateway([...service, known], async (gw) => {
      assert.equal((await request(gw.httpPort, { host: 'foo', path: '/somethingTwo' })).status, 404);
      // A later request that is logged proves the first had its chance to be.
      assert.equal((await request(gw.httpPort, { host: 'known.example.com', path: '/marker' })).status, 200);
      await gw.access.waitFor(/GET \/marker /);
      assert.deepEqual(
        gw.access.lines.filter((l) => l.includes('/somethingTwo')),
        [],
      );
      // A host keepip knows, on a path none of its rules covers, is logged (its server's `/`).
      assert.equal((await request(gw.httpPort, { host: 'known.example.com', path: '/x' })).status, 200);
    });
    const enabled = controllerConfigMap({ 'enable-access-log-for-default-backend': 'true' });
    await withGateway([...service, known, enabled], async (gw) => {
      assert.equal((await request(gw.httpPort, { host: 'foo', path: '/somethingOne' })).status, 404);
      const line = await gw.access.waitFor(/\/somethingOne/);
      assert.match(line, /"GET \/somethingOne HTTP\/1\.1" 404 /);
    });
  });

  test('X-Original-Forwarded-Host: the incoming X-Forwarded-Host, while X-Forwarded-Host is not believed', async () => {
    const objects = [
      ...serviceWithEndpoints({ name: 'echo', ports: [backend.address.port] }),
      ingress({
        name: 'fwd',
        host: 'forwarded-headers',
        paths: [{ path: '/', service: 'echo', port: 80 }],
      }),
    ];
    await withGateway(objects, async (gw) => {
      const reply = await request(gw.httpPort, {
        host: 'forwarded-headers',
        headers: {
          ...json,
          'x-forwarded-port': '1234',
          'x-forwarded-proto': 'myproto',
          'x-forwarded-for': '1.2.3.4',
          'x-forwarded-host': 'myhost',
        },
      });
      const echo = echoOf(reply);
      assert.equal(echo.headers.host, 'forwarded-headers');
      assert.equal(echo.headers['x-forwarded-host'], 'forwarded-headers');
      assert.equal(echo.headers['x-forwarded-proto'], 'http');
      assert.equal(echo.headers['x-original-forwarded-for'], '1.2.3.4');
      assert.equal(echo.headers['x-original-forwarded-host'], 'myhost');
      const plain = echoOf(await request(gw.httpPort, { host: 'forwarded-headers', headers: json }));
      assert.equal(plain.headers['x-original-forwarded-host'], undefined);
    });
  });
});
