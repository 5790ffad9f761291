// Attacks on the dashboard as an outsider: every /api route without the token or with a wrong one,
// the token's configuration, path traversal on the static files, the Host check (DNS rebinding),
// CORS, methods, whether the client listener serves any of it, and XSS: hosts, paths, forwarded-for
// values and annotation values written by clients and tenants, rendered in headless Chromium (Debian's
// chromium through playwright-core, when installed). A controller in-process against the fake API
// server, its gateway's decisions going to the dashboard, as `keepip controller --dashboard` wires it.
// Every wait is on a signal (an answer, a log line, text in the DOM).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import http from '../../src/node-http.ts';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type RunningController, startController } from '../../src/controller/controller.ts';
import { parseControllerFlags } from '../../src/controller/flags.ts';
import { controllerSources } from '../../src/dashboard/attach.ts';
import { createDecisionLog, type DecisionLog } from '../../src/gateway/decision-log.ts';
import { readDashboardToken } from '../../src/dashboard/flag.ts';
import { type RunningDashboard, startDashboard } from '../../src/dashboard/server.ts';
import { createLineSink } from '../../src/gateway/line-sink.ts';
import { type Backend, ingress, seedWeb, startBackend } from '../controller/harness.ts';
import { type FakeApiServer, startFakeApiServer } from '../fixtures/fake-apiserver.ts';

const TOKEN = 'attack-suite-token-0123456789abcdef';
const CHROMIUM = '/usr/bin/chromium';

// What clients and tenants write, meant to become markup if the page ever parsed it as HTML.
const PATH_PAYLOAD = '/p/<img/src=x/onerror=window.__xss=1>';
const XFF_PAYLOAD = '"><img src=x onerror=window.__xss=2>, 198.51.100.1';
const ANNOTATION_PAYLOAD = '<img src=x onerror=window.__xss=3>';
const LIST_PAYLOAD = '10.0.0.0/8,<svg onload=window.__xss=4>';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A request with the exact target and headers given (no URL normalization on the way). */
function request(
  port: number,
  target: string,
  headers: Record<string, string | string[]> = {},
  method = 'GET',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: target,
        method,
        headers: { host: `127.0.0.1:${port}`, ...headers },
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
          // A live stream answers and stays open: its head is enough.
          if ((res.headers['content-type'] ?? '').startsWith('text/event-stream')) res.destroy();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Raw bytes to 127.0.0.1:`port`, the whole answer once the server closes (Connection: close). */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let got = '';
    socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
  });
}

interface Stack {
  api: FakeApiServer;
  web: Backend;
  running: RunningController;
  log: DecisionLog;
  board: RunningDashboard;
  open: RunningDashboard;
  httpPort: number;
  lines: string[];
}

