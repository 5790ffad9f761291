// Reading one scalar from a ConfigMap key or an ingress-nginx annotation, as ingress-nginx does
// (internal/ingress/annotations/parser: GetBoolAnnotation is Go's strconv.ParseBool, GetIntAnnotation
// strconv.Atoi; the controller ConfigMap is decoded the same weakly typed way): absent, the fallback
// applies silently; malformed, it applies too and the value is reported with what was expected and
// what applies instead. The words of a report are the source's (`invalid`), so ConfigMap keys and
// annotations keep their own message shapes; the parsers are values.ts's.
import { parseNginxTimeMs } from '../config/duration.ts';
import type { ConfigIssue, Origin } from '../config/model.ts';
import { annotationField } from './field-path.ts';
import { describeOrigin } from './reader.ts';
import { parseGoBool, parseGoInt, parseGoUintBase0 } from './values.ts';

const PREFIX = 'nginx.ingress.kubernetes.io/';

/** Where values come from and where a malformed one is reported. */
export interface ScalarSource {
  get(key: string): string | undefined;
  /**
   * Whole numbers as the controller ConfigMap's decoder reads them (mapstructure: strconv.ParseInt
   * base 0, so `010` is octal 8 and no space is taken); absent: as an annotation's (strconv.Atoi).
   */
  readonly wholeAsParseInt?: true;
  /** `value` of `key` is not `expected`; `kept` says what applies instead. */
  invalid(key: string, value: string, expected: string, kept: string): void;
}

/** Where the issues of one object go. */
export interface IssueSink {
  origin: Origin;
  issues: ConfigIssue[];
}

/** An issue about one of the object's `nginx.ingress.kubernetes.io/<name>` annotations. */
export function annotationIssue(
  sink: IssueSink,
  severity: ConfigIssue['severity'],
  code: ConfigIssue['code'],
  name: string,
  message: string,
): void {
  const field = annotationField(PREFIX + name);
  sink.issues.push({
    severity,
    code,
    message: `${describeOrigin(sink.origin)} ${field}: ${message}`,
    origin: sink.origin,
    field,
  });
}

/** A malformed annotation value: a warning (INVALID_ANNOTATION_VALUE); the default applies. */
export function warnAnnotation(sink: IssueSink, name: string, message: string): void {
  annotationIssue(sink, 'warning', 'INVALID_ANNOTATION_VALUE', name, message);
}

/** The `nginx.ingress.kubernetes.io/*` annotations, reported as `"value" is not <expected>; <kept>`. */
export function annotationSource(
  annotations: Readonly<Record<string, string>>,
  sink: IssueSink,
): ScalarSource {
  return {
    get: (name) => annotations[PREFIX + name],
    invalid: (name, value, expected, kept) =>
      warnAnnotation(sink, name, `${JSON.stringify(value)} is not ${expected}; ${kept}`),
  };
}

/**
 * The controller ConfigMap's keys, malformed values reported to `invalid`. With `blankIsAbsent`, a
 * value of only spaces is as if the key were not there (the default applies silently).
 */
export function configMapSource(
  data: Readonly<Record<string, string>>,
  invalid: ScalarSource['invalid'],
  options: { blankIsAbsent?: boolean } = {},
): ScalarSource {
  const get = options.blankIsAbsent
    ? (key: string) => (data[key]?.trim() === '' ? undefined : data[key])
    : (key: string) => data[key];
  return { get, invalid, wholeAsParseInt: true };
}

/** What a report says: the expected form and what applies instead. */
export interface Wording {
  expected?: string;
  kept?: string;
}

/** A Go boolean (strconv.ParseBool's forms: 1 t T TRUE true True, 0 f F FALSE false False). */
export function readBool<F extends boolean | null>(
  source: ScalarSource,
  key: string,
  fallback: F,
  wording: Wording = {},
): boolean | F {
  const value = source.get(key);
  if (value === undefined) return fallback;
  const parsed = parseGoBool(value);
  if (parsed !== null) return parsed;
  const kept = wording.kept ?? (fallback === null ? 'the default' : String(fallback));
  source.invalid(key, value, wording.expected ?? 'a boolean', kept);
  return fallback;
}

/** An nginx time (240s, 5m, 1h30m: parseNginxTimeMs) of at least `minMs` (default 0), as milliseconds. */
export function readNginxTime(
  source: ScalarSource,
  key: string,
  fallbackMs: number,
  rule: { kept: string; minMs?: number; expected?: string },
): number {
  const value = source.get(key);
  if (value === undefined) return fallbackMs;
  const ms = parseNginxTimeMs(value);
  const minMs = rule.minMs ?? 0;
  if (ms !== null && ms >= minMs) return ms;
  source.invalid(
    key,
    value,
    rule.expected ?? `an nginx time${minMs > 0 ? ' above 0' : ''} (240s, 5m)`,
    rule.kept,
  );
  return fallbackMs;
}

/** An annotation's whole number as ingress-nginx's parser.ValidateInt and parseInt read it: Go's Atoi, no space. */
function readAtoi(value: string, max: number): number | null {
  const n = parseGoInt(value);
  return n !== null && n <= max ? n : null;
}

/**
 * A whole number in [min, max] (a leading `+` taken, as Go's strconv; no fraction); the wording names
 * the range and the fallback.
 */
export function readWhole<F extends number | null>(
  source: ScalarSource,
  key: string,
  fallback: F,
  rule: { min?: number; max: number; expected: string; kept: string },
): number | F {
  const value = source.get(key);
  if (value === undefined) return fallback;
  // ingress-nginx reads these with Go's strconv (Atoi, ParseInt), which take a leading `+`: `"+2"`
  // limits there as 2, and must not be dropped here as invalid (no limit at all).
  const parsed = source.wholeAsParseInt ? parseGoUintBase0(value, rule.max) : readAtoi(value, rule.max);
  if (parsed !== null && parsed >= (rule.min ?? 0)) return parsed;
  source.invalid(key, value, rule.expected, rule.kept);
  return fallback;
}
