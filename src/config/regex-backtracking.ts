// Which Ingress regexes can make JavaScript's regex engine backtrack for minutes on one request: a
// group repeated more than once whose body itself repeats without bound (`(a+)+`, `(.*)*`, `(\w+\s?)*`),
// the classic catastrophic shape (star height 2). nginx's PCRE gives up at its match limit; V8's engine
// has no limit, so the gateway's event loop would stall for every client. A scan of the source, not a
// proof: overlapping alternatives under one repeat (`(a|a)*`) and runs like `.*.*.*x` are not found.
// Those are bounded at run time instead, by V8's linear-time fallback (src/regex-engine.ts), which
// takes the gateway's regexes because they are compiled without the `i` flag (caseless-regex.ts). It
// does not take backreferences, lookarounds or counted repeats needing more than 16 copies of their
// body: in such a regex this scan is the only guard, so it also refuses any group repeated without
// bound (`(a|a)*\1`), a second unbounded run of `.`, and a counted group with a choice inside (`(a|aa){40}`).
// Kept first for all, since it explains its refusal and the fallback is V8's, experimental. Pure.

/** The quantifier at `i`: its text and how many times it repeats at most, or null when none is there. */
function quantifierAt(source: string, i: number): { text: string; max: number } | null {
  const c = source[i];
  let text: string;
  let max: number;
  if (c === '*' || c === '+') [text, max] = [c, Number.POSITIVE_INFINITY];
  else if (c === '?') [text, max] = [c, 1];
  else if (c === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(i));
    if (m === null) return null;
    text = m[0];
    max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3]);
  } else return null;
  if (source[i + text.length] === '?') text += '?'; // lazy: the same repeats, another order
  return { text, max };
}

/** The index just past the character class that opens at `i` (`[` … `]`, escapes honoured). */
function classEnd(source: string, i: number): number {
  let j = i + 1;
  if (source[j] === '^') j++;
  if (source[j] === ']') j++;
  while (j < source.length && source[j] !== ']') j += source[j] === '\\' ? 2 : 1;
  return j + 1;
}

/** One atom of a regex source (a group, a class, an escape or a character) and its quantifier. */
interface Atom<G> {
  /** The atom's first character (`)` for a group, whose state is then `group`). */
  char: string;
  start: number;
  /** Just past the quantifier (or the atom, without one). */
  end: number;
  group: G | null;
  quantifier: { text: string; max: number } | null;
  /** The state of the innermost group around the atom (the top level's outside any). */
  parent: G;
}

/**
 * Walks `source` atom by atom, the one tokenizer of the scans below: `open` makes the state of each
 * group (and of the top level), `visit` sees each atom once its quantifier is read and may stop the
 * walk with a finding.
 */
function walkAtoms<G>(source: string, open: () => G, visit: (atom: Atom<G>) => string | null): string | null {
  const stack: { state: G; start: number }[] = [{ state: open(), start: 0 }];
  let i = 0;
  while (i < source.length) {
    const char = source[i]!;
    if (char === '(') {
      stack.push({ state: open(), start: i });
      i++;
      continue;
    }
    let start = i;
    let group: G | null = null;
    if (char === '\\') i += 2;
    else if (char === '[') i = classEnd(source, i);
    else if (char === ')' && stack.length > 1) {
      const closed = stack.pop()!;
      [group, start] = [closed.state, closed.start];
      i++;
    } else i++;
    const quantifier = quantifierAt(source, i);
    const end = i + (quantifier?.text.length ?? 0);
    const found = visit({ char, start, end, group, quantifier, parent: stack[stack.length - 1]!.state });
    if (found !== null) return found;
    i = end;
  }
  return null;
}

/** The first nested unbounded repeat in `source` (the group with its quantifier), or null. */
export function nestedQuantifier(source: string): string | null {
  // A group's state: something inside repeats without bound.
  return walkAtoms(
    source,
    () => ({ unbounded: false }),
    (a) => {
      const unbounded = a.group?.unbounded === true;
      if (a.quantifier !== null && a.quantifier.max > 1 && unbounded) return source.slice(a.start, a.end);
      if (unbounded || a.quantifier?.max === Number.POSITIVE_INFINITY) a.parent.unbounded = true;
      return null;
    },
  );
}

