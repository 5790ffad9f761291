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

// The turn a socket is held in, on the socket itself: a Set cleared every turn regrew its table on
// the hot path (Runtime_SetGrow in profiles).
const HELD_IN = Symbol('keepip.writesHeldInTurn');
type HoldableSocket = Writable & { [HELD_IN]?: number };

let turn = 1;
const held: HoldableSocket[] = [];

function uncorkAll(): void {
  // A socket held again during this pass (by a callback of a write) is appended and visited by it.
  for (let i = 0; i < held.length; i++) {
    const socket = held[i] as HoldableSocket;
    if (socket[HELD_IN] !== turn) continue; // flushed early
    socket[HELD_IN] = 0;
    try {
      socket.uncork();
    } catch (error) {
      // One broken socket must not leave the others of the turn corked for good.
      socket.destroy(error as Error);
    }
  }
  held.length = 0;
  turn += 1;
}

/** Holds the socket's writes until the end of this turn (one cork of its own, once per turn). */
export function batchWritesThisTurn(socket: HoldableSocket): void {
  if (socket[HELD_IN] === turn) return;
  socket[HELD_IN] = turn;
  socket.cork();
  if (held.push(socket) === 1) setImmediate(uncorkAll);
}

/** Writes what this turn holds for the socket now: before destroy(), which would drop it. */
export function flushBatchedWrites(socket: HoldableSocket): void {
  if (socket[HELD_IN] !== turn) return;
  socket[HELD_IN] = 0;
  socket.uncork();
}
