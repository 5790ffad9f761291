// Minimal typed views of the Kubernetes objects keepip reads. Manifests are untrusted: every field goes
// through a FieldReader, so a wrong type becomes an issue naming the field and the view holds a safe
// default instead.
import type { ConfigIssue, Origin, PathType, ServedPathType, ServicePortModel } from '../config/model.ts';
import { formatFieldPath, type PathSegment } from './field-path.ts';
import { createReader, type FieldReader, isRecord } from './reader.ts';

/** One Kubernetes object as read from a manifest, with its origin. `raw` is untrusted input. */
export interface ManifestObject {
  apiVersion: string;
  kind: string;
  origin: Origin;
  raw: Readonly<Record<string, unknown>>;
}

export interface ObjectMeta {
  namespace: string;
  name: string;
  annotations: Readonly<Record<string, string>>;
  labels: Readonly<Record<string, string>>;
  /** ISO timestamp as written, or null. */
  creationTimestamp: string | null;
}

interface View {
  origin: Origin;
  meta: ObjectMeta;
}

export interface IngressServiceBackend {
  name: string;
  port: number | string;
}

export interface IngressBackendView {
  /** Null for a broken service reference (a `resource` backend is no backend at all: readBackend). */
  service: IngressServiceBackend | null;
  field: string;
}

export interface IngressPathView {
  path: string;
  /** As served: Exact, or Prefix for Prefix, ImplementationSpecific and none (ServedPathType). */
  pathType: ServedPathType;
  /**
   * As written, null when the path has none: strict-validate-path-type spares ImplementationSpecific
   * paths only (ingress-nginx's ValidatePathType checks a missing one too).
   */
  declaredPathType: PathType | null;
  backend: IngressBackendView | null;
  field: string;
}

export interface IngressRuleView {
  host: string;
  paths: IngressPathView[];
  field: string;
}

export interface IngressTlsView {
  hosts: string[];
  secretName: string | null;
  field: string;
}

export interface IngressView extends View {
  ingressClassName: string | null;
  defaultBackend: IngressBackendView | null;
  rules: IngressRuleView[];
  tls: IngressTlsView[];
}

export interface IngressClassView extends View {
  controller: string | null;
  isDefault: boolean;
}

export interface LoadBalancerIngressView {
  ip: string | null;
  hostname: string | null;
  ipMode: string | null;
}

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';

export interface ServiceView extends View {
  type: ServiceType;
  clusterIP: string | null;
  /** spec.externalName as written (ExternalName Services); null when absent. */
  externalName: string | null;
  ports: ServicePortModel[];
  selector: Record<string, string>;
  externalTrafficPolicy: 'Cluster' | 'Local';
  healthCheckNodePort: number | null;
  loadBalancerClass: string | null;
  loadBalancerSourceRanges: string[];
  statusIngress: LoadBalancerIngressView[];
  /** spec.trafficDistribution (PreferClose: topology-aware routing); null when absent. */
  trafficDistribution: string | null;
}

export interface EndpointAddressView {
  address: string;
  ready: boolean;
  nodeName: string | null;
  /** An EndpointSlice endpoint's hints.forZones names; null without hints (and for Endpoints). */
  forZones?: string[] | null;
  field: string;
}

export interface EndpointPortView {
  name: string;
  port: number;
}

export interface EndpointsView extends View {
  subsets: { addresses: EndpointAddressView[]; ports: EndpointPortView[] }[];
}

export interface EndpointSliceView extends View {
  serviceName: string | null;
  addressType: string;
  endpoints: EndpointAddressView[];
  ports: EndpointPortView[];
}

export interface ConfigMapView extends View {
  data: Record<string, string>;
}

export interface SecretView extends View {
  type: string;
  /** Decoded values: `data` (base64) and `stringData` merged, stringData winning as the API server does. */
  data: Record<string, string>;
}

export interface NodeView extends View {
  internalIp: string | null;
}

function readMeta(r: FieldReader): ObjectMeta {
  return {
    namespace: r.origin.namespace,
    name: r.origin.name,
    annotations: r.stringMap(['metadata', 'annotations']),
    labels: r.stringMap(['metadata', 'labels']),
    creationTimestamp: readTimestamp(r),
  };
}

