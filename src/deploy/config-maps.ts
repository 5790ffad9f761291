// The controller ConfigMap (controller.config, values as strings as the chart quotes them), the
// add-headers and proxy-set-headers ConfigMaps of controller.addHeaders / controller.proxySetHeaders
// (named in the controller ConfigMap, as the chart does), and the tcp-services and udp-services
// ConfigMaps. Pure.
import { controllerLabels, type K8sObject, meta, type RenderContext, STREAM_KEYS } from './context.ts';
import { scalarText } from './read.ts';
import { tplEach } from './tpl.ts';

/**
 * The header maps the chart renders into ConfigMaps of their own: the values key, the controller
 * ConfigMap key that names the ConfigMap, and the ConfigMap's name after `<fullname>-`.
 */
export const HEADER_MAPS = [
  { values: 'controller.addHeaders', key: 'add-headers', suffix: 'custom-add-headers' },
  { values: 'controller.proxySetHeaders', key: 'proxy-set-headers', suffix: 'custom-proxy-headers' },
] as const;

function stringData(ctx: RenderContext, path: string, tpl = true): Record<string, string> {
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
  // The chart renders them through tpl (controller.config value by value, tcp and udp as a whole);
  // the header maps as they are (toYaml).
  return tpl ? tplEach(ctx, path, data) : data;
}

/** The controller ConfigMap first, then the header maps' and the stream services' that have data. */
export function renderConfigMaps(ctx: RenderContext): K8sObject[] {
  const { v, names } = ctx;
  const headerMaps: K8sObject[] = [];
  const refs: Record<string, string> = {};
  for (const map of HEADER_MAPS) {
    const data = stringData(ctx, map.values, false);
    if (Object.keys(data).length === 0) continue;
    const name = `${names.fullname}-${map.suffix}`;
    refs[map.key] = `${names.namespace}/${name}`;
    headerMaps.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(ctx, name, { labels: controllerLabels(ctx) }),
      data,
    });
  }
  const out: K8sObject[] = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(ctx, names.controller, {
        labels: controllerLabels(ctx),
        annotations: v.strings('controller.configAnnotations'),
      }),
      // controller.config's own add-headers / proxy-set-headers win (the chart would write the key twice).
      data: { ...refs, ...stringData(ctx, 'controller.config') },
    },
    ...headerMaps,
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
