// Services with their endpoints (Endpoints or EndpointSlices), and Nodes.
import type { ConfigIssue, EndpointModel, NodeModel, ServiceModel } from '../config/model.ts';
import { canonicalIp, isLoopbackAddress } from '../net/ip.ts';
import type { EndpointSliceView, EndpointsView, NodeView, ServiceView } from './objects.ts';
import { describeOrigin } from './reader.ts';
import { isDnsSubdomain } from './values.ts';

/** The one node `keepip up` runs when the manifests name none. */
export const DEFAULT_NODE: NodeModel = { name: 'node-1', address: '127.0.1.1' };

export function translateNodes(nodes: readonly NodeView[], issues: ConfigIssue[]): NodeModel[] {
  const out: NodeModel[] = [];
  for (const node of [...nodes].sort((a, b) => compare(a.meta.name, b.meta.name))) {
    const address = node.internalIp === null ? null : canonicalIp(node.internalIp);
    if (address === null) {
      issues.push({
        severity: 'warning',
        code: 'NODE_WITHOUT_ADDRESS',
        message: `${describeOrigin(node.origin)} status.addresses: no valid InternalIP${node.internalIp === null ? '' : ` (${JSON.stringify(node.internalIp)})`}; node ignored`,
        origin: node.origin,
        field: 'status.addresses',
      });
      continue;
    }
    out.push({ name: node.meta.name, address });
  }
  return out.length > 0 || nodes.length > 0 ? out : [{ ...DEFAULT_NODE }];
}

export interface ServiceOptions {
  /** --disable-svc-external-name: ExternalName Services get no member (503). */
  disableServiceExternalName?: boolean;
  /**
   * --enable-topology-aware-routing: the zone of the controller's node. A Service that asks for it
   * (topology-mode Auto, trafficDistribution PreferClose) keeps the endpoints hinted for this zone.
   */
  zone?: string | null;
}

/**
 * The zone whose hints count for `svc`, as ingress-nginx's getIngressPodZone: the controller's, when the
 * Service has `service.kubernetes.io/topology-mode: Auto` or `trafficDistribution: PreferClose`.
 */
function zoneForHints(svc: ServiceView, zone: string | null | undefined): string | null {
  if (zone === null || zone === undefined || zone === '') return null;
  const mode = svc.meta.annotations['service.kubernetes.io/topology-mode'];
  if (mode !== undefined && mode.toLowerCase() === 'auto') return zone;
  return svc.trafficDistribution === 'PreferClose' ? zone : null;
}

/**
 * Whether a slice's endpoints are picked by their zone hints, as ingress-nginx decides per slice: every
 * endpoint has hints, and with PreferClose at least one of them is for `zone`.
 */
function usesHints(slice: EndpointSliceView, zone: string | null, preferClose: boolean): boolean {
  if (zone === null) return false;
  if (slice.endpoints.some((e) => e.forZones === null || e.forZones === undefined || e.forZones.length === 0))
    return false;
  return !preferClose || slice.endpoints.some((e) => e.forZones?.includes(zone) === true);
}

export function translateServices(
  services: readonly ServiceView[],
  endpoints: readonly EndpointsView[],
  slices: readonly EndpointSliceView[],
  issues: ConfigIssue[],
  options: ServiceOptions = {},
): ServiceModel[] {
  const out: ServiceModel[] = [];
  for (const svc of [...services].sort((a, b) => compare(key(a), key(b)))) {
    let clusterIP: string | null = null;
    if (svc.clusterIP !== null && svc.clusterIP !== '' && svc.clusterIP !== 'None') {
      clusterIP = canonicalIp(svc.clusterIP);
      if (clusterIP === null) {
        issues.push({
          severity: 'error',
          code: 'MANIFEST_INVALID_FIELD',
          message: `${describeOrigin(svc.origin)} spec.clusterIP: ${JSON.stringify(svc.clusterIP)} is not an IP address`,
          origin: svc.origin,
          field: 'spec.clusterIP',
        });
      }
    }
    const mine = slices.filter(
      (s) => s.meta.namespace === svc.meta.namespace && s.serviceName === svc.meta.name,
    );
    const legacy = endpoints.filter(
      (e) => e.meta.namespace === svc.meta.namespace && e.meta.name === svc.meta.name,
    );
    // EndpointSlices are what kube-proxy reads today; Endpoints only when a Service has no slice.
    const hinted = {
      zone: zoneForHints(svc, options.zone),
      preferClose: svc.trafficDistribution === 'PreferClose',
    };
    const byPort = mine.length > 0 ? fromSlices(mine, issues, hinted) : fromEndpoints(legacy, issues);
    out.push({
      ref: { namespace: svc.meta.namespace, name: svc.meta.name },
      origin: svc.origin,
      type: svc.type,
      clusterIP,
      ports: svc.ports,
      selector: svc.selector,
      endpoints: byPort,
      ...(svc.type === 'ExternalName' ? { externalName: externalNameOf(svc, options, issues) } : {}),
    });
  }
  return out;
}

