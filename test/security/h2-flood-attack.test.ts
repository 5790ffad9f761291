// HTTP/2 resource exhaustion, beyond test/e2e/gateway-http2-abuse.test.ts (rapid reset, CONTINUATION,
// PING/SETTINGS/WINDOW_UPDATE floods, the stream limit and the deadlines over TLS): what an outsider
// tries next. The same floods over h2c prior knowledge on the plain port; streams the gateway itself
// resets because the client broke a rule (MadeYouReset, CVE-2025-8671); HPACK: a block that decodes to
// megabytes through dynamic-table references, the credit it buys against nginx's frame-flood rule,
// table-size-update storms, endless CONTINUATION of empty frames or of one literal; many streams whose
// large responses the client never takes (zero window, or a socket never read); and the slow ways to
// hold a connection (a header block never finished, PINGs on an idle connection, half a preface).
// Frames are written by hand (test/helpers/h2-raw.ts) over TLS (ALPN h2) or plain TCP (h2c).
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { h2Request } from '../helpers/h2-client.ts';
import {
  connectRawH2,
  FLAG,
  FRAME,
  type Frame,
  frame,
  goawayCode,
  H2_ERROR,
  headerBlock,
  PREFACE,
  type RawH2,
  requestFields,
  rstPayload,
  SETTING,
} from '../helpers/h2-raw.ts';

const HOST = 'flood.example';

/** A raw HTTP/2 peer over TLS or plain TCP (h2-raw.ts), which may leave the server's SETTINGS unacknowledged. */
type Wire = RawH2;

function openWire(options: {
  port: number;
  from: string;
  /** TLS with ALPN h2 (the HTTPS port) or h2c prior knowledge (the HTTP port). */
  secure: boolean;
  ack?: boolean;
  settings?: readonly (readonly [number, number])[];
  opening?: Buffer;
}): Promise<Wire> {
  const { secure, ...rest } = options;
  return connectRawH2({ ...rest, servername: HOST, plain: !secure });
}

// ---------------------------------------------------------------------------------------------------
// A backend that counts: /hold never answers, /big?size=N streams N bytes respecting backpressure.

interface BackendStats {
  hits: number;
  open: number;
  /** Response bytes the kernel took from the backend (write callbacks). */
  flushed: number;
  /** /big responses written to their end. */
  finished: number;
  /** /big responses whose write was refused at least once (backpressure reached the backend). */
  stalled: number;
  /** Responses whose connection closed before they ended. */
  aborted: number;
}

async function startBackend() {
  const changed = new EventEmitter();
  const stats: BackendStats = { hits: 0, open: 0, flushed: 0, finished: 0, stalled: 0, aborted: 0 };
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  const big = async (res: ServerResponse, size: number) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    let stalled = false;
    for (let sent = 0; sent < size && !res.destroyed; sent += chunk.length) {
      const piece = sent + chunk.length <= size ? chunk : chunk.subarray(0, size - sent);
      const ok = res.write(piece, () => {
        stats.flushed += piece.length;
      });
      if (ok) continue;
      if (!stalled) {
        stalled = true;
        stats.stalled += 1;
        changed.emit('change');
      }
      await new Promise<void>((resume) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resume();
        };
        res.once('drain', done);
        res.once('close', done);
      });
    }
    if (res.destroyed) return;
    res.end();
    stats.finished += 1;
    changed.emit('change');
  };
  const server = http.createServer((req, res) => {
    stats.hits += 1;
    stats.open += 1;
    res.once('close', () => {
      stats.open -= 1;
      if (!res.writableFinished) stats.aborted += 1;
      changed.emit('change');
    });
    req.resume();
    const url = new URL(req.url ?? '/', 'http://x');
    changed.emit('change');
    if (url.pathname === '/hold') return;
    if (url.pathname === '/big') void big(res, Number(url.searchParams.get('size') ?? '0'));
    else res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    stats,
    port: (server.address() as net.AddressInfo).port,
    until: (what: string, check: () => boolean, timeoutMs = 10_000) =>
      new Promise<void>((resolve, reject) => {
        const test = () => {
          if (!check()) return;
          changed.off('change', test);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          changed.off('change', test);
          reject(new Error(`backend: ${what} not within ${timeoutMs} ms (${JSON.stringify(stats)})`));
        }, timeoutMs);
        changed.on('change', test);
        test();
      }),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

type Backend = Awaited<ReturnType<typeof startBackend>>;

function gatewayFor(backend: Backend, options: Parameters<typeof startTestGateway>[1]) {
  return startTestGateway(
    topologyOf([
      controllerConfigMap({ 'error-log-level': 'info' }),
      ...serviceWithEndpoints({ name: 'app', ports: [backend.port] }),
      ingress({
        name: 'app',
        host: HOST,
        paths: [{ path: '/', service: 'app', port: 80 }],
        annotations: { 'proxy-request-buffering': 'off' },
      }),
    ]),
    options,
  );
}

/** A well-behaved client on its own connection is answered (TLS, or h2c on the plain port). */
async function servedMeanwhile(gw: TestGateway, from: string, secure = true): Promise<void> {
  if (secure) {
    const reply = await h2Request({ port: gw.httpsPort, from, host: HOST, path: '/ok' });
    assert.equal(reply.status, 200);
    return;
  }
  const session = http2.connect(`http://${HOST}`, {
    createConnection: () => net.connect({ host: '127.0.0.1', port: gw.httpPort, localAddress: from }),
  });
  session.on('error', () => {});
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': '/ok', ':authority': HOST });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', reject);
      stream.resume();
      stream.end();
    });
    assert.equal(status, 200);
  } finally {
    session.close();
  }
}

