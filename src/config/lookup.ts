// Finding objects of the model by their reference: one rule (same namespace, same name) for every
// runtime and the doctor.
import type { EndpointModel, ObjectRef, ServiceModel, ServicePortModel } from './model.ts';

export function sameRef(a: ObjectRef, b: ObjectRef): boolean {
  return a.namespace === b.namespace && a.name === b.name;
}

/** The Service a reference names, or undefined when the manifests do not have it. */
export function findService(services: readonly ServiceModel[], ref: ObjectRef): ServiceModel | undefined {
  return services.find((service) => sameRef(service.ref, ref));
}

/** The port of a Service (model or manifest view) an Ingress backend names: by number, or by name. */
export function findServicePort<Port extends { name: string; port: number }>(
  service: { readonly ports: readonly Port[] },
  port: number | string,
): Port | undefined {
  return service.ports.find((p) => (typeof port === 'number' ? p.port === port : p.name === port));
}

/**
 * The port an ExternalName Service's name is reached on (ingress-nginx's externalNamePorts): the
 * port's targetPort when it is a number, else the port.
 */
export function externalNamePort(port: ServicePortModel): number {
  return typeof port.targetPort === 'number' && port.targetPort > 0 ? port.targetPort : port.port;
}

/** The ready endpoints of one port of a Service (by the port's name, as EndpointSlices key them). */
export function readyEndpoints(service: ServiceModel, port: { name: string }): EndpointModel[] {
  return (service.endpoints[port.name] ?? []).filter((e) => e.ready);
}
