// The controller Deployment or DaemonSet: the chart's pod template with keepip's image, entrypoint
// arguments (args.ts) and security context (non-root, NET_BIND_SERVICE only, read-only root by
// default). Pure.
import { controllerArgs } from './args.ts';
import {
  controllerLabels,
  controllerSelector,
  type K8sObject,
  meta,
  type RenderContext,
  setIf,
} from './context.ts';
import { scalarText } from './read.ts';
import { streamPorts } from './services.ts';
import { tpl } from './tpl.ts';

/** The only capability keepip's container keeps, and why. */
export const CAPABILITIES_ADDED = {
  NET_BIND_SERVICE: 'bind ports 80 and 443 as uid 101 (the image sets it on the node binary)',
};

/** The pod's own identity, from the downward API (the kubelet expands $(POD_NAMESPACE) in args). */
const POD_ENV = { POD_NAME: 'metadata.name', POD_NAMESPACE: 'metadata.namespace' };

const WEBHOOK_CERT_DIR = '/usr/local/certificates/';

function securityContext(ctx: RenderContext): Record<string, unknown> {
  const { v } = ctx;
  const own = v.map('controller.containerSecurityContext');
  if (Object.keys(own).length > 0) return own;
  const out: Record<string, unknown> = {
    runAsNonRoot: v.bool('controller.image.runAsNonRoot'),
    runAsUser: v.int('controller.image.runAsUser'),
    runAsGroup: v.int('controller.image.runAsGroup'),
    allowPrivilegeEscalation: v.bool('controller.image.allowPrivilegeEscalation'),
  };
  const seccomp = v.map('controller.image.seccompProfile');
  if (Object.keys(seccomp).length > 0) out.seccompProfile = seccomp;
  out.capabilities = { drop: ['ALL'], add: Object.keys(CAPABILITIES_ADDED) };
  // keepip writes nothing to its root filesystem: read-only whatever controller.image says (the chart's
  // false is for nginx); controller.containerSecurityContext replaces all of this when a user must.
  out.readOnlyRootFilesystem = true;
  return out;
}

function containerPorts(ctx: RenderContext): Record<string, unknown>[] {
  const { v } = ctx;
  const hostPort = v.bool('controller.hostPort.enabled');
  const hostPorts = v.map('controller.hostPort.ports');
  const ports: Record<string, unknown>[] = [];
  const containerPort = v.map('controller.containerPort');
  for (const name of Object.keys(containerPort).sort()) {
    const port: Record<string, unknown> = {
      name,
      containerPort: Number(containerPort[name]),
      protocol: 'TCP',
    };
    if (hostPort) port.hostPort = Number(hostPorts[name] || containerPort[name]);
    ports.push(port);
  }
  if (v.bool('controller.metrics.enabled')) {
    ports.push({
      name: v.str('controller.metrics.portName'),
      containerPort: v.int('controller.metrics.port'),
      protocol: 'TCP',
    });
  }
  if (v.bool('controller.admissionWebhooks.enabled')) {
    ports.push({
      name: 'webhook',
      containerPort: v.int('controller.admissionWebhooks.port'),
      protocol: 'TCP',
    });
  }
  for (const { port, name, protocol } of streamPorts(ctx)) {
    ports.push({ name, containerPort: port, protocol, ...(hostPort ? { hostPort: port } : {}) });
  }
  return ports;
}

function volumes(ctx: RenderContext): { mounts: unknown[]; volumes: unknown[] } {
  const { v, names } = ctx;
  const extraMounts = v.list('controller.extraVolumeMounts');
  const extraVolumes = v.list('controller.extraVolumes');
  // A writable /tmp for anything that needs one (the root filesystem stays read-only), unless the
  // values mount one there already: two mounts at one path, or two volumes of one name, are refused by
  // the API server.
  const mounts: unknown[] = [];
  const vols: unknown[] = [];
  const field = (item: unknown, key: string) => (item as Record<string, unknown> | null)?.[key];
  if (!extraMounts.some((m) => String(field(m, 'mountPath')).replace(/\/+$/, '') === '/tmp')) {
    const name = extraVolumes.some((x) => field(x, 'name') === 'tmp') ? 'keepip-tmp' : 'tmp';
    mounts.push({ name, mountPath: '/tmp' });
    vols.push({ name, emptyDir: {} });
  }
  if (v.bool('controller.admissionWebhooks.enabled')) {
    mounts.push({ name: 'webhook-cert', mountPath: WEBHOOK_CERT_DIR, readOnly: true });
    const secret: Record<string, unknown> = { secretName: names.admission };
    if (v.bool('controller.admissionWebhooks.certManager.enabled')) {
      secret.items = [
        { key: 'tls.crt', path: 'cert' },
        { key: 'tls.key', path: 'key' },
      ];
    }
    vols.push({ name: 'webhook-cert', secret });
  }
  mounts.push(...extraMounts);
  vols.push(...extraVolumes);
  return { mounts, volumes: vols };
}

