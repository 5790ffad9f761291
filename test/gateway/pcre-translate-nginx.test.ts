// Ingress regex paths where PCRE and JavaScript read the same text differently, checked against real
// nginx 1.22 (PCRE2) configured as ingress-nginx writes a regex location: `location ~* "^<path>"`. For
// each pattern and path, keepip's compiled regex (compileIngressRegex, src/config/pcre-translate.ts)
// must match exactly when nginx's location takes the request. A pattern keepip cannot translate must be
// refused (the location then fails closed), never compiled to other matches.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { compileMap } from '../../src/config/nginx-map.ts';
import { compileIngressRegex } from '../../src/gateway/rewrite.ts';
import { rawExchange } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';

/** Pattern → request paths (percent-encoded as sent; nginx matches the decoded path). */
const CASES: readonly [string, readonly string[]][] = [
  ['/x[^]]+', ['/xab', '/x]', '/x]]', '/x]a']],
  ['/x[]a]$', ['/x]', '/xa', '/xb', '/xA']],
  ['/x[[:digit:]]+$', ['/x12', '/xab', '/x1%0A', '/x1a']],
  ['/x[[:alpha:]][[:punct:]]$', ['/xa!', '/xa1', '/x1!', '/xA~', '/xb%5B']],
  ['/x[[:xdigit:][:space:]]+$', ['/xBEEF', '/xg', '/x0%0B1', '/x%09']],
  ['/x\\z', ['/x', '/x%0A', '/xz', '/xy']],
  ['/x\\Z', ['/x', '/x%0A', '/xZ', '/x%0A%0A']],
  ['\\A/x', ['/x', '/xy', '/A/x']],
  ['/x\\h', ['/x%09', '/x%20', '/x%0A', '/xh']],
  ['/x\\s+y', ['/x%0By', '/x%0Cy', '/x%20%09y', '/xsy']],
  ['/x\\S$', ['/xa', '/x%20', '/xS', '/x%0A']],
  ['/x\\x41$', ['/xA', '/xa', '/xx41']],
  ['/x\\x4$', ['/x%04', '/xx4', '/x4']],
  ['/x.y', ['/x%0Dy', '/x%0Ay', '/xzy']],
  ['/x\\v', ['/x%0A', '/x%0B', '/x%85', '/xv']],
  ['/x\\c1', ['/xq', '/xQ', '/x1']],
  ['/x[\\S]$', ['/x%A0', '/xa', '/x%20']],
  // Bytes, not characters: nginx's PCRE runs without UTF; é is C3 A9, and É (C9) is not é (E9) ignoring case.
  ['/é$', ['/%C3%A9', '/%E9', '/%C3%89']],
  ['/x[é]$', ['/x%C3', '/x%A9', '/x%E9']],
  ['/x\\é$', ['/x%C3%A9', '/x%C3%A9%C3%A9', '/x%E9']],
  ['/x\\xe9$', ['/x%E9', '/x%C9']],
  ['/x\\(?P<a', ['/xP%3Ca', '/x(P%3Ca', '/x%3Ca']],
];

/** Patterns keepip refuses: their meaning in PCRE has no translation here. */
const REFUSED = [
  '/x\\Qa.b\\E',
  '/x[[:^digit:]]',
  '/x\\R',
  '/x\\p{L}',
  '/x\\x{41}',
  '/x[[.a.]]',
  // A backreference to a group that did not match fails in PCRE and matches empty in JavaScript.
  '/x(a)?\\1y',
  // `$` then something that could take the final line feed PCRE's `$` stops before.
  '/x$\\v',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a PCRE quantifier after $, not a placeholder
  '/x${1,}',
];

function decodePath(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

describe('Ingress regex paths: keepip matches as nginx 1.22 (PCRE) does', () => {
  let ngx: RunningNginx;
  before(async () => {
    const servers = CASES.map(
      ([pattern], i) =>
        `server { listen 127.0.0.1:PORT; server_name p${i}.test;
           location ~* "^${pattern}" { return 200 "match\\n"; }
           location / { return 404; } }`,
    );
    ngx = await startNginx({
      freePorts: 1,
      http: (_dir, [port]) => servers.join('\n').replaceAll('PORT', String(port)),
      waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
    });
  });
  after(() => ngx?.stop());

  for (const [i, [pattern, paths]] of CASES.entries()) {
    test(`${pattern}: ${paths.join(' ')}`, async () => {
      const compiled = compileIngressRegex(pattern, true);
      assert.ok(compiled.ok, `keepip refused ${pattern}`);
      for (const path of paths) {
        const answer = await rawExchange({
          host: '127.0.0.1',
          port: ngx.ports[0]!,
          payload: `GET ${path} HTTP/1.1\r\nHost: p${i}.test\r\nConnection: close\r\n\r\n`,
        });
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer.received.toString('latin1'))?.[1]);
        assert.ok(status === 200 || status === 404, `nginx answered ${status} to ${path}`);
        const keepip = compiled.regex.test(decodePath(path));
        assert.equal(keepip, status === 200, `${pattern} on ${path}: nginx ${status}, keepip ${keepip}`);
      }
    });
  }

  test('patterns without a faithful translation are refused (the location fails closed)', () => {
    for (const pattern of REFUSED) {
      const compiled = compileIngressRegex(pattern, true);
      assert.equal(compiled.ok, false, pattern);
      if (!compiled.ok) assert.equal(compiled.error.code, 'ROUTE_INVALID_REGEX');
    }
  });
});

/** block-user-agents entries (an nginx map with `~*`) and the User-Agents sent. */
const MAP_ENTRIES = ['~*^bot[[:digit:]]+\\z', '~*^[^]]+\\]$'];
const USER_AGENTS = ['bot12', 'botz', 'Bot7', 'scanner]', 'a]b]', ']', 'curl'];

describe('block-user-agents entries (an nginx map): keepip matches as nginx 1.22 (PCRE) does', () => {
  let ngx: RunningNginx;
  before(async () => {
    const entries = MAP_ENTRIES.map((entry) => `"${entry}" 1;`).join(' ');
    ngx = await startNginx({
      freePorts: 1,
      http: (_dir, [port]) => `map $http_user_agent $blocked { default 0; ${entries} }
        server { listen 127.0.0.1:${port}; server_name ua.test;
          location / { if ($blocked) { return 403; } return 200 "ok\\n"; } }`,
      waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
    });
  });
  after(() => ngx?.stop());

  test(`User-Agents ${USER_AGENTS.join(' ')} against ${MAP_ENTRIES.join(' ')}`, async () => {
    const matcher = compileMap(MAP_ENTRIES);
    for (const encoded of USER_AGENTS) {
      const agent = decodePath(encoded);
      const answer = await rawExchange({
        host: '127.0.0.1',
        port: ngx.ports[0]!,
        payload: `GET / HTTP/1.1\r\nHost: ua.test\r\nUser-Agent: ${agent.replace('\n', '')}\r\nConnection: close\r\n\r\n`,
      });
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer.received.toString('latin1'))?.[1]);
      // A header value cannot carry the line feed itself: nginx sees it without, and so does the check.
      const keepip = matcher.matches(agent.replace('\n', ''));
      assert.equal(
        keepip,
        status === 403,
        `${JSON.stringify(agent)}: nginx ${status}, keepip blocks ${keepip}`,
      );
    }
  });
});
