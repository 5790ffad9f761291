// keepip's HTTP/1.1 server side end to end, on behaviour a client notices: keep-alive and HTTP/1.0,
// pipelined responses in order, HEAD, Expect: 100-continue only when the body is read, bodies streamed
// and re-framed upstream, 413, the client header timeout and the keep-alive timeout. The timeouts are
// exercised on a gateway of their own with short deadlines, asserted to fire within a generous bound;
// the other tests run with the default deadlines, so a busy machine cannot make one fire early there.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import http from '../../src/node-http.ts';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { completeResponses, decodeChunked, openRaw, rawExchange, splitResponse } from '../helpers/net.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

describe('gateway (keepip HTTP/1.1 engine): client-side protocol', () => {
  let gw: TestGateway;
  /** The same routes with short client deadlines, for the two timeout tests only. */
  let quick: TestGateway;
  const seen: Seen[] = [];
  const backend = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('latin1');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const delay = req.url === '/slow' ? 150 : 0;
      setTimeout(() => {
        if (req.url === '/stream') {
          // No Content-Length: the gateway frames it for the client.
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('part1-');
          res.end('part2');
          return;
        }
        const text = `${req.method} ${req.url} ${body.length}`;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
      }, delay);
    });
  });

  before(async () => {
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as net.AddressInfo).port;
    const topology = topologyOf([
      ...serviceWithEndpoints({ name: 'svc', ports: [port] }),
      ingress({
        name: 'web',
        host: 'e.example',
        paths: [{ path: '/', service: 'svc', port: 80 }],
        annotations: { 'proxy-body-size': '1k' },
      }),
    ]);
    gw = await startTestGateway(topology);
    quick = await startTestGateway(topology, { clientHeaderTimeoutMs: 300, keepAliveTimeoutMs: 400 });
  });

  after(async () => {
    await gw.close();
    await quick.close();
    backend.closeAllConnections();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
  });

  const send = (payload: string, port = gw.httpPort) =>
    rawExchange({ host: '127.0.0.1', port, payload, localAddress: '127.0.0.31' });

  it('pipelined requests are answered in order, each once, with keep-alive until Connection: close', async () => {
    const reply = await send(
      'GET /slow HTTP/1.1\r\nHost: e.example\r\n\r\n' +
        'POST /p HTTP/1.1\r\nHost: e.example\r\nContent-Length: 3\r\n\r\nabc' +
        'HEAD /h HTTP/1.1\r\nHost: e.example\r\n\r\n' +
        'GET /last HTTP/1.1\r\nHost: e.example\r\nConnection: close\r\n\r\n',
    );
    assert.equal(reply.closedByServer, true);
    const text = reply.received.toString('latin1');
    const bodies = [...text.matchAll(/\r\n\r\n([A-Z]+ \/\w+ \d+)?/g)].map((m) => m[1] ?? '');
    assert.deepEqual(bodies, ['GET /slow 0', 'POST /p 3', '', 'GET /last 0']);
    assert.equal((text.match(/HTTP\/1\.1 200 OK/g) ?? []).length, 4);
    assert.match(text, /connection: close\r\n\r\nGET \/last 0$/);
  });

  it('HTTP/1.0 closes after the response unless it asks for keep-alive; a body without length is close-delimited', async () => {
    const plain = await send('GET /stream HTTP/1.0\r\nHost: e.example\r\n\r\n');
    assert.equal(plain.closedByServer, true);
    assert.match(plain.received.toString('latin1'), /connection: close\r\n\r\npart1-part2$/);
    // Kept open: a second request on the same connection is answered.
    const kept = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: '127.0.0.31' });
    try {
      kept.socket.write('GET /a HTTP/1.0\r\nHost: e.example\r\nConnection: keep-alive\r\n\r\n');
      const first = await kept.until((raw) => completeResponses(raw) === 1);
      assert.match(first.toString('latin1'), /connection: keep-alive\r\n/);
      kept.socket.write('GET /b HTTP/1.0\r\nHost: e.example\r\n\r\n');
      await kept.whenClosed();
      assert.equal(completeResponses(kept.received()), 2);
      assert.match(kept.received().toString('latin1'), /GET \/a 0HTTP\/1\.1 200 OK\r\n[\s\S]*GET \/b 0$/);
    } finally {
      kept.destroy();
    }
  });

  it('an upstream body without length reaches an HTTP/1.1 client chunked', async () => {
    const reply = await send('GET /stream HTTP/1.1\r\nHost: e.example\r\nConnection: close\r\n\r\n');
    // The chunk layout depends on how the upstream's writes arrive; the decoded body does not.
    const { head, body } = splitResponse(reply.received);
    assert.match(head, /\r\ntransfer-encoding: chunked(\r\n|$)/);
    assert.doesNotMatch(head, /\r\ncontent-length:/i);
    assert.equal(decodeChunked(body).data.toString('latin1'), 'part1-part2');
  });

  it('a chunked upload is streamed upstream re-framed, trailers dropped', async () => {
    const before = seen.length;
    const reply = await send(
      'PUT /up HTTP/1.1\r\nHost: e.example\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
        '4\r\nwiki\r\n5;x=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\n',
    );
    assert.match(reply.received.toString('latin1'), /PUT \/up 9$/);
    const got = seen[before] as Seen;
    assert.equal(got.body, 'wikipedia');
    assert.equal(got.headers['x-t'], undefined);
    assert.ok(got.headers['content-length'] !== undefined || got.headers['transfer-encoding'] === 'chunked');
  });

  it('Expect: 100-continue: 100 only when the body is read; 413 straight away for a body over the limit', async () => {
    const ok = await send(
      'POST /e HTTP/1.1\r\nHost: e.example\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi',
    );
    assert.match(ok.received.toString('latin1'), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/);
    const big = await send(
      'POST /e HTTP/1.1\r\nHost: e.example\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n',
    );
    assert.match(big.received.toString('latin1'), /^HTTP\/1\.1 413 /);
    assert.equal(big.closedByServer, true);
  });

  it('an expectation other than 100-continue is ignored and not passed on, as nginx; two Host headers are 400', async () => {
    // node:http answers these 417; nginx serves them (ngx_http_test_expect), and clients count on it.
    for (const value of ['tea', '', '100-continue, foo']) {
      const before = seen.length;
      const reply = await send(
        `POST /x HTTP/1.1\r\nHost: e.example\r\nExpect: ${value}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`,
      );
      assert.match(reply.received.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n/, `Expect: ${value}`);
      assert.equal(seen[before]?.body, 'abc');
      assert.equal(seen[before]?.headers.expect, undefined);
    }
    const hosts = await send('GET / HTTP/1.1\r\nHost: e.example\r\nHost: other.example\r\n\r\n');
    assert.match(hosts.received.toString('latin1'), /^HTTP\/1\.1 400 /);
  });

  it('a head that does not finish within the client header timeout gets 408 and is closed', async () => {
    const reply = await send('GET / HTTP/1.1\r\nHost: e.exa', quick.httpPort);
    assert.equal(reply.closedByServer, true);
    assert.match(reply.received.toString('latin1'), /^HTTP\/1\.1 408 /);
  });

  it('an idle keep-alive connection is closed after the keep-alive timeout, without a response', async () => {
    const reply = await send('GET /k HTTP/1.1\r\nHost: e.example\r\n\r\n', quick.httpPort);
    assert.equal(reply.closedByServer, true);
    assert.equal((reply.received.toString('latin1').match(/HTTP\/1\.1 /g) ?? []).length, 1);
  });
});
