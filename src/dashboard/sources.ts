// What a process hands its dashboard: where to read the running configuration, the model the doctor
// walks for the Chain page, and the load balancers it runs. Each is optional: a page whose source is
// absent says so instead of showing stale or invented data.
import type { Topology } from '../config/model.ts';
import { diagnose } from '../doctor/diagnose.ts';
import { renderJson } from '../doctor/report.ts';
import type { ClientPath } from '../doctor/types.ts';
import type { GatewaySnapshot } from '../gateway/snapshot.ts';
import type { LbStats, TargetHealthView } from '../lb/balancer.ts';
import type { BehindLookup } from './decision-log.ts';

/** One L4 hop as the Load balancer page shows it. */
export interface LoadBalancerView {
  name: string;
  /** Where it listens (the actual port) and, with keepip up, the address the manifests name. */
  listen: string;
  logicalListen: string | null;
  proxyProtocol: 'v1' | 'v2' | null;
  preserveClientIp: boolean;
  sourceAddress: string | null;
  failingOpen: boolean;
  targets: TargetHealthView[];
  stats: LbStats;
}

export interface DashboardSources {
  /** Which command serves the page: shown in the header. */
  mode: 'gateway' | 'up' | 'controller';
  /** The snapshot being served (null while the controller has not synced yet). */
  snapshot(): GatewaySnapshot | null;
  /** The model the doctor walks for the Chain page; absent: no Chain page. */
  topology?: () => Topology | null;
  /** The load balancers this process runs; absent: no Load balancer page. */
  loadBalancers?: () => LoadBalancerView[];
  /** keepip up: who a connection to the gateway carries, from the L4 hops in front (see attach.ts). */
  behind?: BehindLookup;
}

export interface ChainQuery {
  client: string;
  host?: string;
  path?: string;
  via?: ClientPath;
}

/** The doctor's report (its JSON schema, docs/doctor.md) for one client on the current model. */
export function chainReport(
  topology: Topology,
  query: ChainQuery,
): { ok: true; report: unknown } | { ok: false; code: string; message: string } {
  const result = diagnose(topology, {
    client: query.client,
    ...(query.host ? { host: query.host } : {}),
    ...(query.path ? { path: query.path } : {}),
    ...(query.via ? { via: query.via } : {}),
  });
  if (!result.ok) return { ok: false, code: result.error.code, message: result.error.message };
  return { ok: true, report: JSON.parse(renderJson(result.report)) };
}
