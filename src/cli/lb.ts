// `keepip lb`: the L4 load balancer in an AWS NLB's role, configured by flags or by a Service of type
// LoadBalancer in manifests (-f). Start-up lines say what listens where with which settings; SIGHUP
// re-reads the manifests, applies the source ranges and re-registers targets (removed ones drain);
// SIGINT/SIGTERM stop cleanly.
// Only the argument parsing is loaded up front; the engine, the manifest reader and prom-client are
// imported once the arguments are known to be good, so usage errors and --help answer quickly.
import type { AddressInfo } from 'node:net';
import { parseDurationMs } from '../config/duration.ts';
import { describeIssue } from '../config/issue-text.ts';
import type { HealthCheckModel, Topology } from '../config/model.ts';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_DEREGISTRATION_DELAY_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  LB_ALGORITHMS,
  type LbAlgorithm,
  type LbRuntimeConfig,
  type TargetAddress,
  validateLbConfig,
} from '../lb/config.ts';
import type { RunningLb, SourceRangesResult } from '../lb/balancer.ts';
import type { LbListenerPlan } from '../lb/manifest.ts';
import { CidrSet } from '../net/cidr-set.ts';
import { formatHostPort, type HostPort, parseHostPort } from '../net/host-port.ts';
import { availableCores } from '../workers/cores.ts';
import { parseWorkerCount } from '../workers/count.ts';
import { parseWatchdog } from '../workers/watchdog.ts';
import { type ParsedArgs, parseCommandArgs, usageError } from './args.ts';
import type { Command } from './main.ts';
import { type CaughtSignals, catchSignals } from './signals.ts';

const HELP = `Usage: keepip lb --listen ADDR:PORT --target ADDR:PORT... [options]
       keepip lb -f <file|dir>... [--service NS/NAME] [options]

An L4 TCP load balancer in the role of an AWS Network Load Balancer: one upstream connection per
client connection, optional PROXY protocol v1/v2 towards the targets, a source address of its own
(or the client's, when preserved), health checks, and fail-open when no target is healthy.

Flags mode:
      --listen ADDR:PORT         where clients connect (port 0 picks a free port)
      --target ADDR:PORT         a target (repeatable)
Manifest mode (a Service of type LoadBalancer and what it points at):
  -f, --filename PATH            manifest file or directory (repeatable)
      --service NS/NAME          run only this Service (default: every LoadBalancer Service)
      --listen / --target        override the address from the manifests (status.loadBalancer.ingress,
                                 keepip defaults) and the targets (nodes + nodePort, or endpoints)
Options (in manifest mode they override what the annotations say):
      --proxy-protocol v1|v2|none   PROXY header on every upstream connection (default none)
      --unique-id                UNIQUE_ID TLV: a random 16-byte id per connection (v2)
      --crc32c                   CRC32C TLV over the header (v2)
      --vpc-endpoint-id ID       AWS TLV 0xEA with this VPC endpoint id: PrivateLink emulation (v2)
      --source-address IP        connect to targets from this address: the NLB's own (default: kernel's choice)
      --source-ranges CIDR,...   only clients in these ranges may connect; others are reset
                                 (loadBalancerSourceRanges; in manifest mode it pins them over SIGHUP)
      --preserve-client-ip       connect from the client's own address when it is local to this machine
                                 (127.x, ::1); other clients fall back to --source-address, logged
      --no-preserve-client-ip    turn preservation off (manifest mode)
      --algorithm A              flow-hash (default, NLB), round-robin, least-conn
      --health-check C           tcp, http:PATH (e.g. http:/healthz), or none (default none in flags mode)
      --health-port N            check this port instead of the traffic port
      --health-interval D        default 10s
      --health-timeout D         default 10s (tcp), 6s (http)
      --healthy-threshold N      default 3
      --unhealthy-threshold N    default 3
      --idle-timeout D           reset flows idle this long (default 350s, as an NLB)
      --connect-timeout D        a target that has not accepted within this long fails the flow
                                 (default 10s, as an NLB)
      --deregistration-delay D   removed targets keep their flows this long (default 300s)
      --metrics ADDR:PORT        serve Prometheus /metrics and /healthz
      --workers N|auto           processes sharing the listening ports (default 1; auto: one per core)
      --worker-watchdog D        a worker silent this long is killed and replaced (default 10s; ≥ 1s)
  -h, --help                     this help
Durations: 500ms, 10s, 5m, or plain seconds.
Signals: SIGHUP re-reads the manifests, applies loadBalancerSourceRanges to new connections and
         re-registers targets; SIGINT/SIGTERM stop and exit 0.
Exit codes: 0 stopped cleanly, 1 configuration or listen error, 2 usage error.
`;

