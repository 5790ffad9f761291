// TLS, client certificates and SNI versus Host on the HTTPS listener, attacked from outside: a handshake
// for one server and requests for another (keep-alive, HTTP/2, absolute-form), ssl-client-* headers
// forged by the client, the verify modes with expired, revoked and foreign certificates, ssl-redirect
// and HSTS with a hostile Host or a forged X-Forwarded-Proto, and TLS sessions carried across hosts
// with different client CAs. What reaches the backend is read from the bytes a tap records.
// The reference is nginx (ngx_http_set_virtual_server's 421, ngx_http_process_request's 495/496,
// ngx_ssl_verify_error_optional) with ingress-nginx's template (ssl_crl from the Secret's ca.crl).
import assert from 'node:assert/strict';
import http from '../../src/node-http.ts';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
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
import { completeResponses, rawExchange } from '../helpers/net.ts';
import { makePki } from '../helpers/pki.ts';
import { startTap, type Tap } from './helpers.ts';

interface Pair {
  key: string;
  cert: string;
}

interface Pki {
  ca: string;
  otherCa: string;
  crl: string;
  server: Pair;
  client: Pair;
  /** CN=admin.evil, signed by the CA. */
  evilAdmin: Pair;
  expired: Pair;
  revoked: Pair;
  stranger: Pair;
  /** Signed by an intermediate CA the CA signed; `cert` holds the leaf then the intermediate. */
  chained: Pair;
  /** Signed by a second intermediate under the first: leaf, second, first. */
  deep: Pair;
}

/** A CA (and its CRL, revoking one certificate), another CA, leaves, intermediates. */
async function testPki(): Promise<Pki> {
  const intermediate = 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n';
  const client = '/CN=client';
  const { certs, chains, crls } = await makePki({
    certificates: [
      { name: 'ca' },
      { name: 'other', subject: '/CN=other-ca' },
      { name: 'server', subject: '/CN=server.tls.test' },
      { name: 'client', issuer: 'ca' },
      { name: 'evil', issuer: 'ca', subject: '/CN=admin.evil' },
      { name: 'revoked', issuer: 'ca', subject: client, revoked: true },
      { name: 'expired', issuer: 'ca', subject: client, dates: ['20200101000000Z', '20200102000000Z'] },
      { name: 'stranger', issuer: 'other', subject: client },
      { name: 'intermediate', issuer: 'ca', extensions: intermediate },
      { name: 'intermediate2', issuer: 'intermediate', extensions: intermediate },
      { name: 'chained', issuer: 'intermediate', subject: client },
      { name: 'deep', issuer: 'intermediate2', subject: client },
    ],
    crls: ['ca'],
  });
  return {
    ca: certs.ca.cert,
    otherCa: certs.other.cert,
    crl: crls.ca,
    server: certs.server,
    client: certs.client,
    evilAdmin: certs.evil,
    expired: certs.expired,
    revoked: certs.revoked,
    stranger: certs.stranger,
    chained: { key: certs.chained.key, cert: chains.chained },
    deep: { key: certs.deep.key, cert: chains.deep },
  };
}

/** A kubernetes.io/tls Secret with the server pair and the client CA (and CRL) of auth-tls-secret. */
function authSecret(name: string, server: Pair, files: Record<string, string>): K8sObject {
  const data = { 'tls.crt': server.cert, 'tls.key': server.key, ...files };
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: 'default' },
    type: 'kubernetes.io/tls',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
}

/** `<name>.tls.test` with the server pair, to the `app` Service. */
function host(name: string, secret: string, annotations: Record<string, string>, path = '/'): K8sObject {
  return ingress({
    name,
    host: `${name}.tls.test`,
    tlsSecret: secret,
    paths: [{ path, service: 'app', port: 80 }],
    annotations,
  });
}

interface Answer {
  status: number;
  head: string;
}

