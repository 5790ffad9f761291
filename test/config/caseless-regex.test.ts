// withoutIgnoreCase (src/config/caseless-regex.ts) against V8 itself: on random patterns from a small
// grammar and random inputs, the rewritten pattern without `i` must give exactly what the pattern
// gives with `i` (no match, or the same match at the same index with the same captures and groups).
// The grammar and its alphabet: test/fixtures/regex-patterns.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { caseClass, caselessRegExp, withoutIgnoreCase } from '../../src/config/caseless-regex.ts';
import { assertSameAsIgnoreCase } from '../fixtures/regex-patterns.ts';

describe('withoutIgnoreCase: the same matches as the i flag', () => {
  test('random patterns and inputs (differential against V8)', () => {
    const compared = assertSameAsIgnoreCase(withoutIgnoreCase, 3000);
    assert.ok(compared > 1000, `only ${compared} patterns were rewritten`);
  });

  test('each BMP code unit: its class is what i equates it with (checked against V8 on its case mappings)', () => {
    for (let c = 0; c <= 0xffff; c++) {
      const ch = String.fromCharCode(c);
      const members = caseClass(c);
      const literal = new RegExp(`^\\u${c.toString(16).padStart(4, '0')}$`, 'i');
      for (const m of members)
        assert.ok(literal.test(String.fromCharCode(m)), `U+${c.toString(16)} ~ U+${m.toString(16)}`);
      const candidates = [
        ch.toUpperCase(),
        ch.toLowerCase(),
        ch.toUpperCase().toLowerCase(),
        ch.toLowerCase().toUpperCase(),
      ];
      for (const d of candidates) {
        if (d.length !== 1) continue;
        assert.equal(
          literal.test(d),
          members.includes(d.charCodeAt(0)),
          `U+${c.toString(16)} vs U+${d.charCodeAt(0).toString(16)}`,
        );
      }
    }
  });
});

describe('withoutIgnoreCase: table', () => {
  const cases: Array<[string, string | null]> = [
    ['/alt/(a|a)*$', '/[Aa][Ll][Tt]/([Aa]|[Aa])*$'],
    ['[^a-z]', '[^a-zA-Z]'],
    ['[0-z]', '[0-zA-Za-z]'],
    ['[A-F]', '[A-Fa-f]'],
    ['\\D\\d\\w\\W\\s\\S\\b\\B', '\\D\\d\\w\\W\\s\\S\\b\\B'],
    ['(?<Name>x)(?:y)(?=z)(?!q)(?<=1)(?<!2)', '(?<Name>[Xx])(?:[Yy])(?=[Zz])(?![Qq])(?<=1)(?<!2)'],
    ['\\x41\\u0062\\x2f', '[Aa][Bb]\\x2f'],
    ['\\p{L}', '[Pp]{[Ll]}'], // without u: a p and a literal {L}
    ['[\\w-z]', '[\\w\\u002dzZ]'], // Annex B: \w, -, z
    ['a{2,3}?', '[Aa]{2,3}?'],
    ['(?<n>a)\\k<n>', null],
    ['(a)\\1', null],
    ['\\08', null],
    ['(?i:a)', null],
    ['(?-i:a)', null],
    ['[\\c]', null],
    ['[b-a]', null],
    ['[ab', null],
  ];
  for (const [source, expected] of cases) {
    test(`${source} -> ${expected}`, () => assert.equal(withoutIgnoreCase(source), expected));
  }

  test('caselessRegExp: no i flag when the rewrite is exact, the i flag when it is not', () => {
    assert.equal(caselessRegExp('/api/(.*)').flags, '');
    assert.deepEqual([...(caselessRegExp('/API/(.*)').exec('/api/Users') ?? [])], ['/api/Users', 'Users']);
    assert.equal(caselessRegExp('(a)\\1').flags, 'i');
    assert.ok(caselessRegExp('(a)\\1').test('aA'));
    assert.throws(() => caselessRegExp('(a'), SyntaxError);
  });
});
