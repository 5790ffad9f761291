// Attacks on custom error pages, the default backend, request bodies and their size limits: what a
// client can make an error backend see, error backends that loop, fail or hang, bodies over
// proxy-body-size (declared, chunked, streamed), malformed request framing, requests pipelined behind
// an answer the gateway gave before reading the body (413, 403, 401, an intercepted error), and
// backends whose answers are framed ambiguously or carry more bytes than they declare.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { framedResponses, listenTracked, openRaw, rawExchange, refusingPort } from '../helpers/net.ts';
import { startTap, type Tap } from './helpers.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body ended as its framing says (false: the connection went away mid-body). */
  complete: boolean;
}

interface Recorder {
  port: number;
  seen: Seen[];
  /** Resolves with the first request (seen or still to come) `match` accepts; rejects after 10 s. */
  waitFor(match: (s: Seen) => boolean, what: string): Promise<Seen>;
  /** Resolves once a request head for `url` has arrived (its body may still be on its way). */
  waitForHead(url: string): Promise<void>;
  close(): Promise<void>;
}

/** An HTTP backend that records every request (its body whole, or cut) and answers through `answer`. */
async function startRecorder(answer: (s: Seen, res: ServerResponse) => void): Promise<Recorder> {
  const seen: Seen[] = [];
  const heads: string[] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const waitUntil = <T>(find: () => T | undefined, what: string) =>
    new Promise<T>((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found === undefined) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no request ${what}; seen: ${heads.join(', ')}`));
      }, 10_000);
      waiters.add(check);
      check();
    });
  const server = http.createServer((req, res) => {
    heads.push(req.url ?? '');
    notify();
    // /early…: 500 at once, before the body (a backend that refuses an upload from its head).
    if (req.url?.startsWith('/early'))
      appAnswer({ method: '', url: '/500', headers: {}, body: Buffer.alloc(0), complete: false }, res);
    const chunks: Buffer[] = [];
    let ended = false;
    const record = (complete: boolean) => {
      const s: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        complete,
      };
      seen.push(s);
      notify();
      return s;
    };
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      ended = true;
      const s = record(true);
      if (!res.headersSent) answer(s, res);
    });
    req.on('close', () => {
      if (!ended) record(false);
    });
    req.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    waitFor: (match, what) => waitUntil(() => seen.find(match), what),
    waitForHead: (url) =>
      waitUntil(() => (heads.includes(url) ? true : undefined), `head for ${url}`).then(() => {}),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: ServerResponse, status: number, value: unknown, headers: OutgoingHttpHeaders = {}) {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length, ...headers });
  res.end(body);
}

/** The application: /500… answers 500 with a secret and a cookie, anything else a 200 echo. */
function appAnswer(s: Seen, res: ServerResponse): void {
  if (s.url.startsWith('/500')) {
    res.writeHead(500, { 'set-cookie': 'session=s3cr3t', 'x-secret': 's3cr3t', 'content-length': 11 });
    res.end('SECRET-BODY');
    return;
  }
  json(res, 200, { name: 'app', url: s.url, bodyBytes: s.body.length });
}

/** The raw answer of the hand-written upstream to each path. */
const RAW_ANSWERS: Record<string, string> = {
  '/clean': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nclean',
  '/longer':
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED',
  '/both':
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/negative': 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello',
  '/plus': 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello',
  '/duplicate': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello',
  '/list': 'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello',
  '/te-list': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/no-status': 'hello world\r\nContent-Length: 0\r\n\r\n',
  '/flood': `${'HTTP/1.1 100 Continue\r\n\r\n'.repeat(500)}HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`,
};

interface RawUpstream {
  port: number;
  /** Paths asked on each upstream connection, in accept order. */
  connections: string[][];
  close(): Promise<void>;
}

/** An upstream that answers each request head on a connection with RAW_ANSWERS[path], in order. */
async function startRawUpstream(): Promise<RawUpstream> {
  const connections: string[][] = [];
  const server = net.createServer((socket) => {
    const paths: string[] = [];
    connections.push(paths);
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const path = /^[A-Z]+ (\S+) /.exec(pending)?.[1] ?? '?';
        pending = pending.slice(end + 4);
        paths.push(path);
        socket.write(RAW_ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', 'latin1');
      }
    });
    socket.on('error', () => {});
  });
  const { port, close } = await listenTracked(server);
  return { port, connections, close };
}

/** The complete Content-Length-framed responses at the start of `raw`, in order. */
const answersIn = framedResponses;

/** A request that, if ever parsed from a body, reaches the app as /smuggled. */
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: errors.test\r\n\r\n';
/** The honest request pipelined after the one under test. */
const SECOND = 'GET /second HTTP/1.1\r\nHost: errors.test\r\nConnection: close\r\n\r\n';

function chunked(text: string): string {
  return `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n0\r\n\r\n`;
}

interface Peers {
  app: Recorder;
  errorPages: Recorder;
  loop: Recorder;
  slow: Recorder;
  auth: Recorder;
  raw: RawUpstream;
  tap: Tap;
  downPort: number;
}

async function startPeers(): Promise<Peers> {
  const app = await startRecorder(appAnswer);
  return {
    app,
    errorPages: await startRecorder((s, res) =>
      json(res, 200, { name: 'error-page', code: s.headers['x-code'] }),
    ),
    loop: await startRecorder((_s, res) => json(res, 500, { name: 'error-page-500' })),
    slow: await startRecorder(() => {}),
    auth: await startRecorder((_s, res) => json(res, 401, { name: 'auth' })),
    raw: await startRawUpstream(),
    tap: await startTap(app.port),
    downPort: await refusingPort(),
  };
}

function topologyFor(p: Peers) {
  const route = (host: string, service: string, annotations: Record<string, string> = {}): K8sObject =>
    ingress({ name: host.replace(/\./g, '-'), host, paths: [{ path: '/', service, port: 80 }], annotations });
  const errors = (backend: string, codes = '500') => ({
    'custom-http-errors': codes,
    'default-backend': backend,
  });
  const objects: K8sObject[] = [
    controllerConfigMap({}),
    ...serviceWithEndpoints({ name: 'app', ports: [p.app.port] }),
    ...serviceWithEndpoints({ name: 'app-tap', ports: [p.tap.port] }),
    ...serviceWithEndpoints({ name: 'error-pages', ports: [p.errorPages.port] }),
    ...serviceWithEndpoints({ name: 'error-loop', ports: [p.loop.port] }),
    ...serviceWithEndpoints({ name: 'error-slow', ports: [p.slow.port] }),
    ...serviceWithEndpoints({ name: 'error-down', ports: [p.downPort] }),
    ...serviceWithEndpoints({ name: 'raw', ports: [p.raw.port] }),
    ...serviceWithEndpoints({ name: 'gone', ports: [] }),
    route('errors.test', 'app', errors('error-pages', '500,401')),
    route('loop.test', 'app', errors('error-loop')),
    route('down.test', 'app', errors('error-down')),
    route('slow.test', 'app', { ...errors('error-slow'), 'proxy-read-timeout': '1' }),
    route('deny.test', 'app', { 'allowlist-source-range': '10.0.0.0/8' }),
    route('deny-errors.test', 'app', {
      'allowlist-source-range': '10.0.0.0/8',
      ...errors('error-pages', '403'),
    }),
    route('auth.test', 'app', { 'auth-url': `http://127.0.0.1:${p.auth.port}/check` }),
    route('limit.test', 'app', { 'proxy-body-size': '1k' }),
    route('limit-errors.test', 'app', { 'proxy-body-size': '1k', ...errors('error-pages', '413') }),
    route('early.test', 'app', { 'proxy-request-buffering': 'off', ...errors('error-pages') }),
    route('stream.test', 'app-tap', { 'proxy-body-size': '1k', 'proxy-request-buffering': 'off' }),
    route('raw.test', 'raw'),
    route('gone.test', 'gone', { 'default-backend': 'error-pages' }),
  ];
  return topologyOf(objects);
}

