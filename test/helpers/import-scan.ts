// Lists the module specifiers a TypeScript file imports, for test/architecture.test.ts. TypeScript 7's
// own scanner does the tokenising (strings, comments, templates, regex literals), so text that only looks
// like an import never counts; a small state machine over the tokens recognises the import forms.
import { SyntaxKind } from 'typescript/unstable/ast';
import { createScanner } from 'typescript/unstable/ast/scanner';

export interface ImportRef {
  specifier: string;
  /** `import type …` / `export type … from`: erased at run time, still a dependency of the module. */
  typeOnly: boolean;
  /** `import('…')`, in an expression or a type position. */
  dynamic: boolean;
}

interface Token {
  kind: SyntaxKind;
  value: string;
}

/** After these a `/` divides; anywhere else it starts a regular expression literal. */
const ENDS_EXPRESSION = new Set<SyntaxKind>([
  SyntaxKind.Identifier,
  SyntaxKind.PrivateIdentifier,
  SyntaxKind.NumericLiteral,
  SyntaxKind.BigIntLiteral,
  SyntaxKind.StringLiteral,
  SyntaxKind.NoSubstitutionTemplateLiteral,
  SyntaxKind.TemplateTail,
  SyntaxKind.RegularExpressionLiteral,
  SyntaxKind.CloseParenToken,
  SyntaxKind.CloseBracketToken,
  SyntaxKind.CloseBraceToken,
  SyntaxKind.ThisKeyword,
  SyntaxKind.SuperKeyword,
  SyntaxKind.TrueKeyword,
  SyntaxKind.FalseKeyword,
  SyntaxKind.NullKeyword,
  SyntaxKind.PlusPlusToken,
  SyntaxKind.MinusMinusToken,
]);

/** The file's tokens without trivia; template and regex literals come out whole. */
export function tokenize(text: string): Token[] {
  const scanner = createScanner(true, undefined, text);
  const tokens: Token[] = [];
  // One entry per open `{` or `${`: a `}` closing a `${` continues the template it belongs to.
  const braces: boolean[] = [];
  for (let kind = scanner.scan(); kind !== SyntaxKind.EndOfFile; kind = scanner.scan()) {
    const previous = tokens.at(-1)?.kind;
    if (kind === SyntaxKind.SlashToken || kind === SyntaxKind.SlashEqualsToken) {
      if (previous === undefined || !ENDS_EXPRESSION.has(previous)) kind = scanner.reScanSlashToken();
    } else if (kind === SyntaxKind.OpenBraceToken) {
      braces.push(false);
    } else if (kind === SyntaxKind.CloseBraceToken && braces.pop() === true) {
      kind = scanner.reScanTemplateToken(false);
    }
    if (kind === SyntaxKind.TemplateHead || kind === SyntaxKind.TemplateMiddle) braces.push(true);
    tokens.push({ kind, value: scanner.getTokenValue() });
  }
  return tokens;
}

/** Every import of a file: static, side-effect, type-only, re-exports and `import('…')`. */
export function scanImports(text: string): ImportRef[] {
  const tokens = tokenize(text);
  const found: ImportRef[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const kind = tokens[i]!.kind;
    if (kind === SyntaxKind.ImportKeyword && tokens[i - 1]?.kind !== SyntaxKind.DotToken) {
      const ref = readImport(tokens, i);
      if (ref !== null) found.push(ref);
    } else if (kind === SyntaxKind.ExportKeyword) {
      const ref = readReExport(tokens, i);
      if (ref !== null) found.push(ref);
    }
  }
  return found;
}

function stringAt(tokens: Token[], i: number): string | null {
  const token = tokens[i];
  return token?.kind === SyntaxKind.StringLiteral ? token.value : null;
}

/** `import 'x'`, `import … from 'x'`, `import type … from 'x'`, `import('x')`; null for `import.meta`. */
function readImport(tokens: Token[], at: number): ImportRef | null {
  const next = tokens[at + 1];
  if (next === undefined || next.kind === SyntaxKind.DotToken) return null;
  if (next.kind === SyntaxKind.OpenParenToken) {
    const argument = stringAt(tokens, at + 2);
    return argument === null ? null : { specifier: argument, typeOnly: false, dynamic: true };
  }
  const bare = stringAt(tokens, at + 1);
  if (bare !== null) return { specifier: bare, typeOnly: false, dynamic: false };
  const typeOnly = next.kind === SyntaxKind.TypeKeyword && tokens[at + 2]?.kind !== SyntaxKind.FromKeyword;
  // The import clause holds names, braces, commas, `*`, `as` and `type`; it ends at `from 'x'`.
  for (let i = at + 1; i < tokens.length; i++) {
    const kind = tokens[i]!.kind;
    const specifier = kind === SyntaxKind.FromKeyword ? stringAt(tokens, i + 1) : null;
    if (specifier !== null) return { specifier, typeOnly, dynamic: false };
    if (kind === SyntaxKind.SemicolonToken || kind === SyntaxKind.EqualsToken) return null;
  }
  return null;
}

/** `export * from 'x'`, `export * as n from 'x'`, `export { a } from 'x'`, `export type { A } from 'x'`. */
function readReExport(tokens: Token[], at: number): ImportRef | null {
  let i = at + 1;
  const typeOnly = tokens[i]?.kind === SyntaxKind.TypeKeyword;
  if (typeOnly) i++;
  const opening = tokens[i]?.kind;
  if (opening === SyntaxKind.AsteriskToken) {
    i++;
    if (tokens[i]?.kind === SyntaxKind.AsKeyword) i += 2;
  } else if (opening === SyntaxKind.OpenBraceToken) {
    while (i < tokens.length && tokens[i]!.kind !== SyntaxKind.CloseBraceToken) i++;
    i++;
  } else {
    return null; // a declaration (`export const …`, `export function …`), not a re-export
  }
  const specifier = tokens[i]?.kind === SyntaxKind.FromKeyword ? stringAt(tokens, i + 1) : null;
  return specifier === null ? null : { specifier, typeOnly, dynamic: false };
}
