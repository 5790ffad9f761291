// ssl-passthrough as the doctor sees it: whether the controller runs with --enable-ssl-passthrough
// (the doctor's flag, else the controller's Deployment/DaemonSet args in the manifests, else unknown),
// which hosts ask for passthrough, and what each gets: TLS passed through to the "/" backend (G10), or
// terminated by keepip (G11). The L4 decision is the gateway's own access policy (src/net/access-policy.ts)
// on the same rules src/gateway/passthrough.ts compiles: block-cidrs, then the "/" location's lists.
import type { LocationModel, ObjectRef, Topology, VirtualHostModel } from '../config/model.ts';
import type { ManifestObject } from '../k8s/objects.ts';
import { parseGoBool } from '../k8s/values.ts';
import { type AccessDecision, compileAccessPolicy } from '../net/access-policy.ts';

/** What the doctor knows of --enable-ssl-passthrough: true, false, or null (not in the manifests). */
export interface PassthroughFlag {
  enabled: boolean | null;
  /** Where that comes from: "--enable-ssl-passthrough", "Deployment ns/name args", or why it is unknown. */
  source: string;
  /** The controller's workload, when the manifests hold it (the fix names it). */
  workload?: { kind: string; namespace: string; name: string };
}

export const FLAG_UNKNOWN: PassthroughFlag = {
  enabled: null,
  source: "the manifests hold no controller Deployment or DaemonSet, so the controller's flags are unknown",
};

/**
 * - active: TLS for the host passes through (G10).
 * - not-enabled: the controller runs without --enable-ssl-passthrough; keepip terminates TLS (G11).
 * - unknown: the flag is not known; keepip terminates TLS unless it is set.
 * - no-root-backend: the host has no "/" path with a backend; keepip terminates TLS.
 */
export type PassthroughState = 'active' | 'not-enabled' | 'unknown' | 'no-root-backend';

export interface PassthroughHost {
  host: string;
  state: PassthroughState;
  /** The "/" location whose backend gets the bytes and whose lists decide; null for no-root-backend. */
  location: LocationModel | null;
  /** The Ingresses that ask for it (the subject of a finding). */
  ingresses: readonly ObjectRef[];
}

const CONTROLLER_KINDS = new Set(['Deployment', 'DaemonSet', 'StatefulSet']);
/** An argument that marks a container as an ingress-nginx (or keepip) controller. */
const CONTROLLER_ARG =
  /^(\/nginx-ingress-controller|--publish-service|--election-id|--controller-class|--ingress-class)\b/;
const FLAG = /^--?enable-ssl-passthrough(?:=(.*))?$/;

function containerArgs(raw: Readonly<Record<string, unknown>>): string[][] {
  const spec = (raw.spec as { template?: { spec?: { containers?: unknown } } } | undefined)?.template?.spec;
  const containers = Array.isArray(spec?.containers) ? (spec.containers as unknown[]) : [];
  return containers.map((c) => {
    const { command, args } = (c ?? {}) as { command?: unknown; args?: unknown };
    const list = [...(Array.isArray(command) ? command : []), ...(Array.isArray(args) ? args : [])];
    return list.filter((a): a is string => typeof a === 'string');
  });
}

/** The flag as the controller's workload in the manifests sets it (Go's flag syntax: bare, or =bool). */
export function passthroughFlagOf(objects: readonly ManifestObject[]): PassthroughFlag {
  for (const object of objects) {
    if (!CONTROLLER_KINDS.has(object.kind)) continue;
    const controller = containerArgs(object.raw).find((args) => args.some((a) => CONTROLLER_ARG.test(a)));
    if (controller === undefined) continue;
    const { kind, namespace, name } = object.origin;
    const workload = { kind, namespace, name };
    let enabled = false;
    for (const arg of controller) {
      const m = FLAG.exec(arg);
      if (m !== null) enabled = m[1] === undefined ? true : parseGoBool(m[1]) === true;
    }
    return { enabled, source: `${kind} ${namespace}/${name} args`, workload };
  }
  return FLAG_UNKNOWN;
}

/** The location passthrough uses: the host's first "/" path with a backend, as the gateway picks it. */
function rootLocation(vhost: VirtualHostModel): LocationModel | null {
  return vhost.locations.find((l) => l.path === '/' && l.backend !== null) ?? null;
}

function sameOrigin(a: ManifestObject['origin'], b: ManifestObject['origin']): boolean {
  return a.file === b.file && a.document === b.document;
}

/**
 * Hosts that ask for passthrough: active ones carry `sslPassthrough` in the model; the translation
 * reports the others (SSL_PASSTHROUGH_IGNORED, on the asking Ingress), whose hosts are found here.
 */
export function passthroughHosts(topology: Topology, flag: PassthroughFlag): PassthroughHost[] {
  const ignored = topology.issues.filter((i) => i.code === 'SSL_PASSTHROUGH_IGNORED' && i.origin);
  const hosts: PassthroughHost[] = [];
  for (const vhost of topology.gateway.virtualHosts) {
    if (vhost.host === '') continue;
    const asking = vhost.locations.filter((l) =>
      ignored.some((i) => i.origin !== undefined && sameOrigin(i.origin, l.ingressOrigin)),
    );
    if (vhost.sslPassthrough !== true && asking.length === 0) continue;
    const location = rootLocation(vhost);
    const refs = new Map(asking.map((l) => [`${l.ingress.namespace}/${l.ingress.name}`, l.ingress]));
    if (location !== null && refs.size === 0) refs.set('root', location.ingress);
    let state: PassthroughState;
    if (location === null) state = 'no-root-backend';
    else if (vhost.sslPassthrough === true || flag.enabled === true) state = 'active';
    else state = flag.enabled === false ? 'not-enabled' : 'unknown';
    hosts.push({ host: vhost.host, state, location, ingresses: [...refs.values()] });
  }
  return hosts;
}

/** The passthrough host a TLS server name selects: exactly its name (no wildcard, no alias), as the gateway. */
export function passthroughHostFor(hosts: readonly PassthroughHost[], host: string): PassthroughHost | null {
  const name = host.replace(/:\d+$/, '').toLowerCase();
  return hosts.find((h) => h.host === name) ?? null;
}

/** The connection-time verdict on `client`: block-cidrs, then the "/" location's deny and allow lists. */
export function passthroughDecision(
  topology: Topology,
  location: LocationModel,
  client: string,
): AccessDecision {
  const rules = { block: topology.gateway.settings.blockCidrs, deny: location.deny, allow: location.allow };
  return compileAccessPolicy(rules).decide(client);
}

/** "ns/name" of each asking Ingress. */
export function describeIngresses(refs: readonly ObjectRef[]): string {
  return refs.map((r) => `${r.namespace}/${r.name}`).join(', ');
}
