// Forwarding over real sockets on 127.0.0.0/8: byte-exact in both directions (hashes compared),
// many concurrent flows, one upstream connection and one PROXY header per client (invariant 6),
// half-close, server-speaks-first, backpressure, idle timeout and resets.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, test } from 'node:test';
import { echo, exchange, sha256, startTarget, startTestLb, type TestTarget, until } from './helpers.ts';

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
});
async function target(options: Parameters<typeof startTarget>[0]): Promise<TestTarget> {
  const t = await startTarget(options);
  cleanup.push(() => t.close());
  return t;
}
async function lb(overrides: Parameters<typeof startTestLb>[0]) {
  const running = await startTestLb(overrides);
  cleanup.push(() => running.close());
  return running;
}

const MIB = 1024 * 1024;
const BULK_BYTES = 256 * MIB;
const block = randomBytes(MIB);

/** Writes `total` bytes of rotated copies of `block` (every MiB differs), respecting backpressure. */
function writeStream(socket: net.Socket, total: number, hash: ReturnType<typeof createHash>): void {
  let sent = 0;
  let round = 0;
  const pump = () => {
    while (sent < total) {
      const r = (round++ * 7919) % block.length;
      const parts = [block.subarray(r), block.subarray(0, r)];
      let ok = true;
      for (const part of parts) {
        const piece = part.subarray(0, Math.min(part.length, total - sent));
        if (piece.length === 0) continue;
        hash.update(piece);
        sent += piece.length;
        ok = socket.write(piece);
      }
      if (!ok) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  pump();
}

for (const clientReads of ['own', 'node'] as const) {
  test(`256 MiB client -> target through PROXY v2 arrive byte-exact after exactly one header (${clientReads} reads)`, async () => {
    const received = createHash('sha256');
    let receivedBytes = 0;
    let targetDone: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      targetDone = resolve;
    });
    const t = await target({
      proxy: true,
      behave(socket, rest) {
        received.update(rest);
        receivedBytes += rest.length;
        socket.on('data', (chunk: Buffer) => {
          received.update(chunk);
          receivedBytes += chunk.length;
        });
        socket.on('end', () => {
          socket.end();
          targetDone();
        });
      },
    });
    const balancer = await lb({ targets: [t], proxyProtocol: 'v2', clientReads });
    const sent = createHash('sha256');
    const client = net.connect({
      host: '127.0.0.1',
      port: balancer.address.port,
      localAddress: '127.0.0.21',
    });
    client.on('connect', () => writeStream(client, BULK_BYTES, sent));
    client.resume();
    await done;
    await new Promise((r) => client.once('close', r));
    assert.equal(receivedBytes, BULK_BYTES);
    assert.equal(received.digest('hex'), sent.digest('hex'));
    assert.equal(t.accepted.length, 1);
    const source = t.accepted[0]!.header?.source;
    assert.ok(source && 'address' in source && source.address === '127.0.0.21');
    assert.equal(balancer.stats().bytesToTarget, BULK_BYTES);
    assert.deepEqual(balancer.stats().clientReads, { own: 0, node: 0, [clientReads]: 1 });
  });
}

test('256 MiB target -> client arrive byte-exact (the onread path), and the flow ends cleanly', async () => {
  const sent = createHash('sha256');
  const t = await target({ behave: (socket) => writeStream(socket, BULK_BYTES, sent) });
  const balancer = await lb({ targets: [t] });
  const received = createHash('sha256');
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    const client = net.connect({ host: '127.0.0.1', port: balancer.address.port });
    client.on('data', (chunk: Buffer) => {
      received.update(chunk);
      bytes += chunk.length;
    });
    client.on('error', reject);
    client.on('close', () => resolve());
  });
  assert.equal(bytes, BULK_BYTES);
  assert.equal(received.digest('hex'), sent.digest('hex'));
  await until(() => balancer.stats().flowsActive === 0, 'the flow is gone');
  assert.deepEqual(balancer.stats().flowsEnded, { closed: 1 });
});

