// The controller ConfigMap (controller.config, values as strings as the chart quotes them) and the
// tcp-services and udp-services ConfigMaps. Pure.
import { controllerLabels, type K8sObject, meta, type RenderContext, STREAM_KEYS } from './context.ts';
import { scalarText } from './read.ts';
import { tplEach } from './tpl.ts';

function stringData(ctx: RenderContext, path: string): Record<string, string> {
  const map = ctx.v.map(path);
  const data: Record<string, string> = {};
  for (const key of Object.keys(map).sort()) {
    const text = scalarText(map[key]);
    if (text === null) {
      ctx.v.problems.push({
        severity: 'error',
        code: 'DEPLOY_VALUES_INVALID',
        key: `${path}.${key}`,
        message: `${path}.${key}: ConfigMap values are strings, numbers or booleans, not ${JSON.stringify(map[key])}`,
      });
    } else data[key] = text;
  }
  // The chart renders them through tpl (controller.config value by value, tcp and udp as a whole).
  return tplEach(ctx, path, data);
}

export function renderConfigMaps(ctx: RenderContext): K8sObject[] {
  const { v, names } = ctx;
  const out: K8sObject[] = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(ctx, names.controller, {
        labels: controllerLabels(ctx),
        annotations: v.strings('controller.configAnnotations'),
      }),
      data: stringData(ctx, 'controller.config'),
    },
  ];
  for (const key of STREAM_KEYS) {
    const data = stringData(ctx, key);
    if (Object.keys(data).length === 0) continue;
    out.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(ctx, `${names.fullname}-${key}`, {
        labels: controllerLabels(ctx),
        annotations: v.strings(`controller.${key}.annotations`),
      }),
      data,
    });
  }
  return out;
}
