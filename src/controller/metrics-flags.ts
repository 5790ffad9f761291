// The controller flags of ingress-nginx's request metrics (--metrics-per-host,
// --metrics-per-undefined-host, --report-status-classes, --time-buckets, --length-buckets,
// --size-buckets, --exclude-socket-metrics) read into the settings the gateway labels and buckets
// nginx_ingress_controller_* with (src/config/request-metrics.ts). Pure.
import { DEFAULT_REQUEST_METRICS, type RequestMetricsSettings } from '../config/request-metrics.ts';

interface FlagValues {
  text(name: string): string;
  bool(name: string): boolean;
}

/** A comma-separated list of increasing numbers (Prometheus refuses others); empty: `fallback`. */
function buckets(
  v: FlagValues,
  name: string,
  fallback: readonly number[],
  errors: string[],
): readonly number[] {
  const text = v.text(name).trim();
  if (text === '') return fallback;
  const values = text.split(',').map((s) => Number(s.trim()));
  const increasing = values.every((n, i) => Number.isFinite(n) && (i === 0 || n > values[i - 1]!));
  if (increasing) return values;
  errors.push(`--${name}: "${text}" is not a comma-separated list of increasing numbers`);
  return fallback;
}

export function requestMetricsFlags(
  v: FlagValues,
  env: Readonly<Record<string, string | undefined>>,
  o: { controllerClass: string; podNamespace: string },
  errors: string[],
): RequestMetricsSettings {
  const d = DEFAULT_REQUEST_METRICS;
  const perHost = v.bool('metrics-per-host');
  const perUndefinedHost = v.bool('metrics-per-undefined-host');
  // ingress-nginx refuses to start with this pair.
  if (perUndefinedHost && !perHost)
    errors.push('--metrics-per-undefined-host=true must be passed with --metrics-per-host=true');
  return {
    controllerNamespace: o.podNamespace,
    controllerClass: o.controllerClass,
    controllerPod: env.POD_NAME ?? '',
    perHost,
    perUndefinedHost,
    statusClasses: v.bool('report-status-classes'),
    timeBuckets: buckets(v, 'time-buckets', d.timeBuckets, errors),
    lengthBuckets: buckets(v, 'length-buckets', d.lengthBuckets, errors),
    sizeBuckets: buckets(v, 'size-buckets', d.sizeBuckets, errors),
    exclude: v
      .text('exclude-socket-metrics')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  };
}
