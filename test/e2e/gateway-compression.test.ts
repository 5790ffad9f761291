// use-gzip / enable-brotli over real sockets, on nginx's terms (ngx_http_gzip_filter_module with
// ingress-nginx's gzip_proxied any, gzip_vary on, gzip_http_version 1.1): what is compressed, what is
// not, the head nginx sends with it, and bodies that decode to what the backend sent — checked by
// curl --compressed and Node's zlib, over HTTP/1.1 and HTTP/2.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { h2Request } from '../helpers/h2-client.ts';
import { rawExchange } from '../helpers/net.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const ON = 'gzip.example.com';
const OFF = 'plain.example.com';

/** Text that compresses, `size` bytes. */
function text(size: number): Buffer {
  const line = Buffer.from('keepip keeps the client address; nginx compresses this line well.\n');
  const out = Buffer.alloc(size);
  for (let at = 0; at < size; at += line.length) line.copy(out, at);
  return out;
}

/** /text?size=N (text/plain), /png, /encoded (already gzip), /etag, /weak, /status/N, /stream?size=N (chunked, in pieces). */
function backendHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://backend');
  const size = Number(url.searchParams.get('size') ?? '1000');
  const path = url.pathname;
  if (path === '/png')
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': size }).end(text(size));
  else if (path === '/encoded') {
    const body = zlib.gzipSync(text(size));
    res.writeHead(200, {
      'content-type': 'text/plain',
      'content-encoding': 'gzip',
      'content-length': body.length,
    });
    res.end(body);
  } else if (path === '/etag' || path === '/weak') {
    const etag = path === '/etag' ? '"abc"' : 'W/"abc"';
    res.writeHead(200, {
      'content-type': 'text/css',
      etag,
      'accept-ranges': 'bytes',
      'content-length': size,
    });
    res.end(text(size));
  } else if (path.startsWith('/status/')) {
    res
      .writeHead(Number(path.slice(8)), { 'content-type': 'text/html', 'content-length': size })
      .end(text(size));
  } else if (path === '/stream') {
    res.writeHead(200, { 'content-type': 'application/json' });
    const body = text(size);
    let at = 0;
    const next = () => {
      while (at < body.length) {
        const piece = body.subarray(at, at + 65_536);
        at += piece.length;
        if (!res.write(piece)) return void res.once('drain', next);
      }
      res.end();
    };
    next();
  } else
    res
      .writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': size })
      .end(text(size));
}

interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function fetchRaw(
  port: number,
  host: string,
  path: string,
  headers: Record<string, string> = {},
  options: { method?: string; http10?: boolean } = {},
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: { host, ...headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('use-gzip, enable-brotli', () => {
  let backend: Server;
  let gw: TestGateway;
  const gzip = { 'accept-encoding': 'gzip, deflate' };

  before(async () => {
    backend = http.createServer(backendHandler);
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as AddressInfo).port;
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({
          'use-gzip': 'true',
          'enable-brotli': 'true',
          'gzip-disable': 'oldbrowser/[0-9]',
          'brotli-types': 'text/plain',
          'brotli-min-length': '4096',
        }),
        ...serviceWithEndpoints({ name: 'web', ports: [port] }),
        ingress({ name: 'on', host: ON, paths: [{ path: '/', service: 'web', port: 80 }] }),
      ]),
    );
  });
  after(async () => {
    await gw.close();
    backend.closeAllConnections();
    await new Promise((resolve) => backend.close(resolve));
  });

  test('a listed type over the minimum length is gzipped: Vary, no length, decodes to what the backend sent', async () => {
    const reply = await fetchRaw(gw.httpPort, ON, '/text?size=3000', gzip);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['content-encoding'], 'gzip');
    assert.equal(reply.headers.vary, 'Accept-Encoding');
    assert.equal(reply.headers['content-length'], undefined);
    assert.deepEqual(zlib.gunzipSync(reply.body), text(3000));
    assert.ok(reply.body.length < 1500, `${reply.body.length} bytes`);
    // $body_bytes_sent is what the client got after the head: compressed, chunk framing included (nginx's).
    const raw = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      payload: `GET /text?size=2999 HTTP/1.1\r\nHost: ${ON}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n`,
    });
    const afterHead = raw.received.length - (raw.received.indexOf('\r\n\r\n') + 4);
    const line = await gw.access.waitFor(/"GET \/text\?size=2999 HTTP\/1\.1" 200 \d+ /);
    assert.equal(Number(/" 200 (\d+) /.exec(line)?.[1]), afterHead);
    assert.ok(afterHead > reply.body.length - 10 && afterHead < 1500, `${afterHead} bytes`);
  });

  test('curl --compressed reads it (an independent gzip decoder)', async () => {
    const out = await runCommand(requireBinary('curl'), [
      '-s',
      '-i',
      '--compressed',
      '-H',
      `Host: ${ON}`,
      `http://127.0.0.1:${gw.httpPort}/text?size=5000`,
    ]);
    const split = out.stdout.indexOf('\r\n\r\n');
    assert.match(out.stdout.slice(0, split), /content-encoding: (gzip|br)/i);
    assert.equal(out.stdout.slice(split + 4), text(5000).toString('latin1'));
  });

  test('without Accept-Encoding (or q=0, or HTTP/1.0): sent as it is, with Vary', async () => {
    const refusing: Record<string, string>[] = [
      {},
      { 'accept-encoding': 'gzip;q=0' },
      { 'accept-encoding': 'x-gzip, identity' },
    ];
    for (const headers of refusing) {
      const reply = await fetchRaw(gw.httpPort, ON, '/text?size=3000', headers);
      assert.equal(reply.headers['content-encoding'], undefined, JSON.stringify(headers));
      assert.equal(reply.headers['content-length'], '3000');
      assert.equal(reply.headers.vary, 'Accept-Encoding');
    }
    assert.equal(
      (await fetchRaw(gw.httpPort, ON, '/text?size=3000', { 'accept-encoding': 'gzip;q=0.5' })).headers[
        'content-encoding'
      ],
      'gzip',
    );
    const http10 = await runCommand(requireBinary('curl'), [
      '-s',
      '-0',
      '-D',
      '-',
      '-o',
      '/dev/null',
      '-H',
      `Host: ${ON}`,
      '-H',
      'Accept-Encoding: gzip',
      `http://127.0.0.1:${gw.httpPort}/text?size=3000`,
    ]);
    assert.doesNotMatch(http10.stdout, /content-encoding/i);
  });

  test('not compressed, and no Vary: short, unlisted types, already encoded, statuses other than 200/403/404; HEAD gets the head of a GET', async () => {
    const plain = async (path: string, method = 'GET') => {
      const reply = await fetchRaw(gw.httpPort, ON, path, gzip, { method });
      assert.equal(reply.headers['content-encoding'], path.startsWith('/encoded') ? 'gzip' : undefined, path);
      assert.equal(reply.headers.vary, undefined, path);
      return reply;
    };
    await plain('/text?size=100');
    await plain('/png?size=3000');
    assert.deepEqual(zlib.gunzipSync((await plain('/encoded?size=3000')).body), text(3000));
    // As nginx: its gzip header filter runs before HEAD drops the body.
    const head = await fetchRaw(gw.httpPort, ON, '/text?size=3000', gzip, { method: 'HEAD' });
    assert.deepEqual(
      [head.headers['content-encoding'], head.headers.vary, head.headers['content-length'], head.body.length],
      ['gzip', 'Accept-Encoding', undefined, 0],
    );
    await plain('/status/500?size=3000');
    await plain('/status/301?size=3000');
    for (const status of [403, 404]) {
      const reply = await fetchRaw(gw.httpPort, ON, `/status/${status}?size=3000`, gzip);
      assert.equal(reply.status, status);
      assert.equal(reply.headers['content-encoding'], 'gzip', String(status));
    }
  });

  test("nginx's head: a strong ETag made weak, a weak one kept, Accept-Ranges dropped", async () => {
    const strong = await fetchRaw(gw.httpPort, ON, '/etag?size=3000', gzip);
    assert.equal(strong.headers.etag, 'W/"abc"');
    assert.equal(strong.headers['accept-ranges'], undefined);
    assert.equal((await fetchRaw(gw.httpPort, ON, '/weak?size=3000', gzip)).headers.etag, 'W/"abc"');
  });

  test('gzip-disable: a User-Agent it matches gets the body as it is (case-insensitive)', async () => {
    const reply = await fetchRaw(gw.httpPort, ON, '/text?size=3000', {
      ...gzip,
      'user-agent': 'OldBrowser/5',
    });
    assert.equal(reply.headers['content-encoding'], undefined);
    assert.equal(reply.headers.vary, 'Accept-Encoding');
  });

  test('brotli first when the client takes br and brotli takes the response; gzip otherwise', async () => {
    const br = await fetchRaw(gw.httpPort, ON, '/text?size=8000', { 'accept-encoding': 'gzip, br' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.deepEqual(zlib.brotliDecompressSync(br.body), text(8000));
    // Below brotli-min-length, or a type brotli-types does not list: gzip.
    assert.equal(
      (await fetchRaw(gw.httpPort, ON, '/text?size=3000', { 'accept-encoding': 'gzip, br' })).headers[
        'content-encoding'
      ],
      'gzip',
    );
    assert.equal(
      (await fetchRaw(gw.httpPort, ON, '/etag?size=8000', { 'accept-encoding': 'gzip, br' })).headers[
        'content-encoding'
      ],
      'gzip',
    );
  });

  test('a large streamed body (chunked, 4 MiB) decodes whole: backpressure through the encoder', async () => {
    const reply = await fetchRaw(gw.httpPort, ON, '/stream?size=4194304', gzip);
    assert.equal(reply.headers['content-encoding'], 'gzip');
    assert.deepEqual(zlib.gunzipSync(reply.body), text(4_194_304));
  });

  test('HTTP/2: gzipped for a client that takes it', async () => {
    const reply = await h2Request({ port: gw.httpsPort, host: ON, path: '/text?size=3000', headers: gzip });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['content-encoding'], 'gzip');
    assert.deepEqual(zlib.gunzipSync(reply.body), text(3000));
  });
});

test('without use-gzip (the default): nothing is compressed and no Vary is added', async () => {
  const backend = http.createServer(backendHandler);
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const gw = await startTestGateway(
    topologyOf([
      ...serviceWithEndpoints({ name: 'web', ports: [(backend.address() as AddressInfo).port] }),
      ingress({ name: 'off', host: OFF, paths: [{ path: '/', service: 'web', port: 80 }] }),
    ]),
  );
  try {
    const reply = await fetchRaw(gw.httpPort, OFF, '/text?size=3000', { 'accept-encoding': 'gzip, br' });
    assert.equal(reply.headers['content-encoding'], undefined);
    assert.equal(reply.headers.vary, undefined);
    assert.deepEqual(reply.body, text(3000));
  } finally {
    await gw.close();
    backend.closeAllConnections();
    await new Promise((resolve) => backend.close(resolve));
  }
});
