// Which backend a request to a location with a canary goes to, as ingress-nginx's balancer decides
// (route_to_alternative_balancer): the canary-by-header header first (with canary-by-header-value: that
// value; else with canary-by-header-pattern: a match; else `always` / `never`), then the
// canary-by-cookie cookie (`always` / `never`), then canary-weight out of canary-weight-total.
// Compiled once per snapshot; a request costs a header lookup or two and, with a weight, one random.
import type { CanaryModel } from '../config/model.ts';
import { pcreRegExp } from '../config/pcre-translate.ts';
import { type CookieHeader, nginxCookie } from './cookies.ts';

export interface CompiledCanary {
  readonly model: CanaryModel;
  /** The header's name, lower case, `_` read as `-`; null when none. */
  readonly header: string | null;
  readonly headerValue: string | null;
  /** null also when the pattern does not compile (ingress-nginx then routes to the main backend). */
  readonly headerPattern: RegExp | null;
  readonly cookie: string | null;
  readonly weight: number;
  readonly weightTotal: number;
}

/** A pattern no header matches: a refused canary-by-header-pattern. */
const MATCHES_NOTHING = /(?!)/;

export function compileCanary(model: CanaryModel): CompiledCanary {
  let headerPattern: RegExp | null = null;
  if (model.headerPatternRefused === true) headerPattern = MATCHES_NOTHING;
  else if (model.headerPattern !== null) {
    try {
      // ingress-nginx matches it with ngx.re.match: PCRE.
      headerPattern = pcreRegExp(model.headerPattern);
    } catch {
      headerPattern = null;
    }
  }
  return {
    model,
    // ingress-nginx reads $http_<name with - as _>, which a header's `-` and `_` both match; headers
    // with `_` are dropped before routing (ignore_invalid_headers), so a `_` in the name means `-`.
    header: model.header?.toLowerCase().replaceAll('_', '-') ?? null,
    headerValue: model.headerValue,
    headerPattern,
    cookie: model.cookie,
    weight: model.weight,
    // ingress-nginx reads a weight total only above 100.
    weightTotal: Math.max(model.weightTotal, 100),
  };
}

export type CanaryReason = 'header' | 'cookie' | 'weight';

/** Whether this request goes to the canary, and what decided it (null: the main backend). */
export function routeToCanary(
  canary: CompiledCanary,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  random: () => number = Math.random,
  cookies: CookieHeader = headers.cookie,
): CanaryReason | null {
  if (canary.header !== null) {
    const raw = headers[canary.header];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value !== undefined) {
      if (canary.headerValue !== null) {
        if (value === canary.headerValue) return 'header';
      } else if (canary.model.headerPattern !== null) {
        if (canary.headerPattern?.test(value)) return 'header';
        if (canary.headerPattern === null) return null;
      } else if (value === 'always') return 'header';
      else if (value === 'never') return null;
    }
  }
  if (canary.cookie !== null) {
    // ngx.var["cookie_" .. name]: nginx's $cookie_, name case-insensitive.
    const value = nginxCookie(cookies, canary.cookie);
    if (value === 'always') return 'cookie';
    if (value === 'never') return null;
  }
  if (canary.weight <= 0) return null;
  // math.random(total) <= weight, with math.random(n) uniform in 1..n.
  return Math.floor(random() * canary.weightTotal) + 1 <= canary.weight ? 'weight' : null;
}
