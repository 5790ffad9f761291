// Small statistics for rounds of measurements.

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Rounds a value for a report: 3 significant digits below 100, integers above. */
export function tidy(value: number): number {
  if (!Number.isFinite(value)) return value;
  if (Math.abs(value) >= 100) return Math.round(value);
  return Number(value.toPrecision(3));
}

/**
 * Runs `fn` for every system in every round, interleaved (A, B, C, A, B, C, ...), so that a slow
 * phase of a shared machine hurts every system alike rather than one of them.
 */
export async function interleave<S, R>(
  rounds: number,
  systems: readonly S[],
  fn: (system: S, round: number) => Promise<R>,
): Promise<Map<S, R[]>> {
  const results = new Map<S, R[]>(systems.map((system) => [system, []]));
  for (let round = 0; round < rounds; round++) {
    for (const system of systems) results.get(system)!.push(await fn(system, round));
  }
  return results;
}