for (const clientReads of ['own', 'node'] as const) {
  test(`1,000 concurrent connections each get their own upstream connection and header, byte-exact (${clientReads} reads)`, async () => {
    const t = await target({ proxy: true, behave: echo });
    const balancer = await lb({ targets: [t], proxyProtocol: 'v2', tlvs: { uniqueId: true }, clientReads });
    const N = 1000;
    const payloads = Array.from({ length: N }, (_, i) => randomBytes(1024 + ((i * 37) % 4096)));
    // All connect first, then all send: the flows are open at the same time.
    const endpoints = new Map<net.Socket, string>();
    const sockets = await Promise.all(
      payloads.map(
        (_, i) =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect({
              host: '127.0.0.1',
              port: balancer.address.port,
              localAddress: `127.0.${1 + (i % 200)}.${10 + Math.floor(i / 200)}`,
              allowHalfOpen: true,
            });
            s.once('connect', () => {
              // Remember the client's own endpoint now: a closed socket no longer reports it.
              s.setNoDelay(true);
              endpoints.set(s, `${s.localAddress}:${s.localPort}`);
              resolve(s);
            });
            s.once('error', reject);
          }),
      ),
    );
    await until(() => balancer.stats().flowsActive === N, `${N} flows are active`, 20_000);
    const results = await Promise.all(
      sockets.map(
        (s, i) =>
          new Promise<{ hash: string; endpoint: string }>((resolve, reject) => {
            const chunks: Buffer[] = [];
            s.on('data', (c: Buffer) => chunks.push(c));
            s.on('error', reject);
            s.on('close', () => resolve({ hash: sha256(chunks), endpoint: endpoints.get(s)! }));
            s.end(payloads[i]!);
          }),
      ),
    );
    for (const [i, r] of results.entries()) {
      assert.equal(r.hash, sha256(payloads[i]!), `connection ${i} echoed byte-exact`);
    }
    // Invariant 6: one upstream connection per client connection, each opened by that client's own header.
    assert.equal(t.accepted.length, N);
    const headerSources = new Set(
      t.accepted.map((a) => {
        const src = a.header?.source;
        return src && 'address' in src ? `${src.address}:${src.port}` : 'none';
      }),
    );
    assert.equal(headerSources.size, N);
    for (const r of results) assert.ok(headerSources.has(r.endpoint), `a header names ${r.endpoint}`);
    const ids = new Set(t.accepted.map((a) => Buffer.from(a.header?.uniqueId ?? []).toString('hex')));
    assert.equal(ids.size, N, 'every header carries its own UNIQUE_ID');
    assert.equal(balancer.stats().proxyHeadersSent.v2, N);
    assert.equal(balancer.stats().clientReads[clientReads], N);
  });
}

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

for (const clientReads of ['own', 'node'] as const) {
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

for (const clientReads of ['own', 'node'] as const) {
  test(`backpressure: a target that stops reading stalls the client instead of filling the LB (${clientReads} reads)`, async () => {
    let targetSocket: net.Socket | null = null;
    const got = createHash('sha256');
    let gotBytes = 0;
    const t = await target({
      behave(socket) {
        targetSocket = socket;
        socket.pause();
        socket.on('data', (c: Buffer) => {
          got.update(c);
          gotBytes += c.length;
        });
      },
    });
    const balancer = await lb({ targets: [t], clientReads });
    const total = 128 * MIB;
    const sent = createHash('sha256');
    const client = net.connect({ host: '127.0.0.1', port: balancer.address.port });
    client.on('error', () => {});
    client.on('connect', () => writeStream(client, total, sent));
    await until(() => targetSocket !== null, 'the target is connected');
    // Let the writer run into the stall (the LB stops taking bytes in), then check how much it took.
    let last = -1;
    let stable = 0;
    await until(() => {
      const now = balancer.stats().bytesToTarget;
      stable = now > 0 && now === last ? stable + 1 : 0;
      last = now;
      return stable >= 10;
    }, 'the client stalls');
    const inFlight = balancer.stats().bytesToTarget;
    assert.ok(inFlight < 32 * MIB, `the LB read ${inFlight} bytes while the target read none`);
    assert.ok(client.writableLength > 0, 'the client holds the rest');
    targetSocket!.resume();
    await until(() => gotBytes === total, 'everything arrives once the target reads', 30_000);
    assert.equal(got.digest('hex'), sent.digest('hex'));
    client.destroy();
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
  const dead = await target({});
  const port = dead.port;
  await dead.close();
  const balancer = await lb({ targets: [{ host: '127.0.0.1', port }] });
  const outcome = await new Promise<string>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: balancer.address.port });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    s.on('close', () => resolve('closed'));
  });
  assert.equal(outcome, 'ECONNRESET');
  await until(() => balancer.stats().flowsRejected['connect-failed'] === 1, 'the failure is counted');
});
