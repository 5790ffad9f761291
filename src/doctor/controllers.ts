// The ingress controllers the manifests hold (Deployments, DaemonSets, StatefulSets whose container runs
// ingress-nginx or keepip), their class flags and --enable-ssl-passthrough, and which of them serves an
// Ingress. A cluster often runs two controllers (internal and external), each with its own IngressClass
// and --controller-class: the one that serves the Ingress's class decides. The class rule is the
// controller's own (src/k8s/ingress-class.ts); an Ingress in a file is read as the API would hold it
// once admitted: without a class or the legacy annotation, the default IngressClass is set on it.
import {
  type ClassOptions,
  classCandidate,
  defaultIngressClass,
  isOurIngress,
  LEGACY_CLASS_ANNOTATION,
} from '../k8s/ingress-class.ts';
import type { ManifestObject } from '../k8s/objects.ts';
import { DEFAULT_INGRESS_CLASS, INGRESS_NGINX_CONTROLLER } from '../k8s/translate-gateway.ts';
import { parseGoBool } from '../k8s/values.ts';
import { expandEnv } from '../controller/flags.ts';

export interface ControllerWorkload {
  kind: string;
  namespace: string;
  name: string;
  /** --ingress-class, --controller-class, --watch-ingress-without-class, --ingress-class-by-name. */
  classes: ClassOptions;
  /** --enable-ssl-passthrough as its args set it. */
  sslPassthrough: boolean;
  /** The pod template's labels: a Service whose selector they satisfy sends to this controller. */
  podLabels: Readonly<Record<string, string>>;
  /** The controller container's ports (a Service's named targetPort resolves through them). */
  containerPorts: readonly ContainerPort[];
  /**
   * --configmap, --tcp-services-configmap and --udp-services-configmap as the pod sees them: $(VAR)
   * expanded from the container's env as the kubelet does (metadata.namespace from the downward API);
   * null when not given.
   */
  configMaps: { configMap: string | null; tcpServices: string | null; udpServices: string | null };
}

export interface ContainerPort {
  name: string | null;
  containerPort: number;
  protocol: string;
}

/**
 * - served: these controllers serve the Ingress (`why`: by which class, for the source line).
 * - unmatched: no controller can be said to serve it; `reason` says why.
 */
export type ControllerMatch =
  | { kind: 'served'; controllers: ControllerWorkload[]; why: string }
  | { kind: 'unmatched'; reason: string };

const CONTROLLER_KINDS = new Set(['Deployment', 'DaemonSet', 'StatefulSet']);
/** An argument that marks a container as an ingress-nginx (or keepip) controller. */
const CONTROLLER_ARG =
  /^(\/nginx-ingress-controller|--publish-service|--election-id|--controller-class|--ingress-class)\b/;
/** Go's flag syntax: -name or --name, with =value or (not for booleans) the next argument. */
const GO_FLAG = /^--?([A-Za-z0-9_-]+)(?:=([\s\S]*))?$/;

const rec = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

interface Container {
  args: string[];
  env: Record<string, string>;
  ports: ContainerPort[];
}

const podSpec = (raw: Readonly<Record<string, unknown>>): Record<string, unknown> =>
  rec(rec(rec(raw.spec).template).spec);

/** The container's env as the kubelet expands $(VAR) with it: literal values and the pod's namespace. */
function containerEnv(container: Record<string, unknown>, namespace: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of Array.isArray(container.env) ? container.env : []) {
    const { name, value, valueFrom } = rec(entry);
    if (typeof name !== 'string') continue;
    if (typeof value === 'string') env[name] = value;
    else if (rec(rec(valueFrom).fieldRef).fieldPath === 'metadata.namespace') env[name] = namespace;
  }
  return env;
}

function containerPorts(container: Record<string, unknown>): ContainerPort[] {
  const ports = Array.isArray(container.ports) ? container.ports : [];
  return ports.flatMap((p) => {
    const { name, containerPort, protocol } = rec(p);
    if (typeof containerPort !== 'number') return [];
    return [{ name: str(name), containerPort, protocol: str(protocol) ?? 'TCP' }];
  });
}

function containers(raw: Readonly<Record<string, unknown>>, namespace: string): Container[] {
  const list = podSpec(raw).containers;
  return (Array.isArray(list) ? list : []).map((item) => {
    const c = rec(item);
    const words = [...(Array.isArray(c.command) ? c.command : []), ...(Array.isArray(c.args) ? c.args : [])];
    return {
      args: words.filter((a): a is string => typeof a === 'string'),
      env: containerEnv(c, namespace),
      ports: containerPorts(c),
    };
  });
}

function stringRecord(value: unknown): Record<string, string> {
  return Object.fromEntries(
    Object.entries(rec(value)).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
}

/** The flag's last value in the args (the last one wins, as Go's flag package); a bare boolean is "true". */
function flagValue(args: readonly string[], name: string, bool: boolean): string | null {
  let value: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const m = GO_FLAG.exec(args[i]!);
    if (m === null || m[1] !== name) continue;
    if (m[2] !== undefined) value = m[2];
    else if (bool) value = 'true';
    else if (i + 1 < args.length) value = args[++i]!;
  }
  return value;
}

function boolFlag(args: readonly string[], name: string): boolean {
  const value = flagValue(args, name, true);
  return value !== null && parseGoBool(value) === true;
}

