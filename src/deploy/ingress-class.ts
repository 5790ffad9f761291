// The IngressClass (and one per alias) that names keepip's controller value, k8s.io/ingress-nginx by
// default, so existing Ingresses of class nginx are served unchanged. Pure.
import { controllerLabels, type K8sObject, meta, type RenderContext } from './context.ts';
import { scalarText } from './read.ts';

export function renderIngressClasses(ctx: RenderContext): K8sObject[] {
  const { v } = ctx;
  if (!v.bool('controller.ingressClassResource.enabled')) return [];
  const spec: Record<string, unknown> = {
    controller: v.str('controller.ingressClassResource.controllerValue'),
  };
  const parameters = v.map('controller.ingressClassResource.parameters');
  if (Object.keys(parameters).length > 0) spec.parameters = parameters;
  const annotations = v.strings('controller.ingressClassResource.annotations');
  const make = (name: string, own: Record<string, string>): K8sObject => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'IngressClass',
    metadata: meta(ctx, name, { namespaced: false, labels: controllerLabels(ctx), annotations: own }),
    spec,
  });
  const main = make(v.str('controller.ingressClassResource.name'), {
    ...(v.bool('controller.ingressClassResource.default')
      ? { 'ingressclass.kubernetes.io/is-default-class': 'true' }
      : {}),
    ...annotations,
  });
  const aliases = v
    .list('controller.ingressClassResource.aliases')
    .map((alias) => scalarText(alias) ?? '')
    .filter((alias) => alias !== '')
    .map((alias) => make(alias, annotations));
  return [main, ...aliases];
}
