// ssl-ciphers / ssl-protocols (ConfigMap) and ssl-ciphers / ssl-prefer-server-ciphers (annotations)
// into the model (src/k8s/server-tls.ts), and the context options the gateway makes of them
// (src/gateway/tls.ts serverTlsOptions): defaults, per-host merge, fail-closed values.
import assert from 'node:assert/strict';
import { constants } from 'node:crypto';
import { test } from 'node:test';
import { serverTlsOptions } from '../../src/gateway/tls.ts';
import { DEFAULT_SSL_CIPHERS } from '../../src/k8s/server-tls.ts';
import { controllerConfigMap, ingress, type K8sObject, topologyOf } from '../fixtures/gateway/manifests.ts';

const web = (name: string, host: string, annotations: Record<string, string> = {}, createdAt?: string) =>
  ingress({
    name,
    host,
    paths: [{ path: name === 'a' ? '/' : `/${name}`, service: 'web', port: 80 }],
    annotations,
    ...(createdAt ? { createdAt } : {}),
  });

function translate(objects: K8sObject[]) {
  const topology = topologyOf(objects);
  const host = (name: string) => topology.gateway.virtualHosts.find((v) => v.host === name);
  return { topology, settings: topology.gateway.settings, host };
}

test("no keys: ingress-nginx's defaults apply (absent from the model)", () => {
  const { settings, host } = translate([web('a', 'a.example.com')]);
  assert.equal(settings.serverTls, undefined);
  assert.equal(host('a.example.com')?.serverTls, undefined);
});

test('ConfigMap ssl-ciphers and ssl-protocols; SSLv3 is skipped with a warning', () => {
  const { settings, topology } = translate([
    controllerConfigMap({ 'ssl-ciphers': 'ECDHE-RSA-AES256-GCM-SHA384', 'ssl-protocols': 'SSLv3 TLSv1.3' }),
  ]);
  assert.deepEqual(settings.serverTls, {
    ciphers: 'ECDHE-RSA-AES256-GCM-SHA384',
    protocols: ['TLSv1.3'],
    preferServerCiphers: true,
  });
  const warning = topology.issues.find((i) => i.field === 'data["ssl-protocols"]');
  assert.equal(warning?.severity, 'warning');
  assert.match(warning?.message ?? '', /SSLv3 cannot be offered/);
});

test("an empty ConfigMap ssl-ciphers is nginx's own default (ingress-nginx writes no ssl_ciphers then), not an outage", () => {
  const { settings, topology } = translate([controllerConfigMap({ 'ssl-ciphers': ' ' })]);
  assert.deepEqual(settings.serverTls, {
    ciphers: 'HIGH:!aNULL:!MD5',
    protocols: ['TLSv1.2', 'TLSv1.3'],
    preferServerCiphers: false,
  });
  assert.deepEqual(topology.issues, []);
  assert.equal(serverTlsOptions(settings.serverTls!).ok, true);
});

test('an unknown version or a cipher list of the wrong form is an error and fails closed', () => {
  const { settings, topology } = translate([
    controllerConfigMap({ 'ssl-ciphers': 'HIGH;!aNULL', 'ssl-protocols': 'TLSv1.2 TLSv1.4' }),
  ]);
  assert.match(
    settings.serverTls?.invalidCiphers ?? '',
    /ConfigMap ssl-ciphers: "HIGH;!aNULL" is not an OpenSSL cipher list/,
  );
  assert.match(settings.serverTls?.invalidProtocols ?? '', /"TLSv1.4" is not a TLS version/);
  const codes = topology.issues.filter((i) => i.code === 'INVALID_TLS_SETTINGS').map((i) => i.severity);
  assert.deepEqual(codes, ['error', 'error']);
  const options = serverTlsOptions(settings.serverTls!);
  assert.equal(options.ok, false);
  // SSLv2/SSLv3 alone leave nothing to offer.
  const none = translate([controllerConfigMap({ 'ssl-protocols': 'SSLv2 SSLv3' })]).settings.serverTls;
  assert.match(none?.invalidProtocols ?? '', /names no TLS version/);
});

test('per host: the first Ingress (merge order) that sets each annotation wins; the ConfigMap fills the rest', () => {
  const { host } = translate([
    controllerConfigMap({ 'ssl-protocols': 'TLSv1.3' }),
    web('a', 'a.example.com', { 'ssl-ciphers': 'ECDHE-RSA-AES128-GCM-SHA256' }, '2024-01-01T00:00:00Z'),
    web(
      'b',
      'a.example.com',
      { 'ssl-ciphers': 'AES256-SHA', 'ssl-prefer-server-ciphers': 'false' },
      '2024-02-01T00:00:00Z',
    ),
    web('c', 'c.example.com'),
  ]);
  assert.deepEqual(host('a.example.com')?.serverTls, {
    ciphers: 'ECDHE-RSA-AES128-GCM-SHA256',
    protocols: ['TLSv1.3'],
    preferServerCiphers: false,
  });
  assert.equal(host('c.example.com')?.serverTls, undefined);
});

