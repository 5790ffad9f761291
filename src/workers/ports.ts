// Port 0 with workers: each worker binding port 0 would get a port of its own, so the primary picks
// the port first (a placeholder listener with SO_REUSEPORT), the workers join it, and the placeholder
// is closed once they listen. Nobody knows the port before the start-up line names it, so no client
// reaches the placeholder; one that did anyway would be reset, never left hanging.
import net from 'node:net';

export interface ReservedPort {
  port: number;
  /** Closes the placeholder (a no-op for a fixed port). */
  release(): Promise<void>;
}

export async function reservePort(host: string, port: number): Promise<ReservedPort> {
  if (port !== 0) return { port, release: async () => {} };
  const placeholder = net.createServer((socket) => socket.resetAndDestroy());
  await new Promise<void>((resolve, reject) => {
    placeholder.once('error', reject);
    placeholder.listen({ host, port: 0, reusePort: true }, () => {
      placeholder.off('error', reject);
      resolve();
    });
  });
  return {
    port: (placeholder.address() as net.AddressInfo).port,
    release: () => new Promise<void>((resolve) => placeholder.close(() => resolve())),
  };
}
