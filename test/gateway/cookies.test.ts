// The two cookie readers of src/gateway/cookies.ts, case by case against what nginx 1.27.1's
// ngx_http_parse_multi_header_lines ($cookie_<name>) and lua-resty-cookie's get (sticky sessions) return
// for the same header, then as properties over well-formed headers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { expandVariables, type RequestVars } from '../../src/gateway/access/nginx-vars.ts';
import { type CookieHeader, nginxCookie, restyCookie } from '../../src/gateway/cookies.ts';

type Case = [header: CookieHeader, name: string, expected: string | undefined, why: string];

const NGINX: Case[] = [
  ['a=1; b=2', 'b', '2', 'pairs split at ;'],
  ['Canary=always', 'canary', 'always', 'the name matches case-insensitively'],
  ['a=1', 'A', '1', 'either side of the comparison folds'],
  ['\u00c9=1', '\u00e9', undefined, 'only A-Z fold (ngx_strncasecmp)'],
  ['xa=1; a=2', 'a', '2', 'a name is compared from the start of a pair: no suffix match'],
  ['ab=1; a=2', 'a', '2', 'nor a prefix match'],
  ['ab=1', 'a', undefined, 'a longer name is another cookie'],
  ['a=1; a=2', 'a', '1', 'the first pair of a name wins'],
  ['a=; b=1', 'a', '', 'an empty value is found, empty'],
  ['b=1; a=', 'a', '', 'an empty value at the end too'],
  ['a', 'a', undefined, 'a pair without = has no value'],
  ['a; b=2', 'b', '2', 'and does not hide other names'],
  ['a; a=2', 'a', undefined, 'the name without = swallows the next pair (nginx steps over the ;)'],
  ['a;a=2', 'a', undefined, 'with or without the space'],
  ['ab; a=2', 'a', '2', 'a longer name without = does not'],
  ['a = 1', 'a', '1', 'spaces around = are skipped'],
  ['a=1 ; b=2', 'a', '1 ', 'trailing spaces stay in the value'],
  ['a=\t1', 'a', '\t1', 'a tab is not a space'],
  ['x=1;\tb=2', 'b', undefined, 'nor before a name'],
  ['x=1, b=2', 'b', '2', 'a pair passed over ends at , too'],
  ['x=1,b=2', 'b', '2', 'with or without the space'],
  ['a=1, b=2', 'a', '1, b=2', 'but a value runs to the next ; only'],
  ['a=b=c', 'a', 'b=c', 'the value is everything after the first ='],
  ['x="q;a=1"', 'a', '1"', 'quotes mean nothing'],
  ['', 'a', undefined, 'an empty header'],
  [undefined, 'a', undefined, 'no header'],
  [['x=1', 'a=2'], 'a', '2', 'several lines are read in order'],
  [['a=1', 'a=2'], 'a', '1', 'the first line wins'],
  [['a', 'a=2'], 'a', '2', 'each line on its own: the swallowing stops at the line end'],
];

const RESTY: Case[] = [
  ['a=1; b=2', 'b', '2', 'pairs split at ;'],
  ['A=1', 'a', undefined, 'the name is compared exactly'],
  ['xa=1; a=2', 'a', '2', 'no suffix match'],
  ['a=1; a=2', 'a', '2', 'the last pair of a name wins (a Lua table)'],
  ['a=; b=1', 'a', '', 'an empty value is found, empty'],
  ['a', 'a', undefined, 'a pair without = has no value'],
  ['foo; a=1', 'a', undefined, 'and its name runs on to the next = (the key is "foo; a")'],
  ['a =1', 'a', undefined, 'a space before = is part of the name'],
  ['a= 1', 'a', '', 'a space after = ends the value'],
  ['a=1 2; b=3', 'b', undefined, 'so what follows it starts a key ("2; b")'],
  ['a=1 ;b=2', 'b', undefined, 'even a ; (the key is ";b")'],
  ['a=1, b=2', 'a', '1,', 'a , is part of a value'],
  ['a=1, b=2', 'b', '2', 'and the space after it ends that value'],
  ['\t a=1', 'a', '1', 'spaces and tabs before a key are passed over'],
  ['a=b=c', 'a', 'b=c', 'the value is everything after the first ='],
  [undefined, 'a', undefined, 'no header'],
  [['a=1', 'b=2'], 'b', '2', 'several lines joined with "; " ($http_cookie)'],
  [['a=1', 'a=2'], 'a', '2', 'the last one wins across lines'],
];

const READERS: Array<[string, (header: CookieHeader, name: string) => string | undefined, Case[]]> = [
  ["nginxCookie: nginx 1.27.1's $cookie_<name>", nginxCookie, NGINX],
  ["restyCookie: lua-resty-cookie's get(name) on $http_cookie", restyCookie, RESTY],
];
for (const [title, read, cases] of READERS) {
  describe(title, () => {
    for (const [header, name, expected, why] of cases) {
      it(`${why}: ${JSON.stringify(header)} ${name}`, () => assert.equal(read(header, name), expected));
    }
  });
}

// Well-formed headers: token names (with case variants), values without ; , or white space.
const pair = fc.tuple(
  fc.constantFrom('a', 'A', 'b', 'sid', 'SID', 'route'),
  fc.stringMatching(/^[!#-+\-.-:<-~]*$/),
);
const pairs = fc.array(pair, { maxLength: 6 });
const names = fc.constantFrom('a', 'A', 'b', 'sid', 'route', 'x');
const line = (ps: Array<[string, string]>) => ps.map(([k, v]) => `${k}=${v}`).join('; ');

describe('over well-formed headers', () => {
  it('nginx: the first pair whose name matches case-insensitively', () => {
    fc.assert(
      fc.property(pairs, names, (ps, name) => {
        const first = ps.find(([k]) => k.toLowerCase() === name.toLowerCase());
        assert.equal(nginxCookie(line(ps), name), first?.[1]);
      }),
    );
  });

  it('lua-resty-cookie: the last pair whose name matches exactly', () => {
    fc.assert(
      fc.property(pairs, names, (ps, name) => {
        const last = ps.findLast(([k]) => k === name);
        assert.equal(restyCookie(line(ps), name), last?.[1]);
      }),
    );
  });

  it('several lines read as one joined with "; "', () => {
    const lines = fc.array(pairs.filter((ps) => ps.length > 0).map(line), { maxLength: 4 });
    fc.assert(
      fc.property(lines, names, (ls, name) => {
        assert.equal(nginxCookie(ls, name), nginxCookie(ls.join('; '), name));
        assert.equal(restyCookie(ls, name), restyCookie(ls.join('; '), name));
      }),
    );
  });
});

describe('$cookie_<name> in auth-url and auth-* values (nginx-vars.ts)', () => {
  const vars = (cookie: string | undefined): RequestVars => ({
    scheme: 'http',
    passAccessScheme: 'http',
    httpHost: 'app.example',
    host: 'app.example',
    requestUri: '/',
    method: 'GET',
    remoteAddr: '10.0.0.1',
    remoteUser: '',
    serverName: 'app.example',
    headers: { cookie },
  });
  const cases: Array<[string | undefined, string]> = [
    ['Session=abc', 'https://auth.example/?s=abc'],
    ['x=1, session=abc', 'https://auth.example/?s=abc'],
    ['session=', 'https://auth.example/?s='],
    [undefined, 'https://auth.example/?s='],
  ];
  for (const [cookie, expected] of cases) {
    it(`${JSON.stringify(cookie)}`, () =>
      assert.equal(expandVariables('https://auth.example/?s=$cookie_session', vars(cookie)), expected));
  }
});
