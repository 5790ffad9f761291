// Interop: HAProxy (`bind … accept-proxy`) behind `keepip lb`, for PROXY v1 and v2. A client bound
// to 127.0.0.77 connects through the LB (source address 127.0.11.1); HAProxy must log 127.0.0.77 and
// answer with it, and the LB's LOCAL-header health checks must be accepted without errors.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startHaproxy } from '../helpers/haproxy.ts';
import { freePort } from '../helpers/net.ts';
import { startKeepip } from '../helpers/process.ts';
import { exchange } from '../lb/helpers.ts';

const stops: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

for (const version of ['v1', 'v2'] as const) {
  test(`HAProxy accept-proxy behind keepip lb (PROXY ${version}) logs the client's address`, async () => {
    const port = await freePort();
    const haproxy = await startHaproxy({
      mode: 'http',
      config: `frontend fe
  bind 127.0.0.1:${port} accept-proxy
  option dontlognull
  log-format "client=%ci:%cp frontend=%ft request=%{+Q}r"
  http-request return status 200 content-type text/plain lf-string "seen %[src]\\n"`,
      waitFor: [{ host: '127.0.0.1', port }],
    });
    stops.push(() => haproxy.stop());
    const lb = startKeepip([
      'lb',
      '--listen',
      '127.0.0.1:0',
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
    stops.push(() => lb.stop());
    const lbPort = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]);
    const { received, localPort } = await exchange(
      lbPort,
      'GET /whoami HTTP/1.1\r\nHost: keepip.test\r\nConnection: close\r\n\r\n',
      { localAddress: '127.0.0.77' },
    );
    assert.match(received.toString(), /^HTTP\/1\.1 200/);
    assert.match(received.toString(), /seen 127\.0\.0\.77\n$/);
    const line = await haproxy.waitForLog(/client=\S+ frontend=fe request="GET \/whoami HTTP\/1\.1"/);
    assert.equal(line[0], `client=127.0.0.77:${localPort} frontend=fe request="GET /whoami HTTP/1.1"`);
    await new Promise((r) => setTimeout(r, 350));
    // Health checks (a LOCAL header, then close) are null connections: not logged. A rejected
    // header would be logged as a connection error instead.
    assert.deepEqual(haproxy.output().trim().split('\n'), [line[0]]);
  });
}
