// A real browser through keepip: CORS, cookies, HSTS and redirects as Chromium enforces them. Debian's
// chromium, headless, driven by playwright-core, in front of an in-process gateway (real listeners on
// 127.0.0.1, port 0) and one small node backend. `--host-resolver-rules` maps each test name's ports 80
// and 443 to the gateway's two listeners, so the browser sees `http://app.test/` and `https://app.test/`
// as a user would (Origin, Host and redirect Locations without a port). The TLS certificate is signed by
// a test CA (test/helpers/pki.ts) and its key is trusted by `--ignore-certificate-errors-spki-list`
// (the connection then counts as valid: HSTS and Secure cookies apply). Each group has its own browser
// context (its own cookies, HSTS state and preflight cache); the cookie group uses the persistent profile,
// whose preference allows third-party cookies (this Chromium blocks them by default, which would hide
// what SameSite decides). Heavy: it starts a browser.
//
// The claims checked (docs/ingress-nginx-compat.md, release 1.15 of ingress-nginx as reference):
// - enable-cors: "a request whose Origin is allowed gets Access-Control-Allow-Origin (the Origin, or `*`),
//   -Allow-Credentials, -Allow-Methods, -Allow-Headers, -Expose-Headers and -Max-Age on its response, the
//   gateway's own answers included, replacing the backend's; such a preflight (OPTIONS) is answered 204 by
//   the gateway ... Other requests, and preflights from other origins, go on unchanged".
// - cors-allow-origin: "`*` (default), or comma-separated `scheme://host[:port]` (one `*.` label
//   wildcard) ... matched case-insensitively and whole".
// - cors-allow-credentials, cors-max-age: "Access-Control-Allow-Credentials `true` (absent when false)
//   and Access-Control-Max-Age"; cors-allow-methods / -headers / -expose-headers as written.
// - custom-headers: "its keys and values are response headers of the Ingress's locations ... replacing
//   the backend's"; "keepip sends add-headers, then custom-headers, then the CORS headers".
// - session-cookie-*: "the cookie's name, Path, Domain, Expires (now + seconds ...) and Max-Age";
//   "Secure when `true` or when the request came over TLS; SameSite as written"; Path default "the
//   location's path".
// - hsts*: "`Strict-Transport-Security: max-age=…[; includeSubDomains][; preload]` on every answer to an
//   HTTPS request" (defaults true, true, 31536000).
// - ssl-redirect: "The Location is `https://<host without port><request_uri>`", code http-redirect-code
//   (308), which a browser follows keeping the method and body.
// - app-root: "`/` answers 302 to `$scheme://$http_host` and it"; permanent-redirect: "every request
//   ... is answered `<code>` with `Location: <url>`, before ssl-redirect".
// - auth-signin: "a final 401 is a 302 to `auth-signin?rd=$pass_access_scheme://$http_host$escaped_request_uri`".
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page, type Response } from 'playwright-core';
import http from '../../src/node-http.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { CHROMIUM_ARGS } from '../helpers/chromium.ts';
import { makePki } from '../helpers/pki.ts';
import { requireBinary } from '../helpers/process.ts';

const PAGE_HOSTS = ['app.test', 'sub.app.test', 'evil.test', 'shop.test', 'form.test', 'old.test'] as const;
const API = 'https://api.test';
const APP = 'https://app.test';
const TLS_NAMES = ['app.test', 'sub.app.test', 'api.test', 'evil.test', 'shop.test'];
const WAIT_MS = 20_000;

/**
 * Differences from what a reader of the docs might expect that are acceptable, each with its reason;
 * every one is checked below to be still what the browser sees (so this table cannot rot).
 */
const ALLOWED = {
  wildcardWithCredentials:
    'cors-allow-origin `*` with the default cors-allow-credentials true sends `Access-Control-Allow-Origin: *` ' +
    "with `Access-Control-Allow-Credentials: true`, as ingress-nginx's template; the browser then refuses every " +
    'credentialed request (a narrower grant than written, never a wider one), and plain requests are readable',
  backendCorsForOtherOrigins:
    "an Origin outside cors-allow-origin gets the backend's own Access-Control-* headers unchanged (docs: 'Other " +
    "requests ... go on unchanged', as nginx's `if` block): the backend's policy, not the Ingress's, decides there",
  sameSiteNoneOverHttp:
    'session-cookie-samesite None on a plain-HTTP answer without session-cookie-secure is sent without Secure ' +
    '(docs: Secure when true or over TLS; ingress-nginx writes the same), and Chromium drops such a cookie',
} as const;

