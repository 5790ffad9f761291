// gRPC proxying attacked from the backend: the HTTP/2 server behind a GRPC / GRPCS location is hostile
// or broken (test/security/grpc-hostile-backend.ts speaks its frames by hand). It answers with an HPACK
// bomb, CR LF or NUL in its fields, pseudo-headers in its trailers, no grpc-status, frames after
// END_STREAM, PUSH_PROMISE, SETTINGS that allow no stream, no flow-control window, endless DATA, a
// GOAWAY with a low last-stream-id, a PING flood, or it cuts the connection mid-answer. Whatever it does,
// the client of that call never sees a clean OK it did not earn, the gateway's memory and work stay
// bounded, no call is sent twice, and other calls (to another backend, or the next one to the same)
// are served. Reference: nginx's grpc module (grpc_read_timeout, grpc_send_timeout from ingress-nginx's
// proxy-read-timeout / proxy-send-timeout; a backend's protocol error resets the client's stream).
// (Client-side attacks are grpc-attack.test.ts and grpc-reset-fanout.test.ts.)
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway, testCertificate } from '../fixtures/gateway/harness.ts';
import { ingress, type K8sObject, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import {
  connectRawH2,
  FLAG,
  FRAME,
  frame,
  H2_ERROR,
  headerBlock,
  requestFields,
  rstPayload,
  SETTING,
} from '../helpers/h2-raw.ts';
import { openRaw } from '../helpers/net.ts';
import {
  dataFrame,
  GRPC_HEAD,
  grpcMessage,
  headersFrame,
  OK_MESSAGE,
  okAnswer,
  pourData,
  type RawBackend,
  type RawBackendOptions,
  startRawBackend,
} from './grpc-hostile-backend.ts';

const PATH = '/keepip.test.Echo/Unary';
const GRPC_FIELDS = [
  ['content-type', 'application/grpc'],
  ['te', 'trailers'],
] as const;

/** How long a call may stay open before the client gives up on it (every call here ends far sooner). */
const HANG_MS = 30_000;

interface Answer {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** The stream's error, or its RST_STREAM code when it closed without 'end'. */
  error: string | null;
  ended: boolean;
  /** Streams the gateway pushed (PUSH_PROMISE) to this client. */
  pushed: number;
}

/** One gRPC call over h2c (prior knowledge) on the gateway's plain port, on a connection of its own. */
function call(port: number, host: string, body: Buffer = grpcMessage(Buffer.from('hello'))): Promise<Answer> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    const out: Answer = {
      status: undefined,
      headers: {},
      trailers: {},
      body: Buffer.alloc(0),
      error: null,
      ended: false,
      pushed: 0,
    };
    session.on('stream', () => {
      out.pushed += 1;
    });
    const chunks: Buffer[] = [];
    const stream = session.request({
      ':method': 'POST',
      ':path': PATH,
      ':authority': host,
      ...Object.fromEntries(GRPC_FIELDS),
    });
    stream.on('response', (h) => {
      out.status = Number(h[':status']);
      out.headers = h;
    });
    stream.on('trailers', (t) => {
      out.trailers = t;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      out.ended = true;
    });
    stream.on('error', (e: Error) => {
      out.error = e.message;
    });
    // A bound for a stream the gateway leaves open (generous: a signal, never a window).
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }, HANG_MS);
    stream.on('close', () => {
      clearTimeout(timer);
      if (hung) {
        out.ended = false;
        out.error = `left open for ${HANG_MS} ms`;
      }
      out.body = Buffer.concat(chunks);
      if (!out.ended && out.error === null) out.error = `RST_STREAM ${stream.rstCode}`;
      session.destroy();
      resolve(out);
    });
    stream.end(body);
  });
}

/** The gRPC status a client reads: the trailers', else the head's (trailers-only); undefined if none. */
const grpcStatus = (a: Answer): string | undefined => {
  const value = a.trailers['grpc-status'] ?? a.headers['grpc-status'];
  return value === undefined ? undefined : String(value);
};

/** Whether a gRPC client would take this answer for a success: status 0 on a stream that ended cleanly. */
const cleanOk = (a: Answer) => a.ended && a.status === 200 && grpcStatus(a) === '0';

