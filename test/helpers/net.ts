// Socket helpers for tests: free ports, waiting for listeners, raw exchanges from a chosen source address.
import net from 'node:net';

/** Asks the kernel for a free port on `host` (for programs such as HAProxy that cannot listen on port 0). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on host:port, or rejects after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
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
 * reply until the server closes or `timeoutMs` passes.
 */
export async function rawExchange(options: {
  host: string;
  port: number;
  payload: Buffer | string;
  localAddress?: string;
  endAfterWrite?: boolean;
  timeoutMs?: number;
}): Promise<RawExchange> {
  const { host, port, payload, localAddress, endAfterWrite = false, timeoutMs = 5_000 } = options;
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
