// The controller's two small HTTP edges: --healthz-port (/healthz, and /metrics as ingress-nginx
// serves them there) and the validating webhook (AdmissionReview v1 over TLS).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { KubeObject } from './resources.ts';

export interface SmallServer {
  address: AddressInfo;
  close(): Promise<void>;
}

async function listen(server: http.Server | https.Server, host: string, port: number): Promise<SmallServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function startHealthServer(options: {
  host: string;
  port: number;
  healthPath: string;
  /** null: healthy; otherwise the reason /healthz answers 503. */
  unhealthy: () => string | null;
  /** A note on a healthy answer (e.g. serving the last good snapshot during an API outage). */
  note: () => string | null;
  registry: Pick<Registry, 'metrics' | 'contentType'> | null;
}): Promise<SmallServer> {
  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === options.healthPath || path === '/healthz') {
      const reason = options.unhealthy();
      const note = options.note();
      const body = reason === null ? `ok${note ? ` (${note})` : ''}\n` : `${reason}\n`;
      res.writeHead(reason === null ? 200 : 503, { 'content-type': 'text/plain' }).end(body);
    } else if (path === '/metrics' && options.registry !== null) {
      const body = await options.registry.metrics();
      res.writeHead(200, { 'content-type': options.registry.contentType }).end(body);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  return listen(server, options.host, options.port);
}

const MAX_REVIEW_BYTES = 4 * 1024 * 1024;

export function startWebhookServer(options: {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  review: (body: unknown) => { ok: true; response: KubeObject } | { ok: false; message: string };
  log: (line: string) => void;
}): Promise<SmallServer> {
  const server = https.createServer(
    { cert: readFileSync(options.certFile), key: readFileSync(options.keyFile) },
    (req, res) => {
      if (req.method !== 'POST') {
        res.writeHead(405, { allow: 'POST' }).end();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_REVIEW_BYTES) req.destroy();
        else chunks.push(chunk);
      });
      req.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          res.writeHead(400, { 'content-type': 'text/plain' }).end('body is not JSON\n');
          return;
        }
        const outcome = options.review(body);
        if (!outcome.ok) {
          options.log(`admission: bad request (${outcome.message})`);
          res.writeHead(400, { 'content-type': 'text/plain' }).end(`${outcome.message}\n`);
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(outcome.response));
      });
    },
  );
  return listen(server, options.host, options.port);
}
