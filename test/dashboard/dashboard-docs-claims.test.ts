// docs/dashboard.md, claim by claim, against a real `keepip gateway --dashboard 0` (and one with
// KEEPIP_DASHBOARD_TOKEN), met as an outsider and an operator meet it: real sockets from distinct 127.x
// sources to the data port, raw requests to the dashboard. The claims checked here are those no other
// test exercises (the rest are test/dashboard/{api,cli,secrets,decision-log,browser.heavy}.test.ts,
// test/security/dashboard-*.test.ts, test/security/attacker-keyed-state-attack.test.ts and
// test/workers/gateway-workers.test.ts):
//
//   Flags: "A bare `PORT` means `127.0.0.1:PORT`; port 0 picks a free one (the start-up line says
//     which)"; "Start-up line: `dashboard http://127.0.0.1:9090/ (read-only)`, and a warning when it
//     listens on a non-loopback address without a token. A dashboard that cannot bind stops the command
//     (exit 1)"; the token "or set `KEEPIP_DASHBOARD_TOKEN`. Never on the command line";
//     "require `Authorization: Bearer <first line of FILE>` (at least 16 characters)".
//   Safety: "Read-only: GET and HEAD only"; "With a token any Host is accepted"; "the static pages hold
//     no data and are served without it; every `/api/…` call needs it (401 `DASHBOARD_UNAUTHORIZED`)";
//     "Strict Content-Security-Policy on every answer: `default-src 'none'; …`, plus `nosniff`,
//     `no-referrer`, `X-Frame-Options: DENY`"; "request data (hosts, paths, headers, written by
//     clients) is put in the page as text"; "Of a request, only the forwarded-for header the resolver
//     reads is kept; never Authorization or Cookie"; "the Routes, Chain and trace answers are scrubbed
//     of every value the model holds from a Secret".
//   Pages: "In `keepip gateway` the Chain and Load balancer pages are hidden (`/api/chain` and
//     `/api/lb` answer 404 `DASHBOARD_UNAVAILABLE`)"; the decision trace's client address step says
//     "whether the peer and the forwarded headers were trusted, the header's value".
//   API: `/api/info` `{ product, version, mode, configVersion, pages: { decisions, routes, chain, lb } }`;
//     `/api/decisions?…&limit=200` `{ decisions, capacity, counters: { seen, kept, sampledOut, denied,
//     otherDenied, failures } }`, oldest first; `/api/decisions/<id>` `{ summary, trace: [{ step, sees,
//     detail }] }`; "`GET /api/decisions/stream?…same filters` Server-Sent Events: the kept records that
//     match (up to 200), then each new one"; `/api/stats` `{ now, seconds, topDenied: [{ address, count,
//     error, last }], counters }`; `Decision`: `{ id, time, client, from, peer, proxySource, method,
//     host, target, route, upstream, rule, entry, detail, lists, status, denied, durationMs, behind,
//     worker }`, "`worker` is … null in one process"; errors.md: DASHBOARD_TOO_MANY_STREAMS "the live
//     stream has as many listeners as it serves (503)".
//   The denied addresses: "while the table has room every new address gets a slot and is counted
//     exactly"; "`error` … 0: the address got a free slot"; "`last`: when it was last denied (ms since
//     the epoch)"; "sorted by `count`".
//
// Found here, fixed (tests marked so): HEAD on /api/decisions/stream was a 404; the stream's backlog
// was the last 200 kept records filtered, not the kept records that match; the trace said "forwarded
// headers are believed" when use-forwarded-headers was off; the trace's Secret scrub blanked Secret
// values out of what the client wrote (an oracle for htpasswd user names); a token with a space was
// accepted at start-up and could never be sent.
// ALLOWED (below) lists the differences from a literal reading that are acceptable, each with its
// reason; a test checks each is still what is seen.
// Every wait is on a signal (a start-up line, the dashboard's counters reaching the number of requests
// sent, an event on the stream); deadlines only turn a hang into a failure.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, Server } from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { dashboardLines, parseDashboardAddress, readDashboardToken } from '../../src/dashboard/flag.ts';
import { CONTENT_SECURITY_POLICY, type RunningDashboard } from '../../src/dashboard/server.ts';
import http from '../../src/node-http.ts';
import { request } from '../fixtures/gateway/harness.ts';
import {
  basicAuthSecret,
  ingress,
  manifestDir,
  serviceWithEndpoints,
  toYaml,
} from '../fixtures/gateway/manifests.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { connectOutcome } from '../helpers/net.ts';
import { type Running, runKeepip, startKeepip } from '../helpers/process.ts';

