// What the doctor reads from loaded manifests besides the Ingress model: --enable-ssl-passthrough per
// Ingress, the controller's own ConfigMap, and its tcp-/udp-services, each from the args of the
// controller behind the load balancer unless the doctor was told. Pure: the CLI loads the files.
import type { Topology } from '../config/model.ts';
import type { ManifestObject } from '../k8s/objects.ts';
import { buildTopology } from '../k8s/translate.ts';
import { selectLoadBalancer } from './chain.ts';
import { controllerWorkloads } from './controllers.ts';
import { type PassthroughFlags, passthroughFlagsOf } from './passthrough.ts';
import { controllerBehind, type StreamServicesOf, streamServicesOf } from './stream-services.ts';

export interface DoctorInputOptions {
  ingressClass?: string;
  /** --configmap; default: the controller's own (its --configmap), else ingress-nginx's default. */
  configMap?: string;
  loadBalancer?: string;
  tcpServices?: string;
  udpServices?: string;
  enableSslPassthrough?: boolean;
}

export interface DoctorInputs {
  topology: Topology;
  passthrough: PassthroughFlags;
  streamServices: StreamServicesOf;
  /** The LB the controller was found behind (so the chain diagnoses the same one); null: none. */
  loadBalancer: string | null;
}

/**
 * The topology with the --configmap of the controller behind the LB when none is given (a chart release
 * names it after itself, and a second controller has its own), built with --enable-ssl-passthrough as
 * the doctor's flag says, else as the args of the controller that serves each Ingress's class say.
 */
export function doctorInputs(
  objects: readonly ManifestObject[],
  options: DoctorInputOptions = {},
): DoctorInputs {
  const given = { enabled: true, source: 'the doctor was given --enable-ssl-passthrough' };
  const passthrough: PassthroughFlags = options.enableSslPassthrough
    ? () => given
    : passthroughFlagsOf(objects);
  const build = (configMap: string | undefined) =>
    buildTopology(objects, {
      ...(options.ingressClass !== undefined ? { ingressClass: options.ingressClass } : {}),
      ...(configMap !== undefined ? { configMap } : {}),
      enableSslPassthrough: (ingress) => passthrough(ingress).enabled === true,
    });
  let topology = build(options.configMap);
  const lb = selectLoadBalancer(topology, options.loadBalancer) ?? null;
  const own = controllerBehind(controllerWorkloads(objects), lb)?.configMaps.configMap;
  const used = topology.gateway.settings.configMap;
  const same = used !== null && own === `${used.namespace}/${used.name}`;
  if (options.configMap === undefined && own != null && !same) topology = build(own);
  const streams = {
    ...(options.tcpServices !== undefined ? { tcp: options.tcpServices } : {}),
    ...(options.udpServices !== undefined ? { udp: options.udpServices } : {}),
  };
  return {
    topology,
    passthrough,
    streamServices: streamServicesOf(objects, topology, streams),
    loadBalancer: lb?.id ?? null,
  };
}
