// The Basic credentials of an Authorization header, as nginx reads them: one reading for the basic-auth
// check (basic-auth.ts), $remote_user in the log and in proxy-set-headers, and the auth cache's key.
// Pure.

export interface Credentials {
  user: string;
  password: Buffer;
}

/**
 * The Basic credentials of an Authorization header; null when absent or malformed. Read as nginx's
 * ngx_http_auth_basic_user (so $remote_user, the auth cache's key and the htpasswd check agree with
 * it): `Basic` in any case and spaces, then base64 up to the first `=` (what follows is ignored), of
 * the standard alphabet and not 4n+1 characters long, then a user before the first colon, not empty.
 */
export function parseBasicCredentials(header: string | string[] | undefined): Credentials | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.slice(0, 6).toLowerCase() !== 'basic ') return null;
  let start = 6;
  while (value[start] === ' ') start++;
  const padding = value.indexOf('=', start);
  const encoded = value.slice(start, padding < 0 ? endWithoutBlanks(value) : padding);
  if (!/^[A-Za-z0-9+/]*$/.test(encoded) || encoded.length % 4 === 1) return null;
  const decoded = Buffer.from(encoded, 'base64');
  const colon = decoded.indexOf(0x3a);
  if (colon <= 0) return null;
  return { user: decoded.subarray(0, colon).toString('latin1'), password: decoded.subarray(colon + 1) };
}

/**
 * Where `value` ends without its trailing spaces and tabs. A loop, not `/[ \t]+$/`: that regex is
 * quadratic in a run of blanks that is not at the end (a client's header, each request).
 */
function endWithoutBlanks(value: string): number {
  let end = value.length;
  while (end > 0 && (value[end - 1] === ' ' || value[end - 1] === '\t')) end--;
  return end;
}