/** keepip_gateway_connections_closed_total{reason="send_timeout"}. */
async function sendTimeouts(gw: TestGateway): Promise<number> {
  const text = await gw.gateway.metrics.registry.metrics();
  const m = /keepip_gateway_connections_closed_total\{reason="send_timeout"\} (\d+)/.exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** Polls an async condition (a metric has no event to wait on), at most `timeoutMs`. */
async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const GET = (path: string) => headerBlock(requestFields(HOST, path));
const headers = (id: number, block: Buffer, flags = FLAG.END_HEADERS | FLAG.END_STREAM) =>
  frame(FRAME.HEADERS, flags, id, block);
const isGoaway = (f: Frame) => f.type === FRAME.GOAWAY;

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, first: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let rest = value - max;
  for (; rest >= 128; rest = Math.floor(rest / 128)) out.push((rest % 128) + 128);
  out.push(rest);
  return Buffer.from(out);
}

const hpackStr = (text: string) => Buffer.concat([hpackInt(text.length, 7, 0), Buffer.from(text, 'latin1')]);

/** The value the bomb's dynamic-table entry holds: the entry (name + value + 32) just fits 4096 octets. */
const BOMB_VALUE = 'v'.repeat(4_000);
const BOMB_REFS = 1_000;

/**
 * A GET whose block is ~1 KB on the wire and decodes to ~4 MB: `x-b: <4,000 bytes>` referenced 1,000
 * times by its dynamic-table index (62). The first block of a connection also inserts the entry.
 */
function bombBlock(path: string, insert: boolean): Buffer {
  const parts = [headerBlock(requestFields(HOST, path))];
  if (insert) parts.push(Buffer.from([0x40]), hpackStr('x-b'), hpackStr(BOMB_VALUE));
  parts.push(Buffer.alloc(BOMB_REFS, 0x80 | 62));
  return Buffer.concat(parts);
}

/** Whether stream `id` was answered (HEADERS) or reset. */
async function answerOf(wire: Wire, id: number): Promise<'headers' | 'reset'> {
  const f = await wire.waitFrame(
    (x) => (x.type === FRAME.HEADERS || x.type === FRAME.RST_STREAM) && x.streamId === id,
  );
  return f.type === FRAME.RST_STREAM ? 'reset' : 'headers';
}

/**
 * Up to 24 MiB of connection WINDOW_UPDATEs (+1 each), then a GET on stream `probe`: the gateway reads
 * frames in order, so by its answer (or a GOAWAY) it has read the whole flood.
 */
