// The controller ConfigMap's OpenTelemetry keys (src/k8s/tracing-settings.ts) and the Ingress's three
// annotations (route-annotations.ts), read as ingress-nginx reads them; which location traces with what
// (gateway/tracing.ts locationTrace, ingress-nginx's buildOpentelemetryForLocation).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GatewaySettings, LocationModel } from '../../src/config/model.ts';
import { locationTrace } from '../../src/gateway/tracing.ts';
import { TRACING_DEFAULTS } from '../../src/k8s/tracing-settings.ts';
import { controllerConfigMap, ingress, topologyOf, webApp } from '../fixtures/gateway/manifests.ts';
import { configMapSettings } from './helpers.ts';

function parse(data: Record<string, string>) {
  const { s, issues } = configMapSettings(data);
  return { tracing: s.tracing, unsupported: s.unsupportedKeys, issues };
}

test("absent without any key; ingress-nginx's defaults for the keys not given", () => {
  assert.equal(parse({}).tracing, undefined);
  const { tracing, unsupported, issues } = parse({
    'enable-opentelemetry': 'true',
    'otlp-collector-host': 'Otel-Collector.Observability.svc.',
  });
  assert.deepEqual(tracing, {
    ...TRACING_DEFAULTS,
    enabled: true,
    collector: { host: 'otel-collector.observability.svc', port: 4317 },
  });
  assert.deepEqual(unsupported, []);
  assert.deepEqual(issues, []);
  assert.deepEqual(
    parse({
      'otlp-collector-host': '[fd00::7]',
      'otlp-collector-port': '4417',
      'otel-service-name': 'edge',
      'otel-sampler': 'TraceIdRatioBased',
      'otel-sampler-ratio': '0.25',
      'otel-sampler-parent-based': 'false',
      'otel-max-queuesize': '100',
      'otel-schedule-delay-millis': '250',
      'otel-max-export-batch-size': '50',
      'opentelemetry-trust-incoming-span': 'false',
      'opentelemetry-operation-name': 'edge_request',
    }).tracing,
    {
      enabled: false,
      trustIncomingSpan: false,
      operationName: 'edge_request',
      collector: { host: 'fd00::7', port: 4417 },
      serviceName: 'edge',
      sampler: 'TraceIdRatioBased',
      samplerRatio: 0.25,
      samplerParentBased: false,
      maxQueueSize: 100,
      scheduleDelayMs: 250,
      maxExportBatchSize: 50,
    },
  );
});

test('invalid values keep the default, each with a warning naming the key', () => {
  const cases: [Record<string, string>, keyof typeof TRACING_DEFAULTS, unknown][] = [
    [{ 'otel-sampler': 'Sometimes' }, 'sampler', 'AlwaysOn'],
    [{ 'otel-sampler-ratio': '1.5' }, 'samplerRatio', 0.01],
    [{ 'otel-sampler-ratio': '-0.1' }, 'samplerRatio', 0.01],
    [{ 'otlp-collector-port': '70000' }, 'collector', null],
    [{ 'otlp-collector-host': 'http://collector:4317' }, 'collector', null],
    [{ 'otel-max-queuesize': '0' }, 'maxQueueSize', 2048],
    [{ 'opentelemetry-operation-name': 'GET /api' }, 'operationName', ''],
    [{ 'otel-max-queuesize': '10', 'otel-max-export-batch-size': '20' }, 'maxExportBatchSize', 10],
  ];
  for (const [data, field, kept] of cases) {
    const { tracing, issues } = parse(data);
    assert.deepEqual(tracing?.[field], kept, JSON.stringify(data));
    assert.equal(issues.length, 1, JSON.stringify(data));
    assert.equal(issues[0]!.code, 'INVALID_CONFIGMAP_VALUE');
    assert.match(issues[0]!.message, new RegExp(Object.keys(data).at(-1)!));
  }
});

function locations(configMap: Record<string, string>, annotations: Record<string, string>) {
  const topology = topologyOf([
    controllerConfigMap(configMap),
    ...webApp(8080),
    ingress({
      name: 'api',
      host: 'api.example.com',
      paths: [{ path: '/api', service: 'web', port: 80 }],
      annotations,
    }),
  ]);
  const api = topology.gateway.virtualHosts.find((v) => v.locations.some((l) => l.path === '/api'))!;
  const web = topology.gateway.virtualHosts.find((v) => v !== api)!;
  const trace = (l: LocationModel | undefined) =>
    locationTrace(l!, topology.gateway.settings as GatewaySettings);
  return {
    api: trace(api.locations.find((l) => l.path === '/api')),
    web: trace(web.locations[0]),
    issues: topology.issues.filter((i) => i.severity !== 'info'),
  };
}

test('which location traces: the Ingress overrides the ConfigMap both ways; trust and name follow ingress-nginx', () => {
  const collector = { 'otlp-collector-host': 'otel.observability.svc' };
  assert.deepEqual(locations({}, {}), { api: null, web: null, issues: [] });
  assert.deepEqual(locations({ 'enable-opentelemetry': 'true', ...collector }, {}), {
    api: { name: '/api', trustIncomingSpan: true },
    web: { name: '/', trustIncomingSpan: true },
    issues: [],
  });
  // Tracing with no collector: a warning that spans go nowhere.
  for (const [configMap, annotations] of [
    [{ 'enable-opentelemetry': 'true' }, {}],
    [{}, { 'enable-opentelemetry': 'true' }],
  ] as const) {
    const { issues } = locations(configMap, annotations);
    assert.deepEqual(
      issues.map((i) => i.code),
      ['TRACING_NOT_EXPORTED'],
    );
  }
  assert.equal(locations({ 'enable-opentelemetry': 'true' }, { 'enable-opentelemetry': 'false' }).api, null);
  const on = locations(
    { 'opentelemetry-operation-name': 'edge', 'opentelemetry-trust-incoming-span': 'false' },
    { 'enable-opentelemetry': 'true' },
  );
  assert.deepEqual([on.api, on.web], [{ name: 'edge', trustIncomingSpan: false }, null]);
  assert.deepEqual(
    locations(
      {},
      {
        'enable-opentelemetry': 'true',
        'opentelemetry-operation-name': 'orders',
        'opentelemetry-trust-incoming-span': 'false',
      },
    ).api,
    { name: 'orders', trustIncomingSpan: false },
  );
  // Without enable-opentelemetry on the Ingress, its other two are not read (ingress-nginx's parser).
  assert.deepEqual(
    locations({ 'enable-opentelemetry': 'true' }, { 'opentelemetry-operation-name': 'orders' }).api,
    { name: '/api', trustIncomingSpan: true },
  );
  const bad = locations({}, { 'enable-opentelemetry': 'yes', 'opentelemetry-operation-name': 'a b' });
  assert.equal(bad.api, null);
  assert.equal(bad.issues.length, 1);
  assert.match(bad.issues[0]!.message, /enable-opentelemetry.*"yes"/);
});
