// URLs and hosts the gateway builds from request data, then fetches or redirects to: auth-url with
// nginx variables ($http_host, $best_http_host, $host, $request_uri, $uri, $arg_*), auth-proxy-set-headers,
// auth-signin, mirror-target with $uri, permanent-redirect to a path, app-root, x-forwarded-prefix
// with a rewrite capture, a rewrite-target redirect, and the error backend of custom-http-errors.
// Every peer is a raw recorder that keeps the exact request head it received, so each test can say
// which authority, request line and headers the expansion produced. nginx 1.22 was run beside it
// with the same expansions where a behaviour was unclear; each row says what it does.
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, type K8sObject, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { rawExchange } from '../helpers/net.ts';

interface Recorder {
  port: number;
  /** Every request head received (request line and fields, latin1, without the blank line). */
  heads: string[];
  /** Resolves once a head matching `pattern` has been received (bounded). */
  waitFor(pattern: RegExp): Promise<string>;
  close(): Promise<void>;
}

/** A raw HTTP/1.1 peer: records each request head and answers it `status` with no body. */
async function startRecorder(status: number): Promise<Recorder> {
  const heads: string[] = [];
  const waiters = new Set<() => void>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        heads.push(pending.slice(0, end));
        pending = pending.slice(end + 4);
        socket.write(`HTTP/1.1 ${status} Recorded\r\nContent-Length: 0\r\n\r\n`);
        for (const waiter of waiters) waiter();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    heads,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = heads.find((head) => pattern.test(head));
          if (found === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no request head matching ${pattern}; got ${JSON.stringify(heads)}`));
        }, 10_000);
        waiters.add(check);
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Answer {
  status: number;
  /** The response head, latin1, CRLF kept. */
  head: string;
  /** Every value of one response header (lower-case name). */
  header(name: string): string[];
}

/** One raw request (`head` without the blank line) on a fresh connection; the gateway's answer. */
async function send(port: number, head: string): Promise<Answer> {
  const reply = await rawExchange({
    host: '127.0.0.1',
    port,
    payload: Buffer.from(`${head}Connection: close\r\n\r\n`, 'latin1'),
    timeoutMs: 10_000,
  });
  const text = reply.received.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const responseHead = end < 0 ? text : text.slice(0, end + 2);
  const lines = responseHead.split('\r\n').slice(1);
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
    head: responseHead,
    header: (name) =>
      lines.filter((l) => l.toLowerCase().startsWith(`${name}:`)).map((l) => l.slice(name.length + 1).trim()),
  };
}

/** The request line of a recorded head. */
const requestLine = (head: string) => head.split('\r\n')[0] ?? '';

/** The value of one field of a recorded head (lower-case name), or undefined. */
function field(head: string, name: string): string | undefined {
  const line = head
    .split('\r\n')
    .slice(1)
    .find((l) => l.toLowerCase().startsWith(`${name}:`));
  return line?.slice(name.length + 1).trim();
}

interface Peers {
  app: Recorder;
  auth: Recorder;
  evil: Recorder;
  deny: Recorder;
  mirror: Recorder;
  errors: Recorder;
  failing: Recorder;
}

/** The Ingresses under attack, one host each (the default server: auth-url on $host). */
function routes(p: Peers): K8sObject[] {
  const on = (name: string, host: string | undefined, annotations: Record<string, string>, service = 'app') =>
    ingress({
      name,
      ...(host === undefined ? {} : { host }),
      paths: [{ path: '/', service, port: 80 }],
      annotations,
    });
  const regex = (name: string, path: string, annotations: Record<string, string>) =>
    ingress({
      name,
      host: `${name}.test`,
      paths: [{ path, pathType: 'ImplementationSpecific', service: 'app', port: 80 }],
      annotations: { 'use-regex': 'true', ...annotations },
    });
  const auth = `http://127.0.0.1:${p.auth.port}`;
  return [
    ...serviceWithEndpoints({ name: 'app', ports: [p.app.port] }),
    ...serviceWithEndpoints({ name: 'failing', ports: [p.failing.port] }),
    ...serviceWithEndpoints({ name: 'error-pages', ports: [p.errors.port] }),
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'auth-headers', namespace: 'default' },
      data: { 'X-Path': '$uri', 'X-Arg': '$arg_a' },
    },
    on('http-host', 'hh.test', { 'auth-url': 'http://$http_host/_auth' }),
    on('best-http-host', 'bh.test', { 'auth-url': 'http://$best_http_host/_auth' }),
    on('host-var', undefined, { 'auth-url': `http://$host:${p.auth.port}/check` }),
    on('request-uri', 'ru.test', { 'auth-url': `${auth}/authz$request_uri` }),
    on('after-port', 'ap.test', { 'auth-url': `${auth}$request_uri` }),
    on('decoded', 'du.test', { 'auth-url': `${auth}/authz$uri?a=$arg_a` }),
    on('set-headers', 'sh.test', { 'auth-url': `${auth}/sh`, 'auth-proxy-set-headers': 'auth-headers' }),
    on('signin', 'si.test', {
      'auth-url': `http://127.0.0.1:${p.deny.port}/`,
      'auth-signin': 'https://login.example/start?next=$uri',
    }),
    on('mirror', 'mi.test', { 'mirror-target': `http://127.0.0.1:${p.mirror.port}$uri` }),
    on('permanent', 'pr.test', { 'permanent-redirect': '/new' }),
    on('app-root', 'ar.test', { 'app-root': '/app' }),
    on('errors', 'ce.test', { 'custom-http-errors': '503', 'default-backend': 'error-pages' }, 'failing'),
    regex('xfp', '/api/(.*)', { 'rewrite-target': '/$1', 'x-forwarded-prefix': '/p/$1' }),
    regex('moved', '/go/(.*)', { 'rewrite-target': 'https://new.example/$1' }),
  ];
}

