// A hostile or buggy HTTP/1.1 backend (one tenant's Service) against keepip's upstream client and its
// keep-alive pool (h1-client.ts, h1-response.ts, proxy.ts): whatever bytes it answers with, the next
// client whose request goes out on that backend's pool must get only its own answer. Each case is two
// clients from two source addresses (127.0.0.2, 127.0.0.3): the first asks the hostile path, the second
// a plain one; the backend tells the connections apart, so a case also shows whether the pool reused
// the connection the hostile answer came on. The same answers are replayed from an HTTPS backend,
// whose pool is undici's (upstream.ts), through the same proxy step. Reference: nginx's proxy module refuses ambiguous framing
// (502, "upstream sent invalid header"), drops a connection whose answer carried more than it declared
// ("upstream sent more data than specified"), never caches one whose request body was not all sent,
// and cuts the client connection when a body ends short ("upstream prematurely closed connection").
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import type { KeyPair } from '../../src/gateway/tls.ts';
import { testCertificate } from '../fixtures/gateway/harness.ts';
import { listenTracked, openRaw, rawExchange } from '../helpers/net.ts';
import {
  ingressYaml,
  type SecurityGateway,
  serviceYaml,
  startSecurityGateway,
  topologyFromYaml,
} from './helpers.ts';

const CLIENT_A = '127.0.0.2';
const CLIENT_B = '127.0.0.3';
const withLength = (text: string) => `Content-Length: ${text.length}\r\n\r\n${text}`;
const POISON = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nPOISON';

/** One request the backend parsed: on which connection (accept order), its index there, its line. */
interface Seen {
  conn: number;
  index: number;
  method: string;
  path: string;
}

/** A script that writes `bytes` and closes the connection. */
const ends =
  (bytes: string): Script =>
  (socket) => {
    socket.end(bytes, 'latin1');
    return null;
  };

/** Canned answers by path; `/own/<tag>` answers `own:<tag>` kept alive; anything else 404. */
const ANSWERS: Record<string, Answer> = {
  '/clean': `HTTP/1.1 200 OK\r\n${withLength('clean')}`,
  '/long-body': 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfullPOISON',
  '/length-5-body-10': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloWORLD',
  '/chunked-then-bytes': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nWORLD',
  '/second-response': `HTTP/1.1 200 OK\r\n${withLength('first')}${POISON}`,
  '/chunked-then-more': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchunk\r\n0\r\n\r\n${POISON}`,
  '/cl-and-te': `HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${POISON}`,
  '/te-and-cl': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n${POISON}`,
  '/two-lengths': `HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 70\r\n\r\nLEAK${POISON}`,
  '/same-length-twice': `HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nLEAK${POISON}`,
  '/length-list': `HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\nL${POISON}`,
  '/length-negative': `HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n${POISON}`,
  '/length-plus': `HTTP/1.1 200 OK\r\nContent-Length: +4\r\n\r\nLEAK${POISON}`,
  '/length-hex': `HTTP/1.1 200 OK\r\nContent-Length: 0x4\r\n\r\nLEAK${POISON}`,
  '/length-huge': `HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551620\r\n\r\nLEAK${POISON}`,
  '/length-space': `HTTP/1.1 200 OK\r\nContent-Length: 4 4\r\n\r\nLEAK${POISON}`,
  '/te-gzip-chunked': `HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\nLEAK\r\n0\r\n\r\n${POISON}`,
  '/te-chunked-identity': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n4\r\nLEAK\r\n0\r\n\r\n${POISON}`,
  '/te-twice': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nLEAK\r\n0\r\n\r\n${POISON}`,
  '/te-on-http10': `HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n4\r\nLEAK\r\n0\r\n\r\n${POISON}`,
  '/chunk-ext': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;name="v";x\r\next!\r\n0;last\r\n\r\n`,
  '/chunk-trailers': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n4\r\ntrl!\r\n0\r\nX-Sum: 1\r\nContent-Length: 60\r\n\r\n`,
  '/chunk-bad-size': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\nZZ\r\n${POISON}\r\n0\r\n\r\n`,
  '/chunk-negative': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n-5\r\nLEAK!\r\n0\r\n\r\n${POISON}`,
  '/chunk-overflow': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n10000000000000004\r\nLEAK\r\n0\r\n\r\n${POISON}`,
  '/chunk-too-long-data': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npartLEAK\r\n0\r\n\r\n${POISON}`,
  '/chunk-bare-lf': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\npart\n0\n\n${POISON}`,
  '/head-body': `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n${withLength('POISON')}`,
  '/head-chunked': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nPOISON\r\n0\r\n\r\n`,
  '/204-body': `HTTP/1.1 204 No Content\r\n\r\n${POISON}`,
  '/204-length': `HTTP/1.1 204 No Content\r\nContent-Length: 6\r\n\r\nPOISON`,
  '/304-body': `HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 6\r\n\r\nPOISON`,
  '/interim': `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n${withLength('final')}`,
  '/many-interim': `${'HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n'.repeat(2_000)}HTTP/1.1 200 OK\r\n${withLength('final')}`,
  '/hints': `HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n${withLength('final')}`,
  '/interim-with-body': `HTTP/1.1 100 Continue\r\nContent-Length: 6\r\n\r\nHTTP/1.1 200 OK\r\n${withLength('final')}`,
  '/101': `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n${POISON}`,
  '/http10-keepalive': `HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n${withLength('ten')}`,
  '/http20': `HTTP/2.0 200 OK\r\n${withLength('LEAK')}${POISON}`,
  '/http2': `HTTP/2 200 OK\r\n${withLength('LEAK')}${POISON}`,
  '/no-reason': `HTTP/1.1 200\r\n${withLength('bare')}`,
  '/status-000': `HTTP/1.1 000 Zero\r\n${withLength('LEAK')}${POISON}`,
  '/status-099': `HTTP/1.1 099 Low\r\n${withLength('LEAK')}${POISON}`,
  '/status-600': `HTTP/1.1 600 High\r\n${withLength('six')}`,
  '/status-999': `HTTP/1.1 999 Top\r\n${withLength('nine')}`,
  '/status-short': `HTTP/1.1 20 OK\r\n${withLength('LEAK')}${POISON}`,
  '/lowercase': `http/1.1 200 OK\r\n${withLength('LEAK')}${POISON}`,
  '/obs-fold': `HTTP/1.1 200 OK\r\nX-A: a\r\n Content-Length: 99\r\n${withLength('LEAK')}${POISON}`,
  '/bare-lf-field': `HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 99\r\n${withLength('LEAK')}${POISON}`,
  '/bare-cr-field': `HTTP/1.1 200 OK\r\nX-A: a\rContent-Length: 99\r\n${withLength('LEAK')}${POISON}`,
  '/nul-field': `HTTP/1.1 200 OK\r\nX-A: a\0b\r\n${withLength('LEAK')}${POISON}`,
  '/no-colon': `HTTP/1.1 200 OK\r\nX-A a\r\n${withLength('LEAK')}${POISON}`,
  '/space-before-colon': `HTTP/1.1 200 OK\r\nContent-Length : 99\r\n${withLength('LEAK')}${POISON}`,
  '/huge-head': `HTTP/1.1 200 OK\r\n${'X-Big: '.concat('b'.repeat(1_000), '\r\n').repeat(80)}${withLength('LEAK')}${POISON}`,
  // Heads ended with bare LFs only: no CRLF CRLF ever comes; the backend then closes.
  '/bare-lf-head': ends(`HTTP/1.1 200 OK\nContent-Length: 6\n\nPOISON${POISON}`),
  '/cut-length': ends(
    `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n${'c'.repeat(30)}`,
  ),
  '/cut-chunked': ends(
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1e\r\ncccccccccccccccccccccccccccccc\r\n',
  ),
  '/cut-head': ends('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n'),
  '/te-chunked-identity-close': ends(
    `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n4\r\nLEAK\r\n0\r\n\r\n${POISON}`,
  ),
  '/close-delimited': ends('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close'),
};

