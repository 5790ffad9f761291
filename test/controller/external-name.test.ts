// --disable-svc-external-name over the fake API server: an Ingress whose Service is of type ExternalName
// gets no endpoint (503), with a warning naming the Service, as ingress-nginx's controller.go skips such
// a Service with the flag ("not allowed due to Ingress configuration"). Without the flag the name is the
// one member (test/e2e/gateway-external-name.test.ts).
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { get, ingress, waitForHost, webCluster } from './harness.ts';

describe('keepip controller --disable-svc-external-name', () => {
  const cluster = webCluster(['--disable-svc-external-name'], {
    prepare: (api) => {
      api.apply({
        kind: 'Service',
        metadata: { namespace: 'default', name: 'ext' },
        spec: { type: 'ExternalName', externalName: 'api.example.com' },
      });
      api.apply(ingress('ext', 'ext.example.com', 'ext'));
    },
  });
  before(() => waitForHost(cluster.ctl, 'ext.example.com'));

  it('an ExternalName Service has no endpoint: 503, and the issue names it', async () => {
    const { ctl, httpPort } = cluster;
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
