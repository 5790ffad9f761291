// A leader that dies without releasing the Lease (SIGKILL): the standby takes over only once the lease
// has expired on its own clock — never before the last renewal plus the lease duration — and then
// writes the status. Two real processes, a 2 s lease from --election-ttl.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type FakeApiServer, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { freePort } from '../helpers/net.ts';
import { type Running, startKeepip } from '../helpers/process.ts';
import { type Backend, seedWeb, startBackend } from './harness.ts';

const LEASE = '/apis/coordination.k8s.io/v1/namespaces/edge/leases/keepip-leader';

describe('failover after a leader crash', () => {
  let api: FakeApiServer;
  let web: Backend;
  const procs: Record<string, Running> = {};

  before(async () => {
    api = await startFakeApiServer();
    web = await startBackend('web');
    seedWeb(api, web.port);
  });
  after(async () => {
    for (const p of Object.values(procs)) await p.stop();
    await api?.close();
    await web?.close();
  });

  async function start(name: string): Promise<Running> {
    const ports = [await freePort(), await freePort(), await freePort()];
    const p = startKeepip(
      [
        'controller',
        `--kubeconfig=${api.kubeconfig}`,
        '--bind-address=127.0.0.1',
        `--http-port=${ports[0]}`,
        `--https-port=${ports[1]}`,
        `--healthz-port=${ports[2]}`,
        // Stopping a replica exits once drained, without ingress-nginx's 10 s wait after it.
        '--post-shutdown-grace-period=0',
        '--election-id=keepip-leader',
        '--election-ttl=2s',
        '--publish-status-address=203.0.113.50',
      ],
      { env: { POD_NAMESPACE: 'edge', POD_NAME: name } },
    );
    procs[name] = p;
    return p;
  }

  it('the standby waits out the lease, then leads', async () => {
    const a = await start('ctl-a');
    await a.waitFor(/became the leader/);
    const b = await start('ctl-b');
    await b.waitFor(/the leader is ctl-a/);
    a.child.kill('SIGKILL');
    await a.stop();
    delete procs['ctl-a'];
    await b.waitFor(/became the leader/);
    const puts = api.requests.filter((r) => r.path === LEASE && r.method === 'PUT' && r.status === 200);
    const lastByA = puts.filter((r) => r.body?.spec?.holderIdentity === 'ctl-a').at(-1)!;
    const takeover = puts.find((r) => r.body?.spec?.holderIdentity === 'ctl-b')!;
    assert.ok(
      takeover.at - lastByA.at >= 2000,
      `took over ${takeover.at - lastByA.at} ms after the last renewal`,
    );
    assert.equal(takeover.body!.spec.leaseTransitions, 1);
    assert.equal(api.get('Lease', 'edge', 'keepip-leader')!.spec.holderIdentity, 'ctl-b');
  });
});
