// `keepip lb`'s engine: a listener, a target group with health checks and a selection policy, and one
// upstream connection per client connection, dialled from the source address (or the client's own,
// when preserved) and opened with a PROXY header when the group sends one.
// provision (validate, normalise) -> serve (listen) -> close; `keepip up` starts several of these.
import { randomBytes } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { Registry } from 'prom-client';
import { CidrSet } from '../net/cidr-set.ts';
import { addressFamily, canonicalIp, isLoopbackAddress } from '../net/ip.ts';
import {
  DEFAULT_DEREGISTRATION_DELAY_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  type LbConfigError,
  type LbRuntimeConfig,
  type TargetAddress,
  validateLbConfig,
} from './config.ts';
import { type Flow, type FlowEndReason, startFlow } from './flow.ts';
import { startHealthChecks } from './health-check.ts';
import type { HealthStatus } from './health-state.ts';
import { emptyLbStats, type LbStats, registerLbMetrics } from './metrics.ts';
import { createHeaderBuilder, UNIQUE_ID_BYTES } from './proxy-header.ts';
import { createSelectionPolicy, type FlowKey } from './selection.ts';
import { resetSocket } from './socket-reset.ts';
import { chooseSourceAddress } from './source-address.ts';
import { createTargetGroup, type TargetEntry, targetKey } from './target-group.ts';

