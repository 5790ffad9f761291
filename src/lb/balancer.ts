// `keepip lb`'s engine: a listener, a target group with health checks and a selection policy, and one
// upstream connection per client connection, dialled from the source address (or the client's own,
// when preserved) and opened with a PROXY header when the group sends one.
// provision (validate, normalise) -> serve (listen) -> close; `keepip up` starts several of these.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { Registry } from 'prom-client';
import { CidrSet } from '../net/cidr-set.ts';
import { addressFamily, canonicalIp, isLoopbackAddress } from '../net/ip.ts';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_DEREGISTRATION_DELAY_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  type LbConfigError,
  type LbRuntimeConfig,
  type TargetAddress,
  validateLbConfig,
} from './config.ts';
import { acceptConnection, acceptWithOwnReads, type ListenerContext } from './accept.ts';
import type { Flow } from './flow.ts';
import { startHealthChecks } from './health-check.ts';
import type { HealthState, HealthStatus } from './health-state.ts';
import { emptyLbStats, type LbStats, registerLbMetrics } from './metrics.ts';
import { createHeaderBuilder, type HeaderBuilder, UNIQUE_ID_BYTES } from './proxy-header.ts';
import { createSelectionPolicy } from './selection.ts';
import {
  createSourcePorts,
  DEFAULT_PORT_RANGE,
  type PortRange,
  parsePortRange,
  type SourcePorts,
} from './source-ports.ts';
import { createTargetGroup, type TargetEntry, type TargetGroup, targetKey } from './target-group.ts';

export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_DEREGISTRATION_DELAY_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  type LbAlgorithm,
  type LbRuntimeConfig,
  type LbTlvOptions,
  lbConfigFromModel,
  type TargetAddress,
  validateLbConfig,
} from './config.ts';
export type { LbStats } from './metrics.ts';

/** One end of a TCP connection. */
export interface Endpoint {
  address: string;
  port: number;
}

export interface TargetHealthView {
  /** "host:port" ("[v6]:port"). */
  target: string;
  host: string;
  port: number;
  /** Health by the checks; 'draining' after removal while flows finish. */
  status: HealthStatus | 'draining';
  /** Receives new flows now (healthy, or every target while failing open). */
  inRotation: boolean;
  activeFlows: number;
  checks: number;
  lastError: string | null;
}

export interface RunningLb {
  address: AddressInfo;
  name: string;
  registry: Registry;
  /** Replaces the registered targets; removed ones drain for deregistrationDelayMs. */
  setTargets(targets: TargetAddress[]): void;
  /**
   * The idle timeout of the flows accepted from now on (open ones keep theirs, as over an nginx reload)
   * and the deregistration delay of the targets removed from now on.
   */
  setFlowTimeouts(timeouts: { idleTimeoutMs: number; deregistrationDelayMs: number }): void;
  /**
   * loadBalancerSourceRanges for the connections accepted from now on (empty: everyone), as an NLB
   * applies a changed security group; open flows keep going. An invalid list changes nothing.
   */
  setAllowedSources(ranges: readonly string[]): SourceRangesResult;
  /** With healthChecks 'follow': a target's health as the process running the checks judged it. */
  setHealth(target: string, health: HealthState): void;
  targetHealth(): TargetHealthView[];
  /** True while no target is healthy and all of them get traffic anyway. */
  failingOpen(): boolean;
  /**
   * The client of the open flow whose connection leaves from `from` to the target `to`, or null. Both
   * ends: a port alone names another flow when someone else binds the same address and port towards
   * another destination. O(open flows), for tools (the dashboard of keepip up), never on the data path.
   */
  clientBehind(from: Endpoint, to: Endpoint): Endpoint | null;
  stats(): LbStats;
  /** Stops listening and health checks and resets the flows still open. */
  close(): Promise<void>;
}

