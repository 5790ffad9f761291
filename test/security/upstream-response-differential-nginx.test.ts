// What a client sees when the BACKEND answers oddly: keepip against real nginx 1.22 configured as
// ingress-nginx's template (rootfs/etc/nginx/template/nginx.tmpl) proxies to a Service: an upstream
// with `keepalive 320` (upstream-keepalive-connections), `proxy_http_version 1.1`, `Connection ""`
// (the $connection_upgrade map gives '' with keepalive on), `proxy_buffering off`,
// `proxy_buffer_size 4k`, `proxy_next_upstream error timeout` (3 tries) and no proxy_ignore_headers (so
// nginx honours the answer's X-Accel-Redirect). Both get proxy-read-timeout 2 s: an answer that stops
// short of its framing on a connection the backend keeps open ends in both on that timeout (a bound:
// the backend has written all it ever will by then).
//
// A raw backend answers `/lane<k>/case/<id>` with the case's bytes (then closes or keeps the
// connection), `/lane<k>/plain?c=<id>` with `plain:<id>`. For each case one client connection asks the
// case (GET or HEAD), then, when the first answer is whole, `/plain` with `Connection: close`; what the
// client read is compared: the status, the reason, the header list (Date, Server, Connection,
// Keep-Alive, Content-Length, Transfer-Encoding left out: the framing is compared on its own), the
// framing the client sees, the body, whether the second request got its own answer on the same
// connection, and any bytes after it. Each lane has its own backend and its own pool (an nginx upstream,
// a keepip Service) and runs its cases one after another, so that a connection a case leaves in the pool
// is the one the next request may take: that is where a response desync would show.
//
// The cases: hand-picked ones, then answers generated over a grammar (status lines, header fields,
// framings, chunk-size edge cases, trailing bytes, HEAD/204/304 with a body). UPRESP_SEED=<n> (or
// `random`) explores others; the default seed is fixed. A difference passes only when ALLOWED names it
// with its reason (keepip stricter: a clean 502 and the next request fine; or formatting); anything
// else fails, and keepip less safe than nginx is a finding.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { type RawConnection, listenTracked, openRaw } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import {
  ingressYaml,
  type SecurityGateway,
  serviceYaml,
  startSecurityGateway,
  topologyFromYaml,
} from './helpers.ts';

const LANES = 6;
const READ_TIMEOUT_S = 2;
/**
 * How long a client waits for a whole answer, then for the close: far beyond the read timeout for
 * keepip (a hang there is a failure); shorter for nginx, whose hangs (an HTTP/0.9 relay, an interim
 * answer taken as final) are only its verdict on a hand-picked case.
 */
const KEEPIP_DEADLINE_MS = 20_000;
const NGINX_DEADLINE_MS = 6_000;
/** A whole second response, sent after the first where the case says so. */
const POISON = 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Poison: 1\r\n\r\nPOISON';

interface Case {
  name: string;
  /** The backend's bytes for the case request. */
  answer: string;
  /** The backend closes the connection after the answer (else it keeps reading requests on it). */
  close: boolean;
  method: 'GET' | 'HEAD';
}

// ---------------------------------------------------------------------------------------------
// The backend.

interface Backend {
  port: number;
  /** The connection each case request came on, by case id. */
  sockets: Map<string, net.Socket>;
  close(): Promise<void>;
}

