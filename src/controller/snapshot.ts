// The cluster's objects as the controller sees them → the same Topology the manifest files produce
// (buildTopology), so the gateway, the doctor and the admission webhook all see one thing. Which
// Ingresses are this controller's follows ingress-nginx's class rules; Secrets are kept to the ones
// served Ingresses (spec.tls, and auth-secret, auth-tls-secret, proxy-ssl-secret in their own
// namespace) or --default-ssl-certificate reference. Pure.
import type { DefaultCertificateModel, Topology } from '../config/model.ts';
import type { RequestMetricsSettings } from '../config/request-metrics.ts';
import { DEFAULT_ANNOTATIONS_PREFIX, foldAnnotationsPrefix } from '../k8s/annotation-prefix.ts';
import { type ClassOptions, isOurIngress, LEGACY_CLASS_ANNOTATION } from '../k8s/ingress-class.ts';
import type { ManifestObject } from '../k8s/objects.ts';
import { buildTopology } from '../k8s/translate.ts';
import { parseGoBool } from '../k8s/values.ts';
import { DEFAULT_CONFIGMAP } from '../k8s/translate-gateway.ts';
import type { KubeObject, ResourceType } from './resources.ts';
import { RESOURCES } from './resources.ts';

// The class rule lives in src/k8s/ingress-class.ts, shared with the doctor; the controller's callers keep these names.
export { type ClassOptions, isOurIngress };

/** What the origin of an object from the API says instead of a file name. */
export const CLUSTER_ORIGIN = 'cluster';

export interface ClusterObjects {
  ingresses: readonly KubeObject[];
  ingressClasses: readonly KubeObject[];
  services: readonly KubeObject[];
  endpointSlices: readonly KubeObject[];
  secrets: readonly KubeObject[];
  configMaps: readonly KubeObject[];
  /** Namespaces allowed by --watch-namespace-selector; null when there is no selector. */
  namespaces: ReadonlySet<string> | null;
}

export interface SnapshotOptions extends ClassOptions {
  configMap: string | null;
  defaultSslCertificate: string | null;
  defaultBackendService: string | null;
  /** --annotations-prefix (src/k8s/annotation-prefix.ts). */
  annotationsPrefix: string;
  /** --enable-ssl-passthrough. */
  enableSslPassthrough?: boolean;
  /** --disable-catch-all: Ingresses with a spec.defaultBackend are not ours (see isCatchAll). */
  disableCatchAll?: boolean;
  /** --disable-svc-external-name: ExternalName Services have no endpoint (503). */
  disableServiceExternalName?: boolean;
  /** --enable-topology-aware-routing: the zone of the controller's node (null: unknown or off). */
  zone?: string | null;
  /** --metrics-per-host and the other request metrics flags (absent: ingress-nginx's defaults). */
  requestMetrics?: RequestMetricsSettings;
  /** --watch-namespace ("" or absent: all): the admission webhook reviews only this namespace's Ingresses. */
  watchNamespace?: string;
}

/**
 * ingress-nginx's hasCatchAllIngressRule: any spec.defaultBackend, with rules or without. With
 * --disable-catch-all its store never takes such an Ingress (no server, no status, no event), so a
 * tenant cannot claim the traffic of unknown hosts or paths.
 */
