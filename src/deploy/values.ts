// A values file merged onto the chart's defaults as Helm merges `-f values.yaml` (maps merge key by key,
// lists and scalars replace, null removes a default), and the keys it sets checked against the table of
// values-keys.ts: unknown keys and keys keepip ignores are reported by name, never dropped silently.
// Pure.
import { isDeepStrictEqual } from 'node:util';
import { chartDefaults, type Values } from './chart-defaults.ts';
import type { DeployProblem } from './errors.ts';
import { keyInfo } from './values-keys.ts';

export function isMap(value: unknown): value is Values {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Helm's coalescing of a user's values onto defaults. Neither input is modified. */
export function mergeValues(defaults: Values, user: Values): Values {
  const out: Values = { ...defaults };
  for (const [key, value] of Object.entries(user)) {
    const base = Object.hasOwn(out, key) ? out[key] : undefined;
    if (value === null) delete out[key];
    else if (isMap(value) && isMap(base)) setOwn(out, key, mergeValues(base, value));
    else setOwn(out, key, value);
  }
  return out;
}

/** out[key] = value as an own property: a values file's `__proto__` key is data, never a prototype. */
function setOwn(out: Values, key: string, value: unknown): void {
  Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true });
}

/** The value at a dotted path of the defaults, or undefined. */
function defaultAt(defaults: Values, path: readonly string[]): unknown {
  let node: unknown = defaults;
  for (const part of path) {
    if (!isMap(node)) return undefined;
    node = node[part];
  }
  return node;
}

/**
 * Warnings for every key the user's values set that the chart does not have, or that keepip ignores
 * while the value differs from the chart's default.
 */
export function checkValueKeys(user: Values, defaults: Values = chartDefaults()): DeployProblem[] {
  const problems: DeployProblem[] = [];
  const walk = (node: Values, path: string[]): void => {
    for (const [key, value] of Object.entries(node)) {
      const here = [...path, key];
      const dotted = here.join('.');
      const info = keyInfo(dotted);
      if (info === undefined) {
        if (isMap(value) && isMap(defaultAt(defaults, here))) walk(value, here);
        else problems.push(unknownKey(dotted));
        continue;
      }
      if (!info.map && isMap(value) && !isMap(defaultAt(defaults, here))) {
        if (info.status === 'ignored') problems.push(ignoredKey(dotted, info.note));
        continue;
      }
      if (info.status === 'ignored' && changesDefault(value, defaultAt(defaults, here))) {
        problems.push(ignoredKey(dotted, info.note));
      }
    }
  };
  walk(user, []);
  return problems;
}

/** Whether a user's value, merged onto the default as Helm merges, changes it. */
function changesDefault(value: unknown, fallback: unknown): boolean {
  const effective = isMap(value) && isMap(fallback) ? mergeValues(fallback, value) : value;
  return !isDeepStrictEqual(effective, fallback);
}

function unknownKey(key: string): DeployProblem {
  return {
    severity: 'warning',
    code: 'DEPLOY_VALUES_UNKNOWN_KEY',
    key,
    message: `${key}: not a value of the ingress-nginx chart; ignored`,
  };
}

function ignoredKey(key: string, why: string): DeployProblem {
  return { severity: 'warning', code: 'DEPLOY_VALUES_IGNORED', key, message: `${key}: ignored: ${why}` };
}
