// ingress-nginx's --annotations-prefix: a controller can be told to read its annotations under another
// prefix (`custom.example.com/whitelist-source-range`), so that two controllers in one cluster read
// different sets. keepip reads every annotation by its ingress-nginx name, so a custom prefix is
// folded onto the standard one as Ingresses are read: `<prefix>/x` becomes
// `nginx.ingress.kubernetes.io/x`, and annotations under the standard prefix are then not this
// controller's and are dropped, as ingress-nginx ignores them. Pure.
import type { IngressView } from './objects.ts';
import { isDnsSubdomain } from './values.ts';

export const DEFAULT_ANNOTATIONS_PREFIX = 'nginx.ingress.kubernetes.io';

/** Null when `prefix` can be an annotation prefix, else why not. */
export function annotationsPrefixProblem(prefix: string): string | null {
  if (prefix.length === 0) return 'the prefix is empty';
  if (prefix.length > 253) return 'the prefix is longer than 253 characters';
  if (!isDnsSubdomain(prefix)) {
    return `"${prefix}" is not a DNS subdomain (lower-case letters, digits, "-" and ".", as a Kubernetes annotation prefix)`;
  }
  return null;
}

/**
 * An Ingress's annotations as keepip reads them under `prefix`: the same object for the default prefix;
 * else the prefix's annotations renamed to the standard prefix and the standard prefix's own dropped.
 */
export function foldAnnotationsPrefix(
  annotations: Readonly<Record<string, string>>,
  prefix: string,
): Readonly<Record<string, string>> {
  if (prefix === DEFAULT_ANNOTATIONS_PREFIX) return annotations;
  const custom = `${prefix}/`;
  const standard = `${DEFAULT_ANNOTATIONS_PREFIX}/`;
  const folded: Record<string, string> = {};
  for (const [key, value] of Object.entries(annotations)) {
    if (key.startsWith(custom)) folded[standard + key.slice(custom.length)] = value;
    else if (!key.startsWith(standard)) folded[key] = value;
  }
  return folded;
}

/** An Ingress as read under `prefix` (undefined: the default prefix). */
export function withAnnotationsPrefix(ingress: IngressView, prefix: string | undefined): IngressView {
  if (prefix === undefined || prefix === DEFAULT_ANNOTATIONS_PREFIX) return ingress;
  return {
    ...ingress,
    meta: { ...ingress.meta, annotations: foldAnnotationsPrefix(ingress.meta.annotations, prefix) },
  };
}
