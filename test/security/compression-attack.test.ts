// use-gzip / enable-brotli (src/gateway/compression.ts) attacked from outside: Accept-Encoding forms
// against nginx 1.22's own gzip filter (run beside keepip with ingress-nginx's gzip lines, as a
// differential reference), bodies the backend already encoded, heads that carry no body, truncated
// backends, clients that stop reading or leave, error pages, and bodies keepip must never decode.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type {
  IncomingMessage,
  OutgoingHttpHeaders,
  RequestListener,
  Server,
  ServerResponse,
} from 'node:http';
import http from '../../src/node-http.ts';
import { type default as http2, constants as http2Constants } from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { startTestGateway, type TestGateway, testCertificate } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { connectH2 } from '../helpers/h2-client.ts';
import { decodeChunked, rawExchange, splitResponse } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const HOST = 'zip.example';
const ERRORS_HOST = 'errors.zip.example';
const TYPES = 'text/plain application/json';

/** Text that compresses well, `size` bytes. */
function text(size: number): Buffer {
  const line = Buffer.from('keepip keeps the client address; a compressor loves this line.\n');
  const out = Buffer.alloc(size);
  for (let at = 0; at < size; at += line.length) line.copy(out, at);
  return out;
}

/** 1 MiB of noise: neither gzip's 32 KiB window nor brotli's 512 KiB one finds a repeat in it. */
const NOISE = randomBytes(1 << 20);

/** What /flood did: bytes the kernel took from the backend, and how its response ended. */
interface Flood {
  flushed: number;
  finished: boolean;
  closed: Promise<void>;
}

interface Backend {
  port: number;
  floods: Flood[];
  /** The next /flood request's record, once the backend starts answering it. */
  nextFlood(): Promise<Flood>;
  waiting: ((flood: Flood) => void)[];
  bodies: { encoding: string | undefined; sha: string }[];
  close(): Promise<void>;
}

/** Writes NOISE until `budget` bytes or the gateway goes; the record is pushed at once. */
function flood(res: ServerResponse, budget: number, b: Backend): void {
  let closed = (): void => {};
  const record: Flood = { flushed: 0, finished: false, closed: new Promise((r) => (closed = r)) };
  b.floods.push(record);
  b.waiting.shift()?.(record);
  res.once('finish', () => (record.finished = true));
  res.once('close', closed);
  res.writeHead(200, { 'content-type': 'text/plain' });
  let offered = 0;
  const next = (): void => {
    while (offered < budget && !res.destroyed) {
      offered += NOISE.length;
      const ok = res.write(NOISE, (error) => {
        if (!error) record.flushed += NOISE.length;
      });
      if (!ok) return void res.once('drain', next);
    }
    if (!res.destroyed) res.end();
  };
  next();
}

/** Sends half of a `size`-byte body, then cuts the connection once those bytes are out. */
function cut(res: ServerResponse, declared: boolean, size = 200_000): void {
  const head: OutgoingHttpHeaders = { 'content-type': 'text/plain' };
  if (declared) head['content-length'] = size;
  res.writeHead(200, head);
  res.write(text(size / 2), () => res.socket?.destroy());
}

