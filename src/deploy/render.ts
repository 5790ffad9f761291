// `keepip manifests`: an ingress-nginx chart values file in, the objects that install keepip out, with
// every values key keepip does not render reported. The order is the order `kubectl apply` needs
// (namespace, identity and RBAC, configuration, Services, the workload, then the cluster-wide hooks).
import { chartDefaults, type Values } from './chart-defaults.ts';
import { checkConfig, checkControllerArgs, checkExtraArgs, checkPorts } from './checks.ts';
import { renderConfigMaps } from './config-maps.ts';
import {
  controllerSelector,
  type K8sObject,
  meta,
  type RenderContext,
  type RenderOptions,
  STREAM_KEYS,
  type WebhookCertificate,
} from './context.ts';
import type { DeployProblem } from './errors.ts';
import { renderIngressClasses } from './ingress-class.ts';
import { renderPrometheusRule, renderServiceMonitor } from './monitoring.ts';
import { deriveNames } from './names.ts';
import { renderRbac } from './rbac.ts';
import { valuesReader } from './read.ts';
import { renderScaling } from './scaling.ts';
import { renderServices } from './services.ts';
import { checkValueKeys, mergeValues } from './values.ts';
import { renderWebhook } from './webhook.ts';
import { checkWebhookCertificate, generateWebhookCertificate, webhookDnsNames } from './webhook-cert.ts';
import { renderWorkload } from './workload.ts';

export interface RenderResult {
  objects: K8sObject[];
  /** Warnings (printed) and errors (nothing should be applied). */
  problems: DeployProblem[];
  /** The webhook certificate used (made here unless the options gave one). */
  webhookCertificate?: WebhookCertificate;
}

function identity(ctx: RenderContext): K8sObject[] {
  const { v, names } = ctx;
  const objects: K8sObject[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: names.namespace } }];
  if (v.bool('serviceAccount.create')) {
    objects.push({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: meta(ctx, names.serviceAccount, {
        labels: { 'app.kubernetes.io/component': 'controller', ...v.strings('controller.labels') },
        annotations: v.strings('serviceAccount.annotations'),
      }),
      automountServiceAccountToken: v.bool('serviceAccount.automountServiceAccountToken'),
    });
  }
  return objects;
}

function structuralProblems(ctx: RenderContext): DeployProblem[] {
  const { v } = ctx;
  const out: DeployProblem[] = [];
  const invalid = (key: string, message: string) =>
    out.push({ severity: 'error', code: 'DEPLOY_VALUES_INVALID', key, message: `${key}: ${message}` });
  const kind = v.str('controller.kind');
  if (kind !== 'Deployment' && kind !== 'DaemonSet')
    invalid('controller.kind', `"${kind}": keepip renders Deployment or DaemonSet`);
  if (v.bool('rbac.scope') && !v.bool('controller.scope.enabled')) {
    invalid(
      'rbac.scope',
      'needs controller.scope.enabled: true (a namespaced Role cannot watch every namespace)',
    );
  }
  // The chart writes these after the selector labels (Helm then refuses the duplicate key); a
  // different value here would leave the pods outside their own Deployment's and Services' selector.
  const selector = controllerSelector(ctx);
  for (const path of ['commonLabels', 'controller.labels', 'controller.podLabels']) {
    for (const [label, value] of Object.entries(v.strings(path))) {
      const want = selector[label];
      if (want !== undefined && value !== want)
        invalid(`${path}.${label}`, `"${value}": the ${kind}'s selector needs ${label}=${want}`);
    }
  }
  for (const key of STREAM_KEYS) {
    for (const port of Object.keys(v.map(key))) {
      if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)
        invalid(`${key}.${port}`, 'is not a port number');
    }
  }
  return out;
}

/**
 * Service names are DNS labels (63 characters). The chart cuts the controller's name at 63 but not the
 * `-internal`, `-metrics` and `-admission` after it, so a long release name gives Services the API
 * server refuses: said here, by name.
 */
function nameProblems(objects: readonly K8sObject[]): DeployProblem[] {
  return objects
    .filter((o) => o.kind === 'Service' && o.metadata.name.length > 63)
    .map((o) => ({
      severity: 'error',
      code: 'DEPLOY_NAME_TOO_LONG',
      key: 'fullnameOverride',
      message: `Service ${o.metadata.name}: ${o.metadata.name.length} characters, a Service name has at most 63 (shorten the release name, or set fullnameOverride)`,
    }));
}

async function webhookCertificate(ctx: RenderContext): Promise<DeployProblem[]> {
  const { v, names, options } = ctx;
  if (
    !v.bool('controller.admissionWebhooks.enabled') ||
    v.bool('controller.admissionWebhooks.certManager.enabled')
  )
    return [];
  const dnsNames = webhookDnsNames(`${names.controller}-admission`, names.namespace);
  if (options.webhookCertificate === undefined) {
    options.webhookCertificate = await generateWebhookCertificate(dnsNames);
    return [];
  }
  const why = checkWebhookCertificate(options.webhookCertificate, dnsNames.at(-1)!);
  if (why === null) return [];
  return [
    {
      severity: 'error',
      code: 'DEPLOY_WEBHOOK_CERT_ERROR',
      key: 'controller.admissionWebhooks',
      message: why,
    },
  ];
}

export async function renderManifests(user: Values, options: RenderOptions): Promise<RenderResult> {
  const defaults = chartDefaults();
  const v = valuesReader(mergeValues(defaults, user), defaults);
  const ctx: RenderContext = { v, user, names: deriveNames(v, options), options: { ...options } };
  const problems = [
    ...checkValueKeys(user, defaults),
    ...structuralProblems(ctx),
    ...checkExtraArgs(ctx),
    ...checkControllerArgs(ctx),
    ...checkPorts(ctx),
  ];
  problems.push(...(await webhookCertificate(ctx)));
  const configMaps = renderConfigMaps(ctx);
  const objects = [
    ...identity(ctx),
    ...configMaps,
    ...renderRbac(ctx),
    ...renderServices(ctx),
    renderWorkload(ctx),
    ...renderScaling(ctx),
    ...renderIngressClasses(ctx),
    ...renderWebhook(ctx),
    ...renderServiceMonitor(ctx),
    ...renderPrometheusRule(ctx),
  ];
  problems.push(...checkConfig(configMaps), ...v.problems, ...nameProblems(objects));
  const failed = problems.some((p) => p.severity === 'error');
  const result: RenderResult = { objects: failed ? [] : objects, problems };
  if (ctx.options.webhookCertificate !== undefined)
    result.webhookCertificate = ctx.options.webhookCertificate;
  return result;
}
