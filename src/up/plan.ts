// `keepip up`, the pure half: which components the topology asks for on this machine, where each one
// listens and where it sends its traffic. The run step (run.ts) only binds what this plan says, so a
// test can read the plan without a socket, and the doctor and the running chain read the same model.
//
// The chain, outside in:
//   load balancer (listenAddress:port) -> targets: nodes' NodePorts (instance) or the pods (ip)
//   kube-proxy NodePort hop (node:nodePort) -> the Service's endpoints; SNAT to the node under
//     externalTrafficPolicy: Cluster, the client's address kept under Local
//   gateway (the ingress controller pods: the endpoints of the controller Service)
//   ClusterIP hops (clusterIP:port -> endpoints, address kept), for `service-upstream` and in-cluster calls
//   whoami on every backend endpoint that nothing else serves
import type {
  EndpointModel,
  LoadBalancerModel,
  ObjectRef,
  ServiceModel,
  ServicePortModel,
  Topology,
} from '../config/model.ts';
import { isRoutedPath } from '../config/client-path.ts';
import { findService, readyEndpoints } from '../config/lookup.ts';
import { isAwsProvider } from '../config/providers.ts';
import { formatHostPort } from '../net/host-port.ts';
import { isLoopbackAddress } from '../net/ip.ts';

export interface Endpoint {
  host: string;
  port: number;
}

export interface WhoamiComponent {
  kind: 'whoami';
  name: string;
  service: ObjectRef;
  listen: Endpoint;
}

export interface L4Component {
  kind: 'load-balancer' | 'node-port' | 'cluster-ip';
  name: string;
  service: ObjectRef;
  listen: Endpoint;
  targets: Endpoint[];
  /** The address connections to targets come from when the client's is not kept; null: the OS picks. */
  sourceAddress: string | null;
  preserveClientIp: boolean;
  proxyProtocol: 'v1' | 'v2' | null;
  /** The model of the cloud LB this component plays (load-balancer components only). */
  model: LoadBalancerModel | null;
}

export interface GatewayComponent {
  kind: 'gateway';
  name: string;
  http: Endpoint | null;
  https: Endpoint | null;
}

export type Component = WhoamiComponent | L4Component | GatewayComponent;

export interface UpPlan {
  /** In start order: backends first, load balancers last, so every hop's targets exist when it starts. */
  components: Component[];
  /** What the plan could not do as the manifests say, and why (shown at start-up). */
  notes: string[];
}

/** Where the gateway runs when no controller Service names its pods (documented in docs/up.md). */
export const DEFAULT_GATEWAY_ADDRESS = '127.0.30.1';
/** NodePorts for LoadBalancer Service ports that do not give one. */
const FIRST_DEFAULT_NODE_PORT = 30000;

const refName = (ref: ObjectRef): string => `${ref.namespace}/${ref.name}`;
const endpointKey = (e: Endpoint): string => formatHostPort(e.host, e.port);

/** A Service port's pod port when no endpoint tells it: a numeric targetPort, else the port itself. */
function fallbackTargetPort(port: ServicePortModel): number {
  return typeof port.targetPort === 'number' ? port.targetPort : port.port;
}

function isHttpsPort(port: ServicePortModel): boolean {
  return port.name === 'https' || port.port === 443;
}

export function planUp(topology: Topology): UpPlan {
  const notes: string[] = [];
  const gateway = planGateway(topology, notes);
  const served = new Set<string>();
  for (const e of [gateway.http, gateway.https]) if (e) served.add(endpointKey(e));
  const backends = backendRefs(topology);
  const components: Component[] = [
    ...planWhoamis(topology, backends, served, notes),
    ...planClusterIps(topology, backends),
    gateway,
  ];
  const loadBalancers: L4Component[] = [];
  const nodePorts = { next: FIRST_DEFAULT_NODE_PORT };
  for (const lb of topology.loadBalancers) {
    const service = findService(topology.services, lb.service);
    for (const port of lb.ports) {
      if (port.protocol !== 'TCP') {
        notes.push(`${lb.id} port ${port.port}/${port.protocol}: keepip up runs TCP only`);
        continue;
      }
      const planned = planLbPort(topology, lb, service, port, nodePorts, notes);
      components.push(...planned.nodePorts);
      loadBalancers.push(planned.lb);
    }
  }
  components.push(...loadBalancers);
  distinctNames(components);
  notes.push(...unreachableClusterIps(topology));
  for (const component of components) {
    const host =
      component.kind === 'gateway' ? (component.http ?? component.https)!.host : component.listen.host;
    if (!isLoopbackAddress(host)) {
      notes.push(`${component.name} listens on a non-loopback address; map the manifests onto 127.0.0.0/8`);
    }
  }
  return { components, notes };
}