/** Answers one backend request by its path (the return value means nothing). */
function route(req: IncomingMessage, res: ServerResponse, b: Backend, body: Buffer): unknown {
  const url = new URL(req.url ?? '/', 'http://backend');
  const q = (name: string) => url.searchParams.get(name) ?? '';
  const size = Number(q('size') || '5000');
  const send = (status: number, head: OutgoingHttpHeaders, payload: Buffer) =>
    res.writeHead(status, { ...head, 'content-length': payload.length }).end(payload);
  switch (url.pathname) {
    case '/ct':
      return send(200, { 'content-type': q('t') }, text(size));
    case '/ce': {
      const e = q('e');
      const payload = e.toLowerCase() === 'gzip' ? zlib.gzipSync(text(size)) : text(size);
      return send(200, { 'content-type': 'text/plain', 'content-encoding': e, etag: '"v1"' }, payload);
    }
    case '/vary':
      return send(200, { 'content-type': 'text/plain', vary: q('v') }, text(size));
    case '/status': {
      const status = Number(q('s'));
      const empty = status === 204 || status === 304;
      return send(status, { 'content-type': 'text/html' }, empty ? Buffer.alloc(0) : text(size));
    }
    case '/small-chunked':
      res.writeHead(200, { 'content-type': 'text/plain' });
      return void res.end('tiny');
    case '/cut-length':
      return cut(res, true);
    case '/cut-chunked':
      return cut(res, false);
    case '/flood':
      return flood(res, 256 << 20, b);
    case '/body':
      b.bodies.push({
        encoding: req.headers['content-encoding'],
        sha: createHash('sha256').update(body).digest('hex'),
      });
      return send(200, { 'content-type': 'text/plain' }, text(size));
    default:
      return send(200, { 'content-type': 'text/plain' }, text(size));
  }
}

async function listen(handler: RequestListener): Promise<Server> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function startBackend(): Promise<Backend> {
  const b: Backend = {
    port: 0,
    floods: [],
    waiting: [],
    nextFlood: () => new Promise((resolve) => b.waiting.push(resolve)),
    bodies: [],
    close: async () => {},
  };
  const server = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => route(req, res, b, Buffer.concat(chunks)));
  });
  b.port = (server.address() as AddressInfo).port;
  b.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return b;
}

/** The error backend (default-backend of custom-http-errors): a 3000-byte HTML page with X-Code's status. */
async function startErrorPages(): Promise<Server> {
  return listen((req, res) => {
    const page = text(3000);
    res.writeHead(Number(req.headers['x-code'] ?? 500), {
      'content-type': 'text/html',
      'content-length': page.length,
    });
    res.end(page);
  });
}

interface Answer {
  status: number;
  /** Header lines by lower-case name, in order, repeated ones kept apart. */
  fields: Map<string, string[]>;
  /** The body after its framing (Content-Length or chunked) is removed. */
  body: Buffer;
  raw: Buffer;
}

