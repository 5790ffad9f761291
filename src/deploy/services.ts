// The controller's Services as the chart renders them: the external one (the load balancer, with the
// user's annotations), the optional `-internal` one, `-metrics` and `-admission`. Pure.
import {
  controllerLabels,
  controllerSelector,
  type K8sObject,
  meta,
  type RenderContext,
  STREAM_KEYS,
  type StreamKey,
  setIf,
} from './context.ts';
import { isTruthy, scalarText } from './read.ts';
import { tplEach } from './tpl.ts';

interface ServicePort {
  name: string;
  port: number;
  protocol?: string;
  targetPort: number | string;
  appProtocol?: string;
  nodePort?: number;
}

/** An int-or-string value as Kubernetes takes it: digits become a number. */
export function intOrString(value: unknown): number | string {
  const text = scalarText(value) ?? '';
  return /^\d+$/.test(text) ? Number(text) : text;
}

/** The port of a `tcp` or `udp` values entry, named as the chart names it. */
export interface StreamPort {
  /** Which values map it is in. */
  values: StreamKey;
  /** The port as written in the values (the key of its nodePort too). */
  key: string;
  port: number;
  name: string;
  protocol: 'TCP' | 'UDP';
}

/** The tcp values' ports, then the udp ones, each sorted as Go templates range over map keys. */
export function streamPorts(ctx: RenderContext): StreamPort[] {
  const prefix = ctx.v.str('portNamePrefix');
  return STREAM_KEYS.flatMap((values) =>
    Object.keys(ctx.v.map(values))
      .sort()
      .map((key) => ({
        values,
        key,
        port: Number(key),
        name: `${prefix ? `${prefix}-` : ''}${key}-${values}`,
        protocol: values === 'tcp' ? ('TCP' as const) : ('UDP' as const),
      })),
  );
}

function servicePorts(ctx: RenderContext, prefix: string, internal: boolean): ServicePort[] {
  const { v } = ctx;
  const type = v.str('controller.service.type');
  const setNodePorts = type === 'NodePort' || type === 'LoadBalancer';
  const ports: ServicePort[] = [];
  for (const name of ['http', 'https'] as const) {
    if (!v.bool(`controller.service.enable${name === 'http' ? 'Http' : 'Https'}`)) continue;
    const own = (key: string) => (internal ? v.raw(`${prefix}.${key}.${name}`) : undefined);
    const port: ServicePort = {
      name,
      port: Number(
        intOrString(isTruthy(own('ports')) ? own('ports') : v.raw(`controller.service.ports.${name}`)),
      ),
      protocol: 'TCP',
      targetPort: intOrString(
        isTruthy(own('targetPorts')) ? own('targetPorts') : v.raw(`controller.service.targetPorts.${name}`),
      ),
    };
    if (v.bool(`${prefix}.appProtocol`)) port.appProtocol = name;
    const nodePort = v.raw(`${prefix}.nodePorts.${name}`);
    if (setNodePorts && isTruthy(nodePort)) port.nodePort = Number(intOrString(nodePort));
    ports.push(port);
  }
  const nodePorts = { tcp: v.map(`${prefix}.nodePorts.tcp`), udp: v.map(`${prefix}.nodePorts.udp`) };
  for (const { values, key, port, name, protocol } of streamPorts(ctx)) {
    const p: ServicePort = { name, port, protocol, targetPort: name };
    const nodePort = nodePorts[values][key];
    if (isTruthy(nodePort)) p.nodePort = Number(intOrString(nodePort));
    ports.push(p);
  }
  return ports;
}

function serviceSpec(ctx: RenderContext, prefix: string, type: string, internal: boolean) {
  const { v } = ctx;
  const spec: Record<string, unknown> = { type };
  setIf(spec, {
    clusterIP: v.str(`${prefix}.clusterIP`),
    clusterIPs: v.list(`${prefix}.clusterIPs`),
    externalIPs: v.list(`${prefix}.externalIPs`),
    loadBalancerIP: v.str(`${prefix}.loadBalancerIP`),
    loadBalancerSourceRanges: v.list(`${prefix}.loadBalancerSourceRanges`),
    loadBalancerClass: v.str(`${prefix}.loadBalancerClass`),
  });
  if (v.raw(`${prefix}.allocateLoadBalancerNodePorts`) !== undefined) {
    spec.allocateLoadBalancerNodePorts = v.bool(`${prefix}.allocateLoadBalancerNodePorts`);
  }
  setIf(spec, {
    externalTrafficPolicy: v.str(`${prefix}.externalTrafficPolicy`),
    sessionAffinity: v.str(`${prefix}.sessionAffinity`),
    healthCheckNodePort:
      v.raw(`${prefix}.healthCheckNodePort`) === undefined ? '' : v.int(`${prefix}.healthCheckNodePort`),
    trafficDistribution: v.str(`${prefix}.trafficDistribution`),
    ipFamilyPolicy: v.str(`${prefix}.ipFamilyPolicy`),
    ipFamilies: v.list(`${prefix}.ipFamilies`),
  });
  spec.ports = servicePorts(ctx, prefix, internal);
  spec.selector = controllerSelector(ctx);
  return spec;
}

