// The Kubernetes resources the controller reads and writes, and their REST paths. Pure.

export interface ResourceType {
  kind: string;
  apiVersion: string;
  /** The plural in the URL. */
  plural: string;
  namespaced: boolean;
}

export const RESOURCES = {
  ingress: { kind: 'Ingress', apiVersion: 'networking.k8s.io/v1', plural: 'ingresses', namespaced: true },
  ingressClass: {
    kind: 'IngressClass',
    apiVersion: 'networking.k8s.io/v1',
    plural: 'ingressclasses',
    namespaced: false,
  },
  service: { kind: 'Service', apiVersion: 'v1', plural: 'services', namespaced: true },
  endpointSlice: {
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    plural: 'endpointslices',
    namespaced: true,
  },
  secret: { kind: 'Secret', apiVersion: 'v1', plural: 'secrets', namespaced: true },
  configMap: { kind: 'ConfigMap', apiVersion: 'v1', plural: 'configmaps', namespaced: true },
  namespace: { kind: 'Namespace', apiVersion: 'v1', plural: 'namespaces', namespaced: false },
  pod: { kind: 'Pod', apiVersion: 'v1', plural: 'pods', namespaced: true },
  node: { kind: 'Node', apiVersion: 'v1', plural: 'nodes', namespaced: false },
  lease: { kind: 'Lease', apiVersion: 'coordination.k8s.io/v1', plural: 'leases', namespaced: true },
  event: { kind: 'Event', apiVersion: 'v1', plural: 'events', namespaced: true },
} as const satisfies Record<string, ResourceType>;

/**
 * `/api/v1/namespaces/ns/services/name/status` and friends. `namespace` '' on a namespaced type means
 * every namespace (collections only).
 */
export function resourcePath(
  type: ResourceType,
  namespace: string,
  name?: string,
  subresource?: 'status',
): string {
  const base = type.apiVersion.includes('/') ? `/apis/${type.apiVersion}` : `/api/${type.apiVersion}`;
  const ns = type.namespaced && namespace !== '' ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const object = name === undefined ? '' : `/${encodeURIComponent(name)}`;
  return `${base}${ns}/${type.plural}${object}${subresource ? `/${subresource}` : ''}`;
}

/** A raw object from the API: untrusted JSON. */
export type KubeObject = Record<string, unknown> & {
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
};

export function objectKey(object: KubeObject): string {
  const meta = object.metadata ?? {};
  return `${meta.namespace ?? ''}/${meta.name ?? ''}`;
}

export function resourceVersionOf(object: KubeObject): string {
  const rv = object.metadata?.resourceVersion;
  return typeof rv === 'string' ? rv : '';
}