function readTimestamp(r: FieldReader): string | null {
  const raw = r.get(['metadata', 'creationTimestamp']);
  if (raw === undefined || raw === null) return null;
  // YAML may already have turned an unquoted timestamp into a Date.
  const text = raw instanceof Date ? raw.toISOString() : typeof raw === 'string' ? raw : null;
  if (text !== null && !Number.isNaN(Date.parse(text))) return new Date(Date.parse(text)).toISOString();
  r.report(
    'warning',
    'MANIFEST_INVALID_FIELD',
    ['metadata', 'creationTimestamp'],
    'not an RFC 3339 timestamp; treated as absent (the object sorts as the newest)',
  );
  return null;
}

function begin(object: ManifestObject, issues: ConfigIssue[]): { r: FieldReader; view: View } {
  const r = createReader(object.raw, object.origin, issues);
  return { r, view: { origin: object.origin, meta: readMeta(r) } };
}

const PATH_TYPES: readonly PathType[] = ['Exact', 'Prefix', 'ImplementationSpecific'];

function readBackend(r: FieldReader, path: PathSegment[]): IngressBackendView | null {
  const raw = r.get(path);
  if (raw === undefined || raw === null) return null;
  const field = formatFieldPath(path);
  if (!isRecord(raw)) {
    r.report('error', 'MANIFEST_INVALID_FIELD', path, 'expected a backend (service name and port)');
    return { service: null, field };
  }
  // ingress-nginx skips a backend without a Service ("using default backend"): no location for the
  // path, no default backend from spec.defaultBackend. Null says the same here.
  if (raw.resource !== undefined) {
    r.report(
      'warning',
      'UNSUPPORTED_BACKEND',
      [...path, 'resource'],
      'resource backends are not supported; ignored as ingress-nginx does, so its requests go to the default backend (404 without one)',
    );
    return null;
  }
  const name = r.string([...path, 'service', 'name']);
  const number = r.get([...path, 'service', 'port', 'number']);
  const portName = r.string([...path, 'service', 'port', 'name']);
  let port: number | string | null = null;
  if (number !== undefined && number !== null) {
    port = r.integer([...path, 'service', 'port', 'number'], 1, 65535);
  } else if (portName !== null && portName !== '') {
    port = portName;
  }
  if (name === null || name === '') {
    r.report(
      'error',
      'MANIFEST_MISSING_FIELD',
      [...path, 'service', 'name'],
      'a backend needs a service name',
    );
    return { service: null, field };
  }
  if (port === null) {
    r.report(
      'error',
      'MANIFEST_MISSING_FIELD',
      [...path, 'service', 'port'],
      'a backend needs a service port (number or name)',
    );
    return { service: null, field };
  }
  return { service: { name, port }, field };
}

export function readIngress(object: ManifestObject, issues: ConfigIssue[]): IngressView {
  const { r, view } = begin(object, issues);
  const rules: IngressRuleView[] = [];
  r.list(['spec', 'rules']).forEach((_, i) => {
    const base: PathSegment[] = ['spec', 'rules', i];
    const host = (r.string([...base, 'host']) ?? '').toLowerCase();
    const paths: IngressPathView[] = [];
    r.list([...base, 'http', 'paths']).forEach((__, j) => {
      const p: PathSegment[] = [...base, 'http', 'paths', j];
      const rawType = r.string([...p, 'pathType']);
      let declaredPathType: PathType | null = null;
      if (rawType !== null) {
        if ((PATH_TYPES as readonly string[]).includes(rawType)) declaredPathType = rawType as PathType;
        else {
          declaredPathType = 'ImplementationSpecific';
          r.report(
            'error',
            'MANIFEST_INVALID_FIELD',
            [...p, 'pathType'],
            `unknown pathType "${rawType}" (Exact, Prefix or ImplementationSpecific); treated as ImplementationSpecific`,
          );
        }
      }
      paths.push({
        path: r.string([...p, 'path']) ?? '',
        pathType: declaredPathType === 'Exact' ? 'Exact' : 'Prefix',
        declaredPathType,
        backend: readBackend(r, [...p, 'backend']),
        field: formatFieldPath(p),
      });
    });
    rules.push({ host, paths, field: formatFieldPath(base) });
  });
  const tls: IngressTlsView[] = [];
  r.list(['spec', 'tls']).forEach((_, i) => {
    const base: PathSegment[] = ['spec', 'tls', i];
    const hosts: string[] = [];
    r.list([...base, 'hosts']).forEach((__, j) => {
      const h = r.string([...base, 'hosts', j]);
      if (h) hosts.push(h.toLowerCase());
    });
    tls.push({ hosts, secretName: r.string([...base, 'secretName']), field: formatFieldPath(base) });
  });
  return {
    ...view,
    ingressClassName: r.string(['spec', 'ingressClassName']),
    defaultBackend: readBackend(r, ['spec', 'defaultBackend']),
    rules,
    tls,
  };
}

