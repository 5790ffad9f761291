// What happens at each client and upstream deadline: keepip against real nginx 1.22 configured as
// ingress-nginx renders the ConfigMap keys client-header-timeout, client-body-timeout, keep-alive,
// proxy-connect-timeout, proxy-read-timeout, proxy-send-timeout and the location annotations
// proxy-*-timeout (rootfs/etc/nginx/template/nginx.tmpl: the http block's `reset_timedout_connection
// on`, `keepalive_timeout`, `client_header_timeout`, `client_body_timeout`, `client_header_buffer_size
// 1k`, `large_client_header_buffers 4 8k`, `client_body_buffer_size 8k`; the upstream's `keepalive 320`;
// the location's `proxy_connect_timeout`, `proxy_send_timeout`, `proxy_read_timeout`, `proxy_buffering
// off`, `proxy_buffer_size 4k`, `proxy_request_buffering`, `proxy_http_version 1.1`, `Connection
// $connection_upgrade` (''), `proxy_next_upstream error timeout` with 3 tries, `client_max_body_size`
// from proxy-body-size). Every timeout is 1 s on both sides, so that each case ends soon after it
// stalls. `send_timeout` has no ingress-nginx key (nginx's default 60 s, keepip's the same): both get
// 1 s here (nginx's directive, keepip's GatewayOptions.sendTimeoutMs). No headers-more directive is
// involved. lingering_time and lingering_timeout keep nginx's defaults on both.
//
// Only WHAT happens is compared, never when: each case waits for its event (the socket closes, a whole
// answer arrives, the backend sees EOF) with a far safety deadline (45 s) that turns a hang into a
// failure. Compared per case: the status the client got, whether the answer's body was whole (a
// Content-Length reached, a chunked body's last chunk), whether the server closed the connection (or,
// after a whole answer, what its Connection header said), any bytes after the answer, what the backend
// saw (requests, whether their bodies were whole, EOF), the status each access log wrote for the
// client's address (each case's client has its own 127.x address; the same format
// `$remote_addr $status $upstream_status` on both sides, keepip's through log-format-upstream; the logs
// are read after a barrier request that follows every case) and which upstream deadline the error log
// names (`upstream timed out … while <phase>`). The connect that hangs is a listener whose accept queue
// is full (backlog 0 and one connection in it, never accepted): Linux drops further SYNs.
//
// The cases all run at once against ONE nginx and ONE keepip gateway, each with its own backends, in
// before(); each `it` judges one case. A difference passes only when ALLOWED names it (keepip stricter,
// or documented in docs/gateway.md); keepip hanging where nginx closes, presenting a truncated body as
// whole, forwarding a partial request body as whole, or leaving a backend connection open is a finding:
// the test asserts nginx's behaviour and fails. TIMEOUTS_SHOW=1 prints both outcomes of every case.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { decodeChunked, openRaw, type RawConnection } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';

const HOST = 'timeouts.test';
/** Every timeout of both sides, in seconds. */
const TIMEOUT_S = 1;
/** The safety net: waiting longer than this for an event is a hang (a failure), never a measurement. */
const FAR_MS = 45_000;
const LOG_FORMAT = '$remote_addr $status $upstream_status';
const LOG_FILE = 'timeouts.log';
/** A request body declared this long of which the client sends the first 10 bytes. */
const DECLARED = 100;
/** An upload the backend never reads: far beyond what the kernel buffers between gateway and backend hold. */
const UPLOAD = 8 * 1024 * 1024;
/** A download the client never reads: far beyond the kernel buffers between gateway and client. */
const DOWNLOAD = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Backends: raw TCP peers that record every byte the gateway sent and whether it ended the connection.

/** What a backend does once a request head came (`noRead` never reads at all until told). */
type Behaviour =
  | 'answer'
  | 'silent'
  | 'stallLength'
  | 'stallChunked'
  | 'stallUnframed'
  | 'noRead'
  | 'download';

interface UpstreamConn {
  socket: net.Socket;
  /** Every byte the gateway sent on this connection, in pieces (joined once, when it is judged). */
  chunks: Buffer[];
  /** The gateway ended (FIN) or reset its side. */
  eof: boolean;
}

interface Peer {
  port: number;
  conns: UpstreamConn[];
  /** Resolves once `ready()` holds (checked on every event of every connection); rejects after FAR_MS. */
  until(what: string, ready: () => boolean): Promise<void>;
  close(): Promise<void>;
}

