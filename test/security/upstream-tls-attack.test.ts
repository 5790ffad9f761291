// keepip's TLS towards backends (backend-protocol HTTPS / AUTO_HTTP, proxy-ssl-*), attacked by a man in
// the middle that sits where the backend should be: certificates from another CA, self-signed, expired,
// not yet valid, for another name, under an intermediate that is no CA, behind a chain deeper than
// proxy-ssl-verify-depth; a location without verification that warms a pool the verifying one could
// reuse; the client certificate and SNI going where they should not; protocols and ciphers; and the
// other ways a request reaches an HTTPS backend (a WebSocket upgrade, a canary, AUTO_HTTP over TLS).
// Every refused case also checks that the backend never saw the request head (its cookie included).
// The reference is ingress-nginx's proxyssl parser and template (proxy_ssl_* in the location, where
// proxy_ssl_verify is off, proxy_ssl_server_name off and proxy_ssl_name $proxy_host, "upstream_balancer",
// by default) and OpenSSL's verify depth (intermediates counted, as `openssl verify -verify_depth`).
import assert from 'node:assert/strict';
import type { LookupAddress, LookupOptions } from 'node:dns';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo, LookupFunction } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket, TlsOptions } from 'node:tls';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
  opaqueSecret as secret,
} from '../fixtures/gateway/manifests.ts';
import { rawExchange } from '../helpers/net.ts';
import { makePki } from '../helpers/pki.ts';

interface Pem {
  key: string;
  cert: string;
}

interface Pki {
  /** The CA of the proxy-ssl-secret (ca.crt). */
  root: string;
  client: Pem;
  good: Pem;
  otherCa: Pem;
  selfSigned: Pem;
  expired: Pem;
  future: Pem;
  otherName: Pem;
  /** Leaf + its issuer, a root-signed certificate with CA:FALSE. */
  viaNotCa: Pem;
  /** Leaf + one intermediate. */
  oneIntermediate: Pem;
  /** Leaf + two intermediates. */
  twoIntermediates: Pem;
}

const NAME = 'backend.internal';
const CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n';
const NOT_CA_EXT = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyCertSign,digitalSignature\n';
const leafExt = (name: string) => `basicConstraints=CA:FALSE\nsubjectAltName=DNS:${name}\n`;

/** Self-signed roots and certificates signed by them (some with fixed dates, some under intermediates). */
async function testPki(): Promise<Pki> {
  const leaf = leafExt(NAME);
  const { certs, chains } = await makePki({
    certificates: [
      { name: 'root' },
      { name: 'evil-root' },
      { name: 'self', subject: `/CN=${NAME}`, extensions: `subjectAltName=DNS:${NAME}` },
      { name: 'client', issuer: 'root', extensions: 'basicConstraints=CA:FALSE\n' },
      { name: 'good', issuer: 'root', extensions: leaf },
      { name: 'other-ca', issuer: 'evil-root', extensions: leaf },
      { name: 'expired', issuer: 'root', extensions: leaf, dates: ['20200101000000Z', '20200201000000Z'] },
      { name: 'future', issuer: 'root', extensions: leaf, dates: ['20990101000000Z', '20991231000000Z'] },
      { name: 'other-name', issuer: 'root', extensions: leafExt('other.internal') },
      { name: 'not-ca', issuer: 'root', extensions: NOT_CA_EXT },
      { name: 'via-not-ca', issuer: 'not-ca', extensions: leaf },
      { name: 'i1', issuer: 'root', extensions: CA_EXT },
      { name: 'i2', issuer: 'i1', extensions: CA_EXT },
      { name: 'under-i1', issuer: 'i1', extensions: leaf },
      { name: 'under-i2', issuer: 'i2', extensions: leaf },
    ],
  });
  const pem = (name: keyof typeof certs): Pem => ({ key: certs[name].key, cert: chains[name] });
  return {
    root: certs.root.cert,
    client: pem('client'),
    good: pem('good'),
    otherCa: pem('other-ca'),
    selfSigned: pem('self'),
    expired: pem('expired'),
    future: pem('future'),
    otherName: pem('other-name'),
    viaNotCa: pem('via-not-ca'),
    oneIntermediate: pem('under-i1'),
    twoIntermediates: pem('under-i2'),
  };
}

