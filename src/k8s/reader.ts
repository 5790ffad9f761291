// Safe field access on untrusted objects: a wrong type becomes a ConfigIssue naming the field, never a
// crash. Each reader is bound to one object's origin and an issue sink.
import { describeOrigin } from '../config/issue-text.ts';
import type { ConfigIssue, Origin } from '../config/model.ts';
import { formatFieldPath, type PathSegment } from './field-path.ts';

export interface FieldReader {
  readonly origin: Origin;
  readonly issues: ConfigIssue[];
  /** The value at `path`, or undefined when any step is absent or of the wrong shape. */
  get(path: readonly PathSegment[]): unknown;
  /** A string, or null when absent. Scalars are coerced with a warning; anything else is an error. */
  string(path: readonly PathSegment[]): string | null;
  /** An integer within [min, max], or null when absent or invalid (invalid: error issue). */
  integer(path: readonly PathSegment[], min: number, max: number): number | null;
  /** A port as Kubernetes allows it: a number, or a name (IANA_SVC_NAME). */
  intOrString(path: readonly PathSegment[]): number | string | null;
  boolean(path: readonly PathSegment[]): boolean | null;
  /** A list; absent gives [], a non-list gives [] and an error issue. */
  list(path: readonly PathSegment[]): unknown[];
  /** A map of strings (annotations, labels, selector, data); bad entries are reported and skipped. */
  stringMap(path: readonly PathSegment[]): Record<string, string>;
  /** Adds an issue for a field of this object. */
  report(
    severity: ConfigIssue['severity'],
    code: ConfigIssue['code'],
    path: readonly PathSegment[] | string,
    message: string,
  ): void;
}

export { describeOrigin };

export function createReader(root: unknown, origin: Origin, issues: ConfigIssue[]): FieldReader {
  const r: Access = { get: (path) => valueAt(root, path), report: issueReporter(origin, issues) };
  return {
    origin,
    issues,
    get: r.get,
    report: r.report,
    string: (path) => readString(r, path),
    integer: (path, min, max) => readInteger(r, path, min, max),
    intOrString: (path) => readIntOrString(r, path),
    boolean: (path) => readBoolean(r, path),
    list: (path) => readList(r, path),
    stringMap: (path) => readStringMap(r, path),
  };
}

/** What each typed read needs: the raw value at a path, and where its issues go. */
type Access = Pick<FieldReader, 'get' | 'report'>;

function issueReporter(origin: Origin, issues: ConfigIssue[]): FieldReader['report'] {
  return (severity, code, path, message) => {
    const field = typeof path === 'string' ? path : formatFieldPath(path);
    issues.push({
      severity,
      code,
      message: `${describeOrigin(origin)}${field ? ` ${field}` : ''}: ${message}`,
      origin,
      ...(field ? { field } : {}),
    });
  };
}

/** Own properties only: `__proto__` or `constructor` in a manifest is data, never the prototype. */
function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let current: unknown = root;
  for (const segment of path) {
    if (typeof segment === 'number') {
      if (!Array.isArray(current)) return undefined;
      current = current[segment];
    } else {
      if (!isRecord(current) || !Object.hasOwn(current, segment)) return undefined;
      current = current[segment];
    }
  }
  return current;
}

function wrongType(r: Access, path: readonly PathSegment[], expected: string, value: unknown): void {
  r.report('error', 'MANIFEST_INVALID_FIELD', path, `expected ${expected}, found ${describeValue(value)}`);
}

/** Kubernetes would reject an unquoted scalar where a string belongs; accept its text but say so. */
function scalarAsString(r: Access, path: readonly PathSegment[], value: number | boolean): string {
  r.report(
    'warning',
    'MANIFEST_FIELD_NOT_STRING',
    path,
    `expected a string, found ${describeValue(value)}; quote it (read as "${String(value)}")`,
  );
  return String(value);
}

function readString(r: Access, path: readonly PathSegment[]): string | null {
  const value = r.get(path);
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return scalarAsString(r, path, value);
  wrongType(r, path, 'a string', value);
  return null;
}

function readInteger(r: Access, path: readonly PathSegment[], min: number, max: number): number | null {
  const value = r.get(path);
  if (value === undefined || value === null) return null;
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
  wrongType(r, path, `an integer from ${min} to ${max}`, value);
  return null;
}

function readIntOrString(r: Access, path: readonly PathSegment[]): number | string | null {
  const value = r.get(path);
  if (value === undefined || value === null) return null;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535) return value;
  if (
    typeof value === 'string' &&
    /^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/.test(value) &&
    /[a-z]/.test(value)
  ) {
    return value;
  }
  if (typeof value === 'string' && /^[0-9]+$/.test(value)) {
    const n = Number(value);
    if (n >= 1 && n <= 65535) return n;
  }
  wrongType(r, path, 'a port number (1-65535) or a port name', value);
  return null;
}

function readBoolean(r: Access, path: readonly PathSegment[]): boolean | null {
  const value = r.get(path);
  if (value === undefined || value === null) return null;
  if (typeof value === 'boolean') return value;
  wrongType(r, path, 'true or false', value);
  return null;
}

function readList(r: Access, path: readonly PathSegment[]): unknown[] {
  const value = r.get(path);
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value;
  wrongType(r, path, 'a list', value);
  return [];
}

function readStringMap(r: Access, path: readonly PathSegment[]): Record<string, string> {
  const value = r.get(path);
  const out: Record<string, string> = {};
  if (value === undefined || value === null) return out;
  if (!isRecord(value)) {
    wrongType(r, path, 'a mapping of strings', value);
    return out;
  }
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry === 'string') out[key] = entry;
    else if (typeof entry === 'number' || typeof entry === 'boolean')
      out[key] = scalarAsString(r, [...path, key], entry);
    else wrongType(r, [...path, key], 'a string', entry);
  }
  return out;
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return `a ${typeof value === 'object' ? 'mapping' : typeof value}`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
