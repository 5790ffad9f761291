// Interop: HAProxy (`bind … accept-proxy`) behind `keepip lb`, for PROXY v1 and v2. A client bound
// to 127.0.0.77 connects through the LB (source address 127.0.11.1); HAProxy must log 127.0.0.77 and
// answer with it, and the LB's LOCAL-header health checks must be accepted without errors: at least
// three checks pass (the LB's /metrics counts them), then a second request is logged after them, and
// HAProxy's log holds the two requests and nothing else.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startHaproxy } from '../helpers/haproxy.ts';
import { metricSum, scrapeUntil } from '../helpers/metrics.ts';
import { startKeepip } from '../helpers/process.ts';
import { exchange } from '../lb/helpers.ts';

const stops: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

const CHECKS = 'keepip_lb_health_checks_total';

for (const version of ['v1', 'v2'] as const) {
  test(`HAProxy accept-proxy behind keepip lb (PROXY ${version}) logs the client's address`, async () => {
    const haproxy = await startHaproxy({
      mode: 'http',
      freePorts: 1,
      config: (_dir, [port]) => `frontend fe
  bind 127.0.0.1:${port} accept-proxy
  option dontlognull
  log-format "client=%ci:%cp frontend=%ft request=%{+Q}r"
  http-request return status 200 content-type text/plain lf-string "seen %[src]\\n"`,
      waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
    });
    stops.push(() => haproxy.stop());
    const lb = startKeepip([
      'lb',
      '--listen',
      '127.0.0.1:0',
      '--target',
      `127.0.0.1:${haproxy.ports[0]}`,
      '--proxy-protocol',
      version,
      '--source-address',
      '127.0.11.1',
      '--health-check',
      'tcp',
      '--health-interval',
      '100ms',
      '--metrics',
      '127.0.0.1:0',
    ]);
    stops.push(() => lb.stop());
    const lbPort = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]);
    const metricsPort = Number((await lb.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
    const get = (path: string) =>
      exchange(lbPort, `GET ${path} HTTP/1.1\r\nHost: keepip.test\r\nConnection: close\r\n\r\n`, {
        localAddress: '127.0.0.77',
      });
    const { received, localPort } = await get('/whoami');
    assert.match(received.toString(), /^HTTP\/1\.1 200/);
    assert.match(received.toString(), /seen 127\.0\.0\.77\n$/);
    const line = await haproxy.waitForLog(/client=\S+ frontend=fe request="GET \/whoami HTTP\/1\.1"/);
    assert.equal(line[0], `client=127.0.0.77:${localPort} frontend=fe request="GET /whoami HTTP/1.1"`);

    // The checks ran: three passed, none failed.
    const text = await scrapeUntil(
      '127.0.0.1',
      metricsPort,
      (t) => metricSum(t, CHECKS, { result: 'passed' }) >= 3,
      'three health checks passed',
    );
    assert.equal(metricSum(text, CHECKS, { result: 'failed' }), 0, text);
    // A request after them is logged after them: HAProxy has read those checks by then. Health checks
    // (a LOCAL header, then close) are null connections: not logged; a rejected header would be logged
    // as a connection error.
    await get('/after-checks');
    const after = await haproxy.waitForLog(/client=\S+ frontend=fe request="GET \/after-checks HTTP\/1\.1"/);
    assert.deepEqual(haproxy.output().trim().split('\n'), [line[0], after[0]]);
  });
}
