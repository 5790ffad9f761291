// Headers a location adds to every response it gives, replacing the backend's own of the same name
// (nginx's more_set_headers: add-headers, custom-headers, enable-cors), and a sticky session's
// Set-Cookie beside the backend's. Only requests that have some pay for the wrapper.
import { type Exchange, type GatewayRequest, type GatewayResponse, hideHeadFields } from './exchange.ts';
import { applyHeaderTemplates } from './header-templates.ts';
import type { MatchedRoute } from './router.ts';
import { absoluteLocation } from './redirects.ts';
import { exchangeVars } from './request-log.ts';
import { rewriteResponseHeaders } from './response-rewrite.ts';

type Headers = Record<string, string | number | string[]>;

/**
 * The server's own headers for `ex`'s answer (nginx's http level): add-headers, over TLS with hsts.
 * Every answer starts with them; a location's replace them once it is matched.
 */
export function serverResponseHeaders(ex: Exchange): Readonly<Record<string, string>> | null {
  const { routes } = ex.snap;
  return ex.conn.scheme === 'https' ? routes.httpsAddHeaders : routes.addHeaders;
}

/**
 * `ex`'s headers for an answer of `status` written now: the fixed ones, over the add-headers values
 * that name variables, expanded (with the server's add-headers, as ex.responseHeaders carries them).
 */
export function answerHeaders(
  ex: Exchange,
  req: GatewayRequest,
  status: number,
): Readonly<Record<string, string>> | null {
  const fixed = ex.responseHeaders;
  const templates = ex.snap.routes.addHeaderTemplates;
  if (fixed === null || templates === null) return fixed;
  const vars = exchangeVars(ex, req, status, 0);
  const out: Record<string, string> = {};
  applyHeaderTemplates(templates, vars, out);
  // One $request_id for the head and the log line.
  ex.requestId = vars.requestId;
  return Object.assign(out, fixed);
}

/** Whether the response to `ex` needs the wrapper (most do not). */
export function needsResponseWrapper(ex: Exchange): boolean {
  return (
    ex.responseHeaders !== null ||
    ex.setCookie !== null ||
    (ex.route !== null && ex.route.responseRewrite !== null)
  );
}

/** Wraps `res.writeHead` for this one response so that `ex`'s headers are set on whatever head is written. */
export function addResponseHeaders(ex: Exchange, req: GatewayRequest, res: GatewayResponse): void {
  const rewrite = ex.route?.responseRewrite ?? null;
  const writeHead = res.writeHead.bind(res) as (
    status: number,
    message: string,
    headers: Headers,
  ) => GatewayResponse;
  const writeHeadPlain = res.writeHead.bind(res) as (status: number, headers: Headers) => GatewayResponse;
  (res as { writeHead: unknown }).writeHead = (status: number, a?: unknown, b?: unknown) => {
    const headers = ((typeof a === 'string' ? b : a) ?? {}) as Headers;
    // Read when the head is written: an error page from the error backend has the server's (custom-errors.ts).
    const extra = answerHeaders(ex, req, status) ?? {};
    // A template that expands to "" still removes the backend's field, as more_set_headers does.
    const templates = ex.responseHeaders === null ? null : ex.snap.routes.addHeaderTemplates;
    const out: Headers = {};
    for (const name in headers) {
      const lower = name.toLowerCase();
      if (extra[lower] === undefined && !templates?.some((t) => t.name === lower)) out[name] = headers[name]!;
    }
    // proxy-redirect-* / proxy-cookie-*: the backend's own Location, Refresh and Set-Cookie.
    if (rewrite !== null)
      rewriteResponseHeaders(rewrite, out, (location) =>
        ex.route === null
          ? location
          : absoluteFor(ex, ex.route, location, ex.route.location.relativeRedirects),
      );
    Object.assign(out, extra);
    // Read when the head is written: a retry may have moved the session (change-on-failure).
    if (ex.setCookie !== null) {
      const existing = out['set-cookie'];
      const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
      out['set-cookie'] = [...list, ex.setCookie];
    }
    return typeof a === 'string' ? writeHead(status, a, out) : writeHeadPlain(status, out);
  };
  hideHeadFields(res);
}

/**
 * `location` as nginx's absolute_redirect sends it from `route`'s server: one starting with `/` gets the
 * scheme and host (the port with use-port-in-redirects), unless `relative` (relative-redirects).
 */
export function absoluteFor(
  ex: Exchange,
  route: MatchedRoute,
  location: string,
  relative: boolean | undefined,
): string {
  const request = {
    scheme: ex.conn.scheme,
    rawHost: ex.rawHost,
    serverName: route.serverName,
    serverPort: ex.conn.serverPort,
  };
  return absoluteLocation(location, request, {
    relative,
    usePortInRedirects: route.location.usePortInRedirects,
  });
}
