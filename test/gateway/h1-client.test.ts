// keepip's upstream HTTP/1.1 client against scripted backends on real sockets: what goes on the wire,
// response framing (Content-Length, chunked with extensions and trailers, close-delimited, HEAD,
// 1xx, 204), when a connection is reused and when it must not be, errors, timeouts, stale retries.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { H1Pool, type UpstreamDispatchOptions, type UpstreamHandler } from '../../src/gateway/h1-client.ts';
import { refusingPort } from '../helpers/net.ts';

interface Backend {
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  /** Raw bytes received, per connection. */
  received: string[];
  close(): Promise<void>;
}

const open: Backend[] = [];
const pools: H1Pool[] = [];
after(async () => {
  await Promise.all(pools.map((pool) => pool.destroy()));
  await Promise.all(open.map((backend) => backend.close()));
});

/**
 * A backend that calls `answer` once per complete request head received on a connection (the
 * request's index on that connection and the socket); bodies are not parsed, only recorded.
 */
async function backend(answer: (socket: net.Socket, index: number, head: string) => void): Promise<Backend> {
  const sockets = new Set<net.Socket>();
  const state: Backend = {
    port: 0,
    accepted: 0,
    received: [],
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const slot = state.accepted;
    state.accepted += 1;
    state.received[slot] = '';
    let index = 0;
    let scanned = 0;
    socket.on('data', (data: Buffer) => {
      state.received[slot] += data.toString('latin1');
      const text = state.received[slot] as string;
      for (;;) {
        const end = text.indexOf('\r\n\r\n', scanned);
        if (end < 0) break;
        const head = text.slice(scanned, end);
        // Skip the body: Content-Length bytes, or up to the last chunk of a chunked one.
        const length = /\r\ncontent-length: (\d+)/i.exec(head);
        let next = end + 4 + (length ? Number(length[1]) : 0);
        if (/\r\ntransfer-encoding: chunked/i.test(head)) {
          const last = text.indexOf('\r\n0\r\n\r\n', end);
          if (last < 0) break;
          next = last + 7;
        }
        if (next > text.length) break;
        scanned = next;
        answer(socket, index, head);
        index += 1;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as net.AddressInfo).port;
  open.push(state);
  return state;
}

function poolFor(b: Backend): H1Pool {
  const pool = new H1Pool({ address: '127.0.0.1', port: b.port, connectTimeoutMs: 2_000 });
  pools.push(pool);
  return pool;
}

interface Result {
  status: number | null;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  error: (Error & { code?: string }) | null;
  starts: number;
}

function request(pool: H1Pool, options: Partial<UpstreamDispatchOptions> = {}): Promise<Result> {
  return new Promise((resolve) => {
    const result: Result = { status: null, headers: {}, body: '', error: null, starts: 0 };
    const handler: UpstreamHandler = {
      onResponseStart(_c, status, headers) {
        result.starts += 1;
        result.status = status;
        result.headers = headers;
      },
      onResponseData(_c, chunk) {
        result.body += chunk.toString('latin1');
      },
      onResponseEnd() {
        resolve(result);
      },
      onResponseError(_c, error) {
        result.error = error;
        resolve(result);
      },
    };
    pool.dispatch(
      {
        method: 'GET',
        path: '/',
        headers: { host: 'app.test' },
        body: null,
        headersTimeout: 5_000,
        bodyTimeout: 5_000,
        ...options,
      },
      handler,
    );
  });
}

const ok = (socket: net.Socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');

test('the request head on the wire: host and connection first, the rest in order; keep-alive reuses one connection', async () => {
  const b = await backend((socket) => ok(socket));
  const pool = poolFor(b);
  for (let i = 0; i < 3; i += 1) {
    const r = await request(pool, {
      path: `/p?i=${i}`,
      headers: { 'x-a': '1', host: 'app.test', 'x-multi': ['a', 'b'] },
    });
    assert.equal(r.error, null);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
  }
  assert.equal(b.accepted, 1, 'all three requests on one connection');
  assert.equal(
    b.received[0]?.split('\r\n\r\n')[0],
    'GET /p?i=0 HTTP/1.1\r\nhost: app.test\r\nconnection: keep-alive\r\nx-a: 1\r\nx-multi: a\r\nx-multi: b',
  );
  assert.equal(pool.connections, 1);
});

test('chunked responses with extensions and trailers, split across writes, keep the connection', async () => {
  const b = await backend((socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel');
    setImmediate(() => socket.write('lo\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n'));
  });
  const pool = poolFor(b);
  const first = await request(pool);
  assert.equal(first.error, null);
  assert.equal(first.body, 'hello world');
  assert.equal(first.headers['transfer-encoding'], 'chunked');
  const second = await request(pool);
  assert.equal(second.body, 'hello world');
  assert.equal(b.accepted, 1);
});

test('interim 1xx responses are skipped; HEAD, 204 and 304 end without a body', async () => {
  const b = await backend((socket, _index, head) => {
    if (head.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n');
    else if (head.includes('/204')) socket.write('HTTP/1.1 204 No Content\r\n\r\n');
    else if (head.includes('/304')) socket.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n');
    else
      socket.write(
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew',
      );
  });
  const pool = poolFor(b);
  const interim = await request(pool, { path: '/1xx' });
  assert.deepEqual([interim.status, interim.starts, interim.body], [201, 1, 'new']);
  assert.equal(interim.headers.link, undefined, 'interim fields do not leak into the final response');
  const noContent = await request(pool, { path: '/204' });
  assert.deepEqual([noContent.status, noContent.body, noContent.error], [204, '', null]);
  const notModified = await request(pool, { path: '/304' });
  assert.deepEqual([notModified.status, notModified.body, notModified.error], [304, '', null]);
  assert.equal(b.accepted, 1, '1xx, 204 and 304 keep the connection');
  const head = await request(pool, { method: 'HEAD' });
  assert.deepEqual([head.status, head.body, head.headers['content-length']], [200, '', '10']);
  assert.match(b.received.join(''), /HEAD \/ HTTP\/1\.1\r\nhost: app\.test\r\nconnection: close\r\n/);
});

test('Connection: close, a close-delimited body, and bytes after the body each cost the connection', async () => {
  const b = await backend((socket, _index, head) => {
    if (head.includes('/close'))
      socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok');
    else if (head.includes('/eof')) socket.end('HTTP/1.1 200 OK\r\n\r\nuntil the end');
    else
      socket.write(
        'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled',
      );
  });
  const pool = poolFor(b);
  assert.equal((await request(pool, { path: '/close' })).body, 'ok');
  const eof = await request(pool, { path: '/eof' });
  assert.deepEqual([eof.status, eof.body, eof.error], [200, 'until the end', null]);
  const extra = await request(pool, { path: '/extra' });
  assert.equal(extra.body, 'ok');
  const next = await request(pool, { path: '/close' });
  assert.equal(next.body, 'ok', 'the smuggled response is never read as the answer to the next request');
  assert.equal(b.accepted, 4, 'a new connection every time');
});

test('ambiguous framing is refused (502 material) and the connection closed', async () => {
  const b = await backend((socket, _index, head) => {
    if (head.includes('/both'))
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    else if (head.includes('/dup'))
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd');
    else if (head.includes('/chunk'))
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    else socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`);
  });
  const pool = poolFor(b);
  for (const path of ['/both', '/dup', '/chunk', '/big']) {
    const r = await request(pool, { path });
    // A head nginx would call an invalid header (proxy-next-upstream invalid_header); a body, an error.
    assert.equal(r.error?.code, path === '/chunk' ? 'UPSTREAM_ERROR' : 'UPSTREAM_INVALID_HEADER', path);
    assert.match(r.error?.message ?? '', /^upstream sent/, path);
  }
  assert.equal(b.accepted, 4);
  assert.equal(pool.connections, 0);
});

test('a body shorter than its Content-Length, or a close before any answer, is UPSTREAM_CLOSED', async () => {
  const b = await backend((socket, _index, head) => {
    if (head.includes('/short')) socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd');
    else socket.destroy();
  });
  const pool = poolFor(b);
  const short = await request(pool, { path: '/short' });
  assert.equal(short.status, 200);
  assert.equal(short.body, 'abcd');
  assert.equal(short.error?.code, 'UPSTREAM_CLOSED');
  const nothing = await request(pool, { path: '/nothing' });
  assert.equal(nothing.status, null);
  assert.match(nothing.error?.code ?? '', /^(UPSTREAM_CLOSED|ECONNRESET)$/);
});

test('timeouts: connect refused is ECONNREFUSED; no answer within headersTimeout is UPSTREAM_READ_TIMEOUT', async () => {
  const silent = await backend(() => {});
  const slow = await request(poolFor(silent), { headersTimeout: 100 });
  assert.equal(slow.error?.code, 'UPSTREAM_READ_TIMEOUT');
  // A port nothing listens on (held, so that no other test's listener can be handed it meanwhile).
  const refused = await request(poolFor({ port: await refusingPort() } as Backend));
  assert.equal(refused.error?.code, 'ECONNREFUSED');
});

test('no read timeout while a streamed body is still going out on a new connection (proxy_read_timeout starts once it is sent)', async () => {
  const b = await backend(() => {});
  const pool = poolFor(b);
  let release = (): void => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  async function* slowBody() {
    yield Buffer.from('abc');
    await held;
  }
  let controller: { abort(reason: Error): void } | null = null;
  let error: (Error & { code?: string }) | null = null;
  const settled = new Promise<void>((resolve) => {
    pool.dispatch(
      {
        method: 'POST',
        path: '/',
        headers: { host: 'h', 'content-length': '6' },
        body: slowBody(),
        headersTimeout: 1,
        bodyTimeout: 5_000,
      },
      {
        onRequestStart: (c) => {
          controller = c;
        },
        onResponseError: (_c, e) => {
          error = e;
          resolve();
        },
      },
    );
  });
  // The backend has the head and the first bytes; a 1 ms read timer (the bug: armed at connect) would
  // have fired by the time the next macrotasks have run, with the body still held by the client.
  while (!(b.received[0] ?? '').endsWith('abc')) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(error, null, 'no UPSTREAM_READ_TIMEOUT while the body is being sent');
  (controller as { abort(reason: Error): void } | null)?.abort(
    Object.assign(new Error('done'), { code: 'TEST_DONE' }),
  );
  await settled;
  release();
  assert.equal((error as (Error & { code?: string }) | null)?.code, 'TEST_DONE');
});

test('request bodies: Content-Length as given, otherwise chunked; POST without a body sends content-length: 0', async () => {
  const b = await backend((socket) => ok(socket));
  const pool = poolFor(b);
  async function* parts() {
    yield Buffer.from('abc');
    yield Buffer.from('def');
  }
  const framings: Record<string, string>[] = [{ host: 'h', 'content-length': '6' }, { host: 'h' }];
  for (const headers of framings) {
    assert.equal((await request(pool, { method: 'POST', headers, body: parts() })).body, 'ok');
  }
  assert.equal((await request(pool, { method: 'POST', headers: { host: 'h' } })).body, 'ok');
  assert.equal(b.accepted, 1);
  const wire = b.received.join('');
  assert.ok(
    wire.includes('POST / HTTP/1.1\r\nhost: h\r\nconnection: keep-alive\r\ncontent-length: 6\r\n\r\nabcdef'),
  );
  assert.ok(
    wire.includes(
      'connection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n',
    ),
    wire,
  );
  assert.ok(
    wire.endsWith('POST / HTTP/1.1\r\nhost: h\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n'),
    JSON.stringify(wire),
  );
});

test('a body longer than its Content-Length is never written past the declared length', async () => {
  const b = await backend(() => {});
  const pool = poolFor(b);
  async function* parts() {
    yield Buffer.from('abc');
    yield Buffer.from('GET /smuggled HTTP/1.1\r\n\r\n');
  }
  const r = await request(pool, {
    method: 'POST',
    headers: { host: 'h', 'content-length': '3' },
    body: parts(),
  });
  assert.equal(r.error?.code, 'UPSTREAM_ERROR');
  assert.ok(!(b.received[0] ?? '').includes('smuggled'));
});

test('unsafe request targets and header values are refused before anything is sent', async () => {
  const b = await backend((socket) => ok(socket));
  const pool = poolFor(b);
  const target = await request(pool, { path: '/a b' });
  assert.equal(target.error?.code, 'UPSTREAM_ERROR');
  const value = await request(pool, { headers: { host: 'h', 'x-a': 'a\r\nx-injected: 1' } });
  assert.equal(value.error?.code, 'UPSTREAM_ERROR');
  assert.ok(!b.received.join('').includes('x-injected'));
});

test('a kept-alive connection closed under a GET is retried once on a new one; a POST is not', async () => {
  // The backend answers the first request on each connection and drops the connection on the second.
  const b = await backend((socket, index) => (index === 0 ? ok(socket) : socket.destroy()));
  const pool = poolFor(b);
  assert.equal((await request(pool)).body, 'ok');
  const retried = await request(pool);
  assert.equal(retried.error, null);
  assert.equal(retried.body, 'ok');
  assert.equal(b.accepted, 2);
  const post = await request(pool, { method: 'POST', headers: { host: 'h' } });
  assert.match(post.error?.code ?? '', /^(UPSTREAM_CLOSED|ECONNRESET)$/);
});

test('bytes from the upstream while a connection is idle close it', async () => {
  const b = await backend((socket) => {
    ok(socket);
    setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate'), 20);
  });
  const pool = poolFor(b);
  assert.equal((await request(pool)).body, 'ok');
  // Eventually (the late bytes follow 20 ms later); the bound is generous for a busy machine.
  const deadline = Date.now() + 15_000;
  while (pool.connections > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(pool.connections, 0);
  assert.equal((await request(pool)).body, 'ok', 'the late bytes are not taken as the next answer');
});

test('close() lets the request in flight finish, then closes; later dispatches fail', async () => {
  const b = await backend((socket) => setTimeout(() => ok(socket), 30));
  const pool = poolFor(b);
  const pending = request(pool);
  const closed = pool.close();
  assert.equal((await pending).body, 'ok');
  await closed;
  assert.equal(pool.connections, 0);
  assert.equal((await request(pool)).error?.code, 'UPSTREAM_CLOSED');
});

test('a response paused by a slow client and ended in the same read leaves a pooled connection that reads the next answer', async () => {
  const b = await backend((socket) => ok(socket));
  const pool = poolFor(b);
  // As the proxy does when the client's socket is full: pause on the last data of the response.
  const paused = await new Promise<Result>((resolve) => {
    const result: Result = { status: null, headers: {}, body: '', error: null, starts: 0 };
    pool.dispatch(
      {
        method: 'GET',
        path: '/slow-client',
        headers: { host: 'app.test' },
        body: null,
        headersTimeout: 5_000,
        bodyTimeout: 5_000,
      },
      {
        onResponseStart(_c, status) {
          result.status = status;
        },
        onResponseData(controller, chunk) {
          result.body += chunk.toString('latin1');
          controller.pause();
        },
        onResponseEnd: () => resolve(result),
        onResponseError(_c, error) {
          result.error = error;
          resolve(result);
        },
      },
    );
  });
  assert.deepEqual([paused.status, paused.body, paused.error], [200, 'ok', null]);
  const next = await request(pool, { path: '/next', headersTimeout: 5_000 });
  assert.deepEqual([next.status, next.body, next.error], [200, 'ok', null]);
  assert.equal(b.accepted, 1, 'the same connection, reused');
});
