// One client connection and its own upstream connection (never shared: invariant I6, a PROXY header
// is never sent on a connection that carries more than one client). Bytes are copied unchanged in
// both directions with backpressure, half-closes are passed on, resets are passed on as resets, and a
// flow idle in both directions for idleTimeoutMs is reset, as an NLB does.
//
// Reads go into buffers the flow owns (Node's `onread`): 8 KiB per direction, growing once to 64 KiB
// when a read fills it, and no read while a write still holds the buffer. The 8 KiB buffers come from
// a bounded spare list and go back to it when the flow has closed (two fresh external buffers per
// connection made V8 run a full GC every few hundred connections). That bounds memory per flow
// (2 x 64 KiB plus the sockets' write buffers) and, measured on loopback (docs/lb.md), costs about a
// third less CPU per byte than Node's fresh buffer per read, which is what lets one Node process keep
// up with HAProxy. Accepted sockets cannot be given `onread`, so the client side adopts the accepted
// socket's handle into a new Socket that has it (see adoptWithOwnBuffer); when that is not possible
// the client side falls back to ordinary 'data' events, with the same backpressure.
//
// These are the net.Socket flows; by default the lb runs the same flow on bare libuv handles
// (raw-flow.ts) and comes here only where Node lacks those bindings, or when asked ('own', 'node').
import net from 'node:net';
import { type Deadline, deadlineWheel } from './deadlines.ts';
import { resetSocket } from './socket-reset.ts';

export interface FlowCounters {
  bytesToTarget: number;
  bytesToClient: number;
}

export type FlowEndReason =
  | 'closed'
  | 'client-reset'
  | 'target-reset'
  | 'connect-failed'
  | 'idle'
  | 'aborted';

/**
 * raw: bare libuv handles on both sides (raw-flow.ts, the default where Node offers them); own: net
 * Sockets reading client bytes into the flow's buffer; node: Node's per-read buffers ('data' events).
 */
export type ClientReadMode = 'raw' | 'own' | 'node';

/** What every kind of flow is given: where to go, its deadlines, counters and what it reports. */
export interface FlowSettings {
  target: { host: string; port: number };
  localAddress: string | undefined;
  /** Written first, before any client byte. */
  header: Buffer | null;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  counters: FlowCounters;
  onConnected(flow: Flow): void;
  onConnectError(flow: Flow, error: NodeJS.ErrnoException): void;
  onEnd(flow: Flow, reason: FlowEndReason): void;
}

export interface FlowSpec extends FlowSettings {
  /** The accepted socket, still paused (the server uses pauseOnConnect). */
  client: net.Socket;
  clientReads: ClientReadMode;
  /** The client socket was created with this read path (acceptWithOwnReads): bound here, no adoption. */
  clientOnRead?: ClientOnRead | null;
}

export interface Flow {
  readonly target: { host: string; port: number };
  /** The client as accepted (address as the socket reports it). */
  readonly clientPeer: { address: string; port: number };
  /** Where the connection to the target comes from; null while connecting or once closed. */
  upstreamLocal(): { address: string; port: number } | null;
  /** Which read path the client side uses (own buffer, or Node's when adoption was impossible). */
  readonly clientReads: ClientReadMode;
  /** Resets both sides (deregistration delay expired, shutdown). */
  abort(): void;
}

const SMALL_READ = 8 * 1024;
const LARGE_READ = 64 * 1024;
/** 8 KiB buffers of closed flows kept for the next ones: at most 2 MiB. */
const SPARE_MAX = 256;
const spare: Buffer[] = [];

interface OnRead {
  buffer: () => Buffer;
  callback: (nread: number, buf: Uint8Array) => boolean;
}

/**
 * The `onread` of a client socket created before its flow exists (src/lb/accept.ts creates accepted
 * sockets with it, paused): its first read goes into `initial`, and every read goes to the pump that
 * startFlow binds. Unbound, it asks for no more reads.
 */
export interface ClientOnRead {
  readonly onread: OnRead;
  readonly initial: Buffer;
  bind(pump: OnRead): void;
}

export function clientOnRead(): ClientOnRead {
  const initial = spare.pop() ?? Buffer.allocUnsafe(SMALL_READ);
  let pump: OnRead | null = null;
  return {
    initial,
    onread: {
      buffer: () => (pump === null ? initial : pump.buffer()),
      callback: (nread, buf) => pump?.callback(nread, buf) ?? false,
    },
    bind(bound) {
      pump = bound;
    },
  };
}

