// Bounded concurrency for tests that send many probes: the generated differentials run their cases
// a few at a time, so a busy machine is not handed hundreds of connections at once.

/** `run` over `items`, at most `limit` at a time, started in order; the results in the items' order. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  run: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await run(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}
