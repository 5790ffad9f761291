// Snapshots: which configurations are refused (and which degrade safely), where upstream traffic goes,
// where trust comes from, what start-up warnings say, and that pooled connections are released only
// when a retired snapshot has no request left. Plus one in-process check of invariant 7: a request that
// started on the old snapshot finishes on it after a reload.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { snapshotEvents } from '../../src/gateway/gateway.ts';
import { buildSnapshot, requestEnded, resolveBackendTargets } from '../../src/gateway/snapshot.ts';
import { ConnectionRegistry } from '../../src/gateway/upstream.ts';
import { request, startTestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  opaqueSecret,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { type HeldBackend, startHeldBackend } from '../helpers/held-backend.ts';

const registry = new ConnectionRegistry();
after(() => registry.closeAll(0));

function build(objects: K8sObject[], trustedProxies: string[] | null = null) {
  return buildSnapshot(topologyOf(objects), {
    version: 1,
    trustedProxies,
    logFormat: 'text',
    connections: registry,
  });
}

const web = (annotations: Record<string, string> = {}) =>
  ingress({
    name: 'web',
    host: 'web.example.com',
    paths: [{ path: '/', service: 'web', port: 80 }],
    annotations,
  });

describe('which configurations a snapshot refuses', () => {
  test('an invalid allowlist is served (that location fails closed), not refused', () => {
    const result = build([
      ...serviceWithEndpoints({ name: 'web', ports: [1] }),
      web({ 'allowlist-source-range': 'ww' }),
    ]);
    assert.equal(result.ok, true);
    if (result.ok) result.snapshot.retire();
  });

  test('an invalid proxy-real-ip-cidr refuses the whole snapshot (trust is never guessed) and names the key', () => {
    const result = build([
      controllerConfigMap({ 'use-proxy-protocol': 'true', 'proxy-real-ip-cidr': '10.0.0.0/33' }),
      web(),
    ]);
    assert.equal(result.ok, false);
    if (!result.ok) {
      assert.equal(result.error.code, 'GATEWAY_CONFIG_INVALID');
      assert.ok(result.error.issues.some((issue) => (issue.field ?? '').includes('proxy-real-ip-cidr')));
    }
  });

  test('an invalid --trusted-proxies entry refuses the snapshot', () => {
    const result = build([web()], ['10.0.0.0/8', 'not-a-cidr']);
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.error.code, 'GATEWAY_TRUSTED_CIDRS_INVALID');
  });

  test('a wrongly typed field refuses the snapshot with file, document and field', () => {
    const broken = { ...web(), spec: { rules: 42 } };
    const result = build([broken]);
    assert.equal(result.ok, false);
    if (!result.ok) {
      const issue = result.error.issues[0]!;
      assert.equal(issue.origin?.file, 'test.yaml');
      assert.equal(issue.origin?.document, 1);
      assert.equal(issue.field, 'spec.rules');
    }
  });
});

describe('trust', () => {
  test('--trusted-proxies overrides proxy-real-ip-cidr; the default trusts everyone and says so', () => {
    const objects = [
      controllerConfigMap({ 'use-proxy-protocol': 'true', 'proxy-real-ip-cidr': '10.0.0.0/8' }),
      web(),
    ];
    const fromConfigMap = build(objects);
    const fromFlag = build(objects, ['192.0.2.0/24']);
    const defaulted = build([controllerConfigMap({ 'use-proxy-protocol': 'true' }), web()]);
    assert.ok(fromConfigMap.ok && fromFlag.ok && defaulted.ok);
    assert.equal(fromConfigMap.snapshot.trustSource, 'configmap');
    assert.equal(fromConfigMap.snapshot.trusted.has('10.1.2.3'), true);
    assert.equal(fromFlag.snapshot.trustSource, 'flag');
    assert.equal(fromFlag.snapshot.trusted.has('10.1.2.3'), false);
    assert.equal(fromFlag.snapshot.trusted.has('192.0.2.9'), true);
    assert.equal(defaulted.snapshot.trustSource, 'default');
    const warnings = snapshotEvents(defaulted.snapshot).filter((event) => event.event === 'trust-everyone');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /PROXY headers are accepted from every peer/);
    assert.equal(
      snapshotEvents(fromFlag.snapshot).filter((event) => event.event === 'trust-everyone').length,
      0,
    );
    for (const result of [fromConfigMap, fromFlag, defaulted]) result.snapshot.retire();
  });
});