/** The controller (fake API server, web.example.com and a tenant's hostile Ingress) with two dashboards: with and without a token. */
async function startStack(): Promise<Stack> {
  const api = await startFakeApiServer();
  const web = await startBackend('web');
  seedWeb(api, web.port);
  api.apply({
    kind: 'ConfigMap',
    metadata: { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' },
    data: { 'use-forwarded-headers': 'true' },
  });
  api.apply(
    ingress('tenant', 'tenant.example.com', 'web', {
      annotations: {
        'nginx.ingress.kubernetes.io/proxy-body-size': ANNOTATION_PAYLOAD,
        'nginx.ingress.kubernetes.io/whitelist-source-range': LIST_PAYLOAD,
      },
    }),
  );
  const parsed = parseControllerFlags(
    [
      `--kubeconfig=${api.kubeconfig}`,
      '--bind-address=127.0.0.1',
      '--http-port=0',
      '--https-port=0',
      '--healthz-port=0',
      '--post-shutdown-grace-period=0',
      '--disable-leader-election',
      '--configmap=ingress-nginx/ingress-nginx-controller',
    ],
    { POD_NAMESPACE: 'ingress-nginx' },
  );
  if (parsed.ok !== true) throw new Error(`flags: ${JSON.stringify(parsed)}`);
  const lines: string[] = [];
  const quiet = createLineSink(new Writable({ write: (_c, _e, cb) => cb() }));
  const log = createDecisionLog();
  const running = await startController(parsed.options, {
    env: {},
    log: (line) => lines.push(line),
    backoff: { initialMs: 20, maxMs: 200 },
    debounce: { quietMs: 20, maxDelayMs: 200 },
    accessLog: quiet,
    errorLog: quiet,
    decisionLog: log,
  });
  const gateway = await running.serving();
  const sources = controllerSources(
    () => running.gateway(),
    () => running.manifests(),
  );
  const listen = { host: '127.0.0.1', port: 0 };
  const board = await startDashboard({ listen, token: TOKEN, decisions: log, sources });
  const open = await startDashboard({ listen, token: null, decisions: log, sources });
  return { api, web, running, log, board, open, httpPort: gateway.httpAddress!.port, lines };
}

/** Waits until the decision log has kept `count` records (counted after each answer). */
async function kept(log: DecisionLog, count: number): Promise<void> {
  const unsubscribe = await new Promise<() => void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the decision log kept ${log.counters.kept} of ${count}`)),
      20_000,
    );
    const check = () => {
      if (log.counters.kept < count) return;
      clearTimeout(timer);
      resolve(stop);
    };
    const stop = log.subscribe(check);
    check();
  });
  unsubscribe();
}

describe('the dashboard under attack', () => {
  let s: Stack;
  const bearer = { authorization: `Bearer ${TOKEN}` };

  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.board.close();
    await s?.open.close();
    s?.log.close();
    await s?.running.close();
    await s?.api.close();
    await s?.web.close();
  });

  const API_PATHS = [
    '/api',
    '/api/',
    '/api/info',
    '/api/decisions',
    '/api/decisions?denied=1&limit=100000',
    '/api/decisions/1',
    '/api/decisions/stream',
    '/api/stats',
    '/api/routes',
    '/api/chain?client=203.0.113.9&host=web.example.com',
    '/api/lb',
    '/api/no-such-route',
    '/api/../api/routes',
    '/assets/../api/routes',
    `/api/info?token=${TOKEN}`,
    `/api/info?access_token=${TOKEN}`,
  ];

  it('answers every /api route 401 without the token, with no data', async () => {
    for (const path of API_PATHS) {
      for (const method of ['GET', 'HEAD']) {
        const answer = await request(s.board.address.port, path, {}, method);
        assert.equal(answer.status, 401, `${method} ${path}`);
        assert.equal(answer.headers['www-authenticate'], 'Bearer realm="keepip dashboard"');
        if (method === 'GET') assert.deepEqual(Object.keys(JSON.parse(answer.body)), ['error'], path);
      }
    }
  });

  it('answers 401 to wrong tokens: a prefix, one character more, another scheme, no space, a tab, two tokens', async () => {
    const wrong = [
      '',
      'Bearer',
      'Bearer ',
      TOKEN,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN}x`,
      `Bearer x${TOKEN}`,
      `Bearer ${TOKEN.toUpperCase()}`,
      `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`,
      `Token ${TOKEN}`,
      `Bearer${TOKEN}`,
      `Bearer\t${TOKEN}`,
      `Bearer ${TOKEN} ${TOKEN}`,
      `Bearer ${TOKEN},Bearer ${TOKEN}`,
    ];
    for (const authorization of wrong) {
      for (const path of ['/api/info', '/api/routes', '/api/decisions/stream']) {
        const answer = await request(s.board.address.port, path, { authorization });
        assert.equal(answer.status, 401, `${JSON.stringify(authorization)} on ${path}`);
      }
    }
  });

  it('takes the right token (scheme in any case, spaces around it) on every route', async () => {
    for (const authorization of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER   ${TOKEN}  `]) {
      const info = await request(s.board.address.port, '/api/info', { authorization });
      assert.equal(info.status, 200, authorization);
      assert.equal(JSON.parse(info.body).mode, 'controller');
    }
    const routes = await request(s.board.address.port, '/api/routes', bearer);
    assert.equal(routes.status, 200);
    const stream = await request(s.board.address.port, '/api/decisions/stream', bearer);
    assert.equal(stream.status, 200);
    assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
  });

  it('refuses a token shorter than 16 characters; an empty or blank one means no token', async () => {
    assert.deepEqual(await readDashboardToken(undefined, { KEEPIP_DASHBOARD_TOKEN: 'short' }), {
      ok: false,
      error: 'KEEPIP_DASHBOARD_TOKEN must be at least 16 characters',
    });
    assert.deepEqual(await readDashboardToken(undefined, { KEEPIP_DASHBOARD_TOKEN: '   ' }), {
      ok: true,
      token: null,
    });
    assert.deepEqual(await readDashboardToken(undefined, { KEEPIP_DASHBOARD_TOKEN: '' }), {
      ok: true,
      token: null,
    });
    const dir = mkdtempSync(join(tmpdir(), 'keepip-token-'));
    try {
      writeFileSync(join(dir, 'empty'), '\nsecond-line-is-not-read-0123456789\n');
      const empty = await readDashboardToken(join(dir, 'empty'), {});
      assert.equal(empty.ok, false);
      assert.deepEqual(await readDashboardToken(join(dir, 'missing'), {}).then((r) => r.ok), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves no file but its own assets: traversal, encodings, templates and sources are 404', async () => {
    const targets = [
      '/assets/../package.json',
      '/assets/..%2fpackage.json',
      '/assets/..%2f..%2f..%2fpackage.json',
      '/assets/%2e%2e/%2e%2e/%2e%2e/package.json',
      '/assets/..%5c..%5c..%5cpackage.json',
      '/assets/..\\..\\..\\package.json',
      '/assets/server.ts',
      '/assets/../server.ts',
      '/assets/page.html',
      '/assets/decisions.main.html',
      '/assets/',
      '/assets',
      '//etc/passwd',
      '/assets//etc/passwd',
      '/assets/%2fetc%2fpasswd',
      '/..%2f..%2f..%2f..%2fetc%2fpasswd',
      '/assets/app.css%00.html',
      '/assets/common.js/',
      '/assets/COMMON.JS',
      '/package.json',
      '/src/dashboard/server.ts',
    ];
    for (const target of targets) {
      const answer = await request(s.board.address.port, target);
      assert.equal(answer.status, 404, target);
      assert.match(answer.body, /DASHBOARD_NOT_FOUND/, target);
      assert.doesNotMatch(answer.body, /"dependencies"|root:x:|import |\{\{main\}\}/, target);
    }
    assert.equal((await request(s.board.address.port, '/assets/common.js')).status, 200);
  });

  it('without a token answers only Host headers that are IP literals or localhost (421 otherwise)', async () => {
    const port = s.open.address.port;
    for (const host of [
      'evil.example',
      `evil.example:${port}`,
      'localhost.evil.example',
      '127.0.0.1.nip.io',
      'localhost.',
      '2130706433',
    ]) {
      const answer = await request(port, '/api/info', { host });
      assert.equal(answer.status, 421, JSON.stringify(host));
      assert.match(answer.body, /DASHBOARD_HOST_REFUSED/);
    }
    for (const head of [
      'GET /api/info HTTP/1.0\r\n\r\n',
      'GET /api/info HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n',
    ])
      assert.match(await raw(port, head), /^HTTP\/1\.1 421 /, JSON.stringify(head));
    for (const host of [`127.0.0.1:${port}`, 'localhost', `[::1]:${port}`]) {
      assert.equal((await request(port, '/api/info', { host })).status, 200, host);
    }
  });

  it('is read-only and grants no cross-origin access: no CORS headers, 405 to preflights and writes', async () => {
    const port = s.board.address.port;
    const preflight = await request(
      port,
      '/api/info',
      {
        origin: 'https://evil.example',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
      'OPTIONS',
    );
    assert.equal(preflight.status, 405);
    // Even with the token (which another site's page cannot send without the preflight above), a
    // request that says it comes from another origin is refused: DASHBOARD_CROSS_SITE.
    const cross = await request(port, '/api/info', { ...bearer, origin: 'https://evil.example' });
    assert.equal(cross.status, 403);
    assert.equal(JSON.parse(cross.body).error.code, 'DASHBOARD_CROSS_SITE');
    for (const answer of [preflight, cross]) {
      for (const name of Object.keys(answer.headers)) assert.doesNotMatch(name, /^access-control-/);
      assert.equal(answer.headers['x-frame-options'], 'DENY');
      assert.equal(answer.headers['x-content-type-options'], 'nosniff');
      assert.match(String(answer.headers['content-security-policy']), /script-src 'self'/);
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      assert.equal((await request(port, '/api/info', bearer, method)).status, 405, method);
    }
  });

  it('is not served on the listener that serves client traffic', async () => {
    for (const host of ['127.0.0.1', 'localhost', 'web.example.com', 'unknown.example']) {
      for (const path of [
        '/api/info',
        '/api/decisions',
        '/api/routes',
        '/assets/common.js',
        '/decisions',
        '/',
      ]) {
        const answer = await request(s.httpPort, path, { ...bearer, host });
        assert.doesNotMatch(
          answer.body,
          /"product"|"decisions"|"hosts"|authHeaders|keepip · /,
          `${host}${path}`,
        );
      }
    }
  });

  it('puts hosts, paths, forwarded-for values and annotation values on the page as text, never as markup (headless Chromium)', {
    skip: !existsSync(CHROMIUM) && 'no chromium at /usr/bin/chromium',
  }, async () => {
    // The requests, over sockets: raw bytes so the target is sent as written.
    const before = s.log.counters.kept;
    const sent = await raw(
      s.httpPort,
      `GET ${PATH_PAYLOAD} HTTP/1.1\r\nHost: web.example.com\r\nX-Forwarded-For: ${XFF_PAYLOAD}\r\nUser-Agent: <script>window.__xss=5</script>\r\nConnection: close\r\n\r\n`,
    );
    assert.match(sent, /^HTTP\/1\.1 200 /);
    const denied = await raw(
      s.httpPort,
      'GET /denied HTTP/1.1\r\nHost: tenant.example.com\r\nConnection: close\r\n\r\n',
    );
    assert.match(denied, /^HTTP\/1\.1 503 /);
    await kept(s.log, before + 2);

    const { chromium } = await import('playwright-core');
    const profile = mkdtempSync(join(tmpdir(), 'keepip-chromium-attack-'));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
      ],
    });
    const problems: string[] = [];
    try {
      const page = await browser.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      // Page-side code as strings: this project type-checks without the DOM library.
      const markup = (): Promise<{ xss: unknown; injected: number }> =>
        page.evaluate(`({
          xss: window.__xss ?? null,
          injected: document.querySelectorAll(
            'main img, main script, main iframe, main object, main embed, main [onerror], main [onload], main [src]',
          ).length,
        })`);
      // Polled from here with page.evaluate (DevTools' evaluate, which the page's CSP does not govern):
      // page.waitForFunction compiles its predicate in the page, and the dashboard's CSP (no
      // 'unsafe-eval') refuses that whenever the predicate is not true at once.
      const until = async (expression: string, what: string) => {
        const deadline = Date.now() + 15_000;
        while ((await page.evaluate(expression)) !== true) {
          if (Date.now() > deadline) throw new Error(`the page never showed ${what}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      };
      const shows = (text: string) =>
        until(
          `document.querySelector('main')?.textContent?.includes(${JSON.stringify(text)}) === true`,
          text,
        );

      await page.goto(`${s.board.url}#token=${TOKEN}`);
      await shows(PATH_PAYLOAD);
      await page.locator('#decisions tbody tr', { hasText: 'onerror=window.__xss=1' }).first().click();
      await shows(XFF_PAYLOAD);
      assert.deepEqual(await markup(), { xss: null, injected: 0 }, 'Decisions page and trace');

      await page.goto(new URL('/routes', s.board.url).href);
      await shows(ANNOTATION_PAYLOAD);
      await shows(LIST_PAYLOAD);
      assert.deepEqual(await markup(), { xss: null, injected: 0 }, 'Routes page');

      await page.goto(
        new URL(
          `/chain?client=203.0.113.9&host=${encodeURIComponent('<b>x</b>')}&path=${encodeURIComponent(PATH_PAYLOAD)}`,
          s.board.url,
        ).href,
      );
      await until(`(document.querySelector('main')?.textContent ?? '').length > 50`, 'the chain');
      assert.deepEqual(await markup(), { xss: null, injected: 0 }, 'Chain page');
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
