// large-client-header-buffers over real sockets: nginx's default ("4 8k") lets a request head of up
// to 32 KiB through as long as each line fits 8 KiB (large cookies and tokens); a longer request line
// is 414, a longer header line or a larger head 431, and the ConfigMap key changes both (each
// connection takes them from the snapshot it was accepted under).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Server } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { rawExchange } from '../helpers/net.ts';

const HOST = 'big.example';

function head(path: string, lines: string[]): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${lines.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`;
}

async function statusOf(port: number, payload: string): Promise<string> {
  const reply = await rawExchange({ host: '127.0.0.1', port, payload });
  return /^HTTP\/1\.1 (\d{3})/.exec(reply.received.toString('latin1'))?.[1] ?? 'none';
}

describe('large-client-header-buffers (HTTP/1)', () => {
  // A backend that takes heads as large as the gateway may pass on (node:http's own cap is 16 KiB).
  let backend: Server;
  let gw: TestGateway;
  let small: TestGateway;

  before(async () => {
    backend = http.createServer({ maxHeaderSize: 1 << 20 }, (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const objects = [
      ...serviceWithEndpoints({ name: 'big', ports: [(backend.address() as AddressInfo).port] }),
      ingress({ name: 'big', host: HOST, paths: [{ path: '/', service: 'big', port: 80 }] }),
    ];
    gw = await startTestGateway(topologyOf(objects));
    small = await startTestGateway(
      topologyOf([...objects, controllerConfigMap({ 'large-client-header-buffers': '2 2k' })]),
    );
  });

  after(async () => {
    await gw.close();
    await small.close();
    backend.closeAllConnections();
    await new Promise((resolve) => backend.close(resolve));
  });

  test('the default: a 24 KiB head of 4 KiB cookies passes; an 8 KiB+ line or a 33 KiB head does not', async () => {
    const cookies = Array.from({ length: 6 }, (_, i) => `X-Cookie-${i}: ${'v'.repeat(4000)}`);
    assert.equal(await statusOf(gw.httpPort, head('/', cookies)), '200');
    assert.equal(await statusOf(gw.httpPort, head('/', [`X-Token: ${'t'.repeat(8200)}`])), '431');
    assert.equal(await statusOf(gw.httpPort, head(`/${'p'.repeat(8200)}`, [])), '414');
    const tooMany = Array.from({ length: 9 }, (_, i) => `X-Cookie-${i}: ${'v'.repeat(4000)}`);
    assert.equal(await statusOf(gw.httpPort, head('/', tooMany)), '431');
  });

  test('"2 2k" in the ConfigMap: a 3 KiB header line is 431, a 3 KiB path 414, 1 KiB lines pass', async () => {
    assert.equal(await statusOf(small.httpPort, head('/', [`X-A: ${'a'.repeat(1000)}`])), '200');
    assert.equal(await statusOf(small.httpPort, head('/', [`X-A: ${'a'.repeat(3000)}`])), '431');
    assert.equal(await statusOf(small.httpPort, head(`/${'p'.repeat(3000)}`, [])), '414');
  });
});
