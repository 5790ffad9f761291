// Reading one cookie from the request's Cookie header, the two ways ingress-nginx 1.15 reads it, so a
// cookie keepip reads is the cookie ingress-nginx read, quirks included. Pure.
//
// nginxCookie is nginx's $cookie_<name> (ngx_http_variable_cookie -> ngx_http_parse_multi_header_lines
// in nginx 1.27.1, the nginx ingress-nginx builds): canary-by-cookie (balancer.lua reads
// ngx.var["cookie_" .. name]), the access log's $cookie_x, the auth-url variables. Each Cookie line in
// turn, each pair from its start: the name matches ASCII case-insensitively, spaces (not tabs) may stand
// before and after `=`, the value runs to the next `;` (trailing spaces kept); a pair that does not
// match is passed over up to the next `;` or `,`. First match wins. A pair that is the name without `=`
// hides the pair after it (nginx steps over the character after the name before it skips).
// nginx 1.29.6 ("Improved $cookie_ evaluation") no longer skips at `,`; ingress-nginx does not ship it.
//
// restyCookie is lua-resty-cookie's get on $http_cookie (Cookie lines joined with "; "): the sticky
// balancers' cookie (session affinity). The key is all up to `=`, compared exactly; the value ends at
// `;`, space or tab; spaces and tabs before a key are passed over; the last pair of a name wins.

/** A Cookie header as the gateway holds it: one line, several, or none. */
export type CookieHeader = string | readonly string[] | undefined;

const SPACE = 0x20;
const TAB = 0x09;
const EQUALS = 0x3d;
const SEMICOLON = 0x3b;
const COMMA = 0x2c;

/** What requestCookies reads of a request. */
export interface CookieRequest {
  readonly httpVersion: string;
  readonly rawHeaders: readonly string[];
  readonly headers: { readonly cookie?: string | readonly string[] | undefined };
}

/**
 * A request's Cookie lines as nginx holds them for $cookie_<name>: HTTP/1.x's one by one (the parser
 * joins repeated lines with `; ` for everything else), HTTP/2's crumbs joined into one, as nginx joins them.
 */
export function requestCookies(req: CookieRequest): CookieHeader {
  const joined = req.headers.cookie;
  if (req.httpVersion === '2.0' || typeof joined !== 'string' || !joined.includes('; ')) return joined;
  const lines: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 6 && name.toLowerCase() === 'cookie') lines.push(raw[i + 1]!);
  }
  return lines.length > 1 ? lines : joined;
}

/** nginx's $cookie_<name>: the value, '' when empty, undefined when nginx finds none. */
export function nginxCookie(header: CookieHeader, name: string): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header === 'string') return nginxCookieInLine(header, name);
  // nginx scans the lines one by one rather than joined, so no match spans two lines.
  for (const line of header) {
    const value = nginxCookieInLine(line, name);
    if (value !== undefined) return value;
  }
  return undefined;
}

function nginxCookieInLine(line: string, name: string): string | undefined {
  const end = line.length;
  let at = 0;
  while (at < end) {
    if (startsWithAsciiFolded(line, at, name)) {
      at = skipSpaces(line, at + name.length);
      if (at < end && line.charCodeAt(at) === EQUALS) {
        const start = skipSpaces(line, at + 1);
        const semicolon = line.indexOf(';', start);
        return line.slice(start, semicolon < 0 ? end : semicolon);
      }
      // nginx's `*start++ != '='` has consumed this character even when it is the separator.
      at++;
    }
    while (at < end) {
      const c = line.charCodeAt(at++);
      if (c === SEMICOLON || c === COMMA) break;
    }
    at = skipSpaces(line, at);
  }
  return undefined;
}

/** ngx_strncasecmp: only A-Z fold; past the line's end nothing matches. */
function startsWithAsciiFolded(line: string, at: number, name: string): boolean {
  if (at + name.length > line.length) return false;
  for (let i = 0; i < name.length; i++) {
    if (asciiLower(line.charCodeAt(at + i)) !== asciiLower(name.charCodeAt(i))) return false;
  }
  return true;
}

function asciiLower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

function skipSpaces(line: string, at: number): number {
  while (at < line.length && line.charCodeAt(at) === SPACE) at++;
  return at;
}

/** lua-resty-cookie's get(name) on $http_cookie: the value, '' when empty, undefined when none. */
export function restyCookie(header: CookieHeader, name: string): string | undefined {
  if (header === undefined) return undefined;
  const text = typeof header === 'string' ? header : header.join('; ');
  let found: string | undefined;
  let at = 0;
  while (at < text.length) {
    const c = text.charCodeAt(at);
    if (c === SPACE || c === TAB) {
      at++;
      continue;
    }
    const equals = text.indexOf('=', at);
    // A key without `=` before the end is dropped, as the state machine drops it.
    if (equals < 0) break;
    const start = equals + 1;
    let stop = start;
    while (stop < text.length && !endsRestyValue(text.charCodeAt(stop))) stop++;
    if (text.slice(at, equals) === name) found = text.slice(start, stop);
    at = stop + 1;
  }
  return found;
}

function endsRestyValue(c: number): boolean {
  return c === SEMICOLON || c === SPACE || c === TAB;
}
