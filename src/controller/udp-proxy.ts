// One udp-services entry served as nginx's stream module serves it for ingress-nginx (`listen … udp`):
// the datagrams of one client address and port are a session with one endpoint (round robin), over
// a socket connected to it, so only that endpoint's answers come back, and only to that client. A
// session ends once it got proxy-stream-responses answers for each datagram it forwarded (1: a DNS
// query and its answer), when the endpoint refuses (ICMP), or idle for proxy-stream-timeout; then it
// leaves one line in the connection log (log-format-stream, `$protocol` UDP).
import dgram from 'node:dgram';
import net from 'node:net';
import { DEFAULT_STREAM_SETTINGS } from '../config/stream.ts';
import { type Deadline, deadlineWheel } from '../lb/deadlines.ts';
import { emptyLbStats, registerLbMetrics } from '../lb/metrics.ts';
import { formatHostPort } from '../net/host-port.ts';
import { foldMappedIpv4 } from '../net/ip.ts';
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
import type { StreamSession } from './stream-log.ts';

/** Datagrams kept for a session whose socket is still connecting; more are dropped, as a full queue would. */
const MAX_QUEUED = 64;

interface Session {
  key: string;
  client: { address: string; port: number };
  upstream: dgram.Socket;
  connected: boolean;
  queued: Buffer[];
  /** Answers still expected (proxy-stream-responses for each datagram forwarded). */
  expected: number;
  idle: Deadline;
  wheel: ReturnType<typeof deadlineWheel>;
  line: StreamSession;
}

interface UdpState {
  options: EntryOptions;
  listening: dgram.Socket;
  targets: TcpEndpoint[];
  upstreamName: string;
  cursor: number;
  settings: TcpServiceSettings;
  log: EntryLog;
  stats: ReturnType<typeof emptyLbStats>;
  sessions: Map<string, Session>;
}

export async function startUdpProxy(options: EntryOptions): Promise<EntryProxy> {
  const listening = dgram.createSocket(net.isIPv6(options.host) ? 'udp6' : 'udp4');
  const state: UdpState = {
    options,
    listening,
    targets: [...options.targets],
    upstreamName: options.upstreamName,
    cursor: 0,
    settings: options.settings,
    log: entryLog({ ...options, protocol: 'UDP' }),
    stats: emptyLbStats(),
    sessions: new Map(),
  };
  state.log.apply(options.settings);
  await new Promise<void>((resolve, reject) => {
    listening.once('error', reject);
    listening.bind({ port: options.port, address: options.host, exclusive: true }, () => {
      listening.off('error', reject);
      resolve();
    });
  });
  // A send to a client that went away reports here; the listener carries on.
  listening.on('error', () => {});
  listening.on('message', (datagram, from) => onDatagram(state, datagram, from));
  const unregister = registerLbMetrics(options.registry, {
    name: `udp-services-${options.port}`,
    stats: state.stats,
    targets: () => state.targets.map((t) => ({ key: formatHostPort(t.host, t.port), healthy: true })),
  });
  return {
    address: listening.address(),
    setTargets(targets, upstreamName) {
      state.targets = [...targets];
      state.upstreamName = upstreamName;
    },
    setSettings(settings) {
      state.settings = settings;
      state.log.apply(settings);
    },
    close: () =>
      new Promise((resolve) => {
        unregister();
        for (const session of [...state.sessions.values()]) end(state, session, 200);
        listening.close(() => resolve());
      }),
  };
}

function onDatagram(state: UdpState, datagram: Buffer, from: dgram.RemoteInfo): void {
  const key = formatHostPort(foldMappedIpv4(from.address), from.port);
  const session = state.sessions.get(key) ?? open(state, key, from);
  if (session === null) return;
  const { line } = session;
  line.bytesReceived += datagram.length;
  line.attempts[0]!.bytesSent += datagram.length;
  session.idle.active = true;
  const responses = (state.settings.stream ?? DEFAULT_STREAM_SETTINGS).responses;
  session.expected += responses;
  if (session.connected) forward(state, session, datagram, responses === 0);
  else if (session.queued.length < MAX_QUEUED) session.queued.push(datagram);
}

