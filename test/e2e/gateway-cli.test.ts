// `keepip gateway` as users run it: usage errors, a configuration that cannot be served, start-up lines
// (what listens where, trust warnings, unsupported annotations and ConfigMap keys), --json,
// --trusted-proxies with forwarded headers, --access-log, --log-format json, --metrics and /healthz.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  manifestDir,
  serviceWithEndpoints,
  toYaml,
} from '../fixtures/gateway/manifests.ts';
import { runKeepip, startKeepip } from '../helpers/process.ts';

describe('keepip gateway command line', () => {
  let backend: RunningWhoami;
  let dir: ReturnType<typeof manifestDir>;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    dir = manifestDir();
  });

  after(async () => {
    await backend.close();
    dir.remove();
  });

  const manifests = (data: Record<string, string>, annotations: Record<string, string> = {}) =>
    toYaml([
      controllerConfigMap(data),
      ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
      ingress({
        name: 'web',
        host: 'web.example.com',
        paths: [{ path: '/', service: 'web', port: 80 }],
        annotations,
      }),
    ]);

  test('--help explains the flags and exits 0; usage errors exit 2', async () => {
    const help = await runKeepip(['gateway', '--help']);
    assert.equal(help.code, 0);
    for (const flag of [
      '-f, --filename',
      '--http',
      '--https',
      '--trusted-proxies',
      '--access-log',
      '--metrics',
      '--json',
    ]) {
      assert.ok(help.stdout.includes(flag), `--help mentions ${flag}`);
    }
    const noFiles = await runKeepip(['gateway']);
    assert.equal(noFiles.code, 2);
    assert.match(noFiles.stderr, /-f <file\|dir>/);
    const badAddress = await runKeepip(['gateway', '-f', dir.dir, '--http', 'example.com:80']);
    assert.equal(badAddress.code, 2);
    const badTrust = await runKeepip(['gateway', '-f', dir.dir, '--trusted-proxies', '10.0.0.0/8,nonsense']);
    assert.equal(badTrust.code, 2);
    assert.match(badTrust.stderr, /nonsense/);
  });

  test('a configuration that cannot be served exits 1 naming the file, document and problem', async () => {
    const bad = dir.write('bad.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {name: x\n');
    const result = await runKeepip(['gateway', '-f', bad, '--http', '127.0.0.1:0']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot serve/);
    assert.match(result.stderr, /bad\.yaml, document 1.*\[MANIFEST_YAML_ERROR\]/);
  });

  test('start-up lines: listeners with real ports, trust-everyone warnings, unsupported names', async () => {
    const file = dir.write(
      'warn.yaml',
      manifests(
        { 'use-proxy-protocol': 'true', 'use-forwarded-headers': 'true', 'worker-cpu-affinity': 'auto' },
        { 'enable-modsecurity': 'true', 'allowlist-source-range': '10.0.0.0/8' },
      ),
    );
    const gateway = startKeepip(['gateway', '-f', file, '--http', '127.0.0.1:0', '--https', '127.0.0.1:0']);
    try {
      const http = await gateway.waitFor(
        /keepip gateway: listening http 127\.0\.0\.1:(\d+) \(PROXY protocol v1\/v2 required from 0\.0\.0\.0\/0\)/,
      );
      assert.ok(Number(http[1]) > 0);
      await gateway.waitFor(/keepip gateway: listening https 127\.0\.0\.1:\d+ \(PROXY protocol/);
      await gateway.waitFor(/warning: PROXY headers are accepted from every peer/);
      await gateway.waitFor(/warning: X-Forwarded-For is believed from every peer/);
      await gateway.waitFor(
        /warning: refused annotations \(not honoured\): nginx\.ingress\.kubernetes\.io\/enable-modsecurity \(Ingress default\/web\)/,
      );
      await gateway.waitFor(/keepip gateway: ConfigMap keys with no effect in keepip: worker-cpu-affinity/);
    } finally {
      assert.equal(await gateway.stop(), 0);
    }
  });

  test('--disable-svc-external-name: an ExternalName Service has no endpoint, with a warning', async () => {
    const external = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'ext', namespace: 'default' },
      spec: { type: 'ExternalName', externalName: 'api.example.com' },
    };
    const route = ingress({
      name: 'ext',
      host: 'ext.example.com',
      paths: [{ path: '/', service: 'ext', port: 80 }],
    });
    const file = dir.write('external-name.yaml', toYaml([external, route]));
    const gateway = startKeepip([
      'gateway',
      '-f',
      file,
      '--http',
      '127.0.0.1:0',
      '--disable-svc-external-name',
    ]);
    try {
      await gateway.waitFor(
        /warning: .*\(Service default\/ext\) spec\.externalName: ExternalName Services are disabled \(--disable-svc-external-name\).*\[EXTERNAL_NAME_DISABLED\]/,
      );
      await gateway.waitFor(
        /warning: upstream default-ext-80 has no ready endpoint: its locations answer 503/,
      );
    } finally {
      assert.equal(await gateway.stop(), 0);
    }
  });

  test('--json start-up lines are JSON objects a script can read', async () => {
    const file = dir.write('json.yaml', manifests({}));
    const gateway = startKeepip(['gateway', '-f', file, '--http', '127.0.0.1:0', '--json']);
    try {
      await gateway.waitFor(/"event":"listening"/);
      const listening = gateway
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { event: string; listener?: string; port?: number })
        .find((event) => event.event === 'listening');
      assert.equal(listening?.listener, 'http');
      assert.ok((listening?.port ?? 0) > 0);
    } finally {
      await gateway.stop();
    }
  });

  test('--trusted-proxies with use-forwarded-headers: X-Forwarded-For is believed only from the trusted proxy', async () => {
    const file = dir.write(
      'forwarded.yaml',
      manifests({ 'use-forwarded-headers': 'true' }, { 'allowlist-source-range': '198.51.100.7/32' }),
    );
    const accessLog = join(dir.dir, 'forwarded-access.log');
    const gateway = startKeepip([
      'gateway',
      '-f',
      file,
      '--http',
      '127.0.0.1:0',
      '--trusted-proxies',
      '127.0.0.40/32',
      '--access-log',
      accessLog,
      '--log-format',
      'json',
    ]);
    try {
      const port = Number((await gateway.waitFor(/listening http 127\.0\.0\.1:(\d+)/))[1]);
      assert.doesNotMatch(gateway.output(), /believed from every peer/);
      const forged = await request(port, {
        from: '127.0.0.41',
        host: 'web.example.com',
        headers: { 'x-forwarded-for': '198.51.100.7' },
      });
      assert.equal(forged.status, 403);
      const trusted = await request(port, {
        from: '127.0.0.40',
        host: 'web.example.com',
        headers: { 'x-forwarded-for': '203.0.113.1, 198.51.100.7', accept: 'application/json' },
      });
      assert.equal(trusted.status, 200);
      assert.equal(
        (JSON.parse(trusted.body) as { headers: Record<string, string> }).headers['x-real-ip'],
        '198.51.100.7',
      );
      await gateway.waitFor(/access forbidden by rule, client: 127\.0\.0\.41/);
    } finally {
      await gateway.stop();
    }
    const lines = readFileSync(accessLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((line) => [line.remote_addr, line.realip_remote_addr, line.status]),
      [
        ['127.0.0.41', '127.0.0.41', 403],
        ['198.51.100.7', '127.0.0.40', 200],
      ],
    );
  });

  test('--metrics serves Prometheus metrics and /healthz', async () => {
    const file = dir.write('metrics.yaml', manifests({}));
    const gateway = startKeepip(['gateway', '-f', file, '--http', '127.0.0.1:0', '--metrics', '127.0.0.1:0']);
    try {
      const port = Number((await gateway.waitFor(/listening http 127\.0\.0\.1:(\d+)/))[1]);
      const metricsAt = (await gateway.waitFor(/metrics http:\/\/(127\.0\.0\.1:\d+)\/metrics/))[1];
      assert.equal((await request(port, { host: 'web.example.com' })).status, 200);
      const health = await fetch(`http://${metricsAt}/healthz`);
      assert.equal(health.status, 200);
      const text = await (await fetch(`http://${metricsAt}/metrics`)).text();
      assert.match(
        text,
        /keepip_gateway_requests_total\{ingress="default\/web",host="web\.example\.com",status="200"\} 1/,
      );
      assert.match(text, /keepip_gateway_config_version 1/);
    } finally {
      await gateway.stop();
    }
  });
});
