// nginx's configuration tokenizer (ngx_conf_read_token), for text ingress-nginx pastes into its
// nginx.conf unquoted: a ConfigMap entry becomes words the way nginx reads them. Words are separated by
// spaces, tabs and line breaks; `"…"` and `'…'` make one word (a closing quote must be followed by a
// separator); `\"`, `\'` and `\\` are the character, `\t`, `\r` and `\n` the control, any other `\x` stays
// as written; `#` at the start of a word comments out the rest of the line; `;` ends the directive and
// `{` opens a block (after `$` it is a variable's brace). Pure.

export type DirectiveRead =
  | { kind: 'directive'; words: string[]; rest: string }
  | { kind: 'block'; words: string[] }
  | { kind: 'end-of-text'; words: string[] }
  | { kind: 'error'; error: string };

const isSeparator = (c: string) => c === ' ' || c === '\t' || c === '\r' || c === '\n';

/** One word's text as nginx copies it: the escapes above resolved. */
function resolveEscapes(raw: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    const next = raw[i + 1];
    if (c === '\\' && next !== undefined) {
      if (next === '"' || next === "'" || next === '\\') {
        out += next;
        i++;
        continue;
      }
      const control = next === 't' ? '\t' : next === 'r' ? '\r' : next === 'n' ? '\n' : null;
      if (control !== null) {
        out += control;
        i++;
        continue;
      }
    }
    out += c;
  }
  return out;
}

/** The words of the first directive in `text`, and what follows its `;`. */
export function readDirective(text: string): DirectiveRead {
  const words: string[] = [];
  let i = 0;
  for (;;) {
    while (i < text.length && isSeparator(text[i] as string)) i++;
    if (i >= text.length) return { kind: 'end-of-text', words };
    const c = text[i] as string;
    if (c === '#') {
      const eol = text.indexOf('\n', i);
      if (eol === -1) return { kind: 'end-of-text', words };
      i = eol + 1;
      continue;
    }
    if (c === ';' || c === '{') {
      if (words.length === 0) return { kind: 'error', error: `unexpected "${c}"` };
      return c === ';' ? { kind: 'directive', words, rest: text.slice(i + 1) } : { kind: 'block', words };
    }
    if (c === '}') return { kind: 'error', error: 'unexpected "}"' };
    const word = c === '"' || c === "'" ? quotedWord(text, i) : bareWord(text, i);
    if ('error' in word) return { kind: 'error', error: word.error };
    words.push(word.text);
    i = word.end;
  }
}

function quotedWord(text: string, start: number): { text: string; end: number } | { error: string } {
  const quote = text[start] as string;
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\\') {
      i++;
      continue;
    }
    if (c !== quote) continue;
    const after = text[i + 1];
    // After the closing quote: a separator, `;`, `{` (or `)`, which nginx takes as a separator).
    if (after !== undefined && !isSeparator(after) && after !== ';' && after !== '{' && after !== ')')
      return { error: `unexpected "${after}"` };
    return { text: resolveEscapes(text.slice(start + 1, i)), end: after === ')' ? i + 2 : i + 1 };
  }
  return { error: `unclosed ${quote === '"' ? 'double' : 'single'} quote` };
}

function bareWord(text: string, start: number): { text: string; end: number } {
  let i = start;
  let variable = false;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '\\') {
      i += 2;
      variable = false;
      continue;
    }
    if (c === '{' && variable) {
      i++;
      continue;
    }
    if (isSeparator(c) || c === ';' || c === '{') break;
    variable = c === '$';
    i++;
  }
  return { text: resolveEscapes(text.slice(start, Math.min(i, text.length))), end: Math.min(i, text.length) };
}

/**
 * The arguments nginx reads from `text` pasted unquoted after a directive's name and before its `;`
 * (ingress-nginx's `name {{ value }};`): blanks separate them, quotes join them. Null when the text
 * is more than arguments (a `;`, a `{`, a `#` or an unclosed quote in it).
 */
export function nginxArguments(text: string): string[] | null {
  // The `;` on the same line, as the template writes it: a `#` in the value comments it out.
  const read = readDirective(`name ${text};`);
  return read.kind === 'directive' && read.rest === '' ? read.words.slice(1) : null;
}

/** The one argument nginx reads from `text` (nginxArguments), or null when it reads none or several. */
export function nginxArgument(text: string): string | null {
  const words = nginxArguments(text);
  return words?.length === 1 ? words[0]! : null;
}
