// proxy-redirect-from and proxy-redirect-to default one by one, as ingress-nginx's proxy annotation
// parser does (each from the annotation, else from the ConfigMap key, an invalid annotation too), and
// are then paired per location as its template writes proxy_redirect.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';

const FROM = 'http://internal.example:8080/app/';
const TO = 'https://public.example/';

/** The proxy_redirect pair of the one location of host `h`, with this ConfigMap and these annotations. */
function redirectOf(data: Record<string, string>, annotations: Record<string, string>) {
  const topology = topologyOf([
    controllerConfigMap(data),
    ...serviceWithEndpoints({ name: 'app', ports: [8080] }),
    ingress({ name: 'h', host: 'h.example', annotations, paths: [{ path: '/', service: 'app', port: 80 }] }),
  ]);
  const vhost = topology.gateway.virtualHosts.find((v) => v.host === 'h.example');
  return { redirect: vhost?.locations[0]?.proxyRedirect ?? null, issues: topology.issues };
}

test('each half comes from the Ingress, else the ConfigMap, then the two are paired', () => {
  const cases: [
    string,
    Record<string, string>,
    Record<string, string>,
    { from: string; to: string } | null,
  ][] = [
    [
      'both in the Ingress',
      {},
      { 'proxy-redirect-from': FROM, 'proxy-redirect-to': TO },
      { from: FROM, to: TO },
    ],
    [
      'from in the Ingress, to in the ConfigMap',
      { 'proxy-redirect-to': TO },
      { 'proxy-redirect-from': FROM },
      { from: FROM, to: TO },
    ],
    [
      'from in the ConfigMap, to in the Ingress',
      { 'proxy-redirect-from': FROM },
      { 'proxy-redirect-to': TO },
      { from: FROM, to: TO },
    ],
    [
      'both in the ConfigMap',
      { 'proxy-redirect-from': FROM, 'proxy-redirect-to': TO },
      {},
      { from: FROM, to: TO },
    ],
    [
      'the Ingress turns it off',
      { 'proxy-redirect-from': FROM, 'proxy-redirect-to': TO },
      { 'proxy-redirect-from': 'off' },
      null,
    ],
    [
      'to off in the Ingress',
      { 'proxy-redirect-from': FROM, 'proxy-redirect-to': TO },
      { 'proxy-redirect-to': 'off' },
      null,
    ],
    ['from default', {}, { 'proxy-redirect-from': 'default', 'proxy-redirect-to': TO }, null],
    ['from alone, to nowhere', {}, { 'proxy-redirect-from': FROM }, null],
    ['nothing anywhere', {}, {}, null],
  ];
  for (const [name, data, annotations, expected] of cases)
    assert.deepEqual(redirectOf(data, annotations).redirect, expected, name);
});

test('an invalid annotation half is warned and the ConfigMap half applies', () => {
  const { redirect, issues } = redirectOf(
    { 'proxy-redirect-from': FROM, 'proxy-redirect-to': TO },
    { 'proxy-redirect-from': 'http://bad example/' },
  );
  assert.deepEqual(redirect, { from: FROM, to: TO });
  assert.ok(
    issues.some(
      (i) => i.code === 'INVALID_ANNOTATION_VALUE' && /proxy-redirect-from/.test(JSON.stringify(i)),
    ),
    JSON.stringify(issues),
  );
});
