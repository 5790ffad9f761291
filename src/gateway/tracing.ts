// OpenTelemetry spans of requests, as ingress-nginx's nginx module makes them: one SERVER span per
// request of a location that traces (enable-opentelemetry in the ConfigMap or on the Ingress), its
// parent the request's W3C `traceparent` when opentelemetry-trust-incoming-span allows, its context
// sent on to the backend as `traceparent`/`tracestate`, exported over OTLP/gRPC in batches
// (otlp-exporter.ts). The span starts when it is first needed (the upstream headers, or the access
// log of a refused request) with the request's own start time, so a location that does not trace
// costs one check. Hand-written rather than the OpenTelemetry SDK: the SDK and its gRPC exporter add
// ~10 MB of memory and ~0.1 s of start-up to every process and take the image over its 150 MB.
import { randomBytes } from 'node:crypto';
import type { GatewaySettings, LocationModel, TracingSettings } from '../config/model.ts';
import { TRACING_DEFAULTS } from '../k8s/tracing-settings.ts';
import type { ErrorLog } from './error-log.ts';
import type { Exchange, GatewayRequest, RequestSpan, Tracing } from './exchange.ts';
import type { SpanAttribute } from './otlp-encode.ts';
import { createSpanExporter, type SpanExporter } from './otlp-exporter.ts';
import { formatTraceparent, parseTraceparent, sampled } from './trace-context.ts';

/** What a traced request's span needs from the location and the ConfigMap. */
interface LocationTrace {
  name: string;
  trustIncomingSpan: boolean;
}

/** A location's tracing: its Ingress's enable-opentelemetry, else the ConfigMap's; null: it does not trace. */
export function locationTrace(location: LocationModel, settings: GatewaySettings): LocationTrace | null {
  const config = settings.tracing;
  const own = location.tracing;
  if (!(own?.enabled ?? config?.enabled ?? false)) return null;
  return {
    // nginx's module names the span after the location unless an operation name is set.
    name: own?.operationName ?? (config?.operationName || location.path),
    trustIncomingSpan: own?.trustIncomingSpan ?? config?.trustIncomingSpan ?? true,
  };
}

const FLAVORS: Readonly<Record<string, string>> = { '1.0': '1.0', '1.1': '1.1', '2.0': '2.0' };
const ERROR_INTERVAL_MS = 60_000;

/** The exporter settings of one collector connection; null when spans are not exported. */
function exporterKey(t: TracingSettings): string | null {
  if (t.collector === null) return null;
  const { collector, serviceName, maxQueueSize, scheduleDelayMs, maxExportBatchSize } = t;
  return JSON.stringify([collector, serviceName, maxQueueSize, scheduleDelayMs, maxExportBatchSize]);
}

/** The span of a request whose location traces: ids, parent, sampling decided now. */
function startSpan(
  ex: Exchange,
  req: GatewayRequest,
  traced: LocationTrace,
  t: TracingSettings,
): RequestSpan {
  const parent = traced.trustIncomingSpan
    ? parseTraceparent(req.headers.traceparent, req.headers.tracestate)
    : null;
  const ids = randomBytes(24).toString('hex');
  const traceId = parent?.traceId ?? ids.slice(0, 32);
  return {
    context: {
      traceId,
      spanId: ids.slice(32),
      sampled: sampled(t, traceId, parent),
      traceState: parent?.traceState ?? '',
    },
    parentSpanId: parent?.spanId ?? '',
    name: traced.name,
    startNanos: BigInt(Math.round((performance.timeOrigin + ex.startedAt) * 1e6)),
    settings: t,
    version: ex.snap.version,
  };
}

/**
 * The nginx module's attributes (opentelemetry-cpp-contrib at ingress-nginx's commit): the request's,
 * the User-Agent when sent, and its default script attributes $server_port, $remote_addr (the client
 * keepip settled on) and $remote_port.
 */
