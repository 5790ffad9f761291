// The ConfigMaps the configuration names, read from the API server as ingress-nginx's store reads them
// (it lists every ConfigMap of the watched namespaces): the controller ConfigMap's add-headers and
// proxy-set-headers, an Ingress's custom-headers (in its own namespace) and auth-proxy-set-headers.
// Found here, fixed: the controller listed only the three ConfigMaps its flags name, so in a cluster
// add-headers and proxy-set-headers added nothing (a warning) and every location with custom-headers
// was denied (503), where the same manifests served with `keepip gateway` worked.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { before, describe, it } from 'node:test';
import http from '../../src/node-http.ts';
import { snapshotObjects } from '../../src/controller/snapshot.ts';
import { configMap } from '../fixtures/gateway/manifests.ts';
import {
  DEFAULT_SNAPSHOT_OPTIONS,
  EMPTY_CLUSTER,
  endpointSlice,
  get,
  ingress,
  service,
  webCluster,
} from './harness.ts';

const CONTROLLER = configMap('ingress-nginx-controller', 'ingress-nginx', {
  'add-headers': 'ingress-nginx/add',
  'proxy-set-headers': 'proxy',
  'global-allowed-response-headers': 'X-Custom',
});

describe('ConfigMaps named by add-headers, proxy-set-headers and custom-headers, in a cluster', () => {
  // A backend that answers with the X-Proxy-Set header it got.
  let echoPort = 0;
  before(async () => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`x-proxy-set=${req.headers['x-proxy-set']}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    server.unref();
    echoPort = (server.address() as AddressInfo).port;
  });
  const cluster = webCluster(['--configmap=$(POD_NAMESPACE)/ingress-nginx-controller'], {
    prepare: (api) => {
      api.apply(CONTROLLER);
      api.apply(configMap('add', 'ingress-nginx', { 'X-Add': 'added $status' }));
      api.apply(configMap('proxy', 'ingress-nginx', { 'X-Proxy-Set': 'from-proxy-set-headers' }));
      api.apply(configMap('custom', 'default', { 'X-Custom': 'v1' }));
      api.apply(service('echo'));
      api.apply(endpointSlice('echo', '127.0.0.1', echoPort));
      api.apply(ingress('echo', 'echo.example.com', 'echo', { annotations: annotations('custom') }));
    },
  });

  it('serves them: add-headers on every answer, proxy-set-headers to the backend, custom-headers on the location', async () => {
    const { httpPort } = cluster;
    const answer = await get(httpPort, 'echo.example.com');
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'x-proxy-set=from-proxy-set-headers');
    assert.equal(answer.headers['x-add'], 'added 200');
    assert.equal(answer.headers['x-custom'], 'v1');
    assert.equal((await get(httpPort, 'unknown.example.com')).headers['x-add'], 'added 404');
  });

  it('a change to a named ConfigMap reloads with its new data', async () => {
    const { api, ctl, httpPort } = cluster;
    ctl.mark();
    api.apply(configMap('custom', 'default', { 'X-Custom': 'v2' }));
    await ctl.waitForLine(/^reloaded: config v\d+/);
    assert.equal((await get(httpPort, 'echo.example.com')).headers['x-custom'], 'v2');
  });
});

function annotations(customHeaders: string): Record<string, string> {
  return { 'nginx.ingress.kubernetes.io/custom-headers': customHeaders };
}

describe('the ConfigMaps a snapshot passes on', () => {
  const names = (objects: ReturnType<typeof snapshotObjects>) =>
    objects.filter((o) => o.kind === 'ConfigMap').map((o) => `${o.origin.namespace}/${o.origin.name}`);
  const cluster = (ingressAnnotations: Record<string, string>, settings: Record<string, string> = {}) => ({
    ...EMPTY_CLUSTER,
    services: [service('web'), service('web', 'team-b')],
    ingresses: [
      ingress('web', 'web.example.com', 'web', { annotations: ingressAnnotations }),
      {
        ...ingress('b', 'b.example.com', 'web'),
        metadata: { namespace: 'team-b', name: 'b', annotations: ingressAnnotations },
      },
    ],
    configMaps: [
      configMap('ingress-nginx-controller', 'ingress-nginx', { 'add-headers': 'add', ...settings }),
      configMap('add', 'ingress-nginx', { 'X-A': 'a' }),
      configMap('custom', 'default', { 'X-C': 'c' }),
      configMap('custom', 'team-b', { 'X-C': 'b' }),
      configMap('auth-headers', 'default', { 'X-Auth': 'a' }),
      configMap('kube-root-ca.crt', 'default', { 'ca.crt': 'unrelated' }),
      configMap('leader-lock', 'other', { holder: 'someone' }),
    ],
  });
  const options = { ...DEFAULT_SNAPSHOT_OPTIONS, configMap: 'ingress-nginx/ingress-nginx-controller' };

  it('only the named ones: the controller ConfigMap, add-headers (a bare name: its namespace), custom-headers and auth-proxy-set-headers in the Ingress namespace', () => {
    const objects = snapshotObjects(
      cluster({
        'nginx.ingress.kubernetes.io/custom-headers': 'custom',
        'nginx.ingress.kubernetes.io/auth-proxy-set-headers': 'auth-headers',
      }),
      options,
    );
    assert.deepEqual(names(objects), [
      'default/auth-headers',
      'default/custom',
      'ingress-nginx/add',
      'ingress-nginx/ingress-nginx-controller',
      'team-b/custom',
    ]);
  });

  it("another namespace's ConfigMap only with allow-cross-namespace-resources", () => {
    const crossing = { 'nginx.ingress.kubernetes.io/custom-headers': 'default/custom' };
    assert.deepEqual(names(snapshotObjects(cluster(crossing), options)), [
      'default/custom',
      'ingress-nginx/add',
      'ingress-nginx/ingress-nginx-controller',
    ]);
    const allowed = cluster(crossing, { 'allow-cross-namespace-resources': 'true' });
    assert.ok(names(snapshotObjects(allowed, options)).includes('default/custom'));
  });
});
