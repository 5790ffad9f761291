// The ConfigMap's max-worker-connections (nginx's worker_connections) over real sockets: with 2, two
// kept-alive clients are served, a third connection is closed at once, counted and alerted, and the
// connections already open carry on; once one of them leaves, a new one is let in.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { controllerConfigMap, topologyOf, webApp } from '../fixtures/gateway/manifests.ts';
import { metricSum } from '../helpers/metrics.ts';
import { completeResponses, openRaw } from '../helpers/net.ts';

const REQUEST = 'GET / HTTP/1.1\r\nHost: web.example.com\r\n\r\n';

/** A kept-alive client: `get` sends one more request and resolves once its response is whole. */
async function keptAlive(port: number, from: string) {
  const conn = await openRaw({ host: '127.0.0.1', port, localAddress: from });
  let answered = 0;
  return {
    conn,
    async get(): Promise<string> {
      conn.socket.write(REQUEST);
      answered += 1;
      const raw = await conn.until((bytes) => completeResponses(bytes) >= answered);
      const text = raw.toString('latin1');
      const last = text.lastIndexOf('HTTP/1.1 ');
      return text.slice(last + 9, last + 12);
    },
  };
}

describe('max-worker-connections', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    gw = await startTestGateway(
      topologyOf([controllerConfigMap({ 'max-worker-connections': '2' }), ...webApp(backend.address.port)]),
    );
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  test('a connection over the limit is closed at once; the open ones carry on; a freed slot is reused', async () => {
    const first = await keptAlive(gw.httpPort, '127.0.0.91');
    const second = await keptAlive(gw.httpPort, '127.0.0.92');
    assert.equal(await first.get(), '200');
    assert.equal(await second.get(), '200');
    const third = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: '127.0.0.93' });
    await third.whenClosed();
    assert.equal(third.received().length, 0);
    await gw.errors.waitFor(
      /\[alert\] \d+#\d+: 2 worker_connections are not enough, connection from 127\.0\.0\.93:\d+ closed/,
    );
    const text = await gw.gateway.metrics.registry.metrics();
    assert.equal(
      metricSum(text, 'keepip_gateway_connections_closed_total', { reason: 'max_connections' }),
      1,
    );
    assert.equal(await first.get(), '200');
    // One leaves: once the gateway has seen that close, a new one is let in (each refusal is at once).
    first.conn.destroy();
    await first.conn.whenClosed();
    let admitted = false;
    for (let attempt = 0; attempt < 200 && !admitted; attempt++) {
      const next = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: '127.0.0.94' });
      next.socket.write(REQUEST);
      const raw = await next.until((bytes) => completeResponses(bytes) >= 1).catch(() => null);
      admitted = raw?.toString('latin1').startsWith('HTTP/1.1 200 ') === true;
      next.destroy();
    }
    assert.ok(admitted, 'a connection was let in after one left');
    assert.equal(await second.get(), '200');
    second.conn.destroy();
  });
});
