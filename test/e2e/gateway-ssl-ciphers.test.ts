// ssl-ciphers (annotation and ConfigMap), ssl-protocols (ConfigMap) and ssl-prefer-server-ciphers over
// real TLS: the listener reads the ClientHello, then starts the handshake with the context of the
// server name, so two hosts on one port offer different suites (a context handed over by the SNI
// callback would change the certificate only). Checked with openssl s_client (as ingress-nginx's
// test/e2e/settings/tls.go and annotations/sslciphers.go do with Go's client) and Node's client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
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
import { requireBinary, runCommand } from '../helpers/process.ts';

const AES128 = 'ECDHE-ECDSA-AES128-GCM-SHA256';
const AES256 = 'ECDHE-ECDSA-AES256-GCM-SHA384';

/** `openssl s_client` against the gateway: the negotiated version and suite, or null when refused. */
async function sClient(port: number, args: string[]): Promise<{ protocol: string; cipher: string } | null> {
  const openssl = requireBinary('openssl');
  const out = await runCommand(openssl, ['s_client', '-brief', '-connect', `127.0.0.1:${port}`, ...args], {
    input: '',
    timeoutMs: 20_000,
  });
  const protocol = /Protocol version: (\S+)/.exec(out.stderr)?.[1];
  const cipher = /Ciphersuite: (\S+)/.exec(out.stderr)?.[1];
  if (out.code !== 0 || protocol === undefined || cipher === undefined) return null;
  return { protocol, cipher };
}

/** Node's client with its own cipher order: the suite the server picks, or the error code. */
function nodeClient(port: number, servername: string, ciphers: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, servername, ciphers, maxVersion: 'TLSv1.2', rejectUnauthorized: false },
      () => {
        resolve(socket.getCipher().standardName === undefined ? '' : socket.getCipher().name);
        socket.destroy();
      },
    );
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code ?? error.message}`));
  });
}

function site(name: string, annotations: Record<string, string> = {}): K8sObject {
  return ingress({
    name,
    host: `${name}.example.com`,
    tlsSecret: `${name}-tls`,
    paths: [{ path: '/', service: 'web', port: 80 }],
    annotations,
  });
}

describe('ssl-ciphers, ssl-protocols, ssl-prefer-server-ciphers', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;
  let tls13: TestGateway;
  const secrets: K8sObject[] = [];

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    for (const name of ['open', 'strict', 'server-order', 'client-order', 'bad-openssl', 'bad-syntax']) {
      const pair = await certificateFor(`${name}.example.com`);
      secrets.push(tlsSecret(`${name}-tls`, pair.cert, pair.key));
    }
    const web = serviceWithEndpoints({ name: 'web', ports: [backend.address.port] });
    gw = await startTestGateway(
      topologyOf([
        ...web,
        ...secrets,
        site('open'),
        site('strict', { 'ssl-ciphers': AES256 }),
        site('server-order', { 'ssl-ciphers': `${AES128}:${AES256}` }),
        site('client-order', { 'ssl-ciphers': `${AES128}:${AES256}`, 'ssl-prefer-server-ciphers': 'false' }),
        // Valid syntax that OpenSSL refuses, and a value that fails ingress-nginx's syntax.
        site('bad-openssl', { 'ssl-ciphers': 'NO-SUCH-CIPHER' }),
        site('bad-syntax', { 'ssl-ciphers': 'HIGH; rm -rf' }),
      ]),
    );
    tls13 = await startTestGateway(
      topologyOf([...web, ...secrets, site('open'), controllerConfigMap({ 'ssl-protocols': 'TLSv1.3' })]),
    );
  });

  after(async () => {
    await gw.close();
    await tls13.close();
    await backend.close();
  });

  test('a suite the host excludes fails on it and succeeds on another host of the same port', async () => {
    const strict = await sClient(gw.httpsPort, [
      '-tls1_2',
      '-cipher',
      AES128,
      '-servername',
      'strict.example.com',
    ]);
    assert.equal(strict, null);
    const open = await sClient(gw.httpsPort, [
      '-tls1_2',
      '-cipher',
      AES128,
      '-servername',
      'open.example.com',
    ]);
    assert.deepEqual(open, { protocol: 'TLSv1.2', cipher: AES128 });
    const allowed = await sClient(gw.httpsPort, [
      '-tls1_2',
      '-cipher',
      AES256,
      '-servername',
      'strict.example.com',
    ]);
    assert.deepEqual(allowed, { protocol: 'TLSv1.2', cipher: AES256 });
    // TLS 1.3 suites are not ssl-ciphers' (nginx's ssl_ciphers neither): the host still speaks TLS 1.3.
    assert.equal(
      (await sClient(gw.httpsPort, ['-tls1_3', '-servername', 'strict.example.com']))?.protocol,
      'TLSv1.3',
    );
  });

  test("the ConfigMap's defaults (ingress-nginx's list) apply to clients without SNI", async () => {
    // CBC suites are not in ingress-nginx's default list.
    assert.equal(
      await sClient(gw.httpsPort, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA', '-noservername']),
      null,
    );
    assert.equal(
      (await sClient(gw.httpsPort, ['-tls1_2', '-cipher', AES128, '-noservername']))?.cipher,
      AES128,
    );
  });

  test('ssl-prefer-server-ciphers: the server order by default, the client order with "false"', async () => {
    const clientPrefers = `${AES256}:${AES128}`;
    assert.equal(await nodeClient(gw.httpsPort, 'server-order.example.com', clientPrefers), AES128);
    assert.equal(await nodeClient(gw.httpsPort, 'client-order.example.com', clientPrefers), AES256);
  });

  test('ssl-protocols "TLSv1.3" refuses TLS 1.2 clients, for hosts and for the default certificate', async () => {
    assert.equal(await sClient(tls13.httpsPort, ['-tls1_2', '-servername', 'open.example.com']), null);
    assert.equal(await sClient(tls13.httpsPort, ['-tls1_2', '-noservername']), null);
    const ok = await sClient(tls13.httpsPort, ['-tls1_3', '-servername', 'open.example.com']);
    assert.equal(ok?.protocol, 'TLSv1.3');
    // The other gateway (no ssl-protocols) still speaks TLS 1.2.
    assert.equal(
      (await sClient(gw.httpsPort, ['-tls1_2', '-servername', 'open.example.com']))?.protocol,
      'TLSv1.2',
    );
  });

  test('an unusable ssl-ciphers fails closed: the host refuses handshakes, never the defaults', async () => {
    const problems = gw.gateway.snapshot().certificates.settingsProblems;
    assert.deepEqual(
      problems.map((p) => p.scope),
      ['host bad-openssl.example.com', 'host bad-syntax.example.com'],
    );
    const issue = gw.gateway
      .snapshot()
      .topology.issues.find((i) => i.code === 'INVALID_TLS_SETTINGS' && i.origin?.name === 'bad-syntax');
    assert.equal(issue?.severity, 'error');
    for (const host of ['bad-openssl.example.com', 'bad-syntax.example.com']) {
      assert.equal(await sClient(gw.httpsPort, ['-servername', host]), null, host);
      await gw.errors.waitFor(
        new RegExp(`INVALID_TLS_SETTINGS: .*"${host.replace(/\./g, '\\.')}" cannot be used`),
      );
    }
    // Other hosts on the port are served.
    assert.equal((await sClient(gw.httpsPort, ['-servername', 'open.example.com']))?.protocol, 'TLSv1.3');
  });
});
