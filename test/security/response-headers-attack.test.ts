// What the gateway does to a response on its way to the client, and the headers it adds, attacked
// from both ends: a hostile backend that answers raw bytes of its choosing (broken heads, hop-by-hop
// fields, hidden names in other cases, its own Strict-Transport-Security, Location and Set-Cookie for
// proxy-redirect-* and proxy-cookie-*, a body shorter than its Content-Length under gzip), and a
// client that shapes the request (a forged X-Forwarded-Proto, CR LF in a path captured for
// x-forwarded-prefix, HEAD/204/304 with gzip accepted). The reference is ingress-nginx's template
// (proxy_hide_header, more_set_headers, more_clear_headers Server, proxy_redirect, proxy_cookie_*)
// and nginx's proxy and gzip modules.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
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
import { listenTracked, rawExchange } from '../helpers/net.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const html = (body: string) => `Content-Type: text/html\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
const PAGE = 'x'.repeat(600);

/** Raw answers of the hostile backend, by request path (the head as it goes on the wire). */
const ANSWERS: Record<string, string> = {
  '/plain': `HTTP/1.1 200 OK\r\n${html('plain')}`,
  // Heads no HTTP/1.1 parser may take: each is refused whole (502), none of it shown.
  '/bad-nul': `HTTP/1.1 200 OK\r\nX-Leak: a\0b\r\n${html('LEAKED')}`,
  '/bad-cr': `HTTP/1.1 200 OK\r\nX-Leak: a\rSet-Cookie: evil=1\r\n${html('LEAKED')}`,
  '/bad-lf': `HTTP/1.1 200 OK\r\nX-Leak: a\nSet-Cookie: evil=1\r\n${html('LEAKED')}`,
  '/bad-fold': `HTTP/1.1 200 OK\r\nX-Leak: a\r\n Set-Cookie: evil=1\r\n${html('LEAKED')}`,
  '/bad-nocolon': `HTTP/1.1 200 OK\r\nX-Leak a\r\n${html('LEAKED')}`,
  '/bad-space': `HTTP/1.1 200 OK\r\nX-Leak : a\r\n${html('LEAKED')}`,
  '/bad-ctl': `HTTP/1.1 200 OK\r\nX-Leak: a\x0bb\r\n${html('LEAKED')}`,
  '/bad-name': `HTTP/1.1 200 OK\r\nX:Leak: a\r\nX(Leak): a\r\n${html('LEAKED')}`,
  '/hop': `HTTP/1.1 200 OK\r\nConnection: close\r\nKeep-Alive: timeout=99\r\nUpgrade: h2c\r\nTrailer: X-Sum\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n${html('hop')}`,
  '/204-length': 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n',
  '/hidden': `HTTP/1.1 200 OK\r\nX-Powered-By: a\r\nX-POWERED-BY: b\r\nx-powered-by: c\r\nServer: internal/1.0\r\nX-Accel-Redirect: /internal/secret\r\nX-Kept: yes\r\n${html('hidden')}`,
  '/sts': `HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=0\r\nSTRICT-TRANSPORT-SECURITY: max-age=1\r\n${html('sts')}`,
  '/redirect': `HTTP/1.1 302 Found\r\nLocation: http://internal.example:8080/app/next?a=1\r\nRefresh: 0; url=http://internal.example:8080/app/later\r\nContent-Length: 0\r\n\r\n`,
  '/redirect-elsewhere': `HTTP/1.1 302 Found\r\nLocation: http://evil.example/?u=http://internal.example:8080/app/x\r\nContent-Length: 0\r\n\r\n`,
  '/redirect-two': `HTTP/1.1 302 Found\r\nLocation: http://internal.example:8080/app/one\r\nLocation: http://internal.example:8080/app/two\r\nContent-Length: 0\r\n\r\n`,
  '/cookies': `HTTP/1.1 200 OK\r\n${[
    'Set-Cookie: a=1; Path=/app/x; Domain=internal.example; Secure; HttpOnly',
    'Set-Cookie: b=2; Domain=.INTERNAL.example; path=/app/; SameSite=Strict; Secure',
    'Set-Cookie: c="q;r"; Path=/other; Domain=evil.example; HttpOnly',
    ...Array.from({ length: 40 }, (_, i) => `Set-Cookie: n${i}=v${i}; Path=/app/${i}; Secure`),
  ].join('\r\n')}\r\n${html('cookies')}`,
  '/cookie-named-path': `HTTP/1.1 200 OK\r\nSet-Cookie: path=/app/secret; Path=/app/\r\nSet-Cookie: domain=internal.example; Path=/\r\n${html('named')}`,
  // Promises 1000 bytes, sends 300, closes.
  '/short': `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n${'y'.repeat(300)}`,
  '/already-gzip': `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: ${PAGE.length}\r\n\r\n${PAGE}`,
  '/page': `HTTP/1.1 200 OK\r\n${html(PAGE)}`,
  '/204': `HTTP/1.1 204 No Content\r\nContent-Type: text/html\r\n\r\n`,
  '/304': `HTTP/1.1 304 Not Modified\r\nContent-Type: text/html\r\nETag: "e"\r\n\r\n`,
};

