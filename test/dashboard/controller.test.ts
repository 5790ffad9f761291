// keepip controller --dashboard: the cluster's routes and the requests the controller's gateway
// decided, against the fake API server; the Chain page walks the cluster's model.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type FakeApiServer, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { type Backend, get, seedWeb, startBackend } from '../controller/harness.ts';
import { HIDDEN_FAULT } from '../helpers/hidden-fault.ts';
import { freePort } from '../helpers/net.ts';
import { startKeepip } from '../helpers/process.ts';

describe('keepip controller --dashboard', () => {
  let api: FakeApiServer;
  let web: Backend;
  before(async () => {
    api = await startFakeApiServer();
    web = await startBackend('web');
    seedWeb(api, web.port);
    // The hidden fault of test/helpers/hidden-fault.ts, in the cluster: an NLB sending PROXY v2 the
    // gateway does not expect, and X-Forwarded-For believed from all of 127/8.
    api.apply({
      kind: 'ConfigMap',
      metadata: { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' },
      data: { 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': '127.0.0.0/8' },
    });
    api.apply({
      kind: 'Service',
      metadata: {
        namespace: 'ingress-nginx',
        name: 'ingress-nginx-controller',
        // The seed's NLB (examples/seed/before), sending PROXY v2.
        annotations: {
          'service.beta.kubernetes.io/aws-load-balancer-type': 'external',
          'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internal',
          'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip',
          'service.beta.kubernetes.io/aws-load-balancer-proxy-protocol': '*',
          'keepip.dev/lb-source-address': '127.0.10.1',
          'keepip.dev/client-path': 'transit-gateway',
        },
      },
      spec: { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 80, protocol: 'TCP' }] },
    });
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
      '--configmap=ingress-nginx/ingress-nginx-controller',
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
      const chain = await fetch(new URL('/api/chain?client=127.0.20.10&host=web.example.com', url));
      assert.equal(chain.status, 200);
      // The doctor on the cluster's model, and what its fix, applied to the cluster's objects, reveals.
      const report = (await chain.json()) as {
        schema: string;
        findings: { id: string }[];
        afterFix: { id: string; fix: { patches: { patch: unknown }[] } }[];
      };
      assert.equal(report.schema, 'keepip.doctor/v1');
      assert.deepEqual(
        [report.findings.map((f) => f.id), report.afterFix.map((f) => [f.id, f.fix.patches[0]?.patch])],
        [HIDDEN_FAULT.findings, HIDDEN_FAULT.afterFix],
      );
    } finally {
      assert.equal(await ctl.stop(), 0);
    }
  });
});
