// One accepted client connection of a listener, from the socket to its flow: admission (a live peer,
// inside the allowed source ranges, a target to go to), the source address the target will see, the
// PROXY header, then the flow. Every refusal is counted, logged (rate-limited) and reset, as an NLB
// resets a connection it cannot forward.
import net from 'node:net';
import type { CidrSet } from '../net/cidr-set.ts';
import { canonicalIp } from '../net/ip.ts';
import {
  type ClientOnRead,
  type ClientReadMode,
  clientOnRead,
  type Flow,
  type FlowEndReason,
  startFlow,
} from './flow.ts';
import type { LbStats } from './metrics.ts';
import type { HeaderBuilder } from './proxy-header.ts';
import type { FlowKey, SelectionPolicy } from './selection.ts';
import { startRawFlow } from './raw-flow.ts';
import type { SourcePorts } from './source-ports.ts';
import { resetSocket } from './socket-reset.ts';
import { chooseSourceAddress, type SourceChoice } from './source-address.ts';
import { socketName, type TcpBindings, type TcpHandle, tcpBindings } from './tcp-handle.ts';
import type { TargetEntry, TargetGroup } from './target-group.ts';

/** What a listener's connections share: settings, the target group, counters and the open flows. */
export interface ListenerContext {
  readonly stats: LbStats;
  readonly group: TargetGroup;
  readonly policy: SelectionPolicy;
  /**
   * loadBalancerSourceRanges, the security group in front of an NLB; null: everyone. Read as each
   * connection arrives: a reload swaps the whole set, so a connection meets the old list or the new.
   */
  allowedSources: CidrSet | null;
  readonly header: HeaderBuilder | null;
  /** Canonical; null lets the kernel choose. */
  readonly sourceAddress: string | null;
  readonly preserveClientIp: boolean;
  isLocalAddress(address: string): boolean;
  /** Explicit source ports for connections from a chosen address (source-ports.ts). */
  readonly sourcePorts: SourcePorts;
  /** Read as each flow starts: a change applies to the flows accepted after it. */
  idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly clientReads: ClientReadMode;
  readonly flows: Set<Flow>;
  /** Logs a line at most once per interval per kind: per-flow problems repeat. */
  logRepeated(kind: string, line: string): void;
}

/** A connection that passed admission: who it is, where it arrived, and the target picked for it. */
interface Arrival {
  readonly key: FlowKey;
  readonly entry: TargetEntry;
}

/** The listening address when it is one address (not 0.0.0.0 or ::): every connection arrives there. */
export interface ListeningOn {
  readonly address: string;
  readonly port: number;
}

type ConnectionHook = (this: unknown, status: number, clientHandle?: object) => void;

/** An accepted connection until its flow takes it: a net.Socket or a bare libuv handle (raw flows). */
interface Accepted {
  peer(): { address: string; port: number } | null;
  local(): { address: string; port: number } | null;
  /** Closes with RST: a refusal. */
  reset(): void;
  /** Closes plainly: the client was gone before we looked at it. */
  drop(): void;
}

function acceptedSocket(client: net.Socket): Accepted {
  client.on('error', () => {}); // until the flow takes over; a reset here is not our failure
  const named = (address: string | undefined, port: number | undefined) =>
    address === undefined ? null : { address, port: port ?? 0 };
  return {
    peer: () => named(client.remoteAddress, client.remotePort),
    local: () => named(client.localAddress, client.localPort),
    reset: () => resetSocket(client),
    drop: () => client.destroy(),
  };
}

function acceptedHandle(handle: TcpHandle): Accepted {
  return {
    peer: () => socketName(handle, 'peer'),
    local: () => socketName(handle, 'local'),
    reset: () => {
      // Nothing was written or shut down on it, so the reset is accepted and closes the handle.
      handle.reset(() => {});
    },
    drop: () => handle.close(),
  };
}

/**
 * Takes each accepted connection before Node makes a Socket of it. Raw flows (the default where the
 * bindings exist, raw-flow.ts) keep the bare handle; 'own' creates the Socket itself, paused, with
 * `onread` into the flow's own buffer (Node's accepted sockets cannot take `onread`, and adopting the
 * handle into a second Socket cost one construction and destruction per connection). This replaces
 * the listening handle's `onconnection`, which Node's server sets and does not document (the `handle`
 * option of the Socket constructor is its own way in, as cluster's); without that hook, or with
 * Node's read path asked for, the server's 'connection' event and the adoption in flow.ts serve as
 * before. Call once listening. The server counts none of these connections.
 */
