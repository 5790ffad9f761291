// $upstream_connect_time and $upstream_header_time over real sockets, and the histograms ingress-nginx
// fills from them (connect_duration_seconds, header_duration_seconds): the head's arrival is timed
// apart from the body's end, a kept-alive connection connects in 0, and an attempt that never
// connected shows its whole time, as nginx prints it. Times are checked by lower bounds and by their
// order (connect ≤ header ≤ response), never by how fast the machine is.
import assert from 'node:assert/strict';
import type { RequestListener, Server } from 'node:http';
import http from '../../src/node-http.ts';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request, startTestGateway, type TestGateway, testCertificate } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { metricSum } from '../helpers/metrics.ts';
import { refusingPort } from '../helpers/net.ts';

const FORMAT =
  'uri=$request_uri c=$upstream_connect_time h=$upstream_header_time r=$upstream_response_time s=$upstream_status';
const LINE = /^uri=(\S+) c=(.+) h=(.+) r=(.+) s=(.+)$/;

/** The times of the access log line for `uri` (lists after retries stay text). */
async function timesOf(
  gw: TestGateway,
  uri: string,
): Promise<{ c: string; h: string; r: string; s: string }> {
  const escaped = uri.replace(/[?]/g, '\\?');
  const line = await gw.access.waitFor(new RegExp(`^uri=${escaped} `));
  const [, , c, h, r, s] = LINE.exec(line) ?? [];
  assert.ok(c !== undefined && h !== undefined && r !== undefined && s !== undefined, line);
  return { c, h, r, s };
}

