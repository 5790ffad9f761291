// Socket helpers for tests: free ports, waiting for listeners, raw exchanges from a chosen source address.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';

/**
 * A port nothing listens on at `host` right now, for programs that cannot listen on port 0 (HAProxy,
 * nginx) and for "connection refused" targets. It is taken below the kernel's ephemeral range, so no
 * port-0 listener and no outgoing connection can grab it between this check and its use; only another
 * freePort() or refusingPort() caller can, and the launchers retry on a new port when that happens
 * (withFreePorts).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [low, high] = belowEphemeralRange();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (await canListen(host, port)) return port;
  }
  throw new Error(`no free port on ${host} between ${low} and ${high} after 50 tries`);
}

/** The ports below the kernel's ephemeral range (ip_local_port_range), from 10000 up. */
function belowEphemeralRange(): [number, number] {
  let ephemeralLow = 32_768;
  try {
    const text = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
    ephemeralLow = Number(text.trim().split(/\s+/)[0]) || ephemeralLow;
  } catch {
    // Not Linux: keep the IANA default.
  }
  return ephemeralLow > 12_000 ? [10_000, ephemeralLow - 1] : [1_024, 9_999];
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A port that refuses every TCP connection (on any 127.x address) until this test process exits, and
 * that no listener can take meanwhile, so a "backend that is down" never turns into another test's
 * server, as a port freed after a listen can.
 *
 * It is held by a socket bound to 0.0.0.0 that never listens, in a small Perl process (Perl is part of
 * every Debian system) that lives as long as our stdin. Node cannot make that socket: libuv sets
 * SO_REUSEADDR on every bind, and a listener with SO_REUSEADDR may share a port with a non-listening
 * socket that has it too. Without it, the kernel refuses every other bind of the port. The port is
 * taken below the ephemeral range (as freePort's are), so no port-0 listener, no connection's source
 * port and no walk of keepip lb's over that range can meet it. That is why it is no longer the local
 * end of a connection we keep open: Linux reuses such a port as the source of a new connection to
 * another peer, and a connection to that very port could then get it and connect to itself (seen,
 * about once in 12,000 connects).
 */
export async function refusingPort(): Promise<number> {
  return await portHolder().next();
}

/** Reads a line per port wanted; answers with a port it now holds, bound without SO_REUSEADDR. */
const HOLD_PORTS_PERL = `
use Socket;
$| = 1;
my ($low, $high) = @ARGV;
my @held;
while (<STDIN>) {
  my $port;
  for my $try (1 .. 100) {
    socket(my $socket, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
    my $candidate = $low + int(rand($high - $low + 1));
    if (bind($socket, pack_sockaddr_in($candidate, INADDR_ANY))) {
      push @held, $socket;
      $port = $candidate;
      last;
    }
    die "bind: $!\n" unless $!{EADDRINUSE};
  }
  defined $port or die "no free port between $low and $high after 100 tries\n";
  print "$port\n";
}
`;

interface PortHolder {
  next(): Promise<number>;
}

let holder: PortHolder | undefined;

/** The one Perl process of this test process, started on first use; it exits when our stdin closes. */
function portHolder(): PortHolder {
  if (holder !== undefined) return holder;
  const [low, high] = belowEphemeralRange();
  const child = spawn('perl', ['-e', HOLD_PORTS_PERL, String(low), String(high)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const waiting: Array<{ resolve: (port: number) => void; reject: (error: Error) => void }> = [];
  let stderr = '';
  let failure: Error | undefined;
  const failAll = (error: Error) => {
    failure ??= error;
    for (const request of waiting.splice(0)) request.reject(failure);
  };
  // Not a reason to keep the test process alive, except while an answer is awaited.
  const pipes = [child.stdout, child.stderr] as net.Socket[];
  const settleRefs = () => {
    for (const pipe of pipes)
      if (waiting.length > 0) pipe.ref();
      else pipe.unref();
  };
  child.unref();
  child.stdin.on('error', () => {});
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.on('error', (error) => failAll(new Error(`refusingPort: cannot run perl: ${error.message}`)));
  child.on('exit', (code) =>
    failAll(new Error(`refusingPort: the perl port holder exited (${code}): ${stderr.trim()}`)),
  );
  createInterface({ input: child.stdout }).on('line', (line) => {
    const port = Number(line);
    if (Number.isInteger(port) && port > 0 && port < 65_536) waiting.shift()?.resolve(port);
    else failAll(new Error(`refusingPort: the perl port holder said ${JSON.stringify(line)}`));
    settleRefs();
  });
  holder = {
    next: () =>
      new Promise<number>((resolve, reject) => {
        if (failure !== undefined) return reject(failure);
        const timer = setTimeout(
          () => failAll(new Error('refusingPort: no port from perl after 10 s')),
          10_000,
        );
        waiting.push({
          resolve: (port) => {
            clearTimeout(timer);
            resolve(port);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
        settleRefs();
        child.stdin.write('\n');
      }),
  };
  settleRefs();
  return holder;
}

/** Whether a start failed because a port it was given is taken ("Address already in use"). */
export function isPortClash(error: unknown): boolean {
  const text = error instanceof Error ? error.message : String(error);
  return /EADDRINUSE|Address already in use|cannot bind socket/i.test(text);
}

/**
 * Runs `start` with `count` ports from freePort(); when it fails because one of them was taken
 * meanwhile, runs it again with new ports (up to `attempts` times). Any other failure is thrown as is.
 */
export async function withFreePorts<T>(
  count: number,
  host: string,
  start: (ports: number[]) => Promise<T>,
  attempts = 5,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    while (ports.length < count) {
      const port = await freePort(host);
      if (!ports.includes(port)) ports.push(port);
    }
    try {
      return await start(ports);
    } catch (error) {
      if (attempt >= attempts || !isPortClash(error)) throw error;
    }
  }
}

/**
 * One connect attempt to host:port (from `localAddress` when given): 'connected' (then closed), the
 * error's code ('ECONNREFUSED' once nobody listens), or 'timeout' after `timeoutMs`.
 */
export function connectOutcome(
  host: string,
  port: number,
  options: { localAddress?: string; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve) => {
    const { localAddress, timeoutMs = 10_000 } = options;
    const socket = net.connect({ host, port, ...(localAddress === undefined ? {} : { localAddress }) });
    const settle = (outcome: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => settle('timeout'), timeoutMs);
    socket.once('connect', () => settle('connected'));
    socket.once('error', (error: NodeJS.ErrnoException) => settle(error.code ?? error.message));
  });
}

/** Resolves once something accepts TCP connections on host:port, or rejects after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = (await connectOutcome(host, port, { timeoutMs })) === 'connected';
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RawExchange {
  /** Everything the server sent before it closed the connection (or before `timeoutMs`). */
  received: Buffer;
  /** True when the server closed the connection; false when we gave up waiting. */
  closedByServer: boolean;
}

/**
 * Connects from `localAddress`, writes `payload`, half-closes when `endAfterWrite`, and collects the
 * reply until the server closes or `timeoutMs` passes (a bound for a broken server, generous so that a
 * busy machine never hits it).
 */
export async function rawExchange(options: {
  host: string;
  port: number;
  payload: Buffer | string;
  localAddress?: string;
  endAfterWrite?: boolean;
  timeoutMs?: number;
}): Promise<RawExchange> {
  const { host, port, payload, localAddress, endAfterWrite = false, timeoutMs = 15_000 } = options;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ received: Buffer.concat(chunks), closedByServer: false });
    }, timeoutMs);
    socket.on('connect', () => {
      socket.write(payload);
      if (endAfterWrite) socket.end();
    });
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ received: Buffer.concat(chunks), closedByServer: true });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET') return; // a reset is a close; 'close' follows
      clearTimeout(timer);
      reject(error);
    });
  });
}

