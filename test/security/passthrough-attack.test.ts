// ssl-passthrough (--enable-ssl-passthrough, `ssl-passthrough: "true"`) attacked from outside: the
// ClientHello that decides where a connection goes, split, re-framed, re-cased, with a trailing dot,
// with odd server_name lists, truncated, followed by a FIN; a TLS session terminated for one host that
// names a passthrough host in Host (and the reverse); PROXY headers from trusted and untrusted peers;
// stalled hellos against max-worker-connections; passthrough hosts whose backend is down or has no
// endpoints. What reaches each backend is read from the bytes raw recording backends got.
// The reference is ingress-nginx's passthrough proxy (pkg/tcpproxy/tcp.go: the SNI read in Go, an exact
// name match, everything else handed to nginx's local HTTPS server with a PROXY header) and its
// template (internal/ingress/controller/template/template.go: a passthrough backend's server block
// proxies with https://).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { type LineCollector, lineCollector } from '../helpers/lines.ts';
import { listenTracked, openRaw, refusingPort } from '../helpers/net.ts';
import { exchange } from './helpers.ts';

/** A backend that records every connection's bytes; HTTP gets a 200 naming it, anything else `got:<n>` at EOF. */
interface Recorder {
  name: string;
  port: number;
  /** `<name> accepted`, `<name> read <bytes so far>`, `<name> http <request line>`, `<name> eof <bytes>`, `<name> reset` */
  events: LineCollector;
  connections: Buffer[][];
  close(): Promise<void>;
}

async function startRecorder(name: string): Promise<Recorder> {
  const events = lineCollector();
  const connections: Buffer[][] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const chunks: Buffer[] = [];
    connections.push(chunks);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      events.push(`${name} ${error.code === 'ECONNRESET' ? 'reset' : 'error'}`);
      socket.destroy();
    });
    events.push(`${name} accepted`);
    let answered = false;
    let total = 0;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      events.push(`${name} read ${total}`);
      const text = Buffer.concat(chunks).toString('latin1');
      if (answered || !/^[A-Z]+ /.test(text) || !text.includes('\r\n\r\n')) return;
      answered = true;
      events.push(`${name} http ${text.slice(0, text.indexOf('\r\n'))}`);
      const body = `backend:${name}`;
      socket.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
    socket.on('end', () => {
      const got = Buffer.concat(chunks);
      events.push(`${name} eof ${got.length}`);
      if (!answered) socket.end(`got:${got.length}`);
    });
  });
  const { port, close } = await listenTracked(server);
  return {
    name,
    port,
    events,
    connections,
    close,
  };
}

/** The bytes of connection `index` a recorder got. */
const bytesOf = (r: Recorder, index: number) => Buffer.concat(r.connections[index] ?? []);

// ---- ClientHellos built by hand -------------------------------------------------------------------

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);

/** A server_name extension (type 0) holding these [name_type, name] entries. */
function serverName(...entries: [number, Buffer | string][]): [number, Buffer] {
  const list = Buffer.concat(
    entries.map(([type, name]) => {
      const bytes = Buffer.from(name);
      return Buffer.concat([Buffer.from([type]), u16(bytes.length), bytes]);
    }),
  );
  return [0, Buffer.concat([u16(list.length), list])];
}

/** A ClientHello handshake message (TLS 1.2 legacy fields, one suite) carrying `extensions`. */
function helloMessage(extensions: [number, Buffer][]): Buffer {
  const ext = Buffer.concat(
    extensions.map(([type, data]) => Buffer.concat([u16(type), u16(data.length), data])),
  );
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    Buffer.from([0]),
    Buffer.from([0, 2, 0x13, 0x01]),
    Buffer.from([1, 0]),
    u16(ext.length),
    ext,
  ]);
  return Buffer.concat([
    Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]),
    body,
  ]);
}

/** `message` in TLS handshake records of at most `size` bytes each. */
function records(message: Buffer, size = 16_384): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < message.length; at += size) {
    const part = message.subarray(at, Math.min(at + size, message.length));
    out.push(Buffer.from([0x16, 3, 1]), u16(part.length), part);
  }
  return Buffer.concat(out);
}

/** A one-record hello naming `name` (as one host_name entry). */
const helloFor = (name: string) => records(helloMessage([serverName([0, name])]));

// ---- the gateways ---------------------------------------------------------------------------------

const GUARD_CLIENT = '127.0.5.5';

function passIngress(name: string, host: string, service: string, extra: Record<string, string> = {}) {
  return ingress({
    name,
    host,
    paths: [{ path: '/', service, port: 443 }],
    annotations: { 'ssl-passthrough': 'true', ...extra },
  });
}

