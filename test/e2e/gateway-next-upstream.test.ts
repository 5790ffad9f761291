// proxy-next-upstream, -tries, -timeout (and the ConfigMap's retry-non-idempotent) over real sockets:
// endpoints that refuse, time out or answer 502/503, and which one the client finally hears from.
// ingress-nginx's e2e tests (annotations/proxy.go "should build proxy next upstream",
// settings/proxy_next_upstream.go) check the nginx directives; these check what they do.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { echoOf, request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { refusingPort } from '../helpers/net.ts';

describe('proxy-next-upstream', () => {
  let good: RunningWhoami;
  let bad: Server;
  let badHits = 0;
  let gw: TestGateway;

  before(async () => {
    good = await startWhoami({ host: '127.0.0.1', port: 0, name: 'good' });
    // Answers 502 to everything, and counts.
    bad = http.createServer((req, res) => {
      badHits += 1;
      req.resume();
      res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway from the backend');
    });
    await new Promise<void>((resolve) => bad.listen(0, '127.0.0.1', resolve));
    const badPort = (bad.address() as AddressInfo).port;
    const refused = await refusingPort();
    const refusedToo = await refusingPort();
    // Round robin starts at the first endpoint listed: the bad one.
    const svc = (name: string, ports: number[]) => serviceWithEndpoints({ name, ports });
    const ing = (name: string, annotations: Record<string, string>) =>
      ingress({
        name,
        host: `${name}.example`,
        annotations,
        paths: [{ path: '/', service: `svc-${name}`, port: 80 }],
      });
    gw = await startTestGateway(
      topologyOf([
        ...svc('svc-http502', [badPort, good.address.port]),
        ...svc('svc-default502', [badPort, good.address.port]),
        ...svc('svc-refused', [refused, good.address.port]),
        ...svc('svc-streamed', [refused, good.address.port]),
        ...svc('svc-off', [refused, good.address.port]),
        ...svc('svc-tries', [refused, refusedToo, good.address.port]),
        ing('http502', { 'proxy-next-upstream': 'error timeout http_502' }),
        ing('default502', {}),
        ing('refused', {}),
        ing('streamed', { 'proxy-request-buffering': 'off' }),
        ing('off', { 'proxy-next-upstream': 'off' }),
        ing('tries', { 'proxy-next-upstream-tries': '2' }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await good.close();
    await new Promise<void>((resolve) => bad.close(() => resolve()));
  });

  const get = (host: string, method = 'GET') =>
    request(gw.httpPort, {
      host,
      method,
      headers: { accept: 'application/json' },
      ...(method === 'POST' ? { body: 'x' } : {}),
    });

  test('http_502 listed: a 502 answer goes on to the next endpoint; $upstream_status shows both', async () => {
    const before = badHits;
    const reply = await get('http502.example');
    assert.equal(reply.status, 200);
    assert.equal(echoOf(reply).name, 'good');
    assert.equal(badHits, before + 1);
    const line = await gw.access.waitFor(/\[default-svc-http502-80\]/);
    assert.match(line, / 502, 200 /);
  });

  test('by default (error timeout) a 502 answer is the answer', async () => {
    const reply = await get('default502.example');
    assert.equal(reply.status, 502);
    assert.equal(reply.body, 'bad gateway from the backend');
  });

  test('a refused connection goes on to the next endpoint by default, not with "off"', async () => {
    assert.equal(echoOf(await get('refused.example')).name, 'good');
    assert.equal((await get('off.example')).status, 502);
  });

  test('proxy-next-upstream-tries bounds the endpoints tried', async () => {
    // Two refusing endpoints first and two tries: the good third is never reached.
    assert.equal((await get('tries.example')).status, 502);
  });

  test('a POST that never reached a backend is tried on the next one', async () => {
    assert.equal(echoOf(await get('refused.example', 'POST')).name, 'good');
    // Streamed too (proxy-request-buffering off): the body is not taken before a backend accepted.
    const streamed = await get('streamed.example', 'POST');
    assert.equal(streamed.status, 200);
    assert.equal(echoOf(streamed).name, 'good');
  });
});
