// `keepip lb -f`: from the modelled load balancers of a topology (Services of type LoadBalancer) to
// one runtime config per listener. Where addresses come from (docs/lb.md):
//   listen  = --listen, else the model's listenAddress (status.loadBalancer.ingress[0].ip, else a
//             keepip default) and the Service port;
//   targets = --target, else by target type: instance -> every node address + the port's nodePort
//             (kube-proxy's hop); ip -> the ready endpoints of the Service port (straight to the pods).
// Pure: no sockets, no files.
import { findService, readyEndpoints } from '../config/lookup.ts';
import type { LoadBalancerModel, ServicePortModel, Topology } from '../config/model.ts';
import { type LbRuntimeConfig, lbConfigFromModel, type TargetAddress } from './config.ts';

export interface LbListenerPlan {
  model: LoadBalancerModel;
  port: ServicePortModel;
  config: LbRuntimeConfig;
  /** How the targets were found, for the start-up lines, e.g. "2 ready endpoints of port http". */
  targetsFrom: string;
}

export interface PlanProblem {
  code:
    | 'LB_NO_LOAD_BALANCER'
    | 'LB_SERVICE_NOT_FOUND'
    | 'LB_NO_TCP_PORT'
    | 'LB_NO_TARGETS'
    | 'LB_LISTEN_AMBIGUOUS';
  message: string;
}

export type PlanResult =
  | { ok: true; plans: LbListenerPlan[]; warnings: PlanProblem[] }
  | { ok: false; errors: PlanProblem[] };

export interface PlanOptions {
  /** "namespace/name" of the one Service to run; default every LoadBalancer Service. */
  service?: string;
  /** Overrides the listen address and port (0: any free port); needs exactly one listener. */
  listen?: { host: string; port: number };
  /** Overrides the targets of every listener. */
  targets?: TargetAddress[];
}

export function planFromTopology(topology: Topology, options: PlanOptions = {}): PlanResult {
  const errors: PlanProblem[] = [];
  const warnings: PlanProblem[] = [];
  let models = topology.loadBalancers;
  if (options.service !== undefined) {
    models = models.filter((m) => m.id === options.service);
    if (models.length === 0) {
      const known = topology.loadBalancers.map((m) => m.id).join(', ') || 'none';
      return {
        ok: false,
        errors: [
          {
            code: 'LB_SERVICE_NOT_FOUND',
            message: `no LoadBalancer Service ${options.service} (found: ${known})`,
          },
        ],
      };
    }
  }
  if (models.length === 0) {
    return {
      ok: false,
      errors: [
        { code: 'LB_NO_LOAD_BALANCER', message: 'the manifests hold no Service of type LoadBalancer' },
      ],
    };
  }
  const plans: LbListenerPlan[] = [];
  for (const model of models) {
    const tcpPorts = model.ports.filter((p) => p.protocol === 'TCP');
    for (const skipped of model.ports.filter((p) => p.protocol !== 'TCP')) {
      warnings.push({
        code: 'LB_NO_TCP_PORT',
        message: `${model.id} port ${skipped.name || skipped.port}/${skipped.protocol}: keepip lb forwards TCP only; skipped`,
      });
    }
    if (tcpPorts.length === 0) {
      errors.push({ code: 'LB_NO_TCP_PORT', message: `${model.id} has no TCP port` });
      continue;
    }
    for (const port of tcpPorts) {
      const found =
        options.targets !== undefined
          ? { targets: options.targets, from: `${options.targets.length} target(s) from --target` }
          : targetsForPort(topology, model, port);
      if (found.targets.length === 0) {
        errors.push({
          code: 'LB_NO_TARGETS',
          message: `${model.id} port ${port.name || port.port}: ${found.from}`,
        });
        continue;
      }
      plans.push({
        model,
        port,
        config: lbConfigFromModel(model, found.targets, port),
        targetsFrom: found.from,
      });
    }
  }
  if (options.listen !== undefined) {
    if (plans.length > 1) {
      errors.push({
        code: 'LB_LISTEN_AMBIGUOUS',
        message: `--listen names one address but the manifests ask for ${plans.length} listeners (${plans.map((p) => `${p.model.id}:${p.port.port}`).join(', ')}); choose one with --service (and a single-port Service)`,
      });
    } else if (plans[0] !== undefined) {
      plans[0].config.listen = { host: options.listen.host, port: options.listen.port };
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, plans, warnings };
}

/** The targets a modelled NLB would register for one Service port, and a description of where they came from. */
export function targetsForPort(
  topology: Topology,
  model: LoadBalancerModel,
  port: ServicePortModel,
): { targets: TargetAddress[]; from: string } {
  const portName = port.name || String(port.port);
  if (model.targetType === 'instance') {
    if (port.nodePort === null) {
      return {
        targets: [],
        from: `instance targets need a nodePort on port ${portName}; none is set (give --target)`,
      };
    }
    const nodePort = port.nodePort;
    return {
      targets: topology.nodes.map((n) => ({ host: n.address, port: nodePort })),
      from: `${topology.nodes.length} node(s) (${topology.nodes.map((n) => n.name).join(', ')}) on nodePort ${nodePort}`,
    };
  }
  const service = findService(topology.services, model.service);
  const endpoints = service === undefined ? [] : readyEndpoints(service, port);
  if (endpoints.length === 0) {
    return { targets: [], from: `ip targets: no ready endpoints for port ${portName} (give --target)` };
  }
  return {
    targets: endpoints.map((e) => ({ host: e.address, port: e.port })),
    from: `${endpoints.length} ready endpoint(s) of port ${portName} (ip targets)`,
  };
}
