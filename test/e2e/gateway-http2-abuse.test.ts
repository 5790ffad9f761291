// HTTP/2 abuse against the gateway, with frames written by hand (test/helpers/h2-raw.ts): each flood
// must cost the attacker its own connection (GOAWAY ENHANCE_YOUR_CALM or a close), reach the backend
// little or not at all, and leave other clients served while it runs. Plus the limits a client meets
// when it merely overstays: SETTINGS_MAX_CONCURRENT_STREAMS, the idle and header deadlines, and the
// per-stream send and body deadlines.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { connectH2, h2Request } from '../helpers/h2-client.ts';
import {
  connectRawH2,
  FLAG,
  FRAME,
  frame,
  goawayCode,
  H2_ERROR,
  headerBlock,
  type RawH2,
  requestFields,
  rstCode,
  rstPayload,
  SETTING,
  settingsPayload,
} from '../helpers/h2-raw.ts';

const HOST = 'web.example.com';
const UPLOAD_HOST = 'upload.example.com';

/** A backend that counts what reaches it and answers `size` bytes. */
async function countingBackend(): Promise<{ server: Server; port: number; hits: () => number }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits += 1;
    const size = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('size') ?? '2');
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': size });
      res.end(Buffer.alloc(size, 0x6b));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, hits: () => hits };
}

function metricValue(text: string, reason: string): number {
  const m = new RegExp(`keepip_gateway_http2_connections_closed_total\\{reason="${reason}"\\} (\\d+)`).exec(
    text,
  );
  return m === null ? 0 : Number(m[1]);
}

/** Sends `unit` up to `max` times (respecting backpressure) until the server sends GOAWAY or closes. */
async function flood(raw: RawH2, unit: (i: number) => Buffer, max: number): Promise<number> {
  let sent = 0;
  while (sent < max && !raw.closed && raw.goaway() === undefined) {
    await raw.send(unit(sent));
    sent += 1;
  }
  return sent;
}

/** A legitimate client served while (and after) an attacker floods. */
async function servedMeanwhile(gw: TestGateway, from: string): Promise<void> {
  const reply = await h2Request({ port: gw.httpsPort, from, host: HOST, path: '/ok' });
  assert.equal(reply.status, 200);
}

