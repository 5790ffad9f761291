// The peers of the deadline tests: raw TCP backends whose every move is scripted (answer early and
// ignore the body, refuse an upgrade and keep the connection, stream a large body with backpressure,
// collect a body before answering), and raw clients that play the attacker (declare a body and never
// send it, keep a refused upgrade half-open, never read). Each records what it saw as signals to wait on.
import net from 'node:net';

export interface Backend {
  port: number;
  /** Request heads received, in order. */
  heads: string[];
  /** Connections the gateway has open to this backend. */
  open(): number;
  /** Connections the gateway closed so far. */
  closed(): number;
  /** Resolves once `count` connections have closed, rejects after `timeoutMs`. */
  waitClosed(count: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export type BackendScript = (socket: net.Socket, head: string, rest: Buffer) => void;

/** A raw backend: the first request head (up to CRLF CRLF) is handed to `script` with the bytes after it. */
export async function startBackend(script: BackendScript): Promise<Backend> {
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  let closed = 0;
  const waiters = new Set<() => void>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      sockets.delete(socket);
      closed += 1;
      for (const waiter of waiters) waiter();
    });
    let buf = Buffer.alloc(0);
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      if (answered) return; // one request per connection: every script closes or keeps it unused
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      answered = true;
      const head = buf.toString('latin1', 0, end);
      heads.push(head);
      script(socket, head, buf.subarray(end + 4));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    heads,
    open: () => sockets.size,
    closed: () => closed,
    waitClosed(count, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (closed < count) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`backend: ${closed} connections closed after ${timeoutMs} ms, waited for ${count}`),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Answers at once, without reading the request body, and keeps the connection. */
export function answerEarly(status: number, reason: string): BackendScript {
  return (socket) => socket.write(`HTTP/1.1 ${status} ${reason}\r\ncontent-length: 2\r\n\r\nno`);
}

/** Answers 200 "ok" at once and closes (one request per connection: nothing stays pooled). */
export const answerOk: BackendScript = (socket) => {
  socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
};

/** Reads the whole Content-Length body, then answers 200 with its length and closes. */
export const collectBody: BackendScript = (socket, head, rest) => {
  const want = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? '0');
  let got = rest.length;
  const answer = () =>
    socket.end(`HTTP/1.1 200 OK\r\ncontent-length: ${String(got).length}\r\nconnection: close\r\n\r\n${got}`);
  if (got >= want) {
    answer();
    return;
  }
  socket.on('data', (chunk: Buffer) => {
    got += chunk.length;
    if (got >= want) answer();
  });
};

/** Streams a `bytes`-long body with backpressure, until done (then closes) or the connection closes. */
export function streamBody(bytes: number): BackendScript {
  const piece = Buffer.alloc(64 * 1024, 0x61);
  return (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${bytes}\r\nconnection: close\r\n\r\n`);
    let left = bytes;
    const pump = () => {
      while (left > 0 && !socket.destroyed) {
        const take = Math.min(left, piece.length);
        left -= take;
        if (!socket.write(take === piece.length ? piece : piece.subarray(0, take))) return;
      }
      if (left === 0) socket.end();
    };
    socket.on('drain', pump);
    pump();
  };
}

export interface Client {
  socket: net.Socket;
  /** Bytes received so far (nothing is recorded for a client created with read: false). */
  received(): Buffer;
  /** Resolves with the status and the time (performance.now()) once a whole response head arrived. */
  head(timeoutMs: number): Promise<{ status: number; head: string; at: number }>;
  /** Resolves with the time the gateway ended or reset the connection (FIN or RST seen). */
  serverGone(timeoutMs: number): Promise<number>;
}

/**
 * A raw client from `from`: writes `payload` and, unless `read` is false, records what comes back.
 * `allowHalfOpen`: a FIN from the gateway does not close our side (an attacker that never closes).
 */
export async function connectClient(
  port: number,
  from: string,
  payload: string | Buffer,
  options: { allowHalfOpen?: boolean; read?: boolean } = {},
): Promise<Client> {
  const socket = net.connect({
    host: '127.0.0.1',
    port,
    localAddress: from,
    allowHalfOpen: options.allowHalfOpen ?? false,
  });
  const chunks: Buffer[] = [];
  let headSeen: { status: number; head: string; at: number } | null = null;
  let goneAt: number | null = null;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of waiters) waiter();
  };
  socket.on('error', () => socket.destroy());
  const gone = () => {
    goneAt ??= performance.now();
    notify();
  };
  socket.once('end', gone);
  socket.once('close', gone);
  if (options.read === false) socket.pause();
  else {
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (headSeen === null) {
        const all = Buffer.concat(chunks);
        const end = all.indexOf('\r\n\r\n');
        if (end >= 0) {
          const head = all.toString('latin1', 0, end);
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
          headSeen = { status, head, at: performance.now() };
        }
      }
      notify();
    });
  }
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(payload);
  const until = <T>(value: () => T | null, timeoutMs: number, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const v = value();
        if (v === null) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(v);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        const seen = Buffer.concat(chunks).toString('latin1').slice(0, 200);
        reject(new Error(`${what} within ${timeoutMs} ms (received ${JSON.stringify(seen)})`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return {
    socket,
    received: () => Buffer.concat(chunks),
    head: (timeoutMs) => until(() => headSeen, timeoutMs, 'no response head'),
    serverGone: (timeoutMs) => until(() => goneAt, timeoutMs, 'the gateway did not close the connection'),
  };
}
