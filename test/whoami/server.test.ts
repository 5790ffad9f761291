import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import http from '../../src/node-http.ts';
import net from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import type { WhoamiEcho } from '../../src/whoami/echo.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';

let whoami: RunningWhoami;
let port: number;

before(async () => {
  whoami = await startWhoami({ host: '127.0.0.1', port: 0, name: 'backend-a' });
  port = whoami.address.port;
});
after(() => whoami.close());

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function request(options: {
  path?: string;
  method?: string;
  headers?: OutgoingHttpHeaders;
  localAddress?: string;
  body?: Buffer;
}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/',
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        agent: false,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

test('JSON: the remote address and port are those of a client bound to 127.0.0.42', async () => {
  const ports: number[] = [];
  const reply = await new Promise<Reply>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/some/path?q=1',
        headers: { accept: 'application/json', host: 'git.example.com', 'x-test': ['one', 'two'] },
        localAddress: '127.0.0.42',
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('socket', (s) => s.once('connect', () => ports.push(s.localPort ?? 0)));
    req.on('error', reject);
    req.end();
  });
  assert.equal(reply.status, 200);
  assert.match(String(reply.headers['content-type']), /^application\/json/);
  const echo = JSON.parse(reply.body.toString('utf8')) as WhoamiEcho;
  assert.equal(echo.name, 'backend-a');
  assert.equal(echo.remoteAddress, '127.0.0.42');
  assert.equal(echo.remotePort, ports[0]);
  assert.equal(echo.localAddress, '127.0.0.1');
  assert.equal(echo.localPort, port);
  assert.equal(echo.method, 'GET');
  assert.equal(echo.url, '/some/path?q=1');
  assert.equal(echo.path, '/some/path');
  assert.equal(echo.host, 'git.example.com');
  assert.equal(echo.protocol, 'HTTP/1.1');
  assert.equal(echo.headers['x-test'], 'one, two');
  assert.equal(echo.headers.accept, 'application/json');
  assert.equal(echo.body, undefined);
});

test('?format=json selects JSON without an Accept header; a POST body is counted and hashed', async () => {
  const body = Buffer.alloc(100_000, 7);
  const reply = await request({
    path: '/upload?format=json',
    method: 'POST',
    body,
    localAddress: '127.0.0.43',
  });
  const echo = JSON.parse(reply.body.toString('utf8')) as WhoamiEcho;
  assert.equal(echo.method, 'POST');
  assert.equal(echo.remoteAddress, '127.0.0.43');
  assert.deepEqual(echo.body, {
    bytes: body.length,
    sha256: createHash('sha256').update(body).digest('hex'),
  });
});

test('text mode: traefik/whoami-style lines with the request line and headers as sent', async () => {
  const reply = await request({
    path: '/x?y=2',
    headers: { 'X-Real-IP': '203.0.113.9' },
    localAddress: '127.0.0.44',
  });
  assert.equal(reply.status, 200);
  assert.match(String(reply.headers['content-type']), /^text\/plain/);
  const text = reply.body.toString('utf8');
  assert.match(text, /^Name: backend-a$/m);
  assert.match(text, /^RemoteAddr: 127\.0\.0\.44:\d+$/m);
  assert.match(text, /^GET \/x\?y=2 HTTP\/1\.1$/m);
  assert.match(text, /^X-Real-IP: 203\.0\.113\.9$/m);
});

test('GET /health answers 200; a bad ?wait= is a 400 naming the code; a short wait answers', async () => {
  const health = await request({ path: '/health' });
  assert.equal(health.status, 200);
  assert.equal(health.body.toString(), 'ok\n');
  const bad = await request({ path: '/?wait=forever' });
  assert.equal(bad.status, 400);
  assert.match(bad.body.toString(), /WHOAMI_BAD_WAIT/);
  const waited = await request({ path: '/?wait=10ms&format=json' });
  assert.equal(waited.status, 200);
  assert.equal((JSON.parse(waited.body.toString()) as WhoamiEcho).path, '/');
});

test('WebSocket echo: text stays text, binary stays binary, on any path', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/any/path`, { localAddress: '127.0.0.45' });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const received: { data: Buffer; isBinary: boolean }[] = [];
  const two = new Promise<void>((resolve) => {
    ws.on('message', (data, isBinary) => {
      received.push({ data: Buffer.from(data as Buffer), isBinary });
      if (received.length === 2) resolve();
    });
  });
  ws.send('hello keepip');
  ws.send(Buffer.from([0, 1, 2, 255]), { binary: true });
  await two;
  ws.close();
  assert.equal(received[0]?.isBinary, false);
  assert.equal(received[0]?.data.toString('utf8'), 'hello keepip');
  assert.equal(received[1]?.isBinary, true);
  assert.deepEqual([...(received[1]?.data ?? [])], [0, 1, 2, 255]);
});

test('a WebSocket message of 1 MiB is echoed; a larger one closes the socket with 1009 (message too big)', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const echoed = new Promise<number>((resolve) =>
    ws.once('message', (data) => resolve((data as Buffer).length)),
  );
  ws.send(Buffer.alloc(1024 * 1024, 1), { binary: true });
  assert.equal(await echoed, 1024 * 1024);
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.send(Buffer.alloc(1024 * 1024 + 1, 1), { binary: true });
  assert.equal(await closed, 1009);
});

test('the global WebSocket client gets its messages back too', async () => {
  const ws = new globalThis.WebSocket(`ws://127.0.0.1:${port}/`);
  const echoed = await new Promise<string>((resolve, reject) => {
    ws.onopen = () => ws.send('ping');
    ws.onmessage = (event) => resolve(String(event.data));
    ws.onerror = () => reject(new Error('websocket error'));
  });
  ws.close();
  assert.equal(echoed, 'ping');
});

test('an Upgrade other than websocket is refused with 400', async () => {
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
    });
    let text = '';
    socket.on('data', (c) => (text += c.toString('latin1')));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
  assert.match(reply, /^HTTP\/1\.1 400 /);
});

test('close() ends idle keep-alive connections and WebSockets so nothing lingers', async () => {
  const other = await startWhoami({ host: '127.0.0.1', port: 0 });
  const agent = new http.Agent({ keepAlive: true });
  // The response has ended (the connection is idle in the agent) before close() is called: a signal,
  // not a sleep.
  // (Wrapped in an object: resolving with the close promise itself would wait for the close.)
  const { socketClosed } = await new Promise<{ socketClosed: Promise<void> }>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: other.address.port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => {
        const socket = req.socket;
        resolve({
          socketClosed:
            socket && !socket.closed
              ? new Promise((closed) => socket.once('close', () => closed()))
              : Promise.resolve(),
        });
      });
    });
    req.on('error', reject);
  });
  const ws = new WebSocket(`ws://127.0.0.1:${other.address.port}/`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const wsClosed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  await other.close();
  await Promise.all([socketClosed, wsClosed]);
  agent.destroy();
});
