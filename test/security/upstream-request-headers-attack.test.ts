// The request head keepip writes to the backend, read byte for byte through a tap, under attack from
// the client: hop-by-hop abuse (Connection naming the gateway's own fields or the body's framing),
// Expect, TRACE, forged request ids and X-Original-* fields, proxy-set-headers values that quote
// client data, upstream-vhost, request trailers, and HTTP/2 requests downgraded to HTTP/1.1 (cookie
// crumbs, underscores, a content-length that disagrees with DATA, pseudo-header values no request
// line can carry). The reference is ingress-nginx's proxy_set_header block
// (rootfs/etc/nginx/template/nginx.tmpl) on nginx 1.22, run here beside keepip: its proxy module also
// clears Expect, TE, Keep-Alive and Upgrade, and nginx answers TRACE with 405 itself.
import assert from 'node:assert/strict';
import http from '../../src/node-http.ts';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  connectRawH2,
  FLAG,
  FRAME,
  frame,
  headerBlock,
  requestFields,
  responseStatus,
} from '../helpers/h2-raw.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import {
  configMapYaml,
  exchange,
  ingressYaml,
  type SecurityGateway,
  serviceYaml,
  startSecurityGateway,
  startTap,
  type Tap,
  topologyFromYaml,
} from './helpers.ts';

const HOST = 'app.example.com';
/** An untrusted client: proxy-real-ip-cidr names another range. */
const CLIENT = '127.0.0.61';

/** The gateway's own fields: the backend must see each exactly once, with the gateway's value. */
const OWN_FIELDS = [
  'host',
  'x-request-id',
  'x-real-ip',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-proto',
  'x-forwarded-scheme',
  'x-scheme',
] as const;

/** Every own field forged by the client, each also listed in its Connection header. */
const FORGED_OWN =
  `Connection: close, ${OWN_FIELDS.join(', ')}, x-original-forwarded-for, x-original-forwarded-host\r\n` +
  'X-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n' +
  'X-Forwarded-Host: evil.example\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Scheme: https\r\n' +
  'X-Scheme: https\r\nX-Request-ID: client-chosen\r\nX-Original-Forwarded-For: 7.7.7.7\r\n' +
  'X-Original-Forwarded-Host: forged.example\r\n';

interface Backend {
  port: number;
  /** Each request body by URL, once read whole. */
  bodies: Map<string, string>;
  close(): Promise<void>;
}

/** Answers every request 200 "ok" after reading its body; switches every upgrade (101), then closes. */
async function startBackend(): Promise<Backend> {
  const bodies = new Map<string, string>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.set(req.url ?? '', Buffer.concat(chunks).toString('latin1'));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  server.on('upgrade', (_req, socket: net.Socket) => {
    socket.end('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    bodies,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Everything the tap saw towards the backend, all connections, as one latin1 text. */
function upstreamText(tap: Tap): string {
  return tap
    .upstream()
    .map((b) => b.toString('latin1'))
    .join('\n');
}

/** The head (request line to the blank line) of the first upstream request containing `marker`; '' if none. */
function headWith(tap: Tap, marker: string): string {
  for (const bytes of tap.upstream()) {
    const text = bytes.toString('latin1');
    const at = text.indexOf(marker);
    if (at < 0) continue;
    const previous = text.lastIndexOf('\r\n\r\n', at);
    const start = previous < 0 ? 0 : previous + 4;
    const line = /[A-Z]+ \S+ HTTP\/1\.[01]\r\n/.exec(text.slice(start));
    const from = line === null ? start : start + line.index;
    const end = text.indexOf('\r\n\r\n', from);
    return text.slice(from, end < 0 ? undefined : end);
  }
  return '';
}

/** The head of the upstream request for `method path`; '' when none went out. */
function headFor(tap: Tap, path: string, method = 'GET'): string {
  return headWith(tap, `${method} ${path} HTTP/1.1\r\n`);
}

/** Every value a head carries under `name` (case-insensitive), in order. */
function fields(head: string, name: string): string[] {
  const out: string[] = [];
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (line.slice(0, colon).toLowerCase() === name) out.push(line.slice(colon + 1).trim());
  }
  return out;
}

/** The final (non-1xx) status of a raw HTTP/1.1 reply; 0 without one. */
function finalStatus(raw: Buffer): number {
  const statuses = [...raw.toString('latin1').matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3}) /g)].map((m) =>
    Number(m[1]),
  );
  return statuses.find((s) => s >= 200) ?? 0;
}

