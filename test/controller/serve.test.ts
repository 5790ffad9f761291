// keepip controller against the fake API server, end to end: a request through the controller's
// HTTP port reaches a backend on 127.0.0.1 found through EndpointSlices; /healthz turns ready only
// after the first complete sync; changes are applied.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type Backend,
  endpointSlice,
  get,
  healthz,
  ingress,
  service,
  startBackend,
  waitForEndpoint,
  waitForHost,
  webCluster,
} from './harness.ts';

describe('keepip controller serves the cluster', () => {
  const cluster = webCluster(['--publish-status-address=10.0.0.1']);
  let other: Backend;

  before(async () => {
    other = await startBackend('other');
  });
  after(async () => {
    await other?.close();
  });

  it('routes a request by Host to the EndpointSlice backend', async () => {
    const { web, httpPort } = cluster;
    const before = web.hits;
    const answer = await get(httpPort, 'web.example.com', '/hello');
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'web /hello\n');
    assert.equal(web.hits, before + 1);
    assert.equal((await get(httpPort, 'unknown.example.com')).status, 404);
  });

  it('/healthz is ready once serving', async () => {
    const { ctl } = cluster;
    const answer = await healthz(ctl.running.healthzAddress!.port);
    assert.equal(answer.status, 200);
  });

  it('applies a new Ingress, then its removal', async () => {
    const { api, ctl, httpPort } = cluster;
    ctl.mark();
    api.apply(service('other'));
    api.apply(endpointSlice('other', '127.0.0.1', other.port));
    api.apply(ingress('other', 'other.example.com', 'other'));
    await waitForHost(ctl, 'other.example.com');
    assert.equal((await get(httpPort, 'other.example.com', '/x')).body, 'other /x\n');
    ctl.mark();
    api.remove('Ingress', 'default', 'other');
    await waitForHost(ctl, 'other.example.com', false);
    assert.equal((await get(httpPort, 'other.example.com', '/x')).status, 404);
  });

  it('follows endpoint changes', async () => {
    const { api, ctl, httpPort } = cluster;
    ctl.mark();
    api.apply(endpointSlice('web', '127.0.0.1', other.port));
    await waitForEndpoint(ctl, 'web', '127.0.0.1', other.port);
    assert.equal((await get(httpPort, 'web.example.com', '/y')).body, 'other /y\n');
  });
});