const TOKEN = 'docs-claims-token-0123456789abcdef';
/** An htpasswd user of the basic-auth Secret: a Secret value the dashboard must never show nor confirm. */
const SECRET_USER = 'alice-ops';
/** The allowlist of locked.example: nobody here is in it, so every request there is denied (403). */
const LOCKED_ALLOW = '127.0.99.0/24';

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

/** The documented differences, each checked below (met) so that the table cannot rot. */
const ALLOWED = {
  'node-parser-400': {
    reason:
      "an unparsable request head is answered by node:http's own parser (400, Connection: close, no body) before the dashboard's handler runs: it carries no CSP, and has no body a browser could render or frame",
    met: false,
  },
  'hidden-page-shells': {
    reason:
      'in keepip gateway /chain and /lb still serve their static page (it holds no data, and carries the same headers): /api/info says pages.chain/lb false, the nav hides them, and their data (/api/chain, /api/lb) is 404 DASHBOARD_UNAVAILABLE',
    met: false,
  },
  'top-denied-ten': {
    reason:
      "/api/stats' topDenied is the chart's top 10 of the denied table (the table itself holds up to 10,000)",
    met: false,
  },
};
type AllowedKey = keyof typeof ALLOWED;
const meet = (key: AllowedKey) => {
  ALLOWED[key].met = true;
};

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request to a dashboard, exactly as given (method, target, Host), on a fresh connection. */
function dash(
  port: number,
  target: string,
  options: { method?: string; host?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: target,
        method: options.method ?? 'GET',
        headers: { host: options.host ?? `127.0.0.1:${port}`, ...options.headers },
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        // A live stream answers and stays open: its head is the answer here.
        if ((res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
          res.destroy();
          return done();
        }
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', done);
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

// biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field by each test
async function json(port: number, target: string, headers: Record<string, string> = {}): Promise<any> {
  const answer = await dash(port, target, { headers });
  assert.equal(answer.status, 200, `${target}: ${answer.body}`);
  assert.equal(answer.headers['content-type'], 'application/json; charset=utf-8', target);
  return JSON.parse(answer.body);
}

/** Raw bytes to 127.0.0.1:`port`; everything received until the server closes. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let got = '';
    socket.on('data', (chunk: Buffer) => (got += chunk.toString('latin1')));
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  });
}

interface Stream {
  status: number;
  headers: IncomingHttpHeaders;
  text(): string;
  /** Resolves true once the text so far satisfies `done`, false after `ms` (a retry trigger, never an assertion). */
  until(done: (text: string) => boolean, ms: number): Promise<boolean>;
  close(): void;
}

/** GET on the live stream; the answer's head, then its text as it comes. */
function openStream(port: number, target: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: target, agent: false }, (res) => {
      let text = '';
      const waiters = new Set<() => void>();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        for (const waiter of [...waiters]) waiter();
      });
      res.on('error', () => {});
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: () => text,
        until(done, ms) {
          return new Promise((settle) => {
            const check = () => {
              if (!done(text)) return;
              finish(true);
            };
            const timer = setTimeout(() => finish(false), ms);
            const finish = (value: boolean) => {
              clearTimeout(timer);
              waiters.delete(check);
              settle(value);
            };
            waiters.add(check);
            check();
          });
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

/** A stream that is served (200): a just-closed one may still hold its place for a moment. */
async function servedStream(port: number, target: string): Promise<Stream> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const stream = await openStream(port, target);
    if (stream.status === 200) return stream;
    stream.close();
    if (stream.status !== 503 || Date.now() > deadline) throw new Error(`stream answered ${stream.status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The decision summary and trace of the API, as the doc names their fields. */
const DECISION_KEYS = [
  'id',
  'time',
  'client',
  'from',
  'peer',
  'proxySource',
  'method',
  'host',
  'target',
  'route',
  'upstream',
  'rule',
  'entry',
  'detail',
  'lists',
  'status',
  'denied',
  'durationMs',
  'behind',
  'worker',
];
const COUNTER_KEYS = ['seen', 'kept', 'sampledOut', 'denied', 'otherDenied', 'failures'];
const sorted = (o: object) => Object.keys(o).sort();

/** Both gateways and the backend, shared by every test of the file. */
interface Suite {
  backend: Server;
  files: ReturnType<typeof manifestDir>;
  file: string;
  open: Running;
  token: Running;
  /** The dashboard (no token) and the data port of `open`. */
  board: number;
  data: number;
  /** The token gateway's dashboard. */
  tokenBoard: number;
  /** Requests sent to `open`'s data port that reach the pipeline (each is one decision seen). */
  sent: number;
}

async function startSuite(): Promise<Suite> {
  const backend = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const port = (backend.address() as net.AddressInfo).port;
  const files = manifestDir();
  const file = files.write(
    'dashboard.yaml',
    toYaml([
      ...serviceWithEndpoints({ name: 'web', ports: [port] }),
      basicAuthSecret('users', { [SECRET_USER]: 'docs-claims-password' }),
      ingress({ name: 'open', host: 'open.example', paths: [{ path: '/', service: 'web', port: 80 }] }),
      ingress({
        name: 'locked',
        host: 'locked.example',
        paths: [{ path: '/', service: 'web', port: 80 }],
        annotations: { 'whitelist-source-range': LOCKED_ALLOW },
      }),
      ingress({
        name: 'auth',
        host: 'auth.example',
        paths: [{ path: '/', service: 'web', port: 80 }],
        annotations: { 'auth-type': 'basic', 'auth-secret': 'users' },
      }),
    ]),
  );
  const args = ['gateway', '-f', file, '--http', '127.0.0.1:0', '--dashboard', '0'];
  const open = startKeepip(args);
  const token = startKeepip(args, { env: { KEEPIP_DASHBOARD_TOKEN: TOKEN } });
  const suite: Suite = { backend, files, file, open, token, board: 0, data: 0, tokenBoard: 0, sent: 0 };
  try {
    const [boardLine, dataLine, tokenLine] = await Promise.all([
      open.waitFor(/^keepip gateway: dashboard http:\/\/127\.0\.0\.1:(\d+)\/ \(read-only\)$/m),
      open.waitFor(/listening http 127\.0\.0\.1:(\d+)/),
      token.waitFor(
        /^keepip gateway: dashboard http:\/\/127\.0\.0\.1:(\d+)\/ \(read-only, bearer token required\)$/m,
      ),
      token.waitFor(/listening http 127\.0\.0\.1:(\d+)/),
    ]);
    suite.board = Number(boardLine[1]);
    suite.data = Number(dataLine[1]);
    suite.tokenBoard = Number(tokenLine[1]);
    return suite;
  } catch (error) {
    await stopSuite(suite);
    throw error;
  }
}

async function stopSuite(s: Suite): Promise<void> {
  await Promise.all([s.open.stop(), s.token.stop()]);
  const closed = new Promise<void>((resolve) => s.backend.close(() => resolve()));
  s.backend.closeAllConnections();
  await closed;
  s.files.remove();
}

describe('docs/dashboard.md against keepip gateway --dashboard 0', () => {
  let s: Suite;
  before(async () => {
    s = await startSuite();
  });
  after(async () => {
    if (s) await stopSuite(s);
  });

  /** A request to the data port from `from`; counted as one decision the dashboard must see. */
  const send = (from: string, host: string, path: string, headers: Record<string, string> = {}) => {
    s.sent += 1;
    return request(s.data, { from, host, path, headers });
  };

  /** Waits until the dashboard has seen every request sent (the gateway records after answering). */
  // biome-ignore lint/suspicious/noExplicitAny: the API's JSON
  const caughtUp = async (): Promise<any> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const body = await json(s.board, '/api/decisions?limit=1');
      if (body.counters.seen === s.sent) return body;
      assert.ok(body.counters.seen < s.sent, `seen ${body.counters.seen} > sent ${s.sent}`);
      if (Date.now() > deadline) throw new Error(`the dashboard saw ${body.counters.seen} of ${s.sent}`);
      await pause(20);
    }
  };

  /**
   * A request whose record is kept (a record over the second's budget is counted, not kept: sent again
   * under another path until one is kept, at most 40 times); its summary.
   */
  // biome-ignore lint/suspicious/noExplicitAny: the API's JSON
  const sendKept = async (from: string, host: string, path: string, headers = {}): Promise<any> => {
    for (let attempt = 0; attempt < 40; attempt += 1) {
      const target = attempt === 0 ? path : `${path}${path.includes('?') ? '&' : '?'}again=${attempt}`;
      await send(from, host, target, headers);
      await caughtUp();
      const { decisions } = await json(s.board, `/api/decisions?address=${from}&limit=1000`);
      const found = decisions.find((d: { target: string }) => d.target === target.slice(0, 2048));
      if (found) return found;
      await pause(50);
    }
    throw new Error(`no request of ${from} to ${path} was kept in 40 tries`);
  };

  test('live streams: at most 16 at once (503 DASHBOARD_TOO_MANY_STREAMS); a closed one frees its place', async () => {
    // First in the file: no other stream is open yet.
    const streams: Stream[] = [];
    try {
      for (let i = 0; i < 16; i += 1) {
        const stream = await openStream(s.board, '/api/decisions/stream');
        streams.push(stream);
        assert.equal(stream.status, 200, `stream ${i + 1}`);
      }
      const refused = await dash(s.board, '/api/decisions/stream');
      assert.equal(refused.status, 503);
      assert.equal(JSON.parse(refused.body).error.code, 'DASHBOARD_TOO_MANY_STREAMS');
      streams.shift()!.close();
      streams.push(await servedStream(s.board, '/api/decisions/stream'));
    } finally {
      for (const stream of streams) stream.close();
    }
  });

  test("another site's page cannot call the API (403 DASHBOARD_CROSS_SITE): it cannot hold the live streams", async () => {
    const port = s.board;
    const own = `http://127.0.0.1:${port}`;
    const refusedBy: Record<string, string>[] = [
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' }, // another port of this machine is the same site
      { origin: 'http://evil.example' },
      { origin: `http://127.0.0.1:${port + 1}` },
      { origin: 'null' },
    ];
    for (const headers of refusedBy)
      for (const path of ['/api/decisions', '/api/decisions/stream']) {
        const answer = await dash(port, path, { headers });
        assert.equal(answer.status, 403, `${path} ${JSON.stringify(headers)}`);
        assert.equal(JSON.parse(answer.body).error.code, 'DASHBOARD_CROSS_SITE');
      }
    // The dashboard's own pages, a typed URL and tools without the headers are served.
    const served: Record<string, string>[] = [
      { 'sec-fetch-site': 'same-origin', origin: own },
      { 'sec-fetch-site': 'none' },
      {},
    ];
    for (const headers of served)
      assert.equal((await dash(port, '/api/info', { headers })).status, 200, JSON.stringify(headers));
    // The pages hold no data: a link from another site still opens them.
    assert.equal((await dash(port, '/', { headers: { 'sec-fetch-site': 'cross-site' } })).status, 200);
    // Sixteen refused stream requests took no place: sixteen own streams still open.
    const streams: Stream[] = [];
    try {
      for (let i = 0; i < 16; i += 1) streams.push(await servedStream(port, '/api/decisions/stream'));
    } finally {
      for (const stream of streams) stream.close();
    }
  });

  test('start-up: a bare port is 127.0.0.1 and port 0 picks one, said by the line; no warning on loopback', async () => {
    assert.doesNotMatch(s.open.output(), /warning: the dashboard listens/);
    assert.doesNotMatch(s.token.output(), /warning: the dashboard listens/);
    // Bound to 127.0.0.1 itself: another loopback address of this machine does not reach it.
    assert.equal(await connectOutcome('127.3.2.1', s.board), 'ECONNREFUSED');
    assert.deepEqual(parseDashboardAddress('9090'), { ok: true, value: { host: '127.0.0.1', port: 9090 } });
    assert.equal(parseDashboardAddress('65536').ok, false);
    // The warning: a non-loopback address without a token; none on loopback, none with a token.
    const at = (address: string) =>
      ({ address: { address, port: 9090, family: '' }, url: 'http://x/' }) as unknown as RunningDashboard;
    const warns = (address: string, token: string | null) =>
      dashboardLines(at(address), token).some((l) => l.level === 'warning');
    for (const address of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2'])
      assert.equal(warns(address, null), true, address);
    for (const address of ['127.0.0.1', '127.5.6.7', '::1'])
      assert.equal(warns(address, null), false, address);
    assert.equal(warns('0.0.0.0', TOKEN), false);
  });

  test('a dashboard that cannot bind stops the command (exit 1); the token is no command-line flag (exit 2)', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const held = (holder.address() as net.AddressInfo).port;
    try {
      const [taken, flag, spaced] = await Promise.all([
        runKeepip(['gateway', '-f', s.file, '--http', '127.0.0.1:0', '--dashboard', `127.0.0.1:${held}`], {
          timeoutMs: 30_000,
        }),
        runKeepip(
          ['gateway', '-f', s.file, '--http', '127.0.0.1:0', '--dashboard', '0', '--dashboard-token', TOKEN],
          {
            timeoutMs: 30_000,
          },
        ),
        runKeepip(['gateway', '-f', s.file, '--http', '127.0.0.1:0', '--dashboard', '0'], {
          env: { KEEPIP_DASHBOARD_TOKEN: 'correct horse battery staple' },
          timeoutMs: 30_000,
        }),
      ]);
      // A token `Authorization: Bearer` cannot carry is a usage error, not a dashboard nobody can use.
      assert.equal(spaced.code, 2, spaced.stdout + spaced.stderr);
      assert.match(spaced.stderr, /KEEPIP_DASHBOARD_TOKEN must be printable ASCII without spaces/);
      assert.ok(!(spaced.stdout + spaced.stderr).includes('correct horse'), 'the token is not echoed');
      assert.equal(taken.code, 1, taken.stdout + taken.stderr);
      assert.match(taken.stderr, /dashboard: .*EADDRINUSE/);
      assert.equal(flag.code, 2, flag.stdout + flag.stderr);
      assert.match(flag.stderr, /Unknown option '--dashboard-token'/);
      assert.ok(!(flag.stdout + flag.stderr).includes(TOKEN), 'the usage error does not repeat the token');
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  test('/api/info in gateway mode; /api/chain and /api/lb are 404 DASHBOARD_UNAVAILABLE; the data port serves none of it', async () => {
    const info = await json(s.board, '/api/info');
    assert.deepEqual(sorted(info), ['configVersion', 'mode', 'pages', 'product', 'version']);
    assert.deepEqual(
      { product: info.product, mode: info.mode, configVersion: info.configVersion, pages: info.pages },
      {
        product: 'keepip',
        mode: 'gateway',
        configVersion: 1,
        pages: { decisions: true, routes: true, chain: false, lb: false },
      },
    );
    for (const target of ['/api/chain?client=127.0.0.1', '/api/lb']) {
      const answer = await dash(s.board, target);
      assert.equal(answer.status, 404, target);
      assert.equal(JSON.parse(answer.body).error.code, 'DASHBOARD_UNAVAILABLE', target);
    }
    // ALLOWED hidden-page-shells: the pages' static shells are still served, with no data in them.
    for (const page of ['/chain', '/lb']) {
      const answer = await dash(s.board, page);
      assert.equal(answer.status, 200, page);
      assert.equal(answer.headers['content-security-policy'], CONTENT_SECURITY_POLICY, page);
      assert.doesNotMatch(answer.body, /open\.example|locked\.example|127\.0\.0\.1/, page);
    }
    meet('hidden-page-shells');
    // The data port, with the dashboard's own Host: the router's answer, never the dashboard's.
    for (const path of ['/api/info', '/api/decisions', '/', '/assets/common.js']) {
      const answer = await send('127.0.3.1', `127.0.0.1:${s.board}`, path);
      assert.equal(answer.status, 404, path);
      assert.doesNotMatch(answer.body, /"product"|"decisions"|keepip · /, path);
    }
    await caughtUp();
  });

  test('every answer carries the strict CSP, nosniff, no-referrer, X-Frame-Options DENY and no-store', async () => {
    const cases: [string, string, { method?: string; host?: string }, number][] = [
      ['page', '/', {}, 200],
      ['asset', '/assets/common.js', {}, 200],
      ['API', '/api/stats', {}, 200],
      ['HEAD', '/routes', { method: 'HEAD' }, 200],
      ['bad query', '/api/decisions?limit=0', {}, 400],
      ['unknown', '/api/<script>alert(1)</script>', {}, 404],
      ['write', '/api/info', { method: 'POST' }, 405],
      ['rebinding', '/api/info', { host: 'attacker.example' }, 421],
    ];
    for (const [name, target, options, status] of cases) {
      const answer = await dash(s.board, target, options);
      assert.equal(answer.status, status, name);
      for (const [header, value] of Object.entries(SECURITY_HEADERS))
        assert.equal(answer.headers[header], value, `${name}: ${header}`);
    }
    const stream = await servedStream(s.board, '/api/decisions/stream');
    stream.close();
    for (const [header, value] of Object.entries(SECURITY_HEADERS))
      assert.equal(stream.headers[header], value, `stream: ${header}`);
    // ALLOWED node-parser-400: node:http answers an unparsable head itself, without the headers.
    const garbage = await raw(s.board, 'GARBAGE\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.doesNotMatch(garbage, /content-security-policy/i);
    assert.ok(garbage.endsWith('\r\n\r\n'), 'no body');
    meet('node-parser-400');
  });

  test('HEAD answers as GET does, without a body, on every path (the live stream included) (found here, fixed)', async () => {
    const paths = [
      '/',
      '/routes',
      '/assets/app.css',
      '/api/info',
      '/api/decisions',
      '/api/stats',
      '/api/routes',
    ];
    const wrong: string[] = [];
    for (const path of [...paths, '/api/decisions/stream']) {
      const get =
        path === '/api/decisions/stream' ? await servedStream(s.board, path) : await dash(s.board, path);
      if ('close' in get) get.close();
      const head = await dash(s.board, path, { method: 'HEAD' });
      assert.equal(head.body, '', `HEAD ${path} has no body`);
      if (head.status !== get.status || head.headers['content-type'] !== get.headers['content-type'])
        wrong.push(
          `${path}: GET ${get.status} ${get.headers['content-type']}, HEAD ${head.status} ${head.headers['content-type']}`,
        );
    }
    assert.deepEqual(wrong, []);
  });

  test('the API answers in the documented shapes: Decision, /api/decisions, the trace, /api/stats', async () => {
    const allowed = await sendKept('127.0.4.1', 'open.example', '/shape-allowed');
    const denied = await sendKept('127.0.4.2', 'locked.example', '/shape-denied');
    for (const d of [allowed, denied]) {
      assert.deepEqual(sorted(d), [...DECISION_KEYS].sort());
      assert.deepEqual(d.from, { kind: 'socket', label: 'TCP peer' });
      assert.equal(d.worker, null, 'one process: no worker slot');
      assert.equal(d.behind, null, 'keepip gateway: no L4 hop to ask');
      assert.equal(d.method, 'GET');
      assert.equal(new Date(d.time).toISOString(), d.time);
      assert.deepEqual(sorted(d.lists), ['allow', 'block', 'deny']);
    }
    assert.deepEqual([allowed.status, allowed.denied, allowed.client], [200, false, '127.0.4.1']);
    assert.deepEqual([denied.status, denied.denied, denied.rule], [403, true, 'allowlist-miss']);
    assert.deepEqual(denied.route, { ingress: 'default/locked', path: '/', pathType: 'Prefix' });
    assert.deepEqual(sorted(denied.lists.allow), ['cidrs', 'error', 'from', 'raw', 'valid']);
    assert.equal(denied.lists.allow.raw, LOCKED_ALLOW);

    const list = await json(s.board, '/api/decisions?limit=1000');
    assert.deepEqual(sorted(list), ['capacity', 'counters', 'decisions']);
    assert.equal(list.capacity, 1000);
    assert.deepEqual(sorted(list.counters), [...COUNTER_KEYS].sort());
    const ids = list.decisions.map((d: { id: number }) => d.id);
    assert.deepEqual(
      ids,
      [...ids].sort((a: number, b: number) => a - b),
      'oldest first',
    );
    const newest = await json(s.board, '/api/decisions?limit=1');
    assert.deepEqual(newest.decisions, [list.decisions.at(-1)], 'limit keeps the newest');
    for (const limit of ['0', '-1', 'abc', '1.5', ''])
      assert.equal((await dash(s.board, `/api/decisions?limit=${limit}`)).status, 400, `limit=${limit}`);

    const trace = await json(s.board, `/api/decisions/${denied.id}`);
    assert.deepEqual(sorted(trace), ['summary', 'trace']);
    assert.deepEqual(trace.summary, denied);
    assert.deepEqual(
      trace.trace.map((t: { step: string }) => t.step),
      ['connection', 'proxy-header', 'client-address', 'route', 'access', 'answer'],
    );
    for (const step of trace.trace) assert.deepEqual(sorted(step), ['detail', 'sees', 'step']);
    assert.doesNotMatch(trace.trace.at(-1).detail, /worker/, 'one process: the answer names no worker');

    const stats = await json(s.board, '/api/stats');
    assert.deepEqual(sorted(stats), ['counters', 'now', 'seconds', 'topDenied']);
    assert.ok(Math.abs(stats.now - Date.now() / 1000) < 60, 'now is in seconds');
    const mine = stats.topDenied.find((t: { address: string }) => t.address === '127.0.4.2');
    assert.deepEqual(sorted(mine), ['address', 'count', 'error', 'last']);
    assert.ok(Math.abs(mine.last - Date.parse(denied.time)) < 60_000, 'last is ms since the epoch');
    for (const second of stats.seconds) {
      assert.deepEqual(sorted(second), ['routes', 'second']);
      for (const counts of Object.values(second.routes))
        assert.deepEqual(sorted(counts as object), ['denials', 'requests']);
    }
  });

  test('client-written strings: a forged X-Forwarded-For is not the client; only it is kept, bounded; target cut at 2,048', async () => {
    const forged = `127.0.99.7, "><img src=x onerror=alert(1)>${'9'.repeat(700)}`;
    const target = `/x/<script>alert(2)</script>?${'q'.repeat(3000)}`;
    const markers = {
      'user-agent': 'ua-marker-<script>alert(3)</script>',
      cookie: 'session=cookie-marker-5521',
      authorization: 'Bearer authorization-marker-7731',
      'x-forwarded-for': forged,
    };
    const record = await sendKept('127.0.6.6', 'locked.example', target, markers);
    assert.equal(record.status, 403, 'the forged address is in the allowlist, the client is not');
    assert.equal(record.client, '127.0.6.6');
    assert.equal(record.target, target.slice(0, 2048));
    const list = await dash(s.board, '/api/decisions?address=127.0.6.6');
    assert.equal(list.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(list.headers['x-content-type-options'], 'nosniff');
    const trace = await json(s.board, `/api/decisions/${record.id}`);
    const client = trace.trace.find((t: { step: string }) => t.step === 'client-address');
    assert.ok(
      client.detail.includes(`X-Forwarded-For: ${forged.slice(0, 512)}… (as sent, not used);`),
      client.detail,
    );
    const stats = await dash(s.board, '/api/stats');
    for (const [name, answer] of [
      ['list', list.body],
      ['trace', JSON.stringify(trace)],
      ['stats', stats.body],
    ] as const) {
      for (const marker of ['ua-marker', 'cookie-marker', 'authorization-marker'])
        assert.ok(!answer.includes(marker), `${name} holds ${marker}`);
    }
    const top = JSON.parse(stats.body).topDenied.map((t: { address: string }) => t.address);
    assert.ok(!top.includes('127.0.99.7'), 'the forged address is never counted as denied');

    // The Host is cut at 512 characters as the forwarded header is (it was kept whole up to the head
    // limit: 1,000 records of 7 KiB Hosts); one past the head limit is a 431, never recorded.
    const long = `${'h'.repeat(7000)}.example`;
    const hosted = await sendKept('127.0.6.7', long, '/long-host');
    assert.equal(hosted.host, `${long.slice(0, 512)}…`);
    const tooLong = await request(s.data, { from: '127.0.6.7', host: `${'h'.repeat(20_000)}.example` });
    assert.equal(tooLong.status, 431);
    await caughtUp(); // the 431 was never seen (caughtUp fails if seen > sent)
  });

  test('the trace says the forwarded headers were believed only when they were (use-forwarded-headers is off) (found here, fixed)', async () => {
    const record = await sendKept('127.0.6.8', 'locked.example', '/believed', {
      'x-forwarded-for': '127.0.99.8',
    });
    assert.equal(record.client, '127.0.6.8', 'the header was not believed');
    const trace = await json(s.board, `/api/decisions/${record.id}`);
    const client = trace.trace.find((t: { step: string }) => t.step === 'client-address');
    assert.doesNotMatch(client.detail, /forwarded headers are believed/, client.detail);
    assert.match(
      client.detail,
      /X-Forwarded-For is not read .*X-Forwarded-Host\/-Proto\/-Port are not believed/,
    );
    assert.match(client.detail, /X-Forwarded-For: 127\.0\.99\.8 \(as sent, not used\)/);
  });

  test('the trace shows what the client wrote as it wrote it; the Secret scrub is no oracle for Secret values (found here, fixed)', async () => {
    // A reader of the dashboard who can also send requests guesses htpasswd user names: the trace's
    // scrub blanks a guess that is a user of the Secret, and leaves the others.
    const target = `/probe?guess=${SECRET_USER}&other=mallory-ops`;
    const record = await sendKept('127.0.6.9', 'auth.example', target);
    assert.deepEqual([record.status, record.rule], [401, 'auth-basic']);
    assert.equal(record.target, target, '/api/decisions shows the target as sent');
    const trace = await json(s.board, `/api/decisions/${record.id}`);
    assert.equal(trace.summary.target, record.target, 'the trace shows the same record the same way');
  });

  test('denied addresses from distinct sources: each counted exactly while the table has room, the most denied first', async () => {
    const before = await caughtUp();
    const sources = Array.from({ length: 40 }, (_, i) => `127.0.7.${i + 1}`);
    await mapLimited(sources, 8, (from) => send(from, 'locked.example', '/one-off'));
    for (let i = 0; i < 6; i += 1) await send('127.0.7.200', 'locked.example', `/hammer-${i}`);
    const after = await caughtUp();
    assert.equal(after.counters.denied - before.counters.denied, 46);
    const stats = await json(s.board, '/api/stats');
    assert.equal(stats.topDenied.length, 10);
    meet('top-denied-ten');
    assert.deepEqual(
      { ...stats.topDenied[0], last: 0 },
      { address: '127.0.7.200', count: 6, error: 0, last: 0 },
      'the table has room: exact, error 0',
    );
    for (const t of stats.topDenied) assert.equal(t.error, 0, t.address);
    const counts = stats.topDenied.map((t: { count: number }) => t.count);
    assert.deepEqual(
      counts,
      [...counts].sort((a: number, b: number) => b - a),
      'sorted by count',
    );
    let denials = 0;
    for (const second of stats.seconds) denials += second.routes['default/locked /']?.denials ?? 0;
    assert.ok(denials >= 46, `the chart counts every denial (${denials})`);
  });

  test('the stream sends the kept records that match (up to 200), however far back they are in the ring (found here, fixed)', async () => {
    const needle = '127.0.77.7';
    const first = await sendKept(needle, 'open.example', '/needle');
    // 200 newer kept records that do not match, from other sources (100 allowed + 100 denied a second).
    for (let batch = 0; ; batch += 1) {
      const { decisions } = await json(s.board, '/api/decisions?limit=1');
      if (decisions[0].id - first.id >= 200) break;
      assert.ok(batch < 30, `only ${decisions[0].id - first.id} records kept after the needle`);
      const items = Array.from({ length: 100 }, (_, i) => i);
      await mapLimited(items, 8, (i) =>
        send(
          `127.0.78.${1 + (i % 50)}`,
          i % 2 === 0 ? 'open.example' : 'locked.example',
          `/fill-${batch}-${i}`,
        ),
      );
      await caughtUp();
    }
    const ring = await json(s.board, `/api/decisions?address=${needle}`);
    assert.deepEqual(
      ring.decisions.map((d: { id: number }) => d.id),
      [first.id],
      'the ring still holds the one record that matches',
    );
    const stream = await servedStream(s.board, `/api/decisions/stream?address=${needle}`);
    try {
      // A new matching record as the positive signal: the backlog is written before any new one.
      let arrived = false;
      for (let i = 0; i < 40 && !arrived; i += 1) {
        await send(needle, 'open.example', `/after-${i}`);
        arrived = await stream.until((text) => text.includes('"target":"/after-'), 500);
      }
      assert.ok(arrived, 'a new matching record reached the stream');
      const backlog = stream.text().split('"target":"/after-')[0]!;
      assert.ok(
        backlog.includes(`"target":${JSON.stringify(first.target)}`),
        'the kept record that matches came first',
      );
    } finally {
      stream.close();
    }
    await caughtUp();
  });

  test('with KEEPIP_DASHBOARD_TOKEN: pages without it, every /api call with it, any Host with it', async () => {
    const port = s.tokenBoard;
    const bare = await dash(port, '/api/info');
    assert.equal(bare.status, 401);
    assert.equal(JSON.parse(bare.body).error.code, 'DASHBOARD_UNAUTHORIZED');
    assert.equal(bare.headers['www-authenticate'], 'Bearer realm="keepip dashboard"');
    for (const page of ['/', '/routes', '/assets/decisions.js']) {
      const answer = await dash(port, page);
      assert.equal(answer.status, 200, page);
      assert.doesNotMatch(
        answer.body,
        /open\.example|locked\.example|alice-ops|127\.0\.0\.1/,
        `${page} holds no data`,
      );
    }
    const bearer = { authorization: `Bearer ${TOKEN}` };
    assert.equal((await json(port, '/api/info', bearer)).mode, 'gateway');
    // With a token a name is fine (a rebinding page cannot know the token); without it, still 401.
    assert.equal((await dash(port, '/api/info', { host: 'dash.example', headers: bearer })).status, 200);
    assert.equal((await dash(port, '/api/info', { host: 'dash.example' })).status, 401);
    assert.equal(
      (await dash(port, '/api/info', { headers: { authorization: `Bearer ${TOKEN.slice(1)}` } })).status,
      401,
    );
  });

  test('a token the header cannot carry (a space, a control byte) is refused at start-up, not locked out later (found here, fixed)', async () => {
    // It was accepted, and `Authorization: Bearer correct horse battery staple` never matched it.
    for (const phrase of [
      'correct horse battery staple',
      'sixteen-chars-and\ttab',
      'non-ascii-token-\u00e9\u00e9\u00e9',
    ]) {
      const read = await readDashboardToken(undefined, { KEEPIP_DASHBOARD_TOKEN: phrase });
      assert.equal(read.ok, false, phrase);
      if (!read.ok)
        assert.match(read.error, /^KEEPIP_DASHBOARD_TOKEN must be printable ASCII without spaces/);
    }
  });

  test('every ALLOWED difference is still what is seen', () => {
    const unmet = Object.entries(ALLOWED)
      .filter(([, entry]) => !entry.met)
      .map(([key]) => key);
    assert.deepEqual(unmet, []);
  });
});
