// ingress-nginx source-range values: the allowlist/whitelist/denylist annotations and the ConfigMap
// lists (whitelist-source-range, denylist-source-range, block-cidrs), with ingress-nginx's semantics:
// comma-separated, each entry trimmed, CIDRs or bare IPs, IPv4 and IPv6, host bits masked, duplicates
// dropped, output sorted as strings (Go's sort.Strings) with bare IPs kept bare, exactly as
// ingress-nginx's net.ParseCIDRs prints them. Any bad or empty entry rejects the whole value; the
// location then fails closed (503) rather than falling back to something more permissive.
import type { SourceRangeModel } from '../config/model.ts';
import { formatCidr, parseCidr } from '../net/cidr.ts';
import { formatIp } from '../net/ip.ts';
import { trimGoSpace } from './values.ts';

export const ANNOTATION_PREFIX = 'nginx.ingress.kubernetes.io/';

export type SourceRangeResult =
  | { ok: true; cidrs: string[] }
  | { ok: false; error: { code: 'INVALID_SOURCE_RANGE'; message: string } };

function invalid(message: string): SourceRangeResult {
  return { ok: false, error: { code: 'INVALID_SOURCE_RANGE', message } };
}

function show(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

/** Normalises one trimmed entry the way Go prints it: a CIDR as network/len, a bare IP as the IP. */
function normaliseEntry(entry: string): string | null {
  const parsed = parseCidr(entry);
  if (!parsed.ok) return null;
  return entry.includes('/') ? formatCidr(parsed.cidr) : formatIp(parsed.cidr.address);
}

const ALL_ONES = '255.255.255.255';

/**
 * Whether nginx refuses the line ingress-nginx writes for this entry: its address parser reads
 * 255.255.255.255 as INADDR_NONE (invalid), also inside `::ffff:`. An annotation is written as Go
 * prints it (`normalised`); a ConfigMap list as written. nginx then refuses the whole configuration,
 * so the list is invalid here: it fails closed.
 */
function nginxRefuses(entry: string, normalised: string, from: 'annotation' | 'configmap'): boolean {
  if (from === 'annotation') return normalised === ALL_ONES || normalised === `${ALL_ONES}/32`;
  const address = entry.split('/')[0]!;
  return address === ALL_ONES || address.toLowerCase().endsWith(`:${ALL_ONES}`);
}

/**
 * Parses an annotation value. `10.0.0.0/24` -> ["10.0.0.0/24"]; `192.0.0.1, 192.0.1.0/24` ->
 * ["192.0.0.1","192.0.1.0/24"]; an empty value, an empty entry or any bad entry -> INVALID_SOURCE_RANGE.
 */
export function parseSourceRange(
  value: string,
  from: 'annotation' | 'configmap' = 'annotation',
): SourceRangeResult {
  if (trimGoSpace(value) === '') return invalid('the value is empty: it must list at least one CIDR or IP');
  const seen = new Set<string>();
  const parts = value.split(',');
  for (let i = 0; i < parts.length; i++) {
    const entry = trimGoSpace(parts[i]!);
    if (entry === '') return invalid(`entry ${i + 1} of ${parts.length} is empty`);
    const normalised = normaliseEntry(entry);
    if (normalised === null) return invalid(`${show(entry)} is not a valid IP address or network`);
    if (nginxRefuses(entry, normalised, from))
      return invalid(`${show(entry)}: nginx reads ${ALL_ONES} as no address and refuses the list`);
    seen.add(normalised);
  }
  return { ok: true, cidrs: [...seen].sort(compareStrings) };
}

/**
 * The entries of a list written as IPv4-mapped IPv6 (`::ffff:10.0.0.0/104`, `::ffff:10.0.0.1`), each
 * with the IPv4 range Go prints for it (10.0.0.0/8). An annotation's entries pass through Go's
 * ParseCIDR in ingress-nginx, so they are that IPv4 range (`::ffff:0:0/96` is 0.0.0.0/0: every IPv4
 * client); a ConfigMap list reaches nginx as written, where such an entry is IPv6 and matches no IPv4
 * client. Either way its spelling hides what it does: the readers warn about each.
 */
export function mappedEntries(value: string): { entry: string; ipv4: string }[] {
  const found: { entry: string; ipv4: string }[] = [];
  for (const part of value.split(',')) {
    const entry = trimGoSpace(part);
    if (!entry.includes(':')) continue;
    const parsed = parseCidr(entry);
    if (parsed.ok && parsed.cidr.address.family === 4) found.push({ entry, ipv4: formatCidr(parsed.cidr) });
  }
  return found;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The model form: every entry as a CIDR (bare IPs become /32 or /128), duplicates dropped, order kept. */
function toModelCidrs(cidrs: readonly string[]): string[] {
  const out = new Set<string>();
  for (const entry of cidrs) {
    const parsed = parseCidr(entry);
    // parseSourceRange produced these entries, so they always parse.
    if (parsed.ok) out.add(formatCidr(parsed.cidr));
  }
  return [...out];
}

/** Turns one annotation or ConfigMap value into a SourceRangeModel (valid, or invalid and failing closed). */
export function sourceRangeModel(raw: string, from: 'annotation' | 'configmap'): SourceRangeModel {
  const parsed = parseSourceRange(raw, from);
  if (!parsed.ok) return { valid: false, raw, error: parsed.error.message, from };
  return { valid: true, cidrs: toModelCidrs(parsed.cidrs), raw, from };
}

/**
 * A ConfigMap list (whitelist-source-range, denylist-source-range, block-cidrs, proxy-real-ip-cidr).
 * Absent or empty means "no list" (null). Split as ingress-nginx's splitAndTrimSpace splits it: empty
 * fields (`,,`) are dropped, then each is trimmed; a field of white space alone is then an empty entry,
 * which nginx refuses to load (`allow ;`), as any bad entry: the list is invalid (fail closed).
 */
export function parseConfigMapSourceRange(
  value: string | undefined,
  mapped: 'fold' | 'as-nginx' = 'fold',
): SourceRangeModel | null {
  if (value === undefined || value === '') return null;
  const entries = value
    .split(',')
    .filter((field) => field !== '')
    .map(trimGoSpace);
  if (entries.length === 0) return null;
  const model = entries.includes('')
    ? invalidConfigMapList(value)
    : sourceRangeModel(entries.join(','), 'configmap');
  if (!model.valid) return { ...model, raw: value };
  return mapped === 'as-nginx' ? withoutMappedEntries(model, entries, value) : model;
}

/**
 * `mapped: 'as-nginx'`: nginx reads an IPv4-mapped entry (`allow ::ffff:0:0/96;`, `set_real_ip_from
 * ::ffff:10.0.0.1;`) as IPv6, which no IPv4 client matches: such entries match nobody here either.
 * For an allow or trust list that is the safe reading too (the folded one could admit every IPv4
 * client); a list left with nothing else still restricts (`matchesNobody`).
 */
function withoutMappedEntries(model: SourceRangeModel, entries: string[], raw: string): SourceRangeModel {
  const ignored = new Set(mappedEntries(entries.join(',')).map((m) => m.entry));
  if (ignored.size === 0) return model;
  const kept = entries.filter((e) => !ignored.has(e));
  if (kept.length === 0) return { valid: true, cidrs: [], raw, from: 'configmap', matchesNobody: true };
  return { ...sourceRangeModel(kept.join(','), 'configmap'), raw };
}

/** A ConfigMap list with an entry of white space alone (nginx would write `allow ;` and not load). */
function invalidConfigMapList(value: string): SourceRangeModel {
  const error = 'an entry is white space alone (ingress-nginx would write `allow ;`, which nginx refuses)';
  return { valid: false, raw: value, error, from: 'configmap' };
}

export interface AccessRules {
  allow: SourceRangeModel | null;
  deny: SourceRangeModel | null;
}

/**
 * Per-location allow/deny lists from an Ingress's annotations over the ConfigMap defaults:
 * - allowlist-source-range wins over whitelist-source-range; the legacy name is read only when the
 *   allowlist annotation is absent or empty (white space alone is an invalid list: denied);
 * - an annotation replaces the ConfigMap default (no merge); without one the default applies;
 * - a present but empty annotation (with no non-empty alias) is an invalid value: fail closed.
 */
export function resolveAccessRules(
  annotations: Readonly<Record<string, string>>,
  configMapDefaults: AccessRules,
  prefix: string = ANNOTATION_PREFIX,
): AccessRules {
  return {
    allow: pick(
      annotations,
      [`${prefix}allowlist-source-range`, `${prefix}whitelist-source-range`],
      configMapDefaults.allow,
    ),
    deny: pick(annotations, [`${prefix}denylist-source-range`], configMapDefaults.deny),
  };
}

/**
 * An annotation read under its names in order, as ingress-nginx's checkAnnotation reads an alias:
 * the next name only while the value is empty. White space alone is a value (an invalid one where a
 * list is expected), never a way to a legacy name's. The first name's empty value when none has one;
 * undefined when none is present.
 */
export function aliasedAnnotation(
  annotations: Readonly<Record<string, string>>,
  names: readonly string[],
): { name: string; value: string } | undefined {
  let empty: { name: string; value: string } | undefined;
  for (const name of names) {
    if (!Object.hasOwn(annotations, name)) continue;
    const value = annotations[name];
    if (typeof value !== 'string') continue;
    if (value !== '') return { name, value };
    empty ??= { name, value };
  }
  return empty;
}

function pick(
  annotations: Readonly<Record<string, string>>,
  names: readonly string[],
  fallback: SourceRangeModel | null,
): SourceRangeModel | null {
  const found = aliasedAnnotation(annotations, names);
  return found === undefined ? fallback : sourceRangeModel(found.value, 'annotation');
}
