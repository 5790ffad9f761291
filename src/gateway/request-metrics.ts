// ingress-nginx's per-request metrics, by the names its Grafana dashboards and alert rules read:
// nginx_ingress_controller_requests and the histograms connect_duration_seconds,
// header_duration_seconds, request_duration_seconds, response_duration_seconds, request_size,
// response_size and bytes_sent, labelled status, method, path (the Ingress path as written),
// namespace, ingress, service, canary, host (with metrics-per-host) and the controller's namespace,
// class and pod. On the data path a request is a map lookup and a
// few additions: each label combination's series is found by its location and a short key, and
// prom-client reads the counts when the registry is read.
import { Counter, type Registry } from 'prom-client';
import type { LocationModel } from '../config/model.ts';
import { DEFAULT_REQUEST_METRICS, type RequestMetricsSettings } from '../config/request-metrics.ts';
import { HistogramChild, HistogramFamily } from './histogram.ts';

const PREFIX = 'nginx_ingress_controller_';
const LABEL_NAMES = [
  'controller_namespace',
  'controller_class',
  'controller_pod',
  'status',
  'method',
  'path',
  'namespace',
  'ingress',
  'service',
  'canary',
  'host',
] as const;

/** One answered request, as the access log line has it. */
export interface RequestSample {
  /** The location that served it; null for the default server (no rule matched). */
  location: LocationModel | null;
  /** The server name; `hostDefined` when an Ingress names it. */
  host: string;
  hostDefined: boolean;
  method: string;
  status: number;
  /** $proxy_alternative_upstream_name: the canary's upstream when one took part. */
  canary: string;
  requestSeconds: number;
  /** The backend's response time ($upstream_response_time); null without a backend answer. */
  upstreamSeconds: number | null;
  /** $upstream_connect_time and $upstream_header_time; null without a backend attempt. */
  connectSeconds: number | null;
  headerSeconds: number | null;
  requestLength: number;
  bytesSent: number;
}

export interface RequestMetrics {
  record(settings: RequestMetricsSettings | undefined, sample: RequestSample): void;
}

type HistogramName =
  | 'connect_duration_seconds'
  | 'header_duration_seconds'
  | 'request_duration_seconds'
  | 'response_duration_seconds'
  | 'request_size'
  | 'response_size'
  | 'bytes_sent';

const HISTOGRAMS: readonly { name: HistogramName; help: string; buckets: 'time' | 'length' | 'size' }[] = [
  {
    name: 'connect_duration_seconds',
    help: 'The time spent on establishing a connection with the upstream server',
    buckets: 'time',
  },
  {
    name: 'header_duration_seconds',
    help: 'The time spent on receiving first header from the upstream server',
    buckets: 'time',
  },
  { name: 'request_duration_seconds', help: 'The request processing time in seconds', buckets: 'time' },
  {
    name: 'response_duration_seconds',
    help: 'The time spent on receiving the response from the upstream server',
    buckets: 'time',
  },
  {
    name: 'request_size',
    help: 'The request length (including request line, header, and request body)',
    buckets: 'length',
  },
  {
    name: 'response_size',
    help: 'The response length (including status line, header, and response body)',
    buckets: 'length',
  },
  { name: 'bytes_sent', help: 'DEPRECATED The number of bytes sent to a client', buckets: 'size' },
];

/** One label combination: its request count (read into prom-client on scrape) and histogram children. */
interface Series {
  counter: Counter.Internal | null;
  pending: number;
  histograms: Partial<Record<HistogramName, HistogramChild>>;
}

