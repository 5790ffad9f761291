// mirror-target attacked by a client: an absolute-form request target or a foreign Host never moves the
// copy to another host, and a body over proxy-body-size is never mirrored. (Forged X-Forwarded-For,
// the in-flight bound against a slow mirror and targets that expand off their host are covered by
// test/e2e/gateway-mirror.test.ts.)
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import http from '../../src/node-http.ts';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { type HeldBackend, startHeldBackend } from '../helpers/held-backend.ts';

function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => s.write(text));
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

describe('mirror-target under attack', () => {
  let app: HeldBackend;
  let mirror: Server;
  let gw: TestGateway;
  const copies: { url: string; host: string; bytes: number }[] = [];

  before(async () => {
    app = await startHeldBackend({ name: 'app', hold: () => false });
    mirror = http.createServer((req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => {
        copies.push({ url: req.url ?? '', host: String(req.headers.host), bytes });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => mirror.listen(0, '127.0.0.1', resolve));
    const mport = (mirror.address() as AddressInfo).port;
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'app', ports: [app.port] }),
        ingress({
          name: 'm',
          host: 'm.test',
          paths: [{ path: '/', service: 'app', port: 80 }],
          annotations: {
            'mirror-target': `http://127.0.0.1:${mport}$request_uri`,
            'mirror-request-body': 'on',
            'proxy-body-size': '1k',
          },
        }),
      ]),
    );
  });
  after(async () => {
    await gw.close();
    await app.close();
    mirror.closeAllConnections();
    await new Promise((resolve) => mirror.close(resolve));
  });

  test('an absolute-form target with a foreign Host: the copy goes to the mirror with the path only', async () => {
    const before = copies.length;
    const answer = await rawRequest(
      gw.httpPort,
      'GET http://m.test/steal?x=1 HTTP/1.1\r\nHost: evil.example:1\r\nConnection: close\r\n\r\n',
    );
    assert.match(answer, /^HTTP\/1\.1 200/);
    if (/^HTTP\/1\.1 200/.test(answer)) {
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (copies.length <= before) return;
          clearInterval(t);
          resolve();
        }, 10);
      });
      const copy = copies.at(-1)!;
      assert.equal(copy.url, '/steal?x=1');
      assert.equal(copy.host, '127.0.0.1');
    }
  });

  test('a body over proxy-body-size (chunked, no length) is 413 and never reaches the mirror', async () => {
    const before = copies.length;
    const body = 'a'.repeat(8 * 1024);
    const answer = await rawRequest(
      gw.httpPort,
      `POST /big HTTP/1.1\r\nHost: m.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${(body.length).toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 413/);
    // Control: a small body after it is mirrored; the oversized one must not be among the copies.
    const ok = await request(gw.httpPort, { host: 'm.test', method: 'POST', path: '/small', body: 'hi' });
    assert.equal(ok.status, 200);
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (!copies.some((c) => c.url === '/small')) return;
        clearInterval(t);
        resolve();
      }, 10);
    });
    const after = copies.slice(before);
    assert.deepEqual(
      after.map((c) => c.url),
      ['/small'],
    );
    assert.equal(after[0]!.bytes, 2);
  });
});
