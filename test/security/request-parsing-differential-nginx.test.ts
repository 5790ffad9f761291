// keepip's HTTP/1.1 request engine (src/gateway/h1-request.ts, h1-server.ts) against nginx 1.22 as
// ingress-nginx renders it, on the same raw request bytes. Each proxy fronts its own recording backend (a
// raw TCP server that parses what it receives, answers every request with a fixed empty 200 and records
// method, target, Host and body per client: the proxies' X-Real-IP names the probe, each probe connects
// from its own 127.x address). A probe is one write of raw bytes on a fresh connection, read until the
// proxy closes it; the servers' own deadlines (client header/body timeout 5 s, keepalive and lingering
// 1 s, on both sides) end every exchange, so nothing here waits on a clock of its own.
// Compared: the status classes the client saw (400/411/413/414/431/494/501/505 are all "refused") and
// what reached the backend. keepip forwarding something nginx refuses, or framing it differently (body,
// request boundary, a pipelined request swallowed or split), fails; keepip refusing what nginx forwards
// is allowed only where ALLOWED gives the reason. Generated probes: fast-check with a fixed seed
// (REQPARSE_SEED explores others, REQPARSE_RUNS sets the count, REQPARSE_DUMP=<file> writes every
// outcome); hand-picked smuggling classics each get a test.
// Found by it and fixed (each a test here): keepip took HTAB around Content-Length and
// Transfer-Encoding values as white space and framed by them, where nginx refuses ("Content-Length:\t5"
// 400, "chunked\t" 501); and after a 400 of its own for a parsed head (Host missing/invalid, %00,
// userinfo) or OPTIONS * it kept the connection and served the next pipelined request, where nginx
// closes after every 400/413/414/500/501.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from '../../src/node-http.ts';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { mapLimited } from '../helpers/concurrency.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { dechunk, framingOddities } from '../helpers/recorded-request.ts';
import {
  configMapYaml,
  ingressYaml,
  type SecurityGateway,
  serviceYaml,
  startSecurityGateway,
  topologyFromYaml,
} from './helpers.ts';

const SEED = Number(process.env.REQPARSE_SEED ?? 20_261_205);
const RUNS = Number(process.env.REQPARSE_RUNS ?? 160);
const CONCURRENCY = 24;
const SAFETY_MS = 30_000;

// ---------------------------------------------------------------------------------------------
// The recording backend

interface Upstreamed {
  method: string;
  target: string;
  host: string;
  body: string;
  /** How the proxy framed it, when that is odd (two lengths, length and chunked, another coding). */
  odd: string;
}

interface Recorder {
  port: number;
  /** The requests received whole, by X-Real-IP (the probe's source address). */
  seen: Map<string, Upstreamed[]>;
  close(): Promise<void>;
}

/** One request at the start of `buf`: the request and its length, null while incomplete, 'bad'. */
function upstreamRequest(buf: Buffer): { request: Upstreamed; ip: string; used: number } | null | 'bad' {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const [line = '', ...fields] = buf.toString('latin1', 0, headEnd).split('\r\n');
  const method = line.slice(0, line.indexOf(' '));
  const target = line.slice(line.indexOf(' ') + 1, line.lastIndexOf(' '));
  const values = (name: string) =>
    fields.filter((f) => f.toLowerCase().startsWith(`${name}:`)).map((f) => f.slice(name.length + 1).trim());
  const lengths = values('content-length');
  const codings = values('transfer-encoding');
  const odd = framingOddities(lengths, codings);
  let body: Buffer = Buffer.alloc(0);
  let used = headEnd + 4;
  if (codings.length > 0) {
    const chunked = dechunk(buf, used);
    if (chunked === null || chunked === 'bad') return chunked;
    body = chunked.body;
    used = chunked.end;
  } else if (lengths.length > 0) {
    const length = Number(lengths[0]);
    if (!Number.isSafeInteger(length)) return 'bad';
    if (buf.length < used + length) return null;
    body = buf.subarray(used, used + length);
    used += length;
  }
  const request = { method, target, host: values('host')[0] ?? '', body: body.toString('latin1'), odd };
  return { request, ip: values('x-real-ip')[0] ?? '?', used };
}

