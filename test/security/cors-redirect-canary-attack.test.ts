// Attacks on enable-cors, the gateway's own redirects, rewrite-target and canaries, from the outside:
// origins built to look like an allowed one, a second Origin, preflights from a client the location
// refuses, CR/LF and `//host` in redirected targets, a Host with `@` behind its port, dot segments
// (raw and encoded) through a regex rewrite towards a path another Ingress protects, and a canary
// header sent by a client that the main Ingress refuses. Each row says what ingress-nginx does.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  manifestDir,
  serviceWithEndpoints,
  toYaml,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { rawExchange } from '../helpers/net.ts';
import { type Running, startKeepip } from '../helpers/process.ts';
import { startNamedBackends } from './helpers.ts';

const ALLOWED = '127.0.0.60';
const STRANGER = '127.0.0.61';

function startBackends(names: readonly string[]) {
  return startNamedBackends(names, (name) => (name === 'auth' ? 401 : 200));
}

interface Answer {
  status: number;
  /** The response head, latin1, CRLF kept. */
  head: string;
  /** x-backend: the backend that answered, null for the gateway's own answer. */
  backend: string | null;
  /** Every value of one response header (lower-case name). */
  header(name: string): string[];
}

/** One raw request (`head` without the blank line) from `from`; the gateway's answer. */
async function send(port: number, from: string, head: string, timeoutMs = 10_000): Promise<Answer> {
  const reply = await rawExchange({
    host: '127.0.0.1',
    port,
    localAddress: from,
    payload: Buffer.from(`${head}Connection: close\r\n\r\n`, 'latin1'),
    timeoutMs,
  });
  const text = reply.received.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const responseHead = end < 0 ? text : text.slice(0, end + 2);
  const lines = responseHead.split('\r\n');
  const header = (name: string) =>
    lines
      .slice(1)
      .filter((l) => l.toLowerCase().startsWith(`${name}:`))
      .map((l) => l.slice(name.length + 1).trim());
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
    head: responseHead,
    backend: header('x-backend')[0] ?? null,
    header,
  };
}

const BACKENDS = [
  'public',
  'internal',
  'auth',
  'stable',
  'canary',
  'stable2',
  'canary2',
  'stable3',
  'canary3',
];

/** The main and canary Ingresses of one canary host: `main` and `canary` annotations on each. */
function canaryPair(
  host: string,
  services: [string, string],
  main: Record<string, string>,
  canary: Record<string, string>,
): K8sObject[] {
  const path = (service: string) => [{ path: '/', service, port: 80 }];
  return [
    ingress({ name: `${host}-main`, host, paths: path(services[0]), annotations: main }),
    ingress({
      name: `${host}-canary`,
      host,
      paths: path(services[1]),
      annotations: { canary: 'true', 'canary-by-header': 'X-Canary', ...canary },
    }),
  ];
}

function topology(ports: (name: string) => number) {
  const allow = { 'allowlist-source-range': `${ALLOWED}/32` };
  const cors = {
    'enable-cors': 'true',
    'cors-allow-origin': 'https://*.example.com, https://app.example.org:8443, null',
    'cors-allow-credentials': 'true',
  };
  const auth = { 'auth-url': `http://127.0.0.1:${ports('auth')}/check` };
  const route = (name: string, host: string, annotations: Record<string, string>, service = 'public') =>
    ingress({ name, host, paths: [{ path: '/', service, port: 80 }], annotations });
  return topologyOf([
    controllerConfigMap({}),
    ...BACKENDS.flatMap((name) => serviceWithEndpoints({ name, ports: [ports(name)] })),
    route('cors', 'cors.example', cors),
    route('cors-private', 'cors-private.example', { ...cors, ...allow }),
    route('cors-auth', 'cors-auth.example', { ...cors, ...auth }),
    route('tls', 'tls.example', { 'force-ssl-redirect': 'true' }),
    route('site', 'site.example', { 'from-to-www-redirect': 'true' }),
    ingress({
      name: 'api',
      host: 'api.example',
      paths: [{ path: '/api(/|$)(.*)', pathType: 'ImplementationSpecific', service: 'internal', port: 80 }],
      annotations: { 'use-regex': 'true', 'rewrite-target': '/v1/$2' },
    }),
    ingress({
      name: 'api-internal',
      host: 'api.example',
      paths: [{ path: '/internal', service: 'internal', port: 80 }],
      annotations: allow,
    }),
    ...canaryPair('canary.example', ['stable', 'canary'], allow, { 'canary-by-header-value': 'v2' }),
    ...canaryPair('canary-open.example', ['stable2', 'canary2'], {}, { ...allow, ...auth }),
    ...canaryPair('canary-auth.example', ['stable3', 'canary3'], auth, { 'canary-by-header-value': 'v2' }),
  ]);
}

