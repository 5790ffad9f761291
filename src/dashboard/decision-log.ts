// The dashboard's memory of recent requests: a DecisionSink (src/gateway/exchange.ts) the gateway
// calls at the end of every request. record() runs on the data path, so it only copies a few
// references into a fixed ring, bumps per-second counters and returns: it never allocates more than
// one small object, never throws, never waits. Under load it samples (a budget of kept records per
// second, apart for allowed requests and denials, so a flood of one never hides the other); the
// counters behind the charts stay exact. Subscribers (the SSE streams) are fed from a timer, off the
// request path.
import type { LocationModel } from '../config/model.ts';
import type { Exchange, ExchangeVerdict, GatewayRequest } from '../gateway/exchange.ts';
import type { ClientIp } from '../net/client-ip.ts';

/** One finished request as the dashboard keeps it: copies and references to frozen config, no headers but one. */
export interface DecisionRecord {
  readonly id: number;
  readonly time: number;
  readonly connection: number;
  readonly peer: string;
  readonly peerPort: number;
  readonly proxySource: string | null;
  readonly proxyPort: number | null;
  readonly listener: { readonly address: string; readonly port: number; readonly scheme: 'http' | 'https' };
  /** The resolved client ('' when it cannot be known). */
  readonly client: string;
  readonly clientIp: ClientIp | null;
  /** The forwarded-for header's value as received (only the header the resolver reads), cut to 512 chars. */
  readonly forwardedFor: string | null;
  readonly forwardedForHeader: string;
  readonly trustedCidrs: readonly string[];
  readonly trustSource: string;
  readonly useProxyProtocol: boolean;
  readonly method: string;
  readonly target: string;
  readonly host: string;
  readonly serverName: string;
  readonly location: LocationModel | null;
  readonly matchedBy: string | null;
  /** The location whose rules gave the verdict, when it is not the routed one (a guard, see router.ts). */
  readonly decidedBy: LocationModel | null;
  readonly blockCidrs: LocationModel['allow'];
  readonly upstream: string | null;
  readonly upstreamAddr: string | null;
  readonly verdict: ExchangeVerdict | null;
  readonly status: number;
  readonly denied: boolean;
  readonly durationMs: number;
  readonly reqId: string;
  readonly configVersion: number;
  /** keepip up: who the L4 hops in front say this connection carries, outermost last (null: unknown). */
  readonly behind: readonly BehindHop[] | null;
}

/** One L4 hop of keepip up and the client of the flow that carried the connection. */
export interface BehindHop {
  readonly via: string;
  readonly client: string;
  readonly port: number;
}

/** Who is behind a connection from `peer` to `listener`, asked of the L4 hops that run in this process. */
export type BehindLookup = (
  peer: { address: string; port: number },
  listener: { address: string; port: number },
) => readonly BehindHop[] | null;

export interface DecisionLogOptions {
  /** Records kept (default 1000). */
  capacity?: number;
  /** Allowed requests kept per second at most (default 100); the rest are counted, not kept. */
  keepPerSecond?: number;
  /** Denied requests kept per second at most (default 100). */
  keepDeniedPerSecond?: number;
  /** How often subscribers are fed (default 200 ms). */
  flushMs?: number;
  /** Seconds of per-route counters kept for the charts (default 60). */
  seconds?: number;
  /**
   * Denied addresses tracked at most (default 10,000). When the table is full a new address takes the
   * place of the least denied one (Space-Saving, see DeniedTable): memory stays bounded and a heavy
   * hitter that comes late still gets in.
   */
  maxDeniedAddresses?: number;
  /** The clock (tests). */
  now?: () => number;
}

export interface SecondBucket {
  second: number;
  /** Route key ("namespace/ingress path", or "_" for no route) -> counts. */
  routes: Map<string, { requests: number; denials: number }>;
}

/**
 * One denied address. `count` denials surely came from it (a lower bound); it may have had up to
 * `count + error`: `error` is what the address inherited when it took the place of an evicted one in a
 * full table (0 when it got a free slot: then `count` is exact for as long as it stays in the table).
 */
export interface DeniedCount {
  address: string;
  count: number;
  error: number;
  /** When it was last denied (ms). */
  last: number;
}

