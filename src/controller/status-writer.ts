// Writes status.loadBalancer.ingress of the served Ingresses (the leader only calls it), reading the
// sources desiredStatus needs: the --publish-service, or the controller's own pods and their nodes.
// Writes go to the status subresource with the resourceVersion read; a 409 is retried next round.
// Leadership is checked before every write: a replica that lost the Lease mid-sync stops at once, so
// it never overwrites what the new leader writes.
import type { ControllerOptions } from './flags.ts';
import type { KubeClient } from './kube-client.ts';
import type { ApiError, ApiResult } from './reflector.ts';
import { type KubeObject, RESOURCES, resourcePath } from './resources.ts';
import {
  currentStatus,
  desiredStatus,
  isHeadless,
  isPodAlive,
  isPodReady,
  type LbIngressEntry,
  nodeAddress,
  sameStatus,
  withStatus,
} from './status.ts';

export interface StatusWriter {
  /**
   * Brings every given Ingress to the desired status, and empties that of `withdrawn` (ours, but not
   * served: over the annotation limits); resolves with the number written.
   */
  sync(ingresses: readonly KubeObject[], withdrawn?: readonly KubeObject[]): Promise<number>;
  /** Empties the status of the given Ingresses, unless it has several addresses or other controller pods still run. */
  clear(ingresses: readonly KubeObject[]): Promise<number>;
}

interface StatusDeps {
  client: KubeClient;
  options: ControllerOptions;
  log: (line: string) => void;
  /** Whether this replica still holds the Lease (checked before every write). */
  leading: () => boolean;
}

/** Per Ingress, the version we last wrote over: the watch may not have brought our write back yet. */
type WroteOver = Map<string, { rv: string; entries: string }>;

export function createStatusWriter(deps: StatusDeps): StatusWriter {
  const wroteOver: WroteOver = new Map();
  return {
    async sync(ingresses, withdrawn = []) {
      const entries = await desiredEntries(deps);
      if (typeof entries === 'string') {
        deps.log(`${entries}; status left as it is`);
        return 0;
      }
      const written = await writeStatuses(deps, wroteOver, ingresses, entries);
      return written + (await writeStatuses(deps, wroteOver, withdrawn, []));
    },
    async clear(ingresses) {
      // ingress-nginx's Shutdown: addresses it cannot read, or more than one, are left to the next
      // leader (several addresses are several nodes' pods, or an LB that outlives this replica).
      // The controller pods are read once: for the nodes' addresses and for the other replicas.
      const found = await controllerPods(deps);
      const entries = await desiredEntries(deps, found);
      if (typeof entries === 'string') {
        deps.log(`${entries}: status kept on shutdown`);
        return 0;
      }
      if (entries.length > 1) {
        deps.log(`the status has ${entries.length} addresses: kept on shutdown for the next leader`);
        return 0;
      }
      // Its own pod unknown (no POD_NAME, or 404): it counts as the only replica.
      const pods = found === UNKNOWN_POD ? [] : found;
      if (!Array.isArray(pods)) {
        deps.log(`cannot list the controller pods (${pods.code}: ${pods.message}): status kept on shutdown`);
        return 0;
      }
      const others = pods.filter((p) => p.metadata?.name !== deps.options.podName && isPodAlive(p));
      if (others.length > 0) {
        deps.log('other controller pods are running: status kept on shutdown');
        return 0;
      }
      return writeStatuses(deps, wroteOver, await reread(deps, ingresses), [], true);
    },
  };
}

/** Why the sources could not be read, with the API error's code (an outage, or RBAC's 403). */
function unreadable(error: ApiError): string {
  return `cannot read the status sources (${error.code}: ${error.message})`;
}

/**
 * The status the options ask for: --publish-status-address, the --publish-service's, or our nodes';
 * or why there is none to write (ingress-nginx's sync then fails and changes nothing).
 */
async function desiredEntries(deps: StatusDeps, pods?: ControllerPods): Promise<LbIngressEntry[] | string> {
  const { client, options } = deps;
  if (options.publishStatusAddress.length > 0) {
    return desiredStatus({
      publishStatusAddress: options.publishStatusAddress,
      publishService: undefined,
      nodeAddresses: [],
    });
  }
  if (options.publishService !== null) {
    const [ns, name] = options.publishService.split('/') as [string, string];
    const svc = await client.request('GET', resourcePath(RESOURCES.service, ns, name));
    // A missing Service (a typo, a re-install) must not blank every Ingress: external-dns would
    // delete their records.
    if (!svc.ok && svc.error.status === 404) return `--publish-service ${ns}/${name} not found`;
    if (!svc.ok) return unreadable(svc.error);
    // Nor a headless one: ingress-nginx writes its clusterIP "None", which the API server refuses, so
    // the status stays; an empty one would blank every Ingress.
    if (isHeadless(svc.value))
      return `--publish-service ${ns}/${name} is headless (clusterIP None): no address`;
    return desiredStatus({ publishStatusAddress: [], publishService: svc.value, nodeAddresses: [] });
  }
  const addresses = await controllerNodeAddresses(deps, pods ?? (await controllerPods(deps)));
  if (typeof addresses === 'string') return addresses;
  return desiredStatus({ publishStatusAddress: [], publishService: undefined, nodeAddresses: addresses });
}

/**
 * The addresses of the nodes our ready replicas run on; a reason when there is none to write (the pods
 * could not be read, or our own pod is unknown: ingress-nginx does not run without it, and an empty
 * status would make external-dns delete every record).
 */
