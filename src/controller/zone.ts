// --enable-topology-aware-routing: the zone of the node this controller runs on, read once at start as
// ingress-nginx reads it (GetIngressPod): our Pod (POD_NAMESPACE / POD_NAME), its spec.nodeName, and
// that Node's topology.kubernetes.io/zone label. Without one, hints are not used (every endpoint).
import type { KubeClient } from './kube-client.ts';
import { RESOURCES, resourcePath } from './resources.ts';

export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** The zone, or null with the reason it is unknown (a line for the log). */
export async function controllerZone(
  client: KubeClient,
  podNamespace: string,
  podName: string | null,
): Promise<{ zone: string; node: string } | { zone: null; why: string }> {
  if (podName === null) return { zone: null, why: 'POD_NAME is not set' };
  const pod = await client.request('GET', resourcePath(RESOURCES.pod, podNamespace, podName));
  if (!pod.ok)
    return { zone: null, why: `pod ${podNamespace}/${podName} could not be read (${pod.error.message})` };
  const node = (pod.value.spec as { nodeName?: unknown } | undefined)?.nodeName;
  if (typeof node !== 'string' || node === '')
    return { zone: null, why: `pod ${podNamespace}/${podName} has no spec.nodeName` };
  const read = await client.request('GET', resourcePath(RESOURCES.node, '', node));
  if (!read.ok) return { zone: null, why: `node ${node} could not be read (${read.error.message})` };
  const zone = read.value.metadata?.labels?.[ZONE_LABEL];
  if (typeof zone !== 'string' || zone === '')
    return { zone: null, why: `node ${node} has no ${ZONE_LABEL} label` };
  return { zone, node };
}
