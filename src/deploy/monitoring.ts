// The Prometheus Operator ServiceMonitor for the metrics Service (controller.metrics.serviceMonitor)
// and PrometheusRule (controller.metrics.prometheusRule): keepip exports the metrics the chart's
// example alerts read (nginx_ingress_controller_config_last_reload_successful, _ssl_expire_time_seconds,
// _requests). Pure.
import { controllerSelector, type K8sObject, meta, type RenderContext, setIf } from './context.ts';

export function renderServiceMonitor(ctx: RenderContext): K8sObject[] {
  const { v, names } = ctx;
  const prefix = 'controller.metrics.serviceMonitor';
  if (!v.bool('controller.metrics.enabled') || !v.bool(`${prefix}.enabled`)) return [];
  const endpoint: Record<string, unknown> = {
    port: v.str('controller.metrics.portName'),
    interval: v.str(`${prefix}.scrapeInterval`),
  };
  setIf(endpoint, {
    scrapeTimeout: v.str(`${prefix}.scrapeTimeout`),
    honorLabels: v.bool(`${prefix}.honorLabels`),
    relabelings: v.list(`${prefix}.relabelings`),
    metricRelabelings: v.list(`${prefix}.metricRelabelings`),
  });
  const namespaceSelector = v.map(`${prefix}.namespaceSelector`);
  const spec: Record<string, unknown> = {
    namespaceSelector:
      Object.keys(namespaceSelector).length > 0 ? namespaceSelector : { matchNames: [names.namespace] },
    selector: { matchLabels: controllerSelector(ctx) },
    endpoints: [endpoint],
  };
  setIf(spec, {
    jobLabel: v.str(`${prefix}.jobLabel`),
    targetLabels: v.list(`${prefix}.targetLabels`),
  });
  for (const limit of [
    'labelLimit',
    'labelNameLengthLimit',
    'labelValueLengthLimit',
    'sampleLimit',
    'targetLimit',
  ]) {
    const value = v.int(`${prefix}.${limit}`);
    if (value > 0) spec[limit] = value;
  }
  const metadata = meta(ctx, names.controller, {
    labels: { 'app.kubernetes.io/component': 'controller', ...v.strings(`${prefix}.additionalLabels`) },
    annotations: v.strings(`${prefix}.annotations`),
  });
  metadata.namespace = v.str(`${prefix}.namespace`) || names.namespace;
  return [{ apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata, spec }];
}

/** controller.metrics.prometheusRule as the chart renders it: the rules as written, in one group. */
export function renderPrometheusRule(ctx: RenderContext): K8sObject[] {
  const { v, names } = ctx;
  const prefix = 'controller.metrics.prometheusRule';
  if (!v.bool('controller.metrics.enabled') || !v.bool(`${prefix}.enabled`)) return [];
  const metadata = meta(ctx, names.controller, {
    labels: { 'app.kubernetes.io/component': 'controller', ...v.strings(`${prefix}.additionalLabels`) },
    annotations: v.strings(`${prefix}.annotations`),
  });
  metadata.namespace = v.str(`${prefix}.namespace`) || names.namespace;
  const rules = v.list(`${prefix}.rules`);
  const spec = rules.length === 0 ? {} : { groups: [{ name: names.name, rules }] };
  return [{ apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', metadata, spec }];
}
