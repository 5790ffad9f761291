// ssl-reject-handshake, ssl-ecdh-curve and ssl-dh-param over real TLS, checked with openssl s_client: a
// name no host has (or no SNI at all) gets the alert unrecognized_name instead of the default
// certificate, the key exchange groups are the ConfigMap's (an unusable list refuses every handshake,
// never widened), and the DHE suites exist only with the Secret's DH parameters.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { acceptedOn, waitForCount } from '../helpers/descriptors.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const HOST = 'web.example.com';

/** The ClientHello Node's TLS client sends for `servername`, caught by a listener that answers nothing. */
async function clientHello(servername: string): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as net.AddressInfo).port;
    const caught = new Promise<Buffer>((resolve) =>
      server.once('connection', (socket) =>
        socket.once('data', (chunk: Buffer) => {
          resolve(chunk);
          socket.destroy();
        }),
      ),
    );
    const client = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
    client.on('error', () => {});
    const hello = await caught;
    client.destroy();
    return hello;
  } finally {
    server.close();
  }
}

/** openssl s_client -brief: whether the handshake completed, and what openssl printed. */
async function handshake(port: number, args: string[]): Promise<{ ok: boolean; text: string }> {
  const out = await runCommand(
    requireBinary('openssl'),
    ['s_client', '-brief', '-connect', `127.0.0.1:${port}`, ...args],
    { input: '', timeoutMs: 20_000 },
  );
  const text = `${out.stdout}\n${out.stderr}`;
  return { ok: /CONNECTION ESTABLISHED/.test(text), text };
}

