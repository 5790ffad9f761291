// gRPC proxying attacked from both ends: grpc-timeout values a client makes up, a backend that sends
// huge metadata or trailers, or HEADERS and then nothing, and a client message over proxy-body-size.
// (The reset budget per backend session is test/security/grpc-reset-fanout.test.ts.)
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';

const frame = (n: number) => {
  const b = Buffer.alloc(5 + n, 0x61);
  b[0] = 0;
  b.writeUInt32BE(n, 1);
  return b;
};

interface Answer {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  bytes: number;
  error: string | null;
}

function call(
  port: number,
  host: string,
  path: string,
  extra: Record<string, string>,
  body: Buffer,
): Promise<Answer> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    const out: Answer = { status: undefined, headers: {}, trailers: {}, bytes: 0, error: null };
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      ':authority': host,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...extra,
    });
    stream.on('response', (h) => {
      out.status = h[':status'] as number;
      out.headers = h;
    });
    stream.on('trailers', (t) => {
      out.trailers = t;
    });
    stream.on('data', (c: Buffer) => {
      out.bytes += c.length;
    });
    stream.on('error', (e: Error) => {
      out.error = e.message;
    });
    stream.on('close', () => {
      session.close();
      resolve(out);
    });
    stream.end(body);
  });
}

const grpcStatus = (a: Answer) => String(a.trailers['grpc-status'] ?? a.headers['grpc-status']);

describe('gRPC proxying under attack', () => {
  let backend: http2.Http2Server;
  let port: number;
  let gw: TestGateway;
  const received = new Map<string, number>();
  const seenTimeout: string[] = [];

  before(async () => {
    backend = http2.createServer({ maxHeaderListPairs: 4096 });
    backend.on('stream', (stream, headers) => {
      const path = String(headers[':path']);
      stream.on('error', () => {});
      let n = 0;
      stream.on('data', (c: Buffer) => {
        n += c.length;
        received.set(path, n);
      });
      if (headers['grpc-timeout'] !== undefined) seenTimeout.push(String(headers['grpc-timeout']));
      const big: Record<string, string> = {};
      for (let i = 0; i < 300; i++) big[`x-meta-${i}`] = 'v'.repeat(200);
      if (path === '/svc/HeadersOnly') {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        return; // never DATA, never trailers
      }
      if (path === '/svc/BigMeta') {
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', ...big },
          { waitForTrailers: true },
        );
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(frame(2));
        return;
      }
      if (path === '/svc/BigTrailers') {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', ...big }));
        stream.end(frame(2));
        return;
      }
      stream.on('end', () => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(frame(2));
      });
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    port = (backend.address() as AddressInfo).port;
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'g', ports: [port], servicePort: 50051 }),
        ingress({
          name: 'g',
          host: 'g.test',
          paths: [{ path: '/', service: 'g', port: 50051 }],
          annotations: { 'backend-protocol': 'GRPC', 'proxy-read-timeout': '1', 'proxy-body-size': '1k' },
        }),
      ]),
    );
  });
  after(async () => {
    await gw.close();
    await new Promise((resolve) => backend.close(resolve));
  });

  test('malformed grpc-timeout values are ignored (the call completes); 0m is an immediate DEADLINE_EXCEEDED', async () => {
    for (const value of ['-1S', '1.5S', '123456789S', '1s', 'S', '1X', ' 1S', '99999999H']) {
      const a = await call(gw.httpPort, 'g.test', '/svc/Echo', { 'grpc-timeout': value }, frame(10));
      assert.equal(grpcStatus(a), '0', `grpc-timeout ${JSON.stringify(value)}: ${JSON.stringify(a)}`);
    }
    const zero = await call(gw.httpPort, 'g.test', '/svc/Echo', { 'grpc-timeout': '0m' }, frame(10));
    assert.equal(grpcStatus(zero), '4');
  });

  test('a backend that sends HEADERS and never DATA: DEADLINE_EXCEEDED after proxy-read-timeout', async () => {
    const started = Date.now();
    const a = await call(gw.httpPort, 'g.test', '/svc/HeadersOnly', {}, frame(10));
    assert.ok(Date.now() - started < 8_000);
    assert.ok(a.error !== null || grpcStatus(a) === '4', JSON.stringify(a));
  });

  test('a backend that sends 300 x 200-byte metadata: the call ends with a gRPC status, not a hang', async () => {
    const a = await call(gw.httpPort, 'g.test', '/svc/BigMeta', {}, frame(10));
    assert.ok(a.error !== null || grpcStatus(a) !== 'undefined', JSON.stringify({ ...a, headers: {} }));
  });

  test('a backend that sends 300 x 200-byte trailers: the call ends, not a hang', async () => {
    const a = await call(gw.httpPort, 'g.test', '/svc/BigTrailers', {}, frame(10));
    assert.ok(a.error !== null || a.status !== undefined, JSON.stringify({ ...a, trailers: {} }));
  });

  test('a message over proxy-body-size (1k): RESOURCE_EXHAUSTED (or 413), the backend gets at most the limit', async () => {
    const a = await call(gw.httpPort, 'g.test', '/svc/Big', {}, frame(64 * 1024));
    assert.ok(grpcStatus(a) === '8' || a.status === 413, JSON.stringify(a));
    assert.ok((received.get('/svc/Big') ?? 0) <= 1024 + 16 * 1024, `backend got ${received.get('/svc/Big')}`);
  });
});