interface RawBackend {
  port: number;
  /** The request heads received, in order. */
  heads: string[];
  close(): Promise<void>;
}

/** Answers each request with ANSWERS[path] (raw) and closes the connection. */
async function startRawBackend(): Promise<RawBackend> {
  const heads: string[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = text.slice(0, end);
      heads.push(head);
      const path = (head.split(' ')[1] ?? '').split('?')[0] ?? '';
      const answer =
        ANSWERS[path] ?? (path.startsWith('/echo') ? `HTTP/1.1 200 OK\r\n${html('echo')}` : undefined);
      socket.end(answer ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', 'latin1');
    });
  });
  const { port, close } = await listenTracked(server);
  return { port, heads, close };
}

interface Answer {
  status: number;
  /** Header lines as sent, `name: value`, names as the gateway wrote them. */
  lines: string[];
  body: string;
  raw: string;
}

function parseAnswer(raw: string): Answer {
  const end = raw.indexOf('\r\n\r\n');
  const head = end < 0 ? raw : raw.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  return {
    status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(statusLine)?.[1] ?? 0),
    lines,
    body: end < 0 ? '' : raw.slice(end + 4),
    raw,
  };
}

/** Every value of `name` (case-insensitive) in the answer's head. */
function values(a: Answer, name: string): string[] {
  const lower = `${name.toLowerCase()}:`;
  return a.lines.filter((l) => l.toLowerCase().startsWith(lower)).map((l) => l.slice(lower.length).trim());
}

async function get(
  port: number,
  host: string,
  path: string,
  extra: Record<string, string> = {},
  method = 'GET',
): Promise<Answer> {
  const lines = Object.entries(extra).map(([k, v]) => `${k}: ${v}\r\n`);
  const reply = await rawExchange({
    host: '127.0.0.1',
    port,
    payload: `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${lines.join('')}Connection: close\r\n\r\n`,
    timeoutMs: 10_000,
  });
  return parseAnswer(reply.received.toString('latin1'));
}

/** A gRPC backend (h2c) that answers with a Server header and nginx-internal fields of its own. */
async function startGrpcBackend(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.resume();
    stream.on('end', () => {
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          server: 'internal-grpc/1.0',
          'x-accel-redirect': '/internal/secret',
        },
        { waitForTrailers: true },
      );
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** One gRPC call; the response headers the client got. */
function grpcCall(port: number, host: string): Promise<http2.IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/svc/Call',
      ':authority': host,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let headers: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => {
      headers = h;
    });
    stream.on('error', reject);
    stream.resume();
    stream.on('close', () => {
      session.close();
      resolve(headers);
    });
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

/** One HTTP/2 (h2c prior knowledge) GET: the status and headers, or the stream's error. */
function h2Get(
  port: number,
  host: string,
  path: string,
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; error: string | null }> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    const out = { status: 0, headers: {} as http2.IncomingHttpHeaders, error: null as string | null };
    const stream = session.request({ ':path': path, ':authority': host });
    stream.on('response', (h) => {
      out.status = Number(h[':status']);
      out.headers = h;
    });
    stream.on('error', (e: Error) => {
      out.error = e.message;
    });
    stream.resume();
    stream.on('close', () => {
      session.close();
      resolve(out);
    });
  });
}

/** curl's view of an HTTPS answer: the status and the raw header lines (duplicates kept). */
async function curlHttps(port: number, host: string, path: string): Promise<Answer> {
  const result = await runCommand(requireBinary('curl'), [
    '-sk',
    '-o',
    '/dev/null',
    '-D',
    '-',
    '--resolve',
    `${host}:${port}:127.0.0.1`,
    `https://${host}:${port}${path}`,
  ]);
  assert.equal(result.code, 0, result.stderr);
  return parseAnswer(result.stdout);
}