/** The complete HTTP/1.1 responses in `raw` (Content-Length framed), in order. */
function answersOf(raw: Buffer): Answer[] {
  const out: Answer[] = [];
  let at = 0;
  for (let n = completeResponses(raw); n > 0; n--) {
    const end = raw.indexOf('\r\n\r\n', at);
    const head = raw.subarray(at, end).toString('latin1');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    out.push({ status: Number(head.slice(9, 12)), head });
    at = end + 4 + length;
  }
  return out;
}

interface TlsOptions {
  servername?: string;
  cert?: Pair;
  session?: Buffer;
  maxVersion?: tls.SecureVersion;
}

interface TlsConnection {
  /** Sends one request head and resolves with its answer (requests go one at a time). */
  send(head: string): Promise<Answer>;
  reused(): boolean;
  /** The last session (ticket) the server gave; resolves once the server closed the connection. */
  closed(): Promise<Buffer | undefined>;
  destroy(): void;
}

/** A TLS connection to the gateway's HTTPS port; `servername` '' sends no SNI. */
function connectTls(port: number, options: TlsOptions): Promise<TlsConnection> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let session: Buffer | undefined;
    let waiter: (() => void) | null = null;
    let reused = false;
    const socket = tls.connect(
      {
        host: '127.0.0.1',
        port,
        rejectUnauthorized: false,
        maxVersion: options.maxVersion ?? 'TLSv1.3',
        ...(options.servername === '' ? {} : { servername: options.servername }),
        ...(options.cert ?? {}),
        ...(options.session === undefined ? {} : { session: options.session }),
      },
      () => {
        reused = socket.isSessionReused();
        resolve(connection);
      },
    );
    const isClosed = new Promise<Buffer | undefined>((done) => socket.on('close', () => done(session)));
    socket.on('session', (s: Buffer) => {
      session = s;
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      waiter?.();
    });
    socket.on('close', () => waiter?.());
    socket.on('error', reject);
    const timeout = setTimeout(() => socket.destroy(new Error('no answer within 10 s')), 10_000);
    socket.on('close', () => clearTimeout(timeout));
    const connection: TlsConnection = {
      send(head) {
        const before = answersOf(Buffer.concat(chunks)).length;
        socket.write(head);
        return new Promise((done, fail) => {
          waiter = () => {
            const answers = answersOf(Buffer.concat(chunks));
            if (answers.length > before) done(answers[before] as Answer);
            else if (socket.destroyed) fail(new Error('closed before an answer'));
          };
        });
      },
      reused: () => reused,
      closed: () => isClosed,
      destroy: () => socket.destroy(),
    };
  });
}

