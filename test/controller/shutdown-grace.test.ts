// SIGTERM with --shutdown-grace-period (ingress-nginx test/e2e/gracefulshutdown/grace_period.go):
// during the grace period /healthz fails with 500, as ingress-nginx's healthz handler answers a
// failed check, while requests are still served; the controller stops after it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { get, healthz, webCluster } from './harness.ts';

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
