// A worker's side of the dashboard (--workers with --dashboard): the DecisionSink it hands its gateway.
// The decision log lives in the primary (it serves the dashboard); each worker counts what it serves,
// keeps records under the same budget, and sends the primary a batch every flush: the kept records
// with their locations copied (plain data crosses the IPC channel, not the snapshot's objects) and
// the exact counts since the last batch. Like the log's own sink, record() only counts and copies:
// it never throws, never waits, and what it holds between flushes is bounded.
import type { LocationModel } from '../config/model.ts';
import type { Exchange, GatewayRequest } from './exchange.ts';
import {
  createRouteSeconds,
  createSampler,
  type DecisionBatch,
  type DecisionRecord,
  isDenial,
  type RecordLocation,
  routeKey,
  toRecord,
} from './decision-log.ts';

export interface DecisionForwarderOptions {
  /** This worker's slot (the records say which worker served them). */
  worker: number;
  /** Hands a batch to the primary (the IPC channel). */
  send(batch: DecisionBatch): void;
  /** How often a batch goes out (default 200 ms). */
  flushMs?: number;
  /** The decision log's keep budgets (DecisionLogOptions). */
  keepPerSecond?: number;
  keepDeniedPerSecond?: number;
  /** Distinct denied addresses named per batch at most (default 10,000); the rest are counted unnamed. */
  maxDeniedAddresses?: number;
  now?: () => number;
}

export interface DecisionForwarder {
  readonly sink: { record(ex: Exchange, req: GatewayRequest, status: number): void };
  /** Sends what is pending now (a drain's last batch). */
  flush(): void;
  /** Flushes and stops the timer. */
  close(): void;
}

/** The fields of a location the dashboard shows, copied out of the snapshot. */
export function recordLocation(location: RecordLocation | null): RecordLocation | null {
  if (location === null) return null;
  const { ingress, path, pathType, allow, deny, backend } = location;
  return {
    ingress: { namespace: ingress.namespace, name: ingress.name },
    path,
    pathType,
    allow,
    deny,
    backend:
      backend === null
        ? null
        : {
            service: { namespace: backend.service.namespace, name: backend.service.name },
            port: backend.port,
            upstreamName: backend.upstreamName,
          },
  };
}

/** What a batch carries, gathered between two flushes. */
function createPending(maxDenied: number) {
  const routes = createRouteSeconds(Number.MAX_SAFE_INTEGER);
  const denied = new Map<string, [number, number]>();
  const pending = {
    records: [] as DecisionRecord[],
    deniedUnnamed: 0,
    seen: 0,
    sampledOut: 0,
    failures: 0,
    count(time: number, location: LocationModel | null, denial: boolean, client: string): void {
      pending.seen += 1;
      routes.add(Math.floor(time / 1000), location, 1, denial ? 1 : 0);
      if (!denial) return;
      const address = client === '' ? '-' : client;
      const entry = denied.get(address);
      if (entry !== undefined) {
        entry[0] += 1;
        entry[1] = time;
      } else if (denied.size < maxDenied) denied.set(address, [1, time]);
      else pending.deniedUnnamed += 1;
    },
    /** The batch of everything gathered, or null when nothing was; starts over. */
    take(worker: number): DecisionBatch | null {
      if (pending.seen === 0 && pending.failures === 0) return null;
      const batch: DecisionBatch = {
        worker,
        records: pending.records,
        routes: routes.buckets.flatMap((b) =>
          [...b.routes].map(([location, c]): [number, string, number, number] => [
            b.second,
            typeof location === 'string' ? location : routeKey(location),
            c.requests,
            c.denials,
          ]),
        ),
        denied: [...denied].map(([address, [times, last]]): [string, number, number] => [
          address,
          times,
          last,
        ]),
        deniedUnnamed: pending.deniedUnnamed,
        seen: pending.seen,
        sampledOut: pending.sampledOut,
        failures: pending.failures,
      };
      routes.buckets.length = 0;
      denied.clear();
      pending.records = [];
      pending.deniedUnnamed = pending.seen = pending.sampledOut = pending.failures = 0;
      return batch;
    },
  };
  return pending;
}

export function createDecisionForwarder(options: DecisionForwarderOptions): DecisionForwarder {
  const now = options.now ?? Date.now;
  const admit = createSampler(options.keepPerSecond ?? 100, options.keepDeniedPerSecond ?? 100);
  const pending = createPending(options.maxDeniedAddresses ?? 10_000);
  const flush = (): void => {
    const batch = pending.take(options.worker);
    if (batch === null) return;
    try {
      options.send(batch);
    } catch {
      // The primary is gone (the worker drains on its own then): nothing to tell.
    }
  };
  const timer = setInterval(flush, options.flushMs ?? 200);
  timer.unref();
  return {
    sink: {
      record(ex, req, status) {
        try {
          const time = now();
          const denial = isDenial(ex);
          pending.count(time, ex.route?.location ?? null, denial, ex.client);
          if (!admit(time, denial)) {
            pending.sampledOut += 1;
            return;
          }
          const record = toRecord(0, time, ex, req, status, null);
          pending.records.push({
            ...record,
            location: recordLocation(record.location),
            decidedBy: recordLocation(record.decidedBy),
            worker: options.worker,
          });
        } catch {
          pending.failures += 1;
        }
      },
    },
    flush,
    close() {
      clearInterval(timer);
      flush();
    },
  };
}