/** A GET head; `lines` are extra header lines (`Name: value`), duplicates and odd case kept. */
const req = (hostHeader: string, lines: readonly string[] = [], target = '/') =>
  `GET ${target} HTTP/1.1\r\nHost: ${hostHeader}\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;

/** One request on a fresh TLS connection (SNI = the Host unless given). */
async function once(
  port: number,
  hostHeader: string,
  options: TlsOptions & { lines?: readonly string[]; target?: string } = {},
): Promise<Answer> {
  const connection = await connectTls(port, { servername: hostHeader, ...options });
  try {
    return await connection.send(req(hostHeader, options.lines, options.target));
  } finally {
    connection.destroy();
  }
}

/** The request heads the backend received that carry `x-mark: <mark>` (lower-cased for matching). */
function upstreamHeads(tap: Tap, mark: string): string[] {
  const text = Buffer.concat(tap.upstream()).toString('latin1');
  return text.split('\r\n\r\n').filter((head) => head.toLowerCase().includes(`\r\nx-mark: ${mark}`));
}

/** The values of header `name` (any case) in one upstream request head. */
function headerValues(head: string, name: string): string[] {
  return head
    .split('\r\n')
    .slice(1)
    .filter((line) => line.toLowerCase().startsWith(`${name}:`))
    .map((line) => line.slice(name.length + 1).trim());
}

/** A backend that answers every request with a small 200. */
async function startBackend(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' }).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function topology(pki: Pki, tapPort: number) {
  const x = 'default/authx';
  return topologyOf([
    controllerConfigMap({ 'error-log-level': 'info', 'ssl-session-tickets': 'true' }),
    ...serviceWithEndpoints({ name: 'app', ports: [tapPort] }),
    authSecret('authx', pki.server, { 'ca.crt': pki.ca }),
    authSecret('authxcrl', pki.server, { 'ca.crt': pki.ca, 'ca.crl': pki.crl }),
    authSecret('authy', pki.server, { 'ca.crt': pki.otherCa }),
    host('plain', 'authx', {}),
    host('on', 'authx', { 'auth-tls-secret': x }),
    host('plainok', 'authx', { 'auth-tls-secret': x, 'ssl-redirect': 'false' }),
    host('ony', 'authy', { 'auth-tls-secret': 'default/authy' }),
    host('pass', 'authx', {
      'auth-tls-secret': x,
      'auth-tls-verify-client': 'optional',
      'auth-tls-pass-certificate-to-upstream': 'true',
      'auth-url': `http://127.0.0.1:${tapPort}/auth`,
    }),
    host('noca', 'authx', { 'auth-tls-secret': x, 'auth-tls-verify-client': 'optional_no_ca' }),
    host('crl', 'authxcrl', { 'auth-tls-secret': 'default/authxcrl' }),
    host('depth1', 'authx', { 'auth-tls-secret': x, 'auth-tls-verify-depth': '1' }),
    host('depth2', 'authx', { 'auth-tls-secret': x, 'auth-tls-verify-depth': '2' }),
    host('cn', 'authx', { 'auth-tls-secret': x, 'auth-tls-match-cn': 'CN=admin' }),
    host('cnanchored', 'authx', { 'auth-tls-secret': x, 'auth-tls-match-cn': '^CN=admin$' }),
    // One server, two Ingresses: only the later one carries auth-tls.
    ingress({
      name: 'shared-open',
      host: 'shared.tls.test',
      tlsSecret: 'authx',
      paths: [{ path: '/open', service: 'app', port: 80 }],
      createdAt: '2024-01-01T00:00:00Z',
    }),
    ingress({
      name: 'shared-mtls',
      host: 'shared.tls.test',
      tlsSecret: 'authx',
      paths: [{ path: '/mtls', service: 'app', port: 80 }],
      annotations: { 'auth-tls-secret': x },
      createdAt: '2024-06-01T00:00:00Z',
    }),
    ingress({
      name: 'wild',
      host: '*.wild.tls.test',
      tlsSecret: 'authx',
      paths: [{ path: '/', service: 'app', port: 80 }],
    }),
  ]);
}

/** One HTTP/2 session with `servername`; each stream's :status by :authority, in order. */
async function h2Statuses(
  port: number,
  servername: string,
  authorities: readonly string[],
): Promise<number[]> {
  const session = http2.connect(`https://127.0.0.1:${port}`, { servername, rejectUnauthorized: false });
  try {
    const statuses: number[] = [];
    for (const authority of authorities) {
      statuses.push(
        await new Promise<number>((resolve, reject) => {
          const stream = session.request({
            ':path': '/',
            ':authority': authority,
            'x-mark': `h2-${authority}`,
          });
          let status = 0;
          stream.on('response', (h) => {
            status = Number(h[':status']);
          });
          stream.on('data', () => {});
          stream.on('end', () => resolve(status));
          stream.on('error', reject);
          session.on('error', reject);
        }),
      );
    }
    return statuses;
  } finally {
    session.close();
  }
}