export function acceptWithOwnReads(server: net.Server, ctx: ListenerContext): void {
  const handle = (server as unknown as { _handle?: { onconnection?: ConnectionHook } | null })._handle;
  const original = handle?.onconnection;
  if (handle == null || typeof original !== 'function' || ctx.clientReads === 'node') return;
  const bindings = ctx.clientReads === 'raw' ? tcpBindings() : null;
  const listening = listeningOn(server);
  handle.onconnection = function onconnection(status, clientHandle) {
    if (status || clientHandle == null) {
      original.call(this, status, clientHandle);
      return;
    }
    if (bindings !== null) acceptRaw(ctx, bindings, clientHandle as TcpHandle, listening);
    else acceptOwn(ctx, clientHandle, listening);
  };
}

/** A net.Socket with the flow's own read buffer, made from an accepted handle. */
function ownSocket(clientHandle: object): { client: net.Socket; reads: ClientOnRead } {
  const SocketWithHandle = net.Socket as unknown as new (options: object) => net.Socket;
  const reads = clientOnRead();
  const options = { handle: clientHandle, allowHalfOpen: true, pauseOnCreate: true, onread: reads.onread };
  const client = new SocketWithHandle({ ...options, readable: true, writable: true });
  client.setNoDelay(true);
  return { client, reads };
}

function acceptOwn(ctx: ListenerContext, clientHandle: object, listening: ListeningOn | null): void {
  const { client, reads } = ownSocket(clientHandle);
  acceptConnection(ctx, client, reads, listening);
}

/** A bare accepted handle to a raw flow (targets are IP addresses: validateLbConfig, LB_BAD_TARGET). */
function acceptRaw(
  ctx: ListenerContext,
  bindings: TcpBindings,
  handle: TcpHandle,
  listening: ListeningOn | null,
): void {
  const admitted = admit(ctx, acceptedHandle(handle), listening);
  if (admitted === null) return;
  const { arrival, source, header } = admitted;
  const flow = startRawFlow(bindings, {
    client: handle,
    clientPeer: { address: arrival.key.sourceAddress, port: arrival.key.sourcePort },
    target: { host: arrival.entry.host, port: arrival.entry.port },
    localAddress: source.localAddress,
    sourcePorts: ctx.sourcePorts,
    header,
    idleTimeoutMs: ctx.idleTimeoutMs,
    connectTimeoutMs: ctx.connectTimeoutMs,
    counters: ctx.stats,
    ...flowEvents(ctx, arrival.entry, source),
  });
  track(ctx, arrival.entry, flow);
}

function listeningOn(server: net.Server): ListeningOn | null {
  const bound = server.address();
  if (bound === null || typeof bound !== 'object' || bound.address === '0.0.0.0' || bound.address === '::')
    return null;
  const address = canonicalIp(bound.address);
  return address === null ? null : { address, port: bound.port };
}

/** Takes one accepted, paused client socket to a flow, or resets it. */
export function acceptConnection(
  ctx: ListenerContext,
  client: net.Socket,
  reads: ClientOnRead | null = null,
  listening: ListeningOn | null = null,
): void {
  const admitted = admit(ctx, acceptedSocket(client), listening);
  if (admitted === null) return;
  openFlow(ctx, client, admitted.arrival, admitted.source, admitted.header, reads);
}

/** Admission, the source address and the PROXY header of one accepted connection; null: refused. */
function admit(
  ctx: ListenerContext,
  accepted: Accepted,
  listening: ListeningOn | null,
): { arrival: Arrival; source: SourceChoice; header: Buffer | null } | null {
  const arrival = arrive(ctx, accepted, listening);
  if (arrival === null) return null;
  const source = chooseSource(ctx, arrival);
  if (ctx.header === null) return { arrival, source, header: null };
  const encoded = ctx.header.forFlow({
    client: { address: arrival.key.sourceAddress, port: arrival.key.sourcePort },
    listener: { address: arrival.key.destinationAddress, port: arrival.key.destinationPort },
  });
  if (!encoded.ok) {
    const { code, message } = encoded.error;
    return refuse(ctx, accepted, 'header', `PROXY header cannot be encoded: ${code} ${message}`);
  }
  return { arrival, source, header: encoded.value };
}

