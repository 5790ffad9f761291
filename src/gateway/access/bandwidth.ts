// limit-rate / limit-rate-after: nginx's limit_rate and limit_rate_after on the response to the client,
// per request. The first `afterBytes` go at full speed; from then on the body may run at most
// `rateBytes` per second ahead of the time since the first byte. Done as backpressure: a write past the
// budget reports "full" (false) and the proxy waits for 'drain', which comes when the budget has caught
// up (and the socket itself has drained, when it was full too). Nothing is buffered beyond one chunk.
import type { GatewayResponse } from '../exchange.ts';

export interface Bandwidth {
  rateBytes: number;
  afterBytes: number;
}

/** How long to wait before more may be sent, after `sent` bytes `elapsedMs` after the first write. */
export function throttleDelayMs(limit: Bandwidth, sent: number, elapsedMs: number): number {
  if (limit.rateBytes <= 0 || sent <= limit.afterBytes) return 0;
  const allowed = limit.afterBytes + (limit.rateBytes * elapsedMs) / 1000;
  return sent <= allowed ? 0 : ((sent - allowed) * 1000) / limit.rateBytes;
}

/** Wraps `res.write` and `res.once('drain')` of this one response to keep to `limit`. */
export function throttleResponse(res: GatewayResponse, limit: Bandwidth, now: () => number = Date.now): void {
  const write = res.write.bind(res);
  const once = res.once.bind(res);
  let sent = 0;
  let start = -1;
  let waiting = false;
  let socketFull = false;
  const listeners: (() => void)[] = [];
  const release = () => {
    if (waiting || socketFull) return;
    for (const listener of listeners.splice(0)) listener();
  };
  (res as { write: unknown }).write = (chunk: Buffer): boolean => {
    if (start < 0) start = now();
    sent += chunk.length;
    const ok = write(chunk);
    const delay = throttleDelayMs(limit, sent, now() - start);
    if (delay === 0) return ok;
    waiting = true;
    socketFull = !ok;
    setTimeout(() => {
      waiting = false;
      release();
    }, Math.ceil(delay));
    return false;
  };
  (res as { once: unknown }).once = (event: 'close' | 'drain', listener: () => void) => {
    if (event !== 'drain' || (!waiting && !socketFull)) return once(event, listener);
    listeners.push(listener);
    if (socketFull)
      once('drain', () => {
        socketFull = false;
        release();
      });
    return res;
  };
}
