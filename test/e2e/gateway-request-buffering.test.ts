// proxy-request-buffering and client-body-buffer-size over real sockets. ingress-nginx's e2e tests
// (annotations/proxy.go "should turn off proxy-request-buffering", annotations/clientbodybuffersize.go)
// check the nginx directives; these check what nginx does with them: with buffering on (the default)
// the backend sees nothing of a request until its body is complete, then gets it with Content-Length
// (a chunked or HTTP/2 body too); past client-body-buffer-size the body waits in a temporary file that
// no exit leaves behind; a retry sends the body again. With off the backend sees the request at once.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createGatewayMetrics } from '../../src/gateway/metrics.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { connectH2 } from '../helpers/h2-client.ts';
import { completeResponses, openRaw, refusingPort, splitResponse } from '../helpers/net.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';
import { openFilesIn, pollUntil } from '../helpers/descriptors.ts';
import { registrySum } from '../helpers/metrics.ts';

interface Seen {
  method: string;
  url: string;
  contentLength: string | null;
  transferEncoding: string | null;
  bytes: number;
  sha: string;
}

/** A backend that counts its connections and requests, and records what each request carried. */
interface RecordingBackend {
  port: number;
  connections: number;
  /** Requests whose head arrived (before their body ended). */
  started: string[];
  seen: Seen[];
  /** Requests whose body never arrived whole (the gateway cut the connection). */
  aborted: string[];
  /** Resolves once a request whose URL matches has started (`whole`: has been received whole). */
  waitFor(pattern: RegExp, whole?: boolean): Promise<void>;
  close(): Promise<void>;
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

async function recordingBackend(options: { closeAfterBody?: boolean } = {}): Promise<RecordingBackend> {
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of [...waiters]) waiter();
  };
  const backend: RecordingBackend = {
    port: 0,
    connections: 0,
    started: [],
    seen: [],
    aborted: [],
    waitFor(pattern, whole = false) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const urls = whole ? backend.seen.map((s) => s.url) : backend.started;
          if (!urls.some((url) => pattern.test(url))) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => reject(new Error(`no request ${pattern} at the backend`)), 20_000);
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = http.createServer(async (req, res) => {
    backend.started.push(req.url ?? '');
    notify();
    const chunks: Buffer[] = [];
    try {
      for await (const c of req) chunks.push(c as Buffer);
    } catch {
      backend.aborted.push(req.url ?? '');
      notify();
      return;
    }
    const body = Buffer.concat(chunks);
    backend.seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      contentLength: req.headers['content-length'] ?? null,
      transferEncoding: req.headers['transfer-encoding'] ?? null,
      bytes: body.length,
      sha: sha(body),
    });
    notify();
    if (options.closeAfterBody) {
      req.socket.destroy();
      return;
    }
    const text = `got ${body.length}`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': text.length }).end(text);
  });
  server.on('connection', (socket) => {
    backend.connections += 1;
    socket.on('error', () => {});
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend.port = (server.address() as AddressInfo).port;
  return backend;
}

/** Descriptors of this process open on a file in `dir` (the gateway runs in-process; unlinked ones too). */
function descriptorsInto(dir: string): string[] {
  return openFilesIn(dir).map((f) => f.target);
}

/** Host `<name>.example` → Service `name` with these endpoints, with the annotations. */
function hostTo(name: string, ports: number[], annotations: Record<string, string> = {}) {
  return [
    ...serviceWithEndpoints({ name, ports }),
    ingress({ name, host: `${name}.example`, annotations, paths: [{ path: '/', service: name, port: 80 }] }),
  ];
}

const head = (method: string, path: string, host: string, framing: string) =>
  `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n${framing}\r\n`;

const statusOf = (raw: Buffer) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw.toString('latin1'))?.[1] ?? 0);

function completeResponse(raw: Buffer): boolean {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const length = /content-length: (\d+)/i.exec(text.slice(0, end));
  return length !== null && raw.length >= end + 4 + Number(length[1]);
}

