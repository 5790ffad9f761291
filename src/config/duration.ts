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

const NGINX_UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  M: 2_592_000_000,
  y: 31_536_000_000,
};
// Groups of a number and a unit, or a number then blanks or the end: the same language as
// `(\d+unit?\s*)+`, without its exponential backtracking in JavaScript (digits split between groups).
const NGINX_TIME = /^(?:\d+(?:ms|s|m|h|d|w|M|y)\s*|\d+(?:\s+|$))+$/;
const NGINX_TIME_PART = /(\d+)(ms|s|m|h|d|w|M|y)?/g;

/**
 * An nginx time (ngx_parse_time): groups of a whole number and a unit (ms s m h d w M y; none means
 * seconds), as in "10m", "1h 30m", "600". Null when `text` is not one. `seconds`: directives that
 * take whole seconds (ssl_session_timeout) refuse ms.
 */
export function parseNginxTimeMs(text: string, seconds = false): number | null {
  const trimmed = text.trim();
  if (trimmed === '' || !NGINX_TIME.test(trimmed)) return null;
  let total = 0;
  for (const [, count, unit = 's'] of trimmed.matchAll(NGINX_TIME_PART)) {
    if (seconds && unit === 'ms') return null;
    total += Number(count) * (NGINX_UNIT_MS[unit] as number);
  }
  return Number.isSafeInteger(total) ? total : null;
}

/** setTimeout's longest delay (2^31 - 1 ms, 24.8 days): Node fires a longer one after 1 ms. */
export const LONGEST_TIMER_MS = 2 ** 31 - 1;