describe('upstream connect and header times', () => {
  let backend: Server;
  let secure: https.Server;
  let gw: TestGateway;
  /** Answers held by the backend until the test lets them go. */
  const heldHeads = new Map<string, () => void>();
  const heldBodies = new Map<string, () => void>();
  const arrivals = new Map<string, () => void>();

  const arrived = (url: string) =>
    new Promise<void>((resolve) => {
      if (heldHeads.has(url) || heldBodies.has(url)) resolve();
      else arrivals.set(url, resolve);
    });

  before(async () => {
    const answer: RequestListener = (req, res) => {
      const url = req.url ?? '/';
      req.resume();
      if (url.startsWith('/late-head')) {
        heldHeads.set(url, () => res.end('late head'));
      } else if (url.startsWith('/late-body')) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('head and a first piece');
        heldBodies.set(url, () => res.end(' and the rest'));
      } else {
        res.end('at once');
      }
      arrivals.get(url)?.();
    };
    backend = http.createServer(answer);
    secure = https.createServer(await testCertificate(), answer);
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as AddressInfo).port;
    const securePort = (secure.address() as AddressInfo).port;
    const refused = await refusingPort();
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({ 'log-format-upstream': FORMAT }),
        ...serviceWithEndpoints({ name: 'web', ports: [port] }),
        ...serviceWithEndpoints({ name: 'half', ports: [refused, port] }),
        ingress({ name: 'web', host: 'web.example.com', paths: [{ path: '/', service: 'web', port: 80 }] }),
        ...serviceWithEndpoints({ name: 'secure', ports: [securePort] }),
        ingress({
          name: 'secure',
          host: 'secure.example.com',
          paths: [{ path: '/', service: 'secure', port: 80 }],
          annotations: { 'backend-protocol': 'HTTPS' },
        }),
        ingress({
          name: 'half',
          host: 'half.example.com',
          paths: [{ path: '/', service: 'half', port: 80 }],
        }),
      ]),
    );
  });
  after(async () => {
    await gw.close();
    for (const server of [backend, secure]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a head that comes late: header time counts the wait, and connect ≤ header ≤ response', async () => {
    const pending = request(gw.httpPort, { host: 'web.example.com', path: '/late-head' });
    await arrived('/late-head');
    await sleep(400); // a lower bound on the header time, whatever the machine's load
    heldHeads.get('/late-head')?.();
    assert.equal((await pending).status, 200);
    const t = await timesOf(gw, '/late-head');
    assert.equal(t.s, '200');
    assert.ok(Number(t.h) >= 0.4, `header time ${t.h}`);
    assert.ok(Number(t.c) <= Number(t.h) && Number(t.h) <= Number(t.r), JSON.stringify(t));
    assert.ok(Number(t.c) < 0.4, `connect time ${t.c} counts the wait for the head`);
  });

  test('a body that ends late: the header time is the head, not the end', async () => {
    const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.get(
        {
          host: '127.0.0.1',
          port: gw.httpPort,
          path: '/late-body',
          headers: { host: 'web.example.com' },
          agent: false,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          // The head is with the client: 250 ms more before the rest of the body.
          void sleep(250).then(() => heldBodies.get('/late-body')?.());
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
    });
    assert.equal(reply.body, 'head and a first piece and the rest');
    const t = await timesOf(gw, '/late-body');
    assert.ok(Number(t.r) - Number(t.h) >= 0.249, JSON.stringify(t));
  });

  test('a kept-alive connection connects in 0', async () => {
    // The two requests above left a connection to the backend idle in the pool.
    assert.equal((await request(gw.httpPort, { host: 'web.example.com', path: '/again' })).status, 200);
    const t = await timesOf(gw, '/again');
    assert.equal(t.c, '0.000');
  });

  test('after a refused endpoint: one time per attempt, the refused one its whole time', async () => {
    // Round robin over [refused, live]: one of two requests tries the refused endpoint first.
    for (const n of [1, 2])
      assert.equal((await request(gw.httpPort, { host: 'half.example.com', path: `/half${n}` })).status, 200);
    const lines = [await timesOf(gw, '/half1'), await timesOf(gw, '/half2')];
    const retried = lines.find((t) => t.s.includes(', '));
    assert.ok(retried !== undefined, JSON.stringify(lines));
    assert.equal(retried.s, '502, 200');
    const [connect, header, response] = [retried.c, retried.h, retried.r].map((list) => list.split(', '));
    // nginx prints an attempt's response time where it never connected or got a head.
    assert.equal(connect?.[0], response?.[0]);
    assert.equal(header?.[0], response?.[0]);
    assert.equal(connect?.length, 2);
    assert.equal(header?.length, 2);
  });

  test('an HTTPS backend (undici): the connect time is until the request went out, not the wait for the head', async () => {
    const pending = request(gw.httpPort, { host: 'secure.example.com', path: '/late-head-tls' });
    await arrived('/late-head-tls');
    await sleep(400);
    heldHeads.get('/late-head-tls')?.();
    assert.equal((await pending).status, 200);
    const t = await timesOf(gw, '/late-head-tls');
    assert.ok(Number(t.h) >= 0.4 && Number(t.c) < 0.4 && Number(t.h) <= Number(t.r), JSON.stringify(t));
    assert.equal(
      (await request(gw.httpPort, { host: 'secure.example.com', path: '/tls-again' })).status,
      200,
    );
    // undici starts a request when its connection is ready: at once on a kept-alive one (not a
    // clock's exact 0 as keepip's own HTTP client reports, so only bounded here).
    assert.ok(Number((await timesOf(gw, '/tls-again')).c) < 0.4);
  });

  test('connect_duration_seconds and header_duration_seconds, per request of the location', async () => {
    const text = await gw.gateway.metrics.registry.metrics();
    const labels = { ingress: 'web', status: '200' };
    const requests = metricSum(text, 'nginx_ingress_controller_requests', labels);
    assert.equal(requests, 3);
    assert.equal(metricSum(text, 'nginx_ingress_controller_connect_duration_seconds_count', labels), 3);
    assert.equal(metricSum(text, 'nginx_ingress_controller_header_duration_seconds_count', labels), 3);
    // The late head's 400 ms are in the header time, not in the connect time.
    assert.ok(metricSum(text, 'nginx_ingress_controller_header_duration_seconds_sum', labels) >= 0.4);
    assert.ok(metricSum(text, 'nginx_ingress_controller_connect_duration_seconds_sum', labels) < 0.4);
    assert.ok(
      metricSum(text, 'nginx_ingress_controller_header_duration_seconds_bucket', { ...labels, le: '0.25' }) <=
        2,
    );
  });
});
