// proxy-ssl-* at the server level, as ingress-nginx's createServers and template put them: the host's
// first Ingress (merge order) with a usable proxy-ssl-secret writes its proxy_ssl_* in the server block,
// and nginx lets every location inherit the lines it does not write itself. Checked against real nginx
// by test/security/upstream-tls-differential-nginx.test.ts; here, the model each location gets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LocationModel } from '../../src/config/model.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
  opaqueSecret as secret,
} from '../fixtures/gateway/manifests.ts';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const CERT = '-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';

const SECRETS = [
  secret('full', { 'ca.crt': CA, 'tls.crt': CERT, 'tls.key': KEY }),
  secret('ca-only', { 'ca.crt': CA }),
];

/** Ingresses on one host, oldest first; the locations by path. */
function locationsOf(
  specs: { path: string; annotations: Record<string, string> }[],
  configMap: Record<string, string> = {},
): Map<string, LocationModel> {
  const t = topologyOf([
    controllerConfigMap(configMap),
    ...serviceWithEndpoints({ name: 'web', ports: [8443] }),
    ...SECRETS,
    ...specs.map((s, i) =>
      ingress({
        name: `ing-${i}`,
        host: 'h.example',
        createdAt: `2026-01-0${i + 1}T00:00:00Z`,
        paths: [{ path: s.path, service: 'web', port: 80 }],
        annotations: { 'backend-protocol': 'HTTPS', ...s.annotations },
      }),
    ),
  ]);
  const host = t.gateway.virtualHosts.find((h) => h.host === 'h.example')!;
  return new Map(host.locations.map((l) => [l.path, l]));
}

const verifying = {
  'proxy-ssl-secret': 'default/full',
  'proxy-ssl-verify': 'on',
  'proxy-ssl-name': 'backend.internal',
  'proxy-ssl-server-name': 'on',
  'proxy-ssl-verify-depth': '2',
};

test("a location without proxy-ssl-* of its own takes the server's: the first Ingress's that has a usable Secret", () => {
  const byPath = locationsOf([
    { path: '/broken', annotations: { 'proxy-ssl-secret': 'default/missing' } },
    { path: '/a', annotations: verifying },
    { path: '/b', annotations: {} },
    { path: '/c', annotations: { 'proxy-ssl-secret': 'default/ca-only', 'proxy-ssl-verify': 'off' } },
  ]);
  const b = byPath.get('/b')!.proxySsl!;
  assert.deepEqual(
    [b.secret, b.verify, b.name, b.serverName, b.verifyDepth, b.certPem, b.keyPem],
    ['default/full', true, 'backend.internal', true, 2, CERT, KEY],
    'the unverified Ingress of the host is verified as the server says',
  );
  // /c has its own Secret and verify off: its lines win, the name and the client certificate it lacks
  // are the server's.
  const c = byPath.get('/c')!.proxySsl!;
  assert.deepEqual(
    [c.secret, c.verify, c.name, c.serverName, c.certPem, c.keyPem],
    ['default/ca-only', false, 'backend.internal', false, CERT, KEY],
  );
  // The denied location stays denied (503), whatever the server has.
  assert.match(byPath.get('/broken')!.access?.denied?.reason ?? '', /not in the manifests/);
});

test('the server writes proxy_ssl_name and proxy_ssl_server_name only with a name: without one, no SNI is inherited', () => {
  const byPath = locationsOf([
    { path: '/a', annotations: { 'proxy-ssl-secret': 'default/full', 'proxy-ssl-server-name': 'on' } },
    { path: '/b', annotations: {} },
  ]);
  assert.equal(byPath.get('/a')!.proxySsl!.serverName, true);
  const b = byPath.get('/b')!.proxySsl!;
  assert.deepEqual([b.name, b.serverName, b.certPem], [null, false, CERT]);
});

test('proxy-ssl-location-only "true": each Ingress keeps its own, the others none', () => {
  const byPath = locationsOf(
    [
      { path: '/a', annotations: verifying },
      { path: '/b', annotations: {} },
      { path: '/c', annotations: { 'proxy-ssl-secret': 'default/ca-only' } },
    ],
    { 'proxy-ssl-location-only': 'true' },
  );
  assert.equal(byPath.get('/a')!.proxySsl!.verify, true);
  assert.equal(byPath.get('/b')!.proxySsl, undefined);
  const c = byPath.get('/c')!.proxySsl!;
  assert.deepEqual([c.name, c.certPem], [null, null]);
});

test("another host's Ingress never lends its proxy-ssl-*", () => {
  const t = topologyOf([
    ...serviceWithEndpoints({ name: 'web', ports: [8443] }),
    ...SECRETS,
    ingress({
      name: 'a',
      host: 'a.example',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations: { 'backend-protocol': 'HTTPS', ...verifying },
    }),
    ingress({
      name: 'b',
      host: 'b.example',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations: { 'backend-protocol': 'HTTPS' },
    }),
  ]);
  const b = t.gateway.virtualHosts.find((h) => h.host === 'b.example')!;
  assert.equal(b.locations.find((l) => l.path === '/')!.proxySsl, undefined);
});

test('proxy-ssl-* on a gRPC Ingress: a warning that nothing of it applies (nor in ingress-nginx)', () => {
  const t = topologyOf([
    ...serviceWithEndpoints({ name: 'web', ports: [8443] }),
    ...SECRETS,
    ingress({
      name: 'g',
      host: 'g.example',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations: { ...verifying, 'backend-protocol': ' grpcs' },
    }),
  ]);
  const warned = t.issues.filter((i) => i.code === 'PROXY_SSL_NOT_FOR_GRPC');
  assert.equal(warned.length, 1);
  assert.equal(warned[0]!.severity, 'warning');
  assert.match(warned[0]!.message, /backend-protocol GRPCS: proxy-ssl-\* do not apply to gRPC backends/);
  const https = topologyOf([
    ...serviceWithEndpoints({ name: 'web', ports: [8443] }),
    ...SECRETS,
    ingress({
      name: 'h',
      host: 'h.example',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations: { ...verifying, 'backend-protocol': 'HTTPS' },
    }),
  ]);
  assert.equal(https.issues.filter((i) => i.code === 'PROXY_SSL_NOT_FOR_GRPC').length, 0);
});
