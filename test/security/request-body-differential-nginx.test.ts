// Request bodies on their way to the backend: keepip against real nginx 1.22 configured as ingress-nginx
// renders the body keys (rootfs/etc/nginx/template/nginx.tmpl: the http block's `client_body_buffer_size`
// and `client_body_timeout`, the location's `client_max_body_size` from proxy-body-size (annotation or
// ConfigMap), `client_body_buffer_size` from the client-body-buffer-size annotation,
// `proxy_request_buffering on|off`, `proxy_http_version 1.1`, `Connection $connection_upgrade` ('' with
// upstream keepalive), `allow …; deny all;` from whitelist-source-range; the upstream's `keepalive 320`).
//
// The claims checked (docs/gateway.md):
//   "every request is re-framed towards the backend, so no request can hide in another's body."
//   "What the backend sees. Nothing of the request until the body is complete; then the head and the
//    body together, with `Content-Length` (a chunked HTTP/1.1 body … sent de-chunked with their
//    length), no `Transfer-Encoding`. … `Expect: 100-continue` is answered when the gateway starts
//    reading the body, before any backend is involved, as nginx does."
//   "Limits as before. A declared `Content-Length` over `proxy-body-size` is 413 before anything is
//    read; a chunked … body that grows past it is 413 as it does … A client that leaves mid-body is
//    logged with status 400 and no upstream, as nginx logs it"
//   "`off` streams the body as it arrives, chunked staying chunked (HTTP/1.1 to the backend)"
//   "413 when Content-Length exceeds `proxy-body-size` …, or when a chunked body grows past it, or when
//    its chunk-size lines announce more than it (at once, before the announced bytes come, as nginx);
//    the connection then closes."
//   "Trailers and chunk extensions are validated and dropped: the upstream request is always re-framed
//    by keepip." "`100 Continue` is sent only when the body is read (nginx's behaviour; a 413 goes out
//    without it)"
//   "after an answer while the client may still send (a declared body left unread: 403, 404, 413,
//    a redirect, a 5xx, a backend that answered early; …) … the rest is read and dropped, then close;
//    on a kept-alive connection whose body ends in time, the next request follows"
//   "With `proxy-request-buffering: off`, a chunked body over `proxy-body-size` is cut at the limit and
//    answered 413 after the backend has seen its start (nginx reads a chunked body before deciding
//    too)"
//
// One raw recording backend (127.0.0.1, port 0) behind both proxies parses what it receives strictly
// (RFC 9112: Content-Length or chunked) and records, per request, the head's framing fields
// (Content-Length, Transfer-Encoding, Expect, Connection), the body (decoded), chunk extensions and
// trailers that reached it, whether the body was whole or the connection ended inside it. Requests are
// told apart by X-Real-IP: each case's client connects from its own 127.x address (127.93.x.y to
// nginx, 127.94.x.y to keepip). Its path chooses the backend's behaviour: `/rec/` answers once the body
// is whole, `/early/` answers as soon as the head is in (before reading the body; it then drains the
// body it was promised, as a correct HTTP/1.1 server must), `/cont/` sends `100 Continue` first when the
// head asks for it. Any request whose target names `smuggled` (a request carried in a body) is a
// request that hid in another's body.
//
// Cases are scripts of writes and waits on signals (the backend has seen the head, the client has an
// answer, the backend's connection ended), never on time; the one exception is an Expect case whose
// client, as RFC 9110 10.1.1 lets it, sends its body anyway when no 100 comes within EXPECT_WAIT_MS
// (that only decides whether a `100` came first, and a `100` that comes at all comes at once).
// Compared per case: every status the client saw (1xx included) and in what order, what the backend
// saw (framing, Expect, Connection, body, whole or cut), and for the cases where the client leaves, the
// status each access log wrote for it. A difference passes only when ALLOWED names it (with the doc line
// that allows it); every ALLOWED entry must still be met (the table cannot rot). A body reaching the
// backend framed so that it could be read otherwise, a request smuggled through, a limit bypassed, or a
// truncated body presented as whole is a FINDING: the test asserts nginx's (safe) behaviour and fails.
// BODYDIFF_SHOW=1 prints both outcomes of every case (BODYDIFF_LOG_WAIT_MS bounds the wait for a log line).
//
// Found by this file and fixed: with proxy-request-buffering off, a client that half-closed (FIN)
// mid-body was logged `502 502` with nginx's "upstream prematurely closed connection while reading
// response header from upstream" error line, blaming a backend that did nothing wrong (nginx: 400, no
// upstream status); one that reset (RST) mid-body was logged 499 (nginx: 400). No body byte reached a
// backend framed otherwise than nginx frames it, nothing was smuggled, no limit bypassed.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { framedResponses } from '../helpers/net.ts';
import {
  configMapYaml,
  ingressYaml,
  type SecurityGateway,
  serviceYaml,
  startSecurityGateway,
  topologyFromYaml,
} from './helpers.ts';
import { type Recorder, type Seen, startBodyRecorder } from '../helpers/body-recorder.ts';
import { nginxBodyLocation } from '../helpers/nginx-body-location.ts';