function arrive(ctx: ListenerContext, accepted: Accepted, listening: ListeningOn | null): Arrival | null {
  const peer = accepted.peer();
  const clientAddress = peer === null ? null : canonicalIp(peer.address);
  // A listener on one address needs no getsockname per connection to know where it arrived.
  const local = listening ?? accepted.local();
  const listenerAddress = local === null ? null : canonicalIp(local.address);
  if (peer === null || clientAddress === null || local === null || listenerAddress === null) {
    accepted.drop(); // gone before we looked at it
    return null;
  }
  if (ctx.allowedSources !== null && !ctx.allowedSources.has(clientAddress)) {
    const line = `client ${clientAddress} is outside the allowed source ranges: connection reset`;
    return refuse(ctx, accepted, 'source-range', line);
  }
  const key: FlowKey = {
    sourceAddress: clientAddress,
    sourcePort: peer.port,
    destinationAddress: listenerAddress,
    destinationPort: local.port,
  };
  const entry = ctx.policy.pick(ctx.group.candidates(), key);
  if (entry === undefined)
    return refuse(ctx, accepted, 'no-target', 'no target registered: connection reset');
  return { key, entry };
}

/** Counted under flowsRejected{reason}, logged, reset. */
function refuse(ctx: ListenerContext, accepted: Accepted, reason: string, line: string): null {
  bump(ctx.stats.flowsRejected, reason);
  ctx.logRepeated(reason, line);
  accepted.reset();
  return null;
}

/** The address the target will see; a preservation that cannot be done and a hairpin are reported. */
function chooseSource(ctx: ListenerContext, { key, entry }: Arrival): SourceChoice {
  const clientAddress = key.sourceAddress;
  const source = chooseSourceAddress({
    clientAddress,
    targetAddress: entry.host,
    sourceAddress: ctx.sourceAddress,
    preserveClientIp: ctx.preserveClientIp,
    isLocalAddress: ctx.isLocalAddress,
  });
  const fallback = source.preservationFallback;
  if (fallback !== null) {
    bump(ctx.stats.preservationFallbacks, fallback);
    const why =
      fallback === 'client-not-local'
        ? 'not an address of this machine'
        : 'address family differs from the target';
    ctx.logRepeated(
      `fallback:${fallback}`,
      `client ${clientAddress} cannot be preserved (${why}): connecting from ${source.localAddress ?? 'the kernel-chosen address'} instead`,
    );
  }
  if (source.hairpin) {
    ctx.stats.hairpinFlows++;
    ctx.logRepeated(
      `hairpin:${entry.key}`,
      `hairpin: client ${clientAddress} is target ${entry.key} itself (an NLB with preservation times such connections out, rule A8)`,
    );
  }
  return source;
}

function openFlow(
  ctx: ListenerContext,
  client: net.Socket,
  { entry }: Arrival,
  source: SourceChoice,
  header: Buffer | null,
  reads: ClientOnRead | null,
): void {
  const flow = startFlow({
    client,
    target: { host: entry.host, port: entry.port },
    localAddress: source.localAddress,
    header,
    idleTimeoutMs: ctx.idleTimeoutMs,
    connectTimeoutMs: ctx.connectTimeoutMs,
    counters: ctx.stats,
    clientReads: ctx.clientReads,
    clientOnRead: reads,
    ...flowEvents(ctx, entry, source),
  });
  track(ctx, entry, flow);
}

/** What a flow reports back, whichever kind it is: counted, logged, and the target's flow list kept. */
function flowEvents(ctx: ListenerContext, entry: TargetEntry, source: SourceChoice) {
  const { stats } = ctx;
  return {
    onConnected() {
      if (ctx.header !== null) stats.proxyHeadersSent[ctx.header.version === 1 ? 'v1' : 'v2']++;
    },
    onConnectError(_flow: Flow, error: NodeJS.ErrnoException) {
      bump(stats.flowsRejected, 'connect-failed');
      ctx.logRepeated(
        `connect:${entry.key}`,
        `target ${entry.key}: connect from ${source.localAddress ?? 'default address'} failed (${error.code ?? error.message}); client reset`,
      );
    },
    onEnd(ended: Flow, reason: FlowEndReason) {
      ctx.flows.delete(ended);
      stats.flowsActive--;
      bump(stats.flowsEnded, reason);
      ctx.group.flowEnded(entry, ended);
    },
  };
}

function track(ctx: ListenerContext, entry: TargetEntry, flow: Flow): void {
  ctx.stats.flowsActive++;
  ctx.stats.flowsTotal++;
  ctx.stats.clientReads[flow.clientReads]++;
  ctx.flows.add(flow);
  ctx.group.flowStarted(entry, flow);
}

function bump(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}