/**
 * One name per component: it prefixes the component's lines, and a second one of a name would not
 * start. Where two share one, the Service's namespace is added (`lb/a/edge:7000`, `lb/b/edge:7000`),
 * then the address (a Service's second endpoint: `whoami/pair@127.0.81.13:3000`).
 */
function distinctNames(components: Component[]): void {
  const clashing = () => {
    const seen = new Map<string, Component[]>();
    for (const c of components) seen.set(c.name, [...(seen.get(c.name) ?? []), c]);
    return [...seen.values()].filter((group) => group.length > 1);
  };
  for (const group of clashing()) {
    const services = group.flatMap((c) => (c.kind === 'gateway' ? [] : [c.service]));
    if (new Set(services.map((ref) => ref.namespace)).size < 2) continue;
    for (const c of group)
      if (c.kind !== 'gateway') c.name = c.name.replace(`/${c.service.name}`, `/${refName(c.service)}`);
  }
  for (const group of clashing())
    for (const c of group.slice(1))
      if (c.kind !== 'gateway') c.name = `${c.name}@${formatHostPort(c.listen.host, c.listen.port)}`;
}

/** Backends reached through a ClusterIP (service-upstream) that keepip up cannot run off loopback. */
function unreachableClusterIps(topology: Topology): string[] {
  const notes = new Set<string>();
  for (const vhost of topology.gateway.virtualHosts)
    for (const location of vhost.locations) {
      const ref = location.backend?.service;
      if (!location.serviceUpstream || ref === undefined) continue;
      const clusterIP = findService(topology.services, ref)?.clusterIP ?? null;
      if (clusterIP !== null && !isLoopbackAddress(clusterIP))
        notes.add(
          `Service ${refName(ref)}: ClusterIP ${clusterIP} is outside 127.0.0.0/8, so keepip up runs no kube-proxy hop there; requests sent to it (service-upstream) fail`,
        );
    }
  return [...notes];
}

/** The gateway: the pods behind the controller Service(s), else DEFAULT_GATEWAY_ADDRESS:80. */
function planGateway(topology: Topology, notes: string[]): GatewayComponent {
  let http: Endpoint | null = null;
  let https: Endpoint | null = null;
  for (const ref of topology.gateway.controllerServices) {
    const service = findService(topology.services, ref);
    if (service === undefined) continue;
    for (const port of service.ports) {
      const endpoints = readyEndpoints(service, port);
      const first = endpoints[0];
      if (first === undefined) continue;
      const endpoint = { host: first.address, port: first.port };
      if (endpoints.length > 1) {
        notes.push(
          `${refName(ref)} port ${port.name || port.port} has ${endpoints.length} controller pods; ` +
            `one gateway runs at ${endpointKey(endpoint)}`,
        );
      }
      if (isHttpsPort(port)) https ??= endpoint;
      else http ??= endpoint;
    }
  }
  if (http === null && https === null) {
    http = { host: DEFAULT_GATEWAY_ADDRESS, port: 80 };
    notes.push(`no controller Service with ready endpoints: the gateway listens on ${endpointKey(http)}`);
  }
  return { kind: 'gateway', name: 'gateway', http, https };
}

/** Every Service an Ingress (or the default backend) sends traffic to, once each. */
function backendRefs(topology: Topology): ObjectRef[] {
  const refs = new Map<string, ObjectRef>();
  for (const vhost of topology.gateway.virtualHosts) {
    for (const location of vhost.locations) {
      if (location.backend) refs.set(refName(location.backend.service), location.backend.service);
    }
  }
  const defaultBackend = topology.gateway.defaultBackend;
  if (defaultBackend) refs.set(refName(defaultBackend.service), defaultBackend.service);
  return [...refs.values()];
}

/** whoami on each ready endpoint of the backends that nothing else listens on. */
function planWhoamis(
  topology: Topology,
  backends: readonly ObjectRef[],
  served: Set<string>,
  notes: string[],
): WhoamiComponent[] {
  const whoamis: WhoamiComponent[] = [];
  for (const ref of backends) {
    const service = findService(topology.services, ref);
    if (service === undefined) {
      notes.push(`Service ${refName(ref)} is not in the manifests: requests for it get 503`);
      continue;
    }
    for (const port of service.ports) {
      for (const endpoint of readyEndpoints(service, port)) {
        const listen = { host: endpoint.address, port: endpoint.port };
        if (served.has(endpointKey(listen))) continue;
        served.add(endpointKey(listen));
        whoamis.push({ kind: 'whoami', name: `whoami/${service.ref.name}`, service: service.ref, listen });
      }
    }
  }
  return whoamis;
}