describe('TLS, client certificates and SNI versus Host', () => {
  let pki: Pki;
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let tap: Tap;
  let gw: TestGateway;

  before(async () => {
    pki = await testPki();
    backend = await startBackend();
    tap = await startTap(backend.port);
    gw = await startTestGateway(topology(pki, tap.port));
  });

  after(async () => {
    await gw?.close();
    await tap?.close();
    await backend?.close();
  });

  it('a kept-alive connection negotiated for a host without auth-tls cannot switch Host to one with it: 421, never proxied', async () => {
    const connection = await connectTls(gw.httpsPort, { servername: 'plain.tls.test' });
    try {
      assert.equal((await connection.send(req('plain.tls.test', ['x-mark: ka-1']))).status, 200);
      assert.equal((await connection.send(req('on.tls.test', ['x-mark: ka-2']))).status, 421);
      assert.equal((await connection.send(req('pass.tls.test', ['x-mark: ka-3']))).status, 421);
      assert.equal((await connection.send(req('shared.tls.test', ['x-mark: ka-4'], '/open'))).status, 421);
      assert.equal((await connection.send(req('plain.tls.test', ['x-mark: ka-5']))).status, 200);
    } finally {
      connection.destroy();
    }
    assert.equal(upstreamHeads(tap, 'ka-1').length, 1, 'the control request reached the backend');
    for (const mark of ['ka-2', 'ka-3', 'ka-4']) assert.deepEqual(upstreamHeads(tap, mark), [], mark);
    await gw.errors.waitFor(/server name different from the one that was negotiated.*host: "on\.tls\.test"/);
  });

  it('HTTP/2: a stream whose :authority names an auth-tls host on a session negotiated for another is 421', async () => {
    const statuses = await h2Statuses(gw.httpsPort, 'plain.tls.test', [
      'plain.tls.test',
      'on.tls.test',
      'pass.tls.test',
      'ony.tls.test:443',
      'plain.tls.test',
    ]);
    assert.deepEqual(statuses, [200, 421, 421, 421, 200]);
    assert.deepEqual(upstreamHeads(tap, 'h2-on.tls.test'), []);
    assert.deepEqual(upstreamHeads(tap, 'h2-pass.tls.test'), []);
  });

  it('an absolute-form target naming an auth-tls host over the SNI of another is 421 whatever Host says', async () => {
    const reply = await once(gw.httpsPort, 'plain.tls.test', {
      target: 'https://on.tls.test/',
      lines: ['x-mark: absolute'],
    });
    assert.equal(reply.status, 421);
    assert.deepEqual(upstreamHeads(tap, 'absolute'), []);
  });

  it('a certificate verified for one CA does not open a host of another CA on the same connection (421)', async () => {
    const connection = await connectTls(gw.httpsPort, { servername: 'on.tls.test', cert: pki.client });
    try {
      assert.equal((await connection.send(req('on.tls.test', ['x-mark: ca-1']))).status, 200);
      assert.equal((await connection.send(req('ony.tls.test', ['x-mark: ca-2']))).status, 421);
      assert.equal((await connection.send(req('cn.tls.test', ['x-mark: ca-3']))).status, 421);
    } finally {
      connection.destroy();
    }
    assert.deepEqual(headerValues(upstreamHeads(tap, 'ca-1')[0] ?? '', 'ssl-client-verify'), ['SUCCESS']);
    assert.deepEqual(upstreamHeads(tap, 'ca-2'), []);
    // The SNI in another case is the same name (nginx lowercases it): no 421.
    assert.equal(
      (await once(gw.httpsPort, 'on.tls.test', { servername: 'ON.TLS.TEST', cert: pki.client })).status,
      200,
    );
  });

  it('without SNI no certificate is asked: verify on is 400; optional is served as NONE, the forged headers dropped', async () => {
    const on = await once(gw.httpsPort, 'on.tls.test', { servername: '', cert: pki.client });
    assert.equal(on.status, 400);
    const optional = await once(gw.httpsPort, 'pass.tls.test', {
      servername: '',
      lines: ['x-mark: nosni', 'ssl-client-verify: SUCCESS', 'ssl-client-subject-dn: CN=admin'],
    });
    assert.equal(optional.status, 200);
    const [head] = upstreamHeads(tap, 'nosni').filter((h) => h.startsWith('GET / '));
    assert.ok(head, 'the request reached the backend');
    assert.deepEqual(headerValues(head, 'ssl-client-verify'), ['NONE']);
    assert.deepEqual(headerValues(head, 'ssl-client-subject-dn'), []);
  });

  it("on an auth-tls host the backend gets only the gateway's ssl-client-*: case variants and duplicates dropped", async () => {
    const reply = await once(gw.httpsPort, 'on.tls.test', {
      cert: pki.client,
      lines: [
        'x-mark: spoof-on',
        'SSL-Client-Verify: FAILED:forged',
        'ssl-client-subject-dn: CN=admin',
        'Ssl-Client-Subject-Dn: CN=admin2',
        'SSL-CLIENT-ISSUER-DN: CN=forged-ca',
        'ssl-client-cert: forged-pem',
      ],
    });
    assert.equal(reply.status, 200);
    const [head] = upstreamHeads(tap, 'spoof-on');
    assert.ok(head, 'the request reached the backend');
    assert.deepEqual(headerValues(head, 'ssl-client-verify'), ['SUCCESS']);
    assert.deepEqual(headerValues(head, 'ssl-client-subject-dn'), ['CN=client']);
    assert.deepEqual(headerValues(head, 'ssl-client-issuer-dn'), ['CN=ca']);
    // Without pass-certificate-to-upstream nginx would pass the client's own ssl-client-cert; keepip drops it.
    assert.deepEqual(headerValues(head, 'ssl-client-cert'), []);
    assert.doesNotMatch(head, /forged|CN=admin/);
  });

  it("pass-certificate-to-upstream without a certificate: neither the backend nor auth-url sees the client's ssl-client-*", async () => {
    const reply = await once(gw.httpsPort, 'pass.tls.test', {
      lines: [
        'x-mark: spoof-pass',
        'ssl-client-cert: -----BEGIN%20CERTIFICATE-----forged',
        'ssl-client-verify: SUCCESS',
        'ssl-client-subject-dn: CN=admin',
        'ssl-client-issuer-dn: CN=ca',
        'ssl_client_verify: SUCCESS',
        'ssl_client_s_dn: CN=admin',
      ],
    });
    assert.equal(reply.status, 200);
    const heads = upstreamHeads(tap, 'spoof-pass');
    assert.deepEqual(
      heads.map((h) => h.slice(0, h.indexOf(' HTTP/1.1'))).sort(),
      ['GET /', 'GET /auth'],
      'the auth subrequest, then the request',
    );
    for (const head of heads) {
      assert.deepEqual(headerValues(head, 'ssl-client-verify'), ['NONE']);
      for (const name of ['ssl-client-cert', 'ssl-client-subject-dn', 'ssl-client-issuer-dn'])
        assert.deepEqual(headerValues(head, name), [], name);
      // nginx ignores names with `_` (underscores_in_headers off): a backend folding `_` into `-` reads nothing.
      assert.doesNotMatch(head, /ssl_client|forged|CN=admin/i);
    }
  });

  it('plain HTTP to an auth-tls host: ssl-redirect answers first, even with a forged X-Forwarded-Proto; HSTS only over HTTPS', async () => {
    const plain = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      payload: req('ON.tls.test:8080', [
        'x-mark: plain-http',
        'X-Forwarded-Proto: https',
        'ssl-client-verify: SUCCESS',
        'Connection: close',
      ]),
    });
    const text = plain.received.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 308 /);
    // As ingress-nginx: $best_http_host without its port, case kept (and the lone `/` dropped).
    assert.match(text, /\r\nlocation: https:\/\/ON\.tls\.test\r\n/i);
    assert.doesNotMatch(text, /strict-transport-security/i);
    assert.deepEqual(upstreamHeads(tap, 'plain-http'), []);
    // A Host nginx would reflect into the redirect but that names another site once parsed: refused.
    for (const hostile of ['evil.com\\.wild.tls.test', 'evil.com@x.wild.tls.test', 'a b.wild.tls.test']) {
      const reply = await rawExchange({
        host: '127.0.0.1',
        port: gw.httpPort,
        payload: req(hostile, ['Connection: close']),
      });
      assert.doesNotMatch(reply.received.toString('latin1'), /\r\nlocation:/i, hostile);
    }
    // Over HTTPS HSTS is sent whatever X-Forwarded-Proto the client claims (nginx: $scheme).
    const https = await once(gw.httpsPort, 'plain.tls.test', { lines: ['X-Forwarded-Proto: http'] });
    assert.equal(https.status, 200);
    assert.match(https.head, /\r\nstrict-transport-security: max-age=\d+/i);
  });

  it('plain HTTP to an auth-tls host without ssl-redirect: the backend gets no ssl-client-* at all (nginx: empty, not sent)', async () => {
    const plain = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      payload: req('plainok.tls.test', [
        'x-mark: plain-noredirect',
        'ssl-client-verify: SUCCESS',
        'ssl-client-subject-dn: CN=admin',
        'Connection: close',
      ]),
    });
    assert.match(plain.received.toString('latin1'), /^HTTP\/1\.1 200 /);
    const head = upstreamHeads(tap, 'plain-noredirect')[0] ?? '';
    for (const name of [
      'ssl-client-verify',
      'ssl-client-subject-dn',
      'ssl-client-issuer-dn',
      'ssl-client-cert',
    ])
      assert.deepEqual(headerValues(head, name), [], name);
  });

  it('optional refuses a certificate that does not verify (another CA, expired): 400 as nginx; a good one passes', async () => {
    assert.equal((await once(gw.httpsPort, 'pass.tls.test', { cert: pki.stranger })).status, 400);
    assert.equal((await once(gw.httpsPort, 'pass.tls.test', { cert: pki.expired })).status, 400);
    assert.equal((await once(gw.httpsPort, 'pass.tls.test', { cert: pki.client })).status, 200);
  });

  it('optional_no_ca passes an unknown issuer (FAILED) but refuses an expired certificate of the trusted CA, as nginx', async () => {
    const foreign = await once(gw.httpsPort, 'noca.tls.test', {
      cert: pki.stranger,
      lines: ['x-mark: noca-1'],
    });
    assert.equal(foreign.status, 200);
    assert.match(
      headerValues(upstreamHeads(tap, 'noca-1')[0] ?? '', 'ssl-client-verify')[0] ?? '',
      /^FAILED:/,
    );
    // nginx (ngx_ssl_verify_error_optional) forgives only issuer errors under optional_no_ca: an expired
    // certificate is 400 there (checked against nginx 1.22), never proxied.
    const expired = await once(gw.httpsPort, 'noca.tls.test', {
      cert: pki.expired,
      lines: ['x-mark: noca-2'],
    });
    assert.equal(expired.status, 400);
    assert.deepEqual(upstreamHeads(tap, 'noca-2'), []);
  });

  it("a certificate revoked by the auth-tls Secret's ca.crl is refused (400), as ingress-nginx's ssl_crl", async () => {
    assert.equal((await once(gw.httpsPort, 'crl.tls.test', { cert: pki.client })).status, 200);
    const revoked = await once(gw.httpsPort, 'crl.tls.test', {
      cert: pki.revoked,
      lines: ['x-mark: revoked'],
    });
    assert.equal(revoked.status, 400);
    assert.deepEqual(upstreamHeads(tap, 'revoked'), []);
  });

  it('auth-tls-verify-depth counts the CAs between the certificate and the root, as OpenSSL: 1 takes one intermediate', async () => {
    assert.equal((await once(gw.httpsPort, 'depth1.tls.test', { cert: pki.client })).status, 200);
    assert.equal((await once(gw.httpsPort, 'depth1.tls.test', { cert: pki.chained })).status, 200);
    assert.equal((await once(gw.httpsPort, 'depth1.tls.test', { cert: pki.deep })).status, 400);
    assert.equal((await once(gw.httpsPort, 'depth2.tls.test', { cert: pki.deep })).status, 200);
  });

  it('auth-tls-match-cn is an unanchored regex as nginx\'s "!~": CN=admin.evil passes CN=admin, ^CN=admin$ refuses it', async () => {
    // nginx's own design (if ($ssl_client_s_dn !~ "CN=admin")): an operator has to anchor the pattern.
    assert.equal((await once(gw.httpsPort, 'cn.tls.test', { cert: pki.evilAdmin })).status, 200);
    assert.equal((await once(gw.httpsPort, 'cn.tls.test', { cert: pki.client })).status, 403);
    assert.equal((await once(gw.httpsPort, 'cnanchored.tls.test', { cert: pki.evilAdmin })).status, 403);
  });

  it("auth-tls on one Ingress of a host covers the paths of the host's other Ingresses (one server, as ingress-nginx)", async () => {
    assert.equal((await once(gw.httpsPort, 'shared.tls.test', { target: '/open' })).status, 400);
    assert.equal((await once(gw.httpsPort, 'shared.tls.test', { target: '/mtls' })).status, 400);
    assert.equal(
      (await once(gw.httpsPort, 'shared.tls.test', { target: '/open', cert: pki.client })).status,
      200,
    );
  });
});

