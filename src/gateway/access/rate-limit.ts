// limit-rps / limit-rpm / limit-connections as nginx's limit_req and limit_conn count them, keyed by the
// resolved client address in a zone per Ingress:
//   limit_req: a leaky bucket per key in milli-requests (`rate` per second, `burst` = limit × multiplier,
//   nodelay): a request is refused when the bucket, after leaking since the last accepted request,
//   would hold more than `burst`; an accepted request adds 1000. So burst + 1 requests pass at once.
//   limit_conn: requests in progress per key; the request that would make it exceed the limit is refused.
// The state sits behind LimiterStore. One process counts in its own MemoryLimiterStore; with
// `--workers N` the primary keeps the one store of the pod (as nginx keeps its zones in shared memory
// for all workers) and each worker asks it through a SharedLimiter (src/workers/limiter-*.ts), which
// answers later. Each gateway replica, like each ingress-nginx pod, counts on its own. The memory
// store is bounded: at most `maxKeysPerZone` buckets per zone, least recently used evicted first (a
// spray of distinct addresses resets old buckets rather than growing memory, as nginx's zones do).

/** The limit_req of one zone: its rate and the burst allowed. */
export interface RequestLimit {
  /** Zone name, e.g. "default/web rps". */
  zone: string;
  /** Milli-requests per second, as nginx keeps it: limit-rps × 1000, limit-rpm × 1000 / 60. */
  perSecond: number;
  burst: number;
}

export interface LimiterStore {
  /** Counts one request against every limit; true when all admit it (none is charged otherwise). */
  takeRequest(limits: readonly RequestLimit[], key: string, nowMs: number): boolean;
  /** Takes one in-progress slot; false (nothing taken) when `limit` are already taken. */
  acquireConnection(zone: string, key: string, limit: number): boolean;
  releaseConnection(zone: string, key: string): void;
}

/** limit-connections of a location: its zone and how many requests per key may be in progress. */
export interface ConnectionLimit {
  zone: string;
  limit: number;
}

/** How a request fared against its limits: a refusal names the limit that refused it. */
export type LimitVerdict = 'admitted' | 'requests' | 'connections';

/** A SharedLimiter that could not answer in time: the request is refused (fail closed), never let through. */
export interface LimiterFailure {
  code: string;
  message: string;
}

/**
 * A store in another process (a worker asking its primary): the answer comes later through `done`,
 * with the function that frees the connection slot when one was taken (null otherwise).
 */
export interface SharedLimiter {
  check(
    limits: readonly RequestLimit[],
    connection: ConnectionLimit | null,
    key: string,
    done: (verdict: LimitVerdict | LimiterFailure, release: (() => void) | null) => void,
  ): void;
}

/** One request against a store, in nginx's order: limit_req (charged even if limit_conn then refuses), limit_conn. */
export function checkLimits(
  store: LimiterStore,
  limits: readonly RequestLimit[],
  connection: ConnectionLimit | null,
  key: string,
  nowMs: number,
): LimitVerdict {
  if (limits.length > 0 && !store.takeRequest(limits, key, nowMs)) return 'requests';
  if (connection !== null && !store.acquireConnection(connection.zone, key, connection.limit))
    return 'connections';
  return 'admitted';
}

interface Bucket {
  /** Milli-requests in the bucket after the last accepted request. */
  excess: number;
  lastMs: number;
}

export const DEFAULT_MAX_KEYS_PER_ZONE = 65_536;

/** nginx's ngx_http_limit_req_lookup for one bucket: the new excess, or -1 when over the burst. */
export function leak(bucket: Bucket | undefined, limit: RequestLimit, nowMs: number): number {
  if (bucket === undefined) return 0;
  const elapsed = Math.abs(nowMs - bucket.lastMs);
  // perSecond is in milli-requests (nginx's rate × 1000), elapsed in ms.
  const excess = Math.max(0, bucket.excess - (limit.perSecond * elapsed) / 1000 + 1000);
  return excess > limit.burst * 1000 ? -1 : excess;
}