describe('upstream targets', () => {
  const topology = topologyOf([
    ...serviceWithEndpoints({ name: 'web', ports: [8081, 8082], notReady: [8083], clusterIP: '10.96.0.10' }),
  ]);
  const backend = {
    service: { namespace: 'default', name: 'web' },
    port: 80,
    upstreamName: 'default-web-80',
  };

  test('ready endpoints of the Service port; not-ready ones are left out', () => {
    assert.deepEqual(resolveBackendTargets(topology.services, backend, false), [
      { address: '127.0.0.1', port: 8081 },
      { address: '127.0.0.1', port: 8082 },
    ]);
  });

  test('the port may be named', () => {
    assert.equal(resolveBackendTargets(topology.services, { ...backend, port: 'http' }, false).length, 2);
    assert.deepEqual(resolveBackendTargets(topology.services, { ...backend, port: 'nope' }, false), []);
  });

  test('service-upstream sends to the ClusterIP and the Service port', () => {
    assert.deepEqual(resolveBackendTargets(topology.services, backend, true), [
      { address: '10.96.0.10', port: 80 },
    ]);
  });

  test("ExternalName: one member, the Service port's targetPort or the Ingress port (ingress-nginx externalNamePorts)", () => {
    const external = (name: string, ports: unknown[]): K8sObject => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'default' },
      spec: {
        type: 'ExternalName',
        externalName: 'api.example.com.',
        ...(ports.length > 0 ? { ports } : {}),
      },
    });
    const services = topologyOf([
      external('bare', []),
      external('ported', [{ name: 'web', port: 80, targetPort: 8080 }]),
      external('named-target', [{ name: 'web', port: 80, targetPort: 'http' }]),
    ]).services;
    const to = (name: string, port: number | string) =>
      resolveBackendTargets(
        services,
        { service: { namespace: 'default', name }, port, upstreamName: 'x' },
        false,
      );
    assert.deepEqual(to('bare', 8443), [{ address: 'api.example.com', port: 8443 }]);
    assert.deepEqual(to('bare', 'web'), []);
    assert.deepEqual(to('ported', 80), [{ address: 'api.example.com', port: 8080 }]);
    assert.deepEqual(to('ported', 'web'), [{ address: 'api.example.com', port: 8080 }]);
    assert.deepEqual(to('ported', 9000), [{ address: 'api.example.com', port: 9000 }]);
    assert.deepEqual(to('named-target', 'web'), [{ address: 'api.example.com', port: 80 }]);
    // service-upstream does not apply: an ExternalName Service has no ClusterIP.
    assert.deepEqual(
      resolveBackendTargets(
        services,
        { service: { namespace: 'default', name: 'ported' }, port: 80, upstreamName: 'x' },
        true,
      ),
      [{ address: 'api.example.com', port: 8080 }],
    );
  });

  test('a missing Service has no target (its locations answer 503) and is reported at start-up', () => {
    assert.deepEqual(
      resolveBackendTargets(topology.services, { ...backend, service: { namespace: 'x', name: 'y' } }, false),
      [],
    );
    const result = build([web()]);
    assert.ok(result.ok);
    assert.deepEqual(result.snapshot.emptyUpstreams, ['default-web-80']);
    assert.ok(snapshotEvents(result.snapshot).some((event) => event.event === 'no-endpoints'));
    result.snapshot.retire();
  });
});

