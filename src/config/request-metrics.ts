// The ingress-nginx controller's per-request metrics (nginx_ingress_controller_requests and its
// histograms, which ingress-nginx's Grafana dashboards and alert rules read): how they are labelled and
// bucketed, from the controller's flags (--metrics-per-host, --metrics-per-undefined-host,
// --report-status-classes, --time-buckets, --length-buckets, --size-buckets, --exclude-socket-metrics).
// Served by src/gateway/request-metrics.ts. The defaults are ingress-nginx's.

export interface RequestMetricsSettings {
  /** controller_namespace, controller_class, controller_pod: on every series, as ingress-nginx's const labels. */
  controllerNamespace: string;
  controllerClass: string;
  controllerPod: string;
  /** A `host` label (the server name); with it, hosts no Ingress names are left out unless perUndefinedHost. */
  perHost: boolean;
  perUndefinedHost: boolean;
  /** `status` as 2xx, 4xx… instead of the code. */
  statusClasses: boolean;
  /** Seconds: request_duration_seconds, response_duration_seconds. */
  timeBuckets: readonly number[];
  /** Bytes: request_size, response_size. */
  lengthBuckets: readonly number[];
  /** Bytes: bytes_sent. */
  sizeBuckets: readonly number[];
  /** Metric names (with or without the nginx_ingress_controller_ prefix) neither counted nor exported. */
  exclude: readonly string[];
}

export const DEFAULT_REQUEST_METRICS: RequestMetricsSettings = {
  controllerNamespace: '',
  controllerClass: '',
  controllerPod: '',
  perHost: true,
  perUndefinedHost: false,
  statusClasses: false,
  // Prometheus's DefBuckets; LinearBuckets(10, 10, 10); ExponentialBuckets(10, 10, 7).
  timeBuckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  lengthBuckets: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
  sizeBuckets: [10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000],
  exclude: [],
};
