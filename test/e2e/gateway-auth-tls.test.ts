// Client certificates end to end (auth-tls-secret, -verify-client, -verify-depth, -error-page,
// -pass-certificate-to-upstream, -match-cn), as ingress-nginx's e2e tests for auth-tls-* assert them:
// per host, chosen by SNI, over real TLS. Certificates are made by openssl for the test: a CA, a client
// certificate it signed (CN=authtls), and one from another CA.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { makePki } from '../helpers/pki.ts';

interface Pki {
  ca: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
  strangerKey: string;
  strangerCert: string;
}

/** A CA, a server certificate and a client certificate (O=Acme Co, CN=authtls) it signed, one from another CA. */
async function testPki(): Promise<Pki> {
  const { certs } = await makePki({
    certificates: [
      { name: 'ca' },
      { name: 'other-ca' },
      { name: 'server', issuer: 'ca', subject: '/CN=authtls.foo.com' },
      { name: 'client', issuer: 'ca', subject: '/O=Acme Co/CN=authtls' },
      { name: 'stranger', issuer: 'other-ca', subject: '/CN=authtls' },
    ],
  });
  return {
    ca: certs.ca.cert,
    serverKey: certs.server.key,
    serverCert: certs.server.cert,
    clientKey: certs.client.key,
    clientCert: certs.client.cert,
    strangerKey: certs.stranger.key,
    strangerCert: certs.stranger.cert,
  };
}

/** The Secret `default/authtls`: the server's certificate and key, and the CA clients are checked against. */
function authTlsSecret(pki: Pki): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'authtls', namespace: 'default' },
    type: 'kubernetes.io/tls',
    data: Object.fromEntries(
      Object.entries({ 'tls.crt': pki.serverCert, 'tls.key': pki.serverKey, 'ca.crt': pki.ca }).map(
        ([k, v]) => [k, Buffer.from(v).toString('base64')],
      ),
    ),
  };
}

