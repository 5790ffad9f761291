// One header field's value as one string, as nginx reads a repeated field: the values joined by ", ".
// Node hands a field as a string, a list (repeated fields, Set-Cookie) or, on our own response heads,
// a number.

/** The value as one string; undefined when the field is absent. */
export function headerText(value: string | number | readonly string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  return typeof value === 'number' ? String(value) : value.join(', ');
}