/** An invalid LbRuntimeConfig handed to startLoadBalancer (callers validate first with validateLbConfig). */
export class LbConfigInvalid extends Error {
  readonly code = 'LB_CONFIG_INVALID';
  readonly errors: LbConfigError[];
  constructor(errors: LbConfigError[]) {
    super(`invalid load balancer config: ${errors.map((e) => `${e.code}: ${e.message}`).join('; ')}`);
    this.errors = errors;
  }
}

export type SourceRangesResult = { ok: true } | { ok: false; error: LbConfigError };

/** Repeated per-flow problems (connect failures, fallbacks) are logged at most this often per kind. */
const LOG_REPEAT_MS = 10_000;

/** A validated config with its addresses normalised and its defaults filled in. */
interface Provisioned {
  config: LbRuntimeConfig;
  /** Canonical, or null. */
  sourceAddress: string | null;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  deregistrationDelayMs: number;
}

export async function startLoadBalancer(input: LbRuntimeConfig): Promise<RunningLb> {
  const provisioned = provision(input);
  const { config } = provisioned;
  // Default name: the listen address, with the real port once listening.
  let name = config.name ?? targetKey(config.listen);
  const log = (line: string) => config.log?.(`${name}: ${line}`);
  const stats = emptyLbStats();
  const header = headerBuilder(config);
  const group = createCheckedGroup(provisioned, stats, header, log);
  const ctx = listenerContext(provisioned, { stats, group, header, log });
  // Paused on accept: the flow adopts the socket (see flow.ts) before anything is read.
  const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (client) =>
    acceptConnection(ctx, client),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const { host, port } = config.listen;
    server.listen({ host, port, reusePort: config.reusePort === true }, () => resolve());
  });
  server.on('error', (error) => log(`listener error: ${error.message}`));
  acceptWithOwnReads(server, ctx);
  const address = server.address() as AddressInfo;
  if (config.name === undefined) name = targetKey({ host: config.listen.host, port: address.port });
  group.setTargets(config.targets.map((t) => ({ host: normaliseHost(t.host), port: t.port })));
  const registry = config.registry ?? new Registry();
  const unregister = registerLbMetrics(registry, {
    name,
    stats,
    targets: () =>
      group
        .entries()
        .filter((e) => !e.draining)
        .map((e) => ({ key: e.key, healthy: e.health.status === 'healthy' })),
  });
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      group.close();
      for (const flow of ctx.flows) flow.abort();
      unregister();
    });
  const setFlowTimeouts = (t: { idleTimeoutMs: number; deregistrationDelayMs: number }) => {
    ctx.idleTimeoutMs = t.idleTimeoutMs;
    group.setDeregistrationDelay(t.deregistrationDelayMs);
  };
  const setAllowedSources = (ranges: readonly string[]): SourceRangesResult => {
    const built = sourceSet(ranges);
    if (!built.ok) return built;
    // One assignment: the next connection meets the whole new list.
    ctx.allowedSources = built.set;
    return { ok: true };
  };
  return runningLb({
    address,
    name,
    registry,
    config,
    group,
    stats,
    flows: ctx.flows,
    setFlowTimeouts,
    setAllowedSources,
    close,
  });
}

/** A listener's health checks without the listener: what the primary of `--workers` runs once for all. */
export interface HealthChecking {
  /** The listener's name, as its workers label metrics and log lines. */
  name: string;
  group: TargetGroup;
  stats: LbStats;
  setTargets(targets: TargetAddress[]): void;
  close(): void;
}

/** Checks `input`'s targets as startLoadBalancer would (same source address, LOCAL header, thresholds). */
export function startHealthChecking(
  input: LbRuntimeConfig,
  onHealthChange: (entry: TargetEntry) => void,
): HealthChecking {
  const provisioned = provision(input);
  const { config } = provisioned;
  const name = config.name ?? targetKey(config.listen);
  const log = (line: string) => config.log?.(`${name}: ${line}`);
  const stats = emptyLbStats();
  const header = headerBuilder(config);
  const group = createCheckedGroup(provisioned, stats, header, log, onHealthChange);
  const setTargets = (targets: TargetAddress[]) =>
    group.setTargets(targets.map((t) => ({ host: normaliseHost(t.host), port: t.port })));
  setTargets(config.targets);
  return { name, group, stats, setTargets, close: () => group.close() };
}

