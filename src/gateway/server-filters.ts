// ingress-nginx's server-level filters, compiled once per snapshot from the ConfigMap
// (src/config/server-settings.ts): block-user-agents and block-referers refuse a request with 403 in
// every server, before its redirects and locations (nginx's `if ($block_ua) { return 403; }`); a block
// list nginx would not load fails closed with 503; skip-access-log-urls keeps matching request URIs out
// of the access log (`access_log … if=$loggable`); hide-headers and nginx's own hidden response fields
// (hiddenResponseHeaders). Pure.
import { compileMap, type MapMatcher } from '../config/nginx-map.ts';
import type { ServerSettings } from '../config/server-settings.ts';
import { HOP_BY_HOP_FIELDS } from '../net/hop-by-hop.ts';

type HeaderValue = string | string[] | undefined;

export interface ServerFilters {
  /** 403 for a blocked User-Agent or Referer, 503 when a block list is unusable, else 0. */
  refusal(userAgent: HeaderValue, referer: HeaderValue): 0 | 403 | 503;
  /** Whether the request URI (as sent) is left out of the access log. */
  skipsLog(requestUri: string): boolean;
  /** Backend response fields not passed to the client (hiddenResponseHeaders). */
  readonly hiddenResponseHeaders: ReadonlySet<string>;
  /** The settings these were compiled from (the defaults when the ConfigMap had none). */
  readonly server: ServerSettings;
}

const NONE: MapMatcher | null = null;

function matcher(entries: readonly string[]): MapMatcher | null {
  return entries.length === 0 ? NONE : compileMap(entries);
}

/** nginx's $http_user_agent / $http_referer: the first such header. */
function first(value: HeaderValue): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function compileServerFilters(server: ServerSettings): ServerFilters {
  const agents = matcher(server.blockUserAgents);
  const referers = matcher(server.blockReferers);
  const skipped = matcher(server.skipAccessLogUrls);
  const failClosed = server.blockListError !== null;
  return {
    server,
    hiddenResponseHeaders: hiddenResponseHeaders(server),
    refusal(userAgent, referer) {
      if (failClosed) return 503;
      // An absent field is nginx's empty $http_user_agent: an entry `""` blocks clients without one.
      if (agents?.matches(first(userAgent) ?? '') === true) return 403;
      if (referers?.matches(first(referer) ?? '') === true) return 403;
      return 0;
    },
    skipsLog(requestUri) {
      return skipped?.matches(requestUri) === true;
    },
  };
}

/**
 * nginx's proxy_hide_header defaults (Date, Server, X-Pad, X-Accel-*: nginx sets its own Date, and
 * its Server is then cleared by ingress-nginx unless server-tokens) and the ConfigMap's hide-headers.
 */
const NGINX_HIDDEN = [
  'date',
  'server',
  'x-pad',
  'x-accel-expires',
  'x-accel-redirect',
  'x-accel-limit-rate',
  'x-accel-buffering',
  'x-accel-charset',
];

/** The backend response fields a client never sees under these settings (hop-by-hop ones included). */
export function hiddenResponseHeaders(server: ServerSettings): ReadonlySet<string> {
  const hidden = new Set([...HOP_BY_HOP_FIELDS, ...NGINX_HIDDEN, ...server.hideHeaders]);
  // proxy_pass_header Server; without server-tokens ingress-nginx's more_clear_headers clears it anyway.
  if (server.allowBackendServerHeader && server.serverTokens) hidden.delete('server');
  return hidden;
}