/** Every controller workload in the manifests, in file order, with ingress-nginx's defaults for unset flags. */
export function controllerWorkloads(objects: readonly ManifestObject[]): ControllerWorkload[] {
  const found: ControllerWorkload[] = [];
  for (const object of objects) {
    if (!CONTROLLER_KINDS.has(object.kind)) continue;
    const { kind, namespace, name } = object.origin;
    const container = containers(object.raw, namespace).find((c) =>
      c.args.some((a) => CONTROLLER_ARG.test(a)),
    );
    if (container === undefined) continue;
    const { args, env } = container;
    const ref = (flag: string): string | null => {
      const value = flagValue(args, flag, false);
      return value === null || value === '' ? null : expandEnv(value, env);
    };
    found.push({
      kind,
      namespace,
      name,
      classes: {
        ingressClass: flagValue(args, 'ingress-class', false) ?? DEFAULT_INGRESS_CLASS,
        controllerClass: flagValue(args, 'controller-class', false) ?? INGRESS_NGINX_CONTROLLER,
        watchIngressWithoutClass: boolFlag(args, 'watch-ingress-without-class'),
        ingressClassByName: boolFlag(args, 'ingress-class-by-name'),
      },
      sslPassthrough: boolFlag(args, 'enable-ssl-passthrough'),
      podLabels: stringRecord(rec(rec(rec(rec(object.raw).spec).template).metadata).labels),
      containerPorts: container.ports,
      configMaps: {
        configMap: ref('configmap'),
        tcpServices: ref('tcp-services-configmap'),
        udpServices: ref('udp-services-configmap'),
      },
    });
  }
  return found;
}

/** "Deployment ns/name". */
export function describeWorkload(w: { kind: string; namespace: string; name: string }): string {
  return `${w.kind} ${w.namespace}/${w.name}`;
}

const nameOf = (o: ManifestObject): string => o.origin.name;

/** The Ingress as admitted: the default IngressClass set when it names no class; a text when that is not known. */
function admitted(
  ingress: ManifestObject,
  classes: readonly ManifestObject[],
): ManifestObject['raw'] | string {
  const spec = rec(ingress.raw.spec);
  const legacy = rec(rec(ingress.raw.metadata).annotations)[LEGACY_CLASS_ANNOTATION];
  if (str(spec.ingressClassName) !== null || typeof legacy === 'string') return ingress.raw;
  const chosen = defaultIngressClass(classes.map((c) => classCandidate(c.raw)));
  if (chosen === null) return ingress.raw;
  if (chosen.certain) return { ...ingress.raw, spec: { ...spec, ingressClassName: chosen.name } };
  return `it names no class and ${chosen.marked.length} IngressClasses are marked default (${chosen.marked.join(', ')}), not all with a creationTimestamp; the API server gives it the newest, so the class it gets is not known`;
}

/** Which class the Ingress carries, as a source line says it. */
function classText(raw: ManifestObject['raw'], classes: readonly ManifestObject[]): string {
  const className = str(rec(raw.spec).ingressClassName);
  if (className !== null) {
    const cls = classes.find((c) => nameOf(c) === className);
    const controller = cls === undefined ? null : str(rec(cls.raw.spec).controller);
    return controller === null
      ? `IngressClass "${className}"`
      : `IngressClass "${className}" with spec.controller ${controller}`;
  }
  const legacy = rec(rec(raw.metadata).annotations)[LEGACY_CLASS_ANNOTATION];
  if (typeof legacy === 'string' && legacy !== '') return `${LEGACY_CLASS_ANNOTATION}: "${legacy}"`;
  return 'no class';
}

function serving(controllers: readonly ControllerWorkload[]): string {
  return controllers
    .map(
      (c) =>
        `${describeWorkload(c)}: --controller-class=${c.classes.controllerClass} --ingress-class=${c.classes.ingressClass}`,
    )
    .join('; ');
}

/** Why no controller serves the Ingress, in words a source line can carry. */
function unmatchedReason(
  raw: ManifestObject['raw'],
  classes: readonly ManifestObject[],
  controllers: readonly ControllerWorkload[],
): string {
  const className = str(rec(raw.spec).ingressClassName);
  if (className !== null && !classes.some((c) => nameOf(c) === className))
    return `IngressClass "${className}" is not in the manifests, so which of the ${controllers.length} controllers serves it cannot be told (${serving(controllers)})`;
  return `no controller in the manifests serves its ${classText(raw, classes)} (${serving(controllers)})`;
}

/**
 * The controllers that serve the Ingress, by the controller's own class rule. With one controller in
 * the manifests and the Ingress's IngressClass not in them, that controller is taken, as before classes
 * were matched: a single controller serves what the manifests route.
 */
export function controllersFor(
  ingress: ManifestObject,
  classObjects: readonly ManifestObject[],
  controllers: readonly ControllerWorkload[],
): ControllerMatch {
  const raw = admitted(ingress, classObjects);
  if (typeof raw === 'string') return { kind: 'unmatched', reason: raw };
  const classes = classObjects.map((c) => c.raw);
  const matched = controllers.filter((c) => isOurIngress(raw, classes, c.classes));
  if (matched.length > 0) return { kind: 'served', controllers: matched, why: classText(raw, classObjects) };
  const className = str(rec(raw.spec).ingressClassName);
  const only = controllers.length === 1 ? controllers[0] : undefined;
  if (only !== undefined && className !== null && !classObjects.some((c) => nameOf(c) === className))
    return { kind: 'served', controllers: [only], why: `IngressClass "${className}"` };
  return { kind: 'unmatched', reason: unmatchedReason(raw, classObjects, controllers) };
}
