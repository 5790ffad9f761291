// A hostile or broken HTTP/1.1 backend answering requests that came from HTTP/2 clients: keepip
// translates the backend's answer (h1-client.ts, proxy.ts) into an HTTP/2 response (h2-stream.ts).
// Whatever the backend writes, the HTTP/2 client must get a valid response or a stream reset: never a
// connection error (a second stream on the same connection completes), never a cut-off body that ends
// with END_STREAM, and the gateway keeps serving. Reference: nginx's HTTP/2 module drops
// connection-specific fields (Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade)
// and sends lower-case names; its upstream parser refuses broken heads with 502.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { listenTracked } from '../helpers/net.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const HOST = 'down.test';
const SLOW_HOST = 'slow.test';
const STREAM_HOST = 'stream.test';
const body = (text: string, type = 'text/plain') =>
  `Content-Type: ${type}\r\nContent-Length: ${text.length}\r\n\r\n${text}`;
const COOKIES = Array.from({ length: 300 }, (_, i) => `c${i}=v${i}; Path=/`);

type Answer = string | ((socket: net.Socket) => void);

/** Raw answers of the hostile backend, by request path. Strings are written and the socket kept open. */
const ANSWERS: Record<string, Answer> = {
  '/ok': `HTTP/1.1 200 OK\r\n${body('ok')}`,
  '/hop': `HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Private\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTE: trailers\r\nHost: internal.example\r\nX-Kept: Yes\r\nX-UPPER-Name: v\r\n${body('hop')}`,
  '/hop-chunked': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
  '/pseudo': `HTTP/1.1 200 OK\r\n:status: 204\r\n${body('LEAKED')}`,
  '/empty-name': `HTTP/1.1 200 OK\r\n: v\r\n${body('LEAKED')}`,
  '/nul': `HTTP/1.1 200 OK\r\nX-V: a\0b\r\n${body('LEAKED')}`,
  '/fold': `HTTP/1.1 200 OK\r\nX-V: a\r\n\tb\r\n${body('LEAKED')}`,
  '/status-700': `HTTP/1.1 700 Odd\r\n${body('seven')}`,
  '/status-junk': `HTTP/1.1 20x OK\r\n${body('LEAKED')}`,
  '/status-long': `HTTP/1.1 2000 OK\r\n${body('LEAKED')}`,
  '/status-099': `HTTP/1.1 099 Low\r\n${body('LEAKED')}`,
  '/interim': `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </t.js>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n${body('final')}`,
  '/101': `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nLEAKED`,
  '/204-body': 'HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON',
  '/304-body': `HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 6\r\n\r\nPOISON`,
  '/head-body': 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON',
  '/long-body': 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfullEXTRA-BYTES',
  '/short-body': (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part'),
  '/bad-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\nZZ\r\nmore\r\n0\r\n\r\n',
  '/chunk-cut': (s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n'),
  '/close-delimited': (s) => s.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close'),
  '/stall': 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nstarted',
  '/big-head': `HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(6000)}\r\n${body('big')}`,
  '/cookies': `HTTP/1.1 200 OK\r\n${COOKIES.map((c) => `Set-Cookie: ${c}\r\n`).join('')}${body('cookies')}`,
  // Answers before the request body is read, and never reads it.
  '/early': (s) => {
    s.pause();
    s.write(`HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n${body('too big!')}`);
  },
};

/** /twice/<name>/<value>: the field twice (the same value), then a 3-byte body. */
function twice(path: string): string | undefined {
  const [, name, value] = /^\/twice\/([^/]+)\/(.+)$/.exec(path) ?? [];
  if (name === undefined || value === undefined) return undefined;
  const line = `${name}: ${decodeURIComponent(value)}\r\n`;
  return `HTTP/1.1 200 OK\r\n${line}${line}Content-Length: 3\r\n\r\ntwo`;
}

interface RawBackend {
  port: number;
  heads: string[];
  /** Resolves when the backend connection that carried a request for `path` closes. */
  closed(path: string): Promise<void>;
  close(): Promise<void>;
}

async function startRawBackend(): Promise<RawBackend> {
  const heads: string[] = [];
  const closes = new Map<string, Promise<void>>();
  const server = net.createServer((socket) => {
    const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = text.slice(0, end);
      text = text.slice(end + 4);
      heads.push(head);
      const path = (head.split(' ')[1] ?? '').split('?')[0] ?? '';
      closes.set(path, gone);
      const answer = ANSWERS[path] ?? twice(path) ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n';
      if (typeof answer === 'function') {
        socket.off('data', onData);
        answer(socket);
      } else socket.write(answer, 'latin1');
    };
    socket.on('data', onData);
  });
  const { port, close } = await listenTracked(server);
  return {
    port,
    heads,
    closed: (path) => closes.get(path) ?? Promise.reject(new Error(`no request for ${path}`)),
    close,
  };
}

interface StreamResult {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  /** The stream ended with END_STREAM ('end' was emitted). */
  ended: boolean;
  rstCode: number;
}

interface FetchOptions {
  method?: string;
  host?: string;
  /** Written without ending the request (a body still being sent). */
  partialBody?: Buffer;
  /** Called on the first DATA chunk. */
  onData?: (stream: http2.ClientHttp2Stream) => void;
}

/** One stream on `session`: settles when the stream closes, however it closed. */
function fetchOn(session: http2.ClientHttp2Session, path: string, o: FetchOptions = {}) {
  return new Promise<StreamResult>((resolve) => {
    const stream = session.request({
      ':method': o.method ?? 'GET',
      ':path': path,
      ':authority': o.host ?? HOST,
    });
    const out: StreamResult = { status: 0, headers: {}, body: '', ended: false, rstCode: 0 };
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      out.headers = h;
      out.status = Number(h[':status']);
    });
    stream.on('data', (chunk: Buffer) => {
      if (chunks.length === 0) o.onData?.(stream);
      chunks.push(chunk);
    });
    stream.on('end', () => {
      out.ended = true;
    });
    stream.on('error', () => {});
    stream.on('close', () => {
      out.body = Buffer.concat(chunks).toString('latin1');
      out.rstCode = stream.rstCode ?? 0;
      resolve(out);
    });
    if (o.partialBody !== undefined) stream.write(o.partialBody);
    else stream.end();
  });
}

