// tcp- and udp-services as nginx's stream module serves them in ingress-nginx: the connection log
// (log-format-stream, disable-stream-access-log), the next endpoint after a failed connect
// (proxy-stream-next-upstream, -tries, -timeout) and the answers a UDP datagram expects
// (proxy-stream-responses). Parsed in src/k8s/stream-settings.ts; served by src/controller/tcp-proxy.ts
// and udp-proxy.ts. The defaults are ingress-nginx's.

export interface StreamSettings {
  /** log-format-stream; null when disable-access-log or disable-stream-access-log is on. */
  logFormat: string | null;
  /** proxy-stream-next-upstream: after a failed connect, try the next endpoint (default on). */
  nextUpstream: boolean;
  /** proxy-stream-next-upstream-tries: attempts in all, the first included, each endpoint once at most (3); 0: each endpoint once. */
  nextUpstreamTries: number;
  /** proxy-stream-next-upstream-timeout: no next attempt once this long has passed (600 s); 0: no limit. */
  nextUpstreamTimeoutMs: number;
  /** proxy-stream-responses: datagrams a UDP session expects back for each one it forwards (1); 0: none. */
  responses: number;
}

/** ingress-nginx's default log-format-stream, exactly. */
export const DEFAULT_LOG_FORMAT_STREAM =
  '[$remote_addr] [$time_local] $protocol $status $bytes_sent $bytes_received $session_time';

export const DEFAULT_STREAM_SETTINGS: StreamSettings = {
  logFormat: DEFAULT_LOG_FORMAT_STREAM,
  nextUpstream: true,
  nextUpstreamTries: 3,
  nextUpstreamTimeoutMs: 600_000,
  responses: 1,
};