async function controllerNodeAddresses(deps: StatusDeps, found: ControllerPods): Promise<string[] | string> {
  if (found === UNKNOWN_POD)
    return deps.options.podName === null
      ? 'no POD_NAME, so no node of the controller is known'
      : `the controller pod ${deps.options.podNamespace}/${deps.options.podName} is unknown to the API`;
  if (!Array.isArray(found)) return unreadable(found);
  const pods = found.filter(isPodReady);
  const addresses: string[] = [];
  for (const nodeName of new Set(pods.map((p) => (p.spec as { nodeName?: string } | undefined)?.nodeName))) {
    if (!nodeName) continue;
    const node = await deps.client.request('GET', resourcePath(RESOURCES.node, '', nodeName));
    const address = node.ok ? nodeAddress(node.value, deps.options.reportNodeInternalIp) : null;
    if (address) addresses.push(address);
  }
  return addresses;
}

/**
 * Labels that differ between revisions of the same controller (Deployment, DaemonSet, StatefulSet):
 * left out of the selector, as ingress-nginx does, so a pod being replaced counts the new ones.
 */
const REVISION_LABELS = new Set(['pod-template-hash', 'controller-revision-hash', 'pod-template-generation']);

/** No POD_NAME, or no such pod (404). */
const UNKNOWN_POD = 'unknown-pod';

type ControllerPods = KubeObject[] | typeof UNKNOWN_POD | ApiError;

/**
 * The pods with the labels of our own pod, in any state (ingress-nginx's way of finding its replicas);
 * the API's error when they could not be read.
 */
async function controllerPods({ client, options }: StatusDeps): Promise<ControllerPods> {
  if (options.podName === null) return UNKNOWN_POD;
  const self = await client.request(
    'GET',
    resourcePath(RESOURCES.pod, options.podNamespace, options.podName),
  );
  if (!self.ok) return self.error.status === 404 ? UNKNOWN_POD : self.error;
  const labels = self.value.metadata?.labels ?? {};
  const selector = Object.entries(labels)
    .filter(([k]) => !REVISION_LABELS.has(k))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  if (selector === '') return [self.value];
  const pods = await client.request(
    'GET',
    `${resourcePath(RESOURCES.pod, options.podNamespace)}?${new URLSearchParams({ labelSelector: selector })}`,
  );
  if (!pods.ok) return pods.error;
  const items = Array.isArray(pods.value.items) ? (pods.value.items as KubeObject[]) : [];
  return items;
}

/** `fresh`: the caller read these objects just now (shutdown), so the cache's view is not consulted. */
async function writeStatuses(
  deps: StatusDeps,
  wroteOver: WroteOver,
  ingresses: readonly KubeObject[],
  entries: LbIngressEntry[],
  fresh = false,
): Promise<number> {
  let written = 0;
  for (const ing of ingresses) {
    if (sameStatus(currentStatus(ing), entries)) continue;
    const key = `${ing.metadata?.namespace ?? 'default'}/${ing.metadata?.name ?? ''}`;
    const last = wroteOver.get(key);
    if (
      !fresh &&
      last &&
      last.rv === ing.metadata?.resourceVersion &&
      last.entries === JSON.stringify(entries)
    )
      continue;
    if (!deps.leading()) {
      deps.log('no longer the leader: status writes stopped');
      break;
    }
    const result = await putStatus(deps, ing, entries, fresh);
    if (result.ok) {
      written++;
      wroteOver.set(key, { rv: ing.metadata?.resourceVersion ?? '', entries: JSON.stringify(entries) });
      const shown = entries.map((e) => e.ip ?? e.hostname).join(',') || '(empty)';
      deps.log(`status of Ingress ${key}: ${shown}`);
    } else {
      deps.log(`status of Ingress ${key} not written (${result.error.message}); retrying on the next sync`);
    }
  }
  return written;
}

/** PUT …/status over `ing`; on 409 (our copy was stale) once more over a fresh read. */
async function putStatus(
  deps: StatusDeps,
  ing: KubeObject,
  entries: LbIngressEntry[],
  fresh: boolean,
): Promise<ApiResult<KubeObject>> {
  const ns = ing.metadata?.namespace ?? 'default';
  const name = ing.metadata?.name ?? '';
  const path = resourcePath(RESOURCES.ingress, ns, name, 'status');
  const body = withStatus({ ...ing, apiVersion: 'networking.k8s.io/v1', kind: 'Ingress' }, entries);
  const { client } = deps;
  const result = await client.request('PUT', path, body);
  if (result.ok || fresh || result.error.status !== 409 || !deps.leading()) return result;
  const latest = await client.request('GET', resourcePath(RESOURCES.ingress, ns, name));
  if (!latest.ok) return result;
  if (sameStatus(currentStatus(latest.value), entries)) return latest;
  if (!deps.leading()) return result;
  return putStatus(deps, latest.value, entries, true);
}

/** The Ingresses as the API has them now (the watch may not have brought our own writes back yet). */
async function reread({ client }: StatusDeps, ingresses: readonly KubeObject[]): Promise<KubeObject[]> {
  const out: KubeObject[] = [];
  for (const ing of ingresses) {
    const got = await client.request(
      'GET',
      resourcePath(RESOURCES.ingress, ing.metadata?.namespace ?? 'default', ing.metadata?.name ?? ''),
    );
    if (got.ok) out.push(got.value);
  }
  return out;
}
