// STREAM_SERVICE_NOT_EXPOSED: the controller serves a tcp-services or udp-services port, but the LB
// Service in front of it has no port to it, so clients outside the cluster cannot reach it (the chart
// adds one per entry; a Service written by hand often does not).
import { patchService } from '../fix.ts';
import type { LoadBalancerModel } from '../../config/model.ts';
import type { StreamEntry, StreamServiceSet } from '../stream-services.ts';
import type { Finding } from '../types.ts';
import { describeLb, lbSubject } from './common.ts';
import type { Rule } from './types.ts';

const ID = 'STREAM_SERVICE_NOT_EXPOSED';

/** The LB Service's ports as they are, plus one per missing entry (a merge patch replaces the list). */
function portsWith(lb: LoadBalancerModel, missing: readonly StreamEntry[]): Record<string, unknown>[] {
  const kept = lb.ports.map((p) => ({
    ...(p.name !== '' ? { name: p.name } : {}),
    protocol: p.protocol,
    port: p.port,
    targetPort: p.targetPort,
    ...(p.nodePort !== null ? { nodePort: p.nodePort } : {}),
  }));
  const added = missing.map((e) => ({
    name: `${e.port}-${(e.protocol ?? 'TCP').toLowerCase()}`,
    protocol: e.protocol ?? 'TCP',
    port: e.port,
    targetPort: e.port,
  }));
  return [...kept, ...added];
}

function missingOf(set: StreamServiceSet | null): StreamEntry[] {
  return set === null ? [] : set.entries.filter((e) => e.lbPort === null);
}

export const rule: Rule = {
  id: ID,
  severity: 'warning',
  check(_topology, { chain }) {
    const lb = chain.lb;
    if (lb === null) return [];
    const sets = [chain.streamServices.tcp, chain.streamServices.udp].filter((s) => s !== null);
    const missing = sets.flatMap(missingOf);
    if (missing.length === 0) return [];
    const fix = {
      summary: `Add ${missing.length === 1 ? 'a port' : 'ports'} to the LB Service for ${missing.map((e) => `${e.port}/${e.protocol ?? 'TCP'}`).join(', ')}.`,
      patches: [patchService(lb.service, { spec: { ports: portsWith(lb, missing) } })],
    };
    return sets.flatMap((set) =>
      missingOf(set).map(
        (entry): Finding => ({
          id: ID,
          severity: 'warning',
          hops: ['load-balancer', 'gateway'],
          message:
            `ConfigMap ${set.configMap.namespace}/${set.configMap.name} (${set.source}) serves ${set.protocol} port ${entry.port} for ${entry.service.namespace}/${entry.service.name}, ` +
            `but ${describeLb(lb)} has no ${set.protocol} port to it: clients outside the cluster cannot reach it (in-cluster callers of the controller's pods still can).`,
          fix,
          ...lbSubject(lb),
        }),
      ),
    );
  },
};
