// From cluster view to traffic: the first complete sync starts the gateway (listeners open only then),
// every later debounced change becomes one atomic snapshot swap, and each snapshot's tcp-services plan
// is applied. What it serves and why goes to the log, as `keepip gateway` prints it.
import { describeIssue } from '../config/issue-text.ts';
import type { ConfigIssue, Topology } from '../config/model.ts';
import {
  describeConfig,
  GatewayStartError,
  listenerEvents,
  type ReloadResult,
  snapshotEvents,
  startGateway,
} from '../gateway/gateway.ts';
import type { DecisionLog } from '../gateway/decision-log.ts';
import type { LineSink } from '../gateway/line-sink.ts';
import type { GatewayMetrics } from '../gateway/metrics.ts';
import { parseListenAddress } from '../net/host-port.ts';
import { availableCores } from '../workers/cores.ts';
import { chooseWorkerCount } from '../workers/count.ts';
import {
  type ServedGateway,
  startGatewayWorkers,
  type WorkerReloadResult,
} from '../workers/gateway-primary.ts';
import type { ControllerOptions } from './flags.ts';
import {
  buildClusterTopology,
  type ClusterObjects,
  configMapNamed,
  type SnapshotOptions,
} from './snapshot.ts';
import type { TcpRunner } from './tcp-runner.ts';
import { planTcpServices } from './tcp-services.ts';

/** Issues listed after a rejected configuration: the first few, then a count (a bad slice can hold 10,000). */
const LISTED_ISSUES = 20;

function logIssues(log: (line: string) => void, issues: readonly ConfigIssue[]): void {
  for (const issue of issues.slice(0, LISTED_ISSUES)) log(`error: ${describeIssue(issue)}`);
  if (issues.length > LISTED_ISSUES) log(`error: … and ${issues.length - LISTED_ISSUES} more issues`);
}

/** A snapshot the controller could not build at all (it threw): the running one stays. */
export interface SnapshotFailure {
  code: 'CONTROLLER_SNAPSHOT_FAILED';
  message: string;
}
export interface Serving {
  /** Builds a snapshot from the current objects and serves it (starting the gateway the first time). */
  flush(): void;
  gateway(): ServedGateway | null;
  /**
   * The cluster's objects the served snapshot was built from (not the informers' newer ones: a
   * rejected or pending reload leaves the served model behind them); null until one is served.
   */
  servedObjects(): ClusterObjects | null;
  /** Resolves once the first snapshot is served. */
  readonly ready: Promise<ServedGateway>;
  /** Resolves when a listener cannot bind (the process should exit 1). */
  readonly failed: Promise<Error>;
  /** Stops taking snapshots (shutdown). */
  stop(): void;
}

export interface ServingDeps {
  options: ControllerOptions;
  snapshotOptions: SnapshotOptions;
  objects: () => ClusterObjects;
  metrics: GatewayMetrics;
  tcp: TcpRunner;
  log: (line: string) => void;
  accessLog?: LineSink | undefined;
  errorLog?: LineSink | undefined;
  /** The dashboard's decision log: told of every finished request, by this process or its workers. */
  decisionLog?: Pick<DecisionLog, 'sink' | 'ingest'> | undefined;
  /** After each snapshot is served (the first included), and after a change that needed no reload. */
  onServed: (first: boolean) => void;
}

/**
 * Everything a snapshot serves is built from: the topology and the tcp-/udp-services ConfigMaps (their
 * plan is read from the objects). Equal keys serve the same.
 */
function servedKey(topology: Topology, objects: ClusterObjects, o: ControllerOptions): string {
  const data = (ref: string | null) => configMapNamed(objects, ref)?.data ?? null;
  return JSON.stringify([topology, data(o.tcpServicesConfigMap), data(o.udpServicesConfigMap)]);
}

/**
 * The controller's own ports, which no tcp-/udp-services entry may take: ingress-nginx's (HTTP, HTTPS,
 * health) and, unlike it, the webhook's and the dashboard's (a stream listener there would fail to bind,
 * or take the port first at a restart).
 */
export function reservedPorts(o: ControllerOptions): number[] {
  const ports = [o.httpPort, o.httpsPort, o.healthzPort];
  if (o.validatingWebhook !== null) ports.push(o.validatingWebhook.port);
  const dashboard = o.dashboard === null ? null : parseListenAddress(o.dashboard);
  if (dashboard?.ok) ports.push(dashboard.value.port);
  return ports.filter((port) => port > 0);
}

