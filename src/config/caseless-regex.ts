// Ingress regexes match ignoring case (nginx `~*`), but V8's linear-time engine, the one that bounds a
// runaway match (src/regex-engine.ts), does not take the `i` flag. So a source meant for `i` is
// rewritten to match the same without it: each cased character becomes the class of the characters
// `i` equates it with, and a character class gains the other case of its members. The rules are
// ECMAScript's for `i` without `u` (Canonicalize: toUpperCase, kept when it is not one code unit or
// would turn a non-ASCII character into an ASCII one), and the source is read as a non-`u` pattern
// (Annex B: `\p` is a `p`, `\x` without two hex digits an `x`). Captures and their places are those of
// the `i` regex on the same input. Null where the rewrite would not be exact: backreferences (compared
// ignoring case under `i`), octal escapes, group syntax other than `(?:`, `(?=`, `(?!`, `(?<=`,
// `(?<!`, `(?<name>` (a modifier `(?-i:` changes what `i` means), and what is not read here. Pure.

/** A class member: one code unit, a range of them, or a class escape kept as written (`\d`, `\W`). */
type ClassItem =
  | { kind: 'unit'; code: number }
  | { kind: 'range'; lo: number; hi: number }
  | { kind: 'escape'; text: string };

/** An escape read at `i` (the backslash): what it stands for and where the source goes on. */
type Escape = { item: ClassItem | { kind: 'assertion'; text: string }; end: number } | null;

const CLASS_ESCAPES = 'dDwWsS';
const CONTROL_ESCAPES: Record<string, number> = { f: 12, n: 10, r: 13, t: 9, v: 11 };

let nonAsciiClasses: Map<number, number[]> | null = null;

/** ECMAScript's Canonicalize for `i` without `u`. */
function canonicalize(code: number): number {
  const upper = String.fromCharCode(code).toUpperCase();
  if (upper.length !== 1) return code;
  const cu = upper.charCodeAt(0);
  return code >= 128 && cu < 128 ? code : cu;
}

/** The code units `i` equates with `code`, itself included. */
export function caseClass(code: number): number[] {
  if (code < 128) {
    const lower = code | 0x20;
    return lower >= 0x61 && lower <= 0x7a ? [lower & ~0x20, lower] : [code];
  }
  if (nonAsciiClasses === null) {
    // Built once, on the first non-ASCII character: every code unit under its canonical form.
    nonAsciiClasses = new Map();
    for (let c = 128; c <= 0xffff; c++) {
      const key = canonicalize(c);
      const members = nonAsciiClasses.get(key);
      if (members === undefined) nonAsciiClasses.set(key, [c]);
      else members.push(c);
    }
  }
  return nonAsciiClasses.get(canonicalize(code)) ?? [code];
}

function isHex(text: string): boolean {
  return /^[0-9a-fA-F]+$/.test(text);
}

/** The escape at `i` as a non-`u` pattern reads it, inside a class or not; null where refused. */
function readEscape(source: string, i: number, inClass: boolean): Escape {
  const n = source[i + 1];
  if (n === undefined) return null;
  const end = i + 2;
  if (n >= '1' && n <= '9') return null; // a backreference, or a legacy octal escape
  if (n === '0') return /[0-9]/.test(source[end] ?? '') ? null : { item: { kind: 'unit', code: 0 }, end };
  if (n === 'k') return null; // `\k<name>`, or a `k` that means one only without named groups
  if (CLASS_ESCAPES.includes(n)) return { item: { kind: 'escape', text: `\\${n}` }, end };
  if (n === 'b' || n === 'B') {
    if (!inClass) return { item: { kind: 'assertion', text: `\\${n}` }, end };
    if (n === 'b') return { item: { kind: 'unit', code: 8 }, end };
  }
  const control = CONTROL_ESCAPES[n];
  if (control !== undefined) return { item: { kind: 'unit', code: control }, end };
  if (n === 'c') {
    const letter = source[end] ?? '';
    // `\c` before anything but a letter is Annex B's odd corner: refused.
    return /[a-zA-Z]/.test(letter)
      ? { item: { kind: 'unit', code: letter.charCodeAt(0) % 32 }, end: end + 1 }
      : null;
  }
  const digits = n === 'x' ? 2 : n === 'u' ? 4 : 0;
  const hex = source.slice(end, end + digits);
  if (digits > 0 && hex.length === digits && isHex(hex))
    return { item: { kind: 'unit', code: Number.parseInt(hex, 16) }, end: end + digits };
  // An identity escape: the character itself (`\/`, `\.`, and without `u` also `\p`, `\x`, `\e`).
  return { item: { kind: 'unit', code: n.charCodeAt(0) }, end };
}

