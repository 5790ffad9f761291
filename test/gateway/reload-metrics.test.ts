// ingress-nginx's reload metrics: last reload successful (its NGINXConfigFailed alert), when, how many
// applied and refused, and a config hash that two replicas serving the same configuration share.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import type { Topology } from '../../src/config/model.ts';
import { DEFAULT_REQUEST_METRICS } from '../../src/config/request-metrics.ts';
import { configHash, createReloadMetrics } from '../../src/gateway/reload-metrics.ts';
import { topologyOf } from '../k8s/helpers.ts';

const INGRESS = (host: string) => `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  ingressClassName: nginx
  rules: [{host: ${host}, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
`;

const onPod = (topology: Topology, pod: string): Topology => ({
  ...topology,
  gateway: {
    ...topology.gateway,
    requestMetrics: {
      ...DEFAULT_REQUEST_METRICS,
      controllerNamespace: 'ingress-nginx',
      controllerClass: 'k8s.io/ingress-nginx',
      controllerPod: pod,
    },
  },
});

test('applied, then refused: last reload successful 1 then 0, success and errors counted, with the controller labels', async () => {
  const registry = new Registry();
  const reloads = createReloadMetrics(registry);
  const served = onPod(topologyOf(INGRESS('a.example.com')), 'ctl-0');
  reloads.reload('applied', served);
  const labels =
    'controller_namespace="ingress-nginx",controller_class="k8s.io/ingress-nginx",controller_pod="ctl-0"';
  let text = await registry.metrics();
  assert.ok(text.includes(`nginx_ingress_controller_config_last_reload_successful{${labels}} 1`), text);
  assert.ok(text.includes(`nginx_ingress_controller_success{${labels}} 1`), text);
  assert.ok(text.includes(`nginx_ingress_controller_config_hash{${labels}} ${configHash(served)}`), text);
  assert.match(
    text,
    new RegExp(
      `nginx_ingress_controller_config_last_reload_successful_timestamp_seconds\\{${labels}\\} \\d{10}`,
    ),
  );
  reloads.reload('rejected', served);
  text = await registry.metrics();
  assert.ok(text.includes(`nginx_ingress_controller_config_last_reload_successful{${labels}} 0`), text);
  assert.ok(text.includes(`nginx_ingress_controller_errors{${labels}} 1`), text);
});

test('the config hash is the same on two pods serving the same configuration, and changes with it', () => {
  const a = topologyOf(INGRESS('a.example.com'));
  assert.equal(configHash(onPod(a, 'ctl-0')), configHash(onPod(a, 'ctl-1')));
  assert.notEqual(configHash(a), configHash(topologyOf(INGRESS('b.example.com'))));
  assert.ok(Number.isSafeInteger(configHash(a)));
});
