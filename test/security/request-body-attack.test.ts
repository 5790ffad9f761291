// Attacks on buffered request bodies (proxy-request-buffering on, the default): what a client can make
// the gateway hold in memory and on disk, and whether every way a request can end (answered, refused
// 413 mid-stream, aborted, reset over HTTP/2, timed out, replayed to a failing backend) gives it all
// back. Bodies at the proxy-body-size boundary by every framing (Content-Length, chunked with leading
// zeros, extensions and trailers, HTTP/2 without a length), chunk sizes that overflow,
// and size values that do not parse. What is observed: the gateway's body gauges
// (memory, temporary files, their bytes), this process's descriptors on the temporary directory (the
// gateway runs in-process, its files are unlinked) and what the backends received.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import http from '../../src/node-http.ts';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createGatewayMetrics } from '../../src/gateway/metrics.ts';
import { openRaw } from '../helpers/net.ts';
import {
  configMapYaml,
  ingressYaml,
  type SecurityGateway,
  serviceYaml,
  startSecurityGateway,
  topologyFromYaml,
} from './helpers.ts';
import { openFilesIn, pollUntil } from '../helpers/descriptors.ts';
import { registrySum } from '../helpers/metrics.ts';

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

interface Seen {
  url: string;
  contentLength: string | null;
  transferEncoding: string | null;
  trailer: string | null;
  bytes: number;
  sha: string;
}

interface Backend {
  port: number;
  connections: number;
  /** URLs whose head arrived. */
  started: string[];
  /** Requests read whole. */
  seen: Seen[];
  /** URLs whose body was cut (the gateway closed the connection). */
  aborted: string[];
  /** Reads on a request held by 'pause-after-head'. */
  resume(url: string): void;
  close(): Promise<void>;
}

type Mode = 'answer' | 'close-after-body' | 'pause-after-head' | 'hold';

