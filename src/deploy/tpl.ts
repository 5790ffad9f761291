// Helm's `tpl` on the values the chart renders through it (affinity, topologySpreadConstraints,
// hostAliases, extraInitContainers, the controller Services' annotations, controller.config, tcp,
// udp). The chart's values.yaml documents templates there ('{{ include "ingress-nginx.name" . }}',
// '{{ .Release.Name }}'), so values files hold them: keepip evaluates the release's names and namespace
// as Helm does, and any other template is a DEPLOY_VALUES_TEMPLATE error naming the key, never text
// passed on (a label selector holding "{{" is refused by the API server, or selects nothing). Pure.
import { CHART_NAME } from './names.ts';
import type { RenderContext } from './context.ts';

/** The actions keepip evaluates, by their text with the context (`.` or `$`) as `.`. */
function actions(ctx: RenderContext): Record<string, string> {
  const { names, options } = ctx;
  const include = (name: string) => [
    `include "ingress-nginx.${name}" .`,
    `template "ingress-nginx.${name}" .`,
  ];
  const out: Record<string, string> = {
    '.Release.Name': names.release,
    '.Release.Namespace': options.namespace,
    '.Chart.Name': CHART_NAME,
  };
  for (const [helper, value] of [
    ['name', names.name],
    ['fullname', names.fullname],
    ['namespace', names.namespace],
    ['controller.fullname', names.controller],
  ] as const) {
    for (const action of include(helper)) out[action] = value;
  }
  return out;
}

/** `{{ action }}` with Go's trim markers: `{{-` eats the white space before, `-}}` the one after. */
const ACTION = /(\s*)\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}(\s*)/gs;

/** The text with every action evaluated, or the first action keepip cannot evaluate. */
export function tplText(
  text: string,
  known: Readonly<Record<string, string>>,
): { ok: true; value: string } | { ok: false; action: string } {
  let unknown: string | null = null;
  const value = text.replace(ACTION, (_all, before, trimBefore, action, trimAfter, after) => {
    const normal = String(action).replace(/\s+/g, ' ').replace(/ \$$/, ' .');
    const result = known[normal];
    if (result === undefined) unknown ??= String(action);
    return `${trimBefore ? '' : before}${result ?? ''}${trimAfter ? '' : after}`;
  });
  if (unknown !== null) return { ok: false, action: `{{ ${unknown} }}` };
  // An action left open is a parse error in Helm.
  if (value.includes('{{')) return { ok: false, action: value.slice(value.indexOf('{{')) };
  return { ok: true, value };
}

function walk(node: unknown, known: Readonly<Record<string, string>>, bad: string[]): unknown {
  if (typeof node === 'string') {
    const r = tplText(node, known);
    if (r.ok) return r.value;
    bad.push(r.action);
    return node;
  }
  if (Array.isArray(node)) return node.map((n) => walk(n, known, bad));
  if (typeof node !== 'object' || node === null) return node;
  return Object.fromEntries(
    Object.entries(node).map(([k, v]) => [walk(k, known, bad) as string, walk(v, known, bad)]),
  );
}

/**
 * A value (string, list or map, keys included) through `tpl`: the evaluated copy, or the value as it
 * was with a DEPLOY_VALUES_TEMPLATE error for `key` in the reader's problems.
 */
export function tpl<T>(ctx: RenderContext, key: string, value: T): T {
  const bad: string[] = [];
  const out = walk(value, actions(ctx), bad) as T;
  if (bad.length === 0) return out;
  ctx.v.problems.push({
    severity: 'error',
    code: 'DEPLOY_VALUES_TEMPLATE',
    key,
    message: `${key}: the chart renders it through tpl, and keepip evaluates only .Release.Name, .Release.Namespace, .Chart.Name and include "ingress-nginx.name|fullname|namespace|controller.fullname" .; not ${bad[0]} (write the value out)`,
  });
  return value;
}

/** A map of strings through `tpl` value by value (the chart's range over annotations and config). */
export function tplEach(
  ctx: RenderContext,
  path: string,
  map: Readonly<Record<string, string>>,
): Record<string, string> {
  return Object.fromEntries(Object.entries(map).map(([k, text]) => [k, tpl(ctx, `${path}.${k}`, text)]));
}
