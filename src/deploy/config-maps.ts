// The controller ConfigMap (controller.config, values as strings as the chart quotes them) and the
// tcp-services ConfigMap. Pure.
import { controllerLabels, type K8sObject, meta, type RenderContext } from './context.ts';
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
  // The chart renders both through tpl (controller.config value by value, tcp as a whole).
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
  const tcp = stringData(ctx, 'tcp');
  if (Object.keys(tcp).length > 0) {
    out.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(ctx, `${names.fullname}-tcp`, {
        labels: controllerLabels(ctx),
        annotations: v.strings('controller.tcp.annotations'),
      }),
      data: tcp,
    });
  }
  return out;
}
