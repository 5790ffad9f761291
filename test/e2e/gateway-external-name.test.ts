// Services of type ExternalName as Ingress backends, as ingress-nginx's
// test/e2e/servicebackend/service_externalname.go: the externalName (a short name, an FQDN with or
// without its trailing dot, or an IP) is the one member, on the Service port's targetPort or the
// Ingress's port; a name is resolved per new upstream connection through the gateway's `lookup`
// (here a table of names to 127.0.0.x, so no DNS and no /etc/hosts are involved). An IP literal
// member is covered by the translation's unit test: a loopback one is refused, as here.
import assert from 'node:assert/strict';
import https from 'node:https';
import type { LookupAddress, LookupOptions } from 'node:dns';
import type { AddressInfo, LookupFunction } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import type { Topology } from '../../src/config/model.ts';
import type { TopologyOptions } from '../../src/k8s/translate.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import {
  echoOf,
  request,
  startTestGateway,
  type TestGateway,
  testCertificate,
} from '../fixtures/gateway/harness.ts';
import { ingress, type K8sObject, topologyOf } from '../fixtures/gateway/manifests.ts';

/** A resolver over a fixed table, answering as dns.lookup does (ENOTFOUND for an unknown name). */
function tableLookup(table: ReadonlyMap<string, string>, asked: string[]): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    asked.push(hostname);
    const address = table.get(hostname);
    if (address === undefined) {
      const error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {
        code: 'ENOTFOUND',
        syscall: 'getaddrinfo',
        hostname,
      });
      queueMicrotask(() => callback(error, '', 4));
      return;
    }
    const found: LookupAddress = { address, family: 4 };
    queueMicrotask(() => (options.all === true ? callback(null, [found]) : callback(null, address, 4)));
  };
}

function externalNameService(
  name: string,
  externalName: string,
  ports: { name?: string; port: number; targetPort?: number }[] = [],
): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: { type: 'ExternalName', externalName, ...(ports.length > 0 ? { ports } : {}) },
  };
}

