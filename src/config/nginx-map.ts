// The source side of an nginx `map` block, as ingress-nginx writes block-user-agents, block-referers
// and skip-access-log-urls into one: each entry is pasted unquoted as a line `<entry> 1;`, so nginx
// reads it as configuration words (nginx-token.ts: quotes, escapes, a `#` comment). Its one word is a
// regular expression when it starts with `~` (`~*`: case-insensitive), else a string that must equal
// the whole value, ASCII letters without case (nginx lower-cases map keys and values byte by byte); a
// leading `\` is dropped (it escapes a `~`). Values are compared as bytes: a header is latin1 text (one
// character per byte), an entry's UTF-8 is brought to the same form. Pure.

import { readDirective } from './nginx-token.ts';
import { pcreRegExp } from './pcre-translate.ts';
import { backtrackingRisk } from './regex-backtracking.ts';

export type MapEntry = { kind: 'exact'; lower: string } | { kind: 'regex'; regex: RegExp };

/** entry null: nginx reads no key from it (a `#` comment). */
export type MapEntryRead = { ok: true; entry: MapEntry | null } | { ok: false; error: string };

/** Words nginx's map reads as its own parameters, not as keys (`default`: ingress-nginx sets one already). */
const MAP_PARAMETERS = new Set(['default', 'include']);

/** An entry as nginx reads the line `<entry> 1;` in the map block. */
export function readMapEntry(text: string): MapEntryRead {
  const read = readDirective(`${text} 1;`);
  if (read.kind === 'end-of-text' && read.words.length === 0) return { ok: true, entry: null };
  if (read.kind === 'error')
    return { ok: false, error: `"${text}": ${read.error} (as nginx reads the line)` };
  if (read.kind !== 'directive' || read.rest !== '' || read.words.length !== 2)
    return { ok: false, error: `"${text}" is not one word as nginx reads it (quote it: "a b")` };
  const key = read.words[0] as string;
  if (MAP_PARAMETERS.has(key)) return { ok: false, error: `"${text}" is nginx's map parameter ${key}` };
  return readMapKey(key);
}

/** One map key (a word already read): `~`/`~*` a PCRE, else the exact value. */
export function readMapKey(key: string): MapEntryRead {
  if (!key.startsWith('~')) {
    const exact = key.startsWith('\\') ? key.slice(1) : key;
    return { ok: true, entry: { kind: 'exact', lower: asciiLower(asBytes(exact)) } };
  }
  const caseless = key.startsWith('~*');
  const source = key.slice(caseless ? 2 : 1);
  if (source === '')
    return { ok: false, error: `"${key}" has no regular expression after ${caseless ? '~*' : '~'}` };
  // Matched against what clients send (User-Agent, Referer, the URI).
  const risk = backtrackingRisk(source);
  if (risk !== null) return { ok: false, error: `"${key}" ${risk}` };
  try {
    return { ok: true, entry: { kind: 'regex', regex: pcreRegExp(source, caseless) } };
  } catch (error) {
    return { ok: false, error: `"${key}": ${(error as Error).message}` };
  }
}

/** A whole map's source side: whether some entry matches `value` (latin1 text; "" for an absent field). */
export interface MapMatcher {
  matches(value: string): boolean;
}

/**
 * Compiles entries already read without error by `read` (readMapEntry, or readMapKey for words that
 * are not map lines); unreadable ones are skipped. nginx runs no regex on an empty value.
 */
export function compileMap(entries: readonly string[], read = readMapEntry): MapMatcher {
  const exact = new Set<string>();
  const regexes: RegExp[] = [];
  for (const text of entries) {
    const entry = read(text);
    if (!entry.ok || entry.entry === null) continue;
    if (entry.entry.kind === 'exact') exact.add(entry.entry.lower);
    else regexes.push(entry.entry.regex);
  }
  return {
    matches(value) {
      if (exact.size > 0 && exact.has(asciiLower(value))) return true;
      if (value === '') return false;
      for (const regex of regexes) if (regex.test(value)) return true;
      return false;
    },
  };
}

/** The text's UTF-8 bytes, one latin1 character each (how a request's header bytes are read). */
function asBytes(text: string): string {
  return /[^\x00-\x7f]/.test(text) ? Buffer.from(text, 'utf8').toString('latin1') : text;
}

/** ASCII letters lower-cased, every other character kept (nginx's ngx_strlow). */
function asciiLower(text: string): string {
  return /[A-Z]/.test(text) ? text.replace(/[A-Z]+/g, (run) => run.toLowerCase()) : text;
}