/** The limit (proxy-body-size) of every location, in bytes. */
const LIMIT = 2048;
const SAFETY_MS = 15_000;
const EXPECT_WAIT_MS = 4_000;
const LOG_WAIT_MS = Number(process.env.BODYDIFF_LOG_WAIT_MS ?? 5_000);
const LOG_FORMAT = '$remote_addr $status $upstream_status';

// ---------------------------------------------------------------------------------------------
// The two proxies

function nginxHttp(port: number, backend: number): string {
  return `
  log_format bodies '${LOG_FORMAT}';
  access_log ACCESS bodies;
  reset_timedout_connection on;
  client_header_buffer_size 1k;
  large_client_header_buffers 4 8k;
  client_body_buffer_size 8k;
  # Deadlines shortened so that a connection left open ends soon (the same values on keepip); the body
  # and head ones stay long enough that a stalled event loop on a busy machine never fires them.
  client_header_timeout 5s;
  client_body_timeout 5s;
  keepalive_timeout 1s;
  lingering_timeout 1s;
  keepalive_requests 1000;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream upstream_balancer { server 127.0.0.1:${backend}; keepalive 320; keepalive_requests 10000; }
  server {
    listen 127.0.0.1:${port} default_server;
    server_name _;
    ${nginxBodyLocation('/buf/', 'client_body_buffer_size 1k; proxy_request_buffering on;', LIMIT)}
    ${nginxBodyLocation('/stream/', 'proxy_request_buffering off;', LIMIT)}
    ${nginxBodyLocation('/deny/', 'allow 10.0.0.0/8; deny all; proxy_request_buffering on;', LIMIT)}
  }`;
}

interface Bench {
  nginx: RunningNginx;
  keepip: SecurityGateway;
  recorder: Recorder;
}

