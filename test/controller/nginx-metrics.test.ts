// The certificate facts behind ingress-nginx's ssl_expire_time_seconds and ssl_certificate_info, as
// Go's crypto/x509 names them: expiry in seconds, the serial in decimal, the issuer's O and CN, the
// key algorithm; and the gauges redone per snapshot, so a host that went leaves no series.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { generate } from 'selfsigned';
import type { Topology } from '../../src/config/model.ts';
import { certificateFacts, createNginxControllerMetrics } from '../../src/controller/nginx-metrics.ts';
import { topologyOf } from '../k8s/helpers.ts';

/** The metrics of a controller Pod ctl-0 in ingress-nginx, with a fresh registry. */
function controllerMetrics() {
  const registry = new Registry();
  const metrics = createNginxControllerMetrics(registry, {
    controllerClass: 'k8s.io/ingress-nginx',
    podNamespace: 'ingress-nginx',
    podName: 'ctl-0',
    electionId: 'ingress-nginx-leader',
  });
  return { registry, metrics };
}

async function rsaCertificate(): Promise<string> {
  const made = await generate(
    [
      { name: 'commonName', value: 'Example Issuing CA' },
      { name: 'organizationName', value: 'Example Org' },
    ],
    { keySize: 2048, algorithm: 'sha256' },
  );
  return made.cert;
}

test('facts of an RSA certificate: expiry, decimal serial, issuer O and CN, RSA', async () => {
  const pem = await rsaCertificate();
  const cert = new X509Certificate(pem);
  const facts = certificateFacts(pem);
  assert.ok(facts !== null);
  assert.equal(facts.expiresSeconds, Math.floor(Date.parse(cert.validTo) / 1000));
  assert.equal(facts.serialNumber, BigInt(`0x${cert.serialNumber}`).toString());
  assert.equal(facts.identifier, `-${facts.serialNumber}`);
  assert.deepEqual(
    [facts.issuerOrganization, facts.issuerCommonName, facts.publicKeyAlgorithm],
    ['Example Org', 'Example Issuing CA', 'RSA'],
  );
  assert.equal(certificateFacts('not a certificate'), null);
});

test('the gauges follow the snapshot: a host that went has no series left', async () => {
  const pem = await rsaCertificate();
  const { registry, metrics } = controllerMetrics();
  const vhost = (host: string) => ({
    host,
    locations: [],
    tls: { secret: { namespace: 'web', name: `${host}-tls` }, hosts: [host], certPem: pem, keyPem: '' },
  });
  const topology = (...hosts: string[]) =>
    ({
      services: [],
      gateway: { virtualHosts: [...hosts.map(vhost), { host: '', tls: null, locations: [] }] },
    }) as unknown as Topology;
  metrics.served(topology('a.example.com', 'b.example.com'));
  let text = await registry.metrics();
  assert.match(
    text,
    /ssl_expire_time_seconds\{namespace="web",class="k8s.io\/ingress-nginx",host="a.example.com",secret_name="a.example.com-tls"/,
  );
  assert.match(text, /ssl_expire_time_seconds\{[^}]*host="b.example.com"/);
  metrics.served(topology('a.example.com'));
  text = await registry.metrics();
  assert.doesNotMatch(text, /host="b.example.com"/);
  assert.match(text, /ssl_certificate_info\{[^}]*host="a.example.com"[^}]*public_key_algorithm="RSA"\} 1/);
  metrics.leading(false);
  assert.match(
    await registry.metrics(),
    /leader_election_status\{controller_namespace="ingress-nginx",controller_class="k8s.io\/ingress-nginx",controller_pod="ctl-0",name="ingress-nginx-leader"\} 0/,
  );
});

const INGRESS = (name: string, service: string) => `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: ${name}, namespace: shop}
spec:
  ingressClassName: nginx
  rules: [{host: ${name}.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: ${service}, port: {number: 80}}}}]}}]
---
`;

test('orphan_ingress: 1 for a missing Service (no-service) or one without a ready endpoint (no-endpoint)', async () => {
  const { registry, metrics } = controllerMetrics();
  const services = `apiVersion: v1
kind: Service
metadata: {name: idle, namespace: shop}
spec: {ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: up, namespace: shop}
spec: {ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: up-1, namespace: shop, labels: {kubernetes.io/service-name: up}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.9], conditions: {ready: true}}]
ports: [{port: 8080}]
---
`;
  metrics.served(
    topologyOf(services + INGRESS('gone', 'nothing') + INGRESS('empty', 'idle') + INGRESS('fine', 'up')),
  );
  const text = await registry.metrics();
  const series = (ingress: string, type: string) =>
    `nginx_ingress_controller_orphan_ingress{controller_namespace="ingress-nginx",controller_class="k8s.io/ingress-nginx",controller_pod="ctl-0",namespace="shop",ingress="${ingress}",type="${type}"}`;
  assert.ok(text.includes(`${series('gone', 'no-service')} 1`), text);
  assert.ok(!text.includes(series('gone', 'no-endpoint')), text);
  assert.ok(text.includes(`${series('empty', 'no-service')} 0`), text);
  assert.ok(text.includes(`${series('empty', 'no-endpoint')} 1`), text);
  assert.ok(text.includes(`${series('fine', 'no-endpoint')} 0`), text);
});
