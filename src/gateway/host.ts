// Host header handling as nginx does it (ngx_http_validate_host): lower case, port stripped,
// one trailing dot dropped; a host with `/`, NUL, a leading dot or `..` is invalid (nginx: 400).

/** Characters that can appear unchanged in an already-normal host: a-z 0-9 - . _ */
function isPlainHostChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f;
}

/**
 * The host name used to pick a virtual host: lower case, without port or trailing dot.
 * Returns '' for an absent host and null for an invalid one.
 */
export function normalizeHost(raw: string): string | null {
  const n = raw.length;
  if (n === 0) return '';
  // Fast path: already lower case, no port, no trailing dot, no odd characters.
  let plain = raw.charCodeAt(0) !== 0x2e && raw.charCodeAt(n - 1) !== 0x2e;
  for (let i = 0; plain && i < n; i++) {
    const c = raw.charCodeAt(i);
    if (!isPlainHostChar(c) || (c === 0x2e && raw.charCodeAt(i + 1) === 0x2e)) plain = false;
  }
  if (plain) return raw;
  return normalizeHostSlow(raw);
}

function normalizeHostSlow(raw: string): string | null {
  let host = raw;
  if (host.charCodeAt(0) === 0x5b) {
    // IPv6 literal: `[::1]` or `[::1]:8080`.
    const close = host.indexOf(']');
    if (close < 0) return null;
    const rest = host.slice(close + 1);
    if (rest !== '' && (rest[0] !== ':' || !isPortText(rest.slice(1)))) return null;
    host = host.slice(0, close + 1);
    for (let i = 1; i < close; i++) {
      const c = host.charCodeAt(i);
      const hex = (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
      if (!hex && c !== 0x3a && c !== 0x2e) return null;
    }
    return host.toLowerCase();
  }
  const colon = host.indexOf(':');
  if (colon >= 0) {
    if (!isPortText(host.slice(colon + 1))) return null;
    host = host.slice(0, colon);
  }
  // `..` anywhere, a trailing one included (`a.example..`), before the one trailing dot is dropped.
  if (host.charCodeAt(0) === 0x2e || host.includes('..')) return null;
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === '') return null;
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    // nginx refuses `/` and NUL; whitespace, `\`, `@` and other delimiters have no place in a name.
    if (c <= 0x20 || c === 0x2f || c === 0x5c || c === 0x40 || c === 0x3a || c >= 0x7f) return null;
  }
  return host.toLowerCase();
}

/**
 * Whether nginx refuses a Host header (ngx_http_validate_host): a dot after a dot, `/`, a control
 * character or a space, or nothing left once one trailing dot is dropped. Only what nginx refuses: for
 * a header keepip neither routes nor forwards by (beside an absolute-form target), where normalizeHost's
 * stricter refusals (`@`, `\`, a port that is not digits) would turn away requests nginx serves.
 */
export function nginxRefusesHost(raw: string): boolean {
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x2f || (c === 0x2e && raw.charCodeAt(i - 1) === 0x2e)) return true;
  }
  return raw === '' || raw === '.';
}

/**
 * A port is digits (RFC 9110 §4.2.1: `port = *DIGIT`). nginx cuts the host at `:` without reading the
 * port, so `Host: app.example:@evil.example` is app.example there, and $http_host carries the rest into
 * a sign-in `rd=http://app.example:@evil.example/…` (a URL whose host is evil.example) and to the
 * backend: keepip refuses it (400).
 */
function isPortText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * The Host header without its port, case kept: what ingress-nginx puts in https redirects
 * (`$best_http_host` split at `:`), but aware of IPv6 brackets.
 */
export function hostWithoutPort(raw: string): string {
  if (raw.charCodeAt(0) === 0x5b) {
    const close = raw.indexOf(']');
    return close < 0 ? raw : raw.slice(0, close + 1);
  }
  const colon = raw.indexOf(':');
  return colon < 0 ? raw : raw.slice(0, colon);
}

/**
 * Whether `host` is matched by a wildcard virtual host `*.<suffix>`: ingress-nginx renders
 * `*.example.com` as `~^(?<subdomain>[\w-]+)\.example\.com$`, so exactly one leading label of
 * letters, digits, `_` or `-`. Returns the suffix to look up, or null.
 */
export function wildcardSuffix(host: string): string | null {
  const dot = host.indexOf('.');
  if (dot <= 0 || dot === host.length - 1) return null;
  for (let i = 0; i < dot; i++) {
    const c = host.charCodeAt(i);
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f)) return null;
  }
  return host.slice(dot + 1);
}
