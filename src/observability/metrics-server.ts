// The metrics and health edge shared by every runtime: GET /metrics (Prometheus text) and GET /healthz.
import http from '../node-http.ts';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  address: AddressInfo;
  close(): Promise<void>;
}

export async function startMetricsServer(options: {
  host: string;
  port: number;
  /** A prom-client Registry, or anything that renders one (src/workers/ sums its workers' registries). */
  registry: Pick<Registry, 'metrics' | 'contentType'>;
  /** /healthz answers 200 while this returns true, 503 otherwise (e.g. while draining). */
  healthy?: () => boolean;
}): Promise<MetricsServer> {
  const { registry, healthy = () => true } = options;
  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType }).end(body);
    } else if (path === '/healthz') {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'draining\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    address: server.address() as AddressInfo,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
