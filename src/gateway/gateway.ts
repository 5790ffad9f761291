// The gateway as a library: `startGateway(options)` binds the listeners, serves the topology it is
// given, swaps in new topologies with `reload()` (atomically; a bad one is refused and the old one keeps
// serving), and drains on `close()`. `keepip gateway` wraps it with files, signals and start-up lines;
// `keepip up` runs it in-process.
import type { AddressInfo, LookupFunction } from 'node:net';
import { coversEveryAddress } from '../net/cidr.ts';
import type { HostPort } from '../net/host-port.ts';
import { formatHostPort } from '../net/host-port.ts';
import { readsForwardedHeader } from '../net/client-ip.ts';
import type { ConfigIssue, Topology } from '../config/model.ts';
import { describeIssue } from '../config/issue-text.ts';
import { type MetricsServer, startMetricsServer } from '../observability/metrics-server.ts';
import type { ClientTimeouts } from './client-timeouts.ts';
import { formatErrorLogPrefix } from './access-log.ts';
import { unknownVariablesOf } from './header-templates.ts';
import { DEFAULT_ERROR_LOG_LEVEL } from '../config/log-levels.ts';
import { createErrorLog, type ErrorLog } from './error-log.ts';
import { createSyslogRouting, type SyslogRouting } from './syslog.ts';
import { createTracing } from './tracing.ts';
import { keepaliveLimitsOf } from './upstream-keepalive.ts';
import type { DecisionSink } from './exchange.ts';
import { createRequestHandler } from './handler.ts';
import { createLineSink, type LineSink } from './line-sink.ts';
import { Mirrors } from './mirror-sender.ts';
import { registerProcessMetrics } from './process-metrics.ts';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.ts';
import { boundRegexBacktracking } from '../regex-engine.ts';
import { type ListenerContext, type ListenerSpec, type RunningListeners, startListeners } from './server.ts';
import { BodyBuffers } from './request-body-buffer.ts';
import { buildSnapshot, type GatewaySnapshot, type SnapshotError, type SnapshotOptions } from './snapshot.ts';
import { type KeyPair, listenerDefaultCertificate } from './tls.ts';
import { ConnectionRegistry } from './upstream.ts';

export interface GatewayOptions {
  topology: Topology;
  /** Where to listen; at least one of http and https. Port 0 picks a free port. */
  http?: HostPort | null;
  https?: HostPort | null;
  /** Overrides proxy-real-ip-cidr: the peers trusted to send PROXY and forwarded headers. */
  trustedProxies?: readonly string[] | null;
  /** `text`: the ConfigMap's log-format-upstream (default); `json`: keepip's JSON line. */
  logFormat?: 'text' | 'json';
  /** Access log destination; default stdout. */
  accessLog?: LineSink;
  /** Error log destination (nginx error log lines); default stderr. */
  errorLog?: LineSink;
  /** Metrics to count into (share one registry with other runtimes); default a fresh registry. */
  metrics?: GatewayMetrics;
  /** Serve /metrics and /healthz here. */
  metricsListen?: HostPort | null;
  /** The certificate for TLS clients without a matching SNI name; default a generated self-signed one. */
  defaultCertificate?: KeyPair;
  /**
   * The key (base64, 48 bytes) session tickets are sealed with when the ConfigMap names none: a
   * primary hands its own to every worker. Default: this process's (snapshot.ts ownTicketKey).
   */
  ticketKey?: string;
  // Client deadlines (client-timeouts.ts): each one given overrides the ConfigMap for every snapshot.
  /** nginx client_header_timeout; default the ConfigMap's client-header-timeout (60 s). */
  clientHeaderTimeoutMs?: number;
  /** nginx client_body_timeout; default the ConfigMap's client-body-timeout (60 s). */
  clientBodyTimeoutMs?: number;
  /** nginx keepalive_timeout; default the ConfigMap's keep-alive (75 s); 0 disables keep-alive. */
  keepAliveTimeoutMs?: number;
  /** nginx send_timeout; default 60 s. */
  sendTimeoutMs?: number;
  /** nginx lingering_time; default 30 s. */
  lingeringTimeMs?: number;
  /** nginx lingering_timeout; default 5 s. */
  lingeringTimeoutMs?: number;
  /** How long close() waits for in-flight requests; default the ConfigMap's worker-shutdown-timeout (240 s). */
  drainTimeoutMs?: number;
  /** Resolves the host name of an ExternalName member per new upstream connection, and syslog-host; default node's dns.lookup. */
  lookup?: LookupFunction;
  /** Where to connect for an endpoint the manifests name (see SnapshotOptions.upstreamAddress). */
  upstreamAddress?: SnapshotOptions['upstreamAddress'];
  /** Sees every finished request (the dashboard's decision log); default none. */
  decisions?: DecisionSink;
  /** The first snapshot's version (default 1): a worker restarted by src/workers/ joins at the pod's. */
  version?: number;
  /** Bind with SO_REUSEPORT, so that worker processes share the ports (src/workers/). */
  reusePort?: boolean;
  /** Where buffered request bodies past their memory share go (proxy-request-buffering); default os.tmpdir(). */
  tempDir?: string;
  /** The memory all buffered request bodies may hold together; default 64 MiB (request-body-buffer.ts). */
  requestBodyMemoryBytes?: number;
  /** mirror-target: copies in flight at most, beyond which new ones are dropped; default 256 (mirror-sender.ts). */
  mirrorMaxInFlight?: number;
}

