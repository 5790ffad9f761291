// How backend connections are kept alive between requests, as ingress-nginx's `upstream_balancer`
// block: `keepalive` (upstream-keepalive-connections: idle connections cached per process, over all
// backends, the least recently used closed beyond it; 0 keeps none), `keepalive_timeout` (how long one
// stays idle), `keepalive_requests` (requests per connection) and `keepalive_time` (how long one is
// used for new requests). The limits are the served snapshot's, set at each reload; a connection
// already idle keeps the idle timer it was given.
import type { GatewaySettings } from '../config/model.ts';

export interface KeepaliveLimits {
  /** Idle connections kept over all backends; 0: every connection closes after its response. */
  maxIdle: number;
  idleTimeoutMs: number;
  /** Requests one connection serves; the connection closes after the last one's response. */
  maxRequests: number;
  /** After this long from its opening, a connection closes once its current response ends. */
  maxLifetimeMs: number;
}

/** ingress-nginx's defaults: 320 connections, 60 s, 10,000 requests, 1 h. */
export const DEFAULT_KEEPALIVE: KeepaliveLimits = {
  maxIdle: 320,
  idleTimeoutMs: 60_000,
  maxRequests: 10_000,
  maxLifetimeMs: 3_600_000,
};

export function keepaliveLimitsOf(settings: GatewaySettings): KeepaliveLimits {
  return {
    maxIdle: settings.upstreamKeepaliveConnections,
    idleTimeoutMs: settings.upstreamKeepaliveTimeoutMs,
    maxRequests: settings.upstreamKeepaliveRequests,
    maxLifetimeMs: settings.upstreamKeepaliveTimeMs,
  };
}

/** A connection that can be closed while idle. */
export interface Closable {
  closeIfIdle(): boolean;
}

/** The per-process cache of idle backend connections, shared by every pool; least recently used first out. */
export class IdleConnections<C extends Closable = Closable> {
  limits: KeepaliveLimits = DEFAULT_KEEPALIVE;
  // A Set iterates in insertion order: its first entry is the connection idle the longest.
  readonly #idle = new Set<C>();

  get size(): number {
    return this.#idle.size;
  }

  /** Whether a connection that served `served` requests since `openedAt` may be kept for another. */
  keeps(served: number, openedAt: number, now: number): boolean {
    const { maxIdle, maxRequests, maxLifetimeMs } = this.limits;
    return maxIdle > 0 && served < maxRequests && now - openedAt < maxLifetimeMs;
  }

  /** `conn` went idle: cached, and the least recently used closed when over the limit. */
  park(conn: C): void {
    this.#idle.add(conn);
    for (const oldest of this.#idle) {
      if (this.#idle.size <= this.limits.maxIdle) break;
      this.#idle.delete(oldest);
      oldest.closeIfIdle();
    }
  }

  /** `conn` is in use again, or closed. */
  unpark(conn: C): void {
    this.#idle.delete(conn);
  }
}
