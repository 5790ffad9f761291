// `keepip gateway`: the L7 ingress gateway for Ingress manifests. Reads -f files/directories, serves
// them, reloads on change or SIGHUP, drains on SIGTERM/SIGINT. Start-up and reload lines go to
// stderr (stdout carries the access log unless --access-log names a file).
import { parseDurationMs } from '../config/duration.ts';
import { describeIssue } from '../config/issue-text.ts';
import type { SyslogTarget, Topology } from '../config/model.ts';
import { gatewaySources } from '../dashboard/attach.ts';
import {
  DASHBOARD_FLAG_OPTIONS,
  DASHBOARD_USAGE,
  type DashboardPlan,
  launchDashboard,
  prepareDashboard,
} from '../dashboard/flag.ts';
import type { RunningDashboard } from '../dashboard/server.ts';
import {
  describeConfig,
  type GatewayEvent,
  GatewayStartError,
  listenerEvents,
  type RunningGateway,
  snapshotEvents,
  startGateway,
} from '../gateway/gateway.ts';
import { createFileLineSink } from '../gateway/file-line-sink.ts';
import type { LineSink, ReopenFailure } from '../gateway/line-sink.ts';
import { type ConfigWatcher, watchConfig } from '../gateway/reload.ts';
import { loadTopology } from '../k8s/index.ts';
import type { LogEscape } from '../gateway/access-log.ts';
import { accessLogEscape } from '../gateway/snapshot.ts';
import { parseCidr } from '../net/cidr.ts';
import { type HostPort, parseHostPort } from '../net/host-port.ts';
import { availableCores } from '../workers/cores.ts';
import { chooseWorkerCount, parseWorkerCount } from '../workers/count.ts';
import { parseWatchdog } from '../workers/watchdog.ts';
import { startGatewayWorkers, type WorkerGateway } from '../workers/gateway-primary.ts';
import { parseCommandArgs, usageError } from './args.ts';
import type { Command } from './main.ts';
import { catchSignals } from './signals.ts';

export { type GatewayOptions, type RunningGateway, startGateway } from '../gateway/gateway.ts';

const HELP = `Usage: keepip gateway -f <file|dir>... [options]

The L7 ingress gateway (ingress-nginx compatible) for the Ingress objects in the manifests.

Options:
  -f, --filename <path>      manifest file or directory (repeatable; directories are read recursively)
      --http <ADDR:PORT>     plain HTTP listener (default 127.0.0.1:8080 when neither --http nor --https)
      --https <ADDR:PORT>    TLS listener, certificates from the Ingress TLS Secrets by SNI
                             (default 127.0.0.1:8443 when neither --http nor --https)
      --configmap <ns/name>  the controller ConfigMap (default ingress-nginx/ingress-nginx-controller)
      --ingress-class <name> serve Ingresses of this class (default nginx)
      --enable-ssl-passthrough
                             honour ssl-passthrough: TLS for those hosts goes unread to their backend
                             (as the ingress-nginx controller flag; off: the annotation is reported)
      --disable-svc-external-name
                             ExternalName Services get no endpoint (503), as the controller flag
      --trusted-proxies <CIDR,...>
                             peers trusted to send PROXY and forwarded headers (overrides proxy-real-ip-cidr)
      --access-log <FILE>    append the access log to FILE (default stdout)
      --log-format <text|json>
                             text: the ConfigMap's log-format-upstream (default); json: one JSON object per line
      --metrics <ADDR:PORT>  serve Prometheus /metrics and /healthz
      --drain-timeout <D>    on SIGTERM/SIGINT, wait at most this long for in-flight requests (default 10s;
                             10s, 500ms, or a plain number of seconds)
      --json                 start-up and reload lines as JSON objects (stderr)
      --workers <N|auto>     serving processes sharing the ports (default: the ConfigMap's worker-processes,
                             else 1; auto: one per available core)
      --worker-watchdog <D>  a worker that says nothing to the primary this long is killed and replaced
                             (default 10s; at least 1s)
${DASHBOARD_USAGE}  -h, --help                 this help

Signals: SIGHUP reloads the manifests (they are also watched); SIGUSR1 reopens the --access-log file
         (after logrotate moved it); SIGTERM/SIGINT stop accepting, drain, exit 0.
Exit codes: 0 stopped cleanly, 1 the configuration cannot be served or a listener cannot bind, 2 usage error.
`;

const USAGE = { command: 'gateway', help: HELP };

