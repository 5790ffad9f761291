// Durations as people type them on a command line or in a query string: "500ms", "10s", "1.5s", "5m",
// "1h", or a plain number, which is seconds, as nginx reads one (`proxy_read_timeout 60`) and as
// `keepip lb` and `keepip gateway` document. (Annotations carry Go durations: src/k8s/values.ts.)

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The duration in whole milliseconds (rounded), or null when `text` is not one. Whitespace around is ignored. */
export function parseDurationMs(text: string): number | null {
  const match = DURATION.exec(text.trim());
  if (match === null) return null;
  return Math.round(Number(match[1]) * UNIT_MS[match[2] ?? 's']!);
}