/**
 * The host an ExternalName Service proxies to, as ingress-nginx takes it: an IP literal, or a DNS
 * subdomain (its trailing dot trimmed). localhost and loopback addresses are refused, so that an
 * Ingress author cannot reach the gateway's own ports; so are the unspecified addresses (0.0.0.0, ::),
 * which connect to the node itself on Linux (ingress-nginx lets those through); and everything with the
 * disable flag.
 */
function externalNameOf(svc: ServiceView, options: ServiceOptions, issues: ConfigIssue[]): string | null {
  const refuse = (code: 'EXTERNAL_NAME_DISABLED' | 'EXTERNAL_NAME_REFUSED', why: string): null => {
    issues.push({
      severity: 'warning',
      code,
      message: `${describeOrigin(svc.origin)} spec.externalName: ${why}; the Service has no endpoint (503)`,
      origin: svc.origin,
      field: 'spec.externalName',
    });
    return null;
  };
  if (options.disableServiceExternalName === true)
    return refuse(
      'EXTERNAL_NAME_DISABLED',
      'ExternalName Services are disabled (--disable-svc-external-name)',
    );
  const raw = svc.externalName ?? '';
  const ip = canonicalIp(raw);
  const name = raw.endsWith('.') ? raw.slice(0, -1) : raw;
  const lower = name.toLowerCase();
  if (
    lower === 'localhost' ||
    lower.endsWith('.localhost') ||
    (ip !== null && (isLoopbackAddress(ip) || ip === '0.0.0.0' || ip === '::'))
  )
    return refuse('EXTERNAL_NAME_REFUSED', `${JSON.stringify(raw)} is a loopback or unspecified address`);
  if (ip !== null) return ip;
  // getaddrinfo reads `127.1`, `2130706433`, `0x7f000001` or `0` as IPv4 addresses (inet_aton), where
  // the cluster DNS ingress-nginx asks finds no such name: never a name, and never a way past the
  // loopback refusal above.
  if (NUMERIC_ADDRESS.test(lower))
    return refuse(
      'EXTERNAL_NAME_REFUSED',
      `${JSON.stringify(raw)} is an IPv4 address in a form other than dotted decimal`,
    );
  if (!isDnsSubdomain(name))
    return refuse(
      'EXTERNAL_NAME_REFUSED',
      `${JSON.stringify(raw)} is not a DNS-1123 subdomain or an IP address`,
    );
  return name;
}

/** One to four labels of digits or 0x-hex: what inet_aton takes for an IPv4 address. */
const NUMERIC_ADDRESS = /^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}$/;

function fromEndpoints(
  list: readonly EndpointsView[],
  issues: ConfigIssue[],
): Record<string, EndpointModel[]> {
  const out: Record<string, EndpointModel[]> = {};
  for (const ep of list) {
    for (const subset of ep.subsets) {
      for (const port of subset.ports) {
        for (const a of subset.addresses) {
          const address = endpointAddress(a.address, ep, a.field, issues);
          if (address === null) continue;
          add(out, port.name, { address, port: port.port, ready: a.ready, nodeName: a.nodeName });
        }
      }
    }
  }
  return out;
}

function fromSlices(
  list: readonly EndpointSliceView[],
  issues: ConfigIssue[],
  hinted: { zone: string | null; preferClose: boolean },
): Record<string, EndpointModel[]> {
  const out: Record<string, EndpointModel[]> = {};
  for (const slice of [...list].sort((a, b) => compare(a.meta.name, b.meta.name))) {
    if (slice.addressType === 'FQDN') {
      issues.push({
        severity: 'warning',
        code: 'UNSUPPORTED_ADDRESS_TYPE',
        message: `${describeOrigin(slice.origin)} addressType: FQDN endpoints are not supported; slice ignored`,
        origin: slice.origin,
        field: 'addressType',
      });
      continue;
    }
    const byZone = usesHints(slice, hinted.zone, hinted.preferClose);
    for (const port of slice.ports) {
      for (const e of slice.endpoints) {
        if (byZone && e.forZones?.includes(hinted.zone as string) !== true) continue;
        const address = endpointAddress(e.address, slice, e.field, issues);
        if (address === null) continue;
        add(out, port.name, { address, port: port.port, ready: e.ready, nodeName: e.nodeName });
      }
    }
  }
  return out;
}

function endpointAddress(
  text: string,
  view: EndpointsView | EndpointSliceView,
  field: string,
  issues: ConfigIssue[],
): string | null {
  const address = canonicalIp(text);
  if (address === null) {
    issues.push({
      severity: 'error',
      code: 'MANIFEST_INVALID_FIELD',
      message: `${describeOrigin(view.origin)} ${field}: ${JSON.stringify(text)} is not an IP address; endpoint ignored`,
      origin: view.origin,
      field,
    });
  }
  return address;
}

function add(out: Record<string, EndpointModel[]>, port: string, endpoint: EndpointModel): void {
  const list = out[port] ?? [];
  if (!list.some((e) => e.address === endpoint.address && e.port === endpoint.port)) list.push(endpoint);
  out[port] = list;
}

function key(s: ServiceView): string {
  return `${s.meta.namespace}/${s.meta.name}`;
}

export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
