// `keepip controller` as a library: watch the cluster, serve what it says through the gateway, and
// (as the elected leader) write Ingress status and Events; answer admission reviews; run
// tcp- and udp-services (nginx's stream proxy). /healthz turns ready only once the first complete list of every
// resource is being served; during an API outage the last good snapshot keeps serving.
import { hostname } from 'node:os';
import { Gauge, type Registry } from 'prom-client';
import type { GatewayModel, Topology } from '../config/model.ts';
import type { DecisionLog } from '../gateway/decision-log.ts';
import { createLineSink, type LineSink } from '../gateway/line-sink.ts';
import { createGatewayMetrics } from '../gateway/metrics.ts';
import { type ServedGateway, servedMetrics } from '../workers/gateway-primary.ts';
import { controllerZone } from './zone.ts';
import { type AdmissionCheck, reviewAdmission } from './admission.ts';
import { createAdmissionMetrics } from './admission-metrics.ts';
import { type BackoffPolicy, DEFAULT_BACKOFF, realScheduler, type Scheduler } from './backoff.ts';
import { createDebouncer } from './debounce.ts';
import { createElection, type Election } from './election.ts';
import { createEventRecorder } from './event-recorder.ts';
import { type EmittedEvents, eventsToEmit, issuesByIngress } from './events.ts';
import type { ControllerOptions } from './flags.ts';
import { createInformers, type Informers, ingressClassesListable } from './informers.ts';
import { createKubeClient, type KubeClient, loadKubeConfig } from './kube-client.ts';
import { latestOnly } from './latest-only.ts';
import type { KubeObject } from './resources.ts';
import type { ManifestSource } from '../k8s/index.ts';
import { type SmallServer, startHealthServer, startWebhookServer } from './servers.ts';
import { createServing, type Serving } from './serving.ts';
import {
  type ClusterObjects,
  ourIngresses,
  type SnapshotOptions,
  snapshotObjects,
  topologyOfManifests,
} from './snapshot.ts';
import { createStatusWriter } from './status-writer.ts';
import { createNginxControllerMetrics } from './nginx-metrics.ts';
import { createTcpRunner } from './tcp-runner.ts';

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
  /** --dashboard's decision log: told of every finished request, by this process or its workers. */
  decisionLog?: Pick<DecisionLog, 'sink' | 'ingest'>;
}

export interface RunningController {
  readonly healthzAddress: SmallServer['address'] | null;
  readonly webhookAddress: SmallServer['address'] | null;
  /** Resolves once the gateway serves the first complete sync. */
  serving(): Promise<ServedGateway>;
  gateway(): ServedGateway | null;
  /**
   * The objects the served model is translated from and the translation (the dashboard's Chain page
   * applies the doctor's fix to them); null until the first complete sync.
   */
  manifests(): ManifestSource | null;
  leading(): boolean;
  tcpListeners(): { port: number; address: string; actualPort: number }[];
  /** SIGTERM: healthz 500, grace period, status cleared (leader, --update-status-on-shutdown), Lease released, drain. */
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
    annotationsPrefix: o.annotationsPrefix,
    enableSslPassthrough: o.enableSslPassthrough,
    disableCatchAll: o.disableCatchAll,
    disableServiceExternalName: o.disableServiceExternalName,
    watchNamespace: o.watchNamespace,
    requestMetrics: o.requestMetrics,
  };
}

/** The controller's own gauges (keepip's and ingress-nginx's), moved by what the controller sees. */
function controllerGauges(registry: Registry, o: ControllerOptions) {
  const gauge = (name: string, help: string) => new Gauge({ name, help, registers: [registry] });
  const synced = gauge(
    'keepip_controller_synced',
    '1 once the first complete list of every resource is served',
  );
  const connected = gauge(
    'keepip_controller_api_connected',
    '1 while every list/watch to the API server works',
  );
  const leader = gauge('keepip_controller_leader', '1 while this replica holds the leader Lease');
  const nginx = createNginxControllerMetrics(registry, o);
  return {
    /** A snapshot is served (`topology` is it, when the gateway runs). */
    served(topology: Topology | undefined) {
      synced.set(1);
      if (topology !== undefined) nginx.served(topology);
    },
    connected: (isConnected: boolean) => connected.set(isConnected ? 1 : 0),
    /** `elected`: whether a Lease is held for it (false: no election, --disable-leader-election). */
    leading(isLeader: boolean, elected = true) {
      leader.set(isLeader ? 1 : 0);
      if (elected) nginx.leading(isLeader);
    },
  };
}