describe('error pages, default backends and request bodies under attack', () => {
  let p: Peers;
  let gw: TestGateway;

  before(async () => {
    p = await startPeers();
    gw = await startTestGateway(topologyFor(p));
  });

  after(async () => {
    await gw?.close();
    for (const r of [p?.app, p?.errorPages, p?.loop, p?.slow, p?.auth]) await r?.close();
    await p?.raw.close();
    await p?.tap.close();
  });

  /** One connection: `payload` in one write, everything the gateway sends until it closes. */
  const send = async (payload: string) => {
    const reply = await rawExchange({ host: '127.0.0.1', port: gw.httpPort, payload });
    assert.ok(reply.closedByServer, `the gateway did not close: ${reply.received.toString('latin1')}`);
    return { raw: reply.received, answers: answersIn(reply.received) };
  };
  const get = (host: string, path: string, extra = '') =>
    send(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`);

  test('custom-http-errors: names the gateway sets are not taken from the client (X-Format without Accept)', async () => {
    const { answers } = await get(
      'errors.test',
      '/500-forge',
      'X-Format: text/forged\r\nX-Code: 200\r\nX-Namespace: kube-system\r\nX-Ingress-Name: admin\r\n' +
        'X-Service-Name: admin\r\nX-Service-Port: 9999\r\nX-Original-URI: /admin\r\n',
    );
    assert.equal(answers[0]?.status, 200);
    const seen = await p.errorPages.waitFor(
      (s) => s.headers['x-original-uri'] === '/500-forge',
      'for /500-forge',
    );
    assert.equal(seen.headers['x-code'], '500');
    assert.equal(seen.headers['x-namespace'], 'default');
    assert.equal(seen.headers['x-ingress-name'], 'errors-test');
    assert.equal(seen.headers['x-service-name'], 'app');
    assert.equal(seen.headers['x-service-port'], '80');
    // nginx: `proxy_set_header X-Format $http_accept` with no Accept sends no X-Format, and a header
    // named by proxy_set_header is never copied from the client.
    assert.equal(seen.headers['x-format'], undefined, 'the client-forged X-Format reached the error backend');
  });

  test('default-backend of a Service without endpoints: the client cannot set what the gateway sends empty', async () => {
    const { answers } = await get(
      'gone.test',
      '/gone-forge',
      'X-Format: text/forged\r\nX-Code: 200\r\nX-Service-Port: 9999\r\nX-Request-Marker: gone\r\n',
    );
    assert.equal(answers[0]?.status, 200);
    const seen = await p.errorPages.waitFor(
      (s) => s.headers['x-request-marker'] === 'gone',
      'for /gone-forge',
    );
    assert.equal(seen.headers['x-code'], '503');
    assert.equal(seen.headers['x-format'], undefined);
    assert.equal(seen.headers['x-service-name'], 'gone');
    assert.equal(seen.headers['x-service-port'], '80');
  });

  test('custom-http-errors: a POST body goes to the backend once, never to the error backend; after an intercepted 500 the connection closes, as nginx', async () => {
    const body = 'a=secret-form-body';
    const { answers } = await send(
      `POST /500-post HTTP/1.1\r\nHost: errors.test\r\nAuthorization: Bearer t0k3n\r\nCookie: sid=c00kie\r\n` +
        `Content-Length: ${body.length}\r\n\r\n${body}${SECOND}`,
    );
    // nginx clears keep-alive for a 500 before error_page runs: the pipelined request is never read.
    assert.deepEqual(
      answers.map((a) => a.status),
      [200],
    );
    assert.match(answers[0]!.body, /"error-page"/);
    assert.match(answers[0]!.head, /\r\nconnection: close(\r\n|$)/i);
    assert.doesNotMatch(answers[0]!.head + answers[0]!.body, /s3cr3t|SECRET-BODY/);
    const original = await p.app.waitFor((s) => s.url === '/500-post', 'for /500-post');
    assert.equal(original.body.toString(), body);
    const seen = await p.errorPages.waitFor(
      (s) => s.headers['x-original-uri'] === '/500-post',
      'for /500-post',
    );
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/');
    assert.equal(seen.body.length, 0);
    assert.ok(['0', undefined].includes(seen.headers['content-length']), 'no declared body');
    assert.equal(seen.headers['transfer-encoding'], undefined);
    // As nginx (error_page to a named location keeps the request headers): the error backend gets the
    // client's credentials too. Documented, not a keepip weakness.
    assert.equal(seen.headers.authorization, 'Bearer t0k3n');
    assert.equal(seen.headers.cookie, 'sid=c00kie');
  });

  test('custom-http-errors: an error backend answering a listed status is passed on once (no loop)', async () => {
    const before = p.loop.seen.length;
    const { answers } = await get('loop.test', '/500-loop');
    assert.equal(answers.length, 1);
    assert.equal(answers[0]!.status, 500);
    assert.match(answers[0]!.body, /error-page-500/);
    assert.doesNotMatch(answers[0]!.head + answers[0]!.body, /s3cr3t|SECRET-BODY/);
    assert.equal(p.loop.seen.length - before, 1, 'the error backend was asked once');
  });

  test("custom-http-errors: an error backend that is down gives the gateway's 502, never the original answer", async () => {
    const { answers } = await get('down.test', '/500-down');
    assert.equal(answers[0]?.status, 502);
    assert.doesNotMatch(answers[0]!.head + answers[0]!.body, /s3cr3t|SECRET-BODY/);
    await gw.errors.waitFor(/connect\(\) failed .*"GET \/500-down HTTP\/1\.1"/);
  });

  test('custom-http-errors: an error backend that never answers gives 504 after proxy-read-timeout', async () => {
    const started = performance.now();
    const { answers } = await get('slow.test', '/500-slow');
    assert.equal(answers[0]?.status, 504);
    assert.doesNotMatch(answers[0]!.head + answers[0]!.body, /s3cr3t|SECRET-BODY/);
    assert.ok(performance.now() - started < 10_000, 'bounded by the read timeout');
    await p.slow.waitFor((s) => s.headers['x-original-uri'] === '/500-slow', 'for /500-slow');
  });

  test('413 for a declared body over proxy-body-size: the body is never read as a request, the connection closes', async () => {
    const body = `${SMUGGLED}${'x'.repeat(2048)}`;
    const { answers, raw } = await send(
      `POST /upload HTTP/1.1\r\nHost: limit.test\r\nContent-Length: ${body.length}\r\n\r\n${body}${SECOND}`,
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      [413],
    );
    assert.match(answers[0]!.head, /\r\nconnection: close/i);
    assert.equal(raw.length, Buffer.byteLength(`${answers[0]!.head}\r\n\r\n${answers[0]!.body}`));
    assert.ok(!p.app.seen.some((s) => s.url === '/upload' || s.url === '/smuggled'));
  });

  test('413 for a buffered chunked body over the limit: nothing reaches the backend, nothing after it is served', async () => {
    const body = `${SMUGGLED}${'x'.repeat(2048)}`;
    const { answers } = await send(
      `POST /upload-chunked HTTP/1.1\r\nHost: limit.test\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(body)}${SMUGGLED}${SECOND}`,
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      [413],
    );
    await gw.errors.waitFor(/too large chunked body.*"POST \/upload-chunked/);
    assert.ok(!p.app.seen.some((s) => s.url === '/upload-chunked' || s.url === '/smuggled'));
  });

  test('proxy-request-buffering off: a chunked body cut at proxy-body-size never reaches the backend as a complete one', async () => {
    const piece = 'y'.repeat(1000);
    const chunk = `${piece.length.toString(16)}\r\n${piece}\r\n`;
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
    conn.socket.write(
      `POST /stream-cut HTTP/1.1\r\nHost: stream.test\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}`,
    );
    const seen = p.app.waitFor((s) => s.url === '/stream-cut', 'for /stream-cut');
    await p.app.waitForHead('/stream-cut');
    conn.socket.write(`${chunk}${chunk}0\r\n\r\n${SMUGGLED}${SECOND}`);
    await conn.whenClosed();
    const answers = answersIn(conn.received());
    assert.deepEqual(
      answers.map((a) => a.status),
      [413],
    );
    assert.match(answers[0]!.head, /\r\nconnection: close/i);
    await gw.errors.waitFor(/too large chunked body.*"POST \/stream-cut/);
    // The backend got the head and a part of the body, never its end: the upstream connection is
    // cut, not closed with a last chunk.
    assert.equal((await seen).complete, false, 'the backend read a complete (truncated) body');
    const carried = p.tap
      .upstream()
      .map((b) => b.toString('latin1'))
      .find((t) => t.includes('/stream-cut'));
    assert.doesNotMatch(carried!.slice(carried!.indexOf('\r\n\r\n') + 4), /(^|\r\n)0\r\n\r\n/);
    assert.ok(!p.tap.saw('/smuggled') && !p.app.seen.some((s) => s.url === '/smuggled'));
  });

  test('custom-http-errors 413: the error page, then the connection closes; the body is never read as a request', async () => {
    const body = `${SMUGGLED}${'x'.repeat(2048)}`;
    const { answers } = await send(
      `POST /upload HTTP/1.1\r\nHost: limit-errors.test\r\nContent-Length: ${body.length}\r\n\r\n${body}${SECOND}`,
    );
    assert.equal(answers.length, 1);
    assert.match(answers[0]!.body, /"error-page"/);
    await p.errorPages.waitFor((s) => s.headers['x-code'] === '413', 'with X-Code 413');
    assert.ok(!p.app.seen.some((s) => s.url === '/upload' || s.url === '/smuggled'));
  });

  test('streamed body, backend answers 500 before reading it: the error page, then the connection closes; the rest of the body is never a request', async () => {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
    conn.socket.write(
      `POST /early HTTP/1.1\r\nHost: early.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n`,
    );
    await p.errorPages.waitFor((s) => s.headers['x-original-uri'] === '/early', 'for /early');
    conn.socket.write(`${chunked(SMUGGLED)}${SECOND}`);
    await conn.whenClosed();
    const answers = answersIn(conn.received());
    assert.match(answers[0]?.body ?? '', /"error-page"/);
    assert.doesNotMatch(conn.received().toString('latin1'), /s3cr3t|SECRET-BODY|\/smuggled/);
    // An intercepted 500 ends the connection (nginx's special response), so /second is not served either.
    assert.equal(answers.length, 1);
    assert.ok(!p.app.seen.some((s) => s.url === '/smuggled' || s.url === '/second'));
  });

  const smuggleCases: Array<[string, string, string]> = [
    ['403 (allowlist)', 'deny.test', '403'],
    ['403 replaced by the error backend (custom-http-errors)', 'deny-errors.test', '200'],
    ['401 (auth-url)', 'auth.test', '401'],
  ];
  for (const [name, host, status] of smuggleCases) {
    for (const framing of ['content-length', 'chunked'] as const) {
      test(`${name}, ${framing} body: a request inside the unread body is never served; the next one is`, async () => {
        const head = `POST /refused HTTP/1.1\r\nHost: ${host}\r\n`;
        const payload =
          framing === 'chunked'
            ? `${head}Transfer-Encoding: chunked\r\n\r\n${chunked(SMUGGLED)}${SECOND}`
            : `${head}Content-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}${SECOND}`;
        const { answers } = await send(payload);
        assert.equal(String(answers[0]?.status), status);
        // As nginx: the body is read and dropped, and the request after it is served.
        assert.equal(answers.length, 2);
        assert.match(answers[1]!.body, /"url":"\/second"/);
        assert.ok(!answers.some((a) => a.body.includes('/smuggled')));
        assert.ok(!p.app.seen.some((s) => s.url === '/smuggled' || s.url === '/refused'));
      });
    }
  }

  test('malformed request framing: 400/501 and closed; neither the request nor what follows reaches a backend', async () => {
    const post = (fields: string, body: string) =>
      `POST /frame HTTP/1.1\r\nHost: errors.test\r\n${fields}\r\n${body}${SMUGGLED}${SECOND}`;
    const cases: Array<[string, string, number]> = [
      [post('Content-Length: +5\r\n', 'hello'), 'a leading +', 400],
      [post('Content-Length: -5\r\n', 'hello'), 'a negative length', 400],
      [post('Content-Length: 5\r\nContent-Length: 5\r\n', 'hello'), 'a repeated length', 400],
      [post('Content-Length: 5, 5\r\n', 'hello'), 'a length list', 400],
      [post('Content-Length: 0x5\r\n', 'hello'), 'a hex length', 400],
      [
        post('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', chunked('hello')),
        'length and chunked',
        400,
      ],
      [post('Transfer-Encoding: chunked, chunked\r\n', chunked('hello')), 'chunked twice', 501],
      [post('Transfer-Encoding: xchunked\r\n', chunked('hello')), 'an unknown coding', 501],
      [
        post('Transfer-Encoding: chunked\r\n', 'ffffffffffffffffff\r\nhello\r\n0\r\n\r\n'),
        'a chunk size overflow',
        400,
      ],
      [post('Transfer-Encoding: chunked\r\n', '-5\r\nhello\r\n0\r\n\r\n'), 'a negative chunk size', 400],
      [
        post('Transfer-Encoding: chunked\r\n', '5\r\nhello\r\n0\r\nContent-Length: 99\r\n\r\n'),
        'a length trailer',
        400,
      ],
      [
        post('Transfer-Encoding: chunked\r\n', '5;a="\r\n"\r\nhello\r\n0\r\n\r\n'),
        'a CRLF in an extension',
        400,
      ],
    ];
    for (const [payload, what, status] of cases) {
      const { answers } = await send(payload);
      assert.deepEqual(
        answers.map((a) => a.status),
        [status],
        what,
      );
      assert.ok(!p.app.seen.some((s) => s.url === '/frame' || s.url === '/smuggled'), what);
    }
  });

  test('chunk extensions and trailers are accepted and dropped: the backend gets the body whole, nothing else', async () => {
    const { answers } = await send(
      'POST /ext HTTP/1.1\r\nHost: errors.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
        '5;name=value;flag\r\nhello\r\n0;last=1\r\nX-Injected: trailer\r\n\r\n',
    );
    assert.equal(answers[0]?.status, 200);
    const seen = await p.app.waitFor((s) => s.url === '/ext', 'for /ext');
    assert.equal(seen.body.toString(), 'hello');
    assert.equal(seen.headers['x-injected'], undefined);
  });

  test('an upstream answer framed ambiguously is 502, and its connection is never used again', async () => {
    for (const path of ['/both', '/negative', '/plus', '/duplicate', '/list', '/te-list', '/no-status']) {
      const { answers } = await get('raw.test', path);
      assert.equal(answers[0]?.status, 502, path);
      assert.doesNotMatch(answers[0]!.body, /hello/, path);
      const next = await get('raw.test', '/clean');
      assert.equal(next.answers[0]?.body, 'clean', `after ${path}`);
    }
    for (const paths of p.raw.connections) {
      const bad = paths.findIndex((x) => x !== '/clean' && x !== '/longer' && x !== '/flood');
      assert.ok(bad === -1 || bad === paths.length - 1, `a connection reused after ${paths[bad]}`);
    }
  });

  test('an upstream answer longer than its Content-Length: the client gets the declared bytes, the next client none of the rest', async () => {
    const first = await get('raw.test', '/longer');
    assert.equal(first.answers[0]?.body, 'hello');
    assert.doesNotMatch(first.raw.toString('latin1'), /SMUGGLED/);
    const next = await get('raw.test', '/clean');
    assert.equal(next.answers.length, 1);
    assert.equal(next.answers[0]?.body, 'clean');
    const carrier = p.raw.connections.find((paths) => paths.includes('/longer'));
    assert.equal(carrier?.at(-1), '/longer', 'the connection with leftover bytes was reused');
  });

  test('a flood of 1xx interim answers before the final one: one 200 to the client, no interim leaks', async () => {
    const { raw, answers } = await get('raw.test', '/flood');
    assert.deepEqual(
      answers.map((a) => a.status),
      [200],
    );
    assert.equal(answers[0]?.body, 'ok');
    assert.doesNotMatch(raw.toString('latin1'), /100 Continue/);
  });
});
