// HTTP/2 over TLS (ALPN h2) and HTTP/2 flow control: keepip's HTTPS listener against nginx 1.22 with
// `listen … ssl http2`, both set up as ingress-nginx renders two TLS Ingresses (hosts a.flow.test and
// b.flow.test, each with its own certificate Secret; the default server `_` with the fake certificate;
// `/buf/` with proxy-request-buffering on, `/stream/` with it off; each location as nginx.tmpl writes
// it: test/helpers/nginx-body-location.ts) and one recording backend per host. The sibling files use h2c
// (h2-body-, h2-request-differential-nginx) or keepip alone (h2-flood-attack, e2e/gateway-http2-abuse);
// this one is about the TLS listener's ALPN and about flow control in both directions.
//
// The claims checked (docs/gateway.md):
//   Listeners, TLS: "ALPN offers `h2` then `http/1.1` (`use-http2`, default true): HTTP/2 clients get the
//    HTTP/2 server side (below, "HTTP/2"), the rest HTTP/1.1."
//   HTTP/2: "On the TLS listener a client that chooses `h2` in ALPN … is served by keepip's HTTP/2 server
//    side (`src/gateway/h2-server.ts` on node:http2, i.e. nghttp2 for framing, HPACK and flow control)";
//    "the route is chosen by `:authority`".
//   HTTP/2 limits, Deadlines: "per stream, `client-body-timeout` between two body reads (408) and the send
//    timeout (60 s) while the client's flow-control window holds the response back (the stream is reset;
//    the backend request is aborted, so it is freed)."
//   Client deadlines: "response bytes the client does not take | send timeout (60 s) … | reset …; the
//    upstream request is aborted and its connection closed, the backend is free"; "A response is buffered
//    up to a bounded size per connection".
//   Client certificates: "421 when the Host is not the SNI name … and the Host's host verifies client
//    certificates" (so a host without auth-tls is routed by :authority whatever the SNI, as nginx).
//   Request body buffering: "`Expect: 100-continue` is answered when the gateway starts reading the body,
//    before any backend is involved, as nginx does."
//   README: "`$request_length` and `$body_bytes_sent` count the bytes on the wire".
//   RFC 9113 §3.4 (an invalid preface is a connection error PROTOCOL_ERROR), §6.9 (a zero WINDOW_UPDATE
//    increment is a PROTOCOL_ERROR), §6.9.1 (a window above 2^31-1, or DATA beyond the window, is a
//    FLOW_CONTROL_ERROR; a sender never sends beyond the window the peer advertised), §6.9.2 (a SETTINGS
//    change of INITIAL_WINDOW_SIZE moves every stream window, possibly below zero); RFC 7301 §3.2 (no
//    protocol in common: fatal no_application_protocol alert).
//
// Cases (every client writes raw frames, test/helpers/h2-raw.ts, over its own tls.connect with the ALPN
// list of the case): ALPN offers; the HTTP/2 preface where the client did not choose h2 and HTTP/1.1
// where it did; an SNI other than :authority; a request body larger than the initial stream window sent
// as the server's WINDOW_UPDATEs allow, buffering on and off; Expect: 100-continue; a client whose
// window holds a 64 MiB answer back (SETTINGS_INITIAL_WINDOW_SIZE 0, a 100-byte window, 0 then raised
// by SETTINGS, a window driven below zero by SETTINGS); WINDOW_UPDATE with increment 0 or one that
// overflows 2^31-1, on a stream and on the connection; DATA beyond the server's window (one frame larger
// than the window, and frames sent without waiting for WINDOW_UPDATE).
//
// Compared per case, nginx against keepip: what the client got (statuses, DATA bytes, END_STREAM,
// RST_STREAM and GOAWAY codes, whether the connection still serves a stream), what the backend got
// (nothing, the head, a body cut or whole and intact), and the access log line ($status
// $upstream_status $body_bytes_sent, keepip's through log-format-upstream). Each wait is on a signal:
// a stream's end, the server's SETTINGS, the backend having a head, a later stream answered, a fence
// request's log line (every stream ended before it is logged by then); the send timeout is 1 s on
// both sides, and the wait for it is the server's RST_STREAM, never a timer. A difference passes only
// when ALLOWED names it (each with its reason); every ALLOWED row is checked to be still what is seen.
// Beside the comparison, each side is held to the safe behaviour: h2 only when the client offered it,
// never more DATA than the client's window, a stalled stream ended and its backend freed, no body
// presented to a backend as whole unless it was, no refused request logged 200.
// H2TLS_SHOW=1 prints both outcomes of every case.
//
// Documented, not fixed (the test "a stream reset by send_timeout"): keepip logs $body_bytes_sent of an
// HTTP/2 stream as the bytes it handed to node:http2, not the bytes that left: a stream whose client
// opened no window and was reset by send_timeout after 0 DATA bytes is logged `200 200 130902` (nginx:
// `200 200 0`). node:http2 queues the DATA while the client's window is shut and exposes no per-stream
// count of what it wrote; the reset drops the queue.
//
// Seen and allowed (ALLOWED, with reasons): ALPN `http/1.0` alone is refused (nginx accepts it); the
// reset codes (INTERNAL_ERROR where nginx says PROTOCOL_ERROR, for a bad preface and at send_timeout);
// a stream-window overflow ends keepip's connection where nginx resets the stream; keepip's 16,384-byte
// SETTINGS_MAX_FRAME_SIZE and its window credited only as the pipeline reads (nginx opens a buffered
// request's window to 2^31-1 at once). Agreeing with nginx but not with the docs' words: over HTTP/2
// neither sends `100 Continue` (the Expect line of "Request body buffering" holds for HTTP/1.1); both
// strip Expect before the backend. nginx itself keeps a stream blocked at window 0 when SETTINGS raises
// INITIAL_WINDOW_SIZE (RFC 9113 §6.9.2 says it may send); keepip sends, as the RFC says.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from '../../src/node-http.ts';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { startTestGateway, type TestGateway, testCertificate } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import {
  FLAG,
  FRAME,
  type Frame,
  frame,
  goawayCode,
  H2_ERROR,
  headerBlock,
  nextFrame,
  PREFACE,
  responseStatus,
  rstCode,
  SETTING,
  settingsPayload,
} from '../helpers/h2-raw.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { nginxBodyLocation } from '../helpers/nginx-body-location.ts';
import { makePki } from '../helpers/pki.ts';

