// ingress-nginx's annotation value validators (internal/ingress/annotations/parser/validators.go), one
// copy for every reader that applies them. Pure.

/** alphaNumericChars: `-._~`, letters, digits, `/` and `:`. */
export const ALPHANUMERIC_CHARS = String.raw`\-._~a-zA-Z0-9/:`;

/** URLIsValidRegex: full URLs with their query strings (`,:?&=` too). */
export const URL_IS_VALID = new RegExp(`^[${ALPHANUMERIC_CHARS},:?&=]*$`);

/** BasicCharsRegex: names and simple host:port/path compositions. */
export const BASIC_CHARS = new RegExp(`^[/${ALPHANUMERIC_CHARS}]*$`);

/** IsValidRegex: paths and server names that may hold regex characters `^$[](){}*+?|&=\`. */
export const IS_VALID_REGEX = new RegExp(String.raw`^[/${ALPHANUMERIC_CHARS}\^$\[\]\(\)\{\}*+?|&=\\]*$`);
