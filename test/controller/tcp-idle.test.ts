// tcp-services connections idle out as nginx's stream proxy_timeout (the ConfigMap's
// proxy-stream-timeout, 600 s by default), for entries with and without `:PROXY` alike (not an NLB's
// 350 s, which keepip's L4 engine used to apply here). A new value applies to the connections opened after it, as over an
// nginx reload. Its own file: the idle deadlines are shared per length across the process and must
// start on mocked timers.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { Registry } from 'prom-client';
import type { TcpServiceSettings } from '../../src/controller/stream-entry.ts';
import { createTcpRunner } from '../../src/controller/tcp-runner.ts';
import { client, startEcho } from '../helpers/line-echo.ts';

/** A runner with one entry to an echo backend, on timers the test moves (sockets stay real). */
async function idleRunner(t: TestContext, decode: boolean, idleTimeoutMs: number) {
  const a = await startEcho('a');
  const runner = createTcpRunner({
    host: '127.0.0.1',
    accessLog: () => {},
    registry: new Registry(),
    log: () => {},
  });
  t.after(async () => {
    t.mock.timers.reset();
    await runner.close();
    await a.close();
  });
  // The flows' idle deadlines run on setInterval and Date.now: moved by hand.
  t.mock.timers.enable({ apis: ['setInterval', 'Date'] });
  const plan = {
    port: 0,
    service: { namespace: 'db', name: 'pg' },
    servicePort: '5432',
    decode,
    encode: false,
    targets: [{ host: '127.0.0.1', port: a.port }],
  };
  const settings = (idle: number): TcpServiceSettings => ({
    trustedCidrs: ['127.0.0.0/8'],
    headerTimeoutMs: 5000,
    idleTimeoutMs: idle,
    drainMs: 240_000,
  });
  await runner.apply([plan], settings(idleTimeoutMs));
  const port = runner.listeners()[0]!.actualPort;
  // A `:PROXY` entry reads the load balancer's header first: it goes out with the first line.
  const connect = () => {
    const conn = client(port);
    let header = decode ? 'PROXY TCP4 10.0.0.9 127.0.0.1 5000 5432\r\n' : '';
    return {
      ask(line: string) {
        const sent = header + line;
        header = '';
        return conn.ask(sent);
      },
    };
  };
  const idle = (seconds: number) => {
    for (let i = 0; i < seconds; i++) t.mock.timers.tick(1000);
  };
  return { connect, idle, reapply: (idle: number) => runner.apply([plan], settings(idle)) };
}

for (const decode of [false, true]) {
  const entry = decode ? 'a `:PROXY` entry' : 'an entry';
  test(`${entry}: an idle connection is closed after proxy-stream-timeout (600 s), not before`, async (t) => {
    const { connect, idle } = await idleRunner(t, decode, 600_000);
    const conn = connect();
    assert.equal(await conn.ask('one'), 'a one\n');
    // 9 idle minutes (past an NLB's 350 s idle timeout): still open.
    idle(9 * 60);
    assert.equal(await conn.ask('two'), 'a two\n');
    // 10 idle minutes and a check period: closed.
    idle(602);
    assert.equal(await conn.ask('three'), '(closed)');
  });

  test(`${entry}: proxy-stream-timeout 60s, then 3600s for the connections opened after the change`, async (t) => {
    const { connect, idle, reapply } = await idleRunner(t, decode, 60_000);
    const first = connect();
    assert.equal(await first.ask('one'), 'a one\n');
    await reapply(3_600_000);
    const second = connect();
    assert.equal(await second.ask('two'), 'a two\n');
    idle(62);
    assert.equal(await first.ask('three'), '(closed)');
    idle(30 * 60);
    assert.equal(await second.ask('four'), 'a four\n');
  });
}