/** A pump: the read half of one direction, and the hand-back of its small buffer once the flow has closed. */
interface Pump extends OnRead {
  release(): void;
}

/**
 * The read half of one direction: reads land in a buffer this pump owns and are written to `to()`.
 * When the write cannot complete at once, reading stops (the callback returns false) until that write
 * is done, because the pending write still points into the buffer. Each read marks the flow active.
 */
function ownBufferPump(
  to: () => net.Socket,
  count: (n: number) => void,
  from: () => net.Socket,
  idle: Deadline,
  small: Buffer = spare.pop() ?? Buffer.allocUnsafe(SMALL_READ),
): Pump {
  let buffer = small;
  let waiting = false;
  const afterWrite = () => {
    if (waiting) {
      waiting = false;
      from().resume();
    }
  };
  return {
    // Asked after every read: the buffer the next read goes into.
    buffer: () => buffer,
    callback(nread, buf) {
      idle.active = true;
      count(nread);
      const out = to();
      out.write(buf.subarray(0, nread), afterWrite);
      if (nread === buf.length && buffer === small) {
        // The old buffer may still be held by that write; the next read goes into a new one.
        buffer = Buffer.allocUnsafe(LARGE_READ);
      }
      // Written synchronously: the buffer is free again. Otherwise the pending write holds it.
      if (out.writableLength === 0) return true;
      waiting = true;
      return false;
    },
    // Both sockets have closed: no read is in progress and every write is done or dropped.
    release() {
      if (spare.length < SPARE_MAX) spare.push(small);
    },
  };
}

/**
 * Moves an accepted, paused socket's handle into a new Socket created with `onread`. This uses the
 * Socket constructor's `handle` option and the `_handle` field, which Node uses itself (cluster,
 * child_process handle passing) but does not document; if either is missing or the constructor
 * refuses, null is returned and the caller keeps the accepted socket.
 */
function adoptWithOwnBuffer(accepted: net.Socket, onread: OnRead): net.Socket | null {
  const holder = accepted as unknown as { _handle?: { readStart?: unknown } | null };
  const handle = holder._handle;
  if (handle == null || typeof handle.readStart !== 'function' || accepted.readableFlowing === true)
    return null;
  let adopted: net.Socket;
  try {
    const SocketWithHandle = net.Socket as unknown as new (options: object) => net.Socket;
    adopted = new SocketWithHandle({ handle, allowHalfOpen: true, readable: true, writable: true, onread });
  } catch {
    return null;
  }
  holder._handle = null; // the accepted socket lets go; destroying it now leaves the connection alone
  accepted.destroy();
  return adopted;
}

/** A flow on two net.Sockets. */
interface NetFlow extends Flow {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
}

export function startFlow(spec: FlowSpec): Flow {
  const idle: Deadline = { active: false, since: 0, expire: () => {} };
  const { client, target, clientReads, pumps } = openSides(spec, idle);
  const end = flowEnd(client, target);
  const flow: NetFlow = {
    target: spec.target,
    client,
    upstream: target,
    clientPeer: { address: client.remoteAddress ?? '', port: client.remotePort ?? 0 },
    upstreamLocal: () =>
      target.localAddress === undefined || target.localPort === undefined
        ? null
        : { address: target.localAddress, port: target.localPort },
    clientReads,
    abort: () => end.resetBoth('aborted'),
  };
  // Idle in both directions for idleTimeoutMs (no read on either side): reset, as an NLB does;
  // counted once connected (the connect has its own deadline, connectWithHeader).
  idle.expire = () => end.resetBoth('idle');
  const idleWheel = deadlineWheel(spec.idleTimeoutMs);
  target.once('connect', () => idleWheel.add(idle));
  const connecting = connectWithHeader(spec, flow, end.finish);
  passOnEndsAndResets(client, target, end.finish);
  passOnCloses(client, target, () => {
    idleWheel.delete(idle);
    connecting.stop();
    for (const pump of pumps) pump.release();
    spec.onEnd(flow, end.reason());
  });
  client.resume(); // accepted paused: read only once every handler is in place
  return flow;
}

/**
 * A flow whose upstream is dialled elsewhere (tcp-services and ssl-passthrough try endpoints in turn),
 * on the flow's own read buffers as startFlow: `onread` goes into every attempt's net.connect, and once one connects,
 * start() relays as startFlow does. The client reads into its own buffer too ('own') unless bytes were
 * put back into its stream (after a PROXY header: 'node', Node's 'data' events). release() when no
 * attempt connected.
 */
