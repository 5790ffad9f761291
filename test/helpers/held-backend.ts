// An HTTP backend that holds chosen requests until the test releases them: the signal that a request is
// in flight (it reached the backend) without a sleep, and a request that stays in flight as long as the
// test needs (a reload, a drain) without a fixed delay. Answers like whoami's JSON echo (name, url,
// remoteAddress, headers), so tests that read echoes work unchanged. Usage:
//   const backend = await startHeldBackend({ hold: (url) => url.includes('hold') });
//   const pending = request(gw.httpPort, { path: '/?hold' });
//   await backend.arrived(/hold/);   // in flight now
//   ...reload...; backend.release(); (await pending).status === 200
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { collectHeaders } from '../../src/whoami/echo.ts';

export interface HeldBackend {
  port: number;
  /** Every request URL that reached the backend, in arrival order. */
  urls: string[];
  /** Resolves with the first URL matching `pattern` that reached the backend (already or later). */
  arrived(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Answers every held request, and every later one that would be held. */
  release(): void;
  close(): Promise<void>;
}

export async function startHeldBackend(
  options: { name?: string; host?: string; hold?: (url: string) => boolean } = {},
): Promise<HeldBackend> {
  const name = options.name ?? 'held';
  const hold = options.hold ?? (() => true);
  const urls: string[] = [];
  const held: (() => void)[] = [];
  const waiters = new Set<() => void>();
  let released = false;
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    req.resume();
    req.on('end', () => {
      urls.push(url);
      for (const waiter of [...waiters]) waiter();
      const answer = () => {
        const body = `${JSON.stringify({
          name,
          url,
          remoteAddress: req.socket.remoteAddress ?? '',
          headers: collectHeaders(req.rawHeaders),
        })}\n`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (released || !hold(url)) answer();
      else held.push(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, options.host ?? '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    urls,
    arrived(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = urls.find((url) => pattern.test(url));
          if (found === undefined) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no request matching ${pattern} reached the backend; it saw: ${urls.join(', ')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    release() {
      released = true;
      for (const answer of held.splice(0)) answer();
    },
    close() {
      released = true;
      for (const answer of held.splice(0)) answer();
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