/** The config line, listeners, warnings, and the tcp-services plan of a snapshot just served. */
function reportSnapshot(deps: ServingDeps, running: ServedGateway, topology: Topology, first: boolean): void {
  const { options: o, log } = deps;
  const snap = running.snapshot();
  log(
    `${first ? 'serving' : 'reloaded'}: config v${snap.version} from the API server: ${describeConfig(snap)}`,
  );
  if (first) for (const e of listenerEvents(running)) log(e.message);
  for (const e of snapshotEvents(snap)) log(`${e.level}: ${e.message}`);
  const objects = deps.objects();
  const reserved = reservedPorts(o);
  const tcp = planTcpServices(configMapNamed(objects, o.tcpServicesConfigMap), topology, reserved);
  const udp = planTcpServices(configMapNamed(objects, o.udpServicesConfigMap), topology, reserved, 'UDP');
  for (const p of [...tcp.problems, ...udp.problems]) log(`warning: ${p.message} [${p.code}]`);
  const { settings } = topology.gateway;
  void deps.tcp.apply([...tcp.plans, ...udp.plans], {
    trustedCidrs: settings.trustedCidrs,
    enableRealIp: settings.enableRealIp,
    headerTimeoutMs: settings.proxyProtocolHeaderTimeoutMs,
    idleTimeoutMs: settings.proxyStreamTimeoutMs,
    drainMs: settings.workerShutdownTimeoutMs,
    maxConnections: settings.maxWorkerConnections,
    ...(settings.stream === undefined ? {} : { stream: settings.stream }),
  });
}

/**
 * One process, or a primary and workers: --workers, else the ConfigMap's worker-processes, else auto
 * (ingress-nginx's worker_processes). Log sinks handed over in-process (tests) need one process; the
 * dashboard's decision log takes the workers' decisions (src/gateway/decision-forwarder.ts).
 */
async function startServed(deps: ServingDeps, topology: Topology): Promise<ServedGateway> {
  const { options: o, log } = deps;
  const common = {
    topology,
    http: { host: o.bindAddress, port: o.httpPort },
    https: { host: o.bindAddress, port: o.httpsPort },
    metrics: deps.metrics,
  };
  const chosen = chooseWorkerCount({
    flag: o.workers,
    configMap: topology.gateway.settings.workerProcesses,
    fallback: 'auto',
    available: availableCores(),
  });
  const inProcess = deps.accessLog !== undefined || deps.errorLog !== undefined;
  if (chosen.value <= 1 || inProcess) {
    if (chosen.value > 1)
      log(`workers: 1, not ${chosen.value} (${chosen.from}): an in-process log sink needs one process`);
    return startGateway({
      ...common,
      ...(deps.accessLog ? { accessLog: deps.accessLog } : {}),
      ...(deps.errorLog ? { errorLog: deps.errorLog } : {}),
      ...(deps.decisionLog ? { decisions: deps.decisionLog.sink } : {}),
    });
  }
  const served = await startGatewayWorkers({
    ...common,
    workers: chosen.value,
    watchdogMs: o.workerWatchdogMs,
    accessLogPath: null,
    metricsListen: null,
    ...(deps.decisionLog ? { decisionLog: deps.decisionLog } : {}),
    log: (event) => log(`${event.level === 'info' ? '' : `${event.level}: `}${event.message}`),
  });
  log(
    `workers: ${served.workers} processes (pids ${served.pids().join(', ')}) share the listening ports (SO_REUSEPORT; ${chosen.from})`,
  );
  return served;
}

/**
 * One flush, or its failure as a line: an object that breaks the translation (a bug, or a type no
 * API server stores) must not end the controller, which would meet it again at every restart.
 */
function flushSafely(
  flush: () => void,
  log: (line: string) => void,
  current: () => ServedGateway | null,
): void {
  try {
    flush();
  } catch (error) {
    const failure: SnapshotFailure = {
      code: 'CONTROLLER_SNAPSHOT_FAILED',
      message: String((error as Error)?.message ?? error).slice(0, 300),
    };
    const gateway = current();
    const version = gateway === null ? 'none yet' : `v${gateway.snapshot().version}`;
    log(`error: reload rejected (${failure.code}: ${failure.message}); still serving config ${version}`);
    if (gateway !== null && 'endLimiterHold' in gateway) gateway.endLimiterHold();
  }
}