function controllerService(ctx: RenderContext, internal: boolean): K8sObject {
  const { v, names } = ctx;
  const prefix = internal ? 'controller.service.internal' : 'controller.service';
  const own = internal
    ? v.strings('controller.service.internal.labels')
    : v.strings('controller.service.external.labels');
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(ctx, internal ? `${names.controller}-internal` : names.controller, {
      labels: {
        'app.kubernetes.io/component': 'controller',
        ...v.strings('controller.service.labels'),
        ...own,
      },
      annotations: tplEach(ctx, `${prefix}.annotations`, v.strings(`${prefix}.annotations`)),
    }),
    spec: serviceSpec(
      ctx,
      prefix,
      (internal && v.str(`${prefix}.type`)) || v.str('controller.service.type'),
      internal,
    ),
  };
}

function metricsService(ctx: RenderContext): K8sObject {
  const { v, names } = ctx;
  const prefix = 'controller.metrics.service';
  const type = v.str(`${prefix}.type`);
  const spec: Record<string, unknown> = { type };
  setIf(spec, {
    clusterIP: v.str(`${prefix}.clusterIP`),
    externalIPs: v.list(`${prefix}.externalIPs`),
    loadBalancerIP: v.str(`${prefix}.loadBalancerIP`),
    loadBalancerSourceRanges: v.list(`${prefix}.loadBalancerSourceRanges`),
    externalTrafficPolicy: v.str(`${prefix}.externalTrafficPolicy`),
  });
  const portName = v.str('controller.metrics.portName');
  const port: ServicePort = {
    name: portName,
    port: v.int(`${prefix}.servicePort`),
    protocol: 'TCP',
    targetPort: portName,
  };
  const nodePort = v.raw(`${prefix}.nodePort`);
  if ((type === 'NodePort' || type === 'LoadBalancer') && isTruthy(nodePort))
    port.nodePort = Number(intOrString(nodePort));
  spec.ports = [port];
  spec.selector = controllerSelector(ctx);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(ctx, `${names.controller}-metrics`, {
      labels: { 'app.kubernetes.io/component': 'controller', ...v.strings(`${prefix}.labels`) },
      annotations: v.strings(`${prefix}.annotations`),
    }),
    spec,
  };
}

export function webhookService(ctx: RenderContext): K8sObject {
  const { v, names } = ctx;
  const prefix = 'controller.admissionWebhooks.service';
  const spec: Record<string, unknown> = { type: v.str(`${prefix}.type`) };
  setIf(spec, {
    clusterIP: v.str(`${prefix}.clusterIP`),
    externalIPs: v.list(`${prefix}.externalIPs`),
    loadBalancerIP: v.str(`${prefix}.loadBalancerIP`),
    loadBalancerSourceRanges: v.list(`${prefix}.loadBalancerSourceRanges`),
  });
  spec.ports = [
    {
      name: 'https-webhook',
      port: v.int(`${prefix}.servicePort`),
      targetPort: 'webhook',
      appProtocol: 'https',
    },
  ];
  spec.selector = controllerSelector(ctx);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(ctx, `${names.controller}-admission`, {
      labels: controllerLabels(ctx),
      annotations: v.strings(`${prefix}.annotations`),
    }),
    spec,
  };
}

export function renderServices(ctx: RenderContext): K8sObject[] {
  const { v } = ctx;
  const out: K8sObject[] = [];
  if (v.bool('controller.service.enabled')) {
    if (v.bool('controller.service.external.enabled')) out.push(controllerService(ctx, false));
    const internal = v.bool('controller.service.internal.enabled');
    if (internal && Object.keys(v.map('controller.service.internal.annotations')).length > 0) {
      out.push(controllerService(ctx, true));
    }
  }
  if (v.bool('controller.metrics.enabled') && v.bool('controller.metrics.service.enabled'))
    out.push(metricsService(ctx));
  if (v.bool('controller.admissionWebhooks.enabled')) out.push(webhookService(ctx));
  return out;
}
