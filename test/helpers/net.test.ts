// The socket helpers other tests lean on: a port that refuses must refuse for the whole test.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { connectOutcome, refusingPort } from './net.ts';

function listenOutcome(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    server.listen({ host, port }, () => server.close(() => resolve('listening')));
  });
}

test('refusingPort: refused on every loopback address, and no listener can take it meanwhile', async () => {
  const port = await refusingPort();
  for (const host of ['127.0.0.1', '127.0.0.77'])
    assert.equal(await connectOutcome(host, port), 'ECONNREFUSED');
  assert.equal(await listenOutcome('127.0.0.1', port), 'EADDRINUSE');
  assert.equal(await listenOutcome('0.0.0.0', port), 'EADDRINUSE');
  // Port-0 listeners (every test server) are never handed it: 200 of them, none gets it.
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push(server);
      assert.notEqual((server.address() as net.AddressInfo).port, port);
    }
  } finally {
    for (const server of servers) server.close();
  }
  assert.equal(await connectOutcome('127.0.0.1', port), 'ECONNREFUSED');
});

test('refusingPort: two calls give two ports', async () => {
  const [a, b] = await Promise.all([refusingPort(), refusingPort()]);
  assert.notEqual(a, b);
});
