// The load balancer's runtime configuration: what `keepip lb` flags, `keepip lb -f` manifests and
// `keepip up` all produce, validated before anything listens. Pure: no sockets.
import type { Registry } from 'prom-client';
import { LONGEST_TIMER_MS } from '../config/duration.ts';
import type { HealthCheckModel, LoadBalancerModel, ServicePortModel } from '../config/model.ts';
import { CidrSet } from '../net/cidr-set.ts';
import { formatHostPort } from '../net/host-port.ts';
import { canonicalIp } from '../net/ip.ts';
import type { SourcePorts } from './source-ports.ts';

export interface TargetAddress {
  host: string;
  port: number;
}

export type LbAlgorithm = 'flow-hash' | 'round-robin' | 'least-conn';
export const LB_ALGORITHMS: readonly LbAlgorithm[] = ['flow-hash', 'round-robin', 'least-conn'];

export interface LbTlvOptions {
  /** UNIQUE_ID (0x05): a random 16-byte id per connection. */
  uniqueId?: boolean;
  /** CRC32C (0x03) over the whole header. */
  crc32c?: boolean;
  /** AWS (0xEA) subtype 0x01: emulates an NLB reached through PrivateLink. */
  awsVpcEndpointId?: string;
}

export interface LbRuntimeConfig {
  listen: { host: string; port: number };
  targets: TargetAddress[];
  /** PROXY header towards every target of the group, or none. */
  proxyProtocol: 'v1' | 'v2' | null;
  /** v2 only. */
  tlvs?: LbTlvOptions;
  /** The NLB's own address: connections to targets come from here (null: let the kernel choose). */
  sourceAddress: string | null;
  /**
   * Where the explicit source ports of connections from a chosen address come from (source-ports.ts).
   * Default: a walk of the kernel's ephemeral range; tests give their own sequence.
   */
  sourcePorts?: SourcePorts;
  /** Connect from the client's own address when that address is local to this machine. */
  preserveClientIp: boolean;
  algorithm: LbAlgorithm;
  /** null: no active checks, every target stays in rotation. */
  healthCheck: HealthCheckModel | null;
  /**
   * spec.loadBalancerSourceRanges: only clients inside these CIDRs may connect; others are reset at
   * once and counted (flows rejected, reason source-range). Absent or empty: everyone.
   */
  allowedSources?: readonly string[];
  /** A flow with no bytes either way for this long is reset (NLB: 350 s); counted once connected. */
  idleTimeoutMs?: number;
  /**
   * A target that has not accepted the connection within this long fails it (the client is reset,
   * flows_rejected{connect-failed}); NLB: 10 s, HAProxy's `timeout connect`. Default 10 s.
   */
  connectTimeoutMs?: number;
  /** How long a removed target keeps its existing flows before they are closed (NLB default: 300 s). */
  deregistrationDelayMs?: number;
  /**
   * Reset the open flows of a target that turns unhealthy, unless every target is (failing open): the
   * NLB's target_health_state.unhealthy.connection_termination, on by default. Default true.
   */
  unhealthyConnectionTermination?: boolean;
  /**
   * How a flow reads: 'raw' (default) on bare libuv handles, 'own' on Sockets reading into the
   * flow's own buffer, 'node' with Node's fresh buffer per read. Each falls back to the next by
   * itself where Node does not allow it; the choice exists for measuring and diagnosing, not for
   * tuning.
   */
  clientReads?: 'raw' | 'own' | 'node';
  /** Metrics go here; a private registry when absent. */
  registry?: Registry;
  /** Operational log lines (start-up, health transitions, preservation fallbacks). */
  log?: (line: string) => void;
  /** The `lb` label of every metric and the prefix of log lines. Default: the listen address. */
  name?: string;
  /** Bind with SO_REUSEPORT, so that worker processes share the port (src/workers/). */
  reusePort?: boolean;
  /**
   * 'follow': run no health checks here; another process (the primary of `--workers`) runs them
   * once for all and hands each change in through RunningLb.setHealth. Default 'run'.
   */
  healthChecks?: 'run' | 'follow';
}