const A = 'a.flow.test';
const B = 'b.flow.test';
/** Waiting longer than this for a signal is a hang (a failure), never a measurement. */
const SAFETY_MS = 15_000;
/** send_timeout on both sides: the stalled-window cases wait for the reset it brings. */
const SEND_TIMEOUT_MS = 1_000;
/** client_body_timeout on both sides: no case stalls a body; far above any pause of a busy machine. */
const BODY_TIMEOUT_S = 10;
const LOG_FORMAT = '$http_x_probe $status $upstream_status $body_bytes_sent';
const FRAME_FLOOR = 16_384;
/** The answer a stalled client is asked for: far beyond the kernel buffers between proxy and backend. */
const BIG = 64 * 1024 * 1024;
const SHOW = process.env.H2TLS_SHOW === '1';

type Side = 'nginx' | 'keepip';
const SIDES: readonly Side[] = ['nginx', 'keepip'];

// ---------------------------------------------------------------------------------------------
// The backend: records each request by its x-probe field; /…/big?size=N answers N bytes as fast as
// the proxy takes them (write callbacks count what the kernel took), others `<name> <body bytes>`.

/** Request bodies are this pattern, so that a body is checked byte for byte. */
const pattern = (offset: number): number => (offset * 7 + 13) & 0xff;

function patterned(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = pattern(i);
  return out;
}

interface Hit {
  backend: string;
  probe: string;
  url: string;
  expect: string | null;
  bytes: number;
  /** Every body byte was the pattern's. */
  intact: boolean;
  whole: boolean;
  cut: boolean;
  /** Response bytes the kernel took from the backend; whether all were written; closed before that. */
  flushed: number;
  finished: boolean;
  aborted: boolean;
}

interface Backend {
  name: string;
  port: number;
  hit(probe: string): Hit | undefined;
  until(what: string, check: () => boolean): Promise<void>;
  close(): Promise<void>;
}

async function startBackend(name: string): Promise<Backend> {
  const hits: Hit[] = [];
  const waiters = new Set<() => void>();
  const changed = () => {
    for (const w of [...waiters]) w();
  };
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    const hit: Hit = {
      backend: name,
      probe: String(req.headers['x-probe'] ?? '?'),
      url,
      expect: req.headers.expect ?? null,
      bytes: 0,
      intact: true,
      whole: false,
      cut: false,
      flushed: 0,
      finished: false,
      aborted: false,
    };
    hits.push(hit);
    changed();
    req.on('error', () => {});
    res.on('error', () => {});
    req.on('data', (data: Buffer) => {
      for (let i = 0; i < data.length; i++) if (data[i] !== pattern(hit.bytes + i)) hit.intact = false;
      hit.bytes += data.length;
      changed();
    });
    req.on('close', () => {
      if (!hit.whole) hit.cut = true;
      changed();
    });
    res.on('close', () => {
      hit.aborted = !res.writableFinished;
      changed();
    });
    req.on('end', () => {
      hit.whole = true;
      changed();
      if (!/^\/[a-z]+\/big\b/.test(url)) {
        const text = `${name} ${hit.bytes}`;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': text.length });
        res.end(text);
        return;
      }
      const size = Number(new URL(url, 'http://x').searchParams.get('size') ?? '0');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
      let sent = 0;
      const pump = () => {
        while (sent < size && !res.destroyed) {
          const n = Math.min(chunk.length, size - sent);
          sent += n;
          const more = res.write(chunk.subarray(0, n), () => {
            hit.flushed += n;
            changed();
          });
          if (!more) {
            res.once('drain', pump);
            return;
          }
        }
        if (!res.destroyed)
          res.end(() => {
            hit.finished = true;
            changed();
          });
      };
      pump();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    hit: (probe) => hits.find((h) => h.probe === probe),
    until: (what, check) =>
      new Promise<void>((resolve, reject) => {
        const run = () => {
          if (!check()) return;
          waiters.delete(run);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(run);
          reject(new Error(`backend ${name}: not ${what} within ${SAFETY_MS} ms`));
        }, SAFETY_MS);
        waiters.add(run);
        run();
      }),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The two proxies

interface Bench {
  nginx: RunningNginx;
  gw: TestGateway;
  a: Backend;
  b: Backend;
  certDir: string;
}

/** nginx's http block as ingress-nginx renders the two TLS Ingresses (the directives that matter here). */
function nginxHttp(dir: string, certDir: string, port: number, a: number, b: number): string {
  const location = (path: string, extra: string, upstream: string) =>
    nginxBodyLocation(path, extra, 1024 * 1024).replace('upstream_balancer', upstream);
  const server = (names: string, cert: string, body: string, dflt = '') => `
  server {
    listen 127.0.0.1:${port} ssl http2${dflt};
    server_name ${names};
    ssl_certificate ${certDir}/${cert}.crt;
    ssl_certificate_key ${certDir}/${cert}.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ${body}
  }`;
  return `
  log_format flow '${LOG_FORMAT}';
  access_log ${dir}/flow.log flow;
  client_header_buffer_size 1k;
  large_client_header_buffers 4 8k;
  client_body_buffer_size 8k;
  http2_max_concurrent_streams 128;
  reset_timedout_connection on;
  client_header_timeout 20s;
  client_body_timeout ${BODY_TIMEOUT_S}s;
  send_timeout ${SEND_TIMEOUT_MS}ms;
  keepalive_timeout 20s;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream upstream_a { server 127.0.0.1:${a}; keepalive 320; keepalive_requests 10000; }
  upstream upstream_b { server 127.0.0.1:${b}; keepalive 320; keepalive_requests 10000; }
  ${server('_', 'default', 'location / { return 404; }', ' default_server')}
  ${server(
    `"${A}"`,
    'a',
    location('/buf/', 'proxy_request_buffering on;', 'upstream_a') +
      location('/stream/', 'proxy_request_buffering off;', 'upstream_a'),
  )}
  ${server(`"${B}"`, 'b', location('/', 'proxy_request_buffering on;', 'upstream_b'))}
  `;
}

async function startBench(): Promise<Bench> {
  const { certs } = await makePki({
    certificates: [
      { name: 'a', subject: `/CN=${A}`, extensions: `subjectAltName=DNS:${A}\n` },
      { name: 'b', subject: `/CN=${B}`, extensions: `subjectAltName=DNS:${B}\n` },
    ],
  });
  const fake = await testCertificate();
  const certDir = mkdtempSync(join(tmpdir(), 'keepip-h2tls-'));
  for (const [name, pem] of [
    ['a', certs.a],
    ['b', certs.b],
    ['default', fake],
  ] as const) {
    writeFileSync(join(certDir, `${name}.crt`), pem.cert);
    writeFileSync(join(certDir, `${name}.key`), pem.key);
  }
  const stops: (() => Promise<unknown>)[] = [async () => rmSync(certDir, { recursive: true, force: true })];
  try {
    const a = await startBackend('a');
    stops.push(() => a.close());
    const b = await startBackend('b');
    stops.push(() => b.close());
    const nginx = await startNginx({
      freePorts: 1,
      http: (dir, [port]) => nginxHttp(dir, certDir, port!, a.port, b.port),
      waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
    });
    stops.push(() => nginx.stop());
    const gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({ 'log-format-upstream': LOG_FORMAT }),
        tlsSecret('a-tls', certs.a.cert, certs.a.key),
        tlsSecret('b-tls', certs.b.cert, certs.b.key),
        ...serviceWithEndpoints({ name: 'a', ports: [a.port] }),
        ...serviceWithEndpoints({ name: 'b', ports: [b.port] }),
        ingress({
          name: 'a-buf',
          host: A,
          tlsSecret: 'a-tls',
          paths: [{ path: '/buf', service: 'a', port: 80 }],
        }),
        ingress({
          name: 'a-stream',
          host: A,
          tlsSecret: 'a-tls',
          annotations: { 'proxy-request-buffering': 'off' },
          paths: [{ path: '/stream', service: 'a', port: 80 }],
        }),
        ingress({ name: 'b', host: B, tlsSecret: 'b-tls', paths: [{ path: '/', service: 'b', port: 80 }] }),
      ]),
      {
        clientHeaderTimeoutMs: 20_000,
        clientBodyTimeoutMs: BODY_TIMEOUT_S * 1000,
        keepAliveTimeoutMs: 20_000,
        sendTimeoutMs: SEND_TIMEOUT_MS,
      },
    );
    return { nginx, gw, a, b, certDir };
  } catch (error) {
    for (const stop of stops.reverse()) await stop();
    throw error;
  }
}