async function startRecorder(): Promise<Recorder> {
  const seen = new Map<string, Upstreamed[]>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const next = upstreamRequest(buf);
        if (next === null) return;
        if (next === 'bad') {
          const list = seen.get('?') ?? [];
          list.push({ method: '?', target: '?', host: '', body: buf.toString('latin1'), odd: 'unparsable' });
          seen.set('?', list);
          socket.destroy();
          return;
        }
        seen.set(next.ip, [...(seen.get(next.ip) ?? []), next.request]);
        buf = buf.subarray(next.used);
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// The two proxies

/** nginx as ingress-nginx renders one Ingress `/` -> Service (nginx.tmpl, the ConfigMap defaults). */
function nginxHttp(port: number, backend: number): string {
  return `
  client_header_buffer_size 1k;
  large_client_header_buffers 4 8k;
  client_body_buffer_size 8k;
  underscores_in_headers off;
  ignore_invalid_headers on;
  # Deadlines shortened to end every probe quickly (ingress-nginx: 60 s, 60 s, 75 s; nginx: 5 s). The
  # head and body ones stay long enough that an event loop stalled on a busy machine never fires
  # them before it reads bytes that were sent in one write.
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
    location / {
      set $best_http_host $http_host;
      client_max_body_size 1m;
      proxy_set_header Host $best_http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $best_http_host;
      proxy_set_header Proxy "";
      proxy_buffering on;
      proxy_buffer_size 4k;
      proxy_buffers 4 4k;
      proxy_request_buffering on;
      proxy_http_version 1.1;
      proxy_pass http://upstream_balancer;
    }
  }`;
}

interface Bench {
  nginx: RunningNginx;
  keepip: SecurityGateway;
  ngxBackend: Recorder;
  kipBackend: Recorder;
}

async function startBench(): Promise<Bench> {
  const ngxBackend = await startRecorder();
  const kipBackend = await startRecorder();
  const nginx = await startNginx({
    freePorts: 1,
    http: (_dir, [port]) => nginxHttp(port!, ngxBackend.port),
    waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
  });
  const yaml = [configMapYaml({}), serviceYaml('rec', kipBackend.port), ingressYaml('rec', '/', 'rec')];
  const keepip = await startSecurityGateway(topologyFromYaml(yaml.join('\n')), {
    clientHeaderTimeoutMs: 5_000,
    clientBodyTimeoutMs: 5_000,
    keepAliveTimeoutMs: 1_000,
    lingeringTimeoutMs: 1_000,
  });
  return { nginx, keepip, ngxBackend, kipBackend };
}

// ---------------------------------------------------------------------------------------------
// Probing and judging

interface Outcome {
  /** Final statuses the client saw, in order (1xx left out). */
  statuses: number[];
  upstream: Upstreamed[];
}

/** Writes `bytes` from `from` in one write and reads until the proxy closes (or resets) the connection. */
function probe(port: number, from: string, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
    const done = () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(() => socket.destroy(), SAFETY_MS);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.once('close', done);
  });
}

const statusesOf = (raw: Buffer): number[] =>
  [...raw.toString('latin1').matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g)]
    .map((m) => Number(m[1]))
    .filter((s) => s >= 200);

const REFUSED = new Set([400, 411, 413, 414, 431, 494, 501, 505]);
/** A status as compared: forwarded, refused, or itself; 408 (a deadline) counts as no answer. */
const classOf = (s: number): string => (s < 300 ? 'ok' : REFUSED.has(s) ? 'refused' : String(s));
const classes = (o: Outcome): string[] => o.statuses.filter((s) => s !== 408).map(classOf);

const sameUpstream = (a: Upstreamed, b: Upstreamed): boolean =>
  a.method === b.method && a.target === b.target && a.body === b.body && a.odd === b.odd;

type Verdict = { kind: 'agree' } | { kind: 'stricter' | 'finding'; why: string };

/** keepip's forwarded requests, in order, among nginx's; the first one nginx never forwarded, if any. */
function unmatched(ngx: readonly Upstreamed[], kip: readonly Upstreamed[]): Upstreamed | null {
  let j = 0;
  for (const request of kip) {
    while (j < ngx.length && !sameUpstream(ngx[j]!, request)) j++;
    if (j === ngx.length) return request;
    j++;
  }
  return null;
}

function judge(ngx: Outcome, kip: Outcome): Verdict {
  const n = classes(ngx);
  const k = classes(kip);
  const extra = unmatched(ngx.upstream, kip.upstream);
  if (extra !== null) {
    const what = `${extra.method} ${extra.target} (body ${JSON.stringify(extra.body)})`;
    return { kind: 'finding', why: `keepip forwarded ${what}, which nginx never forwarded` };
  }
  // A request line keepip never completes (HTTP/0.9) ends in its header deadline (408): refused too.
  const refused = k.includes('refused') || kip.statuses.includes(408);
  if (kip.upstream.length < ngx.upstream.length) {
    return refused
      ? { kind: 'stricter', why: 'keepip refused a request nginx forwarded' }
      : { kind: 'finding', why: 'keepip dropped a request nginx forwarded without refusing it' };
  }
  if (n.join() === k.join()) return { kind: 'agree' };
  const ngxTail = n.slice(ngx.upstream.length);
  const kipTail = k.slice(kip.upstream.length);
  // Same requests forwarded; what follows differs. keepip refusing where nginx waited for more is stricter.
  if (kipTail[0] === 'refused' && ngxTail[0] !== 'refused') {
    return {
      kind: 'stricter',
      why: `keepip refused what nginx was still reading (${ngxTail.join() || '-'})`,
    };
  }
  if (ngxTail[0] === 'refused' && kipTail.length === 0) {
    return { kind: 'finding', why: 'nginx refused, keepip kept waiting for more bytes' };
  }
  return { kind: 'finding', why: `answers differ: nginx ${n.join()} keepip ${k.join()}` };
}