export function createRequestMetrics(registry: Registry): RequestMetrics {
  const all = new Map<string, Series>();
  let byLocation = new WeakMap<LocationModel, Map<string, Series>>();
  let unrouted = new Map<string, Series>();
  let current: RequestMetricsSettings | undefined;
  let signature = '';
  let excluded = new Set<string>();
  const requests = new Counter({
    name: `${PREFIX}requests`,
    help: 'The total number of client requests',
    labelNames: LABEL_NAMES,
    registers: [registry],
    collect() {
      for (const series of all.values()) {
        if (series.pending === 0 || series.counter === null) continue;
        series.counter.inc(series.pending);
        series.pending = 0;
      }
    },
  });
  for (const { name, help } of HISTOGRAMS)
    new HistogramFamily({
      name: `${PREFIX}${name}`,
      help,
      registers: [registry],
      children: () => childrenOf(all.values(), name),
    });

  /** A settings object seen for the first time: a change of value starts the series afresh. */
  const adopt = (settings: RequestMetricsSettings) => {
    current = settings;
    const next = JSON.stringify(settings);
    if (next === signature) return;
    signature = next;
    all.clear();
    requests.reset();
    byLocation = new WeakMap();
    unrouted = new Map();
    excluded = new Set(settings.exclude.map((n) => (n.startsWith(PREFIX) ? n.slice(PREFIX.length) : n)));
  };

  return {
    record(given, sample) {
      const settings = given ?? DEFAULT_REQUEST_METRICS;
      if (settings !== current) adopt(settings);
      // ingress-nginx leaves out hosts no Ingress names unless asked (they would be unbounded).
      if (settings.perHost && !sample.hostDefined && !settings.perUndefinedHost) return;
      const status = settings.statusClasses ? `${String(sample.status)[0]}xx` : String(sample.status);
      const host = settings.perHost ? sample.host : '';
      const key = `${sample.method}\u0000${status}\u0000${host}\u0000${sample.canary}`;
      let local: Map<string, Series> | undefined =
        sample.location === null ? unrouted : byLocation.get(sample.location);
      if (local === undefined) {
        local = new Map();
        byLocation.set(sample.location!, local);
      }
      let series = local.get(key);
      if (series === undefined) {
        series = seriesFor(all, settings, excluded, requests, { sample, status, host });
        local.set(key, series);
      }
      series.pending += 1;
      const h = series.histograms;
      h.request_duration_seconds?.observe(sample.requestSeconds);
      if (sample.connectSeconds !== null) h.connect_duration_seconds?.observe(sample.connectSeconds);
      if (sample.headerSeconds !== null) h.header_duration_seconds?.observe(sample.headerSeconds);
      if (sample.upstreamSeconds !== null) h.response_duration_seconds?.observe(sample.upstreamSeconds);
      h.request_size?.observe(sample.requestLength);
      h.response_size?.observe(sample.bytesSent);
      h.bytes_sent?.observe(sample.bytesSent);
    },
  };
}

/** The series of a label combination, shared by every snapshot's locations that have it. */
function seriesFor(
  all: Map<string, Series>,
  settings: RequestMetricsSettings,
  excluded: ReadonlySet<string>,
  requests: Counter,
  { sample, status, host }: { sample: RequestSample; status: string; host: string },
): Series {
  const location = sample.location;
  const labels: Record<string, string> = {
    controller_namespace: settings.controllerNamespace,
    controller_class: settings.controllerClass,
    controller_pod: settings.controllerPod,
    status,
    method: sample.method,
    path: location?.path ?? '',
    namespace: location?.ingress.namespace ?? '',
    ingress: location?.ingress.name ?? '',
    service: location?.backend?.service.name ?? '',
    canary: sample.canary,
  };
  if (settings.perHost) labels.host = host;
  const key = JSON.stringify(labels);
  const existing = all.get(key);
  if (existing !== undefined) return existing;
  const bounds = { time: settings.timeBuckets, length: settings.lengthBuckets, size: settings.sizeBuckets };
  const histograms: Series['histograms'] = {};
  for (const { name, buckets } of HISTOGRAMS)
    if (!excluded.has(name)) histograms[name] = new HistogramChild(labels, bounds[buckets]);
  const series: Series = {
    counter: excluded.has('requests') ? null : requests.labels(labels),
    pending: 0,
    histograms,
  };
  all.set(key, series);
  return series;
}

function* childrenOf(series: Iterable<Series>, name: HistogramName): Iterable<HistogramChild> {
  for (const s of series) {
    const child = s.histograms[name];
    if (child !== undefined) yield child;
  }
}
