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
 * Runs `fn` for every system in every round, interleaved and rotated (A, B, C, then B, C, A, then C, A,
 * B, ...), so that a slow phase of a shared machine hurts every system alike rather than one of them,
 * and no system is always measured in the same place of a round (always right after another one's load,
 * or always last when the state a round leaves behind builds up: sockets in TIME_WAIT, caches).
 */
export async function interleave<S, R>(
  rounds: number,
  systems: readonly S[],
  fn: (system: S, round: number) => Promise<R>,
): Promise<Map<S, R[]>> {
  const results = new Map<S, R[]>(systems.map((system) => [system, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < systems.length; i++) {
      const system = systems[(round + i) % systems.length]!;
      results.get(system)!.push(await fn(system, round));
    }
  }
  return results;
}