/** Streams DOWNLOAD bytes with backpressure until done or the connection goes. */
function pump(socket: net.Socket): void {
  const piece = Buffer.alloc(64 * 1024, 'z');
  let left = DOWNLOAD;
  const more = () => {
    while (left > 0 && !socket.destroyed) {
      left -= piece.length;
      if (!socket.write(piece)) return void socket.once('drain', more);
    }
  };
  socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${DOWNLOAD}\r\n\r\n`);
  more();
}

function behave(behaviour: Behaviour, socket: net.Socket): void {
  switch (behaviour) {
    case 'answer':
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      return;
    case 'stallLength':
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${DECLARED}\r\n\r\n0123456789`);
      return;
    case 'stallChunked':
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n');
      return;
    case 'stallUnframed':
      // Neither Content-Length nor chunked: the body ends when the backend closes, which it never does.
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n0123456789');
      return;
    case 'download':
      pump(socket);
      return;
    default:
      return; // silent (never answers), noRead (paused before this)
  }
}

async function startPeer(behaviour: Behaviour): Promise<Peer> {
  const conns: UpstreamConn[] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of [...waiters]) waiter();
  };
  const server = net.createServer((socket) => {
    const conn: UpstreamConn = { socket, chunks: [], eof: false };
    conns.push(conn);
    if (behaviour === 'noRead') socket.pause();
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      conn.chunks.push(chunk);
      if (!answered && Buffer.concat(conn.chunks).includes('\r\n\r\n')) {
        answered = true;
        behave(behaviour, socket);
      }
      notify();
    });
    const ended = () => {
      conn.eof = true;
      notify();
    };
    socket.on('end', ended);
    socket.on('close', ended);
    socket.on('error', () => {});
    notify();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    until: (what, ready) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`backend: no ${what} within ${FAR_MS} ms`));
        }, FAR_MS);
        const check = () => {
          if (!ready()) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        waiters.add(check);
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const conn of conns) conn.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * What the backend saw, per connection: a request and whether its body was whole, then EOF or still
 * open; `bytes` shows the body sizes (not compared: how much a stalled body moved is the kernel's).
 */
function backendView(peer: Peer | null): { view: string; bytes: string } {
  if (peer === null || peer.conns.length === 0) return { view: 'no connection', bytes: '' };
  const each = peer.conns.map((conn) => {
    const ending = conn.eof ? 'EOF' : 'open';
    const raw = Buffer.concat(conn.chunks);
    const end = raw.indexOf('\r\n\r\n');
    if (end < 0) return { view: `${raw.length > 0 ? 'a partial head' : 'nothing'}, ${ending}`, bytes: '' };
    const body = bodyState(raw.subarray(0, end).toString('latin1'), raw.subarray(end + 4));
    return { view: `a request (body ${body.kind}), ${ending}`, bytes: body.bytes };
  });
  return { view: each.map((e) => e.view).join('; '), bytes: each.map((e) => e.bytes).join('; ') };
}

/**
 * A listener on 127.0.0.1 that never accepts: a child process listens with backlog 1 and blocks its
 * event loop; two connections fill the accept queue, after which the kernel drops further SYNs, so a
 * connect to it hangs until the connector gives up (as test/security/tracing-attack.test.ts does).
 */
async function startBlackhole(): Promise<{ port: number; close(): void }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '-e',
      "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>{" +
        "process.stdout.write(s.address().port+'\\n');Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0)})",
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const fillers: net.Socket[] = [];
  const close = () => {
    for (const filler of fillers) filler.destroy();
    child.kill('SIGKILL');
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(Number(out.trim()));
      });
      child.once('exit', () => reject(new Error('the blackhole listener exited')));
    });
    for (let i = 0; i < 2; i++) {
      const filler = net.connect({ host: '127.0.0.1', port });
      fillers.push(filler);
      filler.on('error', () => {});
      await new Promise((resolve) => filler.once('connect', resolve));
    }
    return { port, close };
  } catch (error) {
    close();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Answers as the client reads them.

/**
 * A body after `head`, as compared: `whole`, `whole (chunked)`, `truncated`, `truncated (chunked, no
 * last chunk)`, `none`, or `until close` (no framing: the client cannot tell); how many bytes, apart.
 */
function bodyState(head: string, body: Buffer): { kind: string; bytes: string } {
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
    try {
      decodeChunked(body);
      return { kind: 'whole (chunked)', bytes: `${body.length}` };
    } catch {
      return { kind: 'truncated (chunked, no last chunk)', bytes: `${body.length}` };
    }
  }
  if (length !== null) {
    const declared = Number(length[1]);
    const bytes = `${body.length} of ${declared}`;
    if (declared === 0) return { kind: 'none', bytes };
    return { kind: body.length >= declared ? 'whole' : 'truncated', bytes };
  }
  return { kind: body.length === 0 ? 'none' : 'until close', bytes: `${body.length}` };
}