interface Backend {
  port: number;
  seen: Seen[];
  /** The requests seen for `path`, in order. */
  requestsFor(path: string): Seen[];
  /** Resolves once a request for `path` has been parsed. */
  sawRequest(path: string): Promise<Seen>;
  /** Resolves once backend connection `conn` (accept order) has closed. */
  closed(conn: number): Promise<void>;
  /** Bytes received on `conn` after a script took its socket over. */
  afterScript(conn: number): string;
  close(): Promise<void>;
}

/**
 * What a script does with one request: a string is written (and parsing goes on), null means the
 * script took the socket over (every later byte on it is only recorded).
 */
type Script = (socket: net.Socket, seen: Seen) => string | null;
type Answer = string | Script;

/** The answer for one parsed request: a canned one, an echo of /own/<tag>, a script's. */
function answerFor(path: string, seen: Seen, scripts: Record<string, Answer>): Answer {
  const scripted = scripts[path] ?? ANSWERS[path];
  if (scripted !== undefined) return scripted;
  if (path.startsWith('/own/')) return ownAnswer(path, seen);
  return `HTTP/1.1 404 Not Found\r\n${withLength('none')}`;
}

function ownAnswer(path: string, seen: Seen): string {
  const text = `own:${path.slice(path.lastIndexOf('/') + 1)}`;
  return `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Conn: ${seen.conn}\r\n${withLength(text)}`;
}

/** Paths answered as soon as their head is in, before any body (an early 401/413). */
const ANSWER_ON_HEAD = /^\/early/;

/**
 * A raw backend: reads request heads (and Content-Length bodies) one after another on each
 * connection and answers each from ANSWERS or `scripts`.
 */
