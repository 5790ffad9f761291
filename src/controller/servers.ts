// The controller's two small HTTP edges: --healthz-port (/healthz, and /metrics as ingress-nginx
// serves them there) and the validating webhook (AdmissionReview v1 over TLS).
import { readFileSync } from 'node:fs';
import type { Server, ServerResponse } from 'node:http';
import http from '../node-http.ts';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Registry } from 'prom-client';
import { healthAnswer } from './healthz.ts';
import type { KubeObject } from './resources.ts';

export interface SmallServer {
  address: AddressInfo;
  close(): Promise<void>;
}

async function listen(server: Server | https.Server, host: string, port: number): Promise<SmallServer> {
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
  /** null: healthy; otherwise the reason /healthz answers 500 (a failed Kubernetes healthz check, as ingress-nginx). */
  unhealthy: () => string | null;
  /** A note on a healthy answer (e.g. serving the last good snapshot during an API outage). */
  note: () => string | null;
  registry: Pick<Registry, 'metrics' | 'contentType'> | null;
}): Promise<SmallServer> {
  const server = http.createServer(async (req, res) => {
    const [path = '/', search = ''] = (req.url ?? '/').split('?', 2);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const state = { unhealthy: options.unhealthy(), note: options.note() };
    const query = new URLSearchParams(search);
    // /healthz answers too, whatever --health-check-path says (keepip has always served it).
    const health =
      healthAnswer(options.healthPath, path, query, state) ?? healthAnswer('/healthz', path, query, state);
    if (health !== null) {
      const headers = { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' };
      res.writeHead(health.status, headers).end(health.body);
    } else if (path === '/metrics' && options.registry !== null) {
      const body = await options.registry.metrics();
      res.writeHead(200, { 'content-type': options.registry.contentType }).end(body);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  return listen(server, options.host, options.port);
}

/** ingress-nginx's limit: the API server's 3 MB request bodies, times 3 (an UPDATE carries two objects). */
export const MAX_REVIEW_BYTES = 9 * 1024 * 1024;

/** A body the webhook does not read, or could not review. */
export interface WebhookRefusal {
  code: 'ADMISSION_BODY_TOO_LARGE' | 'ADMISSION_REVIEW_FAILED';
  message: string;
}

/**
 * The webhook's deadlines (ingress-nginx: 10 s for the headers) and connection cap: the API server
 * sends small reviews over few connections; anyone else holds at most this much.
 */
const WEBHOOK_LIMITS = { headersTimeout: 10_000, requestTimeout: 30_000, maxConnections: 1024 };
/**
 * Connections that finished TLS, at most: counted after the handshake, so that sockets that never
 * speak TLS (cut after WEBHOOK_HANDSHAKE_MS, as Go's ReadHeaderTimeout covers ingress-nginx's
 * handshake) cannot take the places the API server's reviews need.
 */
const WEBHOOK_MAX_SECURE = 64;
const WEBHOOK_HANDSHAKE_MS = 10_000;

/** Beyond WEBHOOK_MAX_SECURE connections past their handshake, a new one is closed at once. */
function capSecureConnections(server: https.Server): void {
  const open = new Set<TLSSocket>();
  server.on('secureConnection', (socket) => {
    if (open.size >= WEBHOOK_MAX_SECURE) {
      socket.destroy();
      return;
    }
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
}

function tooLarge(res: ServerResponse, log: (line: string) => void): void {
  const refusal: WebhookRefusal = {
    code: 'ADMISSION_BODY_TOO_LARGE',
    message: `the body is larger than ${MAX_REVIEW_BYTES} bytes; nothing is reviewed`,
  };
  log(`admission: bad request (${refusal.code}: ${refusal.message})`);
  // Not read any further: the connection closes once the answer is out.
  res
    .writeHead(413, { 'content-type': 'text/plain', connection: 'close' })
    .end(`${refusal.code}: ${refusal.message}\n`);
}

type Review = (
  body: unknown,
) => { ok: true; response: KubeObject } | { ok: false; code: string; message: string };

/** The body parsed and reviewed; a review that throws is a coded failure, never the process's end. */
function reviewBody(bytes: Buffer, review: Review): ReturnType<Review> {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { ok: false, code: 'ADMISSION_BAD_REVIEW', message: 'the body is not JSON' };
  }
  try {
    return review(body);
  } catch (error) {
    const refusal: WebhookRefusal = {
      code: 'ADMISSION_REVIEW_FAILED',
      message: `the review failed: ${String((error as Error)?.message ?? error).slice(0, 200)}`,
    };
    return { ok: false, ...refusal };
  }
}

export function startWebhookServer(options: {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  review: Review;
  log: (line: string) => void;
}): Promise<SmallServer> {
  const server = https.createServer(
    {
      cert: readFileSync(options.certFile),
      key: readFileSync(options.keyFile),
      handshakeTimeout: WEBHOOK_HANDSHAKE_MS,
    },
    (req, res) => {
      if (req.method !== 'POST') {
        res.writeHead(405, { allow: 'POST' }).end();
        return;
      }
      if (Number(req.headers['content-length'] ?? 0) > MAX_REVIEW_BYTES) {
        tooLarge(res, options.log);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_REVIEW_BYTES) chunks.push(chunk);
        else if (!res.headersSent) tooLarge(res, options.log);
      });
      req.on('end', () => {
        if (res.headersSent) return;
        const outcome = reviewBody(Buffer.concat(chunks), options.review);
        if (!outcome.ok) {
          options.log(`admission: bad request (${outcome.code}: ${outcome.message})`);
          const status = outcome.code === 'ADMISSION_REVIEW_FAILED' ? 500 : 400;
          res
            .writeHead(status, { 'content-type': 'text/plain' })
            .end(`${outcome.code}: ${outcome.message}\n`);
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(outcome.response));
      });
    },
  );
  Object.assign(server, WEBHOOK_LIMITS);
  capSecureConnections(server);
  return listen(server, options.host, options.port);
}
