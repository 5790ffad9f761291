import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { BACKEND_BODY, backendServerBlock } from '../../bench/lib/backend.ts';
import { haproxyTcpConfig } from '../../bench/lib/haproxy.ts';
import { BENCH_UPSTREAM, gatewayManifests } from '../../bench/lib/keepip.ts';
import { cpuModelFrom, type MachineInfo } from '../../bench/lib/machine.ts';
import { ingressLikeProxy } from '../../bench/lib/nginx.ts';
import { formatValue, measurementTable, renderMarkdown } from '../../bench/lib/report.ts';
import { selectSuites } from '../../bench/run.ts';
import { buildTopology, parseManifestText } from '../../src/k8s/index.ts';
import { allowList } from '../../bench/lib/acl-list.ts';

const machine: MachineInfo = {
  cpuModel: 'AMD EPYC',
  cores: 2,
  memoryGiB: 23.5,
  kernel: 'Linux 6.18',
  os: 'Debian 12',
  node: 'Node.js v24',
  nginx: 'nginx 1.22.1',
  haproxy: 'haproxy 2.6.12',
  wrk: 'wrk 4.1.0',
  keepip: 'keepip 0.1.0 (abc)',
  loadAverage: 0.5,
};

test('suite selection: groups expand, canonical order, unknown names refused, absent suites listed', () => {
  const available = ['gateway', 'acl-nginx', 'idle', 'pp', 'chain'];
  assert.deepEqual(selectSuites(['acl'], available), {
    ok: true,
    names: ['acl-nginx'],
    missing: ['acl-lookup'],
  });
  assert.deepEqual(selectSuites(['idle', 'gateway'], available), {
    ok: true,
    names: ['gateway', 'idle'],
    missing: [],
  });
  const all = selectSuites([], available);
  assert.ok(all.ok);
  if (all.ok) {
    assert.deepEqual(all.names, ['pp', 'acl-nginx', 'gateway', 'chain', 'idle']);
    assert.deepEqual(all.missing, ['acl-lookup', 'http2', 'l4']);
  }
  const unknown = selectSuites(['gatewya'], available);
  assert.equal(unknown.ok, false);
  if (!unknown.ok) assert.match(unknown.error, /unknown suite "gatewya"/);
});

test('measurements pivot into one row per case and system, one column per metric', () => {
  const table = measurementTable([
    { system: 'keepip', metric: 'req/s', value: 50123.4, case: 'c64' },
    { system: 'nginx', metric: 'req/s', value: 90000, case: 'c64' },
    { system: 'keepip', metric: 'p99 ms', value: 3.456, case: 'c64' },
  ]);
  assert.deepEqual(table, [
    '| case | system | req/s | p99 ms |',
    '|---|---|---:|---:|',
    '| c64 | keepip | 50,123 | 3.46 |',
    '| c64 | nginx | 90,000 | – |',
  ]);
  assert.equal(formatValue(0.51234), '0.512');
  assert.equal(formatValue(123.6), '124');
});