test("a host's invalid ssl-ciphers fails that host closed, and overrides an invalid ConfigMap list", () => {
  const { host, topology } = translate([
    controllerConfigMap({ 'ssl-ciphers': 'bad list' }),
    web('a', 'a.example.com', { 'ssl-ciphers': 'bad value' }),
    web('b', 'b.example.com', { 'ssl-ciphers': 'ECDHE-RSA-AES128-GCM-SHA256' }),
    web('c', 'c.example.com', { 'ssl-prefer-server-ciphers': 'maybe' }),
  ]);
  assert.match(host('a.example.com')?.serverTls?.invalidCiphers ?? '', /^Ingress default\/a ssl-ciphers: /);
  // Its own valid list replaces the ConfigMap's invalid one.
  assert.equal(host('b.example.com')?.serverTls?.invalidCiphers, undefined);
  assert.equal(host('c.example.com')?.serverTls, undefined);
  const prefer = topology.issues.find((i) => i.field?.includes('ssl-prefer-server-ciphers'));
  assert.equal(prefer?.code, 'INVALID_ANNOTATION_VALUE');
});

test('context options: versions as a range with the gaps switched off; OpenSSL checks the list', () => {
  const options = serverTlsOptions({
    ciphers: DEFAULT_SSL_CIPHERS,
    protocols: ['TLSv1.1', 'TLSv1.3'],
    preferServerCiphers: true,
  });
  assert.ok(options.ok);
  assert.equal(options.value.minVersion, 'TLSv1.1');
  assert.equal(options.value.maxVersion, 'TLSv1.3');
  assert.equal(options.value.secureOptions, constants.SSL_OP_NO_TLSv1_2);
  assert.equal(options.value.honorCipherOrder, true);
  const refused = serverTlsOptions({ ciphers: 'NO-SUCH', protocols: ['TLSv1.2'], preferServerCiphers: true });
  assert.equal(refused.ok, false);
  assert.match(refused.ok ? '' : refused.reason, /OpenSSL refuses "NO-SUCH"/);
  // ingress-nginx's e2e values (annotations/sslciphers.go) pass both checks.
  const legacy = 'ALL:!aNULL:!EXPORT56:RC4+RSA@STRENGTH:+HIGH@SECLEVEL=0:+MEDIUM:+LOW:+SSLv2:+EXP';
  const { host } = translate([web('a', 'a.example.com', { 'ssl-ciphers': legacy })]);
  assert.equal(host('a.example.com')?.serverTls?.ciphers, legacy);
  assert.ok(serverTlsOptions(host('a.example.com')!.serverTls!).ok);
});

test('ssl-passthrough: only when enabled and the host has a "/" backend; otherwise reported', () => {
  const objects = [
    web('a', 'a.example.com', { 'ssl-passthrough': 'true' }),
    web('b', 'b.example.com', { 'ssl-passthrough': 'true' }), // path /b only: no "/" backend
    web('c', 'c.example.com', { 'ssl-passthrough': 'yes' }),
  ];
  const on = topologyOf(objects, { enableSslPassthrough: true });
  const host = (name: string) => on.gateway.virtualHosts.find((v) => v.host === name);
  assert.equal(host('a.example.com')?.sslPassthrough, true);
  assert.equal(host('b.example.com')?.sslPassthrough, undefined);
  assert.equal(host('c.example.com')?.sslPassthrough, undefined);
  const ignored = on.issues.filter((i) => i.code === 'SSL_PASSTHROUGH_IGNORED');
  assert.deepEqual(
    ignored.map((i) => [i.origin?.name, i.severity]),
    [['b', 'warning']],
  );
  assert.match(ignored[0]!.message, /no "\/" path with a backend/);
  assert.ok(on.issues.some((i) => i.code === 'INVALID_ANNOTATION_VALUE' && i.origin?.name === 'c'));
  // Not enabled: every asking Ingress is told, and no host passes through.
  const off = topologyOf(objects);
  assert.ok(off.gateway.virtualHosts.every((v) => v.sslPassthrough === undefined));
  const why = off.issues.filter((i) => i.code === 'SSL_PASSTHROUGH_IGNORED').map((i) => i.origin?.name);
  assert.deepEqual(why, ['a', 'b']);
});
