// One tcp-services entry served as nginx's stream module serves it for ingress-nginx: a listener
// (`:PROXY`: each connection opens with the load balancer's PROXY header, read under the gateway's
// trust), endpoints taken round robin with the next one after a failed connect
// (proxy-stream-next-upstream), a PROXY v1 header to the backend for `::PROXY`, bytes relayed both
// ways until both sides end or the connection idles for proxy-stream-timeout, and one log line per
// connection (log-format-stream). Connections to an endpoint that left carry on for
// worker-shutdown-timeout, as a reload's old nginx worker keeps them, then they are closed.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { DEFAULT_STREAM_SETTINGS, type StreamSettings } from '../config/stream.ts';
import { type DialTarget, dialInTurn } from '../lb/dial.ts';
import { type FlowEndReason, type PreparedRelay, prepareRelay } from '../lb/flow.ts';
import { emptyLbStats, registerLbMetrics } from '../lb/metrics.ts';
import { createHeaderBuilder } from '../lb/proxy-header.ts';
import { resetSocket } from '../lb/socket-reset.ts';
import { CidrSet } from '../net/cidr-set.ts';
import { formatHostPort } from '../net/host-port.ts';
import { foldMappedIpv4 } from '../net/ip.ts';
import { readProxyHeader } from '../proxy-protocol/reader.ts';
import {
  blankSession,
  bump,
  type EntryLog,
  type EntryOptions,
  type EntryProxy,
  entryLog,
  overBudget,
  type TcpEndpoint,
  type TcpServiceSettings,
} from './stream-entry.ts';
import type { StreamAttempt, StreamSession } from './stream-log.ts';

export interface TcpProxyOptions extends EntryOptions {
  /** `:PROXY`: clients send a PROXY header first. */
  decode: boolean;
  /** `::PROXY`: a PROXY v1 header goes to the backend. */
  encode: boolean;
}

/** nginx's stream proxy_connect_timeout, which ingress-nginx leaves at its default. */
const CONNECT_TIMEOUT_MS = 60_000;

/** An open connection to an endpoint: its key, and how to close it (drain over, shutdown). */
interface Relayed {
  endpoint: string;
  abort(): void;
}

