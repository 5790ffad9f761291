// `keepip gateway --workers N` (and `keepip controller`): the primary's side. The configuration is
// loaded and checked once, here (the same buildSnapshot the workers run), then handed to every
// worker (a structured clone of the Topology over IPC). A reload is atomic across workers in two
// phases: every worker builds the new snapshot (prepare), and only when all could does each swap it
// in (commit); an invalid configuration is refused here before any worker sees it, and a worker that
// cannot prepare aborts the reload everywhere. The workers share the listening ports (SO_REUSEPORT),
// the primary serves one /metrics with their sum and owns the signals; it serves no traffic itself.
// With the dashboard on, the decision log lives here and the workers send it their decisions.
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { ConfigIssue, Topology } from '../config/model.ts';
import {
  type GatewayOptions,
  GatewayStartError,
  type ReloadResult,
  type RunningGateway,
} from '../gateway/gateway.ts';
import type { ReopenResult } from '../gateway/line-sink.ts';
import { createGatewayMetrics, type GatewayMetrics } from '../gateway/metrics.ts';
import { buildSnapshot, type GatewaySnapshot, ownTicketKey } from '../gateway/snapshot.ts';
import { type KeyPair, listenerDefaultCertificate } from '../gateway/tls.ts';
import { ConnectionRegistry } from '../gateway/upstream.ts';
import { type MetricsServer, startMetricsServer } from '../observability/metrics-server.ts';
import type { DecisionBatch } from '../gateway/decision-log.ts';
import { DECISIONS_TOPIC, type GatewayWorkerInit, type PrepareCall } from './gateway-worker.ts';
import { createLimiterHost, type LimiterHost } from './limiter-host.ts';
import { MAX_HOLD_MS } from './limiter-wire.ts';
import { DEFAULT_LIMITER_DEADLINE_MS } from './limiter-client.ts';
import { aggregatedMetrics, type MetricsSource, registerPoolMetrics } from './metrics.ts';
import { createWorkerPool, type PoolEvent, type WorkerPool } from './pool.ts';
import { DEFAULT_WATCHDOG_MS } from './watchdog.ts';
import { type ReservedPort, reservePort } from './ports.ts';

export interface WorkerGatewayOptions
  extends Omit<
    GatewayOptions,
    'accessLog' | 'errorLog' | 'upstreamAddress' | 'lookup' | 'decisions' | 'reusePort' | 'version'
  > {
  workers: number;
  /** --access-log FILE (each worker appends to it), or null for stdout (inherited). */
  accessLogPath: string | null;
  /** Worker exits and restarts. */
  log(event: PoolEvent): void;
  /** How long a worker waits for the primary's limiter (limiter-client.ts); default 1 s. */
  limiterDeadlineMs?: number;
  /** --dashboard: the decision log the workers' decisions go to (decision-forwarder.ts); absent: off. */
  decisionLog?: { ingest(batch: DecisionBatch): void };
  /** --worker-watchdog: how long a worker may say nothing before it is replaced (default 10 s). */
  watchdogMs?: number;
}

/** How often a worker sends its decisions to the primary's log (the dashboard's own refresh rate). */
const DECISIONS_FLUSH_MS = 200;

export type WorkerReloadResult =
  | ReloadResult
  | {
      ok: false;
      version: number;
      error: { code: 'WORKER_RELOAD_ABORTED'; message: string; issues: readonly ConfigIssue[] };
    };

export interface WorkerGateway extends Omit<RunningGateway, 'reload' | 'prepare'> {
  readonly workers: number;
  /**
   * The workers' metrics summed, with the primary's registry (what `/metrics` serves); a replaced
   * worker's counters stay in the sum (metrics.ts, retainMonotonic).
   */
  readonly metricsSource: MetricsSource;
  /** The workers' process ids, by slot. */
  pids(): number[];
  /** SIGUSR1: every worker reopens its --access-log file; the workers that could not, with why. */
  reopenLogs(): Promise<{ workers: number; failed: string[] }>;
  /** Resolves once every worker serves the new version (or none does); ends any limiter hold. */
  reload(topology: Topology): Promise<WorkerReloadResult>;
  /**
   * Call before building the next topology here (it blocks this thread): the workers' limiter checks
   * wait up to MAX_HOLD_MS for the primary's answers instead of failing closed after the usual
   * deadline. The reload ends the hold; so does endLimiterHold (when no reload follows).
   */
  holdLimiter(): void;
  endLimiterHold(): void;
}

/** One process or a primary with workers: what keepip controller serves through. */
export type ServedGateway = RunningGateway | WorkerGateway;

/** `own` rendered alone, or with the workers' metrics summed once a primary with workers serves. */
export function servedMetrics(gateway: () => ServedGateway | null, own: Registry): MetricsSource {
  return {
    contentType: own.contentType,
    metrics() {
      const served = gateway();
      return served !== null && 'metricsSource' in served ? served.metricsSource.metrics() : own.metrics();
    },
  };
}

