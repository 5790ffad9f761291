// The socket edge on real loopback sockets: trust, deadline, size cap, split headers, and the
// application's bytes after the header (hashed, in order), in front of net, http, https and tls.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import https from 'node:https';
import net from 'node:net';
import { before, test } from 'node:test';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { generate } from 'selfsigned';
import { authorityTlv, encodeProxyHeader, noopTlv } from '../../src/proxy-protocol/index.ts';
import {
  acceptProxyProtocol,
  createProxyReaderStats,
  foldMappedIPv4,
  getProxyInfo,
  type ProxyInfo,
  type ProxyReaderOptions,
  type ProxyServer,
  type RejectEvent,
} from '../../src/proxy-protocol/reader.ts';

const V2_HEADER = encodeProxyHeader({
  version: 2,
  source: { address: '203.0.113.7', port: 40001 },
  destination: { address: '198.51.100.1', port: 443 },
  tlvs: [authorityTlv('example.test')],
});
const V1_HEADER = Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 40002 80\r\n');

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

async function close(server: net.Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function connect(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    socket.setNoDelay(true);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves when the server has closed the socket (with whatever it sent first). */
function closedByServer(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** A plain net.Server target that records what each handed-on connection carries until its end. */
function recordingTarget(): {
  target: net.Server;
  next(): Promise<{ data: Buffer; info: ProxyInfo | undefined }>;
} {
  const waiting: Array<(r: { data: Buffer; info: ProxyInfo | undefined }) => void> = [];
  const target = net.createServer((socket) => {
    const chunks: Buffer[] = [];
    const info = getProxyInfo(socket);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      socket.end();
      waiting.shift()?.({ data: Buffer.concat(chunks), info });
    });
  });
  return { target, next: () => new Promise((resolve) => waiting.push(resolve)) };
}

function options(extra: Partial<ProxyReaderOptions> = {}): ProxyReaderOptions & { rejects: RejectEvent[] } {
  const rejects: RejectEvent[] = [];
  return {
    isTrusted: (peer) => peer === '127.0.0.1',
    timeoutMs: 5_000,
    onReject: (event) => rejects.push(event),
    stats: createProxyReaderStats(),
    rejects,
    ...extra,
  };
}

test('a header split over several segments, then data: the target gets the data and the header info', {
  timeout: 20_000,
}, async (t) => {
  const { target, next } = recordingTarget();
  const opts = options();
  const server = acceptProxyProtocol(target, opts);
  const port = await listen(server);
  t.after(() => close(server));

  const received = next();
  const socket = await connect(port);
  for (const cut of [
    [0, 5],
    [5, 13],
    [13, 17],
    [17, V2_HEADER.length],
  ] as const) {
    socket.write(V2_HEADER.subarray(cut[0], cut[1]));
    await sleep(15);
  }
  socket.end('hello after the header');
  const { data, info } = await received;
  assert.equal(data.toString(), 'hello after the header');
  assert.equal(info?.clientAddress, '203.0.113.7');
  assert.equal(info?.clientPort, 40001);
  assert.equal(info?.header.authority, 'example.test');
  assert.equal(info?.peerAddress, '127.0.0.1');
  assert.equal(info?.fromHeader, true);
  assert.equal(server.proxyStats.accepted, 1);
});

test('header and data in one segment; a second header behind the first is application data', {
  timeout: 20_000,
}, async (t) => {
  const { target, next } = recordingTarget();
  const server = acceptProxyProtocol(target, options());
  const port = await listen(server);
  t.after(() => close(server));

  const spoofed = encodeProxyHeader({
    version: 2,
    source: { address: '10.6.6.6', port: 1 },
    destination: { address: '10.0.0.1', port: 2 },
  });
  const received = next();
  const socket = await connect(port);
  socket.end(Buffer.concat([V1_HEADER, spoofed, V1_HEADER, Buffer.from('tail')]));
  const { data, info } = await received;
  assert.deepEqual(data, Buffer.concat([spoofed, V1_HEADER, Buffer.from('tail')]));
  assert.equal(info?.clientAddress, '2001:db8::7');
  assert.equal(info?.destinationPort, 80);
});

test('a large payload after the header arrives unchanged and in order (sha256)', {
  timeout: 20_000,
}, async (t) => {
  const { target, next } = recordingTarget();
  const server = acceptProxyProtocol(target, options());
  const port = await listen(server);
  t.after(() => close(server));

  const payload = randomBytes(24 * 1024 * 1024);
  const received = next();
  const socket = await connect(port);
  // The header and the first application bytes share a write, as a load balancer sends them.
  socket.write(Buffer.concat([V2_HEADER, payload.subarray(0, 1000)]));
  socket.end(payload.subarray(1000));
  const { data } = await received;
  assert.equal(data.length, payload.length);
  assert.equal(
    createHash('sha256').update(data).digest('hex'),
    createHash('sha256').update(payload).digest('hex'),
  );
});

test('an untrusted peer is closed unread and counted, even with a valid header', {
  timeout: 20_000,
}, async (t) => {
  const { target } = recordingTarget();
  let handedOn = 0;
  target.on('connection', () => handedOn++);
  const opts = options();
  const server = acceptProxyProtocol(target, opts);
  const port = await listen(server);
  t.after(() => close(server));

  const socket = await connect(port, '127.0.0.2');
  const closed = closedByServer(socket);
  socket.write(Buffer.concat([V2_HEADER, Buffer.from('GET / HTTP/1.1\r\n\r\n')]));
  assert.equal((await closed).length, 0);
  assert.equal(handedOn, 0);
  assert.equal(opts.stats?.closed.untrusted, 1);
  assert.deepEqual(
    opts.rejects.map((r) => [r.reason, r.peer]),
    [['untrusted', '127.0.0.2']],
  );
});

test('a peer that stops mid-header is closed at the deadline', { timeout: 20_000 }, async (t) => {
  const { target } = recordingTarget();
  // Long enough that the 20 bytes below are read before it, however busy the machine; short enough to wait for.
  const opts = options({ timeoutMs: 1_000 });
  const server = acceptProxyProtocol(target, opts);
  const port = await listen(server);
  t.after(() => close(server));

  const socket = await connect(port);
  const closed = closedByServer(socket);
  socket.write(V2_HEADER.subarray(0, 20));
  await closed;
  assert.equal(opts.stats?.closed.timeout, 1);
  assert.equal(opts.rejects[0]?.reason, 'timeout');
  assert.match(opts.rejects[0]?.detail ?? '', /20 byte/);
});

test('a header larger than the cap is closed as oversize, as soon as its length is known', {
  timeout: 20_000,
}, async (t) => {
  const { target } = recordingTarget();
  const opts = options({ maxHeaderBytes: 100 });
  const server = acceptProxyProtocol(target, opts);
  const port = await listen(server);
  t.after(() => close(server));

  const big = encodeProxyHeader({
    version: 2,
    source: { address: '203.0.113.7', port: 1 },
    destination: { address: '198.51.100.1', port: 2 },
    tlvs: [noopTlv(300)],
  });
  const socket = await connect(port);
  const closed = closedByServer(socket);
  socket.write(big.subarray(0, 16)); // only the fixed part: the declared length already says too much
  await closed;
  assert.equal(opts.stats?.closed.oversize, 1);

  // A v1 line is capped the same way when the cap is below 107.
  const small = options({ maxHeaderBytes: 20 });
  const server2 = acceptProxyProtocol(target, small);
  const port2 = await listen(server2);
  t.after(() => close(server2));
  const socket2 = await connect(port2);
  const closed2 = closedByServer(socket2);
  socket2.write(V1_HEADER);
  await closed2;
  assert.equal(small.stats?.closed.oversize, 1);
});

test('malformed input and a close before the header are counted by reason; nothing is handed on', {
  timeout: 20_000,
}, async (t) => {
  const { target } = recordingTarget();
  let handedOn = 0;
  target.on('connection', () => handedOn++);
  const opts = options();
  const server = acceptProxyProtocol(target, opts);
  const port = await listen(server);
  t.after(() => close(server));

  const bad = await connect(port);
  const closed = closedByServer(bad);
  bad.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await closed;
  const quitter = await connect(port);
  const closed2 = closedByServer(quitter);
  quitter.end(V1_HEADER.subarray(0, 10));
  await closed2;
  assert.equal(opts.stats?.closed.malformed, 1);
  assert.equal(opts.stats?.closed.closed, 1);
  assert.equal(opts.rejects[0]?.error?.code, 'PP_NOT_PROXY_PROTOCOL');
  assert.equal(handedOn, 0);
});

test('a LOCAL header means the socket’s own endpoints', { timeout: 20_000 }, async (t) => {
  const { target, next } = recordingTarget();
  const server = acceptProxyProtocol(target, options({ isTrusted: () => true }));
  const port = await listen(server);
  t.after(() => close(server));

  const received = next();
  const socket = await connect(port, '127.0.0.3');
  socket.end(Buffer.concat([encodeProxyHeader({ version: 2, command: 'LOCAL' }), Buffer.from('x')]));
  const { data, info } = await received;
  assert.equal(data.toString(), 'x');
  assert.equal(info?.fromHeader, false);
  assert.equal(info?.clientAddress, '127.0.0.3');
  assert.equal(info?.destinationPort, port);
});

test('foldMappedIPv4 folds only IPv4-mapped IPv6', () => {
  assert.equal(foldMappedIPv4('::ffff:127.0.0.9'), '127.0.0.9');
  assert.equal(foldMappedIPv4('::FFFF:10.1.2.3'), '10.1.2.3');
  assert.equal(foldMappedIPv4('::1'), '::1');
  assert.equal(foldMappedIPv4('2001:db8::ffff:1.2.3.4'), '2001:db8::ffff:1.2.3.4');
});

// http / https / tls targets: getProxyInfo on req.socket and on the TLSSocket.

let pems: { private: string; cert: string };
before(async () => {
  pems = await generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048 });
});

