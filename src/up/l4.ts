// The L4 hops of `keepip up` (the cloud LB, kube-proxy's NodePort and ClusterIP hops), all on the lb
// engine: what differs between them is only the source address, preservation and PROXY emission.
import type { AddressInfo } from 'node:net';
import { lbConfigFromModel, type RunningLb, startLoadBalancer } from '../lb/balancer.ts';
import type { Endpoint, L4Component } from './plan.ts';

export interface RunningL4 {
  address: AddressInfo;
  /** The engine itself: targets' health, flows, stats (the dashboard's Load balancer page). */
  lb: RunningLb;
  close(): Promise<void>;
}

export async function startL4(
  component: L4Component,
  options: { port: number; targets: Endpoint[]; log: (line: string) => void },
): Promise<RunningL4> {
  const listen = { host: component.listen.host, port: options.port };
  const targets = options.targets.map((t) => ({ host: t.host, port: t.port }));
  const config =
    component.model !== null
      ? {
          ...lbConfigFromModel(
            component.model,
            targets,
            component.model.ports.find((p) => p.port === component.listen.port),
          ),
          listen,
          log: options.log,
          name: component.name,
        }
      : {
          listen,
          targets,
          proxyProtocol: component.proxyProtocol,
          sourceAddress: component.sourceAddress,
          preserveClientIp: component.preserveClientIp,
          algorithm: 'round-robin' as const,
          healthCheck: null,
          log: options.log,
          name: component.name,
        };
  const running = await startLoadBalancer(config);
  return { address: running.address, lb: running, close: () => running.close() };
}