export function readIngressClass(object: ManifestObject, issues: ConfigIssue[]): IngressClassView {
  const { r, view } = begin(object, issues);
  return {
    ...view,
    controller: r.string(['spec', 'controller']),
    isDefault: view.meta.annotations['ingressclass.kubernetes.io/is-default-class'] === 'true',
  };
}

const SERVICE_TYPES: readonly ServiceType[] = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];

export function readService(object: ManifestObject, issues: ConfigIssue[]): ServiceView {
  const { r, view } = begin(object, issues);
  const rawType = r.string(['spec', 'type']);
  let type: ServiceType = 'ClusterIP';
  if (rawType !== null) {
    if ((SERVICE_TYPES as readonly string[]).includes(rawType)) type = rawType as ServiceType;
    else
      r.report(
        'error',
        'MANIFEST_INVALID_FIELD',
        ['spec', 'type'],
        `unknown Service type "${rawType}"; treated as ClusterIP`,
      );
  }
  const ports: ServicePortModel[] = [];
  r.list(['spec', 'ports']).forEach((_, i) => {
    const base: PathSegment[] = ['spec', 'ports', i];
    const port = r.integer([...base, 'port'], 1, 65535);
    if (port === null) {
      if (r.get([...base, 'port']) === undefined)
        r.report('error', 'MANIFEST_MISSING_FIELD', [...base, 'port'], 'a Service port needs a port number');
      return;
    }
    const protocolRaw = r.string([...base, 'protocol']) ?? 'TCP';
    let protocol: ServicePortModel['protocol'] = 'TCP';
    if (protocolRaw === 'TCP' || protocolRaw === 'UDP' || protocolRaw === 'SCTP') protocol = protocolRaw;
    else
      r.report(
        'error',
        'MANIFEST_INVALID_FIELD',
        [...base, 'protocol'],
        `unknown protocol "${protocolRaw}"; treated as TCP`,
      );
    ports.push({
      name: r.string([...base, 'name']) ?? '',
      protocol,
      port,
      // Kubernetes defaults targetPort to the port.
      targetPort: r.intOrString([...base, 'targetPort']) ?? port,
      nodePort: r.integer([...base, 'nodePort'], 1, 65535),
    });
  });
  const etp = r.string(['spec', 'externalTrafficPolicy']);
  let externalTrafficPolicy: 'Cluster' | 'Local' = 'Cluster';
  if (etp === 'Local') externalTrafficPolicy = 'Local';
  else if (etp !== null && etp !== 'Cluster') {
    r.report(
      'error',
      'MANIFEST_INVALID_FIELD',
      ['spec', 'externalTrafficPolicy'],
      `unknown policy "${etp}" (Cluster or Local); treated as Cluster`,
    );
  }
  const sourceRanges: string[] = [];
  r.list(['spec', 'loadBalancerSourceRanges']).forEach((_, i) => {
    const s = r.string(['spec', 'loadBalancerSourceRanges', i]);
    if (s !== null) sourceRanges.push(s);
  });
  const statusIngress: LoadBalancerIngressView[] = [];
  r.list(['status', 'loadBalancer', 'ingress']).forEach((_, i) => {
    const base: PathSegment[] = ['status', 'loadBalancer', 'ingress', i];
    statusIngress.push({
      ip: r.string([...base, 'ip']),
      hostname: r.string([...base, 'hostname']),
      ipMode: r.string([...base, 'ipMode']),
    });
  });
  return {
    ...view,
    type,
    clusterIP: r.string(['spec', 'clusterIP']),
    externalName: r.string(['spec', 'externalName']),
    ports,
    selector: r.stringMap(['spec', 'selector']),
    externalTrafficPolicy,
    healthCheckNodePort: r.integer(['spec', 'healthCheckNodePort'], 1, 65535),
    loadBalancerClass: r.string(['spec', 'loadBalancerClass']),
    loadBalancerSourceRanges: sourceRanges,
    statusIngress,
    trafficDistribution: r.string(['spec', 'trafficDistribution']),
  };
}

