// The request-target split into what routing needs, the way nginx derives $uri and $args:
// percent-decoded, `//` merged, `.` and `..` segments resolved. Locations (and so access rules)
// are matched on this normal form, so `/%61dmin`, `//admin` and `/x/../admin` all reach the
// `/admin` location and its allowlist, as in nginx. The backend still gets the raw target unless
// a rewrite applies.

export interface RequestTarget {
  /** Origin-form path and query as received: what the backend gets without a rewrite. */
  raw: string;
  /** The authority of an absolute-form target (`GET http://host/ HTTP/1.1`), else null. */
  authority: string | null;
  /** nginx's $uri: decoded, normalised path (a byte string: one char per byte). */
  uri: string;
  /** nginx's $args: the query without `?`; null when there is no `?`. */
  args: string | null;
}

/** True when the path may need decoding or dot/slash normalisation. */
function needsNormalising(path: string, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25) return true; // %
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
 * nginx's path normalisation. `..` above the root stays at the root (nginx answers 400 there;
 * the backend would resolve it the same way, so matching on the clamped path is the safe reading).
 */
export function normalizePath(path: string): string {
  if (!needsNormalising(path, path.length)) return path;
  const decoded = percentDecode(path);
  const segments = decoded.split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '' || s === '.') continue;
    if (s === '..') {
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

/** Splits and normalises a request-target (origin-form, absolute-form, or `*`). */
export function parseRequestTarget(target: string): RequestTarget {
  let raw = target;
  let authority: string | null = null;
  if (target.charCodeAt(0) !== 0x2f) {
    const scheme = target.indexOf('://');
    if (scheme > 0 && /^[A-Za-z][A-Za-z0-9+.-]*$/.test(target.slice(0, scheme))) {
      const from = scheme + 3;
      let end = from;
      while (end < target.length) {
        const c = target.charCodeAt(end);
        if (c === 0x2f || c === 0x3f) break;
        end++;
      }
      authority = target.slice(from, end);
      raw =
        end === target.length || target.charCodeAt(end) === 0x3f
          ? `/${target.slice(end)}`
          : target.slice(end);
    } else {
      // `*` (OPTIONS) or garbage: nothing that a location can match.
      return { raw: target, authority: null, uri: target, args: null };
    }
  }
  const q = raw.indexOf('?');
  if (q < 0) return { raw, authority, uri: normalizePath(raw), args: null };
  const path = raw.slice(0, q);
  return { raw, authority, uri: normalizePath(path), args: raw.slice(q + 1) };
}
