// An Ingress regex path is PCRE (nginx's `location ~* "^<path>"`); the gateway runs it as a JavaScript
// RegExp (without the `u` flag). Where the two read the same text differently, a location would take
// requests nginx sends elsewhere or miss ones nginx gives it, and so leave them to another location
// without its allowlist. This rewrites PCRE's meaning into JavaScript syntax:
// - `.` matches anything but a line feed (JavaScript's also refuses CR, U+2028, U+2029): `[^\n]`;
// - `$` matches at the end or before a final line feed: `(?:\n?$)` (no lookaround, which would keep
//   V8's linear-time fallback away, src/regex-engine.ts);
// - a `]` first in a class is a member (`[]a]`, `[^]]`); JavaScript reads `[]` as an empty class and
//   `[^]` as "any character": `\]`;
// - POSIX classes (`[[:digit:]]`) become their ASCII ranges;
// - `\A`, `\z`, `\Z`, `\h`, `\H`, `\s`, `\S`, `\v`, `\V`, `\c`, `\0` and `\x` with fewer than two digits
//   get their PCRE meaning (JavaScript without `u` reads an unknown escape as the letter itself: `\z`
//   would be a literal z);
// - a character beyond ASCII is its UTF-8 bytes (nginx's PCRE runs without UTF on the path's bytes,
//   which the gateway holds one character per byte); `(?P<name>` is `(?<name>`.
// What has no faithful rewrite here (`\Q…\E`, `\R`, `\K`, `\p{…}`, backreferences, which PCRE fails
// where the group did not match and JavaScript matches empty, negated POSIX classes, a quantified `$`…)
// is an error: the location then fails closed (503) rather than matching other paths than nginx's.

import { asciiCaselessRegExp } from './caseless-regex.ts';

export type PcreTranslation = { ok: true; js: string } | { ok: false; message: string };

/** PCRE's \s: ASCII white space only (JavaScript's also takes U+00A0, U+2028, U+FEFF…). */
const SPACE = '\\t\\n\\v\\f\\r ';
/** Everything but PCRE's \s, as a class body. */
const NOT_SPACE = '\\x00-\\x08\\x0e-\\x1f\\x21-\\uffff';
/** PCRE's \h (without UTF): tab, space and U+00A0. */
const HORIZONTAL = '\\t \\xa0';
/** Everything but PCRE's \h, as a class body. */
const NOT_HORIZONTAL = '\\x00-\\x08\\x0a-\\x1f\\x21-\\x9f\\xa1-\\uffff';
/** PCRE's \v: the vertical white space (JavaScript's \v is the vertical tab alone). */
const VERTICAL = '\\n\\x0b\\f\\r\\x85';

/** POSIX class bodies as PCRE defines them without UTF (the C locale). */
const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alpha: 'a-zA-Z',
  digit: '0-9',
  alnum: 'a-zA-Z0-9',
  upper: 'A-Z',
  lower: 'a-z',
  space: SPACE,
  blank: '\\t ',
  punct: '!-\\/:-@\\[-`{-~',
  xdigit: '0-9A-Fa-f',
  word: 'a-zA-Z0-9_',
  cntrl: '\\x00-\\x1f\\x7f',
  print: '\\x20-\\x7e',
  graph: '\\x21-\\x7e',
  ascii: '\\x00-\\x7f',
};

