// gRPC backend sessions are shared by every client (h2-client.ts multiplexes), so a client that resets
// its calls makes the gateway reset streams on a session other clients' calls ride on. Backends bound
// the resets they take per connection (nghttp2, and so Node and grpc-js: a burst of 1000 then 33/s;
// Envoy: half of 500 streams) and drop the connection past it, which would fail every call on it. So
// clients who each stay under the gateway's own rapid-reset limit must not, together, cost another
// client its call: the gateway resets at most 200 streams on one backend session (100, then no new
// streams there; at most 100 streams in flight per session).
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import http2, { type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { connectH2 } from '../helpers/h2-client.ts';
import {
  connectRawH2,
  FLAG,
  FRAME,
  frame,
  H2_ERROR,
  headerBlock,
  requestFields,
  rstPayload,
} from '../helpers/h2-raw.ts';

const HOST = 'grpc.example';
const GRPC_HEADERS = [
  ['content-type', 'application/grpc'],
  ['te', 'trailers'],
] as const;

interface SessionStats {
  streams: number;
  active: number;
  maxActive: number;
  resets: number;
  failed: boolean;
}

/**
 * An h2c backend (Node: nghttp2's default reset limit) that holds every call until told, and counts
 * per session the streams, those in flight, and the resets it receives.
 */
async function holdingBackend() {
  const changed = new EventEmitter();
  const sessions: SessionStats[] = [];
  const held: ServerHttp2Stream[] = [];
  const server = http2.createServer();
  server.on('session', (session: Http2Session) => {
    const stats: SessionStats = { streams: 0, active: 0, maxActive: 0, resets: 0, failed: false };
    sessions.push(stats);
    session.on('error', () => {
      stats.failed = true;
      changed.emit('change');
    });
    session.on('stream', (stream: ServerHttp2Stream) => {
      stats.streams += 1;
      stats.active += 1;
      stats.maxActive = Math.max(stats.maxActive, stats.active);
      stream.on('error', () => {});
      stream.once('close', () => {
        stats.active -= 1;
        if (stream.rstCode === http2.constants.NGHTTP2_CANCEL) stats.resets += 1;
        changed.emit('change');
      });
      held.push(stream);
      changed.emit('change');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const total = (key: 'streams' | 'resets') => sessions.reduce((sum, s) => sum + s[key], 0);
  return {
    sessions,
    port: (server.address() as net.AddressInfo).port,
    total,
    /** Resolves once `check` holds (re-checked on every backend event), or a session failed. */
    until(check: () => boolean): Promise<void> {
      return new Promise((resolve) => {
        const test = () => {
          if (!check() && !sessions.some((s) => s.failed)) return;
          changed.off('change', test);
          resolve();
        };
        changed.on('change', test);
        test();
      });
    },
    /** Answers every held call that is still open: grpc-status 0 in the trailers. */
    answerAll() {
      for (const stream of held.splice(0)) {
        if (stream.closed || stream.destroyed) continue;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end();
      }
    },
    close: async () => {
      server.close();
    },
  };
}

describe('gRPC: resets of some clients never cost another client its call', () => {
  let backend: Awaited<ReturnType<typeof holdingBackend>>;
  let gw: TestGateway;

  before(async () => {
    backend = await holdingBackend();
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'g', ports: [backend.port], servicePort: 50051 }),
        ingress({
          name: 'g',
          host: HOST,
          paths: [{ path: '/', service: 'g', port: 50051 }],
          annotations: { 'backend-protocol': 'GRPC' },
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  /** One attacker connection: `count` calls that reach the backend, then all reset at once. */
  async function resetBurst(from: string, count: number): Promise<void> {
    const raw = await connectRawH2({ port: gw.httpsPort, from });
    const block = headerBlock(requestFields(HOST, '/echo.Echo/Say', 'POST', GRPC_HEADERS));
    const streams = backend.total('streams');
    const resets = backend.total('resets');
    const ids = Array.from({ length: count }, (_, i) => 1 + 2 * i);
    await raw.send(Buffer.concat(ids.map((id) => frame(FRAME.HEADERS, FLAG.END_HEADERS, id, block))));
    await backend.until(() => backend.total('streams') >= streams + count);
    await raw.send(
      Buffer.concat(ids.map((id) => frame(FRAME.RST_STREAM, 0, id, rstPayload(H2_ERROR.CANCEL)))),
    );
    await backend.until(() => backend.total('resets') >= resets + count);
    raw.close();
  }

  it('2,700 resets from 30 connections (90 each, under the gateway limit): the other call completes', async () => {
    const legit = await connectH2({ port: gw.httpsPort, from: '127.0.0.70', host: HOST });
    const reply = legit.request('/echo.Echo/Say', {
      method: 'POST',
      headers: Object.fromEntries(GRPC_HEADERS),
      body: Buffer.alloc(5),
    });
    await backend.until(() => backend.total('streams') >= 1);
    for (let c = 0; c < 30 && !backend.sessions.some((s) => s.failed); c++)
      await resetBurst(`127.0.2.${c + 1}`, 90);
    backend.answerAll();
    assert.equal(backend.sessions[0]?.failed, false, 'the backend dropped the shared session');
    const answered = await reply;
    assert.equal(answered.trailers['grpc-status'], '0');
    for (const [i, s] of backend.sessions.entries())
      assert.ok(s.resets <= 200, `backend session ${i} took ${s.resets} resets`);
    await legit.close();
  });

  it('at most 100 calls in flight per backend session, whatever the backend allows', async () => {
    for (const s of backend.sessions) s.maxActive = s.active;
    const raws = await Promise.all(
      ['127.0.3.1', '127.0.3.2'].map((from) => connectRawH2({ port: gw.httpsPort, from })),
    );
    const block = headerBlock(requestFields(HOST, '/echo.Echo/Say', 'POST', GRPC_HEADERS));
    const open = (from: number, count: number) =>
      Buffer.concat(
        Array.from({ length: count }, (_, i) => frame(FRAME.HEADERS, FLAG.END_HEADERS, from + 2 * i, block)),
      );
    // One call first, so that the backend session is connected (its SETTINGS allow 2^32-1 streams).
    const streams = backend.total('streams');
    await raws[0]!.send(open(1, 1));
    await backend.until(() => backend.total('streams') >= streams + 1);
    await raws[0]!.send(open(3, 75));
    await raws[1]!.send(open(1, 75));
    await backend.until(() => backend.total('streams') >= streams + 151);
    for (const s of backend.sessions) assert.ok(s.maxActive <= 100, `${s.maxActive} in flight`);
    backend.answerAll();
    for (const raw of raws) raw.close();
  });
});