export interface DecisionLog {
  /** The sink to hand to the gateway (GatewayOptions.decisions). */
  readonly sink: { record(ex: Exchange, req: GatewayRequest, status: number): void };
  /** The records kept, oldest first. */
  records(): DecisionRecord[];
  find(id: number): DecisionRecord | undefined;
  /** Per-second counters, oldest first (only seconds that saw a request). */
  seconds(): SecondBucket[];
  /** The most denied addresses, most surely denied first (see DeniedCount). */
  topDenied(limit: number): DeniedCount[];
  readonly counters: {
    seen: number;
    kept: number;
    sampledOut: number;
    denied: number;
    /**
     * Denials no longer attributed to an address: the surely-counted denials (`count`) of the addresses
     * the denied table evicted. `denied` = the `count`s of every address still tracked + `otherDenied`.
     */
    otherDenied: number;
    failures: number;
  };
  readonly capacity: number;
  /** Called with each batch of new records (from a timer); returns the unsubscribe function. */
  subscribe(listener: (batch: DecisionRecord[]) => void): () => void;
  /** keepip up: ask its L4 hops who a kept request's connection carries (O(open flows), kept records only). */
  setBehind(lookup: BehindLookup | null): void;
  close(): void;
}

/** The key the charts group a request by: its Ingress and path, or "_" when no rule matched. */
export function routeKey(location: LocationModel | null): string {
  return location === null ? '_' : `${location.ingress.namespace}/${location.ingress.name} ${location.path}`;
}

function headerValue(req: GatewayRequest, name: string): string | null {
  const value = req.headers[name];
  if (value === undefined) return null;
  const text = Array.isArray(value) ? value.join(', ') : value;
  return text.length > 512 ? `${text.slice(0, 512)}…` : text;
}

function toRecord(
  id: number,
  time: number,
  ex: Exchange,
  req: GatewayRequest,
  status: number,
  behind: BehindLookup | null,
): DecisionRecord {
  const { conn, snap, route } = ex;
  const verdict = ex.verdict;
  const forwardedForHeader = snap.settings.forwardedForHeader;
  const last = ex.attempts.length === 0 ? null : ex.attempts[ex.attempts.length - 1];
  return {
    id,
    time,
    connection: conn.id,
    peer: conn.peerAddress,
    peerPort: conn.peerPort,
    proxySource: conn.proxySource,
    proxyPort: conn.proxyPort,
    listener: { address: conn.serverAddress, port: conn.serverPort, scheme: conn.scheme },
    client: ex.client,
    clientIp: ex.clientIp,
    forwardedFor: headerValue(req, forwardedForHeader.toLowerCase()),
    forwardedForHeader,
    trustedCidrs: snap.trustedCidrs,
    trustSource: snap.trustSource,
    useProxyProtocol: snap.settings.useProxyProtocol,
    method: req.method ?? '',
    target: (req.url ?? '').slice(0, 2048),
    host: ex.host,
    serverName: ex.serverName,
    location: route?.location ?? null,
    matchedBy: route?.matchedBy ?? null,
    decidedBy:
      ex.decidedBy !== null && route !== null && ex.decidedBy.location !== route.location
        ? ex.decidedBy.location
        : null,
    blockCidrs: snap.settings.blockCidrs,
    upstream: ex.upstreamName,
    upstreamAddr: last?.addr ?? last?.hostPort ?? null,
    verdict,
    status,
    denied: verdict !== null && verdict.outcome !== 'allow',
    durationMs: performance.now() - ex.startedAt,
    reqId: ex.reqId,
    configVersion: snap.version,
    behind:
      behind === null
        ? null
        : behind(
            { address: conn.peerAddress, port: conn.peerPort },
            { address: conn.serverAddress, port: conn.serverPort },
          ),
  };
}

type Counters = DecisionLog['counters'];

/** One tracked address: `count` over-counts by at most `error`. Linked in its bucket, newest first. */
interface DeniedEntry {
  address: string;
  count: number;
  error: number;
  last: number;
  bucket: DeniedBucket;
  newer: DeniedEntry | null;
  older: DeniedEntry | null;
}

/** The entries of one count, in a list of buckets by increasing count. */
interface DeniedBucket {
  count: number;
  newest: DeniedEntry | null;
  oldest: DeniedEntry | null;
  lower: DeniedBucket | null;
  higher: DeniedBucket | null;
}

/**
 * The most denied addresses in bounded memory: Space-Saving (Metwally, Agrawal and El Abbadi, "Efficient
 * computation of frequent and top-k elements in data streams", 2005). At most `max` addresses are
 * tracked; a new one arriving at a full table takes the place of the entry with the smallest count
 * (the least recently denied of those), starting from that count + 1 with `error` = that count. So an
 * address denied more than (denials / max) times is always in the table, one that entered a full table
 * shows its own denials exactly as `count - error`, and one that got a free slot and was never evicted is
 * counted exactly. The entries sit in the paper's "stream summary": a list of buckets by count, each a
 * list of its entries, most recently moved in first. A denial moves one entry to the next bucket: a Map
 * lookup and a few pointer writes, O(1), never a scan; an eviction reuses the evicted entry.
 */
