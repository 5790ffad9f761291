// Interop: what `keepip lb` puts on the wire with PROXY v2 TLVs (CRC32C, UNIQUE_ID, AWS VPC endpoint),
// read by nginx (`listen … proxy_protocol`), not by keepip's own parser.
// Debian bookworm's nginx is 1.22.1: it has $proxy_protocol_addr/_port and
// $proxy_protocol_server_addr/_port, but no $proxy_protocol_tlv_* (1.23.2+), and it does not check
// CRC32C (HAProxy does: proxy-wire-haproxy.test.ts). What nginx 1.22 does with TLVs is skip them by
// the header's length field, and its debug log (Debian builds --with-debug) says how many bytes it
// skipped: that count, computed here from the spec, checks the length and the TLV sizes keepip wrote.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { exchange } from '../lb/helpers.ts';
import { metricSum, scrapeUntil } from '../helpers/metrics.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { type Running, startKeepip } from '../helpers/process.ts';

const VPCE = 'vpce-0123456789abcdef0'; // 22 characters

// TLV bytes after the 12-byte IPv4 address block, per the spec (type 1 + length 2 + value):
const CRC32C_TLV = 3 + 4;
const AWS_TLV = 3 + 1 + VPCE.length; // subtype 0x01, then the id
const UNIQUE_ID_TLV = 3 + 16;

const stops: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

describe('nginx proxy_protocol reads what keepip lb sends with PROXY v2 TLVs', () => {
  let nginx: RunningNginx;
  let lb: Running;
  let lbPort: number;
  let metricsPort: number;

  before(async () => {
    nginx = await startNginx({
      freePorts: 1,
      http: (dir, [port]) => `
  log_format wire 'pp=$proxy_protocol_addr:$proxy_protocol_port server=$proxy_protocol_server_addr:$proxy_protocol_server_port peer=$remote_addr:$remote_port "$request"';
  server {
    listen 127.0.0.1:${port} proxy_protocol;
    access_log ${dir}/wire.log wire;
    error_log ${dir}/debug.log debug;
    location / { return 200 "ok\\n"; }
  }`,
      waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
    });
    stops.push(() => nginx.stop());
    lb = startKeepip([
      'lb',
      '--listen',
      '127.0.0.1:0',
      '--target',
      `127.0.0.1:${nginx.ports[0]}`,
      '--proxy-protocol',
      'v2',
      '--crc32c',
      '--unique-id',
      '--vpc-endpoint-id',
      VPCE,
      '--source-address',
      '127.0.11.1',
      '--health-check',
      'http:/healthz',
      '--health-interval',
      '100ms',
      '--metrics',
      '127.0.0.1:0',
    ]);
    stops.push(() => lb.stop());
    lbPort = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]);
    metricsPort = Number((await lb.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\//))[1]);
  });

  test('the client, the listener and the TLV length nginx reads from the header', async () => {
    const { received, localPort } = await exchange(
      lbPort,
      'GET /wire HTTP/1.1\r\nHost: keepip.test\r\nConnection: close\r\n\r\n',
      { localAddress: '127.0.0.77' },
    );
    assert.match(received.toString(), /^HTTP\/1\.1 200 /);
    const line = await nginx.waitForFile('wire.log', /pp=127\.0\.0\.77:\S+ .*"GET \/wire HTTP\/1\.1"/);
    assert.match(
      line[0],
      new RegExp(
        `^pp=127\\.0\\.0\\.77:${localPort} server=127\\.0\\.0\\.1:${lbPort} peer=127\\.0\\.11\\.1:\\d+ `,
      ),
    );
    // The debug lines of that connection (nginx numbers connections: *N).
    const addresses = await nginx.waitForFile(
      'debug.log',
      new RegExp(
        `\\*(\\d+) PROXY protocol v2 src: 127\\.0\\.0\\.77 ${localPort}, dst: 127\\.0\\.0\\.1 ${lbPort}`,
      ),
    );
    const tlvBytes = CRC32C_TLV + AWS_TLV + UNIQUE_ID_TLV;
    assert.equal(tlvBytes, 52);
    await nginx.waitForFile(
      'debug.log',
      new RegExp(`\\*${addresses[1]} PROXY protocol v2 ${tlvBytes} bytes of tlv ignored`),
    );
  });

  test('the health checks, each opened by a LOCAL header with CRC32C and the AWS TLV, pass', async () => {
    const text = await scrapeUntil(
      '127.0.0.1',
      metricsPort,
      (t) => metricSum(t, 'keepip_lb_health_checks_total', { result: 'passed' }) >= 3,
      'three health checks passed',
    );
    assert.equal(metricSum(text, 'keepip_lb_health_checks_total', { result: 'failed' }), 0, text);
    // nginx 1.22 skips a LOCAL header by its length ("unsupported command 0"), then reads the check's
    // request: a wrong length would leave it parsing TLV bytes as HTTP.
    assert.match(
      nginx.readFile('wire.log'),
      /pp=-:- server=-:- peer=127\.0\.11\.1:\d+ "GET \/healthz HTTP\/1\.1"/,
    );
    assert.doesNotMatch(nginx.readFile('error.log') + nginx.readFile('debug.log'), /broken header/);
  });
});