/** What createServing keeps between flushes. */
interface ServingState {
  gateway: ServedGateway | null;
  starting: boolean;
  /** A change that came while the first gateway was starting: flushed again once it is up (or failed). */
  changedWhileStarting: boolean;
  stopped: boolean;
  /** What the last snapshot served was built from (servedKey, and the objects); null until one is served. */
  served: string | null;
  servedObjects: ClusterObjects | null;
}

/** A reload's result: the served state moves on, or the rejection is logged with what blocked it. */
function applied(
  deps: ServingDeps,
  state: ServingState,
  result: ReloadResult | WorkerReloadResult,
  built: { topology: Topology; key: string; objects: ClusterObjects },
): void {
  const { log } = deps;
  if (!result.ok) {
    log(
      `error: reload rejected (${result.error.code}: ${result.error.message}); still serving config v${result.version}`,
    );
    // What blocked it, object and field.
    logIssues(log, result.error.issues);
    return;
  }
  if (state.gateway === null) return;
  state.served = built.key;
  state.servedObjects = built.objects;
  reportSnapshot(deps, state.gateway, built.topology, false);
  deps.onServed(false);
}

export function createServing(deps: ServingDeps): Serving {
  const { options: o, log } = deps;
  const state: ServingState = {
    gateway: null,
    starting: false,
    changedWhileStarting: false,
    stopped: false,
    served: null,
    servedObjects: null,
  };
  const { promise: ready, resolve: resolveReady } = Promise.withResolvers<ServedGateway>();
  const { promise: failed, resolve: fail } = Promise.withResolvers<Error>();
  const flush = () => flushSafely(flushOnce, log, () => state.gateway);
  // The objects may have changed while the start ran (a worker pool takes a second or more): an
  // allowlist tightened then must not wait for the next change to be served.
  const flushChangesWhileStarting = () => {
    if (!state.changedWhileStarting) return;
    state.changedWhileStarting = false;
    flush();
  };

  const start = async (topology: Topology, key: string, objects: ClusterObjects) => {
    state.starting = true;
    state.changedWhileStarting = false;
    try {
      // --default-ssl-certificate's Secret is in the topology (snapshot.ts): a renewal reloads.
      state.gateway = await startServed(deps, topology);
    } catch (error) {
      state.starting = false;
      if (!(error instanceof GatewayStartError)) {
        log(`error: ${(error as Error).message}`);
        fail(error as Error);
        return;
      }
      log(`error: cannot serve the cluster's configuration yet (${error.message}); waiting for a change`);
      logIssues(log, error.issues);
      flushChangesWhileStarting();
      return;
    }
    state.served = key;
    state.servedObjects = objects;
    reportSnapshot(deps, state.gateway, topology, true);
    resolveReady(state.gateway);
    deps.onServed(true);
    flushChangesWhileStarting();
  };

  const flushOnce = () => {
    if (state.stopped) return;
    const { gateway } = state;
    // Building the topology blocks this thread: with workers, their limiter checks wait meanwhile
    // (the reload that follows ends the hold).
    const workers = gateway !== null && 'holdLimiter' in gateway ? gateway : null;
    workers?.holdLimiter();
    const objects = deps.objects();
    const topology = buildClusterTopology(objects, deps.snapshotOptions);
    const key = servedKey(topology, objects, o);
    if (gateway === null) {
      if (state.starting) state.changedWhileStarting = true;
      else void start(topology, key, objects);
      return;
    }
    // Nothing served would change (a Secret no Ingress uses, an object rewritten as it was): no
    // reload, as ingress-nginx skips one when the configuration equals the running one.
    if (key === state.served) {
      workers?.endLimiterHold();
      // The leader's duties still see the new objects (an Ingress's Sync Event on any update).
      deps.onServed(false);
      return;
    }
    // With workers a reload resolves once every worker swapped (src/workers/gateway-primary.ts).
    const built = { topology, key, objects };
    const reloaded = gateway.reload(topology);
    if (reloaded instanceof Promise) void reloaded.then((result) => applied(deps, state, result, built));
    else applied(deps, state, reloaded, built);
  };

  return {
    flush,
    gateway: () => state.gateway,
    servedObjects: () => state.servedObjects,
    ready,
    failed,
    stop() {
      state.stopped = true;
    },
  };
}