export async function startController(
  options: ControllerOptions,
  deps: ControllerDeps,
): Promise<RunningController> {
  const client = createKubeClient(loadKubeConfig(options, deps.env));
  return runController(options, deps, client);
}

/** The leader's writes: status of the served Ingresses, then Events for Ingresses that changed. */
function createLeaderDuties(
  o: ControllerOptions,
  client: KubeClient,
  identity: string,
  scheduler: Scheduler,
  log: (line: string) => void,
  leading: () => boolean,
) {
  const emitted: EmittedEvents = new Map();
  const recorder = createEventRecorder({ client, host: identity, now: scheduler.now, log, leading });
  const statusWriter = createStatusWriter({ client, options: o, log, leading });
  // A sync after every snapshot: coalesced, so a burst of snapshots costs one sync more, not a queue.
  const statusSyncs = latestOnly(({ served, refused }: { served: KubeObject[]; refused: KubeObject[] }) =>
    statusWriter.sync(served, refused),
  );
  return {
    run(informers: Informers, serving: Serving, snapOptions: SnapshotOptions) {
      const gateway = serving.gateway();
      if (gateway === null) return;
      const ingresses = ourIngresses(informers.objects(), snapOptions);
      const { issues, gateway: model } = gateway.snapshot().topology;
      // An Ingress over the annotation limits is not served: no address for it, and one it had from
      // when it was served (before the limits were lowered) is taken away, so nothing that reads the
      // status (external-dns) keeps pointing at a host that answers 404. ingress-nginx keeps serving
      // the version its store took before, so the address it keeps is still true there.
      if (o.updateStatus) {
        const refused = ingresses.filter((ing) => isRefused(model, ing));
        statusSyncs.push({ served: ingresses.filter((ing) => !refused.includes(ing)), refused });
      }
      const byIngress = issuesByIngress(issues);
      for (const ing of ingresses)
        for (const e of eventsToEmit(ing, byIngress, !o.disableSyncEvents, emitted)) recorder.emit(e);
    },
    /** Waits for writes in flight; clears the status when asked (the caller checks leadership). */
    async finish(informers: Informers, snapOptions: SnapshotOptions, clearStatus: boolean) {
      await statusSyncs.idle();
      if (clearStatus) await statusWriter.clear(ourIngresses(informers.objects(), snapOptions));
      await recorder.idle();
    },
  };
}

async function startEdges(
  o: ControllerOptions,
  informers: Informers,
  serving: Serving,
  registry: Registry,
  snapOptions: SnapshotOptions,
  isShuttingDown: () => boolean,
  log: (line: string) => void,
) {
  const health = await startHealthServer({
    host: o.healthzHost ?? o.bindAddress,
    port: o.healthzPort,
    healthPath: o.healthCheckPath,
    unhealthy: () =>
      isShuttingDown()
        ? 'shutting down'
        : serving.gateway() === null
          ? 'not ready: waiting for the first complete sync'
          : null,
    note: () => (informers.connected() ? null : 'API server unreachable: serving the last good snapshot'),
    // With workers, /metrics sums them (src/workers/metrics.ts).
    registry: o.enableMetrics ? servedMetrics(() => serving.gateway(), registry) : null,
  });
  log(
    `health http://${health.address.address}:${health.address.port}${o.healthCheckPath}${o.enableMetrics ? ', metrics /metrics' : ''}`,
  );
  let webhook: SmallServer | null = null;
  if (o.validatingWebhook) {
    const observer = admissionObserver(registry, o, log);
    webhook = await startWebhookServer({
      host: o.validatingWebhook.host,
      port: o.validatingWebhook.port,
      certFile: o.validatingWebhookCertificate!,
      keyFile: o.validatingWebhookKey!,
      review: (body) =>
        reviewAdmission(body, informers.synced() ? informers.objects() : null, snapOptions, observer),
      log,
    });
    log(`validating webhook https://${webhook.address.address}:${webhook.address.port}`);
  }
  return { health, webhook };
}

