// `keepip controller` as a library: watch the cluster, serve what it says through the gateway, and
// (as the elected leader) write Ingress status and Events; answer admission reviews; run
// tcp-services on the L4 engine. /healthz turns ready only once the first complete list of every
// resource is being served; during an API outage the last good snapshot keeps serving.
import { hostname } from 'node:os';
import { Gauge } from 'prom-client';
import type { Topology } from '../config/model.ts';
import {
  describeConfig,
  describeIssue,
  GatewayStartError,
  listenerEvents,
  type RunningGateway,
  snapshotEvents,
  startGateway,
} from '../gateway/gateway.ts';
import type { LineSink } from '../gateway/line-sink.ts';
import { createGatewayMetrics } from '../gateway/metrics.ts';
import type { KeyPair } from '../gateway/tls.ts';
import { reviewAdmission } from './admission.ts';
import { type BackoffPolicy, DEFAULT_BACKOFF, realScheduler, type Scheduler } from './backoff.ts';
import { createDebouncer } from './debounce.ts';
import { createElection, type Election } from './election.ts';
import { createEventRecorder } from './event-recorder.ts';
import { ingressEvents, ingressFingerprint, newVersions } from './events.ts';
import type { ControllerOptions } from './flags.ts';
import { createInformers } from './informers.ts';
import { createKubeClient, type KubeClient, loadKubeConfig } from './kube-client.ts';
import type { KubeObject } from './resources.ts';
import { type SmallServer, startHealthServer, startWebhookServer } from './servers.ts';
import { buildClusterTopology, servedIngresses, type SnapshotOptions } from './snapshot.ts';
import { createStatusWriter } from './status-writer.ts';
import { createTcpRunner } from './tcp-runner.ts';
import { planTcpServices, udpProblems } from './tcp-services.ts';

export interface ControllerDeps {
  env: NodeJS.ProcessEnv;
  /** Operational lines (start-up, sync, leader, status, outages). */
  log: (line: string) => void;
  scheduler?: Scheduler;
  backoff?: BackoffPolicy;
  /** Debounce of watch events into snapshot swaps. Default 100 ms quiet, 1 s at most. */
  debounce?: { quietMs: number; maxDelayMs: number };
  accessLog?: LineSink;
  errorLog?: LineSink;
}

export interface RunningController {
  readonly healthzAddress: SmallServer['address'] | null;
  readonly webhookAddress: SmallServer['address'] | null;
  /** Resolves once the gateway serves the first complete sync. */
  serving(): Promise<RunningGateway>;
  gateway(): RunningGateway | null;
  leading(): boolean;
  tcpListeners(): { port: number; address: string; actualPort: number }[];
  /** SIGTERM: healthz 503, grace period, status cleared (leader, --update-status-on-shutdown), Lease released, drain. */
  close(): Promise<void>;
  /** A listener could not bind: the caller exits 1. */
  readonly failed: Promise<Error>;
}

export function snapshotOptions(o: ControllerOptions): SnapshotOptions {
  return {
    ingressClass: o.ingressClass,
    controllerClass: o.controllerClass,
    watchIngressWithoutClass: o.watchIngressWithoutClass,
    ingressClassByName: o.ingressClassByName,
    configMap: o.configMap,
    defaultSslCertificate: o.defaultSslCertificate,
    defaultBackendService: o.defaultBackendService,
  };
}

function defaultCertificate(o: ControllerOptions, secrets: readonly KubeObject[]): KeyPair | undefined {
  if (!o.defaultSslCertificate) return undefined;
  const [ns, name] = o.defaultSslCertificate.split('/');
  const secret = secrets.find((s) => s.metadata?.namespace === ns && s.metadata?.name === name);
  const data = (secret?.data ?? {}) as Record<string, string>;
  const decode = (v: string | undefined) => (v ? Buffer.from(v, 'base64').toString('utf8') : '');
  const cert = decode(data['tls.crt']);
  const key = decode(data['tls.key']);
  return cert.includes('CERTIFICATE') && key.includes('PRIVATE KEY') ? { cert, key } : undefined;
}

function controllerMetrics(registry: import('prom-client').Registry) {
  const gauge = (name: string, help: string) => new Gauge({ name, help, registers: [registry] });
  return {
    synced: gauge('keepip_controller_synced', '1 once the first complete list of every resource is served'),
    connected: gauge('keepip_controller_api_connected', '1 while every list/watch to the API server works'),
    leader: gauge('keepip_controller_leader', '1 while this replica holds the leader Lease'),
  };
}