export interface PreparedRelay {
  readonly onread: OnRead;
  start(target: net.Socket, spec: PreparedRelaySpec): { abort(): void };
  release(): void;
}

export interface PreparedRelaySpec {
  clientReads: 'own' | 'node';
  idleTimeoutMs: number;
  /** This flow's bytes, complete when onEnd runs. */
  counters: FlowCounters;
  /** Counted into as bytes go (a listener's metrics), not only at the end. */
  totals?: FlowCounters;
  onEnd(reason: FlowEndReason): void;
}

export function prepareRelay(client: net.Socket): PreparedRelay {
  const idle: Deadline = { active: false, since: 0, expire: () => {} };
  let upstream: net.Socket | null = null;
  let clientSocket = client;
  const counters: FlowCounters = { bytesToTarget: 0, bytesToClient: 0 };
  // No byte is read before start(): the attempts read only once connected.
  let totals: FlowCounters = { bytesToTarget: 0, bytesToClient: 0 };
  const downstream = ownBufferPump(
    () => clientSocket,
    (n) => {
      counters.bytesToClient += n;
      totals.bytesToClient += n;
    },
    () => upstream!,
    idle,
  );
  return {
    onread: downstream,
    release: () => downstream.release(),
    start(target, spec) {
      upstream = target;
      if (spec.totals !== undefined) totals = spec.totals;
      const pumps: Pump[] = [downstream];
      const toTarget = (n: number) => {
        counters.bytesToTarget += n;
        totals.bytesToTarget += n;
      };
      const pump =
        spec.clientReads === 'own'
          ? ownBufferPump(
              () => target,
              toTarget,
              () => clientSocket,
              idle,
            )
          : null;
      const adopted = pump === null ? null : adoptWithOwnBuffer(client, pump);
      if (adopted !== null) {
        clientSocket = adopted;
        pumps.push(pump!);
      } else {
        pump?.release();
        relayData(client, target, idle, toTarget);
      }
      const end = flowEnd(clientSocket, target);
      idle.expire = () => end.resetBoth('idle');
      const idleWheel = deadlineWheel(spec.idleTimeoutMs);
      idleWheel.add(idle);
      target.on('error', () => {
        end.finish('target-reset');
        resetSocket(clientSocket);
      });
      passOnEndsAndResets(clientSocket, target, end.finish);
      passOnCloses(clientSocket, target, () => {
        idleWheel.delete(idle);
        for (const p of pumps) p.release();
        spec.counters.bytesToTarget += counters.bytesToTarget;
        spec.counters.bytesToClient += counters.bytesToClient;
        spec.onEnd(end.reason());
      });
      clientSocket.resume();
      return { abort: () => end.resetBoth('aborted') };
    },
  };
}

/**
 * Why a flow ended: the first reason given wins (the resets that follow an idle timeout or an abort
 * do not rename it), 'closed' when none was; and the reset of both sides that such an end makes.
 */
function flowEnd(client: net.Socket, target: net.Socket) {
  let reason: FlowEndReason = 'closed';
  const finish = (why: FlowEndReason) => {
    if (reason === 'closed') reason = why;
  };
  return {
    finish,
    reason: () => reason,
    resetBoth(why: FlowEndReason) {
      finish(why);
      resetSocket(client);
      resetSocket(target);
    },
  };
}