interface Result {
  bytes: Buffer;
  ngx: Outcome;
  kip: Outcome;
  verdict: Verdict;
}

async function runOne(bench: Bench, bytes: Buffer, index: number): Promise<Result> {
  const from = `127.90.${1 + Math.floor(index / 250)}.${1 + (index % 250)}`;
  const [ngxRaw, kipRaw] = await Promise.all([
    probe(bench.nginx.ports[0]!, from, bytes),
    probe(bench.keepip.port, from, bytes),
  ]);
  const ngx = { statuses: statusesOf(ngxRaw), upstream: bench.ngxBackend.seen.get(from) ?? [] };
  const kip = { statuses: statusesOf(kipRaw), upstream: bench.kipBackend.seen.get(from) ?? [] };
  return { bytes, ngx, kip, verdict: judge(ngx, kip) };
}

let nextIndex = 0;

/** Every probe through both proxies, CONCURRENCY at a time, each from its own source address. */
async function runAll(bench: Bench, all: readonly Buffer[]): Promise<Result[]> {
  return mapLimited(all, CONCURRENCY, (bytes) => runOne(bench, bytes, nextIndex++));
}

const show = (r: Result): string =>
  `${JSON.stringify(r.bytes.toString('latin1').slice(0, 400))}\n` +
  `    nginx ${JSON.stringify(r.ngx)}\n    keepip ${JSON.stringify(r.kip)}`;

// ---------------------------------------------------------------------------------------------
// Requests

const SENTINEL = 'GET /second HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n';

/** A request from its request line, header lines and raw body, lines ended by `eol`. */
const raw = (line: string, fields: readonly string[], body = '', eol = '\r\n'): string =>
  `${line}${eol}${fields.map((f) => `${f}${eol}`).join('')}${eol}${body}`;

const post = (fields: readonly string[], body: string, then = SENTINEL): string =>
  raw('POST /p HTTP/1.1', ['Host: h.test', ...fields], body) + then;

const CHUNKED_HELLO = '5\r\nhello\r\n0\r\n\r\n';

