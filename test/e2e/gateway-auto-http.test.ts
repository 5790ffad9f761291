// backend-protocol AUTO_HTTP over real sockets: ingress-nginx proxies with `$scheme://`, so a request
// that came over TLS reaches the backend in HTTPS and a plain one in HTTP (the backend here answers
// both on one port, telling which it got).
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { generate } from 'selfsigned';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';

describe('backend-protocol AUTO_HTTP', () => {
  let both: net.Server;
  let gw: TestGateway;

  before(async () => {
    const made = await generate([{ name: 'commonName', value: 'backend' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
    });
    const answer = (scheme: string) => (_req: IncomingMessage, res: ServerResponse) =>
      res.writeHead(200, { 'content-type': 'text/plain' }).end(scheme);
    const plain = http.createServer(answer('http'));
    const secure = https.createServer({ key: made.private, cert: made.cert }, answer('https'));
    // One port, both protocols: a TLS ClientHello starts with 0x16.
    both = net.createServer({ pauseOnConnect: true }, (socket) => {
      socket.once('readable', () => {
        const first = socket.read(1) as Buffer | null;
        if (first === null) return;
        socket.unshift(first);
        (first[0] === 0x16 ? secure : plain).emit('connection', socket);
      });
    });
    await new Promise<void>((resolve) => both.listen(0, '127.0.0.1', resolve));
    const port = (both.address() as AddressInfo).port;
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'app', ports: [port] }),
        ingress({
          name: 'auto',
          host: 'auto.example',
          annotations: { 'backend-protocol': 'AUTO_HTTP' },
          paths: [{ path: '/', service: 'app', port: 80 }],
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await new Promise<void>((resolve) => both.close(() => resolve()));
  });

  test('plain HTTP from the client: HTTP to the backend', async () => {
    const reply = await request(gw.httpPort, { host: 'auto.example' });
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'http');
  });

  test('HTTPS from the client: HTTPS to the backend', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.get(
        {
          host: '127.0.0.1',
          port: gw.httpsPort,
          servername: 'auto.example',
          headers: { host: 'auto.example' },
          rejectUnauthorized: false,
          agent: false,
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c));
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
    });
    assert.equal(body, 'https');
  });
});
