// HTTP/2 to clients on the TLS listener (ALPN h2), and on the HTTP listener with prior knowledge: every stream runs through the same pipeline as an
// HTTP/1.1 request — client address (the connection's PROXY header for every stream), routing,
// allow/deny lists per stream, redirects, body limits, upstream headers, one access log line per
// request with "HTTP/2.0" as nginx logs it, metrics by protocol. Independent peers: curl --http2,
// nghttp and h2load (nghttp2-client), node:http2 as a multiplexing client, raw frames for the limits.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
  webApp,
} from '../fixtures/gateway/manifests.ts';
import { connectH2, h2Request } from '../helpers/h2-client.ts';
import { connectRawH2, FLAG, FRAME, frame, headerBlock, requestFields } from '../helpers/h2-raw.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

interface Echo {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: { bytes: number };
}

function echo(body: Buffer | string): Echo {
  return JSON.parse(String(body)) as Echo;
}

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

describe('gateway HTTP/2 on the TLS listener', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    gw = await startTestGateway(
      topologyOf([
        // Refused streams are nginx's info lines: shown only from error-log-level info.
        controllerConfigMap({ 'error-log-level': 'info' }),
        ...webApp(backend.address.port),
        ingress({
          name: 'admin',
          host: 'web.example.com',
          paths: [{ path: '/admin', service: 'web', port: 80 }],
          annotations: { 'whitelist-source-range': '127.0.0.9/32' },
        }),
        ingress({
          name: 'app',
          host: 'app.example.com',
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations: { 'app-root': '/app', 'proxy-body-size': '100' },
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  test('curl --http2 speaks h2; the backend sees the client; the access log says HTTP/2.0', async () => {
    const curl = requireBinary('curl');
    const result = await runCommand(curl, [
      '-sk',
      '--http2',
      '--interface',
      '127.0.0.21',
      '--resolve',
      `web.example.com:${gw.httpsPort}:127.0.0.1`,
      '-H',
      'accept: application/json',
      '-w',
      '\n%{http_version}',
      `https://web.example.com:${gw.httpsPort}/hello?x=1`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const cut = result.stdout.lastIndexOf('\n');
    assert.equal(result.stdout.slice(cut + 1), '2');
    const seen = echo(result.stdout.slice(0, cut));
    assert.equal(seen.url, '/hello?x=1');
    assert.equal(seen.headers['x-real-ip'], '127.0.0.21');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.21');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers.host, `web.example.com:${gw.httpsPort}`);
    const line = await gw.access.waitFor(/"GET \/hello\?x=1 HTTP\/2\.0"/);
    assert.match(line, /^127\.0\.0\.21 - - \[[^\]]+\] "GET \/hello\?x=1 HTTP\/2\.0" 200 \d+ "-" "curl\//);
    assert.match(line, /\[default-web-80\] \[\] 127\.0\.0\.1:\d+ \d+ [\d.]+ 200 [0-9a-f]{32}$/);
  });

  test('each stream of one connection is admitted on its own: the allowlist per request', async () => {
    const allowed = await h2Request({
      port: gw.httpsPort,
      from: '127.0.0.9',
      host: 'web.example.com',
      path: '/admin',
    });
    assert.equal(allowed.status, 200);
    const conn = await connectH2({ port: gw.httpsPort, from: '127.0.0.22', host: 'web.example.com' });
    try {
      const [admin, open, again] = await Promise.all([
        conn.request('/admin/users', { headers: { accept: 'application/json' } }),
        conn.request('/open', { headers: { accept: 'application/json' } }),
        conn.request('/admin', { headers: { accept: 'application/json' } }),
      ]);
      assert.equal(admin.status, 403);
      assert.equal(again.status, 403);
      assert.equal(open.status, 200);
      assert.equal(echo(open.body).headers['x-real-ip'], '127.0.0.22');
    } finally {
      await conn.close();
    }
    await gw.errors.waitFor(
      /access forbidden by rule, client: 127\.0\.0\.22, server: web\.example\.com, request: "GET \/admin\/users HTTP\/2\.0"/,
    );
    await gw.access.waitFor(/^127\.0\.0\.22 .*"GET \/admin HTTP\/2\.0" 403 /);
  });

  test('redirects, body limits and upstream headers as over HTTP/1.1', async () => {
    const conn = await connectH2({ port: gw.httpsPort, from: '127.0.0.23', host: 'app.example.com' });
    try {
      const root = await conn.request('/');
      assert.equal(root.status, 302);
      assert.equal(root.headers.location, 'https://app.example.com/app');
      // Declared too large: 413 before any backend.
      const declared = await conn.request('/upload', {
        method: 'POST',
        headers: { 'content-length': '200' },
        body: Buffer.alloc(200, 0x61),
      });
      assert.equal(declared.status, 413);
      // No Content-Length (HTTP/2 needs none): cut at the limit while it streams, 413.
      const streamed = await conn.request('/upload', { method: 'POST', body: Buffer.alloc(200, 0x62) });
      assert.equal(streamed.status, 413);
      // Within the limit and without Content-Length: the body reaches the backend whole.
      const small = await conn.request('/upload', {
        method: 'POST',
        headers: { accept: 'application/json', 'x-custom': 'kept' },
        body: Buffer.alloc(60, 0x63),
      });
      assert.equal(small.status, 200);
      const seen = echo(small.body);
      assert.equal(seen.method, 'POST');
      assert.equal(seen.body?.bytes, 60);
      assert.equal(seen.headers['x-custom'], 'kept');
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      // ingress-nginx's $pass_port: the HTTPS listener's port is sent as 443.
      assert.equal(seen.headers['x-forwarded-port'], '443');
      assert.equal(seen.headers['x-real-ip'], '127.0.0.23');
    } finally {
      await conn.close();
    }
    await gw.errors.waitFor(/client intended to send too large body: 200 bytes, client: 127\.0\.0\.23/);
    await gw.access.waitFor(/^127\.0\.0\.23 .*"POST \/upload HTTP\/2\.0" 413 /);
  });

  test('nghttp and h2load fetch over h2 (the whole of each response, every request answered)', async () => {
    const nghttp = requireBinary('nghttp');
    const got = await runCommand(nghttp, [
      '-v',
      '-H',
      ':authority: web.example.com',
      '-H',
      'accept: application/json',
      `https://127.0.0.1:${gw.httpsPort}/via-nghttp`,
    ]);
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stdout, /:status: 200/);
    assert.match(got.stdout, /"url":"\/via-nghttp"/);
    const h2load = requireBinary('h2load');
    const load = await runCommand(h2load, [
      '-n',
      '40',
      '-c',
      '2',
      '-m',
      '10',
      '-H',
      ':authority: web.example.com',
      `https://127.0.0.1:${gw.httpsPort}/load`,
    ]);
    assert.equal(load.code, 0, load.stderr);
    assert.match(load.stdout, /Application protocol: h2/);
    assert.match(load.stdout, /requests: 40 total, 40 started, 40 done, 40 succeeded, 0 failed, 0 errored/);
    assert.match(load.stdout, /status codes: 40 2xx/);
  });

  test('HTTP/1.1 clients still get HTTP/1.1 on the same listener', async () => {
    const curl = requireBinary('curl');
    const result = await runCommand(curl, [
      '-sk',
      '--http1.1',
      '--interface',
      '127.0.0.24',
      '--resolve',
      `web.example.com:${gw.httpsPort}:127.0.0.1`,
      '-o',
      '/dev/null',
      '-w',
      '%{http_version} %{http_code}',
      `https://web.example.com:${gw.httpsPort}/one`,
    ]);
    assert.equal(result.stdout, '1.1 200');
    await gw.access.waitFor(/^127\.0\.0\.24 .*"GET \/one HTTP\/1\.1" 200 /);
  });

  test('metrics count requests by protocol', async () => {
    await h2Request({ port: gw.httpsPort, from: '127.0.0.25', host: 'web.example.com', path: '/m' });
    await gw.access.waitFor(/^127\.0\.0\.25 .*"GET \/m HTTP\/2\.0" 200 /);
    const text = await gw.gateway.metrics.registry.metrics();
    const h2 = /keepip_gateway_requests_by_protocol_total\{protocol="HTTP\/2\.0"\} (\d+)/.exec(text);
    const h1 = /keepip_gateway_requests_by_protocol_total\{protocol="HTTP\/1\.1"\} (\d+)/.exec(text);
    assert.ok(h2 !== null && Number(h2[1]) >= 1, text);
    assert.ok(h1 !== null && Number(h1[1]) >= 1, text);
  });

  test('CONNECT over HTTP/2 (and so WebSocket over HTTP/2) is refused with 400, logged', async () => {
    const raw = await connectRawH2({
      port: gw.httpsPort,
      from: '127.0.0.28',
      firstFlight: frame(
        FRAME.HEADERS,
        FLAG.END_HEADERS,
        1,
        headerBlock([
          [':method', 'CONNECT'],
          [':authority', 'web.example.com:443'],
        ]),
      ),
    });
    await raw.waitFrame((f) => f.type === FRAME.HEADERS && f.streamId === 1);
    raw.close();
    await gw.access.waitFor(/^127\.0\.0\.28 .*"CONNECT web\.example\.com:443 HTTP\/2\.0" 400 /);
    await gw.errors.waitFor(/client sent CONNECT over HTTP\/2 \(H2_CONNECT\), client: 127\.0\.0\.28/);
  });

  test('a header field over one large-client-header-buffers buffer (8 KiB) or a list over all of them (32 KiB) is 431, logged', async () => {
    const field = await connectRawH2({
      port: gw.httpsPort,
      from: '127.0.0.26',
      firstFlight: frame(
        FRAME.HEADERS,
        FLAG.END_HEADERS | FLAG.END_STREAM,
        1,
        headerBlock(requestFields('web.example.com', '/field', 'GET', [['x-big', 'a'.repeat(10_000)]])),
      ),
    });
    await field.waitFrame((f) => f.type === FRAME.HEADERS && f.streamId === 1);
    field.close();
    await gw.access.waitFor(/^127\.0\.0\.26 .*"GET \/field HTTP\/2\.0" 431 /);
    await gw.errors.waitFor(
      /client sent too large header field \(H2_HEADER_FIELD_TOO_LARGE: large-client-header-buffers\), client: 127\.0\.0\.26/,
    );
    // Ten 4 KB fields: each within the field limit, 40 KB in all. Sent before our SETTINGS are
    // acknowledged, when nghttp2 does not enforce the list size yet: the gateway does.
    const fields = Array.from({ length: 10 }, (_, i) => [`x-h${i}`, 'b'.repeat(4_000)] as [string, string]);
    const block = headerBlock(requestFields('web.example.com', '/list', 'GET', fields));
    const parts: Buffer[] = [];
    for (let at = 0; at < block.length; at += 16_000) parts.push(block.subarray(at, at + 16_000));
    const flight = parts.map((part, i) =>
      frame(
        i === 0 ? FRAME.HEADERS : FRAME.CONTINUATION,
        (i === 0 ? FLAG.END_STREAM : 0) | (i === parts.length - 1 ? FLAG.END_HEADERS : 0),
        1,
        part,
      ),
    );
    const list = await connectRawH2({
      port: gw.httpsPort,
      from: '127.0.0.27',
      firstFlight: Buffer.concat(flight),
    });
    await list.waitFrame((f) => f.type === FRAME.HEADERS && f.streamId === 1);
    list.close();
    await gw.access.waitFor(new RegExp(`^127\\.0\\.0\\.27 .*${escaped('"GET /list HTTP/2.0" 431 ')}`));
  });
});

describe('gateway HTTP/2 behind a PROXY load balancer', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({ 'use-proxy-protocol': 'true', 'proxy-real-ip-cidr': '127.0.0.30/32' }),
        ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
        ingress({
          name: 'web',
          host: 'web.example.com',
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations: { 'whitelist-source-range': '198.51.100.0/24' },
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  test("the connection's PROXY header is every stream's client", async () => {
    const inside = await connectH2({
      port: gw.httpsPort,
      from: '127.0.0.30',
      host: 'web.example.com',
      preface: 'PROXY TCP4 198.51.100.7 127.0.0.1 5555 443\r\n',
    });
    const outside = await connectH2({
      port: gw.httpsPort,
      from: '127.0.0.30',
      host: 'web.example.com',
      preface: 'PROXY TCP4 203.0.113.9 127.0.0.1 6666 443\r\n',
    });
    try {
      const replies = await Promise.all(
        ['/a', '/b', '/c'].map((path) => inside.request(path, { headers: { accept: 'application/json' } })),
      );
      for (const reply of replies) {
        assert.equal(reply.status, 200);
        assert.equal(echo(reply.body).headers['x-real-ip'], '198.51.100.7');
        assert.equal(echo(reply.body).headers['x-forwarded-port'], '443');
      }
      const denied = await Promise.all(['/a', '/b'].map((path) => outside.request(path)));
      assert.deepEqual(
        denied.map((r) => r.status),
        [403, 403],
      );
    } finally {
      await inside.close();
      await outside.close();
    }
    for (const path of ['/a', '/b', '/c'])
      await gw.access.waitFor(new RegExp(`^198\\.51\\.100\\.7 .*"GET ${path} HTTP/2\\.0" 200 `));
    await gw.errors.waitFor(
      /access forbidden by rule, client: 203\.0\.113\.9, server: web\.example\.com, request: "GET \/b HTTP\/2\.0"/,
    );
  });
});

describe('gateway HTTP/2 settings from the ConfigMap', () => {
  let backend: RunningWhoami;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    await backend.close();
  });

  const topology = (data: Record<string, string>) =>
    topologyOf([controllerConfigMap(data), ...webApp(backend.address.port)]);

  test('the HTTP port: HTTP/2 with prior knowledge beside HTTP/1.1, as nginx with `http2 on`; not with use-http2 "false"', async () => {
    const curl = requireBinary('curl');
    const fetch = (port: number, ...flags: string[]) =>
      runCommand(curl, [
        '-s',
        ...flags,
        '-H',
        'host: web.example.com',
        '-o',
        '/dev/null',
        '-w',
        '%{http_version} %{http_code}',
        `http://127.0.0.1:${port}/plain`,
      ]);
    const on = await startTestGateway(topology({}));
    try {
      assert.equal((await fetch(on.httpPort, '--http2-prior-knowledge')).stdout, '2 200');
      await on.access.waitFor(/"GET \/plain HTTP\/2\.0" 200 /);
      assert.equal((await fetch(on.httpPort, '--http1.1')).stdout, '1.1 200');
      await on.access.waitFor(/"GET \/plain HTTP\/1\.1" 200 /);
    } finally {
      await on.close();
    }
    const off = await startTestGateway(topology({ 'use-http2': 'false' }));
    try {
      // The preface is read as an HTTP/1.1 request line: no HTTP/2 answer.
      assert.notEqual((await fetch(off.httpPort, '--http2-prior-knowledge')).stdout, '2 200');
      assert.equal((await fetch(off.httpPort, '--http1.1')).stdout, '1.1 200');
    } finally {
      await off.close();
    }
  });

  test('use-http2: "false" offers only http/1.1 in ALPN', async () => {
    const gw = await startTestGateway(topology({ 'use-http2': 'false' }));
    try {
      const curl = requireBinary('curl');
      const result = await runCommand(curl, [
        '-sk',
        '--http2',
        '--resolve',
        `web.example.com:${gw.httpsPort}:127.0.0.1`,
        '-o',
        '/dev/null',
        '-w',
        '%{http_version} %{http_code}',
        `https://web.example.com:${gw.httpsPort}/`,
      ]);
      assert.equal(result.stdout, '1.1 200');
      // A client that offers h2 alone is refused in the handshake (RFC 7301 no_application_protocol).
      await assert.rejects(connectRawH2({ port: gw.httpsPort }), /no application protocol/);
    } finally {
      await gw.close();
    }
  });

  test('keep-alive-requests: after that many streams the connection gets GOAWAY; the streams taken finish', async () => {
    const gw = await startTestGateway(
      topology({ 'keep-alive-requests': '3', 'http2-max-concurrent-streams': '16' }),
    );
    try {
      const conn = await connectH2({ port: gw.httpsPort, from: '127.0.0.31', host: 'web.example.com' });
      const goaway = new Promise<number>((resolve) => conn.session.once('goaway', (code) => resolve(code)));
      const replies = await Promise.all(['/1', '/2', '/3'].map((path) => conn.request(path)));
      assert.deepEqual(
        replies.map((r) => r.status),
        [200, 200, 200],
      );
      assert.equal(await goaway, 0);
      await conn.close();
      const raw = await connectRawH2({ port: gw.httpsPort, from: '127.0.0.31' });
      const settings = await raw.waitFrame((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0);
      assert.ok(
        settings.payload.includes(Buffer.from([0x00, 0x03, 0x00, 0x00, 0x00, 0x10])),
        'MAX_CONCURRENT_STREAMS 16',
      );
      raw.close();
    } finally {
      await gw.close();
    }
  });
});
