// Objects → the one Topology every runtime consumes. Pure: the same objects always give the same,
// deeply frozen snapshot, with every problem in `issues` naming file, document and field.
import type { ConfigIssue, Topology } from '../config/model.ts';
import {
  type ConfigMapView,
  type EndpointSliceView,
  type EndpointsView,
  type IngressClassView,
  type IngressView,
  type ManifestObject,
  type NodeView,
  readConfigMap,
  readEndpointSlice,
  readEndpoints,
  readIngress,
  readIngressClass,
  readNode,
  readSecret,
  readService,
  type SecretView,
  type ServiceView,
} from './objects.ts';
import { withAnnotationsPrefix } from './annotation-prefix.ts';
import { describeOrigin } from './reader.ts';
import { type GatewayOptions, translateGateway } from './translate-gateway.ts';
import { translateLoadBalancers } from './translate-lb.ts';
import { type ServiceOptions, translateNodes, translateServices } from './translate-services.ts';

export interface TopologyOptions extends GatewayOptions, ServiceOptions {
  /** The ingress class served; default "nginx". */
  ingressClass?: string;
  /** The controller ConfigMap as "namespace/name"; default "ingress-nginx/ingress-nginx-controller". */
  configMap?: string;
  /** --annotations-prefix: where this controller's Ingress annotations live; default nginx.ingress.kubernetes.io. */
  annotationsPrefix?: string;
}

/** apiVersion + kind pairs keepip reads; everything else is kept by the loader but ignored here. */
const READ: Readonly<Record<string, readonly string[]>> = {
  Ingress: ['networking.k8s.io/v1'],
  IngressClass: ['networking.k8s.io/v1'],
  Service: ['v1'],
  Endpoints: ['v1'],
  EndpointSlice: ['discovery.k8s.io/v1'],
  ConfigMap: ['v1'],
  Secret: ['v1'],
  Node: ['v1'],
};

export function buildTopology(objects: readonly ManifestObject[], options: TopologyOptions = {}): Topology {
  const issues: ConfigIssue[] = [];
  const ingresses: IngressView[] = [];
  const ingressClasses: IngressClassView[] = [];
  const services: ServiceView[] = [];
  const endpoints: EndpointsView[] = [];
  const slices: EndpointSliceView[] = [];
  const configMaps: ConfigMapView[] = [];
  const secrets: SecretView[] = [];
  const nodes: NodeView[] = [];
  const seen = new Map<string, ManifestObject>();

  for (const object of objects) {
    const versions = READ[object.kind];
    if (!versions) {
      issues.push({
        severity: 'info',
        code: 'UNSUPPORTED_KIND',
        message: `${describeOrigin(object.origin)}: kind ${object.kind} (${object.apiVersion}) is not read by keepip; ignored`,
        origin: object.origin,
      });
      continue;
    }
    if (!versions.includes(object.apiVersion)) {
      issues.push({
        severity: 'warning',
        code: 'UNSUPPORTED_API_VERSION',
        message: `${describeOrigin(object.origin)} apiVersion: ${object.kind} ${object.apiVersion} is not supported (use ${versions.join(' or ')}); ignored`,
        origin: object.origin,
        field: 'apiVersion',
      });
      continue;
    }
    // Cluster-scoped kinds have no namespace; the loader's "default" must not split them.
    const id = `${object.kind}/${object.kind === 'Node' || object.kind === 'IngressClass' ? '' : object.origin.namespace}/${object.origin.name}`;
    const earlier = seen.get(id);
    if (earlier) {
      issues.push({
        severity: 'warning',
        code: 'DUPLICATE_OBJECT',
        message: `${describeOrigin(object.origin)}: the same object is already defined at ${describeOrigin(earlier.origin)}; the later definition wins, as with kubectl apply`,
        origin: object.origin,
      });
      removeObject(earlier, {
        ingresses,
        ingressClasses,
        services,
        endpoints,
        slices,
        configMaps,
        secrets,
        nodes,
      });
    }
    seen.set(id, object);
    switch (object.kind) {
      case 'Ingress':
        ingresses.push(withAnnotationsPrefix(readIngress(object, issues), options.annotationsPrefix));
        break;
      case 'IngressClass':
        ingressClasses.push(readIngressClass(object, issues));
        break;
      case 'Service':
        services.push(readService(object, issues));
        break;
      case 'Endpoints':
        endpoints.push(readEndpoints(object, issues));
        break;
      case 'EndpointSlice':
        slices.push(readEndpointSlice(object, issues));
        break;
      case 'ConfigMap':
        configMaps.push(readConfigMap(object, issues));
        break;
      case 'Secret':
        secrets.push(readSecret(object, issues));
        break;
      case 'Node':
        nodes.push(readNode(object, issues));
        break;
    }
  }

  const topology: Topology = {
    loadBalancers: translateLoadBalancers(services, issues),
    nodes: translateNodes(nodes, issues),
    services: translateServices(services, endpoints, slices, issues, options),
    gateway: translateGateway({ ingresses, ingressClasses, services, secrets, configMaps }, options, issues),
    issues,
  };
  return deepFreeze(topology);
}

function removeObject(
  earlier: ManifestObject,
  lists: Record<string, { origin: ManifestObject['origin'] }[]>,
): void {
  for (const list of Object.values(lists)) {
    const i = list.findIndex((v) => v.origin === earlier.origin);
    if (i >= 0) list.splice(i, 1);
  }
}

/** Freezes a plain-data tree so no consumer can change a snapshot another one is reading. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** True when any issue is an error (callers decide whether to refuse the snapshot). */
export function hasErrors(issues: readonly ConfigIssue[]): boolean {
  return issues.some((i) => i.severity === 'error');
}
