// Rate and connection limits end to end (limit-connections, limit-rpm / limit-rps with
// limit-burst-multiplier, limit-whitelist, ConfigMap limit-req-status-code / limit-conn-status-code),
// as ingress-nginx's e2e test for limit-connections asserts it: 20 requests at once to a slow backend
// with a limit of 8 give exactly 8 × 200 and 12 × 503. Clients are distinct 127.x addresses, since
// limits key on the resolved client address. Deterministic: the held backend keeps requests in flight
// until released; the request limit uses limit-rpm, whose bucket leaks one request a minute.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { type HeldBackend, startHeldBackend } from '../helpers/held-backend.ts';
import { until } from '../lb/helpers.ts';

describe('rate and connection limits', () => {
  let backend: HeldBackend;
  let big: Server;
  let gw: TestGateway;

  before(async () => {
    backend = await startHeldBackend({ hold: (url) => url.startsWith('/sleep') });
    // 64 KiB in one response, for limit-rate.
    big = http.createServer((_req, res) => res.end(Buffer.alloc(64 * 1024, 'x')));
    await new Promise<void>((resolve) => big.listen(0, '127.0.0.1', resolve));
    const route = (name: string, annotations: Record<string, string>) =>
      ingress({ name, host: name, paths: [{ path: '/', service: 'slow', port: 80 }], annotations });
    const objects = [
      ...serviceWithEndpoints({ name: 'slow', ports: [backend.port] }),
      ...serviceWithEndpoints({ name: 'big', ports: [(big.address() as AddressInfo).port] }),
      controllerConfigMap({ 'limit-req-status-code': '429' }),
      route('limit-connections', { 'limit-connections': '8' }),
      route('limit-rpm', { 'limit-rpm': '2', 'limit-burst-multiplier': '1' }),
      route('limit-rpm-exempt', {
        'limit-rpm': '1',
        'limit-burst-multiplier': '1',
        'limit-whitelist': '127.0.9.9/32',
      }),
      route('bad-exempt', { 'limit-rpm': '1', 'limit-whitelist': '10.0.0.0/33' }),
      ingress({
        name: 'limit-rate',
        host: 'limit-rate',
        paths: [{ path: '/', service: 'big', port: 80 }],
        annotations: { 'limit-rate': '16', 'limit-rate-after': '16' },
      }),
    ];
    gw = await startTestGateway(topologyOf(objects));
  });

  after(async () => {
    backend?.release();
    await gw?.close();
    await backend?.close();
    big?.close();
  });

  test('limit-connections 8: of 20 requests in flight at once, 8 pass and 12 get 503', async () => {
    let answered = 0;
    const pending = Array.from({ length: 20 }, (_, i) =>
      request(gw.httpPort, { from: '127.0.8.1', host: 'limit-connections', path: `/sleep/${i}` }).then(
        (r) => {
          answered += 1;
          return r;
        },
      ),
    );
    // The 12 refusals are answered at once; the 8 others wait in the backend until released.
    await until(() => answered >= 12 && backend.urls.length >= 8, '12 answers and 8 requests in the backend');
    assert.equal(answered, 12);
    backend.release();
    const statuses = (await Promise.all(pending)).map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 8);
    assert.equal(statuses.filter((s) => s === 503).length, 12);
    // The slots are given back when the requests end: the next one passes.
    assert.equal(
      (await request(gw.httpPort, { from: '127.0.8.1', host: 'limit-connections', path: '/x' })).status,
      200,
    );
  });

  test('limit-rpm 2 × burst multiplier 1: 3 requests pass at once, the next gets limit-req-status-code 429', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1)
      statuses.push((await request(gw.httpPort, { from: '127.0.8.2', host: 'limit-rpm' })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    await gw.errors.waitFor(
      /limiting requests by zone "default\/limit-rpm" \(nginx\.ingress\.kubernetes\.io\/limit-rpm\), client: 127\.0\.8\.2/,
    );
    // Another client has its own bucket.
    assert.equal((await request(gw.httpPort, { from: '127.0.8.3', host: 'limit-rpm' })).status, 200);
  });

  test('limit-whitelist: a listed client is never limited', async () => {
    for (let i = 0; i < 5; i += 1)
      assert.equal((await request(gw.httpPort, { from: '127.0.9.9', host: 'limit-rpm-exempt' })).status, 200);
    const other = [];
    for (let i = 0; i < 3; i += 1)
      other.push((await request(gw.httpPort, { from: '127.0.9.10', host: 'limit-rpm-exempt' })).status);
    assert.deepEqual(other, [200, 200, 429]);
  });

  test('an invalid limit-whitelist fails closed: 503', async () => {
    assert.equal((await request(gw.httpPort, { from: '127.0.8.4', host: 'bad-exempt' })).status, 503);
  });

  test('limit-rate 16 KB/s after 16 KB: a 64 KiB body takes at least 2 s (nginx: one second ahead, then the rate)', async () => {
    const started = Date.now();
    const reply = await request(gw.httpPort, {
      from: '127.0.8.5',
      host: 'limit-rate',
      path: '/big',
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.body.length, 64 * 1024);
    // A lower bound only: the throttle guarantees it, a slow machine only adds to it.
    const elapsed = Date.now() - started;
    // nginx's write filter: after limit-rate-after, rate × (seconds since the first byte + 1), so 64 − 16
    // − 16 KiB at 16 KiB/s.
    assert.ok(elapsed >= 1_900, `took ${elapsed} ms`);
  });
});
