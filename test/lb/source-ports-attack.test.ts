// Attacks on the lb's explicit source ports (src/lb/source-ports.ts, raw-flow.ts #connect/#onConnect,
// tcp-handle.ts connectTo): many preserved client addresses, squatted ports, refused and unreachable
// targets, clients that reset while a connect is retried, reloads meanwhile, a shared target at a high
// connection rate, and a second walker (another --workers process) on the same source address. Real
// sockets on 127.0.0.0/8; the lb runs in this process, so its file descriptors are this process's
// (/proc/self/fd). Where the walk needs a known start, the lb gets the real walk (createSourcePorts over
// the kernel's range) with a chosen "random" start: any start is one the random one can take.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import type { RunningLb } from '../../src/lb/balancer.ts';
import {
  createSourcePorts,
  DEFAULT_PORT_RANGE,
  MAX_PORT_TRIES,
  type PortRange,
  parsePortRange,
  portSlice,
  type SourcePorts,
} from '../../src/lb/source-ports.ts';
import { startBlackhole } from '../helpers/blackhole.ts';
import { refusingPort } from '../helpers/net.ts';
import { echo, exchange, startTarget, startTestLb, type TestTarget, until } from './helpers.ts';

const openFds = () => readdirSync('/proc/self/fd').length;

function kernelRange(): PortRange {
  const read = (name: string) => readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8');
  return parsePortRange(read('ip_local_port_range'), read('ip_local_reserved_ports')) ?? DEFAULT_PORT_RANGE;
}
const RANGE = kernelRange();
const SIZE = RANGE.high - RANGE.low + 1;

/** The real walk of the kernel's range (its odd ports), starting at `port` or the odd one after it. */
function walkFrom(port: number, range: PortRange = RANGE): SourcePorts {
  const first = range.low | 1;
  const size = Math.floor((range.high - first) / 2) + 1;
  return createSourcePorts(range, () => (Math.ceil((port - first) / 2) + 0.5) / size);
}

/** Counts the explicit ports a lb asks for (one per connect from an explicit port). */
function counting(inner: SourcePorts): SourcePorts & { given: number[] } {
  const given: number[] = [];
  return {
    given,
    next(address) {
      const port = inner.next(address);
      given.push(port);
      return port;
    },
  };
}

const scope: (() => Promise<unknown> | undefined)[] = [];
after(async () => {
  for (const step of scope.reverse()) await step();
});

async function target(host: string): Promise<TestTarget> {
  const t = await startTarget({ host, behave: echo });
  scope.push(() => t.close());
  return t;
}

async function lb(overrides: Parameters<typeof startTestLb>[0]): Promise<RunningLb & { log: string[] }> {
  const log: string[] = [];
  const running = await startTestLb({ log: (line) => log.push(line), ...overrides });
  scope.push(() => running.close());
  return Object.assign(running, { log });
}

/** Listeners on `count` consecutive odd ports of `host` (the walk's) from a random point (squatters). */
async function squat(host: string, count: number): Promise<number[]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const start = (RANGE.low + 1000 + Math.floor(Math.random() * (SIZE - 2000))) | 1;
    const servers: net.Server[] = [];
    const listen = (port: number) =>
      new Promise<boolean>((resolve) => {
        const server = net.createServer();
        server.once('error', () => resolve(false));
        server.listen({ host, port, exclusive: true }, () => {
          servers.push(server);
          resolve(true);
        });
      });
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = await listen(start + 2 * i);
    const closeAll = () => Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    if (ok) {
      scope.push(closeAll);
      return Array.from({ length: count }, (_, i) => start + 2 * i);
    }
    await closeAll();
  }
  throw new Error(`could not squat ${count} consecutive ports on ${host}`);
}

interface ClientResult {
  received: string;
  error: string | null;
}

/** A client that sends `payload` and half-closes; `reset` resets it once the lb has accepted it. */
function client(
  port: number,
  payload: string,
  options: { localAddress?: string; resetWhen?: () => boolean } = {},
): Promise<ClientResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true, ...options });
    let received = '';
    let error: string | null = null;
    socket.on('connect', () => {
      socket.write(payload);
      if (options.resetWhen === undefined) socket.end();
      else void until(options.resetWhen, 'the lb took the client').then(() => socket.resetAndDestroy());
    });
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    socket.on('close', () => resolve({ received, error }));
  });
}

