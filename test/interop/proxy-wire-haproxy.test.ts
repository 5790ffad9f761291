// Interop: what `keepip lb` puts on the wire with PROXY v2 TLVs (CRC32C, UNIQUE_ID, the AWS VPC
// endpoint TLV 0xEA), read by HAProxy (`bind … accept-proxy`), not by keepip's own parser. HAProxy
// verifies the CRC32C itself and refuses the connection when it is wrong (the control test below
// shows it does), answers with what it parsed (src, dst, fc_src, fc_pp_unique_id), and must accept
// the LOCAL headers that open the LB's HTTP health checks.
// Debian bookworm's HAProxy is 2.6: it has fc_pp_unique_id and fc_pp_authority but not fc_pp_tlv
// (2.9+), so the AWS TLV's value cannot be read back here; HAProxy's CRC32C covers its bytes, and
// test/proxy-protocol/golden.test.ts pins them byte for byte.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exchange } from '../lb/helpers.ts';
import { type RunningHaproxy, startHaproxy } from '../helpers/haproxy.ts';
import { metricSum, scrapeUntil } from '../helpers/metrics.ts';
import { rawExchange } from '../helpers/net.ts';
import { type Running, startKeepip } from '../helpers/process.ts';

const VPCE = 'vpce-0123456789abcdef0';
// An AWS NLB's header (CRC32C, AWS VPCE TLV, NOOP), as in test/proxy-protocol/golden.test.ts.
const AWS_CAPTURE = Buffer.from(
  '0d0a0d0a000d0a515549540a21110054ac1f0771ac1f0a1fc8f20050030004e8d6892dea001701767063652d30386432' +
    '62663135666163353030316339040024000000000000000000000000000000000000000000000000000000000000000000000000',
  'hex',
);
const REQUEST = 'GET /wire HTTP/1.1\r\nHost: keepip.test\r\nConnection: close\r\n\r\n';

/** The `key=value` pairs HAProxy's answer carries. */
function seen(response: Buffer): Record<string, string> {
  const text = response.toString('latin1');
  assert.match(text, /^HTTP\/1\.1 200 /, text);
  const body = text.slice(text.indexOf('\r\n\r\n') + 4).trim();
  return Object.fromEntries(body.split(' ').map((pair) => pair.split('=') as [string, string]));
}

