// SIGTERM with --shutdown-grace-period (ingress-nginx test/e2e/gracefulshutdown/grace_period.go):
// during the grace period /healthz fails with 500, as ingress-nginx's healthz handler answers a
// failed check, while requests are still served; the controller stops after it. Then in-flight requests
// get the ConfigMap's worker-shutdown-timeout (nginx's graceful quit), and the exit waits
// --post-shutdown-grace-period, as ingress-nginx's SIGTERM handler.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type HeldBackend, startHeldBackend } from '../helpers/held-backend.ts';
import { endpointSlice, get, healthz, ingress, service, waitForHost, webCluster } from './harness.ts';

describe('--shutdown-grace-period', () => {
  const cluster = webCluster(['--shutdown-grace-period=3'], { awaitServing: false });

  it('/healthz answers 500 during the grace period while traffic is still served', async () => {
    const { ctl } = cluster;
    const httpPort = (await ctl.running.serving()).httpAddress!.port;
    const healthPort = ctl.running.healthzAddress!.port;
    assert.equal((await healthz(healthPort)).status, 200);
    ctl.mark();
    const closing = ctl.close();
    await ctl.waitForLine(/^shutting down/);
    const answer = await healthz(healthPort);
    assert.equal(answer.status, 500);
    assert.match(answer.body, /shutting down/);
    assert.equal((await get(httpPort, 'web.example.com')).status, 200);
    await closing;
    await ctl.waitForLine(/^stopped$/);
  });
});

describe('worker-shutdown-timeout and --post-shutdown-grace-period', () => {
  let held: HeldBackend;
  const cluster = webCluster(
    ['--configmap=$(POD_NAMESPACE)/ingress-nginx-controller', '--post-shutdown-grace-period=1'],
    {
      prepare: async (api) => {
        held = await startHeldBackend({ hold: (url) => url.startsWith('/hold') });
        api.apply({
          kind: 'ConfigMap',
          metadata: { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' },
          data: { 'worker-shutdown-timeout': '1s' },
        });
        api.apply(service('slow'));
        api.apply(endpointSlice('slow', '127.0.0.1', held.port));
        api.apply(ingress('slow', 'slow.example.com', 'slow'));
      },
    },
  );
  after(() => held?.close());

  it('a request still in flight at SIGTERM gets worker-shutdown-timeout, then the exit waits', async () => {
    const { ctl, httpPort } = cluster;
    await waitForHost(ctl, 'slow.example.com');
    const inFlight = get(httpPort, 'slow.example.com', '/hold').then(
      (answer) => `answered ${answer.status}`,
      (error: NodeJS.ErrnoException) => `cut: ${error.code ?? error.message}`,
    );
    await held.arrived(/^\/hold/);
    const started = Date.now();
    ctl.mark();
    await ctl.close();
    // The held request was cut at the deadline, not waited for: the backend never answered it.
    assert.match(await inFlight, /^cut: /);
    const drained = ctl.lines.findIndex((l) =>
      /^drained; exiting in 1 s \(--post-shutdown-grace-period\)$/.test(l),
    );
    assert.ok(drained >= 0, ctl.lines.join('\n'));
    assert.equal(ctl.lines.at(-1), 'stopped');
    // 1 s of worker-shutdown-timeout and 1 s of --post-shutdown-grace-period, at least; far from the
    // 240 s default that would apply if the ConfigMap key were not read.
    const took = Date.now() - started;
    assert.ok(took >= 2000 && took < 60_000, `closed after ${took} ms`);
  });
});
