// limit-rate / limit-rate-after: nginx's limit_rate and limit_rate_after on the response to the client,
// per request. As nginx's write filter: the first `afterBytes` go at full speed, then at most
// `rateBytes × (seconds since the first byte + 1)` more. A write past that budget sends what it allows,
// holds the rest of the chunk and reports "full" (false); the held bytes go out piece by piece as the
// budget grows, and 'drain' comes once they are out (and the socket has drained, when it was full).
// The response's end waits for them. Nothing is held beyond the chunks the proxy wrote.
import type { GatewayResponse } from '../exchange.ts';

export interface Bandwidth {
  rateBytes: number;
  afterBytes: number;
}

/** How many more bytes may go now, after `sent` bytes `elapsedMs` after the first write. */
export function allowanceBytes(limit: Bandwidth, sent: number, elapsedMs: number): number {
  if (limit.rateBytes <= 0) return Number.POSITIVE_INFINITY;
  const allowed = limit.afterBytes + limit.rateBytes * (elapsedMs / 1000 + 1);
  return Math.max(0, Math.floor(allowed - sent));
}

/** The least a paced piece carries: about a tenth of a second's worth (nginx sends in such rounds). */
function pieceBytes(limit: Bandwidth): number {
  return Math.max(1, Math.floor(limit.rateBytes / 10));
}

/** Wraps `res.write`, `res.end` and `res.once('drain')` of this one response to keep to `limit`. */
export function throttleResponse(res: GatewayResponse, limit: Bandwidth, now: () => number = Date.now): void {
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  const once = res.once.bind(res);
  let sent = 0;
  let start = -1;
  let held: Buffer[] = [];
  let heldBytes = 0;
  let timer: NodeJS.Timeout | null = null;
  let socketFull = false;
  let ended = false;
  let closed = false;
  let finished = false;
  const listeners: (() => void)[] = [];
  const finish = () => {
    if (finished) return;
    finished = true;
    end();
  };
  const pass = (chunk: Buffer) => {
    sent += chunk.length;
    if (write(chunk) || socketFull) return;
    socketFull = true;
    once('drain', () => {
      socketFull = false;
      pump();
    });
  };
  /** Sends what the budget allows of the held bytes; then ends, or tells the proxy to go on. */
  const pump = () => {
    timer = null;
    if (closed || socketFull) return;
    let allowance = allowanceBytes(limit, sent, now() - start);
    while (heldBytes > 0 && allowance > 0) {
      const first = held[0]!;
      const part = first.length <= allowance ? first : first.subarray(0, allowance);
      if (part === first) held.shift();
      else held[0] = first.subarray(allowance);
      heldBytes -= part.length;
      allowance -= part.length;
      pass(part);
    }
    if (heldBytes > 0) {
      if (!socketFull) schedule();
      return;
    }
    if (!socketFull) for (const listener of listeners.splice(0)) listener();
    if (ended) finish();
  };
  const schedule = () => {
    const want = Math.min(heldBytes, pieceBytes(limit));
    const short = want - allowanceBytes(limit, sent, now() - start);
    timer = setTimeout(pump, Math.max(1, Math.ceil((short * 1000) / limit.rateBytes)));
  };
  once('close', () => {
    closed = true;
    if (timer !== null) clearTimeout(timer);
    held = [];
    heldBytes = 0;
  });
  (res as { write: unknown }).write = (chunk: Buffer): boolean => {
    if (start < 0) start = now();
    held.push(chunk);
    heldBytes += chunk.length;
    if (timer === null && !socketFull) pump();
    return heldBytes === 0 && !socketFull;
  };
  (res as { end: unknown }).end = (chunk?: Buffer) => {
    if (chunk !== undefined && chunk.length > 0) res.write(chunk);
    ended = true;
    if (heldBytes === 0 && timer === null) finish();
    return res;
  };
  (res as { once: unknown }).once = (event: 'close' | 'drain', listener: () => void) => {
    if (event !== 'drain' || (heldBytes === 0 && !socketFull)) return once(event, listener);
    listeners.push(listener);
    return res;
  };
}