async function windowUpdateFlood(
  wire: Wire,
  probe: number,
): Promise<{ sent: number; goaway: Frame | undefined }> {
  const increment = Buffer.alloc(4);
  increment.writeUInt32BE(1);
  const batch = Buffer.concat(
    Array.from({ length: 1_000 }, () => frame(FRAME.WINDOW_UPDATE, 0, 0, increment)),
  );
  const sent = (await flood(wire, () => batch, Math.ceil((24 * 1024 * 1024) / batch.length))) * batch.length;
  if (!wire.closed && wire.goaway() === undefined) {
    await wire.send(headers(probe, GET('/probe')));
    await wire
      .waitFrame((f) => isGoaway(f) || (f.type === FRAME.HEADERS && f.streamId === probe))
      .catch(() => {});
  }
  return { sent, goaway: wire.goaway() };
}

/** Sends `unit(i)` until the server says GOAWAY or closes, at most `max` times; how many were sent. */
async function flood(wire: Wire, unit: (i: number) => Buffer, max: number): Promise<number> {
  let sent = 0;
  while (sent < max && !wire.closed && wire.goaway() === undefined) {
    await wire.send(unit(sent));
    sent += 1;
  }
  return sent;
}

describe('HTTP/2 floods the existing abuse tests leave out', () => {
  let backend: Backend;
  let gw: TestGateway;

  before(async () => {
    backend = await startBackend();
    gw = await gatewayFor(backend, { sendTimeoutMs: 1_500 });
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  it('rapid reset over h2c prior knowledge (plain port): GOAWAY ENHANCE_YOUR_CALM, the backend barely touched, others served', async (t) => {
    const hits = backend.stats.hits;
    const wire = await openWire({ port: gw.httpPort, from: '127.0.9.1', secure: false });
    const block = GET('/reset');
    const pairs = (i: number) =>
      Buffer.concat(
        Array.from({ length: 100 }, (_, j) => {
          const id = 1 + 2 * (i * 100 + j);
          return Buffer.concat([
            headers(id, block),
            frame(FRAME.RST_STREAM, 0, id, rstPayload(H2_ERROR.CANCEL)),
          ]);
        }),
      );
    const attack = flood(wire, pairs, 200);
    await Promise.all([attack, servedMeanwhile(gw, '127.0.9.2', false)]);
    const batches = await attack;
    const goaway = await wire.waitFrame(isGoaway);
    assert.equal(goawayCode(goaway), H2_ERROR.ENHANCE_YOUR_CALM);
    // The client may write all of it before the server reads (plain TCP): the GOAWAY says how far it went.
    const lastStream = goaway.payload.readUInt32BE(0) & 0x7fffffff;
    t.diagnostic(`${batches * 100} pairs written; GOAWAY after stream ${lastStream}`);
    assert.ok(lastStream < 4_000, `the gateway took ${(lastStream + 1) / 2} of the 20,000 streams`);
    const reached = backend.stats.hits - hits - 1;
    assert.ok(reached < 100, `${reached} reset streams reached the backend`);
    await gw.errors.waitFor(
      /\(H2_RAPID_RESET: CVE-2023-44487\), closing HTTP\/2 connection, client: 127\.0\.9\.1,/,
    );
    wire.close();
  });

  const provocations = [
    [
      'a WINDOW_UPDATE with a zero increment',
      (id: number) => frame(FRAME.WINDOW_UPDATE, 0, id, Buffer.alloc(4)),
    ],
    ['DATA on a stream the client already ended', (id: number) => frame(FRAME.DATA, 0, id, Buffer.from('x'))],
    [
      'a WINDOW_UPDATE that overflows the stream window',
      (id: number) => frame(FRAME.WINDOW_UPDATE, 0, id, Buffer.from([0x7f, 0xff, 0xff, 0xff])),
    ],
    [
      'a body longer than its content-length',
      (id: number) => frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from('xy')),
    ],
  ] as const;
  for (const [index, [name, provoke]] of provocations.entries()) {
    it(`MadeYouReset (CVE-2025-8671): streams the gateway resets for ${name}, after they reached the backend, end the connection within 200 streams`, async (t) => {
      const from = `127.0.9.${10 + index}`;
      const wire = await openWire({ port: gw.httpsPort, from, secure: true });
      const hits = backend.stats.hits;
      const block =
        index === 3
          ? headerBlock(requestFields(HOST, '/hold', 'POST', [['content-length', '2']]))
          : GET('/hold');
      const flags = index === 3 ? FLAG.END_HEADERS : FLAG.END_HEADERS | FLAG.END_STREAM;
      let opened = 0;
      while (opened < 1_000 && wire.goaway() === undefined && !wire.closed) {
        const ids = Array.from({ length: 50 }, (_, i) => 1 + 2 * (opened + i));
        const before = backend.stats.hits;
        await wire.send(
          Buffer.concat(
            ids.map((id) =>
              index === 3
                ? Buffer.concat([headers(id, block, flags), frame(FRAME.DATA, 0, id, Buffer.from('x'))])
                : headers(id, block, flags),
            ),
          ),
        );
        await backend.until('the batch', () => backend.stats.hits >= before + ids.length);
        await wire.send(Buffer.concat(ids.map(provoke)));
        const last = ids[ids.length - 1] as number;
        await wire.waitFrame((f) => (f.type === FRAME.RST_STREAM && f.streamId === last) || isGoaway(f));
        opened += ids.length;
      }
      const goaway = await wire.waitFrame(isGoaway);
      t.diagnostic(`GOAWAY code ${goawayCode(goaway)} after ${opened} streams`);
      assert.ok(
        opened <= 200,
        `${opened} streams reached the backend before the GOAWAY (code ${goawayCode(goaway)})`,
      );
      assert.ok(backend.stats.hits - hits <= 200);
      await backend.until('every held request released', () => backend.stats.open === 0);
      await servedMeanwhile(gw, `127.0.9.${20 + index}`);
      wire.close();
    });
  }

  it('an HPACK bomb (~1 KB decoding to ~4 MB through one dynamic-table entry, SETTINGS never acknowledged): refused, never sent upstream, others served', async () => {
    const wire = await openWire({ port: gw.httpsPort, from: '127.0.9.30', secure: true, ack: false });
    const hits = backend.stats.hits;
    const answers: string[] = [];
    for (let i = 0; i < 20; i++) {
      const id = 1 + 2 * i;
      await wire.send(headers(id, bombBlock('/bomb', i === 0)));
      answers.push(await answerOf(wire, id));
      if (wire.closed || wire.goaway() !== undefined) break;
    }
    // Every stream answered (or reset), none upstream, and each answer a 431 in the access log.
    assert.equal(answers.length, 20);
    assert.equal(backend.stats.hits, hits);
    await gw.errors.waitFor(/client sent too large request headers \(H2_HEADER_LIST_TOO_LARGE/);
    const refused = () =>
      gw.access.lines.filter((l) => /^127\.0\.9\.30 .*"GET \/bomb HTTP\/2\.0" 431 /.test(l));
    await gw.access.waitFor(/^127\.0\.9\.30 .*"GET \/bomb HTTP\/2\.0" 431 /);
    assert.equal(refused().length + answers.filter((a) => a === 'reset').length, 20, answers.join(','));
    await servedMeanwhile(gw, '127.0.9.31');
    wire.close();
  });

  it("header lists inflated by HPACK earn no room for a frame flood (nginx counts a header block's wire bytes): WINDOW_UPDATEs cut near 8 × 1 MiB", async () => {
    // Control: the same flood on a connection without requests is cut.
    const control = await openWire({ port: gw.httpsPort, from: '127.0.9.33', secure: true });
    const plain = await windowUpdateFlood(control, 1);
    assert.ok(plain.goaway !== undefined && goawayCode(plain.goaway) === H2_ERROR.ENHANCE_YOUR_CALM);
    control.close();
    const wire = await openWire({ port: gw.httpsPort, from: '127.0.9.32', secure: true, ack: false });
    let wireBytes = 0;
    for (let i = 0; i < 5; i++) {
      const block = bombBlock('/bomb', i === 0);
      wireBytes += block.length;
      await wire.send(headers(1 + 2 * i, block));
      await answerOf(wire, 1 + 2 * i);
    }
    // 24 MiB of WINDOW_UPDATE, then a probe: nginx allows about 8 × (1 MiB + the blocks' wire bytes).
    // The flood rule is checked every 100 ms and when streams arrive, so the cut comes during the
    // flood or at the probe at the latest; 4 MiB of decoded headers each (the old credit) allowed 168.
    const { sent, goaway } = await windowUpdateFlood(wire, 11);
    assert.ok(
      goaway !== undefined && goawayCode(goaway) === H2_ERROR.ENHANCE_YOUR_CALM,
      `${sent} bytes of WINDOW_UPDATE after ${wireBytes} bytes of header blocks, no GOAWAY ENHANCE_YOUR_CALM`,
    );
    wire.close();
  });

  it('CONTINUATION that adds nothing (empty frames, or one literal that never ends) is closed long before 8 MB, others served', async () => {
    const request = headerBlock(requestFields(HOST, '/c'));
    // A literal declaring a 1 MB value whose bytes trickle in 1 KB per CONTINUATION.
    const endless = Buffer.concat([
      request,
      Buffer.from([0x00]),
      hpackStr('x-endless'),
      hpackInt(1_000_000, 7, 0),
    ]);
    for (const [i, [opening, unit]] of [
      [request, Buffer.alloc(0)],
      [endless, Buffer.alloc(1_024, 0x61)],
    ].entries()) {
      const wire = await openWire({ port: gw.httpsPort, from: `127.0.9.${40 + i}`, secure: true });
      await wire.send(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, opening));
      // 100 frames per write, up to 8 MB: the client stops when the server has closed.
      const hundred = Buffer.concat(Array.from({ length: 100 }, () => frame(FRAME.CONTINUATION, 0, 1, unit)));
      const writes = Math.floor((8 * 1024 * 1024) / hundred.length);
      const sent = (await flood(wire, () => hundred, writes)) * 100;
      await wire.waitClosed();
      const goaway = wire.goaway();
      // Closed (a GOAWAY may be lost to the TCP reset of a socket closed with the flood unread).
      assert.ok(sent < writes * 50, `${sent} CONTINUATION frames sent before the close`);
      if (goaway !== undefined) assert.notEqual(goawayCode(goaway), H2_ERROR.NO_ERROR);
      wire.close();
    }
    await servedMeanwhile(gw, '127.0.9.42');
  });

  it('a header block of 5,000 dynamic-table size updates: answered or a connection error, never a hang; others served', async () => {
    const wire = await openWire({ port: gw.httpsPort, from: '127.0.9.43', secure: true });
    const storm = Buffer.concat(
      Array.from({ length: 5_000 }, (_, i) => (i % 2 === 0 ? Buffer.from([0x20]) : hpackInt(4_096, 5, 0x20))),
    );
    await wire.send(headers(1, Buffer.concat([storm, GET('/storm')])));
    const f = await wire.waitFrame((x) => isGoaway(x) || (x.type === FRAME.HEADERS && x.streamId === 1));
    if (f.type === FRAME.GOAWAY) assert.equal(goawayCode(f), H2_ERROR.COMPRESSION_ERROR);
    await servedMeanwhile(gw, '127.0.9.44');
    wire.close();
  });

  const stalls = [
    ['opens no window (SETTINGS_INITIAL_WINDOW_SIZE 0)', [[SETTING.INITIAL_WINDOW_SIZE, 0]], false],
    ['opens every window wide and never reads its socket', [[SETTING.INITIAL_WINDOW_SIZE, 0x7fffffff]], true],
  ] as const;
  for (const [index, [name, settings, paused]] of stalls.entries()) {
    it(`128 streams of 4 MiB responses to a client that ${name}: under 64 MiB held by the gateway, every upstream freed by send_timeout`, async (t) => {
      const from = `127.0.9.${50 + index}`;
      const wire = await openWire({ port: gw.httpsPort, from, secure: true, settings });
      await wire.waitFrame((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) !== 0);
      const widen = Buffer.alloc(4);
      widen.writeUInt32BE(0x7fffffff - 65_535);
      if (paused) await wire.send(frame(FRAME.WINDOW_UPDATE, 0, 0, widen));
      const { stalled, finished, flushed, aborted } = backend.stats;
      const baseline = process.memoryUsage().arrayBuffers;
      const ids = Array.from({ length: 128 }, (_, i) => 1 + 2 * i);
      await wire.send(Buffer.concat(ids.map((id) => headers(id, GET(`/big?size=${4 * 1024 * 1024}`)))));
      if (paused) wire.socket.pause();
      // Once send_timeout has fired, whatever the gateway would hold, it holds.
      const timeouts = await sendTimeouts(gw);
      await waitUntil('send_timeout', async () => (await sendTimeouts(gw)) > timeouts, 10_000);
      const held = process.memoryUsage().arrayBuffers - baseline;
      t.diagnostic(
        `${held} bytes of buffers held; the backend handed over ${backend.stats.flushed - flushed} bytes; ${backend.stats.finished - finished} responses whole; ${backend.stats.stalled - stalled} met backpressure`,
      );
      assert.ok(held < 64 * 1024 * 1024, `${held} bytes of buffers held for 128 stalled streams`);
      // The streams (or the connection) are closed and their upstreams freed.
      await backend.until('a stream freed by send_timeout', () => backend.stats.aborted > aborted, 5_000);
      await backend.until('every upstream freed', () => backend.stats.open === 0, 5_000);
      wire.close();
    });
  }
});

describe('slow HTTP/2: the deadlines hold whatever the client trickles', () => {
  let backend: Backend;
  let gw: TestGateway;

  before(async () => {
    backend = await startBackend();
    gw = await gatewayFor(backend, { clientHeaderTimeoutMs: 300, keepAliveTimeoutMs: 300 });
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  it('a header block never finished (HEADERS without END_HEADERS) on a new connection: closed by client-header-timeout', async () => {
    const hits = backend.stats.hits;
    const wire = await openWire({ port: gw.httpsPort, from: '127.0.9.60', secure: true });
    await wire.send(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, GET('/never')));
    await wire.waitClosed(5_000);
    assert.equal(backend.stats.hits, hits);
  });

  it('a header block never finished after a first stream: the connection is closed by keep-alive timeout (300 ms), not only sent a GOAWAY', async () => {
    const wire = await openWire({ port: gw.httpsPort, from: '127.0.9.61', secure: true });
    await wire.send(headers(1, GET('/once')));
    await wire.waitFrame(
      (f) => f.type === FRAME.DATA && f.streamId === 1 && (f.flags & FLAG.END_STREAM) !== 0,
    );
    await wire.send(frame(FRAME.HEADERS, FLAG.END_STREAM, 3, GET('/never')));
    const goaway = await wire.waitFrame(isGoaway, 5_000);
    assert.equal(goawayCode(goaway), H2_ERROR.NO_ERROR);
    // The GOAWAY names stream 3 as taken; a graceful close then waits for a header block that never ends.
    const lastStream = goaway.payload.readUInt32BE(0) & 0x7fffffff;
    await wire.waitClosed(5_000).catch((error: Error) => {
      throw new Error(`${error.message}; GOAWAY last-stream-id ${lastStream}`);
    });
  });

  it('PINGs (10 a second, within the PING budget) do not hold a connection without streams past client-header-timeout', async () => {
    const wire = await openWire({ port: gw.httpsPort, from: '127.0.9.62', secure: true });
    let pings = 0;
    // Pacing the PINGs is the attack; the wait is on the connection closing, at most 50 PINGs (5 s).
    const pinger = setInterval(() => {
      if (pings++ < 50) void wire.send(frame(FRAME.PING, 0, 0, Buffer.alloc(8, pings)));
    }, 100);
    try {
      await wire.waitClosed(6_000);
    } finally {
      clearInterval(pinger);
    }
    const goaway = wire.goaway();
    assert.ok(
      goaway !== undefined && goawayCode(goaway) === H2_ERROR.NO_ERROR,
      'an idle close, not an abuse one',
    );
  });

  it('h2c on the plain port: half a preface, or the preface alone, is closed by client-header-timeout', async () => {
    const half = await openWire({
      port: gw.httpPort,
      from: '127.0.9.63',
      secure: false,
      opening: PREFACE.subarray(0, 16),
    });
    await half.waitClosed(5_000);
    const bare = await openWire({ port: gw.httpPort, from: '127.0.9.64', secure: false, opening: PREFACE });
    await bare.waitClosed(5_000);
  });
});