describe('CORS, redirects, rewrites and canaries under attack', () => {
  let gw: TestGateway;
  let backends: Awaited<ReturnType<typeof startBackends>>;
  let issues: ReturnType<typeof topology>['issues'] = [];

  before(async () => {
    backends = await startBackends(BACKENDS);
    const built = topology(backends.port);
    issues = built.issues;
    gw = await startTestGateway(built);
  });

  after(async () => {
    await gw.close();
    await backends.close();
  });

  const get = (from: string, host: string, target: string, extra = '', method = 'GET') =>
    send(gw.httpPort, from, `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}`);
  const reached = (backend: string) => backends.seen.filter((s) => s.backend === backend).length;

  test('a CORS origin list with https://*.example.com admits none of the look-alike origins', async () => {
    const attacks = [
      'https://evilexample.com',
      'https://example.com',
      'https://example.com.evil.com',
      'https://a.example.com.evil.com',
      'https://a.example.com@evil.com',
      'https://example.com@evil.com',
      'https://evil.com/https://a.example.com',
      'https://evil.com#https://a.example.com',
      'https://evil.com?https://a.example.com',
      'https://a.b.example.com',
      'https://a_b.example.com',
      'https://a.example.com.',
      'https://a.example.com:443',
      'http://a.example.com',
      'xhttps://a.example.com',
      'https://.example.com',
      'https://app.example.org',
      'https://app.example.org:84430',
      'nullx',
      `https://${'a'.repeat(6000)}.example.com.evil.com`,
      'https://a.example.com\tx',
      'https://a.example.com x',
    ];
    for (const origin of attacks) {
      for (const method of ['GET', 'OPTIONS']) {
        const reply = await get(STRANGER, 'cors.example', '/', `Origin: ${origin}\r\n`, method);
        assert.equal(reply.header('access-control-allow-origin').length, 0, `${method} ${origin}`);
        assert.equal(reply.header('access-control-allow-credentials').length, 0, `${method} ${origin}`);
        // Not a preflight: the request goes on to the backend like any other.
        assert.equal(reply.backend, 'public', `${method} ${origin}`);
      }
    }
  });

  test('the listed origins (any case) are echoed exactly, with credentials; a preflight gets 204', async () => {
    for (const origin of [
      'https://a.example.com',
      'HTTPS://B-1.EXAMPLE.COM',
      'https://app.example.org:8443',
    ]) {
      const reply = await get(STRANGER, 'cors.example', '/', `Origin: ${origin}\r\n`);
      assert.deepEqual(reply.header('access-control-allow-origin'), [origin]);
      assert.deepEqual(reply.header('access-control-allow-credentials'), ['true']);
      const before = reached('public');
      const preflight = await get(STRANGER, 'cors.example', '/', `Origin: ${origin}\r\n`, 'OPTIONS');
      assert.equal(preflight.status, 204);
      assert.equal(reached('public'), before, 'a preflight is answered by the gateway');
    }
    assert.deepEqual(
      (await get(STRANGER, 'cors.example', '/', 'Origin: null\r\n')).header('access-control-allow-origin'),
      ['null'],
    );
  });

  test('two Origin headers: the response never allows the second, unlisted one', async () => {
    for (const pair of [
      ['https://a.example.com', 'https://evil.com'],
      ['https://evil.com', 'https://a.example.com'],
    ]) {
      const headers = pair.map((o) => `Origin: ${o}\r\n`).join('');
      for (const method of ['GET', 'OPTIONS']) {
        const reply = await get(STRANGER, 'cors.example', '/', headers, method);
        for (const value of reply.header('access-control-allow-origin'))
          assert.doesNotMatch(value, /evil/, `${method} ${pair.join(' + ')}`);
      }
    }
  });

  test('as nginx: a listed-origin preflight from a refused client is 204, but never reaches the backend', async () => {
    const origin = 'Origin: https://a.example.com\r\nAccess-Control-Request-Method: DELETE\r\n';
    const before = backends.seen.length;
    // nginx's `if ($request_method = 'OPTIONS') { return 204; }` is in the rewrite phase, before allow/deny.
    assert.equal((await get(STRANGER, 'cors-private.example', '/', origin, 'OPTIONS')).status, 204);
    // The same preflight from an unlisted origin is no preflight: the allowlist refuses it.
    const unlisted = 'Origin: https://evil.com\r\nAccess-Control-Request-Method: DELETE\r\n';
    assert.equal((await get(STRANGER, 'cors-private.example', '/', unlisted, 'OPTIONS')).status, 403);
    // Other methods from the refused client: 403 whatever the Origin.
    for (const method of ['GET', 'DELETE', 'PUT'])
      assert.equal((await get(STRANGER, 'cors-private.example', '/', origin, method)).status, 403, method);
    assert.equal(backends.seen.length, before, 'a refused client reached a backend');
    // The control: the allowed client is served.
    assert.equal((await get(ALLOWED, 'cors-private.example', '/', origin)).backend, 'public');
  });

  test('as nginx: a listed-origin preflight skips auth-url, yet no other request gets past the auth service', async () => {
    const origin = 'Origin: https://a.example.com\r\n';
    const before = reached('public');
    const authBefore = reached('auth');
    assert.equal((await get(STRANGER, 'cors-auth.example', '/', origin, 'OPTIONS')).status, 204);
    assert.equal(reached('auth'), authBefore, 'the preflight made an auth subrequest');
    for (const [method, extra] of [
      ['OPTIONS', 'Origin: https://evil.com\r\n'],
      ['OPTIONS', ''],
      ['GET', origin],
      ['POST', `${origin}Content-Length: 0\r\n`],
    ] as const) {
      assert.equal((await get(STRANGER, 'cors-auth.example', '/', extra, method)).status, 401, method);
    }
    assert.equal(reached('public'), before, 'a request without auth reached the backend');
  });

  test('ssl-redirect: CR/LF, `//host` and `\\host` in the target stay in the path of the configured host', async () => {
    for (const target of [
      '/%0d%0aSet-Cookie:%20a=1',
      '/%0D%0ALocation:%20https://evil.com',
      '//evil.com/',
      '//evil.com',
      '/\\evil.com',
      '/%2f%2fevil.com',
      '/%5c%5cevil.com',
      '/x/..//evil.com',
    ]) {
      const reply = await get(STRANGER, 'tls.example', target);
      assert.equal(reply.status, 308, target);
      const location = reply.header('location');
      assert.equal(location.length, 1, target);
      assert.equal(new URL(location[0]!).host, 'tls.example', `${target} -> ${location[0]}`);
      assert.doesNotMatch(location[0]!, /[\r\n]/, target);
      assert.equal(reply.header('set-cookie').length, 0, target);
    }
  });

  test('ssl-redirect and from-to-www: a Host with `@` or junk after its port is 400, an absolute-form target never names another host', async () => {
    // A port that is not digits: refused before any redirect (nginx serves it, its $http_host whole).
    for (const host of [
      'tls.example:@evil.com',
      'tls.example:443@evil.com',
      'tls.example:a b',
      'www.site.example:@evil.com',
    ]) {
      const reply = await get(STRANGER, host, '/x');
      assert.equal(reply.status, 400, host);
      assert.equal(reply.header('location').length, 0, host);
    }
    const cases: Array<[host: string, target: string, expected: string]> = [
      // nginx redirects to $best_http_host (the Host header) here; keepip to the host it routed by.
      ['evil.com', 'http://tls.example//evil.com', 'tls.example'],
      ['www.site.example', '//evil.com/', 'site.example'],
      ['www.site.example', '/%0d%0aSet-Cookie:%20a=1', 'site.example'],
      ['evil.com', 'http://www.site.example/x', 'site.example'],
    ];
    for (const [host, target, expected] of cases) {
      const reply = await get(STRANGER, host, target);
      assert.equal(reply.status, 308, `${host} ${target}`);
      const location = reply.header('location');
      assert.equal(location.length, 1);
      assert.equal(new URL(location[0]!).hostname, expected, `${host} ${target} -> ${location[0]}`);
      assert.equal(reply.header('set-cookie').length, 0);
    }
    // Names that are not a configured host's www twin: no redirect at all.
    for (const host of [
      'www.evil.com',
      'www.www.site.example',
      'evil.com@www.site.example',
      'www.site.example@evil.com',
    ])
      assert.equal((await get(STRANGER, host, '/x')).header('location').length, 0, host);
  });

  test('a regex rewrite to /v1/$2: dot segments, raw or encoded, never reach a path outside /v1 the allowlist does not guard', async () => {
    // The controls: the rewrite works, /internal is the allowlisted client's only.
    const before = backends.seen.length;
    assert.equal((await get(STRANGER, 'api.example', '/api/x?q')).backend, 'internal');
    assert.equal((await get(STRANGER, 'api.example', '/internal/x')).status, 403);
    assert.equal((await get(ALLOWED, 'api.example', '/internal/x')).backend, 'internal');
    assert.deepEqual(
      backends.seen.slice(before).map((s) => s.url),
      ['/v1/x?q', '/internal/x'],
    );
    for (const target of [
      '/api/../internal/x',
      '/api/%2e%2e/internal/x',
      '/api/.%2E/internal/x',
      '/api/..%2finternal/x',
      '/api/%2e%2e%2finternal/x',
      '/api/x/..%2f..%2finternal/x',
      '/api..%2finternal',
      '/api/..%252finternal',
      '/api/%252e%252e/internal',
      '/api/..;/internal',
      '/api/..%5cinternal',
      '/api/..\\internal',
      '/api/%2f%2fevil.com/x',
      '/api//evil.com/x',
      '/api/http://evil.com/x',
      '/api/%3f/x?y',
      '/API/x/..%2F..%2Finternal',
    ]) {
      const before = backends.seen.length;
      const reply = await get(STRANGER, 'api.example', target);
      const seen = backends.seen.slice(before);
      if (reply.status !== 200) {
        assert.ok([400, 403].includes(reply.status), `${target}: ${reply.status}`);
        assert.equal(seen.length, 0, `${target} reached a backend`);
        continue;
      }
      assert.equal(seen.length, 1, target);
      const url = seen[0]!.url;
      // However the backend reads it (WHATWG, or decoded once and split at `/`), it stays under /v1/.
      assert.match(new URL(url, 'http://backend').pathname, /^\/v1\//, `${target} -> ${url}`);
      const segments = decodeURIComponent(url.split('?')[0]!).split('/');
      assert.ok(!segments.includes('..') && segments[1] === 'v1', `${target} -> ${url}`);
      assert.doesNotMatch(url, /^\/\/|^[a-z]+:/i, `${target} -> ${url}`);
    }
  });

  test('a rewritten path never carries CR, LF or a space upstream: one request line, no injected header', async () => {
    for (const target of [
      '/api/a%20b%0d%0aX-Injected:%201',
      '/api/a%0aX-Injected:%201',
      '/api/a%0d%20HTTP/1.1',
    ]) {
      const before = backends.seen.length;
      const reply = await get(STRANGER, 'api.example', target);
      assert.equal(reply.backend, 'internal', target);
      const seen = backends.seen.slice(before);
      assert.equal(seen.length, 1, target);
      assert.doesNotMatch(seen[0]!.url, /[\r\n ]/, target);
      assert.match(seen[0]!.url, /^\/v1\//, target);
      assert.equal(seen[0]!.headers['x-injected'], undefined, target);
    }
  });

  test('canary-by-header from a client the main Ingress refuses: 403, neither backend reached', async () => {
    const before = backends.seen.length;
    for (const extra of ['X-Canary: v2\r\n', 'X-Canary: always\r\n', 'X-Canary: v2\r\nX-Canary: v2\r\n', ''])
      assert.equal((await get(STRANGER, 'canary.example', '/', extra)).status, 403, extra);
    assert.equal(backends.seen.length, before);
    // The control: the allowlisted client goes to the canary with the header's value, else to the main.
    assert.equal((await get(ALLOWED, 'canary.example', '/', 'X-Canary: v2\r\n')).backend, 'canary');
    assert.equal((await get(ALLOWED, 'canary.example', '/')).backend, 'stable');
  });

  test('canary-by-header-value is an exact value: `always`, regex metacharacters and other cases stay on the main backend', async () => {
    for (const value of ['always', '.*', 'v.', 'v2.*', '^v2$', 'V2', 'v2x', 'xv2', 'v2,v2', 'v2%00'])
      assert.equal(
        (await get(ALLOWED, 'canary.example', '/', `X-Canary: ${value}\r\n`)).backend,
        'stable',
        value,
      );
  });

  test('as ingress-nginx: a main Ingress with auth-url authenticates requests the canary header sends to the canary', async () => {
    const before = reached('canary3');
    const authBefore = reached('auth');
    for (const extra of ['X-Canary: v2\r\n', 'X-Canary: always\r\n'])
      assert.equal((await get(STRANGER, 'canary-auth.example', '/', extra)).status, 401, extra);
    assert.equal(reached('canary3'), before);
    assert.equal(reached('auth'), authBefore + 2);
  });

  test("as ingress-nginx: the canary Ingress's own allowlist and auth-url do not apply (the main Ingress's rules do)", async () => {
    const before = reached('auth');
    const reply = await get(STRANGER, 'canary-open.example', '/', 'X-Canary: always\r\n');
    assert.equal(reply.backend, 'canary2');
    assert.equal(reached('auth'), before);
    // keepip says so: a warning names the canary Ingress's ignored access annotations.
    const said = issues.filter((i) => i.code === 'CANARY_ACCESS_IGNORED');
    assert.equal(said.length, 1);
    assert.match(said[0]!.message, /canary-open.*allowlist-source-range, auth-url: .*its own are ignored/);
  });
});

// canary-by-header-pattern is matched against a header any client sends. ingress-nginx matches it with
// ngx.re.match (PCRE with its match limit: a runaway match is an error, the request goes to the main
// backend). A bounded repeat of overlapping alternatives, `(a|aa){40}`, has no nested unbounded repeat,
// and V8's linear-time fallback does not take a count over 16: matched, a 90-byte header would cost
// 2^40 backtracking steps in the gateway's one event loop. The scan refuses it at load (a warning; the
// canary then goes by its other rules). Run in a child process: a stalled event loop here would stall
// the test runner too.
describe('canary-by-header-pattern: a crafted header cannot stall the gateway', () => {
  let backends: Awaited<ReturnType<typeof startBackends>>;
  let dir: ReturnType<typeof manifestDir>;
  let keepip: Running;
  let port = 0;

  before(async () => {
    backends = await startBackends(['stable', 'canary']);
    dir = manifestDir();
    const file = dir.write(
      'canary.yaml',
      toYaml([
        ...serviceWithEndpoints({ name: 'stable', ports: [backends.port('stable')] }),
        ...serviceWithEndpoints({ name: 'canary', ports: [backends.port('canary')] }),
        ...canaryPair(
          'pattern.example',
          ['stable', 'canary'],
          {},
          { 'canary-by-header-pattern': '^(a|aa){40}$' },
        ),
      ]),
    );
    keepip = startKeepip(['gateway', '-f', file, '--http', '127.0.0.1:0']);
    port = Number((await keepip.waitFor(/keepip gateway: listening http 127\.0\.0\.1:(\d+)/))[1]);
  });

  after(async () => {
    // SIGKILL: a gateway stuck in a match cannot run its SIGTERM handler. Our own child, by its pid.
    keepip.child.kill('SIGKILL');
    await keepip.stop();
    await backends.close();
    dir.remove();
  });

  const get = (value: string, timeoutMs = 10_000) =>
    send(port, '127.0.0.1', `GET / HTTP/1.1\r\nHost: pattern.example\r\nX-Canary: ${value}\r\n`, timeoutMs);

  test('the pattern is refused at load with a warning naming it; the header then selects nothing', async () => {
    await keepip.waitFor(/canary-by-header-pattern.*\(a\|aa\)\{40\}.*linear-time regex engine cannot take/);
    assert.equal((await get('a'.repeat(40))).backend, 'stable');
    assert.equal((await get('b')).backend, 'stable');
  });

  test("a crafted X-Canary (90 a's) is answered by the main backend, and the next request too", async () => {
    // A bound for a stalled gateway, not a timing expectation: the answer normally takes milliseconds.
    const crafted = await get('a'.repeat(90), 10_000);
    assert.equal(crafted.status, 200, 'the gateway did not answer the crafted request within 10 s');
    assert.equal(crafted.backend, 'stable');
    assert.equal((await get('b')).backend, 'stable');
  });
});
