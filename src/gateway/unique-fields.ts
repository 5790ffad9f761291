// Request fields nginx takes once only (ngx_http_process_unique_header_line): a second line is refused
// with 400 "client sent duplicate header line", over HTTP/1.1 and HTTP/2 alike. For Authorization it
// matters most: with two lines, the gateway's check, an auth-url service and the backend could each
// read a different one. Host, Content-Length and Transfer-Encoding are refused by the framing checks
// with their own codes.

export const ONCE_ONLY_FIELDS: ReadonlySet<string> = new Set([
  'authorization',
  'content-range',
  'expect',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
]);

/** The first once-only field (lower-case names, as HTTP/2 carries them) that appears twice, or null. */
export function repeatedOnceOnlyField(rawHeaders: readonly string[]): string | null {
  let seen: string[] | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (!ONCE_ONLY_FIELDS.has(name)) continue;
    if (seen === null) seen = [name];
    else if (seen.includes(name)) return name;
    else seen.push(name);
  }
  return null;
}
