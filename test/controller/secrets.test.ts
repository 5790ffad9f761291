// Secrets an Ingress names in annotations (auth-secret, auth-tls-secret, proxy-ssl-secret), through the
// fake API server: they are read as ingress-nginx reads them (every Secret type but Helm releases),
// those of the Ingress's namespace reach the translation, and another namespace's never do.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { snapshotObjects, type SnapshotOptions } from '../../src/controller/snapshot.ts';
import { type FakeApiServer, type Obj, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import {
  type Backend,
  DEFAULT_SNAPSHOT_OPTIONS,
  ingressClass,
  get,
  ingress,
  seedWeb,
  startBackend,
  startTestController,
  type TestController,
  waitForHost,
} from './harness.ts';

function basicAuthSecret(namespace: string, name: string): Obj {
  return {
    kind: 'Secret',
    type: 'Opaque',
    metadata: { namespace, name },
    data: { auth: Buffer.from('alice:{PLAIN}wonderland\n').toString('base64') },
  };
}

const ALICE = `Basic ${Buffer.from('alice:wonderland').toString('base64')}`;

describe('Secrets named by annotations', () => {
  let api: FakeApiServer;
  let web: Backend;
  let ctl: TestController;
  let httpPort: number;

  before(async () => {
    api = await startFakeApiServer();
    web = await startBackend('web');
    seedWeb(api, web.port);
    api.apply(basicAuthSecret('default', 'users'));
    api.apply(basicAuthSecret('other', 'users'));
    api.apply(
      ingress('basic', 'basic.example.com', 'web', {
        annotations: {
          'nginx.ingress.kubernetes.io/auth-type': 'basic',
          'nginx.ingress.kubernetes.io/auth-secret': 'users',
        },
      }),
    );
    api.apply(
      ingress('cross', 'cross.example.com', 'web', {
        annotations: {
          'nginx.ingress.kubernetes.io/auth-type': 'basic',
          'nginx.ingress.kubernetes.io/auth-secret': 'other/users',
        },
      }),
    );
    ctl = await startTestController(api);
    httpPort = (await ctl.running.serving()).httpAddress!.port;
    await waitForHost(ctl, 'basic.example.com');
  });
  after(async () => {
    await ctl?.close();
    await api?.close();
    await web?.close();
  });

  it('basic auth from an Opaque Secret of the namespace: 401 without, 200 with the password', async () => {
    assert.equal((await get(httpPort, 'basic.example.com')).status, 401);
    const answer = await get(httpPort, 'basic.example.com', '/', false, { authorization: ALICE });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'web /\n');
  });

  it('a Secret of another namespace is never read: 503 even with the right password', async () => {
    assert.equal(
      (await get(httpPort, 'cross.example.com', '/', false, { authorization: ALICE })).status,
      503,
    );
    const secrets = ctl.running
      .gateway()!
      .snapshot()
      .topology.issues.filter((i) => i.origin?.name === 'cross');
    assert.ok(secrets.some((i) => /another namespace/.test(i.message)));
  });

  it('lists Secrets as ingress-nginx does: every type but Helm releases', () => {
    const lists = api.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/api/v1/secrets'));
    assert.ok(lists.length > 0);
    for (const r of lists) assert.equal(r.query.get('fieldSelector'), 'type!=helm.sh/release.v1');
  });
});

describe('which Secrets the snapshot passes on', () => {
  const options: SnapshotOptions = { ...DEFAULT_SNAPSHOT_OPTIONS, annotationsPrefix: 'custom.example.com' };
  const secret = (namespace: string, name: string): Obj => ({
    type: 'Opaque',
    metadata: { namespace, name },
    data: {},
  });

  it('those its annotations name under the prefix, in its own namespace only', () => {
    const mine = ingress('mine', 'mine.example.com', 'web', {
      annotations: {
        'custom.example.com/auth-tls-secret': 'default/ca',
        'custom.example.com/proxy-ssl-secret': 'default/upstream',
        'custom.example.com/auth-secret': 'other/users',
        'nginx.ingress.kubernetes.io/auth-secret': 'not-this-prefix',
      },
    });
    const objects = snapshotObjects(
      {
        ingresses: [mine],
        ingressClasses: [ingressClass()],
        services: [],
        endpointSlices: [],
        secrets: ['ca', 'upstream', 'not-this-prefix', 'unused']
          .map((n) => secret('default', n))
          .concat(secret('other', 'users')),
        configMaps: [],
        namespaces: null,
      },
      options,
    );
    assert.deepEqual(
      objects.filter((o) => o.kind === 'Secret').map((o) => `${o.origin.namespace}/${o.origin.name}`),
      ['default/ca', 'default/upstream'],
    );
  });
});
