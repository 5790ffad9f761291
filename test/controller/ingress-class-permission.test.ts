// A controller whose service account may not list IngressClasses, as ingress-nginx's e2e test
// test/e2e/settings/ingress_class.go ("Without IngressClass Cluster scoped Permission") runs it:
// ingress-nginx then disables the IngressClass feature (cmd/nginx/main.go, IgnoreIngressClass), so
// the kubernetes.io/ingress.class annotation selects Ingresses and spec.ingressClassName is ignored.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type FakeApiServer, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import {
  type Backend,
  endpointSlice,
  get,
  ingress,
  service,
  startBackend,
  startTestController,
  type TestController,
} from './harness.ts';

describe('without permission to list IngressClasses', () => {
  let api: FakeApiServer;
  let web: Backend;
  let ctl: TestController;
  let httpPort: number;

  before(async () => {
    api = await startFakeApiServer();
    api.forbidden.add('ingressclasses');
    web = await startBackend('web');
    api.apply(service('web'));
    api.apply(endpointSlice('web', '127.0.0.1', web.port));
    const annotated = ingress('annotated', 'foo.example.com', 'web', {
      annotations: { 'kubernetes.io/ingress.class': 'testclass' },
    });
    delete annotated.spec.ingressClassName;
    api.apply(annotated);
    api.apply(ingress('class-name-only', 'noclassforyou.example.com', 'web'));
    ctl = await startTestController(api, ['--ingress-class=testclass']);
    // Before: the IngressClass reflector never synced, so nothing was ever served.
    await ctl.waitFor(() => ctl.running.gateway() !== null, 'the first sync is served', 10_000);
    httpPort = ctl.running.gateway()!.httpAddress!.port;
  });
  after(async () => {
    await ctl?.close();
    await api?.close();
    await web?.close();
  });

  it('says so once at start-up', () => {
    assert.equal(ctl.lines.filter((l) => /IngressClass/.test(l) && /403|forbidden/i.test(l)).length, 1);
  });

  it('serves an Ingress whose class annotation is --ingress-class', async () => {
    assert.equal((await get(httpPort, 'foo.example.com', '/x')).body, 'web /x\n');
  });

  it('ignores an Ingress that only has spec.ingressClassName', async () => {
    assert.equal((await get(httpPort, 'noclassforyou.example.com')).status, 404);
  });
});
