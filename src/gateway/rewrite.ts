// rewrite-target as ingress-nginx renders it: `rewrite "(?i)<path>" <target> break;` inside the
// location. The pattern is the location's path, case-insensitive and NOT anchored; when it
// matches $uri (decoded, normalised), the whole URI is replaced by the target with `$1`..`$9`
// substituted (nginx rewrite semantics: `rewrite-target: /` sends every request to `/`). The
// query string is kept. A target outside `^/?[-._~a-zA-Z0-9/:$]*$` is refused (CVE-2026-3288).
// A target starting with `http://` or `https://` makes nginx answer a 302 redirect instead.

import { backtrackingRisk } from '../config/regex-backtracking.ts';
import { asciiCaselessRegExp } from '../config/caseless-regex.ts';
import { translatePcre } from '../config/pcre-translate.ts';

/** ingress-nginx's validation of rewrite-target values. */
export const REWRITE_TARGET_PATTERN = /^\/?[-._~a-zA-Z0-9/:$]*$/;

export function isValidRewriteTarget(target: string): boolean {
  return REWRITE_TARGET_PATTERN.test(target);
}

/** Literal text, or the index of a capture group. */
type TargetPart = string | number;

export interface CompiledRewrite {
  readonly pattern: RegExp;
  readonly parts: readonly TargetPart[];
  readonly target: string;
  /** The target is an absolute URL: nginx answers 302 with it instead of proxying. */
  readonly redirect: boolean;
}

export interface RouteError {
  code:
    | 'ROUTE_INVALID_REGEX'
    | 'ROUTE_REGEX_BACKTRACKS'
    | 'ROUTE_INVALID_REWRITE_TARGET'
    | 'ROUTE_REWRITE_VARIABLE';
  message: string;
}

export type RegexResult = { ok: true; regex: RegExp } | { ok: false; error: RouteError };

/**
 * Compiles an ingress path regex (PCRE/RE2 syntax as ingress-nginx passes it to nginx) to a
 * JS RegExp ignoring the case of ASCII letters (nginx's `~*`), anchored at the start or not. A
 * leading `(?i)` is dropped (the flag is always on), PCRE's meanings are spelled out (pcre-translate.ts);
 * anything without a translation or that JS cannot compile is an error, and so is a nested unbounded repeat (ROUTE_REGEX_BACKTRACKS: see src/config/regex-backtracking.ts).
 */
export function compileIngressRegex(source: string, anchored: boolean): RegexResult {
  const pcre = source.startsWith('(?i)') ? source.slice(4) : source;
  const translated = translatePcre(pcre);
  if (!translated.ok)
    return {
      ok: false,
      error: {
        code: 'ROUTE_INVALID_REGEX',
        message: `path ${JSON.stringify(source)} cannot be matched as nginx matches it: ${translated.message}`,
      },
    };
  const js = translated.js;
  const risk = backtrackingRisk(js);
  if (risk !== null)
    return {
      ok: false,
      error: { code: 'ROUTE_REGEX_BACKTRACKS', message: `path ${JSON.stringify(source)} ${risk}` },
    };
  try {
    // Anchoring by prefixing `^`, exactly as nginx's `~* "^<path>"` (so `^a|b` anchors only `a`).
    return { ok: true, regex: asciiCaselessRegExp(anchored ? `^${js}` : js) };
  } catch (err) {
    return {
      ok: false,
      error: {
        code: 'ROUTE_INVALID_REGEX',
        message: `path ${JSON.stringify(source)} is not a valid regular expression: ${(err as Error).message}`,
      },
    };
  }
}

/** Splits a target into literals and `$N` captures; `$name` variables are not supported. */
function parseTarget(target: string): { ok: true; parts: TargetPart[] } | { ok: false; error: RouteError } {
  const parts: TargetPart[] = [];
  let literal = '';
  for (let i = 0; i < target.length; i++) {
    const c = target[i]!;
    if (c !== '$') {
      literal += c;
      continue;
    }
    const next = target.charCodeAt(i + 1);
    if (next >= 0x30 && next <= 0x39) {
      if (literal !== '') parts.push(literal);
      literal = '';
      parts.push(next - 0x30);
      i++;
      continue;
    }
    return {
      ok: false,
      error: {
        code: 'ROUTE_REWRITE_VARIABLE',
        message: `rewrite-target ${JSON.stringify(target)} uses a variable or a bare $; only $0-$9 captures are supported`,
      },
    };
  }
  if (literal !== '') parts.push(literal);
  return { ok: true, parts };
}