/** The length of the first whole answer in `raw`, or -1. */
function wholeAnswerLength(raw: Buffer): number {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return -1;
  const head = raw.subarray(0, end).toString('latin1');
  const body = raw.subarray(end + 4);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  if (status === 204 || status === 304) return end + 4;
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (length !== null) return body.length >= Number(length[1]) ? end + 4 + Number(length[1]) : -1;
  if (!/\r\ntransfer-encoding: *chunked/i.test(head)) return -1;
  if (body.subarray(0, 5).toString('latin1') === '0\r\n\r\n') return end + 4 + 5;
  const last = body.indexOf('\r\n0\r\n\r\n');
  return last < 0 ? -1 : end + 4 + last + 7;
}

interface Seen {
  status: number;
  body: { kind: string; bytes: string };
  /**
   * After a whole answer, what its head says of the connection (whether the server then closes at
   * once is a race with the client's own close), and `then closed` where the case waited for that;
   * without a whole answer, `closed` (the case waited for it).
   */
  connection: string;
  /** Bytes after the first whole answer. */
  extra: number;
  /** The server reset the connection (ECONNRESET): shown, not compared. */
  reset: boolean;
}

function seenOf(raw: Buffer, closed: boolean, reset: boolean, waitedForClose: boolean): Seen {
  const end = raw.indexOf('\r\n\r\n');
  const connection = closed ? 'closed' : 'open';
  if (end < 0) {
    const kind = raw.length > 0 ? 'a partial head' : 'none';
    return { status: 0, body: { kind, bytes: `${raw.length}` }, connection, extra: 0, reset };
  }
  const head = raw.subarray(0, end).toString('latin1');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  const whole = wholeAnswerLength(raw);
  if (whole < 0) return { status, body: bodyState(head, raw.subarray(end + 4)), connection, extra: 0, reset };
  return {
    status,
    body: bodyState(head, raw.subarray(end + 4, whole)),
    connection:
      (/\r\nconnection: *close/i.test(head) ? 'answer says close' : 'answer says keep-alive') +
      (waitedForClose && closed ? ', then closed' : ''),
    extra: raw.length - whole,
    reset,
  };
}

// ---------------------------------------------------------------------------------------------
// The cases.

/** How the client behaves: `answer` sends and waits for a whole answer or the close. */
type Drive = 'answer' | 'idle' | 'slowReader';

interface Case {
  name: string;
  /** The client's source address (it names the case's access log lines). */
  from: string;
  path: string;
  /** The backend's behaviour; null: the location's Service points at the blackhole. */
  behaviour: Behaviour | null;
  /** proxy-request-buffering off (else the default, on). */
  streamed?: true;
  /** proxy-body-size (else the default 1m). */
  bodySize?: string;
  request: () => Buffer;
  drive: Drive;
  /**
   * Access log lines (`status upstream_status`) either of which is the same outcome: two deadlines of
   * the same length race, and whichever passes first answers (docs/gateway.md, "Client deadlines").
   */
  either?: readonly string[];
}

const head = (line: string, extra = '') => `${line}\r\nHost: ${HOST}\r\n${extra}`;
const text = (s: string) => () => Buffer.from(s, 'latin1');
/** The same bytes for both sides, made once. */
const upload = (path: string) => {
  let bytes: Buffer | undefined;
  return () => {
    bytes ??= Buffer.concat([
      Buffer.from(head(`POST ${path} HTTP/1.1`, `Content-Length: ${UPLOAD}\r\n\r\n`)),
      Buffer.alloc(UPLOAD, 0x75),
    ]);
    return bytes;
  };
};

