// The ConfigMap's upstream-keepalive-connections, -requests, -timeout and -time over real sockets, as
// nginx's keepalive, keepalive_requests, keepalive_timeout and keepalive_time in ingress-nginx's
// upstream block. The backend counts the connections it accepts and sees closed; the test waits on
// those counts (no sleep), except for keepalive_time, which needs that much time to have passed.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, test } from 'node:test';
import type { KeyPair } from '../../src/gateway/tls.ts';
import { request, startTestGateway, type TestGateway, testCertificate } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';

interface CountingBackend {
  port: number;
  opened: number;
  closed: number;
  /** Resolves once `check` holds (checked at each connection, close and request). */
  until(check: () => boolean, what: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Answers each request at once; with `holdUntil` n, holds the first ones until n are in flight. With
 * `tls`, an HTTPS backend.
 */
async function countingBackend(holdUntil = 0, tls?: KeyPair): Promise<CountingBackend> {
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  const held: ServerResponse[] = [];
  let holding = holdUntil > 0;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      held.push(res);
      if (held.length >= holdUntil) holding = false;
      if (!holding) for (const r of held.splice(0)) r.end('ok');
      wake();
    });
  };
  const server = tls === undefined ? http.createServer(handler) : https.createServer(tls, handler);
  // The backend keeps idle connections longer than any test: only the gateway's limits close them.
  server.keepAliveTimeout = 120_000;
  const backend: CountingBackend = {
    port: 0,
    opened: 0,
    closed: 0,
    until: (check, what) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(probe);
          reject(new Error(`${what}: opened ${backend.opened}, closed ${backend.closed}`));
        }, 15_000);
        const probe = () => {
          if (!check()) return;
          clearTimeout(timer);
          waiters.delete(probe);
          resolve();
        };
        waiters.add(probe);
        probe();
      }),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  // The TCP connections (for HTTPS, before the handshake).
  server.on('connection', (socket: Socket) => {
    backend.opened += 1;
    socket.on('close', () => {
      backend.closed += 1;
      wake();
    });
    wake();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend.port = (server.address() as AddressInfo).port;
  return backend;
}

/** A gateway in front of a counting backend (HTTPS with backend-protocol: HTTPS), reloadable. */
function keepaliveFixture(protocol: 'HTTP' | 'HTTPS') {
  const state: { backend?: CountingBackend; gw?: TestGateway } = {};
  const start = async (data: Record<string, string>, holdUntil = 0) => {
    const tls = protocol === 'HTTPS' ? await testCertificate() : undefined;
    const backend = await countingBackend(holdUntil, tls);
    state.backend = backend;
    const annotations: Record<string, string> = protocol === 'HTTPS' ? { 'backend-protocol': 'HTTPS' } : {};
    const topology = (values: Record<string, string>) =>
      topologyOf([
        controllerConfigMap(values),
        ...serviceWithEndpoints({ name: 'web', ports: [backend.port] }),
        ingress({
          name: 'web',
          host: 'web.example.com',
          annotations,
          paths: [{ path: '/', service: 'web', port: 80 }],
        }),
      ]);
    const gw = await startTestGateway(topology(data));
    state.gw = gw;
    return { backend, gw, reload: (values: Record<string, string>) => gw.gateway.reload(topology(values)) };
  };
  afterEach(async () => {
    await state.gw?.close();
    await state.backend?.close();
  });
  return start;
}

const get = async (gateway: TestGateway) => {
  assert.equal((await request(gateway.httpPort, { host: 'web.example.com' })).status, 200);
};

// What HTTP and HTTPS backends share; HTTPS pools (undici) have no count over all backends and no lifetime.
for (const protocol of ['HTTP', 'HTTPS'] as const) {
  describe(`upstream keep-alive to ${protocol} backends (upstream-keepalive-*)`, () => {
    const start = keepaliveFixture(protocol);

    test('by default one connection serves request after request', async () => {
      const { backend, gw } = await start({});
      for (let i = 0; i < 5; i++) await get(gw);
      assert.deepEqual([backend.opened, backend.closed], [1, 0]);
    });

    test('upstream-keepalive-requests 2: a connection closes after its second response', async () => {
      const { backend, gw } = await start({ 'upstream-keepalive-requests': '2' });
      for (let i = 0; i < 5; i++) await get(gw);
      await backend.until(() => backend.closed === 2, 'two connections closed');
      assert.equal(backend.opened, 3);
    });

    test('upstream-keepalive-connections 0: every connection closes after its response', async () => {
      const { backend, gw } = await start({ 'upstream-keepalive-connections': '0' });
      for (let i = 0; i < 3; i++) await get(gw);
      await backend.until(() => backend.closed === 3, 'three connections closed');
      assert.equal(backend.opened, 3);
    });

    test('upstream-keepalive-timeout 1: an idle connection is closed after a second', async () => {
      const { backend, gw } = await start({ 'upstream-keepalive-timeout': '1' });
      await get(gw);
      await backend.until(() => backend.closed === 1, 'the idle connection closed');
      await get(gw);
      assert.equal(backend.opened, 2);
    });
  });
}

describe('upstream keep-alive to HTTP backends: the count over all backends, the lifetime, a reload', () => {
  const start = keepaliveFixture('HTTP');

  test('upstream-keepalive-connections 2: of four idle connections, two are closed', async () => {
    const { backend, gw } = await start({ 'upstream-keepalive-connections': '2' }, 4);
    // The backend answers once all four are in flight: four connections at once.
    await Promise.all([get(gw), get(gw), get(gw), get(gw)]);
    assert.equal(backend.opened, 4);
    await backend.until(() => backend.closed === 2, 'two idle connections closed');
    // The two kept serve the next requests.
    await Promise.all([get(gw), get(gw)]);
    assert.equal(backend.opened, 4);
  });

  test('upstream-keepalive-time 1s: a connection older than that closes after its response', async () => {
    const { backend, gw } = await start({ 'upstream-keepalive-time': '1s' });
    await get(gw);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await get(gw);
    await backend.until(() => backend.closed === 1, 'the old connection closed after its response');
    assert.equal(backend.opened, 1);
    await get(gw);
    assert.equal(backend.opened, 2);
  });

  test('a reload to upstream-keepalive-connections 0 closes the next connection that goes idle', async () => {
    const { backend, gw, reload } = await start({});
    await get(gw);
    assert.equal(reload({ 'upstream-keepalive-connections': '0' }).ok, true);
    await get(gw);
    await backend.until(() => backend.closed === 1, 'the reused connection closed');
    assert.equal(backend.opened, 1);
  });
});