/** Waits until the lb has no flow left and this process is back to `fds` descriptors. */
/** An odd port of the ephemeral range that nothing holds on `host` (the kernel's pick, made odd). */
async function oddFreePort(host: string): Promise<number> {
  const listenOn = (port: number) =>
    new Promise<number | null>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(null));
      server.listen({ host, port, exclusive: true }, () => {
        const got = (server.address() as AddressInfo).port;
        server.close(() => resolve(got));
      });
    });
  for (let attempt = 0; attempt < 20; attempt++) {
    const any = await listenOn(0);
    if (any === null) continue;
    const odd = await listenOn(any | 1);
    if (odd !== null && odd <= RANGE.high) return odd;
  }
  throw new Error(`no free odd port on ${host}`);
}

async function settled(running: RunningLb, fds: number): Promise<void> {
  await until(() => running.stats().flowsActive === 0, 'every flow ended');
  await until(() => openFds() <= fds, `open fds back to ${fds} (now ${openFds()})`);
}

/** A target on `host` that never accepts: its backlog is full, so a connect to it hangs (SYNs dropped). */
async function hangingTarget(host: string): Promise<number> {
  const hole = await startBlackhole(host);
  scope.push(async () => hole.close());
  return hole.port;
}

describe('preserved clients from many addresses', () => {
  test('4,200 distinct 127.x clients: every flow from its own address; cursors start over past 4,096', async () => {
    // The target answers with the address it sees: each client checks it is its own.
    const t = await startTarget({
      host: '127.0.71.1',
      behave: (socket, _rest, a) => socket.resume().end(a.remoteAddress),
    });
    scope.push(() => t.close());
    let starts = 0;
    const ports = counting(
      createSourcePorts(RANGE, () => {
        starts++;
        return Math.random();
      }),
    );
    const running = await lb({ targets: [t], preserveClientIp: true, sourcePorts: ports });
    const fds = openFds();
    const addresses = Array.from(
      { length: 4200 },
      (_, i) => `127.72.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    );
    let next = 0;
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < addresses.length) {
          const localAddress = addresses[next++]!;
          const r = await exchange(running.address.port, localAddress, { localAddress }).catch((e) => e);
          if (r instanceof Error || r.received.toString() !== localAddress) failures.push(localAddress);
        }
      }),
    );
    assert.deepEqual(failures, []);
    assert.equal(new Set(t.accepted.map((a) => a.remoteAddress)).size, addresses.length);
    assert.equal(ports.given.length, addresses.length, 'one explicit port per flow (no clash)');
    assert.equal(starts, addresses.length, 'one cursor per address');
    // The first address's cursor went in the clear at 4,096: it starts from a new random point.
    await exchange(running.address.port, 'again', { localAddress: addresses[0]! });
    assert.equal(starts, addresses.length + 1, 'the cursor map was cleared (bounded)');
    await settled(running, fds);
  });
});

describe('ports a local process squats on the source address', () => {
  test(`flows still connect: ${MAX_PORT_TRIES} tries, then the kernel; no handle left behind`, async () => {
    const source = '127.0.73.1';
    const t = await target('127.0.73.2');
    const squatted = await squat(source, 20);
    const ports = counting(walkFrom(squatted[0]!));
    const running = await lb({ targets: [t], sourceAddress: source, sourcePorts: ports });
    const fds = openFds();
    const tries: number[] = [];
    for (let i = 0; i < 4; i++) {
      const before = ports.given.length;
      const r = await client(running.address.port, `flow ${i}`);
      assert.deepEqual(r, { received: `flow ${i}`, error: null });
      tries.push(ports.given.length - before);
    }
    assert.deepEqual(tries.slice(0, 2), [MAX_PORT_TRIES, MAX_PORT_TRIES], 'bounded: then port 0');
    assert.ok(tries[2]! >= 5 && tries[2]! <= MAX_PORT_TRIES, `third flow tried ${tries[2]}`);
    for (const a of t.accepted) {
      assert.equal(a.remoteAddress, source);
      assert.ok(!squatted.includes(a.remotePort), `a flow came from squatted port ${a.remotePort}`);
    }
    assert.deepEqual(running.stats().flowsEnded, { closed: 4 });
    await settled(running, fds);
  });

  test('IPv6 (bind6): a squatted port on ::1 is skipped like on IPv4', async () => {
    const t = await target('::1');
    const squatted = await squat('::1', 3);
    const ports = counting(walkFrom(squatted[0]!));
    const running = await lb({ targets: [t], sourceAddress: '::1', sourcePorts: ports });
    const fds = openFds();
    assert.deepEqual(await client(running.address.port, 'six'), { received: 'six', error: null });
    assert.ok(ports.given.length >= 4 && ports.given.length <= MAX_PORT_TRIES);
    assert.equal(t.accepted[0]!.remoteAddress, '::1');
    assert.ok(!squatted.includes(t.accepted[0]!.remotePort));
    await settled(running, fds);
  });

  test('clients that reset at once while clashing ports are skipped: every flow ends, no fd leaks', async () => {
    const source = '127.0.73.11';
    const t = await target('127.0.73.12');
    const squatted = await squat(source, 40);
    const ports = counting(walkFrom(squatted[0]!));
    const running = await lb({ targets: [t], sourceAddress: source, sourcePorts: ports });
    const fds = openFds();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => client(running.address.port, `r${i}`, { resetWhen: () => true })),
    );
    assert.equal(results.length, 50);
    await settled(running, fds);
    assert.ok(running.stats().flowsTotal <= 50);
    assert.ok(t.accepted.every((a) => a.remoteAddress === source && !squatted.includes(a.remotePort)));
  });
});

describe('targets that refuse or do not exist: a failed connect is not a clash', () => {
  test('a refused target: one explicit port per flow, the client reset, counted once each', async () => {
    const source = '127.0.74.1';
    const port = await refusingPort();
    const ports = counting(createSourcePorts(RANGE));
    const running = await lb({
      targets: [{ host: '127.0.74.2', port }],
      sourceAddress: source,
      sourcePorts: ports,
    });
    const fds = openFds();
    for (let i = 0; i < 20; i++) {
      const r = await client(running.address.port, 'x');
      assert.deepEqual(r, { received: '', error: 'ECONNRESET' });
    }
    assert.equal(ports.given.length, 20, 'no retry storm');
    assert.deepEqual(running.stats().flowsRejected, { 'connect-failed': 20 });
    assert.deepEqual(running.stats().flowsEnded, { 'connect-failed': 20 });
    assert.ok(running.log.some((l) => l.includes('ECONNREFUSED')));
    await settled(running, fds);
  });

  test('a target address the machine cannot reach from the source: one try, reset, counted', async () => {
    const ports = counting(createSourcePorts(RANGE));
    const running = await lb({
      targets: [{ host: '198.51.100.7', port: 80 }],
      sourceAddress: '127.0.74.11',
      sourcePorts: ports,
    });
    const fds = openFds();
    for (let i = 0; i < 5; i++)
      assert.deepEqual(await client(running.address.port, 'x'), { received: '', error: 'ECONNRESET' });
    assert.equal(ports.given.length, 5);
    assert.deepEqual(running.stats().flowsRejected, { 'connect-failed': 5 });
    await settled(running, fds);
  });

  test('a source address the machine does not have is no port clash: one bind per flow, not nine', async () => {
    const t = await target('127.0.74.21');
    const ports = counting(createSourcePorts(RANGE));
    const running = await lb({ targets: [t], sourceAddress: '198.51.100.9', sourcePorts: ports });
    const fds = openFds();
    assert.deepEqual(await client(running.address.port, 'x'), { received: '', error: 'ECONNRESET' });
    assert.deepEqual(running.stats().flowsRejected, { 'connect-failed': 1 });
    await settled(running, fds);
    // bind() said EADDRNOTAVAIL because the address is not local: every other port says the same.
    assert.equal(ports.given.length, 1, `the lb bound ${ports.given.length} explicit ports for one flow`);
  });

  test("a down target whose port the walk reaches: the client is reset, never answered by the lb's own socket", async () => {
    const host = '127.0.74.31';
    // An odd port of the range (the walk's), free: the target is down.
    const down = await oddFreePort(host);
    const ports = counting(walkFrom(down - 4));
    const running = await lb({
      targets: [{ host, port: down }],
      sourceAddress: host,
      proxyProtocol: 'v1',
      sourcePorts: ports,
    });
    const fds = openFds();
    const results: ClientResult[] = [];
    for (let i = 0; i < 3; i++) results.push(await client(running.address.port, `secret ${i}`));
    await settled(running, fds);
    assert.ok(ports.given.includes(down), `the walk never reached the target's port: ${ports.given}`);
    // With the source port equal to the target's, the connect is a TCP self-connect: "connected".
    assert.deepEqual(
      results,
      results.map(() => ({ received: '', error: 'ECONNRESET' })),
      'a client got the PROXY header and its own bytes back from a target that is down',
    );
    assert.deepEqual(running.stats().flowsRejected, { 'connect-failed': 3 });
  });
});

describe('the connect deadline, resets and reloads while a connect is retried', () => {
  test('retries then a hanging connect: the 10 s deadline still resets; a reload sends new flows on', async () => {
    const source = '127.0.75.1';
    const hanging = await hangingTarget('127.0.75.2');
    const t = await target('127.0.75.3');
    const squatted = await squat(source, 3);
    const ports = counting(walkFrom(squatted[0]!));
    const running = await lb({
      targets: [{ host: '127.0.75.2', port: hanging }],
      sourceAddress: source,
      sourcePorts: ports,
      deregistrationDelayMs: 30_000,
    });
    const fds = openFds();
    const waiting = client(running.address.port, 'waits');
    await until(() => ports.given.length === 4, 'three clashes and a fourth port');
    // This one resets while its connect hangs: the lb reads no client before the target accepted.
    const resetting = client(running.address.port, 'resets', {
      resetWhen: () => ports.given.length === 5,
    });
    await until(() => ports.given.length === 5, 'the second flow connecting');
    running.setTargets([{ host: t.host, port: t.port }]); // the reload SIGHUP runs
    assert.deepEqual(await client(running.address.port, 'after reload'), {
      received: 'after reload',
      error: null,
    });
    assert.deepEqual(await waiting, { received: '', error: 'ECONNRESET' });
    assert.equal((await resetting).received, '');
    await settled(running, fds);
    assert.equal(running.stats().flowsRejected['connect-failed'], 2);
    assert.ok(
      running.log.some((l) => l.includes('(ETIMEDOUT)')),
      running.log.join('\n'),
    );
  });

  test('a reload that aborts a flow in the middle of its retries: client reset, no callback after close', async () => {
    const source = '127.0.75.11';
    const hanging = await hangingTarget('127.0.75.12');
    const t = await target('127.0.75.13');
    const squatted = await squat(source, 5);
    const ports = counting(walkFrom(squatted[0]!));
    const running = await lb({
      targets: [{ host: '127.0.75.12', port: hanging }],
      sourceAddress: source,
      sourcePorts: ports,
      deregistrationDelayMs: 0,
    });
    const fds = openFds();
    const flows = Array.from({ length: 5 }, (_, i) => client(running.address.port, `f${i}`));
    await until(() => running.stats().flowsTotal === 5 && ports.given.length >= 10, 'flows connecting');
    running.setTargets([{ host: t.host, port: t.port }]);
    for (const r of await Promise.all(flows)) assert.deepEqual(r, { received: '', error: 'ECONNRESET' });
    await settled(running, fds);
    assert.deepEqual(running.stats().flowsEnded, { aborted: 5 });
    assert.deepEqual(await client(running.address.port, 'new'), { received: 'new', error: null });
  });
});

describe('four-tuples towards one target', () => {
  test('40 open flows over a 16-port walk: no two share a source port at once, all connect', async () => {
    const source = '127.0.76.1';
    const t = await target('127.0.76.2');
    const low = RANGE.low + 5000 + Math.floor(Math.random() * (SIZE - 10_000));
    const small = { low, high: low + 15, reserved: new Set<number>() };
    const ports = counting(walkFrom(low, small));
    const running = await lb({ targets: [t], sourceAddress: source, sourcePorts: ports });
    const fds = openFds();
    const sockets = Array.from({ length: 40 }, () => {
      const s = net.connect({ host: '127.0.0.1', port: running.address.port });
      s.on('error', () => {});
      return s;
    });
    await until(() => t.accepted.length === 40, '40 flows connected');
    const tuples = t.accepted.map((a) => `${a.remoteAddress}:${a.remotePort}`);
    assert.equal(new Set(tuples).size, 40, `shared source ports: ${tuples.join(' ')}`);
    assert.ok(t.accepted.every((a) => a.remoteAddress === source));
    for (const s of sockets) s.end();
    await settled(running, fds);
    assert.deepEqual(running.stats().flowsEnded, { closed: 40 });
  });

  test('6,000 connections through a source address, the client closing first: none fail', async () => {
    const t = await target('127.0.76.12');
    const running = await lb({ targets: [t], sourceAddress: '127.0.76.11' }); // the default walk
    const fds = openFds();
    let next = 0;
    const failed: string[] = [];
    let unconnected = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next++ < 6_000) {
          const r = await client(running.address.port, 'x');
          // A client's own connect() can find no port once the lb's walk has taken most of them for
          // 60 s (see 'the host's other connections' below): that client never reached the lb.
          if (r.error === 'EADDRNOTAVAIL') unconnected++;
          else if (r.error !== null || r.received !== 'x') failed.push(`${r.error}:${r.received}`);
        }
      }),
    );
    assert.deepEqual(failed.slice(0, 5), []);
    assert.deepEqual(running.stats().flowsEnded, { closed: 6_000 - unconnected });
    assert.deepEqual(running.stats().flowsRejected, {});
    await settled(running, fds);
  });

  test('a second worker on the same source address does not retrace the first one’s ports', async () => {
    // `keepip lb --workers 2` processes each walk their own slice (src/workers/lb-worker.ts): even
    // from the same start in their slices (the worst case of two random ones), the second never walks
    // into the ports of the first's open flows (on a real NIC, also of its 60 s of TIME_WAIT).
    const source = '127.0.77.1';
    const t = await target('127.0.77.2');
    const sameStart = () => 0.25;
    const walkOf = (slot: number) => createSourcePorts(portSlice(RANGE, slot, 2), sameStart);
    const first = await lb({ targets: [t], sourceAddress: source, sourcePorts: walkOf(0) });
    const second = counting(walkOf(1));
    const other = await lb({ targets: [t], sourceAddress: source, sourcePorts: second });
    const open = Array.from({ length: 30 }, () =>
      net.connect({ host: '127.0.0.1', port: first.address.port }),
    );
    for (const s of open) s.on('error', () => {});
    await until(() => t.accepted.length === 30, "the first worker's 30 flows open");
    const tries: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = second.given.length;
      assert.deepEqual(await client(other.address.port, 'y'), { received: 'y', error: null });
      tries.push(second.given.length - before);
    }
    for (const s of open) s.end();
    await until(() => first.stats().flowsActive === 0, 'the first worker idle');
    assert.deepEqual(tries, [1, 1, 1], `explicit ports tried per flow by the second worker: ${tries}`);
  });
});

