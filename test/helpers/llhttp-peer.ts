// Node's llhttp as an independent HTTP/1.1 request parser, driven only through public APIs: a node:http
// server on 127.0.0.1:0 that answers nothing and records what it parsed. Each parse() is one connection:
// the client writes the bytes and half-closes, the server parses them (and the EOF), then closes; the
// result is read once the server-side socket and every request it produced have emitted 'close', so
// nothing depends on timing or on how TCP splits the bytes.
import type { IncomingMessage } from 'node:http';
import http from '../../src/node-http.ts';
import net from 'node:net';

export interface LlhttpRequest {
  method: string;
  url: string;
  /** '1.1', '1.0', ... as llhttp read it. */
  version: string;
  rawHeaders: string[];
  body: Buffer;
  /** llhttp reached the end of the message (req.complete). */
  complete: boolean;
  /** 'request', 'expect' (an Expect other than 100-continue), 'upgrade' or 'connect'. */
  kind: 'request' | 'expect' | 'upgrade' | 'connect';
}

export interface LlhttpResult {
  requests: LlhttpRequest[];
  /** The parse error node:http reported ('clientError'), if any: HPE_* code and llhttp's reason. */
  error: { code: string; reason: string } | null;
}

interface Connection {
  result: LlhttpResult;
  settled: Promise<void>[];
}

export interface LlhttpPeer {
  parse(bytes: Buffer): Promise<LlhttpResult>;
  close(): Promise<void>;
}

/** Keyed by the client's port: the server sees it as remotePort. */
function track(connections: Map<number, Connection>, socket: net.Socket): void {
  const connection: Connection = { result: { requests: [], error: null }, settled: [] };
  connection.settled.push(new Promise((resolve) => socket.once('close', () => resolve())));
  connections.set(socket.remotePort ?? 0, connection);
}

function record(
  connections: Map<number, Connection>,
  req: IncomingMessage,
  kind: LlhttpRequest['kind'],
): void {
  const connection = connections.get(req.socket.remotePort ?? 0);
  if (connection === undefined) throw new Error('llhttp peer: request on an unknown connection');
  const seen: LlhttpRequest = {
    method: req.method ?? '',
    url: req.url ?? '',
    version: req.httpVersion,
    rawHeaders: req.rawHeaders,
    body: Buffer.alloc(0),
    complete: false,
    kind,
  };
  connection.result.requests.push(seen);
  if (kind === 'upgrade' || kind === 'connect') return; // the rest of the bytes are a tunnel
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('error', () => {});
  connection.settled.push(
    new Promise((resolve) =>
      req.once('close', () => {
        seen.body = Buffer.concat(chunks);
        seen.complete = req.complete;
        resolve();
      }),
    ),
  );
}

/** Starts the peer. maxHeaderSize is node's default (16 KiB); a Host header is not required. */
export async function startLlhttpPeer(): Promise<LlhttpPeer> {
  const connections = new Map<number, Connection>();
  const server = http.createServer({ requireHostHeader: false, maxHeaderSize: 16_384 });
  server.on('connection', (socket: net.Socket) => track(connections, socket));
  server.on('request', (req: IncomingMessage) => record(connections, req, 'request'));
  server.on('checkExpectation', (req: IncomingMessage) => record(connections, req, 'expect'));
  server.on('upgrade', (req: IncomingMessage, socket: net.Socket) => {
    record(connections, req, 'upgrade');
    socket.destroy();
  });
  server.on('connect', (req: IncomingMessage, socket: net.Socket) => {
    record(connections, req, 'connect');
    socket.destroy();
  });
  server.on('clientError', (error: Error & { code?: string; reason?: string }, socket: net.Socket) => {
    const connection = connections.get(socket.remotePort ?? 0);
    if (connection)
      connection.result.error = { code: error.code ?? '', reason: error.reason ?? error.message };
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    async parse(bytes) {
      const client = net.connect({ host: '127.0.0.1', port });
      client.on('error', () => {}); // a reset after a parse error is an answer, not a failure
      client.resume();
      await new Promise<void>((resolve) => client.once('connect', () => resolve()));
      const localPort = client.localPort ?? 0;
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.end(bytes);
      await closed;
      // The server closed its side, so it has accepted the connection and parsed everything it got.
      const connection = connections.get(localPort);
      if (connection === undefined) throw new Error(`llhttp peer: no server side for port ${localPort}`);
      await Promise.all(connection.settled);
      connections.delete(localPort);
      return connection.result;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
