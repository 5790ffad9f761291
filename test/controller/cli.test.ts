// `keepip controller` as a process, started the way a Deployment starts ingress-nginx: its flags in
// both spellings, POD_NAMESPACE/POD_NAME from the environment, an ingress-nginx flag keepip does not
// implement (a warning naming it), an unknown flag (usage error, exit 2).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type FakeApiServer, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { freePort } from '../helpers/net.ts';
import { runKeepip, startKeepip } from '../helpers/process.ts';
import { type Backend, get, healthz, seedWeb, startBackend } from './harness.ts';

describe('keepip controller (process)', () => {
  let api: FakeApiServer;
  let web: Backend;

  before(async () => {
    api = await startFakeApiServer();
    web = await startBackend('web');
    seedWeb(api, web.port);
  });
  after(async () => {
    await api?.close();
    await web?.close();
  });

  it('an unknown flag is a usage error; --help lists the flags', async () => {
    const bad = await runKeepip(['controller', '--no-such-flag=1']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown flag --no-such-flag/);
    // Neither a kubeconfig nor a cluster around it: exit 1 at once rather than retrying forever.
    const nowhere = startKeepip(['controller', '--http-port=0'], {
      env: { KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '', HOME: '/nonexistent' },
    });
    assert.equal(await nowhere.exited(), 1);
    assert.match(nowhere.output(), /no API server: give --kubeconfig/);
    const help = await runKeepip(['controller', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--publish-status-address/);
    assert.match(help.stdout, /--enable-ssl-passthrough/);
  });

  it('runs with ingress-nginx-style arguments, serves, writes status, and stops on SIGTERM', async () => {
    const [http, https, health] = [await freePort(), await freePort(), await freePort()];
    const ctl = startKeepip(
      [
        'controller',
        '--kubeconfig',
        api.kubeconfig,
        '--bind-address=127.0.0.1',
        `--http-port=${http}`,
        '--https-port',
        String(https),
        `--healthz-port=${health}`,
        '--post-shutdown-grace-period=0',
        '--publish-status-address',
        '198.51.100.7',
        '--election-id=$(POD_NAMESPACE)-leader',
        '--election-ttl=2s',
        '--configmap=$(POD_NAMESPACE)/ingress-nginx-controller',
        '--enable-ssl-passthrough',
        '--sync-period=10m',
        '--v=2',
      ],
      { env: { POD_NAMESPACE: 'edge', POD_NAME: 'ctl-0' } },
    );
    try {
      await ctl.waitFor(
        /warning: flag --sync-period is accepted but has no effect: keepip relies on watches/,
      );
      await ctl.waitFor(/warning: flag --v is accepted but has no effect/);
      await ctl.waitFor(/listening http 127\.0\.0\.1:\d+/);
      assert.equal((await healthz(health)).status, 200);
      assert.equal((await get(http, 'web.example.com', '/p')).body, 'web /p\n');
      await ctl.waitFor(/status of Ingress default\/web: 198\.51\.100\.7/);
      assert.equal(api.get('Lease', 'edge', 'edge-leader')?.spec.holderIdentity, 'ctl-0');
      assert.ok(
        api.requests.some(
          (r) =>
            r.path === '/api/v1/namespaces/edge/configmaps' &&
            r.query.get('fieldSelector') === 'metadata.name=ingress-nginx-controller',
        ),
      );
    } finally {
      assert.equal(await ctl.stop(), 0);
    }
    assert.equal(api.get('Lease', 'edge', 'edge-leader')?.spec.holderIdentity, '');
  });
});
