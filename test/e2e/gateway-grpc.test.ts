// gRPC through the gateway (backend-protocol GRPC / GRPCS) with an independent client and server
// (@grpc/grpc-js): unary and streaming calls, trailers (grpc-status, grpc-message), the client's
// address in x-real-ip / x-forwarded-for metadata (also from a PROXY load balancer), deadlines
// (grpc-timeout, proxy-read-timeout), denials and failures as gRPC statuses, multiplexed backend
// sessions, and a client that cancels.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway, testCertificate } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import {
  type EchoClient,
  type EchoReply,
  type EchoServer,
  echoClient,
  grpc,
  plainEchoClient,
  startEchoServer,
  unary,
} from '../fixtures/grpc/echo.ts';
import { connectH2 } from '../helpers/h2-client.ts';
import { refusingPort } from '../helpers/net.ts';

const GRPC = 'grpc.example.com';
const GRPCS = 'grpcs.example.com';
const DENIED = 'denied.example.com';
const SLOW = 'slow.example.com';
const DOWN = 'down.example.com';
const NONE = 'none.example.com';
const RAW = 'raw.example.com';

/** The gRPC framing of one protobuf message (uncompressed): flag, length, bytes. */
function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** EchoRequest{message: text, delay_ms: delay} in protobuf wire format. */
function echoRequest(text: string, delayMs = 0): Buffer {
  const body = Buffer.from(text);
  const parts = [Buffer.from([0x0a, body.length]), body];
  if (delayMs > 0) {
    const varint: number[] = [];
    for (let v = delayMs; ; v >>>= 7) {
      if (v < 0x80) {
        varint.push(v);
        break;
      }
      varint.push((v & 0x7f) | 0x80);
    }
    parts.push(Buffer.from([0x18, ...varint]));
  }
  return Buffer.concat(parts);
}

function collect<T>(stream: NodeJS.EventEmitter): Promise<{ items: T[]; error: grpc.ServiceError | null }> {
  return new Promise((resolve) => {
    const items: T[] = [];
    stream.on('data', (item: T) => items.push(item));
    stream.on('error', (error: grpc.ServiceError) => resolve({ items, error }));
    stream.on('end', () => resolve({ items, error: null }));
  });
}

/**
 * An h2c backend answering every call with HEADERS, one DATA frame, then the trailers (grpc-status 0),
 * whatever the request's body, as a gRPC server does for a unary call (a path ending in /later: 100 ms on).
 */
