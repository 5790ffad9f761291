// What a process hands its dashboard: where to read the running configuration, the model the doctor
// walks for the Chain page, and the load balancers it runs. Each is optional: a page whose source is
// absent says so instead of showing stale or invented data.
import type { Topology } from '../config/model.ts';
import { diagnose } from '../doctor/diagnose.ts';
import { followFix } from '../doctor/follow-fix.ts';
import { renderJson } from '../doctor/report.ts';
import type { ClientPath } from '../doctor/types.ts';
import type { GatewaySnapshot } from '../gateway/snapshot.ts';
import type { ManifestSource } from '../k8s/index.ts';
import type { LbStats, TargetHealthView } from '../lb/balancer.ts';
import type { BehindLookup } from '../gateway/decision-log.ts';

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
  /**
   * The objects the model was translated from, and the translation: the Chain page applies the
   * doctor's fix to them and reports what it reveals (`afterFix`, as `keepip doctor -f`). Absent or
   * null: no afterFix.
   */
  manifests?: () => ManifestSource | null;
}

export interface ChainQuery {
  client: string;
  host?: string;
  path?: string;
  via?: ClientPath;
}

/**
 * The doctor's report (its JSON schema, docs/doctor.md) for one client on the current model; with
 * the manifests behind it, `afterFix` too: what the doctor finds once its fix is applied to them.
 */
export function chainReport(
  topology: Topology,
  query: ChainQuery,
  manifests: ManifestSource | null = null,
): { ok: true; report: unknown } | { ok: false; code: string; message: string } {
  const options = {
    client: query.client,
    ...(query.host ? { host: query.host } : {}),
    ...(query.path ? { path: query.path } : {}),
    ...(query.via ? { via: query.via } : {}),
  };
  const result = diagnose(topology, options);
  if (!result.ok) return { ok: false, code: result.error.code, message: result.error.message };
  const report = result.report;
  if (manifests !== null)
    report.afterFix = followFix(manifests.objects, report, (patched) => {
      const again = diagnose(manifests.translate(patched), options);
      return again.ok ? again.report : null;
    });
  return { ok: true, report: JSON.parse(renderJson(report)) };
}