async function startBackend(scripts: Record<string, Answer> = {}, tlsPair?: KeyPair): Promise<Backend> {
  const seen: Seen[] = [];
  const closes: Promise<void>[] = [];
  const late: string[] = [];
  const waiters = new Set<() => void>();
  let accepted = 0;
  const onConnection = (socket: net.Socket) => {
    const conn = accepted;
    accepted += 1;
    closes[conn] = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    late[conn] = '';
    socket.on('error', () => {});
    let text = '';
    let index = 0;
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      for (;;) {
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = text.slice(0, end);
        const [method = '', target = ''] = head.split(' ');
        const path = target.split('?')[0] ?? '';
        const length = ANSWER_ON_HEAD.test(path)
          ? 0
          : Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (text.length < end + 4 + length) return;
        text = text.slice(end + 4 + length);
        const entry: Seen = { conn, index, method, path };
        index += 1;
        seen.push(entry);
        for (const waiter of [...waiters]) waiter();
        const answer = answerFor(path, entry, scripts);
        const out = typeof answer === 'function' ? answer(socket, entry) : answer;
        if (out === null) {
          socket.off('data', onData);
          late[conn] = text;
          socket.on('data', (more: Buffer) => {
            late[conn] += more.toString('latin1');
          });
          return;
        }
        socket.write(out, 'latin1');
      }
    };
    socket.on('data', onData);
  };
  const server = tlsPair ? tls.createServer(tlsPair, onConnection) : net.createServer(onConnection);
  const { port, close } = await listenTracked(server);
  return {
    port,
    seen,
    requestsFor: (path) => seen.filter((s) => s.path === path),
    sawRequest: (path) =>
      new Promise<Seen>((resolve) => {
        const check = () => {
          const found = seen.find((s) => s.path === path);
          if (found === undefined) return;
          waiters.delete(check);
          resolve(found);
        };
        waiters.add(check);
        check();
      }),
    closed: (conn) => closes[conn] ?? Promise.reject(new Error(`no backend connection ${conn}`)),
    afterScript: (conn) => late[conn] ?? '',
    close,
  };
}

interface Reply {
  /** 0 when nothing parseable came. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The body ended as its framing says (length reached, last chunk seen), or the head said no body. */
  whole: boolean;
  raw: string;
  closedByServer: boolean;
}

/** The body of a chunked message from `at`: the data, and whether the last chunk and its CRLF came. */
function dechunk(raw: string, at: number): { body: string; whole: boolean } {
  let body = '';
  let pos = at;
  for (;;) {
    const eol = raw.indexOf('\r\n', pos);
    if (eol < 0) return { body, whole: false };
    const size = Number.parseInt(raw.slice(pos, eol), 16);
    if (Number.isNaN(size)) return { body, whole: false };
    if (size === 0) return { body, whole: raw.indexOf('\r\n\r\n', eol) === eol };
    body += raw.slice(eol + 2, Math.min(raw.length, eol + 2 + size));
    if (raw.length < eol + 4 + size) return { body, whole: false };
    pos = eol + 4 + size;
  }
}

/** The first final (non-1xx) response in what the gateway sent; `head`: the request was HEAD. */
function parseReply(raw: string, closedByServer: boolean, head = false): Reply {
  let at = 0;
  for (;;) {
    const end = raw.indexOf('\r\n\r\n', at);
    const statusMatch = /^HTTP\/1\.[01] (\d{3})/.exec(raw.slice(at));
    if (end < 0 || statusMatch === null) {
      return { status: 0, headers: {}, body: '', whole: false, raw, closedByServer };
    }
    const status = Number(statusMatch[1]);
    if (status >= 100 && status < 200 && status !== 101) {
      at = end + 4;
      continue;
    }
    const headers: Record<string, string> = {};
    for (const line of raw.slice(at, end).split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const rest = raw.slice(end + 4);
    if (head || status === 204 || status === 304) {
      return { status, headers, body: rest, whole: rest === '', raw, closedByServer };
    }
    if (headers['transfer-encoding'] === 'chunked') {
      return { status, headers, ...dechunk(raw, end + 4), raw, closedByServer };
    }
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      return { status, headers, body: rest, whole: rest.length === length, raw, closedByServer };
    }
    return { status, headers, body: rest, whole: closedByServer, raw, closedByServer };
  }
}

/** One request on a new connection from `from`, read until the gateway closes it. */
async function ask(port: number, from: string, path: string, method = 'GET'): Promise<Reply> {
  const request = `${method} ${path} HTTP/1.1\r\nHost: framing.test\r\nConnection: close\r\n\r\n`;
  const reply = await rawExchange({ host: '127.0.0.1', port, payload: request, localAddress: from });
  return parseReply(reply.received.toString('latin1'), reply.closedByServer, method === 'HEAD');
}

interface Rig {
  backend: Backend;
  gw: SecurityGateway;
}

async function startRig(
  scripts: Record<string, Answer> = {},
  annotations: Record<string, string> = {},
  tlsPair?: KeyPair,
): Promise<Rig> {
  const backend = await startBackend(scripts, tlsPair);
  const yaml = [serviceYaml('framing', backend.port), ingressYaml('framing', '/', 'framing', annotations)];
  const gw = await startSecurityGateway(topologyFromYaml(yaml.join('\n')));
  return { backend, gw };
}

async function stopRig(rig: Rig): Promise<void> {
  await rig.gw.close();
  await rig.backend.close();
}

/**
 * Client A asks `path`, then client B asks /own/<label>: B must get exactly its own answer, from a
 * request the backend saw. Returns A's reply and whether B's request went out on A's connection.
 */
