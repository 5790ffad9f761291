// The dashboard's data sources for each command that serves it: a gateway alone, the chain of
// `keepip up`, and the controller (whose model is the cluster's). The command creates the decision log,
// hands its sink to the gateway, then starts the dashboard with these sources.
import type { RunningGateway } from '../gateway/gateway.ts';
import { formatHostPort } from '../net/host-port.ts';
import type { RunningChain } from '../up/run.ts';
import type { BehindHop, BehindLookup } from '../gateway/decision-log.ts';
import type { ManifestSource } from '../k8s/index.ts';
import type { DashboardSources, LoadBalancerView } from './sources.ts';

/** A gateway of one process, or a primary with workers (whose decisions reach the same log). */
export function gatewaySources(running: Pick<RunningGateway, 'snapshot'>): DashboardSources {
  return { mode: 'gateway', snapshot: () => running.snapshot() };
}

/** The L4 hops of a chain (the cloud LB, kube-proxy's NodePort and ClusterIP hops). */
export function chainLoadBalancers(chain: RunningChain): LoadBalancerView[] {
  // Outside in: the cloud LB first, as a request meets them.
  return chain
    .loadBalancers()
    .reverse()
    .map(({ component, running }) => ({
      name: component.name,
      listen: formatHostPort(running.address.address, running.address.port),
      logicalListen: formatHostPort(component.listen.host, component.listen.port),
      proxyProtocol: component.proxyProtocol,
      preserveClientIp: component.preserveClientIp,
      sourceAddress: component.sourceAddress,
      failingOpen: running.lb.failingOpen(),
      targets: running.lb.targetHealth(),
      stats: running.lb.stats(),
    }));
}

/**
 * Who a connection to the gateway carries, asked of the chain's L4 hops, hop after hop outwards (a
 * kube-proxy hop's client may be the cloud LB's connection): the address lost at the LB, found again.
 * Each step needs a flow of the hop that connected from that address and port *to* the listener the
 * connection arrived at (the gateway's, then that hop's own): a client that binds the port another
 * flow leaves from, towards another hop, is not taken for that flow.
 */
export function chainBehind(chain: RunningChain): BehindLookup {
  return (peer, listener) => {
    const hops: BehindHop[] = [];
    let from = peer;
    let to = listener;
    for (let depth = 0; depth < 4; depth += 1) {
      let found: { hop: BehindHop; listener: { address: string; port: number } } | null = null;
      for (const { component, running } of chain.loadBalancers()) {
        const client = running.lb.clientBehind(from, to);
        if (client === null) continue;
        const hop = { via: component.name, client: client.address, port: client.port };
        found = { hop, listener: { address: running.address.address, port: running.address.port } };
        break;
      }
      if (found === null) break;
      hops.push(found.hop);
      from = { address: found.hop.client, port: found.hop.port };
      to = found.listener;
    }
    return hops.length === 0 ? null : hops;
  };
}

export function upSources(chain: RunningChain): DashboardSources {
  return {
    mode: 'up',
    snapshot: () => chain.gateway()?.snapshot() ?? null,
    topology: () => chain.topology,
    loadBalancers: () => chainLoadBalancers(chain),
    behind: chainBehind(chain),
    manifests: () => chain.manifests(),
  };
}

/**
 * The controller's sources: its gateway (null until the first complete sync) and, for the Chain page,
 * the model the gateway serves (the cluster's objects, translated).
 */
export function controllerSources(
  gateway: () => Pick<RunningGateway, 'snapshot'> | null,
  manifests: () => ManifestSource | null,
): DashboardSources {
  return {
    mode: 'controller',
    snapshot: () => gateway()?.snapshot() ?? null,
    topology: () => gateway()?.snapshot().topology ?? null,
    manifests,
  };
}