/** Whether a chunked body is complete: its last chunk and the end of the trailer section came. */
const chunkedComplete = (body: string) => body.endsWith('0\r\n\r\n');

function topology(rawPort: number, grpcPort: number) {
  const to = (name: string, host: string, annotations: Record<string, string> = {}, path = '/') =>
    ingress({
      name,
      host,
      annotations,
      paths: [
        {
          path,
          pathType: path === '/' ? 'Prefix' : 'ImplementationSpecific',
          service: 'raw',
          port: 80,
        },
      ],
    });
  const badHeaders: K8sObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'bad-headers', namespace: 'default' },
    data: { 'X-Note': 'a\r\nX-Injected: yes' },
  };
  return topologyOf([
    controllerConfigMap({
      'hide-headers': 'X-Powered-By',
      'use-gzip': 'true',
      // Every peer trusted (the default proxy-real-ip-cidr): even a trusted X-Forwarded-* changes nothing here.
      'use-forwarded-headers': 'true',
      'global-allowed-response-headers': 'X-Note',
      // A client's refused request is an [info] line, as nginx's: shown here to be asserted.
      'error-log-level': 'info',
    }),
    ...serviceWithEndpoints({ name: 'raw', ports: [rawPort] }),
    ...serviceWithEndpoints({ name: 'g', ports: [grpcPort], servicePort: 50051 }),
    badHeaders,
    to('raw', 'raw.test'),
    to('rw', 'rw.test', {
      'proxy-redirect-from': 'http://internal.example:8080/app/',
      'proxy-redirect-to': 'https://public.example/',
      'proxy-cookie-domain': 'internal.example public.example',
      'proxy-cookie-path': '/app/ /',
    }),
    to('ch', 'ch.test', { 'custom-headers': 'default/bad-headers' }),
    to(
      'pf',
      'pf.test',
      { 'use-regex': 'true', 'rewrite-target': '/echo/$2', 'x-forwarded-prefix': '/p/$2' },
      '/p(/|$)(.*)',
    ),
    ingress({
      name: 'g',
      host: 'g.test',
      annotations: { 'backend-protocol': 'GRPC' },
      paths: [{ path: '/', service: 'g', port: 50051 }],
    }),
  ]);
}