/** Each check of an Ingress of ours: counted and timed in ingress-nginx's metrics, and logged as it does. */
function admissionObserver(registry: Registry, o: ControllerOptions, log: (line: string) => void) {
  const record = createAdmissionMetrics(registry, o);
  return {
    now: () => performance.now(),
    checked(check: AdmissionCheck) {
      record(check);
      log(
        `admission: Ingress ${check.namespace}/${check.name} ${check.allowed ? 'allowed' : 'denied'}` +
          (check.ingresses === 0
            ? ''
            : ` (${check.ingresses} Ingresses translated in ${check.renderSeconds.toFixed(3)} s, checked in ${check.testSeconds.toFixed(3)} s)`),
      );
    },
  };
}

/** The Lease loop, unless --disable-leader-election; `changed` hears each start and stop of leading. */
function startElection(
  o: ControllerOptions,
  client: KubeClient,
  identity: string,
  scheduler: Scheduler,
  log: (line: string) => void,
  changed: (leading: boolean) => void,
): Election | null {
  if (o.disableLeaderElection) return null;
  const election = createElection({
    client,
    namespace: o.podNamespace,
    name: o.electionId,
    identity,
    timings: o.lease,
    scheduler,
    onStartedLeading: () => changed(true),
    onStoppedLeading: () => changed(false),
    log,
  });
  election.start();
  return election;
}

/** Reflectors → debounce → snapshot → gateway, wired together. */
function wireCore(
  o: ControllerOptions,
  deps: ControllerDeps,
  client: KubeClient,
  parts: {
    scheduler: Scheduler;
    metrics: ReturnType<typeof createGatewayMetrics>;
    tcp: ReturnType<typeof createTcpRunner>;
    snapOptions: SnapshotOptions;
    onServed: () => void;
    onChange: (connected: boolean) => void;
  },
) {
  const serving: Serving = createServing({
    options: o,
    snapshotOptions: parts.snapOptions,
    objects: () => informers.objects(),
    metrics: parts.metrics,
    tcp: parts.tcp,
    log: deps.log,
    accessLog: deps.accessLog,
    errorLog: deps.errorLog,
    decisionLog: deps.decisionLog,
    onServed: parts.onServed,
  });
  const debounce = deps.debounce ?? { quietMs: 100, maxDelayMs: 1000 };
  const debouncer = createDebouncer({
    ...debounce,
    scheduler: parts.scheduler,
    flush: () => serving.flush(),
  });
  const informers: Informers = createInformers({
    client,
    options: o,
    ingressClasses: parts.snapOptions.ignoreIngressClass !== true,
    scheduler: parts.scheduler,
    backoff: deps.backoff ?? DEFAULT_BACKOFF,
    onChange: () => {
      parts.onChange(informers.connected());
      if (informers.synced()) debouncer.trigger();
    },
    // The outage shows in keepip_controller_api_connected at once, not at the next change.
    onDisconnect: () => parts.onChange(false),
    log: deps.log,
  });
  return { serving, informers, debouncer };
}

/** --enable-topology-aware-routing: our node's zone, logged either way (null: hints are not used). */
async function topologyZone(
  o: ControllerOptions,
  client: KubeClient,
  log: (line: string) => void,
): Promise<string | null> {
  const found = await controllerZone(client, o.podNamespace, o.podName);
  if (found.zone === null) {
    log(`warning: topology-aware routing: no zone (${found.why}); every ready endpoint is used`);
    return null;
  }
  log(`topology-aware routing: zone ${found.zone} (node ${found.node}) for Services that ask for it`);
  return found.zone;
}

/**
 * As ingress-nginx after nginx's graceful quit: the gateway drains (bounded by the ConfigMap's
 * worker-shutdown-timeout), the exit waits --post-shutdown-grace-period, then the webhook and /healthz close.
 */
async function stopServing(
  o: ControllerOptions,
  serving: Serving,
  edges: Awaited<ReturnType<typeof startEdges>>,
  log: (line: string) => void,
): Promise<void> {
  await serving.gateway()?.close();
  if (o.postShutdownGracePeriodMs > 0) {
    log(`drained; exiting in ${o.postShutdownGracePeriodMs / 1000} s (--post-shutdown-grace-period)`);
    await new Promise((r) => setTimeout(r, o.postShutdownGracePeriodMs));
  }
  await edges.webhook?.close();
  await edges.health.close();
}

/** The tcp-services runner; its connection lines go with the access log (stdout unless a sink was handed over). */
function tcpServices(o: ControllerOptions, deps: ControllerDeps, registry: Registry) {
  const streamLog = deps.accessLog ?? createLineSink(process.stdout);
  const tcp = createTcpRunner({
    host: o.bindAddress,
    registry,
    log: deps.log,
    accessLog: (line) => streamLog.write(line),
  });
  return { tcp, streamLog };
}