async function twoClients(
  rig: Rig,
  path: string,
  label: string,
  method = 'GET',
): Promise<{ a: Reply; reused: boolean }> {
  const a = await ask(rig.gw.port, CLIENT_A, path, method);
  assert.ok(a.closedByServer, `${label}: client A's exchange did not end (gateway hung): ${a.raw}`);
  const ownPath = `/own/${label}`;
  const b = await ask(rig.gw.port, CLIENT_B, ownPath);
  assert.equal(b.status, 200, `${label}: client B got ${JSON.stringify(b.raw)}`);
  assert.equal(b.body, `own:${label}`, `${label}: client B got another answer: ${JSON.stringify(b.raw)}`);
  assert.ok(b.whole, `${label}: client B's answer is incomplete`);
  assert.doesNotMatch(b.raw, /POISON|LEAK/, `${label}: client B saw bytes of client A's backend answer`);
  const first = rig.backend.requestsFor(path)[0];
  const own = rig.backend.requestsFor(ownPath);
  assert.equal(own.length, 1, `${label}: the backend saw client B's request ${own.length} times`);
  return { a, reused: first !== undefined && own[0]?.conn === first.conn };
}

describe('a hostile HTTP/1.1 backend and the upstream keep-alive pool: one client never gets another one’s answer', () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig();
  });

  after(async () => {
    await stopRig(rig);
  });

  test('control: a clean answer leaves its connection in the pool, and the next client reuses it', async () => {
    const { a, reused } = await twoClients(rig, '/clean', 'control');
    assert.deepEqual([a.status, a.body, a.whole], [200, 'clean', true]);
    assert.ok(reused, 'the pool was not exercised: the next request went out on a new connection');
  });

  test('bytes after a complete answer (a Content-Length shorter than the body, a second unasked response, bytes after the last chunk): the declared answer only, the connection never reused', async () => {
    for (const [path, body] of [
      ['/long-body', 'full'],
      ['/second-response', 'first'],
      ['/chunked-then-more', 'chunk'],
    ] as const) {
      const { a, reused } = await twoClients(rig, path, `extra${path.replaceAll('/', '-')}`);
      assert.deepEqual([a.status, a.body, a.whole], [200, body, true], path);
      assert.doesNotMatch(a.raw, /POISON/, path);
      assert.equal(reused, false, `${path}: the connection that carried extra bytes went back into the pool`);
    }
  });

  test('bytes beyond the framing (a body longer than its Content-Length, data after the last chunk): the framed answer only, and the [warn] line of nginx with the request context', async () => {
    for (const [path, what] of [
      ['/length-5-body-10', 'upstream sent more data than specified in "Content-Length" header'],
      ['/chunked-then-bytes', 'upstream sent data after final chunk'],
    ] as const) {
      const { a, reused } = await twoClients(rig, path, `warn${path.replaceAll('/', '-')}`);
      assert.deepEqual([a.status, a.body, a.whole], [200, 'hello', true], path);
      assert.doesNotMatch(a.raw, /WORLD/, path);
      assert.equal(reused, false, `${path}: the connection that carried extra bytes went back into the pool`);
      // The line is written once the exchange ends, maybe after the client read its answer: waited for.
      const line = await rig.gw.errors.waitFor(new RegExp(`request: "GET ${path} HTTP/1\\.1"`));
      const context = `, client: ${CLIENT_A}, server: _, request: "GET ${path} HTTP/1.1", upstream: "http://127.0.0.1:${rig.backend.port}${path}", host: "framing.test"`;
      assert.match(line, / \[warn\] \d+#\d+: \*\d+ /, line);
      assert.ok(line.endsWith(`${what} while reading upstream${context}`), line);
    }
  });

  test('ambiguous framing (Content-Length with Transfer-Encoding, two lengths, lists, signs, hex, overflow, codings other than chunked, chunked on HTTP/1.0): 502, nothing relayed, connection dropped', async () => {
    for (const path of [
      '/cl-and-te',
      '/te-and-cl',
      '/two-lengths',
      '/length-list',
      '/length-negative',
      '/length-plus',
      '/length-hex',
      '/length-huge',
      '/length-space',
      '/te-gzip-chunked',
      '/te-chunked-identity',
      '/te-twice',
      '/te-on-http10',
    ]) {
      const { a, reused } = await twoClients(rig, path, `framing${path.replaceAll('/', '-')}`);
      assert.equal(a.status, 502, `${path}: ${JSON.stringify(a.raw)}`);
      assert.doesNotMatch(a.raw, /POISON|LEAK/, path);
      assert.equal(reused, false, path);
    }
  });

  test('the same Content-Length twice is relayed as one answer of that length or refused, never more', async () => {
    const { a, reused } = await twoClients(rig, '/same-length-twice', 'same-length');
    if (a.status === 200) assert.deepEqual([a.body, a.whole], ['LEAK', true]);
    else assert.equal(a.status, 502);
    assert.doesNotMatch(a.raw, /POISON/);
    assert.equal(reused, false);
  });

  test('chunk extensions and trailers are valid: the data relayed whole, the trailers not, the connection kept', async () => {
    for (const [path, body] of [
      ['/chunk-ext', 'ext!'],
      ['/chunk-trailers', 'trl!'],
    ] as const) {
      const { a } = await twoClients(rig, path, `chunk${path.replaceAll('/', '-')}`);
      assert.deepEqual([a.status, a.body, a.whole], [200, body, true], path);
      assert.doesNotMatch(a.raw, /X-Sum: 1|Content-Length: 60/i, `${path}: a trailer became a field`);
    }
  });

  test('a broken chunk mid-body (bad size, negative, overflow, data longer than its size, bare LF): the client sees a cut answer, never a whole one', async () => {
    for (const path of [
      '/chunk-bad-size',
      '/chunk-negative',
      '/chunk-overflow',
      '/chunk-too-long-data',
      '/chunk-bare-lf',
    ]) {
      const { a, reused } = await twoClients(rig, path, `badchunk${path.replaceAll('/', '-')}`);
      assert.equal(a.whole, false, `${path}: a broken chunked body reached the client as whole: ${a.raw}`);
      assert.doesNotMatch(a.raw, /POISON|LEAK/, path);
      assert.equal(reused, false, path);
    }
  });

  test('HEAD answered with a body (length or chunked): the head only, and the body never read as the next answer', async () => {
    for (const path of ['/head-body', '/head-chunked']) {
      const { a } = await twoClients(rig, path, `head${path.replaceAll('/', '-')}`, 'HEAD');
      assert.deepEqual([a.status, a.body], [200, ''], `${path}: ${JSON.stringify(a.raw)}`);
    }
  });

  test('204 and 304 with a body or a Content-Length: no body to the client, the bytes after the head never read as the next answer', async () => {
    for (const [path, status] of [
      ['/204-body', 204],
      ['/204-length', 204],
      ['/304-body', 304],
    ] as const) {
      const { a, reused } = await twoClients(rig, path, `nobody${path.replaceAll('/', '-')}`);
      assert.deepEqual([a.status, a.body], [status, ''], `${path}: ${JSON.stringify(a.raw)}`);
      assert.equal(
        reused,
        false,
        `${path}: a connection with bytes past a bodiless answer went back into the pool`,
      );
    }
  });

  test('interim 1xx answers (100, 102, 103; two thousand 103s; a 100 with a Content-Length) then the final one: the final answer whole', async () => {
    for (const path of ['/interim', '/hints', '/many-interim', '/interim-with-body']) {
      const { a } = await twoClients(rig, path, `interim${path.replaceAll('/', '-')}`);
      assert.deepEqual([a.status, a.body, a.whole], [200, 'final', true], path);
    }
  });

  test('a 101 to a request that asked for no upgrade: 502, and the bytes after it reach nobody', async () => {
    const { a, reused } = await twoClients(rig, '/101', 'switching');
    assert.equal(a.status, 502);
    assert.doesNotMatch(a.raw, /POISON/);
    assert.equal(reused, false);
  });

  test('status lines: HTTP/1.0 keep-alive is relayed and not pooled; no reason phrase is fine; HTTP/2, 0xx, two digits, lower-case: 502', async () => {
    const ten = await twoClients(rig, '/http10-keepalive', 'status-http10');
    assert.deepEqual([ten.a.status, ten.a.body, ten.a.whole], [200, 'ten', true]);
    assert.equal(ten.reused, false, 'an HTTP/1.0 answer left its connection in the pool');
    const bare = await twoClients(rig, '/no-reason', 'status-bare');
    assert.deepEqual([bare.a.status, bare.a.body], [200, 'bare']);
    for (const path of ['/http20', '/http2', '/status-000', '/status-099', '/status-short', '/lowercase']) {
      const { a, reused } = await twoClients(rig, path, `status${path.replaceAll('/', '-')}`);
      assert.equal(a.status, 502, `${path}: ${JSON.stringify(a.raw)}`);
      assert.doesNotMatch(a.raw, /POISON|LEAK/, path);
      assert.equal(reused, false, path);
    }
  });

  test('statuses 600 and 999 (three digits, as nginx reads them) are relayed as they are, with their own body only', async () => {
    for (const [path, status, body] of [
      ['/status-600', 600, 'six'],
      ['/status-999', 999, 'nine'],
    ] as const) {
      const { a } = await twoClients(rig, path, `high${path.replaceAll('/', '-')}`);
      assert.ok(a.status === 502 || (a.status === status && a.body === body), `${path}: ${a.raw}`);
    }
  });

  test('broken header sections (obs-fold, bare LF or CR, NUL, no colon, space before the colon, over the size limit): 502, none of it relayed', async () => {
    for (const path of [
      '/obs-fold',
      '/bare-lf-field',
      '/bare-cr-field',
      '/nul-field',
      '/no-colon',
      '/space-before-colon',
      '/huge-head',
    ]) {
      const { a, reused } = await twoClients(rig, path, `header${path.replaceAll('/', '-')}`);
      assert.equal(a.status, 502, `${path}: ${JSON.stringify(a.raw.slice(0, 300))}`);
      assert.doesNotMatch(a.raw, /POISON|LEAK/, path);
      assert.equal(reused, false, path);
    }
  });

  test('a head that ends in bare LFs and a close: 502, its body never relayed', async () => {
    const { a } = await twoClients(rig, '/bare-lf-head', 'bare-lf-head');
    assert.equal(a.status, 502, JSON.stringify(a.raw));
    assert.doesNotMatch(a.raw, /POISON/);
  });
});