async function startTrailersBackend(): Promise<{
  port: number;
  /** Resolves once the backend has seen this many of its streams for `path` closed. */
  closedStreams(path: string, count: number): Promise<void>;
  close(): Promise<void>;
}> {
  const server = http2.createServer();
  const closed = new Map<string, number>();
  const waiters: Array<{ path: string; count: number; resolve(): void }> = [];
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    stream.once('close', () => {
      closed.set(path, (closed.get(path) ?? 0) + 1);
      for (const w of waiters) if (w.path === path && w.count <= (closed.get(path) ?? 0)) w.resolve();
    });
    const answer = () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(grpcFrame(Buffer.from('reply')));
    };
    stream.resume();
    // `/later` answers after 100 ms: any deadline the gateway set shorter than that strikes first.
    if (path.endsWith('/later')) setTimeout(answer, 100);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    closedStreams: (path, count) =>
      (closed.get(path) ?? 0) >= count
        ? Promise.resolve()
        : new Promise((resolve) => waiters.push({ path, count, resolve })),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('gateway gRPC backends', () => {
  let raw: Awaited<ReturnType<typeof startTrailersBackend>>;
  let plain: EchoServer;
  let secure: EchoServer;
  let gw: TestGateway;
  let rootCert: string;
  const clients: EchoClient[] = [];
  const client = (host: string) => {
    const made = echoClient(gw.httpsPort, host, rootCert);
    clients.push(made);
    return made;
  };

  before(async () => {
    plain = await startEchoServer();
    const pair = await testCertificate();
    secure = await startEchoServer(pair);
    rootCert = pair.cert;
    raw = await startTrailersBackend();
    const down = await refusingPort();
    gw = await startTestGateway(
      topologyOf([
        // Compression of every type on: gRPC answers must pass as they are (their own compression, trailers).
        controllerConfigMap({
          'use-gzip': 'true',
          'gzip-types': '*',
          'enable-brotli': 'true',
          'brotli-types': '*',
        }),
        ...serviceWithEndpoints({ name: 'echo', ports: [plain.port], servicePort: 50051 }),
        ...serviceWithEndpoints({ name: 'secure', ports: [secure.port], servicePort: 50052 }),
        ...serviceWithEndpoints({ name: 'down', ports: [down], servicePort: 50053 }),
        ...serviceWithEndpoints({ name: 'none', ports: [], servicePort: 50054 }),
        ...serviceWithEndpoints({ name: 'raw', ports: [raw.port], servicePort: 50055 }),
        ingress({
          name: 'raw',
          host: RAW,
          paths: [{ path: '/', service: 'raw', port: 50055 }],
          annotations: { 'backend-protocol': 'GRPC' },
        }),
        ingress({
          name: 'grpc',
          host: GRPC,
          paths: [{ path: '/', service: 'echo', port: 50051 }],
          annotations: { 'backend-protocol': 'GRPC' },
        }),
        ingress({
          name: 'grpcs',
          host: GRPCS,
          paths: [{ path: '/', service: 'secure', port: 50052 }],
          annotations: { 'backend-protocol': 'GRPCS' },
        }),
        ingress({
          name: 'denied',
          host: DENIED,
          paths: [{ path: '/', service: 'echo', port: 50051 }],
          annotations: { 'backend-protocol': 'GRPC', 'whitelist-source-range': '10.0.0.0/8' },
        }),
        ingress({
          name: 'slow',
          host: SLOW,
          paths: [{ path: '/', service: 'echo', port: 50051 }],
          annotations: { 'backend-protocol': 'GRPC', 'proxy-read-timeout': '1' },
        }),
        ingress({
          name: 'down',
          host: DOWN,
          paths: [{ path: '/', service: 'down', port: 50053 }],
          annotations: { 'backend-protocol': 'GRPC' },
        }),
        ingress({
          name: 'none',
          host: NONE,
          paths: [{ path: '/', service: 'none', port: 50054 }],
          annotations: { 'backend-protocol': 'GRPC' },
        }),
      ]),
    );
  });

  after(async () => {
    for (const c of clients) c.close();
    await gw.close();
    await plain.close();
    await secure.close();
    await raw.close();
  });

  test('unary: the reply, and the client address in x-real-ip / x-forwarded-for metadata', async () => {
    const { reply, error } = await unary(client(GRPC), { message: 'hello' });
    assert.equal(error, null);
    assert.deepEqual(reply, { message: 'hello', realIp: '127.0.0.1', forwardedFor: '127.0.0.1', index: 0 });
    await gw.access.waitFor(
      /^127\.0\.0\.1 .*"POST \/keepip\.test\.Echo\/Unary HTTP\/2\.0" 200 .*\[default-echo-50051\]/,
    );
  });

  test('grpc.go: a plaintext client (HTTP/2 with prior knowledge) on the HTTP port, as nginx with `http2 on`', async () => {
    const made = plainEchoClient(`127.0.0.1:${gw.httpPort}`, GRPC);
    clients.push(made);
    const { reply, error } = await unary(made, { message: 'h2c' });
    assert.equal(error, null);
    assert.deepEqual(reply, { message: 'h2c', realIp: '127.0.0.1', forwardedFor: '127.0.0.1', index: 0 });
    await gw.access.waitFor(/"POST \/keepip\.test\.Echo\/Unary HTTP\/2\.0" 200 .*\[default-echo-50051\]/);
  });

  test('GRPCS: TLS to the backend', async () => {
    const { reply, error } = await unary(client(GRPCS), { message: 'over tls' });
    assert.equal(error, null);
    assert.equal(reply?.message, 'over tls');
  });

  test('a call whose body is empty (END_STREAM on an empty DATA frame, never read) still gets the trailers', {
    timeout: 10_000,
  }, async () => {
    const conn = await connectH2({ port: gw.httpsPort, host: RAW });
    try {
      for (let i = 0; i < 5; i++) {
        const reply = await conn.request('/keepip.test.Echo/Unary', {
          method: 'POST',
          // accept-encoding as a browser's: with use-gzip on every type, the answer must still pass as it is.
          headers: {
            'content-type': 'application/grpc',
            te: 'trailers',
            'content-length': '0',
            'accept-encoding': 'gzip, br',
          },
          body: '',
        });
        assert.equal(reply.status, 200);
        assert.deepEqual(reply.body, grpcFrame(Buffer.from('reply')));
        assert.equal(reply.trailers['grpc-status'], '0');
      }
    } finally {
      await conn.close();
    }
  });

  test('a client still sending when the answer ends gets the trailers, then RST_STREAM NO_ERROR (as nginx)', {
    timeout: 10_000,
  }, async () => {
    const conn = await connectH2({ port: gw.httpsPort, host: RAW });
    try {
      for (let i = 0; i < 5; i++) {
        const stream = conn.session.request({
          ':method': 'POST',
          ':path': '/keepip.test.Echo/BidiStream',
          ':authority': RAW,
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) =>
          stream.once('trailers', resolve),
        );
        stream.on('error', () => {});
        stream.resume();
        // One message, and the client's side stays open: the backend answers and ends first.
        stream.write(grpcFrame(Buffer.from('more to come')));
        assert.equal((await trailers)['grpc-status'], '0');
        await new Promise((resolve) => stream.once('close', resolve));
        assert.equal(stream.rstCode, http2.constants.NGHTTP2_NO_ERROR);
      }
      // The gateway ended its side of each backend stream too: none is left open.
      await raw.closedStreams('/keepip.test.Echo/BidiStream', 5);
    } finally {
      await conn.close();
    }
  });

  test("the backend's status and message reach the client in the trailers", async () => {
    const { error } = await unary(client(GRPC), { message: 'nope', failWith: grpc.status.NOT_FOUND });
    assert.equal(error?.code, grpc.status.NOT_FOUND);
    assert.equal(error?.details, 'asked to fail: nope');
  });

  test('server streaming, client streaming and bidi', async () => {
    const echo = client(GRPC);
    const server = await collect<EchoReply>(echo.ServerStream({ message: 'count 4' }));
    assert.equal(server.error, null);
    assert.deepEqual(
      server.items.map((r) => r.message),
      ['count 4 #0', 'count 4 #1', 'count 4 #2', 'count 4 #3'],
    );
    assert.ok(server.items.every((r) => r.realIp === '127.0.0.1'));
    const upload = await new Promise<EchoReply | undefined>((resolve, reject) => {
      const call = echo.ClientStream(new grpc.Metadata(), {}, (error, reply) =>
        error ? reject(error) : resolve(reply),
      );
      for (const part of ['a', 'b', 'c']) call.write({ message: part });
      call.end();
    });
    assert.equal(upload?.message, 'a+b+c');
    assert.equal(upload?.index, 3);
    // Bidi: each answer comes back before the next message is sent.
    const bidi = echo.Bidi();
    const answers: string[] = [];
    for (const word of ['one', 'two', 'three']) {
      const next = new Promise<EchoReply>((resolve) => bidi.once('data', resolve));
      bidi.write({ message: word });
      answers.push((await next).message);
    }
    bidi.end();
    await collect<EchoReply>(bidi);
    assert.deepEqual(answers, ['echo one', 'echo two', 'echo three']);
  });

  test('a client outside the allowlist gets PERMISSION_DENIED (the 403 as a gRPC status)', async () => {
    const calls = plain.calls();
    const { error } = await unary(client(DENIED), { message: 'let me in' });
    assert.equal(error?.code, grpc.status.PERMISSION_DENIED);
    assert.match(error?.details ?? '', /403 Forbidden/);
    assert.equal(plain.calls(), calls);
    await gw.access.waitFor(/"POST \/keepip\.test\.Echo\/Unary HTTP\/2\.0" 403 0 /);
    await gw.errors.waitFor(/access forbidden by rule, client: 127\.0\.0\.1, server: denied\.example\.com/);
  });

  test('an unreachable backend is UNAVAILABLE, one without endpoints too', async () => {
    const down = await unary(client(DOWN), { message: 'anyone?' });
    assert.equal(down.error?.code, grpc.status.UNAVAILABLE);
    await gw.errors.waitFor(
      /connect\(\) failed \(111: Connection refused\) while connecting to upstream.*upstream: "grpc:\/\/127\.0\.0\.1:\d+\/keepip\.test\.Echo\/Unary"/,
    );
    await gw.access.waitFor(/"POST \/keepip\.test\.Echo\/Unary HTTP\/2\.0" 502 .*\[default-down-50053\]/);
    const none = await unary(client(NONE), { message: 'anyone?' });
    assert.equal(none.error?.code, grpc.status.UNAVAILABLE);
  });

  test('proxy-read-timeout ends a call the backend does not answer: DEADLINE_EXCEEDED, 504 in the log', async () => {
    const { error } = await unary(client(SLOW), { message: 'slow', delayMs: 3_000 });
    assert.equal(error?.code, grpc.status.DEADLINE_EXCEEDED);
    await gw.errors.waitFor(
      /upstream timed out .*while reading response header from upstream.*server: slow\.example\.com/,
    );
    await gw.access.waitFor(/"POST \/keepip\.test\.Echo\/Unary HTTP\/2\.0" 504 .*\[default-echo-50051\]/);
  });

  test("grpc-timeout is the gateway's deadline too, for a client that does not enforce its own", async () => {
    // A bare HTTP/2 client: it sends grpc-timeout: 200m and waits as long as it takes.
    const conn = await connectH2({ port: gw.httpsPort, from: '127.0.0.61', host: GRPC });
    try {
      const reply = await conn.request('/keepip.test.Echo/Unary', {
        method: 'POST',
        headers: { 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '200m' },
        body: grpcFrame(echoRequest('late', 3_000)),
      });
      assert.equal(reply.status, 200);
      const status = reply.trailers['grpc-status'] ?? reply.headers['grpc-status'];
      assert.equal(status, String(grpc.status.DEADLINE_EXCEEDED));
    } finally {
      await conn.close();
    }
    await gw.access.waitFor(/^127\.0\.0\.61 .*"POST \/keepip\.test\.Echo\/Unary HTTP\/2\.0" 504 /);
  });

  test('a deadline longer than a timer can hold (grpc-timeout 720H, 30 days) is no deadline, not one already past', async () => {
    // The raw backend (not grpc-js, whose own timer has the same limit) answers after 100 ms.
    const conn = await connectH2({ port: gw.httpsPort, from: '127.0.0.62', host: RAW });
    try {
      const reply = await conn.request('/keepip.test.Echo/later', {
        method: 'POST',
        headers: { 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '720H' },
        body: grpcFrame(Buffer.from('far')),
      });
      assert.equal(reply.status, 200);
      assert.equal(reply.trailers['grpc-status'] ?? reply.headers['grpc-status'], String(grpc.status.OK));
    } finally {
      await conn.close();
    }
  });

  test('a client that cancels: 499 in the log, the backend call cancelled', async () => {
    const echo = client(GRPC);
    const calls = plain.calls();
    const cancelled = plain.cancelled();
    const outcome = new Promise<grpc.ServiceError | null>((resolve) => {
      const call = echo.Unary({ message: 'cancel me', delayMs: 10_000 }, new grpc.Metadata(), {}, (error) =>
        resolve(error),
      );
      // Cancel once the backend has the call (a signal, not a sleep).
      const poll = setInterval(() => {
        if (plain.calls() > calls) {
          clearInterval(poll);
          call.cancel();
        }
      }, 10);
    });
    assert.equal((await outcome)?.code, grpc.status.CANCELLED);
    await gw.access.waitFor(/"POST \/keepip\.test\.Echo\/Unary HTTP\/2\.0" 499 /);
    // The backend hears of it (the gateway resets its stream): its call is cancelled, not left running.
    for (let i = 0; i < 300 && plain.cancelled() === cancelled; i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(plain.cancelled(), cancelled + 1);
  });

  test('many calls at once share one multiplexed keep-alive session to the backend', async () => {
    const echo = client(GRPC);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => unary(echo, { message: `m${i}` })),
    );
    assert.ok(results.every((r) => r.error === null));
    const snap = gw.gateway.snapshot();
    const location = snap.topology.gateway.virtualHosts.find((v) => v.host === GRPC)?.locations[0];
    const pool = location === undefined ? undefined : snap.upstreamFor(location)?.members[0]?.pool;
    assert.equal((pool as { sessions?: number } | undefined)?.sessions, 1);
  });

  test('an HTTP/1.1 client on a gRPC location gets the error pages, not gRPC statuses', async () => {
    const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: gw.httpPort });
      let data = '';
      socket.on('data', (chunk) => (data += chunk.toString('latin1')));
      socket.on('end', () => resolve({ status: Number(data.slice(9, 12)), body: data }));
      socket.on('error', reject);
      socket.end(`GET / HTTP/1.1\r\nHost: ${DENIED}\r\nConnection: close\r\n\r\n`);
    });
    assert.equal(reply.status, 403);
    assert.match(reply.body, /<title>403 Forbidden<\/title>/);
  });
});

