// Duplicate keys in a YAML document, found in one pass. The yaml library's own check (uniqueKeys)
// compares each key with every earlier one of its map: a flat map of 80,000 keys took a minute, so a
// large manifest or values file could hold the CLI, or a gateway's reload, for that long. Same rule as
// the library's: two scalar keys are the same when their values are (`1` and `"1"` differ); a merge
// key (`<<`) is not a key of the map. Pure.
import { type Document, isScalar, type LineCounter, visit } from 'yaml';

/** The first key a map of `doc` holds twice: its text and where it is (1-based), or null. */
export function firstDuplicateKey(
  doc: Document,
  lines: LineCounter,
): { key: string; line: number; col: number } | null {
  let found: { key: string; line: number; col: number } | null = null;
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const node = pair.key;
        const value = isScalar(node) ? node.value : node;
        if (value === '<<') continue;
        const identity =
          typeof value === 'object' && value !== null ? value : `${typeof value}:${String(value)}`;
        if (seen.has(identity)) {
          const at = lines.linePos((isScalar(node) ? node.range?.[0] : undefined) ?? 0);
          found = { key: String(value), line: at.line, col: at.col };
          return visit.BREAK;
        }
        seen.add(identity);
      }
      return undefined;
    },
  });
  return found;
}
