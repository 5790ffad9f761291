// annotation-value-word-blocklist's search: the automaton answers what `words.find((w) =>
// text.includes(w))` answers (the first listed word the text contains), on generated lists and texts
// over a small alphabet (so that words overlap, nest and share suffixes), with empty words, repeated
// words and UTF-16 surrogate halves; and a 10,000-word list against 8,000 values in one translation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { annotationPolicyRefusals } from '../../src/k8s/annotation-risk.ts';
import { wordFinder } from '../../src/k8s/word-search.ts';

const SEED = Number(process.env.KEEPIP_FC_SEED ?? 1206);
const RUNS = Number(process.env.KEEPIP_FC_RUNS ?? 300);

/** Code units that make overlaps likely, an astral character's halves among them. */
const unit = fc.constantFrom('a', 'b', 'c', 'ab', '\u00e9', '\ud83d', '\ude00', '😀');
const text = (max: number) => fc.array(unit, { maxLength: max }).map((parts) => parts.join(''));

describe('wordFinder', () => {
  test('answers as words.find(includes), lists long enough for the automaton and short ones', () => {
    fc.assert(
      fc.property(
        fc.array(text(5), { minLength: 0, maxLength: 60 }),
        fc.array(text(30), { maxLength: 20 }),
        (words, texts) => {
          const find = wordFinder(words);
          for (const t of texts)
            assert.equal(
              find(t),
              words.find((w) => t.includes(w)),
              JSON.stringify({ words, t }),
            );
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
  });

  test('hand-picked: a suffix word found through the failure links, list order over position', () => {
    const words = ['zzz', 'bcd', 'abcx', 'c', ...Array.from({ length: 20 }, (_, i) => `filler${i}`)];
    const find = wordFinder(words);
    assert.equal(find('abcd'), 'bcd', 'bcd (index 1) before c (index 3), found after abc fails at d');
    assert.equal(find('xxc'), 'c');
    assert.equal(find('abx'), undefined);
    assert.equal(wordFinder([...words, ''])('nothing listed'), '', 'an empty word is in every text');
    assert.equal(wordFinder(['', ...words])('zzz'), '', 'and first in the list, it is the answer');
  });

  test('10,000 words against an Ingress of 8,000 annotations: the blocked ones named, the rest served', () => {
    const words = Array.from({ length: 10_000 }, (_, i) => `w${i.toString(36)}x`);
    const annotations: Record<string, string> = {};
    for (let i = 0; i < 8_000; i += 1)
      annotations[`nginx.ingress.kubernetes.io/a${i}`] =
        i % 1_000 === 7 ? `v-w${((i * 3) % 10_000).toString(36)}x-v` : `value ${i}`;
    const refusals = annotationPolicyRefusals(annotations, {
      annotationsRiskLevel: 'Critical',
      annotationValueWordBlocklist: words,
    });
    assert.deepEqual(
      refusals.map((r) => r.key).sort(),
      Array.from({ length: 8 }, (_, k) => `nginx.ingress.kubernetes.io/a${k * 1_000 + 7}`).sort(),
    );
    assert.match(refusals[0]!.message, /contains the blocked word "w[0-9a-z]+x"/);
  });
});