/** An HTTP/2 connection with prior knowledge on the plain listener. */
async function open(port: number, options: http2.ClientSessionOptions = {}) {
  const session = http2.connect(`http://127.0.0.1:${port}`, options);
  const failures: string[] = [];
  session.on('error', (e: Error) => failures.push(`error ${e.message}`));
  session.on('goaway', (code: number) => failures.push(`goaway ${code}`));
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  return { session, failures };
}

/**
 * `path` and /ok concurrently on one connection, then /ok again on it: the hostile answer can cost
 * its own stream at most. Returns the hostile stream's result.
 */
async function isolated(
  port: number,
  path: string,
  o: FetchOptions = {},
  settings: http2.ClientSessionOptions = {},
): Promise<StreamResult> {
  const { session, failures } = await open(port, settings);
  try {
    const [hostile, sibling] = await Promise.all([fetchOn(session, path, o), fetchOn(session, '/ok')]);
    assert.deepEqual([sibling.status, sibling.body, sibling.ended], [200, 'ok', true], `${path}: sibling`);
    const after = await fetchOn(session, '/ok');
    assert.deepEqual([after.status, after.body, after.ended], [200, 'ok', true], `${path}: after`);
    assert.deepEqual(failures, [], `${path}: the connection itself failed`);
    return hostile;
  } finally {
    session.close();
  }
}

/** A result that is a whole response with END_STREAM, or a reset that never said END_STREAM. */
function assertValid(r: StreamResult, label: string): void {
  if (r.ended) assert.ok(r.status >= 200 && r.status <= 599, `${label}: ${JSON.stringify(r)}`);
  else assert.notEqual(r.rstCode, 0, `${label}: closed without END_STREAM and without a reset`);
}