describe('a backend that closes mid-answer', () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig();
  });

  after(async () => {
    await stopRig(rig);
  });

  test('a body cut short of its Content-Length: the client connection is cut, the answer never looks whole; logged as nginx logs it', async () => {
    const { a } = await twoClients(rig, '/cut-length', 'cut-length');
    assert.equal(a.status, 200);
    assert.equal(a.headers['content-length'], '100');
    assert.equal(a.whole, false, 'the cut body reached the client as a whole answer');
    assert.equal(a.body, 'c'.repeat(30));
    await rig.gw.errors.waitFor(/upstream prematurely closed connection while reading upstream/);
    const line = await rig.gw.access.waitFor(/GET \/cut-length /);
    assert.match(line, /" 200 30 /, 'the access log does not show the 30 bytes actually sent');
  });

  test('a chunked body cut before its last chunk: no last chunk reaches the client', async () => {
    const { a } = await twoClients(rig, '/cut-chunked', 'cut-chunked');
    assert.equal(a.status, 200);
    assert.equal(a.whole, false, 'the cut chunked body reached the client with a last chunk');
  });

  test('a head cut before its end: 502', async () => {
    const { a } = await twoClients(rig, '/cut-head', 'cut-head');
    assert.equal(a.status, 502);
  });

  test('a close-delimited body (no length, no chunking) ends at the close, as nginx relays it', async () => {
    const { a, reused } = await twoClients(rig, '/close-delimited', 'close-delimited');
    assert.deepEqual([a.status, a.body, a.whole], [200, 'until-close', true]);
    assert.equal(reused, false);
  });
});