const CASES: readonly Case[] = [
  {
    name: 'client_header_timeout: half a request line, then nothing',
    from: '127.0.30.1',
    path: '/answer-a',
    behaviour: 'answer',
    request: text('GET /answer-a HT'),
    drive: 'answer',
  },
  {
    name: 'client_header_timeout: a request line and half the headers, then nothing',
    from: '127.0.30.2',
    path: '/answer-b',
    behaviour: 'answer',
    request: text(`GET /answer-b HTTP/1.1\r\nHost: ${HOST}\r\nX-Half: 1\r\n`),
    drive: 'answer',
  },
  {
    name: 'client_body_timeout, request buffering on: 10 of 100 declared body bytes, then nothing',
    from: '127.0.30.3',
    path: '/body-buffered',
    behaviour: 'silent',
    request: text(head('POST /body-buffered HTTP/1.1', `Content-Length: ${DECLARED}\r\n\r\n0123456789`)),
    drive: 'answer',
  },
  {
    name: 'client_body_timeout, request buffering off: 10 of 100 declared body bytes, then nothing',
    from: '127.0.30.4',
    path: '/body-streamed',
    behaviour: 'silent',
    streamed: true,
    request: text(head('POST /body-streamed HTTP/1.1', `Content-Length: ${DECLARED}\r\n\r\n0123456789`)),
    drive: 'answer',
    either: ['408 -', '504 504'],
  },
  {
    name: 'client_body_timeout, request buffering off: one chunk of a chunked body, then nothing',
    from: '127.0.30.5',
    path: '/body-chunked',
    behaviour: 'silent',
    streamed: true,
    request: text(
      head('POST /body-chunked HTTP/1.1', 'Transfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n'),
    ),
    drive: 'answer',
    either: ['408 -', '504 504'],
  },
  {
    name: 'keepalive_timeout: a kept-alive connection left idle after its answer',
    from: '127.0.30.6',
    path: '/answer-c',
    behaviour: 'answer',
    request: text(head('GET /answer-c HTTP/1.1', '\r\n')),
    drive: 'idle',
  },
  {
    name: 'proxy_read_timeout: a backend that accepts the request and never answers',
    from: '127.0.30.7',
    path: '/silent',
    behaviour: 'silent',
    request: text(head('GET /silent HTTP/1.1', '\r\n')),
    drive: 'answer',
  },
  {
    name: 'proxy_read_timeout: a backend that sends its head and 10 of 100 body bytes, then stalls',
    from: '127.0.30.8',
    path: '/stall-length',
    behaviour: 'stallLength',
    request: text(head('GET /stall-length HTTP/1.1', '\r\n')),
    drive: 'answer',
  },
  {
    name: 'proxy_read_timeout: a backend that sends its head and one chunk, then stalls',
    from: '127.0.30.9',
    path: '/stall-chunked',
    behaviour: 'stallChunked',
    request: text(head('GET /stall-chunked HTTP/1.1', '\r\n')),
    drive: 'answer',
  },
  {
    name: 'proxy_read_timeout: a backend that sends a head without framing and 10 body bytes, then stalls',
    from: '127.0.30.14',
    path: '/stall-unframed',
    behaviour: 'stallUnframed',
    request: text(head('GET /stall-unframed HTTP/1.1', '\r\n')),
    drive: 'answer',
  },
  {
    name: 'proxy_send_timeout, request buffering on: a backend that never reads an 8 MiB body',
    from: '127.0.30.10',
    path: '/no-read-buffered',
    behaviour: 'noRead',
    bodySize: '16m',
    request: upload('/no-read-buffered'),
    drive: 'answer',
  },
  {
    name: 'proxy_send_timeout, request buffering off: a backend that never reads an 8 MiB body',
    from: '127.0.30.11',
    path: '/no-read-streamed',
    behaviour: 'noRead',
    streamed: true,
    bodySize: '16m',
    request: upload('/no-read-streamed'),
    drive: 'answer',
  },
  {
    name: 'proxy_connect_timeout: a backend whose accept queue is full (the connect hangs)',
    from: '127.0.30.12',
    path: '/blackhole',
    behaviour: null,
    request: text(head('GET /blackhole HTTP/1.1', '\r\n')),
    drive: 'answer',
  },
  {
    name: 'send_timeout: a client that never reads a 64 MiB answer',
    from: '127.0.30.13',
    path: '/download',
    behaviour: 'download',
    request: text(head('GET /download HTTP/1.1', '\r\n')),
    drive: 'slowReader',
  },
];