interface CliOptions {
  paths: string[];
  http: HostPort | null;
  https: HostPort | null;
  configMap: string | undefined;
  ingressClass: string;
  /** --enable-ssl-passthrough. */
  enableSslPassthrough: boolean;
  /** --disable-svc-external-name. */
  disableServiceExternalName: boolean;
  trustedProxies: string[] | null;
  accessLog: string | null;
  logFormat: 'text' | 'json';
  metrics: HostPort | null;
  drainTimeoutMs: number;
  json: boolean;
  dashboard: { dashboard?: string; 'dashboard-token-file'?: string };
  /** --workers, null when not given (then the ConfigMap's worker-processes, else 1). */
  workers: number | null;
  /** --worker-watchdog (src/workers/watchdog.ts). */
  watchdogMs: number;
}

/** One process (startGateway) or a primary with worker processes (src/workers/). */
type Served = RunningGateway | WorkerGateway;

type Parsed = { ok: true; options: CliOptions } | { ok: false; error: string };

/** --trusted-proxies as a list of CIDRs (null when not given), or what is wrong with it. */
function trustedProxiesOf(text: string | undefined): string[] | null | string {
  if (text === undefined) return null;
  const list = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  for (const entry of list) {
    const parsed = parseCidr(entry);
    if (!parsed.ok) return `--trusted-proxies: "${entry}": ${parsed.error.message}`;
  }
  return list;
}

