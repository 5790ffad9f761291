// Which word of a list a text contains, for annotation-value-word-blocklist: the answer of
// `words.find((w) => text.includes(w))` (the first word in list order that occurs, by UTF-16 code
// units, as String.prototype.includes and Go's strings.Contains on the same text), in one pass over
// the text whatever the list's length. A list of 10,000 words against an Ingress of 8,000 annotation
// values was 80 million substring searches per translation; Aho-Corasick (Aho and Corasick,
// "Efficient string matching", 1975) makes it one automaton, built once per list, and one walk per value.

/** Finds the first word (in list order) that a text contains; undefined when none. */
export type WordFinder = (text: string) => string | undefined;

/** Below this many words the engine's own substring search is faster than building an automaton. */
const AUTOMATON_FROM = 16;

const built = new WeakMap<readonly string[], WordFinder>();

/** The finder for `words`, built once per list (the same array is asked about every annotation). */
export function wordFinder(words: readonly string[]): WordFinder {
  let finder = built.get(words);
  if (finder === undefined) {
    finder =
      words.length < AUTOMATON_FROM ? (text) => words.find((w) => text.includes(w)) : automatonFinder(words);
    built.set(words, finder);
  }
  return finder;
}

interface Automaton {
  /** Per state: code unit -> next state (the trie's edges only). */
  next: Map<number, number>[];
  /** Per state: the longest proper suffix that is also a state. */
  fail: number[];
  /** Per state: the smallest list index of a word ending here or at a suffix state (Infinity: none). */
  first: number[];
}

/** The trie of the non-empty words, with each state's smallest word index. */
function buildTrie(words: readonly string[]): Automaton {
  const auto: Automaton = { next: [new Map()], fail: [0], first: [Number.POSITIVE_INFINITY] };
  words.forEach((word, index) => {
    if (word === '') return;
    let state = 0;
    for (let i = 0; i < word.length; i += 1) {
      const unit = word.charCodeAt(i);
      let to = auto.next[state]!.get(unit);
      if (to === undefined) {
        to = auto.next.length;
        auto.next.push(new Map());
        auto.fail.push(0);
        auto.first.push(Number.POSITIVE_INFINITY);
        auto.next[state]!.set(unit, to);
      }
      state = to;
    }
    auto.first[state] = Math.min(auto.first[state]!, index);
  });
  return auto;
}

/** Follows failure links from `state` until one has an edge for `unit` (the root has them all). */
function step(auto: Automaton, state: number, unit: number): number {
  let at = state;
  for (;;) {
    const to = auto.next[at]!.get(unit);
    if (to !== undefined) return to;
    if (at === 0) return 0;
    at = auto.fail[at]!;
  }
}

/** Failure links in breadth-first order, each state's `first` taking its suffix state's. */
function link(auto: Automaton): void {
  const queue: number[] = [...auto.next[0]!.values()];
  for (let head = 0; head < queue.length; head += 1) {
    const state = queue[head]!;
    for (const [unit, child] of auto.next[state]!) {
      auto.fail[child] = step(auto, auto.fail[state]!, unit);
      auto.first[child] = Math.min(auto.first[child]!, auto.first[auto.fail[child]!]!);
      queue.push(child);
    }
  }
}

function automatonFinder(words: readonly string[]): WordFinder {
  const auto = buildTrie(words);
  link(auto);
  // An empty word is in every text (as strings.Contains says): it bounds the answer from the start.
  const empty = words.indexOf('');
  const start = empty === -1 ? Number.POSITIVE_INFINITY : empty;
  return (text) => {
    let best = start;
    let state = 0;
    for (let i = 0; i < text.length && best > 0; i += 1) {
      state = step(auto, state, text.charCodeAt(i));
      if (auto.first[state]! < best) best = auto.first[state]!;
    }
    return best === Number.POSITIVE_INFINITY ? undefined : words[best];
  };
}