export async function startTcpProxy(options: TcpProxyOptions): Promise<EntryProxy> {
  const state = proxyState(options);
  const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (socket) => {
    void accept(state, socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const unregister = registerLbMetrics(options.registry, {
    name: `tcp-services-${options.port}`,
    stats: state.stats,
    targets: () => state.targets.map((t) => ({ key: formatHostPort(t.host, t.port), healthy: true })),
  });
  return {
    address: server.address() as net.AddressInfo,
    setTargets(targets, upstreamName) {
      state.targets = [...targets];
      state.upstreamName = upstreamName;
      drainLeavers(state);
    },
    setSettings: (settings) => applySettings(state, settings),
    close: () =>
      new Promise((resolve) => {
        unregister();
        server.close(() => resolve());
        for (const timer of state.draining.values()) clearTimeout(timer);
        state.draining.clear();
        for (const stop of [...state.pending]) stop();
        for (const relayed of [...state.open]) relayed.abort();
      }),
  };
}

interface ProxyState {
  options: TcpProxyOptions;
  targets: TcpEndpoint[];
  upstreamName: string;
  cursor: number;
  settings: TcpServiceSettings;
  stream: StreamSettings;
  trusted: ReturnType<typeof CidrSet.build>;
  log: EntryLog;
  header: ReturnType<typeof createHeaderBuilder> | null;
  stats: ReturnType<typeof emptyLbStats>;
  /** Connections being read or dialled: each entry closes its client. */
  pending: Set<() => void>;
  open: Set<Relayed>;
  /** Endpoints that left while connections to them were open: their drain deadline. */
  draining: Map<string, NodeJS.Timeout>;
}

function proxyState(options: TcpProxyOptions): ProxyState {
  const state: ProxyState = {
    options,
    targets: [...options.targets],
    upstreamName: options.upstreamName,
    cursor: 0,
    settings: options.settings,
    stream: DEFAULT_STREAM_SETTINGS,
    trusted: CidrSet.build([]),
    log: entryLog({ ...options, protocol: 'TCP' }),
    header: options.encode ? createHeaderBuilder('v1', {}, () => randomBytes(16)) : null,
    stats: emptyLbStats(),
    pending: new Set(),
    open: new Set(),
    draining: new Map(),
  };
  applySettings(state, options.settings);
  return state;
}

function applySettings(state: ProxyState, settings: TcpServiceSettings): void {
  state.log.apply(settings);
  state.settings = settings;
  state.stream = settings.stream ?? DEFAULT_STREAM_SETTINGS;
  // An invalid proxy-real-ip-cidr trusts nobody, as in the gateway.
  state.trusted = CidrSet.build([...settings.trustedCidrs]);
}

/** The connection's end (every path comes here once): its log line, and its place in the budget. */
function logSession(state: ProxyState, session: StreamSession): void {
  state.options.budget.open--;
  session.endedMs = Date.now();
  state.log.write(session);
}

/** One client connection: its PROXY header (`:PROXY`), then the dial. */
async function accept(state: ProxyState, socket: net.Socket): Promise<void> {
  socket.on('error', () => {});
  const peer = { address: foldMappedIpv4(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
  const limit = state.settings.maxConnections ?? 0;
  if (
    overBudget(
      { ...state.options, protocol: 'TCP', stats: state.stats, limit },
      formatHostPort(peer.address, peer.port),
    )
  ) {
    socket.destroy();
    return;
  }
  state.options.budget.open++;
  const local = { address: foldMappedIpv4(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
  const session = blankSession('TCP', state.upstreamName, peer, local);
  const port = state.options.port;
  // What a `::PROXY` header names as the destination: the decoded one for `:PROXY:PROXY`.
  let destination = { address: session.serverAddr, port: session.serverPort };
  if (state.options.decode) {
    const stop = () => socket.destroy();
    state.pending.add(stop);
    const trusted = state.trusted;
    const outcome = await readProxyHeader(socket, {
      isTrusted: (peer) => trusted.ok && trusted.set.has(peer),
      timeoutMs: state.settings.headerTimeoutMs,
      onReject: (e) =>
        state.options.log(
          `tcp-services ${port}: PROXY header refused from ${e.peer} (${e.reason}: ${e.detail})`,
        ),
    });
    state.pending.delete(stop);
    if (!outcome.ok) {
      bump(state.stats.flowsRejected, 'header');
      session.status = 400;
      logSession(state, session);
      return;
    }
    const { info } = outcome;
    if (info.fromHeader) {
      session.proxyProtocolAddr = info.clientAddress;
      session.proxyProtocolPort = info.clientPort;
      // nginx's stream realip: the header is believed only with enable-real-ip (set_real_ip_from is
      // in the stream block only then); else the peer stays the client, here and in `::PROXY`.
      if (state.settings.enableRealIp === true) {
        session.remoteAddr = info.clientAddress;
        session.remotePort = info.clientPort;
        destination = { address: info.destinationAddress, port: info.destinationPort };
      }
    }
  }
  const header = headerFor(state, session, destination);
  if (header === undefined) {
    socket.destroy();
    session.status = 500;
    logSession(state, session);
    return;
  }
  dial(state, socket, session, header);
}

/** The PROXY v1 header for `::PROXY` (null without it); undefined when the addresses cannot be encoded. */
function headerFor(
  state: ProxyState,
  session: StreamSession,
  destination: { address: string; port: number },
): Buffer | null | undefined {
  if (state.header === null) return null;
  const encoded = state.header.forFlow({
    client: { address: session.remoteAddr, port: session.remotePort },
    listener: destination,
  });
  return encoded.ok ? encoded.value : undefined;
}

/**
 * Whether a failed connect is followed by another: proxy-stream-next-upstream-tries attempts in all,
 * never the same endpoint twice (0: each endpoint once; nginx would go round again), none started once
 * proxy-stream-next-upstream-timeout has passed since the connection came (0: no limit), none when off.
 */
export function mayTryNext(
  stream: StreamSettings,
  so: { made: number; endpoints: number; elapsedMs: number },
): boolean {
  if (!stream.nextUpstream) return false;
  const tries =
    stream.nextUpstreamTries === 0 ? so.endpoints : Math.min(stream.nextUpstreamTries, so.endpoints);
  const timeout = stream.nextUpstreamTimeoutMs;
  return so.made < tries && (timeout === 0 || so.elapsedMs < timeout);
}

/** Endpoints round robin until one connects or mayTryNext says no more. */
function dial(state: ProxyState, client: net.Socket, session: StreamSession, header: Buffer | null): void {
  const { stream } = state;
  const port = state.options.port;
  const endpoints = state.targets.length;
  // Bytes go through the flow's own buffers ('node' reads after a PROXY header: its rest was put back).
  const prepared = prepareRelay(client);
  let stopping = false;
  const stop = () => {
    stopping = true;
    dialing.cancel();
    client.destroy();
  };
  const clientGone = () => {
    state.pending.delete(stop);
    dialing.cancel();
    prepared.release();
    // 499: the client left; 503: the controller stopped before an endpoint answered (not the client).
    session.status = stopping ? 503 : 499;
    logSession(state, session);
  };
  state.pending.add(stop);
  client.once('close', clientGone);
  const dialing = dialInTurn<DialTarget & { key: string }>({
    onread: prepared.onread,
    next() {
      const target = state.targets[state.cursor++ % Math.max(1, state.targets.length)];
      if (target === undefined) return null;
      const key = formatHostPort(target.host, target.port);
      session.attempts.push({ upstream: key, connectMs: null, bytesSent: 0, bytesReceived: 0 });
      return { ...target, key, connectTimeoutMs: CONNECT_TIMEOUT_MS };
    },
    retry(target, error) {
      const elapsedMs = Date.now() - session.startedMs;
      const again = mayTryNext(stream, { made: session.attempts.length, endpoints, elapsedMs });
      state.options.log(
        `tcp-services ${port}: connect() failed (${error.code ?? error.message}) while connecting to upstream, client: ${session.remoteAddr}, upstream: "${target.key}"${again ? ', trying the next' : ''}`,
      );
      return again;
    },
    connected(upstream, target, connectMs) {
      client.off('close', clientGone);
      state.pending.delete(stop);
      const attempt = session.attempts.at(-1)!;
      attempt.connectMs = connectMs;
      session.status = 200;
      relay(state, { prepared, upstream, endpoint: target.key, header, session, attempt });
    },
    gaveUp() {
      client.off('close', clientGone);
      state.pending.delete(stop);
      if (session.attempts.length === 0)
        state.options.log(
          `tcp-services ${port}: no live upstreams while connecting to upstream, client: ${session.remoteAddr}`,
        );
      bump(state.stats.flowsRejected, session.attempts.length === 0 ? 'no-target' : 'connect-failed');
      prepared.release();
      resetSocket(client);
      session.status = 502;
      logSession(state, session);
    },
  });
}

interface Connected {
  prepared: PreparedRelay;
  upstream: net.Socket;
  endpoint: string;
  header: Buffer | null;
  session: StreamSession;
  attempt: StreamAttempt;
}

/** The data phase: the header first, then bytes both ways; counted and logged when both sides closed. */
function relay(state: ProxyState, c: Connected): void {
  const { stats } = state;
  if (c.header !== null) {
    c.upstream.write(c.header);
    c.attempt.bytesSent += c.header.length;
    stats.proxyHeadersSent.v1++;
  }
  stats.flowsActive++;
  stats.flowsTotal++;
  const clientReads = state.options.decode ? 'node' : 'own';
  stats.clientReads[clientReads]++;
  const counters = { bytesToTarget: 0, bytesToClient: 0 };
  const flow = c.prepared.start(c.upstream, {
    clientReads,
    idleTimeoutMs: state.settings.idleTimeoutMs,
    counters,
    // keepip_lb_bytes_total moves while a long SSH session runs, not only when it ends.
    totals: stats,
    onEnd(reason: FlowEndReason) {
      state.open.delete(relayed);
      stats.flowsActive--;
      bump(stats.flowsEnded, reason);
      c.session.bytesReceived = counters.bytesToTarget;
      c.session.bytesSent = counters.bytesToClient;
      c.attempt.bytesSent += counters.bytesToTarget;
      c.attempt.bytesReceived = counters.bytesToClient;
      logSession(state, c.session);
    },
  });
  const relayed: Relayed = { endpoint: c.endpoint, abort: flow.abort };
  state.open.add(relayed);
}

/**
 * Endpoints with open connections that are no longer targets get worker-shutdown-timeout to finish;
 * one that comes back before it is over keeps them.
 */
function drainLeavers(state: ProxyState): void {
  const port = state.options.port;
  const current = new Set(state.targets.map((t) => formatHostPort(t.host, t.port)));
  for (const [endpoint, timer] of state.draining) {
    if (!current.has(endpoint)) continue;
    clearTimeout(timer);
    state.draining.delete(endpoint);
  }
  const leaving = new Map<string, number>();
  for (const r of state.open)
    if (!current.has(r.endpoint) && !state.draining.has(r.endpoint))
      leaving.set(r.endpoint, (leaving.get(r.endpoint) ?? 0) + 1);
  const drainMs = state.settings.drainMs;
  for (const [endpoint, count] of leaving) {
    state.options.log(
      `tcp-services ${port}: endpoint ${endpoint} left; its ${count} open connection(s) may finish within ${drainMs} ms (worker-shutdown-timeout)`,
    );
    const timer = setTimeout(() => {
      state.draining.delete(endpoint);
      const closing = [...state.open].filter((r) => r.endpoint === endpoint);
      state.options.log(
        `tcp-services ${port}: endpoint ${endpoint}: worker-shutdown-timeout over, closing ${closing.length} connection(s)`,
      );
      for (const r of closing) r.abort();
    }, drainMs);
    timer.unref();
    state.draining.set(endpoint, timer);
  }
}
