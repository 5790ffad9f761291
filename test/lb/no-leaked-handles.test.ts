// Regression test for a handle leak in the flow's reset(): an LB socket whose write side was shut
// down (end() after the target's FIN) and is then reset while libuv's shutdown request is still
// pending makes uv_tcp_close_reset fail with EINVAL. Node then drops the handle without closing it:
// it stays active after lb.close(), so a `keepip lb` process never exits.
//
// The window is narrow: the shutdown is queued when the LB reads the target's FIN and carried out
// right after that event-loop poll phase. lb.close() therefore has to run in a poll callback that
// comes after the LB's read in the same turn. A second connection (a ping-pong "signal" pair) makes
// that happen without timers: the target writes to it once its FIN is out, and every hop moves the
// close one loop turn later, so the rounds below cover the first few turns after the FIN.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startLoadBalancer } from '../../src/lb/balancer.ts';

const ANSWER = 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello';
const HOPS = 5;

const openTcpSockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

/** Polls until `condition` holds or `timeoutMs` passes (generous: a leaked handle never closes, so waiting longer never hides one); returns whether it held. */
async function settle(condition: () => boolean, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

const closeServer = (server: net.Server) => new Promise<void>((resolve) => server.close(() => resolve()));

/** Two connected sockets; `fire()` runs after `hops` round trips once `start()` is called. */
async function signalPair(hops: number, fire: () => void) {
  const server = net.createServer();
  const port = await listen(server);
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const near = net.connect({ host: '127.0.0.1', port });
  const far = await accepted;
  let left = hops;
  const bounce = (socket: net.Socket) => () => {
    if (left-- <= 0) fire();
    else socket.write('.');
  };
  near.on('data', bounce(near));
  far.on('data', bounce(far));
  return {
    start: () => near.write('.'),
    close: async () => {
      near.destroy();
      far.destroy();
      await closeServer(server);
    },
  };
}

/**
 * One round: a target that answers and half-closes, a client that reads the answer and closes, and
 * lb.close() landing `hops` loop turns after the target's FIN. Returns the TCP sockets left open.
 */
async function round(hops: number, clientReads: 'raw' | 'own' | 'node'): Promise<number> {
  const baseline = openTcpSockets();
  let closeLb: () => void = () => {};
  const signal = await signalPair(hops, () => closeLb());
  const target = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.end(ANSWER);
      socket.once('finish', () => signal.start()); // the FIN is on its way to the LB
    });
  });
  const targetPort = await listen(target);
  const lb = await startLoadBalancer({
    listen: { host: '127.0.0.1', port: 0 },
    targets: [{ host: '127.0.0.1', port: targetPort }],
    proxyProtocol: null,
    sourceAddress: null,
    preserveClientIp: false,
    algorithm: 'round-robin',
    healthCheck: null,
    clientReads,
  });
  closeLb = () => void lb.close();

  const answer = await new Promise<string>((resolve) => {
    const client = net.connect({ host: '127.0.0.1', port: lb.address.port, localAddress: '127.0.0.61' });
    let text = '';
    client.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    client.on('error', () => {}); // the LB may reset it: that is allowed here
    client.on('connect', () => client.write('GET / HTTP/1.1\r\nHost: leak.test\r\n\r\n'));
    client.on('close', () => resolve(text));
  });
  await lb.close(); // the same promise when the signal closed it already
  await signal.close();
  await closeServer(target);

  assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/, 'the client got the answer through the LB');
  await settle(() => openTcpSockets() <= baseline);
  return openTcpSockets() - baseline;
}

let exitScheduled = false;
/**
 * A leaked handle keeps this process alive (and spinning) for ever, and node:test only finishes the
 * run once the loop is empty: exit a little later, after the failures are reported, rather than hang.
 * The timer stays referenced: an unref'd one was measured not to fire while the leaked handle spins.
 */
function exitLater(): void {
  if (exitScheduled) return;
  exitScheduled = true;
  setTimeout(() => process.exit(1), 3_000);
}

for (const clientReads of ['raw', 'own', 'node'] as const) {
  test(`lb.close() right after a target's half-close leaves no socket handle open (${clientReads} reads)`, async () => {
    for (let hops = 0; hops <= HOPS; hops++) {
      const leaked = await round(hops, clientReads);
      if (leaked > 0) exitLater();
      assert.equal(
        leaked,
        0,
        `closing the LB ${hops} loop turn(s) after the target's FIN left ${leaked} TCP socket(s) open`,
      );
    }
  });
}