function container(ctx: RenderContext, mounts: unknown[]): Record<string, unknown> {
  const { v, options } = ctx;
  const c: Record<string, unknown> = {
    name: v.str('controller.containerName'),
    image: options.image,
    imagePullPolicy: v.str('controller.image.pullPolicy'),
    args: controllerArgs(ctx),
    securityContext: securityContext(ctx),
    env: [
      ...Object.entries(POD_ENV).map(([name, fieldPath]) => ({
        name,
        valueFrom: { fieldRef: { fieldPath } },
      })),
      ...v.list('controller.extraEnvs'),
    ],
  };
  setIf(c, {
    startupProbe: v.map('controller.startupProbe'),
    livenessProbe: v.map('controller.livenessProbe'),
    readinessProbe: v.map('controller.readinessProbe'),
  });
  c.ports = containerPorts(ctx);
  c.volumeMounts = mounts;
  setIf(c, { resources: v.map('controller.resources'), resizePolicy: v.list('controller.resizePolicy') });
  return c;
}

function podSecurityContext(ctx: RenderContext): Record<string, unknown> {
  const { v } = ctx;
  const out: Record<string, unknown> = { ...v.map('controller.podSecurityContext') };
  const sysctls = v.map('controller.sysctls');
  const names = Object.keys(sysctls).sort();
  if (names.length > 0) out.sysctls = names.map((name) => ({ name, value: scalarText(sysctls[name]) ?? '' }));
  return out;
}

function podSpec(ctx: RenderContext): Record<string, unknown> {
  const { v, names } = ctx;
  const { mounts, volumes: vols } = volumes(ctx);
  const spec: Record<string, unknown> = {};
  setIf(spec, {
    dnsConfig: v.map('controller.dnsConfig'),
    hostAliases: tpl(ctx, 'controller.hostAliases', v.list('controller.hostAliases')),
    hostname: v.raw('controller.hostname'),
    dnsPolicy: v.str('controller.dnsPolicy'),
    imagePullSecrets: v.list('imagePullSecrets'),
    priorityClassName: v.str('controller.priorityClassName'),
    runtimeClassName: v.str('controller.runtimeClassName'),
    securityContext: podSecurityContext(ctx),
    shareProcessNamespace: v.bool('controller.shareProcessNamespace'),
  });
  spec.containers = [container(ctx, mounts), ...v.list('controller.extraContainers')];
  setIf(spec, {
    initContainers: tpl(ctx, 'controller.extraInitContainers', v.list('controller.extraInitContainers')),
    hostNetwork: v.bool('controller.hostNetwork'),
    nodeSelector: v.map('controller.nodeSelector'),
    tolerations: v.list('controller.tolerations'),
    affinity: tpl(ctx, 'controller.affinity', v.map('controller.affinity')),
    topologySpreadConstraints: tpl(
      ctx,
      'controller.topologySpreadConstraints',
      v.list('controller.topologySpreadConstraints'),
    ),
  });
  spec.serviceAccountName = names.serviceAccount;
  spec.automountServiceAccountToken = v.bool('serviceAccount.automountServiceAccountToken');
  spec.terminationGracePeriodSeconds = v.int('controller.terminationGracePeriodSeconds');
  spec.volumes = vols;
  return spec;
}

function podTemplate(ctx: RenderContext): Record<string, unknown> {
  const { v, names } = ctx;
  const metadata: Record<string, unknown> = {};
  const annotations = v.strings('controller.podAnnotations');
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
  metadata.labels = { ...names.labels, ...controllerLabels(ctx), ...v.strings('controller.podLabels') };
  return { metadata, spec: podSpec(ctx) };
}

export function renderWorkload(ctx: RenderContext): K8sObject {
  const { v, names } = ctx;
  const kind = v.str('controller.kind') === 'DaemonSet' ? 'DaemonSet' : 'Deployment';
  const spec: Record<string, unknown> = { selector: { matchLabels: controllerSelector(ctx) } };
  if (kind === 'Deployment') {
    if (!v.bool('controller.autoscaling.enabled')) spec.replicas = v.int('controller.replicaCount');
    spec.revisionHistoryLimit = v.int('revisionHistoryLimit');
    const deadline = v.int('controller.progressDeadlineSeconds');
    if (deadline > 0) spec.progressDeadlineSeconds = deadline;
    setIf(spec, { strategy: v.map('controller.updateStrategy') });
  } else {
    spec.revisionHistoryLimit = v.int('revisionHistoryLimit');
    setIf(spec, { updateStrategy: v.map('controller.updateStrategy') });
  }
  spec.minReadySeconds = v.int('controller.minReadySeconds');
  spec.template = podTemplate(ctx);
  return {
    apiVersion: 'apps/v1',
    kind,
    metadata: meta(ctx, names.controller, {
      labels: controllerLabels(ctx),
      annotations: v.strings('controller.annotations'),
    }),
    spec,
  };
}
