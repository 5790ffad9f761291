// Path types and backends end to end, drawn from ingress-nginx's e2e tests test/e2e/ingress/
// (pathtype_exact.go, pathtype_mixed.go, pathtype_prefix.go, without_host.go) and
// test/e2e/servicebackend/service_nil_backend.go: which location answers, and a backend that is not a
// Service (a `resource` backend) skipped as ingress-nginx skips it, so the default backend answers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { echoOf, request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';

/** An Ingress whose only rule has no http paths, backed by spec.defaultBackend (without_host.go). */
function backendOnly(name: string, host: string, backend: Record<string, unknown>): K8sObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: 'default' },
    spec: { ingressClassName: 'nginx', defaultBackend: backend, rules: [{ host }] },
  };
}

/** An Ingress with one path whose backend is a `resource` (service_nil_backend.go). */
function resourceIngress(name: string, host: string, createdAt: string): K8sObject {
  const resource = { apiGroup: 'otherobj.testingress.com', kind: 'Anything', name: 'mytest' };
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: 'default', creationTimestamp: createdAt },
    spec: {
      ingressClassName: 'nginx',
      rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { resource } }] } }],
    },
  };
}

describe('path types and backends (ingress-nginx e2e ingress/ and servicebackend/)', () => {
  let exact: RunningWhoami;
  let prefix: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    exact = await startWhoami({ host: '127.0.0.1', port: 0, name: 'exact' });
    prefix = await startWhoami({ host: '127.0.0.1', port: 0, name: 'prefix' });
    const to = (service: string, path: string, pathType: 'Exact' | 'Prefix' | 'ImplementationSpecific') => ({
      path,
      pathType,
      service,
      port: 80,
    });
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'exact', ports: [exact.address.port] }),
        ...serviceWithEndpoints({ name: 'prefix', ports: [prefix.address.port] }),
        ingress({ name: 'exact', host: 'exact.path', paths: [to('exact', '/exact', 'Exact')] }),
        ingress({ name: 'exact-suffix', host: 'exact.path', paths: [to('prefix', '/exact', 'Prefix')] }),
        // pathtype_exact.go: a later "duplicated-prefix" must not take /exact/ from "exact-suffix", even when
        // both were created in the same second: ingress-nginx orders equal times by name, descending.
        ...['tie-duplicated', 'tie-suffix'].map((name) =>
          ingress({
            name,
            host: 'tie.path',
            createdAt: '2025-01-01T00:00:00Z',
            paths: [to(name === 'tie-suffix' ? 'prefix' : 'exact', '/exact', 'Prefix')],
          }),
        ),
        ingress({
          name: 'mixed',
          host: 'mixed.path',
          paths: [
            to('exact', '/', 'Exact'),
            to('prefix', '/', 'Prefix'),
            to('exact', '/foo', 'Exact'),
            to('prefix', '/foo', 'Prefix'),
          ],
        }),
        ingress({ name: 'aaa', host: 'prefix.path', paths: [to('prefix', '/aaa', 'Prefix')] }),
        ingress({
          name: 'regex',
          host: 'echo.regex.br',
          paths: [to('prefix', '/id/[0-9]+$', 'ImplementationSpecific')],
          annotations: { 'use-regex': 'true' },
        }),
        ingress({ name: 'default-host', paths: [to('prefix', '/', 'Prefix')] }),
        backendOnly('backend', 'only-backend', { service: { name: 'exact', port: { number: 80 } } }),
        resourceIngress('nil-backend', 'nilbackend.svc.com', '2025-01-01T00:00:00Z'),
        ingress({ name: 'valid', host: 'valid.svc.com', paths: [to('prefix', '/', 'Prefix')] }),
        backendOnly('resource-default', 'resource-default.svc.com', {
          resource: { apiGroup: 'x.example', kind: 'Anything', name: 'mytest' },
        }),
        // The older Ingress's resource path does not take `/` from this one.
        resourceIngress('taken-first', 'taken.svc.com', '2025-01-01T00:00:00Z'),
        ingress({
          name: 'taken-second',
          host: 'taken.svc.com',
          createdAt: '2025-01-02T00:00:00Z',
          paths: [to('prefix', '/', 'Prefix')],
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await exact.close();
    await prefix.close();
  });

  const answers: Array<[string, string, number, string | null]> = [
    // pathtype_exact.go: Exact beats Prefix for the same path; the Prefix answers below it.
    ['exact.path', '/exact', 200, 'exact'],
    ['exact.path', '/exact/suffix', 200, 'prefix'],
    ['tie.path', '/exact/suffix', 200, 'prefix'],
    // pathtype_mixed.go
    ['mixed.path', '/', 200, 'exact'],
    ['mixed.path', '/bar', 200, 'prefix'],
    ['mixed.path', '/foo', 200, 'exact'],
    ['mixed.path', '/foo/bar', 200, 'prefix'],
    ['mixed.path', '/foobar', 200, 'prefix'],
    // pathtype_prefix.go: a Prefix matches whole path elements.
    ['prefix.path', '/aaa', 200, 'prefix'],
    ['prefix.path', '/aaacccc', 404, null],
    ['prefix.path', '/aaa/cccc', 200, 'prefix'],
    ['prefix.path', '/aaa/', 200, 'prefix'],
    ['echo.regex.br', '/id/1', 200, 'prefix'],
    ['echo.regex.br', '/id/aaa', 404, null],
    ['echo.regex.br', '/id/123a', 404, null],
    // without_host.go: a rule without a host is the catch-all; a host with only spec.defaultBackend is
    // served by it, and that backend is not the catch-all's.
    ['anything.example', '/', 200, 'prefix'],
    ['only-backend', '/', 200, 'exact'],
    // service_nil_backend.go: a resource backend is skipped, the host's root answers 404.
    ['valid.svc.com', '/', 200, 'prefix'],
    ['nilbackend.svc.com', '/', 404, null],
    ['nilbackend.svc.com', '/x', 404, null],
    ['resource-default.svc.com', '/', 404, null],
    ['taken.svc.com', '/', 200, 'prefix'],
  ];
  for (const [host, path, status, backend] of answers) {
    test(`${host}${path}: ${status}${backend === null ? '' : ` from ${backend}`}`, async () => {
      const reply = await request(gw.httpPort, { host, path, headers: { accept: 'application/json' } });
      assert.equal(reply.status, status, reply.body);
      if (backend !== null) assert.equal(echoOf(reply).name, backend);
    });
  }
});

