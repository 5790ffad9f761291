// `keepip lb` as a user runs it: help, usage errors, flags mode, manifest mode with its warnings,
// SIGHUP re-registering targets, metrics, and a clean stop on SIGTERM.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runKeepip, startKeepip } from '../helpers/process.ts';
import { exchange, startTarget, type TestTarget } from './helpers.ts';
import { nlbManifest } from '../helpers/nlb-manifest.ts';

const stops: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});
async function namedTarget(name: string): Promise<TestTarget> {
  const t = await startTarget({ behave: (socket) => socket.end(name) });
  stops.push(() => t.close());
  return t;
}

test('keepip lb --help documents the flags and exits 0', async () => {
  const { code, stdout } = await runKeepip(['lb', '--help']);
  assert.equal(code, 0);
  for (const flag of [
    '--listen',
    '--target',
    '--proxy-protocol',
    '--source-address',
    '--source-ranges',
    '--preserve-client-ip',
    '--health-check',
    '--algorithm',
    '--metrics',
    '-f, --filename',
  ]) {
    assert.ok(stdout.includes(flag), flag);
  }
});

test('usage errors exit 2 with a message', async () => {
  const cases: [string[], RegExp][] = [
    [['lb', '--target', '127.0.0.1:1'], /--listen ADDR:PORT is required/],
    [['lb', '--listen', '127.0.0.1:0'], /--target/],
    [['lb', '--listen', '127.0.0.1:0', '--target', 'x:1'], /--target: "x" is not an IPv4 address/],
    [
      ['lb', '--listen', '127.0.0.1:0', '--target', '127.0.0.1:1', '--algorithm', 'random'],
      /--algorithm "random"/,
    ],
    [
      ['lb', '--listen', '127.0.0.1:0', '--target', '127.0.0.1:1', '--health-check', 'udp'],
      /--health-check "udp"/,
    ],
    [
      ['lb', '--listen', '127.0.0.1:0', '--target', '127.0.0.1:1', '--health-interval', '5s'],
      /needs --health-check/,
    ],
    [['lb', '--listen', '127.0.0.1:0', '--target', '127.0.0.1:1', '--crc32c'], /LB_TLVS_NEED_V2/],
    [
      ['lb', '--listen', '127.0.0.1:0', '--target', '127.0.0.1:1', '--source-ranges', '10.0.0.0/8,'],
      /--source-ranges: an empty entry/,
    ],
    [
      ['lb', '--listen', '127.0.0.1:0', '--target', '127.0.0.1:1', '--source-ranges', '10.0.0.0/33'],
      /--source-ranges: .*\[LB_BAD_SOURCE_RANGE\]/,
    ],
    [['lb', '--listen', '127.0.0.1:0', '--target', '127.0.0.1:1', '--source-ranges', ''], /an empty entry/],
    [['lb', '--frobnicate'], /Unknown option/],
  ];
  const results = await Promise.all(cases.map(([args]) => runKeepip(args)));
  for (const [i, [args, message]] of cases.entries()) {
    assert.equal(results[i]!.code, 2, args.join(' '));
    assert.match(results[i]!.stderr, message);
  }
});

test('flags mode: start-up lines, forwarding, metrics, and exit 0 on SIGTERM', async () => {
  const t = await namedTarget('a');
  const lb = startKeepip([
    'lb',
    '--listen',
    '127.0.0.1:0',
    '--target',
    `127.0.0.1:${t.port}`,
    '--proxy-protocol',
    'v2',
    '--unique-id',
    '--source-address',
    '127.0.11.1',
    '--preserve-client-ip',
    '--health-check',
    'http:/healthz',
    '--algorithm',
    'least-conn',
    '--metrics',
    '127.0.0.1:0',
  ]);
  stops.push(() => lb.stop());
  const port = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]);
  const metricsPort = Number((await lb.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
  await lb.waitFor(/algorithm: least-conn/);
  const out = lb.output();
  assert.match(out, /targets: 127\.0\.0\.1:\d+/);
  assert.match(out, /PROXY protocol: v2 with TLVs UNIQUE_ID/);
  assert.match(out, /source address: 127\.0\.11\.1; client IP preservation: on/);
  assert.match(out, /health check: http \/healthz on the traffic port every 10000 ms, timeout 6000 ms/);
  assert.match(out, /algorithm: least-conn/);
  // The target answers without reading the header: the bytes come back through the LB.
  assert.equal((await exchange(port, 'hi')).received.toString(), 'a');
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  assert.match(metrics, /keepip_lb_flows_total\{lb="127\.0\.0\.1:\d+"\} 1/);
  assert.match(metrics, /keepip_lb_proxy_headers_sent_total\{lb="127\.0\.0\.1:\d+",version="v2"\} 1/);
  assert.equal(await lb.stop(), 0);
  assert.match(lb.output(), /stopped/);
});

test('manifest mode: targets from the endpoints, warnings for unknown annotations, SIGHUP re-registers', async () => {
  const a = await namedTarget('a');
  const b = await namedTarget('b');
  const dir = mkdtempSync(join(tmpdir(), 'keepip-lb-cli-'));
  stops.push(async () => rmSync(dir, { recursive: true, force: true }));
  const manifest = (endpointPort: number) =>
    nlbManifest(endpointPort, {
      annotations: [
        'service.beta.kubernetes.io/aws-load-balancer-proxy-protocl: "*"',
        'keepip.dev/lb-source-address: 127.0.11.3',
      ],
    });
  const file = join(dir, 'service.yaml');
  writeFileSync(file, manifest(a.port));
  const lb = startKeepip(['lb', '-f', file, '--listen', '127.0.0.1:0']);
  stops.push(() => lb.stop());
  const port = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+) \(web\/edge\)/))[1]);
  await lb.waitFor(/algorithm: flow-hash/);
  assert.match(lb.output(), /UNKNOWN_LB_ANNOTATION/);
  assert.match(lb.output(), /aws-load-balancer-proxy-protocl/);
  assert.match(lb.output(), /targets: 127\.0\.0\.1:\d+ \(1 ready endpoint\(s\) of port tcp \(ip targets\)\)/);
  assert.match(lb.output(), /source address: 127\.0\.11\.3; client IP preservation: off/);
  assert.match(lb.output(), /health check: tcp on the traffic port every 10000 ms/);
  assert.equal((await exchange(port, '')).received.toString(), 'a');

  writeFileSync(file, manifest(b.port));
  lb.child.kill('SIGHUP');
  await lb.waitFor(/reload: web\/edge targets 127\.0\.0\.1:\d+/);
  // The old endpoint had no flows: it is deregistered at once, so the next flow reaches the new one.
  assert.equal((await exchange(port, '')).received.toString(), 'b');
});

test('manifest mode without a LoadBalancer Service is a configuration error (exit 1)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-lb-cli-'));
  stops.push(async () => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'svc.yaml');
  writeFileSync(
    file,
    'apiVersion: v1\nkind: Service\nmetadata: { name: x, namespace: y }\nspec: { ports: [{ port: 80 }] }\n',
  );
  const { code, stderr } = await runKeepip(['lb', '-f', file]);
  assert.equal(code, 1);
  assert.match(stderr, /no Service of type LoadBalancer \[LB_NO_LOAD_BALANCER\]/);
});
