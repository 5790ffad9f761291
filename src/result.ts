// The one shape of what a fallible pure function returns (docs/development.md, "Results"): the value,
// or an error with a stable code (registered in its module's errors.ts) and a message for people.
// Plain objects, no classes: results cross module and JSON boundaries, and `ok` narrows the union.

/** An error as a value: `code` is UPPER_SNAKE and documented in docs/errors.md. */
export interface CodedError<C extends string = string> {
  readonly code: C;
  readonly message: string;
}

export type Result<T, E = CodedError> = { ok: true; value: T } | { ok: false; error: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}
