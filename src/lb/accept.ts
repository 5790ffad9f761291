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
import { resetSocket } from './socket-reset.ts';
import { chooseSourceAddress, type SourceChoice } from './source-address.ts';
import type { TargetEntry, TargetGroup } from './target-group.ts';

/** What a listener's connections share: settings, the target group, counters and the open flows. */
export interface ListenerContext {
  readonly stats: LbStats;
  readonly group: TargetGroup;
  readonly policy: SelectionPolicy;
  /** loadBalancerSourceRanges, the security group in front of an NLB; null: everyone. */
  readonly allowedSources: CidrSet | null;
  readonly header: HeaderBuilder | null;
  /** Canonical; null lets the kernel choose. */
  readonly sourceAddress: string | null;
  readonly preserveClientIp: boolean;
  isLocalAddress(address: string): boolean;
  readonly idleTimeoutMs: number;
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

/**
 * Creates each accepted socket itself, paused, with `onread` into the flow's own buffer: Node's
 * accepted sockets cannot take `onread`, and a second socket adopting the handle (flow.ts) cost one
 * socket construction and destruction per connection. This replaces the listening handle's
 * `onconnection`, which Node's server sets and does not document (the `handle` option of the Socket
 * constructor is its own way in, as cluster's); without that hook, or with Node's read path asked
 * for, the server's 'connection' event and the adoption in flow.ts serve as before. Call once
 * listening. The server counts no such socket, as it counted no adopted one.
 */
export function acceptWithOwnReads(server: net.Server, ctx: ListenerContext): void {
  const handle = (server as unknown as { _handle?: { onconnection?: ConnectionHook } | null })._handle;
  const original = handle?.onconnection;
  if (handle == null || typeof original !== 'function' || ctx.clientReads !== 'own') return;
  const listening = listeningOn(server);
  const SocketWithHandle = net.Socket as unknown as new (options: object) => net.Socket;
  handle.onconnection = function onconnection(status, clientHandle) {
    if (status || clientHandle == null) {
      original.call(this, status, clientHandle);
      return;
    }
    const reads = clientOnRead();
    const options = { handle: clientHandle, allowHalfOpen: true, pauseOnCreate: true, onread: reads.onread };
    const client = new SocketWithHandle({ ...options, readable: true, writable: true });
    client.setNoDelay(true);
    acceptConnection(ctx, client, reads, listening);
  };
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
  const arrival = admit(ctx, client, listening);
  if (arrival === null) return;
  const source = chooseSource(ctx, arrival);
  let header: Buffer | null = null;
  if (ctx.header !== null) {
    const encoded = ctx.header.forFlow({
      client: { address: arrival.key.sourceAddress, port: arrival.key.sourcePort },
      listener: { address: arrival.key.destinationAddress, port: arrival.key.destinationPort },
    });
    if (!encoded.ok) {
      const { code, message } = encoded.error;
      refuse(ctx, client, 'header', `PROXY header cannot be encoded: ${code} ${message}`);
      return;
    }
    header = encoded.value;
  }
  openFlow(ctx, client, arrival, source, header, reads);
}

function admit(ctx: ListenerContext, client: net.Socket, listening: ListeningOn | null): Arrival | null {
  const clientAddress = canonicalIp(client.remoteAddress ?? '');
  // A listener on one address needs no getsockname per connection to know where it arrived.
  const listenerAddress = listening?.address ?? canonicalIp(client.localAddress ?? '');
  if (clientAddress === null || listenerAddress === null) {
    client.destroy(); // gone before we looked at it
    return null;
  }
  client.on('error', () => {}); // until the flow takes over; a reset here is not our failure
  if (ctx.allowedSources !== null && !ctx.allowedSources.has(clientAddress)) {
    const line = `client ${clientAddress} is outside the allowed source ranges: connection reset`;
    return refuse(ctx, client, 'source-range', line);
  }
  const key: FlowKey = {
    sourceAddress: clientAddress,
    sourcePort: client.remotePort ?? 0,
    destinationAddress: listenerAddress,
    destinationPort: listening?.port ?? client.localPort ?? 0,
  };
  const entry = ctx.policy.pick(ctx.group.candidates(), key);
  if (entry === undefined) return refuse(ctx, client, 'no-target', 'no target registered: connection reset');
  return { key, entry };
}

/** Counted under flowsRejected{reason}, logged, reset. */
function refuse(ctx: ListenerContext, client: net.Socket, reason: string, line: string): null {
  bump(ctx.stats.flowsRejected, reason);
  ctx.logRepeated(reason, line);
  resetSocket(client);
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
  const { stats } = ctx;
  stats.flowsActive++;
  stats.flowsTotal++;
  const flow = startFlow({
    client,
    target: { host: entry.host, port: entry.port },
    localAddress: source.localAddress,
    header,
    idleTimeoutMs: ctx.idleTimeoutMs,
    connectTimeoutMs: ctx.connectTimeoutMs,
    counters: stats,
    clientReads: ctx.clientReads,
    clientOnRead: reads,
    onConnected() {
      if (ctx.header !== null) stats.proxyHeadersSent[ctx.header.version === 1 ? 'v1' : 'v2']++;
    },
    onConnectError(_flow, error) {
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
  });
  stats.clientReads[flow.clientReads]++;
  ctx.flows.add(flow);
  ctx.group.flowStarted(entry, flow);
}

function bump(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}
