// WebSocket through the gateway: the upgrade passes the same pipeline (client IP, route, access rules),
// then bytes flow both ways; a denied client gets 403 on the upgrade; a dead backend 502.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { refusingPort } from '../helpers/net.ts';

/** A client whose messages are queued from the start (the backend speaks first, in the 101's segment). */
interface Client {
  socket: WebSocket;
  next(): Promise<string>;
}

function open(url: string, options: { localAddress?: string; host?: string } = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, {
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      ...(options.host ? { headers: { host: options.host } } : {}),
    });
    const queue: string[] = [];
    const waiting: ((text: string) => void)[] = [];
    socket.on('message', (data) => {
      const text = data.toString();
      const waiter = waiting.shift();
      if (waiter) waiter(text);
      else queue.push(text);
    });
    const next = () =>
      new Promise<string>((done) => {
        const queued = queue.shift();
        if (queued !== undefined) done(queued);
        else waiting.push(done);
      });
    socket.once('open', () => resolve({ socket, next }));
    socket.once('unexpected-response', (_req, res) =>
      reject(Object.assign(new Error('unexpected response'), { status: res.statusCode })),
    );
    socket.once('error', reject);
  });
}

describe('gateway WebSocket', () => {
  let server: Server;
  let wss: WebSocketServer;
  let gw: TestGateway;

  before(async () => {
    // A backend that first reports the headers it got, then echoes.
    server = http.createServer((_req, res) => res.writeHead(426).end());
    wss = new WebSocketServer({ server });
    wss.on('connection', (socket, req) => {
      socket.send(JSON.stringify({ realIp: req.headers['x-real-ip'], url: req.url }));
      socket.on('message', (data, binary) => socket.send(data, { binary }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'ws', ports: [port] }),
        ...serviceWithEndpoints({ name: 'dead', ports: [await refusingPort()] }),
        // Round robin starts at the first endpoint: refused ones, then the live backend.
        ...serviceWithEndpoints({ name: 'retry', ports: [await refusingPort(), port] }),
        ...serviceWithEndpoints({ name: 'retry-off', ports: [await refusingPort(), port] }),
        ...serviceWithEndpoints({
          name: 'retry-tries',
          ports: [await refusingPort(), await refusingPort(), port],
        }),
        ingress({
          name: 'ws',
          host: 'ws.example.com',
          paths: [{ path: '/', service: 'ws', port: 80 }],
          annotations: { 'allowlist-source-range': '127.0.0.31/32' },
        }),
        ingress({
          name: 'dead',
          host: 'dead.example.com',
          paths: [{ path: '/', service: 'dead', port: 80 }],
        }),
        ingress({
          name: 'retry',
          host: 'retry.example.com',
          paths: [{ path: '/', service: 'retry', port: 80 }],
        }),
        ingress({
          name: 'retry-off',
          host: 'retry-off.example.com',
          paths: [{ path: '/', service: 'retry-off', port: 80 }],
          annotations: { 'proxy-next-upstream': 'off' },
        }),
        ingress({
          name: 'retry-tries',
          host: 'retry-tries.example.com',
          paths: [{ path: '/', service: 'retry-tries', port: 80 }],
          annotations: { 'proxy-next-upstream-tries': '2' },
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    for (const client of wss.clients) client.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('an allowed client upgrades, the backend sees its address, and messages echo both ways', async () => {
    const client = await open(`ws://127.0.0.1:${gw.httpPort}/chat?room=1`, {
      localAddress: '127.0.0.31',
      host: 'ws.example.com',
    });
    try {
      const hello = JSON.parse(await client.next()) as { realIp: string; url: string };
      assert.deepEqual(hello, { realIp: '127.0.0.31', url: '/chat?room=1' });
      for (const text of ['one', 'two', 'x'.repeat(100_000)]) {
        client.socket.send(text);
        assert.equal(await client.next(), text);
      }
    } finally {
      client.socket.close();
    }
    await gw.access.waitFor(/^127\.0\.0\.31 - - .*"GET \/chat\?room=1 HTTP\/1\.1" 101 /);
  });

  test('a client outside the allowlist gets 403 on the upgrade and a forbidden log line', async () => {
    await assert.rejects(
      open(`ws://127.0.0.1:${gw.httpPort}/chat`, { localAddress: '127.0.0.32', host: 'ws.example.com' }),
      (error: Error & { status?: number }) => error.status === 403,
    );
    await gw.errors.waitFor(/access forbidden by rule, client: 127\.0\.0\.32, server: ws\.example\.com/);
  });

  test('an upgrade to a backend that refuses connections is a 502', async () => {
    await assert.rejects(
      open(`ws://127.0.0.1:${gw.httpPort}/`, { host: 'dead.example.com' }),
      (error: Error & { status?: number }) => error.status === 502,
    );
  });

  test('proxy-next-upstream applies to upgrades: a refused endpoint goes on, not with off or past the tries', async () => {
    const client = await open(`ws://127.0.0.1:${gw.httpPort}/x`, { host: 'retry.example.com' });
    assert.equal((JSON.parse(await client.next()) as { url: string }).url, '/x');
    client.socket.close();
    for (const host of ['retry-off.example.com', 'retry-tries.example.com']) {
      await assert.rejects(
        open(`ws://127.0.0.1:${gw.httpPort}/`, { host }),
        (error: Error & { status?: number }) => error.status === 502,
        host,
      );
    }
  });
});
