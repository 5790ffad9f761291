// Headers a location adds to every response it gives, replacing the backend's own of the same name
// (nginx's more_set_headers: add-headers, custom-headers, enable-cors), and a sticky session's
// Set-Cookie beside the backend's. Only requests that have some pay for the wrapper.
import { type Exchange, type GatewayResponse, hideHeadFields } from './exchange.ts';
import type { MatchedRoute } from './router.ts';
import { absoluteLocation } from './redirects.ts';
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

/** Whether the response to `ex` needs the wrapper (most do not). */
export function needsResponseWrapper(ex: Exchange): boolean {
  return (
    ex.responseHeaders !== null ||
    ex.setCookie !== null ||
    (ex.route !== null && ex.route.responseRewrite !== null)
  );
}

/** Wraps `res.writeHead` for this one response so that `ex`'s headers are set on whatever head is written. */
export function addResponseHeaders(ex: Exchange, res: GatewayResponse): void {
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
    const extra = ex.responseHeaders ?? {};
    const out: Headers = {};
    for (const name in headers) if (extra[name.toLowerCase()] === undefined) out[name] = headers[name]!;
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
