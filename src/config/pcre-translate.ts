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
// - `\A`, `\z`, `\Z`, `\h`, `\H`, `\s`, `\S` and `\x` with fewer than two digits get their PCRE meaning
//   (JavaScript without `u` reads an unknown escape as the letter itself: `\z` would be a literal z).
// What has no faithful rewrite here (`\Q…\E`, `\R`, `\K`, `\p{…}`, negated POSIX classes…) is an error:
// the location then fails closed (503) rather than matching other paths than nginx's.

export type PcreTranslation = { ok: true; js: string } | { ok: false; message: string };

/** PCRE's \s: ASCII white space only (JavaScript's also takes U+00A0, U+2028, U+FEFF…). */
const SPACE = '\\t\\n\\v\\f\\r ';
/** PCRE's \h (without UTF): tab, space and U+00A0. */
const HORIZONTAL = '\\t \\xa0';

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
const SAME_OUTSIDE = new Set(['d', 'D', 'w', 'W', 'b', 'B', 'n', 'r', 't', 'f', 'v', 'c']);
/**
 * The same inside a class (`\b` is a backspace in both). `\S` cannot be spelled as a range there; it
 * is kept, JavaScript's refusing the non-ASCII spaces PCRE's takes (U+00A0…).
 */
const SAME_INSIDE = new Set(['d', 'D', 'w', 'W', 'S', 'b', 'n', 'r', 't', 'f', 'v', 'c']);

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
    else step = { out: c === '.' ? '[^\\n]' : c === '$' ? '(?:\\n?$)' : c, length: 1 };
    if (typeof step === 'string') return { ok: false, message: step };
    if (!inClass && c === '[') inClass = true;
    else if (inClass && c === ']') inClass = false;
    js += step.out;
    i += step.length;
  }
  return { ok: true, js };
}

/** `[`, `[^`, and a `]` right after them, which PCRE takes as a member. */
function classStart(source: string, at: number): Step {
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
  if (source[at] !== '[') return { out: source[at]!, length: 1 };
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
  if (!/[A-Za-z]/.test(c)) return { out: `\\${c}`, length: 2 };
  if ((inClass ? SAME_INSIDE : SAME_OUTSIDE).has(c)) return { out: `\\${c}`, length: 2 };
  if (c === 'x') return hexEscape(source, at);
  if (c === 's') return { out: inClass ? SPACE : `[${SPACE}]`, length: 2 };
  if (c === 'h') return { out: inClass ? HORIZONTAL : `[${HORIZONTAL}]`, length: 2 };
  if (!inClass) {
    if (c === 'S') return { out: `[^${SPACE}]`, length: 2 };
    if (c === 'H') return { out: `[^${HORIZONTAL}]`, length: 2 };
    if (c === 'A') return { out: '^', length: 2 };
    if (c === 'z') return { out: '$', length: 2 };
    if (c === 'Z') return { out: '(?:\\n?$)', length: 2 };
    if (c === 'k' && source[at + 2] === '<') return { out: '\\k', length: 2 };
  }
  return `the PCRE escape \\${c} has no JavaScript translation here`;
}

/** `\x` with up to two hex digits (PCRE: `\x` alone is NUL, `\xA` is 0x0A); `\x{…}` is refused. */
function hexEscape(source: string, at: number): Step | string {
  if (source[at + 2] === '{') return 'the PCRE escape \\x{…} is not supported';
  const digits = /^[0-9A-Fa-f]{0,2}/.exec(source.slice(at + 2, at + 4))![0];
  return { out: `\\x${digits.padStart(2, '0')}`, length: 2 + digits.length };
}

/**
 * A RegExp that matches as PCRE matches `source` (an nginx `~` test, ngx.re.match): throws, as
 * `new RegExp` does, when JavaScript cannot compile it or it has no faithful translation.
 */
export function pcreRegExp(source: string, flags = ''): RegExp {
  const translated = translatePcre(source);
  if (!translated.ok) throw new SyntaxError(`${JSON.stringify(source)}: ${translated.message}`);
  return new RegExp(translated.js, flags);
}