describe('HTTP/2 clients behind a hostile HTTP/1.1 backend', () => {
  let backend: RawBackend;
  let gw: TestGateway;

  before(async () => {
    backend = await startRawBackend();
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({}),
        ...serviceWithEndpoints({ name: 'raw', ports: [backend.port] }),
        ingress({ name: 'raw', host: HOST, paths: [{ path: '/', service: 'raw', port: 80 }] }),
        ingress({
          name: 'stream',
          host: STREAM_HOST,
          annotations: { 'proxy-request-buffering': 'off' },
          paths: [{ path: '/', service: 'raw', port: 80 }],
        }),
        ingress({
          name: 'slow',
          host: SLOW_HOST,
          annotations: { 'proxy-read-timeout': '1' },
          paths: [{ path: '/', service: 'raw', port: 80 }],
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  test('connection-specific fields (Connection and what it names, Keep-Alive, Proxy-Connection, Upgrade, TE, Host) are dropped; names arrive lower-case', async () => {
    const r = await isolated(gw.httpPort, '/hop');
    assert.deepEqual([r.status, r.body, r.ended], [200, 'hop', true]);
    for (const name of ['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'host'])
      assert.equal(r.headers[name], undefined, name);
    assert.equal(r.headers['x-kept'], 'Yes');
    assert.equal(r.headers['x-upper-name'], 'v');
    const chunked = await isolated(gw.httpPort, '/hop-chunked');
    assert.deepEqual([chunked.status, chunked.body, chunked.ended], [200, 'hello world', true]);
    assert.equal(chunked.headers['transfer-encoding'], undefined);
  });

  test('a field named after a pseudo-header, an empty name, NUL or obs-fold: 502, nothing of it relayed', async () => {
    for (const path of ['/pseudo', '/empty-name', '/nul', '/fold']) {
      const r = await isolated(gw.httpPort, path);
      assert.deepEqual([r.status, r.ended], [502, true], `${path}: ${JSON.stringify(r)}`);
      assert.doesNotMatch(r.body, /LEAKED/, path);
    }
  });

  test('a status that is not three digits of 100-599 is 502 or a reset, never relayed as a 2xx', async () => {
    for (const path of ['/status-junk', '/status-long', '/status-099']) {
      const r = await isolated(gw.httpPort, path);
      assertValid(r, path);
      assert.doesNotMatch(r.body, /LEAKED/, path);
      if (r.ended) assert.equal(r.status, 502, path);
    }
    // 700 is three digits (nginx relays it); HTTP/2 clients may get it reset, never as a broken frame.
    assertValid(await isolated(gw.httpPort, '/status-700'), '/status-700');
  });

  test('100, 102 and two 103 Early Hints before the final answer: the final 200 and its body, whole', async () => {
    const r = await isolated(gw.httpPort, '/interim');
    assert.deepEqual([r.status, r.body, r.ended], [200, 'final', true]);
  });

  test('a 101 to a request that asked for no upgrade is 502; the bytes after it never reach the client', async () => {
    const r = await isolated(gw.httpPort, '/101');
    assert.deepEqual([r.status, r.ended], [502, true]);
    assert.doesNotMatch(r.body, /LEAKED/);
  });

  test('body bytes after a 204, a 304 or a HEAD answer are dropped, and never read as the next answer', async () => {
    for (const [path, method, status] of [
      ['/204-body', 'GET', 204],
      ['/304-body', 'GET', 304],
      ['/head-body', 'HEAD', 200],
    ] as const) {
      const r = await isolated(gw.httpPort, path, { method });
      assert.deepEqual([r.status, r.body, r.ended], [status, '', true], path);
    }
    // Every later answer is the one asked for: no POISON from a reused backend connection.
    const { session } = await open(gw.httpPort);
    try {
      const replies = await Promise.all(Array.from({ length: 6 }, () => fetchOn(session, '/ok')));
      for (const r of replies) assert.deepEqual([r.status, r.body], [200, 'ok']);
    } finally {
      session.close();
    }
  });

  test('a body longer than its Content-Length: exactly the declared bytes, then END_STREAM', async () => {
    const r = await isolated(gw.httpPort, '/long-body');
    assert.deepEqual([r.status, r.body, r.ended], [200, 'full', true]);
    assert.equal(r.headers['content-length'], '4');
  });

  test('a body cut short of its Content-Length, a bad chunk mid-way, or a chunked body cut: reset, never END_STREAM', async () => {
    for (const path of ['/short-body', '/bad-chunk', '/chunk-cut']) {
      const r = await isolated(gw.httpPort, path);
      assert.equal(r.ended, false, `${path} ended as if whole: ${JSON.stringify(r)}`);
      assert.notEqual(r.rstCode, 0, path);
      assert.doesNotMatch(r.body, /more/, path);
    }
  });

  test('a close-delimited body (no length, no chunking) is relayed whole and ended', async () => {
    const r = await isolated(gw.httpPort, '/close-delimited');
    assert.deepEqual([r.status, r.body, r.ended], [200, 'until-close', true]);
  });

  test('a response that never ends: the client cancelling its stream frees the backend connection', async () => {
    const r = await isolated(gw.httpPort, '/stall', {
      onData: (stream) => stream.close(http2.constants.NGHTTP2_CANCEL),
    });
    // (node reports a stream it closed itself as ended: only what the backend sees is asserted.)
    assert.equal(r.body.startsWith('started'), true);
    await backend.closed('/stall');
  });

  test('a response that never ends, proxy-read-timeout 1s: the stream is reset, not ended', async () => {
    const r = await isolated(gw.httpPort, '/stall', { host: SLOW_HOST });
    assert.equal(r.status, 200);
    assert.equal(r.ended, false, JSON.stringify(r));
    assert.notEqual(r.rstCode, 0);
  });

  test('a head above the client SETTINGS_MAX_HEADER_LIST_SIZE costs that stream only', async () => {
    const r = await isolated(gw.httpPort, '/big-head', {}, { settings: { maxHeaderListSize: 2048 } });
    assertValid(r, '/big-head');
  });

  test('300 Set-Cookie lines reach the HTTP/2 client as 300 separate fields', async () => {
    const r = await isolated(gw.httpPort, '/cookies', {}, { maxHeaderListPairs: 2000 });
    assert.deepEqual([r.status, r.body, r.ended], [200, 'cookies', true]);
    assert.deepEqual(r.headers['set-cookie'], COOKIES);
  });

  test('a single-value field the backend repeats (Content-Type, X-Content-Type-Options, ETag, Last-Modified): HTTP/2 clients get the answer, not a reset (nginx keeps the first)', async () => {
    const got: Record<string, string> = {};
    for (const [name, value] of [
      ['Content-Type', 'text/plain'],
      ['X-Content-Type-Options', 'nosniff'],
      ['ETag', '"e1"'],
      ['Last-Modified', 'Sat, 05 Dec 2026 10:00:00 GMT'],
    ] as const) {
      const r = await isolated(gw.httpPort, `/twice/${name}/${encodeURIComponent(value)}`);
      assertValid(r, name);
      got[name] = r.ended ? `${r.status} ${r.body}` : `reset ${r.rstCode}`;
    }
    assert.deepEqual(got, {
      'Content-Type': '200 two',
      'X-Content-Type-Options': '200 two',
      ETag: '200 two',
      'Last-Modified': '200 two',
    });
  });

  test('proxy-request-buffering off: an early 413 before the request body is read reaches the client whole, while it is still sending', async () => {
    const r = await isolated(gw.httpPort, '/early', {
      method: 'POST',
      host: STREAM_HOST,
      partialBody: Buffer.alloc(32_768),
    });
    assert.deepEqual([r.status, r.body, r.ended], [413, 'too big!', true], JSON.stringify(r));
  });

  test('nghttp (an independent client) over TLS: dropped fields, a reset stream, and the gateway still serving', async () => {
    const nghttp = requireBinary('nghttp');
    const url = (path: string) => `https://${HOST}:${gw.httpsPort}${path}`;
    // nghttp has no --resolve: the authority is set by header, the connection goes to 127.0.0.1.
    const base = `https://127.0.0.1:${gw.httpsPort}`;
    const result = await runCommand(nghttp, [
      '-v',
      '-H',
      `:authority: ${HOST}`,
      `${base}/hop`,
      `${base}/bad-chunk`,
      `${base}/ok`,
    ]);
    const out = result.stdout;
    assert.match(out, /x-kept: Yes/, url('/hop'));
    assert.doesNotMatch(out, /recv \(stream_id=\d+\) (connection|keep-alive|upgrade|proxy-connection):/);
    assert.match(out, /recv RST_STREAM frame[^\n]*\n[^\n]*error_code=INTERNAL_ERROR/);
    assert.doesNotMatch(out, /recv GOAWAY/);
    assert.match(out, /\nok\n?|ok$/m);
  });
});