// ---------------------------------------------------------------------------------------------
// The two servers under test.

/** The location of `c` as ingress-nginx's template writes it (the directives that decide a deadline). */
function nginxLocation(c: Case, upstream: string): string {
  return `    location ${c.path} {
      client_max_body_size ${c.bodySize ?? '1m'};
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_connect_timeout ${TIMEOUT_S}s;
      proxy_send_timeout ${TIMEOUT_S}s;
      proxy_read_timeout ${TIMEOUT_S}s;
      proxy_buffering off;
      proxy_buffer_size 4k;
      proxy_buffers 4 4k;
      proxy_request_buffering ${c.streamed ? 'off' : 'on'};
      proxy_http_version 1.1;
      proxy_next_upstream error timeout;
      proxy_next_upstream_timeout 0;
      proxy_next_upstream_tries 3;
      proxy_pass http://${upstream};
    }`;
}

/** The http block: ingress-nginx's client deadlines, one upstream per case, one server. */
function nginxHttp(dir: string, port: number, upstreams: readonly number[]): string {
  return [
    `log_format timeouts '${LOG_FORMAT}';`,
    'reset_timedout_connection on;',
    `keepalive_timeout ${TIMEOUT_S}s;`,
    'keepalive_requests 1000;',
    'client_header_buffer_size 1k;',
    `client_header_timeout ${TIMEOUT_S}s;`,
    'large_client_header_buffers 4 8k;',
    'client_body_buffer_size 8k;',
    `client_body_timeout ${TIMEOUT_S}s;`,
    // Not rendered by ingress-nginx (nginx's default, 60 s): 1 s on both sides here.
    `send_timeout ${TIMEOUT_S}s;`,
    "map $http_upgrade $connection_upgrade { default upgrade; '' ''; }",
    ...CASES.map(
      (_, i) =>
        `upstream case${i} { server 127.0.0.1:${upstreams[i]}; keepalive 320; keepalive_time 1h; ` +
        'keepalive_timeout 60s; keepalive_requests 10000; }',
    ),
    `server { listen 127.0.0.1:${port}; server_name ${HOST};`,
    `    access_log ${dir}/${LOG_FILE} timeouts;`,
    ...CASES.map((c, i) => nginxLocation(c, `case${i}`)),
    '}',
  ].join('\n');
}

/** The same locations for keepip: one Ingress per case (its annotations), a Service per backend. */
function keepipTopology(upstreams: readonly number[]) {
  const seconds = String(TIMEOUT_S);
  const objects: K8sObject[] = [
    controllerConfigMap({
      'client-header-timeout': seconds,
      'client-body-timeout': seconds,
      'keep-alive': seconds,
      'proxy-connect-timeout': seconds,
      'proxy-read-timeout': seconds,
      'proxy-send-timeout': seconds,
      'log-format-upstream': LOG_FORMAT,
    }),
  ];
  CASES.forEach((c, i) => {
    const annotations: Record<string, string> = {
      'proxy-connect-timeout': seconds,
      'proxy-read-timeout': seconds,
      'proxy-send-timeout': seconds,
    };
    if (c.streamed) annotations['proxy-request-buffering'] = 'off';
    if (c.bodySize !== undefined) annotations['proxy-body-size'] = c.bodySize;
    objects.push(
      ...serviceWithEndpoints({ name: `case${i}`, ports: [upstreams[i]!] }),
      ingress({
        name: `case${i}`,
        host: HOST,
        annotations,
        paths: [{ path: c.path, service: `case${i}`, port: 80 }],
      }),
    );
  });
  return topologyOf(objects);
}

interface Side {
  name: 'nginx' | 'keepip';
  port: number;
  /** The backend of each case (null: the blackhole). */
  peers: (Peer | null)[];
  accessLines(): string[];
  errorLines(): string[];
}

// ---------------------------------------------------------------------------------------------
// Running a case against one side.

interface Outcome {
  client: Seen;
  backend: { view: string; bytes: string };
  /** The access log lines for the client's address, without it (`status upstream_status`). */
  logged: string[];
  /** The error log lines that name the client's address (only the upstream timeouts are compared). */
  errors: string[];
}