/** A host `<name>.foo.com` served with that Secret by the `echo` Service. */
function host(name: string, annotations: Record<string, string>): K8sObject {
  return ingress({
    name,
    host: `${name}.foo.com`,
    tlsSecret: 'authtls',
    paths: [{ path: '/', service: 'echo', port: 80 }],
    annotations,
  });
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(
  port: number,
  host: string,
  cert: { key: string; cert: string } | null,
  sni = host,
  extra: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        servername: sni,
        headers: { host, accept: 'application/json', ...extra },
        rejectUnauthorized: false,
        agent: false,
        ...(cert ?? {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('client certificates (auth-tls-*)', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;
  let pki: Pki;
  let client: { key: string; cert: string };
  let stranger: { key: string; cert: string };

  before(async () => {
    pki = await testPki();
    client = { key: pki.clientKey, cert: pki.clientCert };
    stranger = { key: pki.strangerKey, cert: pki.strangerCert };
    backend = await startWhoami({ host: '127.0.0.1', port: 0, name: 'echo' });
    const secret = authTlsSecret(pki);
    const tls = { 'auth-tls-secret': 'default/authtls' };
    gw = await startTestGateway(
      topologyOf([
        // A refused client certificate is nginx's info level: shown only from error-log-level info.
        controllerConfigMap({
          'error-log-level': 'info',
          'log-format-upstream':
            '$host "$request" $status verify="$ssl_client_verify" s_dn="$ssl_client_s_dn" i_dn="$ssl_client_i_dn" mark=$http_x_mark',
        }),
        ...serviceWithEndpoints({ name: 'echo', ports: [backend.address.port] }),
        secret,
        host('plain', {}),
        host('on', tls),
        host('off', { ...tls, 'auth-tls-verify-client': 'off', 'auth-tls-verify-depth': '2' }),
        host('errorpage', { ...tls, 'auth-tls-error-page': 'http://example.com/error' }),
        host('pass', { ...tls, 'auth-tls-pass-certificate-to-upstream': 'true' }),
        host('nomatch', { ...tls, 'auth-tls-match-cn': 'CN=notgonnamatch' }),
        host('match', { ...tls, 'auth-tls-match-cn': 'CN=(itwillmatch|withthenextoption|authtls)' }),
        host('optional', { ...tls, 'auth-tls-verify-client': 'optional' }),
        host('noca', { ...tls, 'auth-tls-verify-client': 'optional_no_ca' }),
        host('missing', { 'auth-tls-secret': 'default/nope' }),
        host('alias', { ...tls, 'server-alias': 'other-name.foo.com' }),
        ingress({
          name: 'wild',
          host: '*.wild.foo.com',
          tlsSecret: 'authtls',
          paths: [{ path: '/', service: 'echo', port: 80 }],
          annotations: tls,
        }),
      ]),
    );
  });

  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  const echoHeaders = (reply: Reply) =>
    (JSON.parse(reply.body) as { headers: Record<string, string> }).headers;

  test('auth-tls-secret (verify on): 400 without a client certificate, 200 with one the CA signed', async () => {
    assert.equal((await get(gw.httpsPort, 'on.foo.com', null)).status, 400);
    const ok = await get(gw.httpsPort, 'on.foo.com', client);
    assert.equal(ok.status, 200);
    const headers = echoHeaders(ok);
    assert.equal(headers['ssl-client-verify'], 'SUCCESS');
    assert.equal(headers['ssl-client-subject-dn'], 'CN=authtls,O=Acme Co');
    assert.equal(headers['ssl-client-issuer-dn'], 'CN=ca');
    assert.equal(headers['ssl-client-cert'], undefined);
  });

  test('over HTTP/2 too: each stream is checked against the certificate of its connection', async () => {
    const h2get = (cert: { key: string; cert: string } | null) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const session = http2.connect(`https://127.0.0.1:${gw.httpsPort}`, {
          servername: 'on.foo.com',
          rejectUnauthorized: false,
          ...(cert ?? {}),
        });
        session.on('error', reject);
        const stream = session.request({
          ':path': '/',
          ':authority': 'on.foo.com',
          accept: 'application/json',
        });
        let status = 0;
        const chunks: Buffer[] = [];
        stream.on('response', (h) => {
          status = Number(h[':status']);
        });
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          session.close();
          resolve({ status, body: Buffer.concat(chunks).toString() });
        });
        stream.on('error', reject);
      });
    assert.equal((await h2get(null)).status, 400);
    const ok = await h2get(client);
    assert.equal(ok.status, 200);
    assert.equal(
      (JSON.parse(ok.body) as { headers: Record<string, string> }).headers['ssl-client-verify'],
      'SUCCESS',
    );
    await gw.access.waitFor(/"GET \/ HTTP\/2\.0" 400 /);
  });

  test('a certificate from another CA: 400 (on); optional_no_ca passes it with FAILED', async () => {
    assert.equal((await get(gw.httpsPort, 'on.foo.com', stranger)).status, 400);
    const reply = await get(gw.httpsPort, 'noca.foo.com', stranger);
    assert.equal(reply.status, 200);
    assert.match(echoHeaders(reply)['ssl-client-verify']!, /^FAILED:/);
  });

  test("the log line's $ssl_client_verify, $ssl_client_s_dn, $ssl_client_i_dn, as the backend's ssl-client-* headers", async () => {
    const logged = async (host: string, cert: { key: string; cert: string } | null, mark: string) => {
      await get(gw.httpsPort, host, cert, host, { 'x-mark': mark });
      const line = await gw.access.waitFor(new RegExp(` mark=${mark}$`));
      return / verify="([^"]*)" s_dn="([^"]*)" i_dn="([^"]*)" /.exec(line)?.slice(1);
    };
    assert.deepEqual(await logged('on.foo.com', client, 'ok'), ['SUCCESS', 'CN=authtls,O=Acme Co', 'CN=ca']);
    assert.deepEqual(await logged('optional.foo.com', null, 'none'), ['NONE', '-', '-']);
    const foreign = await logged('noca.foo.com', stranger, 'stranger');
    // OpenSSL's reason text, as nginx's $ssl_client_verify carries it.
    assert.equal(foreign?.[0], 'FAILED:unable to verify the first certificate');
    assert.equal(foreign?.[2], 'CN=other-ca');
    // Refused (400) requests are logged with what refused them.
    assert.equal(
      (await logged('on.foo.com', stranger, 'refused'))?.[0],
      'FAILED:unable to verify the first certificate',
    );
    // A TLS host without auth-tls asks for no certificate: NONE, as nginx's.
    assert.deepEqual(await logged('plain.foo.com', null, 'plain'), ['NONE', '-', '-']);
  });

  test('verify-client off: no certificate asked, 200', async () => {
    assert.equal((await get(gw.httpsPort, 'off.foo.com', null)).status, 200);
  });

  test('optional: 200 without a certificate (NONE), 200 with one (SUCCESS)', async () => {
    assert.equal(echoHeaders(await get(gw.httpsPort, 'optional.foo.com', null))['ssl-client-verify'], 'NONE');
    assert.equal(
      echoHeaders(await get(gw.httpsPort, 'optional.foo.com', client))['ssl-client-verify'],
      'SUCCESS',
    );
  });

  test('auth-tls-error-page: 302 to it instead of 400; 200 with a certificate', async () => {
    const reply = await get(gw.httpsPort, 'errorpage.foo.com', null);
    assert.equal(reply.status, 302);
    assert.equal(reply.headers.location, 'http://example.com/error');
    assert.equal((await get(gw.httpsPort, 'errorpage.foo.com', client)).status, 200);
  });

  test('auth-tls-pass-certificate-to-upstream: the URL-escaped PEM in ssl-client-cert', async () => {
    assert.equal((await get(gw.httpsPort, 'pass.foo.com', null)).status, 400);
    const reply = await get(gw.httpsPort, 'pass.foo.com', client);
    assert.equal(reply.status, 200);
    assert.ok(echoHeaders(reply)['ssl-client-cert']!.startsWith('-----BEGIN%20CERTIFICATE-----%0A'));
  });

  test('auth-tls-match-cn: 403 when the subject does not match, 200 when one option does', async () => {
    assert.equal((await get(gw.httpsPort, 'nomatch.foo.com', client)).status, 403);
    assert.equal((await get(gw.httpsPort, 'match.foo.com', client)).status, 200);
  });

  test('per host by SNI: a host without auth-tls is served without a certificate; spoofed ssl-client-* headers are dropped', async () => {
    assert.equal((await get(gw.httpsPort, 'plain.foo.com', null)).status, 200);
    // Without SNI no certificate is asked for: a host that requires one answers 400 (nginx likewise).
    assert.equal((await get(gw.httpsPort, 'on.foo.com', client, '')).status, 400);
    const spoofed = await get(gw.httpsPort, 'optional.foo.com', null, 'optional.foo.com', {
      'ssl-client-subject-dn': 'CN=admin',
      'ssl-client-verify': 'SUCCESS',
    });
    assert.equal(echoHeaders(spoofed)['ssl-client-subject-dn'], undefined);
    assert.equal(echoHeaders(spoofed)['ssl-client-verify'], 'NONE');
  });

  test('a certificate verified for one host (SNI) does not open another (Host): 421', async () => {
    const reply = await get(gw.httpsPort, 'match.foo.com', client, 'optional.foo.com');
    assert.equal(reply.status, 421);
  });

  test('a host with auth-tls reached through the SNI of a host without: 421, as nginx, whatever the verify mode', async () => {
    // The handshake for plain.foo.com asked for no certificate; nginx refuses the Host of any server
    // with ssl_verify_client (on, optional) on that connection rather than serve it unverified.
    assert.equal((await get(gw.httpsPort, 'optional.foo.com', null, 'plain.foo.com')).status, 421);
    assert.equal((await get(gw.httpsPort, 'on.foo.com', client, 'plain.foo.com')).status, 421);
    // The host without auth-tls is served on it as before.
    assert.equal((await get(gw.httpsPort, 'plain.foo.com', null, 'plain.foo.com')).status, 200);
  });

  test('a server-alias or a wildcard name in the SNI asks for the certificate as the host name does', async () => {
    // nginx picks the server of a handshake by SNI among all its names; before, keepip looked only at
    // host names, asked no certificate for an alias, and answered 400.
    assert.equal((await get(gw.httpsPort, 'other-name.foo.com', client)).status, 200);
    assert.equal((await get(gw.httpsPort, 'other-name.foo.com', null)).status, 400);
    assert.equal((await get(gw.httpsPort, 'a.wild.foo.com', client)).status, 200);
    assert.equal((await get(gw.httpsPort, 'a.wild.foo.com', null)).status, 400);
  });

  test('the same auth-tls server under another name than the SNI: 421, as nginx compares the names', async () => {
    assert.equal((await get(gw.httpsPort, 'other-name.foo.com', client, 'alias.foo.com')).status, 421);
    assert.equal((await get(gw.httpsPort, 'alias.foo.com', client, 'other-name.foo.com')).status, 421);
    assert.equal((await get(gw.httpsPort, 'b.wild.foo.com', client, 'a.wild.foo.com')).status, 421);
    // Case, a port and a trailing dot do not make another name.
    assert.equal((await get(gw.httpsPort, 'A.Wild.foo.com.:443', client, 'a.wild.foo.com')).status, 200);
    await gw.errors.waitFor(
      /client attempted to request the server name different from the one that was negotiated.*host: "b\.wild\.foo\.com"/,
    );
  });

  test('verify-client off asks for nothing: another SNI is no reason for 421', async () => {
    assert.equal((await get(gw.httpsPort, 'off.foo.com', null, 'plain.foo.com')).status, 200);
  });

  test('an auth-tls-secret that does not exist: 403 for every request to the host', async () => {
    assert.equal((await get(gw.httpsPort, 'missing.foo.com', client)).status, 403);
  });
});

