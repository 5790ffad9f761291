// The controller ConfigMap changes live (ingress-nginx test/e2e/settings/configmap_change.go): a
// whitelist-source-range added to it applies to the served Ingresses without a restart, and a later
// change of another key reloads again and keeps it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { get, webCluster } from './harness.ts';

function controllerConfigMap(data: Record<string, string>) {
  return {
    kind: 'ConfigMap',
    metadata: { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' },
    data,
  };
}

describe('a change of the controller ConfigMap', () => {
  const cluster = webCluster(['--configmap=$(POD_NAMESPACE)/ingress-nginx-controller'], {
    prepare: (api) => {
      api.apply(controllerConfigMap({}));
    },
  });

  it('applies a whitelist-source-range added later, and keeps it across the next change', async () => {
    const { api, ctl, httpPort } = cluster;
    assert.equal((await get(httpPort, 'web.example.com')).status, 200);
    ctl.mark();
    api.apply(controllerConfigMap({ 'whitelist-source-range': '1.1.1.1' }));
    await ctl.waitForLine(/^reloaded: config v\d+/);
    assert.equal((await get(httpPort, 'web.example.com')).status, 403);
    ctl.mark();
    api.apply(controllerConfigMap({ 'whitelist-source-range': '1.1.1.1', 'error-log-level': 'debug' }));
    await ctl.waitForLine(/^reloaded: config v\d+/);
    assert.equal((await get(httpPort, 'web.example.com')).status, 403);
    ctl.mark();
    api.apply(controllerConfigMap({ 'error-log-level': 'debug' }));
    await ctl.waitForLine(/^reloaded: config v\d+/);
    assert.equal((await get(httpPort, 'web.example.com')).status, 200);
  });
});