describe('URLs and hosts expanded from request data', () => {
  let gw: TestGateway;
  let p: Peers;

  before(async () => {
    p = {
      app: await startRecorder(200),
      auth: await startRecorder(200),
      evil: await startRecorder(200),
      deny: await startRecorder(401),
      mirror: await startRecorder(204),
      errors: await startRecorder(200),
      failing: await startRecorder(503),
    };
    gw = await startTestGateway(topologyOf(routes(p)));
  });

  after(async () => {
    await gw?.close();
    for (const peer of Object.values(p ?? {})) await peer.close();
  });

  const get = (target: string, host: string, extra = '') =>
    send(gw.httpPort, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}`);

  test('auth-url http://$http_host/…: a Host with `@` after its port never sends the subrequest to another authority', async () => {
    // nginx 1.22 with the same proxy_pass: `invalid port in upstream "hh.test:@127.0.0.1:<port>/_auth"`
    // and 500; keepip's WHATWG URL reads `hh.test:` as userinfo and 127.0.0.1:<port> as the host.
    const appBefore = p.app.heads.length;
    for (const host of ['hh.test', 'bh.test']) {
      const before = p.evil.heads.length;
      const reply = await get('/x', `${host}:@127.0.0.1:${p.evil.port}`);
      const reached = p.evil.heads.slice(before);
      assert.deepEqual(
        reached.map(requestLine),
        [],
        `${host}: the attacker's server got the auth subrequest (with ${field(reached[0] ?? '', 'authorization')}) and the client got ${reply.status}`,
      );
      assert.notEqual(reply.status, 200, `${host}: admitted by the auth service the client chose`);
    }
    assert.equal(p.app.heads.length, appBefore, 'a request reached the protected backend');
  });

  test('auth-url http://$host:<port>/…: the Host port never changes the subrequest authority; `@` or junk after `:` is 400', async () => {
    const evilBefore = p.evil.heads.length;
    for (const host of ['127.0.0.1', `127.0.0.1:${p.evil.port}`]) {
      const before = p.auth.heads.length;
      assert.equal((await get('/x', host)).status, 200, host);
      const seen = p.auth.heads.slice(before);
      assert.deepEqual(seen.map(requestLine), ['GET /check HTTP/1.1'], host);
      assert.equal(field(seen[0]!, 'host'), '127.0.0.1', host);
    }
    // A port that is not digits is no Host at all (keepip 400; nginx serves it, cut at `:`).
    for (const host of [
      `127.0.0.1:@127.0.0.1:${p.evil.port}`,
      `127.0.0.1:${p.evil.port}@x`,
      `127.0.0.1:\\@127.0.0.1:${p.evil.port}`,
    ]) {
      const before = p.auth.heads.length;
      assert.equal((await get('/x', host)).status, 400, host);
      assert.equal(p.auth.heads.length, before, `${host}: the auth service was asked`);
    }
    // A host that is itself `user@host` is no host at all (keepip 400; nginx: no server of that name).
    assert.equal((await get('/x', 'evil@127.0.0.1')).status, 400);
    assert.equal(p.evil.heads.length, evilBefore);
  });

  test('auth-url …/authz$request_uri: backslash dot segments never climb out of the annotation path', async () => {
    // nginx 1.22 sends `GET /authz/a\..\..\secret` as received; keepip's WHATWG URL reads `\` as `/`
    // and resolves the dot segments, so the auth service is asked for /secret.
    for (const target of ['/a\\..\\..\\secret', '/a\\%2e%2e\\%2e%2e\\secret', '/a/b\\..\\..\\..\\secret']) {
      const before = p.auth.heads.length;
      assert.equal((await get(target, 'ru.test')).status, 200, target);
      const line = requestLine(p.auth.heads[before] ?? '');
      assert.match(line, /^GET \/authz\//, `${target}: the auth service was asked "${line}"`);
    }
  });

  test('auth-url with $request_uri right after the port: an empty path, `?@host` or `*` keep the annotation authority', async () => {
    const before = p.auth.heads.length;
    const evilBefore = p.evil.heads.length;
    const query = await get(`http://ap.test?@127.0.0.1:${p.evil.port}/`, 'ap.test');
    assert.equal(query.status, 200);
    const empty = await get('http://ap.test', `127.0.0.1:${p.evil.port}`);
    assert.equal(empty.status, 200);
    assert.deepEqual(p.auth.heads.slice(before).map(requestLine), [
      `GET /?@127.0.0.1:${p.evil.port}/ HTTP/1.1`,
      'GET / HTTP/1.1',
    ]);
    const star = await send(gw.httpPort, 'OPTIONS * HTTP/1.1\r\nHost: ap.test\r\n');
    assert.notEqual(star.status, 200);
    assert.equal(p.auth.heads.length, before + 2);
    assert.equal(p.evil.heads.length, evilBefore);
  });

  test('auth-url with $uri and $arg_*: decoded CR/LF, spaces and control bytes never split the auth request', async () => {
    // nginx sends the decoded bytes of $uri as they are (a CR/LF splits its request line); keepip's
    // URL drops CR/LF and escapes the rest.
    const before = p.auth.heads.length;
    const target = '/x%0d%0aX-Injected:%20y%20HTTP/1.1%01?a=1%0d%0aX-Injected2:%20z';
    assert.equal((await get(target, 'du.test')).status, 200);
    const seen = p.auth.heads.slice(before);
    assert.equal(seen.length, 1);
    assert.match(requestLine(seen[0]!), /^GET \/authz\/[\x21-\x7e]* HTTP\/1\.1$/);
    assert.equal(field(seen[0]!, 'x-injected'), undefined);
    assert.equal(field(seen[0]!, 'x-injected2'), undefined);
    assert.equal(field(seen[0]!, 'host'), '127.0.0.1');
  });

  test('auth-proxy-set-headers with $uri: a decoded CR/LF fails closed, never a second header; the gateway keeps serving', async () => {
    const before = p.auth.heads.length;
    const attack = await get('/x%0d%0aX-Injected:%20y', 'sh.test');
    assert.equal(attack.status, 500);
    assert.equal(p.auth.heads.length, before, 'an auth request with the decoded CR/LF was sent');
    const control = await get('/ok?a=%0d%0a', 'sh.test');
    assert.equal(control.status, 200);
    const seen = p.auth.heads.slice(before);
    assert.equal(seen.length, 1);
    assert.equal(field(seen[0]!, 'x-path'), '/ok');
    assert.equal(field(seen[0]!, 'x-arg'), '%0d%0a');
  });

  test('auth-signin with $uri: a decoded CR/LF never splits the 302, and the sign-in host stays the annotation one', async () => {
    for (const target of ['/x%0d%0aSet-Cookie:%20a=1', '/x%0aLocation:%20https://evil.example/', '/x%0d']) {
      const reply = await get(target, 'si.test');
      assert.equal(reply.status, 302, target);
      assert.equal(reply.header('set-cookie').length, 0, target);
      assert.doesNotMatch(reply.head, /evil\.example|\r\nSet-Cookie/i, target);
      for (const location of reply.header('location'))
        assert.equal(new URL(location).host, 'login.example', `${target} -> ${location}`);
    }
  });

  test('mirror-target http://…$uri: a decoded CR/LF or space never reaches the mirror as a second request or header', async () => {
    const attack = await get('/x%20HTTP/1.1%0d%0aHost:%20evil%0d%0a%0d%0aGET%20/admin', 'mi.test');
    assert.equal(attack.status, 200);
    // The copy is sent, what a request line cannot carry percent-encoded: one request, one Host.
    const escaped = 'GET /x%20HTTP/1.1%0D%0AHost:%20evil%0D%0A%0D%0AGET%20/admin HTTP/1.1';
    await p.mirror.waitFor(/^GET \/x%20HTTP/);
    assert.equal((await get('/ok', 'mi.test')).status, 200);
    await p.mirror.waitFor(/^GET \/ok HTTP\/1\.1/);
    assert.deepEqual(p.mirror.heads.map(requestLine), [escaped, 'GET /ok HTTP/1.1']);
    for (const head of p.mirror.heads) assert.equal(field(head, 'host'), '127.0.0.1');
  });

  test('permanent-redirect to a path and app-root: a Host with `@` after its port or a foreign Host beside an absolute-form target never names another host', async () => {
    // A port that is not digits: 400 before any redirect (nginx echoes its $http_host whole).
    for (const host of [
      'pr.test:@evil.example',
      'pr.test:443@evil.example',
      'ar.test:@evil.example',
      'ar.test:a b',
    ]) {
      const reply = await get('/', host);
      assert.equal(reply.status, 400, host);
      assert.deepEqual(reply.header('location'), [], host);
    }
    const cases: Array<[target: string, host: string, location: string]> = [
      ['http://pr.test/x', 'evil.example', 'http://pr.test/new'],
      ['http://ar.test/', 'evil.example', 'http://ar.test/app'],
      // A numeric port is kept, as nginx's $http_host.
      ['/', 'ar.test:8080', 'http://ar.test:8080/app'],
    ];
    for (const [target, host, location] of cases) {
      const reply = await get(target, host);
      assert.deepEqual(reply.header('location'), [location], `${target} Host: ${host}`);
    }
  });

  test('x-forwarded-prefix with a rewrite capture: decoded CR/LF and control bytes never reach the backend in a header', async () => {
    const before = p.app.heads.length;
    // The LF case reaches the backend (the capture stops before the line feed, as PCRE's `.` does); a
    // capture with a CR or a control byte makes a value no request head can carry: the client's
    // request, refused 400 (TARGET_CAPTURE_UNSENDABLE), never sent. nginx would send the byte raw.
    for (const [target, status] of [
      ['/api/a%0d%0aX-Injected:%20y', 400],
      ['/api/a%0aX-Injected:%20y', 200],
      ['/api/a%01%7f', 400],
    ] as const) {
      const reply = await get(target, 'xfp.test');
      assert.equal(reply.status, status, target);
    }
    const seen = p.app.heads.slice(before);
    assert.equal(seen.length, 1, 'only the LF case reaches the backend');
    for (const head of seen) {
      assert.equal(field(head, 'x-injected'), undefined);
      assert.match(field(head, 'x-forwarded-prefix') ?? '', /^\/p\/[\x20-\x7e]*$/);
    }
  });

  test('rewrite-target https://new.example/$1: a capture with `@`, `//`, `\\` or CR/LF never changes the redirect host', async () => {
    for (const target of [
      '/go/@evil.example',
      '/go//evil.example',
      '/go/%5c%5cevil.example',
      '/go/%2f%2fevil.example',
      '/go/x%0d%0aLocation:%20https://evil.example',
      '/go/%40evil.example',
    ]) {
      const reply = await get(target, 'moved.test');
      assert.equal(reply.status, 302, target);
      const location = reply.header('location');
      assert.equal(location.length, 1, target);
      assert.equal(new URL(location[0]!).host, 'new.example', `${target} -> ${location[0]}`);
    }
  });

  test('custom-http-errors: an absolute-form target and a Host with `@` reach the error backend at `/` (with the arguments) and the origin-form X-Original-URI', async () => {
    const before = p.errors.heads.length;
    const evilBefore = p.evil.heads.length;
    const reply = await get('http://ce.test/x?y=1', 'ce.test:@evil.example');
    assert.equal(reply.status, 200);
    const seen = p.errors.heads.slice(before);
    assert.equal(seen.length, 1);
    assert.equal(requestLine(seen[0]!), 'GET /?y=1 HTTP/1.1');
    assert.equal(field(seen[0]!, 'x-original-uri'), '/x?y=1');
    assert.equal(field(seen[0]!, 'x-code'), '503');
    assert.equal(field(seen[0]!, 'x-namespace'), 'default');
    assert.equal(p.evil.heads.length, evilBefore);
  });
});
