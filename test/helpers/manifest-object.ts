// A ManifestObject for a raw object a test or a doctor fix creates (applyPatches' `make`).
import type { ManifestObject } from '../../src/k8s/index.ts';

export function manifestObject(raw: Record<string, unknown>, file = '(doctor fix)'): ManifestObject {
  const metadata = raw.metadata as { namespace?: string; name: string };
  const kind = String(raw.kind);
  const namespace = metadata.namespace ?? 'default';
  return {
    apiVersion: String(raw.apiVersion),
    kind,
    origin: { file, document: 1, kind, namespace, name: metadata.name },
    raw,
  };
}
