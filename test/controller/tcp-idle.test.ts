// tcp-services connections idle out as nginx's stream proxy_timeout (proxy-stream-timeout, 600 s by
// default), for entries with and without `:PROXY` alike; the L4 engine's own default is an NLB's 350 s.
// Its own file: the idle deadlines are shared per length across the process and must start on mocked
// timers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createTcpRunner } from '../../src/controller/tcp-runner.ts';
import { client, startEcho } from '../helpers/line-echo.ts';

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