export type ReloadResult =
  | { ok: true; version: number; snapshot: GatewaySnapshot }
  | { ok: false; version: number; error: SnapshotError };

/** A snapshot built and checked but not serving yet: the first phase of a reload across workers. */
export interface PreparedReload {
  readonly version: number;
  readonly snapshot: GatewaySnapshot;
  /** Swaps it in (new requests start on it); a no-op after abort or a later prepare's commit. */
  commit(): void;
  /** Drops it; the running snapshot keeps serving. */
  abort(): void;
}

export type PrepareResult =
  | { ok: true; prepared: PreparedReload }
  | { ok: false; version: number; error: SnapshotError };

export interface RunningGateway {
  readonly httpAddress: AddressInfo | null;
  readonly httpsAddress: AddressInfo | null;
  readonly metricsAddress: AddressInfo | null;
  readonly metrics: GatewayMetrics;
  /** The snapshot new requests start on. */
  snapshot(): GatewaySnapshot;
  /** Builds a snapshot from `topology` and swaps it in; on error the current one keeps serving. */
  reload(topology: Topology): ReloadResult;
  /** reload() in two phases: build and check now (`version` default: the next), swap on commit(). */
  prepare(topology: Topology, version?: number): PrepareResult;
  /** Closes the listeners (new connections are refused once it resolves) and marks the gateway draining. */
  stopAccepting(): Promise<void>;
  /** Stops accepting, lets in-flight requests finish (bounded by drainTimeoutMs, else the ConfigMap's worker-shutdown-timeout), then closes everything. */
  close(): Promise<void>;
}

/** Thrown by startGateway when the initial configuration cannot be served; carries the issues. */
export class GatewayStartError extends Error {
  readonly code: SnapshotError['code'];
  readonly issues: readonly ConfigIssue[];
  constructor(error: SnapshotError) {
    super(error.message);
    this.code = error.code;
    this.issues = error.issues;
  }
}

/** The client deadlines GatewayOptions sets, as snapshot overrides (only those given). */
function clientTimeoutOverrides(options: GatewayOptions): Partial<ClientTimeouts> {
  const overrides: Partial<ClientTimeouts> = {};
  if (options.clientHeaderTimeoutMs !== undefined) overrides.headerMs = options.clientHeaderTimeoutMs;
  if (options.clientBodyTimeoutMs !== undefined) overrides.bodyMs = options.clientBodyTimeoutMs;
  if (options.keepAliveTimeoutMs !== undefined) overrides.keepAliveMs = options.keepAliveTimeoutMs;
  if (options.sendTimeoutMs !== undefined) overrides.sendMs = options.sendTimeoutMs;
  if (options.lingeringTimeMs !== undefined) overrides.lingeringTimeMs = options.lingeringTimeMs;
  if (options.lingeringTimeoutMs !== undefined) overrides.lingeringTimeoutMs = options.lingeringTimeoutMs;
  return overrides;
}

function listenerSpecs(options: GatewayOptions): ListenerSpec[] {
  const reusePort = options.reusePort === true;
  const specs: ListenerSpec[] = [];
  if (options.http) specs.push({ kind: 'http', host: options.http.host, port: options.http.port, reusePort });
  if (options.https)
    specs.push({ kind: 'https', host: options.https.host, port: options.https.port, reusePort });
  return specs;
}

interface SnapshotSlot {
  current: GatewaySnapshot;
  prepare(topology: Topology, nextVersion?: number): PrepareResult;
}

