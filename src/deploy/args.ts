// The controller container's arguments, flag for flag as the chart's _params.tpl writes them for
// /nginx-ingress-controller, after keepip's `controller` command: a Deployment rendered here and one
// rendered by the chart differ in the image and the first argument only. Pure.
import { type RenderContext, STREAM_KEYS } from './context.ts';

/** `$(POD_NAMESPACE)`: the kubelet expands it from the container's env. */
export const POD_NAMESPACE_REF = '$(POD_NAMESPACE)';

function publishServiceArg(ctx: RenderContext): string[] {
  const { v, names } = ctx;
  if (!v.bool('controller.publishService.enabled') || !v.bool('controller.service.enabled')) return [];
  const path = (
    v.str('controller.publishService.pathOverride') || `${POD_NAMESPACE_REF}/${names.controller}`
  ).replace(/-$/, '');
  if (v.bool('controller.service.external.enabled')) return [`--publish-service=${path}`];
  if (v.bool('controller.service.internal.enabled')) return [`--publish-service=${path}-internal`];
  return [];
}

function scopeArgs(ctx: RenderContext): string[] {
  const { v } = ctx;
  if (v.bool('controller.scope.enabled')) {
    return [`--watch-namespace=${v.str('controller.scope.namespace') || POD_NAMESPACE_REF}`];
  }
  const selector = v.str('controller.scope.namespaceSelector');
  return selector ? [`--watch-namespace-selector=${selector}`] : [];
}

function webhookArgs(ctx: RenderContext): string[] {
  const { v } = ctx;
  if (!v.bool('controller.admissionWebhooks.enabled')) return [];
  return [
    `--validating-webhook=:${v.int('controller.admissionWebhooks.port')}`,
    `--validating-webhook-certificate=${v.str('controller.admissionWebhooks.certificate')}`,
    `--validating-webhook-key=${v.str('controller.admissionWebhooks.key')}`,
  ];
}

/**
 * controller.extraArgs in key order (Go templates range over sorted keys); an empty value is a bare
 * flag. A list or map is DEPLOY_VALUES_INVALID (Helm would print it as Go does, `[a b]`).
 */
export function extraArgs(ctx: RenderContext): string[] {
  const extra = ctx.v.strings('controller.extraArgs');
  return Object.keys(extra)
    .sort()
    .map((key) => (extra[key] === '' ? `--${key}` : `--${key}=${extra[key]}`));
}

function flagArgs(ctx: RenderContext): string[] {
  const { v } = ctx;
  const out: string[] = [];
  const flag = (on: boolean, arg: string) => {
    if (on) out.push(arg);
  };
  flag(
    v.bool('controller.reportNodeInternalIp') && v.bool('controller.hostNetwork'),
    '--report-node-internal-ip-address=true',
  );
  out.push(...webhookArgs(ctx));
  flag(
    v.str('controller.maxmindLicenseKey') !== '',
    `--maxmind-license-key=${v.str('controller.maxmindLicenseKey')}`,
  );
  flag(v.str('controller.healthCheckHost') !== '', `--healthz-host=${v.str('controller.healthCheckHost')}`);
  flag(
    v.str('controller.healthCheckPath') !== '/healthz',
    `--health-check-path=${v.str('controller.healthCheckPath')}`,
  );
  flag(v.bool('controller.ingressClassByName'), '--ingress-class-by-name=true');
  flag(v.bool('controller.watchIngressWithoutClass'), '--watch-ingress-without-class=true');
  flag(v.bool('controller.metrics.enabled'), '--enable-metrics=true');
  flag(v.bool('controller.enableTopologyAwareRouting'), '--enable-topology-aware-routing=true');
  flag(v.bool('controller.disableLeaderElection'), '--disable-leader-election=true');
  flag(v.str('controller.electionTTL') !== '', `--election-ttl=${v.str('controller.electionTTL')}`);
  return out;
}

export function controllerArgs(ctx: RenderContext): string[] {
  const { v, names } = ctx;
  const args = ['controller'];
  if (!v.bool('controller.enableAnnotationValidations')) args.push('--enable-annotation-validation=false');
  args.push(...publishServiceArg(ctx));
  args.push(`--election-id=${names.electionId}`);
  args.push(`--controller-class=${v.str('controller.ingressClassResource.controllerValue')}`);
  if (v.str('controller.ingressClass') !== '')
    args.push(`--ingress-class=${v.str('controller.ingressClass')}`);
  const configNs = v.str('controller.configMapNamespace') || POD_NAMESPACE_REF;
  args.push(`--configmap=${configNs}/${names.controller}`);
  for (const key of STREAM_KEYS) {
    if (Object.keys(v.map(key)).length === 0) continue;
    const ns = v.str(`controller.${key}.configMapNamespace`) || POD_NAMESPACE_REF;
    args.push(`--${key}-services-configmap=${ns}/${names.fullname}-${key}`);
  }
  args.push(...scopeArgs(ctx));
  args.push(...flagArgs(ctx));
  args.push(...extraArgs(ctx));
  return args;
}
