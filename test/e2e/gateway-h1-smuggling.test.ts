// Request smuggling attempts against keepip's HTTP/1.1 server side, over real sockets: the backend is
// a raw TCP server that records every byte and splits what it receives into messages by the framing
// the gateway sent. No attempt may make a second request appear upstream hidden in a body.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { rawExchange } from '../helpers/net.ts';

/** A backend that answers every message it can frame with 200 "ok" and records each message's request line. */
function recordingBackend(): { server: net.Server; requestLines: string[]; bytes: Buffer[] } {
  const requestLines: string[] = [];
  const bytes: Buffer[] = [];
  const server = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      bytes.push(chunk);
      buf = Buffer.concat([buf, chunk]);
      for (let guard = 0; guard < 100; guard++) {
        const headEnd = buf.indexOf('\r\n\r\n');
        if (headEnd === -1) return;
        const head = buf.toString('latin1', 0, headEnd);
        const length = /\r\ncontent-length: *(\d+)/i.exec(head);
        let end: number;
        if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
          const last = buf.indexOf('\r\n0\r\n\r\n', headEnd);
          const empty = buf.indexOf('0\r\n\r\n', headEnd + 4) === headEnd + 4 ? headEnd + 4 + 5 : -1;
          if (last === -1 && empty === -1) return;
          end = empty !== -1 ? empty : last + 7;
        } else {
          end = headEnd + 4 + (length ? Number(length[1]) : 0);
          if (buf.length < end) return;
        }
        requestLines.push(head.slice(0, head.indexOf('\r\n')));
        buf = buf.subarray(end);
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      }
    });
  });
  return { server, requestLines, bytes };
}

function statusLines(received: Buffer): string[] {
  // Responses follow each other directly ("…okHTTP/1.1 200 OK"), so match status lines anywhere.
  return [...received.toString('latin1').matchAll(/HTTP\/1\.1 \d{3} [^\r\n]*/g)].map((m) => m[0]);
}

