/**
 * Writes held until the end of the event-loop turn. Under load one turn serves many connections;
 * writing each answer the moment it is ready wakes a sleeping peer (the client, the backend) per
 * write, and on a virtual machine that wake-up costs more than the write. Held sockets are uncorked
 * together in the check phase, after the turn's I/O callbacks: a peer is woken once for the answers
 * that are ready, and a response's head and body pieces leave in one write (issue 16: about -19 %
 * CPU per request in the gateway bench). At low load a turn holds one event: the delay is one
 * setImmediate.
 */
import type { Writable } from 'node:stream';

const held = new Set<Writable>();

function uncorkAll(): void {
  // A socket held during this pass (by a callback of a write) is visited by the same pass.
  for (const socket of held) socket.uncork();
  held.clear();
}

/** Holds the socket's writes until the end of this turn (one cork of its own, once per turn). */
export function batchWritesThisTurn(socket: Writable): void {
  if (held.has(socket)) return;
  socket.cork();
  held.add(socket);
  if (held.size === 1) setImmediate(uncorkAll);
}

/** Writes what this turn holds for the socket now: before destroy(), which would drop it. */
export function flushBatchedWrites(socket: Writable): void {
  if (held.delete(socket)) socket.uncork();
}
