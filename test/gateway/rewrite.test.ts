import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applyRewrite,
  compileIngressRegex,
  compileRewrite,
  escapePath,
  isValidRewriteTarget,
} from '../../src/gateway/rewrite.ts';

function rewrite(pattern: string, target: string, uri: string, args: string | null = null): string | null {
  const compiled = compileRewrite(pattern, target);
  assert.ok(compiled.ok, 'compiles');
  assert.ok(compiled.rewrite !== null);
  return applyRewrite(compiled.rewrite, uri, args);
}

describe('rewrite-target', () => {
  // The reference page's vectors plus the ingress-nginx documentation's examples.
  const vectors: Array<[string, string, string, string | null, string | null]> = [
    ['/something(/|$)(.*)', '/$2', '/something', null, '/'],
    ['/something(/|$)(.*)', '/$2', '/something/', null, '/'],
    ['/something(/|$)(.*)', '/$2', '/something/new', null, '/new'],
    ['/something(/|$)(.*)', '/$2', '/something/new', 'a=1&b=2', '/new?a=1&b=2'],
    ['/something(/|$)(.*)', '/$2', '/something/new', '', '/new'],
    ['/something(/|$)(.*)', '/$2', '/SomeThing/x', null, '/x'],
    ['/api(/|$)(.*)', '/v2/$2', '/api/users', null, '/v2/users'],
    ['/(app)/(.*)', '/$2/$1', '/app/x', null, '/x/app'],
    // Unmatched groups are empty; one digit per capture ($12 is $1 then "2").
    ['/a(x)?(.*)', '/$1-$2', '/ab', null, '/-b'],
    ['/(a)', '/$12', '/a', null, '/a2'],
    // The whole URI is replaced, whatever the match covered.
    ['/', '/', '/deep/path', 'q', '/?q'],
    ['/foo', '/bar', '/foo/baz', null, '/bar'],
    // The pattern is not anchored (ingress-nginx: `rewrite "(?i)<path>"`).
    ['/b(.*)', '$1', '/a/b/c', null, '/c'],
    // Decoded characters that cannot appear in a request-target are escaped again.
    ['/s/(.*)', '/$1', '/s/a b?#%"', null, '/a%20b%3F%23%25%22'],
    ['/s/(.*)', '/$1', '/s/\xc3\xa9', null, '/%C3%A9'],
    // A target without a leading slash still yields an origin-form target.
    ['/s/(.*)', '$1', '/s/x', null, '/x'],
    ['/nomatch', '/x', '/other', null, null],
  ];
  for (const [pattern, target, uri, args, expected] of vectors) {
    it(`${pattern} + ${target}: ${uri}${args === null ? '' : `?${args}`} -> ${expected}`, () =>
      assert.equal(rewrite(pattern, target, uri, args), expected));
  }

  const targets: Array<[string, boolean]> = [
    ['/', true],
    ['/$2', true],
    ['$1', true],
    ['/a-b_c.d~e/f:g', true],
    ['', true],
    ['/a b', false],
    ['/x;rm', false],
    ['/x?y=1', false],
    ['//evil.com/$1', true],
    ['http://evil.com', true],
    ['/"quoted"', false],
    ['/x\nreturn 200', false],
    ['/{x}', false],
  ];
  for (const [target, valid] of targets) {
    it(`target ${JSON.stringify(target)} is ${valid ? 'valid' : 'refused'}`, () =>
      assert.equal(isValidRewriteTarget(target), valid));
  }

  it('an absolute target is a redirect, with captures and the query', () => {
    const compiled = compileRewrite('/old/(.*)', 'https://new.example.com/$1');
    assert.ok(compiled.ok && compiled.rewrite !== null);
    assert.equal(compiled.rewrite.redirect, true);
    assert.equal(applyRewrite(compiled.rewrite, '/old/a', 'x=1'), 'https://new.example.com/a?x=1');
  });

  it('no target or an empty one means no rewrite', () => {
    assert.deepEqual(compileRewrite('/a', null), { ok: true, rewrite: null });
    assert.deepEqual(compileRewrite('/a', ''), { ok: true, rewrite: null });
  });

  it('refuses invalid targets, variables and bad patterns with stable codes', () => {
    const codes = [
      compileRewrite('/a', '/a b'),
      compileRewrite('/a', '/$host'),
      compileRewrite('/a', '/$'),
      compileRewrite('/a(', '/$1'),
    ].map((r) => (r.ok ? 'ok' : r.error.code));
    assert.deepEqual(codes, [
      'ROUTE_INVALID_REWRITE_TARGET',
      'ROUTE_REWRITE_VARIABLE',
      'ROUTE_REWRITE_VARIABLE',
      'ROUTE_INVALID_REGEX',
    ]);
  });
});

describe('ingress path regexes', () => {
  const cases: Array<[string, boolean, string, boolean]> = [
    ['/api', true, '/API/x', true],
    ['/api', true, '/x/api', false],
    ['/api', false, '/x/api', true],
    ['/api$', true, '/api', true],
    ['/api$', true, '/api/', false],
    // PCRE named groups and a leading (?i) are accepted.
    ['/(?P<v>v[0-9])/x', true, '/v1/x', true],
    ['(?i)/case', true, '/CASE', true],
    // nginx prefixes `^` without grouping, so only the first alternative is anchored.
    ['/a|/b', true, '/x/b', true],
  ];
  for (const [source, anchored, input, matches] of cases) {
    it(`${source} (${anchored ? 'anchored' : 'unanchored'}) ${matches ? 'matches' : 'does not match'} ${input}`, () => {
      const r = compileIngressRegex(source, anchored);
      assert.ok(r.ok);
      assert.equal(r.regex.test(input), matches);
    });
  }

  it('escapes only what a request-target cannot carry', () => {
    assert.equal(escapePath("/a-b/c_d.e~f/g:h@i!$&'()*+,;="), "/a-b/c_d.e~f/g:h@i!$&'()*+,;=");
    assert.equal(escapePath('/\x00\x7f \u20ac'), '/%00%7F%20%E2%82%AC');
  });
});
