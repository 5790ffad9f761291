// The ingress-nginx annotations of issue 20 over real sockets, each case drawn from ingress-nginx's own
// e2e test of it (test/e2e/annotations/<name>.go at release 1.15): a gateway on 127.0.0.1 port 0,
// whoami backends that echo what reached them.
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import {
  echoOf,
  type Reply,
  request,
  startTestGateway,
  type TestGateway,
} from '../fixtures/gateway/harness.ts';
import {
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';

const json = { accept: 'application/json' };

/** A certificate for every name (SANs), as the e2e framework's CreateIngressTLSSecret makes. */
async function certificateFor(names: string[]): Promise<{ cert: string; key: string }> {
  const made = await generate([{ name: 'commonName', value: names[0]! }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: names.map((value) => ({ type: 2, value })) }],
  });
  return { cert: made.cert, key: made.private };
}

/** One HTTPS request with SNI `servername` (the certificate is not verified, as the e2e tests do). */
function httpsRequest(
  port: number,
  servername: string,
  path = '/',
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        servername,
        rejectUnauthorized: false,
        agent: false,
        headers: { host: servername, ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The CN of the certificate the gateway presents for `servername`. */
function servedCommonName(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.destroy();
      resolve(Array.isArray(cn) ? cn.join(',') : (cn ?? ''));
    });
    socket.on('error', reject);
  });
}

describe('issue 20 annotations over sockets', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;
  let wwwHost: string;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0, name: 'echo' });
    wwwHost = 'fromtowww.example';
    const cert = await certificateFor([wwwHost, `www.${wwwHost}`]);
    const echo = (
      name: string,
      host: string,
      annotations: Record<string, string> = {},
      path = '/',
    ): K8sObject => ingress({ name, host, annotations, paths: [{ path, service: 'echo', port: 80 }] });
    const objects: K8sObject[] = [
      ...serviceWithEndpoints({ name: 'echo', ports: [backend.address.port] }),
      echo('permanent', 'redirect', { 'permanent-redirect': 'http://redirect.example.com' }, '/something'),
      echo(
        'custom-code',
        'redirect-code',
        { 'permanent-redirect': 'http://redirect.example.com', 'permanent-redirect-code': '302' },
        '/something',
      ),
      echo('temporal', 'temporal', {
        'temporal-redirect': 'https://www.example.org/x?y=z',
        'temporal-redirect-code': '307',
      }),
      echo('www', 'fromtowwwredirect.bar.com', { 'from-to-www-redirect': 'true' }),
      tlsSecret('www-tls', cert.cert, cert.key),
      {
        ...ingress({
          name: 'www-tls',
          host: wwwHost,
          annotations: { 'from-to-www-redirect': 'true' },
          paths: [{ path: '/', service: 'echo', port: 80 }],
        }),
        spec: {
          ingressClassName: 'nginx',
          tls: [{ hosts: [wwwHost, `www.${wwwHost}`], secretName: 'www-tls' }],
          rules: [
            {
              host: wwwHost,
              http: {
                paths: [
                  {
                    path: '/',
                    pathType: 'Prefix',
                    backend: { service: { name: 'echo', port: { number: 80 } } },
                  },
                ],
              },
            },
          ],
        },
      },
      echo('alias', 'foo', { 'server-alias': 'bar' }),
      echo('app-a', 'two.example', {}, '/app-a'),
      echo('app-b', 'two.example', { 'server-alias': 'alias-of-two.example' }, '/app-b'),
    ];
    gw = await startTestGateway(topologyOf(objects));
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  describe('permanent-redirect permanent-redirect-code (redirect.go)', () => {
    test('should respond with a standard redirect code', async () => {
      const reply = await request(gw.httpPort, { host: 'redirect', path: '/something' });
      assert.equal(reply.status, 301);
      assert.equal(reply.headers.location, 'http://redirect.example.com');
      // Answered by the gateway: the access line names no upstream.
      const line = await gw.access.waitFor(/"GET \/something HTTP\/1\.1" 301 /);
      assert.match(line, /\[default-echo-80\] \[\] - - - - /);
    });

    test('should respond with a custom redirect code', async () => {
      const reply = await request(gw.httpPort, { host: 'redirect-code', path: '/something' });
      assert.equal(reply.status, 302);
      assert.equal(reply.headers.location, 'http://redirect.example.com');
    });

    test('temporal-redirect with temporal-redirect-code', async () => {
      const reply = await request(gw.httpPort, {
        host: 'temporal',
        path: '/anything',
        method: 'POST',
        body: 'x',
      });
      assert.equal(reply.status, 307);
      assert.equal(reply.headers.location, 'https://www.example.org/x?y=z');
    });
  });

  describe('from-to-www-redirect (fromtowwwredirect.go)', () => {
    test('should redirect from www HTTP to HTTP', async () => {
      const reply = await request(gw.httpPort, { host: 'www.fromtowwwredirect.bar.com', path: '/foo' });
      assert.equal(reply.status, 308);
      // ingress-nginx listens on 80; keepip's test listener has its own port, which the Location keeps.
      assert.equal(reply.headers.location, `http://fromtowwwredirect.bar.com:${gw.httpPort}/foo`);
      const direct = await request(gw.httpPort, {
        host: 'fromtowwwredirect.bar.com',
        path: '/foo',
        headers: json,
      });
      assert.equal(direct.status, 200);
      assert.equal(echoOf(direct).headers.host, 'fromtowwwredirect.bar.com');
    });

    test('should redirect from www HTTPS to HTTPS', async () => {
      // The host's certificate names both, so the www twin is served with it (not the default one).
      assert.equal(await servedCommonName(gw.httpsPort, `www.${wwwHost}`), wwwHost);
      const reply = await httpsRequest(gw.httpsPort, `www.${wwwHost}`);
      assert.equal(reply.status, 308);
      assert.equal(reply.headers.location, `https://${wwwHost}:${gw.httpsPort}`);
      // The domain itself is not redirected to www.
      const direct = await httpsRequest(gw.httpsPort, wwwHost, '/', json);
      assert.equal(direct.status, 200);
      assert.equal(echoOf(direct).headers.host, wwwHost);
    });
  });

  describe('server-alias (alias.go)', () => {
    test("should return status code 200 for host 'foo' and 'bar'", async () => {
      for (const host of ['foo', 'bar']) {
        const reply = await request(gw.httpPort, { host, headers: json });
        assert.equal(reply.status, 200, host);
        assert.equal(echoOf(reply).headers.host, host);
      }
      assert.equal((await request(gw.httpPort, { host: 'baz' })).status, 404);
    });

    test('should return status code 200 for hosts defined in two ingresses, different path with one alias', async () => {
      for (const host of ['two.example', 'alias-of-two.example']) {
        const reply = await request(gw.httpPort, { host, path: '/app-a', headers: json });
        assert.equal(reply.status, 200, host);
        assert.equal(echoOf(reply).headers.host, host);
      }
      // Logged under the host's upstream, as any request of the host.
      await gw.access.waitFor(/"GET \/app-a HTTP\/1\.1" 200 .*\[default-echo-80\]/);
    });
  });
});