describe('gateway (keepip HTTP/1.1 engine): request smuggling never reaches the backend', () => {
  let gw: TestGateway;
  const backend = recordingBackend();

  before(async () => {
    await new Promise<void>((resolve) => backend.server.listen(0, '127.0.0.1', resolve));
    const port = (backend.server.address() as net.AddressInfo).port;
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'svc', ports: [port] }),
        ingress({ name: 'web', host: 's.example', paths: [{ path: '/', service: 'svc', port: 80 }] }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await new Promise<void>((resolve) => backend.server.close(() => resolve()));
  });

  const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: s.example\r\n\r\n';
  const rejected: [string, string, string][] = [
    [
      'Content-Length then Transfer-Encoding',
      `POST / HTTP/1.1\r\nHost: s.example\r\nContent-Length: ${5 + smuggled.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
      '400',
    ],
    [
      'Transfer-Encoding then Content-Length',
      `POST / HTTP/1.1\r\nHost: s.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n${smuggled}\r\n0\r\n\r\n`,
      '400',
    ],
    [
      'two different Content-Length',
      `POST / HTTP/1.1\r\nHost: s.example\r\nContent-Length: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
      '400',
    ],
    [
      'Transfer-Encoding hidden by obs-fold',
      `POST / HTTP/1.1\r\nHost: s.example\r\nX: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${smuggled}`,
      '400',
    ],
    ['bare LF line endings', `GET / HTTP/1.1\nHost: s.example\n\n${smuggled}`, '400'],
    [
      'Transfer-Encoding: xchunked',
      `POST / HTTP/1.1\r\nHost: s.example\r\nTransfer-Encoding: xchunked\r\n\r\n${smuggled}`,
      '501',
    ],
    [
      'oversize header section',
      `GET / HTTP/1.1\r\nHost: s.example\r\nX: ${'a'.repeat(20_000)}\r\n\r\n${smuggled}`,
      '431',
    ],
  ];

  for (const [name, payload, status] of rejected) {
    it(`${name}: ${status}, connection closed, nothing upstream`, async () => {
      const before = backend.requestLines.length;
      const bytesBefore = backend.bytes.length;
      const reply = await rawExchange({
        host: '127.0.0.1',
        port: gw.httpPort,
        payload,
        localAddress: '127.0.0.21',
      });
      assert.equal(reply.closedByServer, true);
      assert.deepEqual(
        statusLines(reply.received).map((l) => l.split(' ')[1]),
        [status],
      );
      assert.equal(backend.requestLines.length, before);
      assert.equal(backend.bytes.length, bytesBefore, 'no byte of the request went upstream');
    });
  }

  it('a bad chunk size after a good chunk: the connection is cut and /smuggled never arrives', async () => {
    const payload = `POST /c HTTP/1.1\r\nHost: s.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n\r\n${smuggled}`;
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      payload,
      localAddress: '127.0.0.22',
    });
    assert.equal(reply.closedByServer, true);
    assert.ok(statusLines(reply.received).length <= 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(
      !backend.requestLines.some((line) => line.includes('/smuggled')),
      backend.requestLines.join(', '),
    );
    assert.ok(!Buffer.concat(backend.bytes).toString('latin1').includes('/smuggled'));
  });

  it('a request hidden in a Content-Length body stays body; the pipelined one after it is its own request', async () => {
    const first = backend.requestLines.length;
    const payload =
      `POST /a HTTP/1.1\r\nHost: s.example\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}` +
      'GET /b HTTP/1.1\r\nHost: s.example\r\nConnection: close\r\n\r\n';
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      payload,
      localAddress: '127.0.0.23',
    });
    assert.equal(reply.closedByServer, true);
    assert.deepEqual(statusLines(reply.received), ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    assert.deepEqual(backend.requestLines.slice(first), ['POST /a HTTP/1.1', 'GET /b HTTP/1.1']);
  });

  it('a chunked body is re-framed upstream, trailers dropped; keep-alive serves the next request', async () => {
    const first = backend.requestLines.length;
    const bytesFirst = backend.bytes.length;
    const payload =
      'PUT /t HTTP/1.1\r\nHost: s.example\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: GET /smuggled HTTP/1.1\r\n\r\n' +
      'GET /u HTTP/1.1\r\nHost: s.example\r\nConnection: close\r\n\r\n';
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      payload,
      localAddress: '127.0.0.24',
    });
    assert.deepEqual(statusLines(reply.received), ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    assert.deepEqual(backend.requestLines.slice(first), ['PUT /t HTTP/1.1', 'GET /u HTTP/1.1']);
    const upstream = Buffer.concat(backend.bytes.slice(bytesFirst)).toString('latin1');
    assert.ok(!upstream.includes('X-Trailer'), 'trailers are not forwarded');
    assert.ok(!upstream.includes('ext=1'), 'chunk extensions are not forwarded');
  });
});

describe('gateway: a refused upgrade is never a tunnel', () => {
  // The backend answers an upgrade with 200 and keeps the connection; every request line it reads is recorded.
  const lines: string[] = [];
  const backend = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('latin1').split('\r\n')) {
        if (/^[A-Z]+ \/\S* HTTP\/1\.1$/.test(line)) {
          lines.push(line);
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nno');
        }
      }
    });
  });
  let gw: TestGateway;

  before(async () => {
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as net.AddressInfo).port;
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'svc', ports: [port] }),
        ingress({
          name: 'ws',
          host: 'w.example',
          paths: [{ path: '/ws', pathType: 'Exact', service: 'svc', port: 80 }],
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
  });

  const upgrade = 'GET /ws HTTP/1.1\r\nHost: w.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
  const hidden = 'GET /admin HTTP/1.1\r\nHost: w.example\r\n\r\n';

  it('bytes after the upgrade request are not sent upstream when the backend refuses', async () => {
    const before = lines.length;
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      payload: upgrade + hidden,
      timeoutMs: 2_000,
    });
    assert.equal(reply.closedByServer, true);
    assert.deepEqual(lines.slice(before), ['GET /ws HTTP/1.1']);
  });

  it('a request sent after the refusal does not reach the backend', async () => {
    const before = lines.length;
    const client = net.connect({ host: '127.0.0.1', port: gw.httpPort });
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => {
      received.push(chunk);
      if (Buffer.concat(received).toString('latin1').endsWith('no')) client.write(hidden);
    });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.on('error', () => client.destroy());
    client.write(upgrade);
    const timer = setTimeout(() => client.destroy(), 2_000);
    await closed;
    clearTimeout(timer);
    assert.match(Buffer.concat(received).toString('latin1'), /^HTTP\/1\.1 200 OK/);
    assert.deepEqual(lines.slice(before), ['GET /ws HTTP/1.1']);
  });
});