describe('gateway HTTP/2 abuse', () => {
  let backend: Awaited<ReturnType<typeof countingBackend>>;
  let gw: TestGateway;

  before(async () => {
    backend = await countingBackend();
    gw = await startTestGateway(
      topologyOf([
        // The abuse lines are nginx's info level: shown only from error-log-level info.
        controllerConfigMap({ 'error-log-level': 'info' }),
        ...serviceWithEndpoints({ name: 'web', ports: [backend.port] }),
        ingress({ name: 'web', host: HOST, paths: [{ path: '/', service: 'web', port: 80 }] }),
        ingress({
          name: 'upload',
          host: UPLOAD_HOST,
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations: { 'proxy-body-size': '0' },
        }),
      ]),
      { sendTimeoutMs: 300, clientBodyTimeoutMs: 300, lingeringTimeoutMs: 300 },
    );
  });

  after(async () => {
    await gw.close();
    backend.server.closeAllConnections();
    await new Promise((resolve) => backend.server.close(resolve));
  });

  test('rapid reset (CVE-2023-44487): GOAWAY ENHANCE_YOUR_CALM, the backend barely touched, others served', async (t) => {
    const before = backend.hits();
    const raw = await connectRawH2({ port: gw.httpsPort, from: '127.0.0.41' });
    const block = headerBlock(requestFields(HOST, '/reset'));
    const attack = flood(
      raw,
      (i) =>
        Buffer.concat([
          frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1 + 2 * i, block),
          frame(FRAME.RST_STREAM, 0, 1 + 2 * i, rstPayload(H2_ERROR.CANCEL)),
        ]),
      20_000,
    );
    await Promise.all([attack, servedMeanwhile(gw, '127.0.0.42')]);
    const sent = await attack;
    const goaway = raw.goaway() ?? (await raw.waitFrame((f) => f.type === FRAME.GOAWAY));
    assert.equal(goawayCode(goaway), H2_ERROR.ENHANCE_YOUR_CALM);
    assert.ok(sent < 20_000, `GOAWAY before the flood ended (${sent} pairs sent)`);
    await raw.waitClosed();
    // Streams reset in the read that opened them never reach routing or a backend; later ones may.
    const reached = backend.hits() - before - 1;
    assert.ok(reached < 100, `${reached} reset streams reached the backend`);
    t.diagnostic(`${sent} HEADERS+RST_STREAM pairs sent before the GOAWAY; ${reached} reached the backend`);
    await gw.errors.waitFor(
      /streams before their response \(H2_RAPID_RESET: CVE-2023-44487\), closing HTTP\/2 connection, client: 127\.0\.0\.41/,
    );
    assert.equal(metricValue(await gw.gateway.metrics.registry.metrics(), 'rapid-reset'), 1);
    await servedMeanwhile(gw, '127.0.0.42');
  });

  test('a stream reset in the read that opened it reaches no backend and is logged 499, as nginx logs it', async () => {
    const before = backend.hits();
    const from = gw.access.lines.length;
    const pair = (id: number, path: string) => [
      frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headerBlock(requestFields(HOST, path))),
      frame(FRAME.RST_STREAM, 0, id, rstPayload(H2_ERROR.CANCEL)),
    ];
    const served = frame(
      FRAME.HEADERS,
      FLAG.END_HEADERS | FLAG.END_STREAM,
      5,
      headerBlock(requestFields(HOST, '/after')),
    );
    // One write: the two resets arrive in the read that opens their streams.
    const raw = await connectRawH2({
      port: gw.httpsPort,
      from: '127.0.0.47',
      firstFlight: Buffer.concat([...pair(1, '/reset-one'), ...pair(3, '/reset-two'), served]),
    });
    try {
      await raw.waitFrame((f) => f.type === FRAME.HEADERS && f.streamId === 5);
    } finally {
      raw.close();
    }
    assert.ok(await gw.access.untilCount(from + 3), 'three access lines');
    const lines = gw.access.lines.slice(from);
    for (const path of ['/reset-one', '/reset-two'])
      assert.ok(
        lines.some((l) => l.startsWith('127.0.0.47 ') && l.includes(`"GET ${path} HTTP/2.0" 499 `)),
        `${path} logged 499:\n${lines.join('\n')}`,
      );
    assert.equal(backend.hits() - before, 1, 'only /after reached the backend');
  });

  test('CONTINUATION flood (CVE-2024-27316 family): the connection is closed, others served', async () => {
    const raw = await connectRawH2({ port: gw.httpsPort, from: '127.0.0.43' });
    await raw.send(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, headerBlock(requestFields(HOST, '/c'))));
    const filler = headerBlock([['x-filler', 'f'.repeat(64)]]);
    const attack = flood(raw, () => frame(FRAME.CONTINUATION, 0, 1, filler), 200_000);
    await Promise.all([attack, servedMeanwhile(gw, '127.0.0.44')]);
    const sent = await attack;
    await raw.waitClosed();
    assert.ok(sent < 200_000, `closed before the flood ended (${sent} CONTINUATION frames)`);
    await gw.errors.waitFor(
      /HTTP\/2 protocol error \(H2_PROTOCOL_ERROR: [^)]+\), closing HTTP\/2 connection, client: 127\.0\.0\.43/,
    );
    await servedMeanwhile(gw, '127.0.0.44');
  });

  const controlFloods = [
    ['SETTINGS', () => frame(FRAME.SETTINGS, 0, 0, settingsPayload([[SETTING.INITIAL_WINDOW_SIZE, 65_535]]))],
    ['PING', (i: number) => frame(FRAME.PING, 0, 0, Buffer.alloc(8, i % 256))],
  ] as const;
  for (const [index, [name, unit]] of controlFloods.entries()) {
    test(`${name} flood at line rate: that connection is closed, others served`, async () => {
      const from = `127.0.0.${45 + index}`;
      const raw = await connectRawH2({ port: gw.httpsPort, from });
      const attack = flood(raw, unit, 100_000);
      await Promise.all([attack, servedMeanwhile(gw, '127.0.0.47')]);
      await raw.waitClosed();
      assert.ok((await attack) < 100_000, 'closed before the flood ended');
      await gw.errors.waitFor(
        new RegExp(
          `client sent too many PING/SETTINGS frames \\(H2_CONTROL_FLOOD\\), closing HTTP/2 connection, client: ${from.replaceAll('.', '\\.')}`,
        ),
      );
    });

    test(`${name} flood that reads every acknowledgement: GOAWAY ENHANCE_YOUR_CALM`, async () => {
      // Paced so that nghttp2's own guard (unacknowledged ACKs piling up) never fires: the gateway's
      // PING/SETTINGS budget is what stops it.
      const raw = await connectRawH2({ port: gw.httpsPort, from: `127.0.0.${55 + index}` });
      const acks = () => raw.frames.filter((f) => f.type === unit(0)[3] && (f.flags & FLAG.ACK) !== 0).length;
      const initialAcks = acks();
      let sent = 0;
      while (sent < 10_000 && !raw.closed && raw.goaway() === undefined) {
        await raw.send(Buffer.concat(Array.from({ length: 20 }, (_, i) => unit(sent + i))));
        sent += 20;
        const want = initialAcks + sent;
        await raw.waitFrame(() => acks() >= want || raw.goaway() !== undefined).catch(() => {});
      }
      const goaway = raw.goaway() ?? (await raw.waitFrame((f) => f.type === FRAME.GOAWAY));
      assert.equal(goawayCode(goaway), H2_ERROR.ENHANCE_YOUR_CALM);
      assert.ok(sent < 10_000, `stopped after ${sent} frames`);
      raw.close();
    });
  }

  test('WINDOW_UPDATE flood (frames node:http2 never reports): closed once the frames outweigh the requests, others served', async (t) => {
    const from = '127.0.0.58';
    const raw = await connectRawH2({ port: gw.httpsPort, from });
    // Each frame is legal alone (a connection-level window raised by 1); 1,000 per write.
    const increment = Buffer.alloc(4);
    increment.writeUInt32BE(1);
    const batch = Buffer.concat(
      Array.from({ length: 1_000 }, () => frame(FRAME.WINDOW_UPDATE, 0, 0, increment)),
    );
    const max = 8_000; // 104 MB at most
    const attack = flood(raw, () => batch, max);
    await Promise.all([attack, servedMeanwhile(gw, '127.0.0.59')]);
    const sent = await attack;
    const goaway = raw.goaway() ?? (await raw.waitFrame((f) => f.type === FRAME.GOAWAY));
    assert.equal(goawayCode(goaway), H2_ERROR.ENHANCE_YOUR_CALM);
    assert.ok(sent < max, `GOAWAY before the flood ended (${sent * batch.length} bytes sent)`);
    // nginx's rule: more than 8 bytes read per byte of requests, beyond 1 MiB of slack.
    assert.ok(sent * batch.length > 8 * 1024 * 1024, 'not before 8 MiB of frames');
    t.diagnostic(`${sent * batch.length} bytes of WINDOW_UPDATE frames sent before the GOAWAY`);
    await raw.waitClosed();
    await gw.errors.waitFor(
      /client sent \d+ bytes of HTTP\/2 frames for \d+ bytes of requests \(H2_FRAME_FLOOD\), closing HTTP\/2 connection, client: 127\.0\.0\.58/,
    );
    assert.equal(metricValue(await gw.gateway.metrics.registry.metrics(), 'frame-flood'), 1);
    await servedMeanwhile(gw, '127.0.0.59');
  });

  test('not a flood: a 12 MiB upload and 300 small requests on one connection', async () => {
    const conn = await connectH2({ port: gw.httpsPort, from: '127.0.0.60', host: UPLOAD_HOST });
    try {
      const upload = await conn.request('/upload', {
        method: 'POST',
        body: Buffer.alloc(12 * 1024 * 1024, 0x75),
      });
      assert.equal(upload.status, 200);
      for (let i = 0; i < 300; i++) assert.equal((await conn.request(`/small/${i}`)).status, 200);
      assert.equal(conn.session.closed, false);
    } finally {
      await conn.close();
    }
    assert.equal(metricValue(await gw.gateway.metrics.registry.metrics(), 'frame-flood'), 1);
  });

  test('SETTINGS_MAX_CONCURRENT_STREAMS 128: stream 129 is refused before our SETTINGS are acknowledged, a connection error after', async () => {
    // 129 POSTs whose bodies never come: each stays open.
    const block = headerBlock(requestFields(HOST, '/held', 'POST'));
    const streams = Buffer.concat(
      Array.from({ length: 129 }, (_, i) => frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, block)),
    );
    const early = await connectRawH2({ port: gw.httpsPort, from: '127.0.0.48', firstFlight: streams });
    const settings = await early.waitFrame((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0);
    const advertised = new Map<number, number>();
    for (let at = 0; at + 6 <= settings.payload.length; at += 6)
      advertised.set(settings.payload.readUInt16BE(at), settings.payload.readUInt32BE(at + 2));
    assert.equal(advertised.get(SETTING.MAX_CONCURRENT_STREAMS), 128);
    const refused = await early.waitFrame((f) => f.type === FRAME.RST_STREAM && f.streamId === 257);
    assert.equal(rstCode(refused), H2_ERROR.REFUSED_STREAM);
    // Stream 1 is still served: its body arrives and its answer follows.
    await early.send(frame(FRAME.DATA, FLAG.END_STREAM, 1, Buffer.from('x')));
    await early.waitFrame((f) => f.type === FRAME.HEADERS && f.streamId === 1);
    assert.equal(early.closed, false);
    early.close();
    // Once the client has acknowledged the limit, going over it is a protocol error (RFC 9113 §5.1.2).
    const late = await connectRawH2({ port: gw.httpsPort, from: '127.0.0.48' });
    await late.waitFrame((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) !== 0);
    await late.send(streams);
    const goaway = await late.waitFrame((f) => f.type === FRAME.GOAWAY);
    assert.equal(goawayCode(goaway), H2_ERROR.PROTOCOL_ERROR);
    await late.waitClosed();
    await servedMeanwhile(gw, '127.0.0.47');
  });

  test('send_timeout per stream: a client that never opens its window is reset, the backend freed', async () => {
    // SETTINGS_INITIAL_WINDOW_SIZE 0: the gateway may send headers but no body byte.
    const raw = await connectRawH2({
      port: gw.httpsPort,
      from: '127.0.0.49',
      settings: [[SETTING.INITIAL_WINDOW_SIZE, 0]],
    });
    await raw.send(
      frame(
        FRAME.HEADERS,
        FLAG.END_HEADERS | FLAG.END_STREAM,
        1,
        headerBlock(requestFields(HOST, '/big?size=1000000')),
      ),
    );
    const reset = await raw.waitFrame((f) => f.type === FRAME.RST_STREAM && f.streamId === 1);
    assert.notEqual(rstCode(reset), H2_ERROR.NO_ERROR);
    // The connection itself stays usable for streams the client reads.
    assert.equal(raw.closed, false);
    raw.close();
    await gw.access.waitFor(/^127\.0\.0\.49 .*"GET \/big\?size=1000000 HTTP\/2\.0" /);
  });

  test('send_timeout also holds a small answer, the last piece of a larger one and a page of the gateway', async () => {
    // node:http2 takes these without refusing a write (under its 16 KiB mark, or with END_STREAM), so
    // only the stream's end can start the clock: without it they waited for ever, holding the stream.
    const raw = await connectRawH2({
      port: gw.httpsPort,
      from: '127.0.0.46',
      settings: [[SETTING.INITIAL_WINDOW_SIZE, 0]],
    });
    const requests: [number, string, string][] = [
      [1, HOST, '/big?size=556'],
      [3, HOST, '/big?size=20000'],
      [5, 'unknown.example', '/'],
    ];
    await raw.send(
      Buffer.concat(
        requests.map(([id, host, path]) =>
          frame(
            FRAME.HEADERS,
            FLAG.END_HEADERS | FLAG.END_STREAM,
            id,
            headerBlock(requestFields(host, path)),
          ),
        ),
      ),
    );
    for (const [id] of requests) {
      const reset = await raw.waitFrame((f) => f.type === FRAME.RST_STREAM && f.streamId === id);
      assert.notEqual(rstCode(reset), H2_ERROR.NO_ERROR, `stream ${id}`);
    }
    assert.equal(raw.closed, false);
    raw.close();
  });

  test('client_body_timeout per stream: a body that stalls is answered 408', async () => {
    const raw = await connectRawH2({ port: gw.httpsPort, from: '127.0.0.50' });
    await raw.send(
      frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, headerBlock(requestFields(HOST, '/stall', 'POST'))),
    );
    await raw.send(frame(FRAME.DATA, 0, 1, Buffer.from('some')));
    await raw.waitFrame((f) => f.type === FRAME.HEADERS && f.streamId === 1);
    raw.close();
    await gw.access.waitFor(/^127\.0\.0\.50 .*"POST \/stall HTTP\/2\.0" 408 /);
  });
});

