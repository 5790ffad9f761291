// add-headers, proxy-set-headers and custom-headers ConfigMaps (src/k8s/header-settings.ts): values go
// out as their UTF-8 bytes, as nginx sends a ConfigMap's values; fields that frame a message or belong
// to one connection are left out with a warning (nginx sends them and breaks every answer they reach).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { topologyOf } from './helpers.ts';

const YAML = `
apiVersion: v1
kind: ConfigMap
metadata: { name: ingress-nginx-controller, namespace: ingress-nginx }
data:
  add-headers: ingress-nginx/add
  proxy-set-headers: ingress-nginx/set
  global-allowed-response-headers: X-Custom,Content-Length,Connection
---
apiVersion: v1
kind: ConfigMap
metadata: { name: add, namespace: ingress-nginx }
data: { X-Name: "café → ok", Content-Length: "3", Transfer-Encoding: chunked, X-Frame-Options: DENY }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: set, namespace: ingress-nginx }
data: { X-Set: "é", Connection: close, Content-Length: "0" }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: custom, namespace: default }
data: { X-Custom: c1, Content-Length: "3", Connection: close }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: default
  annotations: { nginx.ingress.kubernetes.io/custom-headers: default/custom }
spec:
  ingressClassName: nginx
  rules:
    - host: a.test
      http:
        paths:
          - { path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }
`;

test('values are their UTF-8 bytes (é is C3 A9, → is E2 86 92); the map is kept whole', () => {
  const { gateway } = topologyOf(YAML);
  const add = gateway.settings.addHeaders ?? {};
  assert.equal(add['x-name'], Buffer.from('café → ok', 'utf8').toString('latin1'));
  assert.equal(add['x-frame-options'], 'DENY');
  assert.equal(gateway.settings.proxySetHeaders?.['x-set'], '\u00c3\u00a9');
});

test('Content-Length and hop-by-hop fields are left out of every map, each with a warning naming it', () => {
  const { gateway, issues } = topologyOf(YAML);
  assert.deepEqual(Object.keys(gateway.settings.addHeaders ?? {}).sort(), ['x-frame-options', 'x-name']);
  assert.deepEqual(Object.keys(gateway.settings.proxySetHeaders ?? {}), ['x-set']);
  const custom = gateway.virtualHosts.find((v) => v.host === 'a.test')?.locations[0]?.customHeaders;
  assert.deepEqual(custom, { 'x-custom': 'c1' });
  const framing = issues
    .filter((i) => i.message.includes('frames the message'))
    .map((i) => `${i.field} ${/(\S+) frames the message/.exec(i.message)?.[1]}`);
  assert.deepEqual(
    framing.map((line) => line.replace(/^.*"(add-headers|proxy-set-headers|[^"]*custom-headers)"\]/, '$1')),
    [
      'add-headers Content-Length',
      'add-headers Transfer-Encoding',
      'proxy-set-headers Connection',
      'proxy-set-headers Content-Length',
      'nginx.ingress.kubernetes.io/custom-headers Content-Length',
      'nginx.ingress.kubernetes.io/custom-headers Connection',
    ],
  );
});

test('a control character is still refused, naming the value (not the key) as the reason', () => {
  const { gateway, issues } = topologyOf(YAML.replace('X-Frame-Options: DENY', 'X-Split: "a\\r\\nb"'));
  assert.equal(gateway.settings.addHeaders, undefined);
  assert.ok(
    issues.some((i) => /add-headers.*the value of X-Split holds a control character/.test(i.message)),
    issues.map((i) => i.message).join('\n'),
  );
});
