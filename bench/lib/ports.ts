// Ports for systems under test: free ports from the kernel, and "is it listening yet" read from
// /proc/net/tcp{,6} so waiting never makes a connection (a probe would be noise in a PROXY listener).
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** A port the kernel just handed out on `host` (for programs that cannot listen on port 0). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Decodes a /proc/net/tcp address: host-order 32-bit words, little-endian on the machines we run on. */
function decodeAddress(hex: string): string {
  const raw = Buffer.from(hex, 'hex');
  if (raw.length === 4) return Array.from(raw.reverse()).join('.');
  for (let i = 0; i < 16; i += 4) raw.subarray(i, i + 4).reverse();
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(raw.readUInt16BE(i).toString(16));
  // RFC 5952 form through the URL parser, so "0:0:0:0:0:0:0:1" compares equal to "::1".
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** Parses /proc/net/tcp text into "addr:port" of every socket in LISTEN state. */
export function parseListening(text: string): string[] {
  const result: string[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== '0A') continue; // 0A = TCP_LISTEN
    const [addrHex, portHex] = fields[1]!.split(':');
    if (addrHex === undefined || portHex === undefined) continue;
    result.push(`${decodeAddress(addrHex)}:${Number.parseInt(portHex, 16)}`);
  }
  return result;
}

export function listeningSockets(): Set<string> {
  const result = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      for (const entry of parseListening(readFileSync(file, 'utf8'))) result.add(entry);
    } catch {
      // no IPv6 on this machine
    }
  }
  return result;
}

export interface Endpoint {
  host: string;
  port: number;
}

/**
 * Resolves once every endpoint is in LISTEN state; rejects when `failed()` returns a reason (e.g. the
 * process exited) or after `timeoutMs`.
 */
export async function waitListening(
  endpoints: readonly Endpoint[],
  failed: () => string | null,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = failed();
    if (reason !== null) throw new Error(reason);
    const listening = listeningSockets();
    const missing = endpoints.filter(({ host, port }) => {
      const wildcard = host.includes(':') ? '::' : '0.0.0.0';
      return !listening.has(`${host}:${port}`) && !listening.has(`${wildcard}:${port}`);
    });
    if (missing.length === 0) return;
    if (Date.now() > deadline) {
      const names = missing.map(({ host, port }) => `${host}:${port}`).join(', ');
      throw new Error(`nothing listens on ${names} after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
