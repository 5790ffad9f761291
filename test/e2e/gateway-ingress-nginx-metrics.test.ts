// ingress-nginx's metrics from a serving gateway: the nginx process metrics as its Grafana dashboard
// reads them (connections by state: a keep-alive connection between requests is waiting, one with a
// request in flight writing; connections accepted and handled, requests, CPU, memory, start time), and
// request metrics whose `method` label an HTTP/2 client cannot multiply.
import assert from 'node:assert/strict';
import http from '../../src/node-http.ts';
import http2 from 'node:http2';
import { after, before, test } from 'node:test';
import { createGatewayMetrics } from '../../src/gateway/metrics.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { topologyOf, webApp } from '../fixtures/gateway/manifests.ts';
import { type HeldBackend, startHeldBackend } from '../helpers/held-backend.ts';
import { completeResponses, openRaw } from '../helpers/net.ts';

let backend: HeldBackend;
let gw: TestGateway;
const metrics = createGatewayMetrics();

before(async () => {
  backend = await startHeldBackend({ hold: (url) => url.includes('hold') });
  const objects = [...webApp(backend.port)];
  gw = await startTestGateway(topologyOf(objects), { metrics });
});

after(async () => {
  backend.release();
  await gw.close();
  await backend.close();
});

/** The value of a series whose name and labels start as given. */
async function value(series: string): Promise<number> {
  const text = await metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(series));
  assert.ok(line !== undefined, `no ${series} in:\n${text}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

const state = (s: string) =>
  `nginx_ingress_controller_nginx_process_connections{controller_namespace="",controller_class="",controller_pod="",state="${s}"}`;

test('a keep-alive connection between requests is active and waiting; with a request in flight, writing', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const first = await request(gw.httpPort, { host: 'web.example.com', path: '/a', agent });
  assert.equal(first.status, 200);
  assert.deepEqual(
    [await value(state('active')), await value(state('waiting')), await value(state('writing'))],
    [1, 1, 0],
  );
  const held = request(gw.httpPort, { host: 'web.example.com', path: '/hold', agent });
  await backend.arrived(/hold/);
  assert.deepEqual([await value(state('active')), await value(state('writing'))], [1, 1]);
  backend.release();
  assert.equal((await held).status, 200);
  agent.destroy();
  assert.equal(await value('nginx_ingress_controller_nginx_process_requests_total{'), 2);
  assert.equal(
    await value(
      'nginx_ingress_controller_nginx_process_connections_total{controller_namespace="",controller_class="",controller_pod="",state="accepted"}',
    ),
    1,
  );
  assert.equal(await value('nginx_ingress_controller_nginx_process_num_procs{'), 1);
  assert.ok((await value('nginx_ingress_controller_nginx_process_cpu_seconds_total{')) > 0);
  assert.ok((await value('nginx_ingress_controller_nginx_process_resident_memory_bytes{')) > 10_000_000);
  const started = await value('nginx_ingress_controller_nginx_process_oldest_start_time_seconds{');
  assert.ok(started <= Date.now() / 1000 && started > Date.now() / 1000 - 3600, String(started));
});

test('an invented HTTP/2 method is counted as OTHER: a client cannot make one series per method', async () => {
  const session = http2.connect(`http://127.0.0.1:${gw.httpPort}`);
  try {
    for (const method of ['BREW', 'WHEN', 'GET']) {
      await new Promise<void>((resolve, reject) => {
        const stream = session.request({ ':method': method, ':path': '/m', ':authority': 'web.example.com' });
        stream.on('response', () => {});
        stream.resume();
        stream.on('end', () => resolve());
        stream.on('error', reject);
        stream.end();
      });
    }
  } finally {
    session.close();
  }
  const text = await metrics.registry.metrics();
  const methods = [...text.matchAll(/^nginx_ingress_controller_requests\{[^}]*method="([^"]+)"/gm)].map(
    (m) => m[1],
  );
  assert.ok(methods.includes('OTHER'), text);
  assert.ok(!methods.includes('BREW') && !methods.includes('WHEN'), text);
});

/** Reads the metric until it is `expected` (the gateway has read what was sent); bounded. */
async function settles(series: string, expected: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await value(series)) !== expected) {
    assert.ok(Date.now() < deadline, `${series} never became ${expected}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('a connection with part of a request head read is reading, as nginx counts it; a silent one waiting', async () => {
  const silent = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
  const slow = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
  try {
    await settles(state('active'), 2);
    assert.deepEqual([await value(state('reading')), await value(state('waiting'))], [0, 2]);
    slow.socket.write('GET /slow HTTP/1.1\r\nHost: web.exa');
    await settles(state('reading'), 1);
    assert.deepEqual([await value(state('waiting')), await value(state('writing'))], [1, 0]);
    slow.socket.write('mple.com\r\n\r\n');
    await slow.until((raw) => completeResponses(raw) === 1);
    assert.deepEqual([await value(state('reading')), await value(state('waiting'))], [0, 2]);
  } finally {
    silent.destroy();
    slow.destroy();
  }
});