/** A code unit as class text: letters and digits as they are, the rest as `\uHHHH`. */
function unitText(code: number): string {
  if (/[0-9A-Za-z]/.test(String.fromCharCode(code))) return String.fromCharCode(code);
  return `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * The code units `i` adds to a member: the other case of each cased unit it holds (`asciiOnly`: of
 * ASCII letters only, as PCRE's default tables fold).
 */
function addedBy(item: ClassItem, into: Set<number>, asciiOnly: boolean): void {
  if (item.kind === 'escape') return; // \d \w \s and their negations already hold both cases
  const [lo, hi] = item.kind === 'unit' ? [item.code, item.code] : [item.lo, item.hi];
  // ASCII letters: the intersection with A-Z gains a-z, and the other way round.
  for (const [from, to, shift] of [
    [0x41, 0x5a, 0x20],
    [0x61, 0x7a, -0x20],
  ] as const) {
    for (let c = Math.max(lo, from); c <= Math.min(hi, to); c++) into.add(c + shift);
  }
  if (asciiOnly) return;
  for (let c = Math.max(lo, 128); c <= hi; c++) {
    for (const member of caseClass(c)) if (member < lo || member > hi) into.add(member);
  }
}

/** Code units as class text, runs of three or more as ranges. */
function unitsText(units: Set<number>): string {
  const sorted = [...units].sort((a, b) => a - b);
  let text = '';
  for (let k = 0; k < sorted.length; ) {
    let j = k;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    const [lo, hi] = [sorted[k]!, sorted[j]!];
    text +=
      hi - lo >= 2
        ? `${unitText(lo)}-${unitText(hi)}`
        : sorted
            .slice(k, j + 1)
            .map(unitText)
            .join('');
    k = j + 1;
  }
  return text;
}

/** One class atom at `i`: a code unit or a class escape, and where the source goes on. */
function readClassAtom(source: string, i: number): { item: ClassItem; end: number } | null {
  if (source[i] !== '\\') return { item: { kind: 'unit', code: source.charCodeAt(i) }, end: i + 1 };
  const read = readEscape(source, i, true);
  if (read === null || read.item.kind === 'assertion') return null;
  return { item: read.item, end: read.end };
}

/** The class that opens at `i`, its members closed under `i`, and where the source goes on. */
function rewriteClass(source: string, i: number, asciiOnly: boolean): { text: string; end: number } | null {
  let j = i + 1;
  const negated = source[j] === '^';
  if (negated) j++;
  const items: ClassItem[] = [];
  while (j < source.length && source[j] !== ']') {
    const first = readClassAtom(source, j);
    if (first === null) return null;
    j = first.end;
    if (source[j] !== '-' || source[j + 1] === ']' || j + 1 >= source.length) {
      items.push(first.item);
      continue;
    }
    const second = readClassAtom(source, j + 1);
    if (second === null) return null;
    j = second.end;
    if (first.item.kind === 'unit' && second.item.kind === 'unit') {
      if (first.item.code > second.item.code) return null; // RegExp refuses it too
      items.push({ kind: 'range', lo: first.item.code, hi: second.item.code });
    } else {
      // Annex B: a range with a class escape at either end is its two ends and a `-`.
      items.push(first.item, { kind: 'unit', code: 0x2d }, second.item);
    }
  }
  if (j >= source.length) return null; // unterminated
  const added = new Set<number>();
  for (const item of items) addedBy(item, added, asciiOnly);
  const body = items
    .map((item) =>
      item.kind === 'escape'
        ? item.text
        : item.kind === 'unit'
          ? unitText(item.code)
          : `${unitText(item.lo)}-${unitText(item.hi)}`,
    )
    .join('');
  return { text: `[${negated ? '^' : ''}${body}${unitsText(added)}]`, end: j + 1 };
}

/** A code unit outside a class: as written when `i` equates it with nothing else, else its class. */
function unitAtom(code: number, written: string, asciiOnly: boolean): string {
  if (asciiOnly && code >= 128) return written;
  const members = caseClass(code);
  return members.length === 1 ? written : `[${members.map(unitText).join('')}]`;
}

/** The group opening at `i` (`(`), kept as written; null for group syntax not read here. */
function groupOpening(source: string, i: number): string | null {
  if (source[i + 1] !== '?') return '(';
  const next = source.slice(i + 2, i + 4);
  if (next.startsWith(':') || next.startsWith('=') || next.startsWith('!')) return source.slice(i, i + 3);
  if (next === '<=' || next === '<!') return source.slice(i, i + 4);
  const named = /^\(\?<[^>]+>/.exec(source.slice(i));
  return named === null ? null : named[0]; // a name is case-sensitive: kept as written
}

/**
 * `source`, a pattern meant for the `i` flag (and no `u`), rewritten to match the same without it:
 * the same matches, at the same places, with the same captures. Null where that cannot be exact.
 */
export function withoutIgnoreCase(source: string, asciiOnly = false): string | null {
  let out = '';
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === '\\') {
      const read = readEscape(source, i, false);
      if (read === null) return null;
      const { item } = read;
      const written = source.slice(i, read.end);
      out += item.kind === 'unit' ? unitAtom(item.code, written, asciiOnly) : written;
      i = read.end;
    } else if (c === '[') {
      const rewritten = rewriteClass(source, i, asciiOnly);
      if (rewritten === null) return null;
      out += rewritten.text;
      i = rewritten.end;
    } else if (c === '(') {
      const opening = groupOpening(source, i);
      if (opening === null) return null;
      out += opening;
      i += opening.length;
    } else {
      out += unitAtom(source.charCodeAt(i), c, asciiOnly);
      i++;
    }
  }
  return out;
}

/**
 * What `new RegExp(source, 'i')` matches, compiled without `i` where the rewrite is exact, so that
 * V8 can finish a runaway match in its linear-time engine. Throws as `new RegExp(source, 'i')` does:
 * a drop-in for it, and its callers already turn the SyntaxError into a value.
 */
export function caselessRegExp(source: string): RegExp {
  const withFlag = new RegExp(source, 'i');
  const rewritten = withoutIgnoreCase(source);
  if (rewritten === null) return withFlag;
  try {
    return new RegExp(rewritten);
  } catch {
    return withFlag; // not expected: the rewrite keeps the syntax it read
  }
}

/** Non-ASCII code units, written or escaped, in a pattern: what `i` would fold as PCRE's tables do not. */
const NON_ASCII = /[\u0080-\uffff]|\\x[89a-fA-F]|\\u/;

/**
 * What nginx's `~*` matches (PCRE, default tables): case ignored for ASCII letters only (JavaScript's
 * `i` also folds é and É, bytes 0xE9 and 0xC9 of a path). Throws where that cannot be written exactly.
 */
export function asciiCaselessRegExp(source: string): RegExp {
  const withFlag = new RegExp(source, 'i');
  const rewritten = withoutIgnoreCase(source, true);
  if (rewritten !== null) return new RegExp(rewritten);
  if (!NON_ASCII.test(source)) return withFlag; // `i` folds nothing else here
  throw new SyntaxError('cannot ignore the case of ASCII letters only in this pattern');
}
