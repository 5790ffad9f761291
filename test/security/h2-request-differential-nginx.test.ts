// keepip's HTTP/2 server side (src/gateway/h2-server.ts, h2-stream.ts) downgrading to an HTTP/1.1
// backend, against nginx 1.22 as ingress-nginx renders a TLS server (`listen … ssl http2`, proxying with
// proxy_http_version 1.1), on the same HTTP/2 requests written frame by frame (test/helpers/h2-raw.ts:
// HPACK literals, so names and values node:http2's client refuses go out as they are). Each proxy fronts
// its own recording backend (raw TCP: parses what it receives, answers 200, records the request by the
// proxies' X-Real-IP; every probe connects from its own 127.x address).
// Compared: what the client saw for stream 1 (a status; RST_STREAM or GOAWAY count as "refused") and
// what reached the backend (method, target, Host, Cookie, the framing, the body, the client's other
// fields). keepip forwarding a request nginx refuses, or one that differs in a way that changes its
// meaning (Host, target, body, framing, a second request), is a finding; keepip refusing what nginx
// forwards is allowed only where ALLOWED gives the reason. Generated probes: fast-check with a fixed
// seed (H2DIFF_SEED explores others, H2DIFF_RUNS sets the count, H2DIFF_DUMP=<file> writes every
// outcome); hand-picked ones each get a test. Every hand-picked request also goes over h2c (prior
// knowledge on both proxies' plain ports), and every fourth generated one.
// Found by it and fixed: a `host` field that disagrees with `:authority` was forwarded with
// :authority's host where nginx answers 400 (RFC 9113 8.3.1; now H2_HOST_CONFLICT). Known difference:
// a field whose name or value RFC 9113 8.2.1 forbids is dropped by node:http2 before keepip sees it and
// the rest of the request forwarded, where nginx resets the stream (droppedMalformed).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { testCertificate } from '../fixtures/gateway/harness.ts';
import {
  connectRawH2,
  FLAG,
  FRAME,
  type Frame,
  frame,
  goawayCode,
  headerBlock,
  responseStatus,
  rstCode,
} from '../helpers/h2-raw.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { type RunningNginx, startNginx, h2FrontConfig } from '../helpers/nginx.ts';
import { dechunk, framingOddities } from '../helpers/recorded-request.ts';
import {
  configMapYaml,
  ingressYaml,
  type SecurityGateway,
  serviceYaml,
  startSecurityGateway,
  topologyFromYaml,
} from './helpers.ts';

const SEED = Number(process.env.H2DIFF_SEED ?? 20_260_212);
const RUNS = Number(process.env.H2DIFF_RUNS ?? 240);
const CONCURRENCY = 16;
const SAFETY_MS = 25_000;
const AUTHORITY = 'h.test';

// ---------------------------------------------------------------------------------------------
// The recording backend

interface Upstreamed {
  method: string;
  target: string;
  /** The head's fields, names lower-cased, in order. */
  fields: [string, string][];
  body: string;
  /** The body arrived whole (false: the proxy closed the connection before its end). */
  complete: boolean;
  /** How the proxy framed it, when that is odd (two lengths, length and chunked, another coding). */
  odd: string;
}

