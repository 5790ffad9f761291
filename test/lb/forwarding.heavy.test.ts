// Forwarding at volume over real sockets on 127.0.0.0/8: 256 MiB byte-exact in both directions
// (hashes compared), 1,000 concurrent flows with one upstream connection and one PROXY header each
// (invariant 6), and backpressure against a 128 MiB writer. Heavy (seconds of CPU, hundreds of MB
// through loopback): it runs in `npm run test:heavy`, one file at a time, so that it cannot starve the
// timing of other tests. The light forwarding cases are in forwarding.test.ts.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { test } from 'node:test';
import { echo, sha256, until, lbTestScope } from './helpers.ts';

const { target, lb } = lbTestScope();

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

for (const clientReads of ['raw', 'own', 'node'] as const) {
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
    assert.deepEqual(balancer.stats().clientReads, { raw: 0, own: 0, node: 0, [clientReads]: 1 });
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

for (const clientReads of ['raw', 'own', 'node'] as const) {
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

for (const clientReads of ['raw', 'own', 'node'] as const) {
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
