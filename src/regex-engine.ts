// V8's regex engine backtracks without bound, so one request can hold the event loop for minutes when
// an Ingress regex has a catastrophic shape. nginx's PCRE gives up at its match limit; V8 can instead
// finish such a match in its linear-time engine once it has backtracked 50,000 times (for the regexes
// that engine takes: no backreferences, no lookarounds, no large counted repeats, and no `i`, `u` or
// `d` flag; so the gateway's case-insensitive regexes are compiled without `i`, each letter written as
// its two cases, wherever that is exact (config/caseless-regex.ts). The gateway turns the fallback
// on as it starts (startGateway, before any client is read); the setting is the process's and holds
// for regexes compiled before it too (checked in Node 24). The load-time scan
// (config/regex-backtracking.ts) still refuses the classic nested shapes first; this catches what the
// scan cannot see: overlapping alternatives (`(a|a)*`) and polynomial runs (`.*.*.*x`).
import { setFlagsFromString } from 'node:v8';

const FALLBACK_FLAG = '--enable-experimental-regexp-engine-on-excessive-backtracks';

/** Lets V8 fall back to its linear-time regex engine on excessive backtracking (process-wide). */
export function boundRegexBacktracking(): void {
  setFlagsFromString(FALLBACK_FLAG);
}