describe('response heads and added headers under attack', () => {
  let backend: RawBackend;
  let grpc: Awaited<ReturnType<typeof startGrpcBackend>>;
  let gw: TestGateway;

  before(async () => {
    backend = await startRawBackend();
    grpc = await startGrpcBackend();
    gw = await startTestGateway(topology(backend.port, grpc.port));
  });

  after(async () => {
    await gw.close();
    await backend.close();
    await grpc.close();
  });

  test('a backend head with NUL, a bare CR or LF, obs-fold, a control byte or a broken field line is 502; none of it reaches the client', async () => {
    for (const path of [
      '/bad-nul',
      '/bad-cr',
      '/bad-lf',
      '/bad-fold',
      '/bad-nocolon',
      '/bad-space',
      '/bad-ctl',
      '/bad-name',
    ]) {
      const a = await get(gw.httpPort, 'raw.test', path);
      assert.equal(a.status, 502, `${path}: ${a.raw}`);
      assert.doesNotMatch(a.raw, /LEAKED|X-Leak|evil=1/i, path);
    }
    await gw.errors.waitFor(/upstream sent invalid header/);
  });

  test('hop-by-hop fields of a backend answer (Connection, Keep-Alive, Upgrade in a 200, Trailer, TE, Proxy-Connection) never reach the client', async () => {
    const a = await get(gw.httpPort, 'raw.test', '/hop');
    assert.equal(a.status, 200);
    assert.equal(a.body, 'hop');
    for (const name of ['keep-alive', 'upgrade', 'trailer', 'te', 'proxy-connection'])
      assert.deepEqual(values(a, name), [], `${name}: ${a.raw}`);
    // The gateway's own connection field only (the request said close).
    assert.deepEqual(values(a, 'connection'), ['close']);
  });

  test('a 204 from the backend reaches the client without the Content-Length it carried, and without body bytes', async () => {
    // nginx's header filter clears Content-Length of a 204 (ngx_http_header_filter: NGX_HTTP_NO_CONTENT).
    const a = await get(gw.httpPort, 'raw.test', '/204-length');
    assert.equal(a.status, 204, a.raw);
    assert.equal(a.body, '');
    assert.deepEqual(values(a, 'content-length'), [], a.raw);
    assert.deepEqual(values(a, 'transfer-encoding'), []);
  });

  test('a 204 whose backend sent Content-Length reaches an HTTP/2 client as a 204, not a stream error', async () => {
    const a = await h2Get(gw.httpPort, 'raw.test', '/204-length');
    assert.equal(a.error, null, JSON.stringify(a));
    assert.equal(a.status, 204);
  });

  test('hide-headers X-Powered-By hides it in every case and repetition; Server and X-Accel-* are never shown', async () => {
    const a = await get(gw.httpPort, 'raw.test', '/hidden');
    assert.equal(a.status, 200);
    assert.deepEqual(values(a, 'x-powered-by'), [], a.raw);
    assert.deepEqual(values(a, 'server'), [], a.raw);
    assert.deepEqual(values(a, 'x-accel-redirect'), [], a.raw);
    assert.deepEqual(values(a, 'x-kept'), ['yes']);
  });

  test("HSTS over HTTPS: exactly one Strict-Transport-Security, the gateway's, whatever the backend sent (curl)", async () => {
    const a = await curlHttps(gw.httpsPort, 'raw.test', '/sts');
    assert.equal(a.status, 200, a.raw);
    assert.deepEqual(values(a, 'strict-transport-security'), ['max-age=31536000; includeSubDomains'], a.raw);
  });

  test('HSTS never over plain HTTP, not even with X-Forwarded-Proto: https or X-Forwarded-Ssl: on', async () => {
    const forgeries: Record<string, string>[] = [
      { 'X-Forwarded-Proto': 'https' },
      { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Port': '443', 'X-Forwarded-Ssl': 'on' },
    ];
    for (const forged of forgeries) {
      const a = await get(gw.httpPort, 'raw.test', '/plain', forged);
      assert.equal(a.status, 200);
      assert.deepEqual(values(a, 'strict-transport-security'), [], a.raw);
    }
  });

  test('proxy-redirect rewrites the configured prefix only, to the configured target, whatever Host or X-Forwarded-Host says', async () => {
    const forged = { 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'https' };
    const a = await get(gw.httpPort, 'rw.test', '/redirect', forged);
    assert.equal(a.status, 302);
    assert.deepEqual(values(a, 'location'), ['https://public.example/next?a=1']);
    assert.deepEqual(values(a, 'refresh'), ['0; url=https://public.example/later']);
    // `from` later in the value is not a prefix: the backend's own target stays as it is.
    const elsewhere = await get(gw.httpPort, 'rw.test', '/redirect-elsewhere', forged);
    assert.deepEqual(values(elsewhere, 'location'), [
      'http://evil.example/?u=http://internal.example:8080/app/x',
    ]);
  });

  test('proxy-redirect: a backend that sends two Location headers never shows the client its internal URL (nginx keeps the first, rewritten)', async () => {
    const a = await get(gw.httpPort, 'rw.test', '/redirect-two');
    assert.equal(a.status, 302);
    const locations = values(a, 'location');
    assert.equal(locations[0], 'https://public.example/one', a.raw);
    for (const l of locations) assert.ok(!l.startsWith('http://internal.example:8080/'), a.raw);
  });

  test('proxy-cookie-domain/-path: each Set-Cookie rewritten on its own, none merged or dropped, Secure and HttpOnly kept', async () => {
    const a = await get(gw.httpPort, 'rw.test', '/cookies');
    assert.equal(a.status, 200);
    const cookies = values(a, 'set-cookie');
    assert.equal(cookies.length, 43, a.raw);
    assert.equal(cookies[0], 'a=1; Path=/x; Domain=public.example; Secure; HttpOnly');
    assert.equal(cookies[1], 'b=2; Domain=.public.example; path=/; SameSite=Strict; Secure');
    assert.equal(cookies[2], 'c="q;r"; Path=/other; Domain=evil.example; HttpOnly');
    for (let i = 0; i < 40; i++) assert.equal(cookies[3 + i], `n${i}=v${i}; Path=/${i}; Secure`);
  });

  test("proxy-cookie-*: a cookie's own name=value is never taken for an attribute (nginx starts at the second pair)", async () => {
    const a = await get(gw.httpPort, 'rw.test', '/cookie-named-path');
    assert.deepEqual(
      values(a, 'set-cookie'),
      ['path=/app/secret; Path=/', 'domain=internal.example; Path=/'],
      a.raw,
    );
  });

  test('custom-headers from a ConfigMap whose value holds CR LF: the location answers 503, the value is never written', async () => {
    const before = backend.heads.length;
    const a = await get(gw.httpPort, 'ch.test', '/echo');
    assert.equal(a.status, 503, a.raw);
    assert.doesNotMatch(a.raw, /X-Injected/i);
    assert.equal(backend.heads.length, before, 'the backend was reached');
  });

  test('x-forwarded-prefix with a capture of the path: CR LF or NUL decoded from %0d%0a never become a header line towards the backend', async () => {
    const ok = await get(gw.httpPort, 'pf.test', '/p/fine');
    assert.equal(ok.status, 200);
    assert.match(backend.heads.at(-1) ?? '', /\r\nx-forwarded-prefix: \/p\/fine(?:\r\n|$)/i);
    // A capture with a CR (PCRE's `.` takes it, as nginx's) makes a header value no request head can
    // carry: the client's request, refused 400 with its code, never sent (nginx would send the CR raw).
    // An LF ends the capture before it; a NUL is refused with the target, as nginx does.
    for (const [target, status, code] of [
      ['/p/a%0d%0aX-Injected:%20yes', 400, 'TARGET_CAPTURE_UNSENDABLE'],
      ['/p/a%0dX-Injected:%20yes', 400, 'TARGET_CAPTURE_UNSENDABLE'],
      ['/p/a%0aX-Injected:%20yes', 200, null],
      ['/p/a%00b', 400, 'TARGET_NUL'],
    ] as const) {
      const before = backend.heads.length;
      const a = await get(gw.httpPort, 'pf.test', target);
      assert.equal(a.status, status, `${target}: ${a.raw}`);
      for (const head of backend.heads.slice(before)) assert.doesNotMatch(head, /\nX-Injected|\0/i, target);
      if (code === null) continue;
      assert.equal(backend.heads.length, before, `${target}: the backend was reached`);
      // The targets hold no regex syntax but the version's dot.
      const line = await gw.errors.waitFor(new RegExp(`\\(${code}: .*request: "GET ${target} HTTP/1\\.1"`));
      assert.match(line, / \[info\] /, line);
    }
  });

  test('gzip on and a backend that closes short of its Content-Length: the client never gets a 200 that looks complete', async () => {
    const accepts: Record<string, string>[] = [{ 'Accept-Encoding': 'gzip' }, {}];
    for (const accept of accepts) {
      const a = await get(gw.httpPort, 'raw.test', '/short', accept);
      const what = `${JSON.stringify(accept)}: ${a.raw.slice(0, 400)}`;
      if (a.status === 0) continue; // closed before any answer: nothing to take for complete
      assert.equal(a.status, 200, what);
      const length = values(a, 'content-length')[0];
      if (length !== undefined) assert.ok(a.body.length < Number(length), what);
      else
        assert.ok(!chunkedComplete(a.body), `a chunked body ended cleanly after a short upstream: ${what}`);
    }
  });

  test('gzip on: a body the backend already encoded is passed as it is, with one Content-Encoding', async () => {
    const a = await get(gw.httpPort, 'raw.test', '/already-gzip', { 'Accept-Encoding': 'gzip' });
    assert.deepEqual(values(a, 'content-encoding'), ['gzip']);
    assert.deepEqual(values(a, 'content-length'), [String(PAGE.length)]);
    assert.equal(a.body, PAGE);
  });

  test('gzip on: HEAD, 204 and 304 get no body; pipelined after them, the next answer is read where it starts', async () => {
    const requests = [
      ['HEAD', '/page'],
      ['GET', '/204'],
      ['GET', '/304'],
      ['GET', '/plain'],
    ]
      .map(([m, p]) => `${m} ${p} HTTP/1.1\r\nHost: raw.test\r\nAccept-Encoding: gzip\r\n\r\n`)
      .join('');
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      payload: `${requests}GET /plain HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n`,
      timeoutMs: 10_000,
    });
    const text = reply.received.toString('latin1');
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '204', '304', '200', '200'], text);
    const heads = text.split(/(?=HTTP\/1\.1 \d{3})/);
    assert.ok(heads[0]?.endsWith('\r\n\r\n'), `HEAD answer with a body: ${heads[0]}`);
    assert.doesNotMatch(heads[1] ?? '', /content-encoding/i);
    assert.ok(heads[1]?.endsWith('\r\n\r\n') && heads[2]?.endsWith('\r\n\r\n'), text);
  });

  test("a gRPC backend's Server header and X-Accel-* are not shown either (server-tokens off: more_clear_headers Server; grpc_hide_header)", async () => {
    const headers = await grpcCall(gw.httpPort, 'g.test');
    assert.equal(headers[':status'], 200);
    assert.equal(headers.server, undefined, JSON.stringify(headers));
    assert.equal(headers['x-accel-redirect'], undefined, JSON.stringify(headers));
  });
});