const USAGE = { command: 'lb', help: HELP };

const OPTIONS = {
  filename: { type: 'string', short: 'f', multiple: true },
  service: { type: 'string' },
  listen: { type: 'string' },
  target: { type: 'string', multiple: true },
  'proxy-protocol': { type: 'string' },
  'unique-id': { type: 'boolean' },
  crc32c: { type: 'boolean' },
  'vpc-endpoint-id': { type: 'string' },
  'source-address': { type: 'string' },
  'source-ranges': { type: 'string', multiple: true },
  'preserve-client-ip': { type: 'boolean' },
  algorithm: { type: 'string' },
  'health-check': { type: 'string' },
  'health-port': { type: 'string' },
  'health-interval': { type: 'string' },
  'health-timeout': { type: 'string' },
  'healthy-threshold': { type: 'string' },
  'unhealthy-threshold': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'connect-timeout': { type: 'string' },
  'deregistration-delay': { type: 'string' },
  metrics: { type: 'string' },
  workers: { type: 'string' },
  'worker-watchdog': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ParsedArgs<{ options: typeof OPTIONS; allowNegative: true }>['values'];

class UsageError extends Error {}

const out = (line: string) => process.stdout.write(`keepip lb: ${line}\n`);
const err = (line: string) => process.stderr.write(`keepip lb: ${line}\n`);

/** A step that ends the command with this exit code. */
interface Exit {
  exit: number;
}

const isExit = (value: object): value is Exit => 'exit' in value;

/** The listeners to run: one config each, and in manifest mode the plan it came from. */
interface Planned {
  configs: LbRuntimeConfig[];
  plans: LbListenerPlan[] | null;
}

export const command: Command = {
  summary: 'An L4 TCP load balancer in the role of an AWS NLB, with PROXY protocol',
  async run(argv) {
    const signals = catchSignals({ hangups: true });
    try {
      return await runLb(argv, signals);
    } finally {
      signals.release();
    }
  },
};

/** Plans the listeners and serves them (here, or in --workers processes) until SIGTERM or SIGINT. */
async function runLb(argv: string[], signals: CaughtSignals): Promise<number> {
  const values = parseValues(argv);
  if (isExit(values)) return values.exit;
  const workers = parseWorkerCount(values.workers ?? '1', availableCores());
  if (!workers.ok) return usageError(USAGE, `--workers: ${workers.error} [${workers.code}]`);
  const watchdog = parseWatchdog(values['worker-watchdog'] ?? '10s');
  if (!watchdog.ok) return usageError(USAGE, `--worker-watchdog: ${watchdog.error} [${watchdog.code}]`);
  const planned = await planListeners(values);
  if (isExit(planned)) return planned.exit;
  if (workers.value > 1)
    return runWorkers(values, planned, signals, { workers: workers.value, watchdogMs: watchdog.value });
  const [{ Registry }, { startLoadBalancer }, { startMetricsServer }] = await Promise.all([
    import('prom-client'),
    import('../lb/balancer.ts'),
    import('../observability/metrics-server.ts'),
  ]);
  const registry = new Registry();
  const running: RunningLb[] = [];
  const stopAll = () => Promise.all(running.map((lb) => lb.close()));
  for (const [i, config] of planned.configs.entries()) {
    try {
      running.push(await startLoadBalancer({ ...config, registry, log: out }));
    } catch (error) {
      err(
        `cannot listen on ${formatHostPort(config.listen.host, config.listen.port)}: ${(error as Error).message}`,
      );
      await stopAll();
      return 1;
    }
    describe(running[i]!, config, planned.plans?.[i]);
  }
  const metrics = await serveMetrics(values.metrics, (at) => startMetricsServer({ ...at, registry }));
  if (metrics !== null && isExit(metrics)) {
    await stopAll();
    return metrics.exit;
  }
  await untilStopped(signals, () => reloadTargets(values, planned.plans, running));
  await stopAll();
  await metrics?.close();
  out('stopped');
  return 0;
}

function parseValues(argv: string[]): Values | Exit {
  const parsed = parseCommandArgs(USAGE, { args: argv, options: OPTIONS, strict: true, allowNegative: true });
  return typeof parsed === 'number' ? { exit: parsed } : parsed.values;
}

/** The configs from the manifests (-f) or the flags, each validated. */
async function planListeners(values: Values): Promise<Planned | Exit> {
  let planned: Planned;
  try {
    if (values.filename !== undefined) {
      const plans = await configsFromManifests(values);
      if (plans === null) return { exit: 1 };
      planned = { plans, configs: plans.map((p) => p.config) };
    } else {
      planned = { plans: null, configs: [configFromFlags(values)] };
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    err(error.message);
    return { exit: 2 };
  }
  for (const config of planned.configs) {
    const checked = validateLbConfig(config);
    if (!checked.ok) {
      for (const e of checked.errors) err(`${e.message} [${e.code}]`);
      return { exit: values.filename === undefined ? 2 : 1 };
    }
  }
  return planned;
}

/** --metrics: null when not asked for. */
async function serveMetrics<T extends { address: AddressInfo }>(
  text: string | undefined,
  start: (at: HostPort) => Promise<T>,
): Promise<T | Exit | null> {
  if (text === undefined) return null;
  const at = parseHostPort(text);
  if (!at.ok) {
    err(`--metrics: ${at.error}`);
    return { exit: 2 };
  }
  try {
    const metrics = await start(at.value);
    out(`metrics on http://${formatHostPort(metrics.address.address, metrics.address.port)}/metrics`);
    return metrics;
  } catch (error) {
    err(`cannot serve metrics on ${text}: ${(error as Error).message}`);
    return { exit: 1 };
  }
}

/** --workers N: the listeners in N processes (src/workers/lb-primary.ts); this process plans and signals. */
async function runWorkers(
  values: Values,
  planned: Planned,
  signals: CaughtSignals,
  { workers, watchdogMs }: { workers: number; watchdogMs: number },
): Promise<number> {
  const [{ Registry }, { startLbWorkers }, { startMetricsServer }] = await Promise.all([
    import('prom-client'),
    import('../workers/lb-primary.ts'),
    import('../observability/metrics-server.ts'),
  ]);
  let pool: Awaited<ReturnType<typeof startLbWorkers>>;
  try {
    pool = await startLbWorkers({
      workers,
      watchdogMs,
      configs: planned.configs,
      log: (event) =>
        (event.level === 'info' ? out : err)(
          `${event.level === 'info' ? '' : `${event.level}: `}${event.message}`,
        ),
    });
  } catch (error) {
    err(`cannot start the workers: ${(error as Error).message}`);
    return 1;
  }
  for (const [i, config] of planned.configs.entries())
    describe(pool.listeners[i]!, config, planned.plans?.[i]);
  out(
    `workers: ${workers} processes (pids ${pool.pids().join(', ')}) share the listening ports (SO_REUSEPORT)`,
  );
  const registry = new Registry();
  const source = pool.metrics(registry);
  const metrics = await serveMetrics(values.metrics, (at) => startMetricsServer({ ...at, registry: source }));
  if (metrics !== null && isExit(metrics)) {
    await pool.close();
    return metrics.exit;
  }
  await untilStopped(signals, () => reloadTargets(values, planned.plans, pool.listeners));
  await pool.close();
  await metrics?.close();
  out('stopped');
  return 0;
}

/** Serves until SIGINT or SIGTERM; each SIGHUP runs `reload` (a failure is reported, not fatal). */
async function untilStopped(signals: CaughtSignals, reload: () => Promise<void>): Promise<void> {
  signals.onHangup(() => void reload().catch((error: Error) => err(`reload failed: ${error.message}`)));
  await signals.stopped;
}

/** What a SIGHUP changes in a running listener (one process's RunningLb, or every worker's). */
interface Reloadable {
  name: string;
  setTargets(targets: TargetAddress[]): void | Promise<void>;
  setAllowedSources(ranges: readonly string[]): SourceRangesResult | Promise<SourceRangesResult>;
}

/**
 * SIGHUP in manifest mode: each listener's loadBalancerSourceRanges and targets read again (removed
 * targets drain; --target pins them). An invalid range anywhere changes nothing anywhere.
 */
async function reloadTargets(
  values: Values,
  plans: LbListenerPlan[] | null,
  running: Reloadable[],
): Promise<void> {
  if (plans === null || values.filename === undefined) {
    out('SIGHUP: nothing to reload in flags mode');
    return;
  }
  const topology = await readTopology(values.filename, values.service);
  if (topology === null) {
    err('reload: the manifests have errors; keeping the running targets and source ranges');
    return;
  }
  const found = plans.map((plan) => {
    const model = topology.loadBalancers.find((m) => m.id === plan.model.id);
    const port = model?.ports.find((p) => p.port === plan.port.port && p.protocol === 'TCP');
    return model === undefined || port === undefined ? null : { model, port };
  });
  // --source-ranges pins every listener's list over the manifests'.
  const pinned = sourceRangesFlag(values);
  const rangesOf = (i: number) => pinned ?? found[i]?.model.loadBalancerSourceRanges ?? [];
  // Checked before anything changes: an invalid list never opens, nor half-applies, the door.
  for (const [i, plan] of plans.entries()) {
    const ranges = rangesOf(i);
    const checked = validateLbConfig({ ...plan.config, allowedSources: ranges });
    const bad = checked.ok ? undefined : checked.errors.find((e) => e.code === 'LB_BAD_SOURCE_RANGE');
    if (bad !== undefined) {
      err(
        `reload: ${running[i]!.name}: ${bad.message} [${bad.code}]; keeping the running targets and source ranges`,
      );
      return;
    }
  }
  const { targetsForPort } = await import('../lb/manifest.ts');
  for (const [i, plan] of plans.entries()) {
    const at = found[i];
    if (at === null || at === undefined) {
      err(
        `reload: ${plan.model.id} port ${plan.port.port} is gone from the manifests; restart keepip lb to remove it`,
      );
      continue;
    }
    const lb = running[i]!;
    if (!(await reloadSourceRanges(lb, plans, i, rangesOf(i)))) continue;
    if (values.target !== undefined) continue; // --target pins the targets
    const targets = targetsForPort(topology, at.model, at.port);
    if (targets.targets.length === 0) {
      err(`reload: ${at.model.id} port ${at.port.port}: ${targets.from}; keeping the running targets`);
      continue;
    }
    await lb.setTargets(targets.targets);
    out(
      `reload: ${lb.name} targets ${targets.targets.map((t) => formatHostPort(t.host, t.port)).join(', ')}`,
    );
  }
}

/** A listener's new source ranges, for the connections it accepts from now on; false when refused. */
async function reloadSourceRanges(
  lb: Reloadable,
  plans: LbListenerPlan[],
  index: number,
  ranges: readonly string[],
): Promise<boolean> {
  const plan = plans[index]!;
  const before = plan.config.allowedSources ?? [];
  const applied = await lb.setAllowedSources(ranges);
  if (!applied.ok) {
    const { message, code } = applied.error;
    err(`reload: ${lb.name}: ${message} [${code}]; keeping its running targets and source ranges`);
    return false;
  }
  plans[index] = { ...plan, config: { ...plan.config, allowedSources: [...ranges] } };
  if (before.join(',') !== ranges.join(',')) out(`reload: ${lb.name} source ranges ${rangesText(ranges)}`);
  return true;
}

const rangesText = (ranges: readonly string[] | undefined) =>
  ranges === undefined || ranges.length === 0 ? 'none (every client)' : ranges.join(', ');

function describe(
  lb: Pick<RunningLb, 'address' | 'name'>,
  config: LbRuntimeConfig,
  plan: LbListenerPlan | undefined,
): void {
  const where = formatHostPort(lb.address.address, lb.address.port);
  out(`listening on ${where} (${lb.name})`);
  const targets = config.targets.map((t) => formatHostPort(t.host, t.port)).join(', ');
  out(`  targets: ${targets}${plan === undefined ? '' : ` (${plan.targetsFrom})`}`);
  if ((config.allowedSources ?? []).length > 0) out(`  source ranges: ${rangesText(config.allowedSources)}`);
  const tlvs = config.tlvs ?? {};
  const tlvNames = [
    tlvs.uniqueId ? 'UNIQUE_ID' : '',
    tlvs.crc32c ? 'CRC32C' : '',
    tlvs.awsVpcEndpointId ? `AWS VPC endpoint ${tlvs.awsVpcEndpointId}` : '',
  ].filter(Boolean);
  out(
    `  PROXY protocol: ${config.proxyProtocol ?? 'off'}${tlvNames.length > 0 ? ` with TLVs ${tlvNames.join(', ')}` : ''}`,
  );
  const source = config.sourceAddress ?? "the kernel's choice";
  out(
    `  source address: ${source}; client IP preservation: ${
      config.preserveClientIp
        ? 'on (clients local to this machine connect from their own address; others fall back to the source address, logged and counted)'
        : 'off (targets see the source address)'
    }`,
  );
  const hc = config.healthCheck;
  out(
    hc === null
      ? '  health check: none (every target stays in rotation)'
      : `  health check: ${hc.protocol}${hc.protocol === 'http' ? ` ${hc.path}` : ''} on ${
          hc.port === 'traffic-port' ? 'the traffic port' : `port ${hc.port}`
        } every ${hc.intervalMs} ms, timeout ${hc.timeoutMs} ms, healthy after ${hc.healthyThreshold}, unhealthy after ${hc.unhealthyThreshold}${
          config.proxyProtocol === null
            ? ''
            : `, each opened with a PROXY ${config.proxyProtocol === 'v1' ? 'UNKNOWN' : 'LOCAL'} header`
        }; all unhealthy = fail open`,
  );
  out(
    `  algorithm: ${config.algorithm}; idle timeout ${config.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS} ms; connect timeout ${config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS} ms; deregistration delay ${config.deregistrationDelayMs ?? DEFAULT_DEREGISTRATION_DELAY_MS} ms`,
  );
}

function configFromFlags(values: Values): LbRuntimeConfig {
  if (values.listen === undefined) throw new UsageError('--listen ADDR:PORT is required (or -f manifests)');
  if (values.target === undefined || values.target.length === 0) {
    throw new UsageError('at least one --target ADDR:PORT is required (or -f manifests)');
  }
  if (values.service !== undefined) throw new UsageError('--service needs -f manifests');
  const base: LbRuntimeConfig = {
    listen: hostPort('--listen', values.listen),
    targets: values.target.map((t) => hostPort('--target', t)),
    proxyProtocol: null,
    sourceAddress: null,
    preserveClientIp: false,
    algorithm: 'flow-hash',
    healthCheck: null,
    idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
    deregistrationDelayMs: DEFAULT_DEREGISTRATION_DELAY_MS,
  };
  return applyOverrides(base, values);
}

/** Flags that override a config, whether it came from flags defaults or from a manifest. */
function applyOverrides(config: LbRuntimeConfig, values: Values): LbRuntimeConfig {
  const next: LbRuntimeConfig = { ...config, tlvs: { ...config.tlvs } };
  const pp = values['proxy-protocol'];
  if (pp !== undefined) {
    if (pp !== 'v1' && pp !== 'v2' && pp !== 'none') {
      throw new UsageError(`--proxy-protocol "${pp}" is not v1, v2 or none [LB_BAD_PROXY_PROTOCOL]`);
    }
    next.proxyProtocol = pp === 'none' ? null : pp;
  }
  if (values['unique-id']) next.tlvs = { ...next.tlvs, uniqueId: true };
  if (values.crc32c) next.tlvs = { ...next.tlvs, crc32c: true };
  if (values['vpc-endpoint-id'] !== undefined) {
    next.tlvs = { ...next.tlvs, awsVpcEndpointId: values['vpc-endpoint-id'] };
  }
  if (next.proxyProtocol !== 'v2' && next.tlvs?.awsVpcEndpointId !== undefined && pp !== undefined) {
    // A manifest's endpoint id with PROXY turned down to v1/none by flag: drop it rather than fail.
    if (values['vpc-endpoint-id'] === undefined) delete next.tlvs.awsVpcEndpointId;
  }
  if (values['source-address'] !== undefined) next.sourceAddress = values['source-address'];
  const ranges = sourceRangesFlag(values);
  if (ranges !== null) next.allowedSources = ranges;
  if (values['preserve-client-ip'] !== undefined) next.preserveClientIp = values['preserve-client-ip'];
  if (values.algorithm !== undefined) {
    if (!LB_ALGORITHMS.includes(values.algorithm as LbAlgorithm)) {
      throw new UsageError(
        `--algorithm "${values.algorithm}" is not one of ${LB_ALGORITHMS.join(', ')} [LB_BAD_ALGORITHM]`,
      );
    }
    next.algorithm = values.algorithm as LbAlgorithm;
  }
  next.healthCheck = healthCheckFrom(config.healthCheck, values);
  if (values['idle-timeout'] !== undefined)
    next.idleTimeoutMs = duration('--idle-timeout', values['idle-timeout']);
  if (values['connect-timeout'] !== undefined)
    next.connectTimeoutMs = duration('--connect-timeout', values['connect-timeout']);
  if (values['deregistration-delay'] !== undefined) {
    next.deregistrationDelayMs = duration('--deregistration-delay', values['deregistration-delay']);
  }
  if (values.target !== undefined) next.targets = values.target.map((t) => hostPort('--target', t));
  return next;
}

function healthCheckFrom(current: HealthCheckModel | null, values: Values): HealthCheckModel | null {
  const kind = values['health-check'];
  let check = current;
  if (kind !== undefined) {
    if (kind === 'none') return null;
    if (kind === 'tcp') {
      check = { ...(current ?? defaultCheck('tcp')), protocol: 'tcp' };
    } else if (kind === 'http' || kind.startsWith('http:')) {
      const given = kind.slice('http:'.length);
      const path = given.startsWith('/') ? given : `/${given}`;
      check = { ...(current ?? defaultCheck('http')), protocol: 'http', path };
      if (current?.protocol === 'tcp' && values['health-timeout'] === undefined) check.timeoutMs = 6_000;
    } else {
      throw new UsageError(`--health-check "${kind}" is not tcp, http:PATH or none`);
    }
  }
  const tuning = [
    'health-port',
    'health-interval',
    'health-timeout',
    'healthy-threshold',
    'unhealthy-threshold',
  ] as const;
  if (check === null) {
    const given = tuning.filter((name) => values[name] !== undefined);
    if (given.length > 0) throw new UsageError(`--${given[0]} needs --health-check tcp|http:PATH`);
    return null;
  }
  const next = { ...check };
  if (values['health-port'] !== undefined)
    next.port = integer('--health-port', values['health-port'], 1, 65535);
  if (values['health-interval'] !== undefined)
    next.intervalMs = duration('--health-interval', values['health-interval']);
  if (values['health-timeout'] !== undefined)
    next.timeoutMs = duration('--health-timeout', values['health-timeout']);
  if (values['healthy-threshold'] !== undefined) {
    next.healthyThreshold = integer('--healthy-threshold', values['healthy-threshold'], 1, 100);
  }
  if (values['unhealthy-threshold'] !== undefined) {
    next.unhealthyThreshold = integer('--unhealthy-threshold', values['unhealthy-threshold'], 1, 100);
  }
  return next;
}

/** AWS target-group defaults: interval 10 s, timeout 10 s (TCP) / 6 s (HTTP), thresholds 3 and 3. */
function defaultCheck(protocol: 'tcp' | 'http'): HealthCheckModel {
  return {
    protocol,
    port: 'traffic-port',
    path: '/',
    intervalMs: 10_000,
    timeoutMs: protocol === 'tcp' ? 10_000 : 6_000,
    healthyThreshold: 3,
    unhealthyThreshold: 3,
  };
}

async function configsFromManifests(values: Values): Promise<LbListenerPlan[] | null> {
  const topology = await readTopology(values.filename ?? [], values.service);
  if (topology === null) return null;
  const { planFromTopology } = await import('../lb/manifest.ts');
  const planned = planFromTopology(topology, {
    ...(values.service === undefined ? {} : { service: values.service }),
    ...(values.listen === undefined ? {} : { listen: hostPort('--listen', values.listen) }),
    ...(values.target === undefined ? {} : { targets: values.target.map((t) => hostPort('--target', t)) }),
  });
  if (!planned.ok) {
    for (const e of planned.errors) err(`error: ${e.message} [${e.code}]`);
    return null;
  }
  for (const w of planned.warnings) err(`warning: ${w.message} [${w.code}]`);
  return planned.plans.map((plan) => {
    const listen = plan.config.listen;
    const config = applyOverrides(plan.config, { ...values, target: undefined });
    return { ...plan, config: { ...config, listen } };
  });
}

/** Kinds whose errors concern the load balancer; errors elsewhere (an Ingress) are reported, not fatal. */
const LB_KINDS = new Set(['Service', 'Endpoints', 'EndpointSlice', 'Node']);

async function readTopology(paths: string[], service: string | undefined): Promise<Topology | null> {
  const { loadTopology } = await import('../k8s/index.ts');
  const topology = await loadTopology(paths);
  let fatal = false;
  for (const issue of topology.issues) {
    if (issue.severity === 'info') continue;
    const relevant = issue.origin === undefined || LB_KINDS.has(issue.origin.kind);
    const mine =
      service === undefined ||
      issue.origin === undefined ||
      `${issue.origin.namespace}/${issue.origin.name}` === service ||
      issue.origin.kind !== 'Service';
    if (issue.severity === 'error' && relevant && mine) fatal = true;
    err(`${issue.severity}: ${describeIssue(issue)}`);
  }
  return fatal ? null : topology;
}

/**
 * --source-ranges (repeatable, comma-separated): null when not given. An empty entry is a usage error
 * rather than "everyone": a list that lost its entries must not open the door.
 */
function sourceRangesFlag(values: Values): string[] | null {
  const given = values['source-ranges'];
  if (given === undefined) return null;
  const ranges = given.flatMap((text) => text.split(',')).map((entry) => entry.trim());
  if (ranges.some((entry) => entry === ''))
    throw new UsageError('--source-ranges: an empty entry (give CIDRs or IPs, e.g. 10.0.0.0/8,192.0.2.7)');
  const built = CidrSet.build(ranges);
  if (!built.ok) throw new UsageError(`--source-ranges: ${built.error.message} [LB_BAD_SOURCE_RANGE]`);
  return ranges;
}

function hostPort(flag: string, text: string): HostPort {
  const parsed = parseHostPort(text);
  if (!parsed.ok) throw new UsageError(`${flag}: ${parsed.error}`);
  return parsed.value;
}

function integer(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max)
    throw new UsageError(`${flag} "${text}" is not an integer ${min}-${max}`);
  return n;
}

function duration(flag: string, text: string): number {
  const ms = parseDurationMs(text);
  if (ms === null) throw new UsageError(`${flag} "${text}" is not a duration (500ms, 10s, 5m)`);
  return ms;
}
