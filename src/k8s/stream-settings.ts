// The controller ConfigMap keys of nginx's stream module, which serves ingress-nginx's tcp-services:
// the connection log (log-format-stream; off with disable-access-log or disable-stream-access-log,
// as the template's `access_log off`), proxy-stream-next-upstream, -tries and -timeout, and
// proxy-stream-responses (UDP).
import type { GatewaySettings } from '../config/model.ts';
import { DEFAULT_STREAM_SETTINGS } from '../config/stream.ts';
import { configMapSource, readBool, readNginxTime, readWhole } from './scalar-readers.ts';

export const STREAM_CONFIGMAP_KEYS: readonly string[] = [
  'log-format-stream',
  'disable-stream-access-log',
  'proxy-stream-next-upstream',
  'proxy-stream-next-upstream-tries',
  'proxy-stream-next-upstream-timeout',
  'proxy-stream-responses',
];

export interface StreamSettingsSink {
  invalid(key: string, value: string, expected: string, kept: string): void;
}

/** Reads the stream keys into `settings.stream` (left absent when every one is at its default). */
export function applyStreamSettings(
  data: Readonly<Record<string, string>>,
  settings: GatewaySettings,
  sink: StreamSettingsSink,
): void {
  const source = configMapSource(data, (...report) => sink.invalid(...report), { blankIsAbsent: true });
  const d = DEFAULT_STREAM_SETTINGS;
  const format = source.get('log-format-stream');
  // disable-access-log is read (and a bad value reported) with the HTTP log's keys.
  const quiet = configMapSource(data, () => {}, { blankIsAbsent: true });
  const logOff =
    readBool(quiet, 'disable-access-log', false) || readBool(source, 'disable-stream-access-log', false);
  const stream = {
    logFormat: logOff ? null : (format ?? d.logFormat),
    nextUpstream: readBool(source, 'proxy-stream-next-upstream', d.nextUpstream),
    nextUpstreamTries: readWhole(source, 'proxy-stream-next-upstream-tries', d.nextUpstreamTries, {
      max: 1000,
      expected: 'a whole number (0: each endpoint once)',
      kept: '3',
    }),
    nextUpstreamTimeoutMs: readNginxTime(
      source,
      'proxy-stream-next-upstream-timeout',
      d.nextUpstreamTimeoutMs,
      {
        kept: '600s',
        expected: 'an nginx time (600s, 1m; 0: no limit)',
      },
    ),
    // ingress-nginx reads this key with strconv.Atoi (010 is 10), not as its mapstructure keys.
    responses: readWhole(
      { get: source.get, invalid: source.invalid },
      'proxy-stream-responses',
      d.responses,
      {
        max: 1_000_000,
        expected: 'a whole number of datagrams (0: none)',
        kept: '1',
      },
    ),
  };
  if (Object.entries(stream).some(([k, v]) => d[k as keyof typeof d] !== v)) settings.stream = stream;
}
