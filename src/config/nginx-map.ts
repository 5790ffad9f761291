// The source side of an nginx `map` block, as ingress-nginx writes block-user-agents, block-referers
// and skip-access-log-urls into one: an entry is a regular expression when it starts with `~`
// (`~*`: case-insensitive), else a string that must equal the whole value, case-insensitively (nginx
// compares map strings ignoring case). Pure.

import { backtrackingRisk } from './regex-backtracking.ts';
import { pcreRegExp } from './pcre-translate.ts';

export type MapEntry = { kind: 'exact'; lower: string } | { kind: 'regex'; regex: RegExp };

export type MapEntryRead = { ok: true; entry: MapEntry } | { ok: false; error: string };

/** nginx takes PCRE: its meaning in JavaScript syntax (pcre-translate.ts), or an error. */
export function readMapEntry(text: string): MapEntryRead {
  if (!text.startsWith('~')) return { ok: true, entry: { kind: 'exact', lower: text.toLowerCase() } };
  const caseless = text.startsWith('~*');
  const source = text.slice(caseless ? 2 : 1);
  if (source === '')
    return { ok: false, error: `"${text}" has no regular expression after ${caseless ? '~*' : '~'}` };
  // Matched against what clients send (User-Agent, Referer, the URI).
  const risk = backtrackingRisk(source);
  if (risk !== null) return { ok: false, error: `"${text}" ${risk}` };
  try {
    return { ok: true, entry: { kind: 'regex', regex: pcreRegExp(source, caseless) } };
  } catch (error) {
    return { ok: false, error: `"${text}": ${(error as Error).message}` };
  }
}

/** A whole map's source side: whether some entry matches `value`. */
export interface MapMatcher {
  matches(value: string): boolean;
}

/** Compiles entries already read without error (readMapEntry); unreadable ones are skipped. */
export function compileMap(entries: readonly string[]): MapMatcher {
  const exact = new Set<string>();
  const regexes: RegExp[] = [];
  for (const text of entries) {
    const read = readMapEntry(text);
    if (!read.ok) continue;
    if (read.entry.kind === 'exact') exact.add(read.entry.lower);
    else regexes.push(read.entry.regex);
  }
  return {
    matches(value) {
      if (exact.size > 0 && exact.has(value.toLowerCase())) return true;
      for (const regex of regexes) if (regex.test(value)) return true;
      return false;
    },
  };
}