/** The snapshot being served and its version; reloads build the next one and swap it in. */
function snapshotSlot(
  options: GatewayOptions,
  connections: ConnectionRegistry,
  metrics: GatewayMetrics,
): SnapshotSlot {
  const clientTimeouts = clientTimeoutOverrides(options);
  const build = (version: number, topology: Topology) =>
    buildSnapshot(topology, {
      version,
      trustedProxies: options.trustedProxies ?? null,
      logFormat: options.logFormat ?? 'text',
      connections,
      upstreamAddress: options.upstreamAddress,
      clientTimeouts,
      ticketKey: options.ticketKey === undefined ? undefined : Buffer.from(options.ticketKey, 'base64'),
    });
  const first = build(options.version ?? 1, options.topology);
  if (!first.ok) throw new GatewayStartError(first.error);
  metrics.reload('applied', first.snapshot.version, first.snapshot.topology);
  connections.idle.limits = keepaliveLimitsOf(first.snapshot.settings);
  const slot: SnapshotSlot = {
    current: first.snapshot,
    prepare(topology: Topology, nextVersion = slot.current.version + 1): PrepareResult {
      const next = build(nextVersion, topology);
      if (!next.ok) {
        metrics.reload('rejected', slot.current.version, slot.current.topology);
        return { ok: false, version: slot.current.version, error: next.error };
      }
      const swap = () => {
        const previous = slot.current;
        slot.current = next.snapshot;
        connections.idle.limits = keepaliveLimitsOf(next.snapshot.settings);
        previous.retire();
        metrics.reload('applied', nextVersion, next.snapshot.topology);
      };
      return { ok: true, prepared: preparedReload(next.snapshot, swap) };
    },
  };
  return slot;
}

/** /metrics and /healthz when asked for; on failure the listeners already bound are undone. */
async function startMetricsOrUndo(
  options: GatewayOptions,
  metrics: GatewayMetrics,
  healthy: () => boolean,
  undo: () => Promise<void>,
): Promise<MetricsServer | null> {
  if (!options.metricsListen) return null;
  try {
    const { host, port } = options.metricsListen;
    return await startMetricsServer({ host, port, registry: metrics.registry, healthy });
  } catch (error) {
    await undo();
    throw error;
  }
}

/** The process's serving gauges (connections open and reading, requests in flight), read at each scrape. */
function registerServingMetrics(
  metrics: GatewayMetrics,
  listeners: RunningListeners,
  active: { count: number },
  slot: SnapshotSlot,
): void {
  registerProcessMetrics(metrics.registry, {
    counts: metrics.serving,
    open: () => listeners.openConnections(),
    reading: () => listeners.readingConnections(),
    inflight: () => active.count,
    labels: () => slot.current.topology.gateway.requestMetrics,
  });
}