export const DEFAULT_IDLE_TIMEOUT_MS = 350_000;
/** A target that has not accepted within this long fails the connect, as an NLB's (10 s). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_DEREGISTRATION_DELAY_MS = 300_000;

export interface LbConfigError {
  code:
    | 'LB_BAD_LISTEN_ADDRESS'
    | 'LB_BAD_TARGET'
    | 'LB_BAD_SOURCE_ADDRESS'
    | 'LB_BAD_ALGORITHM'
    | 'LB_BAD_PROXY_PROTOCOL'
    | 'LB_TLVS_NEED_V2'
    | 'LB_BAD_VPC_ENDPOINT_ID'
    | 'LB_BAD_HEALTH_CHECK'
    | 'LB_BAD_TIMEOUT'
    | 'LB_BAD_SOURCE_RANGE';
  message: string;
}

export type LbConfigResult = { ok: true; value: LbRuntimeConfig } | { ok: false; errors: LbConfigError[] };

const isPort = (port: number, allowZero: boolean) =>
  Number.isInteger(port) && port <= 65535 && (allowZero ? port >= 0 : port >= 1);

/** Checks a config before start-up; every problem is reported, not just the first. */
export function validateLbConfig(config: LbRuntimeConfig): LbConfigResult {
  const errors: LbConfigError[] = [];
  const add = (code: LbConfigError['code'], message: string) => errors.push({ code, message });
  if (!isHost(config.listen.host) || !isPort(config.listen.port, true)) {
    add(
      'LB_BAD_LISTEN_ADDRESS',
      `listen address ${formatHostPort(config.listen.host, config.listen.port)} is not IP:PORT`,
    );
  }
  config.targets.forEach((t, i) => {
    if (!isHost(t.host) || !isPort(t.port, false)) {
      add(
        'LB_BAD_TARGET',
        `target ${i + 1} (${formatHostPort(t.host, t.port)}) is not IP:PORT with a port 1-65535`,
      );
    }
  });
  if (config.sourceAddress !== null && canonicalIp(config.sourceAddress) === null) {
    add('LB_BAD_SOURCE_ADDRESS', `source address "${config.sourceAddress}" is not an IP address`);
  }
  if (!LB_ALGORITHMS.includes(config.algorithm)) {
    add('LB_BAD_ALGORITHM', `algorithm "${config.algorithm}" is not one of ${LB_ALGORITHMS.join(', ')}`);
  }
  if (config.proxyProtocol !== null && config.proxyProtocol !== 'v1' && config.proxyProtocol !== 'v2') {
    add('LB_BAD_PROXY_PROTOCOL', `PROXY protocol "${String(config.proxyProtocol)}" is not v1 or v2`);
  }
  const tlvs = config.tlvs ?? {};
  const wantsTlvs = tlvs.uniqueId === true || tlvs.crc32c === true || tlvs.awsVpcEndpointId !== undefined;
  if (wantsTlvs && config.proxyProtocol !== 'v2') {
    add('LB_TLVS_NEED_V2', 'TLVs (unique id, CRC32C, VPC endpoint id) need --proxy-protocol v2');
  }
  if (tlvs.awsVpcEndpointId !== undefined && !/^[\x21-\x7e]{1,255}$/.test(tlvs.awsVpcEndpointId)) {
    add('LB_BAD_VPC_ENDPOINT_ID', `VPC endpoint id "${tlvs.awsVpcEndpointId}" must be 1-255 printable ASCII`);
  }
  if (config.allowedSources !== undefined && config.allowedSources.length > 0) {
    const built = CidrSet.build(config.allowedSources);
    if (!built.ok) add('LB_BAD_SOURCE_RANGE', `allowed source range: ${built.error.message}`);
  }
  const hc = config.healthCheck;
  if (hc !== null) {
    const problems: string[] = [];
    if (hc.protocol !== 'tcp' && hc.protocol !== 'http') problems.push(`protocol "${String(hc.protocol)}"`);
    if (hc.port !== 'traffic-port' && !isPort(hc.port, false)) problems.push(`port ${String(hc.port)}`);
    if (hc.protocol === 'http' && !hc.path.startsWith('/')) problems.push(`path "${hc.path}"`);
    if (!(hc.intervalMs > 0) || !(hc.timeoutMs > 0)) problems.push('interval and timeout must be > 0');
    if (hc.intervalMs > LONGEST_TIMER_MS || hc.timeoutMs > LONGEST_TIMER_MS)
      problems.push(`interval and timeout must be at most ${LONGEST_TIMER_MS} ms`);
    if (!Number.isInteger(hc.healthyThreshold) || hc.healthyThreshold < 1) problems.push('healthy threshold');
    if (!Number.isInteger(hc.unhealthyThreshold) || hc.unhealthyThreshold < 1)
      problems.push('unhealthy threshold');
    if (problems.length > 0) add('LB_BAD_HEALTH_CHECK', `health check: ${problems.join(', ')}`);
  }
  for (const [name, value] of [
    ['idle timeout', config.idleTimeoutMs],
    ['deregistration delay', config.deregistrationDelayMs],
    ['connect timeout', config.connectTimeoutMs],
  ] as const) {
    // Timers fire at once past setTimeout's longest: such a delay would cut flows, not keep them. A
    // connect given no time at all would fail every flow.
    const least = name === 'connect timeout' ? 1 : 0;
    if (value !== undefined && !(Number.isFinite(value) && value >= least && value <= LONGEST_TIMER_MS)) {
      add(
        'LB_BAD_TIMEOUT',
        `${name} ${String(value)} must be a number of milliseconds from ${least} to ${LONGEST_TIMER_MS} (24.8 days)`,
      );
    }
  }
  return errors.length === 0 ? { ok: true, value: config } : { ok: false, errors };
}

function isHost(host: string): boolean {
  return host === 'localhost' || canonicalIp(host) !== null;
}

/**
 * The runtime config of one listener of a modelled load balancer (an NLB listens on every Service
 * port; pick one with `port`, default the first). Targets are given by the caller: node addresses +
 * nodePort for instance targets, endpoints for ip targets (see `targetsFromTopology`).
 */
export function lbConfigFromModel(
  model: LoadBalancerModel,
  targets: TargetAddress[],
  port: ServicePortModel | undefined = model.ports[0],
): LbRuntimeConfig {
  return {
    listen: { host: model.listenAddress, port: port?.port ?? 0 },
    targets,
    proxyProtocol: model.proxyProtocol,
    tlvs:
      model.vpcEndpointId !== null && model.proxyProtocol === 'v2'
        ? { awsVpcEndpointId: model.vpcEndpointId }
        : {},
    sourceAddress: model.sourceAddress,
    preserveClientIp: model.preserveClientIp,
    ...(model.unhealthyConnectionTermination === false ? { unhealthyConnectionTermination: false } : {}),
    allowedSources: model.loadBalancerSourceRanges,
    algorithm: 'flow-hash',
    healthCheck: model.healthCheck,
    idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
    deregistrationDelayMs: DEFAULT_DEREGISTRATION_DELAY_MS,
    name: port === undefined || model.ports.length <= 1 ? model.id : `${model.id}:${port.name || port.port}`,
  };
}