function spanAttributes(ex: Exchange, req: GatewayRequest, status: number): SpanAttribute[] {
  const { conn } = ex;
  const userAgent = req.headers['user-agent'];
  return [
    ['http.method', req.method ?? ''],
    ['http.flavor', FLAVORS[req.httpVersion] ?? ''],
    ['http.target', ex.requestUri !== '' ? ex.requestUri : (req.url ?? '')],
    ['http.host', ex.rawHost],
    ...(ex.serverName !== '_' ? [['http.server_name', ex.serverName] as const] : []),
    ...(typeof userAgent === 'string' ? [['http.user_agent', userAgent] as const] : []),
    ['http.status_code', status],
    ['http.scheme', conn.scheme],
    ['net.host.port', conn.serverPort],
    ['net.peer.ip', ex.client],
    ['net.peer.port', conn.proxyPort ?? conn.peerPort],
  ];
}

export function createTracing(errorLog: ErrorLog): Tracing {
  let exporter: { key: string; settings: TracingSettings; value: SpanExporter } | null = null;
  // Exporters a reload replaced, still sending what they hold: close() waits for them too.
  const retiring = new Set<Promise<void>>();
  const retire = (old: SpanExporter | undefined): void => {
    if (old === undefined) return;
    const done: Promise<void> = old.close().finally(() => retiring.delete(done));
    retiring.add(done);
  };
  let lastError = 0;
  // Export failures (a collector down) reach the error log at most once a minute.
  const onError = (message: string) => {
    if (Date.now() - lastError < ERROR_INTERVAL_MS) return;
    lastError = Date.now();
    errorLog.write('error', null, `opentelemetry: ${message}`);
  };
  // The newest configuration a span finished under: a request of an older one that ends after a
  // reload uses the current exporter (none when the reload removed the collector).
  let newest = -1;
  const exporterFor = (span: RequestSpan): SpanExporter | null => {
    if (span.version < newest) return exporter?.value ?? null;
    newest = span.version;
    const t = span.settings;
    // The same snapshot's settings: the exporter made for them (the key is computed once per reload).
    if (exporter?.settings === t) return exporter.value;
    const key = exporterKey(t);
    if (key === null || t.collector === null) {
      // The collector was removed: the last one sends what it holds, then stops.
      retire(exporter?.value);
      exporter = null;
      return null;
    }
    if (exporter?.key !== key) {
      // A changed configuration: the previous exporter sends what it holds, then stops.
      retire(exporter?.value);
      exporter = { key, settings: t, value: createSpanExporter({ ...t, collector: t.collector }, onError) };
    }
    exporter.settings = t;
    return exporter.value;
  };
  const spanOf = (ex: Exchange, req: GatewayRequest): RequestSpan | null => {
    if (ex.span !== undefined) return ex.span;
    const location = ex.route?.location;
    const settings = ex.snap.settings;
    const traced = location === undefined ? null : locationTrace(location, settings);
    ex.span = traced === null ? null : startSpan(ex, req, traced, settings.tracing ?? TRACING_DEFAULTS);
    return ex.span;
  };
  return {
    inject(ex, req, headers) {
      const span = spanOf(ex, req);
      if (span === null) return;
      headers.traceparent = formatTraceparent(span.context);
      if (span.context.traceState !== '') headers.tracestate = span.context.traceState;
      else delete headers.tracestate;
    },
    finish(ex, req, status) {
      const span = spanOf(ex, req);
      if (span === null || !span.context.sampled) return;
      exporterFor(span)?.add({
        traceId: span.context.traceId,
        spanId: span.context.spanId,
        parentSpanId: span.parentSpanId,
        traceState: span.context.traceState,
        name: span.name,
        startNanos: span.startNanos,
        endNanos: BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)),
        attributes: spanAttributes(ex, req, status),
        // The module's: ERROR from 500 on, OK below.
        error: status >= 500,
      });
    },
    async close() {
      const last = exporter?.value.close();
      exporter = null;
      await Promise.all([last, ...retiring]);
    },
  };
}
