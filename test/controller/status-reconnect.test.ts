// Ingress status after the API server comes back (ingress-nginx test/e2e/status/update.go): while the
// controller cannot reach the API, someone empties the status and deletes the leader Lease; once the
// API is back the controller leads again (a new Lease) and writes the status again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { webCluster } from './harness.ts';

describe('status after an API outage', () => {
  const cluster = webCluster(['--publish-status-address=1.1.0.0', '--election-id=status-leader'], {
    env: { POD_NAME: 'ctl-0' },
    awaitServing: false,
  });

  it('writes the status again once the API is back, over a cleared status and a deleted Lease', async () => {
    const { api } = cluster;
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
