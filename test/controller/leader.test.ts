// Two replicas against one fake API server: they race for the Lease and exactly one wins (the other
// gets 409 or sees a valid holder), the follower never takes over while the leader renews, only the
// leader writes Ingress status, and when the leader stops it releases the Lease and the follower takes
// over and keeps the status. Short leases come from --election-ttl (client-go's defaults otherwise).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type FakeApiServer, type Obj, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { type Backend, seedWeb, startBackend, startTestController, type TestController } from './harness.ts';

function pod(name: string, node: string): Obj {
  return {
    kind: 'Pod',
    metadata: {
      namespace: 'ingress-nginx',
      name,
      labels: { 'app.kubernetes.io/name': 'ingress-nginx', 'pod-template-hash': name },
    },
    spec: { nodeName: node },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

const leasePuts = (api: FakeApiServer, holder: string) =>
  api.requests.filter(
    (r) =>
      r.path.endsWith('/leases/ingress-nginx-leader') &&
      r.method === 'PUT' &&
      r.status === 200 &&
      r.body?.spec?.holderIdentity === holder,
  ).length;
const statusPuts = (api: FakeApiServer) =>
  api.requests.filter((r) => r.path.endsWith('/status') && r.method === 'PUT');

describe('leader election and Ingress status', () => {
  let api: FakeApiServer;
  let web: Backend;
  const controllers: Record<string, TestController> = {};

  before(async () => {
    api = await startFakeApiServer();
    web = await startBackend('web');
    seedWeb(api, web.port);
    api.apply(pod('ctl-a', 'node-a'));
    api.apply(pod('ctl-b', 'node-b'));
    api.apply({
      kind: 'Node',
      metadata: { name: 'node-a' },
      status: { addresses: [{ type: 'InternalIP', address: '10.1.0.1' }] },
    });
    api.apply({
      kind: 'Node',
      metadata: { name: 'node-b' },
      status: {
        addresses: [
          { type: 'InternalIP', address: '10.1.0.2' },
          { type: 'ExternalIP', address: '203.0.113.2' },
        ],
      },
    });
    const flags = ['--election-ttl=2s', '--election-id=ingress-nginx-leader'];
    const [a, b] = await Promise.all([
      startTestController(api, flags, { POD_NAME: 'ctl-a' }),
      startTestController(api, flags, { POD_NAME: 'ctl-b' }),
    ]);
    controllers['ctl-a'] = a;
    controllers['ctl-b'] = b;
  });
  after(async () => {
    for (const c of Object.values(controllers)) await c.close();
    await api?.close();
    await web?.close();
  });

  let leaderName = '';
  let followerName = '';

  it('exactly one replica wins the race; the other follows it', async () => {
    const won = await Promise.race(
      Object.entries(controllers).map(([name, c]) => c.waitForLine(/became the leader/).then(() => name)),
    );
    leaderName = won;
    followerName = won === 'ctl-a' ? 'ctl-b' : 'ctl-a';
    await controllers[followerName]!.waitForLine(new RegExp(`the leader is ${leaderName}`));
    assert.equal(api.get('Lease', 'ingress-nginx', 'ingress-nginx-leader')!.spec.holderIdentity, leaderName);
    assert.equal(api.get('Lease', 'ingress-nginx', 'ingress-nginx-leader')!.spec.leaseDurationSeconds, 2);
  });

  it('the follower does not take over while the leader renews', async () => {
    const start = leasePuts(api, leaderName);
    await api.waitUntil(() => leasePuts(api, leaderName) >= start + 3);
    assert.ok(!controllers[followerName]!.lines.some((l) => /became the leader/.test(l)));
    assert.equal(controllers[followerName]!.running.leading(), false);
  });

  it('only the leader writes status: the nodes of the ready controller pods', async () => {
    await controllers[leaderName]!.waitForLine(/status of Ingress default\/web: 10\.1\.0\.1,203\.0\.113\.2/);
    const status = api.get('Ingress', 'default', 'web')!.status.loadBalancer.ingress;
    assert.deepEqual(status, [{ ip: '10.1.0.1' }, { ip: '203.0.113.2' }]);
    assert.equal(statusPuts(api).length, 1);
    assert.ok(!controllers[followerName]!.lines.some((l) => /status of Ingress/.test(l)));
  });

  it('a stopped leader releases the Lease; the follower takes over and keeps the status', async () => {
    const leader = controllers[leaderName]!;
    delete controllers[leaderName];
    await leader.close();
    assert.ok(leader.lines.includes('released the Lease'));
    // Two nodes' addresses: left for the next leader, as ingress-nginx's Shutdown (checked first).
    assert.ok(leader.lines.includes('the status has 2 addresses: kept on shutdown for the next leader'));
    await controllers[followerName]!.waitForLine(/became the leader/);
    const lease = api.get('Lease', 'ingress-nginx', 'ingress-nginx-leader')!.spec;
    assert.equal(lease.holderIdentity, followerName);
    assert.equal(lease.leaseTransitions, 1);
    assert.deepEqual(api.get('Ingress', 'default', 'web')!.status.loadBalancer.ingress, [
      { ip: '10.1.0.1' },
      { ip: '203.0.113.2' },
    ]);
  });
});
