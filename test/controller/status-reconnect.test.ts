// Ingress status after the API server comes back (ingress-nginx test/e2e/status/update.go): while the
// controller cannot reach the API, someone empties the status and deletes the leader Lease; once the
// API is back the controller leads again (a new Lease) and writes the status again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type FakeApiServer, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { type Backend, seedWeb, startBackend, startTestController, type TestController } from './harness.ts';

describe('status after an API outage', () => {
  let api: FakeApiServer;
  let web: Backend;
  let ctl: TestController;

  before(async () => {
    api = await startFakeApiServer();
    web = await startBackend('web');
    seedWeb(api, web.port);
    ctl = await startTestController(
      api,
      ['--publish-status-address=1.1.0.0', '--election-id=status-leader'],
      {
        POD_NAME: 'ctl-0',
      },
    );
  });
  after(async () => {
    await ctl?.close();
    await api?.close();
    await web?.close();
  });

  it('writes the status again once the API is back, over a cleared status and a deleted Lease', async () => {
    const shown = () => api.get('Ingress', 'default', 'web');
    await api.waitUntil(() => shown()?.status?.loadBalancer?.ingress?.length === 1);
    api.setDown(true);
    const web = api.get('Ingress', 'default', 'web')!;
    api.apply({ ...web, status: { loadBalancer: { ingress: [] } } });
    api.remove('Lease', 'ingress-nginx', 'status-leader');
    api.setDown(false);
    await api.waitUntil(() => api.get('Lease', 'ingress-nginx', 'status-leader'));
    await api.waitUntil(() => shown()?.status?.loadBalancer?.ingress?.length === 1);
    assert.deepEqual(api.get('Ingress', 'default', 'web')!.status.loadBalancer.ingress, [{ ip: '1.1.0.0' }]);
  });
});
