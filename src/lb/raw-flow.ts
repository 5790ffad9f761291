// A flow (see flow.ts for what a flow promises) on bare libuv TCP handles (tcp-handle.ts) instead of
// two net.Sockets: the same copying with backpressure, half-closes passed on as half-closes, resets
// as resets, the idle and connect deadlines, the PROXY header first. What it saves is the Socket
// machinery per connection and per read, which was most of the lb's cost per new connection.
//
// Reads go into buffers Node allocates for each read (each write then owns its bytes); a side that
// reads 32 KiB or more at once is moving bulk data and switches to a 64 KiB buffer of its own, which
// is not read into again while a write still holds it. The client is read only once the target has
// accepted: what it sends meanwhile waits in the kernel and follows the header, in order.
import { constants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { type Deadline, deadlineWheel } from './deadlines.ts';
import { MAX_PORT_TRIES, type SourcePorts } from './source-ports.ts';
import type { Flow, FlowEndReason, FlowSettings } from './flow.ts';
import {
  bindTo,
  connectTo,
  readOffset,
  readResult,
  shutdownWrite,
  socketName,
  type TcpHandle,
  type TcpBindings,
  UV_EOF,
  WRITE_PENDING,
  writeTo,
} from './tcp-handle.ts';

/** `target.host` is an IP address (targets are validated so: LB_BAD_TARGET). */
export interface RawFlowSpec extends FlowSettings {
  client: TcpHandle;
  clientPeer: { address: string; port: number };
  /** Explicit source ports for `localAddress` (source-ports.ts); without it the kernel picks. */
  sourcePorts?: SourcePorts;
}

/** libuv's code for the connect deadline (the negated errno, as libuv reports errors). */
const UV_ETIMEDOUT = -constants.errno.ETIMEDOUT;
/** An explicit source port a listener holds (the bind's, reported by the connect) or whose four-tuple is taken. */
const UV_EADDRINUSE = -constants.errno.EADDRINUSE;
const UV_EADDRNOTAVAIL = -constants.errno.EADDRNOTAVAIL;
const BULK_READ = 32 * 1024;
const OWN_BUFFER = 64 * 1024;

/** One side of a flow: its handle and where its two directions stand. */
interface Side {
  /** The target's is replaced when a connect from an explicit source port clashes (#connect). */
  handle: TcpHandle;
  readonly name: 'client' | 'target';
  /** Its FIN was read. */
  readEof: boolean;
  /** Writes to it not yet done. */
  pendingWrites: number;
  shutdownPending: boolean;
  /** A shutdown was asked for: libuv refuses a reset after it, and Node then never closes the handle. */
  finSent: boolean;
  /** Close (or reset) asked for; `gone` once the handle has closed. */
  closing: boolean;
  gone: boolean;
  /** Reading stopped because a write to the other side is in flight. */
  held: boolean;
  ownBuffer: Buffer | null;
}

function side(handle: TcpHandle, name: Side['name']): Side {
  return {
    handle,
    name,
    readEof: false,
    pendingWrites: 0,
    shutdownPending: false,
    finSent: false,
    closing: false,
    gone: false,
    held: false,
    ownBuffer: null,
  };
}

/** Starts a flow on an accepted client handle, with the bindings tcpBindings() found. */
export function startRawFlow(bindings: TcpBindings, spec: RawFlowSpec): Flow {
  return new RawFlow(bindings, spec).flow;
}

class RawFlow {
  readonly flow: Flow;
  readonly #b: TcpBindings;
  readonly #spec: RawFlowSpec;
  readonly #client: Side;
  readonly #target: Side;
  #connected = false;
  #endReason: FlowEndReason = 'closed';
  #ended = false;
  readonly #idle: Deadline;
  readonly #connectDeadline: Deadline;
  /** Connects tried from an explicit source port. */
  #portTries = 0;

  constructor(b: TcpBindings, spec: RawFlowSpec) {
    this.#b = b;
    this.#spec = spec;
    this.#client = side(spec.client, 'client');
    this.#target = side(b.newSocket(), 'target');
    this.#idle = { active: false, since: 0, expire: () => this.#resetBoth('idle') };
    this.#connectDeadline = { active: false, since: 0, expire: () => this.#connectFailed(UV_ETIMEDOUT) };
    const target = this.#target;
    this.flow = {
      target: spec.target,
      clientPeer: spec.clientPeer,
      upstreamLocal: () => (this.#connected && !target.gone ? socketName(target.handle, 'local') : null),
      clientReads: 'raw',
      abort: () => this.#resetBoth('aborted'),
    };
    spec.client.setNoDelay(true);
    // The connect has its own deadline; idleness is counted once there is a flow to be idle.
    deadlineWheel(spec.connectTimeoutMs).add(this.#connectDeadline);
    this.#connect();
  }

  /** Connects the target handle, from the next explicit source port while there are tries left. */
  #connect(): void {
    const { localAddress, target } = this.#spec;
    const port = this.#nextPort();
    if (localAddress !== undefined) {
      // A bind refused here (an address the machine does not have) is final, not a clash.
      const bound = bindTo(this.#target.handle, { address: localAddress, port });
      if (bound < 0) {
        queueMicrotask(() => this.#onConnect(bound, false));
        return;
      }
    }
    const explicit = port !== 0;
    const error = connectTo(this.#b, this.#target.handle, target, (status) =>
      this.#onConnect(status, explicit && status === UV_EADDRINUSE),
    );
    // Synchronous EADDRNOTAVAIL from connect(): the four-tuple from this port is taken.
    if (error < 0) queueMicrotask(() => this.#onConnect(error, explicit && error === UV_EADDRNOTAVAIL));
  }

  /**
   * The next explicit source port, or 0 (the kernel's choice) without a source address or tries left.
   * Never the target's own port on the target's own address: a connect to it from itself would succeed
   * (TCP simultaneous open) and the client would read its own bytes back.
   */
  #nextPort(): number {
    const { localAddress, sourcePorts, target } = this.#spec;
    if (localAddress === undefined || sourcePorts === undefined || this.#portTries >= MAX_PORT_TRIES)
      return 0;
    this.#portTries++;
    const port = sourcePorts.next(localAddress);
    return port === target.port && localAddress === target.host ? sourcePorts.next(localAddress) : port;
  }

  #finish(reason: FlowEndReason): void {
    if (this.#endReason === 'closed') this.#endReason = reason;
  }

  #onConnect(status: number, portClash: boolean): void {
    const target = this.#target;
    if (target.closing) return; // timed out or aborted meanwhile
    if (status < 0 && portClash) {
      // A new socket: a bound one cannot be bound again, and libuv keeps a bind's error on the handle.
      target.handle.close();
      target.handle = this.#b.newSocket();
      this.#connect();
      return;
    }
    if (status < 0) {
      this.#connectFailed(status);
      return;
    }
    this.#connected = true;
    deadlineWheel(this.#spec.connectTimeoutMs).delete(this.#connectDeadline);
    deadlineWheel(this.#spec.idleTimeoutMs).add(this.#idle);
    target.handle.setNoDelay(true);
    if (this.#spec.header !== null && !this.#write(target, this.#client, this.#spec.header)) return;
    this.#spec.onConnected(this.flow);
    this.#startReading(target, this.#client);
    this.#startReading(this.#client, target);
  }

  #connectFailed(status: number): void {
    if (this.#target.closing) return;
    deadlineWheel(this.#spec.connectTimeoutMs).delete(this.#connectDeadline);
    this.#finish('connect-failed');
    const code = errorName(status);
    const error = Object.assign(new Error(status === UV_ETIMEDOUT ? 'connect timeout' : code), { code });
    this.#spec.onConnectError(this.flow, error);
    this.#close(this.#target, false);
    this.#close(this.#client, true);
  }

  /** `from`'s bytes go to `to`. */
  #startReading(from: Side, to: Side): void {
    const flow = this;
    from.handle.onread = function onread(arrayBuffer) {
      flow.#onRead(from, to, arrayBuffer);
    };
    if (!from.held) from.handle.readStart(); // else the write that holds it restarts it
  }

  #onRead(from: Side, to: Side, arrayBuffer: ArrayBuffer | undefined): void {
    const b = this.#b;
    const n = readResult(b);
    if (n > 0) {
      this.#idle.active = true;
      if (from === this.#client) this.#spec.counters.bytesToTarget += n;
      else this.#spec.counters.bytesToClient += n;
      const data =
        arrayBuffer === undefined
          ? (from.ownBuffer as Buffer).subarray(0, n)
          : new Uint8Array(arrayBuffer, readOffset(b), n);
      if (arrayBuffer !== undefined && n >= BULK_READ && from.ownBuffer === null) {
        from.ownBuffer = Buffer.allocUnsafeSlow(OWN_BUFFER);
        from.handle.useUserBuffer(from.ownBuffer);
      }
      this.#write(to, from, data);
      return;
    }
    if (n === UV_EOF) this.#onEof(from, to);
    else if (n < 0) this.#peerReset(from);
  }

  /** Writes to `to`; while the write is in flight `from` is not read. False when `to` failed. */
  #write(to: Side, from: Side, data: Uint8Array): boolean {
    if (to.closing) return false;
    const result = writeTo(this.#b, to.handle, data, (status) => this.#written(to, from, status));
    if (result < 0) {
      this.#peerReset(to);
      return false;
    }
    if (result === WRITE_PENDING) {
      to.pendingWrites++;
      if (!from.held && !from.closing) {
        from.held = true;
        from.handle.readStop();
      }
    }
    return true;
  }

  #written(to: Side, from: Side, status: number): void {
    to.pendingWrites--;
    if (to.closing) return;
    if (status < 0) {
      this.#peerReset(to);
      return;
    }
    if (to.pendingWrites === 0 && from.held && !from.closing) {
      from.held = false;
      if (!from.readEof) from.handle.readStart();
    }
    this.#closeFinished();
  }

  /** `from` half-closed: `to` gets a FIN after what is still on its way to it. */
  #onEof(from: Side, to: Side): void {
    from.readEof = true;
    from.handle.readStop();
    if (to.closing) return;
    if (to.readEof && to.pendingWrites === 0) {
      this.#closeFinished(); // closing `to` sends the FIN
      return;
    }
    to.shutdownPending = true;
    to.finSent = true;
    const error = shutdownWrite(this.#b, to.handle, (status) => {
      to.shutdownPending = false;
      if (status < 0 && !to.closing) this.#peerReset(to);
      else this.#closeFinished();
    });
    if (error < 0) {
      to.shutdownPending = false;
      this.#peerReset(to);
    }
  }

  /** Sides whose FIN was read and that have nothing more coming are closed (FIN, if not sent yet). */
  #closeFinished(): void {
    const done = (s: Side, other: Side) =>
      !s.closing && s.readEof && other.readEof && s.pendingWrites === 0 && !s.shutdownPending;
    const client = this.#client;
    const target = this.#target;
    const closeClient = done(client, target);
    const closeTarget = done(target, client);
    if (closeClient) this.#close(client, false);
    if (closeTarget) this.#close(target, false);
  }

  /** A side's connection broke (read or write error): the other side is reset, as an NLB does. */
  #peerReset(broken: Side): void {
    this.#finish(broken === this.#client ? 'client-reset' : 'target-reset');
    this.#close(broken, false);
    this.#close(broken === this.#client ? this.#target : this.#client, true);
  }

  #resetBoth(reason: FlowEndReason): void {
    this.#finish(reason);
    this.#close(this.#client, true);
    this.#close(this.#target, true);
  }

  /**
   * Closes a side once, with RST when asked and possible: not after our FIN (libuv refuses, see
   * socket-reset.ts) and not on a target that never connected (it may have no socket yet).
   */
  #close(s: Side, withReset: boolean): void {
    if (s.closing) return;
    const resettable = !s.finSent && (s === this.#client || this.#connected);
    s.closing = true;
    s.handle.readStop();
    s.handle.onread = ignoreRead; // it must stay a function (Node asserts it)
    const gone = () => {
      s.gone = true;
      this.#maybeEnd();
    };
    if (withReset && resettable && s.handle.reset(gone) === 0) return;
    s.handle.close(gone);
  }

  #maybeEnd(): void {
    if (this.#ended || !this.#client.gone || !this.#target.gone) return;
    this.#ended = true;
    deadlineWheel(this.#spec.idleTimeoutMs).delete(this.#idle);
    deadlineWheel(this.#spec.connectTimeoutMs).delete(this.#connectDeadline);
    this.#spec.onEnd(this.flow, this.#endReason);
  }
}

/** Reads that arrive after a side was closed (none should). */
function ignoreRead(): void {}

function errorName(status: number): string {
  try {
    return getSystemErrorName(status);
  } catch {
    return `E${-status}`;
  }
}
