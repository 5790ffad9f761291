// The tcp-services runner across snapshots, as nginx's stream module behaves: an endpoint leaving the
// Service, or the entry moving to another Service (test/e2e/tcpudp/tcp.go "should reload after an
// update in the configuration"), sends new connections to the new endpoints while the open ones carry
// on (the Lua balancer's peer change and a reload's old worker both leave an open stream alone).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createTcpRunner } from '../../src/controller/tcp-runner.ts';
import { client, startEcho } from '../helpers/line-echo.ts';
import type { TcpServicePlan } from '../../src/controller/tcp-services.ts';

test('an endpoint change or another Service leaves open connections alone and the port listening', async (t) => {
  const a = await startEcho('a');
  const b = await startEcho('b');
  const c = await startEcho('c');
  const lines: string[] = [];
  const runner = createTcpRunner({
    host: '127.0.0.1',
    accessLog: () => {},
    registry: new Registry(),
    log: (l) => lines.push(l),
  });
  t.after(async () => {
    await runner.close();
    await Promise.all([a.close(), b.close(), c.close()]);
  });
  const plan = (service: string, port: number): TcpServicePlan => ({
    port: 0,
    service: { namespace: 'db', name: service },
    servicePort: '5432',
    decode: false,
    encode: false,
    targets: [{ host: '127.0.0.1', port }],
  });
  const settings = { trustedCidrs: [], headerTimeoutMs: 5000, idleTimeoutMs: 600_000, drainMs: 240_000 };
  await runner.apply([plan('first', a.port)], settings);
  const listening = runner.listeners()[0]!.actualPort;

  const first = client(listening);
  assert.equal(await first.ask('one'), 'a one\n');
  // The Service's endpoint changes: the open connection carries on, a new one goes to b.
  await runner.apply([plan('first', b.port)], settings);
  assert.equal(await first.ask('two'), 'a two\n');
  const second = client(listening);
  assert.equal(await second.ask('three'), 'b three\n');

  // The entry moves to another Service: same port, both open connections carry on.
  await runner.apply([plan('second', c.port)], settings);
  assert.equal(runner.listeners()[0]!.actualPort, listening);
  assert.ok(lines.includes('tcp-services 0: now -> db/second:5432 (1 endpoints)'), lines.join('\n'));
  assert.equal(await first.ask('four'), 'a four\n');
  assert.equal(await second.ask('five'), 'b five\n');
  const third = client(listening);
  assert.equal(await third.ask('six'), 'c six\n');
  for (const s of [first, second, third]) s.close();
});

for (const decode of [false, true]) {
  test(`${decode ? 'a `:PROXY` entry: ' : ''}connections to an endpoint that left are closed after the ConfigMap's worker-shutdown-timeout`, async (t) => {
    const a = await startEcho('a');
    const b = await startEcho('b');
    const lines: string[] = [];
    let heard: (() => void) | null = null;
    const runner = createTcpRunner({
      host: '127.0.0.1',
      accessLog: () => {},
      registry: new Registry(),
      log: (l) => {
        lines.push(l);
        heard?.();
      },
    });
    t.after(async () => {
      await runner.close();
      await Promise.all([a.close(), b.close()]);
    });
    const plan = (port: number): TcpServicePlan => ({
      port: 0,
      service: { namespace: 'db', name: 'pg' },
      servicePort: '5432',
      decode,
      encode: false,
      targets: [{ host: '127.0.0.1', port }],
    });
    const settings = (drainMs: number) => ({
      trustedCidrs: ['127.0.0.0/8'],
      enableRealIp: true,
      headerTimeoutMs: 5000,
      idleTimeoutMs: 600_000,
      drainMs,
    });
    await runner.apply([plan(a.port)], settings(240_000));
    const listening = runner.listeners()[0]!.actualPort;
    const open = client(listening);
    const header = decode ? 'PROXY TCP4 198.51.100.7 10.0.0.1 40000 5432\r\n' : '';
    assert.equal(await open.ask(`${header}one`), 'a one\n');
    // worker-shutdown-timeout changes to 300 ms with the same snapshot that drops the endpoint.
    await runner.apply([plan(b.port)], settings(300));
    assert.equal(await open.ask('two'), 'a two\n');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no drain in 15 s:\n${lines.join('\n')}`)), 15_000);
      heard = () => {
        if (!lines.some((l) => /worker-shutdown-timeout over, closing 1 connection/.test(l))) return;
        clearTimeout(timer);
        resolve();
      };
      heard();
    });
    assert.equal(await open.ask('three'), '(closed)');
    assert.ok(
      lines.some((l) => /may finish within 300 ms/.test(l)),
      lines.join('\n'),
    );
  });
}