/** ClusterIP hops: kube-proxy's DNAT for in-cluster traffic keeps the caller's address. */
function planClusterIps(topology: Topology, backends: readonly ObjectRef[]): L4Component[] {
  const hops: L4Component[] = [];
  for (const ref of backends) {
    const service = findService(topology.services, ref);
    if (service === undefined || service.clusterIP === null || !isLoopbackAddress(service.clusterIP))
      continue;
    for (const port of service.ports) {
      const targets = readyEndpoints(service, port).map((e) => ({ host: e.address, port: e.port }));
      if (targets.length === 0) continue;
      hops.push({
        kind: 'cluster-ip',
        name: `cluster-ip/${service.ref.name}:${port.port}`,
        service: service.ref,
        listen: { host: service.clusterIP, port: port.port },
        targets,
        sourceAddress: null,
        preserveClientIp: true,
        proxyProtocol: null,
        model: null,
      });
    }
  }
  return hops;
}

/** One TCP port of a load balancer, with the NodePort hops its instance targets go through. */
function planLbPort(
  topology: Topology,
  lb: LoadBalancerModel,
  service: ServiceModel | undefined,
  port: ServicePortModel,
  nodePorts: { next: number },
  notes: string[],
): { lb: L4Component; nodePorts: (L4Component | WhoamiComponent)[] } {
  const ready = service ? readyEndpoints(service, port) : [];
  const pods = ready.map((e) => ({ host: e.address, port: e.port }));
  if (pods.length === 0) {
    notes.push(`${lb.id} port ${port.port}: no ready endpoints; the LB has no healthy target`);
  }
  const hops =
    lb.targetType === 'ip' ? [] : planNodePorts(topology, lb, port, ready, port.nodePort ?? nodePorts.next++);
  // A4, an AWS rule: across a VPN, a transit gateway or PrivateLink the targets see the LB's own
  // address whatever the preservation attribute says. On loopback the client is local, so say it
  // here. The path is the doctor's: the annotation, else PrivateLink for a VPC endpoint.
  const clientPath = lb.clientPath ?? (lb.vpcEndpointId !== null ? 'privatelink' : 'direct');
  const viaTranslation = isAwsProvider(lb.provider) && isRoutedPath(clientPath);
  if (viaTranslation && lb.preserveClientIp) {
    notes.push(
      `${lb.id}: clients arrive via ${clientPath}, where the LB cannot keep their address (A4): it connects from ${lb.sourceAddress}`,
    );
  }
  return {
    nodePorts: hops,
    lb: {
      kind: 'load-balancer',
      name: `lb/${lb.service.name}:${port.port}`,
      service: lb.service,
      listen: { host: lb.listenAddress, port: port.port },
      targets:
        lb.targetType === 'ip'
          ? pods
          : hops.filter((hop) => hop.kind === 'node-port').map((hop) => hop.listen),
      sourceAddress: lb.sourceAddress,
      preserveClientIp: lb.preserveClientIp && !viaTranslation,
      proxyProtocol: lb.proxyProtocol,
      model: viaTranslation ? { ...lb, preserveClientIp: false } : lb,
    },
  };
}

/**
 * kube-proxy on every node's NodePort: SNAT to the node under Cluster, the client kept under Local,
 * where a node sends only to the pods on itself and answers the LB's health check on
 * healthCheckNodePort only while it has one (K2, A7: nodes without one fail it and get nothing).
 */
function planNodePorts(
  topology: Topology,
  lb: LoadBalancerModel,
  port: ServicePortModel,
  ready: readonly EndpointModel[],
  nodePort: number,
): (L4Component | WhoamiComponent)[] {
  const local = lb.externalTrafficPolicy === 'Local';
  // Without ready endpoints kube-proxy rejects the connection; the controller's own Service is the
  // exception, as the gateway then runs at its default address (planGateway).
  const controller = topology.gateway.controllerServices.some(
    (ref) => ref.namespace === lb.service.namespace && ref.name === lb.service.name,
  );
  const fallback = controller ? [{ host: DEFAULT_GATEWAY_ADDRESS, port: fallbackTargetPort(port) }] : [];
  return topology.nodes.flatMap((node) => {
    // An endpoint whose node the manifests do not say is taken as on every node.
    const on = local ? ready.filter((e) => e.nodeName === null || e.nodeName === node.name) : ready;
    const pods = on.map((e) => ({ host: e.address, port: e.port }));
    const hop: L4Component = {
      kind: 'node-port',
      name: `kube-proxy/${node.name}:${nodePort}`,
      service: lb.service,
      listen: { host: node.address, port: nodePort },
      targets: pods.length > 0 ? pods : ready.length > 0 ? [] : fallback,
      sourceAddress: local ? null : node.address,
      preserveClientIp: local,
      proxyProtocol: null,
      model: null,
    };
    const checked = local && lb.healthCheckNodePort !== null && pods.length > 0;
    const health: WhoamiComponent[] = checked
      ? [
          {
            kind: 'whoami',
            name: `kube-proxy/${node.name}:${lb.healthCheckNodePort} (health)`,
            service: lb.service,
            listen: { host: node.address, port: lb.healthCheckNodePort! },
          },
        ]
      : [];
    return [hop, ...health];
  });
}