describe('proxy-request-buffering', () => {
  const tempDir = mkdtempSync(join(tmpdir(), 'keepip-bodies-'));
  const backends: Record<string, RecordingBackend> = {};
  let gw: TestGateway;
  let refused = 0;

  before(async () => {
    for (const name of [
      'on',
      'chunked',
      'spill',
      'abort',
      'limit',
      'off',
      'h2',
      'curl',
      'retry',
      'put-off',
      'badchunk',
      'badchunk-off',
    ]) {
      backends[name] = await recordingBackend();
    }
    backends.closer = await recordingBackend({ closeAfterBody: true });
    refused = await refusingPort();
    const route = (name: string, annotations: Record<string, string> = {}, ports?: number[]) =>
      hostTo(name, ports ?? [backends[name]!.port], annotations);
    gw = await startTestGateway(
      topologyOf([
        ...route('on'),
        ...route('chunked'),
        ...route('spill', { 'client-body-buffer-size': '1k' }),
        ...route('abort', { 'client-body-buffer-size': '1k' }),
        ...route('limit', { 'client-body-buffer-size': '1k', 'proxy-body-size': '10k' }),
        ...route('off', { 'proxy-request-buffering': 'off' }),
        ...route('badchunk'),
        ...route('badchunk-off', { 'proxy-request-buffering': 'off' }),
        ...route('h2'),
        ...route('curl', { 'client-body-buffer-size': '16k', 'proxy-body-size': '8m' }),
        // Round robin starts at the first endpoint listed.
        ...route('retry', {}, [refused, backends.retry!.port]),
        ...route('put', {}, [backends.closer.port, backends.retry!.port]),
        ...route('post', {}, [backends.closer.port, backends.retry!.port]),
        ...route('put-off', { 'proxy-request-buffering': 'off' }, [
          backends.closer.port,
          backends['put-off']!.port,
        ]),
      ]),
      { tempDir },
    );
  });

  after(async () => {
    await gw.close();
    for (const backend of Object.values(backends)) await backend.close();
    rmSync(tempDir, { recursive: true, force: true });
  });

  test('on (the default): half a body and a pause reach nothing of the backend; then all of it, with Content-Length', async () => {
    const backend = backends.on!;
    const body = Buffer.alloc(2000, 0x61);
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
    conn.socket.write(head('POST', '/slow', 'on.example', 'Content-Length: 2000\r\n'));
    conn.socket.write(body.subarray(0, 1000));
    // The signal: the gateway holds the 1000 bytes it read (in memory: 1000 < 8k).
    await pollUntil(
      'the gateway has read half the body',
      async () =>
        (await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_buffer_bytes')) >= 1000,
    );
    assert.equal(backend.connections, 0, 'no connection to the backend while the body is incomplete');
    assert.deepEqual(backend.started, []);
    conn.socket.write(body.subarray(1000));
    const raw = await conn.until(completeResponse);
    assert.equal(statusOf(raw), 200);
    assert.deepEqual(backend.seen, [
      {
        method: 'POST',
        url: '/slow',
        contentLength: '2000',
        transferEncoding: null,
        bytes: 2000,
        sha: sha(body),
      },
    ]);
    conn.destroy();
    await pollUntil(
      'the memory is freed',
      async () =>
        (await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_buffer_bytes')) === 0,
    );
  });

  test('on: a chunked body reaches the backend de-chunked, with Content-Length', async () => {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
    conn.socket.write(
      `${head('PUT', '/chunked', 'chunked.example', 'Transfer-Encoding: chunked\r\n')}5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
    );
    assert.equal(statusOf(await conn.until(completeResponse)), 200);
    conn.destroy();
    const [seen] = backends.chunked!.seen;
    assert.equal(seen?.contentLength, '11');
    assert.equal(seen?.transferEncoding, null);
    assert.equal(seen?.sha, sha(Buffer.from('hello world')));
  });

  test('past client-body-buffer-size the body waits in an unlinked 0600 temporary file, closed afterwards', async () => {
    const backend = backends.spill!;
    const body = Buffer.alloc(64 * 1024);
    for (let i = 0; i < body.length; i += 1) body[i] = (i * 7) % 251;
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
    conn.socket.write(head('POST', '/spill', 'spill.example', `Content-Length: ${body.length}\r\n`));
    conn.socket.write(body.subarray(0, 32 * 1024));
    // nginx's warning names the file: the gateway has read past the 1k it keeps in memory.
    const line = await gw.errors.waitFor(
      /\[warn\].*a client request body is buffered to a temporary file .*"POST \/spill/,
    );
    const path = /temporary file (\S+),/.exec(line)?.[1] ?? '';
    assert.ok(path.startsWith(`${tempDir}/keepip-body-`), line);
    assert.deepEqual(readdirSync(tempDir), [], 'unlinked as soon as it was opened');
    assert.deepEqual(
      openFilesIn(tempDir),
      [{ target: `${path} (deleted)`, mode: 0o600 }],
      'the data lives on in the open descriptor',
    );
    assert.equal(await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_temp_files'), 1);
    assert.equal(backend.connections, 0);
    conn.socket.write(body.subarray(32 * 1024));
    assert.equal(statusOf(await conn.until(completeResponse)), 200);
    conn.destroy();
    assert.deepEqual(
      backend.seen.map((s) => [s.contentLength, s.transferEncoding, s.sha]),
      [[String(body.length), null, sha(body)]],
    );
    await pollUntil('the temporary file is closed', () => descriptorsInto(tempDir).length === 0);
    assert.equal(await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_temp_files'), 0);
    const buffered = await gw.gateway.metrics.registry
      .getSingleMetric('keepip_gateway_request_bodies_buffered_total')
      ?.get();
    assert.ok((buffered?.values.find((v) => v.labels.where === 'file')?.value ?? 0) >= 1);
  });

  test('a client that aborts mid-body: nothing reaches the backend, the file is closed, logged 400', async () => {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
    conn.socket.write(head('POST', '/abort', 'abort.example', 'Content-Length: 65536\r\n'));
    conn.socket.write(Buffer.alloc(16 * 1024, 0x62));
    await gw.errors.waitFor(/a client request body is buffered to a temporary file .*"POST \/abort/);
    assert.equal(descriptorsInto(tempDir).length, 1);
    conn.destroy();
    const line = await gw.access.waitFor(/"POST \/abort HTTP\/1\.1" 400 /);
    assert.match(line, / - - - - [0-9a-f]{32}$/, 'no upstream in the log line');
    await pollUntil('the temporary file is closed', () => descriptorsInto(tempDir).length === 0);
    assert.equal(backends.abort!.connections, 0);
    assert.deepEqual(readdirSync(tempDir), []);
  });

  test('a chunked body over proxy-body-size: 413 before any backend, its file closed', async () => {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
    conn.socket.write(head('POST', '/big', 'limit.example', 'Transfer-Encoding: chunked\r\n'));
    const piece = Buffer.alloc(4096, 0x63);
    for (let i = 0; i < 3; i += 1)
      conn.socket.write(Buffer.concat([Buffer.from('1000\r\n'), piece, Buffer.from('\r\n')]));
    const raw = await conn.until(completeResponse);
    assert.equal(statusOf(raw), 413);
    assert.match(splitResponse(raw).head, /connection: close/i);
    conn.destroy();
    await gw.errors.waitFor(/client intended to send too large chunked body: 12288 bytes.*"POST \/big/);
    await pollUntil('the temporary file is closed', () => descriptorsInto(tempDir).length === 0);
    assert.equal(backends.limit!.connections, 0);
  });

  test('off: the backend sees the request before its body ends; a chunked body stays chunked', async () => {
    const backend = backends.off!;
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
    conn.socket.write(head('POST', '/stream', 'off.example', 'Transfer-Encoding: chunked\r\n'));
    conn.socket.write('5\r\nhello\r\n');
    await backend.waitFor(/\/stream/);
    assert.equal(backend.seen.length, 0, 'the body is not complete yet');
    conn.socket.write('6\r\n world\r\n0\r\n\r\n');
    assert.equal(statusOf(await conn.until(completeResponse)), 200);
    conn.destroy();
    assert.equal(backend.seen[0]?.transferEncoding, 'chunked');
    assert.equal(backend.seen[0]?.contentLength, null);
    assert.equal(backend.seen[0]?.sha, sha(Buffer.from('hello world')));
  });

  // nginx: "client sent invalid chunked body", 400 and the connection closed. Before, keepip cut the
  // connection without an answer or an error-log line.
  const keptAliveHead = (path: string, host: string) =>
    `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n`;

  test('on: a chunked body that breaks its framing is 400 with connection: close; the backend sees nothing, what follows is not read', async () => {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
    conn.socket.write(keptAliveHead('/bad', 'badchunk.example'));
    conn.socket.write('5\r\nhello\r\n');
    await pollUntil(
      'the gateway has read the first chunk',
      async () =>
        (await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_buffer_bytes')) >= 5,
    );
    // A chunk size that is not hex, then a request that must not be served from this connection.
    conn.socket.write('zz\r\nabc\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: badchunk.example\r\n\r\n');
    await conn.whenClosed();
    const raw = conn.received();
    assert.equal(statusOf(raw), 400);
    assert.equal(completeResponses(raw), 1, 'one answer: the pipelined request is not served');
    assert.match(splitResponse(raw).head, /connection: close/i);
    await gw.errors.waitFor(/client sent invalid chunked body \(H1_BAD_CHUNK: .*"POST \/bad HTTP\/1\.1"/);
    await gw.access.waitFor(/"POST \/bad HTTP\/1\.1" 400 /);
    await pollUntil(
      'the memory is freed',
      async () =>
        (await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_buffer_bytes')) === 0,
    );
    assert.equal(backends.badchunk!.connections, 0);
  });

  test('off: a streamed body that breaks its framing is 400 to the client and cut at the backend', async () => {
    const backend = backends['badchunk-off']!;
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
    conn.socket.write(keptAliveHead('/stream-bad', 'badchunk-off.example'));
    conn.socket.write('5\r\nhello\r\n');
    await backend.waitFor(/\/stream-bad/);
    // Chunk data longer than its size: no CRLF where the chunk should end.
    conn.socket.write('3\r\nabcdef\r\n0\r\n\r\n');
    await conn.whenClosed();
    const raw = conn.received();
    assert.equal(statusOf(raw), 400);
    assert.equal(completeResponses(raw), 1);
    await gw.errors.waitFor(
      /client sent invalid chunked body \(H1_BAD_CHUNK: .*"POST \/stream-bad HTTP\/1\.1"/,
    );
    await gw.access.waitFor(/"POST \/stream-bad HTTP\/1\.1" 400 /);
    await pollUntil('the backend saw its request cut', () => backend.aborted.includes('/stream-bad'));
    assert.deepEqual(backend.seen, []);
  });

  test('HTTP/2: a stream paused mid-body reaches nothing of the backend; its body arrives with Content-Length', async () => {
    const backend = backends.h2!;
    const h2 = await connectH2({ port: gw.httpsPort, host: 'h2.example' });
    try {
      const stream = h2.session.request({ ':method': 'POST', ':path': '/h2', ':authority': 'h2.example' });
      const chunks: Buffer[] = [];
      let status = 0;
      stream.on('response', (h) => {
        status = Number(h[':status']);
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      const ended = new Promise<void>((resolve, reject) => {
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      stream.write(Buffer.alloc(3000, 0x64));
      await pollUntil(
        'the gateway has read the first part',
        async () =>
          (await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_buffer_bytes')) >=
          3000,
      );
      assert.equal(backend.connections, 0);
      stream.end(Buffer.alloc(1000, 0x65));
      await ended;
      assert.equal(status, 200);
      assert.equal(Buffer.concat(chunks).toString(), 'got 4000');
    } finally {
      await h2.close();
    }
    const [seen] = backend.seen;
    assert.equal(seen?.contentLength, '4000');
    assert.equal(seen?.transferEncoding, null);
  });

  test('curl --data-binary @file and -T file (and chunked): the backend gets the file with its length', async () => {
    const curl = requireBinary('curl');
    const file = join(mkdtempSync(join(tmpdir(), 'keepip-upload-')), 'upload.bin');
    const data = Buffer.alloc(300 * 1024);
    for (let i = 0; i < data.length; i += 1) data[i] = (i * 13) % 256;
    writeFileSync(file, data);
    const url = `http://127.0.0.1:${gw.httpPort}`;
    const base = ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: curl.example'];
    const post = await runCommand(curl, [...base, '--data-binary', `@${file}`, `${url}/post`]);
    const put = await runCommand(curl, [...base, '-T', file, `${url}/put`]);
    const chunked = await runCommand(curl, [
      ...base,
      '-H',
      'Transfer-Encoding: chunked',
      '--data-binary',
      `@${file}`,
      `${url}/chunked`,
    ]);
    rmSync(join(file, '..'), { recursive: true, force: true });
    assert.deepEqual([post.stdout, put.stdout, chunked.stdout], ['200', '200', '200']);
    const want = [String(data.length), null, data.length, sha(data)];
    for (const url of ['/post', '/put', '/chunked']) {
      const seen = backends.curl!.seen.find((s) => s.url === url);
      assert.deepEqual([seen?.contentLength, seen?.transferEncoding, seen?.bytes, seen?.sha], want, url);
    }
    await pollUntil('every temporary file is closed', () => descriptorsInto(tempDir).length === 0);
  });

  test('a buffered POST goes to the next endpoint when the first refuses the connection', async () => {
    const body = Buffer.alloc(20 * 1024, 0x66);
    const reply = await request(gw.httpPort, { host: 'retry.example', method: 'POST', path: '/post', body });
    assert.equal(reply.status, 200);
    assert.equal(reply.body, `got ${body.length}`);
    const line = await gw.access.waitFor(/"POST \/post HTTP\/1\.1" 200 .*\[default-retry-80\]/);
    assert.match(line, new RegExp(`127\\.0\\.0\\.1:${refused}, 127\\.0\\.0\\.1:${backends.retry!.port}`));
  });

  test('a buffered PUT is sent again to the next endpoint after the first took it and failed; streamed, it cannot be', async () => {
    const body = Buffer.alloc(20 * 1024, 0x67);
    const put = await request(gw.httpPort, { host: 'put.example', method: 'PUT', path: '/again', body });
    assert.equal(put.status, 200);
    assert.ok(
      backends.closer!.seen.some((s) => s.url === '/again' && s.sha === sha(body)),
      'the first endpoint got it whole',
    );
    const resent = backends.retry!.seen.find((s) => s.url === '/again');
    assert.deepEqual([resent?.contentLength, resent?.sha], [String(body.length), sha(body)]);
    // POST is not idempotent: taken by the first endpoint, it is not sent to another (nginx's default).
    const post = await request(gw.httpPort, { host: 'post.example', method: 'POST', path: '/once', body });
    assert.equal(post.status, 502);
    assert.equal(
      backends.retry!.seen.some((s) => s.url === '/once'),
      false,
    );
    // proxy-request-buffering off: the body went out as it came, there is nothing to send again.
    const off = await request(gw.httpPort, {
      host: 'put-off.example',
      method: 'PUT',
      path: '/streamed',
      body,
    });
    assert.equal(off.status, 502);
    assert.deepEqual(backends['put-off']!.seen, []);
  });
});

describe('proxy-request-buffering under a flood of uploads', () => {
  const tempDir = mkdtempSync(join(tmpdir(), 'keepip-flood-'));
  const cap = 64 * 1024;
  let backend: RecordingBackend;
  let gw: TestGateway;
  let peak = 0;

  before(async () => {
    backend = await recordingBackend();
    const metrics = createGatewayMetrics();
    const usage = metrics.bodyBufferUsage.bind(metrics);
    metrics.bodyBufferUsage = (memory, files, fileBytes) => {
      peak = Math.max(peak, memory);
      usage(memory, files, fileBytes);
    };
    gw = await startTestGateway(
      // Each body could stay in memory whole: only the cap across requests sends them to files.
      topologyOf(hostTo('up', [backend.port], { 'client-body-buffer-size': '64k' })),
      { tempDir, metrics, requestBodyMemoryBytes: cap },
    );
  });

  after(async () => {
    await gw.close();
    await backend.close();
    rmSync(tempDir, { recursive: true, force: true });
  });

  test('memory stays under the cap across requests; the rest goes to files, all closed afterwards', async () => {
    const clients = 24;
    const half = 16 * 1024;
    const conns = await Promise.all(
      Array.from({ length: clients }, () => openRaw({ host: '127.0.0.1', port: gw.httpPort })),
    );
    conns.forEach((conn, i) => {
      conn.socket.write(head('POST', `/u${i}`, 'up.example', `Content-Length: ${2 * half}\r\n`));
      conn.socket.write(Buffer.alloc(half, i));
    });
    // Every first half read: what memory holds plus what files hold is all of it.
    const held = async () =>
      (await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_buffer_bytes')) +
      (await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_temp_file_bytes'));
    await pollUntil('every first half is held', async () => (await held()) === clients * half);
    assert.ok(peak <= cap, `memory peaked at ${peak}, over the cap ${cap}`);
    assert.ok(
      (await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_temp_files')) >=
        clients - cap / half,
    );
    assert.equal(backend.connections, 0);
    for (const [i, conn] of conns.entries()) conn.socket.write(Buffer.alloc(half, i));
    const statuses = await Promise.all(
      conns.map(async (conn) => statusOf(await conn.until(completeResponse))),
    );
    for (const conn of conns) conn.destroy();
    assert.deepEqual(statuses, Array(clients).fill(200));
    assert.equal(backend.seen.length, clients);
    for (const seen of backend.seen) {
      const i = Number(seen.url.slice(2));
      assert.equal(seen.sha, sha(Buffer.alloc(2 * half, i)), seen.url);
    }
    assert.ok(peak <= cap, `memory peaked at ${peak}, over the cap ${cap}`);
    await pollUntil(
      'memory and files are all released',
      async () => (await held()) === 0 && descriptorsInto(tempDir).length === 0,
    );
  });
});

describe("proxy-request-buffering: the client's deadline and an unusable temporary directory", () => {
  const missing = join(tmpdir(), `keepip-missing-${process.pid}-${Date.now()}`);
  let backend: RecordingBackend;
  let gw: TestGateway;

  before(async () => {
    backend = await recordingBackend();
    const route = (name: string, annotations: Record<string, string> = {}) =>
      hostTo(name, [backend.port], annotations);
    gw = await startTestGateway(
      topologyOf([...route('slow'), ...route('nodir', { 'client-body-buffer-size': '1k' })]),
      {
        tempDir: missing,
        clientBodyTimeoutMs: 1_000,
      },
    );
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  test('client_body_timeout while the body is buffered: 408, as when it streams; memory freed; no backend', async () => {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
    conn.socket.write(head('POST', '/stall', 'slow.example', 'Content-Length: 4096\r\n'));
    conn.socket.write(Buffer.alloc(2048, 0x68));
    // Nothing more: the deadline passes (eventually; the bound only ends a broken run).
    const raw = await conn.until(completeResponse, 20_000);
    assert.equal(statusOf(raw), 408);
    conn.destroy();
    await gw.errors.waitFor(
      /client timed out \(110: Connection timed out\) while reading client request body.*"POST \/stall/,
    );
    await pollUntil(
      'the memory is freed',
      async () =>
        (await registrySum(gw.gateway.metrics.registry, 'keepip_gateway_request_body_buffer_bytes')) === 0,
    );
    assert.equal(backend.connections, 0);
  });

  test("a temporary file that cannot be created: 500 and nginx's open() line, nothing sent to the backend", async () => {
    const reply = await request(gw.httpPort, {
      host: 'nodir.example',
      method: 'POST',
      path: '/nodir',
      body: Buffer.alloc(4096, 0x69),
    });
    assert.equal(reply.status, 500);
    await gw.errors.waitFor(
      /\[error\].*open\(\) ".*keepip-missing-.*" failed \(ENOENT: .*while reading client request body.*"POST \/nodir/,
    );
    assert.equal(backend.connections, 0);
    // A body that fits in memory needs no file: it goes through.
    const small = await request(gw.httpPort, {
      host: 'nodir.example',
      method: 'POST',
      path: '/small',
      body: 'tiny',
    });
    assert.equal(small.status, 200);
  });
});
