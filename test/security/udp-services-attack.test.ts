// udp-services (src/controller/udp-proxy.ts) from the outside: can a datagram from a spoofable source
// make the gateway send more, or bigger, datagrams to that source than its backend answered once; are
// sessions bounded and do they expire under a flood of distinct sources; does a backend reach a client
// after its session ended; and datagrams at the size limits. Real dgram sockets on 127.x.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { type TestContext, test } from 'node:test';
import { Registry } from 'prom-client';
import { DEFAULT_STREAM_SETTINGS, type StreamSettings } from '../../src/config/stream.ts';
import { createTcpRunner } from '../../src/controller/tcp-runner.ts';
import { lineCollector } from '../helpers/lines.ts';

const FORMAT = '$remote_addr:$remote_port $protocol $status $bytes_sent $bytes_received';

async function udpRunner(
  t: TestContext,
  targets: number[],
  options: { stream?: Partial<StreamSettings>; maxConnections?: number; idleTimeoutMs?: number } = {},
) {
  const access = lineCollector();
  const log = lineCollector();
  const registry = new Registry();
  const runner = createTcpRunner({ host: '127.0.0.1', registry, log: log.push, accessLog: access.push });
  t.after(() => runner.close());
  await runner.apply(
    [
      {
        protocol: 'UDP',
        port: 0,
        service: { namespace: 'kube-system', name: 'dns' },
        servicePort: '53',
        decode: false,
        encode: false,
        targets: targets.map((port) => ({ host: '127.0.0.1', port })),
      },
    ],
    {
      trustedCidrs: [],
      headerTimeoutMs: 5000,
      idleTimeoutMs: options.idleTimeoutMs ?? 600_000,
      drainMs: 240_000,
      maxConnections: options.maxConnections ?? 0,
      stream: { ...DEFAULT_STREAM_SETTINGS, logFormat: FORMAT, ...options.stream },
    },
  );
  const port = runner.listeners()[0]!.actualPort;
  const active = async () => {
    const metric = await registry.getSingleMetric('keepip_lb_flows_active')?.get();
    return metric?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
  };
  return { port, access, log, active };
}

interface Backend {
  port: number;
  /** Datagrams received, in order, with the gateway-side address they came from. */
  got: Array<{ data: Buffer; from: dgram.RemoteInfo }>;
  gotCount(n: number): Promise<void>;
  sendTo(port: number, data: string | Buffer): Promise<void>;
}

