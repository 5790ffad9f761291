// The controller ConfigMap's OpenTelemetry keys, as ingress-nginx writes them into the configuration of
// its nginx module (opentelemetry.toml): whether locations trace, whose span is the parent, the span's
// name, and the OTLP/gRPC exporter, sampler and batch processor. Read whenever a key is there: an
// Ingress's enable-opentelemetry turns tracing on for its locations with these settings.
import type { GatewaySettings, TraceSampler, TracingSettings } from '../config/model.ts';
import { configMapSource, readBool, readWhole, type ScalarSource } from './scalar-readers.ts';
import { serverHost } from './values.ts';

export const TRACING_CONFIGMAP_KEYS: readonly string[] = [
  'enable-opentelemetry',
  'opentelemetry-trust-incoming-span',
  'opentelemetry-operation-name',
  'otlp-collector-host',
  'otlp-collector-port',
  'otel-service-name',
  'otel-sampler',
  'otel-sampler-ratio',
  'otel-sampler-parent-based',
  'otel-max-queuesize',
  'otel-schedule-delay-millis',
  'otel-max-export-batch-size',
];

/** ingress-nginx's defaults (internal/ingress/controller/config). */
export const TRACING_DEFAULTS: TracingSettings = {
  enabled: false,
  trustIncomingSpan: true,
  operationName: '',
  collector: null,
  serviceName: 'nginx',
  sampler: 'AlwaysOn',
  samplerRatio: 0.01,
  samplerParentBased: true,
  maxQueueSize: 2048,
  scheduleDelayMs: 5000,
  maxExportBatchSize: 512,
};

const SAMPLERS: readonly TraceSampler[] = ['AlwaysOn', 'AlwaysOff', 'TraceIdRatioBased'];

/** opentelemetry-operation-name's characters, as ingress-nginx validates the annotation. */
export const OPERATION_NAME = /^[A-Za-z0-9_-]*$/;

export interface TracingSettingsSink {
  invalid(key: string, value: string, expected: string, kept: string): void;
}

function readCollector(source: ScalarSource): TracingSettings['collector'] {
  const port = readWhole(source, 'otlp-collector-port', 4317, {
    min: 1,
    max: 65535,
    expected: 'a port from 1 to 65535',
    kept: '4317',
  });
  const raw = source.get('otlp-collector-host')?.trim();
  if (raw === undefined) return null;
  const host = serverHost(raw);
  if (host === null)
    source.invalid(
      'otlp-collector-host',
      raw,
      'an IP address or a DNS name',
      'no collector: spans are not exported',
    );
  return host === null ? null : { host, port };
}

function readSampler(
  source: ScalarSource,
): Pick<TracingSettings, 'sampler' | 'samplerRatio' | 'samplerParentBased'> {
  const name = source.get('otel-sampler')?.trim();
  let sampler = TRACING_DEFAULTS.sampler;
  if (name !== undefined) {
    if ((SAMPLERS as readonly string[]).includes(name)) sampler = name as TraceSampler;
    else source.invalid('otel-sampler', name, SAMPLERS.join(', '), 'AlwaysOn');
  }
  const ratioText = source.get('otel-sampler-ratio')?.trim();
  let samplerRatio = TRACING_DEFAULTS.samplerRatio;
  if (ratioText !== undefined) {
    const ratio = /^(\d+(\.\d*)?|\.\d+)$/.test(ratioText) ? Number(ratioText) : Number.NaN;
    if (ratio >= 0 && ratio <= 1) samplerRatio = ratio;
    else source.invalid('otel-sampler-ratio', ratioText, 'a number from 0 to 1', '0.01');
  }
  return { sampler, samplerRatio, samplerParentBased: readBool(source, 'otel-sampler-parent-based', true) };
}

function readOperationName(source: ScalarSource): string {
  const name = source.get('opentelemetry-operation-name')?.trim() ?? '';
  if (OPERATION_NAME.test(name)) return name;
  source.invalid(
    'opentelemetry-operation-name',
    name,
    'letters, digits, "_" and "-"',
    'the location names the span',
  );
  return '';
}

/** Reads the OpenTelemetry keys into `settings.tracing` when the ConfigMap has any of them. */
export function applyTracingSettings(
  data: Readonly<Record<string, string>>,
  settings: GatewaySettings,
  sink: TracingSettingsSink,
): void {
  if (!TRACING_CONFIGMAP_KEYS.some((key) => data[key] !== undefined)) return;
  const source = configMapSource(data, (...report) => sink.invalid(...report), { blankIsAbsent: true });
  const whole = (key: string, fallback: number, max: number) =>
    readWhole(source, key, fallback, {
      min: 1,
      max,
      expected: `a whole number from 1 to ${max}`,
      kept: String(fallback),
    });
  settings.tracing = {
    enabled: readBool(source, 'enable-opentelemetry', false),
    trustIncomingSpan: readBool(source, 'opentelemetry-trust-incoming-span', true),
    operationName: readOperationName(source),
    collector: readCollector(source),
    serviceName: source.get('otel-service-name')?.trim() || TRACING_DEFAULTS.serviceName,
    ...readSampler(source),
    maxQueueSize: whole('otel-max-queuesize', TRACING_DEFAULTS.maxQueueSize, 1_000_000),
    scheduleDelayMs: whole('otel-schedule-delay-millis', TRACING_DEFAULTS.scheduleDelayMs, 3_600_000),
    maxExportBatchSize: whole('otel-max-export-batch-size', TRACING_DEFAULTS.maxExportBatchSize, 1_000_000),
  };
  if (settings.tracing.maxExportBatchSize > settings.tracing.maxQueueSize) {
    sink.invalid(
      'otel-max-export-batch-size',
      String(settings.tracing.maxExportBatchSize),
      `at most otel-max-queuesize (${settings.tracing.maxQueueSize})`,
      String(settings.tracing.maxQueueSize),
    );
    settings.tracing.maxExportBatchSize = settings.tracing.maxQueueSize;
  }
}
