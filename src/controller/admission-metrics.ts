// ingress-nginx's admission metrics, by its names: the counters check_success and check_errors per
// Ingress, and the gauges of the last successful check (admission_tested_ingresses,
// _tested_duration, _render_ingresses, _render_duration, _config_size, _roundtrip_duration), which
// ingress-nginx sets only when a check passes. The same labels as ingress-nginx's.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AdmissionCheck } from './admission.ts';

const PREFIX = 'nginx_ingress_controller_';

export interface AdmissionMetricLabels {
  controllerClass: string;
  podNamespace: string;
  podName: string | null;
}

/** Registers the metrics in `registry`; the returned function records one check. */
export function createAdmissionMetrics(
  registry: Registry,
  o: AdmissionMetricLabels,
): (check: AdmissionCheck) => void {
  const constant = {
    controller_namespace: o.podNamespace,
    controller_class: o.controllerClass,
    controller_pod: o.podName ?? '',
  };
  const counter = (name: string, help: string) =>
    new Counter({
      name: `${PREFIX}${name}`,
      help,
      labelNames: [...Object.keys(constant), 'namespace', 'ingress'],
      registers: [registry],
    });
  const gauge = (name: string, help: string) =>
    new Gauge({ name: `${PREFIX}${name}`, help, labelNames: Object.keys(constant), registers: [registry] });
  const success = counter('check_success', 'Cumulative number of Ingress controller syntax check operations');
  const errors = counter(
    'check_errors',
    'Cumulative number of Ingress controller errors during syntax check operations',
  );
  const last = {
    tested: gauge(
      'admission_tested_ingresses',
      'The length of ingresses processed by the admission controller',
    ),
    testedSeconds: gauge(
      'admission_tested_duration',
      'The processing duration of the admission controller tests (float seconds)',
    ),
    rendered: gauge(
      'admission_render_ingresses',
      'The length of ingresses rendered by the admission controller',
    ),
    renderSeconds: gauge(
      'admission_render_duration',
      'The processing duration of ingresses rendering by the admission controller (float seconds)',
    ),
    configBytes: gauge('admission_config_size', 'The size of the tested configuration'),
    roundtripSeconds: gauge(
      'admission_roundtrip_duration',
      'The complete duration of the admission controller at the time to process a new event (float seconds)',
    ),
  };
  return (check) => {
    const labels = { ...constant, namespace: check.namespace, ingress: check.name };
    if (!check.allowed) {
      errors.inc(labels);
      return;
    }
    success.inc(labels);
    last.tested.set(constant, check.ingresses);
    last.testedSeconds.set(constant, check.testSeconds);
    last.rendered.set(constant, check.ingresses);
    last.renderSeconds.set(constant, check.renderSeconds);
    last.configBytes.set(constant, check.configBytes);
    last.roundtripSeconds.set(constant, check.roundtripSeconds);
  };
}