/** A backend that records what reached it; `mode` decides what it does with a request. */
async function startBackend(mode: Mode): Promise<Backend> {
  const paused = new Map<string, () => void>();
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    backend.started.push(url);
    if (mode === 'pause-after-head') {
      // The body waits in the socket buffers until the test resumes this request.
      req.pause();
      paused.set(url, () => req.resume());
    }
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    const cut = (): void => {
      if (!backend.aborted.includes(url)) backend.aborted.push(url);
    };
    req.once('error', cut);
    req.once('aborted', cut);
    req.once('end', () => {
      backend.seen.push({
        url,
        contentLength: req.headers['content-length'] ?? null,
        transferEncoding: req.headers['transfer-encoding'] ?? null,
        trailer: req.headers['x-trailer'] === undefined ? null : String(req.headers['x-trailer']),
        bytes,
        sha: hash.digest('hex'),
      });
      if (mode === 'close-after-body') return void req.socket.destroy();
      if (mode === 'hold') return; // read whole, never answered
      const text = `got ${bytes}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': text.length }).end(text);
    });
  });
  server.on('connection', (socket) => {
    backend.connections += 1;
    socket.on('error', () => {});
  });
  const backend: Backend = {
    port: 0,
    connections: 0,
    started: [],
    seen: [],
    aborted: [],
    resume: (url) => paused.get(url)?.(),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend.port = (server.address() as AddressInfo).port;
  return backend;
}

/** The three body gauges: bytes in memory, temporary files open, bytes in them. */
async function held(gw: SecurityGateway): Promise<[number, number, number]> {
  return [
    await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_buffer_bytes'),
    await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_temp_files'),
    await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_temp_file_bytes'),
  ];
}

/** Nothing held: the gauges back to zero and no descriptor left on the temporary directory. */
async function allReleased(gw: SecurityGateway, dir: string): Promise<void> {
  await pollUntil(
    'every buffered body is released',
    async () => (await held(gw)).every((v) => v === 0) && openFilesIn(dir).length === 0,
  );
  assert.deepEqual(readdirSync(dir), [], 'no temporary file is ever left with a name');
}

const statusOf = (raw: Buffer | string): number =>
  Number(/^HTTP\/1\.1 (\d{3})/.exec(raw.toString())?.[1] ?? 0);

const head = (method: string, path: string, framing: string): string =>
  `${method} ${path} HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n${framing}\r\n`;

/** A whole final response (after any 1xx) is in `raw`. */
function completeResponse(raw: Buffer): boolean {
  const text = raw.toString('latin1').replace(/^(HTTP\/1\.1 1\d\d [^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, '');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const length = /content-length: (\d+)/i.exec(text.slice(0, end));
  return length !== null && text.length >= end + 4 + Number(length[1]);
}

interface H2Outcome {
  status: number;
  error: string | null;
}

/** One HTTP/2 (prior knowledge, cleartext) POST whose body is written in `pieces`, without END_STREAM until the last. */
async function h2Post(
  port: number,
  path: string,
  pieces: Buffer[],
  headers: Record<string, string> = {},
): Promise<H2Outcome> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  try {
    return await new Promise<H2Outcome>((resolve) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': path,
        ':authority': 'app.example.com',
        ...headers,
      });
      let status = 0;
      stream.on('response', (h) => {
        status = Number(h[':status']);
      });
      stream.on('error', (error: Error) => resolve({ status, error: error.message }));
      stream.on('close', () => resolve({ status, error: null }));
      stream.resume();
      for (const piece of pieces) stream.write(piece);
      stream.end();
    });
  } finally {
    session.destroy();
  }
}

/** A body of `length` bytes that differs at every position (so a reordering or a gap shows in its hash). */
function patterned(length: number, seed = 0): Buffer {
  const data = Buffer.alloc(length);
  for (let i = 0; i < length; i += 1) data[i] = (i * 7 + seed) % 251;
  return data;
}

/** One request on a fresh connection: everything the gateway sent up to its whole final answer. */
async function ask(port: number, payload: Buffer | string): Promise<string> {
  const conn = await openRaw({ host: '127.0.0.1', port });
  try {
    conn.socket.write(payload);
    return (await conn.until(completeResponse)).toString('latin1');
  } finally {
    conn.destroy();
  }
}

/** A chunked body: one chunk per piece, each size line given as `sizeLine(size)`. */
function chunked(pieces: Buffer[], sizeLine: (size: number) => string, trailers = ''): Buffer {
  const parts: Buffer[] = [];
  for (const piece of pieces)
    parts.push(Buffer.from(`${sizeLine(piece.length)}\r\n`), piece, Buffer.from('\r\n'));
  parts.push(Buffer.from(`0\r\n${trailers}\r\n`));
  return Buffer.concat(parts);
}

const MEMORY_CAP = 4 * 1024 * 1024;

/** Peaks of the body gauges as the gateway reports them, and the modes of the files it opened. */
const peaks = { memory: 0, files: 0, fileBytes: 0, modes: new Set<number>() };

describe('buffered request bodies under attack', () => {
  const tempDir = mkdtempSync(join(tmpdir(), 'keepip-body-attack-'));
  const backends: Record<string, Backend> = {};
  let gw: SecurityGateway;

  before(async () => {
    backends.app = await startBackend('answer');
    backends.closer1 = await startBackend('close-after-body');
    backends.closer2 = await startBackend('close-after-body');
    backends.stall = await startBackend('pause-after-head');
    backends.hold1 = await startBackend('hold');
    backends.hold2 = await startBackend('hold');
    const yaml = [
      configMapYaml({ 'proxy-body-size': '1k' }),
      serviceYaml('app', backends.app.port),
      serviceYaml('retry', [backends.closer1.port, backends.closer2.port]),
      serviceYaml('stall', backends.stall.port),
      serviceYaml('hold', [backends.hold1.port, backends.hold2.port]),
      ingressYaml('exact', '/exact', 'app', { 'proxy-body-size': '1024' }),
      ingressYaml('streamed', '/streamed', 'app', {
        'proxy-body-size': '1024',
        'proxy-request-buffering': 'off',
      }),
      ingressYaml('bad-size', '/bad-size', 'app', { 'proxy-body-size': '-1' }),
      ingressYaml('bad-buffer', '/bad-buffer', 'app', {
        'proxy-body-size': '64k',
        'client-body-buffer-size': '1g',
      }),
      ingressYaml('spill', '/spill', 'app', { 'proxy-body-size': '64k', 'client-body-buffer-size': '1k' }),
      ingressYaml('h2', '/h2', 'app', { 'proxy-body-size': '2k', 'client-body-buffer-size': '1k' }),
      ingressYaml('unlimited', '/unlimited', 'app', {
        'proxy-body-size': '0',
        'client-body-buffer-size': '1024m',
      }),
      ingressYaml('retry', '/retry', 'retry', { 'proxy-body-size': '1m', 'client-body-buffer-size': '1k' }),
      ingressYaml('hold', '/hold', 'hold', { 'proxy-body-size': '64k', 'client-body-buffer-size': '1k' }),
      ingressYaml('stall', '/stall', 'stall', { 'proxy-body-size': '64m', 'client-body-buffer-size': '1k' }),
    ].join('\n');
    const metrics = createGatewayMetrics();
    const usage = metrics.bodyBufferUsage.bind(metrics);
    metrics.bodyBufferUsage = (memory, files, fileBytes) => {
      if (files > peaks.files) for (const f of openFilesIn(tempDir)) peaks.modes.add(f.mode);
      peaks.memory = Math.max(peaks.memory, memory);
      peaks.files = Math.max(peaks.files, files);
      peaks.fileBytes = Math.max(peaks.fileBytes, fileBytes);
      usage(memory, files, fileBytes);
    };
    gw = await startSecurityGateway(topologyFromYaml(yaml), {
      tempDir,
      metrics,
      requestBodyMemoryBytes: MEMORY_CAP,
    });
  });

  after(async () => {
    await gw.close();
    for (const backend of Object.values(backends)) await backend.close();
    rmSync(tempDir, { recursive: true, force: true });
  });

  test('a body of exactly proxy-body-size passes by Content-Length and by chunked (leading zeros, extensions, trailers); one byte more is 413', async () => {
    const body = patterned(1024);
    const halves = [body.subarray(0, 512), body.subarray(512)];
    const atLimit = [
      Buffer.concat([Buffer.from(head('POST', '/exact/cl', 'Content-Length: 1024\r\n')), body]),
      Buffer.concat([
        Buffer.from(head('POST', '/exact/chunked', 'Transfer-Encoding: chunked\r\n')),
        chunked(halves, (n) => `${n.toString(16).padStart(13, '0')};ext=1;q="a b"`, 'X-Trailer: t\r\n'),
      ]),
    ];
    for (const payload of atLimit) assert.equal(statusOf(await ask(gw.port, payload)), 200);
    assert.deepEqual(
      backends.app!.seen.map((s) => [s.url, s.contentLength, s.transferEncoding, s.trailer, s.sha]),
      [
        ['/exact/cl', '1024', null, null, sha(body)],
        ['/exact/chunked', '1024', null, null, sha(body)],
      ],
      'each reached the backend whole, with Content-Length, the trailer dropped',
    );
    const over = Buffer.concat([body, Buffer.from('!')]);
    const overLimit = [
      Buffer.concat([Buffer.from(head('POST', '/exact/cl-over', 'Content-Length: 1025\r\n')), over]),
      Buffer.concat([
        Buffer.from(head('POST', '/exact/chunked-over', 'Transfer-Encoding: chunked\r\n')),
        chunked([over.subarray(0, 1024), over.subarray(1024)], (n) => `00${n.toString(16)}`),
      ]),
    ];
    for (const payload of overLimit) assert.equal(statusOf(await ask(gw.port, payload)), 413);
    // Expect: 100-continue with a length over the limit: 413 at once, never a 100 (nginx's find-config check).
    const expect = await ask(
      gw.port,
      head('POST', '/exact/expect', 'Expect: 100-continue\r\nContent-Length: 1025\r\n'),
    );
    assert.equal(statusOf(expect), 413);
    assert.doesNotMatch(expect, /100 Continue/);
    assert.equal(backends.app!.started.filter((u) => /over|expect/.test(u)).length, 0);
    await allReleased(gw, tempDir);
  });

  test('chunk sizes of more than 13 hex digits (leading zeros or an overflow) are 400; nothing reaches the backend', async () => {
    for (const size of ['00000000000001', '10000000000001', 'ffffffffffffffffff']) {
      const reply = await ask(
        gw.port,
        `${head('POST', `/exact/hex-${size.length}`, 'Transfer-Encoding: chunked\r\n')}${size}\r\nx\r\n0\r\n\r\n`,
      );
      assert.equal(statusOf(reply), 400, size);
    }
    assert.equal(backends.app!.started.filter((u) => u.includes('/hex-')).length, 0);
    await allReleased(gw, tempDir);
  });

  test('a chunk-size line that announces more than proxy-body-size is 413 at once, before its data (as nginx), buffered or not', async () => {
    // nginx 1.22: "client intended to send too large chunked body: 0+4503599627370495 bytes", 413 on the
    // size line itself; only 100 bytes of the chunk follow here, and the connection stays open.
    for (const path of ['/exact/announce', '/exact/announce-line-only']) {
      const data = path.endsWith('only') ? '' : 'x'.repeat(100);
      const reply = await ask(
        gw.port,
        `${head('POST', path, 'Transfer-Encoding: chunked\r\n')}fffffffffffff\r\n${data}`,
      );
      assert.equal(statusOf(reply), 413, path);
    }
    // A total over the limit across chunks, each under it: 413 when the size line passes the limit.
    const second = `${head('POST', '/exact/announce-two', 'Transfer-Encoding: chunked\r\n')}200\r\n${'y'.repeat(512)}\r\n201\r\n`;
    assert.equal(statusOf(await ask(gw.port, second)), 413);
    assert.equal(backends.app!.started.filter((u) => u.includes('/announce')).length, 0);
    // Streamed (proxy-request-buffering off): the same 413, the announced bytes never sent upstream.
    const streamed = `${head('POST', '/streamed/big', 'Transfer-Encoding: chunked\r\n')}fffffffffffff\r\n`;
    assert.equal(statusOf(await ask(gw.port, streamed)), 413);
    await allReleased(gw, tempDir);
  });

  test('an invalid proxy-body-size annotation falls back to the ConfigMap limit, never unlimited; an invalid client-body-buffer-size to 8k, never 1 GiB of memory', async () => {
    const declared = await ask(
      gw.port,
      `${head('POST', '/bad-size/x', 'Content-Length: 2000\r\n')}${'a'.repeat(2000)}`,
    );
    assert.equal(statusOf(declared), 413, '"-1" is not "no limit": the ConfigMap\'s 1k applies');
    const chunkedOver = await ask(
      gw.port,
      Buffer.concat([
        Buffer.from(head('POST', '/bad-size/chunked', 'Transfer-Encoding: chunked\r\n')),
        chunked([Buffer.alloc(1000), Buffer.alloc(1000)], (n) => n.toString(16)),
      ]),
    );
    assert.equal(statusOf(chunkedOver), 413);
    const body = patterned(16 * 1024, 3);
    const reply = await ask(
      gw.port,
      Buffer.concat([Buffer.from(head('POST', '/bad-buffer/x', `Content-Length: ${body.length}\r\n`)), body]),
    );
    assert.equal(statusOf(reply), 200);
    // "1g" is not a client-body-buffer-size ingress-nginx writes: 8k stays in memory, the rest in a file.
    await gw.errors.waitFor(/a client request body is buffered to a temporary file .*"POST \/bad-buffer\/x/);
    assert.equal(backends.app!.seen.find((s) => s.url === '/bad-buffer/x')?.sha, sha(body));
    await allReleased(gw, tempDir);
  });

  test('fifty 2 MiB uploads at once, proxy-body-size 0 and client-body-buffer-size 1024m: memory stays under the cap, the rest in 0600 files, all released', async () => {
    const size = 2 * 1024 * 1024;
    const count = 50;
    peaks.memory = 0;
    peaks.files = 0;
    peaks.fileBytes = 0;
    peaks.modes.clear();
    const replies = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const conn = await openRaw({ host: '127.0.0.1', port: gw.port });
        conn.socket.write(head('PUT', `/unlimited/${i}`, `Content-Length: ${size}\r\n`));
        conn.socket.write(Buffer.alloc(size, i + 1));
        const raw = await conn.until(completeResponse, 60_000);
        conn.destroy();
        return raw.toString('latin1');
      }),
    );
    assert.deepEqual(replies.map(statusOf), Array(count).fill(200));
    for (let i = 0; i < count; i += 1) {
      const seen = backends.app!.seen.find((s) => s.url === `/unlimited/${i}`);
      assert.deepEqual(
        [seen?.contentLength, seen?.sha],
        [String(size), sha(Buffer.alloc(size, i + 1))],
        `body ${i}`,
      );
    }
    assert.ok(
      peaks.memory <= MEMORY_CAP,
      `memory peaked at ${peaks.memory} bytes, over the cap ${MEMORY_CAP}`,
    );
    assert.ok(peaks.files >= 1, 'bodies past the cap went to files');
    assert.ok(peaks.fileBytes <= count * size);
    assert.deepEqual([...peaks.modes], [0o600], 'every temporary file is 0600');
    await allReleased(gw, tempDir);
  });

  test('HTTP/2 without content-length: exactly proxy-body-size passes, with Content-Length; one byte more, already in a file, is 413 and the file is closed', async () => {
    const body = patterned(2048, 5);
    const pieces = [body.subarray(0, 1024), body.subarray(1024)];
    assert.deepEqual(await h2Post(gw.port, '/h2/at', pieces), { status: 200, error: null });
    const seen = backends.app!.seen.find((s) => s.url === '/h2/at');
    assert.deepEqual([seen?.contentLength, seen?.transferEncoding, seen?.sha], ['2048', null, sha(body)]);
    const over = await h2Post(gw.port, '/h2/over', [...pieces, Buffer.from('!')]);
    assert.equal(over.status, 413);
    await gw.errors.waitFor(/too large chunked body: 2049 bytes.*"POST \/h2\/over/);
    // The same once the body is known to be in a file: the spill, then the byte too many.
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    session.on('error', () => {});
    const stream = session.request({
      ':method': 'POST',
      ':path': '/h2/spilled',
      ':authority': 'app.example.com',
    });
    stream.on('error', () => {});
    const status = new Promise<number>((resolve) =>
      stream.on('response', (h) => resolve(Number(h[':status']))),
    );
    stream.write(Buffer.alloc(1500, 0x64));
    await gw.errors.waitFor(
      /a client request body is buffered to a temporary file .*"POST \/h2\/spilled HTTP\/2\.0"/,
    );
    stream.end(Buffer.alloc(549, 0x64));
    assert.equal(await status, 413);
    session.destroy();
    assert.equal(
      backends.app!.started.some((u) => u === '/h2/over' || u === '/h2/spilled'),
      false,
    );
    await allReleased(gw, tempDir);
  });

  test('HTTP/2: a content-length the DATA frames contradict never reaches the backend', async () => {
    const short = await h2Post(gw.port, '/h2/lie-short', [Buffer.alloc(20, 0x61)], {
      'content-length': '10',
    });
    const long = await h2Post(gw.port, '/h2/lie-long', [Buffer.alloc(20, 0x61)], { 'content-length': '30' });
    for (const outcome of [short, long]) assert.notEqual(outcome.status, 200, JSON.stringify(outcome));
    assert.deepEqual(
      backends.app!.started.filter((u) => u.startsWith('/h2/lie')),
      [],
      'a body of another length than declared is refused at the edge (RFC 9113 8.1.1)',
    );
    await allReleased(gw, tempDir);
  });

  test('HTTP/2: a stream reset mid-body after its spill leaves no file, no memory and nothing at the backend', async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    session.on('error', () => {});
    const stream = session.request({
      ':method': 'POST',
      ':path': '/h2/reset',
      ':authority': 'app.example.com',
    });
    stream.on('error', () => {});
    stream.write(Buffer.alloc(1500, 0x62));
    await gw.errors.waitFor(
      /a client request body is buffered to a temporary file .*"POST \/h2\/reset HTTP\/2\.0"/,
    );
    assert.equal(openFilesIn(tempDir).length, 1);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await allReleased(gw, tempDir);
    session.destroy();
    assert.equal(backends.app!.started.includes('/h2/reset'), false);
  });

  test('a spilled body replayed to a backend that stops reading: the client aborting closes the file and cuts the upstream body', async () => {
    // Larger than what the loopback socket buffers take: the replay from the file is still under way.
    const size = 32 * 1024 * 1024;
    const conn = await openRaw({ host: '127.0.0.1', port: gw.port });
    conn.socket.write(head('POST', '/stall/abort', `Content-Length: ${size}\r\n`));
    conn.socket.write(Buffer.alloc(size, 0x63));
    await pollUntil('the backend has the request head', () =>
      backends.stall!.started.includes('/stall/abort'),
    );
    assert.equal((await held(gw))[1], 1, 'the body waits in its file while it is replayed');
    conn.destroy();
    await allReleased(gw, tempDir);
    // Now the backend reads: it must find the body cut short, never a complete request.
    backends.stall!.resume('/stall/abort');
    await pollUntil('the backend read to the end of what it got', () =>
      [...backends.stall!.aborted, ...backends.stall!.seen.map((s) => s.url)].includes('/stall/abort'),
    );
    assert.deepEqual(backends.stall!.aborted, ['/stall/abort']);
    assert.deepEqual(backends.stall!.seen, []);
  });

  test('a spilled PUT replayed to each endpoint after each took it whole and failed: 502, every copy intact, the file closed', async () => {
    const body = patterned(64 * 1024, 9);
    const reply = await ask(
      gw.port,
      Buffer.concat([Buffer.from(head('PUT', '/retry/put', `Content-Length: ${body.length}\r\n`)), body]),
    );
    assert.equal(statusOf(reply), 502);
    for (const name of ['closer1', 'closer2']) {
      const copies = backends[name]!.seen.filter((s) => s.url === '/retry/put');
      assert.ok(copies.length >= 1, `${name} was tried`);
      for (const copy of copies)
        assert.deepEqual([copy.contentLength, copy.sha], [String(body.length), sha(body)]);
    }
    await allReleased(gw, tempDir);
  });

  test('twenty pipelined spilling POSTs on one keep-alive connection: answered in order, one file at a time, none left', async () => {
    const count = 20;
    const size = 4096;
    const requests = Array.from({ length: count }, (_, i) =>
      Buffer.concat([
        Buffer.from(`POST /spill/p${i} HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: ${size}\r\n\r\n`),
        patterned(size, i),
      ]),
    );
    peaks.files = 0;
    const conn = await openRaw({ host: '127.0.0.1', port: gw.port });
    conn.socket.write(Buffer.concat(requests));
    const answers = (raw: Buffer) => raw.toString('latin1').match(/HTTP\/1\.1 \d{3}[\s\S]*?got \d+/g) ?? [];
    const raw = await conn.until((r) => answers(r).length >= count);
    conn.destroy();
    assert.deepEqual(
      answers(raw).map((a) => [statusOf(a), /got (\d+)$/.exec(a)?.[1]]),
      Array(count).fill([200, String(size)]),
    );
    const order = backends.app!.seen.filter((s) => s.url.startsWith('/spill/p'));
    assert.deepEqual(
      order.map((s) => [s.url, s.sha]),
      requests.map((_, i) => [`/spill/p${i}`, sha(patterned(size, i))]),
    );
    assert.equal(peaks.files, 1, 'a kept-alive connection holds at most the file of its current request');
    await allReleased(gw, tempDir);
  });

  test('a client that leaves while the backend works on its buffered PUT: logged 499 with one upstream, never sent again to the next endpoint', async () => {
    for (const [path, size] of [
      ['/hold/put-memory', 100],
      ['/hold/put-file', 4096],
    ] as const) {
      const conn = await openRaw({ host: '127.0.0.1', port: gw.port });
      conn.socket.write(`${head('PUT', path, `Content-Length: ${size}\r\n`)}${'p'.repeat(size)}`);
      await pollUntil(`a backend has ${path} whole`, () =>
        [...backends.hold1!.seen, ...backends.hold2!.seen].some((s) => s.url === path),
      );
      conn.destroy();
      const line = await gw.access.waitFor(new RegExp(`"PUT ${path} HTTP/1\\.1" `));
      const upstreams = line.slice(line.indexOf('[default-hold-80]')).match(/127\.0\.0\.1:\d+/g) ?? [];
      // nginx (proxy_ignore_client_abort off): `499 <one address> -`; the request is not tried elsewhere.
      assert.match(line, new RegExp(`"PUT ${path} HTTP/1\\.1" 499 `), line);
      assert.equal(
        upstreams.length,
        1,
        `the request went on to another endpoint after the client left: ${line}`,
      );
      await allReleased(gw, tempDir);
    }
  });

  test('a client that leaves while the backend works on its POST is logged 499, not a 502 blamed on the backend', async () => {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.port });
    conn.socket.write(`${head('POST', '/hold/post', 'Content-Length: 4096\r\n')}${'q'.repeat(4096)}`);
    await pollUntil('a backend has the POST whole', () =>
      [...backends.hold1!.seen, ...backends.hold2!.seen].some((s) => s.url === '/hold/post'),
    );
    conn.destroy();
    const line = await gw.access.waitFor(/"POST \/hold\/post HTTP\/1\.1" /);
    assert.match(
      line,
      /"POST \/hold\/post HTTP\/1\.1" 499 0 /,
      `nginx logs 499, no body sent, upstream_status "-": ${line}`,
    );
    assert.doesNotMatch(
      line,
      / 502 [0-9a-f]{32}$/,
      'the upstream status is not a 502 the backend never sent',
    );
    await allReleased(gw, tempDir);
  });
});

describe('buffered request bodies: client-body-timeout', () => {
  const tempDir = mkdtempSync(join(tmpdir(), 'keepip-body-timeout-'));
  let backend: Backend;
  let gw: SecurityGateway;

  before(async () => {
    backend = await startBackend('answer');
    const yaml = [
      configMapYaml({ 'client-body-timeout': '1' }),
      serviceYaml('app', backend.port),
      ingressYaml('slow', '/slow', 'app', { 'client-body-buffer-size': '1k' }),
    ].join('\n');
    gw = await startSecurityGateway(topologyFromYaml(yaml), { tempDir });
  });

  after(async () => {
    await gw.close();
    await backend.close();
    rmSync(tempDir, { recursive: true, force: true });
  });

  test('a spilled body sent a byte at a time, then stalled: 408 after client-body-timeout, the file closed, no backend', async () => {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.port });
    conn.socket.write(head('POST', '/slow/trickle', 'Content-Length: 8192\r\n'));
    conn.socket.write(Buffer.alloc(2048, 0x74));
    await gw.errors.waitFor(/a client request body is buffered to a temporary file .*"POST \/slow\/trickle/);
    // Ten single bytes, each sent once the previous one is in the file (the gateway read it).
    for (let i = 1; i <= 10; i += 1) {
      conn.socket.write('t');
      await pollUntil(`byte ${i} is in the file`, async () => (await held(gw))[2] === 2048 + i);
    }
    assert.deepEqual(
      openFilesIn(tempDir).map((f) => [f.target.endsWith(' (deleted)'), f.mode]),
      [[true, 0o600]],
    );
    const raw = await conn.until(completeResponse, 20_000);
    conn.destroy();
    assert.equal(statusOf(raw.toString('latin1')), 408);
    await gw.errors.waitFor(
      /client timed out \(110: Connection timed out\) while reading client request body.*"POST \/slow\/trickle/,
    );
    await allReleased(gw, tempDir);
    assert.equal(backend.connections, 0);
  });
});
