// The client deadlines a snapshot hands its new connections: the ConfigMap's, nginx's defaults for
// what ingress-nginx does not expose, overrides from GatewayOptions; how often the sweep looks; and the
// close counter every reason is exported in from the start.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  CONNECTION_CLOSE_REASONS,
  clientTimeoutsOf,
  LINGERING_TIME_MS,
  LINGERING_TIMEOUT_MS,
  SEND_TIMEOUT_MS,
  sweepPeriodMs,
} from '../../src/gateway/client-timeouts.ts';
import { createGatewayMetrics } from '../../src/gateway/metrics.ts';
import { buildSnapshot } from '../../src/gateway/snapshot.ts';
import { ConnectionRegistry } from '../../src/gateway/upstream.ts';
import { defaultGatewaySettings } from '../../src/k8s/annotations.ts';
import { controllerConfigMap, topologyOf } from '../fixtures/gateway/manifests.ts';

const registry = new ConnectionRegistry();
after(() => registry.closeAll(0));

test('defaults: the ConfigMap defaults, then nginx send_timeout 60 s, lingering_time 30 s, lingering_timeout 5 s', () => {
  assert.deepEqual(clientTimeoutsOf(defaultGatewaySettings()), {
    headerMs: 60_000,
    bodyMs: 60_000,
    keepAliveMs: 75_000,
    sendMs: 60_000,
    lingeringTimeMs: 30_000,
    lingeringTimeoutMs: 5_000,
    keepAliveRequests: 1000,
    // The first buffer (client-header-buffer-size 1k) beside 4 x 8k, as nginx can fill them all.
    maxHeadBytes: 33_792,
    headBuffers: { firstBytes: 1024, count: 4, sizeBytes: 8_192 },
  });
  assert.equal(SEND_TIMEOUT_MS, 60_000);
  assert.equal(LINGERING_TIME_MS, 30_000);
  assert.equal(LINGERING_TIMEOUT_MS, 5_000);
});

test('an override replaces only what it names, ConfigMap values included', () => {
  const settings = { ...defaultGatewaySettings(), clientBodyTimeoutMs: 20_000, keepAliveTimeoutMs: 0 };
  const t = clientTimeoutsOf(settings, { headerMs: 300, sendMs: 400 });
  assert.equal(t.headerMs, 300);
  assert.equal(t.sendMs, 400);
  assert.equal(t.bodyMs, 20_000);
  assert.equal(t.keepAliveMs, 0);
  assert.equal(clientTimeoutsOf(settings, { keepAliveMs: 5_000 }).keepAliveMs, 5_000);
});

test('the sweep looks a quarter of the shortest deadline apart, between 10 ms and 1 s', () => {
  assert.equal(sweepPeriodMs(clientTimeoutsOf(defaultGatewaySettings())), 1_000);
  const short = clientTimeoutsOf(defaultGatewaySettings(), { lingeringTimeoutMs: 300 });
  assert.equal(sweepPeriodMs(short), 75);
  assert.equal(sweepPeriodMs({ ...short, headerMs: 1 }), 10);
  // keep-alive 0 is "no keep-alive", not a deadline of 0.
  assert.equal(sweepPeriodMs({ ...clientTimeoutsOf(defaultGatewaySettings()), keepAliveMs: 0 }), 1_000);
});

test('a snapshot carries the ConfigMap deadlines, with the overrides it was built with over them', () => {
  const topology = topologyOf([controllerConfigMap({ 'client-body-timeout': '7', 'keep-alive': '9' })]);
  const plain = buildSnapshot(topology, {
    version: 1,
    trustedProxies: null,
    logFormat: 'text',
    connections: registry,
  });
  assert.ok(plain.ok);
  assert.equal(plain.snapshot.clientTimeouts.bodyMs, 7_000);
  assert.equal(plain.snapshot.clientTimeouts.keepAliveMs, 9_000);
  const overridden = buildSnapshot(topology, {
    version: 2,
    trustedProxies: null,
    logFormat: 'text',
    connections: registry,
    clientTimeouts: { bodyMs: 250 },
  });
  assert.ok(overridden.ok);
  assert.equal(overridden.snapshot.clientTimeouts.bodyMs, 250);
  assert.equal(overridden.snapshot.clientTimeouts.keepAliveMs, 9_000);
});

test('keepip_gateway_connections_closed_total exports every reason from the start, then counts', async () => {
  const metrics = createGatewayMetrics();
  const read = async () => {
    const metric = await metrics.registry.getSingleMetric('keepip_gateway_connections_closed_total')?.get();
    assert.ok(metric);
    return new Map(metric.values.map((v) => [v.labels.reason, v.value]));
  };
  const initial = await read();
  assert.deepEqual([...initial.keys()].sort(), [...CONNECTION_CLOSE_REASONS].sort());
  for (const value of initial.values()) assert.equal(value, 0);
  metrics.connectionClosed('send_timeout');
  metrics.connectionClosed('send_timeout');
  metrics.connectionClosed('upgrade_refused');
  const after = await read();
  assert.equal(after.get('send_timeout'), 2);
  assert.equal(after.get('upgrade_refused'), 1);
  assert.equal(after.get('lingering_close'), 0);
});
