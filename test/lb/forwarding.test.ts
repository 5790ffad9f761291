// Forwarding over real sockets on 127.0.0.0/8: half-close, server-speaks-first, bytes before the
// upstream connects, idle timeout and resets. The bulk transfers, the 1,000 concurrent flows and
// backpressure are in forwarding.heavy.test.ts (`npm run test:heavy`).
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { refusingPort } from '../helpers/net.ts';
import { exchange, until, lbTestScope } from './helpers.ts';

const { cleanup, target, lb } = lbTestScope();

test('half-close: the target answers after the client has finished sending, and vice versa', async () => {
  const t = await target({
    behave(socket) {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      // Answer only after the client's FIN: the LB must pass the half-close on and keep the other way open.
      socket.on('end', () => socket.end(`got ${Buffer.concat(chunks).length} bytes`));
    },
  });
  const balancer = await lb({ targets: [t] });
  const { received } = await exchange(balancer.address.port, 'x'.repeat(100_000));
  assert.equal(received.toString(), 'got 100000 bytes');
  // By default a flow runs on bare libuv handles (raw-flow.ts), not net.Sockets.
  assert.deepEqual(balancer.stats().clientReads, { raw: 1, own: 0, node: 0 });

  // The other way round: the target sends and closes its side first; the client can still send.
  const t2 = await target({
    record: true,
    behave(socket) {
      socket.end('banner\n');
    },
  });
  const balancer2 = await lb({ targets: [t2] });
  const late = await new Promise<string>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: balancer2.address.port, allowHalfOpen: true });
    let text = '';
    s.on('data', (c: Buffer) => {
      text += c.toString();
    });
    s.on('end', () => s.end('late bytes after the server FIN'));
    s.on('error', reject);
    s.on('close', () => resolve(text));
  });
  assert.equal(late, 'banner\n');
  await until(
    () => t2.accepted[0]?.data().toString() === 'late bytes after the server FIN',
    'late bytes arrive',
  );
});

test('server-speaks-first: the PROXY header goes out on connect, without waiting for client bytes', async () => {
  const t = await target({ proxy: true, behave: (socket) => socket.end('220 ready\r\n') });
  const balancer = await lb({ targets: [t], proxyProtocol: 'v1' });
  const text = await new Promise<string>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: balancer.address.port, localAddress: '127.0.0.33' });
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString();
    });
    s.on('error', reject);
    s.on('close', () => resolve(got));
  });
  assert.equal(text, '220 ready\r\n');
  const src = t.accepted[0]?.header?.source;
  assert.ok(src && 'address' in src && src.address === '127.0.0.33');
  assert.equal(t.accepted[0]?.header?.version, 1);
});

for (const clientReads of ['raw', 'own', 'node'] as const) {
  test(`client bytes sent before the upstream connects follow the header in order (${clientReads} reads)`, async () => {
    // A target that accepts only after a delay: the client writes into the LB while it is still connecting.
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const t = await target({ proxy: true, record: true, behave: (socket) => socket.end() });
    const proxy = net.createServer((inbound) => {
      inbound.pause();
      void gate.then(() => {
        const out = net.connect({ host: t.host, port: t.port });
        inbound.pipe(out);
        out.pipe(inbound);
        inbound.resume();
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => proxy.close(r)));
    const balancer = await lb({
      targets: [{ host: '127.0.0.1', port: (proxy.address() as net.AddressInfo).port }],
      proxyProtocol: 'v2',
      clientReads,
    });
    const s = net.connect({ host: '127.0.0.1', port: balancer.address.port });
    s.on('connect', () => {
      s.write('first ');
      s.write('second');
      setTimeout(release, 50);
    });
    s.resume();
    await until(
      () => t.accepted[0]?.data().toString() === 'first second',
      'the early bytes arrive after the header',
    );
    s.destroy();
  });
}

test('idle flows are reset after idleTimeoutMs, in both directions', async () => {
  const t = await target({ behave: () => {} });
  const balancer = await lb({ targets: [t], idleTimeoutMs: 200 });
  const outcome = await new Promise<string>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: balancer.address.port });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    s.on('close', () => resolve('closed'));
  });
  assert.equal(outcome, 'ECONNRESET');
  await t.accepted[0]!.closed;
  await until(() => balancer.stats().flowsEnded.idle === 1, 'the idle end is counted');
});

test('a client reset is passed on to the target as a reset', async () => {
  let targetError = '';
  const t = await target({
    behave(socket) {
      socket.on('error', (e: NodeJS.ErrnoException) => {
        targetError = e.code ?? '';
      });
    },
  });
  const balancer = await lb({ targets: [t] });
  const s = net.connect({ host: '127.0.0.1', port: balancer.address.port });
  await new Promise((r) => s.once('connect', r));
  await until(() => t.accepted.length === 1, 'the target has the flow');
  s.resetAndDestroy();
  await t.accepted[0]!.closed;
  assert.equal(targetError, 'ECONNRESET');
});

test('a target that refuses the connection makes the client see a reset, counted', async () => {
  // Nothing listens there, and nothing can while the test runs (refusingPort holds it).
  const port = await refusingPort();
  const balancer = await lb({ targets: [{ host: '127.0.0.1', port }] });
  const outcome = await new Promise<string>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: balancer.address.port });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    s.on('close', () => resolve('closed'));
  });
  assert.equal(outcome, 'ECONNRESET');
  await until(() => balancer.stats().flowsRejected['connect-failed'] === 1, 'the failure is counted');
});

for (const clientReads of ['raw', 'own', 'node'] as const) {
  test(`a target reset mid-stream reaches the client as a reset, counted (${clientReads} flows)`, async () => {
    // The target answers part of the way, then resets once the client's first bytes are in.
    const t = await target({
      behave(socket) {
        socket.write('partial answer');
        socket.once('data', () => socket.resetAndDestroy());
      },
    });
    const balancer = await lb({ targets: [t], clientReads });
    const seen = await new Promise<{ code: string; text: string }>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: balancer.address.port });
      let text = '';
      s.on('data', (c: Buffer) => {
        text += c.toString();
        if (text === 'partial answer') s.write('go on');
      });
      s.on('error', (e: NodeJS.ErrnoException) => resolve({ code: e.code ?? 'error', text }));
      s.on('close', () => resolve({ code: 'closed', text }));
    });
    assert.deepEqual(seen, { code: 'ECONNRESET', text: 'partial answer' });
    await until(() => balancer.stats().flowsEnded['target-reset'] === 1, 'the target reset is counted');
    assert.equal(balancer.stats().flowsActive, 0);
  });
}
