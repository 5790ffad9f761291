// The manifest source in one call: read files, translate, and report load and translation issues
// together, in file order. `keepip gateway|lb|up|doctor -f` use this.
import type { Topology } from '../config/model.ts';
import { loadManifests } from './load.ts';
import type { ManifestObject } from './objects.ts';
import { buildTopology, deepFreeze, type TopologyOptions } from './translate.ts';

export async function loadTopology(
  paths: readonly string[],
  options: TopologyOptions = {},
): Promise<Topology> {
  return (await loadTopologyAndObjects(paths, options)).topology;
}

/** Manifests behind a model, and how the model is made from them (a fix is applied to the objects). */
export interface ManifestSource {
  objects: readonly ManifestObject[];
  translate(objects: readonly ManifestObject[]): Topology;
}

/** loadTopology, with the objects it was translated from (what a fix is applied to: the dashboard). */
export async function loadTopologyAndObjects(
  paths: readonly string[],
  options: TopologyOptions = {},
): Promise<{ topology: Topology; objects: readonly ManifestObject[] }> {
  const loaded = await loadManifests(paths);
  const topology = buildTopology(loaded.objects, options);
  return {
    topology: deepFreeze({ ...topology, issues: [...loaded.issues, ...topology.issues] }),
    objects: loaded.objects,
  };
}

export { type LoadResult, loadManifests, type ManifestObject, parseManifestText } from './load.ts';
export { buildTopology, hasErrors, type TopologyOptions } from './translate.ts';
