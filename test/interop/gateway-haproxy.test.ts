// Interop: Debian's HAProxy in TCP mode in front of keepip gateway, sending PROXY v2 (send-proxy-v2)
// on one frontend and v1 (send-proxy) on another: the client's address (a curl bound to 127.0.0.77 or
// .78) reaches the allowlist, the backend (X-Real-IP, X-Forwarded-For) and the access log.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { type RunningHaproxy, startHaproxy } from '../helpers/haproxy.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

describe('HAProxy (mode tcp, send-proxy / send-proxy-v2) in front of keepip gateway', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;
  let haproxy: RunningHaproxy;
  const ports = { v1: 0, v2: 0 };

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    gw = await startTestGateway(
      topologyOf([
        // Only HAProxy (connecting from 127.0.0.1) may send PROXY headers.
        controllerConfigMap({ 'use-proxy-protocol': 'true', 'proxy-real-ip-cidr': '127.0.0.1/32' }),
        ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
        ingress({
          name: 'web',
          host: 'web.example.com',
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations: { 'allowlist-source-range': '127.0.0.77/32' },
        }),
      ]),
    );
    haproxy = await startHaproxy({
      freePorts: 2,
      config: (_dir, [v1, v2]) =>
        [
          'frontend fe_v2',
          `  bind 127.0.0.1:${v2}`,
          '  default_backend be_v2',
          'backend be_v2',
          `  server gateway 127.0.0.1:${gw.httpPort} send-proxy-v2`,
          'frontend fe_v1',
          `  bind 127.0.0.1:${v1}`,
          '  default_backend be_v1',
          'backend be_v1',
          `  server gateway 127.0.0.1:${gw.httpPort} send-proxy`,
        ].join('\n'),
      waitFor: (picked) => picked.map((port) => ({ host: '127.0.0.1', port })),
    });
    [ports.v1, ports.v2] = haproxy.ports as [number, number];
  });

  after(async () => {
    await haproxy?.stop();
    await gw?.close();
    await backend?.close();
  });

  async function curl(port: number, from: string, path: string): Promise<{ status: string; body: string }> {
    const result = await runCommand(requireBinary('curl'), [
      '-s',
      '--interface',
      from,
      '-H',
      'Host: web.example.com',
      '-H',
      'Accept: application/json',
      '-w',
      '\n%{http_code}',
      `http://127.0.0.1:${port}${path}`,
    ]);
    const cut = result.stdout.lastIndexOf('\n');
    return { body: result.stdout.slice(0, cut), status: result.stdout.slice(cut + 1) };
  }

  for (const version of ['v2', 'v1'] as const) {
    test(`${version}: the allowed client passes and is seen by the backend and the access log`, async () => {
      const reply = await curl(ports[version], '127.0.0.77', `/${version}/allowed`);
      assert.equal(reply.status, '200', haproxy.output());
      const echo = JSON.parse(reply.body) as { remoteAddress: string; headers: Record<string, string> };
      assert.equal(echo.headers['x-real-ip'], '127.0.0.77');
      assert.equal(echo.headers['x-forwarded-for'], '127.0.0.77');
      assert.equal(echo.remoteAddress, '127.0.0.1');
      await gw.access.waitFor(
        new RegExp(`^127\\.0\\.0\\.77 - - \\[.*"GET /${version}/allowed HTTP/1\\.1" 200 `),
      );
    });

    test(`${version}: another client through the same HAProxy is refused with 403 and logged by its own address`, async () => {
      const reply = await curl(ports[version], '127.0.0.78', `/${version}/denied`);
      assert.equal(reply.status, '403');
      await gw.errors.waitFor(
        new RegExp(
          `access forbidden by rule, client: 127\\.0\\.0\\.78, server: web\\.example\\.com, request: "GET /${version}/denied HTTP/1\\.1"`,
        ),
      );
      await gw.access.waitFor(
        new RegExp(`^127\\.0\\.0\\.78 - - \\[.*"GET /${version}/denied HTTP/1\\.1" 403 `),
      );
    });
  }
});