function parseHead(head: string): Pick<Answer, 'status' | 'fields'> {
  const [statusLine = '', ...lines] = head.split('\r\n');
  const fields = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    fields.set(name, [...(fields.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0), fields };
}

function parseAnswer(raw: Buffer, bodiless = false): Answer {
  const { head, body } = splitResponse(raw);
  const { status, fields } = parseHead(head);
  const chunked = !bodiless && fields.get('transfer-encoding')?.[0]?.toLowerCase() === 'chunked';
  return { status, fields, body: chunked ? decodeChunked(body).data : body, raw };
}

/** Where the chunked body starting at `at` ends (after its last chunk and trailers); -1 when cut short. */
function chunkedEnd(raw: Buffer, at: number): number {
  for (;;) {
    const line = raw.indexOf('\r\n', at);
    if (line < 0) return -1;
    const size = Number.parseInt(raw.toString('latin1', at, line).split(';')[0] ?? '', 16);
    at = line + 2;
    if (size === 0) {
      const end = raw.indexOf('\r\n\r\n', at - 2);
      return end < 0 ? -1 : end + 4;
    }
    at += size + 2;
    if (at > raw.length) return -1;
  }
}

/** The answers on one connection, in order, to requests with `methods` (HEAD, 204 and 304 carry no body). */
function answersOn(raw: Buffer, methods: readonly string[]): Answer[] {
  const out: Answer[] = [];
  let at = 0;
  for (const method of methods) {
    const headEnd = raw.indexOf('\r\n\r\n', at);
    if (headEnd < 0) break;
    const head = parseHead(raw.toString('latin1', at, headEnd));
    const bodiless = method === 'HEAD' || head.status === 204 || head.status === 304;
    const length = Number(head.fields.get('content-length')?.[0] ?? 0);
    const chunked = head.fields.get('transfer-encoding') !== undefined;
    const end = bodiless ? headEnd + 4 : chunked ? chunkedEnd(raw, headEnd + 4) : headEnd + 4 + length;
    if (end < 0 || end > raw.length) break;
    out.push(parseAnswer(raw.subarray(at, end), bodiless));
    at = end;
  }
  assert.equal(at, raw.length, `bytes after the answers: ${raw.subarray(at).toString('latin1')}`);
  return out;
}

/** One GET (or `method`) on its own connection; `extra` are whole header lines. */
async function get(port: number, path: string, extra = '', method = 'GET', host = HOST): Promise<Answer> {
  const payload = `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`;
  const reply = await rawExchange({ host: '127.0.0.1', port, payload });
  assert.ok(reply.closedByServer, `no close after ${path}: ${reply.received.toString('latin1')}`);
  return parseAnswer(reply.received, method === 'HEAD');
}

/** The parts of a head compression decides: status, Content-Encoding, Vary, length framing. */
function shape(a: Answer): string {
  const pick = ['content-encoding', 'vary', 'content-length', 'transfer-encoding', 'etag'];
  const parts = pick.flatMap((name) => (a.fields.get(name) ?? []).map((v) => `${name}: ${v.toLowerCase()}`));
  // Separate field lines of one name (Vary) mean the same in any order.
  return [String(a.status), ...parts.sort()].join(' | ');
}

/** The body the backend sent, from what the client got (decoded once when it says gzip or br). */
function decoded(a: Answer): Buffer {
  const encoding = a.fields.get('content-encoding')?.join(',');
  // A HEAD answer says its encoding and has no body.
  if (a.body.length === 0) return a.body;
  if (encoding === 'gzip') return zlib.gunzipSync(a.body);
  if (encoding === 'br') return zlib.brotliDecompressSync(a.body);
  return a.body;
}

/** `promise`, or a failure naming `what` after `ms` (a bound for a broken gateway, never a window). */
function within<T>(promise: Promise<T>, what: string, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

/** Reads `socket` until a response head has come, then stops reading; resolves with the head. */
function headThenStop(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.pause();
      resolve(got.toString('latin1', 0, end));
    };
    socket.on('data', onData);
  });
}

/** nginx 1.22 with ingress-nginx's gzip lines (nginx.tmpl, use-gzip) proxying unbuffered to `port`; ports: HTTP/1.1, h2 over TLS. */
async function nginxReference(port: number): Promise<RunningNginx> {
  const pair = await testCertificate();
  return startNginx({
    freePorts: 2,
    http: (dir, [plain, tls]) => {
      writeFileSync(join(dir, 'cert.pem'), pair.cert);
      writeFileSync(join(dir, 'key.pem'), pair.key);
      return `
      gzip on; gzip_comp_level 1; gzip_http_version 1.1; gzip_min_length 256;
      gzip_types ${TYPES}; gzip_proxied any; gzip_vary on;
      server {
        listen 127.0.0.1:${plain};
        listen 127.0.0.1:${tls} ssl http2;
        ssl_certificate ${dir}/cert.pem; ssl_certificate_key ${dir}/key.pem;
        location / { proxy_pass http://127.0.0.1:${port}; proxy_buffering off; proxy_http_version 1.1; }
      }`;
    },
    waitFor: (ports) => ports.map((p) => ({ host: '127.0.0.1', port: p })),
  });
}

