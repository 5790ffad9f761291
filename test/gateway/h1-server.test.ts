// keepip's HTTP/1.1 server side (src/gateway/h1-server.ts) over an in-memory socket, so that the test
// decides exactly how the client's bytes are split into reads: what a slow client can make the server do.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientTimeoutsOf } from '../../src/gateway/client-timeouts.ts';
import type { GatewayRequest, GatewayResponse, H1Handler } from '../../src/gateway/exchange.ts';
import { createH1Server } from '../../src/gateway/h1-server.ts';
import { defaultGatewaySettings } from '../../src/k8s/annotations.ts';
import { bufferWork } from '../helpers/buffer-work.ts';
import { memorySocket } from '../helpers/memory-socket.ts';

/** ingress-nginx's defaults: no deadline plays a part here. */
// Lines up to 16 KiB (large-client-header-buffers "2 16k"): the held header below is 12,000 bytes.
const TIMEOUTS = clientTimeoutsOf({
  ...defaultGatewaySettings(),
  largeClientHeaderBuffers: { count: 2, sizeBytes: 16_384 },
});

describe('h1-server: pipelined bytes while a response is under way', () => {
  it('are held in linear work, however the client splits them, and parsed in order once it is done', async () => {
    const requests: { req: GatewayRequest; res: GatewayResponse }[] = [];
    const handler: H1Handler = {
      onRequest: (req, res) => requests.push({ req, res }),
      onUpgrade: (_req, socket) => socket.destroy(),
      onClientError: (_error, socket) => socket.destroy(),
    };
    const server = createH1Server(handler, {});
    const client = memorySocket();
    server.serve(client.socket, TIMEOUTS);
    client.receive('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(requests.length, 1);
    // The answer to /slow is not written yet: what follows is held, a byte per read.
    const pipelined = `GET /next HTTP/1.1\r\nHost: a\r\nX-Pad: ${'p'.repeat(12_000)}\r\n\r\n`;
    const copied = bufferWork(() => {
      for (const byte of pipelined) client.receive(byte);
    });
    assert.ok(copied <= 4 * pipelined.length, `${copied} bytes copied to hold ${pipelined.length}`);
    assert.equal(requests.length, 1, 'nothing is parsed while the answer before it is under way');
    const first = requests[0]!;
    first.res.writeHead(200, { 'content-length': '2' });
    first.res.end(Buffer.from('ok'));
    assert.equal(requests.length, 2);
    assert.equal(requests[1]!.req.url, '/next');
    assert.equal(requests[1]!.req.headers['x-pad'], 'p'.repeat(12_000));
    await new Promise(setImmediate); // the answer leaves at the end of the turn (write-batch.ts)
    assert.match(client.written(), /^HTTP\/1\.1 200 OK\r\n/);
    server.destroyAll();
  });
});
