// mirror-target (ingress-nginx's `mirror` + `mirror_request_body` and its internal /_mirror-<uid>
// location): a copy of each proxied request of a location goes to a second URL, and its answer is read
// and thrown away. Unlike nginx, whose main request waits for its mirror subrequests, the copy runs
// beside the request: it never changes nor delays what the client gets. A failing or slow mirror is a
// rate-limited error log line and a count in keepip_gateway_mirror_requests_total{result}.
//
// What the copy carries: the method; the target with its nginx variables expanded (the path); the
// headers the backend gets (the gateway's X-Forwarded-For / X-Real-IP, never the client's own when it
// is not trusted), hop-by-hop fields removed, `Connection: close`, Host from mirror-host (default the
// target's host name); the body when mirror-request-body is on (the location then reads the body whole
// before the backend, as nginx's mirror module does even with proxy-request-buffering off: the same
// buffered body is replayed to both). Bounded: at most `maxInFlight` copies per gateway process (beyond,
// dropped and counted), each with the location's connect deadline, then its send deadline while the
// copy is written and its read deadline while the answer comes, and at most the sum of the three in all.
import type { LocationModel, MirrorModel } from '../config/model.ts';
import { requestVars } from './admission.ts';
import { expandVariables } from './access/nginx-vars.ts';
import { logSafe, requestContext } from './error-log.ts';
import type { Exchange, GatewayRequest, HandlerContext } from './exchange.ts';
import { HOP_BY_HOP_FIELDS } from '../net/hop-by-hop.ts';
import { type MirrorBody, type MirrorCall, Mirrors } from './mirror-sender.ts';
import { shownClient } from './request-log.ts';
import { escapeUnsendable } from './rewrite.ts';

const byContext = new WeakMap<HandlerContext, Mirrors>();

/** The context's mirrors: the ones it was given, else one set made for it. */
export function mirrorsOf(ctx: HandlerContext): Mirrors {
  if (ctx.mirrors !== undefined) return ctx.mirrors;
  let mirrors = byContext.get(ctx);
  if (mirrors === undefined) {
    mirrors = new Mirrors({ registry: ctx.metrics.registry, errorLog: ctx.errorLog });
    byContext.set(ctx, mirrors);
  }
  return mirrors;
}

/** The path of the copy: the target's rest after its literal origin; null when the expansion left the host. */
export function mirrorPath(model: MirrorModel, expanded: string, requestUri: string): string | null {
  if (!expanded.startsWith(model.origin)) return null;
  const rest = expanded.slice(model.origin.length);
  const next = rest[0];
  if (next !== undefined && next !== '/' && next !== '?') return null;
  // nginx sends its internal /_mirror-<uid> location's URI for a target without one; keepip the request's.
  if (rest === '') return requestUri;
  const path = next === '?' ? `/${rest}` : rest;
  // Without variables nginx appends the request's arguments to the target's URI (proxy_pass with a URI).
  // With them ($uri is decoded), what a request line cannot carry is escaped: the copy is always sent.
  if (model.target.includes('$')) return escapeUnsendable(path);
  const q = requestUri.indexOf('?');
  if (q < 0) return path;
  return `${path}${path.includes('?') ? '&' : '?'}${requestUri.slice(q + 1)}`;
}

/** The headers of the copy from the backend's (not changed): hop-by-hop ones out, Host set, length for `bodyBytes`. */
export function mirrorHeaders(
  upstream: Readonly<Record<string, string | string[]>>,
  host: string,
  bodyBytes: number | null,
): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const name in upstream) {
    if (HOP_BY_HOP_FIELDS.has(name) || name === 'content-length' || name === 'expect') continue;
    headers[name] = upstream[name]!;
  }
  headers.host = host;
  headers.connection = 'close';
  if (bodyBytes !== null) headers['content-length'] = String(bodyBytes);
  return headers;
}

interface Pending {
  mirrors: Mirrors;
  call: MirrorCall;
  upstream: Record<string, string | string[]>;
}

/** Copies waiting for their request's body to be read whole (buffered-proxy.ts hands it over). */
const waitingForBody = new WeakMap<Exchange, Pending>();

/**
 * The mirror stage of a proxied request of `location` (which has a mirror): the copy goes now, or once
 * the body is read whole (shareWithMirror) when the body goes too. `headers` are the backend's.
 */
export function mirrorRequest(
  ctx: HandlerContext,
  ex: Exchange,
  req: GatewayRequest,
  location: LocationModel,
  headers: Readonly<Record<string, string | string[]>>,
  hasBody: boolean,
): void {
  const model = location.mirror;
  if (model === undefined) return;
  const mirrors = mirrorsOf(ctx);
  const settings = ex.snap.settings;
  const forwardedProto = headers['x-forwarded-proto'];
  const vars = requestVars(ex, req, forwardedProto === 'https' ? 'https' : ex.conn.scheme);
  const context = requestContext({
    client: shownClient(ex.client),
    server: ex.serverName,
    request: ex.requestLine,
    host: ex.rawHost,
  });
  const expanded = expandVariables(model.target, vars);
  const path = mirrorPath(model, expanded, vars.requestUri);
  if (path === null) {
    mirrors.count('refused');
    const line = `mirror request refused: "${logSafe(expanded)}" is not on ${model.origin}${context}`;
    mirrors.log(ex.conn.id, line);
    return;
  }
  const call: MirrorCall = {
    model,
    method: req.method ?? 'GET',
    path,
    headers: {},
    connectTimeoutMs: location.proxyConnectTimeoutMs ?? settings.proxyConnectTimeoutMs,
    sendTimeoutMs: location.proxySendTimeoutMs ?? settings.proxySendTimeoutMs,
    readTimeoutMs: location.proxyReadTimeoutMs ?? settings.proxyReadTimeoutMs,
    connectionId: ex.conn.id,
    context,
  };
  const host = expandVariables(model.host, vars);
  if (model.requestBody && hasBody) {
    waitingForBody.set(ex, { mirrors, call: { ...call, headers: { host } }, upstream: { ...headers } });
    return;
  }
  mirrors.send({ ...call, headers: mirrorHeaders(headers, host, null) }, null, () => {});
}

/**
 * The buffered body of `ex`'s request, shared with its waiting copy (if any): returns the release the
 * proxy calls instead of body.release(); the body is freed once the proxy and the copy are both done.
 */
export function shareWithMirror(ex: Exchange, body: MirrorBody & { release(): void }): () => void {
  const pending = waitingForBody.get(ex);
  if (pending === undefined) return () => body.release();
  waitingForBody.delete(ex);
  let holders = 2;
  const release = (): void => {
    holders -= 1;
    if (holders === 0) body.release();
  };
  const { call, upstream } = pending;
  const headers = mirrorHeaders(upstream, call.headers.host as string, body.length);
  pending.mirrors.send({ ...call, headers }, body, release);
  return release;
}
