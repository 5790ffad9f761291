// One header field's value as one string, as nginx reads a repeated field: the values joined by ", ".
// Node hands a field as a string, a list (repeated fields, Set-Cookie) or, on our own response heads,
// a number. Also what a head carried under a name, for the log's $sent_http_ and $upstream_http_.

import { NOT_FIELD_VALUE, NOT_FIELD_VALUE_CHARS } from '../net/http-field.ts';

/** The value as one string; undefined when the field is absent. */
export function headerText(value: string | number | readonly string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  return typeof value === 'number' ? String(value) : value.join(', ');
}

/**
 * A value no head keepip writes carries (src/net/http-field.ts): the client side refuses such a
 * request, the server side skips the field, and the router checks a rewrite capture of the client's
 * path against it.
 */
export const UNSENDABLE_VALUE = NOT_FIELD_VALUE;

/** UNSENDABLE_VALUE for replacing every such character (a reason phrase's). */
export const UNSENDABLE_CHARS = NOT_FIELD_VALUE_CHARS;

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
      if (fields[i] === name && !UNSENDABLE_VALUE.test(value)) values.push(value);
    }
  if (object !== null)
    for (const key in object) {
      const value = object[key];
      if (value === undefined || key.toLowerCase() !== name) continue;
      for (const item of typeof value === 'object' ? value : [String(value)])
        if (!UNSENDABLE_VALUE.test(item)) values.push(item);
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