/** Waits (bounded) for requests in flight to end, closing connections as they fall idle. */
async function drain(
  listeners: RunningListeners,
  active: { count: number },
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (active.count > 0 && Date.now() < deadline) {
    listeners.closeIdle();
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  // The last request may have ended since the previous pass: its connection is idle now, and its
  // answer may still be held for this turn's write (write-batch.ts); closeIdle writes it, destroyAll
  // alone would drop it (seen: a request in flight at SIGTERM answered with a bare close).
  listeners.closeIdle();
  listeners.destroyAll();
}

/**
 * The access and error logs: the given sinks (stdout, stderr), or a syslog server with enable-syslog;
 * error lines below the served error-log-level are dropped.
 */
function logSinks(options: GatewayOptions, slot: SnapshotSlot): SyslogRouting & { errorLog: ErrorLog } {
  const routing = createSyslogRouting(
    {
      access: options.accessLog ?? createLineSink(process.stdout),
      error: options.errorLog ?? createLineSink(process.stderr),
    },
    () => slot.current.settings.syslog,
    (message) => formatErrorLogPrefix(Date.now(), process.pid, null, 'error') + message,
    options.lookup,
  );
  const level = () => slot.current.settings.errorLogLevel ?? DEFAULT_ERROR_LOG_LEVEL;
  return { ...routing, errorLog: createErrorLog(routing.error, level) };
}

/** The listeners; when one cannot bind, what was started is undone (`undo`) and the error thrown. */
async function listenOrUndo(
  options: GatewayOptions,
  ctx: Omit<ListenerContext, 'defaultCertificate'>,
  undo: () => Promise<void>,
): Promise<RunningListeners> {
  try {
    const defaultCertificate = await listenerDefaultCertificate(options);
    return await startListeners(listenerSpecs(options), { ...ctx, defaultCertificate });
  } catch (error) {
    await undo();
    throw error;
  }
}

/** Where buffered request bodies go (proxy-request-buffering), counted in the gateway's metrics. */
function bodyBuffersFor(options: GatewayOptions, metrics: GatewayMetrics): BodyBuffers {
  return new BodyBuffers({
    tempDir: options.tempDir,
    memoryBytes: options.requestBodyMemoryBytes,
    observer: metrics,
  });
}

export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  if (!options.http && !options.https) throw new TypeError('startGateway: give http and/or https');
  // Every way of serving (CLI, workers, controller, up, programmatic) passes here before a client is read.
  boundRegexBacktracking();
  const connections = new ConnectionRegistry(options.lookup !== undefined ? { lookup: options.lookup } : {});
  const metrics = options.metrics ?? createGatewayMetrics();
  const slot = snapshotSlot(options, connections, metrics);
  const logs = logSinks(options, slot);
  const { access: accessLog, error: errorSink, errorLog } = logs;
  const active = { count: 0 };
  let draining = false;
  const current = () => slot.current;
  const mirrors = new Mirrors({
    registry: metrics.registry,
    errorLog,
    maxInFlight: options.mirrorMaxInFlight,
  });
  const tracing = createTracing(errorLog);
  const handler = createRequestHandler({
    current,
    metrics,
    tracing,
    accessLog,
    errorLog,
    isDraining: () => draining,
    active,
    decisions: options.decisions,
    bodyBuffers: bodyBuffersFor(options, metrics),
    mirrors,
  });
  const listeners = await listenOrUndo(
    options,
    { current, handler, metrics, errorLog, accessLog },
    async () => {
      slot.current.retire();
      logs.close();
      await connections.closeAll(0);
    },
  );
  registerServingMetrics(metrics, listeners, active, slot);
  const metricsServer = await startMetricsOrUndo(
    options,
    metrics,
    () => !draining,
    async () => {
      listeners.destroyAll();
      await listeners.stopAccepting();
      slot.current.retire();
      await connections.closeAll(0);
    },
  );
  let closing: Promise<void> | null = null;
  const stopAccepting = async () => {
    draining = true;
    await listeners.stopAccepting(); // again (close after stopAccepting): a no-op
  };
  return {
    httpAddress: listeners.addresses.http,
    httpsAddress: listeners.addresses.https,
    metricsAddress: metricsServer?.address ?? null,
    metrics,
    snapshot: current,
    reload(topology) {
      const next = slot.prepare(topology);
      if (!next.ok) return next;
      next.prepared.commit();
      return { ok: true, version: slot.current.version, snapshot: slot.current };
    },
    prepare: (topology, nextVersion) => slot.prepare(topology, nextVersion),
    stopAccepting,
    close() {
      closing ??= (async () => {
        await stopAccepting();
        const bound = options.drainTimeoutMs ?? slot.current.settings.workerShutdownTimeoutMs;
        await drain(listeners, active, bound);
        slot.current.retire();
        await connections.closeAll(500);
        mirrors.close();
        await tracing.close();
        await metricsServer?.close();
        await accessLog.flush();
        await errorSink.flush();
        logs.close();
      })();
      return closing;
    },
  };
}

