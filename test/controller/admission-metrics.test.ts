// What ingress-nginx's admission metrics report of a review (internal/ingress/metric/collectors/
// admission.go and controller.go's CheckIngress): check_success or check_errors per Ingress of ours,
// never for another class's, and the gauges of the last passing check only. A fake clock splits the
// translation from the checks. Pure, and a real prom-client registry.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { type AdmissionCheck, reviewAdmission } from '../../src/controller/admission.ts';
import { createAdmissionMetrics } from '../../src/controller/admission-metrics.ts';
import type { KubeObject } from '../../src/controller/resources.ts';
import { EMPTY_CLUSTER, DEFAULT_SNAPSHOT_OPTIONS as options } from './harness.ts';

function ingress(
  name: string,
  path: string,
  annotations: Record<string, string> = {},
  klass = 'nginx',
): KubeObject {
  return {
    metadata: { namespace: 'shop', name, annotations },
    spec: {
      ingressClassName: klass,
      rules: [
        {
          host: 'shop.example.com',
          http: {
            paths: [
              { path, pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } },
            ],
          },
        },
      ],
    },
  };
}

function review(object: KubeObject) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u', kind: { kind: 'Ingress' }, operation: 'CREATE', namespace: 'shop', object },
  };
}

/** A clock that moves 5 ms each time it is read, and the checks it heard of. */
function observer() {
  let t = 0;
  const checks: AdmissionCheck[] = [];
  return {
    checks,
    now: () => {
      t += 5;
      return t;
    },
    checked: (check: AdmissionCheck) => checks.push(check),
  };
}

describe('admission metrics', () => {
  const cluster = {
    ...EMPTY_CLUSTER,
    ingresses: [ingress('cart', '/cart'), ingress('other', '/x', {}, 'other')],
  };

  it('times the translation and the checks of an Ingress of ours, and counts the Ingresses of ours', () => {
    const seen = observer();
    const outcome = reviewAdmission(review(ingress('api', '/api')), cluster, options, seen);
    assert.equal(outcome.ok && (outcome.response.response as { allowed: boolean }).allowed, true);
    assert.equal(seen.checks.length, 1);
    const [check] = seen.checks;
    assert.deepEqual(
      { ...check, configBytes: 0 },
      {
        namespace: 'shop',
        name: 'api',
        allowed: true,
        ingresses: 2,
        renderSeconds: 0.005,
        testSeconds: 0.005,
        configBytes: 0,
        roundtripSeconds: 0.015,
      },
    );
    assert.ok(check!.configBytes > 2 * JSON.stringify(ingress('api', '/api')).length - 50);
  });

  it('an Ingress nested deeper than JSON can be written in a field keepip ignores is still checked (size 0)', () => {
    let deep: unknown = [];
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const candidate = ingress('deep', '/deep');
    (candidate.spec as Record<string, unknown>).extra = deep;
    const seen = observer();
    const outcome = reviewAdmission(review(candidate), cluster, options, seen);
    assert.equal(outcome.ok && (outcome.response.response as { allowed: boolean }).allowed, true);
    assert.deepEqual(
      seen.checks.map((c) => [c.name, c.allowed, c.configBytes]),
      [['deep', true, 0]],
    );
  });

  it('hears of a refusal as a failed check, and of nothing for another class or a DELETE', () => {
    const seen = observer();
    reviewAdmission(
      review(ingress('dup', '/dup', { 'nginx.ingress.kubernetes.io/allowlist-source-range': '300.1.1.1/8' })),
      cluster,
      options,
      seen,
    );
    reviewAdmission(review(ingress('theirs', '/cart', {}, 'other')), cluster, options, seen);
    const del = review(ingress('api', '/api'));
    reviewAdmission({ ...del, request: { ...del.request, operation: 'DELETE' } }, cluster, options, seen);
    assert.deepEqual(
      seen.checks.map((c) => [c.name, c.allowed]),
      [['dup', false]],
    );
  });

  it('counts checks per Ingress and keeps the gauges of the last passing one', async () => {
    const registry = new Registry();
    const record = createAdmissionMetrics(registry, {
      controllerClass: 'k8s.io/ingress-nginx',
      podNamespace: 'ingress-nginx',
      podName: 'ctl-0',
    });
    const base = {
      namespace: 'shop',
      renderSeconds: 0.25,
      testSeconds: 0.5,
      configBytes: 900,
      roundtripSeconds: 1,
    };
    record({ ...base, name: 'api', allowed: true, ingresses: 7 });
    record({ ...base, name: 'api', allowed: true, ingresses: 8 });
    record({ ...base, name: 'dup', allowed: false, ingresses: 9, configBytes: 1 });
    const text = await registry.metrics();
    const pod =
      'controller_namespace="ingress-nginx",controller_class="k8s.io/ingress-nginx",controller_pod="ctl-0"';
    for (const line of [
      `nginx_ingress_controller_check_success{${pod},namespace="shop",ingress="api"} 2`,
      `nginx_ingress_controller_check_errors{${pod},namespace="shop",ingress="dup"} 1`,
      `nginx_ingress_controller_admission_tested_ingresses{${pod}} 8`,
      `nginx_ingress_controller_admission_render_ingresses{${pod}} 8`,
      `nginx_ingress_controller_admission_tested_duration{${pod}} 0.5`,
      `nginx_ingress_controller_admission_render_duration{${pod}} 0.25`,
      `nginx_ingress_controller_admission_config_size{${pod}} 900`,
      `nginx_ingress_controller_admission_roundtrip_duration{${pod}} 1`,
    ])
      assert.ok(text.split('\n').includes(line), `${line}\n${text}`);
  });
});
