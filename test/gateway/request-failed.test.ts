// A request whose handling throws (a keepip bug, such as the far session-cookie-expires date that once
// threw while writing Set-Cookie) is answered 500 and logged [alert] GATEWAY_REQUEST_FAILED with the
// stack, instead of ending the process for every client, also when the throw comes from a step that runs
// later (after an auth answer). The handler is driven with a context whose snapshot read throws, and a
// real gateway with a throwing log sink.
import assert from 'node:assert/strict';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { attachConnection } from '../../src/gateway/connection.ts';
import type { GatewayRequest, GatewayResponse, HandlerContext } from '../../src/gateway/exchange.ts';
import { createRequestHandler } from '../../src/gateway/handler.ts';
import { memorySink } from '../fixtures/gateway/harness.ts';
import { startHeldBackend } from '../helpers/held-backend.ts';
import {
  exchange,
  httpRequest,
  ingressYaml,
  serviceYaml,
  startSecurityGateway,
  topologyFromYaml,
} from '../security/helpers.ts';

test('a handler that throws answers 500 and logs the stack; headers already sent: the connection is closed', () => {
  const lines: string[] = [];
  const ctx = {
    current: () => {
      throw new Error('snapshot exploded');
    },
    errorLog: {
      write: (level: string, id: number | null, message: string) => lines.push(`${level} ${id} ${message}`),
    },
  } as unknown as HandlerContext;
  const handler = createRequestHandler(ctx);
  for (const headersSent of [false, true]) {
    const socket = new PassThrough();
    attachConnection(socket, { id: 7 } as never);
    const answered: unknown[] = [];
    const res = {
      headersSent,
      writeHead(status: number) {
        answered.push(status);
        return res;
      },
      end(body?: Buffer) {
        answered.push(body?.toString());
        return res;
      },
      destroy() {
        answered.push('destroyed');
      },
    } as unknown as GatewayResponse;
    const req = { socket, headers: {}, method: 'GET', url: '/' } as unknown as GatewayRequest;
    assert.doesNotThrow(() => handler.onRequest(req, res));
    assert.deepEqual(answered, headersSent ? ['destroyed'] : [500, '500 Internal Server Error\n']);
  }
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^alert 7 GATEWAY_REQUEST_FAILED: Error: snapshot exploded\n\s+at /);
});

test('an upgrade whose handling throws closes that connection and logs the stack', () => {
  const lines: string[] = [];
  const ctx = {
    current: () => {
      throw new Error('snapshot exploded');
    },
    errorLog: {
      write: (level: string, _id: number | null, message: string) => lines.push(`${level} ${message}`),
    },
  } as unknown as HandlerContext;
  const socket = new PassThrough();
  attachConnection(socket, { id: 8 } as never);
  const tunnel = new PassThrough();
  const req = { socket, headers: {}, method: 'GET', url: '/' } as unknown as GatewayRequest;
  assert.doesNotThrow(() => createRequestHandler(ctx).onUpgrade(req, tunnel, Buffer.alloc(0)));
  assert.equal(tunnel.destroyed, true);
  assert.match(lines[0]!, /^alert GATEWAY_REQUEST_FAILED: Error: snapshot exploded/);
});

test('a request or upgrade that throws after its exchange began is ended: no request stays counted in flight', () => {
  const snapshot = { inflight: 0, retired: false, retire: () => {} };
  const ctx = {
    current: () => snapshot,
    active: { count: 0 },
    // The handling reaches admission, which this bare context cannot serve: a throw past beginExchange.
    errorLog: { write: () => {} },
  } as unknown as HandlerContext;
  const handler = createRequestHandler(ctx);
  const socket = new PassThrough();
  attachConnection(socket, { id: 9, requests: 0 } as never);
  const req = {
    socket,
    headers: {},
    method: 'GET',
    url: '/',
    httpVersion: '1.1',
  } as unknown as GatewayRequest;
  const res = {
    headersSent: false,
    writeHead: () => res,
    end: () => res,
  } as unknown as GatewayResponse;
  assert.doesNotThrow(() => handler.onRequest(req, res));
  assert.deepEqual([snapshot.inflight, ctx.active.count], [0, 0]);
  assert.doesNotThrow(() => handler.onUpgrade(req, new PassThrough(), Buffer.alloc(0)));
  assert.deepEqual([snapshot.inflight, ctx.active.count], [0, 0]);
});

test('a throw after an external auth answer (the refusal written later, outside onRequest) is answered and logged; the gateway serves on', async () => {
  const auth = http.createServer((_req, res) => res.writeHead(401).end());
  await new Promise<void>((resolve) => auth.listen(0, '127.0.0.1', resolve));
  const backend = await startHeldBackend({ hold: () => false });
  const authUrl = `http://127.0.0.1:${(auth.address() as AddressInfo).port}/check`;
  const topology = topologyFromYaml(
    [
      serviceYaml('app', backend.port),
      ingressYaml('guarded', '/guarded', 'app', { 'auth-url': authUrl }),
      ingressYaml('open', '/open', 'app'),
    ].join('\n'),
  );
  // A stand-in for a keepip bug on the refusal's path: its access log line throws.
  const access = memorySink();
  const write = access.write.bind(access);
  access.write = (line) => {
    if (line.includes('/guarded')) throw new Error('log line exploded');
    write(line);
  };
  const gw = await startSecurityGateway(topology, { accessLog: access });
  try {
    // The 401 was written before its log line threw; the connection is then closed.
    const refused = await exchange(gw.port, '127.0.0.1', httpRequest('/guarded/x'));
    assert.notEqual(refused.status, 200);
    await gw.errors.waitFor(/GATEWAY_REQUEST_FAILED: Error: log line exploded/);
    const served = await exchange(gw.port, '127.0.0.1', httpRequest('/open/y'));
    assert.equal(served.status, 200);
    assert.deepEqual(backend.urls, ['/open/y']);
  } finally {
    await gw.close();
    await backend.close();
    await new Promise((resolve) => auth.close(resolve));
  }
});
