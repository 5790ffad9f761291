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
  for (const host of ['127.0.0.1', '127.0.0.77', '0.0.0.0', '::'])
    assert.equal(await listenOutcome(host, port), 'EADDRINUSE', host);
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

test('refusingPort: no connection to it ever connects to itself (18,000 attempts over 300 ports)', async () => {
  // A port held as the local end of a connection (this helper's old way) can be picked by Linux as
  // the source port of a new connection to it: a TCP self-connect, 'connected' about once in 12,000
  // attempts; this loop caught it in five runs of six.
  const outcomes = new Map<string, number>();
  for (let round = 0; round < 300; round++) {
    const port = await refusingPort();
    for (let attempt = 0; attempt < 60; attempt++) {
      const outcome = await connectOutcome('127.0.0.1', port);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
  }
  assert.deepEqual(Object.fromEntries(outcomes), { ECONNREFUSED: 18_000 });
});
