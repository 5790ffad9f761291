// An HTTP/2 client for end-to-end tests (node:http2): one TLS connection from a chosen 127.x source,
// optionally preceded by a PROXY header, carrying as many streams as the test asks for.
import http2, { type ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';

export interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

export interface H2Connection {
  readonly session: ClientHttp2Session;
  request(
    path: string,
    options?: { method?: string; headers?: Record<string, string>; body?: Buffer | string },
  ): Promise<H2Reply>;
  close(): Promise<void>;
}

export interface H2ConnectOptions {
  port: number;
  /** Source address (127.x). */
  from?: string;
  /** SNI and :authority. */
  host?: string;
  /** Bytes written on the TCP connection before TLS (a PROXY header). */
  preface?: Buffer | string;
}

/** Opens one HTTP/2 connection over TLS; every request() is a stream on it. */
export async function connectH2(options: H2ConnectOptions): Promise<H2Connection> {
  const host = options.host ?? 'localhost';
  const tcp = net.connect({
    host: '127.0.0.1',
    port: options.port,
    localAddress: options.from ?? '127.0.0.1',
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('connect', resolve);
    tcp.once('error', reject);
  });
  if (options.preface !== undefined) tcp.write(options.preface);
  const session = http2.connect(`https://${host}:${options.port}`, {
    createConnection: () =>
      tls.connect({ socket: tcp, servername: host, ALPNProtocols: ['h2'], rejectUnauthorized: false }),
  });
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  return {
    session,
    request(path, request = {}) {
      return new Promise((resolve, reject) => {
        const stream = session.request({
          ':method': request.method ?? 'GET',
          ':path': path,
          ':authority': host,
          ...request.headers,
        });
        let status = 0;
        let headers: http2.IncomingHttpHeaders = {};
        let trailers: http2.IncomingHttpHeaders = {};
        const chunks: Buffer[] = [];
        stream.on('response', (h) => {
          headers = h;
          status = Number(h[':status']);
        });
        stream.on('trailers', (t) => {
          trailers = t;
        });
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => resolve({ status, headers, trailers, body: Buffer.concat(chunks) }));
        stream.on('error', reject);
        // A stream the server's GOAWAY or close cut short ends without 'end' or 'error'.
        stream.on('close', () =>
          reject(new Error(`stream closed before its end (RST code ${stream.rstCode})`)),
        );
        stream.end(request.body);
      });
    },
    close() {
      return new Promise((resolve) => {
        if (session.closed || session.destroyed) return resolve();
        session.close(() => resolve());
      });
    },
  };
}

/** One request on a connection of its own. */
export async function h2Request(
  options: H2ConnectOptions & {
    path: string;
    method?: string;
    headers?: Record<string, string>;
    body?: Buffer | string;
  },
): Promise<H2Reply> {
  const conn = await connectH2(options);
  try {
    return await conn.request(options.path, options);
  } finally {
    await conn.close();
  }
}