interface Backends {
  pass: Recorder;
  guard: Recorder;
  term: Recorder;
}

/** pass.example.com and a.example.com (allowlisted) pass through; term.example.com is terminated by keepip. */
async function objects(b: Backends): Promise<K8sObject[]> {
  return [
    ...serviceWithEndpoints({ name: 'pass-svc', ports: [b.pass.port], servicePort: 443 }),
    ...serviceWithEndpoints({ name: 'guard-svc', ports: [b.guard.port], servicePort: 443 }),
    ...serviceWithEndpoints({ name: 'term-svc', ports: [b.term.port] }),
    ...serviceWithEndpoints({ name: 'dead-svc', ports: [await refusingPort()], servicePort: 443 }),
    ...serviceWithEndpoints({ name: 'empty-svc', ports: [], servicePort: 443 }),
    // The recorder never answers TLS: a request fronted to this host (proxied with https://, as
    // ingress-nginx does) waits out the upstream handshake, bounded by proxy-connect-timeout.
    passIngress('pass', 'pass.example.com', 'pass-svc', { 'proxy-connect-timeout': '1' }),
    passIngress('guarded', 'a.example.com', 'guard-svc', { 'whitelist-source-range': `${GUARD_CLIENT}/32` }),
    passIngress('dead', 'dead.example.com', 'dead-svc'),
    passIngress('empty', 'empty.example.com', 'empty-svc'),
    ingress({
      name: 'term',
      host: 'term.example.com',
      paths: [{ path: '/', service: 'term-svc', port: 80 }],
    }),
  ];
}

/** One raw connection from `from`: `bytes` (then FIN when `end`); resolves with what came back once closed. */
async function rawSession(port: number, from: string, bytes: Buffer, end = false) {
  const conn = await openRaw({ host: '127.0.0.1', port, localAddress: from });
  if (end) conn.socket.end(bytes);
  else conn.socket.write(bytes);
  return conn;
}