/** The second phase of a reload: `swap` on commit, or the snapshot retired on abort; once either way. */
function preparedReload(snapshot: GatewaySnapshot, swap: () => void): PreparedReload {
  let settled = false;
  return {
    version: snapshot.version,
    snapshot,
    commit() {
      if (settled) return;
      settled = true;
      swap();
    },
    abort() {
      if (settled) return;
      settled = true;
      snapshot.retire();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// What to tell the operator: start-up and reload lines, shared by `keepip gateway` and `keepip up`.

export interface GatewayEvent {
  level: 'info' | 'warning' | 'error';
  event: string;
  message: string;
  [field: string]: unknown;
}

function trustText(snap: GatewaySnapshot): string {
  const list = snap.trustedCidrs.length === 0 ? 'nobody' : snap.trustedCidrs.join(',');
  const source =
    snap.trustSource === 'flag'
      ? '--trusted-proxies'
      : snap.trustSource === 'configmap'
        ? 'proxy-real-ip-cidr'
        : 'proxy-real-ip-cidr default';
  return `${list} (${source})`;
}

/** Counts for the config line. */
export function describeConfig(snap: GatewaySnapshot): string {
  const { gateway } = snap.topology;
  const ingresses = new Set<string>();
  let locations = 0;
  for (const vhost of gateway.virtualHosts) {
    for (const location of vhost.locations) {
      locations += 1;
      ingresses.add(`${location.ingress.namespace}/${location.ingress.name}`);
    }
  }
  const hosts = gateway.virtualHosts.length;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const ingressText = `${ingresses.size} Ingress${ingresses.size === 1 ? '' : 'es'}`;
  return `${ingressText}, ${plural(hosts, 'host')}, ${plural(locations, 'location')}, ingress class ${gateway.ingressClass}`;
}

/**
 * ingress-nginx names keepip does not read, one line per kind (src/k8s/annotation-catalog.ts): the
 * event, its level and the words before the list.
 */
const NAME_LINES: Readonly<Record<string, readonly [string, GatewayEvent['level'], string]>> = {
  UNSUPPORTED_ANNOTATION: [
    'unsupported-annotations',
    'warning',
    'unsupported annotations (not ingress-nginx names, no effect)',
  ],
  ANNOTATION_REFUSED: ['refused-annotations', 'warning', 'refused annotations (not honoured)'],
  ANNOTATION_NO_EFFECT: ['no-effect-annotations', 'info', 'annotations with no effect in keepip'],
  UNSUPPORTED_CONFIGMAP_KEY: [
    'unsupported-configmap-keys',
    'warning',
    'unsupported ConfigMap keys (not ingress-nginx names, no effect)',
  ],
  CONFIGMAP_KEY_REFUSED: ['refused-configmap-keys', 'warning', 'refused ConfigMap keys (not honoured)'],
  CONFIGMAP_KEY_NO_EFFECT: ['no-effect-configmap-keys', 'info', 'ConfigMap keys with no effect in keepip'],
};

/** The issues and warnings of a snapshot worth a line: unsupported names, trust-everyone, contained errors. */
/**
 * One line per issue said: the same issue found twice (a location's path compiled for each of its
 * readings, a rewrite read by two steps) is one line, at the more severe of its levels.
 */
function distinctIssueLines() {
  const lines = new Map<string, GatewayEvent>();
  return {
    add(
      issue: { severity: 'error' | 'warning' | 'info'; code: string } & Parameters<typeof describeIssue>[0],
    ) {
      const message = describeIssue(issue);
      const key = `${issue.code}\u0000${message}`;
      const known = lines.get(key);
      if (known === undefined)
        lines.set(key, { level: issue.severity, event: 'config-issue', message, code: issue.code });
      else if (issue.severity === 'error') known.level = 'error';
    },
    events: () => [...lines.values()],
  };
}

export function snapshotEvents(snap: GatewaySnapshot): GatewayEvent[] {
  const events: GatewayEvent[] = [];
  const { settings } = snap;
  const named = new Map<string, Set<string>>();
  const issueLines = distinctIssueLines();
  for (const issue of snap.topology.issues) {
    // The translation warned of the ConfigMap's trust; --trusted-proxies replaced it (see below).
    if (issue.code === 'TRUSTS_EVERYONE' && snap.trustSource === 'flag') continue;
    if (NAME_LINES[issue.code] !== undefined) {
      const name = /"([^"]+)"/.exec(issue.message)?.[1] ?? issue.field ?? issue.message;
      const object =
        issue.origin && issue.origin.kind !== 'ConfigMap'
          ? ` (${issue.origin.kind} ${issue.origin.namespace}/${issue.origin.name})`
          : '';
      const names = named.get(issue.code) ?? new Set<string>();
      names.add(`${name}${object}`);
      named.set(issue.code, names);
    } else if (issue.severity !== 'info') {
      issueLines.add(issue);
    }
  }
  // What compiling the routes found (ROUTE_INVALID_REGEX: that location answers 503; duplicate or
  // unmatchable hosts; unusable rewrite targets), by code like the manifests' own issues.
  for (const issue of snap.routes.issues) if (issue.severity !== 'info') issueLines.add(issue);
  events.push(...issueLines.events());
  for (const [code, [event, level, words]] of Object.entries(NAME_LINES)) {
    const names = named.get(code);
    if (names !== undefined)
      events.push({ level, event, message: `${words}: ${[...names].join(', ')}`, names: [...names] });
  }
  if (coversEveryAddress(snap.trustedCidrs)) {
    if (settings.useProxyProtocol) {
      events.push({
        level: 'warning',
        event: 'trust-everyone',
        message:
          `PROXY headers are accepted from every peer (trusted: ${trustText(snap)}): anything that reaches the ` +
          'listener can claim any client address and pass the allow lists; set proxy-real-ip-cidr or --trusted-proxies to your load balancers',
      });
    }
    if (readsForwardedHeader(settings)) {
      events.push({
        level: 'warning',
        event: 'trust-everyone',
        message:
          `${settings.forwardedForHeader} is believed from every peer (trusted: ${trustText(snap)}): any client can write ` +
          'its own address and pass the allow lists; set proxy-real-ip-cidr or --trusted-proxies to your proxies',
      });
    }
  }
  for (const name of snap.emptyUpstreams) {
    events.push({
      level: 'warning',
      event: 'no-endpoints',
      message: `upstream ${name} has no ready endpoint: its locations answer 503`,
      upstream: name,
    });
  }
  for (const problem of snap.certificates.problems) {
    const forWhom =
      problem.host === '' ? 'names without their own (--default-ssl-certificate)' : problem.host;
    const served = problem.host === '' ? 'the generated' : 'the default';
    events.push({
      level: 'warning',
      event: 'certificate',
      message: `certificate of Secret ${problem.secret} for ${forWhom} cannot be used (${problem.message}): ${served} certificate is served`,
    });
  }
  for (const problem of snap.upstreamTlsProblems) {
    events.push({
      level: 'error',
      event: 'upstream-tls-settings',
      message: `proxy-ssl-protocols / proxy-ssl-ciphers with Secret ${problem.secret} cannot be used (${problem.message}): requests to those HTTPS backends fail (502)`,
      code: problem.code,
    });
  }
  for (const problem of snap.certificates.settingsProblems) {
    events.push({
      level: 'error',
      event: 'tls-settings',
      message: `TLS settings of ${problem.scope} cannot be used (${problem.message}): their handshakes are refused`,
      code: 'INVALID_TLS_SETTINGS',
    });
  }
  events.push(...unknownVariableEvents(snap));
  return events;
}

/** The variables the log format and add-headers values name that keepip does not know. */
function unknownVariableEvents(snap: GatewaySnapshot): GatewayEvent[] {
  const events: GatewayEvent[] = snap.unknownLogVariables.map((variable) => ({
    level: 'warning',
    event: 'log-format',
    message: `log format variable $${variable} is unknown to keepip and logs as "-"`,
  }));
  for (const { name, template } of snap.routes.addHeaderTemplates ?? [])
    for (const variable of unknownVariablesOf(template))
      events.push({
        level: 'warning',
        event: 'add-headers',
        message: `add-headers ${name}: variable $${variable} is not one keepip expands; it expands to ""`,
      });
  return events;
}

/** One line per listener, stable for scripts: `listening http 127.0.0.1:43123 (…)`. */
export function listenerEvents(
  running: Pick<RunningGateway, 'snapshot' | 'httpAddress' | 'httpsAddress' | 'metricsAddress'>,
): GatewayEvent[] {
  const snap = running.snapshot();
  const { settings } = snap;
  const proxyText = settings.useProxyProtocol
    ? `PROXY protocol v1/v2 required from ${snap.trustedCidrs.join(',') || 'nobody'}`
    : 'no PROXY protocol';
  const events: GatewayEvent[] = [];
  const line = (kind: 'http' | 'https', address: AddressInfo, detail: string) => {
    events.push({
      level: 'info',
      event: 'listening',
      message: `listening ${kind} ${formatHostPort(address.address, address.port)} (${detail})`,
      listener: kind,
      address: address.address,
      port: address.port,
      proxyProtocol: settings.useProxyProtocol,
    });
  };
  if (running.httpAddress) line('http', running.httpAddress, proxyText);
  if (running.httpsAddress) {
    const hosts = snap.certificates.hosts.length;
    line(
      'https',
      running.httpsAddress,
      `${proxyText}; TLS with ${hosts} SNI certificate${hosts === 1 ? '' : 's'} and a self-signed default`,
    );
  }
  const strategies = ['socket', ...(settings.useProxyProtocol ? ['PROXY header'] : [])];
  if (readsForwardedHeader(settings)) strategies.push(settings.forwardedForHeader);
  events.push({
    level: 'info',
    event: 'client-address',
    message: `client address from ${strategies.join(' -> ')}; trusted peers ${trustText(snap)}`,
  });
  if (running.metricsAddress) {
    const where = formatHostPort(running.metricsAddress.address, running.metricsAddress.port);
    events.push({
      level: 'info',
      event: 'metrics',
      message: `metrics http://${where}/metrics, health http://${where}/healthz`,
    });
  }
  return events;
}