test('the markdown names the machine, marks unmet targets and lists errors of a failed run', () => {
  const markdown = renderMarkdown({
    date: '2026-01-01T00:00:00.000Z',
    mode: 'quick',
    machine,
    missing: ['l4'],
    ok: false,
    suites: [
      {
        name: 'gateway',
        description: 'gateway hop',
        durationSeconds: 12,
        result: {
          measurements: [{ system: 'keepip', metric: 'req/s', value: 1000, case: 'c64' }],
          ratios: [{ label: 'keepip / nginx req/s', value: 0.3, target: '>= 0.5', met: false }],
          errors: ['keepip round 1: 12 responses with a non-2xx/3xx status'],
        },
      },
      { name: 'chain', description: 'chain', durationSeconds: 1, thrown: 'HAProxy did not start' },
    ],
  });
  assert.match(markdown, /\*\*FAILED\*\*/);
  assert.match(markdown, /Machine: AMD EPYC, 2 cores, 23\.5 GiB RAM.*load average 0\.5 at start/);
  assert.match(markdown, /\| keepip \/ nginx req\/s \| 0\.3 \| >= 0\.5 \| \*\*no\*\* \|/);
  assert.match(markdown, /- keepip round 1: 12 responses/);
  assert.match(markdown, /### chain: chain \(1 s\)\n\n\*\*FAILED:\*\* HAProxy did not start/);
  assert.match(markdown, /Not present yet .*: l4/);
  assert.equal(cpuModelFrom('processor\t: 0\nmodel name\t: AMD EPYC 7B13\n'), 'AMD EPYC 7B13');
});

test('gateway manifests: the allowlist annotation, the backend endpoint and the controller ConfigMap', () => {
  const text = gatewayManifests({
    host: 'bench.keepip.test',
    allow: ['10.0.0.0/8', '127.0.0.1/32'],
    backend: { host: '127.0.0.1', port: 41000 },
    useProxyProtocol: true,
    trustedCidrs: ['127.0.0.0/8'],
  });
  const docs = parseAllDocuments(text).map((doc) => doc.toJS());
  assert.deepEqual(
    docs.map((doc) => doc.kind),
    ['ConfigMap', 'Ingress', 'Service', 'EndpointSlice'],
  );
  assert.equal(docs[0].metadata.namespace, 'ingress-nginx');
  assert.equal(docs[0].data['use-proxy-protocol'], 'true');
  assert.equal(docs[0].data['proxy-real-ip-cidr'], '127.0.0.0/8');
  assert.equal(
    docs[1].metadata.annotations['nginx.ingress.kubernetes.io/allowlist-source-range'],
    '10.0.0.0/8,127.0.0.1/32',
  );
  assert.equal(docs[1].spec.rules[0].host, 'bench.keepip.test');
  assert.deepEqual(docs[3].endpoints[0].addresses, ['127.0.0.1']);
  assert.equal(docs[3].ports[0].port, 41000);
  assert.equal(BENCH_UPSTREAM, `${docs[1].metadata.namespace}-${docs[2].metadata.name}-80`);
});

test('nginx and HAProxy configs: allow lines in order then deny all; PROXY v2 from a source address', () => {
  const conf = ingressLikeProxy({
    listen: { host: '127.0.0.1', port: 8000 },
    proxyProtocolFrom: '127.0.0.0/8',
    serverName: 'bench.keepip.test',
    allow: ['10.0.0.0/8', '127.0.0.1/32'],
    upstream: { host: '127.0.0.1', port: 9000 },
    upstreamName: 'up',
    accessLogPath: '/tmp/x.log',
  });
  assert.match(conf, /listen 127\.0\.0\.1:8000 proxy_protocol/);
  assert.match(conf, /real_ip_header proxy_protocol;/);
  assert.match(conf, /allow 10\.0\.0\.0\/8;\n\s+allow 127\.0\.0\.1\/32;\n\s+deny all;/);
  assert.match(conf, /keepalive 320;/);
  const hap = haproxyTcpConfig({
    listen: { host: '127.0.0.1', port: 7000 },
    target: { host: '127.0.0.1', port: 8000 },
    sendProxy: 'v2',
    sourceAddress: '127.0.0.6',
  });
  assert.match(hap, /nbthread 1/);
  assert.match(hap, /server target 127\.0\.0\.1:8000 send-proxy-v2 source 127\.0\.0\.6/);
  assert.equal(Buffer.byteLength(BACKEND_BODY), 100);
  assert.match(backendServerBlock('127.0.0.1', 9000), /return 200 "keepip bench backend: .*\\n";/);
});

test('the bench manifests translate into the model keepip gateway serves: allowlist, endpoint, PROXY settings', () => {
  const allow = allowList(10_000, '127.0.0.1/32');
  const loaded = parseManifestText(
    gatewayManifests({
      host: 'bench.keepip.test',
      allow,
      backend: { host: '127.0.0.1', port: 41000 },
      useProxyProtocol: true,
      trustedCidrs: ['127.0.0.0/8'],
    }),
    'bench.yaml',
  );
  assert.deepEqual(loaded.issues, []);
  const topology = buildTopology(loaded.objects, {});
  assert.deepEqual(
    topology.issues.filter((issue) => issue.severity === 'error'),
    [],
  );
  assert.equal(topology.gateway.settings.useProxyProtocol, true);
  assert.deepEqual(topology.gateway.settings.trustedCidrs, ['127.0.0.0/8']);
  const [vhost] = topology.gateway.virtualHosts;
  assert.equal(vhost?.host, 'bench.keepip.test');
  const location = vhost?.locations[0];
  assert.equal(location?.backend?.upstreamName, BENCH_UPSTREAM);
  assert.ok(location?.allow?.valid);
  if (location?.allow?.valid) assert.equal(location.allow.cidrs.length, 10_000);
  const service = topology.services.find((s) => s.ref.name === 'bench-backend');
  const endpoints = Object.values(service?.endpoints ?? {}).flat();
  assert.deepEqual(
    endpoints.map((e) => `${e.address}:${e.port}`),
    ['127.0.0.1:41000'],
  );
});
