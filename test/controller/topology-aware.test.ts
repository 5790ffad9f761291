// --enable-topology-aware-routing through the fake API server: the controller reads its Pod
// (POD_NAME), that Pod's node and the node's topology.kubernetes.io/zone label, and a Service with
// topology-mode Auto is then served only by the endpoints its EndpointSlices hint for that zone.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Obj } from '../fixtures/fake-apiserver.ts';
import { type Backend, get, ingress, service, startBackend, waitForHost, webCluster } from './harness.ts';

/** One slice per zone: the endpoint 127.0.0.1 on `port`, hinted for `zone`. */
function zoneSlice(name: string, port: number, zone: string): Obj {
  return {
    kind: 'EndpointSlice',
    metadata: { namespace: 'default', name, labels: { 'kubernetes.io/service-name': 'zoned' } },
    addressType: 'IPv4',
    endpoints: [
      { addresses: ['127.0.0.1'], conditions: { ready: true }, hints: { forZones: [{ name: zone }] } },
    ],
    ports: [{ name: 'http', port, protocol: 'TCP' }],
  };
}

describe('--enable-topology-aware-routing', () => {
  let near: Backend;
  let far: Backend;
  const cluster = webCluster(['--enable-topology-aware-routing'], {
    env: { POD_NAME: 'ctl-0' },
    prepare: async (api) => {
      near = await startBackend('near');
      far = await startBackend('far');
      api.apply({
        kind: 'Pod',
        metadata: { namespace: 'ingress-nginx', name: 'ctl-0' },
        spec: { nodeName: 'node-1' },
      });
      api.apply({
        kind: 'Node',
        metadata: { name: 'node-1', labels: { 'topology.kubernetes.io/zone': 'zone-a' } },
      });
      const zoned = service('zoned');
      zoned.metadata.annotations = { 'service.kubernetes.io/topology-mode': 'Auto' };
      api.apply(zoned);
      api.apply(zoneSlice('zoned-a', near.port, 'zone-a'));
      api.apply(zoneSlice('zoned-b', far.port, 'zone-b'));
      api.apply(ingress('zoned', 'zoned.example.com', 'zoned'));
    },
  });
  before(() => waitForHost(cluster.ctl, 'zoned.example.com'));
  after(async () => {
    await near?.close();
    await far?.close();
  });

  it("reads its node's zone and serves the Service from that zone's endpoints only", async () => {
    const { ctl, httpPort } = cluster;
    assert.ok(
      ctl.lines.includes('topology-aware routing: zone zone-a (node node-1) for Services that ask for it'),
    );
    for (let i = 0; i < 6; i++)
      assert.equal((await get(httpPort, 'zoned.example.com', `/${i}`)).body, `near /${i}\n`);
    assert.equal(far.hits, 0);
  });
});