/** Sends the case's request and waits for its event: a whole answer or the close (FAR_MS). */
async function drive(c: Case, conn: RawConnection, peer: Peer | null): Promise<void> {
  if (c.drive === 'slowReader') {
    conn.socket.pause(); // reads nothing: the answer piles up in the gateway
    conn.socket.write(c.request());
    await peer!.until('close of the upstream connection', () => peer!.conns.some((x) => x.eof));
    conn.socket.resume();
    await conn.whenClosed(FAR_MS);
    return;
  }
  conn.socket.write(c.request());
  await conn.until((raw) => wholeAnswerLength(raw) >= 0 || conn.closed(), FAR_MS);
  if (c.drive === 'idle') await conn.whenClosed(FAR_MS);
}

/** After the client's event, the backend must see its connections end (one that never reads is let read). */
async function settleBackend(c: Case, peer: Peer | null): Promise<void> {
  if (peer === null || c.behaviour === 'answer') return; // an answered request's connection may stay pooled
  for (const conn of peer.conns) conn.socket.resume();
  await peer.until('EOF on every upstream connection', () => peer.conns.every((x) => x.eof));
}

/** The client's and the backend's view of case `index` on `side` (its logs come later). */
async function runCase(side: Side, c: Case, index: number): Promise<Outcome> {
  const peer = side.peers[index]!;
  const conn = await openRaw({ host: '127.0.0.1', port: side.port, localAddress: c.from });
  let reset = false;
  conn.socket.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ECONNRESET') reset = true;
  });
  let hang = '';
  try {
    await drive(c, conn, peer);
    await settleBackend(c, peer);
  } catch (error) {
    hang = (error as Error).message.split('\n')[0]!;
  }
  const client = seenOf(conn.received(), conn.closed(), reset, c.drive === 'idle');
  conn.destroy();
  if (hang !== '') client.connection = `HANG (${hang})`;
  return { client, backend: backendView(peer), logged: [], errors: [] };
}

const SENTINEL = '127.0.30.99';

/**
 * The barrier before the logs are read: once every case has ended on `side`, one more request from
 * SENTINEL, whose access log line is awaited; the lines of the cases, which ended before it, are in.
 */
