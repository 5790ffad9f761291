// A ManifestObject for a raw object a test or a doctor fix creates (applyPatches' `make`): the
// doctor's own, so tests build patched manifests as `keepip doctor` does.
export { patchedManifestObject as manifestObject } from '../../src/doctor/follow-fix.ts';
