// What every object builder gets: the merged values, the names, the options of the run, and object
// metadata built the chart's way. Pure.
import type { Values } from './chart-defaults.ts';
import type { Names } from './names.ts';
import type { ValuesReader } from './read.ts';

/** A rendered Kubernetes object. */
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
};

/** The admission webhook's serving certificate and the CA that signed it, PEM. */
export interface WebhookCertificate {
  ca: string;
  cert: string;
  key: string;
}

export interface RenderOptions {
  /** Helm's release name: the prefix of the object names (default ingress-nginx). */
  release: string;
  /** The namespace (values' namespaceOverride wins). */
  namespace: string;
  /** The keepip image reference. */
  image: string;
  /** keepip's version, for app.kubernetes.io/version. */
  version: string;
  /** The webhook certificate, when the webhook is on and cert-manager is not used. */
  webhookCertificate?: WebhookCertificate;
}

export interface RenderContext {
  v: ValuesReader;
  /** The user's own values (to tell a default from a choice). */
  user: Values;
  names: Names;
  options: RenderOptions;
}

export const CONTROLLER_COMPONENT = { 'app.kubernetes.io/component': 'controller' };

/**
 * The chart's `tcp` and `udp` values (services by port number), in the chart's order: each gives a
 * `<fullname>-<key>` ConfigMap, `--<key>-services-configmap`, and container and Service ports.
 */
export const STREAM_KEYS = ['tcp', 'udp'] as const;
export type StreamKey = (typeof STREAM_KEYS)[number];

/** metadata with the chart's labels (+ component and extra labels) and optional annotations. */
export function meta(
  ctx: RenderContext,
  name: string,
  extra: {
    namespaced?: boolean;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  } = {},
): K8sObject['metadata'] {
  const out: K8sObject['metadata'] = { name };
  if (extra.namespaced !== false) out.namespace = ctx.names.namespace;
  out.labels = { ...ctx.names.labels, ...extra.labels };
  if (extra.annotations !== undefined && Object.keys(extra.annotations).length > 0) {
    out.annotations = extra.annotations;
  }
  return out;
}

/** Labels of the controller's own objects: component controller and controller.labels. */
export function controllerLabels(ctx: RenderContext): Record<string, string> {
  return { ...CONTROLLER_COMPONENT, ...ctx.v.strings('controller.labels') };
}

/** The selector of the controller pods. */
export function controllerSelector(ctx: RenderContext): Record<string, string> {
  return { ...ctx.names.selector, ...CONTROLLER_COMPONENT };
}

/** Copies the entries of `from` whose value is not empty (Helm's `{{- if }}` around each field). */
export function setIf(target: Record<string, unknown>, from: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(from)) {
    if (value === undefined || value === null || value === '' || value === false) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) continue;
    target[key] = value;
  }
}