async function startLb(args: string[]): Promise<{ lb: Running; port: number; metricsPort: number }> {
  const lb = startKeepip(['lb', ...args, '--metrics', '127.0.0.1:0']);
  stops.push(() => lb.stop());
  const port = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]);
  const metricsPort = Number((await lb.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\//))[1]);
  return { lb, port, metricsPort };
}

/** Waits until the LB's HTTP checks (each opened by a LOCAL header) have passed 3 times, none failed. */
async function assertChecksAccepted(metricsPort: number): Promise<void> {
  const text = await scrapeUntil(
    '127.0.0.1',
    metricsPort,
    (t) => metricSum(t, 'keepip_lb_health_checks_total', { result: 'passed' }) >= 3,
    'three health checks passed',
  );
  assert.equal(metricSum(text, 'keepip_lb_health_checks_total', { result: 'failed' }), 0, text);
}

const stops: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

describe('HAProxy accept-proxy reads what keepip lb sends with PROXY v2 TLVs', () => {
  let haproxy: RunningHaproxy;
  let port: number;

  before(async () => {
    haproxy = await startHaproxy({
      mode: 'http',
      freePorts: 1,
      config: (_dir, [p]) => `frontend fe
  bind 127.0.0.1:${p} accept-proxy
  option dontlognull
  http-request return status 200 content-type text/plain lf-string "src=%[src] sport=%[src_port] dst=%[dst] dport=%[dst_port] peer=%[fc_src] pp=%[fc_rcvd_proxy] uid=%[fc_pp_unique_id,hex] authority=%[fc_pp_authority]\\n"`,
      waitFor: ([p]) => [{ host: '127.0.0.1', port: p! }],
    });
    stops.push(() => haproxy.stop());
    port = haproxy.ports[0]!;
  });

  test('control: HAProxy refuses a header whose CRC32C does not match, wherever the damage is', async () => {
    const good = await rawExchange({
      host: '127.0.0.1',
      port,
      payload: Buffer.concat([AWS_CAPTURE, Buffer.from(REQUEST)]),
    });
    assert.equal(seen(good.received).src, '172.31.7.113');
    // One bit in the checksum itself, then one in the AWS TLV's value that the checksum covers.
    for (const offset of [32, 45]) {
      const bad = Buffer.from(AWS_CAPTURE);
      bad[offset]! ^= 0x01;
      const reply = await rawExchange({
        host: '127.0.0.1',
        port,
        payload: Buffer.concat([bad, Buffer.from(REQUEST)]),
      });
      assert.equal(reply.closedByServer, true);
      assert.equal(reply.received.length, 0, reply.received.toString());
    }
    // Both refusals logged before the next test takes its snapshot of HAProxy's output.
    await haproxy.waitForLog(/(?:Received an invalid PROXY protocol header[\s\S]*){2}/);
  });

  test('keepip lb (flags): CRC32C verified, client, listener and a 16-byte UNIQUE_ID per connection', async () => {
    const before = haproxy.output();
    const { port: lbPort, metricsPort } = await startLb([
      '--listen',
      '127.0.0.1:0',
      '--target',
      `127.0.0.1:${port}`,
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
    ]);
    const ids: string[] = [];
    for (const client of ['127.0.0.77', '127.0.0.78']) {
      const { received, localPort } = await exchange(lbPort, REQUEST, { localAddress: client });
      const got = seen(received);
      assert.deepEqual(
        { src: got.src, sport: got.sport, dst: got.dst, dport: got.dport, peer: got.peer, pp: got.pp },
        {
          src: client,
          sport: `${localPort}`,
          dst: '127.0.0.1',
          dport: `${lbPort}`,
          peer: '127.0.11.1',
          pp: '1',
        },
      );
      assert.match(got.uid ?? '', /^[0-9A-F]{32}$/);
      assert.equal(got.authority, '');
      ids.push(got.uid!);
    }
    assert.notEqual(ids[0], ids[1], 'a fresh UNIQUE_ID per connection');
    await assertChecksAccepted(metricsPort);
    assert.doesNotMatch(haproxy.output().slice(before.length), /invalid PROXY protocol header/);
  });

  test('keepip lb -f: the NLB annotations (target-group proxy_protocol_v2, VPC endpoint) reach HAProxy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keepip-wire-'));
    stops.push(async () => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'svc.yaml'), nlbService());
    const before = haproxy.output();
    const {
      lb,
      port: lbPort,
      metricsPort,
    } = await startLb([
      '-f',
      dir,
      '--service',
      'ingress-nginx/ingress-nginx-controller',
      '--listen',
      '127.0.0.1:0',
      '--target',
      `127.0.0.1:${port}`,
      '--crc32c',
      '--unique-id',
      '--health-interval',
      '100ms',
    ]);
    await lb.waitFor(/PROXY protocol: v2 with TLVs .*AWS VPC endpoint vpce-0fedcba9876543210/);
    const { received, localPort } = await exchange(lbPort, REQUEST, { localAddress: '127.0.0.79' });
    const got = seen(received);
    assert.equal(`${got.src}:${got.sport}`, `127.0.0.79:${localPort}`);
    assert.equal(got.peer, '127.0.11.9');
    assert.match(got.uid ?? '', /^[0-9A-F]{32}$/);
    await assertChecksAccepted(metricsPort);
    assert.doesNotMatch(haproxy.output().slice(before.length), /invalid PROXY protocol header/);
  });
});

/** An NLB Service as the AWS Load Balancer Controller reads it: PROXY v2 through the target group. */
function nlbService(): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ingress-nginx-controller
  namespace: ingress-nginx
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip
    service.beta.kubernetes.io/aws-load-balancer-target-group-attributes: proxy_protocol_v2.enabled=true
    service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol: http
    service.beta.kubernetes.io/aws-load-balancer-healthcheck-path: /healthz
    keepip.dev/vpc-endpoint-id: vpce-0fedcba9876543210
    keepip.dev/lb-source-address: 127.0.11.9
spec:
  type: LoadBalancer
  selector:
    app: ingress-nginx
  ports:
    - name: http
      port: 80
      targetPort: 80
      protocol: TCP
`;
}
