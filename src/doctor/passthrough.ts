// ssl-passthrough as the doctor sees it: whether the controller runs with --enable-ssl-passthrough
// (the doctor's flag, else the args of the Deployment/DaemonSet in the manifests that serves each
// asking Ingress's class (controllers.ts), else unknown with the reason),
// which hosts ask for passthrough, and what each gets: TLS passed through to the "/" backend (G10), or
// terminated by keepip (G11). The L4 decision is the gateway's own access policy (src/net/access-policy.ts)
// on the same rules src/gateway/passthrough.ts compiles: block-cidrs, then the "/" location's lists.
import type { LocationModel, ObjectRef, Topology, VirtualHostModel } from '../config/model.ts';
import type { ManifestObject } from '../k8s/objects.ts';
import { type AccessDecision, compileAccessPolicy } from '../net/access-policy.ts';
import {
  type ControllerMatch,
  type ControllerWorkload,
  controllersFor,
  controllerWorkloads,
  describeWorkload,
} from './controllers.ts';

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
  /** What decides the state: the flag of the controller that serves those Ingresses. */
  flag: PassthroughFlag;
}

/** The flag for each Ingress: the controller that serves its class decides (controllers.ts). */
export type PassthroughFlags = (ingress: ObjectRef) => PassthroughFlag;

function workloadFlag(w: ControllerWorkload, source: string): PassthroughFlag {
  const { kind, namespace, name } = w;
  return { enabled: w.sslPassthrough, source, workload: { kind, namespace, name } };
}

/**
 * The flag when one answer holds for every Ingress: the manifests' one controller (its args; Go's flag
 * syntax: bare, or =bool). With several controllers, each Ingress's class decides: passthroughFlagsOf.
 */
export function passthroughFlagOf(objects: readonly ManifestObject[]): PassthroughFlag {
  const controllers = controllerWorkloads(objects);
  const only = controllers[0];
  if (only === undefined) return FLAG_UNKNOWN;
  if (controllers.length === 1) return workloadFlag(only, `${describeWorkload(only)} args`);
  return {
    enabled: null,
    source: `the manifests hold ${controllers.length} controllers (${controllers.map(describeWorkload).join(', ')}), and the one that serves an Ingress's class decides`,
  };
}

/** What the controllers that serve an Ingress say; null when they disagree. */
function servedFlag(
  ref: ObjectRef,
  match: ControllerMatch & { kind: 'served' },
  total: number,
): PassthroughFlag {
  const [first, ...others] = match.controllers;
  if (first === undefined) return FLAG_UNKNOWN;
  const ingress = `Ingress ${ref.namespace}/${ref.name}`;
  if (others.some((c) => c.sslPassthrough !== first.sslPassthrough)) {
    const each = match.controllers.map(
      (c) => `${describeWorkload(c)} ${c.sslPassthrough ? 'with' : 'without'} it`,
    );
    return {
      enabled: null,
      source: `${ingress}'s ${match.why} is served by ${match.controllers.length} controllers that disagree (${each.join(', ')}), so whether the one a client reaches passes TLS through depends on the load balancer`,
    };
  }
  // One controller in the manifests: the source line stays what it always was.
  const names = match.controllers.map((c) => `${describeWorkload(c)} args`).join(', ');
  return workloadFlag(first, total === 1 ? names : `${names}: the controller of ${ingress}'s ${match.why}`);
}

/** The flag for each Ingress from the controller that serves its class; unknown, with the reason, when none can be told. */
export function passthroughFlagsOf(objects: readonly ManifestObject[]): PassthroughFlags {
  const controllers = controllerWorkloads(objects);
  const classes = objects.filter((o) => o.kind === 'IngressClass');
  const ingresses = new Map(
    objects.filter((o) => o.kind === 'Ingress').map((o) => [`${o.origin.namespace}/${o.origin.name}`, o]),
  );
  const known = new Map<string, PassthroughFlag>();
  return (ref) => {
    const key = `${ref.namespace}/${ref.name}`;
    const cached = known.get(key);
    if (cached !== undefined) return cached;
    const ingress = ingresses.get(key);
    let flag: PassthroughFlag;
    if (controllers.length === 0 || ingress === undefined) flag = passthroughFlagOf(objects);
    else {
      const match = controllersFor(ingress, classes, controllers);
      flag =
        match.kind === 'served'
          ? servedFlag(ref, match, controllers.length)
          : {
              enabled: null,
              source: `which controller serves Ingress ${key} is not known: ${match.reason}; so neither is its --enable-ssl-passthrough`,
            };
    }
    known.set(key, flag);
    return flag;
  };
}

/** The location passthrough uses: the host's first "/" path with a backend, as the gateway picks it. */
function rootLocation(vhost: VirtualHostModel): LocationModel | null {
  return vhost.locations.find((l) => l.path === '/' && l.backend !== null) ?? null;
}

function sameOrigin(a: ManifestObject['origin'], b: ManifestObject['origin']): boolean {
  return a.file === b.file && a.document === b.document;
}

/** The flag an Ingress of the model had its topology built with, when the doctor was given no flags. */
const MODEL_ON: PassthroughFlag = { enabled: true, source: 'the model (a passthrough host is active)' };

/** A host's state and the flag that decides it: its asking Ingresses' controllers (any that enables it wins, as in the model). */
function hostState(
  vhost: VirtualHostModel,
  location: LocationModel | null,
  asking: readonly ObjectRef[],
  flagFor: PassthroughFlags,
): { state: PassthroughState; flag: PassthroughFlag } {
  const flags = asking.map(flagFor);
  const on =
    vhost.sslPassthrough === true
      ? (vhost.locations.map((l) => flagFor(l.ingress)).find((f) => f.enabled === true) ?? MODEL_ON)
      : flags.find((f) => f.enabled === true);
  const unknown = flags.find((f) => f.enabled === null);
  const flag = on ?? unknown ?? flags[0] ?? FLAG_UNKNOWN;
  if (location === null) return { state: 'no-root-backend', flag };
  if (on !== undefined) return { state: 'active', flag };
  return { state: unknown !== undefined ? 'unknown' : 'not-enabled', flag };
}

/**
 * Hosts that ask for passthrough: active ones carry `sslPassthrough` in the model; the translation
 * reports the others (SSL_PASSTHROUGH_IGNORED, on the asking Ingress), whose hosts are found here.
 * `flags`: one answer for every Ingress (the doctor was told), or each Ingress's controller's.
 */
export function passthroughHosts(
  topology: Topology,
  flags: PassthroughFlag | PassthroughFlags,
): PassthroughHost[] {
  const flagFor: PassthroughFlags = typeof flags === 'function' ? flags : () => flags;
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
    const ingresses = [...refs.values()];
    hosts.push({ host: vhost.host, location, ingresses, ...hostState(vhost, location, ingresses, flagFor) });
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