/** What a backend saw of one request (or WebSocket upgrade) that reached it. */
interface Seen {
  host: string;
  cookie: string | null;
  sni: string | null;
  /** CN of the client certificate the gateway presented, or null. */
  client: string | null;
  upgrade: boolean;
}

interface Backend {
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

/** An HTTPS backend serving `pem` that records every request head it parses; answers 200 (upgrades: 101). */
async function startBackend(pki: Pki, pem: Pem, extra: TlsOptions = {}): Promise<Backend> {
  const seen: Seen[] = [];
  const record = (req: http.IncomingMessage, upgrade: boolean) => {
    const socket = req.socket as TLSSocket & { servername?: string | false };
    seen.push({
      host: req.headers.host ?? '',
      cookie: req.headers.cookie ?? null,
      sni: socket.servername || null,
      client: (socket.getPeerCertificate().subject?.CN as string | undefined) ?? null,
      upgrade,
    });
  };
  const options = { ...pem, ca: pki.root, requestCert: true, rejectUnauthorized: false, ...extra };
  const server = https.createServer(options, (req, res) => {
    record(req, false);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('backend');
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: import('node:stream').Duplex) => {
    record(req, true);
    socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const BACKENDS = [
  'good',
  'otherCa',
  'selfSigned',
  'expired',
  'future',
  'otherName',
  'viaNotCa',
  'oneIntermediate',
  'twoIntermediates',
] as const;
type BackendName = (typeof BACKENDS)[number] | 'tls13Only' | 'chachaOnly';

/** The backend each refused host proxies to, and why the man in the middle must be refused. */
const REFUSED: ReadonlyArray<[host: string, backend: BackendName, why: string]> = [
  ['other-ca.test', 'otherCa', 'a certificate for the right name from another CA'],
  ['self-signed.test', 'selfSigned', 'a self-signed certificate for the right name'],
  ['expired.test', 'expired', 'an expired certificate'],
  ['future.test', 'future', 'a certificate not yet valid'],
  ['other-name.test', 'otherName', 'a certificate of the right CA for another name'],
  ['not-ca.test', 'viaNotCa', 'a certificate issued by an intermediate with CA:FALSE'],
  [
    'no-name.test',
    'good',
    'a certificate for backend.internal when proxy-ssl-name is unset (upstream_balancer)',
  ],
];

const SECRET = 'default/upstream-ca';
const HTTPS = { 'backend-protocol': 'HTTPS' };
const VERIFIED = { ...HTTPS, 'proxy-ssl-secret': SECRET, 'proxy-ssl-verify': 'on', 'proxy-ssl-name': NAME };
const COOKIE = 'session=victim-session-token';

/** One Ingress (named after its host) sending `host`/ to Service `service` port 443. */
function hostIngress(host: string, service: string, annotations: Record<string, string>): K8sObject {
  const name = host.replace(/\.test$/, '');
  return ingress({ name, host, annotations, paths: [{ path: '/', service, port: 443 }] });
}

/** Host → [backend, annotations] of the ordinary (non-refused) locations. */
function routes(): Array<[string, BackendName, Record<string, string>]> {
  const verifiedWith = (extra: Record<string, string>) => ({ ...VERIFIED, ...extra });
  return [
    ['good.test', 'good', VERIFIED],
    ['sni.test', 'good', verifiedWith({ 'proxy-ssl-server-name': 'on' })],
    ['ca-only.test', 'good', verifiedWith({ 'proxy-ssl-secret': 'default/ca-only' })],
    ['plain-good.test', 'good', HTTPS],
    ['resume-other-name.test', 'good', verifiedWith({ 'proxy-ssl-name': 'other.internal' })],
    ['unverified-mitm.test', 'otherCa', { ...HTTPS, 'proxy-ssl-secret': SECRET, 'proxy-ssl-name': NAME }],
    ['plain-mitm.test', 'otherCa', HTTPS],
    ['pool-verify.test', 'otherCa', VERIFIED],
    ['ws-mitm.test', 'otherCa', VERIFIED],
    ['ws-good.test', 'good', VERIFIED],
    ['depth-default.test', 'twoIntermediates', VERIFIED],
    ['depth-2.test', 'twoIntermediates', verifiedWith({ 'proxy-ssl-verify-depth': '2' })],
    ['depth-1-one.test', 'oneIntermediate', verifiedWith({ 'proxy-ssl-verify-depth': '1' })],
    ['tls12-only.test', 'tls13Only', verifiedWith({ 'proxy-ssl-protocols': 'TLSv1.2' })],
    ['tls12-13.test', 'tls13Only', verifiedWith({ 'proxy-ssl-protocols': 'TLSv1.2 TLSv1.3' })],
    ['cipher-aes.test', 'chachaOnly', verifiedWith({ 'proxy-ssl-ciphers': 'ECDHE-ECDSA-AES128-GCM-SHA256' })],
    [
      'cipher-chacha.test',
      'chachaOnly',
      verifiedWith({ 'proxy-ssl-ciphers': 'ECDHE-ECDSA-CHACHA20-POLY1305' }),
    ],
    ['foreign.test', 'good', verifiedWith({ 'proxy-ssl-secret': 'other/upstream-ca' })],
    ['garbage-ca.test', 'good', verifiedWith({ 'proxy-ssl-secret': 'default/garbage-ca' })],
    ['auto.test', 'otherCa', { ...VERIFIED, 'backend-protocol': 'AUTO_HTTP' }],
    ['auto-good.test', 'good', { ...VERIFIED, 'backend-protocol': 'AUTO_HTTP' }],
  ];
}

function secrets(pki: Pki): K8sObject[] {
  const withClient = { 'ca.crt': pki.root, 'tls.crt': pki.client.cert, 'tls.key': pki.client.key };
  const garbage = '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n';
  return [
    secret('upstream-ca', withClient),
    secret('ca-only', { 'ca.crt': pki.root }),
    secret('garbage-ca', { 'ca.crt': garbage }),
    secret('upstream-ca', withClient, 'other'),
  ];
}

/** A main Ingress that verifies its backend, and a canary (by header) whose Service is the man in the middle. */
function canaryPair(ports: ReadonlyMap<BackendName, number>): K8sObject[] {
  return [
    ...serviceWithEndpoints({ name: 'canary-main', ports: [ports.get('good') ?? 0], servicePort: 443 }),
    ...serviceWithEndpoints({ name: 'canary-mitm', ports: [ports.get('otherCa') ?? 0], servicePort: 443 }),
    hostIngress('canary.test', 'canary-main', VERIFIED),
    ingress({
      name: 'canary-canary',
      host: 'canary.test',
      annotations: { canary: 'true', 'canary-by-header': 'x-canary' },
      paths: [{ path: '/', service: 'canary-mitm', port: 443 }],
    }),
  ];
}

/** An ExternalName Service for `external` and Ingresses on it, on the good backend's port. */
function externalName(port: number): K8sObject[] {
  const service: K8sObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'external', namespace: 'default' },
    spec: { type: 'ExternalName', externalName: 'secure.example' },
  };
  const on = (host: string, annotations: Record<string, string>) =>
    ingress({
      name: host.replace(/\.test$/, ''),
      host,
      annotations,
      paths: [{ path: '/', service: 'external', port }],
    });
  return [
    service,
    on('external.test', HTTPS),
    on('external-verified.test', { ...VERIFIED, 'proxy-ssl-name': NAME }),
  ];
}

function manifests(pki: Pki, ports: ReadonlyMap<BackendName, number>): K8sObject[] {
  const services = [...ports].flatMap(([name, port]) =>
    serviceWithEndpoints({ name: name.toLowerCase(), ports: [port], servicePort: 443 }),
  );
  const refused = REFUSED.map(([host, backend]) =>
    hostIngress(
      host,
      backend.toLowerCase(),
      host === 'no-name.test' ? { ...VERIFIED, 'proxy-ssl-name': '' } : VERIFIED,
    ),
  );
  const ordinary = routes().map(([host, backend, annotations]) =>
    hostIngress(host, backend.toLowerCase(), annotations),
  );
  return [
    ...services,
    ...secrets(pki),
    ...refused,
    ...ordinary,
    ...canaryPair(ports),
    ...externalName(ports.get('good') ?? 0),
  ];
}

/** A resolver with one name, secure.example → 127.0.0.1 (no DNS involved). */
const lookup: LookupFunction = (hostname: string, options: LookupOptions, callback) => {
  if (hostname !== 'secure.example') {
    const error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    queueMicrotask(() => callback(error, '', 4));
    return;
  }
  const found: LookupAddress = { address: '127.0.0.1', family: 4 };
  queueMicrotask(() => (options.all === true ? callback(null, [found]) : callback(null, '127.0.0.1', 4)));
};

/** A GET over TLS to the gateway's HTTPS listener for `host`. */
function httpsGet(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        servername: host,
        rejectUnauthorized: false,
        headers: { host, cookie: COOKIE },
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('TLS to backends (proxy-ssl-*) against a man in the middle', () => {
  let pki: Pki;
  const backends = new Map<BackendName, Backend>();
  let gw: TestGateway;

  before(async () => {
    pki = await testPki();
    for (const name of BACKENDS) backends.set(name, await startBackend(pki, pki[name]));
    backends.set('tls13Only', await startBackend(pki, pki.good, { minVersion: 'TLSv1.3' }));
    backends.set(
      'chachaOnly',
      await startBackend(pki, pki.good, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' }),
    );
    const ports = new Map([...backends].map(([name, b]) => [name, b.port] as const));
    const topology = topologyOf(manifests(pki, ports));
    gw = await startTestGateway(topology, { lookup });
  });

  after(async () => {
    await gw?.close();
    for (const b of backends.values()) await b.close();
  });

  const backend = (name: BackendName) => backends.get(name) as Backend;
  /** Every request head any backend saw for `host`. */
  const seenFor = (host: string) =>
    [...backends.values()].flatMap((b) => b.seen.filter((s) => s.host === host));
  const get = (host: string, headers: Record<string, string> = {}) =>
    request(gw.httpPort, { host, headers: { cookie: COOKIE, ...headers } });
  const assertRefused = async (host: string, status = 502) => {
    const reply = await get(host);
    assert.equal(reply.status, status, `${host}: ${reply.status} ${reply.body.slice(0, 120)}`);
    assert.deepEqual(seenFor(host), [], `${host}: the request head reached an unverified backend`);
  };

  test('control: a backend proving backend.internal under the Secret CA gets the request and the client certificate, no SNI', async () => {
    assert.equal((await get('good.test')).status, 200);
    const [seen] = seenFor('good.test');
    assert.deepEqual(seen, {
      host: 'good.test',
      cookie: COOKIE,
      sni: null,
      client: 'client',
      upgrade: false,
    });
  });

  for (const [host, , why] of REFUSED)
    test(`with proxy-ssl-verify on, ${why} is refused (502) before the request head is sent`, async () => {
      await assertRefused(host);
    });

  test('proxy-ssl-verify-depth 1 (the default) refuses a chain with two intermediates, as nginx (depth 2 and one intermediate pass)', async () => {
    assert.equal((await get('depth-2.test')).status, 200);
    assert.equal((await get('depth-1-one.test')).status, 200);
    await assertRefused('depth-default.test');
  });

  test('with proxy-ssl-verify off (the default, as nginx) any certificate is accepted', async () => {
    assert.equal((await get('unverified-mitm.test')).status, 200);
    assert.equal(seenFor('unverified-mitm.test').length, 1);
  });

  test('a connection pooled by a location that does not verify is not reused by one that does (same backend)', async () => {
    assert.equal((await get('plain-mitm.test')).status, 200);
    assert.equal((await get('plain-mitm.test')).status, 200);
    await assertRefused('pool-verify.test');
  });

  test('a TLS session of a name verified on a backend is not resumed to skip verifying another name', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await get('good.test')).status, 200);
    await assertRefused('resume-other-name.test');
    assert.equal((await get('good.test')).status, 200);
  });

  test('the client certificate is presented only by locations whose Secret holds one', async () => {
    assert.equal((await get('ca-only.test')).status, 200);
    assert.equal((await get('plain-good.test')).status, 200);
    assert.equal(seenFor('ca-only.test')[0]?.client, null);
    assert.equal(seenFor('plain-good.test')[0]?.client, null);
  });

  test('SNI is sent only with proxy-ssl-server-name on, and then it is proxy-ssl-name', async () => {
    assert.equal((await get('sni.test')).status, 200);
    assert.equal(seenFor('sni.test')[0]?.sni, NAME);
  });

  test('an ExternalName HTTPS backend gets no SNI without proxy-ssl-server-name (nginx: proxy_ssl_server_name off)', async () => {
    assert.equal((await get('external.test')).status, 200);
    assert.equal((await get('external-verified.test')).status, 200);
    const sni = ['external.test', 'external-verified.test'].map((host) => seenFor(host)[0]?.sni);
    assert.deepEqual(sni, [null, null], 'SNI sent (without proxy-ssl-*, and with proxy-ssl-server-name off)');
  });

  test('proxy-ssl-protocols TLSv1.2 refuses a TLSv1.3-only backend; "TLSv1.2 TLSv1.3" reaches it', async () => {
    await assertRefused('tls12-only.test');
    assert.equal((await get('tls12-13.test')).status, 200);
  });

  test('proxy-ssl-ciphers restricts the TLS 1.2 handshake to the listed ciphers', async () => {
    await assertRefused('cipher-aes.test');
    assert.equal((await get('cipher-chacha.test')).status, 200);
  });

  test('a proxy-ssl-secret of another namespace (503) or with a ca.crt that is no certificate fails closed', async () => {
    await assertRefused('foreign.test', 503);
    const garbage = await get('garbage-ca.test');
    assert.ok(garbage.status === 502 || garbage.status === 503, `garbage ca.crt: ${garbage.status}`);
    assert.deepEqual(seenFor('garbage-ca.test'), []);
  });

  test('a WebSocket upgrade to a verifying HTTPS location is refused by the man in the middle before its head is sent', async () => {
    const upgrade = (host: string) =>
      rawExchange({
        host: '127.0.0.1',
        port: gw.httpPort,
        payload:
          `GET /chat HTTP/1.1\r\nHost: ${host}\r\nCookie: ${COOKIE}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      });
    const good = (await upgrade('ws-good.test')).received.toString('latin1');
    assert.match(good, /^HTTP\/1\.1 101 /, 'control: the upgrade reaches a verified backend');
    const mitm = (await upgrade('ws-mitm.test')).received.toString('latin1');
    assert.deepEqual(
      seenFor('ws-mitm.test'),
      [],
      'the upgrade head (with the cookie) reached the unverified backend',
    );
    assert.match(mitm, /^HTTP\/1\.1 502 /);
  });

  test("a canary of a verifying location is verified with the main location's proxy-ssl-*, as nginx", async () => {
    assert.equal((await get('canary.test')).status, 200);
    const reply = await get('canary.test', { 'x-canary': 'always' });
    const mitm = backend('otherCa').seen.filter((s) => s.host === 'canary.test');
    assert.deepEqual(mitm, [], 'the canary request (with the cookie) reached an unverified backend');
    assert.equal(reply.status, 502);
  });

  test('AUTO_HTTP verifies the HTTPS backend of a request that came over TLS', async () => {
    assert.equal(await httpsGet(gw.httpsPort, 'auto-good.test'), 200);
    assert.equal(await httpsGet(gw.httpsPort, 'auto.test'), 502);
    assert.deepEqual(seenFor('auto.test'), []);
  });
});