function topology(port: number) {
  return topologyFromYaml(
    [
      configMapYaml({
        'proxy-real-ip-cidr': '10.0.0.0/8',
        'use-forwarded-headers': 'true',
        'proxy-set-headers': 'ingress-nginx/custom-headers',
      }),
      `apiVersion: v1
kind: ConfigMap
metadata: {name: custom-headers, namespace: ingress-nginx}
data:
  X-Copied: "[$http_x_evil]"
  X-Uri: "$request_uri"
---`,
      serviceYaml('app', port),
      ingressYaml('app', '/', 'app'),
      ingressYaml('vhost', '/vhost', 'app', { 'upstream-vhost': 'internal.app.svc' }),
      ingressYaml('stream', '/stream', 'app', { 'proxy-request-buffering': 'off' }),
      ingressYaml('denied', '/denied', 'app', {
        'whitelist-source-range': '10.0.0.0/8',
        'custom-http-errors': '403',
        'default-backend': 'app',
      }),
    ].join('\n'),
  );
}

/** nginx with the template's proxy_set_header block (use-forwarded-headers off for this client). */
function nginxServer(port: number, tapPort: number): string {
  return `
  underscores_in_headers off;
  ignore_invalid_headers on;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  map $http_x_request_id $req_id { default $http_x_request_id; "" $request_id; }
  server {
    listen 127.0.0.1:${port};
    location / {
      set $pass_access_scheme $scheme;
      set $best_http_host $http_host;
      set $pass_port $server_port;
      proxy_set_header Host $best_http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Request-ID $req_id;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $best_http_host;
      proxy_set_header X-Forwarded-Port $pass_port;
      proxy_set_header X-Forwarded-Proto $pass_access_scheme;
      proxy_set_header X-Forwarded-Scheme $pass_access_scheme;
      proxy_set_header X-Scheme $pass_access_scheme;
      proxy_set_header X-Original-Forwarded-For $http_x_forwarded_for;
      proxy_set_header X-Original-Forwarded-Host $http_x_forwarded_host;
      proxy_set_header Proxy "";
      proxy_http_version 1.1;
      proxy_pass http://127.0.0.1:${tapPort};
    }
  }`;
}

let backend: Backend;
let tap: Tap;
let gw: SecurityGateway;
let nginx: RunningNginx;

before(async () => {
  backend = await startBackend();
  tap = await startTap(backend.port);
  gw = await startSecurityGateway(topology(tap.port), { https: { host: '127.0.0.1', port: 0 } });
  nginx = await startNginx({
    freePorts: 1,
    http: (_dir, [port]) => nginxServer(port!, tap.port),
    waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
  });
});
after(async () => {
  await gw.close();
  await nginx.stop();
  await tap.close();
  await backend.close();
});

/** One HTTP/1.1 request (its head without the final CRLF, then `body`) to keepip from CLIENT. */
async function send(head: string, body = '', port = gw.port): Promise<Buffer> {
  return (await exchange(port, CLIENT, `${head}\r\n${body}`)).raw;
}

