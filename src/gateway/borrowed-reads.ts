// Reads of the plain-HTTP listener's connections go into one buffer the gateway owns (net's `onread`)
// instead of a fresh buffer per read. Node's default read path allocates 64 KiB, shrinks it and wraps
// it in a Buffer on every read; a keep-alive server answering each read cost 7.7 µs of user CPU per
// request that way and 4.5 µs with `onread` (three paired runs under wrk, system time 12.4 → 11.1).
//
// A reader registered for a socket gets each read as a view into that shared buffer, valid only during
// the call: the next read of any connection overwrites it, so whatever the reader keeps it copies.
// Without a reader the bytes are copied and pushed into the socket, so every Readable consumer (the
// PROXY header reader, an upgraded tunnel, lingering) works as on any socket, backpressure included.
//
// Node's accepted sockets cannot take `onread`: the listening handle's `onconnection`, which Node's
// server sets and does not document (the lb's accept.ts takes it the same way), creates the Socket
// itself with the `handle` option, as cluster does. Where that hook is missing, nothing changes.
import net from 'node:net';

/** Gets a read as a view into the shared buffer, valid only during the call. */
export type BorrowedReader = (chunk: Buffer) => void;

interface ReaderSlot {
  reader: BorrowedReader | null;
}

/** One buffer for every connection: a read is handled before the next one starts (one thread). */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);
const slots = new WeakMap<net.Socket, ReaderSlot>();

type ConnectionHook = (this: unknown, status: number, clientHandle?: object) => void;
type SocketWithHandle = new (options: object) => net.Socket;

/** A paused net.Socket over an accepted handle, reading into READ_BUFFER. */
function borrowingSocket(clientHandle: object, allowHalfOpen: boolean): net.Socket {
  const slot: ReaderSlot = { reader: null };
  const onread = {
    buffer: READ_BUFFER,
    callback: (nread: number, buffer: Uint8Array): boolean => {
      const view = (buffer as Buffer).subarray(0, nread);
      const reader = slot.reader;
      if (reader === null) return socket.push(Buffer.from(view));
      reader(view);
      return true;
    },
  };
  const socket = new (net.Socket as unknown as SocketWithHandle)({
    handle: clientHandle,
    allowHalfOpen,
    pauseOnCreate: true,
    readable: true,
    writable: true,
    onread,
  });
  slots.set(socket, slot);
  return socket;
}

/**
 * From now on, `server`'s accepted connections become paused sockets reading into the shared buffer,
 * handed to `onSocket` (the server's 'connection' event and its connection count are bypassed). Call
 * once listening. False when the hook is not there: the server's own sockets keep coming.
 */
export function acceptWithBorrowedReads(
  server: net.Server,
  options: { allowHalfOpen: boolean; noDelay: boolean },
  onSocket: (socket: net.Socket) => void,
): boolean {
  const handle = (server as unknown as { _handle?: { onconnection?: ConnectionHook } | null })._handle;
  const original = handle?.onconnection;
  if (handle == null || typeof original !== 'function') return false;
  handle.onconnection = function onconnection(status, clientHandle) {
    // An accept error (EMFILE…) is Node's to report, on the server's 'error' event.
    if (status !== 0 || clientHandle == null) {
      original.call(this, status, clientHandle);
      return;
    }
    const socket = borrowingSocket(clientHandle, options.allowHalfOpen);
    if (options.noDelay) socket.setNoDelay(true);
    onSocket(socket);
  };
  return true;
}

/**
 * Reads of `socket` go to `reader` (null: back into the socket as a Readable). False when the socket
 * does not read into the shared buffer: its bytes come as 'data' events, owned by their receiver.
 */
export function setBorrowedReader(socket: net.Socket, reader: BorrowedReader | null): boolean {
  const slot = slots.get(socket);
  if (slot === undefined) return false;
  slot.reader = reader;
  return true;
}
