// The controller ConfigMap keys for HTTP/2 to clients: use-http2, http2-max-concurrent-streams,
// http2-max-requests (deprecated in ingress-nginx; obsolete in its nginx) and keep-alive-requests, which
// nginx ≥ 1.19.7 applies to HTTP/2 connections as well as HTTP/1.1 ones (settings.keepAliveRequests, for
// src/gateway/h1-server.ts). Bad values keep the default with a warning, as every other key. The field
// and list limits are large-client-header-buffers', as nginx ≥ 1.19.7 takes them (its http2_max_field_size
// and http2_max_header_size, which ingress-nginx still renders from http2-max-*, are obsolete and ignored).
import { LARGE_CLIENT_HEADER_BUFFERS } from '../config/header-buffers.ts';
import { DEFAULT_HTTP2_SETTINGS, type Http2Settings } from '../config/http2.ts';
import type { GatewaySettings } from '../config/model.ts';
import { configMapSource, readBool, readWhole, type ScalarSource } from './scalar-readers.ts';

export const HTTP2_CONFIGMAP_KEYS: readonly string[] = [
  'use-http2',
  'http2-max-concurrent-streams',
  'http2-max-requests',
  'keep-alive-requests',
];

export interface Http2SettingsSink {
  invalid(key: string, value: string, expected: string, kept: string): void;
}

/** HPACK and node:http2 carry header lists up to 2^24; keepip holds one decoded list to 1 MiB whatever the buffers. */
const MAX_HEADER_BYTES = 1024 * 1024;

function whole(
  source: ScalarSource,
  key: string,
  fallback: number,
  range: readonly [number, number],
): number {
  const [min, max] = range;
  const expected = `a whole number from ${min} to ${max}`;
  return readWhole(source, key, fallback, { min, max, expected, kept: String(fallback) });
}

/**
 * Streams per HTTP/2 connection. nginx ≥ 1.19.7 ignores http2_max_requests (obsolete: keepalive_requests
 * ends HTTP/2 connections too); ingress-nginx's documentation still describes it as the limit. keepip
 * honours a lower one, never a higher one: a client never gets more streams than in nginx. "0" is
 * ingress-nginx's default: not set.
 */
function http2MaxRequests(
  numbers: ScalarSource,
  data: Readonly<Record<string, string>>,
  keepAliveRequests: number,
): number {
  if (data['http2-max-requests']?.trim() === '0') return keepAliveRequests;
  return Math.min(whole(numbers, 'http2-max-requests', keepAliveRequests, [1, 1_000_000]), keepAliveRequests);
}

/**
 * Reads the HTTP/2 keys of the controller ConfigMap into `settings.http2`; after
 * large-client-header-buffers (settings.largeClientHeaderBuffers): a field may take one buffer, the
 * list all of them.
 */
export function applyHttp2Settings(
  data: Readonly<Record<string, string>>,
  settings: GatewaySettings,
  sink: Http2SettingsSink,
): void {
  const d = DEFAULT_HTTP2_SETTINGS;
  const buffers = settings.largeClientHeaderBuffers ?? LARGE_CLIENT_HEADER_BUFFERS;
  const invalid: ScalarSource['invalid'] = (...report) => sink.invalid(...report);
  const keys = configMapSource(data, invalid);
  // A blank number is none (the default applies, silently); a blank use-http2 is not a boolean.
  const numbers = configMapSource(data, invalid, { blankIsAbsent: true });
  const enabled = readBool(keys, 'use-http2', d.enabled);
  // nginx's keepalive_requests covers HTTP/2 since 1.19.7 (0: every connection ends after one request).
  const keepAliveRequests = whole(numbers, 'keep-alive-requests', d.maxRequests, [0, 1_000_000]);
  const http2Settings: Http2Settings = {
    enabled,
    maxConcurrentStreams: whole(numbers, 'http2-max-concurrent-streams', d.maxConcurrentStreams, [1, 65_535]),
    maxFieldSize: buffers.sizeBytes,
    maxHeaderListSize: Math.min(buffers.count * buffers.sizeBytes, MAX_HEADER_BYTES),
    maxRequests: http2MaxRequests(numbers, data, keepAliveRequests),
  };
  settings.http2 = http2Settings;
  settings.keepAliveRequests = keepAliveRequests;
}