describe('ExternalName Services (service_externalname.go)', () => {
  let echo: RunningWhoami;
  let eu: RunningWhoami;
  let secure: https.Server;
  let gw: TestGateway;
  const asked: string[] = [];
  const table = new Map([
    ['echo', '127.0.0.2'],
    ['nip.example', '127.0.0.2'],
    ['eu.nip.example', '127.0.0.3'],
    ['secure.example', '127.0.0.3'],
  ]);

  /** One Ingress per test host, each on its own ExternalName Service. */
  function objects(extra: { echoName?: string; withAdded?: boolean } = {}): K8sObject[] {
    const port = echo.address.port;
    const tlsPort = (secure.address() as AddressInfo).port;
    const ing = (host: string, service: string, p: number | string, annotations = {}) =>
      ingress({
        name: host.split('.')[0] as string,
        host,
        annotations,
        paths: [{ path: '/', service, port: p }],
      });
    return [
      // A short name, no port on the Service: the Ingress's port number is the member's port.
      externalNameService('short', 'echo'),
      ing('short.test', 'short', port),
      // No port on the Service, with upstream-vhost as the e2e test.
      externalNameService('noport', 'nip.example'),
      ing('noport.test', 'noport', port, { 'upstream-vhost': 'nip.example' }),
      // A port on the Service: its targetPort, by number and by name.
      externalNameService('ported', extra.echoName ?? 'nip.example', [
        { name: 'echo', port: 80, targetPort: extra.echoName === undefined ? port : eu.address.port },
      ]),
      ing('ported.test', 'ported', 80, { 'upstream-vhost': 'nip.example' }),
      ing('named.test', 'ported', 'echo', { 'upstream-vhost': 'nip.example' }),
      // A fully qualified name with its trailing dot.
      externalNameService('dotted', 'nip.example.'),
      ing('dotted.test', 'dotted', port),
      // A name that does not resolve.
      externalNameService('invalid', 'invalid.hostname'),
      ing('invalid.test', 'invalid', port),
      // The gateway's own machine is refused, so is a name that is not one.
      externalNameService('localhost', 'localhost'),
      ing('localhost.test', 'localhost', port),
      externalNameService('loopback', '127.0.0.1'),
      ing('loopback.test', 'loopback', port),
      externalNameService('badname', 'Not_A_Name'),
      ing('badname.test', 'badname', port),
      // backend-protocol HTTPS: the HTTPS pool resolves the name too.
      externalNameService('secure', 'secure.example'),
      ing('secure.test', 'secure', tlsPort, { 'backend-protocol': 'HTTPS' }),
      // Added and deleted by a reload.
      ...(extra.withAdded === true ? [externalNameService('added', 'echo')] : []),
      ing('added.test', 'added', port),
    ];
  }

  before(async () => {
    echo = await startWhoami({ host: '127.0.0.2', port: 0, name: 'echo' });
    eu = await startWhoami({ host: '127.0.0.3', port: 0, name: 'eu-server' });
    secure = https.createServer(await testCertificate(), (_req, res) => res.end('secure'));
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.3', resolve));
    gw = await startTestGateway(topologyOf(objects()), { lookup: tableLookup(table, asked) });
  });

  after(async () => {
    await gw.close();
    await echo.close();
    await eu.close();
    await new Promise<void>((resolve) => secure.close(() => resolve()));
  });

  const get = (host: string) =>
    request(gw.httpPort, { host, path: '/get', headers: { accept: 'application/json' } });

  function reload(topology: Topology): void {
    const result = gw.gateway.reload(topology);
    assert.equal(result.ok, true);
  }

  test('an incomplete name is resolved, on the Ingress port when the Service has none', async () => {
    const reply = await get('short.test');
    assert.equal(reply.status, 200);
    assert.equal(echoOf(reply).name, 'echo');
    assert.ok(asked.includes('echo'));
    // $upstream_addr is the address connected to, as nginx's balancer has it.
    const line = await gw.access.waitFor(/\[default-short-\d+\]/);
    assert.match(line, new RegExp(`127\\.0\\.0\\.2:${echo.address.port}`));
  });

  test('without a port on the Service, with upstream-vhost: 200 and the vhost as Host', async () => {
    const reply = await get('noport.test');
    assert.equal(reply.status, 200);
    assert.equal(echoOf(reply).headers.host, 'nip.example');
  });

  test('a port on the Service: its targetPort, by the Ingress port number and by its name', async () => {
    const byNumber = await get('ported.test');
    assert.equal(byNumber.status, 200);
    assert.equal(echoOf(byNumber).name, 'echo');
    const byName = await get('named.test');
    assert.equal(byName.status, 200);
    assert.equal(echoOf(byName).name, 'echo');
  });

  test('an FQDN with its trailing dot', async () => {
    const reply = await get('dotted.test');
    assert.equal(reply.status, 200);
    assert.equal(echoOf(reply).name, 'echo');
  });

  test('a WebSocket upgrade reaches the resolved name too', async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/ws-external`, {
      headers: { host: 'short.test' },
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    const echoed = new Promise<string>((resolve) =>
      socket.once('message', (data) => resolve(data.toString())),
    );
    socket.send('over the name');
    assert.equal(await echoed, 'over the name');
    socket.close();
    const line = await gw.access.waitFor(/GET \/ws-external HTTP\/1\.1" 101/);
    assert.match(line, new RegExp(`127\\.0\\.0\\.2:${echo.address.port}`));
  });

  test('an HTTPS backend (backend-protocol HTTPS) on a name', async () => {
    const reply = await get('secure.test');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'secure');
  });

  test('a name that does not resolve: 502, and the error log names it', async () => {
    const reply = await get('invalid.test');
    assert.equal(reply.status, 502);
    const line = await gw.errors.waitFor(/invalid\.hostname could not be resolved/);
    assert.match(line, /while connecting to upstream/);
  });

  test('localhost, a loopback address and an invalid name are refused: 503 and a warning', async () => {
    const before = asked.length;
    for (const host of ['localhost.test', 'loopback.test', 'badname.test'])
      assert.equal((await get(host)).status, 503, host);
    assert.equal(asked.length, before);
    const refused = gw.gateway
      .snapshot()
      .topology.issues.filter((i) => i.code === 'EXTERNAL_NAME_REFUSED')
      .map((i) => i.origin?.name)
      .sort();
    assert.deepEqual(refused, ['badname', 'localhost', 'loopback']);
  });

  test('a new externalName takes effect on the next reload', async () => {
    reload(topologyOf(objects({ echoName: 'eu.nip.example' })));
    const reply = await get('named.test');
    assert.equal(reply.status, 200);
    assert.equal(echoOf(reply).name, 'eu-server');
    reload(topologyOf(objects()));
    assert.equal(echoOf(await get('named.test')).name, 'echo');
  });

  test('a Service added then deleted: 503, 200, 503', async () => {
    assert.equal((await get('added.test')).status, 503);
    reload(topologyOf(objects({ withAdded: true })));
    assert.equal((await get('added.test')).status, 200);
    reload(topologyOf(objects()));
    assert.equal((await get('added.test')).status, 503);
  });

  test('--disable-svc-external-name: no member at all (503) and a warning', async () => {
    const options: TopologyOptions = { disableServiceExternalName: true };
    const topology = topologyOf(objects(), options);
    reload(topology);
    try {
      assert.equal((await get('short.test')).status, 503);
      assert.equal((await get('named.test')).status, 503);
      assert.ok(
        topology.issues.some((i) => i.code === 'EXTERNAL_NAME_DISABLED' && i.origin?.name === 'short'),
      );
    } finally {
      reload(topologyOf(objects()));
    }
  });
});
