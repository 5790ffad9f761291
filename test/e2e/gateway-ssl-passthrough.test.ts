// ssl-passthrough over real sockets (ingress-nginx's test/e2e/settings/ssl_passthrough.go, and what
// keepip adds): with passthrough enabled, a TLS client naming a passthrough host talks to the backend's
// own TLS server through keepip (its certificate, its answer); other names get keepip's TLS as before;
// the client (the PROXY header's) goes through the "/" location's allowlist, and a refused one is
// closed before the backend sees a connection; endpoints are tried in turn; bytes flow both ways with
// half-closes; slow, oversized and garbage hellos are dropped with their code. Without the flag the
// annotation is reported and keepip terminates TLS.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { DEFAULT_CERTIFICATE_CN } from '../../src/gateway/tls.ts';
import { certificateFor } from '../fixtures/gateway/certificates.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { openRaw, refusingPort } from '../helpers/net.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const fixture = (name: string) =>
  Buffer.from(
    readFileSync(new URL(`../fixtures/client-hello/${name}.hex`, import.meta.url), 'utf8').trim(),
    'hex',
  );
/** A recorded ClientHello naming pass.example.com (openssl s_client), and one naming curl.example.com. */
const PASS_HELLO = fixture('openssl-sni-alpn');
const RAW_HELLO = fixture('curl-sni');
const RESET_MARKER = 'keepip-test: reset now';

/** The CN `openssl s_client` is shown for `servername`, or null when the connection was refused. */
async function peerCommonName(port: number, args: string[]): Promise<string | null> {
  const out = await runCommand(
    requireBinary('openssl'),
    ['s_client', '-brief', '-connect', `127.0.0.1:${port}`, ...args],
    { input: '', timeoutMs: 20_000 },
  );
  return /Peer certificate: .*CN ?= ?([^,\n]+)/.exec(out.stderr)?.[1]?.trim() ?? null;
}