/** One direction on Node's 'data' events: no read from `from` while `to` holds more than it takes. */
function relayData(from: net.Socket, to: net.Socket, idle: Deadline, count: (n: number) => void): void {
  from.on('data', (chunk: Buffer) => {
    idle.active = true;
    count(chunk.length);
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
}

interface Sides {
  client: net.Socket;
  target: net.Socket;
  clientReads: ClientReadMode;
  pumps: Pump[];
}

/**
 * Dials the target, reading its bytes into the flow's own buffer, and sets up the client's read path:
 * its own buffer when the accepted socket can be adopted, else Node's 'data' events.
 */
function openSides(spec: FlowSpec, idle: Deadline): Sides {
  const { counters } = spec;
  let client: net.Socket = spec.client;
  let upstream: net.Socket | null = null;
  const up = () => upstream!;
  const downstream = ownBufferPump(
    () => client,
    (n) => {
      counters.bytesToClient += n;
    },
    up,
    idle,
  );
  const pumps = [downstream];
  upstream = net.connect({
    host: spec.target.host,
    port: spec.target.port,
    ...(spec.localAddress === undefined ? {} : { localAddress: spec.localAddress }),
    allowHalfOpen: true,
    noDelay: true,
    onread: downstream,
  });
  const target = upstream;

  let clientReads: ClientReadMode = 'node';
  if (spec.clientReads !== 'node') {
    const ready = spec.clientOnRead ?? null;
    const upstreamPump = ownBufferPump(
      up,
      (n) => {
        counters.bytesToTarget += n;
      },
      () => client,
      idle,
      ready?.initial,
    );
    if (ready !== null) {
      ready.bind(upstreamPump);
      clientReads = 'own';
      pumps.push(upstreamPump);
    } else {
      const adopted = adoptWithOwnBuffer(spec.client, upstreamPump);
      if (adopted !== null) {
        client = adopted;
        clientReads = 'own';
        pumps.push(upstreamPump);
      } else upstreamPump.release();
    }
  }
  if (clientReads === 'node') {
    relayData(client, target, idle, (n) => {
      counters.bytesToTarget += n;
    });
  }
  return { client, target, clientReads, pumps };
}

/**
 * The header goes out as soon as the upstream connects (server-speaks-first protocols work), and
 * client bytes that arrived meanwhile ride in the same writev. A connect that takes longer than
 * connectTimeoutMs resets the client. Returns the stop of that deadline (for the flow's end).
 */
function connectWithHeader(
  spec: FlowSpec,
  flow: NetFlow,
  finish: (reason: FlowEndReason) => void,
): { stop(): void } {
  const { client, upstream: target } = flow;
  if (spec.header !== null) {
    target.cork();
    target.write(spec.header);
  }
  const wheel = deadlineWheel(spec.connectTimeoutMs);
  const deadline: Deadline = {
    active: false,
    since: 0,
    expire() {
      finish('connect-failed');
      spec.onConnectError(flow, Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }));
      resetSocket(client);
      target.destroy();
    },
  };
  wheel.add(deadline);
  target.once('connect', () => {
    wheel.delete(deadline);
    if (spec.header !== null) target.uncork();
    spec.onConnected(flow);
  });
  target.on('error', (error: NodeJS.ErrnoException) => {
    if (target.connecting || error.syscall === 'connect') {
      wheel.delete(deadline);
      finish('connect-failed');
      spec.onConnectError(flow, error);
    } else {
      finish('target-reset');
    }
    resetSocket(client);
  });
  return { stop: () => wheel.delete(deadline) };
}

/**
 * A half-close passes on as a half-close. When the other side has already finished both ways (its
 * FIN read, nothing left to write), closing it sends the same FIN without a shutdown call first.
 */
function passOnEnd(to: net.Socket): void {
  if (to.readableEnded && to.writableLength === 0 && !to.connecting) to.destroy();
  else to.end();
}

/** Half-closes pass on as half-closes, resets as resets. */
function passOnEndsAndResets(
  client: net.Socket,
  target: net.Socket,
  finish: (reason: FlowEndReason) => void,
): void {
  // A FIN read before the relay started (a PROXY header and the FIN in one read) was emitted with
  // nobody listening: pass it on now, or the other side waits for it until the idle timeout.
  if (client.readableEnded) passOnEnd(target);
  else client.on('end', () => passOnEnd(target));
  if (target.readableEnded) passOnEnd(client);
  else target.on('end', () => passOnEnd(client));
  client.on('error', () => {
    finish('client-reset');
    resetSocket(target);
  });
}

/** The flow ends once both sides have closed; a side gone without a half-close takes the other down. */
function passOnCloses(client: net.Socket, target: net.Socket, ended: () => void): void {
  let clientClosed = false;
  let upstreamClosed = false;
  let done = false;
  const maybeEnd = () => {
    if (clientClosed && upstreamClosed && !done) {
      done = true;
      ended();
    }
  };
  client.on('close', () => {
    clientClosed = true;
    // A client gone without a graceful half-close leaves nobody to read the target's answer.
    if (!target.destroyed && client.readableEnded === false) resetSocket(target);
    maybeEnd();
  });
  target.on('close', () => {
    upstreamClosed = true;
    if (!client.destroyed && target.readableEnded === false) resetSocket(client);
    maybeEnd();
  });
}
