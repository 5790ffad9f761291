// The two redirects ingress-nginx answers itself, before any access check:
// - app-root: a server-level `if ($uri = /) { return 302 $scheme://$http_host<app-root>; }`,
//   evaluated before the location is chosen (so before ssl-redirect);
// - ssl-redirect / force-ssl-redirect: lua_ingress.rewrite() in the location, answering
//   `http-redirect-code` (308) with `https://<host without port><request_uri>`, the trailing `/`
//   of request_uri dropped (preserve-trailing-slash is off by default).

import type { LocationModel, VirtualHostModel } from '../config/model.ts';
import { hostWithoutPort, normalizeHost } from './host.ts';

/**
 * Whether a location redirects plain HTTP to HTTPS: force-ssl-redirect always, ssl-redirect on a TLS
 * host, a rule host of an Ingress with a spec.tls section (the model's sslRedirect is already limited
 * to those; an alias also needs the certificate to name it, see the router). A
 * missing or unusable Secret does not stop it: ingress-nginx then serves the default certificate and
 * still redirects (its e2e test "should redirect from HTTP to HTTPS when secret is missing").
 */
export function redirectsToHttps(location: LocationModel, _vhost: VirtualHostModel): boolean {
  return location.forceSslRedirect || location.sslRedirect;
}

/**
 * The Location of an https redirect: `https://<host>` + request_uri without a final `/` (kept with
 * preserve-trailing-slash); with use-port-in-redirects, ingress-nginx's HTTPS port (443) is named.
 */
export function httpsRedirectLocation(
  rawHost: string,
  requestUri: string,
  options: Pick<LocationModel, 'preserveTrailingSlash' | 'usePortInRedirects'> = {},
): string {
  const drop =
    options.preserveTrailingSlash !== true && requestUri.charCodeAt(requestUri.length - 1) === 0x2f;
  const uri = drop ? requestUri.slice(0, -1) : requestUri;
  const port = options.usePortInRedirects === true ? ':443' : '';
  return `https://${hostWithoutPort(rawHost)}${port}${uri}`;
}

/**
 * The Location of an app-root redirect: `$scheme://$http_host<app-root>`, a numeric port kept. nginx
 * echoes the Host whole; one whose "port" is not digits (`x.example:@evil.com`) would name another
 * host to a browser (and to a cache in front), so such a port is left out.
 */
export function appRootLocation(scheme: string, rawHost: string, appRoot: string): string {
  const name = hostWithoutPort(rawHost);
  const port = rawHost.slice(name.length);
  return `${scheme}://${name}${/^:[0-9]*$/.test(port) ? port : ''}${appRoot}`;
}

/**
 * nginx's absolute_redirect (on unless relative-redirects): a `return` Location that starts with `/`
 * becomes `$scheme://<host><location>`, host from the Host header as nginx validated it (lower case,
 * without its port or a final dot; the server name when there is none: server_name_in_redirect off);
 * the listener's port only with use-port-in-redirects (port_in_redirect) and when it is not the
 * scheme's own. Other Locations are sent as written.
 */
export function absoluteLocation(
  location: string,
  request: { scheme: string; rawHost: string; serverName: string; serverPort: number },
  options: { relative?: boolean | undefined; usePortInRedirects?: boolean | undefined },
): string {
  if (options.relative === true || location.charCodeAt(0) !== 0x2f) return location;
  const host =
    request.rawHost === ''
      ? request.serverName
      : (normalizeHost(request.rawHost) ?? hostWithoutPort(request.rawHost));
  const ownPort = request.scheme === 'https' ? 443 : 80;
  const port =
    options.usePortInRedirects === true && request.serverPort !== ownPort ? `:${request.serverPort}` : '';
  return `${request.scheme}://${host}${port}${location}`;
}
