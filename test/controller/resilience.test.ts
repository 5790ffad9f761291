// What the API server does to a watcher, and what the controller does about it: dropped streams
// resume from the last resourceVersion (no relist), bookmarks move that version on, 410 Gone (as an
// ERROR event or an HTTP status) relists, and an outage keeps the last good snapshot serving while
// /healthz stays honest, until the API comes back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FakeApiServer } from '../fixtures/fake-apiserver.ts';
import { pollUntil } from '../helpers/descriptors.ts';
import {
  endpointSlice,
  get,
  healthz,
  ingress,
  service,
  waitForEndpoint,
  waitForHost,
  webCluster,
} from './harness.ts';

const lists = (api: FakeApiServer, plural: string) =>
  api.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/${plural}`) && !r.query.has('watch'))
    .length;
const watchesFrom = (api: FakeApiServer, plural: string) =>
  api.requests
    .filter((r) => r.path.endsWith(`/${plural}`) && r.query.get('watch') !== null)
    .map((r) => r.query.get('resourceVersion'));

describe('keepip controller survives the API server', () => {
  const cluster = webCluster(['--disable-leader-election', '--update-status=false']);

  it('asks for bookmarks and resumes a dropped watch from the last resourceVersion, without relisting', async () => {
    const { api, ctl, httpPort } = cluster;
    await api.waitUntil(() => api.openWatches('Ingress') === 1);
    assert.equal(
      api.requests.find((r) => r.query.get('watch') !== null)?.query.get('allowWatchBookmarks'),
      'true',
    );
    api.apply(ingress('web', 'web.example.com', 'web', { annotations: { 'example.com/touch': '1' } }));
    const lastRv = api.get('Ingress', 'default', 'web')!.metadata.resourceVersion;
    const listsBefore = lists(api, 'ingresses');
    assert.equal(api.dropWatches('Ingress'), 1);
    await api.waitForRequest(
      (r) =>
        r.path.endsWith('/ingresses') && r.query.get('resourceVersion') === lastRv && r.query.has('watch'),
    );
    await api.waitUntil(() => api.openWatches('Ingress') === 1);
    assert.equal(lists(api, 'ingresses'), listsBefore);
    // A change made while the stream was down still arrives.
    ctl.mark();
    api.dropWatches('Ingress');
    api.apply(ingress('web', 'web2.example.com', 'web'));
    await waitForHost(ctl, 'web2.example.com');
    assert.equal((await get(httpPort, 'web2.example.com', '/')).status, 200);
  });

  it('a bookmark moves the resume point on', async () => {
    const { api } = cluster;
    await api.waitUntil(() => api.openWatches('Service') === 1);
    api.apply({ kind: 'ConfigMap', metadata: { namespace: 'x', name: 'unrelated' }, data: {} });
    assert.equal(api.bookmark('Service'), 1);
    const bookmarkRv = api.get('ConfigMap', 'x', 'unrelated')!.metadata.resourceVersion;
    // The bookmark precedes the end of the stream, so the resume must name its version.
    api.dropWatches('Service');
    const resumed = await api.waitForRequest(
      (r) =>
        r.path.endsWith('/services') &&
        r.query.has('watch') &&
        Number(r.query.get('resourceVersion')) >= Number(bookmarkRv),
    );
    assert.equal(resumed.query.get('resourceVersion'), bookmarkRv);
  });

  it('relists on 410 Gone (ERROR event) and serves what changed meanwhile', async () => {
    const { api, ctl } = cluster;
    const listsBefore = lists(api, 'ingresses');
    ctl.mark();
    api.compact();
    api.expireWatches('Ingress');
    await ctl.waitForLine(/ingresses: resourceVersion \d+ is too old \(410 Gone\); relisting/);
    await api.waitUntil(() => lists(api, 'ingresses') > listsBefore);
    await api.waitUntil(() => api.openWatches('Ingress') === 1);
  });

  it('relists when a resumed watch is answered with HTTP 410', async () => {
    const { api, ctl } = cluster;
    api.goneAsHttp = true;
    try {
      const listsBefore = lists(api, 'services');
      ctl.mark();
      api.dropWatches('Service');
      api.apply(service('late'));
      api.compact();
      await ctl.waitForLine(/services: resourceVersion \d+ is too old \(410 Gone\); relisting/);
      await api.waitUntil(() => lists(api, 'services') > listsBefore);
    } finally {
      api.goneAsHttp = false;
    }
  });

  it('keeps serving the last good snapshot through an outage, says so, and catches up after it', async () => {
    const { api, web, ctl, httpPort } = cluster;
    ctl.mark();
    api.setDown(true);
    await ctl.waitForLine(/keeping the last good objects, retrying with backoff/);
    assert.equal((await get(httpPort, 'web2.example.com', '/during')).status, 200);
    const health = await healthz(ctl.running.healthzAddress!.port);
    assert.equal(health.status, 200);
    assert.match(health.body, /API server unreachable: serving the last good snapshot/);
    ctl.mark();
    api.apply(endpointSlice('web', '127.0.0.2', web.port));
    api.setDown(false);
    await ctl.waitForLine(/connected again/);
    await waitForEndpoint(ctl, 'web', '127.0.0.2', web.port);
    await api.waitUntil(() => api.openWatches() >= 5);
    // The server counts a watch when it arrives; the controller is connected once every reflector has
    // read its answer, a moment later on a busy machine: /healthz is asked until it says so.
    let after = '';
    await pollUntil('/healthz is ok again', async () => {
      after = (await healthz(ctl.running.healthzAddress!.port)).body;
      return after === 'ok\n';
    });
    assert.equal(after, 'ok\n');
    const retries = watchesFrom(api, 'endpointslices').length;
    assert.ok(retries >= 2, `watch retried (${retries})`);
  });
});