/** The options, what is wrong with them, or the exit code after --help or a parse error. */
function parseCli(argv: string[]): Parsed | number {
  const parsed = parseCommandArgs(USAGE, {
    args: argv,
    allowPositionals: false,
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      http: { type: 'string' },
      https: { type: 'string' },
      configmap: { type: 'string' },
      'ingress-class': { type: 'string' },
      'enable-ssl-passthrough': { type: 'boolean' },
      'disable-svc-external-name': { type: 'boolean' },
      'trusted-proxies': { type: 'string' },
      'access-log': { type: 'string' },
      'log-format': { type: 'string' },
      metrics: { type: 'string' },
      'drain-timeout': { type: 'string' },
      'worker-watchdog': { type: 'string' },
      ...DASHBOARD_FLAG_OPTIONS,
      json: { type: 'boolean' },
      workers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (typeof parsed === 'number') return parsed;
  const values: Readonly<Record<string, string | string[] | boolean | undefined>> = parsed.values;
  const paths = (values.filename as string[] | undefined) ?? [];
  if (paths.length === 0) return { ok: false, error: 'give at least one manifest with -f <file|dir>' };
  const address = (flag: string): HostPort | null | string => {
    const text = values[flag] as string | undefined;
    if (text === undefined) return null;
    const parsed = parseHostPort(text);
    return parsed.ok ? parsed.value : `--${flag}: ${parsed.error}`;
  };
  let http = address('http');
  let https = address('https');
  const metrics = address('metrics');
  for (const value of [http, https, metrics])
    if (typeof value === 'string') return { ok: false, error: value };
  if (http === null && https === null) {
    http = { host: '127.0.0.1', port: 8080 };
    https = { host: '127.0.0.1', port: 8443 };
  }
  const trustedProxies = trustedProxiesOf(values['trusted-proxies'] as string | undefined);
  if (typeof trustedProxies === 'string') return { ok: false, error: trustedProxies };
  const logFormat = (values['log-format'] as string | undefined) ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json')
    return { ok: false, error: '--log-format must be text or json' };
  const drainText = (values['drain-timeout'] as string | undefined) ?? '10';
  const drainTimeoutMs = parseDurationMs(drainText);
  if (drainTimeoutMs === null) {
    return { ok: false, error: `--drain-timeout: "${drainText}" is not a duration (10, 10s, 500ms)` };
  }
  const pool = poolFlags(values);
  if (typeof pool === 'string') return { ok: false, error: pool };
  const configMap = values.configmap as string | undefined;
  if (configMap !== undefined && !/^[^/\s]+\/[^/\s]+$/.test(configMap)) {
    return { ok: false, error: `--configmap: "${configMap}" is not namespace/name` };
  }
  return {
    ok: true,
    options: {
      paths,
      http: http as HostPort | null,
      https: https as HostPort | null,
      configMap,
      ingressClass: (values['ingress-class'] as string | undefined) ?? 'nginx',
      enableSslPassthrough: values['enable-ssl-passthrough'] === true,
      disableServiceExternalName: values['disable-svc-external-name'] === true,
      trustedProxies,
      accessLog: (values['access-log'] as string | undefined) ?? null,
      logFormat,
      metrics: metrics as HostPort | null,
      drainTimeoutMs,
      json: values.json === true,
      dashboard: {
        dashboard: values.dashboard as string | undefined,
        'dashboard-token-file': values['dashboard-token-file'] as string | undefined,
      },
      ...pool,
    },
  };
}

/** --workers and --worker-watchdog, or what is wrong with them. */
function poolFlags(
  values: Readonly<Record<string, unknown>>,
): Pick<CliOptions, 'workers' | 'watchdogMs'> | string {
  const workersText = values.workers as string | undefined;
  const workers = parseWorkerCount(workersText ?? '1', availableCores());
  if (!workers.ok) return `--workers: ${workers.error} [${workers.code}]`;
  const watchdog = parseWatchdog((values['worker-watchdog'] as string | undefined) ?? '10s');
  if (!watchdog.ok) return `--worker-watchdog: ${watchdog.error} [${watchdog.code}]`;
  return { workers: workersText === undefined ? null : workers.value, watchdogMs: watchdog.value };
}

/** --dashboard: serves it once the gateway runs; null (and an error line) when it cannot listen. */
async function serveDashboard(
  plan: DashboardPlan,
  running: Served,
  report: (event: GatewayEvent) => void,
): Promise<RunningDashboard | null> {
  try {
    const { running: board, lines } = await launchDashboard(plan, gatewaySources(running));
    for (const line of lines) report({ ...line, event: 'dashboard' });
    return board;
  } catch (error) {
    report({ level: 'error', event: 'start-failed', message: `dashboard: ${(error as Error).message}` });
    return null;
  }
}

/** A sink whose close runs once, however many of the command's paths end it. */
function closingOnce(sink: LineSink): LineSink {
  const close = sink.close.bind(sink);
  let closing: Promise<void> | null = null;
  sink.close = () => {
    closing ??= close();
    return closing;
  };
  return sink;
}

function createReporter(json: boolean): (event: GatewayEvent) => void {
  return (event) => {
    if (json) {
      process.stderr.write(`${JSON.stringify({ source: 'keepip gateway', ...event })}\n`);
      return;
    }
    const level = event.level === 'info' ? '' : `${event.level}: `;
    // A coded event says its code, as the others' lines do (`… [WORKER_RELOAD_ABORTED]`).
    const code =
      typeof event.code === 'string' && !event.message.includes(event.code) ? ` [${event.code}]` : '';
    process.stderr.write(`keepip gateway: ${level}${event.message}${code}\n`);
  };
}

async function readTopology(options: CliOptions): Promise<Topology> {
  return loadTopology(options.paths, {
    ingressClass: options.ingressClass,
    ...(options.configMap !== undefined ? { configMap: options.configMap } : {}),
    enableSslPassthrough: options.enableSslPassthrough,
    disableServiceExternalName: options.disableServiceExternalName,
  });
}

export const command: Command = {
  summary: 'The L7 ingress gateway for Ingress manifests (ingress-nginx compatible)',
  async run(argv) {
    const parsed = parseCli(argv);
    if (typeof parsed === 'number') return parsed;
    if (!parsed.ok) return usageError(USAGE, parsed.error);
    const options = parsed.options;
    const dashboard = await prepareDashboard(options.dashboard, process.env);
    if (!dashboard.ok) return usageError(USAGE, dashboard.error);
    const report = createReporter(options.json);
    const accessLog =
      options.accessLog === null ? undefined : closingOnce(createFileLineSink({ path: options.accessLog }));
    const running = await startServing(options, dashboard.plan, accessLog, report);
    if (running === null) {
      await accessLog?.close();
      return 1;
    }
    const board = dashboard.plan ? await serveDashboard(dashboard.plan, running, report) : null;
    if (dashboard.plan && board === null) {
      await running.close();
      await accessLog?.close();
      return 1;
    }
    // Signals first: a SIGTERM that arrives while the start-up lines are printed must still drain.
    const lifetime = handleSignals(report, {
      stopAccepting: () => running.stopAccepting(),
      drain: async () => {
        await running.close();
        await board?.close();
        await accessLog?.close();
      },
      reopen: () => reopenAccessLog(options.accessLog, running, accessLog, report),
    });
    // Watching before the start-up lines: a change made once `listening` is printed is never missed.
    const watcher = await watchConfig(options.paths, () => reload(options, running, report), {
      onError: (error) =>
        report({ level: 'error', event: 'reload-failed', message: (error as Error).message }),
    });
    lifetime.watching(watcher);
    reportStartup(options, running, report);
    return lifetime.finished;
  },
};

/** The gateway on the manifests, or null when it cannot serve them (every reason reported). */
async function startServing(
  options: CliOptions,
  dashboard: DashboardPlan | null,
  accessLog: LineSink | undefined,
  report: (event: GatewayEvent) => void,
): Promise<Served | null> {
  try {
    const topology = await readTopology(options);
    const workers = workerCount(options, topology);
    // Workers open the access log themselves (each appends whole lines): this process's sink, opened
    // to find an unwritable path at once, is closed, so that no rotated file stays held open here.
    if (workers > 1) {
      const served = await startWorkers(options, workers, topology, dashboard, report);
      await accessLog?.close();
      return served;
    }
    return await startGateway({
      topology,
      http: options.http,
      https: options.https,
      trustedProxies: options.trustedProxies,
      logFormat: options.logFormat,
      ...(accessLog ? { accessLog } : {}),
      metricsListen: options.metrics,
      drainTimeoutMs: options.drainTimeoutMs,
      ...(dashboard ? { decisions: dashboard.log.sink } : {}),
    });
  } catch (error) {
    if (!(error instanceof GatewayStartError)) {
      report({ level: 'error', event: 'start-failed', message: (error as Error).message });
      return null;
    }
    report({
      level: 'error',
      event: 'config-rejected',
      message: `cannot serve ${options.paths.join(', ')}: ${error.message}`,
      code: error.code,
    });
    for (const issue of error.issues) {
      report({ level: 'error', event: 'config-issue', message: describeIssue(issue), code: issue.code });
    }
    return null;
  }
}

/** --workers, else the ConfigMap's worker-processes, else 1. */
function workerCount(options: CliOptions, topology: Topology): number {
  return chooseWorkerCount({
    flag: options.workers,
    configMap: topology.gateway.settings.workerProcesses,
    fallback: 1,
    available: availableCores(),
  }).value;
}

/** The primary and its workers; the same options as one process, the access log opened by each worker. */
function startWorkers(
  options: CliOptions,
  workers: number,
  topology: Topology,
  dashboard: DashboardPlan | null,
  report: (event: GatewayEvent) => void,
): Promise<WorkerGateway> {
  return startGatewayWorkers({
    workers,
    topology,
    http: options.http,
    https: options.https,
    trustedProxies: options.trustedProxies,
    logFormat: options.logFormat,
    accessLogPath: options.accessLog,
    metricsListen: options.metrics,
    drainTimeoutMs: options.drainTimeoutMs,
    watchdogMs: options.watchdogMs,
    log: report,
    ...(dashboard ? { decisionLog: dashboard.log } : {}),
  });
}

/**
 * SIGUSR1, as nginx's: the --access-log file is opened again by its path (after logrotate moved it);
 * lines queued before go to the file they were written for. A path that cannot be opened keeps the
 * file it had.
 */
async function reopenAccessLog(
  path: string | null,
  running: Served,
  accessLog: LineSink | undefined,
  report: (event: GatewayEvent) => void,
): Promise<void> {
  if (path === null) {
    report({ level: 'info', event: 'log-reopen', message: 'SIGUSR1: no --access-log file to reopen' });
    return;
  }
  let failed: string[] = [];
  if ('reopenLogs' in running) failed = (await running.reopenLogs()).failed;
  else {
    const result = await accessLog?.reopen?.();
    if (result?.ok === false) failed = [result.message];
  }
  if (failed.length === 0) {
    report({ level: 'info', event: 'log-reopen', message: `SIGUSR1: access log ${path} reopened` });
    return;
  }
  const why = failed.join('; ');
  report({
    level: 'error',
    event: 'log-reopen-failed',
    message: `SIGUSR1: cannot reopen ${path} (${why}); writing on to the file it had [ACCESS_LOG_REOPEN_FAILED]`,
    code: 'ACCESS_LOG_REOPEN_FAILED' satisfies ReopenFailure['code'],
  });
}

/**
 * SIGHUP reloads (once the watcher exists: a hangup before that is kept for it); SIGUSR1 reopens the
 * access log; SIGTERM and SIGINT stop accepting (every worker's listeners closed before the line says
 * so) and drain, then `finished` resolves with exit code 0.
 */
function handleSignals(
  report: (event: GatewayEvent) => void,
  actions: { stopAccepting: () => Promise<void>; drain: () => Promise<void>; reopen: () => Promise<void> },
): { finished: Promise<number>; watching(watcher: ConfigWatcher): void } {
  const signals = catchSignals({ hangups: true });
  const onReopen = () => void actions.reopen();
  // A listener also keeps SIGUSR1 from opening Node's inspector on a gateway.
  process.on('SIGUSR1', onReopen);
  let watcher: ConfigWatcher | null = null;
  let stopping = false;
  const finished = signals.stopped.then(async (signal) => {
    stopping = true;
    process.off('SIGUSR1', onReopen);
    watcher?.close();
    report({ level: 'info', event: 'stopping', message: `${signal}: stopping, closing the listeners` });
    // The drain starts at once (its bound counts from the signal); the line waits until no listener is left.
    const listenersClosed = actions.stopAccepting();
    const drained = actions.drain();
    await listenersClosed.catch(() => {});
    report({
      level: 'info',
      event: 'draining',
      message: `${signal}: stopped accepting, draining in-flight requests`,
    });
    await drained;
    report({ level: 'info', event: 'stopped', message: 'stopped' });
    return 0;
  });
  return {
    finished,
    watching(next) {
      watcher = next;
      if (stopping) next.close();
      else signals.onHangup(() => next.trigger());
    },
  };
}

const ESCAPING_NAMES: Record<LogEscape, string> = {
  default: '',
  json: ', JSON escaping',
  none: ', no escaping',
};

function logDestination(options: CliOptions, syslog: SyslogTarget | undefined): string {
  if (syslog === undefined) return options.accessLog ?? 'stdout';
  const host = syslog.host.includes(':') ? `[${syslog.host}]` : syslog.host;
  return `syslog udp://${host}:${syslog.port} (enable-syslog; the error log too)`;
}

/** The start-up lines: the configuration, the listeners, the access log, the snapshot's warnings. */
function reportStartup(options: CliOptions, running: Served, report: (event: GatewayEvent) => void): void {
  const snap = running.snapshot();
  report({
    level: 'info',
    event: 'config',
    message: `config v${snap.version} from ${options.paths.join(', ')}: ${describeConfig(snap)}`,
    version: snap.version,
  });
  for (const event of listenerEvents(running)) report(event);
  if ('pids' in running) report(workersEvent(running));
  report({
    level: 'info',
    event: 'access-log',
    message: `access log to ${logDestination(options, snap.settings.syslog)} (${options.logFormat === 'json' ? 'JSON' : `log-format-upstream${ESCAPING_NAMES[accessLogEscape(snap.settings, options)]}`})`,
  });
  for (const event of snapshotEvents(snap)) report(event);
}

/** Reads the manifests again; a rejected change keeps the running configuration, and says why. */
async function reload(
  options: CliOptions,
  running: Served,
  report: (event: GatewayEvent) => void,
): Promise<void> {
  const sources = options.paths.join(', ');
  // Reading and translating the manifests blocks this thread: workers' limiter checks wait meanwhile.
  const workers = 'holdLimiter' in running ? running : null;
  workers?.holdLimiter();
  let topology: Topology;
  try {
    topology = await readTopology(options);
  } catch (error) {
    workers?.endLimiterHold();
    throw error;
  }
  const result = await running.reload(topology);
  if (result.ok) {
    report({
      level: 'info',
      event: 'reloaded',
      message: `reloaded: config v${result.version} from ${sources}: ${describeConfig(result.snapshot)}`,
      version: result.version,
    });
    for (const event of snapshotEvents(result.snapshot)) report(event);
    return;
  }
  report({
    level: 'error',
    event: 'reload-rejected',
    message: `reload rejected (${result.error.message}); still serving config v${result.version}`,
    code: result.error.code,
    version: result.version,
  });
  for (const issue of result.error.issues) {
    report({ level: 'error', event: 'config-issue', message: describeIssue(issue), code: issue.code });
  }
}

/** `workers: 2 processes (pids 41, 42) share the listening ports (SO_REUSEPORT)`. */
function workersEvent(running: WorkerGateway): GatewayEvent {
  const pids = running.pids();
  return {
    level: 'info',
    event: 'workers',
    message: `workers: ${running.workers} processes (pids ${pids.join(', ')}) share the listening ports (SO_REUSEPORT)`,
    workers: running.workers,
    pids,
  };
}