test('proxy-ssl-protocols / -ciphers OpenSSL refuses are said at load time (UPSTREAM_TLS_SETTINGS_INVALID), once per setting', () => {
  const ca = opaqueSecret('ca', {
    'ca.crt': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  });
  const https = (name: string, annotations: Record<string, string>) =>
    ingress({
      name,
      host: `${name}.example.com`,
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations: { 'backend-protocol': 'HTTPS', 'proxy-ssl-secret': 'default/ca', ...annotations },
    });
  const result = build([
    ...serviceWithEndpoints({ name: 'web', ports: [9443] }),
    ca,
    https('ciphers', { 'proxy-ssl-ciphers': 'NO-SUCH-CIPHER' }),
    https('ciphers-too', { 'proxy-ssl-ciphers': 'NO-SUCH-CIPHER' }),
    https('versions', { 'proxy-ssl-protocols': 'TLSv1.2TLSv1.3' }),
    https('fine', { 'proxy-ssl-ciphers': 'ECDHE-ECDSA-AES128-GCM-SHA256', 'proxy-ssl-protocols': 'TLSv1.3' }),
  ]);
  assert.ok(result.ok);
  const events = snapshotEvents(result.snapshot).filter((e) => e.event === 'upstream-tls-settings');
  assert.deepEqual(
    events.map((e) => [e.level, e.code]),
    [
      ['error', 'UPSTREAM_TLS_SETTINGS_INVALID'],
      ['error', 'UPSTREAM_TLS_SETTINGS_INVALID'],
    ],
  );
  assert.match(
    events[0]!.message,
    /Secret default\/ca cannot be used \(.*no cipher match.*\): requests to those HTTPS backends fail \(502\)/,
  );
  assert.match(events[1]!.message, /"TLSv1\.2TLSv1\.3" is not a valid/);
  result.snapshot.retire();
});

test('a retired snapshot releases its pooled connections only after its last request', () => {
  const local = new ConnectionRegistry();
  const result = buildSnapshot(
    topologyOf([...serviceWithEndpoints({ name: 'web', ports: [9001, 9002] }), web()]),
    {
      version: 1,
      trustedProxies: null,
      logFormat: 'text',
      connections: local,
    },
  );
  assert.ok(result.ok);
  const snap = result.snapshot;
  assert.equal(local.size, 2);
  snap.inflight += 1;
  snap.retire();
  assert.equal(local.size, 2, 'an in-flight request keeps the pools');
  requestEnded(snap);
  assert.equal(local.size, 0);
});

describe('reload while a request is in flight', () => {
  let backend: HeldBackend;
  before(async () => {
    backend = await startHeldBackend({ hold: (url) => url.includes('hold') });
  });
  after(() => backend.close());

  test('the request finishes on the snapshot it started with; the next one sees the new config', async () => {
    const gw = await startTestGateway(
      topologyOf([...serviceWithEndpoints({ name: 'web', ports: [backend.port] }), web()]),
    );
    try {
      const slow = request(gw.httpPort, { host: 'web.example.com', path: '/?hold' });
      // In flight: the backend holds it until the reload is done.
      await backend.arrived(/hold/);
      // The new config drops the route entirely.
      const reloaded = gw.gateway.reload(
        topologyOf([...serviceWithEndpoints({ name: 'web', ports: [backend.port] })]),
      );
      assert.equal(reloaded.ok, true);
      assert.equal((await request(gw.httpPort, { host: 'web.example.com' })).status, 404);
      backend.release();
      assert.equal((await slow).status, 200);
    } finally {
      await gw.close();
    }
  });
});

describe('start-up and reload lines name what compiling the routes found', () => {
  test('an invalid path regex is reported by code (ROUTE_INVALID_REGEX) and its location fails closed', () => {
    const built = build([
      ...serviceWithEndpoints({ name: 'web', ports: [8080] }),
      ingress({
        name: 'web',
        host: 'web.example.com',
        paths: [{ path: '/bad(', pathType: 'ImplementationSpecific', service: 'web', port: 80 }],
        annotations: { 'use-regex': 'true' },
      }),
    ]);
    assert.ok(built.ok);
    const events = snapshotEvents(built.snapshot).filter((event) => event.event === 'config-issue');
    assert.deepEqual(
      events.map((event) => [event.level, event.code]),
      [['error', 'ROUTE_INVALID_REGEX']],
    );
    assert.match(events[0]?.message ?? '', /Ingress default\/web.*"\/bad\(".*\[ROUTE_INVALID_REGEX\]$/);
    built.snapshot.retire();
  });
});
