// A gateway worker: serves the snapshot its primary handed it, on ports it shares with the other
// workers (SO_REUSEPORT), and takes part in reloads in two phases: `prepare` builds and checks the
// new snapshot, `commit` swaps it in, `abort` drops it. Its metrics are read by the primary, which
// serves their sum; its access and error log lines go out whole (file-line-sink.ts). Its rate and
// connection limits are counted by the primary (limiter-client.ts), so that the pod counts once.
// With the dashboard on, it forwards its decisions to the primary's decision log (decision-forwarder.ts).
import net from 'node:net';
import type { Topology } from '../config/model.ts';
import { useSharedLimiter } from '../gateway/access/stage.ts';
import { type GatewayOptions, type PreparedReload, startGateway } from '../gateway/gateway.ts';
import { createGatewayMetrics } from '../gateway/metrics.ts';
import { deepFreeze } from '../k8s/translate.ts';
import { createLimiterClient } from './limiter-client.ts';
import { CHANNEL_FD, type PostEvent, type ServedRole } from './protocol.ts';
import { createDecisionForwarder } from '../gateway/decision-forwarder.ts';
import { createFileLineSink } from '../gateway/file-line-sink.ts';

/** What a worker cannot be handed over IPC: sinks, registries, functions, the primary's own listeners. */
type LocalOnly =
  | 'accessLog'
  | 'errorLog'
  | 'metrics'
  | 'metricsListen'
  | 'upstreamAddress'
  | 'decisions'
  | 'lookup';

export interface GatewayWorkerInit {
  options: Omit<GatewayOptions, LocalOnly>;
  /** --access-log FILE, or null for stdout. */
  accessLogPath: string | null;
  /** The primary's limiter on CHANNEL_FD, and how long to wait for its verdicts. */
  limiter: { deadlineMs: number };
  /** The dashboard is on: send decision batches (topic DECISIONS_TOPIC) this often; null: off. */
  decisions: { flushMs: number } | null;
}

/** The event topic of the dashboard's decision batches (DecisionBatch). */
export const DECISIONS_TOPIC = 'decisions';

export interface PrepareCall {
  topology: Topology;
  version: number;
}

export async function serve(init: GatewayWorkerInit, slot: number, post: PostEvent): Promise<ServedRole> {
  const accessLog = createFileLineSink(
    init.accessLogPath === null ? { fd: 1 } : { path: init.accessLogPath },
  );
  const errorLog = createFileLineSink({ fd: 2 });
  const metrics = createGatewayMetrics();
  const channel = new net.Socket({ fd: CHANNEL_FD, readable: true, writable: true });
  const limiter = createLimiterClient(channel, init.limiter);
  useSharedLimiter(limiter);
  const decisions =
    init.decisions === null
      ? null
      : createDecisionForwarder({
          worker: slot,
          flushMs: init.decisions.flushMs,
          send: (batch) => post(DECISIONS_TOPIC, batch),
        });
  const running = await startGateway({
    ...init.options,
    // Cloned over IPC, so no longer frozen: the snapshot's promise of an immutable model holds again.
    topology: deepFreeze(init.options.topology),
    accessLog,
    errorLog,
    metrics,
    reusePort: true,
    ...(decisions === null ? {} : { decisions: decisions.sink }),
  });
  const prepared = new Map<number, PreparedReload>();
  const settle = (version: number, how: 'commit' | 'abort'): boolean => {
    const entry = prepared.get(version);
    prepared.delete(version);
    entry?.[how]();
    return entry !== undefined;
  };
  return {
    info: { http: running.httpAddress, https: running.httpsAddress, pid: process.pid },
    methods: {
      prepare(arg) {
        const { topology, version } = arg as PrepareCall;
        const result = running.prepare(deepFreeze(topology), version);
        if (!result.ok) return { ok: false, code: result.error.code, message: result.error.message };
        prepared.set(version, result.prepared);
        return { ok: true };
      },
      commit: (arg) => settle((arg as { version: number }).version, 'commit'),
      abort: (arg) => settle((arg as { version: number }).version, 'abort'),
      metrics: () => metrics.registry.getMetricsAsJSON(),
      reopenLogs: () => accessLog.reopen?.(),
      // The first step of a stop, answered once the listeners are closed (drain follows).
      stopAccepting: () => running.stopAccepting(),
    },
    async drain() {
      await running.close();
      decisions?.close();
      limiter.close();
      await accessLog.close();
      await errorLog.close();
    },
  };
}
