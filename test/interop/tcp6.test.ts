// Interop over IPv6 loopback (::1): PROXY TCP6 headers written by keepip lb and read by HAProxy and
// nginx, and written by HAProxy (send-proxy / send-proxy-v2) and read by keepip gateway. There is one
// IPv6 loopback address, so the client and the proxy in front of the reader are both ::1: what shows
// that the reader took the client from the header and not from the socket is the client's port (the
// header's) against the proxy's own (the socket's). A last case carries a TCP4 header over ::1.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { controllerConfigMap, topologyOf, webApp } from '../fixtures/gateway/manifests.ts';
import { exchange } from '../lb/helpers.ts';
import { startHaproxy } from '../helpers/haproxy.ts';
import { startNginx } from '../helpers/nginx.ts';
import { requireBinary, runCommand, startKeepip } from '../helpers/process.ts';

const REQUEST = 'GET /six HTTP/1.1\r\nHost: keepip.test\r\nConnection: close\r\n\r\n';

const stops: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

before(async () => {
  // ::1 must be usable here: a machine without IPv6 loopback fails this file with a clear reason.
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error) => reject(new Error(`cannot listen on [::1]: ${error.message}`)));
    server.listen(0, '::1', () => server.close(() => resolve()));
  });
});

async function startLb(version: 'v1' | 'v2', target: number): Promise<number> {
  const lb = startKeepip([
    'lb',
    '--listen',
    '[::1]:0',
    '--target',
    `[::1]:${target}`,
    '--proxy-protocol',
    version,
    '--source-address',
    '::1',
  ]);
  stops.push(() => lb.stop());
  return Number((await lb.waitFor(/listening on \[::1\]:(\d+)/))[1]);
}

for (const version of ['v1', 'v2'] as const) {
  test(`keepip lb on [::1] -> HAProxy accept-proxy on [::1]: PROXY ${version} TCP6`, async () => {
    const haproxy = await startHaproxy({
      mode: 'http',
      freePorts: 1,
      portHost: '::1',
      config: (_dir, [port]) => `frontend fe
  bind ::1:${port} accept-proxy
  http-request return status 200 content-type text/plain lf-string "src=%[src] sport=%[src_port] dst=%[dst] dport=%[dst_port] peer=%[fc_src] peerport=%[fc_src_port]\\n"`,
      waitFor: ([port]) => [{ host: '::1', port: port! }],
    });
    stops.push(() => haproxy.stop());
    const lbPort = await startLb(version, haproxy.ports[0]!);
    const { received, localPort } = await exchange(lbPort, REQUEST, { host: '::1', localAddress: '::1' });
    const text = received.toString();
    assert.match(text, /^HTTP\/1\.1 200 /, text);
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    const peerPort = /peerport=(\d+)/.exec(body)?.[1];
    assert.equal(body, `src=::1 sport=${localPort} dst=::1 dport=${lbPort} peer=::1 peerport=${peerPort}\n`);
    assert.notEqual(peerPort, `${localPort}`, 'the client port comes from the header, not the socket');
  });

  test(`keepip lb on [::1] -> nginx proxy_protocol on [::1]: PROXY ${version} TCP6`, async () => {
    const nginx = await startNginx({
      freePorts: 1,
      portHost: '::1',
      http: (dir, [port]) => `
  log_format six 'pp=$proxy_protocol_addr:$proxy_protocol_port server=$proxy_protocol_server_addr:$proxy_protocol_server_port peer=$remote_addr:$remote_port "$request"';
  server {
    listen [::1]:${port} proxy_protocol;
    access_log ${dir}/six.log six;
    location / { return 200 "ok\\n"; }
  }`,
      waitFor: ([port]) => [{ host: '::1', port: port! }],
    });
    stops.push(() => nginx.stop());
    const lbPort = await startLb(version, nginx.ports[0]!);
    const { received, localPort } = await exchange(lbPort, REQUEST, { host: '::1', localAddress: '::1' });
    assert.match(received.toString(), /^HTTP\/1\.1 200 /);
    const line = await nginx.waitForFile('six.log', /^pp=.*"GET \/six HTTP\/1\.1"$/m);
    const peerPort = /peer=::1:(\d+)/.exec(line[0])?.[1];
    assert.equal(
      line[0],
      `pp=::1:${localPort} server=::1:${lbPort} peer=::1:${peerPort} "GET /six HTTP/1.1"`,
    );
    assert.notEqual(peerPort, `${localPort}`);
  });
}

