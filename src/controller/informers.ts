// The reflectors the controller runs, one per resource and scope, and the cluster view they give:
// Ingresses, IngressClasses, Services, EndpointSlices, Secrets (every type but Helm releases, by field
// selector), ConfigMaps (every one but Helm 2 releases, by label selector, as ingress-nginx's store:
// add-headers, proxy-set-headers, custom-headers and auth-proxy-set-headers name them), the controller
// and tcp-/udp-services ConfigMaps by name (they may lie outside the watched namespace), and
// Namespaces when --watch-namespace-selector is set.
import type { BackoffPolicy, Scheduler } from './backoff.ts';
import type { ControllerOptions } from './flags.ts';
import type { KubeClient } from './kube-client.ts';
import { createReflector, type Reflector, type ReflectorStatus } from './reflector.ts';
import { type KubeObject, RESOURCES, type ResourceType, resourcePath } from './resources.ts';
import type { ClusterObjects } from './snapshot.ts';

export interface Informers {
  start(): void;
  stop(): void;
  /** Every reflector has stored its first complete list. */
  synced(): boolean;
  /** Every reflector's last list or watch worked. */
  connected(): boolean;
  objects(): ClusterObjects;
  statuses(): Record<string, ReflectorStatus>;
}

interface Spec {
  name: string;
  type: ResourceType;
  namespace: string;
  query: Record<string, string>;
}

/**
 * False when the API server forbids listing IngressClasses (403): ingress-nginx checks once at
 * start-up and then runs without them (cmd/nginx/main.go). Any other outcome: true, the reflector
 * retries as for every resource. An API server that does not answer within `waitMs` does not hold
 * up the start (health endpoint, reflectors): true as well.
 */
export async function ingressClassesListable(client: KubeClient, waitMs = 5_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<true>((resolve) => {
    timer = setTimeout(() => resolve(true), waitMs);
  });
  const answered = client
    .request('GET', `${resourcePath(RESOURCES.ingressClass, '')}?limit=1`)
    .then((result) => result.ok || result.error.status !== 403);
  try {
    return await Promise.race([answered, gaveUp]);
  } finally {
    clearTimeout(timer);
  }
}

function specs(o: ControllerOptions, ingressClasses: boolean): Spec[] {
  const ns = o.watchNamespace;
  const list: Spec[] = [
    { name: 'ingresses', type: RESOURCES.ingress, namespace: ns, query: {} },
    ...(ingressClasses
      ? [{ name: 'ingressclasses', type: RESOURCES.ingressClass, namespace: '', query: {} }]
      : []),
    { name: 'services', type: RESOURCES.service, namespace: ns, query: {} },
    { name: 'endpointslices', type: RESOURCES.endpointSlice, namespace: ns, query: {} },
    // Every type but Helm releases, as ingress-nginx's store: auth-secret and auth-tls-secret name
    // Opaque Secrets. The snapshot passes on only the ones served Ingresses reference.
    {
      name: 'secrets',
      type: RESOURCES.secret,
      namespace: ns,
      query: { fieldSelector: 'type!=helm.sh/release.v1' },
    },
    // The snapshot passes on only those the configuration names (snapshot.ts referencedConfigMaps).
    {
      name: 'configmaps',
      type: RESOURCES.configMap,
      namespace: ns,
      query: { labelSelector: 'OWNER!=TILLER' },
    },
  ];
  for (const [name, ref] of [
    ['configmap', o.configMap],
    ['tcp-services', o.tcpServicesConfigMap],
    ['udp-services', o.udpServicesConfigMap],
  ] as const) {
    if (ref === null) continue;
    const [namespace, object] = ref.split('/') as [string, string];
    list.push({
      name,
      type: RESOURCES.configMap,
      namespace,
      query: { fieldSelector: `metadata.name=${object}` },
    });
  }
  if (o.defaultSslCertificate !== null && ns !== '' && !o.defaultSslCertificate.startsWith(`${ns}/`)) {
    const [namespace, object] = o.defaultSslCertificate.split('/') as [string, string];
    list.push({
      name: 'default-ssl-certificate',
      type: RESOURCES.secret,
      namespace,
      query: { fieldSelector: `metadata.name=${object}` },
    });
  }
  if (o.watchNamespaceSelector !== '') {
    list.push({
      name: 'namespaces',
      type: RESOURCES.namespace,
      namespace: '',
      query: { labelSelector: o.watchNamespaceSelector },
    });
  }
  return list;
}

export function createInformers(deps: {
  client: KubeClient;
  options: ControllerOptions;
  /** Watch IngressClasses (default true; false when listing them is forbidden). */
  ingressClasses?: boolean;
  scheduler: Scheduler;
  backoff: BackoffPolicy;
  onChange: () => void;
  /** A reflector lost the API server (informers.connected() is false now). */
  onDisconnect?: () => void;
  log: (line: string) => void;
}): Informers {
  const reflectors = new Map<string, Reflector>();
  for (const spec of specs(deps.options, deps.ingressClasses ?? true)) {
    reflectors.set(
      spec.name,
      createReflector({
        name: spec.name,
        transport: deps.client.listWatcher(resourcePath(spec.type, spec.namespace), spec.query),
        scheduler: deps.scheduler,
        backoff: deps.backoff,
        onChange: deps.onChange,
        ...(deps.onDisconnect ? { onDisconnect: deps.onDisconnect } : {}),
        log: deps.log,
      }),
    );
  }
  const items = (name: string): KubeObject[] => reflectors.get(name)?.items() ?? [];
  const all = [...reflectors.values()];
  return {
    start: () => {
      for (const r of all) r.start();
    },
    stop: () => {
      for (const r of all) r.stop();
    },
    synced: () => all.every((r) => r.status().synced),
    connected: () => all.every((r) => r.status().connected),
    objects: () => ({
      ingresses: items('ingresses'),
      ingressClasses: items('ingressclasses'),
      services: items('services'),
      endpointSlices: items('endpointslices'),
      secrets: [...items('secrets'), ...items('default-ssl-certificate')],
      configMaps: uniqueObjects([
        ...items('configmap'),
        ...items('tcp-services'),
        ...items('udp-services'),
        ...items('configmaps'),
      ]),
      namespaces: reflectors.has('namespaces')
        ? new Set(items('namespaces').map((n) => n.metadata?.name ?? ''))
        : null,
    }),
    statuses: () => Object.fromEntries([...reflectors].map(([name, r]) => [name, r.status()])),
  };
}

/** Each object once (namespace/name), the first seen: a named ConfigMap is in the watched list too. */
function uniqueObjects(objects: readonly KubeObject[]): KubeObject[] {
  const seen = new Set<string>();
  return objects.filter((o) => {
    const key = `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
