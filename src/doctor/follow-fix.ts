// What the doctor finds once its own fix is applied. One fault can hide another: while the gateway
// closes every connection for a PROXY header nobody sends (G3), no request reaches the client-address
// checks, so a forged X-Forwarded-For that the fixed chain would believe, or a node address that the
// fixed chain would see, stays silent until the user applies the fix and runs the doctor again. So
// the error findings' patches are applied to the manifests and the doctor asked again, a few rounds,
// and what is new is reported beside the first answer, with its own fix: one complete change.
import type { ManifestObject } from '../k8s/objects.ts';
import { type DiagnoseOptions, diagnose } from './diagnose.ts';
import { applyPatches } from './fix.ts';
import { type DoctorInputOptions, doctorInputs } from './inputs.ts';
import type { DoctorReport, Finding, FixPatch } from './types.ts';

/** Rounds after the first: each applies the previous round's new fixes. */
const MAX_ROUNDS = 3;

/** A manifest object a fix creates or rewrites (applyPatches' `make`). */
export function patchedManifestObject(raw: Record<string, unknown>, file = '(doctor fix)'): ManifestObject {
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

/** The patches of the error findings, in order. */
export function errorPatches(findings: readonly Finding[]): FixPatch[] {
  return findings.filter((f) => f.severity === 'error').flatMap((f) => f.fix?.patches ?? []);
}

/** What the doctor tells the user to apply: the error findings' patches, then those of `afterFix`. */
export function patchesToApply(report: DoctorReport): FixPatch[] {
  return [...errorPatches(report.findings), ...(report.afterFix ?? []).flatMap((f) => f.fix?.patches ?? [])];
}

/** The doctor on manifests as the CLI runs it: the inputs they give, then one diagnosis. */
export function diagnoseManifests(
  objects: readonly ManifestObject[],
  inputOptions: DoctorInputOptions,
  options: DiagnoseOptions,
): ReturnType<typeof diagnose> {
  const inputs = doctorInputs(objects, inputOptions);
  return diagnose(inputs.topology, {
    ...options,
    ...(inputs.loadBalancer !== null ? { defaultLoadBalancer: inputs.loadBalancer } : {}),
    sslPassthrough: inputs.passthrough,
    streamServices: inputs.streamServices,
  });
}

/**
 * The findings (errors and warnings) that appear once the report's error fixes are applied, and then
 * once the new errors' fixes are, not already reported by id; empty when the fix leaves nothing new,
 * or when a patch cannot be applied.
 */
export function followFix(
  objects: readonly ManifestObject[],
  report: DoctorReport,
  again: (objects: readonly ManifestObject[]) => DoctorReport | null,
): Finding[] {
  const known = new Set(report.findings.map((f) => f.id));
  const revealed: Finding[] = [];
  let current = objects;
  let patches = errorPatches(report.findings);
  for (let round = 0; round < MAX_ROUNDS && patches.length > 0; round++) {
    const applied = applyPatches(current, patches, (raw) => patchedManifestObject(raw));
    if (!applied.ok) break;
    current = applied.objects;
    const next = again(current);
    if (next === null) break;
    const fresh = next.findings.filter((f) => f.severity !== 'info' && !known.has(f.id));
    for (const f of fresh) known.add(f.id);
    revealed.push(...fresh);
    patches = errorPatches(fresh);
  }
  return revealed;
}

/** Fills in the report's `afterFix` from the manifests, as `keepip doctor -f` reports it. */
export function addAfterFix(
  objects: readonly ManifestObject[],
  report: DoctorReport,
  inputOptions: DoctorInputOptions,
  options: DiagnoseOptions,
): DoctorReport {
  report.afterFix = followFix(objects, report, (patched) => {
    const again = diagnoseManifests(patched, inputOptions, options);
    return again.ok ? again.report : null;
  });
  return report;
}