interface Seen {
  method: string;
  host: string;
  url: string;
  cookie: string;
  origin: string;
  custom: string;
  body: string;
}

/** The page's script, served through keepip: fetch() and XMLHttpRequest as a web app calls them. */
const APP_JS = `
window.call = async (url, init) => {
  try {
    const r = await fetch(url, init);
    const headers = {};
    r.headers.forEach((v, k) => { headers[k] = v; });
    return { status: r.status, headers, body: await r.text() };
  } catch (e) {
    return { error: e.name + ': ' + e.message };
  }
};
window.xhr = (method, url, withCredentials, headers) => new Promise((resolve) => {
  const x = new XMLHttpRequest();
  x.open(method, url);
  x.withCredentials = withCredentials;
  for (const [k, v] of Object.entries(headers || {})) x.setRequestHeader(k, v);
  x.onload = () => resolve({ status: x.status, headers: x.getAllResponseHeaders(), body: x.responseText });
  x.onerror = () => resolve({ error: 'XHR error', status: x.status });
  x.send();
});
window.link = (href) => {
  const a = document.createElement('a');
  a.href = href;
  a.id = 'go';
  a.textContent = 'go';
  document.body.append(a);
};
window.postForm = (action, name, value) => {
  const form = document.createElement('form');
  form.method = 'POST';
  form.action = action;
  const input = document.createElement('input');
  input.name = name;
  input.value = value;
  form.append(input);
  document.body.append(form);
  form.submit();
};
`;

/** What app.js puts on the page's global object. */
interface PageApi {
  call(url: string, init: Init): Promise<CallResult>;
  xhr(
    method: string,
    url: string,
    withCredentials: boolean,
    headers: Record<string, string>,
  ): Promise<XhrResult>;
  link(href: string): void;
  postForm(action: string, name: string, value: string): void;
}

interface Init {
  method?: string;
  credentials?: 'include' | 'omit' | 'same-origin';
  headers?: Record<string, string>;
  body?: string;
}

type XhrResult = { status: number; headers: string; body: string } | { error: string; status: number };

const PAGE = (title: string) =>
  `<!doctype html><html><head><title>${title}</title><link rel="icon" href="data:,"><script src="/app/app.js"></script></head><body><p>${title}</p></body></html>`;

const SIGNIN = `<!doctype html><html><head><title>signin</title><script>
document.cookie = 'session=ok; Path=/; Secure; SameSite=Lax';
location.replace(new URLSearchParams(location.search).get('rd'));
</script></head><body>signing in</body></html>`;

/** The one backend: pages for the page hosts, a JSON API for api.test, the auth service for auth-url. */
function startBackend(): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      const url = req.url ?? '/';
      const cookie = req.headers.cookie ?? '';
      seen.push({
        method: req.method ?? '',
        host,
        url,
        cookie,
        origin: String(req.headers.origin ?? ''),
        custom: String(req.headers['x-custom'] ?? ''),
        body: Buffer.concat(chunks).toString('utf8'),
      });
      if (url.startsWith('/__auth')) {
        res.writeHead(/(^|;\s*)session=ok(;|$)/.test(cookie) ? 200 : 401).end();
        return;
      }
      if (host === 'api.test') {
        if (req.method === 'OPTIONS') {
          res.writeHead(204).end(); // the backend's own preflight answer: no CORS headers
          return;
        }
        const headers: Record<string, string> = {
          'content-type': 'application/json',
          'x-exposed': 'from-backend',
          'x-hidden': 'hidden',
          'x-custom-response': 'from-backend',
          'cache-control': 'no-store',
        };
        if (url.includes('backend-acao')) {
          headers['access-control-allow-origin'] = 'https://evil.test';
          headers['access-control-allow-credentials'] = 'true';
        }
        res.writeHead(200, headers).end(JSON.stringify({ method: req.method, url, cookie }));
        return;
      }
      if (url === '/app/app.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(APP_JS);
        return;
      }
      if (url.startsWith('/signin')) {
        res.writeHead(200, { 'content-type': 'text/html' }).end(SIGNIN);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' });
      res.end(PAGE(`${req.method} ${host}${url}`));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : 0, seen });
    });
  });
}

