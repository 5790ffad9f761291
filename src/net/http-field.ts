// What an HTTP field value may hold (RFC 9110 §5.5 field-value): HTAB, visible ASCII and obs-text.
// One definition for every place keepip writes a value into a head or accepts one to write later
// (ConfigMap header maps, the gateway's heads both ways). Heads are latin1 text, one character per
// byte: a character beyond U+00FF would go out as its low byte (U+010A as a line feed). Pure.

/** A character no field value may carry: a control (CR, LF, NUL…) or anything beyond U+00FF. */
export const NOT_FIELD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** NOT_FIELD_VALUE for replacing every such character. */
export const NOT_FIELD_VALUE_CHARS = new RegExp(NOT_FIELD_VALUE.source, 'g');