/**
 * Buckets of one zone, approximately least-recently-used with O(1) steps: two generations of at most
 * maxKeys / 2 each; a key used is moved to the current one, and when it is full the older generation
 * is dropped whole. (Deleting the oldest entry of one big Map one at a time is slow in V8: its head
 * fills with deleted slots that every "oldest" lookup walks.)
 */
class Zone {
  #current = new Map<string, Bucket>();
  #previous = new Map<string, Bucket>();
  readonly #half: number;

  constructor(maxKeys: number) {
    this.#half = Math.max(1, Math.floor(maxKeys / 2));
  }

  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  /** The bucket of `key`, now the most recently used. */
  get(key: string): Bucket | undefined {
    const bucket = this.#current.get(key);
    if (bucket !== undefined) return bucket;
    const old = this.#previous.get(key);
    if (old !== undefined) {
      this.#previous.delete(key);
      this.#set(key, old);
    }
    return old;
  }

  put(key: string, excess: number, nowMs: number): void {
    const bucket = this.#current.get(key);
    if (bucket !== undefined) {
      bucket.excess = excess;
      bucket.lastMs = nowMs;
      return;
    }
    this.#previous.delete(key);
    this.#set(key, { excess, lastMs: nowMs });
  }

  #set(key: string, bucket: Bucket): void {
    if (this.#current.size >= this.#half) {
      this.#previous = this.#current;
      this.#current = new Map();
    }
    this.#current.set(key, bucket);
  }
}

/** The in-process store: one gateway process, all its requests. A zone holds at most maxKeysPerZone buckets. */
export class MemoryLimiterStore implements LimiterStore {
  readonly #zones = new Map<string, Zone>();
  readonly #connections = new Map<string, number>();
  readonly #maxKeys: number;

  constructor(maxKeysPerZone = DEFAULT_MAX_KEYS_PER_ZONE) {
    this.#maxKeys = maxKeysPerZone;
  }

  #zone(name: string): Zone {
    let zone = this.#zones.get(name);
    if (zone === undefined) {
      zone = new Zone(this.#maxKeys);
      this.#zones.set(name, zone);
    }
    return zone;
  }

  takeRequest(limits: readonly RequestLimit[], key: string, nowMs: number): boolean {
    // Two passes, so a request refused by one zone is charged to none (nginx undoes the others too).
    let first = -1;
    let second = -1;
    for (let i = 0; i < limits.length; i += 1) {
      const limit = limits[i]!;
      const excess = leak(this.#zone(limit.zone).get(key), limit, nowMs);
      if (excess < 0) return false;
      if (i === 0) first = excess;
      else if (i === 1) second = excess;
    }
    for (let i = 0; i < limits.length; i += 1) {
      const limit = limits[i]!;
      const zone = this.#zone(limit.zone);
      const excess = i === 0 ? first : i === 1 ? second : leak(zone.get(key), limit, nowMs);
      zone.put(key, excess, nowMs);
    }
    return true;
  }

  acquireConnection(zone: string, key: string, limit: number): boolean {
    const id = `${zone}\u0000${key}`;
    const count = this.#connections.get(id) ?? 0;
    if (count >= limit) return false;
    this.#connections.set(id, count + 1);
    return true;
  }

  releaseConnection(zone: string, key: string): void {
    const id = `${zone}\u0000${key}`;
    const count = this.#connections.get(id) ?? 0;
    if (count <= 1) this.#connections.delete(id);
    else this.#connections.set(id, count - 1);
  }

  /** Buckets held in a zone (for tests and metrics). */
  zoneSize(zone: string): number {
    return this.#zones.get(zone)?.size ?? 0;
  }

  /** Keys with requests in progress. */
  get connectionKeys(): number {
    return this.#connections.size;
  }
}
