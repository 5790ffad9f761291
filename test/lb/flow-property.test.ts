// Property: whatever the two ends send (any number and size of writes, both directions at once, the
// target speaking first, either end finishing first), a flow delivers each direction byte-exact,
// after exactly one PROXY header when configured, ends 'closed', and leaves no flow open. Run for the
// raw flows (the default) and the Socket flows, over real sockets: sizes up to 70 KB cross the
// 32 KiB read at which a raw flow moves to its own buffer. One connection at a time, so the target's
// n-th connection is the property's n-th run.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, test } from 'node:test';
import fc from 'fast-check';
import type { RunningLb } from '../../src/lb/balancer.ts';
import { startTarget, startTestLb, until } from './helpers.ts';

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

/** The run under way: what its target sends, and where the target reports what it received. */
let current: { down: Buffer[]; received(bytes: Buffer): void } | null = null;

/** Sends the run's bytes at once (speaking first), half-closes, and reports what arrived until the FIN. */
function targetSide(socket: net.Socket, rest: Buffer): void {
  const run = current;
  const received: Buffer[] = rest.length > 0 ? [rest] : [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('end', () => run?.received(Buffer.concat(received)));
  for (const chunk of run?.down ?? []) socket.write(chunk);
  socket.end();
}

async function balancers(clientReads: 'raw' | 'own'): Promise<{ plain: RunningLb; withHeader: RunningLb }> {
  const bare = await startTarget({ behave: targetSide });
  const parsing = await startTarget({ proxy: true, behave: targetSide });
  cleanup.push(
    () => bare.close(),
    () => parsing.close(),
  );
  const plain = await startTestLb({ targets: [bare], clientReads });
  const withHeader = await startTestLb({ targets: [parsing], proxyProtocol: 'v2', clientReads });
  cleanup.push(
    () => plain.close(),
    () => withHeader.close(),
  );
  return { plain, withHeader };
}

/** Connects, writes `chunks`, half-closes; resolves with everything received until the peer's FIN. */
function client(port: number, chunks: Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      socket.end();
      resolve(Buffer.concat(received));
    });
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk);
      socket.end();
    });
  });
}

const sizes = fc.array(fc.integer({ min: 1, max: 70_000 }), { maxLength: 5 });

for (const clientReads of ['raw', 'own'] as const) {
  test(`any writes both ways arrive byte-exact and the flow ends closed (${clientReads} flows)`, async () => {
    const { plain, withHeader } = await balancers(clientReads);
    await fc.assert(
      fc.asyncProperty(sizes, sizes, fc.boolean(), async (up, down, header) => {
        const lb = header ? withHeader : plain;
        const toTarget = up.map((n) => randomBytes(n));
        const toClient = down.map((n) => randomBytes(n));
        const endedBefore = lb.stats().flowsEnded.closed ?? 0;
        const targetGot = new Promise<Buffer>((resolve) => {
          current = { down: toClient, received: resolve };
        });
        const clientGot = await client(lb.address.port, toTarget);
        assert.ok(clientGot.equals(Buffer.concat(toClient)), 'target -> client bytes');
        assert.ok((await targetGot).equals(Buffer.concat(toTarget)), 'client -> target bytes');
        await until(() => (lb.stats().flowsEnded.closed ?? 0) === endedBefore + 1, 'the flow ends closed');
        assert.equal(lb.stats().flowsActive, 0);
        assert.equal(lb.stats().clientReads[clientReads], lb.stats().flowsTotal);
      }),
      { numRuns: 20 },
    );
  });
}
