// h2c smuggling (BishopFox, 2020): an HTTP/1.1 `Upgrade: h2c` request to a location the client may
// reach, passed on to a backend that speaks h2c, turns the connection into an HTTP/2 tunnel; every
// request inside it then reaches the backend without passing a location, so a per-path allowlist
// (here /admin) is bypassed. nginx with ingress-nginx's `Upgrade $http_upgrade` passes the upgrade
// on; keepip never offers h2c upstream: the request is an ordinary one (its body forwarded, Upgrade
// dropped), its answer is the client's, the connection stays HTTP/1.1, and a backend that switches
// protocols all the same gets no tunnel either (502).
// WebSocket upgrades are unchanged (control).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import http from '../../src/node-http.ts';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { completeResponses, openRaw, rawExchange } from '../helpers/net.ts';
import { requireBinary } from '../helpers/process.ts';

const HOST = 'app.example';
const CLIENT = '127.0.0.61';

/** A backend that switches to h2c (or WebSocket) on any upgrade, and records what reached it. */
async function h2cBackend() {
  const seen: string[] = [];
  const tunnel = http2.createServer();
  tunnel.on('stream', (stream, headers) => {
    seen.push(`h2 ${headers[':path']}`);
    stream.respond({ ':status': 200 });
    stream.end(`secret ${headers[':path']}`);
  });
  const server = http.createServer((req, res) => {
    seen.push(`h1 ${req.url} upgrade=${req.headers.upgrade ?? '-'}`);
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => res.end(`public ${req.url}${body === '' ? '' : ` body=${body}`}`));
  });
  server.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
    const protocol = String(req.headers.upgrade);
    seen.push(`upgrade ${req.url} ${protocol}`);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\n\r\n`);
    if (/h2c/i.test(protocol)) {
      if (head.length > 0) socket.unshift(head);
      tunnel.emit('connection', socket);
    } else socket.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    seen,
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      tunnel.close();
    },
  };
}

/** A backend that answers 101 to anything, offered an upgrade or not, then speaks HTTP/2. */
async function switchingBackend() {
  const requests: string[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.once('data', (chunk: Buffer) => {
      requests.push(chunk.toString('latin1'));
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { requests, server, port: (server.address() as net.AddressInfo).port };
}

function h2cUpgrade(path: string, upgrade: string): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: ${upgrade}\r\n` +
    'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n'
  );
}

describe('h2c smuggling: an Upgrade: h2c never opens a tunnel past the locations', () => {
  let backend: Awaited<ReturnType<typeof h2cBackend>>;
  let rogue: Awaited<ReturnType<typeof switchingBackend>>;
  let gw: TestGateway;

  before(async () => {
    backend = await h2cBackend();
    rogue = await switchingBackend();
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'app', ports: [backend.port] }),
        ingress({
          name: 'admin',
          host: HOST,
          paths: [{ path: '/admin', service: 'app', port: 80 }],
          annotations: { 'whitelist-source-range': '10.0.0.0/8' },
        }),
        ingress({ name: 'public', host: HOST, paths: [{ path: '/', service: 'app', port: 80 }] }),
        ...serviceWithEndpoints({ name: 'rogue', ports: [rogue.port] }),
        ingress({ name: 'rogue', host: 'rogue.example', paths: [{ path: '/', service: 'rogue', port: 80 }] }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await backend.close();
    rogue.server.close();
  });

  for (const upgrade of ['h2c', 'H2C', 'websocket, h2c']) {
    it(`Upgrade: ${upgrade} on an allowed path: an ordinary request to the backend, no 101, and the connection stays HTTP/1.1 (its next request meets the locations)`, async () => {
      backend.seen.length = 0;
      const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: CLIENT });
      try {
        conn.socket.write(h2cUpgrade('/', upgrade));
        const first = await conn.until((got) => completeResponses(got) === 1);
        assert.match(first.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n[\s\S]*public \/$/);
        assert.deepEqual(backend.seen, ['h1 / upgrade=-']);
        // Had the backend switched, these bytes would be HTTP/2 inside its tunnel; they are a request
        // the gateway routes, and /admin refuses this client.
        conn.socket.write(`GET /admin HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
        const both = await conn.until((got) => completeResponses(got) === 2);
        assert.match(both.toString('latin1'), /\r\n\r\npublic \/HTTP\/1\.1 403 /);
        assert.deepEqual(backend.seen, ['h1 / upgrade=-']);
        await gw.access.waitFor(/^127\.0\.0\.61 .*"GET \/ HTTP\/1\.1" 200 /);
      } finally {
        conn.destroy();
      }
    });
  }

  it('Upgrade: h2c on a POST: its body reaches the backend and the answer comes at once (no wait for a 101)', async () => {
    backend.seen.length = 0;
    const body = 'name=value';
    const payload =
      `POST /form HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${body.length}\r\nUpgrade: h2c\r\n` +
      `HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n${body}`;
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: CLIENT });
    try {
      conn.socket.write(payload);
      const reply = await conn.until((got) => completeResponses(got) === 1);
      assert.match(reply.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n[\s\S]*public \/form body=name=value$/);
    } finally {
      conn.destroy();
    }
  });

  it('curl --http2 -d over plain HTTP (a POST offering h2c) gets the answer to its POST', async () => {
    const curl = requireBinary('curl');
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        curl,
        [
          '-sS',
          '--http2',
          '-d',
          'a=1',
          '--interface',
          CLIENT,
          '-H',
          `Host: ${HOST}`,
          `http://127.0.0.1:${gw.httpPort}/post`,
        ],
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      ),
    );
    assert.equal(out, 'public /post body=a=1');
  });

  it('a backend that switches to h2c without being offered an upgrade: 502, no tunnel', async () => {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: CLIENT });
    conn.socket.write(h2cUpgrade('/', 'h2c').replace(HOST, 'rogue.example'));
    const reply = await conn.until((got) => completeResponses(got) === 1);
    conn.destroy();
    assert.match(reply.toString('latin1'), /^HTTP\/1\.1 502 /);
    assert.doesNotMatch(rogue.requests.join(''), /\r\nupgrade:/i);
    // The HTTP/1.1 response reader refuses a 101 the request did not ask for.
    await gw.errors.waitFor(/upstream sent "101 Switching Protocols" to a request that asked for no upgrade/);
  });

  it('the denied path stays denied (control: /admin is 403 from this client)', async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      localAddress: CLIENT,
      payload: `GET /admin HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`,
      timeoutMs: 5_000,
    });
    assert.match(reply.received.toString('latin1'), /^HTTP\/1\.1 403 /);
  });

  it('curl --http2 over plain HTTP (it offers h2c) gets the HTTP/1.1 answer', async () => {
    const curl = requireBinary('curl');
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        curl,
        ['-sS', '--http2', '--interface', CLIENT, '-H', `Host: ${HOST}`, `http://127.0.0.1:${gw.httpPort}/x`],
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      ),
    );
    assert.equal(out, 'public /x');
  });

  it('WebSocket upgrades still switch (control)', async () => {
    backend.seen.length = 0;
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      localAddress: CLIENT,
      payload: `GET /ws HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
      timeoutMs: 5_000,
    });
    assert.match(reply.received.toString('latin1'), /^HTTP\/1\.1 101 /);
    assert.deepEqual(backend.seen, ['upgrade /ws websocket']);
  });
});