/** Metrics counted once per pod by the primary; the workers' copies are left out of the sum. */
const PRIMARY_OWNED = new Set([
  'keepip_gateway_config_reloads_total',
  'keepip_gateway_config_version',
  // ingress-nginx's reload metrics (src/gateway/reload-metrics.ts).
  'nginx_ingress_controller_config_hash',
  'nginx_ingress_controller_config_last_reload_successful',
  'nginx_ingress_controller_config_last_reload_successful_timestamp_seconds',
  'nginx_ingress_controller_success',
  'nginx_ingress_controller_errors',
]);

/** What the primary serves: the committed configuration, and how to check the next one. */
interface PrimaryState {
  version: number;
  topology: Topology;
  current: GatewaySnapshot;
  readonly metrics: GatewayMetrics;
  readonly connections: ConnectionRegistry;
  check(topology: Topology, version: number): ReturnType<typeof buildSnapshot>;
  /** How long the last check took here: a worker's build of the same configuration takes about as long. */
  readonly lastCheck: { ms: number };
  draining: boolean;
}

/** A worker building a configuration is given this many times the primary's own check of it. */
const BUILD_ALLOWANCE_FACTOR = 10;

export async function startGatewayWorkers(options: WorkerGatewayOptions): Promise<WorkerGateway> {
  if (!options.http && !options.https) throw new TypeError('startGatewayWorkers: give http and/or https');
  const state = checkFirst(options);
  const defaultCertificate = await listenerDefaultCertificate(options);
  const { pool, info, limiter } = await startPool(options, state, defaultCertificate);
  const { metrics } = state;
  registerPoolMetrics(metrics.registry, pool, options.workers);
  const metricsSource = aggregatedMetrics(metrics.registry, pool, { primaryOwned: PRIMARY_OWNED });
  let metricsServer: MetricsServer | null = null;
  if (options.metricsListen) {
    try {
      metricsServer = await startMetricsServer({
        ...options.metricsListen,
        registry: metricsSource,
        healthy: () => !state.draining && pool.serving() > 0,
      });
    } catch (error) {
      await pool.stop();
      throw error;
    }
  }
  let closing: Promise<void> | null = null;
  return {
    httpAddress: info.http,
    httpsAddress: info.https,
    metricsAddress: metricsServer?.address ?? null,
    metrics,
    metricsSource,
    workers: options.workers,
    pids: () => pool.pids(),
    async reopenLogs() {
      const answers = await pool.broadcast('reopenLogs');
      const failed: string[] = [];
      for (const a of answers) {
        // A worker gone meanwhile: its replacement opens the path afresh.
        if (!a.ok) {
          if (!a.gone) failed.push(`worker ${a.slot}: ${a.message}`);
          continue;
        }
        const result = a.value as ReopenResult | null;
        if (result?.ok === false) failed.push(`worker ${a.slot}: ${result.message}`);
      }
      return { workers: answers.length, failed };
    },
    snapshot: () => state.current,
    reload: (next) =>
      pool.exclusive(async () => {
        // The snapshot check and the hand-over to each worker block this thread too.
        limiter.hold(MAX_HOLD_MS);
        try {
          return await reload(state, pool, next);
        } finally {
          limiter.hold(0);
        }
      }),
    holdLimiter: () => limiter.hold(MAX_HOLD_MS),
    endLimiterHold: () => limiter.hold(0),
    stopAccepting() {
      state.draining = true;
      return pool.stopAccepting();
    },
    close() {
      closing ??= (async () => {
        state.draining = true;
        await pool.stop();
        await metricsServer?.close();
        state.current.retire();
        await state.connections.closeAll(0);
      })();
      return closing;
    },
  };
}

/** The configuration loaded and checked once, here, with the same buildSnapshot the workers run. */
function checkFirst(options: WorkerGatewayOptions): PrimaryState {
  const connections = new ConnectionRegistry();
  const lastCheck = { ms: 0 };
  const check = (topology: Topology, version: number) => {
    const started = performance.now();
    const checked = buildSnapshot(topology, {
      version,
      trustedProxies: options.trustedProxies ?? null,
      logFormat: options.logFormat ?? 'text',
      connections,
    });
    lastCheck.ms = performance.now() - started;
    return checked;
  };
  const first = check(options.topology, 1);
  if (!first.ok) throw new GatewayStartError(first.error);
  const metrics = options.metrics ?? createGatewayMetrics();
  metrics.reload('applied', 1, options.topology);
  const { topology } = options;
  const current = first.snapshot;
  return { version: 1, topology, current, metrics, connections, check, lastCheck, draining: false };
}

/**
 * The workers, on the reserved ports, each handed the latest committed configuration when it is
 * forked (a restarted one too) and a channel to the primary's limiter (limiter-host.ts).
 */
