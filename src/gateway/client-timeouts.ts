// The deadlines of every state in which the gateway waits on a client, under nginx's names and with
// the values ingress-nginx gives them: client_header_timeout, client_body_timeout and
// keepalive_timeout come from the ConfigMap (client-header-timeout, client-body-timeout, keep-alive);
// send_timeout, lingering_time and lingering_timeout are nginx's defaults, which ingress-nginx does
// not expose. GatewayOptions can override each (tests use a few hundred milliseconds).
import { CLIENT_HEADER_BUFFER_BYTES, LARGE_CLIENT_HEADER_BUFFERS } from '../config/header-buffers.ts';
import type { GatewaySettings } from '../config/model.ts';
import type { HeadBuffers } from './h1-head-buffers.ts';

export interface ClientTimeouts {
  /** client_header_timeout: a request head must arrive within this time. */
  headerMs: number;
  /** client_body_timeout: the longest wait between two reads of a request body (then 408 and close). */
  bodyMs: number;
  /** keepalive_timeout: idle time allowed between two requests; 0 disables keep-alive. */
  keepAliveMs: number;
  /** send_timeout: the longest a client may leave buffered response bytes untaken (then the connection is reset). */
  sendMs: number;
  /** lingering_time: the longest the gateway reads and discards what a client still sends after its answer. */
  lingeringTimeMs: number;
  /** lingering_timeout: the longest wait between two reads while lingering. */
  lingeringTimeoutMs: number;
  /** keepalive_requests (keep-alive-requests): the answer to this many-th request on a connection closes it. */
  keepAliveRequests: number;
  /** One request head at most: the first buffer and every large one (nginx's most, however lines pack). */
  maxHeadBytes: number;
  /**
   * client-header-buffer-size and large-client-header-buffers: a head fits as it fits in nginx's
   * buffers (src/gateway/h1-head-buffers.ts). Else 414 for the request line, 431 for a header.
   */
  headBuffers: HeadBuffers;
}

/** nginx's defaults for what ingress-nginx leaves alone; the ConfigMap defaults are in annotations.ts. */
export const SEND_TIMEOUT_MS = 60_000;
export const LINGERING_TIME_MS = 30_000;
export const LINGERING_TIMEOUT_MS = 5_000;
/** ingress-nginx's keep-alive-requests default (nginx's keepalive_requests). */
export const KEEP_ALIVE_REQUESTS = 1000;

/** Why the gateway closed a connection on its own (keepip_gateway_connections_closed_total{reason}). */
export type ConnectionCloseReason =
  | 'header_timeout'
  | 'client_body_timeout'
  | 'keepalive_timeout'
  | 'send_timeout'
  | 'lingering_close'
  | 'upgrade_refused'
  | 'max_connections';

export const CONNECTION_CLOSE_REASONS: readonly ConnectionCloseReason[] = [
  'header_timeout',
  'client_body_timeout',
  'keepalive_timeout',
  'send_timeout',
  'lingering_close',
  'upgrade_refused',
  'max_connections',
];

/** The deadlines a snapshot's new connections get: the settings, then any override that is given. */
export function clientTimeoutsOf(
  settings: GatewaySettings,
  overrides: Partial<ClientTimeouts> = {},
): ClientTimeouts {
  const buffers = settings.largeClientHeaderBuffers ?? LARGE_CLIENT_HEADER_BUFFERS;
  const first = settings.clientHeaderBufferBytes ?? CLIENT_HEADER_BUFFER_BYTES;
  return {
    headerMs: overrides.headerMs ?? settings.clientHeaderTimeoutMs,
    bodyMs: overrides.bodyMs ?? settings.clientBodyTimeoutMs,
    keepAliveMs: overrides.keepAliveMs ?? settings.keepAliveTimeoutMs,
    sendMs: overrides.sendMs ?? SEND_TIMEOUT_MS,
    lingeringTimeMs: overrides.lingeringTimeMs ?? LINGERING_TIME_MS,
    lingeringTimeoutMs: overrides.lingeringTimeoutMs ?? LINGERING_TIMEOUT_MS,
    keepAliveRequests: overrides.keepAliveRequests ?? settings.keepAliveRequests ?? KEEP_ALIVE_REQUESTS,
    maxHeadBytes: overrides.maxHeadBytes ?? first + buffers.count * buffers.sizeBytes,
    headBuffers: overrides.headBuffers ?? { firstBytes: first, ...buffers },
  };
}

/**
 * How often one sweep checks every connection's deadlines: a quarter of the shortest one, between
 * 10 ms and 1 s. A deadline is then met within a quarter of its length (at most 1 s late).
 */
export function sweepPeriodMs(t: ClientTimeouts): number {
  const keepAlive = t.keepAliveMs > 0 ? t.keepAliveMs : Number.POSITIVE_INFINITY;
  const shortest = Math.min(t.headerMs, t.bodyMs, keepAlive, t.sendMs, t.lingeringTimeoutMs);
  return Math.max(10, Math.min(1_000, Math.floor(shortest / 4)));
}