export interface RawConnection {
  socket: net.Socket;
  /** Everything the server sent so far. */
  received(): Buffer;
  /** True once the server closed (or reset) the connection. */
  closed(): boolean;
  /**
   * Resolves with the bytes received so far once `done` accepts them (e.g. a whole response); rejects
   * when the server closes first or after `timeoutMs` (a generous bound: a signal, never a window).
   */
  until(done: (received: Buffer) => boolean, timeoutMs?: number): Promise<Buffer>;
  /** Resolves once the server has closed the connection; rejects after `timeoutMs`. */
  whenClosed(timeoutMs?: number): Promise<void>;
  destroy(): void;
}

/** A connection from `localAddress` kept open, for exchanges of several steps on one connection. */
export async function openRaw(options: {
  host: string;
  port: number;
  localAddress?: string;
}): Promise<RawConnection> {
  const { host, port, localAddress } = options;
  const socket = net.connect({ host, port, ...(localAddress ? { localAddress } : {}) });
  const chunks: Buffer[] = [];
  let isClosed = false;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of [...waiters]) waiter();
  };
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    notify();
  });
  socket.on('error', () => {}); // a reset is a close; 'close' follows
  socket.on('close', () => {
    isClosed = true;
    notify();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const received = () => Buffer.concat(chunks);
  const wait = (what: string, ready: () => boolean, failed: () => boolean, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (ready()) finish(null);
        else if (failed()) finish(new Error(`the server closed the connection before ${what}`));
      };
      const timer = setTimeout(() => finish(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
      const finish = (error: Error | null) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (error) reject(new Error(`${error.message}; received:\n${received().toString('latin1')}`));
        else resolve();
      };
      waiters.add(check);
      check();
    });
  return {
    socket,
    received,
    closed: () => isClosed,
    async until(done, timeoutMs = 15_000) {
      await wait(
        'the expected bytes',
        () => done(received()),
        () => isClosed,
        timeoutMs,
      );
      return received();
    },
    whenClosed: (timeoutMs = 15_000) =>
      wait(
        'close',
        () => isClosed,
        () => false,
        timeoutMs,
      ),
    destroy: () => socket.destroy(),
  };
}

