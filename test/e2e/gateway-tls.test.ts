// The HTTPS listener: certificates from the Ingress TLS Secrets chosen by SNI, the self-signed default
// for other names, ssl-redirect for TLS hosts, X-Forwarded-Proto https, nginx's 400 for plain HTTP
// on the HTTPS port (G8), and HTTPS backends (backend-protocol: HTTPS, not verified, as ingress-nginx).
import assert from 'node:assert/strict';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { DEFAULT_CERTIFICATE_CN } from '../../src/gateway/tls.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { echoOf, request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, tlsSecret, topologyOf } from '../fixtures/gateway/manifests.ts';
import { certificateFor } from '../fixtures/gateway/certificates.ts';
import { rawExchange } from '../helpers/net.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';
import { acceptedOn, waitForCount } from '../helpers/descriptors.ts';

/** The CN of the certificate the gateway presents for `servername` (undefined: no SNI). */
function servedCommonName(port: number, servername: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername ? { servername } : {}) },
      () => {
        const cn = socket.getPeerCertificate().subject?.CN;
        socket.destroy();
        resolve(Array.isArray(cn) ? cn.join(',') : (cn ?? ''));
      },
    );
    socket.on('error', reject);
  });
}

describe('gateway TLS', () => {
  let backend: RunningWhoami;
  let secureBackend: https.Server;
  let gw: TestGateway;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    const a = await certificateFor('a.example.com');
    const b = await certificateFor('b.example.com');
    const wild = await certificateFor('*.wild.example.com');
    const backendCert = await certificateFor('backend.internal');
    const notFoo = await certificateFor('not.foo.example.com');
    // An HTTPS backend that tells what it received; its certificate is self-signed (not verified upstream).
    secureBackend = https.createServer({ cert: backendCert.cert, key: backendCert.key }, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          name: 'tls-backend',
          remoteAddress: req.socket.remoteAddress,
          url: req.url,
          headers: req.headers,
        }),
      );
    });
    await new Promise<void>((resolve) => secureBackend.listen(0, '127.0.0.1', resolve));
    const securePort = (secureBackend.address() as AddressInfo).port;
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
        ...serviceWithEndpoints({ name: 'secure', ports: [securePort], servicePort: 443 }),
        tlsSecret('a-tls', a.cert, a.key),
        tlsSecret('b-tls', b.cert, b.key),
        ingress({
          name: 'a',
          host: 'a.example.com',
          tlsSecret: 'a-tls',
          paths: [{ path: '/', service: 'web', port: 80 }],
        }),
        ingress({
          name: 'b',
          host: 'b.example.com',
          tlsSecret: 'b-tls',
          paths: [{ path: '/', service: 'web', port: 80 }],
        }),
        tlsSecret('wild-tls', wild.cert, wild.key),
        // The host's own spec.tls entry names a Secret whose certificate is for another name.
        tlsSecret('not-foo-tls', notFoo.cert, notFoo.key),
        ingress({
          name: 'foo',
          host: 'foo.example.com',
          tlsSecret: 'not-foo-tls',
          paths: [{ path: '/', service: 'web', port: 80 }],
        }),
        {
          // A spec.tls entry without hosts: the Secret whose certificate names the rule's host.
          ...ingress({
            name: 'wild',
            host: 'x.wild.example.com',
            paths: [{ path: '/', service: 'web', port: 80 }],
          }),
          spec: {
            ingressClassName: 'nginx',
            tls: [{ secretName: 'wild-tls' }],
            rules: [
              {
                host: 'x.wild.example.com',
                http: {
                  paths: [
                    {
                      path: '/',
                      pathType: 'Prefix',
                      backend: { service: { name: 'web', port: { number: 80 } } },
                    },
                  ],
                },
              },
            ],
          },
        },
        ingress({
          name: 'tls-backend',
          host: 'c.example.com',
          paths: [{ path: '/', service: 'secure', port: 443 }],
          annotations: { 'backend-protocol': 'HTTPS' },
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await backend.close();
    secureBackend.closeAllConnections();
    await new Promise((resolve) => secureBackend.close(resolve));
  });

  test('SNI picks the certificate of each host; other names get the self-signed default', async () => {
    assert.equal(await servedCommonName(gw.httpsPort, 'a.example.com'), 'a.example.com');
    assert.equal(await servedCommonName(gw.httpsPort, 'b.example.com'), 'b.example.com');
    assert.equal(await servedCommonName(gw.httpsPort, 'other.example.com'), DEFAULT_CERTIFICATE_CN);
    assert.equal(await servedCommonName(gw.httpsPort, undefined), DEFAULT_CERTIFICATE_CN);
  });

  test("a server name with a trailing dot gets the host's certificate (certificate.lua strips it; dynamic_certificates.go)", async () => {
    assert.equal(await servedCommonName(gw.httpsPort, 'a.example.com.'), 'a.example.com');
    assert.equal(await servedCommonName(gw.httpsPort, 'B.Example.com.'), 'b.example.com');
    assert.equal(await servedCommonName(gw.httpsPort, 'x.wild.example.com.'), '*.wild.example.com');
  });

  test("the default certificate is ingress-nginx's fake one by name (defaultbackend/ssl.go): issuer and subject CN", async () => {
    // Dashboards and alerts look for this name to spot a host served without its own certificate.
    for (const servername of [undefined, 'foo.bar.com']) {
      const cert = await new Promise<tls.PeerCertificate>((resolve, reject) => {
        const socket = tls.connect(
          {
            host: '127.0.0.1',
            port: gw.httpsPort,
            rejectUnauthorized: false,
            ...(servername ? { servername } : {}),
          },
          () => {
            resolve(socket.getPeerCertificate());
            socket.destroy();
          },
        );
        socket.on('error', reject);
      });
      assert.equal(cert.issuer.CN, 'Kubernetes Ingress Controller Fake Certificate');
      assert.equal(cert.subject.CN, 'Kubernetes Ingress Controller Fake Certificate');
      assert.equal(cert.subject.O, 'Acme Co');
      assert.equal(cert.subjectaltname, 'DNS:ingress.local');
    }
  });

  test('a client that leaves during the handshake is let go at once, not after the header timeout', async () => {
    // The client destroys its socket as soon as it has the server's Finished: its own Finished may never
    // leave, so the gateway sees the end of the stream before its handshake completes.
    for (const alpn of [undefined, ['h2', 'http/1.1']]) {
      for (let i = 0; i < 3; i += 1) {
        await new Promise<void>((resolve, reject) => {
          const socket = tls.connect(
            { host: '127.0.0.1', port: gw.httpsPort, rejectUnauthorized: false, ALPNProtocols: alpn },
            () => {
              socket.destroy();
              resolve();
            },
          );
          socket.on('error', reject);
        });
      }
    }
    // The header timeout is 60 s here; the connections must be gone long before it.
    await waitForCount(
      () => acceptedOn(gw.httpsPort),
      (n) => n === 0,
      15_000,
      'TLS connections left mid-handshake',
    );
  });

  test('curl --resolve over TLS reaches the backend, which sees X-Forwarded-Proto https and the client', async () => {
    const curl = requireBinary('curl');
    const result = await runCommand(curl, [
      '-sk',
      '--interface',
      '127.0.0.21',
      '--resolve',
      `a.example.com:${gw.httpsPort}:127.0.0.1`,
      '-H',
      'accept: application/json',
      `https://a.example.com:${gw.httpsPort}/tls`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const echo = JSON.parse(result.stdout) as { url: string; headers: Record<string, string> };
    assert.equal(echo.url, '/tls');
    assert.equal(echo.headers['x-forwarded-proto'], 'https');
    assert.equal(echo.headers['x-real-ip'], '127.0.0.21');
  });

  test("X-Forwarded-Port: 443 on the HTTPS listener whatever its port, the HTTP listener's own port on plain HTTP (listen_nondefault_ports.go)", async () => {
    const secure = await new Promise<Record<string, string>>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: gw.httpsPort,
          servername: 'a.example.com',
          headers: { host: 'a.example.com', accept: 'application/json' },
          rejectUnauthorized: false,
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')).headers));
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.notEqual(gw.httpsPort, 443);
    assert.equal(secure['x-forwarded-port'], '443');
    assert.equal(secure['x-forwarded-proto'], 'https');
    const plain = await request(gw.httpPort, { host: 'c.example.com', path: '/p' });
    assert.equal(echoOf(plain).headers['x-forwarded-port'], String(gw.httpPort));
  });

  test('plain HTTP to a TLS host is redirected to https with 308 (ssl-redirect defaults on with TLS)', async () => {
    const reply = await request(gw.httpPort, { host: 'a.example.com', path: '/x?y=1' });
    assert.equal(reply.status, 308);
    assert.equal(reply.headers.location, 'https://a.example.com/x?y=1');
  });

  test('a spec.tls entry without hosts: its certificate for the host that it names, and ssl-redirect (extractTLSSecretName)', async () => {
    assert.equal(await servedCommonName(gw.httpsPort, 'x.wild.example.com'), '*.wild.example.com');
    const reply = await request(gw.httpPort, { host: 'x.wild.example.com', path: '/x' });
    assert.equal(reply.status, 308);
    assert.equal(reply.headers.location, 'https://x.wild.example.com/x');
  });

  test('a listed Secret whose certificate does not name the host: the default certificate, still a TLS host (default_ssl_certificate.go)', async () => {
    assert.equal(await servedCommonName(gw.httpsPort, 'foo.example.com'), DEFAULT_CERTIFICATE_CN);
    const reply = await request(gw.httpPort, { host: 'foo.example.com', path: '/x' });
    assert.equal(reply.status, 308);
    assert.equal(reply.headers.location, 'https://foo.example.com/x');
  });

  test("plain HTTP sent to the HTTPS port gets nginx's 400 page (G8)", async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpsPort,
      payload: 'GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n',
    });
    const text = reply.received.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /The plain HTTP request was sent to HTTPS port/);
    assert.equal(reply.closedByServer, true);
  });

  test('backend-protocol HTTPS: the gateway speaks TLS to the backend without verifying it', async () => {
    const reply = await request(gw.httpPort, { host: 'c.example.com', path: '/over-tls' });
    assert.equal(reply.status, 200);
    const echo = echoOf(reply);
    assert.equal(echo.name, 'tls-backend');
    assert.equal(echo.url, '/over-tls');
    assert.equal(echo.headers['x-real-ip'], '127.0.0.1');
  });
});

describe('gateway close with a handshake that never finishes', () => {
  test('close() ends every connection within the drain timeout, however stalled the client', async () => {
    const stalled = await startTestGateway(
      topologyOf([ingress({ name: 'x', paths: [{ path: '/', service: 'none', port: 80 }] })]),
    );
    // The first bytes of a TLS record: the listener hands the socket to TLS, whose handshake then waits.
    const socket = net.connect({ host: '127.0.0.1', port: stalled.httpsPort });
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x01]));
    await waitForCount(
      () => acceptedOn(stalled.httpsPort),
      (n) => n === 1,
      15_000,
      'the stalled connection',
    );
    const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    // The harness drains for 2 s; the header timeout is 60 s. close() must not wait for the client.
    const started = performance.now();
    await stalled.close();
    await gone;
    assert.ok(performance.now() - started < 30_000, 'close() waited for the client instead of draining');
  });
});