const portOf = (b: Bench, side: Side) => (side === 'nginx' ? b.nginx.ports[0]! : b.gw.httpsPort);

// ---------------------------------------------------------------------------------------------
// A raw client over TLS with the case's ALPN list: HTTP/2 frames (h2-raw.ts's builders) or HTTP/1.1.
// connectRawH2 offers ['h2'] alone; the ALPN cases need other lists on the same socket type.

let nextSource = 1;
/** A distinct 127.61.x.y source per connection. */
const source = () => {
  const n = nextSource++;
  return `127.61.${(n >> 8) & 0xff}.${n & 0xff}`;
};

/** A TLS connection offering `alpn` (no ALPN extension when undefined); the handshake's error code if it fails. */
function tlsConnect(
  port: number,
  o: { servername?: string; alpn?: readonly string[] },
): Promise<Wire | string> {
  return new Promise((resolve) => {
    const tcp = net.connect({ host: '127.0.0.1', port, localAddress: source() });
    tcp.on('error', () => {});
    const socket = tls.connect({
      socket: tcp,
      servername: o.servername ?? A,
      ...(o.alpn === undefined ? {} : { ALPNProtocols: [...o.alpn] }),
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => resolve(new Wire(socket)));
    socket.once('error', (error: Error & { code?: string }) => {
      socket.destroy();
      resolve(error.code ?? error.message);
    });
  });
}

class Wire {
  readonly socket: tls.TLSSocket;
  readonly alpn: string | false;
  readonly frames: Frame[] = [];
  /** Every byte received (an HTTP/1.1 answer, or frames). */
  received: Buffer = Buffer.alloc(0);
  closed = false;
  #pending: Buffer = Buffer.alloc(0);
  readonly #waiters = new Set<() => void>();

  constructor(socket: tls.TLSSocket) {
    this.socket = socket;
    this.alpn = socket.alpnProtocol ?? false;
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      if (this.alpn === 'h2') {
        this.#pending = Buffer.concat([this.#pending, chunk]);
        for (let f = nextFrame(this.#pending); f !== null; f = nextFrame(this.#pending)) {
          this.#pending = this.#pending.subarray(9 + f.payload.length);
          this.frames.push(f);
          if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0)
            this.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        }
      }
      this.#notify();
    });
    const gone = () => {
      this.closed = true;
      this.#notify();
    };
    socket.on('close', gone);
    socket.on('end', gone);
    socket.on('error', gone);
  }

  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  write(bytes: Buffer | string): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Resolves with `check`'s first defined answer, rechecked on every read and on the close. */
  until<T>(what: string, check: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const run = () => {
        const found = check();
        if (found === undefined) return;
        this.#waiters.delete(run);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(run);
        const seen = this.frames.map((f) => `${f.type}@${f.streamId}`).join(' ') || 'none';
        reject(new Error(`${what}: not within ${SAFETY_MS} ms; frames ${seen}`));
      }, SAFETY_MS);
      this.#waiters.add(run);
      run();
    });
  }

  waitClosed(): Promise<true> {
    return this.until('closed', () => (this.closed ? true : undefined));
  }

  close(): void {
    this.socket.destroy();
  }

  /** The server's first SETTINGS. */
  serverSetting(id: number): number | undefined {
    const f = this.frames.find((x) => x.type === FRAME.SETTINGS && (x.flags & FLAG.ACK) === 0);
    for (let at = 0; f !== undefined && at + 6 <= f.payload.length; at += 6)
      if (f.payload.readUInt16BE(at) === id) return f.payload.readUInt32BE(at + 2);
    return undefined;
  }

  goaway(): string {
    const g = this.frames.find((f) => f.type === FRAME.GOAWAY);
    return g === undefined ? 'none' : `GOAWAY ${goawayCode(g)}`;
  }

  /** The sum of the server's WINDOW_UPDATE increments on `sid` (0: the connection). */
  credit(sid: number): number {
    let sum = 0;
    for (const f of this.frames)
      if (f.type === FRAME.WINDOW_UPDATE && f.streamId === sid) sum += f.payload.readUInt32BE(0) & 0x7fffffff;
    return sum;
  }
}

/** An HTTP/2 connection (ALPN h2 only): preface and `settings` sent, the server's SETTINGS read. */
async function h2(
  bench: Bench,
  side: Side,
  o: { servername?: string; settings?: readonly (readonly [number, number])[] } = {},
): Promise<Wire> {
  const wire = await tlsConnect(portOf(bench, side), { servername: o.servername, alpn: ['h2'] });
  assert.ok(typeof wire !== 'string' && wire.alpn === 'h2', `${side}: h2 not chosen (${wire})`);
  wire.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, settingsPayload(o.settings ?? []))]));
  await wire.until('the server SETTINGS', () =>
    wire.frames.find((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0),
  );
  return wire;
}

interface RequestOptions {
  path: string;
  probe: string;
  method?: string;
  authority?: string;
  /** END_STREAM on the HEADERS (default true). */
  end?: boolean;
  extra?: readonly (readonly [string, string])[];
}

