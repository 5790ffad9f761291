// Typed reads of merged values by dotted path. A value of the wrong type is a DEPLOY_VALUES_INVALID
// error naming the key, and the chart's default stands in, so one run reports every bad key. Pure.
import type { Values } from './chart-defaults.ts';
import type { DeployProblem } from './errors.ts';
import { isMap } from './values.ts';

export interface ValuesReader {
  /** The raw value (undefined when absent). */
  raw(path: string): unknown;
  str(path: string): string;
  int(path: string): number;
  bool(path: string): boolean;
  map(path: string): Values;
  list(path: string): unknown[];
  /** Helm's `{{ if }}`: false, 0, '', null, an empty map or list are false. */
  truthy(path: string): boolean;
  /** A map of strings (labels, annotations, selectors); other values are written as strings. */
  strings(path: string): Record<string, string>;
  problems: DeployProblem[];
}

function at(root: Values, path: string): unknown {
  let node: unknown = root;
  for (const part of path.split('.')) {
    if (!isMap(node)) return undefined;
    node = node[part];
  }
  return node;
}

export function isTruthy(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (isMap(value)) return Object.keys(value).length > 0;
  return true;
}

/** Helm prints scalars with %v: numbers and booleans as written. */
export function scalarText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return null;
}

export function valuesReader(values: Values, defaults: Values): ValuesReader {
  const problems: DeployProblem[] = [];
  const invalid = (path: string, value: unknown, want: string): void => {
    // Several objects read the same key: report it once.
    if (problems.some((p) => p.key === path)) return;
    problems.push({
      severity: 'error',
      code: 'DEPLOY_VALUES_INVALID',
      key: path,
      message: `${path}: ${JSON.stringify(value)} is not ${want}`,
    });
  };
  const typed = <T>(path: string, want: string, convert: (v: unknown) => T | null, zero: T): T => {
    const value = at(values, path);
    // Absent from the merged values: absent from the chart too, or removed by the user's null (Helm's
    // "deleting a default key"); the default must not come back.
    if (value === undefined || value === null) return zero;
    const got = convert(value);
    if (got !== null) return got;
    invalid(path, value, want);
    return convert(at(defaults, path)) ?? zero;
  };
  const toInt = (v: unknown): number | null => {
    const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
    return typeof n === 'number' && Number.isSafeInteger(n) ? n : null;
  };
  const toBool = (v: unknown): boolean | null => {
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === 'false') return v === 'true';
    return null;
  };
  return {
    problems,
    raw: (path) => at(values, path),
    str: (path) => typed(path, 'a string', scalarText, ''),
    int: (path) => typed(path, 'an integer', toInt, 0),
    bool: (path) => typed(path, 'a boolean', toBool, false),
    map: (path) => typed(path, 'a map', (v) => (isMap(v) ? v : null), {}),
    list: (path) => typed(path, 'a list', (v) => (Array.isArray(v) ? v : null), []),
    truthy: (path) => isTruthy(at(values, path)),
    strings: (path) => {
      const map = typed(path, 'a map', (v) => (isMap(v) ? v : null), {} as Values);
      const out: Record<string, string> = {};
      for (const [key, value] of Object.entries(map)) {
        const text = scalarText(value);
        if (text === null) invalid(`${path}.${key}`, value, 'a string');
        else out[key] = text;
      }
      return out;
    },
  };
}