/** The PROXY headers of a group's connections (LOCAL on its checks), or null with PROXY off. */
function headerBuilder(config: LbRuntimeConfig): HeaderBuilder | null {
  return config.proxyProtocol === null
    ? null
    : createHeaderBuilder(config.proxyProtocol, config.tlvs, () => randomBytes(UNIQUE_ID_BYTES));
}

/** Validates (throws LbConfigInvalid), normalises the listen host and the source address, fills defaults. */
function provision(input: LbRuntimeConfig): Provisioned {
  const checked = validateLbConfig(input);
  if (!checked.ok) throw new LbConfigInvalid(checked.errors);
  return {
    config: { ...input, listen: { ...input.listen, host: normaliseHost(input.listen.host) } },
    sourceAddress: input.sourceAddress === null ? null : canonicalIp(input.sourceAddress),
    idleTimeoutMs: input.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    connectTimeoutMs: input.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    deregistrationDelayMs: input.deregistrationDelayMs ?? DEFAULT_DEREGISTRATION_DELAY_MS,
  };
}

/** The source address for connections to `host`, when its family fits; else the kernel chooses. */
function sourceFor(sourceAddress: string | null, host: string): string | undefined {
  return sourceAddress !== null && addressFamily(sourceAddress) === addressFamily(host)
    ? sourceAddress
    : undefined;
}

/** The target group, with health checks (when configured) that count their results and feed it. */
function createCheckedGroup(
  { config, sourceAddress, deregistrationDelayMs }: Provisioned,
  stats: LbStats,
  header: HeaderBuilder | null,
  log: (line: string) => void,
  onHealthChange?: (entry: TargetEntry) => void,
): TargetGroup {
  const healthCheck = config.healthCheck;
  const group = createTargetGroup({
    thresholds: healthCheck ?? { healthyThreshold: 1, unhealthyThreshold: 1 },
    deregistrationDelayMs,
    terminateUnhealthy: config.unhealthyConnectionTermination !== false,
    log,
    ...(onHealthChange === undefined ? {} : { onHealthChange }),
    startChecks:
      healthCheck === null || config.healthChecks === 'follow'
        ? null
        : (entry: TargetEntry) =>
            startHealthChecks({
              check: healthCheck,
              target: entry,
              localAddress: sourceFor(sourceAddress, entry.host),
              header: header?.local() ?? null,
              onResult(result) {
                const counts = stats.healthChecks[entry.key] ?? { passed: 0, failed: 0 };
                stats.healthChecks[entry.key] = counts;
                if (result.ok) counts.passed++;
                else counts.failed++;
                group.recordHealth(entry, result);
              },
            }),
  });
  return group;
}

function listenerContext(
  { config, sourceAddress, idleTimeoutMs, connectTimeoutMs }: Provisioned,
  parts: { stats: LbStats; group: TargetGroup; header: HeaderBuilder | null; log: (line: string) => void },
): ListenerContext {
  const localAddresses = machineAddresses();
  const lastLogged = new Map<string, number>();
  return {
    ...parts,
    policy: createSelectionPolicy(config.algorithm),
    // Validated above, so the build cannot fail.
    allowedSources: (sourceSet(config.allowedSources ?? []) as { ok: true; set: CidrSet | null }).set,
    sourceAddress,
    preserveClientIp: config.preserveClientIp,
    isLocalAddress: (address) => isLoopbackAddress(address) || localAddresses.has(address),
    sourcePorts: config.sourcePorts ?? processSourcePorts(),
    idleTimeoutMs,
    connectTimeoutMs,
    clientReads: config.clientReads ?? 'raw',
    flows: new Set(),
    logRepeated(kind, line) {
      const now = Date.now();
      if (now - (lastLogged.get(kind) ?? 0) < LOG_REPEAT_MS) return;
      lastLogged.set(kind, now);
      parts.log(line);
    },
  };
}

