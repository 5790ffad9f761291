// WebSocket (and any HTTP/1.1 Upgrade) through the gateway, attacked from outside: refusals that must
// not leave a tunnel (nor let the bytes after the head reach the backend unrouted), a backend that
// switches without being asked, frames pipelined before the 101, hop-by-hop fields, the access stage
// (allowlist, auth-url, ssl-redirect, client certificates, the SNI/Host 421) on the upgrade request,
// the tunnel's life (idle timeout, half-close, resets, drain, max-worker-connections) and HTTP/2's
// CONNECT (plain and RFC 8441's extended one). h2c smuggling has its own file (h2c-smuggling.test.ts).
// The reference is nginx with ingress-nginx's template: `proxy_set_header Upgrade $http_upgrade;
// Connection $connection_upgrade`, a tunnel only on a 101 to a request that carried Upgrade, and
// proxy_read_timeout bounding an idle upgraded connection.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import {
  connectRawH2,
  FLAG,
  FRAME,
  type Frame,
  frame,
  H2_ERROR,
  headerBlock,
  rstCode,
} from '../helpers/h2-raw.ts';
import { openRaw, type RawConnection, rawExchange } from '../helpers/net.ts';
import { counterValue } from './helpers.ts';

const HOST = 'up.example';
/** Bound for what has no deadline of its own (a signal, never a window). */
const WAIT_MS = 8_000;

/** Resolves once `ready()` holds, re-checked on every `change` of `events`; rejects after `timeoutMs`. */
function when(events: EventEmitter, ready: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!ready()) return;
      clearTimeout(timer);
      events.off('change', check);
      resolve();
    };
    const timer = setTimeout(() => {
      events.off('change', check);
      reject(new Error(`${what}: not within ${timeoutMs} ms`));
    }, timeoutMs);
    events.on('change', check);
    check();
  });
}

/** One connection the gateway opened to the scripted backend. */
interface Upstream {
  socket: net.Socket;
  /** The request head, up to its blank line. */
  head: string;
  /** Bytes after the head, so far. */
  after(): Buffer;
  ended: boolean;
  closed: boolean;
  /** Keep our side open after the gateway's FIN (default: end it then, as most servers do). */
  holdOpen: boolean;
  until(ready: () => boolean, what: string, timeoutMs?: number): Promise<void>;
}

/** A backend the test drives: every connection is handed over once its request head is in. */
interface Backend {
  port: number;
  accepted: number;
  all: Upstream[];
  next(): Promise<Upstream>;
  close(): Promise<void>;
}