export function isCatchAll(ing: KubeObject): boolean {
  return rec(ing.spec).defaultBackend != null;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const rec = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

export function toManifestObject(type: ResourceType, raw: KubeObject): ManifestObject {
  const meta = raw.metadata ?? {};
  return {
    apiVersion: type.apiVersion,
    kind: type.kind,
    origin: {
      file: CLUSTER_ORIGIN,
      document: 0,
      kind: type.kind,
      namespace: type.namespaced ? (meta.namespace ?? 'default') : '',
      name: meta.name ?? '',
    },
    raw: { ...raw, apiVersion: type.apiVersion, kind: type.kind },
  };
}

/** Our Ingresses as the API has them (what status and events are written against). */
export function ourIngresses(
  objects: ClusterObjects,
  o: ClassOptions & { disableCatchAll?: boolean | undefined },
): KubeObject[] {
  return objects.ingresses.filter(
    (ing) =>
      inScope(objects, ing) &&
      isOurIngress(ing, objects.ingressClasses, o) &&
      !(o.disableCatchAll === true && isCatchAll(ing)),
  );
}

/**
 * Our Ingresses, with the class made explicit so the translation serves exactly these. The legacy
 * annotation stays beside a spec.ingressClassName that already named our class, so the translation
 * still warns of the two disagreeing (CONFLICTING_INGRESS_CLASS), as `keepip gateway` does.
 */
export function servedIngresses(
  objects: ClusterObjects,
  o: ClassOptions & { disableCatchAll?: boolean | undefined },
): KubeObject[] {
  return ourIngresses(objects, o).map((ing) => {
    const annotations = { ...(ing.metadata?.annotations ?? {}) };
    if (rec(ing.spec).ingressClassName !== o.ingressClass) delete annotations[LEGACY_CLASS_ANNOTATION];
    return {
      ...ing,
      metadata: { ...ing.metadata, annotations },
      spec: { ...rec(ing.spec), ingressClassName: o.ingressClass },
    };
  });
}

function inScope(objects: ClusterObjects, object: KubeObject): boolean {
  return objects.namespaces === null || objects.namespaces.has(object.metadata?.namespace ?? '');
}

/** The annotations that name a Secret as `name` or `namespace/name` (ingress-nginx's store reads the same). */
const SECRET_ANNOTATIONS = ['auth-secret', 'auth-tls-secret', 'proxy-ssl-secret'];

/** The annotations that name a ConfigMap the same way (ingress-nginx's store watches ConfigMaps for them). */
const CONFIGMAP_ANNOTATIONS = ['custom-headers', 'auth-proxy-set-headers'];

/** The controller ConfigMap keys that name a ConfigMap (`name`: in the controller's namespace). */
const CONFIGMAP_SETTINGS = ['add-headers', 'proxy-set-headers'];

/**
 * `namespace/name` of the Secret or ConfigMap an annotation names, only when it is in the Ingress's
 * own namespace or `crossNamespace` (allow-cross-namespace-resources) says another one may be read:
 * otherwise another namespace's object never reaches the translation (which refuses the reference).
 */
function annotationObject(
  namespace: string,
  value: string | undefined,
  crossNamespace: boolean,
): string | null {
  // The API server only stores strings; anything else names no Secret.
  const parts = (typeof value === 'string' ? value : '').trim().split('/');
  if (parts.length > 2 || parts.some((p) => p === '')) return null;
  if (parts.length === 2 && parts[0] !== namespace) return crossNamespace ? `${parts[0]}/${parts[1]}` : null;
  return `${namespace}/${parts[parts.length - 1]}`;
}

/**
 * The ConfigMaps the translation reads: the controller's, those its add-headers and proxy-set-headers
 * name, and those served Ingresses' custom-headers and auth-proxy-set-headers name. The others (every
 * ConfigMap of the watched namespaces is listed, as ingress-nginx's store does) never reach it, so a
 * change to them serves nothing new.
 */
function referencedConfigMaps(
  ingresses: readonly KubeObject[],
  o: SnapshotOptions,
  settings: Readonly<Record<string, unknown>>,
  crossNamespace: boolean,
): Set<string> {
  const controller = o.configMap ?? DEFAULT_CONFIGMAP;
  const keys = new Set([controller]);
  const controllerNamespace = controller.split('/')[0] ?? '';
  for (const name of CONFIGMAP_SETTINGS) {
    const key = annotationObject(controllerNamespace, str(settings[name]) ?? undefined, true);
    if (key !== null) keys.add(key);
  }
  for (const ing of ingresses) {
    const namespace = ing.metadata?.namespace ?? 'default';
    const annotations = foldAnnotationsPrefix(ing.metadata?.annotations ?? {}, o.annotationsPrefix);
    for (const name of CONFIGMAP_ANNOTATIONS) {
      const value = annotations[`${DEFAULT_ANNOTATIONS_PREFIX}/${name}`];
      const key = annotationObject(namespace, value, crossNamespace);
      if (key !== null) keys.add(key);
    }
  }
  return keys;
}

function referencedSecrets(
  ingresses: readonly KubeObject[],
  o: SnapshotOptions,
  crossNamespace: boolean,
): Set<string> {
  const keys = new Set<string>();
  if (o.defaultSslCertificate) keys.add(o.defaultSslCertificate);
  for (const ing of ingresses) {
    const namespace = ing.metadata?.namespace ?? 'default';
    const tls = rec(ing.spec).tls;
    for (const t of Array.isArray(tls) ? tls : []) {
      const name = str(rec(t).secretName);
      if (name) keys.add(`${namespace}/${name}`);
    }
    const annotations = foldAnnotationsPrefix(ing.metadata?.annotations ?? {}, o.annotationsPrefix);
    for (const name of SECRET_ANNOTATIONS) {
      const key = annotationObject(
        namespace,
        annotations[`${DEFAULT_ANNOTATIONS_PREFIX}/${name}`],
        crossNamespace,
      );
      if (key !== null) keys.add(key);
    }
  }
  return keys;
}

/** The ConfigMap `ref` (`namespace/name`) names, if the cluster has it. */
export function configMapNamed(objects: ClusterObjects, ref: string | null): KubeObject | undefined {
  return objects.configMaps.find((c) => `${c.metadata?.namespace}/${c.metadata?.name}` === ref);
}

/** Every object the translation reads, in a stable order (namespace/name within each kind). */
export function snapshotObjects(objects: ClusterObjects, o: SnapshotOptions): ManifestObject[] {
  const ingresses = servedIngresses(objects, o);
  const controllerConfigMap = configMapNamed(objects, o.configMap ?? DEFAULT_CONFIGMAP);
  const settings = rec(controllerConfigMap?.data);
  const crossNamespace = parseGoBool(str(settings['allow-cross-namespace-resources']) ?? '') === true;
  const secrets = referencedSecrets(ingresses, o, crossNamespace);
  const configMaps = referencedConfigMaps(ingresses, o, settings, crossNamespace);
  // The controller ConfigMap's ssl-dh-param names a Secret too.
  const dhParam = str(settings['ssl-dh-param'])?.trim();
  if (dhParam) secrets.add(dhParam);
  const byKey = (a: KubeObject, b: KubeObject) => {
    const ka = `${a.metadata?.namespace ?? ''}/${a.metadata?.name ?? ''}`;
    const kb = `${b.metadata?.namespace ?? ''}/${b.metadata?.name ?? ''}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
  const of = (type: ResourceType, list: readonly KubeObject[]) =>
    [...list].sort(byKey).map((raw) => toManifestObject(type, raw));
  return [
    ...of(
      RESOURCES.configMap,
      objects.configMaps.filter((c) =>
        configMaps.has(`${c.metadata?.namespace ?? ''}/${c.metadata?.name ?? ''}`),
      ),
    ),
    ...of(
      RESOURCES.service,
      objects.services.filter((s) => inScope(objects, s)),
    ),
    ...of(
      RESOURCES.endpointSlice,
      objects.endpointSlices.filter((s) => inScope(objects, s)),
    ),
    ...of(
      RESOURCES.secret,
      objects.secrets.filter((s) => secrets.has(`${s.metadata?.namespace ?? ''}/${s.metadata?.name ?? ''}`)),
    ),
    ...of(RESOURCES.ingress, ingresses),
  ];
}

/**
 * --default-ssl-certificate's Secret, when it holds a PEM certificate and key; else undefined (the
 * generated certificate is served, as ingress-nginx falls back to its fake one).
 */
export function defaultCertificateOf(
  ref: string | null,
  secrets: readonly KubeObject[],
): DefaultCertificateModel | undefined {
  if (!ref) return undefined;
  const [namespace, name] = ref.split('/') as [string, string];
  const secret = secrets.find((s) => s.metadata?.namespace === namespace && s.metadata?.name === name);
  const data = rec(secret?.data);
  const decode = (v: unknown) => (typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : '');
  const certPem = decode(data['tls.crt']);
  const keyPem = decode(data['tls.key']);
  if (!certPem.includes('CERTIFICATE') || !keyPem.includes('PRIVATE KEY')) return undefined;
  return { secret: { namespace, name }, certPem, keyPem };
}

export function buildClusterTopology(objects: ClusterObjects, o: SnapshotOptions): Topology {
  return topologyOfManifests(snapshotObjects(objects, o), objects.secrets, o);
}

/**
 * The model of the objects snapshotObjects picked (or those with a fix applied: the dashboard's Chain
 * page), with the controller's own options; `secrets` holds --default-ssl-certificate's.
 */
export function topologyOfManifests(
  manifests: readonly ManifestObject[],
  secrets: readonly KubeObject[],
  o: SnapshotOptions,
): Topology {
  const topology = buildTopology(manifests, {
    ingressClass: o.ingressClass,
    annotationsPrefix: o.annotationsPrefix,
    ...(o.configMap ? { configMap: o.configMap } : {}),
    enableSslPassthrough: o.enableSslPassthrough === true,
    disableServiceExternalName: o.disableServiceExternalName === true,
    zone: o.zone ?? null,
    ...(o.defaultBackendService ? { defaultBackendService: o.defaultBackendService } : {}),
  });
  const defaultCertificate = defaultCertificateOf(o.defaultSslCertificate, secrets);
  const gateway = {
    ...topology.gateway,
    ...(defaultCertificate === undefined ? {} : { defaultCertificate }),
    ...(o.requestMetrics === undefined ? {} : { requestMetrics: o.requestMetrics }),
  };
  return { ...topology, gateway };
}
