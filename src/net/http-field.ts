// What an HTTP field value may hold (RFC 9110 §5.5 field-value): HTAB, visible ASCII and obs-text.
// One definition for every place keepip writes a value into a head or accepts one to write later
// (ConfigMap header maps, the gateway's heads both ways). Heads are latin1 text, one character per
// byte: a character beyond U+00FF would go out as its low byte (U+010A as a line feed). Pure.

/** A character no field value may carry: a control (CR, LF, NUL…) or anything beyond U+00FF. */
export const NOT_FIELD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** NOT_FIELD_VALUE for replacing every such character. */
export const NOT_FIELD_VALUE_CHARS = new RegExp(NOT_FIELD_VALUE.source, 'g');

/** Optional white space around and inside a field (RFC 9110 §5.6.3): SP or HTAB. */
export function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** A field value without the optional white space around it (the same string when there is none). */
export function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && isOws(value.charCodeAt(start))) start += 1;
  while (end > start && isOws(value.charCodeAt(end - 1))) end -= 1;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}