class DeniedTable {
  private readonly byAddress = new Map<string, DeniedEntry>();
  /** The bucket of the smallest count. */
  private least: DeniedBucket | null = null;
  /** One emptied bucket kept for the next new count (most moves empty one bucket and start one). */
  private spare: DeniedBucket | null = null;

  private readonly max: number;
  private readonly counters: Counters;

  constructor(max: number, counters: Counters) {
    this.max = max;
    this.counters = counters;
  }

  count(address: string, time: number): void {
    const entry = this.byAddress.get(address);
    if (entry !== undefined) {
      entry.last = time;
      this.bump(entry);
    } else if (this.byAddress.size < this.max) {
      const bucket = this.least !== null && this.least.count === 1 ? this.least : this.bucketAfter(null, 1);
      const fresh: DeniedEntry = {
        address,
        count: 1,
        error: 0,
        last: time,
        bucket,
        newer: null,
        older: null,
      };
      this.byAddress.set(address, fresh);
      this.push(bucket, fresh);
    } else if (this.least === null) this.counters.otherDenied += 1;
    else {
      const evicted = this.least.oldest!;
      this.byAddress.delete(evicted.address);
      this.counters.otherDenied += evicted.count - evicted.error;
      evicted.address = address;
      evicted.error = evicted.count;
      evicted.last = time;
      this.byAddress.set(address, evicted);
      this.bump(evicted);
    }
  }

  /** The `limit` most surely denied (largest `count - error`), then by upper bound, then most recent. */
  top(limit: number): DeniedCount[] {
    return [...this.byAddress.values()]
      .map((e) => ({ address: e.address, count: e.count - e.error, error: e.error, last: e.last }))
      .sort((a, b) => b.count - a.count || b.error - a.error || b.last - a.last)
      .slice(0, limit);
  }

  /** One more denial of a tracked entry: to the bucket of count + 1. */
  private bump(entry: DeniedEntry): void {
    const from = entry.bucket;
    entry.count += 1;
    const to =
      from.higher !== null && from.higher.count === entry.count
        ? from.higher
        : this.bucketAfter(from, entry.count);
    this.unlink(entry);
    this.push(to, entry);
  }

  /** A new, empty bucket of `count` right above `below` (null: the lowest). */
  private bucketAfter(below: DeniedBucket | null, count: number): DeniedBucket {
    const bucket = this.spare ?? { count, newest: null, oldest: null, lower: null, higher: null };
    this.spare = null;
    bucket.count = count;
    bucket.lower = below;
    bucket.higher = below === null ? this.least : below.higher;
    if (bucket.higher !== null) bucket.higher.lower = bucket;
    if (below === null) this.least = bucket;
    else below.higher = bucket;
    return bucket;
  }

  private push(bucket: DeniedBucket, entry: DeniedEntry): void {
    entry.bucket = bucket;
    entry.newer = null;
    entry.older = bucket.newest;
    if (bucket.newest !== null) bucket.newest.newer = entry;
    else bucket.oldest = entry;
    bucket.newest = entry;
  }

  /** Takes an entry out of its bucket, and the bucket out of the list when it empties. */
  private unlink(entry: DeniedEntry): void {
    const bucket = entry.bucket;
    if (entry.newer !== null) entry.newer.older = entry.older;
    else bucket.newest = entry.older;
    if (entry.older !== null) entry.older.newer = entry.newer;
    else bucket.oldest = entry.newer;
    if (bucket.newest !== null) return;
    if (bucket.lower !== null) bucket.lower.higher = bucket.higher;
    else this.least = bucket.higher;
    if (bucket.higher !== null) bucket.higher.lower = bucket.lower;
    bucket.lower = null;
    bucket.higher = null;
    this.spare = bucket;
  }
}

/** The counts behind the charts: exact per second and route; the most denied addresses (bounded). */
function createTallies(secondsKept: number, maxDenied: number, counters: Counters) {
  // Keyed by the location object: no string is built per request (seconds() names them).
  type Bucket = { second: number; routes: Map<LocationModel | null, { requests: number; denials: number }> };
  const buckets: Bucket[] = [];
  let bucket: Bucket | null = null;
  const denied = new DeniedTable(maxDenied, counters);
  return {
    buckets,
    denied,
    /** Counts one request; true when it starts a new second (the sampling budgets reset). */
    count(time: number, key: LocationModel | null, isDenial: boolean): boolean {
      const second = Math.floor(time / 1000);
      let fresh = false;
      if (bucket === null || bucket.second !== second) {
        bucket = { second, routes: new Map() };
        buckets.push(bucket);
        if (buckets.length > secondsKept) buckets.shift();
        fresh = true;
      }
      let counts = bucket.routes.get(key);
      if (counts === undefined) {
        counts = { requests: 0, denials: 0 };
        bucket.routes.set(key, counts);
      }
      counts.requests += 1;
      if (isDenial) counts.denials += 1;
      return fresh;
    },
    countDenied(address: string, time: number): void {
      counters.denied += 1;
      denied.count(address, time);
    },
  };
}