// pathtype_prefix.go's regex cases write the regex as a Prefix path; ingress-nginx validates Exact
// and Prefix paths only in its admission webhook, and only with strict-validate-path-type (default
// true, which keepip follows by dropping such a path). With the key "false", they route as there.
describe('strict-validate-path-type "false": a Prefix path with use-regex is a regex (pathtype_prefix.go)', () => {
  let echo: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    echo = await startWhoami({ host: '127.0.0.1', port: 0, name: 'echo' });
    const regex = (host: string, path: string) =>
      ingress({
        name: host,
        host,
        paths: [{ path, pathType: 'Prefix', service: 'echo', port: 80 }],
        annotations: { 'use-regex': 'true' },
      });
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({ 'strict-validate-path-type': 'false' }),
        ...serviceWithEndpoints({ name: 'echo', ports: [echo.address.port] }),
        regex('echo.com.br', '/id/[0-9]+'),
        regex('echo.regex.br', '/id/[0-9]+$'),
        regex('echo.regex.size.br', '/id/[0-9]{3}$'),
        regex('echo.multi.segment.br', '/id/[0-9]+/post/[a-zA-Z]+$'),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await echo.close();
  });

  const answers: Array<[string, string, number]> = [
    ['echo.com.br', '/id/1', 200],
    ['echo.com.br', '/id/123', 200],
    ['echo.com.br', '/id/aaa', 404],
    ['echo.com.br', '/id/123a', 200],
    ['echo.regex.br', '/id/1', 200],
    ['echo.regex.br', '/id/aaa', 404],
    ['echo.regex.br', '/id/123a', 404],
    ['echo.regex.size.br', '/id/99', 404],
    ['echo.regex.size.br', '/id/123', 200],
    ['echo.regex.size.br', '/id/9999', 404],
    ['echo.multi.segment.br', '/id/123/post/abc', 200],
    ['echo.multi.segment.br', '/id/123/post/abc123', 404],
    ['echo.multi.segment.br', '/id/abc/post/abc', 404],
  ];
  for (const [host, path, status] of answers) {
    test(`${host}${path}: ${status}`, async () => {
      assert.equal((await request(gw.httpPort, { host, path })).status, status);
    });
  }

  test('no INVALID_PATH is reported', () => {
    const codes = gw.gateway.snapshot().topology.issues.map((i) => i.code);
    assert.ok(!codes.includes('INVALID_PATH'), codes.join(', '));
  });
});
