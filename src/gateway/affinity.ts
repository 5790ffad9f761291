// Sticky sessions (affinity: cookie), as ingress-nginx's sticky balancers keep them: the cookie holds
// `<endpoint key>|<backend key>`, where the backend key is md5(md5(upstream name) + upstream name)
// and the endpoint key md5(upstream name + "address:port") (ingress-nginx's persistent mode), so a
// cookie ingress-nginx issued in that mode keeps its endpoint behind keepip. A request without a
// usable cookie gets a random endpoint and, on the locations whose Ingress asked for affinity, a
// Set-Cookie naming it. Keys are computed once per upstream and snapshot.
import { createHash } from 'node:crypto';
import type { AffinityModel } from '../config/model.ts';
import { restyCookie } from './cookies.ts';
import type { BalancedUpstream } from './upstream.ts';

const md5 = (text: string): string => createHash('md5').update(text).digest('hex');

interface UpstreamKeys {
  backendKey: string;
  /** Endpoint key -> member index. */
  byKey: Map<string, number>;
  keys: string[];
}

const KEYS = new WeakMap<BalancedUpstream, UpstreamKeys>();

function keysOf(upstream: BalancedUpstream): UpstreamKeys {
  let keys = KEYS.get(upstream);
  if (keys === undefined) {
    const list = upstream.members.map((m) => md5(`${upstream.name}${m.hostPort}`));
    keys = {
      backendKey: md5(md5(upstream.name) + upstream.name),
      byKey: new Map(list.map((k, i) => [k, i])),
      keys: list,
    };
    KEYS.set(upstream, keys);
  }
  return keys;
}

/** The cookie's two parts, or null without one. */
function parsed(affinity: AffinityModel, cookie: string | string[] | undefined): [string, string] | null {
  // The sticky balancers read it with lua-resty-cookie, not $cookie_: exact name, last one wins.
  const value = restyCookie(cookie, affinity.cookieName);
  if (value === undefined || value === '') return null;
  const bar = value.indexOf('|');
  return bar < 0 ? [value, ''] : [value.slice(0, bar), value.slice(bar + 1)];
}

/** ingress-nginx's is_affinitized: the cookie was issued for this upstream. */
export function affinitizedTo(
  affinity: AffinityModel,
  upstream: BalancedUpstream,
  cookie: string | string[] | undefined,
): boolean {
  const parts = parsed(affinity, cookie);
  return parts !== null && parts[1] === keysOf(upstream).backendKey;
}

export interface StickyChoice {
  /** The member to try first. */
  index: number;
  /** A new endpoint was picked: its key, for the Set-Cookie. */
  newKey: string | null;
}

/** The endpoint the cookie names, or a random one (newKey set); null for an upstream without members. */
export function stickyChoice(
  affinity: AffinityModel,
  upstream: BalancedUpstream,
  cookie: string | string[] | undefined,
  random: () => number = Math.random,
): StickyChoice | null {
  const count = upstream.members.length;
  if (count === 0) return null;
  const keys = keysOf(upstream);
  const parts = parsed(affinity, cookie);
  const known = parts === null ? undefined : keys.byKey.get(parts[0]);
  if (known !== undefined) return { index: known, newKey: null };
  const index = Math.floor(random() * count);
  return { index, newKey: keys.keys[index]! };
}

/** The key of member `index`, for a cookie that follows a retry (session-cookie-change-on-failure). */
export function memberKey(upstream: BalancedUpstream, index: number): string {
  return keysOf(upstream).keys[index] ?? '';
}

/** ingress-nginx's same_site_none_compatible: clients that mishandle SameSite=None. */
function sameSiteNoneCompatible(userAgent: string | undefined): boolean {
  if (userAgent === undefined) return true;
  if (/Chrome\/[456]/.test(userAgent)) return false;
  if (userAgent.includes('CPU iPhone OS 12') || userAgent.includes('iPad; CPU OS 12')) return false;
  return !(
    userAgent.includes('Macintosh') &&
    userAgent.includes('Intel Mac OS X 10_14') &&
    userAgent.includes('Safari') &&
    !userAgent.includes('Chrome')
  );
}

/** The latest time a cookie date is written for: 9999-12-31T23:59:59Z (four-digit years). */
const LAST_COOKIE_TIME_MS = 253_402_300_799_000;

/**
 * nginx's cookie_time: `Thu, 18-Nov-10 11:27:35 GMT`, the year in four digits after 2037. A time
 * outside 1970..9999 (a session-cookie-expires of 10^13 s) is written as the nearest end of it.
 */
export function cookieTime(ms: number): string {
  const d = new Date(Math.min(Math.max(ms, 0), LAST_COOKIE_TIME_MS));
  const [day, date, month, year, time] = d.toUTCString().split(' ');
  const shown = d.getUTCFullYear() > 2037 ? year : year!.slice(2);
  return `${day} ${date}-${month}-${shown} ${time} GMT`;
}

export interface CookieContext {
  upstream: BalancedUpstream;
  key: string;
  locationPath: string;
  https: boolean;
  userAgent: string | undefined;
  nowMs: number;
}

/** The Set-Cookie value, attributes in lua-resty-cookie's order. */
export function affinityCookie(affinity: AffinityModel, c: CookieContext): string {
  let cookie = `${affinity.cookieName}=${c.key}|${keysOf(c.upstream).backendKey}`;
  if (affinity.expires !== null) cookie += `; Expires=${cookieTime(c.nowMs + affinity.expires * 1000)}`;
  if (affinity.maxAge !== null) cookie += `; Max-Age=${affinity.maxAge}`;
  if (affinity.domain !== null) cookie += `; Domain=${affinity.domain}`;
  cookie += `; Path=${affinity.path ?? c.locationPath}`;
  if (affinity.secure || c.https) cookie += '; Secure';
  cookie += '; HttpOnly';
  let sameSite = affinity.sameSite;
  if (sameSite === 'None' && affinity.conditionalSameSiteNone && !sameSiteNoneCompatible(c.userAgent))
    sameSite = null;
  if (sameSite !== null) cookie += `; SameSite=${sameSite}`;
  return cookie;
}
