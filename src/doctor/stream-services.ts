// tcp-services and udp-services as the controller behind the load balancer serves them: which ConfigMap
// (the doctor's option, else that controller's --tcp-services-configmap / --udp-services-configmap), its
// entries as the controller itself plans them (planTcpServices), and the LB port that carries each.
// Pure: the rules and the PROXY plan read the result on the chain.
import type { LoadBalancerModel, ObjectRef, ServicePortModel, Topology } from '../config/model.ts';
import { planTcpServices, type StreamProtocol, type TcpServicePlan } from '../controller/tcp-services.ts';
import type { KubeObject } from '../controller/resources.ts';
import type { ManifestObject } from '../k8s/objects.ts';
import { parseObjectRef } from '../k8s/translate-gateway.ts';
import { type ControllerWorkload, controllerWorkloads, describeWorkload } from './controllers.ts';

export interface StreamEntry extends TcpServicePlan {
  /** The LB Service port that sends to this entry's port; null when the LB has none. */
  lbPort: ServicePortModel | null;
}

export interface StreamServiceSet {
  protocol: StreamProtocol;
  configMap: ObjectRef;
  /** Where the ConfigMap's name came from, for the finding's text. */
  source: string;
  entries: readonly StreamEntry[];
}

export interface StreamServices {
  tcp: StreamServiceSet | null;
  udp: StreamServiceSet | null;
}

/** The entries behind the chain's LB (chosen when the chain is built). */
export type StreamServicesOf = (lb: LoadBalancerModel | null) => StreamServices;

export const NO_STREAM_SERVICES: StreamServices = { tcp: null, udp: null };

export interface StreamServiceOptions {
  /** The doctor's --tcp-services-configmap / --udp-services-configmap (namespace/name). */
  tcp?: string;
  udp?: string;
}

function selects(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): boolean {
  const keys = Object.keys(selector);
  return keys.length > 0 && keys.every((k) => labels[k] === selector[k]);
}

/**
 * The controller the LB sends to: the workload in the LB Service's namespace whose pod labels its
 * selector picks; else the manifests' only controller; else null.
 */
export function controllerBehind(
  controllers: readonly ControllerWorkload[],
  lb: Pick<LoadBalancerModel, 'service' | 'selector'> | null,
): ControllerWorkload | null {
  const selected =
    lb === null
      ? undefined
      : controllers.find((c) => c.namespace === lb.service.namespace && selects(lb.selector, c.podLabels));
  return selected ?? (controllers.length === 1 ? controllers[0]! : null);
}

/** A named targetPort through the controller's container ports (the kubelet's rule); null when unknown. */
function targetNumber(port: ServicePortModel, controller: ControllerWorkload | null): number | null {
  if (typeof port.targetPort === 'number') return port.targetPort;
  const named = controller?.containerPorts.find(
    (c) => c.name === port.targetPort && c.protocol === port.protocol,
  );
  return named?.containerPort ?? null;
}

/** The LB port to the entry's port: its targetPort, or the same number when a name cannot be resolved. */
function lbPortFor(
  lb: LoadBalancerModel | null,
  controller: ControllerWorkload | null,
  protocol: StreamProtocol,
  port: number,
): ServicePortModel | null {
  const ports = (lb?.ports ?? []).filter((p) => p.protocol === protocol);
  return (
    ports.find((p) => targetNumber(p, controller) === port) ??
    ports.find((p) => targetNumber(p, controller) === null && p.port === port) ??
    null
  );
}

function serviceSet(
  objects: readonly ManifestObject[],
  topology: Topology,
  protocol: StreamProtocol,
  name: { ref: string; source: string } | null,
  at: { lb: LoadBalancerModel | null; controller: ControllerWorkload | null },
): StreamServiceSet | null {
  const ref = name === null ? null : parseObjectRef(name.ref);
  if (name === null || ref === null) return null;
  const object = objects.find(
    (o) => o.kind === 'ConfigMap' && o.origin.namespace === ref.namespace && o.origin.name === ref.name,
  );
  if (object === undefined) return null;
  const { plans } = planTcpServices(object.raw as KubeObject, topology, [], protocol);
  const entries = plans.map((plan) => ({
    ...plan,
    lbPort: lbPortFor(at.lb, at.controller, protocol, plan.port),
  }));
  return { protocol, configMap: ref, source: name.source, entries };
}

function nameOf(
  given: string | undefined,
  flag: string,
  controller: ControllerWorkload | null,
  fromArgs: string | null | undefined,
): { ref: string; source: string } | null {
  if (given !== undefined) return { ref: given, source: `the doctor's --${flag}` };
  if (controller === null || fromArgs == null) return null;
  return { ref: fromArgs, source: `--${flag} of ${describeWorkload(controller)}` };
}

/** tcp-services and udp-services of the controller behind whichever LB the chain picks. */
export function streamServicesOf(
  objects: readonly ManifestObject[],
  topology: Topology,
  options: StreamServiceOptions = {},
): StreamServicesOf {
  const controllers = controllerWorkloads(objects);
  return (lb) => {
    const controller = controllerBehind(controllers, lb);
    const at = { lb, controller };
    const maps = controller?.configMaps;
    return {
      tcp: serviceSet(
        objects,
        topology,
        'TCP',
        nameOf(options.tcp, 'tcp-services-configmap', controller, maps?.tcpServices),
        at,
      ),
      udp: serviceSet(
        objects,
        topology,
        'UDP',
        nameOf(options.udp, 'udp-services-configmap', controller, maps?.udpServices),
        at,
      ),
    };
  };
}

/** The entry's value with `:PROXY` (decode) on or off, its `::PROXY` (encode) kept. */
export function entryValue(entry: StreamEntry, decode: boolean): string {
  const base = `${entry.service.namespace}/${entry.service.name}:${entry.servicePort}`;
  if (decode) return `${base}:PROXY${entry.encode ? ':PROXY' : ''}`;
  return entry.encode ? `${base}::PROXY` : base;
}
