// The dashboard's memory of recent requests: a DecisionSink (src/gateway/exchange.ts) the gateway
// calls at the end of every request. record() runs on the data path, so it only copies a few
// references into a fixed ring, bumps per-second counters and returns: it never allocates more than
// one small object, never throws, never waits. Under load it samples (a budget of kept records per
// second, apart for allowed requests and denials, so a flood of one never hides the other); the
// counters behind the charts stay exact. Subscribers (the SSE streams) are fed from a timer, off the
// request path.
import type { LocationModel } from '../config/model.ts';
import type { Exchange, ExchangeVerdict, GatewayRequest } from './exchange.ts';
import { type ClientIp, readsForwardedHeader } from '../net/client-ip.ts';

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
  /** Whether the settings read the forwarded-for header at all (use-forwarded-headers, or enable-real-ip without PROXY). */
  readonly readsForwardedFor: boolean;
  /** use-forwarded-headers: X-Forwarded-Host/-Proto/-Port are believed from a trusted hop. */
  readonly useForwardedHeaders: boolean;
  readonly trustedCidrs: readonly string[];
  readonly trustSource: string;
  readonly useProxyProtocol: boolean;
  readonly method: string;
  readonly target: string;
  readonly host: string;
  readonly serverName: string;
  readonly location: RecordLocation | null;
  readonly matchedBy: string | null;
  /** The location whose rules gave the verdict, when it is not the routed one (a guard, see router.ts). */
  readonly decidedBy: RecordLocation | null;
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
  /** With --workers: the slot of the worker that served it (null: this process served it). */
  readonly worker: number | null;
}

/**
 * What the dashboard shows of a location. In one process a record holds the LocationModel itself (a
 * reference, nothing copied); a worker's record carries these fields copied (decision-forwarder.ts).
 */
export interface RecordLocation {
  readonly ingress: { readonly namespace: string; readonly name: string };
  readonly path: string;
  readonly pathType: LocationModel['pathType'];
  readonly allow: LocationModel['allow'];
  readonly deny: LocationModel['deny'];
  readonly backend: {
    readonly service: { readonly namespace: string; readonly name: string };
    readonly port: number | string;
    readonly upstreamName: string;
  } | null;
}

/**
 * What a worker's decision forwarder sends its primary every flush (decision-forwarder.ts): the records
 * it kept, and the exact counts of everything it saw since the last batch. DecisionLog.ingest adds it.
 */
export interface DecisionBatch {
  worker: number;
  /** Kept records, oldest first; their ids are the worker's (the primary's log gives its own). */
  records: DecisionRecord[];
  /** [second, route key (routeKey), requests, denials]. */
  routes: [number, string, number, number][];
  /** [address, denials, last denied (ms)]. */
  denied: [string, number, number][];
  /** Denials of addresses the batch had no room left to name (counted, not attributed). */
  deniedUnnamed: number;
  seen: number;
  sampledOut: number;
  failures: number;
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
  /** With --workers: adds a worker's batch (its counts exactly; its records under this log's budget). */
  ingest(batch: DecisionBatch): void;
  close(): void;
}

/** The key the charts group a request by: its Ingress and path, or "_" when no rule matched. */
export function routeKey(location: RecordLocation | null): string {
  return location === null ? '_' : `${location.ingress.namespace}/${location.ingress.name} ${location.path}`;
}

/** Client-written text kept in a record: the first 512 characters, and … when there were more. */
function cut(text: string): string {
  return text.length > 512 ? `${text.slice(0, 512)}…` : text;
}

function headerValue(req: GatewayRequest, name: string): string | null {
  const value = req.headers[name];
  if (value === undefined) return null;
  return cut(Array.isArray(value) ? value.join(', ') : value);
}

/** The record of one finished request (references to the snapshot's frozen objects, and copies). */
export function toRecord(
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
    readsForwardedFor: readsForwardedHeader(snap.settings),
    useForwardedHeaders: snap.settings.useForwardedHeaders,
    trustedCidrs: snap.trustedCidrs,
    trustSource: snap.trustSource,
    useProxyProtocol: snap.settings.useProxyProtocol,
    method: req.method ?? '',
    target: (req.url ?? '').slice(0, 2048),
    // A name is at most 253 characters: a longer Host is the client's filler, held 1,000 times over.
    host: cut(ex.host),
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
    denied: isDenial(ex),
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
    worker: null,
  };
}

