// One header field's value as one string, as nginx reads a repeated field: the values joined by ", ".
// Node hands a field as a string, a list (repeated fields, Set-Cookie) or, on our own response heads,
// a number. Also what a head carried under a name, for the log's $sent_http_ and $upstream_http_.

/** The value as one string; undefined when the field is absent. */
export function headerText(value: string | number | readonly string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  return typeof value === 'number' ? String(value) : value.join(', ');
}

/** Bytes no head carries in a value (the engines skip such a field rather than write it). */
export const UNSAFE_VALUE = /[\r\n\0]/;

/**
 * A value keepip's HTTP/1.1 client refuses to write towards a backend (RFC 9110 field-value: HT,
 * visible ASCII, obs-text): the router checks a rewrite capture of the client's path against it too.
 */
export const UNSENDABLE_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * What a head carried under the lower-case `name` ($sent_http_<name>, $upstream_http_<name>): the
 * head as a header object (names in any case) or as flat lower-case fields, or both; several values
 * joined by ", "; null without the field.
 */
export function headValue(
  object: Readonly<Record<string, string | number | readonly string[] | undefined>> | null,
  fields: readonly string[] | null,
  name: string,
): string | null {
  const values: string[] = [];
  if (fields !== null)
    for (let i = 0; i < fields.length; i += 2) {
      const value = fields[i + 1] as string;
      if (fields[i] === name && !UNSAFE_VALUE.test(value)) values.push(value);
    }
  if (object !== null)
    for (const key in object) {
      const value = object[key];
      if (value === undefined || key.toLowerCase() !== name) continue;
      for (const item of typeof value === 'object' ? value : [String(value)])
        if (!UNSAFE_VALUE.test(item)) values.push(item);
    }
  return values.length === 0 ? null : values.join(', ');
}

/**
 * A Content-Length a head of this status must not carry: a backend's on a 204 or 1xx is dropped, as
 * nginx's header filter does; `0` on a 204 stays (the CORS preflight's, which HTTP/2 clients accept).
 */
export function lengthRefused(statusCode: number, value: string | number | readonly string[]): boolean {
  if (statusCode >= 200 && statusCode !== 204) return false;
  return statusCode < 200 || String(value) !== '0';
}