function headersFrame(sid: number, o: RequestOptions): Buffer {
  const fields: [string, string][] = [
    [':method', o.method ?? 'GET'],
    [':scheme', 'https'],
    [':authority', o.authority ?? A],
    [':path', o.path],
    ['x-probe', o.probe],
    ...(o.extra ?? []).map(([n, v]) => [n, v] as [string, string]),
  ];
  return frame(
    FRAME.HEADERS,
    FLAG.END_HEADERS | (o.end === false ? 0 : FLAG.END_STREAM),
    sid,
    headerBlock(fields),
  );
}

function windowUpdate(sid: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment >>> 0);
  return frame(FRAME.WINDOW_UPDATE, 0, sid, payload);
}

/** What the client saw of one stream so far. */
interface StreamView {
  statuses: number[];
  data: number;
  ended: boolean;
  rst: number | null;
}

function viewOf(wire: Wire, sid: number): StreamView {
  const view: StreamView = { statuses: [], data: 0, ended: false, rst: null };
  for (const f of wire.frames) {
    if (f.streamId !== sid) continue;
    if (f.type === FRAME.HEADERS) view.statuses.push(responseStatus(f.payload));
    if (f.type === FRAME.DATA) view.data += f.payload.length;
    if ((f.type === FRAME.HEADERS || f.type === FRAME.DATA) && (f.flags & FLAG.END_STREAM) !== 0)
      view.ended = true;
    if (f.type === FRAME.RST_STREAM && view.rst === null) view.rst = rstCode(f);
  }
  return view;
}

/** Until `sid` ended (END_STREAM, RST_STREAM) or the connection closed. */
function streamEnd(wire: Wire, sid: number): Promise<StreamView> {
  return wire.until(`stream ${sid} to end`, () => {
    const v = viewOf(wire, sid);
    return v.ended || v.rst !== null || wire.closed ? v : undefined;
  });
}

/** The stream's answer: statuses, then END_STREAM or RST_STREAM <code>, or the connection's GOAWAY. */
function answer(wire: Wire, v: StreamView): string {
  const parts = [v.statuses.length > 0 ? `status ${v.statuses.join('+')}` : 'no answer'];
  if (v.ended) parts.push('END_STREAM');
  if (v.rst !== null) parts.push(`RST_STREAM ${v.rst}`);
  if (!v.ended && v.rst === null) parts.push(wire.goaway());
  return parts.join(', ');
}

/** Whether the connection serves one more stream (`sid`), or how it ended. */
async function stillServes(wire: Wire, sid: number, probe: string): Promise<string> {
  if (wire.closed || wire.goaway() !== 'none') return `closed (${wire.goaway()})`;
  wire.write(Buffer.concat([headersFrame(sid, { path: '/buf/next', probe }), windowUpdate(sid, 1_000)]));
  const v = await streamEnd(wire, sid);
  return v.statuses[0] === 200 && v.ended ? 'serves another stream' : `next stream: ${answer(wire, v)}`;
}

function backendView(hit: Hit | undefined): string {
  if (hit === undefined) return 'nothing';
  if (hit.whole) return `whole ${hit.bytes}${hit.intact ? '' : ' CORRUPT'}`;
  return `cut after ${hit.bytes}`;
}

const logPattern = (probe: string) => new RegExp(`^${probe} (\\S+ \\S+) (\\S+)$`, 'm');

/** The access log line of `probe` ("<status> <upstream_status>", "<body_bytes_sent>"), waiting for it. */
async function logOf(bench: Bench, side: Side, probe: string): Promise<{ status: string; bytes: string }> {
  const m =
    side === 'nginx'
      ? await bench.nginx.waitForFile('flow.log', logPattern(probe), SAFETY_MS)
      : logPattern(probe).exec(await bench.gw.access.waitFor(logPattern(probe), SAFETY_MS));
  return { status: m![1]!, bytes: m![2]! };
}

let fences = 0;
/**
 * The line of `probe` once a later request on a fresh connection is logged (a stream the server
 * ended before it is logged by then), or 'no line'.
 */
async function logAfterFence(bench: Bench, side: Side, probe: string): Promise<string> {
  const fence = `fence-${side}-${fences++}`;
  const wire = await h2(bench, side);
  wire.write(headersFrame(1, { path: '/buf/fence', probe: fence }));
  await streamEnd(wire, 1);
  wire.close();
  await logOf(bench, side, fence);
  const text = side === 'nginx' ? bench.nginx.readFile('flow.log') : bench.gw.access.lines.join('\n');
  return logPattern(probe).exec(text)?.[1] ?? 'no line';
}

// ---------------------------------------------------------------------------------------------
// Comparison

type Outcome = Record<string, string>;

interface Allowed {
  case: string;
  field: string;
  nginx: string;
  keepip: RegExp;
  reason: string;
  /** nginx may also give keepip's value (an outcome that depends on how TCP splits the bytes): met then too. */
  mayAgree?: boolean;
}

const RFC_STRICTER =
  'RFC 9113 §5.4.1 lets an endpoint treat a stream error as a connection error; only the offending ' +
  "client's own connection ends, nothing of the stream's request goes on (the backend's copy is cut, " +
  'never whole), and the access log says 400 as nginx';

