// Closing a connection with RST, as an NLB does on resets and idle timeouts, without leaking its handle.
import type net from 'node:net';

/** Close with RST; a plain destroy where that is impossible. */
export function resetSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  // libuv refuses to reset a socket whose write side is already shut down (uv_tcp_close_reset:
  // EINVAL), and Node then never closes the handle: it stays active and its reads spin. After our
  // own end() the peer has had its FIN anyway, so close those plainly.
  if (socket.writableEnded) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
