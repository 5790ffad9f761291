// The primary's side of the shared limiter: the pod's one MemoryLimiterStore (the same bounded store
// one process uses), asked by every gateway worker over its own channel. Each channel's verdicts of a
// read leave in one write, in the order asked. The connection slots a worker holds are remembered per
// channel, so that when the worker exits (a crash closes its end of the socketpair) they are freed:
// a dead worker's requests no longer count against limit-connections.
import type { Duplex } from 'node:stream';
import { checkLimits, MemoryLimiterStore } from '../gateway/access/rate-limit.ts';
import { decodeToPrimary, encodeHold, encodeVerdict, lineReader } from './limiter-wire.ts';

export interface LimiterHost {
  /** Answers the checks arriving on `channel` until it closes, then frees the slots it held. */
  attach(channel: Duplex): void;
  readonly store: MemoryLimiterStore;
  /** Connection slots held now, over every channel. */
  heldSlots(): number;
  /**
   * Tells every worker that this process is about to block (a reload builds and checks a snapshot on
   * this thread) and that its answers may come up to `ms` late: the workers wait instead of failing
   * closed. hold(0) ends it. Written at once, before the blocking work starts.
   */
  hold(ms: number): void;
}

export function createLimiterHost(store = new MemoryLimiterStore()): LimiterHost {
  const channels = new Set<Map<number, { zone: string; key: string }>>();
  const open = new Set<Duplex>();
  return {
    store,
    heldSlots: () => [...channels].reduce((sum, held) => sum + held.size, 0),
    hold(ms) {
      const line = `${encodeHold(ms)}\n`;
      for (const channel of open) channel.write(line);
    },
    attach(channel) {
      const held = new Map<number, { zone: string; key: string }>();
      channels.add(held);
      open.add(channel);
      const lines = lineReader();
      channel.setEncoding('utf8');
      channel.on('data', (chunk: string) => {
        const answers = answer(store, held, lines.push(chunk));
        if (answers === null) channel.destroy();
        else if (answers.length > 0) channel.write(`${answers.join('\n')}\n`);
      });
      channel.on('error', () => {}); // 'close' follows
      channel.once('close', () => {
        open.delete(channel);
        for (const slot of held.values()) store.releaseConnection(slot.zone, slot.key);
        held.clear();
        channels.delete(held);
      });
    },
  };
}

/** The verdicts for one read's messages, or null when a line is not a message (the channel is closed). */
function answer(
  store: MemoryLimiterStore,
  held: Map<number, { zone: string; key: string }>,
  lines: string[] | null,
): string[] | null {
  if (lines === null) return null;
  const answers: string[] = [];
  const now = performance.now();
  for (const line of lines) {
    const message = decodeToPrimary(line);
    if (message === null) return null;
    if (message.kind === 'release') {
      const slot = held.get(message.id);
      if (slot === undefined) continue;
      held.delete(message.id);
      store.releaseConnection(slot.zone, slot.key);
      continue;
    }
    const { id, limits, connection, key } = message;
    if (held.has(id)) return null; // an id still holding a slot cannot be asked again
    const verdict = checkLimits(store, limits, connection, key, now);
    if (verdict === 'admitted' && connection !== null) held.set(id, { zone: connection.zone, key });
    answers.push(encodeVerdict(id, verdict));
  }
  return answers;
}
