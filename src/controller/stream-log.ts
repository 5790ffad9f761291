// The connection log of tcp-services, as nginx's stream access_log writes it with ingress-nginx's
// log-format-stream: one line per connection when it ends, the variables of nginx's stream modules
// (core, upstream, proxy_protocol, realip) and ingress-nginx's $proxy_upstream_name. Pure: the
// session's values come from src/controller/tcp-proxy.ts.
import { compileFormat, describeFormat, type LogVariable } from '../gateway/access-log.ts';
import { formatMsAsSeconds, formatTimeIso8601, formatTimeLocal } from '../gateway/nginx-time.ts';

/** One connection to an endpoint, in the order tried. */
export interface StreamAttempt {
  /** `address:port`. */
  upstream: string;
  /** Milliseconds to connect; null when the connect failed. */
  connectMs: number | null;
  bytesSent: number;
  bytesReceived: number;
}

/** What one tcp-services connection (or udp-services session) did, when it ends. */
export interface StreamSession {
  protocol: 'TCP' | 'UDP';
  /** The client: the PROXY header's for a `:PROXY` entry, else the TCP peer. */
  remoteAddr: string;
  remotePort: number;
  /** The TCP peer (the load balancer for a `:PROXY` entry). */
  peerAddr: string;
  peerPort: number;
  proxyProtocolAddr: string | null;
  proxyProtocolPort: number | null;
  serverAddr: string;
  serverPort: number;
  /** nginx's stream status: 200, 400 (a PROXY header refused), 502 (no endpoint answered). */
  status: number;
  /** To the client, from the client. */
  bytesSent: number;
  bytesReceived: number;
  attempts: StreamAttempt[];
  startedMs: number;
  endedMs: number;
  /** nginx's $connection: this process's serial number of the connection. */
  connection: number;
  /** `tcp-<namespace>-<service>-<port>`, as ingress-nginx names the stream upstream. */
  upstreamName: string;
  hostname: string;
  pid: number;
}

type StreamVariable = LogVariable<StreamSession>;

const number = (get: (s: StreamSession) => number): StreamVariable => ({
  get: (s) => `${get(s)}`,
  safe: true,
});
/** A per-attempt value, comma-separated as nginx joins its upstream states; none tried: `-`. */
const perAttempt = (get: (a: StreamAttempt) => string): StreamVariable => ({
  get: (s) => (s.attempts.length === 0 ? null : s.attempts.map(get).join(', ')),
  safe: false,
});

const VARIABLES: Readonly<Record<string, StreamVariable>> = {
  remote_addr: { get: (s) => s.remoteAddr, safe: false },
  remote_port: number((s) => s.remotePort),
  realip_remote_addr: { get: (s) => s.peerAddr, safe: false },
  realip_remote_port: number((s) => s.peerPort),
  proxy_protocol_addr: { get: (s) => s.proxyProtocolAddr, safe: false },
  proxy_protocol_port: {
    get: (s) => (s.proxyProtocolPort === null ? null : `${s.proxyProtocolPort}`),
    safe: true,
  },
  server_addr: { get: (s) => s.serverAddr, safe: false },
  server_port: number((s) => s.serverPort),
  protocol: { get: (s) => s.protocol, safe: true },
  status: number((s) => s.status),
  bytes_sent: number((s) => s.bytesSent),
  bytes_received: number((s) => s.bytesReceived),
  session_time: { get: (s) => formatMsAsSeconds(s.endedMs - s.startedMs), safe: true },
  upstream_addr: perAttempt((a) => a.upstream),
  upstream_bytes_sent: perAttempt((a) => `${a.bytesSent}`),
  upstream_bytes_received: perAttempt((a) => `${a.bytesReceived}`),
  upstream_connect_time: perAttempt((a) => (a.connectMs === null ? '-' : formatMsAsSeconds(a.connectMs))),
  proxy_upstream_name: { get: (s) => s.upstreamName, safe: false },
  time_local: { get: (s) => formatTimeLocal(s.endedMs), safe: true },
  time_iso8601: { get: (s) => formatTimeIso8601(s.endedMs), safe: true },
  msec: { get: (s) => formatMsAsSeconds(s.endedMs), safe: true },
  connection: number((s) => s.connection),
  pid: number((s) => s.pid),
  hostname: { get: (s) => s.hostname, safe: false },
};

const lookup = (name: string): StreamVariable | null => VARIABLES[name] ?? null;

/** The formatter of a log-format-stream (nginx's default escaping, as the template's log_format). */
export function compileStreamLogFormat(format: string): (session: StreamSession) => string {
  return compileFormat(format, 'default', lookup);
}

/** The variables of a log-format-stream that tcp-services lines do not have (written as `-`). */
export function unknownStreamVariables(format: string): string[] {
  return describeFormat(format, lookup).unknown;
}