async function startPool(
  options: WorkerGatewayOptions,
  state: PrimaryState,
  defaultCertificate: KeyPair | null,
): Promise<{
  pool: WorkerPool;
  info: { http: AddressInfo | null; https: AddressInfo | null };
  limiter: LimiterHost;
}> {
  const {
    workers: size,
    accessLogPath,
    log,
    metricsListen,
    limiterDeadlineMs,
    decisionLog,
    watchdogMs,
    ...shared
  } = options;
  const reserved = await reserveListeners(options);
  const listen = { http: reserved.http?.address ?? null, https: reserved.https?.address ?? null };
  const limiter = createLimiterHost();
  const pool = createWorkerPool({
    role: 'gateway',
    size,
    // The workers' own drain bound (--drain-timeout, else the served worker-shutdown-timeout), and a margin.
    drainBoundMs: () =>
      (options.drainTimeoutMs ?? state.topology.gateway.settings.workerShutdownTimeoutMs) + 5_000,
    log,
    watchdogMs: watchdogMs ?? DEFAULT_WATCHDOG_MS,
    buildAllowanceMs: () => BUILD_ALLOWANCE_FACTOR * state.lastCheck.ms,
    channel: (_slot, channel) => limiter.attach(channel),
    onEvent: (_slot, topic, value) => {
      if (topic === DECISIONS_TOPIC) decisionLog?.ingest(value as DecisionBatch);
    },
    init: (): GatewayWorkerInit => ({
      options: {
        ...withoutLocal(shared),
        topology: state.topology,
        version: state.version,
        ...(defaultCertificate !== null ? { defaultCertificate } : {}),
        // One ticket key for every worker (restarted ones too): a ticket any of them issued is read by all.
        ticketKey: ownTicketKey().toString('base64'),
        ...listen,
      },
      accessLogPath,
      limiter: { deadlineMs: limiterDeadlineMs ?? DEFAULT_LIMITER_DEADLINE_MS },
      decisions: decisionLog === undefined ? null : { flushMs: DECISIONS_FLUSH_MS },
    }),
  });
  try {
    const started = await pool.start();
    const info = started[0]?.info as { http: AddressInfo | null; https: AddressInfo | null };
    return { pool, info, limiter };
  } catch (error) {
    state.current.retire();
    throw new Error(`workers could not start: ${(error as Error).message}`);
  } finally {
    await Promise.all([reserved.http?.reservation.release(), reserved.https?.reservation.release()]);
  }
}

/**
 * A reload in two phases, one at a time (pool.exclusive): every worker prepares the new snapshot,
 * and only when all could does each commit it; a worker restarted meanwhile starts on the latest commit.
 */
async function reload(state: PrimaryState, pool: WorkerPool, next: Topology): Promise<WorkerReloadResult> {
  const { metrics, version } = state;
  const checked = state.check(next, version + 1);
  if (!checked.ok) {
    metrics.reload('rejected', version, state.topology);
    return { ok: false, version, error: checked.error };
  }
  const call: PrepareCall = { topology: next, version: version + 1 };
  // A worker wedged meanwhile is killed at the build's deadline (it answers `gone`, and its
  // replacement starts on what this reload commits); only a worker's refusal aborts the reload.
  const answers = await pool.broadcast('prepare', call, { builds: true });
  const refused = answers.find((a) => (!a.ok && !a.gone) || (a.ok && !(a.value as { ok: boolean }).ok));
  if (refused !== undefined) {
    await pool.broadcast('abort', { version: call.version });
    checked.snapshot.retire();
    metrics.reload('rejected', version, state.topology);
    const why = refused.ok ? (refused.value as { message: string }).message : refused.message;
    const message = `worker ${refused.slot} (pid ${refused.pid}) could not prepare it: ${why}`;
    return { ok: false, version, error: { code: 'WORKER_RELOAD_ABORTED', message, issues: [] } };
  }
  await pool.broadcast('commit', { version: call.version });
  state.version = call.version;
  state.topology = next;
  state.current.retire();
  state.current = checked.snapshot;
  metrics.reload('applied', state.version, state.topology);
  return { ok: true, version: state.version, snapshot: state.current };
}

/** The options a worker can be handed (plain data only). */
function withoutLocal(
  options: Omit<
    WorkerGatewayOptions,
    'workers' | 'accessLogPath' | 'log' | 'metricsListen' | 'limiterDeadlineMs' | 'decisionLog' | 'watchdogMs'
  >,
) {
  const { metrics: _metrics, ...rest } = options;
  return rest;
}

interface ReservedListener {
  address: { host: string; port: number };
  reservation: ReservedPort;
}

/** Each listener's port, picked by the primary when it is 0 so that every worker binds the same one. */
async function reserveListeners(
  options: WorkerGatewayOptions,
): Promise<{ http: ReservedListener | null; https: ReservedListener | null }> {
  const one = async (at: GatewayOptions['http']): Promise<ReservedListener | null> => {
    if (!at) return null;
    const reservation = await reservePort(at.host, at.port);
    return { address: { host: at.host, port: reservation.port }, reservation };
  };
  const http = await one(options.http);
  try {
    return { http, https: await one(options.https) };
  } catch (error) {
    await http?.reservation.release();
    throw error;
  }
}