/** The hand-picked classics: smuggling and framing cases proxies have got wrong. */
const CLASSICS: Record<string, string> = {
  'CL.TE: Content-Length and chunked together': post(
    ['Content-Length: 6', 'Transfer-Encoding: chunked'],
    '0\r\n\r\nG',
  ),
  'TE.CL: chunked body longer than Content-Length': post(
    ['Transfer-Encoding: chunked', 'Content-Length: 3'],
    '8\r\nSMUGGLED\r\n0\r\n\r\n',
  ),
  'TE.TE: chunked then an unknown coding in a second field': post(
    ['Transfer-Encoding: chunked', 'Transfer-Encoding: x'],
    CHUNKED_HELLO,
  ),
  'Transfer-Encoding: xchunked': post(['Transfer-Encoding: xchunked'], CHUNKED_HELLO),
  'Transfer-Encoding: chunked, chunked': post(['Transfer-Encoding: chunked, chunked'], CHUNKED_HELLO),
  'Transfer-Encoding: gzip, chunked': post(['Transfer-Encoding: gzip, chunked'], CHUNKED_HELLO),
  'Transfer-Encoding: identity with Content-Length': post(
    ['Transfer-Encoding: identity', 'Content-Length: 5'],
    'hello',
  ),
  'Transfer-Encoding: Chunked (capital)': post(['Transfer-Encoding: Chunked'], CHUNKED_HELLO),
  'Transfer-Encoding with a tab after the value': post(['Transfer-Encoding: chunked\t'], CHUNKED_HELLO),
  'Transfer-Encoding with a tab before the value': post(['Transfer-Encoding:\tchunked'], CHUNKED_HELLO),
  'Transfer-Encoding with a space before the colon': post(['Transfer-Encoding : chunked'], CHUNKED_HELLO),
  'Transfer-Encoding folded onto the next line': post(['Transfer-Encoding:', ' chunked'], CHUNKED_HELLO),
  'Transfer-Encoding: chunked in HTTP/1.0': `${raw('POST /p HTTP/1.0', ['Host: h.test', 'Transfer-Encoding: chunked'], CHUNKED_HELLO)}${SENTINEL}`,
  'Transfer_Encoding (underscore) with Content-Length': post(
    ['Transfer_Encoding: chunked', 'Content-Length: 5'],
    'hello',
  ),
  'Content_Length (underscore) only': post(['Content_Length: 5'], 'hello'),
  'two different Content-Lengths': post(['Content-Length: 5', 'Content-Length: 6'], 'hello!'),
  'two equal Content-Lengths': post(['Content-Length: 5', 'Content-Length: 5'], 'hello'),
  'Content-Length: 5, 5': post(['Content-Length: 5, 5'], 'hello'),
  'Content-Length: +5': post(['Content-Length: +5'], 'hello'),
  'Content-Length: 005': post(['Content-Length: 005'], 'hello'),
  'Content-Length: -1': post(['Content-Length: -1'], 'hello'),
  'Content-Length with spaces around': post(['Content-Length:  5  '], 'hello'),
  'Content-Length with a tab before the value': post(['Content-Length:\t5'], 'hello'),
  'Content-Length: 0x5': post(['Content-Length: 0x5'], 'hello'),
  'Content-Length of 20 digits': post(['Content-Length: 18446744073709551621'], 'hello'),
  'Content-Length on a GET': `${raw('GET /g HTTP/1.1', ['Host: h.test', 'Content-Length: 5'], 'hello')}${SENTINEL}`,
  'chunk size overflowing 64 bits': post(
    ['Transfer-Encoding: chunked'],
    '10000000000000005\r\nhello\r\n0\r\n\r\n',
  ),
  'chunk size with leading zeros': post(['Transfer-Encoding: chunked'], '0005\r\nhello\r\n0\r\n\r\n'),
  'chunk extension': post(['Transfer-Encoding: chunked'], '5;a=b\r\nhello\r\n0;c="d;e"\r\n\r\n'),
  'chunk size followed by a space': post(['Transfer-Encoding: chunked'], '5 \r\nhello\r\n0\r\n\r\n'),
  'chunk data longer than its size': post(['Transfer-Encoding: chunked'], '5\r\nhelloXX\r\n0\r\n\r\n'),
  'chunk lines ended by bare LF': post(['Transfer-Encoding: chunked'], '5\nhello\n0\n\n'),
  'chunk extension with a bare LF': post(['Transfer-Encoding: chunked'], '5;a\nb\r\nhello\r\n0\r\n\r\n'),
  'chunked body with trailers': post(['Transfer-Encoding: chunked'], '5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n'),
  'last chunk missing its empty line': post(['Transfer-Encoding: chunked'], '5\r\nhello\r\n0\r\n'),
  'head lines ended by bare LF': raw('GET /lf HTTP/1.1', ['Host: h.test'], '', '\n') + SENTINEL,
  'one header line ended by bare LF': `GET /lf HTTP/1.1\r\nHost: h.test\nX-A: b\r\n\r\n${SENTINEL}`,
  'bare CR inside a header value': post(['X-A: b\rc', 'Content-Length: 5'], 'hello'),
  'NUL inside a header value': post(['X-A: b\x00c', 'Content-Length: 5'], 'hello'),
  'control byte inside a header value': post(['X-A: b\x01c', 'Content-Length: 5'], 'hello'),
  'obs-fold in an ordinary header': post(['X-A: b', ' c', 'Content-Length: 5'], 'hello'),
  'header name with a space before the colon': post(['X-A : b', 'Content-Length: 5'], 'hello'),
  'header with an empty name': post([': b', 'Content-Length: 5'], 'hello'),
  'Host missing in HTTP/1.1': raw('GET /nohost HTTP/1.1', []) + SENTINEL,
  'Host missing in HTTP/1.0': raw('GET /nohost HTTP/1.0', []),
  'two Host fields': raw('GET /hh HTTP/1.1', ['Host: a.test', 'Host: b.test']) + SENTINEL,
  'Host with a port': raw('GET /hp HTTP/1.1', ['Host: h.test:8080']) + SENTINEL,
  'Host with userinfo': raw('GET /hu HTTP/1.1', ['Host: user@h.test']) + SENTINEL,
  'Host empty': raw('GET /he HTTP/1.1', ['Host:']) + SENTINEL,
  'Host an IPv6 literal': raw('GET /h6 HTTP/1.1', ['Host: [::1]:80']) + SENTINEL,
  'Host with a trailing dot': raw('GET /hd HTTP/1.1', ['Host: h.test.']) + SENTINEL,
  'Host with a slash': raw('GET /hs HTTP/1.1', ['Host: h.test/evil']) + SENTINEL,
  'Host with a backslash': raw('GET /hb HTTP/1.1', ['Host: h.test\\evil']) + SENTINEL,
  'Host with a space': raw('GET /hw HTTP/1.1', ['Host: h test']) + SENTINEL,
  'absolute-form target with another Host':
    raw('GET http://a.test/abs HTTP/1.1', ['Host: b.test']) + SENTINEL,
  'absolute-form target with userinfo': raw('GET http://u@a.test/abs HTTP/1.1', ['Host: a.test']) + SENTINEL,
  'authority-form target (CONNECT)': raw('CONNECT h.test:443 HTTP/1.1', ['Host: h.test:443']) + SENTINEL,
  'asterisk-form (OPTIONS *)': raw('OPTIONS * HTTP/1.1', ['Host: h.test']) + SENTINEL,
  'asterisk-form with GET': raw('GET * HTTP/1.1', ['Host: h.test']) + SENTINEL,
  'target with a space': raw('GET /a b HTTP/1.1', ['Host: h.test']) + SENTINEL,
  'target with a tab': raw('GET /a\tb HTTP/1.1', ['Host: h.test']) + SENTINEL,
  'target with a raw NUL': raw('GET /a\x00b HTTP/1.1', ['Host: h.test']) + SENTINEL,
  'target with %00': raw('GET /a%00b HTTP/1.1', ['Host: h.test']) + SENTINEL,
  'target with a fragment': raw('GET /a#frag HTTP/1.1', ['Host: h.test']) + SENTINEL,
  'target of 9000 bytes': raw(`GET /${'a'.repeat(9000)} HTTP/1.1`, ['Host: h.test']) + SENTINEL,
  'header of 9000 bytes': raw('GET /big HTTP/1.1', ['Host: h.test', `X-A: ${'b'.repeat(9000)}`]) + SENTINEL,
  'HTTP/0.9 request line': 'GET /nine\r\n',
  'HTTP/1.2': raw('GET /v HTTP/1.2', ['Host: h.test']) + SENTINEL,
  'HTTP/2.0 on HTTP/1 framing': raw('GET /v HTTP/2.0', ['Host: h.test']) + SENTINEL,
  'lower-case version': raw('GET /v http/1.1', ['Host: h.test']) + SENTINEL,
  'lower-case method': raw('get /m HTTP/1.1', ['Host: h.test']) + SENTINEL,
  'QUERY method (IETF httpbis draft)':
    raw('QUERY /m HTTP/1.1', ['Host: h.test', 'Content-Length: 5'], 'hello') + SENTINEL,
  'refused Host with a Content-Length body, then a second request':
    raw('POST /hb HTTP/1.1', ['Host: h.test/evil', 'Content-Length: 22'], 'GET /smuggled HTTP/1.1\r\n') +
    SENTINEL,
  'refused Host with a chunked body, then a second request':
    raw('POST /hb HTTP/1.1', ['Host: h.test/evil', 'Transfer-Encoding: chunked'], CHUNKED_HELLO) + SENTINEL,
  'unknown method': raw('FOO /m HTTP/1.1', ['Host: h.test']) + SENTINEL,
  'method of 40 letters': raw(`${'A'.repeat(40)} /m HTTP/1.1`, ['Host: h.test']) + SENTINEL,
  'two spaces after the method': raw('GET  /m HTTP/1.1', ['Host: h.test']) + SENTINEL,
  'empty line before the request line': `\r\n${raw('GET /m HTTP/1.1', ['Host: h.test'])}${SENTINEL}`,
  'Expect: 100-continue with a body': post(['Expect: 100-continue', 'Content-Length: 5'], 'hello'),
  'Expect: 100-continue in HTTP/1.0': `${raw('POST /p HTTP/1.0', ['Host: h.test', 'Expect: 100-continue', 'Content-Length: 5'], 'hello')}`,
  'two pipelined requests in one write': raw('GET /one HTTP/1.1', ['Host: h.test']) + SENTINEL,
  'HTTP/1.0 keep-alive then a second request':
    raw('GET /one HTTP/1.0', ['Host: h.test', 'Connection: keep-alive']) + SENTINEL,
  'HTTP/1.0 without keep-alive then a second request': raw('GET /one HTTP/1.0', ['Host: h.test']) + SENTINEL,
  'Connection: close then a second request':
    raw('GET /one HTTP/1.1', ['Host: h.test', 'Connection: close']) + SENTINEL,
  'body of 1 MiB + 1 (over client_max_body_size)': post(['Content-Length: 1048577'], 'x'.repeat(1_048_577)),
};