describe('response compression under attack', () => {
  let backend: Backend;
  let errorPages: Server;
  let gw: TestGateway;
  let ngx: RunningNginx;
  let down: net.Server | undefined;

  before(async () => {
    backend = await startBackend();
    errorPages = await startErrorPages();
    ngx = await nginxReference(backend.port);
    // A backend that is down: it resets every connection. It stays bound for the whole test, so that
    // the kernel cannot give its port to another test's server, which would answer in its place.
    down = net.createServer((socket) => socket.resetAndDestroy());
    await new Promise<void>((resolve) => down!.listen(0, '127.0.0.1', resolve));
    const downPort = (down.address() as AddressInfo).port;
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({
          'use-gzip': 'true',
          'gzip-types': TYPES,
          // Brotli only for a client that names br: the differential rows (no br) see gzip alone.
          'enable-brotli': 'true',
          'brotli-types': TYPES,
          'brotli-min-length': '256',
        }),
        ...serviceWithEndpoints({ name: 'app', ports: [backend.port] }),
        ...serviceWithEndpoints({ name: 'error-pages', ports: [(errorPages.address() as AddressInfo).port] }),
        ingress({ name: 'app', host: HOST, paths: [{ path: '/', service: 'app', port: 80 }] }),
        ...serviceWithEndpoints({ name: 'down', ports: [downPort] }),
        ...serviceWithEndpoints({ name: 'gone', ports: [] }),
        ingress({
          name: 'down',
          host: 'down.zip.example',
          paths: [{ path: '/', service: 'down', port: 80 }],
        }),
        ingress({
          name: 'gone',
          host: 'gone.zip.example',
          paths: [{ path: '/', service: 'gone', port: 80 }],
        }),
        ingress({
          name: 'deny',
          host: 'deny.zip.example',
          paths: [{ path: '/', service: 'app', port: 80 }],
          annotations: { 'allowlist-source-range': '10.0.0.0/8' },
        }),
        ingress({
          name: 'errors',
          host: ERRORS_HOST,
          paths: [{ path: '/', service: 'app', port: 80 }],
          annotations: { 'custom-http-errors': '404', 'default-backend': 'error-pages' },
        }),
      ]),
      // A client that stops reading is let go after a second (nginx's send_timeout, shortened).
      { sendTimeoutMs: 1_000 },
    );
  });

  /** The same request to nginx and to keepip: the heads compression decides, and the bodies decoded. */
  const both = async (path: string, extra: string, method = 'GET') => {
    const [n, k] = [
      await get(ngx.ports[0] ?? 0, path, extra, method),
      await get(gw.httpPort, path, extra, method),
    ];
    // The backend's own encodings pass as they are: compared byte for byte, never decoded here.
    const body = (a: Answer) => (path.startsWith('/ce') ? a.body : decoded(a));
    return { nginx: shape(n), keepip: shape(k), same: shape(n) === shape(k) && body(n).equals(body(k)) };
  };

  test('Accept-Encoding as nginx 1.22 reads it: keepip compresses exactly when nginx does, and the body decodes', async () => {
    const forms = [
      'gzip',
      'GZIP',
      'gzip;q=0.001',
      'gzip;q=0.01',
      'gzip;q=1.000',
      'gzip;Q=0.5',
      'gzip;q=0',
      'gzip; q=0',
      'gzip ;q=0',
      'gzip;q=0.000',
      'gzip;q=00',
      'gzip;q=0.',
      'gzip;q=-1',
      'gzip;q=1e0',
      'gzip;q=1.0001',
      'gzip;q=0.0001',
      'gzip;q= 0',
      'gzip;level=1;q=0',
      'gzip;q=0,gzip',
      'deflate,gzip;q=0.0',
      ',gzip',
      'x-gzip',
      'xgzip, gzip',
      'gzip2',
      '*',
      '*;q=1',
      'identity',
      'identity;q=0',
      'identity;q=0, *;q=0',
      'deflate, gzip;q=0.5, ',
      `${'a, '.repeat(1300)}gzip`,
    ];
    const rows = forms.map((form) => `Accept-Encoding: ${form}\r\n`);
    rows.push('', 'Accept-Encoding: gzip;q=0\r\nAccept-Encoding: gzip\r\n');
    const differ: string[] = [];
    for (const row of rows) {
      const r = await both('/text', row);
      if (!r.same)
        differ.push(`${JSON.stringify(row.slice(0, 60))}\n  nginx:  ${r.nginx}\n  keepip: ${r.keepip}`);
    }
    assert.deepEqual(differ, []);
  });

  test('what is compressed by type, length, status and existing encoding: the same answers as nginx 1.22', async () => {
    const paths = [
      '/ct?t=TEXT/PLAIN',
      '/ct?t=text/plain%3Bcharset%3Dutf-8',
      '/ct?t=text/html',
      '/ct?t=*/*',
      '/ct?t=',
      '/ct?t=image/png',
      '/ct?t=application/json',
      '/ct?t=text/plainx',
      '/small-chunked',
      '/text?size=255',
      '/text?size=256',
      '/ce?e=gzip',
      '/ce?e=GZIP',
      '/ce?e=identity',
      '/ce?e=bogus',
      '/ce?e=br',
      '/status?s=206',
      '/status?s=204',
      '/status?s=304',
      '/status?s=403',
      '/status?s=404',
      '/status?s=201',
      '/status?s=500',
      '/vary?v=Origin',
      '/vary?v=Accept-Encoding',
      '/vary?v=accept-encoding,%20Cookie',
    ];
    const differ: string[] = [];
    const check = async (path: string, extra: string, method = 'GET') => {
      const r = await both(path, extra, method);
      if (!r.same)
        differ.push(
          `${method} ${path} ${JSON.stringify(extra)}\n  nginx:  ${r.nginx}\n  keepip: ${r.keepip}`,
        );
    };
    for (const path of paths) await check(path, 'Accept-Encoding: gzip\r\n');
    await check('/text', 'Accept-Encoding: gzip\r\nRange: bytes=0-9\r\n');
    await check('/text', 'Accept-Encoding: gzip\r\nCache-Control: no-transform\r\n');
    assert.deepEqual(differ, []);
  });

  test('an Accept-Encoding gzip entry with a malformed parameter (gzip;q =0, gzip;level=1, gzip;q) is not taken as acceptance, as nginx declines it', async () => {
    const differ: string[] = [];
    for (const form of ['gzip;q =0', 'gzip; q =0', 'gzip;level=1', 'gzip;q']) {
      const r = await both('/text', `Accept-Encoding: ${form}\r\n`);
      if (!r.same) differ.push(`${form}\n  nginx:  ${r.nginx}\n  keepip: ${r.keepip}`);
    }
    assert.deepEqual(differ, []);
  });

  test('a HEAD answer carries the head a GET gets (Content-Encoding: gzip, Vary, no Content-Length), as nginx 1.22 sends it', async () => {
    const r = await both('/text', 'Accept-Encoding: gzip\r\n', 'HEAD');
    assert.equal(r.keepip, r.nginx);
    const getHead = shape(await get(gw.httpPort, '/text', 'Accept-Encoding: gzip\r\n'));
    assert.equal(r.keepip, getHead.replace(' | transfer-encoding: chunked', ''));
  });

  test('heads without a body (HEAD, 204, 304) next to compressed answers on one kept-alive connection: every answer framed right', async () => {
    const requests: [string, string][] = [
      ['HEAD', '/text'],
      ['GET', '/status?s=204'],
      ['GET', '/status?s=304'],
      ['GET', '/text?size=3000'],
      ['GET', '/small-chunked'],
      ['GET', '/status?s=404'],
      ['GET', '/text?size=4000'],
    ];
    const payload = requests
      .map(([m, p], i) => {
        const close = i === requests.length - 1 ? 'Connection: close\r\n' : '';
        return `${m} ${p} HTTP/1.1\r\nHost: ${HOST}\r\nAccept-Encoding: gzip\r\n${close}\r\n`;
      })
      .join('');
    const reply = await rawExchange({ host: '127.0.0.1', port: gw.httpPort, payload });
    assert.ok(reply.closedByServer);
    const answers = answersOn(
      reply.received,
      requests.map(([m]) => m),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 204, 304, 200, 200, 404, 200],
    );
    for (const i of [1, 2]) assert.equal(answers[i]?.fields.get('content-encoding'), undefined);
    assert.deepEqual(decoded(answers[3]!), text(3000));
    assert.deepEqual(decoded(answers[4]!), Buffer.from('tiny'));
    assert.deepEqual(decoded(answers[5]!), text(5000));
    assert.deepEqual(decoded(answers[6]!), text(4000));
  });

  test('HTTP/2: a body the backend encoded (gzip, GZIP, br, identity, bogus) passes once, byte for byte, with its length and strong ETag', async () => {
    const conn = await connectH2({ port: gw.httpsPort, host: HOST });
    try {
      for (const e of ['gzip', 'GZIP', 'br', 'identity', 'bogus']) {
        const reply = await conn.request(`/ce?e=${e}&size=4000`, {
          headers: { 'accept-encoding': 'gzip, br' },
        });
        const sent = e.toLowerCase() === 'gzip' ? zlib.gzipSync(text(4000)) : text(4000);
        assert.equal(reply.headers['content-encoding'], e, e);
        assert.equal(reply.headers['content-length'], String(sent.length), e);
        assert.equal(reply.headers.etag, '"v1"', e);
        assert.equal(reply.headers.vary, undefined, e);
        assert.deepEqual(reply.body, sent, e);
      }
    } finally {
      await conn.close();
    }
  });

  test('curl --compressed (an independent decoder) reads br over HTTP/2 and gzip over both protocols', async () => {
    const curl = async (args: string[]) => {
      const out = await runCommand(requireBinary('curl'), [
        '-s',
        '-k',
        '-D',
        '-',
        '--compressed',
        '--resolve',
        `${HOST}:${gw.httpsPort}:127.0.0.1`,
        '--resolve',
        `${HOST}:${gw.httpPort}:127.0.0.1`,
        ...args,
      ]);
      assert.equal(out.code, 0, out.stderr);
      const split = out.stdout.indexOf('\r\n\r\n');
      return { head: out.stdout.slice(0, split).toLowerCase(), body: out.stdout.slice(split + 4) };
    };
    const h2br = await curl(['--http2', `https://${HOST}:${gw.httpsPort}/text?size=9000`]);
    assert.match(h2br.head, /^http\/2 200[\s\S]*content-encoding: br/);
    assert.equal(h2br.body, text(9000).toString('latin1'));
    const h2gzip = await curl([
      '--http2',
      '-H',
      'Accept-Encoding: GZip',
      `https://${HOST}:${gw.httpsPort}/text?size=9000`,
    ]);
    assert.match(h2gzip.head, /content-encoding: gzip/);
    assert.equal(h2gzip.body, text(9000).toString('latin1'));
    const h1 = await curl([
      '-H',
      'Accept-Encoding: br;q=0, gzip',
      `http://${HOST}:${gw.httpPort}/text?size=9000`,
    ]);
    assert.match(h1.head, /^http\/1\.1 200[\s\S]*content-encoding: gzip/);
    assert.equal(h1.body, text(9000).toString('latin1'));
  });

  test('HTTP/1.1: a backend that dies mid-body (short of its Content-Length, or chunked without its last chunk): the compressed answer is cut, never completed', async () => {
    for (const path of ['/cut-length', '/cut-chunked']) {
      const reply = await rawExchange({
        host: '127.0.0.1',
        port: gw.httpPort,
        payload: `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nAccept-Encoding: gzip\r\n\r\n`,
      });
      assert.ok(reply.closedByServer, path);
      const headEnd = reply.received.indexOf('\r\n\r\n');
      const head = parseHead(reply.received.toString('latin1', 0, headEnd));
      assert.equal(head.fields.get('content-encoding')?.[0], 'gzip', path);
      assert.equal(chunkedEnd(reply.received, headEnd + 4), -1, `${path}: the last chunk was sent`);
      const curl = await runCommand(requireBinary('curl'), [
        '-s',
        '--compressed',
        '-o',
        '/dev/null',
        '-H',
        `Host: ${HOST}`,
        `http://127.0.0.1:${gw.httpPort}${path}`,
      ]);
      // 18: "transfer closed with outstanding read data remaining".
      assert.equal(curl.code, 18, `${path}: curl ${curl.code} ${curl.stderr}`);
    }
  });

  test('HTTP/2: a backend that dies mid-body ends the stream with RST_STREAM, never END_STREAM, compressed or not (as nginx 1.22)', async () => {
    /** How each cut answer ended for the client, by row; nginx's and keepip's tallies must match. */
    const endings = async (port: number) => {
      const conn = await connectH2({ port, host: HOST });
      const seen: string[] = [];
      try {
        for (let round = 0; round < 8; round += 1)
          for (const [path, ae] of [
            ['/cut-chunked', 'identity'],
            ['/cut-chunked', 'gzip'],
            ['/cut-length', 'gzip'],
          ] as const) {
            const ended = await conn.request(path, { headers: { 'accept-encoding': ae } }).then(
              () => 'END_STREAM',
              () => 'reset',
            );
            if (round === 0 || ended !== 'reset') seen.push(`${path} ${ae}: ${ended}`);
          }
      } finally {
        await conn.close();
      }
      return [...new Set(seen)].sort();
    };
    const nginx = await endings(ngx.ports[1] ?? 0);
    assert.ok(
      nginx.every((row) => row.endsWith('reset')),
      nginx.join('\n'),
    );
    assert.deepEqual(await endings(gw.httpsPort), nginx);
  });

  test('HTTP/1.1: a client that stops reading a compressed stream holds the backend back (bounded bytes), then is let go; nothing left in flight', async () => {
    const next = backend.nextFlood();
    const socket = net.connect({ host: '127.0.0.1', port: gw.httpPort });
    socket.on('error', () => {});
    socket.write(`GET /flood?id=h1-stall HTTP/1.1\r\nHost: ${HOST}\r\nAccept-Encoding: gzip\r\n\r\n`);
    try {
      // The head is read (it comes with the first compressed piece); then nothing more.
      const head = await within(headThenStop(socket), 'response head');
      assert.match(head, /\r\ncontent-encoding: gzip\r\n/i);
      const flood = await within(next, 'flood request');
      await within(flood.closed, 'end of the stalled answer');
      assert.equal(flood.finished, false, 'the backend wrote its whole 256 MiB into the gateway');
      assert.ok(flood.flushed < 64 << 20, `the backend got ${flood.flushed} bytes out`);
      await gw.access.waitFor(/GET \/flood\?id=h1-stall /);
      assert.equal(gw.gateway.snapshot().inflight, 0);
    } finally {
      socket.destroy();
    }
  });

  test('HTTP/2: a stream whose reader stops (no WINDOW_UPDATE) holds the backend back, then is reset; nothing left in flight', async () => {
    const next = backend.nextFlood();
    const conn = await connectH2({ port: gw.httpsPort, host: HOST });
    try {
      const stream = conn.session.request({
        ':path': '/flood?id=h2-stall',
        ':authority': HOST,
        'accept-encoding': 'gzip',
      });
      stream.on('error', () => {});
      const head = await within(
        new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve)),
        'response head',
      );
      assert.equal(head['content-encoding'], 'gzip');
      const flood = await within(next, 'flood request');
      await within(flood.closed, 'end of the stalled stream');
      assert.equal(flood.finished, false, 'the backend wrote its whole 256 MiB into the gateway');
      assert.ok(flood.flushed < 64 << 20, `the backend got ${flood.flushed} bytes out`);
      await gw.access.waitFor(/GET \/flood\?id=h2-stall /);
      assert.equal(gw.gateway.snapshot().inflight, 0);
    } finally {
      conn.session.destroy();
    }
  });

  test('a client that leaves mid-stream (HTTP/1.1 close, HTTP/2 RST_STREAM): the backend request is stopped, the exchange logged, nothing left in flight', async () => {
    const h1Next = backend.nextFlood();
    const socket = net.connect({ host: '127.0.0.1', port: gw.httpPort });
    socket.on('error', () => {});
    socket.write(`GET /flood?id=h1-leave HTTP/1.1\r\nHost: ${HOST}\r\nAccept-Encoding: gzip\r\n\r\n`);
    assert.match(await within(headThenStop(socket), 'response head'), /content-encoding: gzip/i);
    socket.destroy();
    const h1 = await within(h1Next, 'flood request');
    await within(h1.closed, 'backend request stopped');
    assert.equal(h1.finished, false);
    await gw.access.waitFor(/GET \/flood\?id=h1-leave HTTP\/1\.1" 200 /);

    const h2Next = backend.nextFlood();
    const conn = await connectH2({ port: gw.httpsPort, host: HOST });
    try {
      const stream = conn.session.request({
        ':path': '/flood?id=h2-leave',
        ':authority': HOST,
        'accept-encoding': 'br',
      });
      stream.on('error', () => {});
      const head = await within(
        new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve)),
        'response head',
      );
      assert.equal(head['content-encoding'], 'br');
      stream.close(http2Constants.NGHTTP2_CANCEL);
      const h2 = await within(h2Next, 'flood request');
      await within(h2.closed, 'backend request stopped');
      assert.equal(h2.finished, false);
      await gw.access.waitFor(/GET \/flood\?id=h2-leave HTTP\/2\.0" 200 /);
      assert.equal(gw.gateway.snapshot().inflight, 0);
    } finally {
      await conn.close();
    }
  });

  test("the gateway's own answers (502 backend down, 503 no endpoints, 403 allowlist) go out as they are, framed by their length", async () => {
    for (const [host, status] of [
      ['down.zip.example', 502],
      ['gone.zip.example', 503],
      ['deny.zip.example', 403],
    ] as const) {
      const a = await get(gw.httpPort, '/', 'Accept-Encoding: gzip, br\r\n', 'GET', host);
      assert.equal(a.status, status, host);
      assert.equal(a.fields.get('content-encoding'), undefined, host);
      assert.equal(Number(a.fields.get('content-length')?.[0]), a.body.length, host);
      assert.match(a.body.toString('latin1'), /<html>/, host);
    }
  });

  test("custom-http-errors: the error backend's page is compressed once, decodes whole, and $body_bytes_sent is what the client got after the head", async () => {
    const a = await get(
      gw.httpPort,
      '/status?s=404&id=intercepted',
      'Accept-Encoding: gzip\r\n',
      'GET',
      ERRORS_HOST,
    );
    assert.equal(a.status, 404);
    assert.deepEqual(a.fields.get('content-encoding'), ['gzip']);
    assert.deepEqual(zlib.gunzipSync(a.body), text(3000));
    const line = await gw.access.waitFor(/GET \/status\?s=404&id=intercepted HTTP\/1\.1" 404 \d+ /);
    // Compressed bytes with their chunk framing, as nginx counts them.
    const afterHead = a.raw.length - (a.raw.indexOf('\r\n\r\n') + 4);
    assert.equal(Number(/" 404 (\d+) /.exec(line)?.[1]), afterHead, line);
  });

  test('keepip never decodes a body: a gzip bomb sent as the request body, or a gzip answer to a client that refuses gzip, passes byte for byte', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(64 << 20), { level: 9 });
    const post = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      payload: Buffer.concat([
        Buffer.from(
          `POST /body HTTP/1.1\r\nHost: ${HOST}\r\nContent-Encoding: gzip\r\nContent-Type: text/plain\r\n` +
            `Content-Length: ${bomb.length}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n`,
        ),
        bomb,
      ]),
    });
    assert.equal(parseAnswer(post.received).status, 200);
    assert.deepEqual(backend.bodies.at(-1), {
      encoding: 'gzip',
      sha: createHash('sha256').update(bomb).digest('hex'),
    });
    for (const refusal of ['identity', 'gzip;q=0', '']) {
      const a = await get(
        gw.httpPort,
        '/ce?e=gzip&size=3000',
        refusal ? `Accept-Encoding: ${refusal}\r\n` : '',
      );
      assert.deepEqual(a.fields.get('content-encoding'), ['gzip'], refusal);
      assert.deepEqual(a.body, zlib.gzipSync(text(3000)), refusal);
    }
  });

  after(async () => {
    await gw?.close();
    await ngx?.stop();
    await backend?.close();
    errorPages?.closeAllConnections();
    await new Promise<void>((resolve) => (errorPages ? errorPages.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (down ? down.close(() => resolve()) : resolve()));
  });
});
