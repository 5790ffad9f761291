// Secrets through the fake API server: those an Ingress names in annotations (auth-secret,
// auth-tls-secret, proxy-ssl-secret) are read as ingress-nginx reads them (every Secret type but Helm
// releases), those of the Ingress's namespace reach the translation, another namespace's never do; a
// TLS Secret whose certificate does not match its key costs only its own hosts their certificate.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { snapshotObjects, type SnapshotOptions } from '../../src/controller/snapshot.ts';
import type { Obj } from '../fixtures/fake-apiserver.ts';
import {
  DEFAULT_SNAPSHOT_OPTIONS,
  ingressClass,
  get,
  ingress,
  keyPair,
  peerCertificate,
  tlsSecret,
  waitForHost,
  webCluster,
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
  let caPem: string;
  const cluster = webCluster(['--default-ssl-certificate=default/fallback'], {
    prepare: async (api) => {
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
      // auth-tls: the CA in an Opaque Secret, as kubectl create secret generic makes it.
      const ca = await keyPair('client-ca');
      caPem = ca.cert;
      api.apply({
        kind: 'Secret',
        type: 'Opaque',
        metadata: { namespace: 'default', name: 'client-ca' },
        data: { 'ca.crt': Buffer.from(ca.cert).toString('base64') },
      });
      api.apply(
        ingress('mtls', 'mtls.example.com', 'web', {
          annotations: { 'nginx.ingress.kubernetes.io/auth-tls-secret': 'default/client-ca' },
        }),
      );
      // TLS: one good Secret, one whose certificate is another key's.
      api.apply(await tlsSecret('good-tls', 'good.example.com'));
      const other = await keyPair('other');
      api.apply(
        await tlsSecret('bad-tls', 'bad.example.com', {
          cert: (await keyPair('bad.example.com')).cert,
          key: other.key,
        }),
      );
      api.apply(await tlsSecret('fallback', 'keepip-test-default'));
      api.apply(
        ingress('good', 'good.example.com', 'web', {
          tls: [{ hosts: ['good.example.com'], secretName: 'good-tls' }],
        }),
      );
      api.apply(
        ingress('bad', 'bad.example.com', 'web', {
          tls: [{ hosts: ['bad.example.com'], secretName: 'bad-tls' }],
        }),
      );
    },
  });
  before(() => waitForHost(cluster.ctl, 'basic.example.com'));

  it('basic auth from an Opaque Secret of the namespace: 401 without, 200 with the password', async () => {
    const { httpPort } = cluster;
    assert.equal((await get(httpPort, 'basic.example.com')).status, 401);
    const answer = await get(httpPort, 'basic.example.com', '/', false, { authorization: ALICE });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'web /\n');
  });

  it('a Secret of another namespace is never read: 503 even with the right password', async () => {
    const { ctl, httpPort } = cluster;
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

  it('auth-tls-secret: the CA of an Opaque Secret of the namespace reaches the gateway', () => {
    const { ctl } = cluster;
    const vhost = ctl.running
      .gateway()!
      .snapshot()
      .topology.gateway.virtualHosts.find((v) => v.host === 'mtls.example.com');
    assert.equal(vhost?.clientCertificate?.error, null);
    assert.equal(vhost?.clientCertificate?.caPem, caPem);
  });

  it('a TLS Secret whose certificate does not match its key: its host gets the default certificate, the others keep theirs', async () => {
    const { ctl, httpsPort } = cluster;
    await waitForHost(ctl, 'bad.example.com');
    assert.equal(await peerCertificate(httpsPort, 'good.example.com'), 'good.example.com');
    assert.equal(await peerCertificate(httpsPort, 'bad.example.com'), 'keepip-test-default');
    assert.equal((await get(httpsPort, 'bad.example.com', '/x', true)).body, 'web /x\n');
  });

  it('lists Secrets as ingress-nginx does: every type but Helm releases', () => {
    const { api } = cluster;
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
  it("the one the controller ConfigMap's ssl-dh-param names", () => {
    const configMap: Obj = {
      metadata: { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' },
      data: { 'ssl-dh-param': 'ingress-nginx/dh' },
    };
    const objects = snapshotObjects(
      {
        ingresses: [],
        ingressClasses: [ingressClass()],
        services: [],
        endpointSlices: [],
        secrets: [secret('ingress-nginx', 'dh'), secret('ingress-nginx', 'unused')],
        configMaps: [configMap],
        namespaces: null,
      },
      options,
    );
    assert.deepEqual(
      objects.filter((o) => o.kind === 'Secret').map((o) => `${o.origin.namespace}/${o.origin.name}`),
      ['ingress-nginx/dh'],
    );
  });
});

describe('allow-cross-namespace-resources: "true"', () => {
  const cluster = webCluster(['--configmap=$(POD_NAMESPACE)/ingress-nginx-controller'], {
    prepare: (api) => {
      api.apply({
        kind: 'ConfigMap',
        metadata: { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' },
        data: { 'allow-cross-namespace-resources': 'true' },
      });
      api.apply(basicAuthSecret('shared', 'users'));
      api.apply(
        ingress('cross', 'cross.example.com', 'web', {
          annotations: {
            'nginx.ingress.kubernetes.io/auth-type': 'basic',
            'nginx.ingress.kubernetes.io/auth-secret': 'shared/users',
          },
        }),
      );
    },
  });
  before(() => waitForHost(cluster.ctl, 'cross.example.com'));

  it("the other namespace's Secret is read: 401 without the password, 200 with it", async () => {
    const { httpPort } = cluster;
    assert.equal((await get(httpPort, 'cross.example.com')).status, 401);
    const answer = await get(httpPort, 'cross.example.com', '/', false, { authorization: ALICE });
    assert.equal(answer.status, 200);
  });
});