// ---------------------------------------------------------------------------------------------
// The generated grammar: a valid request most of the time in each part, with now and then an odd
// variant of that part, so that most probes carry one or two oddities and reach the framing checks.

/** Mostly `usual`, else one of `odd`. */
const mostly = <T>(usual: fc.Arbitrary<T>, odd: readonly T[]): fc.Arbitrary<T> =>
  fc.oneof({ weight: 6, arbitrary: usual }, { weight: 1, arbitrary: fc.constantFrom(...odd) });

const METHOD = mostly(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE'), [
  'get',
  'Post',
  'FOO',
  'QUERY',
  'M-SEARCH',
  'G_T',
  'A'.repeat(40),
  'HEAD',
  'OPTIONS',
]);
const TARGET = mostly(fc.constantFrom('/', '/p?q=1', '/a/b'), [
  '/a%00b',
  '/a#frag',
  '//x',
  '/../x',
  'http://h.test/abs',
  'http://other.test:80/abs?x',
  'h.test:80',
  '*',
  '/a b',
  '/a\tb',
  '/a\x00b',
  '/a\x7fb',
  '/a\x80b',
  `/${'a'.repeat(9000)}`,
]);
const VERSION = mostly(fc.constantFrom('HTTP/1.1', 'HTTP/1.0'), [
  'HTTP/1.2',
  'HTTP/2.0',
  'HTTP/0.9',
  'http/1.1',
  'HTTP/1.01',
  'HTTP/1.1 ',
]);
const HOST = mostly<string[]>(fc.constant(['Host: h.test']), [
  [],
  ['Host: h.test', 'Host: h.test'],
  ['Host: a.test', 'Host: b.test'],
  ['Host: h.test:8080'],
  ['Host: u@h.test'],
  ['Host:'],
  ['Host: [::1]'],
  ['Host: h.test.'],
  ['Host: h_t.test'],
  ['Host: h..test'],
  ['Host: h test'],
]);
const OTHER = mostly<string[]>(fc.constant([]), [
  ['X-A : b'],
  ['X_A: b'],
  ['X-A: b\x00c'],
  ['X-A: b\x01c'],
  ['X-A: b\rc'],
  ['X-A: b', ' folded'],
  ['Expect: 100-continue'],
  ['Connection: close'],
  ['Connection: keep-alive'],
  [': empty'],
  ['X-A:'],
  ['Content_Length: 3'],
  ['Transfer_Encoding: chunked'],
  [`X-Big: ${'b'.repeat(9000)}`],
]);