describe('gRPC behind a PROXY load balancer', () => {
  let backend: EchoServer;
  let gw: TestGateway;
  let relay: net.Server;
  let client: EchoClient;

  before(async () => {
    backend = await startEchoServer();
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({ 'use-proxy-protocol': 'true', 'proxy-real-ip-cidr': '127.0.0.30/32' }),
        ...serviceWithEndpoints({ name: 'echo', ports: [backend.port], servicePort: 50051 }),
        ingress({
          name: 'grpc',
          host: GRPC,
          paths: [{ path: '/', service: 'echo', port: 50051 }],
          annotations: { 'backend-protocol': 'GRPC', 'whitelist-source-range': '198.51.100.0/24' },
        }),
      ]),
    );
    // An L4 load balancer in miniature: from 127.0.0.30, a PROXY v1 header naming the client, then the bytes.
    relay = net.createServer((inbound) => {
      const outbound = net.connect({ host: '127.0.0.1', port: gw.httpsPort, localAddress: '127.0.0.30' });
      outbound.write(`PROXY TCP4 198.51.100.7 127.0.0.1 40000 443\r\n`);
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    client = echoClient((relay.address() as AddressInfo).port, GRPC, (await testCertificate()).cert);
  });

  after(async () => {
    client.close();
    await gw.close();
    relay.close();
    await backend.close();
  });

  test("the client named by the PROXY header is every call's x-real-ip, and the allowlist's subject", async () => {
    const replies = await Promise.all([1, 2, 3].map((i) => unary(client, { message: `p${i}` })));
    for (const { reply, error } of replies) {
      assert.equal(error, null);
      assert.equal(reply?.realIp, '198.51.100.7');
      assert.equal(reply?.forwardedFor, '198.51.100.7');
    }
    await gw.access.waitFor(/^198\.51\.100\.7 .*"POST \/keepip\.test\.Echo\/Unary HTTP\/2\.0" 200 /);
  });
});

describe('gRPC and the balancer', () => {
  test('upstream-hash-by picks the endpoint of every call, as for HTTP (not round robin)', async () => {
    const a = await startEchoServer();
    const b = await startEchoServer();
    const pair = await testCertificate();
    const gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'pair', ports: [a.port, b.port], servicePort: 50055 }),
        ingress({
          name: 'hashed',
          host: GRPC,
          paths: [{ path: '/', service: 'pair', port: 50055 }],
          annotations: { 'backend-protocol': 'GRPC', 'upstream-hash-by': '$remote_addr' },
        }),
      ]),
    );
    const c = echoClient(gw.httpsPort, GRPC, pair.cert);
    try {
      for (let i = 0; i < 6; i++) assert.equal((await unary(c, { message: `call ${i}` })).error, null);
      // One client address: all six on one endpoint (round robin would split them 3 / 3).
      assert.deepEqual([a.calls(), b.calls()].sort(), [0, 6]);
    } finally {
      c.close();
      await gw.close();
      await a.close();
      await b.close();
    }
  });
});