/** Whether a denial of the access phase (a source list, a limit, authentication) ended the request. */
export function isDenial(ex: Exchange): boolean {
  return ex.verdict !== null && ex.verdict.outcome !== 'allow';
}

/** Seconds the keep budget remembers: workers' batches (every 200 ms) name a few seconds at once. */
const BUDGET_SECONDS = 8;

/**
 * The keep budget: at most `keep` allowed and `keepDenied` denied records per second (the clock
 * second of each record's `time`), apart, so that a flood of one never hides the other. Each of the
 * last BUDGET_SECONDS seconds has its own count, so records of one second arriving after the next
 * one began (two workers' batches) still share their second's budget.
 */
export function createSampler(keep: number, keepDenied: number): (time: number, denied: boolean) => boolean {
  const slots = Array.from({ length: BUDGET_SECONDS }, () => ({ second: -1, kept: 0, keptDenied: 0 }));
  return (time, denied) => {
    const second = Math.floor(time / 1000);
    const slot = slots[second % BUDGET_SECONDS]!;
    // Another second in this slot: a newer one moves on; an older one (a record 8 s late, or the
    // clock set back) starts over too, so that a clock step never stops the keeping.
    if (slot.second !== second) {
      slot.second = second;
      slot.kept = 0;
      slot.keptDenied = 0;
    }
    if (denied ? slot.keptDenied >= keepDenied : slot.kept >= keep) return false;
    if (denied) slot.keptDenied += 1;
    else slot.kept += 1;
    return true;
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
      // Workers' batches may arrive out of order: the latest denial stays the last one.
      if (time > entry.last) entry.last = time;
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

/** Requests and denials of one route in one second. */
export interface RouteCount {
  requests: number;
  denials: number;
}

/** A second's routes, keyed by the location object (no string is built per request) or a worker's route key. */
export interface RouteSecond {
  second: number;
  routes: Map<RecordLocation | string | null, RouteCount>;
}

/**
 * Per-second, per-route counts: the last `secondsKept` seconds, oldest first. Counts usually land in
 * the newest second; a worker's batch may name an earlier one, which is found (or put in its place)
 * from the end, and one older than the window is dropped.
 */
export function createRouteSeconds(secondsKept: number) {
  const buckets: RouteSecond[] = [];
  const bucketOf = (second: number): RouteSecond | null => {
    const newest = buckets[buckets.length - 1];
    if (newest !== undefined && newest.second === second) return newest;
    let at = buckets.length;
    while (at > 0 && buckets[at - 1]!.second > second) at -= 1;
    if (at > 0 && buckets[at - 1]!.second === second) return buckets[at - 1]!;
    if (at === 0 && buckets.length >= secondsKept) return null;
    const fresh: RouteSecond = { second, routes: new Map() };
    buckets.splice(at, 0, fresh);
    if (buckets.length > secondsKept) buckets.shift();
    return fresh;
  };
  return {
    buckets,
    add(second: number, key: RecordLocation | string | null, requests: number, denials: number): void {
      const bucket = bucketOf(second);
      if (bucket === null) return;
      let counts = bucket.routes.get(key);
      if (counts === undefined) {
        counts = { requests: 0, denials: 0 };
        bucket.routes.set(key, counts);
      }
      counts.requests += requests;
      counts.denials += denials;
    },
  };
}

/** The counts behind the charts: exact per second and route; the most denied addresses (bounded). */
function createTallies(secondsKept: number, maxDenied: number, counters: Counters) {
  const routes = createRouteSeconds(secondsKept);
  const denied = new DeniedTable(maxDenied, counters);
  return {
    buckets: routes.buckets,
    denied,
    count(time: number, key: RecordLocation | string | null, requests: number, denials: number): void {
      routes.add(Math.floor(time / 1000), key, requests, denials);
    },
    /** `times` denials of `address`, the last at `time`. */
    countDenied(address: string, time: number, times = 1): void {
      counters.denied += times;
      for (let i = 0; i < times; i += 1) denied.count(address, time);
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

const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/** A batch as a worker sends it: counts that are counts, before any of it is added (the counters stay sane). */
function isBatch(batch: DecisionBatch): boolean {
  const b = batch as Partial<DecisionBatch> | null;
  return (
    typeof b === 'object' &&
    b !== null &&
    [b.seen, b.sampledOut, b.failures, b.deniedUnnamed].every(isCount) &&
    Array.isArray(b.records) &&
    b.records.every((r) => typeof r === 'object' && r !== null && typeof r.time === 'number') &&
    Array.isArray(b.routes) &&
    b.routes.every(
      (r) => Array.isArray(r) && isCount(r[0]) && typeof r[1] === 'string' && isCount(r[2]) && isCount(r[3]),
    ) &&
    Array.isArray(b.denied) &&
    b.denied.every((d) => Array.isArray(d) && typeof d[0] === 'string' && isCount(d[1]) && isCount(d[2]))
  );
}

/** The kept records: a ring of `capacity`, each under the id it was given here. */
function createRing(capacity: number) {
  const ring: (DecisionRecord | undefined)[] = new Array(capacity);
  let nextId = 1;
  return {
    /** Keeps a record under the next id. */
    keep(record: DecisionRecord): void {
      const id = nextId++;
      ring[id % capacity] = record.id === id ? record : { ...record, id };
    },
    nextId: () => nextId,
    after(afterId: number): DecisionRecord[] {
      const out: DecisionRecord[] = [];
      for (let id = Math.max(afterId + 1, nextId - capacity); id < nextId; id += 1) {
        const record = ring[id % capacity];
        if (record !== undefined && record.id === id) out.push(record);
      }
      return out;
    },
    find(id: number): DecisionRecord | undefined {
      const record = ring[id % capacity];
      return record !== undefined && record.id === id ? record : undefined;
    },
  };
}

/** Per-second route counts named by route key (a location and a worker's key for it are one route). */
function namedSeconds(buckets: readonly RouteSecond[]): SecondBucket[] {
  return buckets.map((b) => {
    const routes = new Map<string, { requests: number; denials: number }>();
    for (const [location, counts] of b.routes) {
      const key = typeof location === 'string' ? location : routeKey(location);
      const sum = routes.get(key) ?? { requests: 0, denials: 0 };
      routes.set(key, { requests: sum.requests + counts.requests, denials: sum.denials + counts.denials });
    }
    return { second: b.second, routes };
  });
}

export function createDecisionLog(options: DecisionLogOptions = {}): DecisionLog {
  const capacity = Math.max(1, options.capacity ?? 1000);
  const now = options.now ?? Date.now;
  const ring = createRing(capacity);
  const counters: Counters = { seen: 0, kept: 0, sampledOut: 0, denied: 0, otherDenied: 0, failures: 0 };
  const tallies = createTallies(options.seconds ?? 60, options.maxDeniedAddresses ?? 10_000, counters);
  const admit = createSampler(options.keepPerSecond ?? 100, options.keepDeniedPerSecond ?? 100);
  let behind: BehindLookup | null = null;
  const keep = (time: number, denied: boolean, record: () => DecisionRecord): void => {
    if (!admit(time, denied)) {
      counters.sampledOut += 1;
      return;
    }
    ring.keep(record());
    counters.kept += 1;
  };

  const sink = {
    record(ex: Exchange, req: GatewayRequest, status: number): void {
      try {
        counters.seen += 1;
        const time = now();
        const denied = isDenial(ex);
        tallies.count(time, ex.route?.location ?? null, 1, denied ? 1 : 0);
        if (denied) tallies.countDenied(ex.client === '' ? '-' : ex.client, time);
        keep(time, denied, () => toRecord(ring.nextId(), time, ex, req, status, behind));
      } catch {
        counters.failures += 1;
      }
    },
  };
  const ingest = (batch: DecisionBatch): void => {
    if (!isBatch(batch)) {
      counters.failures += 1;
      return;
    }
    try {
      counters.seen += batch.seen;
      counters.sampledOut += batch.sampledOut;
      counters.failures += batch.failures;
      for (const [second, route, requests, denials] of batch.routes)
        tallies.count(second * 1000, route, requests, denials);
      for (const [address, times, last] of batch.denied) tallies.countDenied(address, last, times);
      counters.denied += batch.deniedUnnamed;
      counters.otherDenied += batch.deniedUnnamed;
      for (const record of batch.records) keep(record.time, record.denied, () => record);
    } catch {
      counters.failures += 1;
    }
  };
  const fanOut = createFanOut(ring.after, () => ring.nextId() - 1, options.flushMs ?? 200, counters);

  return {
    sink,
    ingest,
    records: () => ring.after(0),
    find: ring.find,
    seconds: () => namedSeconds(tallies.buckets),
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
