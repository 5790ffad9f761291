// keepip controller --dashboard: the cluster's routes and the requests the controller's gateway
// decided, against the fake API server; the Chain page walks the cluster's model.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type FakeApiServer, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { type Backend, get, seedWeb, startBackend } from '../controller/harness.ts';
import { freePort } from '../helpers/net.ts';
import { startKeepip } from '../helpers/process.ts';

describe('keepip controller --dashboard', () => {
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

  it('serves the routes from the cluster and the decisions of its gateway', async () => {
    const [http, https, health] = [await freePort(), await freePort(), await freePort()];
    const ctl = startKeepip([
      'controller',
      '--kubeconfig',
      api.kubeconfig,
      '--bind-address=127.0.0.1',
      `--http-port=${http}`,
      `--https-port=${https}`,
      `--healthz-port=${health}`,
      '--post-shutdown-grace-period=0',
      '--disable-leader-election',
      '--dashboard=127.0.0.1:0',
    ]);
    try {
      const url = (await ctl.waitFor(/dashboard (http:\/\/127\.0\.0\.1:\d+\/) \(read-only\)/))[1]!;
      await ctl.waitFor(/listening http 127\.0\.0\.1:\d+/);
      assert.equal((await get(http, 'web.example.com', '/seen')).status, 200);
      const info = (await (await fetch(new URL('/api/info', url))).json()) as { mode: string; pages: object };
      assert.equal(info.mode, 'controller');
      assert.deepEqual(info.pages, { decisions: true, routes: true, chain: true, lb: false });
      const routes = (await (await fetch(new URL('/api/routes', url))).json()) as {
        hosts: { host: string }[];
      };
      assert.deepEqual(
        routes.hosts.map((h) => h.host),
        ['web.example.com'],
      );
      let decisions: { target: string; status: number }[] = [];
      const deadline = Date.now() + 15_000;
      while (!decisions.some((d) => d.target === '/seen') && Date.now() < deadline) {
        const body = (await (await fetch(new URL('/api/decisions', url))).json()) as {
          decisions: typeof decisions;
        };
        decisions = body.decisions;
      }
      assert.deepEqual(
        decisions.filter((d) => d.target === '/seen').map((d) => d.status),
        [200],
      );
      const chain = await fetch(new URL('/api/chain?client=203.0.113.9&host=web.example.com', url));
      assert.equal(chain.status, 200);
      assert.equal(((await chain.json()) as { schema: string }).schema, 'keepip.doctor/v1');
    } finally {
      assert.equal(await ctl.stop(), 0);
    }
  });
});
