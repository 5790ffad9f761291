// HTTP/2 on the TLS listener: what the controller ConfigMap says (use-http2, http2-max-concurrent-streams,
// http2-max-requests, keep-alive-requests, large-client-header-buffers; parsed in src/k8s/http2-settings.ts) and the limits keepip adds against abuse.
// The idle timeout is the listener's keep-alive timeout, as nginx's keepalive_timeout covers both.
// The defaults are ingress-nginx 1.12's, and nginx's where ingress-nginx leaves nginx's in place.

import { LARGE_CLIENT_HEADER_BUFFERS } from './header-buffers.ts';

export interface Http2Settings {
  /** use-http2: offer `h2` in ALPN on the TLS listener (default true). */
  enabled: boolean;
  /** http2-max-concurrent-streams: SETTINGS_MAX_CONCURRENT_STREAMS (default 128). */
  maxConcurrentStreams: number;
  /** One header field, name and value, decoded, :path included: one large-client-header-buffers buffer (8 KiB). */
  maxFieldSize: number;
  /** The whole decoded header list: every large-client-header-buffers buffer (4 × 8k), 1 MiB at most. */
  maxHeaderListSize: number;
  /** keep-alive-requests (or a lower http2-max-requests): streams per connection, then GOAWAY (default 1000). */
  maxRequests: number;
}

/** Limits against floods that ingress-nginx has no key for (nginx hard-codes its own; see docs/gateway.md). */
export interface Http2AbuseLimits {
  /**
   * Streams the client resets before their response ended (CVE-2023-44487, rapid reset): once a
   * connection has this many, and they are at least half of its streams, it is closed with GOAWAY
   * ENHANCE_YOUR_CALM.
   */
  prematureResets: number;
  /** PING and SETTINGS frames from the client: a bucket of this many... */
  controlFrameBurst: number;
  /** ...refilled at this rate per second; an empty bucket closes the connection (ENHANCE_YOUR_CALM). */
  controlFramesPerSecond: number;
  /**
   * nginx's "http2 flood detected": a connection that has read more than 8 bytes per byte of requests
   * (header lists and DATA) beyond this slack is closed. Catches the frames node:http2 never reports
   * (WINDOW_UPDATE, PRIORITY, unknown types) whatever their kind.
   */
  frameFloodSlackBytes: number;
}

export const DEFAULT_HTTP2_SETTINGS: Readonly<Http2Settings> = Object.freeze({
  enabled: true,
  maxConcurrentStreams: 128,
  maxFieldSize: LARGE_CLIENT_HEADER_BUFFERS.sizeBytes,
  maxHeaderListSize: LARGE_CLIENT_HEADER_BUFFERS.count * LARGE_CLIENT_HEADER_BUFFERS.sizeBytes,
  maxRequests: 1000,
});

export const DEFAULT_HTTP2_ABUSE_LIMITS: Readonly<Http2AbuseLimits> = Object.freeze({
  prematureResets: 100,
  controlFrameBurst: 200,
  controlFramesPerSecond: 20,
  frameFloodSlackBytes: 1024 * 1024,
});

/** The HTTP/2 settings of a gateway configuration (absent: the defaults). */
export function http2SettingsOf(settings: { http2?: Http2Settings | undefined }): Http2Settings {
  return settings.http2 ?? DEFAULT_HTTP2_SETTINGS;
}
