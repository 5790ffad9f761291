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