/** One complete HTTP/1.1 response read off raw bytes: its status, head and body (latin1). */
export interface FramedResponse {
  status: number;
  head: string;
  body: string;
}

/**
 * The complete HTTP/1.1 responses `raw` holds, read in order: heads, then Content-Length bodies
 * (1xx, 204 and 304 have none; not for answers to HEAD). Stops at the first incomplete or chunked one.
 */
export function framedResponses(raw: Buffer): FramedResponse[] {
  const out: FramedResponse[] = [];
  let at = 0;
  for (;;) {
    const end = raw.indexOf('\r\n\r\n', at);
    if (end < 0) return out;
    const head = raw.subarray(at, end).toString('latin1');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? Number.NaN);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    const bodyless = status < 200 || status === 204 || status === 304;
    if (Number.isNaN(status) || (!bodyless && length === null)) return out;
    const next = end + 4 + (bodyless ? 0 : Number(length?.[1]));
    if (next > raw.length) return out;
    out.push({ status, head, body: raw.subarray(end + 4, next).toString('latin1') });
    at = next;
  }
}

/** How many complete HTTP/1.1 responses `raw` holds (framedResponses). */
export function completeResponses(raw: Buffer): number {
  return framedResponses(raw).length;
}

/**
 * Decodes a complete chunked message body (RFC 9112 §7.1), strictly: any framing error throws. Tests
 * compare the decoded bytes, never the chunk layout, which depends on how TCP segments arrive.
 */
export function decodeChunked(body: Buffer): { data: Buffer; trailers: string } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd < 0) throw new Error(`chunk size line not terminated at ${at}`);
    const sizeText = body.subarray(at, lineEnd).toString('latin1').split(';')[0] ?? '';
    if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw new Error(`bad chunk size ${JSON.stringify(sizeText)}`);
    const size = Number.parseInt(sizeText, 16);
    at = lineEnd + 2;
    if (size === 0) {
      const end = body.indexOf('\r\n\r\n', at - 2);
      if (end < 0) throw new Error('chunked body has no final CRLF');
      if (end + 4 !== body.length) throw new Error(`${body.length - end - 4} bytes after the chunked body`);
      return { data: Buffer.concat(parts), trailers: body.subarray(at, end + 2).toString('latin1') };
    }
    if (at + size + 2 > body.length) throw new Error('chunk data truncated');
    parts.push(body.subarray(at, at + size));
    if (body.subarray(at + size, at + size + 2).toString('latin1') !== '\r\n')
      throw new Error('chunk not followed by CRLF');
    at += size + 2;
  }
}

/** Splits a raw HTTP/1.1 response into its head (text) and body (bytes). */
export function splitResponse(raw: Buffer): { head: string; body: Buffer } {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error('response head not terminated');
  return { head: raw.subarray(0, end).toString('latin1'), body: raw.subarray(end + 4) };
}

/**
 * Listens on `host`:0 and keeps the server's connections: `close()` destroys those still open, then
 * closes the server (a test never waits for a peer to let go of a kept-alive or half-open connection).
 */
export async function listenTracked(
  server: net.Server,
  host = '127.0.0.1',
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