async function startBackend(): Promise<Backend> {
  const events = new EventEmitter();
  const ready: Upstream[] = [];
  const backend: Backend = {
    port: 0,
    accepted: 0,
    all: [],
    async next() {
      await when(events, () => ready.length > 0, 'an upstream connection with its head');
      return ready.shift() as Upstream;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const u of backend.all) u.socket.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    backend.accepted += 1;
    let buffered = Buffer.alloc(0);
    let headEnd = -1;
    const own = new EventEmitter();
    const conn: Upstream = {
      socket,
      head: '',
      after: () => buffered.subarray(headEnd + 4),
      ended: false,
      closed: false,
      holdOpen: false,
      until: (check, what, timeoutMs) => when(own, check, what, timeoutMs),
    };
    const changed = () => {
      own.emit('change');
      events.emit('change');
    };
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (headEnd < 0) {
        headEnd = buffered.indexOf('\r\n\r\n');
        if (headEnd >= 0) {
          conn.head = buffered.subarray(0, headEnd + 4).toString('latin1');
          backend.all.push(conn);
          ready.push(conn);
        }
      }
      changed();
    });
    socket.on('end', () => {
      conn.ended = true;
      if (!conn.holdOpen) socket.end();
      changed();
    });
    socket.on('close', () => {
      conn.closed = true;
      changed();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend.port = (server.address() as AddressInfo).port;
  return backend;
}

/** An auth service: /ok 200 with X-Auth-User, /deny 401, /switch a 101; every head it read is kept. */
async function startAuth(): Promise<{ port: number; heads: string[]; close(): Promise<void> }> {
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    let text = '';
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = text.slice(0, end);
      text = text.slice(end + 4);
      heads.push(head);
      if (head.startsWith('GET /ok '))
        socket.write('HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nContent-Length: 0\r\n\r\n');
      else if (head.startsWith('GET /switch '))
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nAUTH-TUNNEL',
        );
      else socket.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    heads,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A certificate for sec.example and open.example, self-signed: the server pair and the client CA. */
function makeCertificate(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-upgrade-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-subj',
        '/CN=sec.example',
        '-addext',
        'subjectAltName=DNS:sec.example,DNS:open.example',
        '-days',
        '2',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { cert: readFileSync(join(dir, 'c.pem'), 'utf8'), key: readFileSync(join(dir, 'k.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function caSecret(name: string, pair: { cert: string; key: string }): K8sObject {
  const secret = tlsSecret(name, pair.cert, pair.key);
  (secret.data as Record<string, string>)['ca.crt'] = Buffer.from(pair.cert).toString('base64');
  return secret;
}

function topology(backendPort: number, authPort: number, pair: { cert: string; key: string }) {
  const at = (path: string, annotations: Record<string, string> = {}, host = HOST) =>
    ingress({
      name: `i${path.replace(/\W/g, '') || 'root'}-${host.split('.')[0]}`,
      host,
      paths: [{ path, service: 'raw', port: 80 }],
      annotations,
    });
  const auth = `http://127.0.0.1:${authPort}`;
  return topologyOf([
    controllerConfigMap({}),
    ...serviceWithEndpoints({ name: 'raw', ports: [backendPort] }),
    tlsSecret('pair', pair.cert, pair.key),
    caSecret('ca', pair),
    at('/'),
    at('/admin', { 'whitelist-source-range': '10.0.0.0/8' }),
    at('/authok', { 'auth-url': `${auth}/ok`, 'auth-response-headers': 'X-Auth-User' }),
    at('/authdeny', { 'auth-url': `${auth}/deny` }),
    at('/auth101', { 'auth-url': `${auth}/switch` }),
    at('/', { 'proxy-read-timeout': '1', 'proxy-send-timeout': '1' }, 'slow.example'),
    ingress({
      name: 'sec',
      host: 'sec.example',
      tlsSecret: 'pair',
      paths: [{ path: '/', service: 'raw', port: 80 }],
      annotations: { 'auth-tls-secret': 'default/ca', 'auth-tls-verify-client': 'on' },
    }),
    ingress({
      name: 'open',
      host: 'open.example',
      tlsSecret: 'pair',
      paths: [{ path: '/', service: 'raw', port: 80 }],
    }),
  ]);
}

function upgrade(path: string, host = HOST, extra = ''): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`
  );
}

const SWITCH = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';

/** The value of `name` in a request head (lower-case match), or undefined. */
function field(head: string, name: string): string | undefined {
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name}:`));
  return line?.slice(name.length + 1).trim();
}

function text(conn: RawConnection): string {
  return conn.received().toString('latin1');
}

/** A client connection, `payload` written at once; the caller destroys it. */
async function client(port: number, from: string, payload: string): Promise<RawConnection> {
  const conn = await openRaw({ host: '127.0.0.1', port, localAddress: from });
  conn.socket.write(payload);
  return conn;
}

/** One TLS connection with `servername`: `payload`, then everything until the gateway closes. */
function tlsExchange(port: number, servername: string, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
    const timer = setTimeout(() => socket.destroy(), WAIT_MS);
    socket.once('secureConnect', () => socket.write(payload));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // A switched connection stays open: the 101 is the answer.
      if (Buffer.concat(chunks).includes('\r\n\r\n') && /^HTTP\/1\.1 101 /.test(chunks[0]?.toString() ?? ''))
        socket.destroy();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET') reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

describe('upgrades through the gateway, attacked', () => {
  let backend: Backend;
  let auth: Awaited<ReturnType<typeof startAuth>>;
  let gw: TestGateway;

  before(async () => {
    backend = await startBackend();
    auth = await startAuth();
    gw = await startTestGateway(topology(backend.port, auth.port, makeCertificate()));
  });

  after(async () => {
    await gw?.close();
    await backend?.close();
    await auth?.close();
  });

  /** Opens a tunnel from `from` on `host`: the client connection and the backend's side, switched. */
  async function tunnel(from: string, path: string, host = HOST) {
    const c = await client(gw.httpPort, from, upgrade(path, host));
    const up = await backend.next();
    up.socket.write(SWITCH);
    await c.until((got) => got.includes('\r\n\r\n'));
    assert.match(text(c), /^HTTP\/1\.1 101 /);
    return { c, up };
  }

  it('refused upgrades (426, 302 chunked, 400 close-delimited): the answer, then the close; bytes after the head never reach the backend', async () => {
    const refusals = [
      'HTTP/1.1 426 Upgrade Required\r\nContent-Length: 3\r\n\r\nno!',
      'HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nno!\r\n0\r\n\r\n',
      'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nno!',
    ];
    for (const [i, refusal] of refusals.entries()) {
      const hidden = `GET /admin/hidden-${i} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
      const c = await client(gw.httpPort, '127.0.0.71', upgrade(`/ws-refused-${i}`) + hidden);
      const up = await backend.next();
      const status = refusal.slice(9, 12);
      // The backend keeps its side open (keep-alive): only the close-delimited answer ends it.
      up.socket.write(refusal);
      if (status === '400') up.socket.end();
      await c.whenClosed(WAIT_MS);
      assert.match(text(c), new RegExp(`^HTTP/1\\.1 ${status} [\\s\\S]*no!`), status);
      assert.doesNotMatch(text(c), /HTTP\/1\.1 (101|403|200)/);
      await up.until(() => up.closed, `the refused upstream connection of ${status} is closed`);
      assert.equal(up.after().length, 0, `${status}: nothing after the head went upstream`);
      await gw.access.waitFor(new RegExp(`"GET /ws-refused-${i} HTTP/1\\.1" `));
    }
    const upstreamText = backend.all.map((u) => u.head + u.after().toString('latin1')).join('');
    assert.doesNotMatch(upstreamText, /hidden-/);
    assert.ok(!gw.access.lines.some((l) => l.includes('hidden-')), 'the hidden requests were never served');
  });

  it('frames pipelined with the upgrade request reach the backend after the 101, once, in order, never parsed as HTTP', async () => {
    const frames = `FRAME-1\r\n\r\nGET /admin/inside HTTP/1.1\r\nHost: ${HOST}\r\n\r\nFRAME-2`;
    const c = await client(gw.httpPort, '127.0.0.72', upgrade('/ws-pipelined') + frames);
    const up = await backend.next();
    assert.equal(up.after().length, 0, 'nothing beyond the head before the backend switched');
    // The 101 and the backend's first frame in one write.
    up.socket.write(`${SWITCH}HELLO`);
    await up.until(() => up.after().length >= frames.length, 'the held frames');
    await c.until((got) => got.toString('latin1').endsWith('HELLO'));
    c.socket.write('FRAME-3');
    await up.until(() => up.after().length >= frames.length + 7, 'the next frame');
    assert.equal(up.after().toString('latin1'), `${frames}FRAME-3`);
    assert.equal((text(c).match(/HTTP\/1\.1 101 /g) ?? []).length, 1);
    c.destroy();
    await gw.access.waitFor(/"GET \/ws-pipelined HTTP\/1\.1" 101 /);
    assert.ok(!gw.access.lines.some((l) => l.includes('/admin/inside')));
  });

  it('Upgrade without "Connection: upgrade" is an ordinary request: a backend that answers 101 anyway gets 502, its tunnel bytes never reach the client, and the next pipelined request meets the allowlist', async () => {
    const plain = `GET /half-offer HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\n\r\n`;
    const next = `GET /admin/after HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`;
    const c = await client(gw.httpPort, '127.0.0.73', plain + next);
    const up = await backend.next();
    assert.equal(field(up.head, 'upgrade'), undefined, 'no Upgrade offered upstream');
    assert.notEqual(field(up.head, 'connection')?.toLowerCase(), 'upgrade');
    up.socket.write(`${SWITCH}BACKEND-SECRET`);
    await c.whenClosed(WAIT_MS);
    const got = text(c);
    assert.match(got, /^HTTP\/1\.1 502 /);
    assert.doesNotMatch(got, /BACKEND-SECRET|HTTP\/1\.1 101/);
    assert.match(got, /\r\n\r\n[\s\S]*HTTP\/1\.1 403 /, 'the pipelined request is the next request, refused');
    assert.ok(!backend.all.some((u) => u.head.includes('/admin/after')));
  });

  it("a client cannot use Connection to strip what the gateway sets: the listed X-Secret goes, X-Real-IP and X-Forwarded-For stay the gateway's", async () => {
    const forged = 'Connection: Upgrade, X-Secret, X-Real-IP, X-Forwarded-For\r\n';
    const spoof = 'X-Secret: s3cr3t\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\n';
    const upgradeHead = upgrade('/hop-ws').replace('Connection: Upgrade\r\n', forged);
    const plainHead = `GET /hop-plain HTTP/1.1\r\nHost: ${HOST}\r\n${forged.replace('Upgrade, ', 'close, ')}`;
    for (const head of [upgradeHead.replace(/\r\n\r\n$/, `\r\n${spoof}\r\n`), `${plainHead}${spoof}\r\n`]) {
      const c = await client(gw.httpPort, '127.0.0.74', head);
      const up = await backend.next();
      up.socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      await c.whenClosed(WAIT_MS);
      assert.equal(field(up.head, 'x-secret'), undefined, up.head);
      assert.equal(field(up.head, 'x-real-ip'), '127.0.0.74');
      assert.equal(field(up.head, 'x-forwarded-for'), '127.0.0.74');
    }
    const [ws, plain] = backend.all.slice(-2).map((u) => u.head);
    assert.equal(field(ws ?? '', 'connection'), 'upgrade');
    assert.equal(field(ws ?? '', 'upgrade'), 'websocket');
    assert.equal(field(plain ?? '', 'upgrade'), undefined);
  });

  it("a refused upgrade whose answer ends with the backend's close is logged with the backend's status (400), not 000", async () => {
    const c = await client(gw.httpPort, '127.0.0.71', upgrade('/ws-close-delimited'));
    const up = await backend.next();
    up.socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nno!');
    await c.whenClosed(WAIT_MS);
    assert.match(text(c), /^HTTP\/1\.1 400 [\s\S]*no!$/);
    const line = await gw.access.waitFor(/"GET \/ws-close-delimited HTTP\/1\.1" /);
    assert.match(line, /"GET \/ws-close-delimited HTTP\/1\.1" 400 /, line);
    assert.match(line, / 400 [0-9a-f]{32}$/, `upstream status: ${line}`);
  });

  it('an auth service that answers 101 is a 500 ("auth request unexpected status"), never a hang, for an upgrade and a plain request', async () => {
    const before = backend.accepted;
    const replies = await Promise.all(
      [
        upgrade('/auth101/ws'),
        `GET /auth101/plain HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`,
      ].map((payload) =>
        rawExchange({
          host: '127.0.0.1',
          port: gw.httpPort,
          localAddress: '127.0.0.75',
          payload,
          timeoutMs: 4_000,
        }),
      ),
    );
    for (const [i, reply] of replies.entries()) {
      const what = i === 0 ? 'the upgrade' : 'the plain request';
      assert.match(reply.received.toString('latin1'), /^HTTP\/1\.1 500 /, `${what} answered 500`);
      assert.doesNotMatch(reply.received.toString('latin1'), /AUTH-TUNNEL/);
    }
    assert.equal(backend.accepted, before, 'no connection to the backend');
  });

  it('the access stage holds for upgrades: allowlist 403, auth-url 401; none reaches the backend, the auth subrequest offers no upgrade', async () => {
    const before = backend.accepted;
    const cases: [string, number][] = [
      ['/admin/ws', 403],
      ['/authdeny/ws', 401],
    ];
    for (const [path, status] of cases) {
      const reply = await rawExchange({
        host: '127.0.0.1',
        port: gw.httpPort,
        localAddress: '127.0.0.75',
        payload: `${upgrade(path)}FRAME-AFTER`,
        timeoutMs: WAIT_MS,
      });
      const got = reply.received.toString('latin1');
      assert.match(got, new RegExp(`^HTTP/1\\.1 ${status} `), path);
      assert.doesNotMatch(got, /AUTH-TUNNEL|101 Switching/, path);
      assert.equal(reply.closedByServer, true, path);
    }
    assert.equal(backend.accepted, before, 'no connection to the backend');
    for (const head of auth.heads) {
      assert.equal(field(head, 'upgrade'), undefined, 'the auth subrequest offers no upgrade');
      assert.doesNotMatch(head, /FRAME-AFTER/);
    }
  });

  it("auth-url admits an upgrade: the auth service's X-Auth-User replaces the client's forged one on the backend", async () => {
    const c = await client(
      gw.httpPort,
      '127.0.0.76',
      upgrade('/authok/ws', HOST, 'X-Auth-User: mallory\r\n'),
    );
    const up = await backend.next();
    assert.equal(field(up.head, 'x-auth-user'), 'alice');
    up.socket.write(SWITCH);
    await c.until((got) => got.includes('\r\n\r\n'));
    assert.match(text(c), /^HTTP\/1\.1 101 /);
    c.destroy();
    await up.until(() => up.closed, 'the tunnel closed with the client');
  });

  it('TLS rules hold for upgrades: ssl-redirect 308 on plain HTTP, no client certificate 400, a Host other than the SNI 421', async () => {
    const before = backend.accepted;
    const plain = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      payload: upgrade('/ws', 'sec.example'),
      timeoutMs: WAIT_MS,
    });
    assert.match(
      plain.received.toString('latin1'),
      /^HTTP\/1\.1 308 [\s\S]*\r\nlocation: https:\/\/sec\.example\/ws\r\n/i,
    );
    assert.match(
      await tlsExchange(gw.httpsPort, 'sec.example', upgrade('/ws', 'sec.example')),
      /^HTTP\/1\.1 400 /,
    );
    assert.match(
      await tlsExchange(gw.httpsPort, 'open.example', upgrade('/ws', 'sec.example')),
      /^HTTP\/1\.1 421 /,
    );
    assert.equal(backend.accepted, before, 'none of them reached the backend');
    // Control: the same upgrade for the host the handshake named switches.
    const control = tlsExchange(gw.httpsPort, 'open.example', upgrade('/ws', 'open.example'));
    (await backend.next()).socket.end(SWITCH);
    assert.match(await control, /^HTTP\/1\.1 101 /);
  });

  it('an idle tunnel ends after proxy-read-timeout (1 s) on both sides; a backend that never answers the upgrade is a 504', async () => {
    const { c, up } = await tunnel('127.0.0.77', '/idle', 'slow.example');
    const opened = performance.now();
    await c.whenClosed(WAIT_MS);
    await up.until(() => up.closed, 'the backend side of the idle tunnel closed');
    assert.ok(performance.now() - opened >= 900, 'not before proxy-read-timeout');
    await gw.access.waitFor(/"GET \/idle HTTP\/1\.1" 101 /);
    const silent = await client(gw.httpPort, '127.0.0.77', upgrade('/silent', 'slow.example'));
    await backend.next();
    await silent.whenClosed(WAIT_MS);
    assert.match(text(silent), /^HTTP\/1\.1 504 /);
  });

  it('half-close: a FIN from the client reaches the backend, which can still answer; its FIN then ends the client', async () => {
    const { c, up } = await tunnel('127.0.0.78', '/half');
    up.holdOpen = true;
    c.socket.end('LAST');
    await up.until(() => up.ended, 'the FIN reached the backend');
    assert.equal(up.after().toString('latin1'), 'LAST');
    up.socket.end('REPLY-AFTER-FIN');
    await c.whenClosed(WAIT_MS);
    assert.match(text(c), /\r\n\r\nREPLY-AFTER-FIN$/);
    await up.until(() => up.closed, 'the backend side closed');
  });

  it('a reset on either side tears the other down', async () => {
    const first = await tunnel('127.0.0.79', '/reset-client');
    first.c.socket.resetAndDestroy();
    await first.up.until(() => first.up.closed, 'the backend side after the client reset');
    const second = await tunnel('127.0.0.79', '/reset-backend');
    second.up.socket.resetAndDestroy();
    await second.c.whenClosed(WAIT_MS);
    await gw.access.waitFor(/"GET \/reset-backend HTTP\/1\.1" 101 /);
  });

  it('HTTP/2 is no open proxy: no SETTINGS_ENABLE_CONNECT_PROTOCOL, extended CONNECT and CONNECT to the backend refused; HTTP/1.1 CONNECT too', async () => {
    const before = backend.accepted;
    const raw = await connectRawH2({ port: gw.httpsPort, from: '127.0.0.80', servername: 'open.example' });
    try {
      const settings = await raw.waitFrame((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0);
      assert.ok(!settingsOf(settings).has(0x8), 'SETTINGS_ENABLE_CONNECT_PROTOCOL is not advertised');
      const extended: [string, string][] = [
        [':method', 'CONNECT'],
        [':protocol', 'websocket'],
        [':scheme', 'https'],
        [':path', '/ws'],
        [':authority', 'open.example'],
        ['sec-websocket-version', '13'],
      ];
      const plain: [string, string][] = [
        [':method', 'CONNECT'],
        [':authority', `127.0.0.1:${backend.port}`],
      ];
      raw.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, headerBlock(extended)));
      raw.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 3, headerBlock(plain)));
      // Extended CONNECT: a :protocol the server never enabled is malformed (RFC 8441 3): PROTOCOL_ERROR.
      const extendedAnswer = await raw.waitFrame((f) => f.streamId === 1 && f.type !== FRAME.WINDOW_UPDATE);
      assert.equal(extendedAnswer.type, FRAME.RST_STREAM);
      assert.equal(rstCode(extendedAnswer), H2_ERROR.PROTOCOL_ERROR);
      // Plain CONNECT: the gateway's 400 (0x8c: the static table's ":status 400").
      const plainAnswer = await raw.waitFrame((f) => f.streamId === 3 && f.type !== FRAME.WINDOW_UPDATE);
      assert.equal(plainAnswer.type, FRAME.HEADERS);
      assert.equal(plainAnswer.payload[0], 0x8c);
    } finally {
      raw.close();
    }
    await gw.access.waitFor(new RegExp(`"CONNECT 127\\.0\\.0\\.1:${backend.port} HTTP/2\\.0" 400 `));
    const h1 = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      payload: `CONNECT 127.0.0.1:${backend.port} HTTP/1.1\r\nHost: 127.0.0.1:${backend.port}\r\n\r\n`,
      timeoutMs: WAIT_MS,
    });
    assert.match(h1.received.toString('latin1'), /^HTTP\/1\.1 400 /);
    assert.equal(backend.accepted, before, 'nothing connected to the backend');
  });
});

/** The settings of a SETTINGS frame, by identifier. */
function settingsOf(f: Frame): Map<number, number> {
  const out = new Map<number, number>();
  for (let at = 0; at + 6 <= f.payload.length; at += 6)
    out.set(f.payload.readUInt16BE(at), f.payload.readUInt32BE(at + 2));
  return out;
}

describe('tunnels and the process: drain and max-worker-connections', () => {
  let backend: Backend;

  before(async () => {
    backend = await startBackend();
  });

  after(async () => {
    await backend?.close();
  });

  async function gateway(settings: Record<string, string>, drainTimeoutMs: number): Promise<TestGateway> {
    return startTestGateway(
      topologyOf([
        controllerConfigMap(settings),
        ...serviceWithEndpoints({ name: 'raw', ports: [backend.port] }),
        ingress({ name: 'raw', host: HOST, paths: [{ path: '/', service: 'raw', port: 80 }] }),
      ]),
      { drainTimeoutMs },
    );
  }

  async function open(port: number, path: string) {
    const c = await client(port, '127.0.0.81', upgrade(path));
    const up = await backend.next();
    up.socket.write(SWITCH);
    await c.until((got) => got.includes('\r\n\r\n'));
    assert.match(text(c), /^HTTP\/1\.1 101 /);
    return { c, up };
  }

  it('a drain (close) ends an open tunnel within the drain timeout, on both sides', async () => {
    const gw = await gateway({}, 1_000);
    const { c, up } = await open(gw.httpPort, '/drained');
    const started = performance.now();
    await gw.close();
    assert.ok(performance.now() - started < 1_000 + WAIT_MS);
    await c.whenClosed(WAIT_MS);
    await up.until(() => up.closed, 'the backend side after the drain');
  });

  it('open tunnels count against max-worker-connections: with 2 held, a third connection is closed at once', async () => {
    const gw = await gateway({ 'max-worker-connections': '2' }, 1_000);
    try {
      const one = await open(gw.httpPort, '/held-1');
      const two = await open(gw.httpPort, '/held-2');
      const was = await counterValue(gw.gateway, 'keepip_gateway_connections_closed_total', {
        reason: 'max_connections',
      });
      const third = await rawExchange({
        host: '127.0.0.1',
        port: gw.httpPort,
        payload: upgrade('/held-3'),
        timeoutMs: WAIT_MS,
      });
      assert.equal(third.received.length, 0);
      assert.equal(third.closedByServer, true);
      assert.equal(
        await counterValue(gw.gateway, 'keepip_gateway_connections_closed_total', {
          reason: 'max_connections',
        }),
        was + 1,
      );
      assert.ok(!backend.all.some((u) => u.head.includes('/held-3')));
      one.c.destroy();
      await one.up.until(() => one.up.closed, 'the first tunnel ended');
      await gw.access.waitFor(/"GET \/held-1 HTTP\/1\.1" 101 /);
      const again = await open(gw.httpPort, '/held-4');
      again.c.destroy();
      two.c.destroy();
    } finally {
      await gw.close();
    }
  });
});