/** The set of loadBalancerSourceRanges (null: everyone), or LB_BAD_SOURCE_RANGE: never an open door. */
function sourceSet(
  ranges: readonly string[],
): { ok: true; set: CidrSet | null } | { ok: false; error: LbConfigError } {
  if (ranges.length === 0) return { ok: true, set: null };
  const built = CidrSet.build(ranges);
  if (built.ok) return { ok: true, set: built.set };
  return {
    ok: false,
    error: { code: 'LB_BAD_SOURCE_RANGE', message: `allowed source range: ${built.error.message}` },
  };
}

/** The handle `startLoadBalancer` returns. */
function runningLb(parts: {
  address: AddressInfo;
  name: string;
  registry: Registry;
  config: LbRuntimeConfig;
  group: TargetGroup;
  stats: LbStats;
  flows: ReadonlySet<Flow>;
  setFlowTimeouts(t: { idleTimeoutMs: number; deregistrationDelayMs: number }): void;
  setAllowedSources(ranges: readonly string[]): SourceRangesResult;
  close(): Promise<void>;
}): RunningLb {
  const { config, group, stats } = parts;
  let closing: Promise<void> | null = null;
  return {
    address: parts.address,
    name: parts.name,
    registry: parts.registry,
    setTargets(targets) {
      const normalised = targets.map((t) => ({ host: normaliseHost(t.host), port: t.port }));
      const errors = validateLbConfig({ ...config, targets: normalised });
      if (!errors.ok) throw new LbConfigInvalid(errors.errors);
      group.setTargets(normalised);
    },
    setFlowTimeouts: parts.setFlowTimeouts,
    setAllowedSources: parts.setAllowedSources,
    setHealth: (target, health) => group.setHealth(target, health),
    targetHealth() {
      const rotation = new Set(group.candidates());
      return group.entries().map((e) => ({
        target: e.key,
        host: e.host,
        port: e.port,
        status: e.draining ? 'draining' : e.health.status,
        inRotation: rotation.has(e),
        activeFlows: e.activeFlows,
        checks: e.health.checks,
        lastError: e.health.lastError,
      }));
    },
    failingOpen: () => group.failingOpen(),
    clientBehind(from, to) {
      for (const flow of parts.flows) {
        if (flow.target.port !== to.port || canonicalIp(flow.target.host) !== canonicalIp(to.address))
          continue;
        const out = flow.upstreamLocal();
        if (out === null || out.port !== from.port || canonicalIp(out.address) !== canonicalIp(from.address))
          continue;
        const client = canonicalIp(flow.clientPeer.address);
        return client === null ? null : { address: client, port: flow.clientPeer.port };
      }
      return null;
    },
    stats: () => structuredClone(stats),
    close() {
      closing ??= parts.close();
      return closing;
    },
  };
}

/** "localhost" means the IPv4 loopback here, so that families and source addresses are predictable. */
function normaliseHost(host: string): string {
  if (host === 'localhost') return '127.0.0.1';
  return canonicalIp(host) ?? host;
}

/** The addresses of this machine's interfaces: a client from one of them can be preserved too. */
let shared: SourcePorts | null = null;

/** One walk per process, shared by its listeners (two walking one address would meet each other's ports). */
function processSourcePorts(): SourcePorts {
  shared ??= createSourcePorts(ephemeralPorts());
  return shared;
}

/** The kernel's ephemeral port range, where the lb picks explicit source ports (source-ports.ts). */
export function ephemeralPorts(): PortRange {
  const read = (name: string) => {
    try {
      return readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8');
    } catch {
      return null;
    }
  };
  const range = read('ip_local_port_range');
  return (
    (range === null ? null : parsePortRange(range, read('ip_local_reserved_ports') ?? '')) ??
    DEFAULT_PORT_RANGE
  );
}

function machineAddresses(): Set<string> {
  const result = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      const address = canonicalIp(info.address);
      // IPv6 link-local addresses need a zone to bind to; they are not offered.
      if (address !== null && (info.family === 'IPv4' || info.scopeid === 0)) result.add(address);
    }
  }
  return result;
}