/**
 * Compiles one location's rewrite. `null` target or '' means no rewrite (ingress-nginx renders
 * none for an empty target). An invalid target or pattern is an error: the caller ignores the
 * rewrite and reports it, as ingress-nginx does.
 */
export function compileRewrite(
  pathPattern: string,
  target: string | null,
): { ok: true; rewrite: CompiledRewrite | null } | { ok: false; error: RouteError } {
  if (target === null || target === '') return { ok: true, rewrite: null };
  if (!isValidRewriteTarget(target)) {
    return {
      ok: false,
      error: {
        code: 'ROUTE_INVALID_REWRITE_TARGET',
        message: `rewrite-target ${JSON.stringify(target)} does not match ${REWRITE_TARGET_PATTERN.source}; ignored`,
      },
    };
  }
  const parsed = parseTarget(target);
  if (!parsed.ok) return parsed;
  const regex = compileIngressRegex(pathPattern, false);
  if (!regex.ok) return regex;
  const redirect = target.startsWith('http://') || target.startsWith('https://');
  return { ok: true, rewrite: { pattern: regex.regex, parts: parsed.parts, target, redirect } };
}

// Bytes that cannot stand unescaped in a request-target (RFC 3986) once the URI has been decoded.
const ESCAPE_IN_PATH = new Uint8Array(256);
for (let b = 0; b <= 0x20; b++) ESCAPE_IN_PATH[b] = 1;
for (let b = 0x7f; b < 256; b++) ESCAPE_IN_PATH[b] = 1;
for (const ch of '"#%<>?\\^`{|}') ESCAPE_IN_PATH[ch.charCodeAt(0)] = 1;
// Bytes no request-target may carry at all: a target made of variables keeps its `%`, `?` and `#`.
const UNSENDABLE_IN_TARGET = new Uint8Array(256);
for (let b = 0; b <= 0x20; b++) UNSENDABLE_IN_TARGET[b] = 1;
for (let b = 0x7f; b < 256; b++) UNSENDABLE_IN_TARGET[b] = 1;
const HEX = '0123456789ABCDEF';

/** Percent-encodes a decoded path (a byte string) for the upstream request line. */
export function escapePath(path: string): string {
  return escapeBytes(path, ESCAPE_IN_PATH);
}

/**
 * Percent-encodes what a request line cannot carry (controls, space, DEL, non-ASCII) in a target
 * expanded from variables ($uri is decoded), leaving its escapes and query as they are.
 */
export function escapeUnsendable(target: string): string {
  return escapeBytes(target, UNSENDABLE_IN_TARGET);
}

function escapeBytes(path: string, escaped: Uint8Array): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c < 256 && escaped[c] === 0) continue;
    out += path.slice(start, i);
    if (c < 256) {
      out += `%${HEX[c >> 4]}${HEX[c & 15]}`;
    } else {
      for (const b of Buffer.from(path[i]!, 'utf8')) out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
    }
    start = i + 1;
  }
  return start === 0 ? path : out + path.slice(start);
}

/**
 * The upstream request-target after the rewrite (for a redirect rewrite: the Location), or null
 * when the pattern does not match $uri (the request then goes upstream unchanged). `args` is the
 * query without `?`; nginx appends it in both cases.
 */
export function applyRewrite(rewrite: CompiledRewrite, uri: string, args: string | null): string | null {
  const m = rewrite.pattern.exec(uri);
  if (m === null) return null;
  let path = '';
  for (const part of rewrite.parts) path += typeof part === 'string' ? part : (m[part] ?? '');
  // nginx would send a target without a leading `/` as it is; no backend can use that.
  if (!rewrite.redirect && path.charCodeAt(0) !== 0x2f) path = `/${path}`;
  path = escapePath(path);
  return args === null || args === '' ? path : `${path}?${args}`;
}