/** Feeds subscribers the records kept since the last batch, from a timer that runs only while someone listens. */
function createFanOut(
  after: (id: number) => DecisionRecord[],
  lastId: () => number,
  flushMs: number,
  counters: Counters,
) {
  const listeners = new Set<(batch: DecisionRecord[]) => void>();
  let lastSent = 0;
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    const batch = after(lastSent);
    if (batch.length === 0) return;
    lastSent = batch[batch.length - 1]!.id;
    for (const listener of listeners) {
      try {
        listener(batch);
      } catch {
        counters.failures += 1;
      }
    }
  };
  const stop = () => {
    if (timer !== null) clearInterval(timer);
    timer = null;
  };
  return {
    subscribe(listener: (batch: DecisionRecord[]) => void): () => void {
      if (listeners.size === 0) {
        lastSent = lastId();
        timer = setInterval(flush, flushMs);
        timer.unref();
      }
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) stop();
      };
    },
    close(): void {
      listeners.clear();
      stop();
    },
  };
}

export function createDecisionLog(options: DecisionLogOptions = {}): DecisionLog {
  const capacity = Math.max(1, options.capacity ?? 1000);
  const keepPerSecond = options.keepPerSecond ?? 100;
  const keepDeniedPerSecond = options.keepDeniedPerSecond ?? 100;
  const now = options.now ?? Date.now;
  const ring: (DecisionRecord | undefined)[] = new Array(capacity);
  let nextId = 1;
  const counters: Counters = { seen: 0, kept: 0, sampledOut: 0, denied: 0, otherDenied: 0, failures: 0 };
  const tallies = createTallies(options.seconds ?? 60, options.maxDeniedAddresses ?? 10_000, counters);
  let keptThisSecond = 0;
  let deniedKeptThisSecond = 0;
  let behind: BehindLookup | null = null;

  const sink = {
    record(ex: Exchange, req: GatewayRequest, status: number): void {
      try {
        counters.seen += 1;
        const time = now();
        const isDenial = ex.verdict !== null && ex.verdict.outcome !== 'allow';
        if (tallies.count(time, ex.route?.location ?? null, isDenial)) {
          keptThisSecond = 0;
          deniedKeptThisSecond = 0;
        }
        if (isDenial) tallies.countDenied(ex.client === '' ? '-' : ex.client, time);
        if (isDenial ? deniedKeptThisSecond >= keepDeniedPerSecond : keptThisSecond >= keepPerSecond) {
          counters.sampledOut += 1;
          return;
        }
        if (isDenial) deniedKeptThisSecond += 1;
        else keptThisSecond += 1;
        const id = nextId++;
        ring[id % capacity] = toRecord(id, time, ex, req, status, behind);
        counters.kept += 1;
      } catch {
        counters.failures += 1;
      }
    },
  };

  const records = (afterId = 0): DecisionRecord[] => {
    const out: DecisionRecord[] = [];
    for (let id = Math.max(afterId + 1, nextId - capacity); id < nextId; id += 1) {
      const record = ring[id % capacity];
      if (record !== undefined && record.id === id) out.push(record);
    }
    return out;
  };
  const fanOut = createFanOut(records, () => nextId - 1, options.flushMs ?? 200, counters);

  return {
    sink,
    records: () => records(0),
    find(id) {
      const record = ring[id % capacity];
      return record !== undefined && record.id === id ? record : undefined;
    },
    seconds: () =>
      tallies.buckets.map((b) => {
        const routes = new Map<string, { requests: number; denials: number }>();
        for (const [location, counts] of b.routes) {
          const key = routeKey(location);
          const sum = routes.get(key) ?? { requests: 0, denials: 0 };
          routes.set(key, {
            requests: sum.requests + counts.requests,
            denials: sum.denials + counts.denials,
          });
        }
        return { second: b.second, routes };
      }),
    topDenied: (limit) => tallies.denied.top(limit),
    counters,
    capacity,
    subscribe: fanOut.subscribe,
    setBehind(lookup) {
      behind = lookup;
    },
    close: fanOut.close,
  };
}
