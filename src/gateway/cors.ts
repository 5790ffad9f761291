// enable-cors as ingress-nginx's CORS template does it, compiled once per snapshot:
//   cors-allow-origin `*`: every request gets the CORS headers, Access-Control-Allow-Origin `*`;
//   a list: only a request whose Origin matches one entry (case-insensitive; `*.` stands for one DNS
//   label) gets them, Access-Control-Allow-Origin being that Origin;
//   a preflight (OPTIONS) that gets them is answered 204 by the gateway before redirects and access
//   rules (nginx's rewrite phase), with the template's Content-Length 0 but not its Content-Type (nginx's
//   header filter drops the type from a 204; headers-more's length stays); any other OPTIONS goes on.
// The headers replace the backend's own of the same name (more_set_headers).
import { caselessRegExp } from '../config/caseless-regex.ts';
import type { CorsModel } from '../config/model.ts';

export interface CompiledCors {
  /** null: every origin (`*`). */
  readonly origins: RegExp | null;
  /** The headers besides Access-Control-Allow-Origin, lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  /** For `*`: the whole set, allocated once. */
  readonly anyOrigin: Readonly<Record<string, string>> | null;
}

export interface CorsAnswer {
  /** Added to the response (proxied or the gateway's own). */
  headers: Record<string, string>;
  /** An OPTIONS preflight: the gateway answers 204 itself. */
  preflight: boolean;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** ingress-nginx's buildOriginRegex: the origin quoted, its first `*` one label of [A-Za-z0-9-]. */
function originPattern(origin: string): string {
  return escapeRegex(origin).replace('\\*', '[A-Za-z0-9\\-]+');
}

export function compileCors(model: CorsModel): CompiledCors {
  const headers: Record<string, string> = {};
  if (model.allowCredentials) headers['access-control-allow-credentials'] = 'true';
  headers['access-control-allow-methods'] = model.allowMethods;
  headers['access-control-allow-headers'] = model.allowHeaders;
  if (model.exposeHeaders !== '') headers['access-control-expose-headers'] = model.exposeHeaders;
  headers['access-control-max-age'] = String(model.maxAge);
  const any = model.allowOrigin.length === 1 && model.allowOrigin[0] === '*';
  // Anchored at both ends (ingress-nginx anchors only the end; a real Origin has nothing before its scheme).
  const origins =
    any || model.allowOrigin.length === 0
      ? null
      : caselessRegExp(`^(?:${model.allowOrigin.map(originPattern).join('|')})$`);
  return {
    origins: any ? null : (origins ?? /(?!)/),
    headers: Object.freeze(headers),
    anyOrigin: any ? Object.freeze({ 'access-control-allow-origin': '*', ...headers }) : null,
  };
}

/** The CORS headers of one request, or null when it gets none. */
export function corsAnswer(
  cors: CompiledCors,
  method: string | undefined,
  origin: string | string[] | undefined,
): CorsAnswer | null {
  let headers: Record<string, string>;
  if (cors.anyOrigin !== null) headers = { ...cors.anyOrigin };
  else {
    const value = Array.isArray(origin) ? origin[0] : origin;
    if (value === undefined || cors.origins === null || !cors.origins.test(value)) return null;
    headers = { 'access-control-allow-origin': value, ...cors.headers };
  }
  return { headers, preflight: method === 'OPTIONS' };
}

/** The extra header of the gateway's own 204 answer to a preflight, as ingress-nginx's answer has it. */
export const PREFLIGHT_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-length': '0' });
