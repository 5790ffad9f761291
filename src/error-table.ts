// The shape of a module's table of codes. Each module folder that reports codes keeps them in its own
// errors.ts, beside the code that emits them: `{ CODE: { kind, summary, fix } } as const satisfies
// CodeTable`, and exports the union of its codes from it. src/errors.ts merges the tables into the
// registry behind docs/errors.md. This file imports nothing, so every module (and src/config/model.ts,
// for ConfigIssue.code) can name these types without an import cycle.

/**
 * How a code reaches the user:
 * - `error`: an error value returned by a parser or check (`{ ok: false, error: { code, message } }`);
 * - `thrown`: an exception with a `code` property, for invalid input handed to a programmatic API;
 * - `issue`: a configuration issue (`ConfigIssue`, severity error/warning/info) from loading manifests;
 * - `finding`: a `keepip doctor` finding id;
 * - `outcome`: what happened to a request or probe, as printed in logs and probe results.
 */
export type ErrorKind = 'error' | 'thrown' | 'issue' | 'finding' | 'outcome';

export interface CodeInfo {
  readonly kind: ErrorKind;
  /** One line: what the code means. */
  readonly summary: string;
  /** One line: what the user does about it. */
  readonly fix: string;
}

/** A module's codes, keyed by code (UPPER_SNAKE, prefixed per module where the name allows). */
export type CodeTable = { readonly [code: string]: CodeInfo };

/** The codes of a table with the given kind, e.g. the issue codes a module may put in a ConfigIssue. */
export type CodesOfKind<T extends CodeTable, K extends ErrorKind> = {
  [C in keyof T & string]: T[C]['kind'] extends K ? C : never;
}[keyof T & string];