interface Recorder {
  port: number;
  /** The requests received (whole or cut by a close), by X-Real-IP (the probe's source address). */
  seen: Map<string, Upstreamed[]>;
  /** Resolves once no connection holds part of a request (every request recorded). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

const valuesOf = (fields: readonly [string, string][], name: string): string[] =>
  fields.filter(([n]) => n === name).map(([, v]) => v);

/** The head at the start of `buf` (null while incomplete). */
function parseHead(buf: Buffer) {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const [line = '', ...lines] = buf.toString('latin1', 0, headEnd).split('\r\n');
  const fields = lines.map((l): [string, string] => {
    const colon = l.indexOf(':');
    return [l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim()];
  });
  const method = line.slice(0, line.indexOf(' '));
  const target = line.slice(line.indexOf(' ') + 1, line.lastIndexOf(' '));
  return { method, target, fields, used: headEnd + 4 };
}

/** One request at the start of `buf`: the request and its length; null while incomplete; 'bad'. */
function upstreamRequest(buf: Buffer, closed: boolean): { request: Upstreamed; used: number } | null {
  const head = parseHead(buf);
  if (head === null) return null;
  const lengths = valuesOf(head.fields, 'content-length');
  const codings = valuesOf(head.fields, 'transfer-encoding');
  const odd = framingOddities(lengths, codings);
  const base = { method: head.method, target: head.target, fields: head.fields, odd };
  const rest = buf.subarray(head.used);
  if (codings.length > 0) {
    const chunked = dechunk(buf, head.used);
    if (chunked === null || chunked === 'bad') {
      if (!closed && chunked === null) return null;
      const body = rest.toString('latin1');
      return { request: { ...base, body, complete: false }, used: buf.length };
    }
    return { request: { ...base, body: chunked.body.toString('latin1'), complete: true }, used: chunked.end };
  }
  const length = lengths.length > 0 ? Number(lengths[0]) : 0;
  if (rest.length < length) {
    if (!closed) return null;
    return { request: { ...base, body: rest.toString('latin1'), complete: false }, used: buf.length };
  }
  const body = rest.subarray(0, length).toString('latin1');
  return { request: { ...base, body, complete: true }, used: head.used + length };
}

async function startRecorder(): Promise<Recorder> {
  const seen = new Map<string, Upstreamed[]>();
  const partial = new Map<net.Socket, Buffer>();
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const record = (socket: net.Socket, closed: boolean) => {
    let buf = partial.get(socket) ?? Buffer.alloc(0);
    for (let next = upstreamRequest(buf, closed); next !== null; next = upstreamRequest(buf, closed)) {
      const ip = valuesOf(next.request.fields, 'x-real-ip')[0] ?? '?';
      seen.set(ip, [...(seen.get(ip) ?? []), next.request]);
      buf = buf.subarray(next.used);
      if (next.request.complete && !socket.destroyed)
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    }
    if (buf.length === 0 || closed) partial.delete(socket);
    else partial.set(socket, buf);
    notify();
  };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      partial.set(socket, Buffer.concat([partial.get(socket) ?? Buffer.alloc(0), chunk]));
      record(socket, false);
    });
    socket.once('close', () => {
      sockets.delete(socket);
      record(socket, true);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    idle: () =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (partial.size > 0) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        // A proxy that holds half a request for ever is shown by the comparison (complete: false).
        const timer = setTimeout(() => {
          waiters.delete(check);
          for (const socket of partial.keys()) record(socket, true);
          resolve();
        }, SAFETY_MS);
        waiters.add(check);
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// The two proxies

/** nginx as ingress-nginx renders one TLS server with http2 and an Ingress `/` -> Service. */
function nginxHttp(port: number, plainPort: number, backend: number, certDir: string): string {
  const location = `
    location / {
      set $best_http_host $http_host;
      client_max_body_size 1m;
      proxy_set_header Host $best_http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Request-ID $request_id;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $best_http_host;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Scheme $scheme;
      proxy_set_header X-Scheme $scheme;
      proxy_set_header X-Original-Forwarded-For $http_x_forwarded_for;
      proxy_set_header X-Original-Forwarded-Host $http_x_forwarded_host;
      proxy_set_header Proxy "";
      proxy_buffering on;
      proxy_buffer_size 4k;
      proxy_buffers 4 4k;
      proxy_request_buffering on;
      proxy_http_version 1.1;
      proxy_pass http://upstream_balancer;
    }`;
  const http = `client_header_buffer_size 1k;
  large_client_header_buffers 4 8k;
  client_body_buffer_size 8k;
  http2_max_concurrent_streams 128;
  underscores_in_headers off;
  ignore_invalid_headers on;
  # Deadlines shortened so that a stream left waiting ends quickly (ingress-nginx: 60 s).
  client_header_timeout 5s;
  client_body_timeout 5s;
  keepalive_timeout 5s;`;
  return h2FrontConfig({ port, plainPort, backend, certDir, location, http });
}

interface Bench {
  nginx: RunningNginx;
  keepip: SecurityGateway;
  kipPort: number;
  ngxBackend: Recorder;
  kipBackend: Recorder;
  certDir: string;
}

async function startBench(): Promise<Bench> {
  const ngxBackend = await startRecorder();
  const kipBackend = await startRecorder();
  const certDir = mkdtempSync(join(tmpdir(), 'keepip-h2diff-'));
  const pair = await testCertificate();
  writeFileSync(join(certDir, 'tls.crt'), pair.cert);
  writeFileSync(join(certDir, 'tls.key'), pair.key);
  const nginx = await startNginx({
    freePorts: 2,
    http: (_dir, [port, plainPort]) => nginxHttp(port!, plainPort!, ngxBackend.port, certDir),
    waitFor: (ports) => ports.map((port) => ({ host: '127.0.0.1', port })),
  });
  const yaml = [configMapYaml({}), serviceYaml('rec', kipBackend.port), ingressYaml('rec', '/', 'rec')];
  const keepip = await startSecurityGateway(topologyFromYaml(yaml.join('\n')), {
    https: { host: '127.0.0.1', port: 0 },
    clientHeaderTimeoutMs: 5_000,
    clientBodyTimeoutMs: 5_000,
    keepAliveTimeoutMs: 5_000,
  });
  const kipPort = keepip.gateway.httpsAddress?.port ?? 0;
  return { nginx, keepip, kipPort, ngxBackend, kipBackend, certDir };
}

// ---------------------------------------------------------------------------------------------
// Probes: one stream on a fresh connection

type Field = [string, string];

interface Probe {
  /** The request's header block, in order (pseudo-headers included, as written). */
  fields: Field[];
  /** DATA frames, in order. */
  data?: string[];
  /** A second HEADERS block after the DATA (trailers), ending the stream. */
  trailers?: Field[];
}

/** HEADERS (+ CONTINUATION beyond 16 KiB), DATA, trailers: the last frame carries END_STREAM. */
function probeFrames(p: Probe): Buffer {
  const out: Buffer[] = [];
  const data = p.data ?? [];
  const block = (fields: Field[], end: boolean) => {
    const bytes = headerBlock(fields);
    const parts: Buffer[] = [];
    for (let at = 0; at < bytes.length || parts.length === 0; at += 16_384)
      parts.push(bytes.subarray(at, at + 16_384));
    parts.forEach((part, i) => {
      const last = i === parts.length - 1;
      const flags = (last ? FLAG.END_HEADERS : 0) | (i === 0 && end ? FLAG.END_STREAM : 0);
      out.push(frame(i === 0 ? FRAME.HEADERS : FRAME.CONTINUATION, flags, 1, part));
    });
  };
  block(p.fields, data.length === 0 && p.trailers === undefined);
  data.forEach((d, i) => {
    const end = i === data.length - 1 && p.trailers === undefined;
    out.push(frame(FRAME.DATA, end ? FLAG.END_STREAM : 0, 1, Buffer.from(d, 'latin1')));
  });
  if (p.trailers !== undefined) block(p.trailers, true);
  return Buffer.concat(out);
}

/** What the client got for stream 1: a status, RST_STREAM, GOAWAY, a close, or nothing in time. */
type Answer = { status: number } | { reset: number } | { goaway: number } | { closed: true } | { hang: true };

const endsStream = (f: Frame): boolean =>
  (f.streamId === 1 &&
    (f.type === FRAME.RST_STREAM ||
      ((f.type === FRAME.HEADERS || f.type === FRAME.DATA) && (f.flags & FLAG.END_STREAM) !== 0))) ||
  (f.type === FRAME.GOAWAY && (goawayCode(f) !== 0 || (f.payload.readUInt32BE(0) & 0x7fffffff) < 1));

/** The probe as sent over h2c: `:scheme` http. */
const overH2c = (p: Probe): Probe => ({
  ...p,
  fields: p.fields.map(([n, v]): Field => (n === ':scheme' && v === 'https' ? [n, 'http'] : [n, v])),
});

async function ask(port: number, from: string, p: Probe, plain: boolean): Promise<Answer> {
  const sent = plain ? overH2c(p) : p;
  const raw = await connectRawH2({ port, from, plain, firstFlight: probeFrames(sent) });
  try {
    const end = await raw.waitFrame(endsStream, SAFETY_MS).catch(() => null);
    const head = raw.frames.find((f) => f.streamId === 1 && f.type === FRAME.HEADERS);
    if (head !== undefined) return { status: responseStatus(head.payload) };
    if (end?.type === FRAME.RST_STREAM) return { reset: rstCode(end) };
    const goaway = raw.goaway();
    if (goaway !== undefined) return { goaway: goawayCode(goaway) };
    return raw.closed ? { closed: true } : { hang: true };
  } finally {
    raw.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Judging

interface Outcome {
  answer: Answer;
  upstream: Upstreamed[];
}

const REFUSED = new Set([400, 405, 411, 413, 414, 431, 494, 501, 505]);

/** The answer as compared: forwarded ("ok"), refused (a 4xx of the proxy, a reset, a GOAWAY), or itself. */
function classOf(a: Answer): string {
  if ('status' in a) return a.status < 300 ? 'ok' : REFUSED.has(a.status) ? 'refused' : String(a.status);
  return 'hang' in a ? 'hang' : 'refused';
}

/** Fields each proxy sets itself (proxy_set_header, framing): not the client's, not compared by value. */
const PROXY_SET = new Set([
  'host',
  'x-request-id',
  'x-real-ip',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-proto',
  'x-forwarded-scheme',
  'x-scheme',
  'x-original-forwarded-for',
  'x-original-forwarded-host',
  'content-length',
  'transfer-encoding',
  'connection',
  'upgrade',
]);

/** The client's fields as passed on (the proxies' own left out, cookie compared on its own). */
const clientFields = (r: Upstreamed): string[] =>
  r.fields.filter(([n]) => !PROXY_SET.has(n) && n !== 'cookie').map(([n, v]) => `${n}: ${v}`);

/** What gives a backend request its meaning: line, Host, Cookie, framing, body. */
const meaning = (r: Upstreamed) => ({
  method: r.method,
  target: r.target,
  host: valuesOf(r.fields, 'host'),
  cookie: valuesOf(r.fields, 'cookie'),
  upgrade: valuesOf(r.fields, 'upgrade'),
  body: r.body,
  complete: r.complete,
  odd: r.odd,
});

type Verdict = { kind: 'agree' } | { kind: 'stricter' | 'finding'; why: string };

/** How keepip's backend request differs from nginx's (meaning first, then the client's fields); null: same. */
function upstreamDifference(ngx: Upstreamed, kip: Upstreamed): string | null {
  const a = JSON.stringify(meaning(ngx));
  const b = JSON.stringify(meaning(kip));
  if (a !== b) return `backend request differs: nginx ${a} keepip ${b}`;
  const theirs = new Set(clientFields(ngx));
  const ours = new Set(clientFields(kip));
  const extra = [...ours].filter((f) => !theirs.has(f));
  if (extra.length > 0) return `keepip passed on fields nginx did not: ${JSON.stringify(extra)}`;
  const dropped = [...theirs].filter((f) => !ours.has(f));
  if (dropped.length > 0) return `keepip silently dropped fields nginx passed on: ${JSON.stringify(dropped)}`;
  return null;
}

function judge(ngx: Outcome, kip: Outcome): Verdict {
  const n = classOf(ngx.answer);
  const k = classOf(kip.answer);
  if (kip.upstream.length > ngx.upstream.length) {
    const r = kip.upstream[ngx.upstream.length]!;
    const what = `${r.method} ${r.target} (${JSON.stringify(meaning(r))})`;
    return { kind: 'finding', why: `keepip forwarded ${what}; nginx (${n}) did not` };
  }
  for (const [i, r] of kip.upstream.entries()) {
    const diff = upstreamDifference(ngx.upstream[i]!, r);
    if (diff !== null) return { kind: 'finding', why: diff };
  }
  if (kip.upstream.length < ngx.upstream.length)
    return k === 'refused'
      ? { kind: 'stricter', why: `keepip refused (${JSON.stringify(kip.answer)}) what nginx forwarded` }
      : { kind: 'finding', why: `keepip dropped a request nginx forwarded (${k})` };
  if (n === k) return { kind: 'agree' };
  if (k === 'hang') return { kind: 'finding', why: `keepip never answered; nginx ${n}` };
  return { kind: 'agree' };
}

interface Result {
  name: string;
  probe: Probe;
  /** Sent over h2c (the plain ports) rather than TLS. */
  plain: boolean;
  ngx: Outcome;
  kip: Outcome;
  verdict: Verdict;
}

let nextIndex = 0;

async function runOne(
  bench: Bench,
  name: string,
  p: Probe,
  plain: boolean,
): Promise<Omit<Result, 'verdict'>> {
  const index = nextIndex++;
  const from = `127.92.${1 + Math.floor(index / 250)}.${1 + (index % 250)}`;
  const [ngxAnswer, kipAnswer] = await Promise.all([
    ask(bench.nginx.ports[plain ? 1 : 0]!, from, p, plain),
    ask(plain ? bench.keepip.port : bench.kipPort, from, p, plain),
  ]);
  const outcome = (answer: Answer, rec: Recorder) => ({
    answer,
    get upstream() {
      return rec.seen.get(from) ?? [];
    },
  });
  return {
    name,
    probe: p,
    plain,
    ngx: outcome(ngxAnswer, bench.ngxBackend),
    kip: outcome(kipAnswer, bench.kipBackend),
  };
}

/** Every probe through both proxies, CONCURRENCY at a time; judged once both backends are idle. */
async function runAll(bench: Bench, all: readonly (readonly [string, Probe, boolean])[]): Promise<Result[]> {
  const answered = await mapLimited(all, CONCURRENCY, ([name, p, plain]) => runOne(bench, name, p, plain));
  await Promise.all([bench.ngxBackend.idle(), bench.kipBackend.idle()]);
  return answered.map((r) => {
    const ngx = { answer: r.ngx.answer, upstream: r.ngx.upstream };
    const kip = { answer: r.kip.answer, upstream: r.kip.upstream };
    return { ...r, ngx, kip, verdict: judge(ngx, kip) };
  });
}

const show = (r: Result): string =>
  `${r.name}${r.plain ? ' (h2c)' : ''}: ${JSON.stringify(r.probe).slice(0, 600)}\n` +
  `    nginx ${JSON.stringify(r.ngx).slice(0, 1500)}\n    keepip ${JSON.stringify(r.kip).slice(0, 1500)}`;

// ---------------------------------------------------------------------------------------------
// Requests

const M = (v: string): Field => [':method', v];
const S = (v = 'https'): Field => [':scheme', v];
const A = (v = AUTHORITY): Field => [':authority', v];
const P = (v = '/'): Field => [':path', v];

/** A request with the usual pseudo-headers, then `extra`. */
const req = (method: string, path: string, extra: Field[] = []): Field[] => [
  M(method),
  S(),
  A(),
  P(path),
  ...extra,
];
const get = (extra: Field[] = [], path = '/g'): Probe => ({ fields: req('GET', path, extra) });
const post = (extra: Field[], data: string[], trailers?: Field[]): Probe => ({
  fields: req('POST', '/p', extra),
  data,
  ...(trailers === undefined ? {} : { trailers }),
});
const many = (n: number, size: number, name = (i: number) => `x-h${i}`): Field[] =>
  Array.from({ length: n }, (_, i): Field => [name(i), 'v'.repeat(size)]);

/** The hand-picked requests, one test each. */
const CLASSICS: Record<string, Probe> = {
  'plain GET (control)': get(),
  'POST with a matching content-length (control)': post([['content-length', '5']], ['hello']),
  'no :path': { fields: [M('GET'), S(), A()] },
  'two :path': { fields: [M('GET'), S(), A(), P('/a'), P('/b')] },
  'empty :path': { fields: [M('GET'), S(), A(), P('')] },
  ':path without a leading slash': { fields: [M('GET'), S(), A(), P('a/b')] },
  ':path * with GET': { fields: [M('GET'), S(), A(), P('*')] },
  ':path * with OPTIONS': { fields: [M('OPTIONS'), S(), A(), P('*')] },
  'absolute :path on another host': get([], 'http://other.test/abs'),
  // nghttp2 checks :path only for an http or https :scheme.
  'absolute :path on another host, :scheme foo': {
    fields: [M('GET'), S('foo'), A(), P('http://other.test/abs')],
  },
  ':path without a leading slash, :scheme foo': { fields: [M('GET'), S('foo'), A(), P('a/b')] },
  ':path * with OPTIONS, :scheme foo': { fields: [M('OPTIONS'), S('foo'), A(), P('*')] },
  ':path with a space': get([], '/a b'),
  ':path with a fragment': get([], '/a#frag'),
  ':path with dot segments': get([], '/a/../../etc/passwd'),
  ':path with CR LF and a second request line': get([], '/a HTTP/1.1\r\nHost: evil.test\r\n\r\nGET /x'),
  ':path with a raw NUL': get([], '/a\x00b'),
  'no :method': { fields: [S(), A(), P('/m')] },
  'no :scheme': { fields: [M('GET'), A(), P('/s')] },
  ':scheme http over TLS': { fields: [M('GET'), S('http'), A(), P('/s')] },
  ':scheme of odd bytes': { fields: [M('GET'), S('ht tp'), A(), P('/s')] },
  ':authority and host disagree': get([['host', 'other.test']]),
  'host alone (no :authority)': { fields: [M('GET'), S(), P('/h'), ['host', AUTHORITY]] },
  'neither :authority nor host': { fields: [M('GET'), S(), P('/h')] },
  ':authority with userinfo': { fields: [M('GET'), S(), A('u:p@h.test'), P('/u')] },
  ':authority with a slash': { fields: [M('GET'), S(), A('h.test/evil'), P('/u')] },
  ':authority with a space': { fields: [M('GET'), S(), A('h test'), P('/u')] },
  ':authority with CR LF': { fields: [M('GET'), S(), A('h.test\r\nx-injected: 1'), P('/u')] },
  'empty :authority': { fields: [M('GET'), S(), A(''), P('/u')] },
  'two :authority': { fields: [M('GET'), S(), A(), A('other.test'), P('/u')] },
  'unknown pseudo-header': get([[':foo', 'bar']]),
  'pseudo-header after a regular field': { fields: [M('GET'), S(), ['x-a', '1'], A(), P('/o')] },
  ':protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL': get([[':protocol', 'websocket']]),
  'connection: close': get([['connection', 'close']]),
  'connection naming a field': get([
    ['connection', 'x-secret'],
    ['x-secret', '1'],
  ]),
  'keep-alive field': get([['keep-alive', 'timeout=5']]),
  'proxy-connection field': get([['proxy-connection', 'keep-alive']]),
  'transfer-encoding: chunked with a body': post(
    [['transfer-encoding', 'chunked']],
    ['5\r\nhello\r\n0\r\n\r\n'],
  ),
  'upgrade: websocket': get([['upgrade', 'websocket']]),
  'upgrade with connection: upgrade': get([
    ['upgrade', 'websocket'],
    ['connection', 'upgrade'],
  ]),
  'te: gzip': get([['te', 'gzip']]),
  'te: trailers (allowed)': get([['te', 'trailers']]),
  'upper-case field name': get([['X-Upper', '1']]),
  'upper-case Host beside :authority': get([['Host', 'other.test']]),
  'field name with an underscore': get([['x_under', '1']]),
  'field name with CR LF': get([['x-a\r\nx-injected', '1']]),
  'field name with a colon': get([['x:a', '1']]),
  'field name with a space': get([['x a', '1']]),
  'field name with a NUL': get([['x\x00a', '1']]),
  'empty field name': get([['', '1']]),
  'field value with CR LF and a request': get([['x-v', 'a\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h.test']]),
  'field value with a bare LF': get([['x-v', 'a\nx-injected: 1']]),
  'field value with a NUL': get([['x-v', 'a\x00b']]),
  'field value with leading and trailing spaces': get([['x-v', ' a ']]),
  'content-length larger than the DATA (END_STREAM early)': post([['content-length', '10']], ['hello']),
  'content-length smaller than the DATA': post([['content-length', '3']], ['hello']),
  'content-length 0 with DATA': post([['content-length', '0']], ['hello']),
  'two equal content-lengths': post(
    [
      ['content-length', '5'],
      ['content-length', '5'],
    ],
    ['hello'],
  ),
  'two different content-lengths': post(
    [
      ['content-length', '5'],
      ['content-length', '3'],
    ],
    ['hello'],
  ),
  'content-length list "5, 5"': post([['content-length', '5, 5']], ['hello']),
  'content-length +5': post([['content-length', '+5']], ['hello']),
  'content-length -1': post([['content-length', '-1']], ['hello']),
  'content-length not a number': post([['content-length', 'abc']], ['hello']),
  'content-length and transfer-encoding': post(
    [
      ['content-length', '5'],
      ['transfer-encoding', 'chunked'],
    ],
    ['hello'],
  ),
  'POST without content-length, body in two DATA frames': post([], ['hel', 'lo']),
  'GET with a body': { fields: req('GET', '/gb'), data: ['hello'] },
  'GET with a body and content-length': {
    fields: req('GET', '/gb', [['content-length', '5']]),
    data: ['hello'],
  },
  'HEAD with a body': { fields: req('HEAD', '/hb'), data: ['hello'] },
  'empty DATA with END_STREAM': post([], ['']),
  'cookie crumbs': get([
    ['cookie', 'a=1'],
    ['cookie', 'b=2'],
  ]),
  'cookie crumbs around another field': get([
    ['cookie', 'a=1'],
    ['x-a', '1'],
    ['cookie', 'b=2'],
  ]),
  'empty cookie crumb': get([
    ['cookie', 'a=1'],
    ['cookie', ''],
    ['cookie', 'b=2'],
  ]),
  'trailers after DATA': post([], ['hello'], [['x-t', '1']]),
  'trailers with a pseudo-header': post([], ['hello'], [[':path', '/evil']]),
  'trailers with content-length': post([], ['hello'], [['content-length', '99']]),
  'trailers without DATA': { fields: req('POST', '/t'), trailers: [['x-t', '1']] },
  'CONNECT with :authority only': { fields: [M('CONNECT'), A('h.test:443')] },
  'CONNECT with :path and :scheme': { fields: [M('CONNECT'), S(), A('h.test:443'), P('/c')] },
  'two authorization fields': get([
    ['authorization', 'Basic YTpi'],
    ['authorization', 'Basic Yzpk'],
  ]),
  'forged x-forwarded-host and x-real-ip': get([
    ['x-forwarded-host', 'evil.test'],
    ['x-real-ip', '10.0.0.1'],
  ]),
  'proxy field (httpoxy)': get([['proxy', 'http://evil.test']]),
  'one field of 9000 bytes': get([['x-big', 'b'.repeat(9000)]]),
  '100 fields of 100 bytes': get(many(100, 100)),
  '40 fields of 1000 bytes (40 KB list)': get(many(40, 1000)),
  '3000 cookie crumbs': get(many(3000, 3, () => 'cookie')),
};

// ---------------------------------------------------------------------------------------------
// The generated grammar: a valid request most of the time in each part, now and then an odd variant.

/** Mostly `usual`, else one of `odd`. */
const mostly = <T>(usual: fc.Arbitrary<T>, odd: readonly T[]): fc.Arbitrary<T> =>
  fc.oneof({ weight: 9, arbitrary: usual }, { weight: 1, arbitrary: fc.constantFrom(...odd) });

const METHOD = mostly(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'), ['HEAD', 'OPTIONS', 'CONNECT', 'get']);
const PATH = mostly<Field[]>(fc.constantFrom([P('/')], [P('/a?q=1')], [P('/a/b')]), [
  [],
  [P('/a'), P('/b')],
  [P('')],
  [P('a')],
  [P('*')],
  [P('http://o.test/x')],
  [P('/a b')],
  [P('/a\r\nb')],
]);
const AUTH = mostly<Field[]>(fc.constant([A()]), [
  [],
  [A('')],
  [A('u@h.test')],
  [A('h.test:8443')],
  [A('h.test/x')],
  [A('H.TEST')],
  [A(), A('o.test')],
]);
const HOSTFIELD = mostly<Field[]>(fc.constant([]), [
  [['host', AUTHORITY]],
  [['host', 'o.test']],
  [['Host', 'o.test']],
]);
const OTHER = mostly<Field[]>(fc.constant([]), [
  [['connection', 'close']],
  [
    ['connection', 'x-s'],
    ['x-s', '1'],
  ],
  [['keep-alive', '5']],
  [['proxy-connection', 'close']],
  [['upgrade', 'websocket']],
  [['te', 'gzip']],
  [['te', 'trailers']],
  [['X-Up', '1']],
  [['x_u', '1']],
  [['x-v', 'a\r\nb: c']],
  [['x-v', 'a\x00b']],
  [['x:v', '1']],
  [[':foo', '1']],
  [
    ['cookie', 'a=1'],
    ['cookie', 'b=2'],
  ],
  [
    ['authorization', 'x'],
    ['authorization', 'y'],
  ],
]);
/** The body: none, or its DATA frames with a content-length that matches, is off, doubled, or absent. */
const BODY = fc
  .record({
    data: fc.constantFrom([] as string[], ['hello'], ['he', 'llo'], ['']),
    length: mostly<string[] | null>(fc.constant(null), [['3'], ['9'], ['5', '5'], ['5', '3'], ['x'], []]),
    trailers: mostly<Field[] | null>(fc.constant(null), [
      [['x-t', '1']],
      [[':path', '/t']],
      [['content-length', '1']],
    ]),
  })
  .map(({ data, length, trailers }) => {
    const bytes = data.join('').length;
    const cl = length === null ? (data.length > 0 ? [String(bytes)] : []) : length;
    return { data, fields: cl.map((v): Field => ['content-length', v]), trailers };
  });

const REQUEST = fc
  .record({
    method: METHOD,
    path: PATH,
    auth: AUTH,
    host: HOSTFIELD,
    other: OTHER,
    body: BODY,
    pseudoLast: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  })
  .map((r): Probe => {
    const pseudo = [M(r.method), S(), ...r.auth, ...r.path];
    const regular = [...r.host, ...r.other, ...r.body.fields];
    const fields = r.pseudoLast ? [...regular, ...pseudo] : [...pseudo, ...regular];
    return {
      fields,
      ...(r.body.data.length === 0 ? {} : { data: r.body.data }),
      ...(r.body.trailers === null ? {} : { trailers: r.body.trailers }),
    };
  });

// ---------------------------------------------------------------------------------------------
// Where keepip may refuse what nginx forwards. Each entry: a test on the probe, and why.

interface Allowed {
  reason: string;
  applies(p: Probe): boolean;
}

const names = (fields: readonly Field[] | undefined): string[] => (fields ?? []).map(([n]) => n);
const pseudoValue = (p: Probe, name: string): string | undefined => p.fields.find(([n]) => n === name)?.[1];

/** Where keepip refuses what nginx 1.22 forwards. */
const ALLOWED: Allowed[] = [
  {
    reason:
      'connection-specific fields (connection, keep-alive, proxy-connection, transfer-encoding, upgrade, te other than trailers) make an HTTP/2 request malformed (RFC 9113 8.2.2: nghttp2 resets the stream); nginx 1.22 forwards them, Upgrade and Connection: upgrade included',
    applies: (p) =>
      p.fields.some(
        ([n, v]) =>
          ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'].includes(n) ||
          (n === 'te' && v !== 'trailers'),
      ),
  },
  {
    reason:
      'a pseudo-header after a regular field makes the request malformed (RFC 9113 8.3); nginx takes it',
    applies: (p) => {
      const first = p.fields.findIndex(([n]) => !n.startsWith(':'));
      return first >= 0 && p.fields.slice(first).some(([n]) => n.startsWith(':'));
    },
  },
  {
    reason: ':authority must not carry userinfo (RFC 9113 8.3.1); nginx forwards it as the Host',
    applies: (p) => (pseudoValue(p, ':authority') ?? '').includes('@'),
  },
  {
    reason: 'a :path carries no fragment (RFC 9113 8.3.1, RFC 3986 path + query); nginx passes "#..." on',
    applies: (p) => (pseudoValue(p, ':path') ?? '').includes('#'),
  },
  {
    reason:
      'the header list is sized as RFC 9113 6.5.2 says (32 octets per field, so per cookie crumb) against the 4 x 8k of large-client-header-buffers; nginx holds each crumb to a buffer as it arrives and the joined cookie to no limit',
    applies: (p) => p.fields.length > 1000,
  },
];

/**
 * Where keepip forwards what nginx 1.22 refuses and the backend request is the one nginx forwards
 * for the valid equivalent: differences of nginx 1.22, not protections (each still compared field by
 * field: a forwarded request that differs in meaning is a finding whatever this says).
 */
const LOOSER: Allowed[] = [
  {
    reason:
      "a host field equal to :authority is valid (RFC 9113 8.3.1); nginx 1.22 turns :authority into a Host line and refuses the client's as a duplicate",
    applies: (p) => {
      const hosts = p.fields.filter(([n]) => n === 'host').map(([, v]) => v);
      const authority = p.fields.filter(([n]) => n === ':authority').map(([, v]) => v);
      return hosts.length === 1 && authority.length === 1 && hosts[0] === authority[0];
    },
  },
  {
    reason:
      'trailers of ordinary fields after the body: nginx 1.22 cannot take request trailers at all (GOAWAY PROTOCOL_ERROR); keepip forwards the whole body and discards them (RFC 9110 6.5.1), as HTTP/1.1 framing by length cannot carry them',
    applies: (p) =>
      p.trailers !== undefined &&
      names(p.trailers).every((n) => /^[a-z0-9-]+$/.test(n) && n !== 'content-length'),
  },
];

const allowedFor = (r: Result): Allowed | undefined => ALLOWED.find((a) => a.applies(r.probe));

/**
 * A field RFC 9113 8.2.1 makes the request malformed (a name with a byte outside lower-case tchar, an
 * empty name; a value with NUL, CR or LF, or white space at either end). node:http2 never hands it to
 * keepip: Node's nghttp2 invalid-header callback ignores the field and the stream goes on
 * (docs/gateway.md). nginx refuses the stream (RST_STREAM, 400 or GOAWAY), or trims a padded value.
 */
const malformedField = ([n, v]: Field): boolean =>
  !n.startsWith(':') &&
  (n === '' || /[^!#$%&'*+\-.^_`|~0-9a-z]/.test(n) || /[\0\r\n]/.test(v) || /^[ \t]|[ \t]$/.test(v));

/**
 * keepip forwarded the request without its malformed fields (malformedField): what nginx forwarded,
 * or would have for the request without them. Nothing of such a field reaches the backend, and leaving
 * a field out is what any client may do, so no rule keyed on a field is weakened by it.
 */
function droppedMalformed(r: Result): boolean {
  const malformed = [...r.probe.fields, ...(r.probe.trailers ?? [])].filter(malformedField);
  if (malformed.length === 0 || r.verdict.kind !== 'finding' || r.kip.upstream.length !== 1) return false;
  const kip = r.kip.upstream[0]!;
  if (!kip.complete || kip.odd !== '') return false;
  if (r.ngx.upstream.length === 0) return classOf(r.ngx.answer) === 'refused';
  const ngx = r.ngx.upstream[0]!;
  if (r.ngx.upstream.length !== 1 || JSON.stringify(meaning(ngx)) !== JSON.stringify(meaning(kip)))
    return false;
  const ours = new Set(clientFields(kip));
  const names = new Set(malformed.map(([n]) => n.trim()));
  return clientFields(ngx).every((f) => ours.has(f) || names.has(f.slice(0, f.indexOf(':'))));
}

/** keepip forwarded what nginx refused (nothing else differing), covered by a LOOSER entry. */
const looserFor = (r: Result): Allowed | undefined =>
  r.verdict.kind === 'finding' &&
  r.ngx.upstream.length === 0 &&
  r.kip.upstream.length === 1 &&
  classOf(r.ngx.answer) === 'refused' &&
  r.kip.upstream[0]!.complete &&
  r.kip.upstream[0]!.odd === ''
    ? LOOSER.find((a) => a.applies(r.probe))
    : undefined;

/** Why `r` fails: a finding, or a stricter answer no ALLOWED entry covers; null when it passes. */
function problem(r: Result): string | null {
  if (r.verdict.kind === 'agree') return null;
  if (r.verdict.kind === 'stricter' && allowedFor(r) !== undefined) return null;
  if (looserFor(r) !== undefined || droppedMalformed(r)) return null;
  return `${r.verdict.kind}: ${r.verdict.why}\n  ${show(r)}`;
}

describe('HTTP/2 requests downgraded to HTTP/1.1: keepip against nginx 1.22 as ingress-nginx renders it', () => {
  let bench: Bench;
  const classic = new Map<string, Result>();
  let overH2c: Result[] = [];
  let generated: Result[] = [];

  before(async () => {
    bench = await startBench();
    const probes = fc.sample(REQUEST, { seed: SEED, numRuns: RUNS });
    const all = [
      ...Object.entries(CLASSICS).map(([n, p]) => [n, p, false] as const),
      ...Object.entries(CLASSICS).map(([n, p]) => [n, p, true] as const),
      // Every fourth generated one over h2c.
      ...probes.map((p, i) => [`generated #${i}`, p, i % 4 === 3] as const),
    ];
    const results = await runAll(bench, all);
    for (const r of results) if (!r.name.startsWith('generated #') && !r.plain) classic.set(r.name, r);
    overH2c = results.filter((r) => !r.name.startsWith('generated #') && r.plain);
    generated = results.filter((r) => r.name.startsWith('generated #'));
    if (process.env.H2DIFF_DUMP) {
      const lines = results.map(
        (r) => `${r.verdict.kind} ${'why' in r.verdict ? r.verdict.why : ''}\n  ${show(r)}`,
      );
      writeFileSync(process.env.H2DIFF_DUMP, lines.join('\n'));
    }
  });

  after(async () => {
    await bench?.keepip.close();
    await bench?.nginx.stop();
    await bench?.ngxBackend.close();
    await bench?.kipBackend.close();
    if (bench !== undefined) rmSync(bench.certDir, { recursive: true, force: true });
  });

  for (const name of Object.keys(CLASSICS)) {
    it(`${name}: keepip forwards nothing nginx refuses and what it forwards means the same`, () => {
      assert.equal(problem(classic.get(name)!), null);
    });
  }

  it('the same hand-picked requests over h2c (prior knowledge, plain ports): as over TLS', () => {
    const problems = overH2c.map(problem).filter((p) => p !== null);
    assert.deepEqual(problems, [], `${problems.length} of ${overH2c.length} disagree`);
  });

  it(`generated requests (seed ${SEED}, ${RUNS} runs): no finding, every stricter answer allowed`, () => {
    const problems = generated.map(problem).filter((p) => p !== null);
    assert.deepEqual(problems, [], `${problems.length} of ${generated.length} disagree`);
  });

  it("no backend saw a request without the proxy's X-Real-IP (one injected by a field or the body)", () => {
    assert.deepEqual(bench.kipBackend.seen.get('?') ?? [], []);
    assert.deepEqual(bench.ngxBackend.seen.get('?') ?? [], []);
  });

  it('the run is not vacuous: most generated requests reach both backends', () => {
    const forwarded = generated.filter((r) => r.ngx.upstream.length > 0 && r.kip.upstream.length > 0);
    assert.ok(forwarded.length >= generated.length / 3, `${forwarded.length} of ${generated.length}`);
  });
});