/** One request on a fresh connection closed by the server; whether it resumed, and the session it left. */
async function resume(port: number, hostHeader: string, options: TlsOptions) {
  const connection = await connectTls(port, options);
  const answer = await connection.send(req(hostHeader, ['Connection: close']));
  const session = await connection.closed();
  return { status: answer.status, reused: connection.reused(), session };
}

describe('TLS sessions across hosts with different client CAs', () => {
  let pki: Pki;
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let tap: Tap;
  let gw: TestGateway;

  before(async () => {
    pki = await testPki();
    backend = await startBackend();
    tap = await startTap(backend.port);
    gw = await startTestGateway(topology(pki, tap.port));
  });

  after(async () => {
    await gw?.close();
    await tap?.close();
    await backend?.close();
  });

  it("a session verified against one host's CA never resumes at a host with another CA (same certificate), SNI or none", async () => {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const first = await resume(gw.httpsPort, 'on.tls.test', {
        servername: 'on.tls.test',
        cert: pki.client,
        maxVersion,
      });
      assert.equal(first.status, 200, maxVersion);
      assert.ok(first.session, `${maxVersion}: a session to resume`);
      const session = first.session;
      const again = await resume(gw.httpsPort, 'on.tls.test', {
        servername: 'on.tls.test',
        session,
        maxVersion,
      });
      // A session with a client certificate is never resumed (a full handshake, here without one: 400).
      assert.deepEqual([again.reused, again.status], [false, 400], `${maxVersion}: not resumed`);
      const other = await resume(gw.httpsPort, 'ony.tls.test', {
        servername: 'ony.tls.test',
        session,
        maxVersion,
      });
      assert.deepEqual([other.reused, other.status], [false, 400], `${maxVersion}: another CA`);
      const noSni = await resume(gw.httpsPort, 'ony.tls.test', { servername: '', session, maxVersion });
      assert.equal(noSni.status, 400, `${maxVersion}: no SNI, Host of another CA`);
    }
  });

  it('a session whose certificate failed verification (optional_no_ca) stays failed when resumed at a verify-on host of the same CA', async () => {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      for (const cert of [pki.stranger, pki.expired]) {
        const first = await resume(gw.httpsPort, 'noca.tls.test', {
          servername: 'noca.tls.test',
          cert,
          maxVersion,
        });
        assert.ok(first.session, `${maxVersion}: a session to resume`);
        const session = first.session;
        const on = await resume(gw.httpsPort, 'on.tls.test', {
          servername: 'on.tls.test',
          session,
          maxVersion,
        });
        assert.equal(on.status, 400, `${maxVersion}: resumed=${on.reused}`);
        // Nor at its own host: a session that carries a client certificate is never resumed.
        const back = await resume(gw.httpsPort, 'noca.tls.test', {
          servername: 'noca.tls.test',
          session,
          maxVersion,
        });
        assert.equal(back.reused, false, `${maxVersion}: not resumed at its own host either`);
      }
      // A session without a certificate (optional) is no certificate at verify on.
      const bare = await resume(gw.httpsPort, 'pass.tls.test', { servername: 'pass.tls.test', maxVersion });
      const session = bare.session;
      const on = await resume(gw.httpsPort, 'on.tls.test', {
        servername: 'on.tls.test',
        session,
        maxVersion,
      });
      assert.equal(on.status, 400, `${maxVersion}: resumed=${on.reused}`);
    }
  });
});
