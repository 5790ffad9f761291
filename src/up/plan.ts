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
  LbProvider,
  LoadBalancerModel,
  ObjectRef,
  ServiceModel,
  ServicePortModel,
  Topology,
} from '../config/model.ts';
import { isRoutedPath } from '../config/client-path.ts';
import { findService, readyEndpoints } from '../config/lookup.ts';
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
/** The providers rule A4 (preservation lost across a VPN, transit gateway or PrivateLink) is about. */
const AWS_PROVIDERS: ReadonlySet<LbProvider> = new Set<LbProvider>(['aws-nlb', 'aws-elb']);
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
  const components: Component[] = [];
  const served = new Set<string>();

  // The gateway: the pods behind the controller Service(s).
  const controllerServices = topology.gateway.controllerServices
    .map((ref) => findService(topology.services, ref))
    .filter((s): s is ServiceModel => s !== undefined);
  let http: Endpoint | null = null;
  let https: Endpoint | null = null;
  for (const service of controllerServices) {
    for (const port of service.ports) {
      const endpoints = readyEndpoints(service, port);
      const first = endpoints[0];
      if (first === undefined) continue;
      if (endpoints.length > 1) {
        notes.push(
          `${refName(service.ref)} port ${port.name || port.port} has ${endpoints.length} controller pods; ` +
            `one gateway runs at ${endpointKey({ host: first.address, port: first.port })}`,
        );
      }
      const endpoint = { host: first.address, port: first.port };
      if (isHttpsPort(port)) https ??= endpoint;
      else http ??= endpoint;
    }
  }
  if (http === null && https === null) {
    http = { host: DEFAULT_GATEWAY_ADDRESS, port: 80 };
    notes.push(`no controller Service with ready endpoints: the gateway listens on ${endpointKey(http)}`);
  }
  const gateway: GatewayComponent = { kind: 'gateway', name: 'gateway', http, https };
  for (const e of [http, https]) if (e) served.add(endpointKey(e));

  // Backends: whoami on each endpoint of every Service an Ingress sends traffic to.
  const backendRefs = new Map<string, ObjectRef>();
  for (const vhost of topology.gateway.virtualHosts) {
    for (const location of vhost.locations) {
      if (location.backend) backendRefs.set(refName(location.backend.service), location.backend.service);
    }
  }
  const defaultBackend = topology.gateway.defaultBackend;
  if (defaultBackend) backendRefs.set(refName(defaultBackend.service), defaultBackend.service);
  for (const ref of backendRefs.values()) {
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
        components.push({ kind: 'whoami', name: `whoami/${service.ref.name}`, service: service.ref, listen });
      }
    }
  }

  // ClusterIP hops: kube-proxy's DNAT for in-cluster traffic keeps the caller's address.
  for (const ref of backendRefs.values()) {
    const service = findService(topology.services, ref);
    if (service === undefined || service.clusterIP === null || !isLoopbackAddress(service.clusterIP))
      continue;
    for (const port of service.ports) {
      const targets = readyEndpoints(service, port).map((e) => ({ host: e.address, port: e.port }));
      if (targets.length === 0) continue;
      components.push({
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

  components.push(gateway);

  // Load balancers, each with the NodePort hop its instance targets go through.
  let nextNodePort = FIRST_DEFAULT_NODE_PORT;
  const loadBalancers: L4Component[] = [];
  for (const lb of topology.loadBalancers) {
    const service = findService(topology.services, lb.service);
    for (const port of lb.ports) {
      if (port.protocol !== 'TCP') {
        notes.push(`${lb.id} port ${port.port}/${port.protocol}: keepip up runs TCP only`);
        continue;
      }
      const pods = service
        ? readyEndpoints(service, port).map((e) => ({ host: e.address, port: e.port }))
        : [];
      if (pods.length === 0) {
        notes.push(`${lb.id} port ${port.port}: no ready endpoints; the LB has no healthy target`);
      }
      let targets: Endpoint[];
      if (lb.targetType === 'ip') {
        targets = pods;
      } else {
        const nodePort = port.nodePort ?? nextNodePort++;
        targets = [];
        for (const node of topology.nodes) {
          const listen = { host: node.address, port: nodePort };
          targets.push(listen);
          const local = lb.externalTrafficPolicy === 'Local';
          components.push({
            kind: 'node-port',
            name: `kube-proxy/${node.name}:${nodePort}`,
            service: lb.service,
            listen,
            targets:
              pods.length > 0 ? pods : [{ host: DEFAULT_GATEWAY_ADDRESS, port: fallbackTargetPort(port) }],
            sourceAddress: local ? null : node.address,
            preserveClientIp: local,
            proxyProtocol: null,
            model: null,
          });
        }
      }
      // A4, an AWS rule: across a VPN, a transit gateway or PrivateLink the targets see the LB's own
      // address whatever the preservation attribute says. On loopback the client is local, so say it
      // here. The path is the doctor's: the annotation, else PrivateLink for a VPC endpoint.
      const clientPath = lb.clientPath ?? (lb.vpcEndpointId !== null ? 'privatelink' : 'direct');
      const viaTranslation = AWS_PROVIDERS.has(lb.provider) && isRoutedPath(clientPath);
      if (viaTranslation && lb.preserveClientIp) {
        notes.push(
          `${lb.id}: clients arrive via ${clientPath}, where the LB cannot keep their address (A4): it connects from ${lb.sourceAddress}`,
        );
      }
      loadBalancers.push({
        kind: 'load-balancer',
        name: `lb/${lb.service.name}:${port.port}`,
        service: lb.service,
        listen: { host: lb.listenAddress, port: port.port },
        targets,
        sourceAddress: lb.sourceAddress,
        preserveClientIp: lb.preserveClientIp && !viaTranslation,
        proxyProtocol: lb.proxyProtocol,
        model: viaTranslation ? { ...lb, preserveClientIp: false } : lb,
      });
    }
  }
  components.push(...loadBalancers);

  for (const component of components) {
    if (
      !isLoopbackAddress(
        component.kind === 'gateway' ? (component.http ?? component.https)!.host : component.listen.host,
      )
    ) {
      notes.push(`${component.name} listens on a non-loopback address; map the manifests onto 127.0.0.0/8`);
    }
  }
  return { components, notes };
}
