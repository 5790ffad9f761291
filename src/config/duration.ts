// Durations as people type them on a command line or in a query string: "500ms", "10s", "1.5s", "5m",
// "1h", or a plain number, which is seconds, as nginx reads one (`proxy_read_timeout 60`) and as
// `keepip lb` and `keepip gateway` document. (Annotations carry Go durations: src/k8s/values.ts.)

import { nginxArguments } from './nginx-token.ts';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The duration in whole milliseconds (rounded), or null when `text` is not one. Whitespace around is ignored. */
export function parseDurationMs(text: string): number | null {
  const match = DURATION.exec(text.trim());
  if (match === null) return null;
  return Math.round(Number(match[1]) * UNIT_MS[match[2] ?? 's']!);
}

/** ngx_int_t's largest value (64-bit): ngx_parse_time refuses a time past it. */
const NGX_MAX_INT = 2n ** 63n - 1n;
/** ngx_parse_time's steps: each unit must come after the larger ones (1h30m, never 30m1h). */
const NGINX_STEPS = ['start', 'y', 'M', 'w', 'd', 'h', 'm', 's', 'ms', 'blank'] as const;
const NGINX_UNIT_SECONDS: Readonly<Record<string, bigint>> = {
  y: 31_536_000n,
  M: 2_592_000n,
  w: 604_800n,
  d: 86_400n,
  h: 3_600n,
  m: 60n,
  s: 1n,
  ms: 1n,
  blank: 1n,
};

/** The unit at `text[i]` (`m` followed by `s` is ms), or null. */
function nginxUnitAt(text: string, i: number): (typeof NGINX_STEPS)[number] | null {
  const c = text[i];
  if (c === 'm') return text[i + 1] === 's' ? 'ms' : 'm';
  if (c === ' ') return 'blank';
  return c === 'y' || c === 'M' || c === 'w' || c === 'd' || c === 'h' || c === 's' ? c : null;
}

/** Whether ngx_parse_time takes `unit` after `step` (y only in seconds; ms never in seconds). */
function unitAllowed(unit: (typeof NGINX_STEPS)[number], step: number, isSec: boolean): boolean {
  const at = NGINX_STEPS.indexOf(unit);
  if (unit === 'y') return step === 0;
  if (unit === 'ms') return !isSec && step < at;
  if (unit === 'blank') return step < NGINX_STEPS.indexOf('s');
  return step < at;
}

/**
 * ngx_parse_time, step for step: whole numbers each followed by a unit (y M w d h m s ms) in
 * decreasing order, a blank closing a bare number, a last bare number meaning seconds. In
 * milliseconds unless `isSec` (then y is taken and ms refused: directives of whole seconds); null
 * where nginx returns NGX_ERROR.
 */
export function ngxParseTime(text: string, isSec: boolean): bigint | null {
  const milli = isSec ? 1n : 1000n;
  let [valid, value, total, step] = [false, 0n, 0n, isSec ? 0 : NGINX_STEPS.indexOf('M')];
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      value = value * 10n + BigInt(c - 48);
      if (value > NGX_MAX_INT) return null;
      [valid, i] = [true, i + 1];
      continue;
    }
    const unit = nginxUnitAt(text, i);
    if (unit === null || !unitAllowed(unit, step, isSec)) return null;
    [step, i] = [NGINX_STEPS.indexOf(unit), i + (unit === 'ms' ? 2 : 1)];
    const scale = NGINX_UNIT_SECONDS[unit]! * (unit === 'ms' ? 1n : milli);
    value *= scale;
    if (value > NGX_MAX_INT || total > NGX_MAX_INT - value) return null;
    [total, value] = [total + value, 0n];
    while (text[i] === ' ') i++;
  }
  value *= milli;
  if (!valid || value > NGX_MAX_INT || total > NGX_MAX_INT - value) return null;
  return total + value;
}

/**
 * A time as the one unquoted argument ingress-nginx writes for a ConfigMap key (`proxy_timeout
 * {{ $cfg.ProxyStreamTimeout }};`), in milliseconds, read as nginx's lexer reads it (nginxArguments):
 * a blank inside ("1h 30m") makes two arguments, which nginx refuses, and so is null; the
 * rest is ngx_parse_time's ("10m", "600", "1h30m"; not "30m1h", nor y or M where nginx reads
 * milliseconds). `seconds`: directives of whole seconds (ssl_session_timeout) refuse ms, take y.
 */
export function parseNginxTimeMs(text: string, seconds = false): number | null {
  const words = nginxArguments(text);
  if (words?.length !== 1) return null;
  const parsed = ngxParseTime(words[0]!, seconds);
  if (parsed === null) return null;
  const ms = Number(parsed) * (seconds ? 1000 : 1);
  return Number.isSafeInteger(ms) ? ms : null;
}

/** setTimeout's longest delay (2^31 - 1 ms, 24.8 days): Node fires a longer one after 1 ms. */
export const LONGEST_TIMER_MS = 2 ** 31 - 1;
