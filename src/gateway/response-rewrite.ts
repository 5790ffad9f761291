// What nginx changes in the backend's response head for ingress-nginx's proxy-redirect-from/-to
// (proxy_redirect: a Location or Refresh URL starting with `from` starts with `to` instead) and
// proxy-cookie-domain / proxy-cookie-path (proxy_cookie_domain: a Set-Cookie Domain equal to `from`,
// case-insensitively, becomes `to`; proxy_cookie_path: a Path starting with `from` starts with `to`).
// Compiled once per snapshot; locations without them pay nothing.
import type { LocationModel } from '../config/model.ts';

export interface CompiledResponseRewrite {
  readonly redirect: { readonly from: string; readonly to: string } | null;
  readonly cookieDomain: { readonly from: string; readonly to: string } | null;
  readonly cookiePath: { readonly from: string; readonly to: string } | null;
}

export function compileResponseRewrite(location: LocationModel): CompiledResponseRewrite | null {
  const { proxyRedirect, proxyCookieDomain, proxyCookiePath } = location;
  if (proxyRedirect === undefined && proxyCookieDomain === undefined && proxyCookiePath === undefined)
    return null;
  return {
    redirect: proxyRedirect ?? null,
    // nginx's proxy_cookie_domain drops one leading dot of both (the cookie's own is kept).
    cookieDomain:
      proxyCookieDomain === undefined
        ? null
        : {
            from: withoutLeadingDot(proxyCookieDomain.from).toLowerCase(),
            to: withoutLeadingDot(proxyCookieDomain.to),
          },
    cookiePath: proxyCookiePath ?? null,
  };
}

function withoutLeadingDot(name: string): string {
  return name.startsWith('.') ? name.slice(1) : name;
}

/** The rewritten value, or null when `from` does not start it (nor its Refresh URL). */
function redirected(value: string, from: string, to: string): string | null {
  if (value.startsWith(from)) return to + value.slice(from.length);
  // Refresh: `5; url=<URL>`.
  // `=[ \t]*` then the rest whole: `\s*(.*)$` split blanks two ways (quadratic backtracking).
  const m = /^(\s*\d+\s*;\s*url\s*=[ \t]*)([\s\S]*)$/i.exec(value);
  if (m !== null && m[2]!.startsWith(from)) return m[1]! + to + m[2]!.slice(from.length);
  return null;
}

function cookie(value: string, rw: CompiledResponseRewrite): string {
  return value
    .split(';')
    .map((part, i) => {
      // The first pair is the cookie's own name=value, never an attribute (nginx starts at the second).
      if (i === 0) return part;
      const eq = part.indexOf('=');
      if (eq < 0) return part;
      const name = part.slice(0, eq).trim().toLowerCase();
      const attr = part.slice(eq + 1).trim();
      const lead = part.slice(0, part.indexOf(part.trim()));
      if (name === 'domain' && rw.cookieDomain !== null) {
        // nginx compares without a leading dot, and keeps it.
        const dot = attr.startsWith('.') ? '.' : '';
        if (attr.slice(dot.length).toLowerCase() === rw.cookieDomain.from)
          return `${lead}${part.slice(0, eq).trim()}=${dot}${rw.cookieDomain.to}`;
      }
      if (name === 'path' && rw.cookiePath !== null && attr.startsWith(rw.cookiePath.from))
        return `${lead}${part.slice(0, eq).trim()}=${rw.cookiePath.to}${attr.slice(rw.cookiePath.from.length)}`;
      return part;
    })
    .join(';');
}

/**
 * Rewrites Location, Refresh and Set-Cookie of a response head in place (lower-case names). A Location
 * that was rewritten goes through `absolute` (nginx's absolute_redirect takes the rewritten Location as
 * its own: one starting with `/` gets the scheme and host, so `//evil.test` never leaves as a
 * protocol-relative URL); one that was not is relayed as the backend wrote it.
 */
export function rewriteResponseHeaders(
  rw: CompiledResponseRewrite,
  headers: Record<string, string | number | string[]>,
  absolute: (location: string) => string,
): void {
  if (rw.redirect !== null) {
    for (const name of ['location', 'refresh']) {
      // Several of one: the first counts, as nginx (since 1.23) ignores a duplicate of these.
      const value = headers[name];
      const first = Array.isArray(value) ? value[0] : value;
      if (typeof first !== 'string') continue;
      const rewritten = redirected(first, rw.redirect.from, rw.redirect.to);
      headers[name] = rewritten === null ? first : name === 'location' ? absolute(rewritten) : rewritten;
    }
  }
  if (rw.cookieDomain === null && rw.cookiePath === null) return;
  const set = headers['set-cookie'];
  if (set === undefined) return;
  headers['set-cookie'] = Array.isArray(set) ? set.map((c) => cookie(c, rw)) : cookie(String(set), rw);
}
