// What every tcp- and udp-services entry shares: the settings it follows, the process's connection
// budget (max-worker-connections), a blank log line, and the connection log itself (the format
// compiled when it changes, unknown variables reported once).
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import { DEFAULT_STREAM_SETTINGS, type StreamSettings } from '../config/stream.ts';
import type { LbStats } from '../lb/metrics.ts';
import { compileStreamLogFormat, type StreamSession, unknownStreamVariables } from './stream-log.ts';

/** The ConfigMap settings a tcp- or udp-services listener follows across reloads. */
export interface TcpServiceSettings {
  trustedCidrs: readonly string[];
  /**
   * enable-real-ip: a `:PROXY` entry's header names the client only then (ingress-nginx writes the
   * stream block's set_real_ip_from only with it); otherwise the TCP peer stays the client, in the log
   * and in a `::PROXY` header. Absent: false.
   */
  enableRealIp?: boolean;
  headerTimeoutMs: number;
  /** proxy-stream-timeout: a connection (UDP: a session) with no byte either way for this long is closed. */
  idleTimeoutMs: number;
  /** worker-shutdown-timeout: how long connections to an endpoint that left may carry on. */
  drainMs: number;
  /** log-format-stream, proxy-stream-*; absent: ingress-nginx's defaults. */
  stream?: StreamSettings;
  /** max-worker-connections: connections and UDP sessions this process holds at most, all entries together; 0: no limit. */
  maxConnections?: number;
}

export interface TcpEndpoint {
  host: string;
  port: number;
}

/** The connections of every entry of a process, against max-worker-connections (nginx's worker_connections). */
export interface ConnectionBudget {
  open: number;
  /** When the last "not enough" alert was written: at most one a second. */
  lastAlertMs: number;
}

/** What a tcp- or udp-services listener is started with. */
export interface EntryOptions {
  host: string;
  port: number;
  /** `tcp-<namespace>-<service>-<port>` (`udp-…`): $proxy_upstream_name. */
  upstreamName: string;
  targets: readonly TcpEndpoint[];
  settings: TcpServiceSettings;
  registry: Registry;
  /** Error and state lines. */
  log: (line: string) => void;
  /** The connection log (one line per connection or UDP session). */
  accessLog: (line: string) => void;
  /** Shared by the entries of one process. */
  budget: ConnectionBudget;
}

/** A running listener of an entry. */
export interface EntryProxy {
  address: { address: string; port: number };
  setTargets(targets: readonly TcpEndpoint[], upstreamName: string): void;
  setSettings(settings: TcpServiceSettings): void;
  close(): Promise<void>;
}

/** What an entry is called in its lines: `tcp-services 22`, `udp-services 53`. */
export interface EntryName {
  protocol: 'TCP' | 'UDP';
  port: number;
}

export const entryLabel = (e: EntryName) => `${e.protocol === 'TCP' ? 'tcp' : 'udp'}-services ${e.port}`;

/**
 * max-worker-connections: a connection (a UDP session) that would go over it is refused, counted and
 * alerted (at most once a second), as nginx does when it has no free connection.
 */
export function overBudget(
  entry: EntryName & {
    budget: ConnectionBudget;
    stats: LbStats;
    limit: number;
    log: (line: string) => void;
  },
  peer: string,
): boolean {
  const { budget, limit } = entry;
  if (limit === 0 || budget.open < limit) return false;
  entry.stats.flowsRejected.max_connections = (entry.stats.flowsRejected.max_connections ?? 0) + 1;
  const now = Date.now();
  if (now - budget.lastAlertMs >= 1000) {
    budget.lastAlertMs = now;
    entry.log(
      `alert: ${limit} worker_connections are not enough, ${entryLabel(entry)} connection from ${peer} closed`,
    );
  }
  return true;
}

const HOSTNAME = hostname();
let connectionSerial = 0;

/** A line for a connection that starts now (nginx's $connection: this process's serial number). */
export function blankSession(
  protocol: 'TCP' | 'UDP',
  upstreamName: string,
  peer: { address: string; port: number },
  local: { address: string; port: number },
): StreamSession {
  return {
    protocol,
    remoteAddr: peer.address,
    remotePort: peer.port,
    peerAddr: peer.address,
    peerPort: peer.port,
    proxyProtocolAddr: null,
    proxyProtocolPort: null,
    serverAddr: local.address,
    serverPort: local.port,
    status: 0,
    bytesSent: 0,
    bytesReceived: 0,
    attempts: [],
    startedMs: Date.now(),
    endedMs: 0,
    connection: ++connectionSerial,
    upstreamName,
    hostname: HOSTNAME,
    pid: process.pid,
  };
}

export interface EntryLog {
  /** The settings' log-format-stream (or none), compiled when it changed. */
  apply(settings: TcpServiceSettings): void;
  /** The line of a session that has ended (endedMs set). */
  write(session: StreamSession): void;
}

export function entryLog(
  entry: EntryName & { log: (line: string) => void; accessLog: (line: string) => void },
): EntryLog {
  let format: string | null | undefined;
  let formatter: ((session: StreamSession) => string) | null = null;
  return {
    apply(settings) {
      const next = (settings.stream ?? DEFAULT_STREAM_SETTINGS).logFormat;
      if (next === format) return;
      format = next;
      formatter = next === null ? null : compileStreamLogFormat(next);
      const unknown = next === null ? [] : unknownStreamVariables(next);
      if (unknown.length > 0)
        entry.log(
          `warning: ${entryLabel(entry)}: log-format-stream: unknown variable(s) ${unknown.map((u) => `$${u}`).join(', ')} are written as -`,
        );
    },
    write(session) {
      if (formatter !== null) entry.accessLog(formatter(session));
    },
  };
}

export function bump(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}
