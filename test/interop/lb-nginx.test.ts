// Interop: nginx (http, `listen … proxy_protocol`, set_real_ip_from, real_ip_header proxy_protocol)
// behind `keepip lb`, for PROXY v1 and v2. A client bound to 127.0.0.77 connects through the LB, whose
// own address is 127.0.11.1: nginx must log 127.0.0.77 as the client and 127.0.11.1 as the peer, and
// the LB's health checks (opened with LOCAL headers) must not show up as broken headers: at least three
// checks pass (the LB's /metrics counts them), a second request is logged after them, and nginx's error
// log holds no broken header.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startNginx } from '../helpers/nginx.ts';
import { metricSum, scrapeUntil } from '../helpers/metrics.ts';
import { type Running, startKeepip } from '../helpers/process.ts';
import { exchange } from '../lb/helpers.ts';

const stops: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

const CHECKS = 'keepip_lb_health_checks_total';

async function startLbCli(args: string[]): Promise<{ lb: Running; port: number; metricsPort: number }> {
  const lb = startKeepip(['lb', '--listen', '127.0.0.1:0', '--metrics', '127.0.0.1:0', ...args]);
  stops.push(() => lb.stop());
  const match = await lb.waitFor(/listening on 127\.0\.0\.1:(\d+)/);
  const metrics = await lb.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/);
  await lb.waitFor(/health check: tcp/);
  return { lb, port: Number(match[1]), metricsPort: Number(metrics[1]) };
}

for (const version of ['v1', 'v2'] as const) {
  test(`nginx behind keepip lb (PROXY ${version}) logs the client's address`, async () => {
    const nginx = await startNginx({
      freePorts: 1,
      http: (dir, [port]) => `
  log_format keepip 'client=$remote_addr peer=$realip_remote_addr pp=$proxy_protocol_addr:$proxy_protocol_port "$request"';
  server {
    listen 127.0.0.1:${port} proxy_protocol;
    set_real_ip_from 127.0.0.0/8;
    real_ip_header proxy_protocol;
    access_log ${dir}/lb.log keepip;
    location / { return 200 "seen $remote_addr\\n"; }
  }`,
      waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
    });
    stops.push(() => nginx.stop());
    const { port: lbPort, metricsPort } = await startLbCli([
      '--target',
      `127.0.0.1:${nginx.ports[0]}`,
      '--proxy-protocol',
      version,
      '--source-address',
      '127.0.11.1',
      '--health-check',
      'tcp',
      '--health-interval',
      '100ms',
    ]);
    const get = (path: string) =>
      exchange(lbPort, `GET ${path} HTTP/1.1\r\nHost: keepip.test\r\nConnection: close\r\n\r\n`, {
        localAddress: '127.0.0.77',
      });
    const { received, localPort } = await get('/whoami');
    assert.match(received.toString(), /^HTTP\/1\.1 200/);
    assert.match(received.toString(), /seen 127\.0\.0\.77\n$/);
    const line = await nginx.waitForFile('lb.log', /client=\S+ peer=\S+ pp=\S+ "GET \/whoami HTTP\/1\.1"/);
    assert.equal(
      line[0],
      `client=127.0.0.77 peer=127.0.11.1 pp=127.0.0.77:${localPort} "GET /whoami HTTP/1.1"`,
    );
    // The checks ran: three passed, none failed.
    const text = await scrapeUntil(
      '127.0.0.1',
      metricsPort,
      (t) => metricSum(t, CHECKS, { result: 'passed' }) >= 3,
      'three health checks passed',
    );
    assert.equal(metricSum(text, CHECKS, { result: 'failed' }), 0, text);
    // A request after them is logged after them: nginx has read those checks by then.
    await get('/after-checks');
    await nginx.waitForFile('lb.log', /"GET \/after-checks HTTP\/1\.1"/);
    assert.doesNotMatch(nginx.readFile('error.log'), /broken header/);
  });
}