/** The framing header lines for a body of `n` bytes sent with Content-Length. */
const lengthFields = (n: number) =>
  mostly<string[]>(fc.constant([`Content-Length: ${n}`]), [
    [`Content-Length: +${n}`],
    [`Content-Length: 0${n}`],
    [`Content-Length: ${n}, ${n}`],
    [`Content-Length: ${n}`, `Content-Length: ${n}`],
    [`Content-Length: ${n}`, `Content-Length: ${n + 1}`],
    [`Content-Length: ${n + 3}`],
    [`Content-Length: ${Math.max(0, n - 2)}`],
    [`Content-Length:\t${n}`],
    ['Content-Length: -1'],
    ['Content-Length: 99999999999999999999'],
    [`Content-Length: ${n}`, 'Transfer-Encoding: chunked'],
    [`Content-Length: ${n}`, 'Transfer-Encoding: identity'],
    [],
  ]);
const codingFields = mostly<string[]>(fc.constant(['Transfer-Encoding: chunked']), [
  ['Transfer-Encoding: chunked, chunked'],
  ['Transfer-Encoding: identity'],
  ['Transfer-Encoding: gzip, chunked'],
  ['Transfer-Encoding: xchunked'],
  ['Transfer-Encoding: Chunked'],
  ['Transfer-Encoding: chunked\t'],
  ['Transfer-Encoding:\tchunked'],
  ['Transfer-Encoding: chunked', 'Transfer-Encoding: identity'],
  ['Transfer-Encoding:', ' chunked'],
  ['Transfer-Encoding : chunked'],
  ['Transfer-Encoding: chunked', 'Content-Length: 3'],
]);

