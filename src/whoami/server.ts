// The whoami backend's socket edge: an HTTP server that answers every request with what it received
// (see echo.ts for the shape), GET /health, ?wait= delays, and a WebSocket echo on any path.
import { createHash } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import http from '../node-http.ts';
import type { AddressInfo, Socket } from 'node:net';
import { hostname } from 'node:os';
import { WebSocketServer } from 'ws';
import { describeRequest, parseWait, renderText, type WhoamiBody, wantsJson } from './echo.ts';

export interface WhoamiOptions {
  host: string;
  port: number;
  /** Shown as "name" so tests can tell several backends apart; default "whoami". */
  name?: string;
}

export interface RunningWhoami {
  address: AddressInfo;
  close(): Promise<void>;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Who answers: the "name" and "hostname" of every echo. */
interface Identity {
  name: string;
  hostname: string;
}

const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';

export async function startWhoami(options: WhoamiOptions): Promise<RunningWhoami> {
  const identity: Identity = { name: options.name ?? 'whoami', hostname: hostname() };
  const timers = new Set<NodeJS.Timeout>();
  // Deadlines of a service anyone may reach: a head within 10 s, a whole request within 60 s.
  // Node checks these deadlines every connectionsCheckingInterval (30 s by default): once a second, so
  // that a stalled head is cut at 10 s as --help says, not at up to 40.
  const limits = { headersTimeout: 10_000, requestTimeout: 60_000, connectionsCheckingInterval: 1_000 };
  const server = http.createServer(limits, (req, res) => handleRequest(identity, timers, req, res));
  server.on('clientError', (_error, socket: Socket) => {
    if (socket.writable) socket.end(BAD_REQUEST);
    else socket.destroy();
  });
  const wss = echoWebSockets(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  let closing: Promise<void> | null = null;
  return {
    address: server.address() as AddressInfo,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** GET /health; a bad ?wait= is a 400 naming its code; anything else is echoed, after the wait. */
function handleRequest(
  identity: Identity,
  timers: Set<NodeJS.Timeout>,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const url = req.url ?? '/';
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3 }).end('ok\n');
    return;
  }
  let delayMs = 0;
  const wait = queryAt === -1 ? null : new URLSearchParams(url.slice(queryAt + 1)).get('wait');
  if (wait !== null) {
    const parsed = parseWait(wait);
    if (!parsed.ok) {
      req.resume();
      const text = `${parsed.error.code}: ${parsed.error.message}\n`;
      res.writeHead(400, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    delayMs = parsed.ms;
  }
  readBody(req, res, (body) => {
    if (delayMs === 0) return answer(identity, req, res, body);
    const timer = setTimeout(() => {
      timers.delete(timer);
      answer(identity, req, res, body);
    }, delayMs);
    timers.add(timer);
  });
}

/** Reads the body to its end, hashing it as it streams, so large uploads cost no memory. */
function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  done: (body: WhoamiBody | undefined) => void,
): void {
  const hash = hasBody(req) ? createHash('sha256') : null;
  let bytes = 0;
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    hash?.update(chunk);
  });
  req.on('error', () => res.destroy());
  req.on('end', () => done(hash ? { bytes, sha256: hash.digest('hex') } : undefined));
}

function answer(
  identity: Identity,
  req: IncomingMessage,
  res: ServerResponse,
  body: WhoamiBody | undefined,
): void {
  const socket = req.socket;
  const rawHeaders = req.rawHeaders;
  const echo = describeRequest({
    ...identity,
    remoteAddress: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
    localAddress: socket.localAddress ?? '',
    localPort: socket.localPort ?? 0,
    method: req.method ?? '',
    url: req.url ?? '/',
    httpVersion: req.httpVersion,
    rawHeaders,
    ...(body ? { body } : {}),
  });
  const json = wantsJson(echo.url, req.headers.accept);
  const payload = json ? `${JSON.stringify(echo)}\n` : renderText(echo, rawHeaders);
  res.writeHead(200, {
    'content-type': json ? 'application/json' : 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

const MAX_WEBSOCKET_MESSAGE = 1024 * 1024;

/** WebSocket echo on any path: text stays text, binary stays binary; a message over 1 MiB closes it (1009). */
function echoWebSockets(server: Server): WebSocketServer {
  // An echo needs no 100 MiB messages (ws's default), each held whole and sent back.
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WEBSOCKET_MESSAGE });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      socket.end(BAD_REQUEST);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => ws.terminate());
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
  return wss;
}