/** A backreference or a lookaround: V8's linear-time fallback does not take such a regex. */
const OUTSIDE_LINEAR_ENGINE = /\\[1-9]|\\k<|\(\?<?[=!]/;

/**
 * For a regex the linear-time fallback cannot take, what could still backtrack without bound: a
 * group repeated without bound (`(a|a)*\1`, `((?=a)a|a)*`), or two unbounded runs of any character
 * (`(?=x).*.*y`); null otherwise. A single run after a lookahead (`^/(?!api).*`) stays linear.
 */
function unboundedWithoutFallback(source: string): string | null {
  let dotRuns = 0;
  return walkAtoms(
    source,
    () => null,
    (a) => {
      if (a.quantifier?.max !== Number.POSITIVE_INFINITY) return null;
      if (a.char === ')' || (a.char === '.' && ++dotRuns > 1)) return source.slice(a.start, a.end);
      return null;
    },
  );
}

/** V8's linear-time engine copies a counted repeat's body; past this many copies it refuses the regex. */
const LINEAR_ENGINE_MAX_COPIES = 16;

interface CountedGroup {
  /** The most copies anything inside needs (nested counts multiply). */
  copies: number;
  /** A choice or a repeat inside: counted copies of it can match one input in many ways. */
  choices: boolean;
}

/**
 * What a regex's counted repeats do to V8's linear-time fallback: `beyond`, the first repeat whose
 * copies (nested counts multiplied; `{n,}` counts n) pass 16, so that the whole regex is left to the
 * backtracking engine (`[0-9]{17}` beside `.*.*.*x` took 5 s on 3 KB, `a{17}(a|a)*x` a minute on 47
 * bytes); `ambiguous`, the first group with a choice or a repeat inside that a count repeats
 * (`(a|aa){40}`: 2^40 ways to fail), harmless only while the fallback can take the regex.
 */
function countedRepeats(source: string): { beyond: string | null; ambiguous: string | null } {
  let beyond: string | null = null;
  let ambiguous: string | null = null;
  walkAtoms<CountedGroup>(
    source,
    () => ({ copies: 1, choices: false }),
    (a) => {
      const atom = a.group ?? { copies: 1, choices: false };
      if (a.char === '|') a.parent.choices = true;
      const q = a.quantifier;
      if (q !== null) {
        a.parent.choices = true;
        if (q.text.startsWith('{')) {
          const count = Number.isFinite(q.max) ? q.max : Number(/^\{(\d+)/.exec(q.text)![1]);
          atom.copies *= count;
          if (atom.copies > LINEAR_ENGINE_MAX_COPIES) beyond ??= source.slice(a.start, a.end);
          if (a.group !== null && atom.choices && q.max > 1) ambiguous ??= source.slice(a.start, a.end);
        }
      }
      if (a.group !== null && atom.choices) a.parent.choices = true;
      a.parent.copies = Math.max(a.parent.copies, atom.copies);
      return null;
    },
  );
  return { beyond, ambiguous };
}

/** Why the linear-time fallback cannot take `source`, or null when it can. */
function outsideLinearEngine(source: string): string | null {
  if (OUTSIDE_LINEAR_ENGINE.test(source)) return 'a backreference or a lookaround';
  const { beyond } = countedRepeats(source);
  return beyond === null
    ? null
    : `a counted repeat of more than ${LINEAR_ENGINE_MAX_COPIES} (${JSON.stringify(beyond)})`;
}

/**
 * Why `source` must not be matched against what clients send, or null: the text every refusal of a
 * nested unbounded repeat carries (the gateway's compile, the translation, the admission webhook).
 */
export function backtrackingRisk(source: string): string | null {
  const nested = nestedQuantifier(source);
  if (nested !== null)
    return `repeats ${JSON.stringify(nested)}, a group that itself repeats without bound: one request can keep the gateway's regex engine busy for minutes (it has no match limit, unlike nginx's PCRE)`;
  const outside = outsideLinearEngine(source);
  if (outside === null) return null;
  const run = unboundedWithoutFallback(source) ?? countedRepeats(source).ambiguous;
  if (run === null) return null;
  return `repeats ${JSON.stringify(run)} in a regex with ${outside}, which the gateway's linear-time regex engine cannot take: one request could keep the backtracking engine busy for minutes (it has no match limit, unlike nginx's PCRE)`;
}