describe('HTTP/1.1 clients: what the backend reads', () => {
  test("a Connection header naming the gateway's own fields neither strips nor duplicates them (nor does nginx)", async () => {
    assert.equal(finalStatus(await send(`GET /own HTTP/1.1\r\nHost: ${HOST}\r\n${FORGED_OWN}`)), 200);
    assert.equal(
      finalStatus(
        await send(`GET /own-nginx HTTP/1.1\r\nHost: ${HOST}\r\n${FORGED_OWN}`, '', nginx.ports[0]),
      ),
      200,
    );
    const expected = (port: number): Record<string, string> => ({
      host: HOST,
      // $req_id: the client's own X-Request-ID, as ingress-nginx passes it on.
      'x-request-id': 'client-chosen',
      'x-real-ip': CLIENT,
      'x-forwarded-for': CLIENT,
      'x-forwarded-host': HOST,
      'x-forwarded-port': String(port),
      'x-forwarded-proto': 'http',
      'x-forwarded-scheme': 'http',
      'x-scheme': 'http',
      // The incoming X-Forwarded-For and -Host as they came; never the client's own X-Original-*.
      'x-original-forwarded-for': '6.6.6.6',
      'x-original-forwarded-host': 'evil.example',
    });
    for (const [head, port] of [
      [headFor(tap, '/own'), gw.port],
      [headFor(tap, '/own-nginx'), nginx.ports[0]!],
    ] as const) {
      for (const [name, value] of Object.entries(expected(port)))
        assert.deepEqual(fields(head, name), [value], `${name}\n${head}`);
    }
    assert.deepEqual(fields(headFor(tap, '/own'), 'connection'), ['keep-alive']);
  });

  test('hop-by-hop fields, Proxy (httpoxy) and names the client lists in Connection never reach the backend; end-to-end ones do', async () => {
    const hop =
      'Connection: close, X-Listed, keep-alive\r\nX-Listed: l\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n' +
      'Trailer: X-T\r\nProxy-Connection: keep-alive\r\nProxy: http://evil.example:8080\r\n' +
      'HTTP2-Settings: AAMAAABkAAQAAP__\r\nMax-Forwards: 3\r\nCookie: a=1\r\nCookie: b=2\r\nX-Other: o\r\n';
    assert.equal(finalStatus(await send(`GET /hop HTTP/1.1\r\nHost: ${HOST}\r\n${hop}`)), 200);
    assert.equal(
      finalStatus(await send(`GET /hop-nginx HTTP/1.1\r\nHost: ${HOST}\r\n${hop}`, '', nginx.ports[0])),
      200,
    );
    const head = headFor(tap, '/hop');
    for (const name of [
      'x-listed',
      'keep-alive',
      'te',
      'trailer',
      'proxy-connection',
      'proxy',
      'http2-settings',
      'upgrade',
    ])
      assert.deepEqual(fields(head, name), [], `${name}\n${head}`);
    assert.deepEqual(fields(head, 'connection'), ['keep-alive']);
    assert.deepEqual(fields(head, 'cookie'), ['a=1; b=2']);
    assert.deepEqual(fields(head, 'max-forwards'), ['3']);
    assert.deepEqual(fields(head, 'x-other'), ['o']);
    // nginx is looser (it passes X-Listed, Trailer, Proxy-Connection and HTTP2-Settings) but clears Proxy too.
    const theirs = headFor(tap, '/hop-nginx');
    assert.deepEqual(fields(theirs, 'proxy'), []);
    assert.deepEqual(fields(theirs, 'x-listed'), ['l']);
  });

  test('Connection: content-length / transfer-encoding cannot desynchronise the body: one framing, the body whole, nothing after it', async () => {
    const cases = [
      ['/cl', 'Connection: close, content-length\r\nContent-Length: 5\r\n', 'hello'],
      [
        '/te',
        'Connection: close, transfer-encoding\r\nTransfer-Encoding: chunked\r\n',
        '5\r\nhello\r\n0\r\n\r\n',
      ],
      ['/stream/cl', 'Connection: close, content-length\r\nContent-Length: 5\r\n', 'hello'],
      [
        '/stream/te',
        'Connection: close, transfer-encoding\r\nTransfer-Encoding: chunked\r\n',
        '5\r\nhello\r\n0\r\n\r\n',
      ],
    ] as const;
    for (const [path, framing, body] of cases) {
      const smuggle = `${body}GET /desync HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
      assert.equal(
        finalStatus(await send(`POST ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${framing}`, smuggle)),
        200,
      );
      const head = headFor(tap, path, 'POST');
      const framings = [...fields(head, 'content-length'), ...fields(head, 'transfer-encoding')];
      assert.equal(framings.length, 1, head);
      assert.equal(backend.bodies.get(path), 'hello', path);
    }
    // What the client pipelined after its body is its next request on its own connection, which it
    // asked to close: never a request of its own upstream.
    assert.equal(tap.saw('/desync'), false);
  });
});

describe('Expect and TRACE: what nginx answers itself never goes upstream', () => {
  test('Expect: 100-continue on a proxied POST: the gateway answers 100 itself; the backend gets the body, no Expect', async () => {
    const raw = await send(
      `POST /expect HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n`,
      'hello',
    );
    assert.match(raw.toString('latin1'), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.deepEqual(fields(headFor(tap, '/expect', 'POST'), 'expect'), []);
    assert.equal(backend.bodies.get('/expect'), 'hello');
  });

  test('Expect never reaches the backend of a WebSocket upgrade (nginx clears it on every proxied request)', async () => {
    const upgrade = (path: string) =>
      `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: upgrade\r\nUpgrade: websocket\r\nExpect: 100-continue\r\n`;
    assert.match(
      (await send(upgrade('/ws-expect-nginx'), '', nginx.ports[0])).toString('latin1'),
      /HTTP\/1\.1 101 /,
    );
    assert.deepEqual(fields(headFor(tap, '/ws-expect-nginx'), 'expect'), []);
    const raw = await send(upgrade('/ws-expect'));
    assert.match(raw.toString('latin1'), /^HTTP\/1\.1 101 /);
    const head = headFor(tap, '/ws-expect');
    assert.deepEqual(fields(head, 'upgrade'), ['websocket']);
    assert.deepEqual(fields(head, 'expect'), [], head);
  });

  test('Expect never reaches the error backend that answers a refused request (custom-http-errors 403)', async () => {
    for (const [method, body] of [
      ['GET', ''],
      ['POST', 'hello'],
    ] as const) {
      const path = `/denied/expect-${method.toLowerCase()}`;
      const length = body === '' ? '' : `Content-Length: ${body.length}\r\n`;
      const raw = await send(
        `${method} ${path} HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 100-continue\r\n${length}Connection: close\r\n`,
        body,
      );
      // The error backend's answer, to `/` with X-Code 403; the refused location's backend never saw the request.
      assert.equal(finalStatus(raw), 200);
      assert.equal(tap.saw(path), false);
      const head = headWith(tap, `x-original-uri: ${path}\r\n`);
      assert.deepEqual(fields(head, 'x-code'), ['403'], head);
      assert.deepEqual(fields(head, 'expect'), [], head);
    }
  });

  test('TRACE is answered 405 by the gateway, as nginx answers it, and never reaches the backend (HTTP/1.1)', async () => {
    // A backend that implements TRACE (Apache's TraceEnable defaults to on) echoes the request it got:
    // the client's HttpOnly cookies and whatever the gateway added (X-Real-IP, auth-response-headers…).
    const trace = `TRACE /trace HTTP/1.1\r\nHost: ${HOST}\r\nMax-Forwards: 0\r\nCookie: session=s\r\nConnection: close\r\n`;
    assert.equal(finalStatus(await send(trace, '', nginx.ports[0])), 405);
    const status = finalStatus(await send(trace));
    assert.equal(tap.saw('/trace'), false, 'TRACE went upstream');
    assert.equal(status, 405);
  });

  test('two Authorization lines are a 400, as nginx answers them, and never reach the backend (HTTP/1.1)', async () => {
    // With two, the gateway's check, an auth-url service and the backend could each read a different one.
    const twice = (path: string) =>
      `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Basic YTpi\r\nAuthorization: Bearer x\r\nConnection: close\r\n`;
    assert.equal(finalStatus(await send(twice('/auth-twice-nginx'), '', nginx.ports[0])), 400);
    assert.equal(finalStatus(await send(twice('/auth-twice'))), 400);
    assert.equal(tap.saw('/auth-twice'), false, 'the request went upstream');
  });
});

describe('what keepip adds: proxy-set-headers, upstream-vhost, request trailers', () => {
  test('proxy-set-headers quoting client data: expanded once, a client value with $variables stays literal', async () => {
    // The braced form of $http_host too (spelt in two parts: it is no template placeholder).
    const evil = ['$remote_addr', ['$', '{http_host}'].join(''), '$http_x_evil'].join(' ');
    const status = finalStatus(
      await send(
        `GET /vars?a=$remote_addr HTTP/1.1\r\nHost: ${HOST}\r\nX-Evil: ${evil}\r\nX-Copied: forged\r\nConnection: close\r\n`,
      ),
    );
    assert.equal(status, 200);
    const head = headFor(tap, '/vars?a=$remote_addr');
    assert.deepEqual(fields(head, 'x-copied'), [`[${evil}]`], head);
    assert.deepEqual(fields(head, 'x-uri'), ['/vars?a=$remote_addr']);
    assert.deepEqual(fields(head, 'x-real-ip'), [CLIENT]);
  });

  test("upstream-vhost: Host is the vhost and X-Forwarded-Host the client's Host; Connection: host or a forged X-Forwarded-Host changes neither", async () => {
    const status = finalStatus(
      await send(
        `GET /vhost/x HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close, host, x-forwarded-host\r\nX-Forwarded-Host: evil.example\r\n`,
      ),
    );
    assert.equal(status, 200);
    const head = headFor(tap, '/vhost/x');
    assert.deepEqual(fields(head, 'host'), ['internal.app.svc'], head);
    assert.deepEqual(fields(head, 'x-forwarded-host'), [HOST]);
    assert.deepEqual(fields(head, 'x-original-forwarded-host'), ['evil.example']);
  });

  test('fields in a chunked request trailer never become fields upstream (buffered and streamed bodies)', async () => {
    const trailer =
      '0\r\nX-Real-IP: 203.0.113.99\r\nX-Forwarded-For: 203.0.113.99\r\nX-Trailer-Only: t\r\n\r\n';
    for (const path of ['/trailer', '/stream/trailer']) {
      const head = `POST ${path} HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\nTrailer: X-Real-IP\r\nConnection: close\r\n`;
      assert.equal(finalStatus(await send(head, `5\r\nhello\r\n${trailer}`)), 200);
      assert.equal(backend.bodies.get(path), 'hello');
    }
    const text = upstreamText(tap);
    assert.doesNotMatch(text, /203\.0\.113\.99|x-trailer-only/i);
  });
});

type H2Answer = { status: number } | { refused: 'reset' | 'goaway' | 'closed' };

/** One stream on a fresh TLS connection from CLIENT: HEADERS, then DATA frames and a trailer block if given. */
async function h2Send(
  fields: [string, string][],
  data: readonly Buffer[] = [],
  trailers: [string, string][] = [],
): Promise<H2Answer> {
  const raw = await connectRawH2({ port: gw.gateway.httpsAddress?.port ?? 0, from: CLIENT });
  const ends = data.length === 0 && trailers.length === 0;
  await raw.send(
    frame(FRAME.HEADERS, FLAG.END_HEADERS | (ends ? FLAG.END_STREAM : 0), 1, headerBlock(fields)),
  );
  for (const [i, chunk] of data.entries()) {
    const last = i === data.length - 1 && trailers.length === 0;
    await raw.send(frame(FRAME.DATA, last ? FLAG.END_STREAM : 0, 1, chunk));
  }
  if (trailers.length > 0)
    await raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(trailers)));
  const f = await raw
    .waitFrame(
      (x) =>
        ((x.type === FRAME.HEADERS || x.type === FRAME.RST_STREAM) && x.streamId === 1) ||
        x.type === FRAME.GOAWAY,
    )
    // A connection error (GOAWAY) the server closes after: on a busy machine the close can reach the
    // client as a reset that discards the GOAWAY still unread (seen once beside two busy loops).
    .catch((error: Error) => {
      if (!/connection closed without the frame/.test(error.message)) throw error;
      return null;
    });
  raw.close();
  if (f === null) return { refused: 'closed' };
  if (f.type === FRAME.HEADERS) return { status: responseStatus(f.payload) };
  return { refused: f.type === FRAME.RST_STREAM ? 'reset' : 'goaway' };
}

describe('HTTP/2 clients downgraded to an HTTP/1.1 backend', () => {
  test('cookie crumbs become one cookie field; te, proxy, http2-settings, underscore names and forged X-Forwarded-* never pass', async () => {
    const extra: [string, string][] = [
      ['cookie', 'a=1'],
      ['cookie', 'b=2'],
      ['te', 'trailers'],
      ['proxy', 'http://evil.example:8080'],
      ['http2-settings', 'AAMAAABkAAQAAP__'],
      ['x_real_ip', '6.6.6.6'],
      ['x_forwarded_for', '6.6.6.6'],
      ['x-real-ip', '6.6.6.6'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-port', '80'],
    ];
    assert.deepEqual(await h2Send(requestFields(HOST, '/h2/fields', 'GET', extra)), { status: 200 });
    const head = headFor(tap, '/h2/fields');
    assert.deepEqual(fields(head, 'cookie'), ['a=1; b=2'], head);
    for (const name of ['te', 'proxy', 'http2-settings', 'x_real_ip', 'x_forwarded_for'])
      assert.deepEqual(fields(head, name), [], `${name}\n${head}`);
    assert.deepEqual(fields(head, 'x-real-ip'), [CLIENT]);
    assert.deepEqual(fields(head, 'x-forwarded-proto'), ['https']);
    assert.deepEqual(fields(head, 'x-forwarded-port'), ['443']);
    assert.deepEqual(fields(head, 'host'), [HOST]);
  });

  test('a content-length that disagrees with DATA is refused: neither its body nor a request hidden in it reaches the backend', async () => {
    const hidden = Buffer.from(`abcdefGET /h2/smuggled HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, 'latin1');
    for (const [path, length, data] of [
      ['/h2/cl-long', '3', [hidden]],
      ['/h2/cl-short', '300', [Buffer.from('abc')]],
      ['/stream/h2/cl-long', '3', [hidden]],
    ] as const) {
      const answer = await h2Send(requestFields(HOST, path, 'POST', [['content-length', length]]), data);
      assert.ok('refused' in answer || answer.status >= 400, `${path}: ${JSON.stringify(answer)}`);
      assert.equal(backend.bodies.has(path), false, path);
    }
    assert.equal(tap.saw('/h2/smuggled'), false);
  });

  test('a :path no request line can carry, or an :authority with userinfo, is refused and never written upstream', async () => {
    const paths = ['/h2/a b', '/h2/tab\tx', 'h2-no-slash', '/h2/frag#x'];
    for (const path of paths) {
      const answer = await h2Send(requestFields(HOST, path));
      assert.ok('refused' in answer || answer.status === 400, `${path}: ${JSON.stringify(answer)}`);
    }
    const userinfo = await h2Send(requestFields(`evil@${HOST}`, '/h2/userinfo'));
    assert.ok('refused' in userinfo || userinfo.status === 400, JSON.stringify(userinfo));
    assert.doesNotMatch(upstreamText(tap), /\/h2\/(a b|tab|frag|userinfo)|h2-no-slash|evil@/);
    // A byte above 0x7f is no split point: passed on as it came, as nginx passes it (the node backend
    // then refuses it with its own 400).
    assert.ok(!('refused' in (await h2Send(requestFields(HOST, '/h2/caf\u00e9')))));
    assert.match(headFor(tap, '/h2/caf\u00e9'), /^GET \/h2\/caf\u00e9 HTTP\/1\.1\r\nhost: /);
  });

  test('request trailers never become fields upstream (buffered and streamed bodies)', async () => {
    const trailers: [string, string][] = [
      ['x-real-ip', '203.0.113.98'],
      ['x-h2-trailer-only', 't'],
    ];
    for (const path of ['/h2/trailer', '/stream/h2/trailer']) {
      const answer = await h2Send(requestFields(HOST, path, 'POST'), [Buffer.from('hello')], trailers);
      assert.deepEqual(answer, { status: 200 }, path);
      assert.equal(backend.bodies.get(path), 'hello');
    }
    assert.doesNotMatch(upstreamText(tap), /203\.0\.113\.98|x-h2-trailer-only/i);
  });

  test('TRACE over HTTP/2 is answered 405, as nginx answers it, and never reaches the backend', async () => {
    const answer = await h2Send(requestFields(HOST, '/h2/trace', 'TRACE', [['cookie', 'session=s']]));
    assert.equal(tap.saw('/h2/trace'), false, 'TRACE went upstream');
    assert.deepEqual(answer, { status: 405 });
  });

  test('two authorization fields over HTTP/2 are a 400, as nginx answers them, and never reach the backend', async () => {
    const fieldsTwice: [string, string][] = [
      ['authorization', 'Basic YTpi'],
      ['authorization', 'Bearer x'],
    ];
    const answer = await h2Send(requestFields(HOST, '/h2/auth-twice', 'GET', fieldsTwice));
    assert.equal(tap.saw('/h2/auth-twice'), false, 'the request went upstream');
    assert.deepEqual(answer, { status: 400 });
    // One is passed on as usual.
    const once = await h2Send(requestFields(HOST, '/h2/auth-once', 'GET', [['authorization', 'Bearer x']]));
    assert.deepEqual(once, { status: 200 });
    assert.deepEqual(fields(headFor(tap, '/h2/auth-once'), 'authorization'), ['Bearer x']);
  });
});