describe('gateway HTTP/2 connection deadlines', () => {
  let backend: Awaited<ReturnType<typeof countingBackend>>;
  let gw: TestGateway;

  before(async () => {
    backend = await countingBackend();
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'web', ports: [backend.port] }),
        ingress({ name: 'web', host: HOST, paths: [{ path: '/', service: 'web', port: 80 }] }),
      ]),
      { keepAliveTimeoutMs: 300, clientHeaderTimeoutMs: 300 },
    );
  });

  after(async () => {
    await gw.close();
    backend.server.closeAllConnections();
    await new Promise((resolve) => backend.server.close(resolve));
  });

  test('a connection that opens no stream gets GOAWAY after the header timeout', async () => {
    const raw = await connectRawH2({ port: gw.httpsPort, from: '127.0.0.51' });
    await raw.waitClosed();
    const goaway = raw.goaway();
    assert.ok(goaway !== undefined);
    assert.equal(goawayCode(goaway), H2_ERROR.NO_ERROR);
  });

  test('an idle connection gets GOAWAY NO_ERROR after the keep-alive timeout', async () => {
    const raw = await connectRawH2({
      port: gw.httpsPort,
      from: '127.0.0.52',
      firstFlight: frame(
        FRAME.HEADERS,
        FLAG.END_HEADERS | FLAG.END_STREAM,
        1,
        headerBlock(requestFields(HOST, '/once')),
      ),
    });
    await raw.waitFrame(
      (f) => f.type === FRAME.DATA && f.streamId === 1 && (f.flags & FLAG.END_STREAM) !== 0,
    );
    await raw.waitClosed();
    const goaway = raw.goaway();
    assert.ok(goaway !== undefined);
    assert.equal(goawayCode(goaway), H2_ERROR.NO_ERROR);
    // The last stream it took: stream 1.
    assert.equal(goaway.payload.readUInt32BE(0) & 0x7fffffff, 1);
  });
});