const ALLOWED: readonly Allowed[] = [
  {
    case: 'ALPN offers http/1.0',
    field: 'handshake',
    nginx: 'http/1.0 200',
    keepip: /^refused ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL$/,
    reason:
      'docs/gateway.md, Listeners: "ALPN offers `h2` then `http/1.1`"; nginx also lists http/1.0 and ' +
      'http/0.9. A client offering only http/1.0 gets the RFC 7301 alert from keepip, as for any protocol ' +
      'it does not speak; no client library offers http/1.0 alone',
  },
  {
    case: 'HTTP/1.1 request on an h2 connection',
    field: 'client',
    nginx: 'GOAWAY 1',
    keepip: /^GOAWAY 2$/,
    reason:
      'RFC 9113 §3.4 asks for PROTOCOL_ERROR; node:http2 answers a bad client preface with INTERNAL_ERROR. ' +
      'Either way the connection is closed at once and nothing reaches a backend (checked)',
  },
  {
    case: 'stalled: window 0',
    field: 'end',
    nginx: 'RST_STREAM 1',
    keepip: /^RST_STREAM 2$/,
    reason:
      'docs/gateway.md, HTTP/2 limits: at the send timeout "the stream is reset" (no code promised); nginx ' +
      '1.22 resets a timed-out stream with PROTOCOL_ERROR, node:http2 destroys it with INTERNAL_ERROR. Both ' +
      'end only that stream, free the backend and serve the next stream (checked)',
  },
  ...['window 100 bytes', 'window 0 then raised by SETTINGS', 'window driven below zero by SETTINGS'].map(
    (kind): Allowed => ({
      case: `stalled: ${kind}`,
      field: 'end',
      nginx: 'RST_STREAM 1',
      keepip: /^RST_STREAM 2$/,
      reason: 'as "stalled: window 0"',
    }),
  ),
  {
    case: 'stalled: window 0 then raised by SETTINGS',
    field: 'data',
    nginx: '0',
    keepip: /^1000$/,
    mayAgree: true,
    reason:
      'RFC 9113 §6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE change moves the window of every open stream, so ' +
      'raising it from 0 to 1,000 lets 1,000 bytes go; keepip (nghttp2) sends them, nginx 1.22 leaves a ' +
      'stream it found exhausted at window 0 blocked until a WINDOW_UPDATE (every run here; it would send ' +
      'them had the SETTINGS come before its first try). Neither sends past the window (checked)',
  },
  {
    case: 'WINDOW_UPDATE overflowing a stream window',
    field: 'client',
    nginx: 'no answer, RST_STREAM 3',
    keepip: /^no answer, GOAWAY 3$/,
    reason: `nginx resets the stream, node:http2 ends the connection with the same code: ${RFC_STRICTER}`,
  },
  {
    case: 'WINDOW_UPDATE overflowing a stream window',
    field: 'connection',
    nginx: 'serves another stream',
    keepip: /^closed \(GOAWAY 3\)$/,
    reason: 'the same difference: the connection ended',
  },
  {
    case: 'one DATA frame larger than the stream window (buffering on)',
    field: 'client',
    nginx: 'status 200, END_STREAM',
    keepip: /^no answer, GOAWAY 6$/,
    reason:
      'nginx advertises SETTINGS_MAX_FRAME_SIZE 16777215 and, with a Content-Length and buffering on, opens ' +
      'the stream window to 2^31-1 as soon as it reads the HEADERS, so the 70,000-byte frame is within ' +
      'its window; keepip (node:http2) advertises 16,384, and a larger frame is FRAME_SIZE_ERROR (RFC 9113 ' +
      '§4.2) for the connection. The client broke the limit it was given; nothing reached the backend',
  },
  {
    case: 'one DATA frame larger than the stream window (buffering on)',
    field: 'backend',
    nginx: 'whole 70000',
    keepip: /^nothing$/,
    reason: 'the same difference: keepip refused the frame',
  },
  {
    case: 'DATA frames past the window without waiting for WINDOW_UPDATE (buffering on)',
    field: 'client',
    nginx: 'status 200, END_STREAM',
    keepip: /^(no answer, GOAWAY 3|status 200, END_STREAM)$/,
    reason:
      'nginx opens the window to 2^31-1 on reading the HEADERS, so 81,919 bytes are within it. node:http2 ' +
      'credits a stream only as the pipeline reads it, so frames that arrive before the stream is handed ' +
      'over (new streams wait for the end of the read that brought them, docs: rapid reset) exceed its ' +
      '65,535-byte window: FLOW_CONTROL_ERROR for the connection, as RFC 9113 §6.9.1 allows; when the ' +
      'frames come in later reads the window has been credited and the request is served whole. Which ' +
      'one depends on TCP segments; both are safe (checked: refused means nothing at the backend)',
  },
  {
    case: 'DATA frames past the window without waiting for WINDOW_UPDATE (buffering on)',
    field: 'backend',
    nginx: 'whole 81919',
    keepip: /^(nothing|whole 81919)$/,
    reason: 'the same difference',
  },
];

/** The cases that ran, and their outcomes, for the ALLOWED check. */
const observed = new Map<string, Record<Side, Outcome>>();

/** The fields on which the two differ and ALLOWED does not excuse. */
function differences(name: string, o: Record<Side, Outcome>): string[] {
  observed.set(name, o);
  if (SHOW)
    console.log(`${name}\n  nginx:  ${JSON.stringify(o.nginx)}\n  keepip: ${JSON.stringify(o.keepip)}`);
  const out: string[] = [];
  for (const field of Object.keys(o.nginx)) {
    const n = o.nginx[field]!;
    const k = o.keepip[field] ?? '(missing)';
    if (n === k) continue;
    const allowed = ALLOWED.some(
      (a) => a.case === name && a.field === field && a.nginx === n && a.keepip.test(k),
    );
    if (!allowed) out.push(`${name}: ${field}: nginx ${JSON.stringify(n)}, keepip ${JSON.stringify(k)}`);
  }
  return out;
}

/** Runs every case at once; their unexcused differences. */
async function eachCase<T>(cases: readonly T[], run: (c: T) => Promise<string[]>): Promise<string[]> {
  return (await Promise.all(cases.map(run))).flat();
}

async function both(run: (side: Side) => Promise<Outcome>): Promise<Record<Side, Outcome>> {
  const [nginx, keepip] = await Promise.all(SIDES.map(run));
  return { nginx: nginx!, keepip: keepip! };
}

/** Runs the case on both sides and asserts that every difference is ALLOWED. */
async function compare(name: string, run: (side: Side) => Promise<Outcome>): Promise<Record<Side, Outcome>> {
  const o = await both(run);
  assert.deepEqual(differences(name, o), []);
  return o;
}

// ---------------------------------------------------------------------------------------------