/** A backend: `answer` decides what goes back for each datagram (nothing, one, many). */
async function backend(t: TestContext, answer: (data: Buffer) => Buffer[]): Promise<Backend> {
  const socket = dgram.createSocket('udp4');
  const got: Backend['got'] = [];
  const waiters = new Set<() => void>();
  socket.on('message', (data, from) => {
    got.push({ data, from });
    for (const w of [...waiters]) w();
    for (const out of answer(data)) socket.send(out, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return {
    port: socket.address().port,
    got,
    gotCount: (n) =>
      new Promise((resolve) => {
        const check = () => {
          if (got.length < n) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      }),
    sendTo: (port, data) => new Promise((resolve) => socket.send(data, port, '127.0.0.1', () => resolve())),
  };
}

/** A client bound to `from` that keeps every datagram it gets. */
async function client(t: TestContext, from: string) {
  const socket = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  const waiters = new Set<() => void>();
  socket.on('message', (msg) => {
    got.push(msg);
    for (const w of [...waiters]) w();
  });
  await new Promise<void>((resolve) => socket.bind(0, from, resolve));
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return {
    port: socket.address().port,
    got,
    send: (data: string | Buffer, port: number) =>
      new Promise<void>((resolve, reject) =>
        socket.send(data, port, '127.0.0.1', (error) => (error ? reject(error) : resolve())),
      ),
    /** Resolves once a datagram satisfying `match` arrived. */
    until: (match: (b: Buffer) => boolean) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (!got.some(match)) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      }),
  };
}

test('one datagram, a backend that answers 20 times: one answer reaches the (spoofable) source', async (t) => {
  const big = Buffer.alloc(1200, 0x62);
  const b = await backend(t, (data) =>
    data.toString() === 'marker' ? [Buffer.from('marker-answer')] : Array.from({ length: 20 }, () => big),
  );
  const { port, access } = await udpRunner(t, [b.port]);
  const c = await client(t, '127.0.3.1');
  await c.send('q', port);
  await access.wait(/UDP 200 1200 1$/);
  // A second session from the same source: its answer comes after anything the first could still send.
  await c.send('marker', port);
  await c.until((m) => m.toString() === 'marker-answer');
  assert.deepEqual(
    c.got.map((m) => m.length),
    [1200, 13],
  );
});

test('five datagrams, 20 answers each: never more answers than datagrams (proxy-stream-responses 1)', async (t) => {
  const b = await backend(t, (data) =>
    data.toString() === 'marker'
      ? [Buffer.from('marker-answer')]
      : Array.from({ length: 20 }, () => Buffer.from(`answer ${data}`)),
  );
  const { port } = await udpRunner(t, [b.port]);
  const c = await client(t, '127.0.3.4');
  await Promise.all(['1', '2', '3', '4', '5'].map((q) => c.send(q, port)));
  await b.gotCount(5);
  await c.until((m) => m.toString() !== 'marker-answer');
  await c.send('marker', port);
  await c.until((m) => m.toString() === 'marker-answer');
  const answers = c.got.filter((m) => m.toString() !== 'marker-answer');
  assert.ok(answers.length >= 1 && answers.length <= 5, `${answers.length} answers for 5 datagrams`);
});

test('a backend that sends after its session ended never reaches the client', async (t) => {
  const b = await backend(t, (data) => [Buffer.from(`answer ${data}`)]);
  const { port, access } = await udpRunner(t, [b.port]);
  const c = await client(t, '127.0.3.2');
  await c.send('one', port);
  await access.wait(/UDP 200/);
  // The backend writes again to the gateway socket of the ended session.
  const gatewaySide = b.got[0]!.from.port;
  await b.sendTo(gatewaySide, 'late');
  await b.sendTo(gatewaySide, 'late');
  await c.send('two', port);
  await c.until((m) => m.toString() === 'answer two');
  assert.deepEqual(
    c.got.map((m) => m.toString()),
    ['answer one', 'answer two'],
  );
});

test('a flood of distinct sources: sessions stop at max-worker-connections, expire idle, then serve again', async (t) => {
  const silent = await backend(t, () => []);
  const { port, access, log, active } = await udpRunner(t, [silent.port], {
    maxConnections: 40,
    idleTimeoutMs: 400,
  });
  const flood = [];
  for (let i = 1; i <= 120; i++) flood.push(await client(t, `127.0.4.${i}`));
  for (const c of flood) await c.send('x', port);
  await silent.gotCount(40);
  await log.wait(
    /alert: 40 worker_connections are not enough, udp-services \d+ connection from 127\.0\.4\.\d+:\d+ closed/,
  );
  assert.ok((await active()) <= 40);
  // Every held session ends on its own (proxy-stream-timeout), with its line.
  assert.equal((await access.wait(/^127\.0\.4\.\d+:\d+ UDP 200 0 1$/, { count: 40 })).length, 40);
  assert.equal(silent.got.length, 40, 'no datagram of the 80 refused sources went through');
  assert.equal(await active(), 0);
  // Then a new source is served.
  const late = await client(t, '127.0.4.200');
  await late.send('again', port);
  await silent.gotCount(41);
  assert.equal(silent.got.at(-1)!.data.toString(), 'again');
});

test('a 65507-byte datagram and an empty one pass whole, each answered once', async (t) => {
  const b = await backend(t, (data) => [data]);
  const { port, access } = await udpRunner(t, [b.port]);
  const c = await client(t, '127.0.3.3');
  const max = Buffer.alloc(65_507, 0x7a);
  await c.send(max, port);
  await c.until((m) => m.length === 65_507);
  await access.wait(/UDP 200 65507 65507$/);
  await c.send(Buffer.alloc(0), port);
  await access.wait(/UDP 200 0 0$/);
  await c.until((m) => m.length === 0);
  assert.deepEqual(
    c.got.map((m) => m.length),
    [65_507, 0],
  );
});