/** One HTTPS request on a fresh TLS connection; `session` resumes one; the session it leaves behind. */
function resumable(
  port: number,
  host: string,
  options: { cert?: { key: string; cert: string }; session?: Buffer; version?: tls.SecureVersion },
): Promise<{ status: number; verify: string | undefined; reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    let reused = false;
    let raw = '';
    const socket = tls.connect(
      {
        host: '127.0.0.1',
        port,
        servername: host,
        rejectUnauthorized: false,
        ...options.cert,
        session: options.session,
        maxVersion: options.version ?? 'TLSv1.3',
      },
      () => {
        reused = socket.isSessionReused();
        socket.write(
          `GET / HTTP/1.1\r\nHost: ${host}\r\naccept: application/json\r\nConnection: close\r\n\r\n`,
        );
      },
    );
    socket.on('session', (s: Buffer) => {
      session = s;
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      raw += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
      const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
      const verify =
        status === 200
          ? (JSON.parse(body) as { headers: Record<string, string> }).headers['ssl-client-verify']
          : undefined;
      resolve({ status, verify, reused, session });
    });
  });
}

describe('client certificates with ssl-session-tickets', () => {
  test('a session with a client certificate is never resumed (a full handshake each time); a session from a host without auth-tls does not resume there', async () => {
    const pki = await testPki();
    const backend = await startWhoami({ host: '127.0.0.1', port: 0, name: 'echo' });
    const secret = authTlsSecret(pki);
    const gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({ 'ssl-session-tickets': 'true' }),
        ...serviceWithEndpoints({ name: 'echo', ports: [backend.address.port] }),
        secret,
        host('plain', {}),
        host('on', { 'auth-tls-secret': 'default/authtls' }),
      ]),
    );
    try {
      const client = { key: pki.clientKey, cert: pki.clientCert };
      for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
        const first = await resumable(gw.httpsPort, 'on.foo.com', { cert: client, version });
        assert.equal(first.status, 200, version);
        assert.equal(first.verify, 'SUCCESS');
        // Offered again without the certificate: not resumed (the chain it was verified with would be
        // gone, and auth-tls-verify-depth with it), so no certificate: 400.
        const again = await resumable(gw.httpsPort, 'on.foo.com', { session: first.session, version });
        assert.equal(again.reused, false, version);
        assert.equal(again.status, 400);
        const full = await resumable(gw.httpsPort, 'on.foo.com', { cert: client, version });
        assert.deepEqual([full.reused, full.status, full.verify], [false, 200, 'SUCCESS'], version);
        // Same server certificate, no client CA: its sessions are not the auth-tls host's.
        const plain = await resumable(gw.httpsPort, 'plain.foo.com', { version });
        assert.equal(plain.status, 200);
        const crossed = await resumable(gw.httpsPort, 'on.foo.com', { session: plain.session, version });
        assert.equal(crossed.reused, false, version);
        assert.equal(crossed.status, 400, "no certificate: nginx's 400");
      }
    } finally {
      await gw.close();
      await backend.close();
    }
  });
});
