// Ingress status as ingress-nginx computes it: status.loadBalancer.ingress from
// --publish-status-address, else the --publish-service's address, else the nodes of the ready
// controller pods; the same list on every served Ingress. Pure: the caller reads the API.
import { canonicalIp } from '../net/ip.ts';
import type { KubeObject } from './resources.ts';

export interface LbIngressEntry {
  ip?: string;
  hostname?: string;
}

const rec = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function entry(address: string): LbIngressEntry {
  const ip = canonicalIp(address);
  return ip !== null ? { ip } : { hostname: address };
}

/** A status entry's ip and hostname, each kept when set (an NLB's may carry both); null when neither. */
function statusEntry(r: Record<string, unknown>): LbIngressEntry | null {
  const ip = typeof r.ip === 'string' && r.ip !== '' ? r.ip : null;
  const hostname = typeof r.hostname === 'string' && r.hostname !== '' ? r.hostname : null;
  if (ip === null && hostname === null) return null;
  return { ...(ip !== null ? { ip } : {}), ...(hostname !== null ? { hostname } : {}) };
}

function sortEntries(entries: LbIngressEntry[]): LbIngressEntry[] {
  const seen = new Set<string>();
  const key = (e: LbIngressEntry) => e.ip ?? e.hostname ?? '';
  return entries
    .filter((e) => key(e) !== '' && !seen.has(key(e)) && seen.add(key(e)))
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** A ClusterIP Service without a cluster IP (`clusterIP: None`). */
export function isHeadless(service: KubeObject): boolean {
  const spec = rec(service.spec);
  return (spec.type === undefined || spec.type === 'ClusterIP') && spec.clusterIP === 'None';
}

/**
 * The publish-service's addresses by its type, as ingress-nginx's statusAddressFromService:
 * ExternalName its name; ClusterIP its cluster IP; NodePort its externalIPs, else its cluster IP;
 * LoadBalancer its status entries and externalIPs. A headless Service has no address.
 */
export function serviceAddresses(service: KubeObject): LbIngressEntry[] {
  const spec = rec(service.spec);
  if (spec.type === 'ExternalName' && typeof spec.externalName === 'string')
    return [{ hostname: spec.externalName }];
  const externalIPs = list(spec.externalIPs).filter((ip): ip is string => typeof ip === 'string');
  const clusterIp = typeof spec.clusterIP === 'string' ? canonicalIp(spec.clusterIP) : null;
  const ofCluster = clusterIp === null ? [] : [{ ip: clusterIp }];
  if (spec.type === undefined || spec.type === 'ClusterIP') return ofCluster;
  if (spec.type === 'NodePort')
    return externalIPs.length > 0 ? sortEntries(externalIPs.map(entry)) : ofCluster;
  const out: LbIngressEntry[] = [];
  for (const item of list(rec(rec(service.status).loadBalancer).ingress)) {
    const found = statusEntry(rec(item));
    if (found !== null)
      out.push({ ...found, ...(found.ip ? { ip: canonicalIp(found.ip) ?? found.ip } : {}) });
  }
  for (const ip of externalIPs) out.push(entry(ip));
  return sortEntries(out);
}

/** A node's address for the status: ExternalIP, else InternalIP (InternalIP only, with the flag). */
export function nodeAddress(node: KubeObject, internalOnly: boolean): string | null {
  const addresses = list(rec(node.status).addresses).map(rec);
  const find = (type: string) =>
    // An empty entry is no address: the next one is taken, as ingress-nginx's GetNodeIPs skips it.
    addresses.find((a) => a.type === type && typeof a.address === 'string' && a.address !== '')?.address as
      | string
      | undefined;
  return (internalOnly ? find('InternalIP') : (find('ExternalIP') ?? find('InternalIP'))) ?? null;
}

/** Running and Ready: the pods whose nodes the status names (ingress-nginx's runningAddresses). */
export function isPodReady(pod: KubeObject): boolean {
  const status = rec(pod.status);
  if (status.phase !== 'Running') return false;
  return list(status.conditions)
    .map(rec)
    .some((c) => c.type === 'Ready' && c.status === 'True');
}

/**
 * Not finished: a pod still starting counts as a replica on shutdown (ingress-nginx counts every pod
 * of the controller, so a rolling update's pending replica keeps the status); an evicted or completed
 * one does not (ingress-nginx would keep the status for as long as it is listed).
 */
export function isPodAlive(pod: KubeObject): boolean {
  const phase = rec(pod.status).phase;
  return phase !== 'Succeeded' && phase !== 'Failed';
}

export interface StatusSources {
  publishStatusAddress: readonly string[];
  /** The --publish-service object, when the flag is set (null: set but not found). */
  publishService: KubeObject | null | undefined;
  /** Addresses of the nodes running ready controller pods (the fallback). */
  nodeAddresses: readonly string[];
}

export function desiredStatus(sources: StatusSources): LbIngressEntry[] {
  if (sources.publishStatusAddress.length > 0) return sortEntries(sources.publishStatusAddress.map(entry));
  if (sources.publishService !== undefined)
    return sources.publishService ? serviceAddresses(sources.publishService) : [];
  return sortEntries(sources.nodeAddresses.map(entry));
}

export function currentStatus(ingress: KubeObject): LbIngressEntry[] {
  const out: LbIngressEntry[] = [];
  for (const item of list(rec(rec(ingress.status).loadBalancer).ingress)) {
    const found = statusEntry(rec(item));
    if (found !== null) out.push(found);
  }
  return sortEntries(out);
}

export function sameStatus(a: readonly LbIngressEntry[], b: readonly LbIngressEntry[]): boolean {
  return JSON.stringify(sortEntries([...a])) === JSON.stringify(sortEntries([...b]));
}

/** The Ingress with its status replaced, ready for PUT …/status (carries the resourceVersion read). */
export function withStatus(ingress: KubeObject, entries: readonly LbIngressEntry[]): KubeObject {
  return { ...ingress, status: { loadBalancer: { ingress: entries.map((e) => ({ ...e })) } } };
}