/** Escapes that mean the same in both (outside a class; `b`/`B` are word boundaries there). */
const SAME_OUTSIDE = new Set(['d', 'D', 'w', 'W', 'b', 'B', 'n', 'r', 't', 'f']);
/** The same inside a class (`\b` is a backspace in both). */
const SAME_INSIDE = new Set(['d', 'D', 'w', 'W', 'b', 'n', 'r', 't', 'f']);
/** Escapes whose PCRE meaning is a class: [outside a class, inside one (null: refused there)]. */
const CLASS_ESCAPES: Readonly<Record<string, readonly [string, string | null]>> = {
  s: [`[${SPACE}]`, SPACE],
  S: [`[${NOT_SPACE}]`, NOT_SPACE],
  h: [`[${HORIZONTAL}]`, HORIZONTAL],
  H: [`[${NOT_HORIZONTAL}]`, NOT_HORIZONTAL],
  v: [`[${VERTICAL}]`, VERTICAL],
  V: [`[^${VERTICAL}]`, null],
};
/** Assertions, outside a class. */
const ASSERTIONS: Readonly<Record<string, string>> = { A: '^', z: '$', Z: '(?:\\n?$)' };

interface Step {
  out: string;
  /** Characters of the source consumed. */
  length: number;
}

export function translatePcre(source: string): PcreTranslation {
  let js = '';
  let inClass = false;
  for (let i = 0; i < source.length; ) {
    const c = source[i]!;
    let step: Step | string;
    if (c === '\\') step = escapeSequence(source, i, inClass);
    else if (inClass) step = classMember(source, i);
    else if (c === '[') step = classStart(source, i);
    else step = plain(source, i);
    if (typeof step === 'string') return { ok: false, message: step };
    if (!inClass && c === '[') inClass = true;
    else if (inClass && c === ']') inClass = false;
    js += step.out;
    i += step.length;
  }
  return { ok: true, js };
}