function readEndpointPorts(r: FieldReader, path: PathSegment[]): EndpointPortView[] {
  const ports: EndpointPortView[] = [];
  r.list(path).forEach((_, i) => {
    const port = r.integer([...path, i, 'port'], 1, 65535);
    if (port === null) return;
    ports.push({ name: r.string([...path, i, 'name']) ?? '', port });
  });
  return ports;
}

export function readEndpoints(object: ManifestObject, issues: ConfigIssue[]): EndpointsView {
  const { r, view } = begin(object, issues);
  const subsets: EndpointsView['subsets'] = [];
  r.list(['subsets']).forEach((_, i) => {
    const addresses: EndpointAddressView[] = [];
    for (const [key, ready] of [
      ['addresses', true],
      ['notReadyAddresses', false],
    ] as const) {
      r.list(['subsets', i, key]).forEach((__, j) => {
        const path: PathSegment[] = ['subsets', i, key, j];
        const ip = r.string([...path, 'ip']);
        if (ip === null) {
          r.report('error', 'MANIFEST_MISSING_FIELD', [...path, 'ip'], 'an endpoint address needs an ip');
          return;
        }
        addresses.push({
          address: ip,
          ready,
          nodeName: r.string([...path, 'nodeName']),
          field: formatFieldPath([...path, 'ip']),
        });
      });
    }
    subsets.push({ addresses, ports: readEndpointPorts(r, ['subsets', i, 'ports']) });
  });
  return { ...view, subsets };
}

export function readEndpointSlice(object: ManifestObject, issues: ConfigIssue[]): EndpointSliceView {
  const { r, view } = begin(object, issues);
  const endpoints: EndpointAddressView[] = [];
  r.list(['endpoints']).forEach((_, i) => {
    // A nil ready condition means "unknown", which consumers treat as ready.
    const ready = r.boolean(['endpoints', i, 'conditions', 'ready']) ?? true;
    const nodeName = r.string(['endpoints', i, 'nodeName']);
    const hints =
      r.get(['endpoints', i, 'hints']) === undefined ? null : r.list(['endpoints', i, 'hints', 'forZones']);
    const forZones =
      hints === null
        ? null
        : hints
            .map((_z, k) => r.string(['endpoints', i, 'hints', 'forZones', k, 'name']))
            .filter((name): name is string => name !== null);
    r.list(['endpoints', i, 'addresses']).forEach((__, j) => {
      const address = r.string(['endpoints', i, 'addresses', j]);
      if (address !== null)
        endpoints.push({
          address,
          ready,
          nodeName,
          forZones,
          field: formatFieldPath(['endpoints', i, 'addresses', j]),
        });
    });
  });
  return {
    ...view,
    serviceName: view.meta.labels['kubernetes.io/service-name'] ?? null,
    addressType: r.string(['addressType']) ?? 'IPv4',
    endpoints,
    ports: readEndpointPorts(r, ['ports']),
  };
}

export function readConfigMap(object: ManifestObject, issues: ConfigIssue[]): ConfigMapView {
  const { r, view } = begin(object, issues);
  return { ...view, data: r.stringMap(['data']) };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function readSecret(object: ManifestObject, issues: ConfigIssue[]): SecretView {
  const { r, view } = begin(object, issues);
  const data: Record<string, string> = {};
  for (const [key, value] of Object.entries(r.stringMap(['data']))) {
    const compact = value.replace(/\s+/g, '');
    if (compact.length % 4 !== 0 || !BASE64.test(compact)) {
      r.report('error', 'MANIFEST_INVALID_FIELD', ['data', key], 'not valid base64');
      continue;
    }
    data[key] = Buffer.from(compact, 'base64').toString('utf8');
  }
  Object.assign(data, r.stringMap(['stringData']));
  return { ...view, type: r.string(['type']) ?? 'Opaque', data };
}

export function readNode(object: ManifestObject, issues: ConfigIssue[]): NodeView {
  const { r, view } = begin(object, issues);
  let internalIp: string | null = null;
  r.list(['status', 'addresses']).forEach((_, i) => {
    if (internalIp !== null) return;
    if (r.string(['status', 'addresses', i, 'type']) === 'InternalIP')
      internalIp = r.string(['status', 'addresses', i, 'address']);
  });
  return { ...view, internalIp };
}