async function barrier(side: Side): Promise<void> {
  const conn = await openRaw({ host: '127.0.0.1', port: side.port, localAddress: SENTINEL });
  conn.socket.write(`GET /sentinel HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
  await conn.whenClosed(FAR_MS);
  const deadline = Date.now() + FAR_MS;
  while (!side.accessLines().some((line) => line.startsWith(`${SENTINEL} `))) {
    if (Date.now() > deadline) throw new Error(`${side.name} never logged the sentinel request`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function withLogs(side: Side, c: Case, outcome: Outcome): Outcome {
  const own = (line: string) => line.startsWith(`${c.from} `);
  outcome.logged = side
    .accessLines()
    .filter(own)
    .map((line) => line.slice(c.from.length + 1));
  outcome.errors = side
    .errorLines()
    .filter((line) => line.includes(`client: ${c.from},`))
    .map((line) => line.replace(/^.*?\] (?:\d+#\d+: )?(?:\*\d+ )?/, '').replace(/, client: .*$/, ''));
  return outcome;
}

// ---------------------------------------------------------------------------------------------
// Comparing.

type Field = 'status' | 'body' | 'connection' | 'extra' | 'backend' | 'logged' | 'upstream timeout';

/**
 * Which upstream deadline the error log names (`upstream timed out … while <phase>`, logged at `error`,
 * which ingress-nginx's default error-log-level shows), or `none`. In a race (`either`) the client's
 * deadline logs no upstream timeout: `none` and `sending request to upstream` are then the same.
 */
function upstreamTimeout(c: Case, o: Outcome): string {
  const phases = o.errors.flatMap(
    (line) => /^upstream timed out \(110: [^)]*\) while (.*?)(?:,|$)/.exec(line)?.[1] ?? [],
  );
  const found = phases.join('; ') || 'none';
  const raced = ['none', 'sending request to upstream'];
  return c.either !== undefined && raced.includes(found)
    ? `${raced.join(' or ')} (whichever deadline passed first)`
    : found;
}

function fieldsOf(c: Case, o: Outcome): Record<Field, string> {
  const either = c.either;
  const statuses = either?.map((line) => line.split(' ')[0]);
  const raced = `${either?.join(' or ')} (whichever deadline passed first)`;
  return {
    'upstream timeout': upstreamTimeout(c, o),
    status: statuses?.includes(String(o.client.status)) ? raced : String(o.client.status),
    body: o.client.body.kind,
    connection: o.client.connection,
    extra: String(o.client.extra),
    backend: o.backend.view,
    logged: o.logged.map((line) => (either?.includes(line) ? raced : line)).join('; ') || 'no line',
  };
}

function describeOutcome(o: Outcome): string {
  const c = o.client;
  return [
    `status ${c.status}, body ${c.body.kind} (${c.body.bytes} bytes), ${c.connection}${c.reset ? ' (reset)' : ''}, ${c.extra} bytes after`,
    `backend: ${o.backend.view} (${o.backend.bytes || 'no'} body bytes)`,
    `access log: ${o.logged.join('; ') || 'no line'}; error log: ${o.errors.join(' | ') || 'none'}`,
  ].join('\n    ');
}

/** A difference keepip may have: the values of each field it covers (nginx's exact, keepip's matched). */
interface Allowed {
  cases: readonly string[];
  fields: Partial<Record<Field, readonly [nginx: string, keepip: RegExp]>>;
  reason: string;
}

const HEADER_TIMEOUTS = CASES.filter((c) => c.name.startsWith('client_header_timeout')).map((c) => c.name);
const BODY_TIMEOUTS = CASES.filter((c) => c.name.startsWith('client_body_timeout')).map((c) => c.name);
const BUFFERED_BODY_TIMEOUT = BODY_TIMEOUTS.filter((name) => name.includes('buffering on'));
const STREAMED_BODY_TIMEOUTS = BODY_TIMEOUTS.filter((name) => name.includes('buffering off'));

const ALLOWED: readonly Allowed[] = [
  {
    cases: [...HEADER_TIMEOUTS, ...BUFFERED_BODY_TIMEOUT],
    fields: {
      status: ['0', /^408$/],
      body: ['none', /^whole$/],
      connection: ['closed', /^answer says close$/],
    },
    reason:
      'a stalled head or body: nginx closes without an answer (a reset: reset_timedout_connection), keepip ' +
      'sends its 408 page and closes (documented: docs/gateway.md, "Deliberate differences from ' +
      'ingress-nginx", client deadlines); the ' +
      'client learns only that it timed out, and nothing went upstream on either side',
  },
  {
    cases: STREAMED_BODY_TIMEOUTS,
    fields: {
      status: ['0', /^408 - or 504 504 \(whichever deadline passed first\)$/],
      body: ['none', /^whole$/],
      connection: ['closed', /^answer says (close|keep-alive)$/],
    },
    reason:
      'a stalled streamed body: client-body-timeout and proxy-send-timeout race, whichever passes first ' +
      'answers (docs/gateway.md "Client deadlines"); nginx\'s 408 is no answer and a reset, keepip answers ' +
      '(its 408 page, or 504 and the rest of the declared body read and dropped before the next request)',
  },
];

/** What a difference in each field means, for the failure message. */
const MEANING: Record<Field, string> = {
  status: 'the status the client got',
  body: 'whether the client can tell a cut answer from a whole one',
  connection: 'whether the connection was let go (HANG: keepip never ended the case)',
  extra: 'bytes after the answer',
  backend: 'what reached the backend: a partial body passed as whole, or a connection never closed',
  logged: 'the access log line an operator reads (nginx logs every timed-out request, 408 included)',
  'upstream timeout':
    "which upstream deadline cut the request: proxy_read_timeout starts once the request is sent (nginx's; " +
    'docs/gateway.md "Client deadlines" says the same of keepip)',
};

/** The fields on which keepip differs from nginx and ALLOWED does not excuse; the entries that did. */
function differences(c: Case, ngx: Outcome, kip: Outcome, used: Set<Allowed>): string[] {
  const n = fieldsOf(c, ngx);
  const k = fieldsOf(c, kip);
  const out: string[] = [];
  for (const field of Object.keys(n) as Field[]) {
    if (n[field] === k[field]) continue;
    const allowed = ALLOWED.find((a) => {
      const pair = a.cases.includes(c.name) ? a.fields[field] : undefined;
      return pair !== undefined && pair[0] === n[field] && pair[1].test(k[field]);
    });
    if (allowed !== undefined) used.add(allowed);
    else out.push(`${field}: nginx ${n[field]}, keepip ${k[field]} (${MEANING[field]})`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

interface Bench {
  sides: [Side, Side];
  close(): Promise<void>;
}

async function startBench(): Promise<Bench> {
  const peers: Peer[] = [];
  const closers: (() => unknown)[] = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer();
    for (const peer of peers) await peer.close();
  };
  /** `started`, its stop kept for close(). */
  const kept = <T>(started: Promise<T>, stop: (t: T) => unknown) =>
    started.then((t) => {
      closers.push(() => stop(t));
      return t;
    });
  const startPeers = async () =>
    Promise.all(
      CASES.map(async (c) => {
        const peer = c.behaviour === null ? null : await startPeer(c.behaviour);
        if (peer !== null) peers.push(peer);
        return peer;
      }),
    );
  try {
    // Everything settles before a failure is thrown: close() then stops all that did start.
    const first = [kept(startBlackhole(), (b) => b.close()), startPeers(), startPeers()] as const;
    await Promise.allSettled(first);
    const [blackhole, nginxPeers, keepipPeers] = await Promise.all(first);
    const portsOf = (list: (Peer | null)[]) => list.map((p) => p?.port ?? blackhole.port);
    const servers = [
      kept(
        startNginx({
          freePorts: 1,
          http: (dir, [port]) => nginxHttp(dir, port!, portsOf(nginxPeers)),
          waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
        }),
        (n) => n.stop(),
      ),
      kept(startTestGateway(keepipTopology(portsOf(keepipPeers)), { sendTimeoutMs: TIMEOUT_S * 1000 }), (g) =>
        g.close(),
      ),
    ] as const;
    await Promise.allSettled(servers);
    const [nginx, gateway] = await Promise.all(servers);
    return { sides: sides(nginx, nginxPeers, gateway, keepipPeers), close };
  } catch (error) {
    await close();
    throw error;
  }
}

function sides(
  nginx: RunningNginx,
  nginxPeers: (Peer | null)[],
  gateway: TestGateway,
  keepipPeers: (Peer | null)[],
): [Side, Side] {
  return [
    {
      name: 'nginx',
      port: nginx.ports[0]!,
      peers: nginxPeers,
      accessLines: () => nginx.readFile(LOG_FILE).split('\n'),
      errorLines: () => nginx.readFile('error.log').split('\n'),
    },
    {
      name: 'keepip',
      port: gateway.httpPort,
      peers: keepipPeers,
      accessLines: () => gateway.access.lines,
      errorLines: () => gateway.errors.lines,
    },
  ];
}

/** Every case on both sides at once; then the barrier and the logs. Each case's [nginx, keepip]. */
async function runAll(bench: Bench): Promise<Map<string, [Outcome, Outcome]>> {
  const [ngxSide, kipSide] = bench.sides;
  const runs = await Promise.all(
    CASES.map((c, i) => Promise.all([runCase(ngxSide, c, i), runCase(kipSide, c, i)])),
  );
  await Promise.all(bench.sides.map(barrier));
  return new Map(
    CASES.map((c, i) => {
      const [ngx, kip] = runs[i]!;
      return [c.name, [withLogs(ngxSide, c, ngx), withLogs(kipSide, c, kip)]];
    }),
  );
}

describe('timeouts: what happens at each client and upstream deadline, keepip against nginx 1.22 (ingress-nginx)', () => {
  let bench: Bench | undefined;
  let results: Promise<Map<string, [Outcome, Outcome]>>;
  const used = new Set<Allowed>();

  before(async () => {
    bench = await startBench();
    results = runAll(bench);
    results.catch(() => {});
  });

  after(async () => {
    await results?.catch(() => {});
    await bench?.close();
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const [ngx, kip] = (await results).get(c.name)!;
      const shown = `nginx:\n    ${describeOutcome(ngx)}\nkeepip:\n    ${describeOutcome(kip)}`;
      if (process.env.TIMEOUTS_SHOW) console.log(`${c.name}\n${shown}`);
      assert.deepEqual(differences(c, ngx, kip, used), [], shown);
    });
  }

  it('every ALLOWED difference is met by its case', () => {
    const unmet = ALLOWED.filter((a) => !used.has(a)).map((a) => a.reason);
    assert.deepEqual(unmet, []);
  });
});