/** A character outside a class and not an escape. */
function plain(source: string, at: number): Step | string {
  const c = source[at]!;
  if (c === '.') return { out: '[^\\n]', length: 1 };
  if (c === '$') {
    // PCRE refuses a quantifier after an assertion; JavaScript would repeat the group written for it.
    if (/^[*+?]|^\{\d/.test(source.slice(at + 1))) return 'a quantifier cannot follow $';
    if (!endsBranch(source, at + 1)) return 'only the end of a branch may follow $';
    return { out: '(?:\\n?$)', length: 1 };
  }
  if (source.startsWith('(?P<', at)) return { out: '(?<', length: 4 };
  return c.charCodeAt(0) < 0x80 ? { out: c, length: 1 } : utf8Bytes(source, at);
}

/**
 * Whether the pattern's branch ends at `at`. `(?:\n?$)`, written for `$` and `\Z`, takes the final line
 * feed PCRE's assertion stops before: the same matches only when nothing follows it in its branch (`/x$`,
 * `(/|$)`); a next item could take that line feed in PCRE (`$\v`).
 */
function endsBranch(source: string, at: number): boolean {
  const next = source[at];
  return next === undefined || next === ')' || next === '|';
}

/** A character beyond ASCII as PCRE without UTF reads it: its UTF-8 bytes. */
function utf8Bytes(source: string, at: number): Step {
  const code = source.codePointAt(at)!;
  const char = String.fromCodePoint(code);
  const out = [...Buffer.from(char, 'utf8')].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
  return { out, length: char.length };
}

/** `[`, `[^`, and a `]` right after them, which PCRE takes as a member. */
function classStart(source: string, at: number): Step | string {
  if (/^\[:\^?[a-z]+:\]/.test(source.slice(at)))
    return 'a POSIX class is only valid inside a class ([[:digit:]])';
  let out = '[';
  let length = 1;
  if (source[at + length] === '^') {
    out += '^';
    length++;
  }
  if (source[at + length] === ']') {
    out += '\\]';
    length++;
  }
  return { out, length };
}

/** One character inside a class: a POSIX class (`[:name:]`) is expanded, anything else kept. */
function classMember(source: string, at: number): Step | string {
  const c = source[at]!;
  if (c.charCodeAt(0) >= 0x80) return utf8Bytes(source, at);
  if (c !== '[') return { out: c, length: 1 };
  const next = source[at + 1];
  if (next === '.' || next === '=') return 'POSIX collating elements ([. .], [= =]) are not supported';
  if (next !== ':') return { out: '\\[', length: 1 };
  const end = source.indexOf(':]', at + 2);
  if (end < 0) return { out: '\\[', length: 1 };
  const name = source.slice(at + 2, end);
  if (name.startsWith('^')) return `the negated POSIX class [:${name}:] is not supported`;
  const body = POSIX_CLASSES[name];
  if (body === undefined) return `unknown POSIX class [:${name}:]`;
  return { out: body, length: end + 2 - at };
}

/** A backslash escape, in or out of a class, as PCRE means it. */
function escapeSequence(source: string, at: number, inClass: boolean): Step | string {
  const c = source[at + 1];
  if (c === undefined) return 'the pattern ends with a backslash';
  if (c === '0') return octalEscape(source, at);
  if (c >= '1' && c <= '9')
    return 'backreferences are not supported (PCRE fails one to a group that did not match)';
  if (c.charCodeAt(0) >= 0x80) {
    const bytes = utf8Bytes(source, at + 1); // `\é` is é
    return { out: bytes.out, length: 1 + bytes.length };
  }
  if (!/[A-Za-z]/.test(c)) return { out: `\\${c}`, length: 2 };
  if ((inClass ? SAME_INSIDE : SAME_OUTSIDE).has(c)) return { out: `\\${c}`, length: 2 };
  if (c === 'x') return hexEscape(source, at);
  if (c === 'c') return controlEscape(source, at);
  const asClass = CLASS_ESCAPES[c];
  if (asClass !== undefined) {
    const out = inClass ? asClass[1] : asClass[0];
    if (out !== null) return { out, length: 2 };
  }
  const assertion = inClass ? undefined : ASSERTIONS[c];
  if (c === 'Z' && !inClass && !endsBranch(source, at + 2)) return 'only the end of a branch may follow \\Z';
  if (assertion !== undefined) return { out: assertion, length: 2 };
  return `the PCRE escape \\${c} has no JavaScript translation here`;
}

/** `\x` with up to two hex digits (PCRE: `\x` alone is NUL, `\xA` is 0x0A); `\x{…}` is refused. */
function hexEscape(source: string, at: number): Step | string {
  if (source[at + 2] === '{') return 'the PCRE escape \\x{…} is not supported';
  const digits = /^[0-9A-Fa-f]{0,2}/.exec(source.slice(at + 2, at + 4))![0];
  return { out: `\\x${digits.padStart(2, '0')}`, length: 2 + digits.length };
}

/** `\0` and up to two more octal digits: that byte. */
function octalEscape(source: string, at: number): Step {
  const digits = /^[0-7]{0,2}/.exec(source.slice(at + 2, at + 4))![0];
  const value = digits === '' ? 0 : Number.parseInt(digits, 8);
  return { out: `\\x${value.toString(16).padStart(2, '0')}`, length: 2 + digits.length };
}

/** `\cX`: the character X (upper-cased) with bit 0x40 flipped, as PCRE reads any ASCII X. */
function controlEscape(source: string, at: number): Step | string {
  const x = source[at + 2];
  if (x === undefined || x.charCodeAt(0) >= 0x80)
    return 'the PCRE escape \\c needs an ASCII character after it';
  const value = x.toUpperCase().charCodeAt(0) ^ 0x40;
  return { out: `\\x${value.toString(16).padStart(2, '0')}`, length: 3 };
}

/**
 * A RegExp that matches as PCRE matches `source` (an nginx `~` test, ngx.re.match; `caseless`: `~*`,
 * ASCII letters only): throws, as `new RegExp` does, when JavaScript cannot compile it or it has no
 * faithful translation (the error's message says why).
 */
export function pcreRegExp(source: string, caseless = false): RegExp {
  const translated = translatePcre(source);
  if (!translated.ok) throw new SyntaxError(translated.message);
  return caseless ? asciiCaselessRegExp(translated.js) : new RegExp(translated.js);
}