function connectWithHeader(port: number, header: Buffer, localAddress: string): net.Socket {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  socket.write(header); // queued before anything http or TLS writes
  return socket;
}

function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.on('data', (c: Buffer) => {
      text += c.toString();
    });
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
  });
}

/** An http(s) handler that answers with the PROXY info and the hash of the request body. */
function echoInfo(req: IncomingMessage, res: ServerResponse): void {
  const hash = createHash('sha256');
  req.on('data', (c: Buffer) => hash.update(c));
  req.on('end', () => {
    const info = getProxyInfo(req.socket);
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({ client: info?.clientAddress, port: info?.clientPort, body: hash.digest('hex') }),
    );
  });
}

async function post(
  port: number,
  header: Buffer,
  body: Buffer,
  tlsClient: boolean,
): Promise<{ client: string; port: number; body: string }> {
  return new Promise((resolve, reject) => {
    const createConnection = () => {
      const raw = connectWithHeader(port, header, '127.0.0.4');
      return tlsClient
        ? tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' })
        : raw;
    };
    const request = (tlsClient ? https : http).request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', createConnection },
      (res) => {
        readAll(res).then((text) => resolve(JSON.parse(text)), reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

test('http.Server: req.socket carries the PROXY info; the request body is intact', {
  timeout: 20_000,
}, async (t) => {
  const target = http.createServer(echoInfo);
  const server: ProxyServer = acceptProxyProtocol(target, options({ isTrusted: (p) => p === '127.0.0.4' }));
  const port = await listen(server);
  t.after(async () => {
    target.closeAllConnections();
    await close(server);
  });
  const body = randomBytes(2 * 1024 * 1024);
  const answer = await post(port, V2_HEADER, body, false);
  assert.equal(answer.client, '203.0.113.7');
  assert.equal(answer.port, 40001);
  assert.equal(answer.body, createHash('sha256').update(body).digest('hex'));
});

test('https.Server: the TLS handshake follows the header and req.socket (a TLSSocket) carries the info', {
  timeout: 20_000,
}, async (t) => {
  const target = https.createServer({ key: pems.private, cert: pems.cert }, echoInfo);
  const server = acceptProxyProtocol(target, options({ isTrusted: (p) => p === '127.0.0.4' }));
  const port = await listen(server);
  t.after(async () => {
    target.closeAllConnections();
    await close(server);
  });
  const body = randomBytes(512 * 1024);
  const answer = await post(port, V1_HEADER, body, true);
  assert.equal(answer.client, '2001:db8::7');
  assert.equal(answer.port, 40002);
  assert.equal(answer.body, createHash('sha256').update(body).digest('hex'));
});

/** A client transport that sends the header in the same write as the first TLS bytes (the ClientHello). */
function headerInFirstWrite(port: number, header: Buffer): Duplex {
  const raw = net.connect({ host: '127.0.0.1', port });
  let first = true;
  const duplex = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      raw.write(first ? Buffer.concat([header, chunk]) : chunk, callback);
      first = false;
    },
    read() {},
    final(callback) {
      raw.end();
      callback();
    },
  });
  raw.on('data', (c: Buffer) => duplex.push(c));
  raw.on('end', () => duplex.push(null));
  raw.on('close', () => duplex.destroy());
  return duplex;
}

test('tls.Server: header and ClientHello in one segment; the secure socket carries the info', {
  timeout: 20_000,
}, async (t) => {
  const target = tls.createServer({ key: pems.private, cert: pems.cert }, (secure) => {
    const info = getProxyInfo(secure);
    secure.end(`${info?.clientAddress} ${info?.header.version}`);
  });
  const server = acceptProxyProtocol(target, options());
  const port = await listen(server);
  t.after(() => close(server));
  const secure = tls.connect({
    socket: headerInFirstWrite(port, V2_HEADER),
    rejectUnauthorized: false,
    servername: 'localhost',
  });
  assert.equal(await readAll(secure), '203.0.113.7 2');
});

test('a PROXY header of a datagram transport (UDP4, UDP6) names no client of this TCP connection', async (t) => {
  // nginx ignores its addresses ("unsupported transport"), HAProxy refuses the connection.
  const { target, next } = recordingTarget();
  const server = acceptProxyProtocol(target, options({ isTrusted: () => true }));
  const port = await listen(server);
  t.after(() => close(server));
  for (const [protocol, source, destination] of [
    ['UDP4', '192.0.2.10', '192.0.2.20'],
    ['UDP6', '2001:db8::10', '2001:db8::20'],
  ] as const) {
    const received = next();
    const socket = await connect(port, '127.0.0.3');
    const header = encodeProxyHeader({
      version: 2,
      protocol,
      source: { address: source, port: 4000 },
      destination: { address: destination, port: 443 },
    });
    socket.end(Buffer.concat([header, Buffer.from('x')]));
    const { data, info } = await received;
    assert.equal(data.toString(), 'x', protocol);
    assert.equal(info?.fromHeader, false, protocol);
    assert.equal(info?.clientAddress, '127.0.0.3', protocol);
  }
});