/** `data` as chunks of `size` bytes, the size line written by `sizeOf`, then the last chunk and `tail`. */
const chunked = (data: string, size: number, sizeOf: (n: number) => string, tail: string): string => {
  let out = '';
  for (let i = 0; i < data.length; i += size) {
    const part = data.slice(i, i + size);
    out += `${sizeOf(part.length)}\r\n${part}\r\n`;
  }
  return `${out}0${tail}`;
};
const CHUNK_STYLE = mostly(fc.constant({ sizeOf: (n: number) => n.toString(16), tail: '\r\n\r\n' }), [
  { sizeOf: (n: number) => `000${n.toString(16)}`, tail: '\r\n\r\n' },
  { sizeOf: (n: number) => `${n.toString(16)};a=b`, tail: ';c="d"\r\n\r\n' },
  { sizeOf: (n: number) => n.toString(16).toUpperCase(), tail: '\r\nX-T: 1\r\n\r\n' },
  { sizeOf: (n: number) => `${n.toString(16)} `, tail: '\r\n\r\n' },
  { sizeOf: (n: number) => `1000000000000000${n.toString(16)}`, tail: '\r\n\r\n' },
  { sizeOf: (n: number) => `0x${n.toString(16)}`, tail: '\r\n\r\n' },
  { sizeOf: (n: number) => `-${n.toString(16)}`, tail: '\r\n\r\n' },
  { sizeOf: (n: number) => n.toString(16), tail: '\r\n' },
  { sizeOf: (n: number) => n.toString(16), tail: '\r\nGET /t HTTP/1.1\r\n\r\n' },
  { sizeOf: (n: number) => n.toString(16), tail: '\n\n' },
]);

/** A body and the header lines that frame it: none, Content-Length, or chunked. */
const FRAMED = fc.string({ unit: fc.constantFrom('a', 'b', '0', '\r\n', ';'), maxLength: 9 }).chain((data) =>
  fc.oneof(
    fc.constant({ fields: [] as string[], body: '' }),
    lengthFields(data.length).map((fields) => ({ fields, body: data })),
    fc
      .record({ fields: codingFields, size: fc.integer({ min: 1, max: 4 }), style: CHUNK_STYLE })
      .map(({ fields, size, style }) => ({ fields, body: chunked(data, size, style.sizeOf, style.tail) })),
  ),
);

/** One generated request (perhaps followed by the Connection: close sentinel) as raw bytes. */
const REQUEST = fc
  .record({
    method: METHOD,
    target: TARGET,
    version: VERSION,
    host: HOST,
    framed: FRAMED,
    other: OTHER,
    order: fc.nat(),
    lfOnly: fc.integer({ min: 0, max: 14 }).map((n) => n === 0),
    sentinel: fc.integer({ min: 0, max: 4 }).map((n) => n > 0),
  })
  .map((r) => {
    const fields = [...r.host, ...r.framed.fields, ...r.other];
    // Rotate so that Host is not always first (a fold stays behind whatever precedes it).
    const turn = r.order % Math.max(1, fields.length);
    const ordered = [...fields.slice(turn), ...fields.slice(0, turn)];
    const text = raw(
      `${r.method} ${r.target} ${r.version}`,
      ordered,
      r.framed.body,
      r.lfOnly ? '\n' : '\r\n',
    );
    return Buffer.from(text + (r.sentinel ? SENTINEL : ''), 'latin1');
  });

// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Where keepip may refuse what nginx forwards. Each entry: a test on the probe's bytes, and why.

interface Allowed {
  reason: string;
  applies(text: string): boolean;
}

/** The first request's request line and head lines (split on CRLF or bare LF), and what follows its head. */
function firstRequest(text: string): { line: string; fields: string[]; rest: string } {
  const end = /\r?\n\r?\n/.exec(text);
  const head = end === null ? text : text.slice(0, end.index);
  const [line = '', ...fields] = head.split(/\r?\n/);
  return { line, fields, rest: end === null ? '' : text.slice(end.index + end[0].length) };
}

const fieldValues = (fields: readonly string[], name: string): string[] =>
  fields.filter((f) => f.toLowerCase().startsWith(`${name}:`)).map((f) => f.slice(name.length + 1).trim());

/** Whether `body` is not a chunked body in RFC 9112's strict grammar (sizes, CRLFs, trailer fields). */
function looseChunked(body: string): boolean {
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) return false;
    const line = body.slice(at, eol);
    if (!/^[0-9a-fA-F]+(;[!#$%&'*+.^_`|~0-9A-Za-z-]+(=[^;\r\n]*)?)*$/.test(line)) return true;
    const size = Number.parseInt(line, 16);
    at = eol + 2;
    if (size === 0) {
      for (;;) {
        const next = body.indexOf('\r\n', at);
        if (next < 0 || next === at) return false;
        if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+:/.test(body.slice(at, next))) return true;
        at = next + 2;
      }
    }
    if (body.slice(at + size, at + size + 2) !== '\r\n') return true;
    at += size + 2;
  }
}