describe('ssl-reject-handshake, ssl-ecdh-curve, ssl-dh-param', () => {
  let backend: RunningWhoami;
  const objects = (configMap: Record<string, string>) =>
    topologyOf([
      // The refused names are nginx's info level: shown only from error-log-level info.
      controllerConfigMap({ 'error-log-level': 'info', ...configMap }),
      ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
      ingress({
        name: 'web',
        host: HOST,
        paths: [{ path: '/', service: 'web', port: 80 }],
        annotations: { 'from-to-www-redirect': 'true', 'server-alias': 'alias.example.com' },
      }),
      ingress({ name: 'wild', host: '*.apps.example.com', paths: [{ path: '/', service: 'web', port: 80 }] }),
    ]);

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
  });
  after(() => backend.close());

  test('default: a name no host has still gets a handshake, with the default certificate', async () => {
    const gw = await startTestGateway(objects({}));
    try {
      const unknown = await handshake(gw.httpsPort, ['-servername', 'nobody.example.org']);
      assert.ok(unknown.ok, unknown.text);
      assert.match(unknown.text, /Kubernetes Ingress Controller Fake Certificate/);
    } finally {
      await gw.close();
    }
  });

  describe('ssl-reject-handshake "true"', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startTestGateway(objects({ 'ssl-reject-handshake': 'true' }));
    });
    after(() => gw.close());

    test("a host's names (the host, an alias, a wildcard, the www twin) are served", async () => {
      for (const name of [
        HOST,
        'alias.example.com',
        'a.apps.example.com',
        'www.web.example.com',
        'WEB.example.com.',
      ]) {
        const result = await handshake(gw.httpsPort, ['-servername', name]);
        assert.ok(result.ok, `${name}: ${result.text}`);
      }
    });

    test('a client that keeps its side open after the alert holds no socket of the gateway', async () => {
      const hello = await clientHello('nobody.example.org');
      const raw = net.connect({ host: '127.0.0.1', port: gw.httpsPort, allowHalfOpen: true });
      const received: Buffer[] = [];
      raw.on('data', (chunk: Buffer) => received.push(chunk));
      const ended = new Promise((resolve) => raw.once('end', resolve));
      raw.write(hello);
      await ended;
      // The fatal alert unrecognized_name (level 2, description 112), then the gateway's FIN.
      assert.deepEqual([...Buffer.concat(received)], [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70]);
      await waitForCount(
        () => acceptedOn(gw.httpsPort),
        (n) => n === 0,
        10_000,
        'gateway sockets',
      );
      raw.destroy();
    });

    test('another name, or none, gets the alert unrecognized_name and an info line; no certificate', async () => {
      const unknown = await handshake(gw.httpsPort, ['-servername', 'nobody.example.org']);
      assert.equal(unknown.ok, false);
      assert.match(unknown.text, /unrecognized name/);
      assert.doesNotMatch(unknown.text, /Fake Certificate/);
      await gw.errors.waitFor(
        /\[info\] .*TLS handshake for "nobody\.example\.org" rejected: no server has that name \(ssl-reject-handshake\), client: 127\.0\.0\.1/,
      );
      const none = await handshake(gw.httpsPort, ['-noservername']);
      assert.equal(none.ok, false);
      assert.match(none.text, /unrecognized name/);
      await gw.errors.waitFor(/TLS handshake without SNI rejected/);
    });
  });

  test('ssl-ecdh-curve: the groups a handshake may use, for TLS 1.2 and 1.3', async () => {
    const gw = await startTestGateway(objects({ 'ssl-ecdh-curve': 'secp384r1' }));
    try {
      const tls13 = await handshake(gw.httpsPort, ['-servername', HOST, '-groups', 'secp384r1']);
      assert.ok(tls13.ok, tls13.text);
      const tls12 = await handshake(gw.httpsPort, ['-servername', HOST, '-tls1_2']);
      assert.ok(tls12.ok, tls12.text);
      assert.match(tls12.text, /Server Temp Key: ECDH, secp384r1/);
      const other = await handshake(gw.httpsPort, ['-servername', HOST, '-groups', 'X25519']);
      assert.equal(other.ok, false, other.text);
    } finally {
      await gw.close();
    }
  });

  test('an ssl-ecdh-curve OpenSSL refuses is INVALID_TLS_SETTINGS: every handshake refused, never the defaults', async () => {
    const topology = objects({ 'ssl-ecdh-curve': 'nosuchcurve' });
    const gw = await startTestGateway(topology);
    try {
      const refused = await handshake(gw.httpsPort, ['-servername', HOST]);
      assert.equal(refused.ok, false);
      await gw.errors.waitFor(/INVALID_TLS_SETTINGS: the TLS settings .* cannot be used, handshake refused/);
      const problems = gw.gateway.snapshot().certificates.settingsProblems;
      assert.match(problems[0]?.message ?? '', /OpenSSL refuses ssl-ecdh-curve "nosuchcurve"/);
    } finally {
      await gw.close();
    }
    const syntax = objects({ 'ssl-ecdh-curve': 'prime256v1, secp384r1' }).issues;
    assert.ok(syntax.some((i) => i.code === 'INVALID_TLS_SETTINGS' && i.field === 'data["ssl-ecdh-curve"]'));
  });
  test("ssl-dh-param: the Secret's DH parameters make the DHE suites available (RSA certificate, TLS 1.2)", async () => {
    const openssl = requireBinary('openssl');
    const dir = mkdtempSync(join(tmpdir(), 'keepip-dh-'));
    try {
      const run = async (...args: string[]) =>
        assert.equal((await runCommand(openssl, args)).code, 0, args.join(' '));
      await run(
        'genpkey',
        '-genparam',
        '-algorithm',
        'DH',
        '-pkeyopt',
        'dh_param:ffdhe2048',
        '-out',
        `${dir}/dh.pem`,
      );
      await run(
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        `${dir}/rsa.key`,
        '-out',
        `${dir}/rsa.crt`,
        '-subj',
        '/CN=rsa.example.com',
        '-days',
        '2',
      );
      const read = (file: string) => readFileSync(join(dir, file), 'utf8');
      const dhSecret = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'dh', namespace: 'ingress-nginx' },
        data: { 'dhparam.pem': Buffer.from(read('dh.pem')).toString('base64') },
      };
      const objectsWith = (configMap: Record<string, string>) =>
        topologyOf([
          controllerConfigMap(configMap),
          dhSecret,
          tlsSecret('rsa', read('rsa.crt'), read('rsa.key')),
          ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
          ingress({
            name: 'rsa',
            host: 'rsa.example.com',
            tlsSecret: 'rsa',
            paths: [{ path: '/', service: 'web', port: 80 }],
          }),
        ]);
      const dhe = ['-servername', 'rsa.example.com', '-tls1_2', '-cipher', 'DHE-RSA-AES128-GCM-SHA256'];
      const without = await startTestGateway(objectsWith({}));
      try {
        assert.equal((await handshake(without.httpsPort, dhe)).ok, false, 'no DHE without ssl-dh-param');
      } finally {
        await without.close();
      }
      const topology = objectsWith({ 'ssl-dh-param': 'ingress-nginx/dh' });
      assert.deepEqual(
        topology.issues.filter((i) => i.field === 'data["ssl-dh-param"]'),
        [],
      );
      const gw = await startTestGateway(topology);
      try {
        const result = await handshake(gw.httpsPort, dhe);
        assert.ok(result.ok, result.text);
        assert.match(result.text, /Server Temp Key: DH, 2048 bits/);
      } finally {
        await gw.close();
      }
      const missing = objectsWith({ 'ssl-dh-param': 'ingress-nginx/nope' }).issues;
      assert.ok(missing.some((i) => i.field === 'data["ssl-dh-param"]' && /not found/.test(i.message)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
