// --disable-svc-external-name over the fake API server: an Ingress whose Service is of type ExternalName
// gets no endpoint (503), with a warning naming the Service, as ingress-nginx's controller.go skips such
// a Service with the flag ("not allowed due to Ingress configuration"). Without the flag the name is the
// one member (test/e2e/gateway-external-name.test.ts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type FakeApiServer, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import {
  type Backend,
  get,
  ingress,
  seedWeb,
  startBackend,
  startTestController,
  type TestController,
  waitForHost,
} from './harness.ts';

describe('keepip controller --disable-svc-external-name', () => {
  let api: FakeApiServer;
  let web: Backend;
  let ctl: TestController;
  let httpPort: number;

  before(async () => {
    api = await startFakeApiServer();
    web = await startBackend('web');
    seedWeb(api, web.port);
    api.apply({
      kind: 'Service',
      metadata: { namespace: 'default', name: 'ext' },
      spec: { type: 'ExternalName', externalName: 'api.example.com' },
    });
    api.apply(ingress('ext', 'ext.example.com', 'ext'));
    ctl = await startTestController(api, ['--disable-svc-external-name']);
    httpPort = (await ctl.running.serving()).httpAddress!.port;
    await waitForHost(ctl, 'ext.example.com');
  });
  after(async () => {
    await ctl?.close();
    await api?.close();
    await web?.close();
  });

  it('an ExternalName Service has no endpoint: 503, and the issue names it', async () => {
    assert.equal((await get(httpPort, 'ext.example.com')).status, 503);
    assert.equal((await get(httpPort, 'web.example.com')).status, 200);
    const topology = ctl.running.gateway()!.snapshot().topology;
    assert.equal(topology.services.find((s) => s.ref.name === 'ext')?.externalName, null);
    assert.ok(topology.issues.some((i) => i.code === 'EXTERNAL_NAME_DISABLED' && i.origin?.name === 'ext'));
    assert.ok(
      !ctl.lines.some((l) => /disable-svc-external-name.*no effect/.test(l)),
      'no "no effect" warning',
    );
  });
});
