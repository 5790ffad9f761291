// proxy-http-version over real sockets: what the backend receives (ingress-nginx's e2e test
// annotations/proxy.go "should change the default proxy HTTP version" checks the directive).
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { decodeChunked, rawExchange, splitResponse } from '../helpers/net.ts';

describe('proxy-http-version', () => {
  let backend: Server;
  let gw: TestGateway;

  before(async () => {
    // Answers with what it received: version, framing headers and the body.
    backend = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const seen = {
        version: req.httpVersion,
        connection: req.headers.connection,
        contentLength: req.headers['content-length'] ?? null,
        transferEncoding: req.headers['transfer-encoding'] ?? null,
        body: Buffer.concat(chunks).toString(),
      };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(seen));
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as AddressInfo).port;
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'app', ports: [port] }),
        ingress({
          name: 'v10',
          host: 'v10',
          annotations: { 'proxy-http-version': '1.0' },
          paths: [{ path: '/', service: 'app', port: 80 }],
        }),
        ingress({ name: 'v11', host: 'v11', paths: [{ path: '/', service: 'app', port: 80 }] }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
  });

  test('1.0: an HTTP/1.0 request with Connection close; a chunked body arrives with its length', async () => {
    const plain = JSON.parse((await request(gw.httpPort, { host: 'v10' })).body);
    assert.equal(plain.version, '1.0');
    assert.equal(plain.connection, 'close');
    const raw = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      payload:
        'POST / HTTP/1.1\r\nHost: v10\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    });
    const { head, body: bytes } = splitResponse(raw.received);
    const text = /transfer-encoding: chunked/i.test(head) ? decodeChunked(bytes).data : bytes;
    const body = JSON.parse(text.toString());
    assert.deepEqual(
      {
        version: body.version,
        contentLength: body.contentLength,
        transferEncoding: body.transferEncoding,
        body: body.body,
      },
      { version: '1.0', contentLength: '11', transferEncoding: null, body: 'hello world' },
    );
  });

  test('by default 1.1, kept alive', async () => {
    const seen = JSON.parse((await request(gw.httpPort, { host: 'v11' })).body);
    assert.equal(seen.version, '1.1');
    assert.equal(seen.connection, 'keep-alive');
  });
});