/** Sends one datagram on; with proxy-stream-responses 0 the session is over once it left. */
function forward(state: UdpState, session: Session, datagram: Buffer, last: boolean): void {
  session.upstream.send(datagram, () => {
    if (last) end(state, session, 200);
  });
}

/** A new session with the next endpoint, or null (no endpoint, or max-worker-connections reached). */
function open(state: UdpState, key: string, from: dgram.RemoteInfo): Session | null {
  const { options } = state;
  const client = { address: foldMappedIpv4(from.address), port: from.port };
  const limit = state.settings.maxConnections ?? 0;
  if (overBudget({ ...options, protocol: 'UDP', stats: state.stats, limit }, key)) return null;
  const local = state.listening.address();
  const line = blankSession('UDP', state.upstreamName, client, {
    address: foldMappedIpv4(local.address),
    port: local.port,
  });
  const target = state.targets[state.cursor++ % Math.max(1, state.targets.length)];
  if (target === undefined) {
    options.log(
      `udp-services ${options.port}: no live upstreams while proxying datagram, client: ${client.address}`,
    );
    bump(state.stats.flowsRejected, 'no-target');
    line.status = 502;
    line.endedMs = Date.now();
    state.log.write(line);
    return null;
  }
  options.budget.open++;
  const endpoint = formatHostPort(target.host, target.port);
  line.attempts.push({ upstream: endpoint, connectMs: null, bytesSent: 0, bytesReceived: 0 });
  const upstream = dgram.createSocket(net.isIPv6(target.host) ? 'udp6' : 'udp4');
  const wheel = deadlineWheel(state.settings.idleTimeoutMs);
  const session: Session = {
    key,
    client,
    upstream,
    connected: false,
    queued: [],
    expected: 0,
    idle: { active: false, since: 0, expire: () => end(state, session, 200) },
    wheel,
    line,
  };
  state.sessions.set(key, session);
  state.stats.flowsActive++;
  state.stats.flowsTotal++;
  wheel.add(session.idle);
  wireUpstream(state, session, target, endpoint);
  return session;
}

/** The endpoint's side: connect, then answers back to the client until the session has what it expects. */
function wireUpstream(state: UdpState, session: Session, target: TcpEndpoint, endpoint: string): void {
  const { upstream, line } = session;
  const started = Date.now();
  upstream.on('error', (error: NodeJS.ErrnoException) => {
    state.options.log(
      `udp-services ${state.options.port}: ${error.syscall === 'send' ? 'send' : 'recv'}() failed (${error.code ?? error.message}) while proxying datagram, client: ${session.client.address}, upstream: "${endpoint}"`,
    );
    end(state, session, line.attempts[0]!.bytesReceived > 0 ? 200 : 502);
  });
  upstream.on('message', (answer) => {
    session.idle.active = true;
    line.bytesSent += answer.length;
    line.attempts[0]!.bytesReceived += answer.length;
    state.listening.send(answer, session.client.port, session.client.address);
    session.expected--;
    if (session.expected <= 0) end(state, session, 200);
  });
  upstream.connect(target.port, target.host, () => {
    session.connected = true;
    line.attempts[0]!.connectMs = Date.now() - started;
    const queued = session.queued;
    session.queued = [];
    const none = (state.settings.stream ?? DEFAULT_STREAM_SETTINGS).responses === 0;
    for (const [i, datagram] of queued.entries())
      forward(state, session, datagram, none && i === queued.length - 1);
  });
}

function end(state: UdpState, session: Session, status: number): void {
  if (state.sessions.get(session.key) !== session) return;
  state.sessions.delete(session.key);
  session.wheel.delete(session.idle);
  session.upstream.close();
  state.options.budget.open--;
  state.stats.flowsActive--;
  bump(state.stats.flowsEnded, status === 200 ? 'closed' : 'target-reset');
  state.stats.bytesToTarget += session.line.bytesReceived;
  state.stats.bytesToClient += session.line.bytesSent;
  session.line.status = status;
  session.line.endedMs = Date.now();
  state.log.write(session.line);
}