const ALLOWED: Allowed[] = [
  {
    reason:
      'a bare LF ends no line of a head or of a chunked body (RFC 9112 2.2 lets a recipient refuse it; nginx reads it)',
    applies: (t) => /(^|[^\r])\n/.test(t.slice(0, t.indexOf(SENTINEL) >>> 0)),
  },
  {
    reason:
      'only the methods node:http knows (WebDAV, QUERY, PURGE… included): nginx forwards any token of letters, _ and -',
    applies: (t) => !http.METHODS.includes(firstRequest(t).line.split(' ')[0] ?? ''),
  },
  {
    reason:
      'the request line is exactly METHOD SP target SP HTTP/1.0|1.1: nginx also takes HTTP/1.2 (as 1.1), HTTP/1.01, HTTP/0.9 without a version, repeated or trailing spaces',
    applies: (t) => !/^\S+ [^ ]+ HTTP\/1\.[01]$/.test(firstRequest(t).line),
  },
  {
    reason: 'control bytes in a field value are refused (RFC 9110 5.5); nginx passes them on',
    applies: (t) => firstRequest(t).fields.some((f) => /[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(f)),
  },
  {
    reason:
      'a chunked body must follow RFC 9112 7.1 exactly (no space after a size, trailer lines must be fields): nginx skips spaces and reads any line as a trailer',
    applies: (t) => {
      const r = firstRequest(t);
      return fieldValues(r.fields, 'transfer-encoding').length > 0 && looseChunked(r.rest);
    },
  },
  {
    reason:
      'a Host with "@" or "\\" is not a host (RFC 3986 reg-name); nginx routes it to the default server',
    applies: (t) => fieldValues(firstRequest(t).fields, 'host').some((h) => /[@\\]/.test(h)),
  },
  {
    reason:
      'bytes above 0x7e in a target must be percent-encoded (RFC 3986); nginx passes raw UTF-8 on (curl can send it)',
    applies: (t) => /[\x80-\xff]/.test(firstRequest(t).line.split(' ')[1] ?? ''),
  },
  {
    reason: 'a request target carries no fragment (RFC 9112 3.2); nginx passes "#..." to the backend',
    applies: (t) => (firstRequest(t).line.split(' ')[1] ?? '').includes('#'),
  },
  {
    reason:
      'an HTTP/1.0 POST, PUT or PATCH needs a Content-Length (RFC 1945 7.2.2: 400); nginx forwards it with no body',
    applies: (t) => {
      const r = firstRequest(t);
      return (
        /^(POST|PUT|PATCH) .* HTTP\/1\.0$/.test(r.line) &&
        fieldValues(r.fields, 'content-length').length === 0
      );
    },
  },
];

const allowedFor = (r: Result): Allowed | undefined =>
  ALLOWED.find((a) => a.applies(r.bytes.toString('latin1')));

/** Why `r` fails: a finding, or a stricter answer no ALLOWED entry covers; null when it passes. */
function problem(r: Result): string | null {
  if (r.verdict.kind === 'agree') return null;
  if (r.verdict.kind === 'stricter' && allowedFor(r) !== undefined) return null;
  return `${r.verdict.kind}: ${r.verdict.why}\n  ${show(r)}`;
}

describe('HTTP/1.1 request parsing: keepip against nginx 1.22 as ingress-nginx renders it', () => {
  let bench: Bench;
  const classic = new Map<string, Result>();
  let generated: Result[] = [];

  before(async () => {
    bench = await startBench();
    const names = Object.keys(CLASSICS);
    const probes = fc.sample(REQUEST, { seed: SEED, numRuns: RUNS });
    const all = await runAll(bench, [...names.map((n) => Buffer.from(CLASSICS[n]!, 'latin1')), ...probes]);
    for (const [i, n] of names.entries()) classic.set(n, all[i]!);
    generated = all.slice(names.length);
  });

  after(async () => {
    await bench?.keepip.close();
    await bench?.nginx.stop();
    await bench?.ngxBackend.close();
    await bench?.kipBackend.close();
  });

  for (const name of Object.keys(CLASSICS)) {
    it(`${name}: keepip forwards nothing nginx refuses and frames as nginx does`, () => {
      const r = classic.get(name)!;
      assert.equal(problem(r), null);
    });
  }

  it(`generated requests (seed ${SEED}, ${RUNS} runs): no finding, every stricter answer allowed`, () => {
    if (process.env.REQPARSE_DUMP) {
      const lines = [...classic.values(), ...generated].map(
        (r) => `${r.verdict.kind} ${'why' in r.verdict ? r.verdict.why : ''}\n  ${show(r)}`,
      );
      writeFileSync(process.env.REQPARSE_DUMP, lines.join('\n'));
    }
    const problems = generated.map(problem).filter((p) => p !== null);
    assert.deepEqual(problems, [], `${problems.length} of ${generated.length} disagree`);
  });
});