/** Runs in a network namespace of its own whose ephemeral range is 64 ports: the lb with the default walk. */
const NETNS_CHILD = `
import net from 'node:net';
const { startLoadBalancer } = await import(process.env.BALANCER);
const listen = (port) => new Promise((resolve) => {
  const server = net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); s.pipe(s); });
  server.listen(port, '127.0.0.3', () => resolve(server));
});
const target = await listen(5000);
const lb = await startLoadBalancer({
  listen: { host: '127.0.0.1', port: 5001 }, targets: [{ host: '127.0.0.3', port: 5000 }],
  proxyProtocol: null, sourceAddress: '127.0.0.2', preserveClientIp: false, algorithm: 'round-robin',
  healthCheck: null,
});
const once = (localPort) => new Promise((resolve) => {
  const s = net.connect({ host: '127.0.0.1', port: 5001, localPort, allowHalfOpen: true });
  let got = '';
  s.on('connect', () => s.end('x'));
  s.on('data', (d) => { got += d; });
  s.on('error', (e) => resolve(e.code));
  s.on('close', () => resolve(got));
});
let echoed = 0;
for (let i = 0; i < 64; i++) if ((await once(20000 + i)) === 'x') echoed++;
const neighbour = await new Promise((resolve) => {
  const s = net.connect({ host: '127.0.0.3', port: 5000 });
  s.on('connect', () => { s.destroy(); resolve('connected'); });
  s.on('error', (e) => resolve(e.code));
});
console.log(JSON.stringify({ echoed, neighbour }));
await lb.close();
target.close();
process.exit(0);
`;

