// Interop: nginx (http, `listen … proxy_protocol`, set_real_ip_from, real_ip_header proxy_protocol)
// behind `keepip lb`, for PROXY v1 and v2. A client bound to 127.0.0.77 connects through the LB, whose
// own address is 127.0.11.1: nginx must log 127.0.0.77 as the client and 127.0.11.1 as the peer, and
// the LB's health checks (opened with LOCAL headers) must not show up as broken headers.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startNginx } from '../helpers/nginx.ts';
import { freePort } from '../helpers/net.ts';
import { type Running, startKeepip } from '../helpers/process.ts';
import { exchange } from '../lb/helpers.ts';

const stops: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

async function startLbCli(args: string[]): Promise<{ lb: Running; port: number }> {
  const lb = startKeepip(['lb', '--listen', '127.0.0.1:0', ...args]);
  stops.push(() => lb.stop());
  const match = await lb.waitFor(/listening on 127\.0\.0\.1:(\d+)/);
  await lb.waitFor(/health check: tcp/);
  return { lb, port: Number(match[1]) };
}

for (const version of ['v1', 'v2'] as const) {
  test(`nginx behind keepip lb (PROXY ${version}) logs the client's address`, async () => {
    const port = await freePort();
    const nginx = await startNginx({
      http: (dir) => `
  log_format keepip 'client=$remote_addr peer=$realip_remote_addr pp=$proxy_protocol_addr:$proxy_protocol_port "$request"';
  server {
    listen 127.0.0.1:${port} proxy_protocol;
    set_real_ip_from 127.0.0.0/8;
    real_ip_header proxy_protocol;
    access_log ${dir}/lb.log keepip;
    location / { return 200 "seen $remote_addr\\n"; }
  }`,
      waitFor: [{ host: '127.0.0.1', port }],
    });
    stops.push(() => nginx.stop());
    const { port: lbPort } = await startLbCli([
      '--target',
      `127.0.0.1:${port}`,
      '--proxy-protocol',
      version,
      '--source-address',
      '127.0.11.1',
      '--health-check',
      'tcp',
      '--health-interval',
      '100ms',
    ]);
    const { received, localPort } = await exchange(
      lbPort,
      'GET /whoami HTTP/1.1\r\nHost: keepip.test\r\nConnection: close\r\n\r\n',
      { localAddress: '127.0.0.77' },
    );
    assert.match(received.toString(), /^HTTP\/1\.1 200/);
    assert.match(received.toString(), /seen 127\.0\.0\.77\n$/);
    const line = await nginx.waitForFile('lb.log', /client=\S+ peer=\S+ pp=\S+ "GET \/whoami HTTP\/1\.1"/);
    assert.equal(
      line[0],
      `client=127.0.0.77 peer=127.0.11.1 pp=127.0.0.77:${localPort} "GET /whoami HTTP/1.1"`,
    );
    // Let a few LOCAL-header health checks arrive, then look for complaints.
    await new Promise((r) => setTimeout(r, 350));
    assert.doesNotMatch(nginx.readFile('error.log'), /broken header/);
  });
}
