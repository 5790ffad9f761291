// The request-target split into what routing needs, the way nginx derives $uri and $args:
// percent-decoded, `//` merged, `.` and `..` segments resolved. Locations (and so access rules)
// are matched on this normal form, so `/%61dmin`, `//admin` and `/x/../admin` all reach the
// `/admin` location and its allowlist, as in nginx. The backend still gets the raw target unless
// a rewrite applies.
//
// What the gateway refuses with 400 (docs/gateway.md, "What the gateway accepts in a target"): a
// fragment (`#`, never part of a request target: a backend would cut the path there and read a
// path the router never saw), a NUL (raw or `%00`, as nginx), `..` above the root (as nginx), a `%`
// in the path not followed by two hex digits (as nginx: `%%32%65` is `..` to a backend that decodes
// twice, and the router would have read it otherwise), an absolute-form target whose scheme is not
// http/https or whose authority is not a valid host, and anything that is neither origin-form,
// absolute-form nor `*`.

export type RequestTargetErrorCode =
  | 'TARGET_FRAGMENT'
  | 'TARGET_NUL'
  | 'TARGET_ABOVE_ROOT'
  | 'TARGET_BAD_ESCAPE'
  | 'TARGET_BAD_FORM'
  | 'TARGET_BAD_AUTHORITY';

export interface RequestTargetError {
  code: RequestTargetErrorCode;
  message: string;
}

export interface RequestTarget {
  /** Origin-form path and query as received: what the backend gets without a rewrite. */
  raw: string;
  /** The authority of an absolute-form target (`GET http://host/ HTTP/1.1`), else null. */
  authority: string | null;
  /** nginx's $uri: decoded, normalised path (a byte string: one char per byte). */
  uri: string;
  /** nginx's $args: the query without `?`; null when there is no `?`. */
  args: string | null;
  /** Why the target is refused (400), or null. */
  error: RequestTargetError | null;
}

/** True when the path may need decoding or dot/slash normalisation. */
function needsNormalising(path: string, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 || c === 0) return true; // % or NUL
    if (c === 0x2f) {
      const next = path.charCodeAt(i + 1);
      if (i + 1 < end && (next === 0x2f || next === 0x2e)) return true; // `//` or `/.`
    }
  }
  return false;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Whether a `%` of the path is not followed by two hex digits (nginx's parse_complex_uri: 400). */
function hasMalformedEscape(path: string): boolean {
  for (let i = path.indexOf('%'); i >= 0; i = path.indexOf('%', i + 1)) {
    if (hexValue(path.charCodeAt(i + 1)) < 0 || hexValue(path.charCodeAt(i + 2)) < 0) return true;
  }
  return false;
}

/** Decodes %XX once (a decoded `%` is not decoded again); a malformed escape stays as text. */
export function percentDecode(s: string): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) !== 0x25) continue;
    const hi = hexValue(s.charCodeAt(i + 1));
    const lo = hexValue(s.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) continue;
    out += s.slice(start, i) + String.fromCharCode((hi << 4) | lo);
    i += 2;
    start = i + 1;
  }
  return start === 0 ? s : out + s.slice(start);
}

/**
 * nginx's path normalisation: decoded once, `//` merged, `.` and `..` resolved. Returns null where
 * nginx answers 400: a NUL once decoded, or `..` climbing above the root.
 */
export function normalizePath(path: string): string | null {
  if (!needsNormalising(path, path.length)) return path;
  const decoded = percentDecode(path);
  if (decoded.includes('\0')) return null;
  const segments = decoded.split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '' || s === '.') continue;
    if (s === '..') {
      if (out.length === 0) return null;
      out.pop();
      continue;
    }
    out.push(s);
  }
  const last = segments[segments.length - 1];
  const trailingSlash = segments.length > 1 && (last === '' || last === '.' || last === '..');
  if (out.length === 0) return '/';
  return trailingSlash ? `/${out.join('/')}/` : `/${out.join('/')}`;
}

function refused(
  raw: string,
  authority: string | null,
  code: RequestTargetErrorCode,
  message: string,
): RequestTarget {
  return { raw, authority, uri: '', args: null, error: { code, message } };
}

/** `scheme://authority` of an absolute-form target: [authority, rest in origin form], or an error. */
function splitAbsoluteForm(target: string): [string, string] | RequestTargetErrorCode {
  const scheme = target.indexOf('://');
  if (scheme <= 0) return 'TARGET_BAD_FORM';
  const name = target.slice(0, scheme).toLowerCase();
  if (name !== 'http' && name !== 'https') return 'TARGET_BAD_FORM';
  const from = scheme + 3;
  let end = from;
  while (end < target.length) {
    const c = target.charCodeAt(end);
    if (c === 0x2f || c === 0x3f) break;
    end++;
  }
  const authority = target.slice(from, end);
  // userinfo (`user@host`) has no place in a request target (RFC 9110 §4.2.4).
  if (authority === '' || authority.includes('@')) return 'TARGET_BAD_AUTHORITY';
  const rest =
    end === target.length || target.charCodeAt(end) === 0x3f ? `/${target.slice(end)}` : target.slice(end);
  return [authority, rest];
}

const MESSAGES: Readonly<Record<RequestTargetErrorCode, string>> = {
  TARGET_FRAGMENT: 'a request target carries no fragment (#)',
  TARGET_NUL: 'the path holds a NUL once decoded',
  TARGET_ABOVE_ROOT: 'the path climbs above the root with ..',
  TARGET_BAD_ESCAPE: 'a % in the path is not followed by two hex digits',
  TARGET_BAD_FORM: 'the target is neither origin-form, absolute-form (http/https) nor *',
  TARGET_BAD_AUTHORITY: 'the absolute-form target has no valid authority',
};

/** Splits and normalises a request-target (origin-form, absolute-form, or `*`). */
export function parseRequestTarget(target: string): RequestTarget {
  if (target.includes('#')) return refused(target, null, 'TARGET_FRAGMENT', MESSAGES.TARGET_FRAGMENT);
  if (target === '*') return { raw: target, authority: null, uri: target, args: null, error: null };
  let raw = target;
  let authority: string | null = null;
  if (target.charCodeAt(0) !== 0x2f) {
    const split = splitAbsoluteForm(target);
    if (typeof split === 'string') return refused(target, null, split, MESSAGES[split]);
    [authority, raw] = split;
  }
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  if (hasMalformedEscape(path))
    return refused(raw, authority, 'TARGET_BAD_ESCAPE', MESSAGES.TARGET_BAD_ESCAPE);
  const uri = normalizePath(path);
  if (uri === null) {
    const code = percentDecode(path).includes('\0') ? 'TARGET_NUL' : 'TARGET_ABOVE_ROOT';
    return refused(raw, authority, code, MESSAGES[code]);
  }
  return { raw, authority, uri, args: q < 0 ? null : raw.slice(q + 1), error: null };
}