export async function startController(
  options: ControllerOptions,
  deps: ControllerDeps,
): Promise<RunningController> {
  const client = createKubeClient(loadKubeConfig(options, deps.env));
  return runController(options, deps, client);
}

async function runController(
  o: ControllerOptions,
  deps: ControllerDeps,
  client: KubeClient,
): Promise<RunningController> {
  const scheduler = deps.scheduler ?? realScheduler;
  const log = deps.log;
  const metrics = createGatewayMetrics();
  const gauges = controllerMetrics(metrics.registry);
  const identity = o.podName ?? `${hostname()}-${process.pid}`;
  const snapOptions = snapshotOptions(o);
  let gateway: RunningGateway | null = null;
  let starting = false;
  let shuttingDown = false;
  let election: Election | null = null;
  let leader = o.disableLeaderElection;
  let resolveServing: (g: RunningGateway) => void = () => {};
  const servingPromise = new Promise<RunningGateway>((resolve) => {
    resolveServing = resolve;
  });
  let fail: (e: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => {
    fail = resolve;
  });
  const emitted = new Map<string, string>();
  const recorder = createEventRecorder({ client, host: identity, now: scheduler.now, log });
  const statusWriter = createStatusWriter({ client, options: o, log });
  const tcp = createTcpRunner({ host: o.bindAddress, registry: metrics.registry, log });
  let statusRunning: Promise<unknown> = Promise.resolve();

  const informers = createInformers({
    client,
    options: o,
    scheduler,
    backoff: deps.backoff ?? DEFAULT_BACKOFF,
    onChange: () => {
      gauges.connected.set(informers.connected() ? 1 : 0);
      if (informers.synced()) debouncer.trigger();
    },
    log,
  });
  const served = () => servedIngresses(informers.objects(), snapOptions);

  /** Leader duties after a snapshot or on taking the lead: status, then events for new Ingress versions. */
  const leaderDuties = () => {
    if (!leader || shuttingDown || gateway === null) return;
    const ingresses = served();
    if (o.updateStatus)
      statusRunning = statusRunning.then(() => statusWriter.sync(ingresses)).catch(() => {});
    const topology = gateway.snapshot().topology;
    for (const ing of newVersions(ingresses, emitted)) {
      emitted.set(`${ing.metadata?.namespace ?? ''}/${ing.metadata?.name ?? ''}`, ingressFingerprint(ing));
      for (const e of ingressEvents(ing, topology.issues, !o.disableSyncEvents)) recorder.emit(e);
    }
  };

  const report = (topology: Topology, first: boolean) => {
    const snap = gateway!.snapshot();
    log(
      `${first ? 'serving' : 'reloaded'}: config v${snap.version} from the API server: ${describeConfig(snap)}`,
    );
    if (first) for (const e of listenerEvents(gateway!)) log(e.message);
    for (const e of snapshotEvents(snap)) log(`${e.level}: ${e.message}`);
    const tcpMap = informers
      .objects()
      .configMaps.find((c) => `${c.metadata?.namespace}/${c.metadata?.name}` === o.tcpServicesConfigMap);
    const udpMap = informers
      .objects()
      .configMaps.find((c) => `${c.metadata?.namespace}/${c.metadata?.name}` === o.udpServicesConfigMap);
    const plan = planTcpServices(tcpMap, topology, [o.httpPort, o.httpsPort, o.healthzPort]);
    for (const p of [...plan.problems, ...udpProblems(udpMap)]) log(`warning: ${p.message} [${p.code}]`);
    const { settings } = topology.gateway;
    void tcp.apply(plan.plans, {
      trustedCidrs: settings.trustedCidrs,
      headerTimeoutMs: settings.proxyProtocolHeaderTimeoutMs,
    });
  };

  const startServing = async (topology: Topology) => {
    starting = true;
    const certificate = defaultCertificate(o, informers.objects().secrets);
    try {
      gateway = await startGateway({
        topology,
        http: { host: o.bindAddress, port: o.httpPort },
        https: { host: o.bindAddress, port: o.httpsPort },
        metrics,
        drainTimeoutMs: o.postShutdownGracePeriodMs,
        ...(deps.accessLog ? { accessLog: deps.accessLog } : {}),
        ...(deps.errorLog ? { errorLog: deps.errorLog } : {}),
        ...(certificate ? { defaultCertificate: certificate } : {}),
      });
    } catch (error) {
      starting = false;
      if (error instanceof GatewayStartError) {
        log(`error: cannot serve the cluster's configuration yet (${error.message}); waiting for a change`);
        for (const issue of error.issues) log(`error: ${describeIssue(issue)}`);
        return;
      }
      log(`error: ${(error as Error).message}`);
      fail(error as Error);
      return;
    }
    gauges.synced.set(1);
    report(topology, true);
    resolveServing(gateway);
    leaderDuties();
  };

  const flush = () => {
    if (shuttingDown) return;
    const topology = buildClusterTopology(informers.objects(), snapOptions);
    if (gateway === null) {
      if (!starting) void startServing(topology);
      return;
    }
    const result = gateway.reload(topology);
    if (!result.ok) {
      log(`error: reload rejected (${result.error.message}); still serving config v${result.version}`);
      return;
    }
    report(topology, false);
    leaderDuties();
  };
  const debouncer = createDebouncer({
    quietMs: deps.debounce?.quietMs ?? 100,
    maxDelayMs: deps.debounce?.maxDelayMs ?? 1000,
    scheduler,
    flush,
  });

  const health = await startHealthServer({
    host: o.healthzHost ?? o.bindAddress,
    port: o.healthzPort,
    healthPath: o.healthCheckPath,
    unhealthy: () =>
      shuttingDown
        ? 'shutting down'
        : gateway === null
          ? 'not ready: waiting for the first complete sync'
          : null,
    note: () => (informers.connected() ? null : 'API server unreachable: serving the last good snapshot'),
    registry: o.enableMetrics ? metrics.registry : null,
  });
  log(
    `health http://${health.address.address}:${health.address.port}${o.healthCheckPath}${o.enableMetrics ? ', metrics /metrics' : ''}`,
  );

  let webhook: SmallServer | null = null;
  if (o.validatingWebhook) {
    webhook = await startWebhookServer({
      host: o.validatingWebhook.host,
      port: o.validatingWebhook.port,
      certFile: o.validatingWebhookCertificate!,
      keyFile: o.validatingWebhookKey!,
      review: (body) => {
        const outcome = reviewAdmission(body, informers.objects(), snapOptions);
        return outcome.ok ? outcome : { ok: false, message: `${outcome.code}: ${outcome.message}` };
      },
      log,
    });
    log(`validating webhook https://${webhook.address.address}:${webhook.address.port}`);
  }

  log(
    `watching the API server ${client.server}${o.watchNamespace ? ` (namespace ${o.watchNamespace})` : ''}`,
  );
  informers.start();

  if (!o.disableLeaderElection) {
    election = createElection({
      client,
      namespace: o.podNamespace,
      name: o.electionId,
      identity,
      timings: o.lease,
      scheduler,
      onStartedLeading: () => {
        leader = true;
        gauges.leader.set(1);
        leaderDuties();
      },
      onStoppedLeading: () => {
        leader = false;
        gauges.leader.set(0);
      },
      log,
    });
    election.start();
  } else gauges.leader.set(1);

  const periodic = () => {
    leaderDuties();
    statusTimer = scheduler.setTimeout(periodic, o.statusUpdateIntervalMs);
  };
  let statusTimer = scheduler.setTimeout(periodic, o.statusUpdateIntervalMs);

  let closing: Promise<void> | null = null;
  const close = async () => {
    shuttingDown = true;
    log('shutting down: /healthz answers 503');
    if (o.shutdownGracePeriodMs > 0) await new Promise((r) => setTimeout(r, o.shutdownGracePeriodMs));
    scheduler.clearTimeout(statusTimer);
    debouncer.cancel();
    await statusRunning;
    if (leader && o.updateStatus && o.updateStatusOnShutdown && gateway !== null)
      await statusWriter.clear(served());
    await recorder.idle();
    informers.stop();
    await election?.stop();
    await tcp.close();
    await gateway?.close();
    await webhook?.close();
    await health.close();
    log('stopped');
  };

  return {
    healthzAddress: health.address,
    webhookAddress: webhook?.address ?? null,
    serving: () => servingPromise,
    gateway: () => gateway,
    leading: () => leader,
    tcpListeners: () => tcp.listeners(),
    close: () => (closing ??= close()),
    failed,
  };
}
