// Fixes as exact manifest changes: a JSON merge patch, the same patch as YAML, and the kubectl command
// that applies it. Also the inverse for tests and dry runs: apply patches to loaded objects.
import { stringify } from 'yaml';
import type { ObjectRef } from '../config/model.ts';
import type { FixPatch } from './types.ts';

/** Quotes a word for a POSIX shell: single quotes, with embedded ones closed and escaped. */
export function shellQuote(text: string): string {
  if (/^[A-Za-z0-9_./:=@%+-]+$/.test(text)) return text;
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function toYaml(patch: Record<string, unknown>): string {
  // Quote every string so "true" and "*" stay strings, as Kubernetes requires for annotations and data.
  return stringify(patch, {
    defaultStringType: 'QUOTE_DOUBLE',
    defaultKeyType: 'PLAIN',
    lineWidth: 0,
  }).trimEnd();
}

/** Sets (string) or removes (null) annotations on a Service or an Ingress. */
export function annotate(
  kind: 'Service' | 'Ingress',
  ref: ObjectRef,
  annotations: Readonly<Record<string, string | null>>,
): FixPatch {
  const patch = { metadata: { annotations: { ...annotations } } };
  const words = Object.entries(annotations).map(([key, value]) =>
    value === null ? shellQuote(`${key}-`) : shellQuote(`${key}=${value}`),
  );
  const resource = kind === 'Service' ? 'service' : 'ingress';
  return {
    target: { kind, namespace: ref.namespace, name: ref.name },
    patch,
    yaml: toYaml(patch),
    kubectl: `kubectl -n ${ref.namespace} annotate ${resource} ${ref.name} ${words.join(' ')} --overwrite`,
  };
}

/** Sets (string) or removes (null) keys of the controller ConfigMap. */
export function patchConfigMap(ref: ObjectRef, data: Readonly<Record<string, string | null>>): FixPatch {
  const patch = { data: { ...data } };
  return {
    target: { kind: 'ConfigMap', namespace: ref.namespace, name: ref.name },
    patch,
    yaml: toYaml(patch),
    kubectl: `kubectl -n ${ref.namespace} patch configmap ${ref.name} --type merge -p ${shellQuote(JSON.stringify(patch))}`,
  };
}

/** A merge patch of a Service's spec (or status, with `subresource: 'status'`). */
export function patchService(
  ref: ObjectRef,
  patch: Record<string, unknown>,
  subresource: 'status' | null = null,
): FixPatch {
  const sub = subresource ? ` --subresource=${subresource}` : '';
  return {
    target: { kind: 'Service', namespace: ref.namespace, name: ref.name },
    patch,
    yaml: toYaml(patch),
    kubectl: `kubectl -n ${ref.namespace} patch service ${ref.name}${sub} --type merge -p ${shellQuote(JSON.stringify(patch))}`,
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces. Returns a new value. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const result: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** The parts of a loaded manifest object that patches need (src/k8s/load.ts ManifestObject). */
export interface PatchableObject {
  apiVersion: string;
  kind: string;
  raw: Readonly<Record<string, unknown>>;
}

function identify(raw: Readonly<Record<string, unknown>>): { namespace: string; name: string } {
  const metadata = isPlainObject(raw.metadata) ? raw.metadata : {};
  return {
    namespace: typeof metadata.namespace === 'string' ? metadata.namespace : 'default',
    name: typeof metadata.name === 'string' ? metadata.name : '',
  };
}

/**
 * Applies patches to loaded objects, as `kubectl patch` would: the matching object (kind, namespace,
 * name) gets the merge patch. A ConfigMap that does not exist yet is created (a controller without one
 * runs on defaults); a missing Service or Ingress is an error value.
 */
export function applyPatches<T extends PatchableObject>(
  objects: readonly T[],
  patches: readonly FixPatch[],
  make: (raw: Record<string, unknown>) => T,
):
  | { ok: true; objects: T[] }
  | { ok: false; error: { code: 'DOCTOR_PATCH_TARGET_MISSING'; message: string } } {
  const out = [...objects];
  for (const p of patches) {
    const index = out.findIndex((o) => {
      if (o.kind !== p.target.kind) return false;
      const id = identify(o.raw);
      return id.namespace === p.target.namespace && id.name === p.target.name;
    });
    if (index === -1) {
      if (p.target.kind !== 'ConfigMap') {
        return {
          ok: false,
          error: {
            code: 'DOCTOR_PATCH_TARGET_MISSING',
            message: `${p.target.kind} ${p.target.namespace}/${p.target.name} is not in the manifests`,
          },
        };
      }
      const base = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { namespace: p.target.namespace, name: p.target.name },
      };
      out.push(make(mergePatch(base, p.patch) as Record<string, unknown>));
      continue;
    }
    const current = out[index]!;
    out[index] = { ...current, raw: mergePatch(current.raw, p.patch) as Record<string, unknown> };
  }
  return { ok: true, objects: out };
}
