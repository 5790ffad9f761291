// nginx's configuration words, as ngx_conf_read_token reads the text ingress-nginx pastes unquoted
// into nginx.conf (block-user-agents, block-referers, skip-access-log-urls), and the map entries
// built on them. Each case is what `nginx -t` makes of `map $http_user_agent $x { <entry> 1; }`
// (nginx 1.22; test/security/global-policies-differential-nginx.test.ts runs the real one).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileMap, readMapEntry } from '../../src/config/nginx-map.ts';
import { nginxArguments, readDirective } from '../../src/config/nginx-token.ts';

test('words: quotes, escapes, comments and the end of a directive', () => {
  assert.deepEqual(readDirective('a "b c" \'d;e\' 1;'), {
    kind: 'directive',
    words: ['a', 'b c', 'd;e', '1'],
    rest: '',
  });
  assert.deepEqual(readDirective('a\\"b \\\\c \\t \\x 1;'), {
    kind: 'directive',
    words: ['a"b', '\\c', '\t', '\\x', '1'],
    rest: '',
  });
  assert.deepEqual(readDirective('a; b;'), { kind: 'directive', words: ['a'], rest: ' b;' });
  assert.deepEqual(readDirective('# all of it 1;'), { kind: 'end-of-text', words: [] });
  assert.deepEqual(readDirective('#x\ny 1;'), { kind: 'directive', words: ['y', '1'], rest: '' });
  assert.deepEqual(readDirective('a#b 1;'), { kind: 'directive', words: ['a#b', '1'], rest: '' });
  // `$` then `{` is a variable's brace, not a block (written \u0024 here: `$` and `{` side by side read as a template).
  const variable = '\u0024{a}b';
  assert.deepEqual(readDirective(`${variable} 1;`), { kind: 'directive', words: [variable, '1'], rest: '' });
  assert.equal(readDirective('a { 1;').kind, 'block');
  assert.deepEqual(readDirective('"a"b 1;'), { kind: 'error', error: 'unexpected "b"' });
  assert.deepEqual(readDirective('"a 1;'), { kind: 'error', error: 'unclosed double quote' });
  assert.deepEqual(readDirective('; 1;'), { kind: 'error', error: 'unexpected ";"' });
  assert.deepEqual(readDirective('} 1;'), { kind: 'error', error: 'unexpected "}"' });
});

test('map entries: one word as nginx reads `<entry> 1;`, else an error (nginx would not load it)', () => {
  const exact = (text: string) => {
    const read = readMapEntry(text);
    return read.ok && read.entry?.kind === 'exact' ? read.entry.lower : read.ok ? read.entry : `error`;
  };
  assert.equal(exact('"Bad Bot"'), 'bad bot');
  assert.equal(exact("'x\\'y'"), "x'y");
  assert.equal(exact('""'), '');
  assert.equal(exact('\\~tilde'), '~tilde', 'a leading backslash escapes the ~');
  assert.equal(exact('back\\\\slash'), 'back\\slash');
  assert.equal(exact('ÀBot'), '\u00c3\u0080bot', "the entry's UTF-8 bytes, ASCII lower-cased");
  assert.equal(exact('#comment'), null, 'a comment: nginx reads no key');
  for (const broken of ['Bad Bot', '"open', 'a;b', 'a{b', 'default', 'include', '"x"y', 'a #x'])
    assert.equal(readMapEntry(broken).ok, false, broken);
  const regex = readMapEntry('"~*evil agent"');
  assert.ok(regex.ok && regex.entry?.kind === 'regex' && regex.entry.regex.test('an EVIL Agent'));
});

test('matching: bytes, ASCII letters without case, an absent value is "", no regex on an empty value', () => {
  const map = compileMap(['ÀBot', '""', '~^$', '~*ébot']);
  const latin1 = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
  assert.ok(map.matches(latin1('ÀBOT')), 'the UTF-8 bytes of ÀBot, ASCII in any case');
  assert.ok(!map.matches('\u00c0bot'), 'the single latin1 byte C0 is not the entry');
  assert.ok(!map.matches(latin1('àbot')), 'non-ASCII letters keep their case (nginx lower-cases ASCII only)');
  assert.ok(map.matches(''), 'the `""` entry');
  assert.ok(map.matches(latin1('xéBOT')), '~* is caseless in ASCII');
  assert.ok(!map.matches(latin1('xÉBOT')), 'and only in ASCII, as PCRE without UTF');
  assert.ok(!compileMap(['~^$']).matches(''), "nginx's map runs no regex on an empty value");
});

test('arguments: a value pasted unquoted before `;` (ingress-nginx `name {{ value }};`), as nginx reads it', () => {
  assert.deepEqual(nginxArguments(' 5s\t'), ['5s']);
  assert.deepEqual(nginxArguments('1h 30m'), ['1h', '30m']);
  assert.deepEqual(nginxArguments('"1h 30m"'), ['1h 30m']);
  assert.deepEqual(nginxArguments(''), []);
  // \v is no blank to nginx: part of the word.
  assert.deepEqual(nginxArguments('\v5s'), ['\v5s']);
  // More than arguments: nginx would read another directive, a block, or comment out the `;`.
  for (const value of ['5s; worker_processes 8', '5s {', '5s #note', '"5s'])
    assert.equal(nginxArguments(value), null, value);
});
