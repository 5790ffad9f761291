// --annotations-prefix over the fake API server: a controller told to read custom.example.com/ applies
// an allowlist written under that prefix (a client outside it gets 403) and ignores one written under
// nginx.ingress.kubernetes.io/ (that Ingress stays open), as ingress-nginx with the same flag does.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { get, ingress, waitForHost, webCluster } from './harness.ts';

describe('keepip controller --annotations-prefix', () => {
  const cluster = webCluster(['--annotations-prefix=custom.example.com'], {
    prepare: (api) => {
      // The test client is 127.0.0.1: outside 10.0.0.0/8.
      const closed = { 'custom.example.com/whitelist-source-range': '10.0.0.0/8' };
      const open = { 'nginx.ingress.kubernetes.io/whitelist-source-range': '10.0.0.0/8' };
      api.apply(ingress('closed', 'closed.example.com', 'web', { annotations: closed }));
      api.apply(ingress('open', 'open.example.com', 'web', { annotations: open }));
    },
  });
  before(async () => {
    await waitForHost(cluster.ctl, 'closed.example.com');
    await waitForHost(cluster.ctl, 'open.example.com');
  });

  it('reads the allowlist under the custom prefix and ignores the standard one', async () => {
    const { ctl, httpPort } = cluster;
    assert.equal((await get(httpPort, 'closed.example.com')).status, 403);
    const open = await get(httpPort, 'open.example.com');
    assert.equal(open.status, 200);
    assert.equal(open.body, 'web /\n');
    assert.ok(!ctl.lines.some((l) => /annotations-prefix.*no effect/.test(l)), 'no "no effect" warning');
  });
});
