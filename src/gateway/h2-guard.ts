// What one HTTP/2 connection is allowed before it is closed: the per-connection accounting behind the
// abuse limits (docs/gateway.md, HTTP/2). Plain arithmetic with the time passed in; the server side
// (h2-server.ts) feeds it events and acts on its verdicts.
import type { Http2AbuseLimits } from '../config/http2.ts';

/** Why a connection is closed with GOAWAY ENHANCE_YOUR_CALM. */
export type Http2AbuseKind = 'rapid-reset' | 'control-flood' | 'frame-flood';

/** Bytes read per byte of requests past which a connection floods (nginx's ratio). */
const FRAME_FLOOD_RATIO = 8;

export class Http2Guard {
  readonly #limits: Http2AbuseLimits;
  readonly #maxRequests: number;
  /** Streams the client opened on this connection. */
  streams = 0;
  /** Streams the client reset before their response ended. */
  prematureResets = 0;
  /** Bytes of requests: decoded header lists and the DATA read (nginx's payload_bytes). */
  payloadBytes = 0;
  #tokens: number;
  #refilledAt: number;

  constructor(limits: Http2AbuseLimits, maxRequests: number, now: number) {
    this.#limits = limits;
    this.#maxRequests = maxRequests;
    this.#tokens = limits.controlFrameBurst;
    this.#refilledAt = now;
  }

  /** A new stream; true when it is the last this connection may carry (keep-alive-requests): GOAWAY after it. */
  streamOpened(): boolean {
    this.streams += 1;
    return this.streams >= this.#maxRequests;
  }

  /**
   * A stream reset by the client before its response ended. True when resets are the connection's
   * business rather than an accident: at least the limit, and at least half of its streams.
   */
  streamReset(): boolean {
    this.prematureResets += 1;
    return this.prematureResets >= this.#limits.prematureResets && this.prematureResets * 2 >= this.streams;
  }

  /** True when `bytesRead` (all the connection read) outweighs its requests: nginx's flood rule. */
  frameFlood(bytesRead: number): boolean {
    return bytesRead > FRAME_FLOOD_RATIO * (this.payloadBytes + this.#limits.frameFloodSlackBytes);
  }

  /** A PING or SETTINGS frame from the client; true when the bucket is empty. */
  controlFrame(now: number): boolean {
    const elapsed = now - this.#refilledAt;
    if (elapsed > 0) {
      const refill = (elapsed * this.#limits.controlFramesPerSecond) / 1000;
      this.#tokens = Math.min(this.#limits.controlFrameBurst, this.#tokens + refill);
      this.#refilledAt = now;
    }
    if (this.#tokens < 1) return true;
    this.#tokens -= 1;
    return false;
  }
}