/** A gateway whose ConfigMap's add-headers names a ConfigMap of `headers`, one Ingress raw.test. */
function addHeadersGateway(
  backend: RawBackend,
  headers: Record<string, string>,
  annotations: Record<string, string> = {},
): Promise<TestGateway> {
  return startTestGateway(
    topologyOf([
      controllerConfigMap({ 'add-headers': 'ingress-nginx/response-headers' }),
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'response-headers', namespace: 'ingress-nginx' },
        data: headers,
      },
      ...serviceWithEndpoints({ name: 'raw', ports: [backend.port] }),
      ingress({
        name: 'raw',
        host: 'raw.test',
        paths: [{ path: '/', service: 'raw', port: 80 }],
        annotations,
      }),
    ]),
  );
}

describe('add-headers from a ConfigMap with a control byte in a value', () => {
  let backend: RawBackend;
  let gw: TestGateway;

  before(async () => {
    backend = await startRawBackend();
    gw = await addHeadersGateway(backend, { 'X-Banner': 'a\x1b[31mb\x0bc', 'X-Ok': 'ok' });
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  test('the value is refused at load like CR LF, never written raw: HTTP/1.1 gets no control byte, HTTP/2 clients still get their answers', async () => {
    const h1 = await get(gw.httpPort, 'raw.test', '/plain');
    const h2 = await h2Get(gw.httpPort, 'raw.test', '/plain');
    // The gateway's own answers carry add-headers too.
    const own = await h2Get(gw.httpPort, 'unknown.test', '/');
    assert.deepEqual(
      {
        h1: h1.status,
        h1ControlByte: /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(h1.raw),
        h2: h2.status,
        h2Error: h2.error,
        own: own.status,
        ownError: own.error,
      },
      { h1: 200, h1ControlByte: false, h2: 200, h2Error: null, own: 404, ownError: null },
      JSON.stringify(h1.raw),
    );
  });
});

// A character beyond U+00FF in a header value: a latin1 head writes its low byte, so U+010A would go
// out as a line feed and start a header of the value's choosing (found against ingress-nginx's CORS
// validators, test/k8s/annotation-validation-ingress-nginx.test.ts).
describe('add-headers and CORS values with characters beyond U+00FF', () => {
  let backend: RawBackend;
  let gw: TestGateway;

  before(async () => {
    backend = await startRawBackend();
    gw = await addHeadersGateway(
      backend,
      { 'X-Banner': 'a\u010aX-Injected-By-Config: 1' },
      {
        'nginx.ingress.kubernetes.io/enable-cors': 'true',
        'nginx.ingress.kubernetes.io/cors-expose-headers': 'X-Foo,\u200aX-Injected-By-Cors: 1',
      },
    );
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  test('neither value reaches the wire as a line of its own (nor as any byte below 0x20)', async () => {
    const h1 = await get(gw.httpPort, 'raw.test', '/plain', { Origin: 'https://app.test' });
    assert.equal(h1.status, 200);
    assert.match(h1.raw, /access-control-allow-origin/i, 'the CORS headers are sent');
    assert.doesNotMatch(h1.raw, /\nX-Injected-By-(Config|Cors)/i, JSON.stringify(h1.raw));
    // add-headers values go out as their UTF-8 bytes, as nginx sends them: U+010A is C4 8A, no line feed.
    assert.match(h1.raw, /\r\nx-banner: a\xc4\x8aX-Injected-By-Config: 1\r\n/i, JSON.stringify(h1.raw));
    assert.doesNotMatch(h1.raw, /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|[^\r]\n/, JSON.stringify(h1.raw));
  });
});
