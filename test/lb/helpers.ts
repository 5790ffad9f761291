// Shared pieces of the load balancer tests: targets that record what reached them, an LB with test
// defaults, and bounded waiting.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { after } from 'node:test';
import { type LbRuntimeConfig, type RunningLb, startLoadBalancer } from '../../src/lb/balancer.ts';
import { parseProxyHeader } from '../../src/proxy-protocol/index.ts';
import type { ProxyHeader } from '../../src/proxy-protocol/types.ts';
import { listenTracked } from '../helpers/net.ts';

export interface Accepted {
  remoteAddress: string;
  remotePort: number;
  /** Set when the target expects PROXY headers and one arrived. */
  header: ProxyHeader | null;
  /** Bytes after the header (collected only by `recordingTarget`). */
  data(): Buffer;
  socket: net.Socket;
  closed: Promise<void>;
}

export interface TestTarget {
  host: string;
  port: number;
  accepted: Accepted[];
  close(): Promise<void>;
}

/**
 * A target that parses a PROXY header first when `proxy` is set, then hands the socket to `behave`
 * with the bytes after the header already consumed (and passed as `rest`).
 */
export async function startTarget(options: {
  host?: string;
  proxy?: boolean;
  behave?: (socket: net.Socket, rest: Buffer, accepted: Accepted) => void;
  record?: boolean;
}): Promise<TestTarget> {
  const host = options.host ?? '127.0.0.1';
  const accepted: Accepted[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    const entry: Accepted = {
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      header: null,
      data: () => Buffer.concat(chunks),
      socket,
      closed: new Promise((resolve) => socket.once('close', () => resolve())),
    };
    accepted.push(entry);
    const start = (rest: Buffer) => {
      if (options.record) {
        if (rest.length > 0) chunks.push(rest);
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      }
      options.behave?.(socket, rest, entry);
    };
    if (!options.proxy) {
      start(Buffer.alloc(0));
      return;
    }
    let pending = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      const parsed = parseProxyHeader(pending);
      if (parsed.kind === 'incomplete') return;
      socket.off('data', onData);
      if (parsed.kind === 'error') {
        socket.destroy();
        return;
      }
      entry.header = parsed.header;
      start(pending.subarray(parsed.consumed));
    };
    socket.on('data', onData);
  });
  const { port, close } = await listenTracked(server, host);
  return { host, port, accepted, close };
}

/** Echoes every byte back and passes the half-close on. */
export function echo(socket: net.Socket, rest: Buffer): void {
  if (rest.length > 0) socket.write(rest);
  socket.pipe(socket);
}

export function lbConfig(
  overrides: Partial<LbRuntimeConfig> & Pick<LbRuntimeConfig, 'targets'>,
): LbRuntimeConfig {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    proxyProtocol: null,
    sourceAddress: null,
    preserveClientIp: false,
    algorithm: 'round-robin',
    healthCheck: null,
    ...overrides,
  };
}

export function startTestLb(
  overrides: Partial<LbRuntimeConfig> & Pick<LbRuntimeConfig, 'targets'>,
): Promise<RunningLb> {
  return startLoadBalancer(lbConfig(overrides));
}

/** Connects (from `localAddress`), sends `payload`, half-closes, and returns everything received. */
export function exchange(
  port: number,
  payload: Buffer | string,
  options: { localAddress?: string; host?: string } = {},
): Promise<{ received: Buffer; localPort: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({
      host: options.host ?? '127.0.0.1',
      port,
      allowHalfOpen: true,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    let localPort = 0;
    socket.on('connect', () => {
      localPort = socket.localPort ?? 0; // a closed socket no longer reports it
      socket.end(payload);
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve({ received: Buffer.concat(chunks), localPort }));
  });
}

export function sha256(data: Buffer | Buffer[]): string {
  const hash = createHash('sha256');
  for (const part of Array.isArray(data) ? data : [data]) hash.update(part);
  return hash.digest('hex');
}

/** Polls `condition` every 10 ms; fails with `what` after `timeoutMs` (a generous bound for a busy machine). */
export async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A test file's targets and balancers, closed after its tests (in reverse order, with whatever else is
 * pushed on `cleanup`); a target echoes unless told otherwise.
 */
export function lbTestScope() {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });
  return {
    cleanup,
    async target(options: Parameters<typeof startTarget>[0] = { behave: echo }): Promise<TestTarget> {
      const t = await startTarget(options);
      cleanup.push(() => t.close());
      return t;
    },
    async lb(overrides: Parameters<typeof startTestLb>[0]): Promise<RunningLb> {
      const running = await startTestLb(overrides);
      cleanup.push(() => running.close());
      return running;
    },
  };
}
