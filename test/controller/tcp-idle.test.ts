// tcp-services connections idle out as nginx's stream proxy_timeout (proxy-stream-timeout, 600 s by
// default), for entries with and without `:PROXY` alike; the L4 engine's own default is an NLB's 350 s.
// Its own file: the idle deadlines are shared per length across the process and must start on mocked
// timers.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createTcpRunner } from '../../src/controller/tcp-runner.ts';

/** An echo server that prefixes what it sends back with its name. */
async function startEcho(name: string) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let first = true;
    socket.on('data', (c) => {
      socket.write(first ? `${name} ${c}` : c);
      first = c.toString().endsWith('\n');
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A client connection that sends a line and waits for the answer (or the connection's end). */
function client(port: number) {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  const ask = (line: string) =>
    new Promise<string>((resolve) => {
      let text = '';
      const done = (answer: string) => {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve(answer);
      };
      const onData = (c: Buffer) => {
        text += c.toString();
        if (text.endsWith('\n')) done(text);
      };
      const onClose = () => done('(closed)');
      socket.on('data', onData);
      socket.on('close', onClose);
      socket.write(`${line}\n`);
    });
  return { ask, close: () => socket.destroy() };
}

test("an idle connection is closed after nginx's proxy-stream-timeout (600 s), not before", async (t) => {
  const a = await startEcho('a');
  const runner = createTcpRunner({ host: '127.0.0.1', registry: new Registry(), log: () => {} });
  t.after(async () => {
    t.mock.timers.reset();
    await runner.close();
    await a.close();
  });
  // The flows' idle deadlines run on setInterval and Date.now: moved by hand, sockets stay real.
  t.mock.timers.enable({ apis: ['setInterval', 'Date'] });
  await runner.apply(
    [
      {
        port: 0,
        service: { namespace: 'db', name: 'pg' },
        servicePort: '5432',
        decode: false,
        encode: false,
        targets: [{ host: '127.0.0.1', port: a.port }],
      },
    ],
    { trustedCidrs: [], headerTimeoutMs: 5000 },
  );
  const conn = client(runner.listeners()[0]!.actualPort);
  assert.equal(await conn.ask('one'), 'a one\n');
  // 9 idle minutes (past the L4 engine's own 350 s default): still open.
  for (let i = 0; i < 9 * 60; i++) t.mock.timers.tick(1000);
  assert.equal(await conn.ask('two'), 'a two\n');
  // 10 idle minutes and a check period: closed.
  for (let i = 0; i < 602; i++) t.mock.timers.tick(1000);
  assert.equal(await conn.ask('three'), '(closed)');
});