describe('HAProxy send-proxy / send-proxy-v2 into keepip gateway on [::1]', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;
  const ports = { v2: 0, v1: 0, v4client: 0 };

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    stops.push(() => backend.close());
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({
          'use-proxy-protocol': 'true',
          'proxy-real-ip-cidr': '::1/128',
          'log-format-upstream':
            '$remote_addr $remote_port pp=$proxy_protocol_addr:$proxy_protocol_port peer=$realip_remote_addr "$request" $status',
        }),
        ...webApp(backend.address.port),
      ]),
      { http: { host: '::1', port: 0 }, https: null },
    );
    stops.push(() => gw.close());
    const haproxy = await startHaproxy({
      freePorts: 3,
      portHost: '::1',
      config: (_dir, [v2, v1, v4client]) =>
        [
          'frontend fe_v2',
          `  bind ::1:${v2}`,
          '  default_backend be_v2',
          'frontend fe_v1',
          `  bind ::1:${v1}`,
          '  default_backend be_v1',
          'frontend fe_v4client',
          `  bind 127.0.0.1:${v4client}`,
          '  default_backend be_v2',
          'backend be_v2',
          `  server gateway ::1:${gw.httpPort} send-proxy-v2`,
          'backend be_v1',
          `  server gateway ::1:${gw.httpPort} send-proxy`,
        ].join('\n'),
      waitFor: ([v2, v1, v4client]) => [
        { host: '::1', port: v2! },
        { host: '::1', port: v1! },
        { host: '127.0.0.1', port: v4client! },
      ],
    });
    stops.push(() => haproxy.stop());
    [ports.v2, ports.v1, ports.v4client] = haproxy.ports as [number, number, number];
  });

  /** curl through HAProxy; the client's own port comes back from curl's %{local_port}. */
  async function curl(url: string, from: string) {
    const result = await runCommand(requireBinary('curl'), [
      '-sg',
      '--interface',
      from,
      '-H',
      'Host: web.example.com',
      '-H',
      'Accept: application/json',
      '-w',
      '\n%{http_code} %{local_port}',
      url,
    ]);
    const cut = result.stdout.lastIndexOf('\n');
    const [status, localPort] = result.stdout.slice(cut + 1).split(' ');
    const echo = JSON.parse(result.stdout.slice(0, cut)) as { headers: Record<string, string> };
    return { status, localPort, headers: echo.headers };
  }

  for (const version of ['v2', 'v1'] as const) {
    test(`${version}: a ::1 client through HAProxy on ::1 reaches the backend and the log as itself`, async () => {
      const reply = await curl(`http://[::1]:${ports[version]}/${version}`, '::1');
      assert.equal(reply.status, '200');
      assert.equal(reply.headers['x-real-ip'], '::1');
      assert.equal(reply.headers['x-forwarded-for'], '::1');
      const line = await gw.access.waitFor(new RegExp(`"GET /${version} HTTP/1\\.1" 200$`));
      assert.equal(
        line,
        `::1 ${reply.localPort} pp=::1:${reply.localPort} peer=::1 "GET /${version} HTTP/1.1" 200`,
      );
    });
  }

  test('v2: an IPv4 client through HAProxy reaches the gateway on ::1 in a TCP4 header', async () => {
    const reply = await curl(`http://127.0.0.1:${ports.v4client}/v4client`, '127.0.0.77');
    assert.equal(reply.status, '200');
    assert.equal(reply.headers['x-real-ip'], '127.0.0.77');
    const line = await gw.access.waitFor(/"GET \/v4client HTTP\/1\.1" 200$/);
    assert.equal(
      line,
      `127.0.0.77 ${reply.localPort} pp=127.0.0.77:${reply.localPort} peer=::1 "GET /v4client HTTP/1.1" 200`,
    );
  });
});
