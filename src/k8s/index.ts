// The manifest source in one call: read files, translate, and report load and translation issues
// together, in file order. `keepip gateway|lb|up|doctor -f` use this.
import type { Topology } from '../config/model.ts';
import { loadManifests } from './load.ts';
import { buildTopology, deepFreeze, type TopologyOptions } from './translate.ts';

export async function loadTopology(
  paths: readonly string[],
  options: TopologyOptions = {},
): Promise<Topology> {
  const loaded = await loadManifests(paths);
  const topology = buildTopology(loaded.objects, options);
  return deepFreeze({ ...topology, issues: [...loaded.issues, ...topology.issues] });
}

export { type LoadResult, loadManifests, type ManifestObject, parseManifestText } from './load.ts';
export { buildTopology, hasErrors, type TopologyOptions } from './translate.ts';
