// add-headers values with nginx variables, expanded when each head is written (header-templates.ts):
// what a user sees beyond the nginx differential (response-headers-differential-nginx): the same
// $request_id in the head and the access log line, the upstream's address, status and fields on a
// proxied answer (read while the proxy runs) and on a 502, the location's Ingress, the gateway's own 404, and an unknown variable (""
// and a start-up warning).
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import http from '../../src/node-http.ts';
import { snapshotEvents } from '../../src/gateway/gateway.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  configMap,
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';

const ADD_HEADERS = {
  'X-Rid': '$request_id',
  'X-Up-Addr': '$upstream_addr',
  'X-Up-Status': '$upstream_status',
  'X-Up-Kept': 'kept=$upstream_http_x_kept',
  'X-Status': '$status',
  'X-Gone': '$http_x_absent',
  'X-Unknown': 'a$no_such_variable',
  'X-Where': '$namespace/$ingress_name/$service_name',
};

describe('add-headers values with variables', () => {
  let backend: Server;
  let backendPort: number;
  let gw: TestGateway;

  before(async () => {
    backend = http.createServer((_req, res) => {
      res.writeHead(200, { 'x-gone': 'from-backend', 'x-kept': 'k', 'content-length': 2 });
      res.end('ok');
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    backendPort = (backend.address() as AddressInfo).port;
    const objects = [
      controllerConfigMap({
        'add-headers': 'ingress-nginx/add',
        'log-format-upstream': 'rid=$request_id req_id=$req_id status=$status',
      }),
      configMap('add', 'ingress-nginx', ADD_HEADERS),
      ...serviceWithEndpoints({ name: 'app', ports: [backendPort] }),
      // No endpoint listens on port 1: a 502.
      ...serviceWithEndpoints({ name: 'down', ports: [1] }),
      ingress({ name: 'web', host: 'app.test', paths: [{ path: '/', service: 'app', port: 80 }] }),
      ingress({ name: 'broken', host: 'down.test', paths: [{ path: '/', service: 'down', port: 80 }] }),
    ];
    gw = await startTestGateway(topologyOf(objects));
  });

  after(async () => {
    await gw?.close();
    backend?.closeAllConnections();
    await new Promise<void>((resolve) => backend?.close(() => resolve()));
  });

  it("a proxied answer: the upstream's address and status, the location's Ingress, the backend's field a template empties removed", async () => {
    const reply = await request(gw.httpPort, { host: 'app.test', path: '/' });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['x-up-addr'], `127.0.0.1:${backendPort}`);
    assert.equal(reply.headers['x-up-status'], '200');
    assert.equal(reply.headers['x-status'], '200');
    assert.equal(reply.headers['x-where'], 'default/web/app');
    assert.equal(reply.headers['x-gone'], undefined);
    assert.equal(reply.headers['x-kept'], 'k');
    assert.equal(reply.headers['x-up-kept'], 'kept=k');
    assert.equal(reply.headers['x-unknown'], 'a');
  });

  it('the head and the access log line carry the same $request_id, drawn by keepip even when the client sent its own X-Request-ID', async () => {
    const own = await request(gw.httpPort, { host: 'app.test', path: '/own' });
    const ownLine = await gw.access.waitFor(new RegExp(`rid=${own.headers['x-rid']} `));
    assert.match(String(own.headers['x-rid']), /^[0-9a-f]{32}$/);
    assert.match(ownLine, /req_id=([0-9a-f]{32}) status=200$/);
    const theirs = await request(gw.httpPort, {
      host: 'app.test',
      path: '/theirs',
      headers: { 'X-Request-ID': 'client-chosen-id' },
    });
    const rid = String(theirs.headers['x-rid']);
    assert.match(rid, /^[0-9a-f]{32}$/);
    assert.equal(
      await gw.access.waitFor(/req_id=client-chosen-id /),
      `rid=${rid} req_id=client-chosen-id status=200`,
    );
  });

  it("a 502: the address tried and the gateway's status", async () => {
    const reply = await request(gw.httpPort, { host: 'down.test', path: '/' });
    assert.equal(reply.status, 502);
    assert.equal(reply.headers['x-status'], '502');
    assert.equal(reply.headers['x-up-addr'], '127.0.0.1:1');
    assert.equal(reply.headers['x-where'], 'default/broken/down');
  });

  it("the default server's 404: no upstream (those fields left out), no location", async () => {
    const reply = await request(gw.httpPort, { host: 'nowhere.test', path: '/' });
    assert.equal(reply.status, 404);
    assert.equal(reply.headers['x-status'], '404');
    assert.equal(reply.headers['x-up-addr'], undefined);
    assert.equal(reply.headers['x-up-status'], undefined);
    assert.equal(reply.headers['x-up-kept'], 'kept=');
    assert.equal(reply.headers['x-where'], '//');
    assert.match(String(reply.headers['x-rid']), /^[0-9a-f]{32}$/);
  });

  it('an unknown variable is named in a start-up warning', () => {
    const warnings = snapshotEvents(gw.gateway.snapshot()).filter((e) => e.event === 'add-headers');
    assert.deepEqual(
      warnings.map((e) => e.message),
      ['add-headers x-unknown: variable $no_such_variable is not one keepip expands; it expands to ""'],
    );
  });
});