/** A TLS client that first writes a PROXY v1 header naming `client` (the load balancer's job). */
function tlsThroughProxy(
  port: number,
  client: string,
  servername: string,
): Promise<{ cn: string; body: string }> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host: '127.0.0.1', port }, () => {
      raw.write(`PROXY TCP4 ${client} 127.0.0.1 40000 443\r\n`);
      const secure = tls.connect({ socket: raw, servername, rejectUnauthorized: false }, () => {
        const cn = String(secure.getPeerCertificate().subject?.CN ?? '');
        secure.write(`GET /proxied HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
        const chunks: Buffer[] = [];
        secure.on('data', (c: Buffer) => chunks.push(c));
        secure.on('end', () => resolve({ cn, body: Buffer.concat(chunks).toString() }));
      });
      secure.on('error', reject);
    });
    raw.on('error', reject);
  });
}

function passIngress(
  name: string,
  host: string,
  service: string,
  annotations: Record<string, string>,
): K8sObject {
  return ingress({
    name,
    host,
    paths: [{ path: '/', service, port: 443 }],
    annotations: { 'ssl-passthrough': 'true', ...annotations },
  });
}

describe('ssl-passthrough', () => {
  let backend: https.Server;
  let backendConnections = 0;
  let raw: net.Server;
  let gw: TestGateway;
  let viaProxy: TestGateway;
  let disabled: TestGateway;
  let slow: TestGateway;

  before(async () => {
    const backendCert = await certificateFor('pass-backend');
    // The backend terminates TLS itself and says who it is and whom it saw.
    backend = https.createServer({ cert: backendCert.cert, key: backendCert.key }, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ name: 'pass-backend', url: req.url, peer: req.socket.remoteAddress }));
    });
    backend.on('connection', () => {
      backendConnections += 1;
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    // A raw backend that echoes every byte back (with backpressure) and ends after the client's end.
    // Once RESET_MARKER has come through (anywhere in the stream), it resets the connection instead.
    raw = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => socket.destroy());
      let tail = '';
      socket.on('data', (chunk: Buffer) => {
        tail = (tail + chunk.toString('latin1')).slice(-RESET_MARKER.length * 2);
        if (tail.includes(RESET_MARKER)) socket.resetAndDestroy();
      });
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const term = await certificateFor('term.example.com');
    const objects = (backendPorts: number[]) => [
      ...serviceWithEndpoints({ name: 'pass-svc', ports: backendPorts, servicePort: 443 }),
      ...serviceWithEndpoints({
        name: 'raw-svc',
        ports: [(raw.address() as AddressInfo).port],
        servicePort: 443,
      }),
      tlsSecret('term-tls', term.cert, term.key),
      passIngress('pass', 'pass.example.com', 'pass-svc', {}),
      passIngress('raw', 'curl.example.com', 'raw-svc', {}),
      passIngress('guarded', 'a.example.com', 'pass-svc', { 'whitelist-source-range': '127.0.5.5/32' }),
      ingress({
        name: 'term',
        host: 'term.example.com',
        tlsSecret: 'term-tls',
        paths: [{ path: '/', service: 'pass-svc', port: 443 }],
      }),
    ];
    const backendPort = (backend.address() as AddressInfo).port;
    // A dead endpoint first: round robin starts there, and the next one is tried.
    gw = await startTestGateway(
      topologyOf(objects([await refusingPort(), backendPort]), { enableSslPassthrough: true }),
    );
    viaProxy = await startTestGateway(
      topologyOf(
        [
          ...objects([backendPort]),
          controllerConfigMap({ 'use-proxy-protocol': 'true', 'proxy-real-ip-cidr': '127.0.0.1/32' }),
        ],
        { enableSslPassthrough: true },
      ),
    );
    disabled = await startTestGateway(topologyOf(objects([backendPort])));
    slow = await startTestGateway(topologyOf(objects([backendPort]), { enableSslPassthrough: true }), {
      clientHeaderTimeoutMs: 500,
    });
  });

  after(async () => {
    for (const g of [gw, viaProxy, disabled, slow]) await g.close();
    backend.closeAllConnections();
    await new Promise((resolve) => backend.close(resolve));
    await new Promise((resolve) => raw.close(resolve));
  });

  test("curl through keepip gets the backend's certificate and answer; the next endpoint after a refused one", async () => {
    const port = gw.httpsPort;
    assert.equal(await peerCommonName(port, ['-servername', 'pass.example.com']), 'pass-backend');
    const curl = await runCommand(requireBinary('curl'), [
      '-sk',
      '--max-time',
      '20',
      '--resolve',
      `pass.example.com:${port}:127.0.0.1`,
      '-w',
      '\n%{http_code}',
      `https://pass.example.com:${port}/through`,
    ]);
    const [body, status] = curl.stdout.split('\n');
    assert.equal(status, '200', curl.stderr);
    assert.equal(JSON.parse(body!).name, 'pass-backend');
    assert.equal(JSON.parse(body!).url, '/through');
    await gw.errors.waitFor(
      /connect\(\) failed \(ECONNREFUSED\) while connecting to upstream for ssl-passthrough/,
    );
    const line = await gw.access.waitFor(
      /TCP 200 \d+ \d+ [\d.]+ "pass\.example\.com" "127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+" ssl-passthrough default\/pass$/,
    );
    assert.match(line, /^\[127\.0\.0\.1\] \[/);
  });

  test("an unknown name or a host without the annotation gets keepip's TLS as before", async () => {
    assert.equal(
      await peerCommonName(gw.httpsPort, ['-servername', 'other.example.com']),
      DEFAULT_CERTIFICATE_CN,
    );
    assert.equal(await peerCommonName(gw.httpsPort, ['-servername', 'term.example.com']), 'term.example.com');
    assert.equal(await peerCommonName(gw.httpsPort, ['-noservername']), DEFAULT_CERTIFICATE_CN);
  });

  test('passthrough not enabled: the annotation is reported and keepip terminates TLS', async () => {
    const issues = disabled.gateway
      .snapshot()
      .topology.issues.filter((i) => i.code === 'SSL_PASSTHROUGH_IGNORED');
    assert.deepEqual(issues.map((i) => i.origin?.name).sort(), ['guarded', 'pass', 'raw']);
    assert.match(issues[0]!.message, /--enable-ssl-passthrough/);
    assert.equal(
      await peerCommonName(disabled.httpsPort, ['-servername', 'pass.example.com']),
      DEFAULT_CERTIFICATE_CN,
    );
  });

  test('bytes both ways unchanged, with backpressure and half-closes passed on', async () => {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpsPort });
    const payload = randomBytes(4 * 1024 * 1024);
    conn.socket.write(RAW_HELLO);
    // 4 MiB each way through the echo; then our end is passed on, and the backend's end comes back.
    conn.socket.end(payload);
    await conn.whenClosed(30_000);
    const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const sent = Buffer.concat([RAW_HELLO, payload]);
    assert.equal(conn.received().length, sent.length);
    assert.equal(digest(conn.received()), digest(sent));
    await gw.access.waitFor(
      new RegExp(`TCP 200 ${sent.length} ${sent.length} [\\d.]+ "curl\\.example\\.com" .* default/raw$`),
    );
  });

  test("the backend's reset reaches the client as a reset, and the session is logged", async () => {
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpsPort });
    const errors: string[] = [];
    conn.socket.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
    conn.socket.write(RAW_HELLO);
    // The echo proves the relay is up before the backend resets it.
    await conn.until((got) => got.length >= RAW_HELLO.length);
    conn.socket.write(RESET_MARKER);
    await conn.whenClosed();
    assert.deepEqual(errors, ['ECONNRESET']);
    await gw.access.waitFor(
      new RegExp(
        `TCP 200 \\d+ ${RAW_HELLO.length + RESET_MARKER.length} [\\d.]+ "curl\\.example\\.com" .* default/raw$`,
      ),
    );
  });

  test("the PROXY header's client is the one the allowlist decides on; a refused one never reaches the backend", async () => {
    const port = viaProxy.httpsPort;
    const before = backendConnections;
    // Refused: closed with nothing passed on, and logged with the PROXY client.
    const denied = await openRaw({ host: '127.0.0.1', port });
    denied.socket.write(
      Buffer.concat([Buffer.from('PROXY TCP4 127.0.6.6 127.0.0.1 40000 443\r\n'), fixture('openssl-tls12')]),
    );
    await denied.whenClosed();
    await viaProxy.errors.waitFor(
      /access forbidden by rule .* while ssl-passthrough, connection closed, client: 127\.0\.6\.6, .*host: "a\.example\.com"/,
    );
    await viaProxy.access.waitFor(
      /^\[127\.0\.6\.6\] .* TCP 403 0 \d+ .* "a\.example\.com" "-" ssl-passthrough default\/guarded$/,
    );
    // Admitted: the allowlisted PROXY client gets the backend's TLS and answer.
    const admitted = await tlsThroughProxy(port, '127.0.5.5', 'a.example.com');
    assert.equal(admitted.cn, 'pass-backend');
    assert.match(admitted.body, /"url":"\/proxied"/);
    await viaProxy.access.waitFor(/^\[127\.0\.5\.5\] .* TCP 200 .* "a\.example\.com" .* default\/guarded$/);
    // The backend saw exactly one connection: the admitted one, none of the refused one.
    assert.equal(backendConnections - before, 1);
  });

  test('a slow hello (half of it, then silence) is dropped at the header deadline', async () => {
    const conn = await openRaw({ host: '127.0.0.1', port: slow.httpsPort });
    conn.socket.write(PASS_HELLO.subarray(0, Math.floor(PASS_HELLO.length / 2)));
    await conn.whenClosed(15_000);
    assert.equal(conn.received().length, 0);
  });

  test('an oversized or garbage hello is closed with its code in the error log', async () => {
    const big = await openRaw({ host: '127.0.0.1', port: gw.httpsPort });
    // A handshake message declaring 64 KiB: refused from its first bytes.
    big.socket.write(Buffer.from([0x16, 3, 1, 0x40, 0x00, 1, 0x01, 0x00, 0x00]));
    await big.whenClosed();
    await gw.errors.waitFor(
      /TLS_HELLO_TOO_BIG: a ClientHello of 65540 bytes .* while reading the TLS ClientHello, connection closed, client: 127\.0\.0\.1/,
    );
    const garbage = await openRaw({ host: '127.0.0.1', port: gw.httpsPort });
    garbage.socket.write(
      Buffer.concat([PASS_HELLO.subarray(0, 9), Buffer.alloc(PASS_HELLO.length - 9, 0xff)]),
    );
    await garbage.whenClosed();
    await gw.errors.waitFor(/TLS_HELLO_MALFORMED: .* while reading the TLS ClientHello/);
  });
});