describe("the host's other connections", () => {
  test('once the lb has walked the range, a process connecting without bind() still finds a port', async (t) => {
    // HAProxy's `source 127.0.0.2` (IP_BIND_ADDRESS_NO_PORT) run the same way: 64 flows, then the
    // neighbour connects. A port taken by bind() (this lb's explicit ports; its TIME_WAIT keeps it 60 s)
    // is one that connect() never picks, on any address of the host: the bind bucket is per port.
    const script = [
      'ip link set lo up',
      'sysctl -qw net.ipv4.ip_local_port_range="40000 40063"',
      `exec "${process.execPath}" --input-type=module -e "$NETNS_CHILD"`,
    ].join(' && ');
    const child = spawn('unshare', ['-n', 'sh', '-c', script], {
      env: {
        ...process.env,
        NETNS_CHILD,
        BALANCER: new URL('../../src/lb/balancer.ts', import.meta.url).href,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
    });
    child.stderr!.on('data', (d: Buffer) => {
      err += d;
    });
    const code = await new Promise<number | null>((resolve) => {
      child.on('error', () => resolve(-1));
      child.on('close', resolve);
    });
    if (code !== 0 && !out.includes('{')) {
      t.skip(`no network namespace here (unshare -n): ${err.trim().split('\n')[0]}`);
      return;
    }
    const result = JSON.parse(out.trim().split('\n').pop()!) as { echoed: number; neighbour: string };
    assert.equal(result.echoed, 64, 'every flow through the lb was made');
    assert.equal(result.neighbour, 'connected', 'a connect() elsewhere on the host found no port');
  });
});
