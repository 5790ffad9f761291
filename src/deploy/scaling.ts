// PodDisruptionBudget (a Deployment with more than one replica) and HorizontalPodAutoscaler
// (controller.autoscaling.enabled), as the chart renders them. Pure.
import { controllerLabels, controllerSelector, type K8sObject, meta, type RenderContext } from './context.ts';
import { intOrString } from './services.ts';

function pdb(ctx: RenderContext): K8sObject[] {
  const { v, names } = ctx;
  if (v.str('controller.kind') !== 'Deployment') return [];
  const replicas = v.bool('controller.autoscaling.enabled')
    ? v.int('controller.autoscaling.minReplicas')
    : v.int('controller.replicaCount');
  if (replicas <= 1) return [];
  const spec: Record<string, unknown> = { selector: { matchLabels: controllerSelector(ctx) } };
  const maxUnavailable = v.raw('controller.maxUnavailable');
  const minAvailable = v.raw('controller.minAvailable');
  if (minAvailable && maxUnavailable === undefined) spec.minAvailable = intOrString(minAvailable);
  else if (maxUnavailable) spec.maxUnavailable = intOrString(maxUnavailable);
  const policy = v.str('controller.unhealthyPodEvictionPolicy');
  if (policy) spec.unhealthyPodEvictionPolicy = policy;
  return [
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: meta(ctx, names.controller, {
        labels: controllerLabels(ctx),
        annotations: v.strings('controller.annotations'),
      }),
      spec,
    },
  ];
}

function hpa(ctx: RenderContext): K8sObject[] {
  const { v, names } = ctx;
  if (v.str('controller.kind') !== 'Deployment' || !v.bool('controller.autoscaling.enabled')) return [];
  const metrics: unknown[] = [];
  for (const [resource, key] of [
    ['memory', 'targetMemoryUtilizationPercentage'],
    ['cpu', 'targetCPUUtilizationPercentage'],
  ] as const) {
    // The chart's `with`: '' or 0 turns a target off.
    const target = v.truthy(`controller.autoscaling.${key}`) ? v.int(`controller.autoscaling.${key}`) : 0;
    if (target)
      metrics.push({
        type: 'Resource',
        resource: { name: resource, target: { type: 'Utilization', averageUtilization: target } },
      });
  }
  metrics.push(...v.list('controller.autoscalingTemplate'));
  const spec: Record<string, unknown> = {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: names.controller },
    minReplicas: v.int('controller.autoscaling.minReplicas'),
    maxReplicas: v.int('controller.autoscaling.maxReplicas'),
    metrics,
  };
  const behavior = v.map('controller.autoscaling.behavior');
  if (Object.keys(behavior).length > 0) spec.behavior = behavior;
  return [
    {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: meta(ctx, names.controller, {
        labels: controllerLabels(ctx),
        annotations: v.strings('controller.autoscaling.annotations'),
      }),
      spec,
    },
  ];
}

export function renderScaling(ctx: RenderContext): K8sObject[] {
  return [...pdb(ctx), ...hpa(ctx)];
}