describe('HTTP/2 over TLS and flow control: keepip against nginx 1.22 (listen … ssl http2)', () => {
  let bench: Bench;

  before(async () => {
    bench = await startBench();
  });

  after(async () => {
    if (bench === undefined) return;
    await bench.gw.close();
    await bench.nginx.stop();
    await bench.a.close();
    await bench.b.close();
    rmSync(bench.certDir, { recursive: true, force: true });
  });

  /** Serves one request over `wire` in the protocol its handshake chose; the status (0: none). */
  async function serveOver(wire: Wire, probe: string, version: string): Promise<number> {
    if (wire.alpn === 'h2') {
      wire.write(
        Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0), headersFrame(1, { path: '/buf/alpn', probe })]),
      );
      return (await streamEnd(wire, 1)).statuses[0] ?? 0;
    }
    wire.write(`GET /buf/alpn ${version}\r\nHost: ${A}\r\nx-probe: ${probe}\r\nConnection: close\r\n\r\n`);
    await wire.waitClosed();
    return Number(/^HTTP\/1\.[01] (\d{3}) /.exec(wire.received.toString('latin1'))?.[1] ?? 0);
  }

  const OFFERS: readonly (readonly [string, readonly string[] | undefined])[] = [
    ['h2', ['h2']],
    ['h2, http/1.1', ['h2', 'http/1.1']],
    ['http/1.1, h2', ['http/1.1', 'h2']],
    ['http/1.1', ['http/1.1']],
    ['no ALPN extension', undefined],
    ['h2c', ['h2c']],
    ['an unknown protocol', ['keepip-test/9']],
    ['http/1.0', ['http/1.0']],
  ];

  it('ALPN: h2 only when the client offers it (the server preferring it), http/1.1 or none otherwise, an alert when nothing is shared', async () => {
    const problems = await eachCase(OFFERS, async ([name, alpn]) => {
      const o = await both(async (side) => {
        const wire = await tlsConnect(portOf(bench, side), { alpn });
        if (typeof wire === 'string') return { handshake: `refused ${wire}` };
        const version = wire.alpn === 'http/1.0' ? 'HTTP/1.0' : 'HTTP/1.1';
        const status = await serveOver(wire, `alpn-${side}-${fences++}`, version);
        wire.close();
        // The safe behaviour: h2 never spoken where the client did not offer it.
        if (wire.alpn === 'h2') assert.ok(alpn?.includes('h2'), `${side} chose h2 for the offer ${name}`);
        return { handshake: `${wire.alpn === false ? 'no ALPN' : wire.alpn} ${status}` };
      });
      const found = differences(`ALPN offers ${name}`, o);
      return found;
    });
    assert.deepEqual(problems, []);
    assert.equal(observed.get('ALPN offers h2, http/1.1')?.keepip.handshake, 'h2 200');
    assert.equal(observed.get('ALPN offers http/1.1, h2')?.keepip.handshake, 'h2 200');
    assert.equal(observed.get('ALPN offers no ALPN extension')?.keepip.handshake, 'no ALPN 200');
    assert.match(
      observed.get('ALPN offers an unknown protocol')?.keepip.handshake ?? '',
      /NO_APPLICATION_PROTOCOL/,
    );
  });

  it('the HTTP/2 preface on a TLS connection that did not choose h2 is an HTTP/1.1 400, and HTTP/1.1 on one that did is a connection error: never served', async () => {
    const preface = (probe: string) =>
      Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0), headersFrame(1, { path: '/buf/pri', probe })]);
    const cases = [
      ['the HTTP/2 preface after ALPN http/1.1', ['http/1.1'], preface],
      ['the HTTP/2 preface without ALPN', undefined, preface],
      [
        'HTTP/1.1 request on an h2 connection',
        ['h2'],
        (probe: string) => Buffer.from(`GET /buf/h1 HTTP/1.1\r\nHost: ${A}\r\nx-probe: ${probe}\r\n\r\n`),
      ],
    ] as const;
    const problems = await eachCase(cases, async ([name, alpn, bytes]) => {
      const o = await both(async (side) => {
        const probe = `pri-${side}-${fences++}`;
        const wire = await tlsConnect(portOf(bench, side), { alpn });
        assert.ok(typeof wire !== 'string', `${side}: ${wire}`);
        wire.write(bytes(probe));
        await wire.waitClosed();
        wire.close();
        const text = wire.received.toString('latin1');
        const client =
          wire.alpn === 'h2'
            ? wire.goaway()
            : (/^HTTP\/1\.1 \d{3}/.exec(text)?.[0] ??
              `${wire.received.length} bytes: ${JSON.stringify(text.slice(0, 20))}`);
        // Never HTTP/2 frames on a connection that did not choose h2.
        if (wire.alpn !== 'h2')
          assert.ok(text.startsWith('HTTP/1.1 '), `${side}: ${name}: ${JSON.stringify(text.slice(0, 40))}`);
        return { client, backend: backendView(bench.a.hit(probe)) };
      });
      const found = differences(name, o);
      for (const side of SIDES)
        assert.equal(o[side].backend, 'nothing', `${side}: ${name} reached the backend`);
      return found;
    });
    assert.deepEqual(problems, []);
  });

  it('an SNI other than :authority: routed by :authority (no auth-tls host involved), as nginx', async () => {
    const probes = [
      [A, B],
      [B, A],
      ['unknown.flow.test', A],
      [A, 'c.flow.test'],
    ] as const;
    const problems = await eachCase(probes, async ([sni, authority]) => {
      const o = await both(async (side) => {
        const probe = `sni-${side}-${fences++}`;
        const wire = await h2(bench, side, { servername: sni });
        wire.write(headersFrame(1, { path: '/buf/sni', probe, authority }));
        const v = await streamEnd(wire, 1);
        wire.close();
        const hit = bench.a.hit(probe) ?? bench.b.hit(probe);
        return { client: `status ${v.statuses.join('+')}`, backend: hit?.backend ?? 'none' };
      });
      const found = differences(`SNI ${sni}, :authority ${authority}`, o);
      const expected = authority === A ? 'a' : authority === B ? 'b' : 'none';
      assert.equal(o.keepip.backend, expected, `SNI ${sni}, :authority ${authority}`);
      return found;
    });
    assert.deepEqual(problems, []);
  });

  for (const loc of ['buf', 'stream'] as const) {
    it(`a request body larger than the initial stream window (buffering ${loc === 'buf' ? 'on' : 'off'}): the server opens its window, the whole body reaches the backend`, async () => {
      const size = 200_000;
      const payload = patterned(size);
      await compare(`body of ${size} bytes (${loc})`, async (side) => {
        const probe = `window-${side}-${loc}`;
        const wire = await h2(bench, side);
        const initial = wire.serverSetting(SETTING.INITIAL_WINDOW_SIZE) ?? 65_535;
        const maxFrame = Math.min(wire.serverSetting(SETTING.MAX_FRAME_SIZE) ?? FRAME_FLOOR, FRAME_FLOOR);
        wire.write(
          headersFrame(1, {
            path: `/${loc}/body`,
            probe,
            method: 'POST',
            end: false,
            extra: [['content-length', String(size)]],
          }),
        );
        // As a client must: never more than min(connection window, stream window) in flight.
        let sent = 0;
        for (let rounds = 0; sent < size && rounds < 1_000; rounds++) {
          const room = await wire.until('the server to open its window', () => {
            const v = viewOf(wire, 1);
            if (v.rst !== null || v.ended || wire.closed) return -1;
            const c = Math.min(65_535 + wire.credit(0), initial + wire.credit(1)) - sent;
            return c > 0 ? c : undefined;
          });
          if (room < 0) break;
          const n = Math.min(room, maxFrame, size - sent);
          const last = sent + n === size;
          wire.write(frame(FRAME.DATA, last ? FLAG.END_STREAM : 0, 1, payload.subarray(sent, sent + n)));
          sent += n;
        }
        const v = await streamEnd(wire, 1);
        wire.close();
        assert.ok(wire.credit(0) + wire.credit(1) > 0, `${side}: no WINDOW_UPDATE`);
        const log = await logOf(bench, side, probe);
        return {
          sent: String(sent),
          client: answer(wire, v),
          backend: backendView(bench.a.hit(probe)),
          log: log.status,
        };
      });
      assert.equal(observed.get(`body of ${size} bytes (${loc})`)?.keepip.backend, `whole ${size}`);
    });
  }

  it('Expect: 100-continue over HTTP/2: no 100 before the body on either (nginx 1.22 answers none over HTTP/2), the body then served whole, Expect never forwarded', async () => {
    for (const loc of ['buf', 'stream']) {
      await compare(`Expect: 100-continue (${loc})`, async (side) => {
        const probe = `expect-${side}-${loc}`;
        const wire = await h2(bench, side);
        const extra = [
          ['content-length', '5'],
          ['expect', '100-continue'],
        ] as const;
        // Stream 3's answer needs a backend round trip: a 100 for stream 1, sent when the server read
        // stream 1's HEADERS, would be on the wire before it.
        wire.write(
          Buffer.concat([
            headersFrame(1, { path: `/${loc}/expect`, probe, method: 'POST', end: false, extra }),
            headersFrame(3, { path: '/buf/ping', probe: `${probe}-ping` }),
          ]),
        );
        await streamEnd(wire, 3);
        const interim = viewOf(wire, 1).statuses.join('+') || 'none';
        wire.write(frame(FRAME.DATA, FLAG.END_STREAM, 1, patterned(5)));
        const v = await streamEnd(wire, 1);
        wire.close();
        const hit = bench.a.hit(probe);
        return {
          'before the body': interim,
          client: answer(wire, v),
          backend: backendView(hit),
          'Expect upstream': String(hit?.expect ?? 'none'),
          log: (await logOf(bench, side, probe)).status,
        };
      });
    }
  });

  // ------------------------------------------------------------------------------------------
  // A client whose flow-control window holds a 64 MiB answer back. Every kind runs at once on both
  // sides (the wait for each is the send timeout's reset); the tests below judge the outcomes.

  type StallKind =
    | 'window 0'
    | 'window 100 bytes'
    | 'window 0 then raised by SETTINGS'
    | 'window driven below zero by SETTINGS';
  const STALLS: readonly StallKind[] = [
    'window 0',
    'window 100 bytes',
    'window 0 then raised by SETTINGS',
    'window driven below zero by SETTINGS',
  ];

  interface Stall {
    /** The DATA bytes RFC 9113 §6.9 lets the server send on the stream. */
    allowed: number;
    data: number;
    outcome: Outcome;
    hit: Hit;
    logBytes: string;
  }

  async function stall(side: Side, kind: StallKind): Promise<Stall> {
    const probe = `stall-${side}-${STALLS.indexOf(kind)}`;
    const initial =
      kind === 'window 100 bytes' ? 100 : kind === 'window driven below zero by SETTINGS' ? 65_535 : 0;
    const wire = await h2(bench, side, { settings: [[SETTING.INITIAL_WINDOW_SIZE, initial]] });
    // The connection window never limits: only the stream's does.
    wire.write(
      Buffer.concat([windowUpdate(0, 2 ** 30), headersFrame(1, { path: `/buf/big?size=${BIG}`, probe })]),
    );
    await wire.until('the answer head', () =>
      viewOf(wire, 1).statuses.length > 0 || wire.closed ? true : undefined,
    );
    let allowed = initial;
    if (kind === 'window 0 then raised by SETTINGS') {
      wire.write(frame(FRAME.SETTINGS, 0, 0, settingsPayload([[SETTING.INITIAL_WINDOW_SIZE, 1_000]])));
      allowed = 1_000;
    }
    if (kind === 'window driven below zero by SETTINGS') {
      // The server fills the 65,535 bytes; SETTINGS 16,384 makes the window -49,151 (§6.9.2), an
      // update of 49,151 brings it to 0 (nothing may be sent), one of 10 lets 10 more bytes go.
      await wire.until('the window filled', () =>
        viewOf(wire, 1).data >= 65_535 || wire.closed ? true : undefined,
      );
      wire.write(
        Buffer.concat([
          frame(FRAME.SETTINGS, 0, 0, settingsPayload([[SETTING.INITIAL_WINDOW_SIZE, 16_384]])),
          windowUpdate(1, 49_151),
          windowUpdate(1, 10),
        ]),
      );
      allowed = 65_545;
    }
    // Another stream on the same connection, whose window the client opens, is served meanwhile.
    wire.write(
      Buffer.concat([
        headersFrame(3, { path: '/buf/other', probe: `${probe}-other` }),
        windowUpdate(3, 1_000),
      ]),
    );
    const other = await streamEnd(wire, 3);
    const v = await streamEnd(wire, 1);
    const hit = bench.a.hit(probe)!;
    await bench.a.until('the big answer freed', () => hit.aborted || hit.finished);
    const next = await stillServes(wire, 5, `${probe}-next`);
    wire.close();
    const log = await logOf(bench, side, probe);
    return {
      allowed,
      data: v.data,
      hit,
      logBytes: log.bytes,
      outcome: {
        head: v.statuses.join('+'),
        data: String(v.data),
        end: v.ended ? 'END_STREAM' : v.rst !== null ? `RST_STREAM ${v.rst}` : wire.goaway(),
        'other stream meanwhile': other.statuses[0] === 200 && other.ended ? 'served' : answer(wire, other),
        connection: next,
        backend: hit.finished ? 'whole answer taken' : hit.aborted ? 'freed' : 'still held',
        log: log.status,
      },
    };
  }

  let stalls: Promise<Record<Side, Record<StallKind, Stall>>> | undefined;
  const stallOutcomes = () => {
    stalls ??= (async () => {
      const runs = await Promise.all(
        SIDES.flatMap((side) => STALLS.map(async (kind) => [side, kind, await stall(side, kind)] as const)),
      );
      const out = { nginx: {}, keepip: {} } as Record<Side, Record<StallKind, Stall>>;
      for (const [side, kind, s] of runs) out[side][kind] = s;
      return out;
    })();
    return stalls;
  };

  it('a client whose window holds the answer back (0, 100 bytes, 0 then raised, below zero by SETTINGS): never more DATA than the window, reset at send_timeout, other streams served, the backend held back and freed', async () => {
    const all = await stallOutcomes();
    const problems: string[] = [];
    for (const kind of STALLS) {
      problems.push(
        ...differences(`stalled: ${kind}`, {
          nginx: all.nginx[kind].outcome,
          keepip: all.keepip[kind].outcome,
        }),
      );
      for (const side of SIDES) {
        const s = all[side][kind];
        assert.ok(
          s.data <= s.allowed,
          `${side} ${kind}: ${s.data} DATA bytes sent past a window of ${s.allowed}`,
        );
        assert.match(
          s.outcome.end!,
          /^RST_STREAM [1-9]/,
          `${side} ${kind}: the stalled stream did not end by a reset`,
        );
        assert.equal(s.outcome.backend, 'freed', `${side} ${kind}`);
        // Held back: the proxy took no more of the answer than the kernel buffers hold.
        assert.ok(
          s.hit.flushed < BIG / 2,
          `${side} ${kind}: the proxy took ${s.hit.flushed} bytes of the answer`,
        );
      }
    }
    assert.deepEqual(problems, []);
  });

  it('a stream reset by send_timeout: nginx logs the body bytes the client got; keepip at least those, at most what it handed to node:http2 (documented)', async () => {
    const all = await stallOutcomes();
    const wrong: string[] = [];
    for (const kind of STALLS) {
      const n = all.nginx[kind];
      if (n.logBytes !== String(n.data))
        wrong.push(`nginx ${kind}: the client got ${n.data} DATA bytes, the access log says ${n.logBytes}`);
      // docs/gateway.md: over HTTP/2 $body_bytes_sent counts what was handed to the stream; a reset
      // drops what the client's window still held back (node:http2 has no count of DATA written).
      const k = all.keepip[kind];
      const logged = Number(k.logBytes);
      if (!(logged >= k.data && logged <= k.hit.flushed))
        wrong.push(`keepip ${kind}: the client got ${k.data} DATA bytes, the access log says ${k.logBytes}`);
    }
    assert.deepEqual(wrong, []);
  });

  // ------------------------------------------------------------------------------------------

  it('WINDOW_UPDATE with increment 0 (PROTOCOL_ERROR) or past 2^31-1 (FLOW_CONTROL_ERROR), on a stream and on the connection: refused; the streamed body is cut at the backend, never whole', async () => {
    const cases = [
      ['WINDOW_UPDATE of 0 on a stream', 1, 0],
      ['WINDOW_UPDATE of 0 on the connection', 0, 0],
      ['WINDOW_UPDATE overflowing a stream window', 1, 0x7fffffff],
      ['WINDOW_UPDATE overflowing the connection window', 0, 0x7fffffff],
    ] as const;
    const problems = await eachCase(cases, async ([name, sid, increment]) => {
      const o = await both(async (side) => {
        const probe = `wu-${side}-${fences++}`;
        const wire = await h2(bench, side);
        // A streamed upload under way (the backend has its head and 5 of 10 bytes), no answer yet: the
        // server has sent no DATA, so its windows are the initial 65,535 and the overflow is certain.
        wire.write(
          Buffer.concat([
            headersFrame(1, {
              path: '/stream/wu',
              probe,
              method: 'POST',
              end: false,
              extra: [['content-length', '10']],
            }),
            frame(FRAME.DATA, 0, 1, patterned(5)),
          ]),
        );
        await bench.a.until('the first 5 bytes', () => bench.a.hit(probe)?.bytes === 5);
        wire.write(windowUpdate(sid, increment));
        const v = await streamEnd(wire, 1);
        const hit = bench.a.hit(probe)!;
        await bench.a.until('the upload settled', () => hit.whole || hit.cut);
        const connection = await stillServes(wire, 3, `${probe}-next`);
        wire.close();
        return {
          client: answer(wire, v),
          connection,
          backend: backendView(hit),
          log: (await logOf(bench, side, probe)).status,
        };
      });
      const found = differences(name, o);
      const code = increment === 0 ? H2_ERROR.PROTOCOL_ERROR : H2_ERROR.FLOW_CONTROL_ERROR;
      for (const side of SIDES) {
        assert.match(o[side].client!, new RegExp(`(RST_STREAM|GOAWAY) ${code}$`), `${side}: ${name}`);
        assert.equal(o[side].backend, 'cut after 5', `${side}: ${name}`);
        assert.equal(o[side].log, '400 -', `${side}: ${name}`);
      }
      return found;
    });
    assert.deepEqual(problems, []);
  });

  it('DATA beyond the server window (one frame larger than it; frames sent without waiting for WINDOW_UPDATE): refused with nothing at the backend, or served whole once the window was credited', async () => {
    const cases = [
      ['one DATA frame larger than the stream window (buffering on)', [70_000]],
      [
        'DATA frames past the window without waiting for WINDOW_UPDATE (buffering on)',
        [16_384, 16_384, 16_384, 16_384, 16_383],
      ],
    ] as const;
    const problems = await eachCase(cases, async ([name, sizes]) => {
      const total = sizes.reduce((a, b) => a + b, 0);
      const payload = patterned(total);
      const o = await both(async (side) => {
        const probe = `beyond-${side}-${fences++}`;
        const wire = await h2(bench, side);
        const frames = [
          headersFrame(1, {
            path: '/buf/beyond',
            probe,
            method: 'POST',
            end: false,
            extra: [['content-length', String(total)]],
          }),
        ];
        let at = 0;
        for (const [i, n] of sizes.entries()) {
          frames.push(
            frame(FRAME.DATA, i === sizes.length - 1 ? FLAG.END_STREAM : 0, 1, payload.subarray(at, at + n)),
          );
          at += n;
        }
        wire.write(Buffer.concat(frames));
        const v = await streamEnd(wire, 1);
        const client = answer(wire, v);
        const log = await logAfterFence(bench, side, probe);
        const backend = backendView(bench.a.hit(probe));
        wire.close();
        // The safe outcomes: refused and nothing whole upstream nor logged 200, or served whole.
        if (v.statuses[0] === 200) assert.equal(backend, `whole ${total}`, `${side}: ${name}`);
        else {
          assert.match(client, /(RST_STREAM|GOAWAY) (3|6)$/, `${side}: ${name}`);
          assert.ok(
            !backend.startsWith('whole'),
            `${side}: ${name}: refused, but the backend has ${backend}`,
          );
          assert.ok(!log.startsWith('200'), `${side}: ${name}: refused, but logged ${log}`);
        }
        return { client, backend };
      });
      const found = differences(name, o);
      return found;
    });
    assert.deepEqual(problems, []);
  });

  it('every ALLOWED difference is still what is seen', () => {
    const rotten = ALLOWED.filter((a) => {
      const o = observed.get(a.case);
      if (o === undefined) return false; // its case did not run (a name filter)
      const [n, k] = [o.nginx[a.field], o.keepip[a.field] ?? '(missing)'];
      const met = (n === a.nginx && a.keepip.test(k)) || (a.mayAgree === true && n === k && a.keepip.test(k));
      return !met;
    }).map(
      (a) =>
        `${a.case} / ${a.field}: nginx ${a.nginx}, keepip ${a.keepip} — seen ${JSON.stringify(observed.get(a.case))}`,
    );
    assert.deepEqual(rotten, []);
  });
});