async function runController(
  o: ControllerOptions,
  deps: ControllerDeps,
  client: KubeClient,
): Promise<RunningController> {
  const scheduler = deps.scheduler ?? realScheduler;
  const log = deps.log;
  const metrics = createGatewayMetrics();
  const gauges = controllerGauges(metrics.registry, o);
  const identity = o.podName ?? `${hostname()}-${process.pid}`;
  const snapOptions = snapshotOptions(o);
  if (!(await ingressClassesListable(client))) {
    snapOptions.ignoreIngressClass = true;
    log(
      'listing IngressClasses is forbidden (403): spec.ingressClassName is ignored, the kubernetes.io/ingress.class annotation (and --watch-ingress-without-class) select the Ingresses served, as ingress-nginx does without that permission',
    );
  }
  if (o.enableTopologyAwareRouting) snapOptions.zone = await topologyZone(o, client, log);
  const { tcp, streamLog } = tcpServices(o, deps, metrics.registry);
  let shuttingDown = false;
  let leader = o.disableLeaderElection;
  const duties = createLeaderDuties(o, client, identity, scheduler, log, () => leader);
  const leaderDuties = () => {
    if (leader && !shuttingDown) duties.run(informers, serving, snapOptions);
  };
  const { serving, informers, debouncer } = wireCore(o, deps, client, {
    scheduler,
    metrics,
    tcp,
    snapOptions,
    onServed: () => {
      gauges.served(serving.gateway()?.snapshot().topology);
      leaderDuties();
    },
    onChange: gauges.connected,
  });
  const edges = await startEdges(
    o,
    informers,
    serving,
    metrics.registry,
    snapOptions,
    () => shuttingDown,
    log,
  );
  log(
    `watching the API server ${client.server}${o.watchNamespace ? ` (namespace ${o.watchNamespace})` : ''}`,
  );
  informers.start();

  const election = startElection(o, client, identity, scheduler, log, (leading) => {
    leader = leading;
    gauges.leading(leading);
    if (leading) leaderDuties();
  });
  if (election === null) gauges.leading(true, false);
  // Nodes and the publish-service change without touching an Ingress: re-check the status regularly.
  const periodic = () => {
    leaderDuties();
    statusTimer = scheduler.setTimeout(periodic, o.statusUpdateIntervalMs);
  };
  let statusTimer = scheduler.setTimeout(periodic, o.statusUpdateIntervalMs);

  const close = async () => {
    shuttingDown = true;
    log('shutting down: /healthz answers 500');
    if (o.shutdownGracePeriodMs > 0) await new Promise((r) => setTimeout(r, o.shutdownGracePeriodMs));
    scheduler.clearTimeout(statusTimer);
    debouncer.cancel();
    serving.stop();
    const clear = leader && o.updateStatus && o.updateStatusOnShutdown && serving.gateway() !== null;
    await duties.finish(informers, snapOptions, clear);
    informers.stop();
    await election?.stop();
    await tcp.close();
    await streamLog.flush();
    await stopServing(o, serving, edges, log);
    log('stopped');
  };
  let closing: Promise<void> | null = null;
  return {
    healthzAddress: edges.health.address,
    webhookAddress: edges.webhook?.address ?? null,
    serving: () => serving.ready,
    gateway: () => serving.gateway(),
    manifests: () => clusterManifests(serving.servedObjects(), snapOptions),
    leading: () => leader,
    tcpListeners: () => tcp.listeners(),
    close: () => {
      closing ??= close();
      return closing;
    },
    failed: serving.failed,
  };
}

/** The served objects as the snapshot read them, and their translation with this controller's options. */
function clusterManifests(
  objects: ClusterObjects | null,
  snapOptions: SnapshotOptions,
): ManifestSource | null {
  if (objects === null) return null;
  return {
    objects: snapshotObjects(objects, snapOptions),
    translate: (patched) => topologyOfManifests(patched, objects.secrets, snapOptions),
  };
}

/** Whether the snapshot left `ing` out for the ConfigMap's annotation limits. */
function isRefused(model: GatewayModel, ing: KubeObject): boolean {
  const namespace = ing.metadata?.namespace ?? 'default';
  const name = ing.metadata?.name ?? '';
  return (model.refusedIngresses ?? []).some(
    (r) => r.ingress.namespace === namespace && r.ingress.name === name,
  );
}