async function startBench(): Promise<Bench> {
  const recorder = await startBodyRecorder('x-real-ip', SAFETY_MS);
  let nginx: RunningNginx | undefined;
  try {
    nginx = await startNginx({
      freePorts: 1,
      http: (dir, [port]) => nginxHttp(port!, recorder.port).replace('ACCESS', `${dir}/bodies.log`),
      waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
    });
    const yaml = [
      configMapYaml({ 'proxy-body-size': String(LIMIT), 'log-format-upstream': LOG_FORMAT }),
      serviceYaml('rec', recorder.port),
      ingressYaml('buf', '/buf', 'rec', { 'client-body-buffer-size': '1k' }),
      ingressYaml('stream', '/stream', 'rec', {
        'proxy-request-buffering': 'off',
        'proxy-body-size': String(LIMIT),
      }),
      ingressYaml('deny', '/deny', 'rec', { 'whitelist-source-range': '10.0.0.0/8' }),
    ];
    const keepip = await startSecurityGateway(topologyFromYaml(yaml.join('\n')), {
      clientHeaderTimeoutMs: 5_000,
      clientBodyTimeoutMs: 5_000,
      keepAliveTimeoutMs: 1_000,
      lingeringTimeoutMs: 1_000,
    });
    return { nginx, keepip, recorder };
  } catch (error) {
    await nginx?.stop();
    await recorder.close();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Cases: scripts of writes and waits

type Step =
  | { write: string }
  /** Until the backend has the head of this client's request. */
  | { waitHead: true }
  /** Until the client has read bytes matching `reply` (at most EXPECT_WAIT_MS when `fallback`). */
  | { waitReply: RegExp; fallback?: boolean }
  /** Until the backend's requests from this client are whole or cut. */
  | { waitSettled: true }
  | { end: true }
  | { reset: true };

interface Case {
  name: string;
  steps: Step[];
  /** Compare the access logs' status for the client (the client leaves: 400 / 499 / 408). */
  logs?: boolean;
  /** A whole chunked body the backend gets as its first request. */
  chunkedWhole?: boolean;
}

const HOST = 'Host: h.test';
const SENTINEL = `GET /buf/rec/next HTTP/1.1\r\n${HOST}\r\nConnection: close\r\n\r\n`;
const SMUGGLED = `GET /buf/rec/smuggled HTTP/1.1\r\n${HOST}\r\nX-Real-IP: 6.6.6.6\r\n\r\n`;
const head = (line: string, fields: readonly string[]): string =>
  `${line}\r\n${[HOST, ...fields].map((f) => `${f}\r\n`).join('')}\r\n`;
const chunks = (data: string, size: number): string => {
  let out = '';
  for (let i = 0; i < data.length; i += size) {
    const part = data.slice(i, i + size);
    out += `${part.length.toString(16)}\r\n${part}\r\n`;
  }
  return out;
};
const filler = (n: number): string =>
  'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(n / 36)).slice(0, n);
const ANY_STATUS = /HTTP\/1\.[01] \d{3} /;
const FINAL_STATUS = /HTTP\/1\.[01] [2-5]\d\d /;

function casesFor(loc: 'buf' | 'stream'): Case[] {
  const streaming = loc === 'stream';
  const post = (kind: string, fields: readonly string[]) => head(`POST /${loc}/${kind}/x HTTP/1.1`, fields);
  /** In streaming mode, wait for the backend to have the head before going on. */
  const headSeen: Step[] = streaming ? [{ waitHead: true }] : [];
  const te = 'Transfer-Encoding: chunked';
  const cases: Case[] = [
    {
      name: 'Content-Length body',
      steps: [{ write: `${post('rec', ['Content-Length: 11'])}hello world${SENTINEL}` }],
    },
    {
      name: 'chunked body with extensions, upper-case hex and leading zeros',
      chunkedWhole: true,
      steps: [
        {
          write: `${post('rec', [te])}0005;ext=1\r\nhello\r\n00A;a="b;c"\r\n0123456789\r\n000\r\n\r\n${SENTINEL}`,
        },
      ],
    },
    {
      name: 'chunked body whose last chunk has trailer fields that look like headers',
      chunkedWhole: true,
      steps: [
        {
          write:
            post('rec', [te]) +
            '5\r\nhello\r\n0\r\nX-Real-IP: 6.6.6.6\r\nHost: evil.test\r\nExpect: 100-continue\r\nX-Trailer: t\r\n\r\n' +
            SENTINEL,
        },
      ],
    },
    {
      name: 'chunked body whose trailers carry framing fields (Content-Length, Transfer-Encoding)',
      steps: [
        {
          write:
            post('rec', [te]) +
            '5\r\nhello\r\n0\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n' +
            SENTINEL,
        },
      ],
    },
    {
      name: 'chunked body whose trailer section carries a request',
      steps: [{ write: `${post('rec', [te])}5\r\nhello\r\n0\r\n${SMUGGLED}${SENTINEL}` }],
    },
    { name: 'empty chunked body', steps: [{ write: `${post('rec', [te])}0\r\n\r\n${SENTINEL}` }] },
    {
      name: 'GET with a Content-Length body that is a request',
      steps: [
        {
          write:
            head(`GET /${loc}/rec/x HTTP/1.1`, [`Content-Length: ${SMUGGLED.length}`]) + SMUGGLED + SENTINEL,
        },
      ],
    },
    {
      name: 'GET with a chunked body that is a request',
      chunkedWhole: true,
      steps: [
        {
          write: `${head(`GET /${loc}/rec/x HTTP/1.1`, [te])}${chunks(SMUGGLED, 16)}0\r\n\r\n${SENTINEL}`,
        },
      ],
    },
    {
      name: 'body of exactly the limit, chunked',
      chunkedWhole: true,
      steps: [{ write: `${post('rec', [te])}${chunks(filler(LIMIT), 100)}0\r\n\r\n${SENTINEL}` }],
    },
    {
      name: 'declared body over the limit',
      steps: [
        { write: post('rec', [`Content-Length: ${LIMIT + 1}`]) + filler(LIMIT + 1) + SENTINEL },
        { waitReply: FINAL_STATUS },
      ],
    },
    {
      name: 'one chunk announcing more than the limit',
      steps: [
        {
          write: `${post('rec', [te])}${(LIMIT + 1).toString(16)}\r\n${filler(LIMIT + 1)}\r\n0\r\n\r\n${SENTINEL}`,
        },
      ],
    },
    {
      name: 'undeclared body growing past the limit in small chunks',
      steps: [
        { write: post('rec', [te]) + chunks(filler(1000), 100) },
        ...headSeen,
        { write: `${chunks(filler(LIMIT), 100)}0\r\n\r\n${SENTINEL}` },
        { waitSettled: true },
      ],
    },
    {
      name: 'undeclared body past the limit by chunk-size lines with leading zeros',
      steps: [
        { write: post('rec', [te]) + chunks(filler(1000), 100) },
        ...headSeen,
        { write: `0000${LIMIT.toString(16).toUpperCase()}\r\n${filler(LIMIT)}\r\n0\r\n\r\n${SENTINEL}` },
        { waitSettled: true },
      ],
    },
    {
      name: 'client leaves mid-body (FIN), Content-Length',
      logs: true,
      steps: [{ write: `${post('rec', ['Content-Length: 100'])}0123456789` }, ...headSeen, { end: true }],
    },
    {
      name: 'client leaves mid-body (FIN), chunked, between two chunks',
      logs: true,
      steps: [{ write: `${post('rec', [te])}a\r\n0123456789\r\n` }, ...headSeen, { end: true }],
    },
    {
      name: 'client leaves mid-body (FIN), chunked, inside a chunk',
      logs: true,
      steps: [{ write: `${post('rec', [te])}14\r\n0123456789` }, ...headSeen, { end: true }],
    },
    {
      // The 100 proves the proxy has read the head: a reset that overtook it would discard the request
      // unread, and neither proxy could log it.
      name: 'client resets mid-body (RST), Content-Length',
      logs: true,
      steps: [
        { write: post('rec', ['Expect: 100-continue', 'Content-Length: 100']) },
        { waitReply: / 100 / },
        { write: '0123456789' },
        ...headSeen,
        { reset: true },
      ],
    },
    {
      name: 'Expect: 100-continue with a Content-Length body',
      steps: [
        { write: post('rec', ['Expect: 100-continue', 'Content-Length: 5']) },
        { waitReply: ANY_STATUS, fallback: true },
        { write: `hello${SENTINEL}` },
      ],
    },
    {
      name: 'Expect: 100-continue with a chunked body, to a backend that answers 100 itself',
      steps: [
        { write: post('cont', ['Expect: 100-continue', te]) },
        { waitReply: ANY_STATUS, fallback: true },
        { write: `5\r\nhello\r\n0\r\n\r\n${SENTINEL}` },
      ],
    },
    {
      name: 'Expect: 100-continue with Content-Length: 0',
      steps: [{ write: post('cont', ['Expect: 100-continue', 'Content-Length: 0']) + SENTINEL }],
    },
    {
      name: 'Expect: 100-continue on a GET without a body',
      steps: [{ write: head(`GET /${loc}/cont/x HTTP/1.1`, ['Expect: 100-continue']) + SENTINEL }],
    },
    {
      name: 'Expect: 100-continue with a declared body over the limit',
      steps: [
        { write: post('rec', ['Expect: 100-continue', `Content-Length: ${LIMIT + 1}`]) },
        { waitReply: ANY_STATUS, fallback: true },
        { write: filler(LIMIT + 1) + SENTINEL },
      ],
    },
    {
      name: 'backend answers before reading the Content-Length body',
      steps: streaming
        ? [
            { write: `${post('early', ['Content-Length: 20'])}0123456789` },
            { waitReply: /early/ },
            { write: `abcdefghij${SENTINEL}` },
          ]
        : [{ write: `${post('early', ['Content-Length: 20'])}0123456789abcdefghij${SENTINEL}` }],
    },
    {
      name: 'backend answers before reading the chunked body; the rest carries a request',
      steps: streaming
        ? [
            { write: `${post('early', [te])}a\r\n0123456789\r\n` },
            { waitReply: /early/ },
            { write: `${chunks(SMUGGLED, 16)}0\r\n\r\n${SENTINEL}` },
          ]
        : [{ write: `${post('early', [te])}a\r\n0123456789\r\n${chunks(SMUGGLED, 16)}0\r\n\r\n${SENTINEL}` }],
    },
  ];
  return cases.map((c) => ({ ...c, name: `${loc}: ${c.name}` }));
}

const DENY_CASES: Case[] = [
  {
    name: 'deny: a denied request with a Content-Length body that is a request',
    steps: [
      {
        write:
          head('POST /deny/rec/x HTTP/1.1', [`Content-Length: ${SMUGGLED.length}`]) + SMUGGLED + SENTINEL,
      },
    ],
  },
  {
    name: 'deny: a denied request with a chunked body that is a request',
    steps: [
      {
        write: `${head('POST /deny/rec/x HTTP/1.1', ['Transfer-Encoding: chunked'])}${chunks(SMUGGLED, 16)}0\r\n\r\n${SENTINEL}`,
      },
    ],
  },
  {
    name: 'deny: a denied GET with a Content-Length body that is a request',
    steps: [
      {
        write: head('GET /deny/rec/x HTTP/1.1', [`Content-Length: ${SMUGGLED.length}`]) + SMUGGLED + SENTINEL,
      },
    ],
  },
  {
    name: 'deny: a denied request with Expect: 100-continue, its body sent after the answer',
    steps: [
      {
        write: head('POST /deny/rec/x HTTP/1.1', [
          'Expect: 100-continue',
          `Content-Length: ${SMUGGLED.length}`,
        ]),
      },
      { waitReply: ANY_STATUS, fallback: true },
      { write: SMUGGLED + SENTINEL },
    ],
  },
  {
    name: 'deny: a denied request with a declared body over the limit',
    steps: [
      {
        write:
          head('POST /deny/rec/x HTTP/1.1', [`Content-Length: ${LIMIT + 1}`]) + filler(LIMIT + 1) + SENTINEL,
      },
    ],
  },
];

const CASES: Case[] = [...casesFor('buf'), ...casesFor('stream'), ...DENY_CASES];

// ---------------------------------------------------------------------------------------------
// Running a case against one proxy

interface Outcome {
  /** Every status line the client read, in order (1xx included). */
  statuses: number[];
  /** Whether an Expect client had to send its body without an answer. */
  expectTimedOut: boolean;
  /** What the backend saw from this client, as compared. */
  upstream: string[];
  /** The backend's requests from this client were all whole or cut in the end. */
  settled: boolean;
  /** The access log's statuses for this client ('' when not compared). */
  logged: string;
}

/** What is compared of one request the backend saw (a cut body's length depends on reads: left out). */
function describeSeen(s: Seen): string {
  const framing =
    s.codings.length > 0
      ? `te:${s.codings.join(',')}`
      : s.lengths.length > 0
        ? `cl:${s.lengths.join(',')}`
        : 'none';
  const body = s.body.length > 64 ? `<${s.body.length} bytes>` : JSON.stringify(s.body.toString('latin1'));
  return [
    s.target.replace(/\/x$/, ''),
    framing,
    s.expect.length > 0 ? `expect:${s.expect.join(',')}` : '',
    s.connection.length > 0 ? `connection:${s.connection.join(',')}` : '',
    s.cut ? 'CUT' : s.whole ? `body ${body}` : 'OPEN',
    s.extensions.length > 0 ? `ext:${s.extensions.join('')}` : '',
    s.trailers.length > 0 ? `trailers:${s.trailers.join('|')}` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

async function runCase(
  bench: Bench,
  port: number,
  from: string,
  c: Case,
  logLines: () => Promise<string[]>,
): Promise<Outcome> {
  let received = Buffer.alloc(0);
  let expectTimedOut = false;
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
  socket.on('error', () => {});
  const listeners = new Set<() => void>();
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    for (const l of [...listeners]) l();
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const safety = setTimeout(() => socket.destroy(), SAFETY_MS);
  const whenReceived = (pattern: RegExp, waitMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      const done = (ok: boolean) => {
        listeners.delete(check);
        clearTimeout(timer);
        resolve(ok);
      };
      const check = () => {
        if (pattern.test(received.toString('latin1'))) done(true);
      };
      const timer = setTimeout(() => done(false), waitMs);
      listeners.add(check);
      void closed.then(() => done(pattern.test(received.toString('latin1'))));
      check();
    });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  let settled = true;
  for (const step of c.steps) {
    if (socket.destroyed) break;
    if ('write' in step) socket.write(Buffer.from(step.write, 'latin1'));
    else if ('waitHead' in step) await bench.recorder.waitHead(from);
    else if ('waitReply' in step) {
      const ok = await whenReceived(step.waitReply, step.fallback === true ? EXPECT_WAIT_MS : SAFETY_MS);
      if (!ok && step.fallback === true) expectTimedOut = true;
    } else if ('waitSettled' in step) settled = await bench.recorder.waitSettled(from);
    else if ('end' in step) socket.end();
    else socket.resetAndDestroy();
  }
  await closed;
  clearTimeout(safety);
  // After the client's connection is closed, the backend's side must end too: each request whole or cut.
  settled = settled && (await bench.recorder.waitSettled(from));
  const statuses = framedResponses(received).map((r) => r.status);
  let logged = '';
  if (c.logs === true) {
    const lines = await logLines();
    logged = lines
      .filter((l) => l.startsWith(`${from} `))
      .map((l) => l.slice(from.length + 1))
      .join(' | ');
  }
  return {
    statuses,
    expectTimedOut,
    upstream: (bench.recorder.seen.get(from) ?? []).map(describeSeen),
    settled,
    logged,
  };
}

/**
 * Polls `read` until a line for `from` is in it (a positive signal), at most LOG_WAIT_MS: a line that
 * never comes is a failed comparison, so the bound only decides how long such a failure takes.
 */
async function linesWith(read: () => string[], from: string): Promise<string[]> {
  const deadline = Date.now() + LOG_WAIT_MS;
  for (;;) {
    const lines = read();
    if (lines.some((l) => l.startsWith(`${from} `)) || Date.now() > deadline) return lines;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// ---------------------------------------------------------------------------------------------
// Where keepip may differ from nginx (each with the doc line), and the findings' safe expectation.

interface Allowed {
  /** The cases it covers. */
  applies(c: Case): boolean;
  /** The doc line (or the RFC) that allows it. */
  reason: string;
  /** nginx's outcome turned into the one keepip is allowed to give instead. */
  expect(ngx: Outcome): Outcome;
  /** That keepip still does what the entry allows (so that the table cannot rot). */
  seen(kip: Outcome): boolean;
}

const mapUpstream = (o: Outcome, f: (entry: string, i: number) => string): Outcome => ({
  ...o,
  upstream: o.upstream.map(f),
});

// Applied in this order to nginx's outcome (the Connection entry last: it marks every request, the
// ones the others add included).
const ALLOWED: Allowed[] = [
  {
    applies: (c) => c.name.startsWith('stream: ') && c.chunkedWhole === true,
    reason:
      'docs/gateway.md: "`off` streams the body as it arrives, chunked staying chunked (HTTP/1.1 to the backend)" (nginx sends a chunked body it read whole in its first read with Content-Length, one that comes later chunked: both are nginx\'s own framings)',
    expect: (ngx) => mapUpstream(ngx, (e, i) => (i === 0 ? e.replace(/^(\S+) cl:\d+/, '$1 te:chunked') : e)),
    seen: (kip) => /^\S+ te:chunked /.test(kip.upstream[0] ?? ''),
  },
  {
    applies: (c) => /Expect: 100-continue (with Content-Length: 0|on a GET without a body)/.test(c.name),
    reason:
      'docs/gateway.md: "`100 Continue` is sent only when the body is read"; RFC 9110 10.1.1 lets a server omit the 100 when the framing says there is no content (nginx 1.22 sends one anyway)',
    expect: (ngx) => ({ ...ngx, statuses: ngx.statuses.filter((s) => s !== 100) }),
    seen: (kip) => !kip.statuses.includes(100),
  },
  {
    applies: (c) => /trailers carry framing fields|trailer section carries a request/.test(c.name),
    reason:
      'docs/gateway.md: "anything ambiguous … is refused with 400 … and the connection closed", "malformed chunk sizes, extensions or chunk ends (400)"; a trailer section must be fields (RFC 9112 7.1.2) and none that frames the message (RFC 9110 6.5.1; src/gateway/h1-request.ts framingTrailer). nginx reads any line there and drops it',
    expect: (ngx) => ({ ...ngx, statuses: [400], upstream: [] }),
    seen: (kip) => kip.statuses.join() === '400' && kip.upstream.length === 0,
  },
  {
    applies: (c) => c.name.startsWith('stream: backend answers before reading'),
    reason:
      'docs/gateway.md, Client deadlines: "after an answer while the client may still send (… a backend that answered early …) … the rest is read and dropped, then close; on a kept-alive connection whose body ends in time, the next request follows" (nginx 1.22 closes the client connection; the backend connection is closed by both)',
    expect: (ngx) => ({
      ...ngx,
      statuses: [...ngx.statuses, 200],
      upstream: [...ngx.upstream, '/buf/rec/next none body ""'],
    }),
    seen: (kip) => kip.statuses.join() === '200,200' && /\bCUT\b/.test(kip.upstream[0] ?? ''),
  },
  {
    applies: () => true,
    reason:
      "docs/ingress-nginx-compat.md, connection-proxy-header: \"keepip sends `keep-alive` by default\" (nginx, with ingress-nginx's $connection_upgrade '', sends no Connection field: the same meaning in HTTP/1.1)",
    expect: (ngx) =>
      mapUpstream(ngx, (e) => e.replace(/^(\S+ \S+(?: expect:\S+)?)/, '$1 connection:keep-alive')),
    seen: (kip) =>
      kip.upstream.length === 0 || kip.upstream.every((e) => e.includes(' connection:keep-alive')),
  },
];

const allowedFor = (c: Case): Allowed[] => ALLOWED.filter((a) => a.applies(c));

const project = (o: Outcome) => ({
  statuses: o.statuses,
  expectTimedOut: o.expectTimedOut,
  upstream: o.upstream,
  settled: o.settled,
  logged: o.logged,
});

describe('request bodies towards the backend: keepip against nginx 1.22 as ingress-nginx renders them', () => {
  let bench: Bench;
  const results = new Map<string, { ngx: Outcome; kip: Outcome }>();

  before(async () => {
    bench = await startBench();
    const nginxLog = () => bench.nginx.readFile('bodies.log').split('\n');
    await Promise.all(
      CASES.map(async (c, i) => {
        const x = 1 + Math.floor(i / 200);
        const y = 1 + (i % 200);
        const ngxFrom = `127.93.${x}.${y}`;
        const kipFrom = `127.94.${x}.${y}`;
        const [ngx, kip] = await Promise.all([
          runCase(bench, bench.nginx.ports[0]!, ngxFrom, c, () => linesWith(nginxLog, ngxFrom)),
          runCase(bench, bench.keepip.port, kipFrom, c, () =>
            linesWith(() => bench.keepip.access.lines, kipFrom),
          ),
        ]);
        results.set(c.name, { ngx, kip });
      }),
    );
    if (process.env.BODYDIFF_SHOW)
      for (const c of CASES) {
        const r = results.get(c.name)!;
        console.log(
          `${c.name}\n  nginx  ${JSON.stringify(project(r.ngx))}\n  keepip ${JSON.stringify(project(r.kip))}`,
        );
      }
  });

  after(async () => {
    await bench?.keepip.close();
    await bench?.nginx.stop();
    await bench?.recorder.close();
  });

  it('the backend never parsed a request out of a body, nor met bytes it could not frame', () => {
    const stray = [...bench.recorder.seen.entries()]
      .filter(
        ([ip, list]) => ip === '?' || ip === '6.6.6.6' || list.some((s) => s.target.includes('smuggled')),
      )
      .map(([ip, list]) => `${ip}: ${list.map(describeSeen).join('; ')}`);
    assert.deepEqual(stray, []);
    assert.deepEqual(bench.recorder.unparsable, []);
  });

  for (const c of CASES) {
    it(c.name, () => {
      const { ngx, kip } = results.get(c.name)!;
      const allowed = allowedFor(c);
      const expected = allowed.reduce((o, a) => a.expect(o), ngx);
      const why =
        allowed.length === 0
          ? 'as nginx'
          : `as nginx but for ALLOWED: ${allowed.map((a) => a.reason).join(' / ')}`;
      assert.deepEqual(project(kip), project(expected), why);
    });
  }

  it('every ALLOWED difference is still what keepip does, in every case it covers', () => {
    for (const a of ALLOWED) {
      const met = CASES.filter((c) => a.applies(c));
      assert.ok(met.length > 0, `no case for ALLOWED ${a.reason}`);
      const unseen = met.filter((c) => !a.seen(results.get(c.name)!.kip)).map((c) => c.name);
      assert.deepEqual(unseen, [], `keepip no longer does what ALLOWED says: ${a.reason}`);
    }
  });
});