export {
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
  targetHealth(): TargetHealthView[];
  /** True while no target is healthy and all of them get traffic anyway. */
  failingOpen(): boolean;
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

/** Upstream connect attempts that take longer than this fail (the client gets a reset). */
const CONNECT_TIMEOUT_MS = 10_000;
/** Repeated per-flow problems (connect failures, fallbacks) are logged at most this often per kind. */
const LOG_REPEAT_MS = 10_000;

export async function startLoadBalancer(input: LbRuntimeConfig): Promise<RunningLb> {
  const checked = validateLbConfig(input);
  if (!checked.ok) throw new LbConfigInvalid(checked.errors);
  const config = { ...input, listen: { ...input.listen, host: normaliseHost(input.listen.host) } };
  const sourceAddress = config.sourceAddress === null ? null : canonicalIp(config.sourceAddress);
  const idleTimeoutMs = config.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const deregistrationDelayMs = config.deregistrationDelayMs ?? DEFAULT_DEREGISTRATION_DELAY_MS;
  // Default name: the listen address, with the real port once listening.
  let name = config.name ?? targetKey(config.listen);
  const log = (line: string) => config.log?.(`${name}: ${line}`);
  const registry = config.registry ?? new Registry();
  const stats = emptyLbStats();
  const header =
    config.proxyProtocol === null
      ? null
      : createHeaderBuilder(config.proxyProtocol, config.tlvs, () => randomBytes(UNIQUE_ID_BYTES));
  const localAddresses = machineAddresses();
  const isLocalAddress = (address: string) => isLoopbackAddress(address) || localAddresses.has(address);
  const sourceFor = (host: string) =>
    sourceAddress !== null && addressFamily(sourceAddress) === addressFamily(host)
      ? sourceAddress
      : undefined;
  const lastLogged = new Map<string, number>();
  const logRepeated = (kind: string, line: string) => {
    const now = Date.now();
    if (now - (lastLogged.get(kind) ?? 0) < LOG_REPEAT_MS) return;
    lastLogged.set(kind, now);
    log(line);
  };

  const healthCheck = config.healthCheck;
  const group = createTargetGroup({
    thresholds: healthCheck ?? { healthyThreshold: 1, unhealthyThreshold: 1 },
    deregistrationDelayMs,
    log,
    startChecks:
      healthCheck === null
        ? null
        : (entry: TargetEntry) =>
            startHealthChecks({
              check: healthCheck,
              target: entry,
              localAddress: sourceFor(entry.host),
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
  // loadBalancerSourceRanges (validated above): the security group in front of an NLB.
  const allowedSources =
    config.allowedSources !== undefined && config.allowedSources.length > 0
      ? (CidrSet.build(config.allowedSources) as { ok: true; set: CidrSet }).set
      : null;
  const policy = createSelectionPolicy(config.algorithm);
  const flows = new Set<Flow>();
  const bump = (record: Record<string, number>, key: string) => {
    record[key] = (record[key] ?? 0) + 1;
  };

  const onConnection = (client: net.Socket) => {
    const clientAddress = canonicalIp(client.remoteAddress ?? '');
    const listenerAddress = canonicalIp(client.localAddress ?? '');
    if (clientAddress === null || listenerAddress === null) {
      client.destroy(); // gone before we looked at it
      return;
    }
    client.on('error', () => {}); // until the flow takes over; a reset here is not our failure
    if (allowedSources !== null && !allowedSources.has(clientAddress)) {
      bump(stats.flowsRejected, 'source-range');
      logRepeated(
        'source-range',
        `client ${clientAddress} is outside the allowed source ranges: connection reset`,
      );
      resetSocket(client);
      return;
    }
    const flowKey: FlowKey = {
      sourceAddress: clientAddress,
      sourcePort: client.remotePort ?? 0,
      destinationAddress: listenerAddress,
      destinationPort: client.localPort ?? 0,
    };
    const entry = policy.pick(group.candidates(), flowKey);
    if (entry === undefined) {
      bump(stats.flowsRejected, 'no-target');
      logRepeated('no-target', 'no target registered: connection reset');
      resetSocket(client);
      return;
    }
    const source = chooseSourceAddress({
      clientAddress,
      targetAddress: entry.host,
      sourceAddress,
      preserveClientIp: config.preserveClientIp,
      isLocalAddress,
    });
    if (source.preservationFallback !== null) {
      bump(stats.preservationFallbacks, source.preservationFallback);
      logRepeated(
        `fallback:${source.preservationFallback}`,
        `client ${clientAddress} cannot be preserved (${source.preservationFallback === 'client-not-local' ? 'not an address of this machine' : 'address family differs from the target'}): connecting from ${source.localAddress ?? 'the kernel-chosen address'} instead`,
      );
    }
    if (source.hairpin) {
      stats.hairpinFlows++;
      logRepeated(
        `hairpin:${entry.key}`,
        `hairpin: client ${clientAddress} is target ${entry.key} itself (an NLB with preservation times such connections out, rule A8)`,
      );
    }
    let headerBytes: Buffer | null = null;
    if (header !== null) {
      const encoded = header.forFlow({
        client: { address: clientAddress, port: flowKey.sourcePort },
        listener: { address: listenerAddress, port: flowKey.destinationPort },
      });
      if (!encoded.ok) {
        bump(stats.flowsRejected, 'header');
        logRepeated(
          'header',
          `PROXY header cannot be encoded: ${encoded.error.code} ${encoded.error.message}`,
        );
        resetSocket(client);
        return;
      }
      headerBytes = encoded.value;
    }
    stats.flowsActive++;
    stats.flowsTotal++;
    const flow = startFlow({
      client,
      target: { host: entry.host, port: entry.port },
      localAddress: source.localAddress,
      header: headerBytes,
      idleTimeoutMs,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      counters: stats,
      clientReads: config.clientReads ?? 'own',
      onConnected() {
        if (header !== null) stats.proxyHeadersSent[header.version === 1 ? 'v1' : 'v2']++;
      },
      onConnectError(_flow, error) {
        bump(stats.flowsRejected, 'connect-failed');
        logRepeated(
          `connect:${entry.key}`,
          `target ${entry.key}: connect from ${source.localAddress ?? 'default address'} failed (${error.code ?? error.message}); client reset`,
        );
      },
      onEnd(ended: Flow, reason: FlowEndReason) {
        flows.delete(ended);
        stats.flowsActive--;
        bump(stats.flowsEnded, reason);
        group.flowEnded(entry, ended);
      },
    });
    stats.clientReads[flow.clientReads]++;
    flows.add(flow);
    group.flowStarted(entry, flow);
  };

  // Paused on accept: the flow adopts the socket (see flow.ts) before anything is read.
  const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => resolve());
  });
  server.on('error', (error) => log(`listener error: ${error.message}`));
  const address = server.address() as AddressInfo;
  if (config.name === undefined) name = targetKey({ host: config.listen.host, port: address.port });
  group.setTargets(config.targets.map((t) => ({ host: normaliseHost(t.host), port: t.port })));
  const unregister = registerLbMetrics(registry, {
    name,
    stats,
    targets: () =>
      group
        .entries()
        .filter((e) => !e.draining)
        .map((e) => ({ key: e.key, healthy: e.health.status === 'healthy' })),
  });

  let closing: Promise<void> | null = null;
  return {
    address,
    name,
    registry,
    setTargets(targets) {
      const normalised = targets.map((t) => ({ host: normaliseHost(t.host), port: t.port }));
      const errors = validateLbConfig({ ...config, targets: normalised });
      if (!errors.ok) throw new LbConfigInvalid(errors.errors);
      group.setTargets(normalised);
    },
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
    stats: () => structuredClone(stats),
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        group.close();
        for (const flow of flows) flow.abort();
        unregister();
      });
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