/** Client B's plain request after a case: its own answer, on a connection other than `notOn`. */
async function assertOwnAnswer(rig: Rig, label: string, notOn: number): Promise<void> {
  const b = await ask(rig.gw.port, CLIENT_B, `/own/${label}`);
  assert.deepEqual([b.status, b.body, b.whole], [200, `own:${label}`, true], `client B got ${b.raw}`);
  const own = rig.backend.requestsFor(`/own/${label}`);
  assert.equal(own.length, 1);
  assert.notEqual(own[0]?.conn, notOn, 'client B went out on a connection left dirty by client A');
}

describe('answers that start before the request body is sent (proxy-request-buffering off)', () => {
  let rig: Rig;
  const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: framing.test\r\n\r\n';

  before(async () => {
    rig = await startRig(
      {
        '/early-401': `HTTP/1.1 401 Unauthorized\r\n${withLength('denied')}`,
        '/early-401-chunked': `HTTP/1.1 401 Unauthorized\r\n${withLength('denied')}`,
        '/early-413': (socket) => {
          socket.write(`HTTP/1.1 413 Payload Too Large\r\n${withLength('too big')}`);
          return null;
        },
      },
      { 'proxy-request-buffering': 'off', 'proxy-read-timeout': '10' },
    );
  });

  after(async () => {
    await stopRig(rig);
  });

  /** Client A: a body that reads like a request after an early 401, then a request of its own. */
  async function earlyThenSmuggle(path: string, chunked: boolean): Promise<void> {
    const rest = smuggled.padEnd(180, 'x');
    const a = await openRaw({ host: '127.0.0.1', port: rig.gw.port, localAddress: CLIENT_A });
    const framing = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${20 + rest.length}`;
    a.socket.write(`POST ${path} HTTP/1.1\r\nHost: framing.test\r\n${framing}\r\n\r\n`);
    a.socket.write(chunked ? `14\r\n${'a'.repeat(20)}\r\n` : 'a'.repeat(20));
    try {
      const first = await a.until((r) => r.toString('latin1').includes('denied'));
      assert.match(first.toString('latin1'), /^HTTP\/1\.1 401 /);
      const seen = await rig.backend.sawRequest(path);
      a.socket.write(chunked ? `${rest.length.toString(16)}\r\n${rest}\r\n0\r\n\r\n` : rest);
      a.socket.write(`GET /own/${path.slice(1)}-A2 HTTP/1.1\r\nHost: framing.test\r\n\r\n`);
      // Either A's own second answer or a close: both are fine; the body as a request is not.
      await a.until((r) => r.toString('latin1').includes(`own:${path.slice(1)}-A2`) || a.closed());
      await assertOwnAnswer(rig, `${path.slice(1)}-B`, seen.conn);
      assert.equal(
        rig.backend.requestsFor('/smuggled').length,
        0,
        `${path}: the body reached the backend as a request`,
      );
      assert.doesNotMatch(a.received().toString('latin1'), /smuggled/);
    } finally {
      a.destroy();
    }
  }

  test('an early 401 kept alive: the connection is not pooled while the body was still going out, and the body is never read as a request', async () => {
    await earlyThenSmuggle('/early-401', false);
    await earlyThenSmuggle('/early-401-chunked', true);
  });

  test('an early 413 from a backend that stops reading: client A gets it, the next client never queues behind the unsent body', async () => {
    const a = await openRaw({ host: '127.0.0.1', port: rig.gw.port, localAddress: CLIENT_A });
    a.socket.write(
      `POST /early-413 HTTP/1.1\r\nHost: framing.test\r\nContent-Length: 100000\r\n\r\n${'a'.repeat(20)}`,
    );
    try {
      const first = await a.until((r) => r.toString('latin1').includes('too big'));
      assert.match(first.toString('latin1'), /^HTTP\/1\.1 413 /);
      const seen = await rig.backend.sawRequest('/early-413');
      await assertOwnAnswer(rig, 'early-413-B', seen.conn);
      assert.doesNotMatch(rig.backend.afterScript(seen.conn), /own\/early-413-B/);
    } finally {
      a.destroy();
    }
  });
});

describe('pooled connections the backend or the client gave up on', () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig(
      {
        // Answers the first request of a connection; a later one (a reused connection) is cut unanswered.
        '/die-if-reused': (socket, seen) => {
          if (seen.index === 0) return ownAnswer('/own/fresh', seen);
          socket.destroy();
          return null;
        },
        '/die-if-reused-post': (socket, seen) => {
          if (seen.index === 0) return ownAnswer('/own/fresh', seen);
          socket.destroy();
          return null;
        },
        // Answers kept alive, then closes the connection while it idles in the pool.
        '/own/then-fin': (socket, seen) => {
          socket.end(ownAnswer('/own/then-fin', seen), 'latin1');
          return null;
        },
        // A head and the start of a 1000-byte body, then nothing.
        '/stall': (socket) => {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nstarted');
          return null;
        },
        '/hold': () => null,
        '/teapot': (socket) => {
          socket.write('HTTP/1.1 418 Teapot\r\nContent-Length: 6\r\n\r\n');
          return null;
        },
      },
      // The error backend is the same Service: its `GET /` is answered 404 ("none").
      { 'custom-http-errors': '418', 'default-backend': 'framing' },
    );
  });

  after(async () => {
    await stopRig(rig);
  });

  test('a GET on a pooled connection the backend cut unanswered is sent once more on a new connection', async () => {
    await ask(rig.gw.port, CLIENT_A, '/own/stale-get-A');
    const b = await ask(rig.gw.port, CLIENT_B, '/die-if-reused');
    assert.deepEqual([b.status, b.body], [200, 'own:fresh'], b.raw);
    const tries = rig.backend.requestsFor('/die-if-reused');
    assert.deepEqual(
      tries.map((t) => t.index),
      [1, 0],
    );
  });

  test('a POST on a pooled connection the backend cut unanswered is not sent again: 502', async () => {
    await ask(rig.gw.port, CLIENT_A, '/own/stale-post-A');
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: rig.gw.port,
      localAddress: CLIENT_B,
      payload:
        'POST /die-if-reused-post HTTP/1.1\r\nHost: framing.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\nx=1',
    });
    const b = parseReply(reply.received.toString('latin1'), reply.closedByServer);
    assert.equal(b.status, 502, b.raw);
    assert.equal(rig.backend.requestsFor('/die-if-reused-post').length, 1, 'the POST was sent twice');
  });

  test('a pooled connection the backend closed while idle is dropped; the next client gets its own answer', async () => {
    await ask(rig.gw.port, CLIENT_A, '/own/then-fin');
    const first = rig.backend.requestsFor('/own/then-fin')[0];
    assert.ok(first);
    await rig.backend.closed(first.conn);
    await assertOwnAnswer(rig, 'after-fin-B', first.conn);
  });

  test('client A leaving mid-body: the backend connection is closed, not pooled with the rest of the body in flight', async () => {
    const a = await openRaw({ host: '127.0.0.1', port: rig.gw.port, localAddress: CLIENT_A });
    a.socket.write('GET /stall HTTP/1.1\r\nHost: framing.test\r\n\r\n');
    await a.until((r) => r.toString('latin1').includes('started'));
    a.destroy();
    const seen = await rig.backend.sawRequest('/stall');
    await rig.backend.closed(seen.conn);
    await assertOwnAnswer(rig, 'after-stall-B', seen.conn);
  });

  test('client A leaving before the answer (499): the backend connection is closed, its late answer reaches nobody', async () => {
    const a = await openRaw({ host: '127.0.0.1', port: rig.gw.port, localAddress: CLIENT_A });
    a.socket.write('GET /hold HTTP/1.1\r\nHost: framing.test\r\n\r\n');
    const seen = await rig.backend.sawRequest('/hold');
    a.destroy();
    await rig.backend.closed(seen.conn);
    await assertOwnAnswer(rig, 'after-hold-B', seen.conn);
  });

  test('an answer taken over by custom-http-errors before its body came: the backend connection is closed, its body reaches nobody', async () => {
    const a = await ask(rig.gw.port, CLIENT_A, '/teapot');
    assert.deepEqual([a.status, a.body], [404, 'none'], a.raw);
    const seen = await rig.backend.sawRequest('/teapot');
    await rig.backend.closed(seen.conn);
    await assertOwnAnswer(rig, 'after-teapot-B', seen.conn);
  });
});

describe('the same hostile answers from an HTTPS backend (backend-protocol HTTPS, the undici pool)', () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig({}, { 'backend-protocol': 'HTTPS' }, await testCertificate());
  });

  after(async () => {
    await stopRig(rig);
  });

  test('control: a clean answer over TLS, and the next client reuses the connection', async () => {
    const { a, reused } = await twoClients(rig, '/clean', 'tls-control');
    assert.deepEqual([a.status, a.body, a.whole], [200, 'clean', true]);
    assert.ok(reused, 'the pool was not exercised');
  });

  test('bytes after a complete answer: the declared answer only, the connection never reused', async () => {
    for (const [path, body] of [
      ['/long-body', 'full'],
      ['/second-response', 'first'],
      ['/chunked-then-more', 'chunk'],
      ['/204-body', ''],
      ['/304-body', ''],
    ] as const) {
      const { a, reused } = await twoClients(rig, path, `tls-extra${path.replaceAll('/', '-')}`);
      assert.equal(a.body, body, `${path}: ${JSON.stringify(a.raw)}`);
      assert.doesNotMatch(a.raw, /POISON/, path);
      assert.equal(reused, false, `${path}: the connection that carried extra bytes went back into the pool`);
    }
  });

  test('ambiguous framing, broken heads and a 101 unasked: 502, nothing relayed, connection dropped', async () => {
    for (const path of [
      '/cl-and-te',
      '/two-lengths',
      '/length-list',
      '/length-negative',
      '/length-hex',
      '/101',

      '/lowercase',
      '/obs-fold',
      '/bare-lf-field',
      '/nul-field',
      '/no-colon',
      '/space-before-colon',
    ]) {
      const { a, reused } = await twoClients(rig, path, `tls-framing${path.replaceAll('/', '-')}`);
      assert.equal(a.status, 502, `${path}: ${JSON.stringify(a.raw.slice(0, 200))}`);
      assert.doesNotMatch(a.raw, /POISON|LEAK/, path);
      assert.equal(reused, false, path);
    }
  });

  test('Transfer-Encoding other than chunked alone, chunked on an HTTP/1.0 answer, an HTTP/2.0 status line: refused, or relayed as framed; nothing past the frame, the connection not reused', async () => {
    // gzip, chunked: chunked is last, the body ends with the last chunk; chunked on HTTP/1.0: faulty
    // framing, the connection closed after it (RFC 9112 6.1); chunked, identity: read until the close.
    for (const path of ['/te-gzip-chunked', '/te-on-http10', '/te-chunked-identity-close', '/http20']) {
      const { a, reused } = await twoClients(rig, path, `tls-te${path.replaceAll('/', '-')}`);
      assert.ok(a.status === 502 || a.status === 200, `${path}: ${JSON.stringify(a.raw.slice(0, 200))}`);
      if (path !== '/te-chunked-identity-close') assert.doesNotMatch(a.raw, /POISON/, path);
      assert.equal(reused, false, path);
    }
  });

  test('an unsolicited 100 Continue before the answer, over TLS: the final answer or a 502, never a hang', async () => {
    const { a } = await twoClients(rig, '/interim', 'tls-interim-100');
    assert.ok(a.status === 502 || (a.status === 200 && a.body === 'final'), JSON.stringify(a.raw));
  });

  test('103 Early Hints before the answer, over TLS: the client gets the final answer, not the hint as if it were one', async () => {
    for (const path of ['/hints', '/many-interim']) {
      const { a } = await twoClients(rig, path, `tls-hints${path.replaceAll('/', '-')}`);
      assert.deepEqual(
        [a.status, a.body, a.whole],
        [200, 'final', true],
        `${path}: the final answer was dropped: ${JSON.stringify(a.raw.slice(0, 300))}`,
      );
    }
  });

  test('103 Early Hints over TLS on a kept-alive client connection: the answer to the next request is never read as the answer to this one', async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: rig.gw.port,
      localAddress: CLIENT_A,
      // Two requests pipelined on one connection, as a front proxy that multiplexes users sends them.
      payload:
        'GET /hints HTTP/1.1\r\nHost: framing.test\r\n\r\n' +
        'GET /own/someone-else HTTP/1.1\r\nHost: framing.test\r\nConnection: close\r\n\r\n',
    });
    const first = parseReply(reply.received.toString('latin1'), reply.closedByServer);
    assert.notEqual(first.body, 'own:someone-else', 'the second request’s answer arrived as the first one’s');
    assert.deepEqual([first.status, first.body.slice(0, 5)], [200, 'final']);
  });

  test('a body cut short over TLS: the client never sees a whole answer', async () => {
    for (const path of ['/cut-length', '/cut-chunked', '/chunk-bad-size']) {
      const { a } = await twoClients(rig, path, `tls-cut${path.replaceAll('/', '-')}`);
      assert.equal(a.whole, false, `${path}: ${JSON.stringify(a.raw)}`);
      assert.doesNotMatch(a.raw, /POISON|LEAK/, path);
    }
  });
});