/** TLS terminated by keepip for `servername`, then one HTTP/1.1 request naming `host`: the raw answer. */
function tlsRequest(port: number, from: string, servername: string, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host: '127.0.0.1', port, localAddress: from });
    const secure = tls.connect({ socket: raw, servername, rejectUnauthorized: false }, () =>
      secure.write(`GET /fronted HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    raw.on('error', reject);
    const chunks: Buffer[] = [];
    secure.on('data', (c: Buffer) => chunks.push(c));
    secure.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    secure.on('error', reject);
  });
}

describe('ssl-passthrough under attack', () => {
  let b: Backends;
  let gw: TestGateway;

  before(async () => {
    b = {
      pass: await startRecorder('pass'),
      guard: await startRecorder('guard'),
      term: await startRecorder('term'),
    };
    gw = await startTestGateway(topologyOf(await objects(b), { enableSslPassthrough: true }));
  });

  after(async () => {
    await gw.close();
    for (const r of Object.values(b)) await r.close();
  });

  it('a hello written a byte at a time over three TLS records goes byte for byte to the passthrough backend, with what follows it', async () => {
    const before = b.pass.connections.length;
    const hello = records(helloMessage([serverName([0, 'pass.example.com'])]), 30);
    const behind = Buffer.from('GET / HTTP/1.1\r\nHost: term.example.com\r\n\r\n');
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpsPort });
    for (const byte of hello) await new Promise((resolve) => conn.socket.write(Buffer.from([byte]), resolve));
    conn.socket.end(behind);
    const sent = Buffer.concat([hello, behind]);
    await conn.whenClosed();
    assert.equal(conn.received().toString('latin1'), `got:${sent.length}`);
    assert.deepEqual(bytesOf(b.pass, before), sent);
    // The HTTP request behind a passthrough name is the backend's: keepip never routed it.
    assert.equal(b.term.connections.length, 0);
    // A 12 KiB hello (a padding extension) over two records, written at once: the same.
    const big = records(
      helloMessage([serverName([0, 'pass.example.com']), [21, Buffer.alloc(12_000)]]),
      9_000,
    );
    const whole = await rawSession(gw.httpsPort, '127.0.0.1', big, true);
    await whole.whenClosed();
    assert.equal(whole.received().toString('latin1'), `got:${big.length}`);
    assert.deepEqual(bytesOf(b.pass, before + 1), big);
  });

  it("the name's case does not get around the allowlist: A.Example.COM from outside it is closed before the backend", async () => {
    const refused = await rawSession(gw.httpsPort, '127.0.0.1', helloFor('A.Example.COM'));
    await refused.whenClosed();
    assert.equal(refused.received().length, 0);
    await gw.access.waitFor(
      /^\[127\.0\.0\.1\] .* TCP 403 0 \d+ .* "a\.example\.com" "-" ssl-passthrough default\/guarded$/,
    );
    assert.equal(b.guard.connections.length, 0);
    // The same name from the allowlisted client is the passthrough host's.
    const admitted = await rawSession(gw.httpsPort, GUARD_CLIENT, helloFor('A.Example.COM'), true);
    await admitted.whenClosed();
    assert.equal(admitted.received().toString('latin1'), `got:${helloFor('A.Example.COM').length}`);
    assert.equal(b.guard.connections.length, 1);
  });

  it("other names (trailing dot, another host's SNI) get keepip's TLS, and a request naming the host there still meets its allowlist", async () => {
    const before = b.guard.connections.length;
    for (const servername of ['a.example.com.', 'term.example.com', 'pass.example.com.']) {
      const answer = await tlsRequest(gw.httpsPort, '127.0.0.1', servername, 'a.example.com');
      assert.match(answer, /^HTTP\/1\.1 403 /, servername);
    }
    await gw.errors.waitFor(
      /access forbidden by rule, client: 127\.0\.0\.1, server: a\.example\.com, request: "GET \/fronted/,
    );
    assert.equal(b.guard.connections.length, before);
  });

  it("a request fronted to a passthrough host (another host's SNI, or plain HTTP) never reaches its backend in cleartext: ingress-nginx proxies it with https://", async () => {
    const before = b.pass.connections.length;
    const fronted = await tlsRequest(gw.httpsPort, '127.0.0.1', 'term.example.com', 'pass.example.com');
    const plain = await exchange(
      gw.httpPort,
      '127.0.0.1',
      'GET /plain HTTP/1.1\r\nHost: pass.example.com\r\nAuthorization: Basic c2VjcmV0\r\nConnection: close\r\n\r\n',
    );
    const cleartext = b.pass.connections
      .slice(before)
      .map((chunks) => Buffer.concat(chunks))
      .filter((bytes) => bytes.length > 0 && bytes[0] !== 0x16)
      .map((bytes) => bytes.toString('latin1').split('\r\n')[0]);
    assert.deepEqual(
      cleartext,
      [],
      `answers: ${fronted.split('\r\n')[0]} / ${plain.raw.toString('latin1').split('\r\n')[0]}`,
    );
  });

  it('hostile server_name lists and an SSLv2-style hello are closed unread with their code; no backend sees a byte', async () => {
    const sslv2 = Buffer.concat([
      Buffer.from([0x80, 28, 0x01, 0x03, 0x01, 0, 3, 0, 0, 0, 16]),
      Buffer.from([0x00, 0x00, 0x2f]),
      Buffer.alloc(16, 9),
    ]);
    const cases: [string, Buffer][] = [
      ['NUL in the name', helloFor('pass.example.com\u0000.evil')],
      ['a non-ASCII name', helloFor('päss.example.com')],
      ['an empty name', helloFor('')],
      [
        'two host_names',
        records(helloMessage([serverName([0, 'term.example.com'], [0, 'pass.example.com'])])),
      ],
      [
        'two server_name extensions',
        records(helloMessage([serverName([0, 'term.example.com']), serverName([0, 'pass.example.com'])])),
      ],
      ['SSLv2', sslv2],
    ];
    const seen = Object.values(b).map((r) => r.connections.length);
    const logged = () =>
      gw.errors.lines.filter((l) =>
        /TLS_HELLO_(MALFORMED|NOT_HANDSHAKE): .* while reading the TLS ClientHello/.test(l),
      ).length;
    const first = logged();
    for (const [what, bytes] of cases) {
      const conn = await rawSession(gw.httpsPort, '127.0.0.1', bytes);
      await conn.whenClosed();
      assert.equal(conn.received().length, 0, what);
    }
    assert.equal(logged() - first, cases.length);
    assert.deepEqual(
      Object.values(b).map((r) => r.connections.length),
      seen,
    );
  });

  it('a server_name entry of another type than host_name is refused in either order (OpenSSL refuses it, nginx reads no name), an IP literal is no passthrough name', async () => {
    const before = b.pass.connections.length;
    for (const entries of [
      [
        [1, 'pass.example.com'],
        [0, 'term.example.com'],
      ],
      [
        [1, 'term.example.com'],
        [0, 'pass.example.com'],
      ],
    ] as [number, string][][]) {
      const conn = await rawSession(
        gw.httpsPort,
        '127.0.0.1',
        records(helloMessage([serverName(...entries)])),
      );
      await conn.whenClosed();
      assert.equal(conn.received().length, 0, JSON.stringify(entries));
    }
    const literal = await rawSession(gw.httpsPort, '127.0.0.1', helloFor('127.0.0.1'));
    await literal.whenClosed();
    assert.equal(b.pass.connections.length, before);
  });

  it('a truncated hello followed by a FIN is closed at once (no header deadline to wait for), nothing dialled', async () => {
    const seen = Object.values(b).map((r) => r.connections.length);
    const hello = helloFor('pass.example.com');
    const conn = await rawSession(gw.httpsPort, '127.0.0.1', hello.subarray(0, hello.length - 1), true);
    // The default client-header-timeout is 60 s: a close within this bound is the FIN's doing.
    await conn.whenClosed(15_000);
    assert.equal(conn.received().length, 0);
    assert.deepEqual(
      Object.values(b).map((r) => r.connections.length),
      seen,
    );
  });

  it('a whole hello and a FIN in one write: the backend gets the hello and the end, and its answer comes back', async () => {
    const before = b.pass.events.lines.length;
    const hello = helloFor('pass.example.com');
    const conn = await rawSession(gw.httpsPort, '127.0.0.1', hello, true);
    await conn.whenClosed();
    assert.equal(conn.received().toString('latin1'), `got:${hello.length}`);
    await b.pass.events.wait(new RegExp(`^pass eof ${hello.length}$`), { from: before });
    await gw.access.waitFor(
      new RegExp(
        `TCP 200 ${`got:${hello.length}`.length} ${hello.length} .* "pass\\.example\\.com" .* default/pass$`,
      ),
    );
  });

  it("a client's reset reaches the backend as a reset once the tunnel is up, and the session is logged", async () => {
    const before = b.pass.events.lines.length;
    const hello = helloFor('pass.example.com');
    const conn = await rawSession(gw.httpsPort, '127.0.0.1', hello);
    await b.pass.events.wait(new RegExp(`^pass read ${hello.length}$`), { from: before });
    conn.socket.resetAndDestroy();
    await b.pass.events.wait(/^pass reset$/, { from: before });
    assert.ok(!b.pass.events.lines.slice(before).some((l) => l.startsWith('pass eof')));
    await gw.access.waitFor(
      new RegExp(`TCP 200 0 ${hello.length} .* "pass\\.example\\.com" .* default/pass$`),
    );
  });

  it('a passthrough host whose endpoint refuses, or which has none: the client is closed (502 logged), and the next client is served', async () => {
    for (const host of ['dead.example.com', 'empty.example.com']) {
      const conn = await rawSession(gw.httpsPort, '127.0.0.1', helloFor(host));
      await conn.whenClosed();
      assert.equal(conn.received().length, 0, host);
      await gw.access.waitFor(
        new RegExp(`TCP 502 0 \\d+ .* "${host.replaceAll('.', '\\.')}" .* ssl-passthrough`),
      );
    }
    await gw.errors.waitFor(
      /connect\(\) failed \(ECONNREFUSED\) while connecting to upstream for ssl-passthrough.*host: "dead\.example\.com"/,
    );
    await gw.errors.waitFor(/no live upstreams while ssl-passthrough.*host: "empty\.example\.com"/);
    const hello = helloFor('pass.example.com');
    const next = await rawSession(gw.httpsPort, '127.0.0.1', hello, true);
    await next.whenClosed();
    assert.equal(next.received().toString('latin1'), `got:${hello.length}`);
  });
});

describe('ssl-passthrough behind a PROXY-protocol load balancer (127.0.0.1 trusted)', () => {
  let b: Backends;
  let gw: TestGateway;

  before(async () => {
    b = {
      pass: await startRecorder('pass'),
      guard: await startRecorder('guard'),
      term: await startRecorder('term'),
    };
    const settings = controllerConfigMap({
      'use-proxy-protocol': 'true',
      'proxy-real-ip-cidr': '127.0.0.1/32',
    });
    gw = await startTestGateway(
      topologyOf([...(await objects(b)), settings], { enableSslPassthrough: true }),
    );
  });

  after(async () => {
    await gw.close();
    for (const r of Object.values(b)) await r.close();
  });

  it("the backend gets the hello first and never the PROXY header; the allowlist decides on the header's client", async () => {
    const hello = helloFor('a.example.com');
    const header = `PROXY TCP4 ${GUARD_CLIENT} 127.0.0.1 40000 443\r\n`;
    const conn = await rawSession(
      gw.httpsPort,
      '127.0.0.1',
      Buffer.concat([Buffer.from(header), hello]),
      true,
    );
    await conn.whenClosed();
    assert.equal(conn.received().toString('latin1'), `got:${hello.length}`);
    assert.deepEqual(bytesOf(b.guard, 0), hello);
    await gw.access.waitFor(/^\[127\.0\.5\.5\] .* TCP 200 .* "a\.example\.com" .* default\/guarded$/);
  });

  it("an untrusted peer's PROXY header naming an allowlisted client is not believed: closed, the backend never dialled", async () => {
    const before = b.guard.connections.length;
    const header = `PROXY TCP4 ${GUARD_CLIENT} 127.0.0.1 40000 443\r\n`;
    const forged = await rawSession(
      gw.httpsPort,
      '127.0.0.2',
      Buffer.concat([Buffer.from(header), helloFor('a.example.com')]),
    );
    await forged.whenClosed();
    // Without a header at all, even for a host without an allowlist.
    const bare = await rawSession(gw.httpsPort, '127.0.0.2', helloFor('pass.example.com'));
    await bare.whenClosed();
    assert.equal(forged.received().length + bare.received().length, 0);
    await gw.errors.waitFor(/PROXY protocol peer 127\.0\.0\.2 is not a trusted proxy/);
    assert.equal(b.guard.connections.length, before);
    assert.equal(b.pass.connections.length, 0);
  });
});

describe('ssl-passthrough with max-worker-connections 2, client-header-timeout 2 s, error-log-level info, and ConfigMap source rules', () => {
  let b: Backends;
  let gw: TestGateway;

  before(async () => {
    b = {
      pass: await startRecorder('pass'),
      guard: await startRecorder('guard'),
      term: await startRecorder('term'),
    };
    const settings = controllerConfigMap({
      'max-worker-connections': '2',
      'whitelist-source-range': '127.0.5.0/24',
      'block-cidrs': '127.0.5.9/32',
      'error-log-level': 'info',
    });
    gw = await startTestGateway(
      topologyOf([...(await objects(b)), settings], { enableSslPassthrough: true }),
      {
        clientHeaderTimeoutMs: 2_000,
      },
    );
  });

  after(async () => {
    await gw.close();
    for (const r of Object.values(b)) await r.close();
  });

  it('stalled half-hellos hold worker connections only until the header deadline; then a passthrough client is served', async () => {
    const half = helloFor('pass.example.com').subarray(0, 20);
    const stalled = [
      await rawSession(gw.httpsPort, '127.0.5.1', half),
      await rawSession(gw.httpsPort, '127.0.5.2', half),
    ];
    // Both slots are taken: a third connection is closed at once, with nginx's alert.
    const third = await rawSession(gw.httpsPort, '127.0.5.3', helloFor('pass.example.com'));
    await third.whenClosed();
    await gw.errors.waitFor(/2 worker_connections are not enough, connection from 127\.0\.5\.3:\d+ closed/);
    for (const conn of stalled) await conn.whenClosed(15_000);
    assert.equal(b.pass.connections.length, 0);
    const hello = helloFor('pass.example.com');
    const served = await rawSession(gw.httpsPort, '127.0.5.4', hello, true);
    await served.whenClosed();
    assert.equal(served.received().toString('latin1'), `got:${hello.length}`);
  });

  it("the ConfigMap's whitelist-source-range and block-cidrs hold for a passthrough host without annotations", async () => {
    const before = b.pass.connections.length;
    for (const from of ['127.0.0.1', '127.0.5.9']) {
      const refused = await rawSession(gw.httpsPort, from, helloFor('pass.example.com'));
      await refused.whenClosed();
      assert.equal(refused.received().length, 0, from);
      await gw.access.waitFor(
        new RegExp(`^\\[${from.replaceAll('.', '\\.')}\\] .* TCP 403 0 .* default/pass$`),
      );
    }
    assert.equal(b.pass.connections.length, before);
  });

  it("a ClientHello cut short by the client's FIN leaves nginx's info line naming the client; nothing dialled", async () => {
    const before = b.pass.connections.length;
    const hello = helloFor('pass.example.com');
    const cut = await rawSession(gw.httpsPort, '127.0.5.5', hello.subarray(0, hello.length - 3), true);
    await cut.whenClosed(15_000);
    await gw.errors.waitFor(
      /\[info\] \d+#\d+: \*\d+ client closed connection while SSL handshaking, client: 127\.0\.5\.5, server: /,
    );
    assert.equal(cut.received().length, 0);
    assert.equal(b.pass.connections.length, before);
  });
});
