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

interface Group {
  start: number;
  /** Something inside repeats without bound. */
  unbounded: boolean;
}

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

/** The first nested unbounded repeat in `source` (the group with its quantifier), or null. */
export function nestedQuantifier(source: string): string | null {
  const stack: Group[] = [{ start: 0, unbounded: false }];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    let atom: Group = { start: i, unbounded: false };
    if (c === '(') {
      stack.push({ start: i, unbounded: false });
      i++;
      continue;
    }
    if (c === '\\') i += 2;
    else if (c === '[') i = classEnd(source, i);
    else if (c === ')' && stack.length > 1) {
      atom = stack.pop()!;
      i++;
    } else i++;
    const q = quantifierAt(source, i);
    const end = i + (q?.text.length ?? 0);
    if (q !== null && q.max > 1 && atom.unbounded) return source.slice(atom.start, end);
    const parent = stack[stack.length - 1]!;
    if (atom.unbounded || (q !== null && q.max === Number.POSITIVE_INFINITY)) parent.unbounded = true;
    i = end;
  }
  return null;
}

/** A backreference or a lookaround: V8's linear-time fallback does not take such a regex. */
const OUTSIDE_LINEAR_ENGINE = /\\[1-9]|\\k<|\(\?<?[=!]/;

/**
 * For a regex the linear-time fallback cannot take, what could still backtrack without bound: a
 * group repeated without bound (`(a|a)*\1`, `((?=a)a|a)*`), or two unbounded runs of any character
 * (`(?=x).*.*y`); null otherwise. A single run after a lookahead (`^/(?!api).*`) stays linear.
 */
function unboundedWithoutFallback(source: string): string | null {
  const opens: number[] = [];
  let dotRuns = 0;
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    let atomStart = i;
    if (c === '(') {
      opens.push(i);
      i++;
      continue;
    }
    if (c === '\\') i += 2;
    else if (c === '[') i = classEnd(source, i);
    else if (c === ')') {
      atomStart = opens.pop() ?? 0;
      i++;
    } else i++;
    const q = quantifierAt(source, i);
    if (q !== null && q.max === Number.POSITIVE_INFINITY) {
      const atom = source.slice(atomStart, i + q.text.length);
      if (c === ')') return atom;
      if (c === '.' && ++dotRuns > 1) return atom;
    }
    i += q?.text.length ?? 0;
  }
  return null;
}

/** V8's linear-time engine copies a counted repeat's body; past this many copies it refuses the regex. */
const LINEAR_ENGINE_MAX_COPIES = 16;

interface CountedGroup {
  start: number;
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
  const stack: CountedGroup[] = [{ start: 0, copies: 1, choices: false }];
  let beyond: string | null = null;
  let ambiguous: string | null = null;
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === '(') {
      stack.push({ start: i, copies: 1, choices: false });
      i++;
      continue;
    }
    let atom: CountedGroup = { start: i, copies: 1, choices: false };
    if (c === '|') stack[stack.length - 1]!.choices = true;
    if (c === '\\') i += 2;
    else if (c === '[') i = classEnd(source, i);
    else if (c === ')' && stack.length > 1) {
      atom = stack.pop()!;
      i++;
    } else i++;
    const q = quantifierAt(source, i);
    const end = i + (q?.text.length ?? 0);
    const parent = stack[stack.length - 1]!;
    if (q !== null) {
      parent.choices = true;
      if (q.text.startsWith('{')) {
        const count = Number.isFinite(q.max) ? q.max : Number(/^\{(\d+)/.exec(q.text)![1]);
        const copies = atom.copies * count;
        if (copies > LINEAR_ENGINE_MAX_COPIES) beyond ??= source.slice(atom.start, end);
        if (c === ')' && atom.choices && q.max > 1) ambiguous ??= source.slice(atom.start, end);
        atom.copies = copies;
      }
    }
    if (atom.choices && c === ')') parent.choices = true;
    parent.copies = Math.max(parent.copies, atom.copies);
    i = end;
  }
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
