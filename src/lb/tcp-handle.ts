// libuv TCP handles without net.Socket around them, for the lb's flows: a flow only copies bytes, and
// the Socket's two streams (state machines, ticks, per-read buffers, events) were most of the CPU a
// new connection cost (docs/lb.md). These are the bindings net.Socket itself is written on
// (`tcp_wrap`, `stream_wrap`), reached through `process.binding`, which Node keeps for them
// (DEP0111 is documentation-only). When they are missing or not shaped as expected, `tcpBindings()`
// returns null and the lb keeps its net.Socket flows.

/** Read results below zero are libuv error codes; this one is the peer's FIN. */
export const UV_EOF = -4095;

/** What a write reported: done now, still in flight (`oncomplete` follows), or a libuv error (< 0). */
export const WRITE_DONE = 0;
export const WRITE_PENDING = 1;

export interface SocketName {
  address?: string;
  port?: number;
  family?: string;
}

/** A connected libuv TCP handle (the subset of TCPWrap/StreamBase/HandleWrap a flow uses). */
export interface TcpHandle {
  /** Must always be a function: Node aborts the process on anything else. */
  onread: (this: TcpHandle, arrayBuffer: ArrayBuffer | undefined) => void;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
  setNoDelay(on: boolean): number;
  getpeername(out: SocketName): number;
  getsockname(out: SocketName): number;
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  connect(req: object, address: string, port: number): number;
  connect6(req: object, address: string, port: number): number;
  writeBuffer(req: object, data: Uint8Array): number;
  writev(req: object, chunks: Uint8Array[], allBuffers: boolean): number;
  shutdown(req: object): number;
  reset(callback: () => void): number;
  close(callback?: () => void): void;
}

interface WriteRequest {
  handle: TcpHandle;
  oncomplete: (status: number) => void;
  async: boolean;
}

export interface TcpBindings {
  newSocket(): TcpHandle;
  newConnect(): { oncomplete: (status: number) => void; address: string; port: number };
  newWrite(): WriteRequest;
  newShutdown(): { handle: TcpHandle; oncomplete: (status: number) => void };
  state: Int32Array;
  readBytes: number;
  arrayBufferOffset: number;
  lastWriteWasAsync: number;
}

let bindings: TcpBindings | null | undefined;

/** The bindings, or null where this Node does not offer them as expected (checked once). */
export function tcpBindings(): TcpBindings | null {
  if (bindings !== undefined) return bindings;
  bindings = null;
  try {
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const tcp = binding('tcp_wrap') as {
      TCP: new (type: number) => TcpHandle;
      TCPConnectWrap: new () => ReturnType<TcpBindings['newConnect']>;
      constants: { SOCKET: number };
    };
    const stream = binding('stream_wrap') as {
      WriteWrap: new () => WriteRequest;
      ShutdownWrap: new () => ReturnType<TcpBindings['newShutdown']>;
      streamBaseState: Int32Array;
      kReadBytesOrError: number;
      kArrayBufferOffset: number;
      kLastWriteWasAsync: number;
    };
    const probe = new tcp.TCP(tcp.constants.SOCKET);
    const usable = ['readStart', 'useUserBuffer', 'writeBuffer', 'shutdown', 'reset', 'connect'].every(
      (name) => typeof (probe as unknown as Record<string, unknown>)[name] === 'function',
    );
    probe.close();
    if (!usable || !(stream.streamBaseState instanceof Int32Array)) return null;
    bindings = {
      newSocket: () => new tcp.TCP(tcp.constants.SOCKET),
      newConnect: () => new tcp.TCPConnectWrap(),
      newWrite: () => new stream.WriteWrap(),
      newShutdown: () => new stream.ShutdownWrap(),
      state: stream.streamBaseState,
      readBytes: stream.kReadBytesOrError,
      arrayBufferOffset: stream.kArrayBufferOffset,
      lastWriteWasAsync: stream.kLastWriteWasAsync,
    };
  } catch {
    bindings = null;
  }
  return bindings;
}

/** The result of the read that triggered `onread`: bytes read, or a libuv error / UV_EOF. */
export function readResult(b: TcpBindings): number {
  return b.state[b.readBytes] as number;
}

/** Where the bytes of a read into a Node-allocated buffer start. */
export function readOffset(b: TcpBindings): number {
  return b.state[b.arrayBufferOffset] as number;
}

/**
 * Writes `data` (which must stay untouched until done): WRITE_DONE when the kernel took it all now,
 * WRITE_PENDING when `done(status)` will be called later, or a libuv error code.
 */
export function writeTo(
  b: TcpBindings,
  handle: TcpHandle,
  data: Uint8Array,
  done: (status: number) => void,
): number {
  const req = b.newWrite();
  req.handle = handle;
  req.oncomplete = done;
  req.async = false;
  const error = handle.writeBuffer(req, data);
  if (error < 0) return error;
  return b.state[b.lastWriteWasAsync] === 0 ? WRITE_DONE : WRITE_PENDING;
}

/** Sends FIN once every write queued before it is out; `done(status)` then. Returns a libuv error or 0. */
export function shutdownWrite(b: TcpBindings, handle: TcpHandle, done: (status: number) => void): number {
  const req = b.newShutdown();
  req.handle = handle;
  req.oncomplete = done;
  return handle.shutdown(req);
}

/** Connects `handle`, from `localAddress` when given; `done(status)` (0 or a libuv error) follows. */
export function connectTo(
  b: TcpBindings,
  handle: TcpHandle,
  target: { host: string; port: number },
  done: (status: number) => void,
): number {
  const v6 = target.host.includes(':');
  const req = b.newConnect();
  req.oncomplete = done;
  req.address = target.host;
  req.port = target.port;
  return v6 ? handle.connect6(req, target.host, target.port) : handle.connect(req, target.host, target.port);
}

/**
 * Binds a handle before its connect. libuv reports an EADDRINUSE of the bind through the connect's
 * callback, not here; what comes back here (EADDRNOTAVAIL: the address is not the machine's) is final.
 */
export function bindTo(handle: TcpHandle, local: { address: string; port: number }): number {
  return local.address.includes(':')
    ? handle.bind6(local.address, local.port, 0)
    : handle.bind(local.address, local.port);
}

/** The peer's or the local address of a handle; null when the socket is already gone. */
export function socketName(
  handle: TcpHandle,
  side: 'peer' | 'local',
): { address: string; port: number } | null {
  const out: SocketName = {};
  const error = side === 'peer' ? handle.getpeername(out) : handle.getsockname(out);
  if (error !== 0 || out.address === undefined || out.port === undefined) return null;
  return { address: out.address, port: out.port };
}
