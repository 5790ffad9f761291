// proxy-ssl-* over real TLS to an HTTPS backend that asks for a client certificate: the gateway's
// client certificate, verification of the backend against the Secret's CA and proxy-ssl-name, SNI with
// proxy-ssl-server-name, the TLS versions (ingress-nginx's e2e test annotations/proxyssl.go checks the
// nginx directives; these check what they do). Certificates are made by openssl for the test.
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, type K8sObject, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { makePki } from '../helpers/pki.ts';

interface Pki {
  ca: string;
  server: { key: string; cert: string };
  client: { key: string; cert: string };
}

/** A CA, a server certificate for backend.internal and a client certificate, all signed by the CA. */
async function testPki(): Promise<Pki> {
  const { certs } = await makePki({
    certificates: [
      { name: 'ca', subject: '/CN=test-ca' },
      {
        name: 'server',
        issuer: 'ca',
        subject: '/CN=backend.internal',
        extensions: 'subjectAltName=DNS:backend.internal\n',
      },
      {
        name: 'client',
        issuer: 'ca',
        subject: '/CN=keepip-gateway',
        extensions: 'basicConstraints=CA:FALSE\n',
      },
    ],
  });
  return { ca: certs.ca.cert, server: certs.server, client: certs.client };
}

describe('proxy-ssl-*', () => {
  let pki: Pki;
  let backend: https.Server;
  let gw: TestGateway;

  before(async () => {
    pki = await testPki();
    // Asks for a client certificate (not required, so the answer says whether one came).
    backend = https.createServer(
      {
        key: pki.server.key,
        cert: pki.server.cert,
        ca: pki.ca,
        requestCert: true,
        rejectUnauthorized: false,
        maxVersion: 'TLSv1.2',
      },
      (req, res) => {
        const socket = req.socket as TLSSocket;
        const peer = socket.getPeerCertificate();
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            sni: (socket as TLSSocket & { servername?: string | false }).servername || null,
            client: socket.authorized ? peer.subject?.CN : null,
          }),
        );
      },
    );
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as AddressInfo).port;
    const secret: K8sObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'backend-tls', namespace: 'default' },
      type: 'Opaque',
      stringData: { 'ca.crt': pki.ca, 'tls.crt': pki.client.cert, 'tls.key': pki.client.key },
    };
    const ing = (name: string, annotations: Record<string, string>) =>
      ingress({
        name,
        host: name,
        annotations: { 'backend-protocol': 'HTTPS', ...annotations },
        paths: [{ path: '/', service: 'backend', port: 443 }],
      });
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'backend', ports: [port], servicePort: 443 }),
        secret,
        ing('verified', {
          'proxy-ssl-secret': 'default/backend-tls',
          'proxy-ssl-verify': 'on',
          'proxy-ssl-verify-depth': '2',
          'proxy-ssl-name': 'backend.internal',
          'proxy-ssl-server-name': 'on',
        }),
        ing('wrong-name', {
          'proxy-ssl-secret': 'default/backend-tls',
          'proxy-ssl-verify': 'on',
          'proxy-ssl-name': 'someone.else',
        }),
        ing('unverified', { 'proxy-ssl-secret': 'default/backend-tls', 'proxy-ssl-name': 'someone.else' }),
        ing('tls13', { 'proxy-ssl-secret': 'default/backend-tls', 'proxy-ssl-protocols': 'TLSv1.3' }),
        ing('missing', { 'proxy-ssl-secret': 'default/nothing' }),
        ing('plain', {}),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
  });

  const seen = async (host: string) => {
    const reply = await request(gw.httpPort, { host });
    assert.equal(reply.status, 200, `${host}: ${reply.body.slice(0, 200)}`);
    return JSON.parse(reply.body) as { sni: string | null; client: string | null };
  };

  test('should set valid proxy-ssl-secret, proxy-ssl-verify to on, proxy-ssl-verify-depth to 2, and proxy-ssl-server-name to on', async () => {
    assert.deepEqual(await seen('verified'), { sni: 'backend.internal', client: 'keepip-gateway' });
  });

  test('a backend certificate that does not name proxy-ssl-name is refused with verify on (502), accepted with off', async () => {
    assert.equal((await request(gw.httpPort, { host: 'wrong-name' })).status, 502);
    assert.deepEqual(await seen('unverified'), { sni: null, client: 'keepip-gateway' });
  });

  test('should set valid proxy-ssl-secret, proxy-ssl-protocols: TLSv1.3 only against a TLSv1.2 backend fails', async () => {
    assert.equal((await request(gw.httpPort, { host: 'tls13' })).status, 502);
  });

  test('a proxy-ssl-secret that is not there denies the location; without proxy-ssl-* nothing changes', async () => {
    assert.equal((await request(gw.httpPort, { host: 'missing' })).status, 503);
    assert.deepEqual(await seen('plain'), { sni: null, client: null });
  });
});