/** `/lane<k>/case/<id>` answers cases[id]; `/lane<k>/plain?c=<id>` answers `plain:<id>`. */
async function startBackend(cases: ReadonlyMap<string, Case>): Promise<Backend> {
  const sockets = new Map<string, net.Socket>();
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      for (;;) {
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return;
        const target = text.slice(0, end).split(' ')[1] ?? '';
        text = text.slice(end + 4);
        const plain = /\/plain\?c=([^&\s]*)/.exec(target);
        if (plain !== null) {
          const body = `plain:${plain[1]}`;
          socket.write(
            `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
          );
          continue;
        }
        const id = /\/case\/([^?\s]*)/.exec(target)?.[1] ?? '';
        const c = cases.get(id);
        sockets.set(id, socket);
        if (c === undefined) {
          socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnone');
          continue;
        }
        if (c.close) {
          socket.off('data', onData);
          socket.end(c.answer, 'latin1');
          return;
        }
        socket.write(c.answer, 'latin1');
      }
    };
    socket.on('data', onData);
  });
  return { ...(await listenTracked(server)), sockets };
}

// ---------------------------------------------------------------------------------------------
// The two proxies.

/** ingress-nginx's proxy settings for a Service, one upstream and location per lane. */
function nginxHttp(port: number, backends: readonly number[]): string {
  const upstreams = backends.map(
    (p, k) => `upstream lane${k} { server 127.0.0.1:${p}; keepalive 320; keepalive_requests 10000; }`,
  );
  const locations = backends.map((_, k) => `    location /lane${k} { proxy_pass http://lane${k}; }`);
  return [
    ...upstreams,
    `server { listen 127.0.0.1:${port} default_server; server_name _;`,
    '    keepalive_timeout 75s; keepalive_requests 1000;',
    '    proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Upgrade $http_upgrade;',
    '    proxy_buffering off; proxy_request_buffering on;',
    '    proxy_buffer_size 4k; proxy_buffers 4 4k;',
    `    proxy_connect_timeout 5s; proxy_send_timeout 60s; proxy_read_timeout ${READ_TIMEOUT_S}s;`,
    '    proxy_next_upstream error timeout; proxy_next_upstream_tries 3;',
    ...locations,
    '}',
  ].join('\n');
}

function keepipYaml(backends: readonly number[]): string {
  return backends
    .flatMap((p, k) => [
      serviceYaml(`lane${k}`, p),
      ingressYaml(`lane${k}`, `/lane${k}`, `lane${k}`, { 'proxy-read-timeout': String(READ_TIMEOUT_S) }),
    ])
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// What the client reads.

type Framing = 'none' | 'length' | 'chunked' | 'close';

interface Parsed {
  status: number;
  reason: string;
  /** `name: value`, names lower-cased, in order. */
  fields: string[];
  framing: Framing;
  body: string;
  complete: boolean;
  /** Where the next response would start. */
  end: number;
}

/** A chunked body from `at`: data, completeness, where it ends. */
function dechunk(raw: string, at: number): { body: string; complete: boolean; end: number } {
  let body = '';
  let pos = at;
  for (;;) {
    const eol = raw.indexOf('\r\n', pos);
    if (eol < 0) return { body, complete: false, end: raw.length };
    const sizeText = raw.slice(pos, eol).split(';')[0] ?? '';
    if (!/^[0-9a-fA-F]+$/.test(sizeText))
      return { body: `${body}<bad chunk>`, complete: false, end: raw.length };
    const size = Number.parseInt(sizeText, 16);
    if (size === 0) {
      const fin = raw.indexOf('\r\n\r\n', eol);
      return fin < 0 ? { body, complete: false, end: raw.length } : { body, complete: true, end: fin + 4 };
    }
    body += raw.slice(eol + 2, Math.min(raw.length, eol + 2 + size));
    if (raw.length < eol + 4 + size) return { body, complete: false, end: raw.length };
    pos = eol + 4 + size;
  }
}

/** One response from `at` (null: no whole head, or not a status line); `bodyless`: answer to HEAD. */
function parseAt(raw: string, at: number, bodyless: boolean, closed: boolean): Parsed | null {
  const headEnd = raw.indexOf('\r\n\r\n', at);
  if (headEnd < 0) return null;
  const lines = raw.slice(at, headEnd).split('\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (statusLine === null) return null;
  const status = Number(statusLine[1]);
  const fields = lines.slice(1).map((line) => {
    const colon = line.indexOf(':');
    return `${line.slice(0, colon).toLowerCase()}: ${line.slice(colon + 1).trim()}`;
  });
  const field = (name: string) => fields.find((f) => f.startsWith(`${name}: `))?.slice(name.length + 2);
  const start = headEnd + 4;
  const base = { status, reason: statusLine[2] ?? '', fields };
  if (bodyless || status < 200 || status === 204 || status === 304) {
    return { ...base, framing: 'none', body: '', complete: true, end: start };
  }
  if (field('transfer-encoding') !== undefined)
    return { ...base, framing: 'chunked', ...dechunk(raw, start) };
  const length = field('content-length');
  if (length !== undefined) {
    const end = start + Number(length);
    return { ...base, framing: 'length', body: raw.slice(start, end), complete: raw.length >= end, end };
  }
  return { ...base, framing: 'close', body: raw.slice(start), complete: closed, end: raw.length };
}

/** The first final response (1xx before it counted), from the start of what the client received. */
function parseFirst(raw: string, head: boolean, closed: boolean): { interim: number; first: Parsed | null } {
  let at = 0;
  let interim = 0;
  for (;;) {
    const parsed = parseAt(raw, at, head, closed);
    if (parsed === null || parsed.status >= 200 || parsed.status === 101) return { interim, first: parsed };
    interim += 1;
    at = parsed.end;
  }
}

/** What the client saw, reduced to what is compared. */
interface Seen {
  /** Nothing, a hang (no whole answer, connection open at the deadline), or garbage where a head was due. */
  outcome: 'answer' | 'closed-empty' | 'hang' | 'garbage';
  interim: number;
  status: number;
  reason: string;
  headers: string[];
  framing: Framing;
  body: string;
  complete: boolean;
  /** The second request: its own answer (`own`), `closed` (no answer, connection closed), or what came. */
  second: string;
  /** Bytes after the second answer. */
  after: string;
}

const COMPARED_OUT = /^(date|server|connection|keep-alive|content-length|transfer-encoding): /;

function seenOf(raw: string, c: Case, id: string, closed: boolean, hung: boolean): Seen {
  const { interim, first } = parseFirst(raw, c.method === 'HEAD', closed);
  const empty = {
    interim,
    status: 0,
    reason: '',
    headers: [],
    framing: 'none' as const,
    body: '',
    complete: false,
  };
  if (first === null) {
    const outcome = hung ? 'hang' : raw.length === 0 ? 'closed-empty' : 'garbage';
    return { outcome, ...empty, second: 'none', after: '' };
  }
  const headers = first.fields.filter((f) => !COMPARED_OUT.test(f));
  const next = parseAt(raw, first.end, false, closed);
  let second = 'none';
  let after = '';
  if (next === null) {
    second =
      raw.length > first.end ? `garbage:${JSON.stringify(raw.slice(first.end, first.end + 80))}` : 'closed';
  } else {
    const own = next.status === 200 && next.body === `plain:${id}` && next.complete;
    second = own
      ? 'own'
      : `${next.status} ${JSON.stringify(next.body.slice(0, 80))} complete=${next.complete}`;
    after = raw.slice(next.end);
  }
  const base = { outcome: hung ? ('hang' as const) : ('answer' as const), interim, status: first.status };
  return {
    ...base,
    reason: first.reason,
    headers,
    framing: first.framing,
    body: first.body,
    complete: first.complete,
    second,
    after,
  };
}

/** The case request on a new connection, then (once its answer is whole) the plain one with close. */
async function exchange(port: number, lane: number, id: string, c: Case, deadlineMs: number): Promise<Seen> {
  const conn: RawConnection = await openRaw({ host: '127.0.0.1', port });
  const head = c.method === 'HEAD';
  const text = () => conn.received().toString('latin1');
  try {
    conn.socket.write(`${c.method} /lane${lane}/case/${id} HTTP/1.1\r\nHost: up.test\r\n\r\n`);
    let hung = false;
    try {
      await conn.until(
        (buf) => parseFirst(buf.toString('latin1'), head, false).first?.complete === true,
        deadlineMs,
      );
    } catch {
      hung = !conn.closed();
    }
    if (!hung && !conn.closed()) {
      conn.socket.write(
        `GET /lane${lane}/plain?c=${id} HTTP/1.1\r\nHost: up.test\r\nConnection: close\r\n\r\n`,
      );
      await conn.whenClosed(deadlineMs).catch(() => {
        hung = true;
      });
    }
    return seenOf(text(), c, id, conn.closed(), hung);
  } finally {
    conn.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// The cases.

const body = (text: string) => `Content-Length: ${text.length}\r\n\r\n${text}`;
const ok = (fields: string, text = 'hello') => `HTTP/1.1 200 OK\r\n${fields}${body(text)}`;
const chunked = (fields: string, chunks: string) =>
  `HTTP/1.1 200 OK\r\n${fields}Transfer-Encoding: chunked\r\n\r\n${chunks}`;

/** Hand-picked answers: name, bytes, whether the backend closes after them, the method. */
const HAND: [string, string, boolean, ('GET' | 'HEAD')?][] = [
  ['clean', ok(''), false],
  ['extra-after-length', `${ok('', 'full')}${POISON}`, false],
  ['longer-than-length', 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfullPOISON', false],
  ['extra-after-last-chunk', chunked('', `5\r\nchunk\r\n0\r\n\r\n${POISON}`), false],
  [
    'cl-and-te',
    `HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${POISON}`,
    false,
  ],
  ['two-lengths', `HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 70\r\n\r\nLEAK${POISON}`, false],
  [
    'same-length-twice',
    `HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nLEAK${POISON}`,
    false,
  ],
  [
    'te-chunked-identity',
    `${chunked('', '').replace('chunked', 'chunked, identity')}4\r\nLEAK\r\n0\r\n\r\n${POISON}`,
    false,
  ],
  ['te-Chunked', `${chunked('', '').replace('chunked', 'Chunked')}4\r\nbody\r\n0\r\n\r\n`, false],
  [
    'te-http10',
    `HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nLEAK\r\n0\r\n\r\n${POISON}`,
    false,
  ],
  ['chunk-overflow', chunked('', `4\r\npart\r\n10000000000000004\r\nLEAK\r\n0\r\n\r\n${POISON}`), false],
  ['chunk-leading-zeros', chunked('', '0004\r\npart\r\n000\r\n\r\n'), false],
  ['chunk-ext-trailer', chunked('Trailer: X-Sum\r\n', '4;a=b\r\npart\r\n0\r\nX-Sum: 1\r\n\r\n'), false],
  ['chunk-no-final-crlf', chunked('', '4\r\npart\r\n0\r\n'), true],
  ['chunk-bare-lf', chunked('', `4\npart\n0\n\n${POISON}`), false],
  ['short-length-close', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort', true],
  ['short-length-open', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort', false],
  ['close-delimited', 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close', true],
  ['head-with-body', `${ok('', 'POISON')}`, false, 'HEAD'],
  ['head-chunked-body', chunked('', '6\r\nPOISON\r\n0\r\n\r\n'), false, 'HEAD'],
  ['204-with-body', `HTTP/1.1 204 No Content\r\n\r\n${POISON}`, false],
  ['204-with-length', 'HTTP/1.1 204 No Content\r\nContent-Length: 6\r\n\r\nPOISON', false],
  ['304-with-length', 'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 6\r\n\r\nPOISON', false],
  ['100-then-200', `HTTP/1.1 100 Continue\r\n\r\n${ok('')}`, false],
  ['103-then-200', `HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n${ok('')}`, false],
  [
    '101-unasked',
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n${POISON}`,
    false,
  ],
  ['status-999', `HTTP/1.1 999 Odd\r\n${body('nine')}`, false],
  ['status-600', `HTTP/1.1 600 Six\r\n${body('six')}`, false],
  ['status-099', `HTTP/1.1 099 Low\r\n${body('low')}`, false],
  ['status-1000', `HTTP/1.1 1000 Big\r\n${body('big')}`, true],
  ['status-icy', `ICY 200 OK\r\n${body('LEAK')}${POISON}`, false],
  ['lowercase-version', `http/1.1 200 OK\r\n${body('LEAK')}${POISON}`, true],
  ['double-space-status', `HTTP/1.1  200 OK\r\n${body('sp')}`, false],
  ['ctl-in-value', ok('X-Ctl: a\x07b\r\n'), false],
  ['no-reason', `HTTP/1.1 200\r\n${body('bare')}`, false],
  ['http10-keepalive', `HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n${body('ten')}${POISON}`, false],
  ['http2-status', `HTTP/2 200 OK\r\n${body('LEAK')}${POISON}`, false],
  ['connection-names-header', ok('Connection: X-Secret, close\r\nX-Secret: internal\r\n'), false],
  ['keep-alive-proxy-connection', ok('Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n'), false],
  ['upgrade-without-101', ok('Upgrade: h2c\r\n'), false],
  ['trailer-field', ok('Trailer: X-Sum\r\n'), false],
  ['x-accel-redirect', ok('X-Accel-Redirect: /lane0/plain?c=accel\r\n'), false],
  [
    'x-accel-others',
    ok(
      'X-Accel-Buffering: yes\r\nX-Accel-Expires: 10\r\nX-Accel-Limit-Rate: 100000\r\nX-Accel-Charset: utf-8\r\nX-Pad: avoid\r\n',
    ),
    false,
  ],
  ['status-field', ok('Status: 404 Not Found\r\n'), false],
  [
    'set-cookie-location',
    ok('Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nLocation: http://127.0.0.1/x\r\n'),
    false,
  ],
  ['obs-fold', ok('X-A: a\r\n b\r\n'), false],
  ['bare-lf-field', ok('X-A: a\nX-B: b\r\n'), false],
  ['nul-in-value', ok('X-A: a\0b\r\n'), false],
  ['space-before-colon', ok('X-A : a\r\n'), false],
  ['empty-name', ok(': a\r\n'), false],
  ['long-field', ok(`X-Long: ${'l'.repeat(5000)}\r\n`), false],
  ['underscore-name', ok('X_Under: a\r\n'), false],
];

const STATUS_LINES = [
  'HTTP/1.1 200 OK',
  'HTTP/1.0 200 OK',
  'HTTP/1.1 200',
  'HTTP/1.1 200 ',
  'HTTP/1.1 404 Not Found',
  'HTTP/1.1 302 Found',
  'HTTP/1.1 204 No Content',
  'HTTP/1.1 304 Not Modified',
  'HTTP/1.1 101 Switching Protocols',
  'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK',
  'HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK',
  'HTTP/1.1 999 Odd',
  'HTTP/1.2 200 OK',
  'HTTP/1.1  200 OK',
  'HTTP/1.1 200 O\x01K',
];

const FIELDS = [
  'Content-Type: text/plain',
  'Set-Cookie: s=1; Path=/',
  'Location: /elsewhere',
  'Connection: close',
  'Connection: keep-alive',
  'Connection: X-Internal',
  'X-Internal: secret',
  'Keep-Alive: timeout=5, max=100',
  'Proxy-Connection: keep-alive',
  'Trailer: X-Sum',
  'TE: trailers',
  'Upgrade: websocket',
  'X-Accel-Redirect: /lane0/plain?c=accel',
  'X-Accel-Buffering: no',
  'X-Accel-Expires: 0',
  'X-Accel-Charset: koi8-r',
  'X-Pad: avoid browser bug',
  'Status: 500 Inner',
  'Server: backend/1.0',
  'Date: Thu, 01 Jan 1970 00:00:00 GMT',
  'Content-Length: 3',
  'Content-Length: 0',
  'Content-Length: 1,1',
  'Content-Length: +3',
  'Content-Length: -1',
  'Transfer-Encoding: chunked',
  'Transfer-Encoding: identity',
  'X-Fold: a\r\n folded',
  'X-Bare: a\nX-After: b',
  'X-Nul: a\0b',
  'X-Ctl: a\x07b',
  'X-Del: a\x7fb',
  'X-High: caf\xe9',
  'X-Space : a',
  ': empty-name',
  'NoColon',
  `X-Long: ${'l'.repeat(5000)}`,
  'X_Under: a',
  'Content-Encoding: gzip',
];

type Body = { fields: string; bytes: string };

/** The framing fields and body bytes (data "hello", 5 bytes). */
const BODIES: Body[] = [
  { fields: 'Content-Length: 5', bytes: 'hello' },
  { fields: 'Content-Length: 9', bytes: 'hello' },
  { fields: 'Content-Length: 3', bytes: 'hello' },
  { fields: 'Content-Length: 05', bytes: 'hello' },
  { fields: 'Content-Length: 5\r\nContent-Length: 5', bytes: 'hello' },
  { fields: 'Content-Length: 5\r\nContent-Length: 3', bytes: 'hello' },
  { fields: 'Content-Length:5', bytes: 'hello' },
  { fields: 'Content-Length: 5 ', bytes: 'hello' },
  { fields: 'Content-Length: 99999999999999999999', bytes: 'hello' },
  { fields: '', bytes: 'hello' },
  { fields: 'Transfer-Encoding: chunked', bytes: '5\r\nhello\r\n0\r\n\r\n' },
  { fields: 'Transfer-Encoding: Chunked', bytes: '5\r\nhello\r\n0\r\n\r\n' },
  { fields: 'Transfer-Encoding: chunked, identity', bytes: '5\r\nhello\r\n0\r\n\r\n' },
  { fields: 'Transfer-Encoding: gzip, chunked', bytes: '5\r\nhello\r\n0\r\n\r\n' },
  { fields: 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked', bytes: '5\r\nhello\r\n0\r\n\r\n' },
  { fields: 'Transfer-Encoding: chunked\r\nContent-Length: 5', bytes: '5\r\nhello\r\n0\r\n\r\n' },
  { fields: 'Transfer-Encoding: chunked', bytes: '0005\r\nhello\r\n0000\r\n\r\n' },
  { fields: 'Transfer-Encoding: chunked', bytes: '5;ext=1;q="a b"\r\nhello\r\n0;z\r\n\r\n' },
  { fields: 'Transfer-Encoding: chunked', bytes: '5 \r\nhello\r\n0\r\n\r\n' },
  {
    fields: 'Transfer-Encoding: chunked',
    bytes: '5\r\nhello\r\n0\r\nX-Sum: 1\r\nContent-Length: 60\r\n\r\n',
  },
  { fields: 'Transfer-Encoding: chunked', bytes: '5\r\nhello\r\n0\r\n' },
  { fields: 'Transfer-Encoding: chunked', bytes: '5\r\nhello\r\n' },
  { fields: 'Transfer-Encoding: chunked', bytes: '5\nhello\n0\n\n' },
  { fields: 'Transfer-Encoding: chunked', bytes: '5\r\nhelloXX\r\n0\r\n\r\n' },
  { fields: 'Transfer-Encoding: chunked', bytes: '10000000000000005\r\nhello\r\n0\r\n\r\n' },
  { fields: 'Transfer-Encoding: chunked', bytes: 'fffffffffffffffb\r\nhello\r\n0\r\n\r\n' },
  { fields: 'Transfer-Encoding: chunked', bytes: '0x5\r\nhello\r\n0\r\n\r\n' },
  { fields: 'Transfer-Encoding: chunked', bytes: '-5\r\nhello\r\n0\r\n\r\n' },
  { fields: 'Transfer-Encoding: chunked', bytes: 'hello' },
];

const EXTRA = ['', '', POISON, 'GARBAGE'];

/** One generated answer: status line, fields, framing and body, trailing bytes, close, method. */
const caseArb: fc.Arbitrary<Case> = fc
  .record({
    status: fc.nat(STATUS_LINES.length - 1),
    fields: fc.array(fc.nat(FIELDS.length - 1), { maxLength: 3 }),
    framing: fc.nat(BODIES.length - 1),
    before: fc.boolean(),
    extra: fc.nat(EXTRA.length - 1),
    close: fc.boolean(),
    head: fc.nat(5),
  })
  .map((g) => {
    const b = BODIES[g.framing]!;
    const fields = g.fields.map((i) => FIELDS[i]!);
    const framing = b.fields === '' ? [] : [b.fields];
    const lines = [
      STATUS_LINES[g.status]!,
      ...(g.before ? [...framing, ...fields] : [...fields, ...framing]),
    ];
    const method = g.head === 0 ? ('HEAD' as const) : ('GET' as const);
    const name = `gen s${g.status} f[${g.fields}] b${g.framing}${g.before ? '^' : ''} x${g.extra} ${g.close ? 'close' : 'open'} ${method}`;
    return {
      name,
      answer: `${lines.join('\r\n')}\r\n\r\n${b.bytes}${EXTRA[g.extra]}`,
      close: g.close,
      method,
    };
  });

// ---------------------------------------------------------------------------------------------
// Comparing.

const KEYS = [
  'outcome',
  'interim',
  'status',
  'reason',
  'headers',
  'framing',
  'body',
  'complete',
  'second',
  'after',
] as const;
type Key = (typeof KEYS)[number];

/** A proxy's own error answer (>= 500; no case sends one): its page, fields and reason are its own. */
function reduced(seen: Seen): Seen {
  if (seen.status < 500) return seen;
  return { ...seen, reason: '', headers: [], framing: 'none', body: '', complete: true };
}

/** The keys on which the two differ. */
function differing(ngx: Seen, kip: Seen): Key[] {
  const a = reduced(ngx);
  const b = reduced(kip);
  return KEYS.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

interface Outcome {
  c: Case;
  ngx: Seen;
  kip: Seen;
  keys: Key[];
}

function show(o: Outcome): string {
  const line = (s: Seen) => JSON.stringify(Object.fromEntries(o.keys.map((k) => [k, s[k]])));
  return `${o.c.name} ${JSON.stringify(o.c.answer.slice(0, 160))}\n  differ on ${o.keys.join(',')}\n  nginx:  ${line(o.ngx)}\n  keepip: ${line(o.kip)}`;
}

// ---------------------------------------------------------------------------------------------
// The bench.

interface Bench {
  nginx: RunningNginx;
  gw: SecurityGateway;
  backends: Backend[];
  cases: Map<string, Case>;
}

async function startBench(): Promise<Bench> {
  const cases = new Map<string, Case>();
  const backends: Backend[] = [];
  for (let k = 0; k < LANES; k++) backends.push(await startBackend(cases));
  const ports = backends.map((b) => b.port);
  const nginx = await startNginx({
    freePorts: 1,
    http: (_dir, [port]) => nginxHttp(port!, ports),
    waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
  });
  const gw = await startSecurityGateway(topologyFromYaml(keepipYaml(ports)));
  return { nginx, gw, backends, cases };
}

async function stopBench(bench: Bench): Promise<void> {
  await bench.gw.close();
  await bench.nginx.stop();
  for (const b of bench.backends) await b.close();
}

/** Every case through both proxies, lane k taking cases k, k+LANES…, in order within a lane. */
async function runAll(bench: Bench, cases: readonly Case[], prefix: string): Promise<Outcome[]> {
  const ids = cases.map((c, i) => {
    const id = `${prefix}${i}`;
    bench.cases.set(id, c);
    return id;
  });
  const out: Outcome[] = [];
  const lane = async (k: number) => {
    for (let i = k; i < cases.length; i += LANES) {
      const c = cases[i]!;
      const [ngx, kip] = await Promise.all([
        exchange(bench.nginx.ports[0]!, k, ids[i]!, c, NGINX_DEADLINE_MS),
        exchange(bench.gw.port, k, ids[i]!, c, KEEPIP_DEADLINE_MS),
      ]);
      out.push({ c, ngx, kip, keys: differing(ngx, kip) });
    }
  };
  await Promise.all(Array.from({ length: LANES }, (_, k) => lane(k)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// What keepip must do whatever nginx does, and the differences allowed.

/** Names a client never gets from keepip (hop-by-hop, nginx's hidden ones) and the poison's marker. */
const NEVER_RELAYED = /^(te|trailer|upgrade|proxy-connection|keep-alive|x-accel-[a-z-]+|x-pad|x-poison): /;

/** keepip's answer is safe: no hang, the next request gets its own answer or a close, nothing after. */
function unsafeOf(c: Case, kip: Seen): string | null {
  if (kip.outcome === 'hang') return 'keepip hung';
  if (!['own', 'closed', 'none'].includes(kip.second)) return `the next request got ${kip.second}`;
  if (kip.after !== '') return `bytes after the next answer: ${JSON.stringify(kip.after.slice(0, 80))}`;
  const leaked = kip.headers.filter((h) => NEVER_RELAYED.test(h));
  if (leaked.length > 0) return `relayed ${leaked.join(', ')}`;
  if ((kip.status === 502 || kip.status === 504) && kip.second !== 'own')
    return `a ${kip.status} that lost the connection`;
  if (kip.outcome === 'garbage') return 'bytes that are no HTTP answer';
  return c.method === 'HEAD' && kip.body !== '' ? 'a body to HEAD' : null;
}

const clean502 = (kip: Seen) => kip.outcome === 'answer' && kip.status === 502 && kip.second === 'own';
/** The head of the answer's final response (after any 1xx). */
function finalHead(answer: string): string {
  const heads = answer.split('\r\n\r\n');
  const index = heads.findIndex((h) => !/^HTTP\/1\.1 1\d\d /.test(h) || h.startsWith('HTTP/1.1 101'));
  return heads[Math.max(index, 0)] ?? '';
}
const headLines = (answer: string) => finalHead(answer).split('\r\n');
const linesNamed = (answer: string, name: string) =>
  headLines(answer).filter((l) => l.toLowerCase().startsWith(`${name}:`));

interface Allowed {
  name: string;
  why: string;
  /** The keys this explains for the case, or null when it does not apply. */
  explains(o: Outcome): readonly Key[] | null;
}

const ALL = KEYS;
const whenKeepipRefuses = (test: (answer: string) => boolean) => (o: Outcome) =>
  clean502(o.kip) && test(o.c.answer) ? ALL : null;

/** Each difference the differential passes, with why it is no weakness. */
const ALLOWED: Allowed[] = [
  {
    name: 'status-line',
    why: 'keepip refuses (502) a status line other than HTTP/1.0|1.1 SP 3DIGIT (100-999) [SP reason]; nginx 1.22 relays an unrecognised one as an HTTP/0.9 body (raw backend bytes, a second response inside) and takes HTTP/1.2, two spaces, CTLs in the reason',
    explains: whenKeepipRefuses(
      (a) => !/^HTTP\/1\.[01] [1-9]\d\d(?: [\t\x20-\x7e\x80-\xff]*)?$/.test(a.split('\r\n')[0] ?? ''),
    ),
  },
  {
    name: 'transfer-coding',
    why: 'keepip refuses (502) a Transfer-Encoding other than one exact `chunked` on HTTP/1.1 (a list, a repeat, another coding, HTTP/1.0); nginx 1.22 reads any value ending in chunked as chunked; nginx 1.23+ refuses as keepip does (RFC 9112 6.1)',
    explains: whenKeepipRefuses((a) => {
      const te = linesNamed(a, 'transfer-encoding');
      return (
        te.length > 0 &&
        (te.length > 1 || !/^transfer-encoding: chunked$/i.test(te[0]!) || a.startsWith('HTTP/1.0'))
      );
    }),
  },
  {
    name: 'length-and-chunked',
    why: 'keepip refuses (502) Content-Length with Transfer-Encoding; nginx 1.22 drops the length and reads chunked; nginx 1.23+ refuses (RFC 9112 6.1: a request smuggling vector)',
    explains: whenKeepipRefuses(
      (a) => linesNamed(a, 'content-length').length > 0 && linesNamed(a, 'transfer-encoding').length > 0,
    ),
  },
  {
    name: 'content-length',
    why: 'keepip refuses (502) a repeated Content-Length (even equal) or one that is not 1-15 digits; nginx 1.22 takes one of them (RFC 9110 8.6 allows a proxy to refuse)',
    explains: whenKeepipRefuses((a) => {
      const cl = linesNamed(a, 'content-length');
      return cl.length > 1 || cl.some((l) => !/^content-length:[ \t]*\d{1,15}[ \t]*$/i.test(l));
    }),
  },
  {
    name: 'field-syntax',
    why: 'keepip refuses (502) a head with a bare CR/LF, obs-fold, a CTL or NUL in a value, space before the colon, no colon or an empty name (RFC 9112 5); nginx 1.22 relays or skips such lines',
    explains: whenKeepipRefuses((a) =>
      headLines(a)
        .slice(1)
        .some((l) => /[\x00-\x08\x0a-\x1f\x7f]|^[ \t]|^[^:]*[ \t]:|^:|^[^:]*$/.test(l)),
    ),
  },
  {
    name: 'unasked-101',
    why: 'keepip refuses (502) a 101 to a request that asked for no upgrade; nginx 1.22 relays the 101 and then the backend bytes after it, which the client reads as the answer to its next request',
    explains: whenKeepipRefuses((a) => a.startsWith('HTTP/1.1 101')),
  },
  {
    name: 'interim',
    why: 'keepip drops a 100/103 and relays the final answer; nginx 1.22 relays the interim head as the final answer and leaves the real one on the upstream connection, where the next request can read it',
    explains: (o) => (/^HTTP\/1\.1 10[03] /.test(o.c.answer) && o.kip.interim === 0 ? ALL : null),
  },
  {
    name: 'x-accel-redirect',
    why: "nginx (no proxy_ignore_headers in ingress-nginx) follows the backend's X-Accel-Redirect to another location of the server; keepip hides the header and relays the backend's own answer: a backend cannot make keepip fetch another URI",
    explains: (o) => (/\r\nX-Accel-Redirect:/i.test(o.c.answer) ? ALL : null),
  },
  {
    name: 'head-over-4k',
    why: 'nginx refuses (502, "upstream sent too big header") a head over proxy_buffer_size 4k; keepip relays heads up to its own limit (maxHeaderSize)',
    explains: (o) => (o.c.answer.includes('X-Long:') && o.ngx.status === 502 ? ALL : null),
  },
  {
    name: 'hop-by-hop',
    why: 'keepip drops the hop-by-hop TE, Trailer, Upgrade, Proxy-Connection of an answer (RFC 9110 7.6.1, hop-by-hop.ts); nginx 1.22 relays them',
    explains: (o) => {
      const extra = o.ngx.headers.filter((h) => !o.kip.headers.includes(h));
      const fine = o.kip.headers.every((h) => o.ngx.headers.includes(h));
      return fine && extra.every((h) => /^(te|trailer|upgrade|proxy-connection): /.test(h))
        ? ['headers']
        : null;
    },
  },
  {
    name: 'reason-phrase',
    why: 'formatting: for a status line without reason keepip writes the standard one (200 OK), nginx writes none',
    explains: (o) =>
      /^HTTP\/1\.[01] \d{3} ?\r\n/.test(o.c.answer) && o.ngx.reason === '' ? ['reason'] : null,
  },
  {
    name: 'chunk-line',
    why: 'keepip refuses a chunk-size line nginx 1.22 reads (bare LF, whitespace after the size without extension): the head was not sent yet, the client connection is closed with nothing, as nginx does for a chunk size it refuses',
    explains: (o) =>
      o.kip.outcome === 'closed-empty' && /\r\n\r\n[0-9a-fA-F]+( \r\n|\n)/.test(o.c.answer) ? ALL : null,
  },
  {
    name: 'nginx-gives-nothing',
    why: 'nginx gives no answer (closes, hangs until its read timeout, or relays raw bytes) where keepip gives a 502 or cuts the body it had started (a chunk size over 2^48, a negative or 0x size, a 1xx nginx waits past)',
    explains: (o) => (o.ngx.outcome !== 'answer' && o.kip.outcome === 'answer' ? ALL : null),
  },
];

/** The keys of `o` no ALLOWED entry explains, with the entries that applied. */
function unexplained(o: Outcome): { left: Key[]; used: string[] } {
  const used: string[] = [];
  let left = o.keys;
  for (const entry of ALLOWED) {
    const keys = entry.explains(o);
    if (keys === null || !left.some((k) => keys.includes(k))) continue;
    used.push(entry.name);
    left = left.filter((k) => !keys.includes(k));
  }
  return { left, used };
}

/** Every case: keepip safe on its own, and each difference with nginx allowed. */
function verdicts(outcomes: readonly Outcome[]): { failures: string[]; allowed: Map<string, number> } {
  const failures: string[] = [];
  const allowed = new Map<string, number>();
  for (const o of outcomes) {
    const unsafe = unsafeOf(o.c, o.kip);
    if (unsafe !== null) failures.push(`UNSAFE: ${unsafe}\n${show({ ...o, keys: [...KEYS] })}`);
    if (o.keys.length === 0) continue;
    const { left, used } = unexplained(o);
    for (const name of used) allowed.set(name, (allowed.get(name) ?? 0) + 1);
    if (left.length > 0) failures.push(`DIFFERENCE: ${show({ ...o, keys: left })}`);
  }
  return { failures, allowed };
}

// ---------------------------------------------------------------------------------------------

const handCases = (): Case[] =>
  HAND.map(([name, answer, close, method]) => ({ name, answer, close, method: method ?? 'GET' }));

function generatedCases(): { cases: Case[]; seed: number } {
  const chosen = process.env.UPRESP_SEED;
  const seed = chosen === 'random' ? Date.now() % 2 ** 31 : Number(chosen ?? 20240611);
  return { cases: fc.sample(caseArb, { numRuns: 100, seed }), seed };
}

describe('a backend answering oddly: what the client gets from keepip against nginx 1.22 as ingress-nginx configures it', () => {
  let bench: Bench;
  before(async () => {
    bench = await startBench();
  });
  after(async () => {
    await stopBench(bench);
  });

  it('hand-picked answers: keepip never lets an answer spill into the next one, and differs from nginx only as ALLOWED says', async () => {
    const outcomes = await runAll(bench, handCases(), 'h');
    const { failures, allowed } = verdicts(outcomes);
    assert.deepEqual(failures, [], failures.join('\n\n'));
    // The hand-picked cases reach the differences they were picked for.
    for (const name of ['status-line', 'transfer-coding', 'interim', 'x-accel-redirect', 'hop-by-hop']) {
      assert.ok(allowed.has(name), `no hand-picked case showed ${name}: ${[...allowed.keys()]}`);
    }
  });

  it('bytes a backend sends on an idle kept-alive connection: the proxy drops that connection, the next request gets its own answer', async () => {
    const c: Case = { name: 'idle-bytes', answer: ok(''), close: false, method: 'GET' };
    for (const [proxy, port] of [
      ['nginx', bench.nginx.ports[0]!],
      ['keepip', bench.gw.port],
    ] as const) {
      const id = `idle-${proxy}`;
      bench.cases.set(id, c);
      const conn = await openRaw({ host: '127.0.0.1', port });
      try {
        conn.socket.write(`GET /lane0/case/${id} HTTP/1.1\r\nHost: up.test\r\n\r\n`);
        await conn.until((b) => b.toString('latin1').endsWith('hello'));
        const upstream = bench.backends[0]!.sockets.get(id)!;
        const dropped = new Promise<void>((resolve) => upstream.once('close', () => resolve()));
        // The signal: the proxy closes the connection that spoke out of turn (else the deadline fails).
        upstream.write(POISON);
        await Promise.race([
          dropped,
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error(`${proxy} kept the connection`)), 20_000),
          ),
        ]);
        conn.socket.write(`GET /lane0/plain?c=${id} HTTP/1.1\r\nHost: up.test\r\nConnection: close\r\n\r\n`);
        await conn.whenClosed(20_000);
        const seen = seenOf(conn.received().toString('latin1'), c, id, true, false);
        assert.deepEqual([seen.status, seen.body, seen.second, seen.after], [200, 'hello', 'own', ''], proxy);
      } finally {
        conn.destroy();
      }
    }
  });

  it('generated answers (UPRESP_SEED): keepip safe on every one, differences from nginx only as ALLOWED says', async () => {
    const { cases, seed } = generatedCases();
    const outcomes = await runAll(bench, cases, 'g');
    const { failures } = verdicts(outcomes);
    assert.deepEqual(failures, [], `seed ${seed}:\n${failures.join('\n\n')}`);
    // Not vacuous: most answers are compared, many agree outright.
    assert.ok(
      outcomes.filter((o) => o.keys.length === 0).length >= 20,
      'fewer than 20 generated answers agree',
    );
  });
});
