// The controller ConfigMap keys for TLS session resumption: ssl-session-cache and -cache-size (on,
// 10m: sessions kept by id, src/gateway/tls-session-cache.ts), ssl-session-tickets (default false, as
// ingress-nginx: no session tickets), ssl-session-timeout (10m: how long a session may be resumed)
// and ssl-session-ticket-key (the key tickets are sealed with, base64, so that every worker and every
// replica reads the others' tickets). Bad values keep the default with a warning, as ingress-nginx
// logs and ignores a ticket key of the wrong size.
import type { GatewaySettings, TlsSessionModel } from '../config/model.ts';
import { parseNginxTimeMs } from '../config/duration.ts';
import { nginxArguments } from '../config/nginx-token.ts';
import { configMapSource, readBool } from './scalar-readers.ts';
import { parseNginxBufferSize } from './values.ts';

export const TLS_SESSION_CONFIGMAP_KEYS: readonly string[] = [
  'ssl-session-tickets',
  'ssl-session-timeout',
  'ssl-session-ticket-key',
  'ssl-session-cache',
  'ssl-session-cache-size',
];

export const DEFAULT_TLS_SESSIONS: Readonly<TlsSessionModel> = Object.freeze({
  tickets: false,
  timeoutSeconds: 600,
  ticketKey: null,
  cache: true,
  cacheSizeBytes: 10 * 1024 * 1024,
});

/** More than 1 GiB of sessions is a mistake, not a setting. */
const MAX_CACHE_BYTES = 1024 * 1024 * 1024;
/** nginx's least shared session cache: 8 pages of 4 KiB. */
const MIN_CACHE_BYTES = 32 * 1024;

/** Node's TLS takes 48-byte ticket keys (AES-128); ingress-nginx also takes 80-byte (AES-256) ones. */
export const TICKET_KEY_BYTES = 48;

/** nginx's own ssl_session_timeout (5m), where ingress-nginx writes none. */
const NGINX_SESSION_TIMEOUT_SECONDS = 300;

/** More than a week would keep a session (and its key material) resumable for longer than anyone asks. */
const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;

export interface TlsSessionsSink {
  invalid(key: string, value: string, expected: string, kept: string): void;
}

function readTimeout(text: string | undefined, sink: TlsSessionsSink): number {
  const fallback = DEFAULT_TLS_SESSIONS.timeoutSeconds;
  if (text === undefined || text.trim() === '') return fallback;
  const ms = parseNginxTimeMs(text, true);
  if (ms !== null && ms >= 1000 && ms <= MAX_TIMEOUT_SECONDS * 1000) return Math.floor(ms / 1000);
  sink.invalid('ssl-session-timeout', text, 'an nginx time from 1s to 7d such as "10m"', '10m');
  return fallback;
}

/**
 * ingress-nginx writes `ssl_session_cache shared:SSL:{{ size }};`: one argument (a blank before the
 * size makes two), a size ngx_parse_size reads (k or m, no b, no g), at least 8 pages of 4 KiB (nginx:
 * "session cache is too small").
 */
function readCacheSize(text: string | undefined, sink: TlsSessionsSink): number {
  const fallback = DEFAULT_TLS_SESSIONS.cacheSizeBytes;
  if (text === undefined || text.trim() === '') return fallback;
  const words = nginxArguments(`shared:SSL:${text}`);
  const bytes = words?.length === 1 ? parseNginxBufferSize(words[0]!.slice('shared:SSL:'.length)) : null;
  if (bytes !== null && bytes >= MIN_CACHE_BYTES && bytes <= MAX_CACHE_BYTES) return bytes;
  sink.invalid('ssl-session-cache-size', text, 'a size from 32k to 1024m such as "10m"', '10m');
  return fallback;
}

function readTicketKey(text: string | undefined, sink: TlsSessionsSink): string | null {
  if (text === undefined || text.trim() === '') return null;
  const trimmed = text.trim();
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : null;
  if (bytes !== null && bytes.length === TICKET_KEY_BYTES) return bytes.toString('base64');
  const why =
    bytes?.length === 80
      ? 'a 48-byte key (base64; the 80-byte AES-256 form nginx also reads is not available in Node)'
      : 'the base64 of 48 random bytes (openssl rand 48 | base64)';
  // The value is a secret: the warning does not repeat it.
  sink.invalid('ssl-session-ticket-key', '(hidden)', why, "(a random key of the gateway's own)");
  return null;
}

/** Reads the ssl-session-* keys of the controller ConfigMap into `settings.tlsSessions` (when any is set). */
export function applyTlsSessionSettings(
  data: Readonly<Record<string, string>>,
  settings: GatewaySettings,
  sink: TlsSessionsSink,
): void {
  if (!TLS_SESSION_CONFIGMAP_KEYS.some((key) => data[key] !== undefined)) return;
  const source = configMapSource(data, (...report) => sink.invalid(...report));
  const tickets = readBool(source, 'ssl-session-tickets', DEFAULT_TLS_SESSIONS.tickets);
  const timeoutSeconds = readTimeout(data['ssl-session-timeout'], sink);
  const ticketKey = readTicketKey(data['ssl-session-ticket-key'], sink);
  const cache = readBool(source, 'ssl-session-cache', DEFAULT_TLS_SESSIONS.cache);
  settings.tlsSessions = {
    tickets,
    // ingress-nginx writes ssl_session_timeout only beside ssl_session_cache: without the cache, tickets
    // live nginx's default 5m whatever ssl-session-timeout says.
    timeoutSeconds: cache ? timeoutSeconds : NGINX_SESSION_TIMEOUT_SECONDS,
    ticketKey,
    cache,
    cacheSizeBytes: readCacheSize(data['ssl-session-cache-size'], sink),
  };
}