/** sha256 of the certificate's SubjectPublicKeyInfo, base64: what --ignore-certificate-errors-spki-list takes. */
function spkiHash(certPem: string): string {
  const der = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

type CallResult =
  | { status: number; headers: Record<string, string>; body: string; error?: undefined }
  | { error: string; status?: undefined; headers?: undefined; body?: undefined };

/** fetch() in the page (window.call from app.js). */
function call(page: Page, url: string, init: Init = {}): Promise<CallResult> {
  return page.evaluate(([u, i]) => (globalThis as unknown as PageApi).call(u, i), [url, init] as const);
}

function assertBlocked(result: CallResult, what: string): void {
  assert.equal(result.status, undefined, `${what}: the page read status ${result.status}`);
  assert.match(result.error ?? '', /^TypeError: Failed to fetch/, what);
}

function assertReadable(
  result: CallResult,
  what: string,
): { status: number; headers: Record<string, string> } {
  assert.equal(result.error, undefined, `${what}: ${result.error}`);
  assert.equal(result.status, 200, what);
  return { status: result.status ?? 0, headers: result.headers ?? {} };
}

/** The Access-Control-Allow-Origin and -Credentials fields as received, each line apart (a duplicate shows). */
async function corsFields(response: Response): Promise<Array<[string, string]>> {
  return (await response.headersArray())
    .map(({ name, value }): [string, string] => [name.toLowerCase(), value])
    .filter(([name]) => name === 'access-control-allow-origin' || name === 'access-control-allow-credentials')
    .sort();
}

/** The redirect chain of a navigation, first answer first: [status, url] of each. */
async function chain(response: Response | null): Promise<Array<[number, string]>> {
  assert.ok(response, 'the navigation has a response');
  const out: Array<[number, string]> = [];
  let request = response.request().redirectedFrom();
  while (request !== null) {
    const r = await request.response();
    out.unshift([r?.status() ?? 0, request.url()]);
    request = request.redirectedFrom();
  }
  out.push([response.status(), response.url()]);
  return out;
}

describe('a real browser (chromium) through keepip: CORS, cookies, HSTS, redirects', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let gw: TestGateway;
  let browser: Browser;
  let persistent: BrowserContext;
  let profile: string;
  const contexts: BrowserContext[] = [];

  /** Access-log lines: `<scheme> <host> "<request>" <status> "<origin>"`. */
  const logged = (pattern: RegExp) => gw.access.lines.filter((line) => pattern.test(line));
  const seenAt = (path: string) => backend.seen.filter((s) => s.url === path);
  /** Waits (bounded) until `count` access-log lines match: each line is written when its answer ends. */
  async function loggedCount(pattern: RegExp, count: number): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (logged(pattern).length < count) {
      assert.ok(Date.now() < deadline, `${count} lines matching ${pattern}:\n${gw.access.lines.join('\n')}`);
      await gw.access.untilCount(gw.access.lines.length + 1, deadline - Date.now());
    }
  }

  /** A fresh incognito-like context (its own cookies, HSTS state and preflight cache). */
  async function newContext(): Promise<BrowserContext> {
    const context = await browser.newContext();
    context.setDefaultTimeout(WAIT_MS);
    contexts.push(context);
    return context;
  }

  before(async () => {
    const executablePath = requireBinary('chromium');
    const pki = await makePki({
      certificates: [
        { name: 'ca', subject: '/CN=keepip browser test CA' },
        {
          name: 'leaf',
          issuer: 'ca',
          subject: '/CN=app.test',
          extensions:
            `subjectAltName=${TLS_NAMES.map((n) => `DNS:${n}`).join(',')}\n` +
            'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
        },
      ],
    });
    backend = await startBackend();
    const svc = (name: string) => serviceWithEndpoints({ name, ports: [backend.port] });
    const configMap = (name: string, data: Record<string, string>): K8sObject => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: 'default' },
      data,
    });
    const page = (name: string, host: string, tls: boolean, annotations: Record<string, string> = {}) =>
      ingress({
        name,
        host,
        annotations,
        ...(tls ? { tlsSecret: 'tls' } : {}),
        paths: [{ path: '/', service: 'web', port: 80 }],
      });
    const api = (name: string, path: string, annotations: Record<string, string>, service = 'api') =>
      ingress({
        name,
        host: 'api.test',
        tlsSecret: 'tls',
        annotations: { 'enable-cors': 'true', ...annotations },
        paths: [{ path, service, port: 80 }],
      });
    const fromApp = { 'cors-allow-origin': APP, 'cors-allow-headers': 'Content-Type, X-Custom' };
    const sticky = (name: string, sameSite: string, more: Record<string, string> = {}) => ({
      ...fromApp,
      affinity: 'cookie',
      'session-cookie-name': name,
      'session-cookie-samesite': sameSite,
      ...more,
    });
    const objects: K8sObject[] = [
      controllerConfigMap({
        'log-format-upstream': '$scheme $host "$request" $status "$http_origin"',
        'global-allowed-response-headers': 'X-Custom-Response',
      }),
      tlsSecret('tls', pki.chains.leaf, pki.certs.leaf.key),
      configMap('api-custom', { 'X-Custom-Response': 'from-custom-headers' }),
      ...['web', 'api', 'svc-none', 'svc-lax', 'svc-strict', 'svc-pathed', 'svc-plain'].flatMap(svc),
      page('app', 'app.test', true, { 'app-root': '/app/index.html' }),
      page('sub', 'sub.app.test', true),
      page('evil', 'evil.test', true),
      page('shop', 'shop.test', true),
      page('form', 'form.test', false),
      page('old', 'old.test', false, { 'permanent-redirect': `${APP}/app/moved` }),
      ingress({
        name: 'private',
        host: 'app.test',
        tlsSecret: 'tls',
        annotations: {
          'auth-url': `http://127.0.0.1:${backend.port}/__auth`,
          'auth-signin': 'https://$host/signin',
        },
        paths: [{ path: '/private', service: 'web', port: 80 }],
      }),
      api('api-list', '/list', {
        'cors-allow-origin': `${APP}, https://*.app.test`,
        'cors-allow-credentials': 'true',
        'cors-allow-headers': 'Content-Type, X-Custom',
        'cors-allow-methods': 'GET, PUT, POST',
        'cors-expose-headers': 'X-Exposed, X-Custom-Response',
        'cors-max-age': '600',
        'custom-headers': 'default/api-custom',
      }),
      api('api-nocred', '/nocred', { ...fromApp, 'cors-allow-credentials': 'false' }),
      api('api-noheader', '/noheader', { 'cors-allow-origin': APP }),
      api('api-methods', '/methods', { ...fromApp, 'cors-allow-methods': 'GET, POST' }),
      api('api-wild', '/wild', {}),
      api('api-maxage0', '/maxage0', { ...fromApp, 'cors-max-age': '0' }),
      api('c-none', '/c/none', sticky('SNONE', 'None', { 'session-cookie-secure': 'true' }), 'svc-none'),
      api(
        'c-lax',
        '/c/lax',
        sticky('SLAX', 'Lax', { 'session-cookie-expires': '3600', 'session-cookie-max-age': '3600' }),
        'svc-lax',
      ),
      api('c-strict', '/c/strict', sticky('SSTRICT', 'Strict'), 'svc-strict'),
      api(
        'c-pathed',
        '/c/pathed',
        sticky('SPATH', 'Lax', { 'session-cookie-path': '/c/pathed/in' }),
        'svc-pathed',
      ),
      ingress({
        name: 'plain-none',
        host: 'form.test',
        annotations: {
          affinity: 'cookie',
          'session-cookie-name': 'SPLAIN',
          'session-cookie-samesite': 'None',
        },
        paths: [{ path: '/c/plain', service: 'svc-plain', port: 80 }],
      }),
    ];
    const topology = topologyOf(objects);
    const problems = topology.issues.filter((i) => i.severity === 'error' || i.severity === 'warning');
    assert.deepEqual(problems, [], 'the manifests load without warnings');
    gw = await startTestGateway(topology);
    const rules = [...PAGE_HOSTS, 'api.test'].flatMap((h) => [
      `MAP ${h}:80 127.0.0.1:${gw.httpPort}`,
      `MAP ${h}:443 127.0.0.1:${gw.httpsPort}`,
    ]);
    // A persistent (regular) profile: a context made by newContext is incognito-like, where Chromium
    // blocks third-party cookies by default, so the cookie group uses this one.
    profile = await mkdtemp(join(tmpdir(), 'keepip-chromium-'));
    await mkdir(join(profile, 'Default'));
    await writeFile(
      join(profile, 'Default', 'Preferences'),
      JSON.stringify({ profile: { cookie_controls_mode: 0 } }),
    );
    persistent = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: [
        ...CHROMIUM_ARGS,
        `--host-resolver-rules=${rules.join(', ')}`,
        `--ignore-certificate-errors-spki-list=${spkiHash(pki.certs.leaf.cert)}`,
      ],
    });
    persistent.setDefaultTimeout(WAIT_MS);
    const owner = persistent.browser();
    assert.ok(owner, 'the browser of the persistent context');
    browser = owner;
  });

  after(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await persistent?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await gw?.close();
    await new Promise((resolve) => backend?.server.close(resolve));
  });

  describe('CORS, from pages on https://app.test (allowed) and https://evil.test (not)', () => {
    let context: BrowserContext;
    let app: Page;
    let evil: Page;

    before(async () => {
      context = await newContext();
      app = await context.newPage();
      await app.goto(`${APP}/app/index.html`);
      evil = await context.newPage();
      await evil.goto('https://evil.test/app/index.html');
    });

    test('a simple GET: readable from the allowed origin, a TypeError from another (fetch and XHR)', async () => {
      const ok = assertReadable(await call(app, `${API}/list/simple`), 'app.test GET');
      assert.equal(ok.headers['x-exposed'], 'from-backend');
      const xhr = await app.evaluate(
        (u) => (globalThis as unknown as PageApi).xhr('GET', u, true, {}),
        `${API}/list/xhr`,
      );
      assert.equal(xhr.status, 200, 'XHR withCredentials from app.test');
      assert.ok('headers' in xhr);
      assert.match(xhr.headers, /^x-exposed: from-backend\r?$/m);
      assert.doesNotMatch(xhr.headers, /x-hidden/);
      const refused = await evil.evaluate(
        (u) => (globalThis as unknown as PageApi).xhr('GET', u, true, {}),
        `${API}/list/xhr-evil`,
      );
      assert.deepEqual(refused, { error: 'XHR error', status: 0 }, 'XHR from evil.test');

      assertBlocked(await call(evil, `${API}/list/simple-evil`), 'evil.test GET');
      assertBlocked(await call(evil, `${API}/list/simple-evil`, { credentials: 'include' }), 'evil.test GET');
      // The request itself was made (a simple request): only reading it is refused.
      assert.equal(seenAt('/list/simple-evil').length, 2);
    });

    test('an origin the `*.` wildcard covers is readable, its Origin echoed', async () => {
      const sub = await context.newPage();
      await sub.goto('https://sub.app.test/app/index.html');
      const [response, result] = await Promise.all([
        sub.waitForResponse(`${API}/list/sub`),
        call(sub, `${API}/list/sub`, { credentials: 'include' }),
      ]);
      assertReadable(result, 'sub.app.test');
      assert.deepEqual(await corsFields(response), [
        ['access-control-allow-credentials', 'true'],
        ['access-control-allow-origin', 'https://sub.app.test'],
      ]);
    });

    test('a preflighted PUT with a custom header and credentials: allowed, and the PUT arrives', async () => {
      const result = await call(app, `${API}/list/put`, {
        method: 'PUT',
        credentials: 'include',
        headers: { 'X-Custom': 'one', 'Content-Type': 'application/json' },
        body: '{"a":1}',
      });
      assertReadable(result, 'PUT from app.test');
      const put = seenAt('/list/put').filter((s) => s.method === 'PUT');
      assert.equal(put.length, 1);
      assert.equal(put[0]!.custom, 'one');
      assert.equal(put[0]!.body, '{"a":1}');
      // The preflight was the gateway's own 204, the backend never saw it.
      assert.equal(seenAt('/list/put').filter((s) => s.method === 'OPTIONS').length, 0);
      await loggedCount(/"OPTIONS \/list\/put HTTP\/2\.0" 204 "https:\/\/app\.test"/, 1);
      assert.equal(logged(/"OPTIONS \/list\/put HTTP/).length, 1);
    });

    test('the same PUT from another origin: its preflight goes to the backend and the PUT never leaves', async () => {
      const result = await call(evil, `${API}/list/put-evil`, {
        method: 'PUT',
        credentials: 'include',
        headers: { 'X-Custom': 'one' },
        body: 'x',
      });
      assertBlocked(result, 'PUT from evil.test');
      assert.deepEqual(
        seenAt('/list/put-evil').map((s) => s.method),
        ['OPTIONS'],
        'only the preflight reached the backend (fetch settles after any PUT would have been sent)',
      );
    });

    test('cors-allow-credentials false: a credentialed PUT is refused, an uncredentialed one allowed', async () => {
      const init = { method: 'PUT', headers: { 'X-Custom': 'c' }, body: 'x' };
      assertBlocked(await call(app, `${API}/nocred/a`, { ...init, credentials: 'include' }), 'credentials');
      assert.deepEqual(
        seenAt('/nocred/a').map((s) => s.method),
        [],
      );
      assertReadable(await call(app, `${API}/nocred/b`, { ...init, credentials: 'omit' }), 'no credentials');
      assert.deepEqual(
        seenAt('/nocred/b').map((s) => s.method),
        ['PUT'],
      );
    });

    test('cors-allow-headers without the header refuses it; with the default list Content-Type passes', async () => {
      const init = { method: 'PUT', body: '{}' };
      assertBlocked(
        await call(app, `${API}/noheader/a`, { ...init, headers: { 'X-Custom': 'n' } }),
        'X-Custom',
      );
      assert.deepEqual(seenAt('/noheader/a'), []);
      assertReadable(
        await call(app, `${API}/noheader/b`, { ...init, headers: { 'Content-Type': 'application/json' } }),
        'Content-Type is in the default list',
      );
    });

    test('cors-allow-methods GET, POST: a PUT is refused, a POST with X-Custom allowed', async () => {
      const headers = { 'X-Custom': 'm' };
      assertBlocked(await call(app, `${API}/methods/a`, { method: 'PUT', headers, body: 'x' }), 'PUT');
      assert.deepEqual(seenAt('/methods/a'), []);
      assertReadable(await call(app, `${API}/methods/b`, { method: 'POST', headers, body: 'x' }), 'POST');
    });

    test('cors-expose-headers and custom-headers: JS reads the exposed ones (custom-headers replacing the backend), not others', async () => {
      const ok = assertReadable(await call(app, `${API}/list/expose`, { credentials: 'include' }), 'expose');
      assert.equal(ok.headers['x-exposed'], 'from-backend');
      assert.equal(ok.headers['x-custom-response'], 'from-custom-headers');
      assert.equal(ok.headers['x-hidden'], undefined, 'not exposed, not readable');
      assert.equal(ok.headers['content-type'], 'application/json', 'safelisted');
    });

    test("the backend's own Access-Control-* are replaced for an allowed origin (one value, readable)", async () => {
      const url = `${API}/list/backend-acao`;
      const [replaced, mine] = await Promise.all([
        app.waitForResponse(url),
        call(app, url, { credentials: 'include' }),
      ]);
      assertReadable(mine, 'replaced');
      assert.deepEqual(await corsFields(replaced), [
        ['access-control-allow-credentials', 'true'],
        ['access-control-allow-origin', APP],
      ]);
      // ALLOWED.backendCorsForOtherOrigins: for evil.test the backend's own grant stands.
      assert.ok(ALLOWED.backendCorsForOtherOrigins);
      const [unchanged, theirs] = await Promise.all([
        evil.waitForResponse(url),
        call(evil, url, { credentials: 'include' }),
      ]);
      assertReadable(theirs, "the backend's own grant to evil.test passes unchanged");
      assert.deepEqual(await corsFields(unchanged), [
        ['access-control-allow-credentials', 'true'],
        ['access-control-allow-origin', 'https://evil.test'],
      ]);
    });

    test('cors-max-age 600: the second PUT needs no preflight; cors-max-age 0: it does', async () => {
      const init = { method: 'PUT', headers: { 'X-Custom': 'age' }, body: 'x' };
      for (let i = 0; i < 2; i++) assertReadable(await call(app, `${API}/list/cached`, init), `PUT ${i}`);
      await loggedCount(/"PUT \/list\/cached HTTP/, 2);
      assert.equal(seenAt('/list/cached').length, 2, 'two PUTs at the backend');
      assert.equal(logged(/"OPTIONS \/list\/cached HTTP/).length, 1, 'one preflight for two PUTs');

      for (let i = 0; i < 2; i++) assertReadable(await call(app, `${API}/maxage0/x`, init), `PUT ${i}`);
      await loggedCount(/"PUT \/maxage0\/x HTTP/, 2);
      assert.equal(logged(/"OPTIONS \/maxage0\/x HTTP/).length, 2, 'max-age 0: a preflight before each');
    });

    test('ALLOWED wildcardWithCredentials: `*` is readable without credentials, refused with them', async () => {
      assert.ok(ALLOWED.wildcardWithCredentials);
      // The same fields go to both (keepip's answer does not depend on the credentials mode).
      const [wild, plain] = await Promise.all([
        evil.waitForResponse(`${API}/wild/plain`),
        call(evil, `${API}/wild/plain`),
      ]);
      assertReadable(plain, '* without credentials');
      assert.deepEqual(await corsFields(wild), [
        ['access-control-allow-credentials', 'true'],
        ['access-control-allow-origin', '*'],
      ]);
      assertBlocked(await call(evil, `${API}/wild/cred`, { credentials: 'include' }), '* with credentials');
      assertBlocked(
        await call(app, `${API}/wild/put`, {
          method: 'PUT',
          credentials: 'include',
          headers: { 'X-Requested-With': 'x' },
        }),
        '* preflight with credentials',
      );
      assert.deepEqual(
        seenAt('/wild/put').map((s) => s.method),
        [],
        'no PUT after the refused preflight',
      );
    });

    test('a page over plain HTTP is another origin: http://form.test cannot read the API', async () => {
      const plain = await context.newPage();
      await plain.goto('http://form.test/app/index.html');
      assertBlocked(await call(plain, `${API}/list/from-http`, { credentials: 'include' }), 'http origin');
    });
  });

  describe('the affinity cookie: SameSite, Secure, Path as Chromium stores and sends it', () => {
    let page: Page;
    let context: BrowserContext;
    const cookieAt = (path: string) => {
      const found = seenAt(path);
      assert.equal(found.length, 1, `one request ${path}`);
      return found[0]!.cookie;
    };

    before(async () => {
      context = persistent;
      page = await context.newPage();
      for (const p of [
        '/c/none/set',
        '/c/lax/set',
        '/c/strict/set',
        '/c/pathed/in/set',
        '/list/first-party',
      ]) {
        const r = await page.goto(`${API}${p}`);
        assert.equal(r?.status(), 200, p);
      }
    });

    test('Chromium keeps each cookie with the attributes configured (none ignored)', async () => {
      const now = Date.now() / 1000;
      const stored = (await context.cookies()).filter((c) => c.domain === 'api.test');
      const jar = Object.fromEntries(stored.map((c) => [c.name, c]));
      assert.deepEqual(Object.keys(jar).sort(), ['SLAX', 'SNONE', 'SPATH', 'SSTRICT']);
      const pick = (n: string) => {
        const c = jar[n]!;
        return {
          path: c.path,
          secure: c.secure,
          httpOnly: c.httpOnly,
          sameSite: c.sameSite,
          session: c.expires === -1,
        };
      };
      assert.deepEqual(pick('SNONE'), {
        path: '/c/none',
        secure: true,
        httpOnly: true,
        sameSite: 'None',
        session: true,
      });
      assert.deepEqual(pick('SLAX'), {
        path: '/c/lax',
        secure: true,
        httpOnly: true,
        sameSite: 'Lax',
        session: false,
      });
      assert.deepEqual(pick('SSTRICT'), {
        path: '/c/strict',
        secure: true,
        httpOnly: true,
        sameSite: 'Strict',
        session: true,
      });
      assert.equal(pick('SPATH').path, '/c/pathed/in');
      assert.ok(
        Math.abs(jar.SLAX!.expires - (now + 3600)) < 120,
        `expires ${jar.SLAX!.expires} ~ now + 3600`,
      );
      assert.equal(cookieAt('/list/first-party'), '', 'no affinity cookie outside its Path');
    });

    test('HttpOnly: document.cookie never shows it', async () => {
      await page.goto(`${API}/c/none/doc`);
      // A JSON answer: no app.js there, so the expression as text.
      assert.equal(await page.evaluate('document.cookie'), '');
      assert.match(cookieAt('/c/none/doc'), /^SNONE=[0-9a-f]{32}\|[0-9a-f]{32}$/, 'but it is sent');
    });

    test('cross-site fetch from app.test: SameSite=None is sent, Lax and Strict are not', async () => {
      await page.goto(`${APP}/app/index.html`);
      for (const p of ['none', 'lax', 'strict'])
        assertReadable(await call(page, `${API}/c/${p}/xfetch`, { credentials: 'include' }), p);
      assert.match(cookieAt('/c/none/xfetch'), /^SNONE=/);
      assert.doesNotMatch(cookieAt('/c/lax/xfetch'), /SLAX=/);
      assert.doesNotMatch(cookieAt('/c/strict/xfetch'), /SSTRICT=/);
    });

    test('cross-site top-level navigation (a link on app.test): Lax is sent, Strict is not', async () => {
      for (const p of ['lax', 'strict']) {
        await page.goto(`${APP}/app/index.html`);
        const target = `${API}/c/${p}/nav`;
        await page.evaluate((href) => (globalThis as unknown as PageApi).link(href), target);
        await Promise.all([page.waitForURL(target), page.click('#go')]);
      }
      assert.match(cookieAt('/c/lax/nav'), /^SLAX=/);
      assert.doesNotMatch(cookieAt('/c/strict/nav'), /SSTRICT=/);
    });

    test('session-cookie-path: sent under its Path only', async () => {
      await page.goto(`${API}/c/pathed/in/again`);
      await page.goto(`${API}/c/pathed/out`);
      assert.match(cookieAt('/c/pathed/in/again'), /^SPATH=/);
      assert.doesNotMatch(cookieAt('/c/pathed/out'), /SPATH=/);
    });

    test('ALLOWED sameSiteNoneOverHttp: SameSite=None without Secure over plain HTTP is dropped by Chromium', async () => {
      assert.ok(ALLOWED.sameSiteNoneOverHttp);
      const r = await page.goto('http://form.test/c/plain/set');
      const set = (await r?.headerValue('set-cookie')) ?? '';
      assert.match(set, /^SPLAIN=[^;]+; Path=\/c\/plain; HttpOnly; SameSite=None$/);
      assert.deepEqual(await context.cookies('http://form.test/c/plain/'), []);
    });
  });

  describe('redirects and HSTS as Chromium follows them (one context, in this order)', () => {
    let page: Page;

    before(async () => {
      page = await (await newContext()).newPage();
    });

    test('ssl-redirect 308 for a form POST: the method and body reach the HTTPS backend', async () => {
      await page.goto('http://form.test/app/form.html');
      await page.evaluate(() =>
        (globalThis as unknown as PageApi).postForm('http://shop.test/submit/ok?x=1', 'field', 'a b&c'),
      );
      await page.waitForURL('https://shop.test/submit/ok?x=1');
      assert.deepEqual(
        seenAt('/submit/ok?x=1').map((s) => [s.method, s.host, s.body]),
        [['POST', 'shop.test', 'field=a+b%26c']],
      );
      await gw.access.waitFor(/^https shop\.test "POST \/submit\/ok\?x=1 HTTP\/2\.0" 200 "null"/);
      assert.equal(logged(/^http shop\.test "POST \/submit\/ok\?x=1 HTTP\/1\.1" 308/).length, 1);
    });

    test('app-root over HTTP: 302 keeping the scheme, then ssl-redirect; HSTS only on the HTTPS answer', async () => {
      const response = await page.goto('http://app.test/');
      assert.deepEqual(await chain(response), [
        [302, 'http://app.test/'],
        [308, 'http://app.test/app/index.html'],
        [200, 'https://app.test/app/index.html'],
      ]);
      const before308 = response!.request().redirectedFrom()!;
      for (const request of [before308, before308.redirectedFrom()!]) {
        const headers = (await request.response())!.headers();
        assert.equal(headers['strict-transport-security'], undefined, `none over HTTP: ${request.url()}`);
      }
      assert.equal(
        await response!.headerValue('strict-transport-security'),
        'max-age=31536000; includeSubDomains',
      );
    });

    test('HSTS: the browser upgrades http:// itself, nothing reaches the HTTP listener (includeSubDomains too)', async () => {
      for (const [host, path] of [
        ['app.test', '/app/hsts-2'],
        ['sub.app.test', '/app/hsts-3'],
      ] as const) {
        const response = await page.goto(`http://${host}${path}`);
        assert.deepEqual(await chain(response), [
          [307, `http://${host}${path}`],
          [200, `https://${host}${path}`],
        ]);
        const internal = await response!.request().redirectedFrom()!.response();
        assert.equal(internal!.headers()['non-authoritative-reason'], 'HSTS', 'the browser upgraded it');
        await gw.access.waitFor(new RegExp(`^https ${host.replaceAll('.', '\\.')} "GET ${path} `));
        assert.deepEqual(logged(new RegExp(`^http \\S+ "GET ${path} `)), [], 'nothing at the HTTP listener');
      }
      // A host HSTS does not cover still reaches the HTTP listener (the check above can see it).
      await page.goto('http://form.test/app/hsts-4');
      await gw.access.waitFor(/^http form\.test "GET \/app\/hsts-4 /);
    });

    test('permanent-redirect: the browser lands on the target', async () => {
      const response = await page.goto('http://old.test/some/path?q=1');
      assert.deepEqual(await chain(response), [
        [301, 'http://old.test/some/path?q=1'],
        [200, 'https://app.test/app/moved'],
      ]);
    });

    test('auth-signin: the rd= redirect lands back on the original URL, query included', async () => {
      const original = `${APP}/private/page?a=1&b=two%20words`;
      await page.goto(original);
      await page.waitForURL((u) => u.pathname === '/private/page' && u.searchParams.get('a') === '1');
      assert.equal(page.url(), original);
      const served = backend.seen.filter((s) => s.host === 'app.test' && s.url.startsWith('/private/'));
      assert.deepEqual(
        served.map((s) => [s.url, /session=ok/.test(s.cookie)]),
        [['/private/page?a=1&b=two%20words', true]],
      );
    });
  });
});