/** One HTTP/1.1 POST of a gRPC message (Connection: close): the raw bytes, and whether the chunked body ended. */
async function h1Call(port: number, host: string): Promise<{ text: string; complete: boolean }> {
  const conn = await openRaw({ host: '127.0.0.1', port });
  const body = grpcMessage(Buffer.from('hello'));
  conn.socket.write(
    `POST ${PATH} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/grpc\r\nTE: trailers\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
  );
  conn.socket.write(body);
  await conn.whenClosed();
  const text = conn.received().toString('latin1');
  return { text, complete: /\r\n0\r\n(.*\r\n)*\r\n$/.test(text) || /Content-Length: \d+\r\n/i.test(text) };
}

/** A well-behaved gRPC backend (node:http2): every call answered with one message and grpc-status 0. */
async function startGoodBackend(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.resume();
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(OK_MESSAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The well-behaved backend is served meanwhile (another backend, another session). */
async function bystanderServed(port: number): Promise<void> {
  const a = await call(port, 'good.grpc');
  assert.ok(cleanOk(a), `the bystander call: ${JSON.stringify({ ...a, body: a.body.length })}`);
}

/** Answers the first `hostile` streams of the backend with `attack`, every later one as a good server. */
function firstStreams(hostile: number, attack: RawBackendOptions['onStream']): RawBackendOptions['onStream'] {
  let seen = 0;
  return (conn, stream) => {
    seen += 1;
    if (seen <= hostile) attack(conn, stream);
    else conn.write(okAnswer(stream.id));
  };
}

/** UNAVAILABLE in the trailers (or a trailers-only head), or a reset stream. */
const a14 = (a: Answer) => grpcStatus(a) === '14' || (a.error !== null && !a.error.startsWith('left open'));

const show = (a: Answer) => JSON.stringify({ ...a, body: a.body.length });

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let rest = value - max;
  for (; rest >= 128; rest = Math.floor(rest / 128)) out.push((rest % 128) + 128);
  out.push(rest);
  return out;
}

const hpackStr = (text: string) =>
  Buffer.concat([Buffer.from(hpackInt(text.length, 7, 0)), Buffer.from(text, 'latin1')]);

/**
 * A response head of ~16 KB on the wire (one HEADERS frame) that decodes to ~48 MB: `x-b: <4,000
 * bytes>` inserted into the dynamic table (its entry just fits the 4,096 octets), then referenced
 * 12,000 times by its index (62), one byte each.
 */
function bombHead(id: number): Buffer {
  const block = Buffer.concat([
    headerBlock(GRPC_HEAD),
    Buffer.from([0x40]),
    hpackStr('x-b'),
    hpackStr('v'.repeat(4_000)),
    Buffer.alloc(12_000, 0x80 | 62),
  ]);
  return frame(FRAME.HEADERS, FLAG.END_HEADERS, id, block);
}

/** The behaviours of the hostile backends, one backend (and host NAME.grpc) each. */
const BEHAVIOURS: Record<string, RawBackendOptions> = {
  bomb: {
    onStream: firstStreams(1, (conn, s) =>
      conn.write(
        Buffer.concat([
          bombHead(s.id),
          dataFrame(s.id, OK_MESSAGE),
          headersFrame(s.id, [['grpc-status', '0']], true),
        ]),
      ),
    ),
  },
  crlf: {
    onStream: (conn, s) =>
      conn.write(
        Buffer.concat([
          headersFrame(s.id, [...GRPC_HEAD, ['x-head', 'a\r\nx-injected-head: 1'], ['x-nul-head', 'a\0b']]),
          dataFrame(s.id, OK_MESSAGE),
          headersFrame(
            s.id,
            [
              ['grpc-status', '0'],
              ['grpc-message', 'ok\r\nx-injected: 1'],
              ['x-nul', 'a\0b'],
              ['x-lf', 'a\nb'],
            ],
            true,
          ),
        ]),
      ),
  },
  pseudo: {
    onStream: (conn, s) =>
      conn.write(
        Buffer.concat([
          headersFrame(s.id, GRPC_HEAD),
          dataFrame(s.id, OK_MESSAGE),
          headersFrame(
            s.id,
            [
              [':status', '200'],
              ['grpc-status', '0'],
            ],
            true,
          ),
        ]),
      ),
  },
};

/** Answers without grpc-status, one way per call in turn. */
const NO_STATUS_VARIANTS = [
  'DATA with END_STREAM, no trailers',
  'trailers without grpc-status',
  ':status 503 text/html, no grpc-status',
  'a trailers-only HEADERS (END_STREAM) without grpc-status',
] as const;

function noStatusAnswer(variant: number, id: number): Buffer {
  switch (variant) {
    case 0:
      return Buffer.concat([headersFrame(id, GRPC_HEAD), dataFrame(id, OK_MESSAGE, true)]);
    case 1:
      return Buffer.concat([
        headersFrame(id, GRPC_HEAD),
        dataFrame(id, OK_MESSAGE),
        headersFrame(id, [['x-other', '1']], true),
      ]);
    case 2:
      return Buffer.concat([
        headersFrame(id, [
          [':status', '503'],
          ['content-type', 'text/html'],
        ]),
        dataFrame(id, Buffer.from('<html>busy</html>'), true),
      ]);
    default:
      return headersFrame(id, GRPC_HEAD, true);
  }
}

let noStatusCalls = 0;
BEHAVIOURS.nostatus = {
  onStream: (conn, s) => conn.write(noStatusAnswer(noStatusCalls++ % NO_STATUS_VARIANTS.length, s.id)),
};

BEHAVIOURS.after = {
  onStream: firstStreams(1, (conn, s) =>
    conn.write(
      Buffer.concat([
        okAnswer(s.id),
        dataFrame(s.id, Buffer.from('late')),
        headersFrame(s.id, [['x-late', '1']], true),
      ]),
    ),
  ),
};

function pushPromise(id: number, promised: number): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(promised);
  const block = headerBlock(requestFields('push.grpc', '/pushed'));
  return frame(FRAME.PUSH_PROMISE, FLAG.END_HEADERS, id, Buffer.concat([head, block]));
}

BEHAVIOURS.push = {
  onStream: firstStreams(1, (conn, s) =>
    conn.write(Buffer.concat([pushPromise(s.id, 2), headersFrame(2, GRPC_HEAD), okAnswer(s.id)])),
  ),
};

/** Allows no stream, and refuses every one (REFUSED_STREAM: not processed), as nghttp2 does past the limit. */
BEHAVIOURS.zero = {
  settings: [[SETTING.MAX_CONCURRENT_STREAMS, 0]],
  onStream: (conn, s) => conn.write(frame(FRAME.RST_STREAM, 0, s.id, rstPayload(H2_ERROR.REFUSED_STREAM))),
};

BEHAVIOURS.nowindow = {
  settings: [[SETTING.INITIAL_WINDOW_SIZE, 0]],
  onStream: () => {},
};

const ENDLESS = 64 * 1024 * 1024;
const endlessSent: number[] = [];
BEHAVIOURS.endless = {
  onStream: (conn, s) => {
    conn.write(headersFrame(s.id, GRPC_HEAD));
    void pourData(conn, s, ENDLESS).then((n) => endlessSent.push(n));
  },
};

function goawayFrame(lastStreamId: number, code = 0): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(lastStreamId, 0);
  payload.writeUInt32BE(code, 4);
  return frame(FRAME.GOAWAY, 0, 0, payload);
}

/** The first connection: three calls held until their bodies are in, then GOAWAY naming only the first. */
BEHAVIOURS.goaway = {
  onStream: (conn, s) => {
    if (conn !== goawayBackend()?.conns[0])
      return void conn.until('body', () => s.ended).then(() => conn.write(okAnswer(s.id)));
    if (conn.streams.size !== 3) return;
    const [first] = conn.streams.values();
    void conn
      .until('three bodies', () => [...conn.streams.values()].every((x) => x.ended))
      .then(() => {
        if (first !== undefined) conn.write(Buffer.concat([goawayFrame(first.id), okAnswer(first.id)]));
      });
  },
};

const PINGS = 500_000;
let pingsSent = 0;
/** A PING flood (500,000 frames) from a backend that stops reading its socket: the ACKs pile up. */
BEHAVIOURS.ping = {
  pong: false,
  onStream: firstStreams(1, (conn) => {
    conn.socket.pause();
    const batch = Buffer.concat(
      Array.from({ length: 1_000 }, (_, i) => frame(FRAME.PING, 0, 0, Buffer.alloc(8, i))),
    );
    void (async () => {
      for (let i = 0; i < PINGS / 1_000 && !conn.closed; i++) {
        await conn.send(batch);
        pingsSent += 1_000;
      }
    })();
  }),
};

/** What the cutting backends do with the next call: reset the connection once the call is read, close it mid-message, or answer. */
let cutMode: 'reset-before' | 'close-before' | 'close-mid' | 'answer' = 'answer';
const cutBehaviour: RawBackendOptions['onStream'] = (conn, s) => {
  const mode = cutMode;
  if (mode === 'answer') return void conn.write(okAnswer(s.id));
  void conn
    .until('body', () => s.ended)
    .then(async () => {
      if (mode === 'reset-before') return void conn.socket.resetAndDestroy();
      if (mode === 'close-before') return void conn.socket.end();
      await conn.send(
        Buffer.concat([headersFrame(s.id, GRPC_HEAD), dataFrame(s.id, OK_MESSAGE.subarray(0, 6))]),
      );
      conn.socket.end();
    });
};
BEHAVIOURS.cut = { onStream: cutBehaviour };
BEHAVIOURS.cut2 = { onStream: cutBehaviour };

/** GRPCS: closes the TLS connection mid-message, every call. */
BEHAVIOURS.cuts = {
  onStream: (conn, s) => {
    void conn
      .send(Buffer.concat([headersFrame(s.id, GRPC_HEAD), dataFrame(s.id, OK_MESSAGE.subarray(0, 6))]))
      .then(() => conn.socket.end());
  },
};

const backends = new Map<string, RawBackend>();
const goawayBackend = () => backends.get('goaway');

/** Annotations of each hostile location (GRPC, proxy-read-timeout 3 s unless said). */
const ANNOTATIONS: Record<string, Record<string, string>> = {
  nowindow: { 'proxy-send-timeout': '1' },
  cuts: { 'backend-protocol': 'GRPCS' },
  noalpn: { 'backend-protocol': 'GRPCS' },
};

function hostileLocation(name: string, ports: number[]): K8sObject[] {
  return [
    ...serviceWithEndpoints({ name, ports, servicePort: 50051 }),
    ingress({
      name,
      host: `${name}.grpc`,
      paths: [{ path: '/', service: name, port: 50051 }],
      annotations: { 'backend-protocol': 'GRPC', 'proxy-read-timeout': '3', ...ANNOTATIONS[name] },
    }),
  ];
}

/** A TLS backend that selects no ALPN protocol and answers HTTP/1.1 (a GRPCS location pointed at a web server). */
async function startNoAlpnBackend(): Promise<{
  port: number;
  accepted: () => number;
  close(): Promise<void>;
}> {
  const pair = await testCertificate();
  let accepted = 0;
  const server = tls.createServer({ key: pair.key, cert: pair.cert }, (socket) => {
    accepted += 1;
    socket.on('error', () => {});
    socket.once('data', () =>
      socket.end(
        'HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 0\r\ncontent-length: 0\r\n\r\n',
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('gRPC: a hostile or broken HTTP/2 backend', () => {
  let gw: TestGateway;
  let good: Awaited<ReturnType<typeof startGoodBackend>>;
  let noalpn: Awaited<ReturnType<typeof startNoAlpnBackend>>;
  const port = () => gw.httpPort;
  const backend = (name: string): RawBackend => {
    const found = backends.get(name);
    assert.ok(found !== undefined, name);
    return found;
  };

  before(async () => {
    const pair = await testCertificate();
    for (const [name, options] of Object.entries(BEHAVIOURS))
      backends.set(name, await startRawBackend(name === 'cuts' ? { ...options, tls: pair } : options));
    good = await startGoodBackend();
    noalpn = await startNoAlpnBackend();
    const objects: K8sObject[] = [
      ...serviceWithEndpoints({ name: 'good', ports: [good.port], servicePort: 50051 }),
      ingress({
        name: 'good',
        host: 'good.grpc',
        paths: [{ path: '/', service: 'good', port: 50051 }],
        annotations: { 'backend-protocol': 'GRPC' },
      }),
      ...hostileLocation('noalpn', [noalpn.port]),
    ];
    for (const [name, b] of backends) {
      if (name === 'cut2') continue;
      objects.push(...hostileLocation(name, name === 'cut' ? [b.port, backend('cut2').port] : [b.port]));
    }
    gw = await startTestGateway(topologyOf(objects), { sendTimeoutMs: 1_000 });
  });

  after(async () => {
    await gw.close();
    for (const b of backends.values()) await b.close();
    await good.close();
    await noalpn.close();
  });

  test('an HPACK bomb in the response head (16 KB decoding to 48 MB): the call refused, never relayed; the next call on that backend and others served', async (t) => {
    const before = process.memoryUsage();
    const a = await call(port(), 'bomb.grpc');
    const after = process.memoryUsage();
    t.diagnostic(`${show(a)}; rss +${after.rss - before.rss}`);
    assert.ok(!cleanOk(a), show(a));
    assert.equal(a.headers['x-b'], undefined);
    const bomb = backend('bomb');
    await bomb.until(
      'the bombed stream reset or its session closed',
      () => bomb.streams()[0]?.reset !== null || bomb.conns[0]?.closed === true,
    );
    assert.ok(after.rss - before.rss < 32 * 1024 * 1024, `rss grew ${after.rss - before.rss}`);
    await bystanderServed(port());
    const next = await call(port(), 'bomb.grpc');
    assert.ok(cleanOk(next), `the next call: ${show(next)}`);
  });
  test('CR, LF and NUL in the backend head and trailers never reach a client as fields (HTTP/2 and HTTP/1.1)', async (t) => {
    const a = await call(port(), 'crlf.grpc');
    t.diagnostic(show(a));
    for (const fields of [a.headers, a.trailers]) {
      assert.equal(fields['x-injected'], undefined);
      assert.equal(fields['x-injected-head'], undefined);
      for (const [name, value] of Object.entries(fields))
        assert.doesNotMatch(String(value), /[\r\n\0]/, `${name}: ${JSON.stringify(value)}`);
    }
    const h1 = await h1Call(port(), 'crlf.grpc');
    t.diagnostic(JSON.stringify(h1.text.slice(0, 400)));
    assert.doesNotMatch(h1.text, /\r\nx-injected/i);
    assert.doesNotMatch(h1.text.split('\r\n\r\n')[0] ?? '', /\0/);
    await bystanderServed(port());
  });

  test('pseudo-headers in the trailers (a protocol error): the client never gets a clean OK; HTTP/1.1 never a complete body', async (t) => {
    const a = await call(port(), 'pseudo.grpc');
    t.diagnostic(show(a));
    assert.ok(!cleanOk(a), show(a));
    assert.ok(a.error !== null || (grpcStatus(a) !== undefined && grpcStatus(a) !== '0'), show(a));
    const h1 = await h1Call(port(), 'pseudo.grpc');
    t.diagnostic(JSON.stringify(h1.text.slice(0, 400)));
    assert.equal(h1.complete, false, h1.text);
    await bystanderServed(port());
  });

  for (const [i, variant] of NO_STATUS_VARIANTS.entries())
    test(`an answer without grpc-status (${variant}): the client's call ends (END_STREAM or a reset), and never with a made-up grpc-status 0`, async (t) => {
      while (noStatusCalls % NO_STATUS_VARIANTS.length !== i) await call(port(), 'nostatus.grpc');
      const a = await call(port(), 'nostatus.grpc');
      t.diagnostic(show(a));
      assert.notEqual(grpcStatus(a), '0', show(a));
      assert.doesNotMatch(a.error ?? '', /left open/, `the call never ended: ${show(a)}`);
    });

  test('DATA and HEADERS after the trailers (END_STREAM): the next call on that backend, and other backends, are served', async (t) => {
    const a = await call(port(), 'after.grpc');
    t.diagnostic(show(a));
    const next = await call(port(), 'after.grpc');
    assert.ok(cleanOk(next), `the next call: ${show(next)}`);
    t.diagnostic(`backend connections: ${backend('after').conns.length}`);
    await bystanderServed(port());
  });

  test('PUSH_PROMISE (push is off): the session refused with GOAWAY, the call never a clean OK, nothing pushed to the client; the next call served', async (t) => {
    const a = await call(port(), 'push.grpc');
    t.diagnostic(show(a));
    assert.ok(!cleanOk(a), show(a));
    assert.equal(a.pushed, 0);
    const push = backend('push');
    const first = push.conns[0];
    assert.ok(first !== undefined);
    await first.until(
      'GOAWAY or close',
      () => first.closed || first.frames.some((f) => f.type === FRAME.GOAWAY),
    );
    const next = await call(port(), 'push.grpc');
    assert.ok(cleanOk(next), `the next call: ${show(next)}`);
    await bystanderServed(port());
  });

  test('SETTINGS_MAX_CONCURRENT_STREAMS 0 (every stream refused): ten calls in a row end with an error, and the gateway keeps none of those connections open (not one held per call)', async (t) => {
    const zero = backend('zero');
    const answers: Answer[] = [];
    for (let i = 0; i < 10; i++) answers.push(await call(port(), 'zero.grpc'));
    t.diagnostic(
      `${zero.conns.length} connections, ${zero.conns.filter((c) => !c.closed).length} still open; statuses ${answers.map((a) => grpcStatus(a) ?? a.error).join(',')}`,
    );
    for (const a of answers) assert.ok(!cleanOk(a) && a14(a), show(a));
    // A session that takes no stream is closed once its call ends, not kept for the idle timeout.
    await zero.until('every refused session closed', () => zero.conns.every((c) => c.closed));
    await bystanderServed(port());
  });

  test('a backend that never opens its flow-control window (INITIAL_WINDOW_SIZE 0): DEADLINE_EXCEEDED after proxy-send-timeout, its stream reset', async (t) => {
    const nowindow = backend('nowindow');
    const a = await call(port(), 'nowindow.grpc', grpcMessage(Buffer.alloc(256 * 1024, 0x62)));
    t.diagnostic(show(a));
    assert.equal(grpcStatus(a), '4', show(a));
    const stream = nowindow.streams()[0];
    assert.ok(stream !== undefined);
    await nowindow.until(
      'the stalled stream reset',
      () => stream.reset !== null || nowindow.conns[0]?.closed === true,
    );
    // Sent before the backend's SETTINGS came: at most the default window, then nothing.
    assert.ok(stream.data.reduce((n, d) => n + d.length, 0) <= 65_535);
    await bystanderServed(port());
  });

  test('endless DATA to a client that never reads: the backend can pour at most 1 MiB before the gateway holds it back, and its stream is reset after send_timeout', async (t) => {
    const endless = backend('endless');
    const wire = await connectRawH2({ port: port(), plain: true, from: '127.0.0.81' });
    const block = headerBlock(requestFields('endless.grpc', PATH, 'POST', GRPC_FIELDS));
    await wire.send(
      Buffer.concat([
        frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, block),
        dataFrame(1, grpcMessage(Buffer.from('x')), true),
      ]),
    );
    await endless.until('the backend stream', () => endless.streams().length > 0);
    const stream = endless.streams()[0];
    assert.ok(stream !== undefined);
    await endless.until(
      'the endless stream reset (send_timeout)',
      () => stream.reset !== null || endlessSent.length > 0,
      30_000,
    );
    const conn = endless.conns[0];
    t.diagnostic(`backend poured ${conn?.dataSent} bytes; reset ${stream.reset}; finished ${endlessSent}`);
    assert.equal(
      endlessSent.length === 0 || (endlessSent[0] ?? 0) < ENDLESS,
      true,
      'the backend poured all 64 MiB',
    );
    assert.ok((conn?.dataSent ?? 0) <= 1024 * 1024, `the backend poured ${conn?.dataSent} bytes`);
    wire.close();
    await bystanderServed(port());
  });

  test('GOAWAY naming only the first of three calls in flight: that call answered and sent once; the two refused end at once (UNAVAILABLE, or answered on a new connection), never hang', async (t) => {
    const goaway = backend('goaway');
    const bodies = ['call-one', 'call-two', 'call-three'];
    const pending = bodies.map((b) => call(port(), 'goaway.grpc', grpcMessage(Buffer.from(b))));
    const answers = await Promise.all(pending);
    for (const a of answers) t.diagnostic(show(a));
    const first = goaway.conns[0];
    assert.ok(first !== undefined);
    const [processed] = first.streams.values();
    const processedBody = Buffer.concat(processed?.data ?? []).toString('latin1');
    const seen = (text: string) =>
      goaway.streams().filter((s) => Buffer.concat(s.data).toString('latin1').includes(text)).length;
    const name = bodies.find((b) => processedBody.includes(b));
    assert.ok(name !== undefined, processedBody);
    assert.equal(seen(name), 1, `${name} reached the backend ${seen(name)} times`);
    for (const [i, a] of answers.entries()) {
      if (bodies[i] === name) assert.ok(cleanOk(a), show(a));
      else assert.ok(cleanOk(a) || a14(a), `${bodies[i]}: ${show(a)}`);
    }
    t.diagnostic(`connections ${goaway.conns.length}; seen ${bodies.map(seen)}`);
    await bystanderServed(port());
  });

  test('a PING flood (500,000) from a backend that stops reading: the gateway does not queue an ACK for each; the call ends, others served', async (t) => {
    const ping = backend('ping');
    const a = await call(port(), 'ping.grpc');
    t.diagnostic(`${show(a)}; pings sent ${pingsSent}`);
    const conn = ping.conns[0];
    assert.ok(conn !== undefined);
    conn.socket.resume();
    await conn.until('the flooded session closed', () => conn.closed, 15_000);
    const acks = conn.frames.filter((f) => f.type === FRAME.PING && (f.flags & FLAG.ACK) !== 0).length;
    t.diagnostic(
      `acks ${acks}, goaway ${conn.frames.find((f) => f.type === FRAME.GOAWAY)?.payload.readUInt32BE(4)}`,
    );
    assert.ok(!cleanOk(a) && a14(a), show(a));
    // The gateway dropped the session (nghttp2's flood guard) before it had taken the whole flood.
    assert.ok(pingsSent < PINGS, `the backend sent all ${pingsSent} PINGs`);
    assert.ok(acks < PINGS, `${acks} PING ACKs`);
    await bystanderServed(port());
  });

  for (const [mode, how] of [
    ['reset-before', 'resets (RST)'],
    ['close-before', 'closes (FIN)'],
  ] as const)
    test(`a backend that ${how} the connection after reading the call, before any answer: UNAVAILABLE (HTTP/2; HTTP/1.1: 502 or a grpc-status), never a bare 200; the call not sent again`, async (t) => {
      cutMode = mode;
      const body = `call-${mode}`;
      const a = await call(port(), 'cut.grpc', grpcMessage(Buffer.from(body)));
      t.diagnostic(show(a));
      const h1 = await h1Call(port(), 'cut.grpc');
      t.diagnostic(JSON.stringify(h1.text.slice(0, 300)));
      cutMode = 'answer';
      t.diagnostic(
        gw.access.lines
          .filter((l) => l.includes('cut.grpc') || l.includes('cut-'))
          .slice(-2)
          .join('\n'),
      );
      const streams = [...backend('cut').streams(), ...backend('cut2').streams()];
      const times = streams.filter((s) => Buffer.concat(s.data).toString('latin1').includes(body)).length;
      assert.equal(
        times,
        1,
        `the call reached the backends ${times} times (a POST retried after it was sent)`,
      );
      assert.equal(grpcStatus(a), '14', show(a));
      assert.match(h1.text, /^HTTP\/1\.1 502 |\r\ngrpc-status: (?!0\r)\d+\r\n/, h1.text);
      await bystanderServed(port());
    });

  test('a backend that closes the connection mid-message: the HTTP/2 client gets UNAVAILABLE or a reset, promptly; the HTTP/1.1 client never a complete body', async (t) => {
    cutMode = 'close-mid';
    const a = await call(port(), 'cut.grpc', grpcMessage(Buffer.from('cut-mid')));
    t.diagnostic(show(a));
    const h1 = await h1Call(port(), 'cut.grpc');
    t.diagnostic(JSON.stringify(h1.text.slice(0, 300)));
    cutMode = 'answer';
    assert.ok(!cleanOk(a) && a14(a), show(a));
    assert.equal(h1.complete, false, h1.text);
    await bystanderServed(port());
  });

  test('GRPCS: a backend that closes the TLS connection mid-message: UNAVAILABLE or a reset, never a clean end', async (t) => {
    const a = await call(port(), 'cuts.grpc');
    t.diagnostic(show(a));
    assert.ok(!cleanOk(a), show(a));
    assert.ok(a14(a), show(a));
    await bystanderServed(port());
  });

  test('GRPCS: a TLS backend that selects no ALPN protocol and answers HTTP/1.1: UNAVAILABLE, its HTTP/1.1 grpc-status never taken', async (t) => {
    const a = await call(port(), 'noalpn.grpc');
    t.diagnostic(`${show(a)}; accepted ${noalpn.accepted()}`);
    assert.equal(grpcStatus(a), '14', show(a));
    await bystanderServed(port());
  });
});
