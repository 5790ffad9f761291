// The request headers the backend receives, as ingress-nginx's template sets them:
//   Host                     $best_http_host
//   X-Request-ID             $req_id (the incoming X-Request-ID if any)
//   X-Real-IP                $remote_addr (the resolved client)
//   X-Forwarded-For          $remote_addr, or with use-forwarded-headers + compute-full-forwarded-for
//                            "<incoming X-Forwarded-For>, <peer or PROXY address>" ($full_x_forwarded_for)
//   X-Forwarded-Host         $best_http_host
//   X-Forwarded-Port         $pass_port: 443 for the HTTPS listener's own port (ingress-nginx's
//                            --https-port), whichever port that listener binds
//   X-Forwarded-Proto, X-Forwarded-Scheme, X-Scheme   $pass_access_scheme
//   X-Original-Forwarded-For the incoming `forwarded-for-header` value (absent when there was none)
//   X-Original-Forwarded-Host the incoming `forwarded-host-header` value, X-Forwarded-Host by default
//                            (ingress-nginx >= 1.13; absent when there was none)
//   Proxy                    removed (httpoxy)
// Hop-by-hop headers (Connection and the names it lists, Keep-Alive, Proxy-Connection, TE,
// Trailer, Transfer-Encoding, Upgrade) are not copied: the proxy sets its own framing, and
// RUNTIME adds Upgrade/Connection back for WebSocket.
// Better than ingress-nginx: X-Forwarded-Proto/Host/Port are believed only from a trusted hop, the
// same hop whose X-Forwarded-For is believed (ingress-nginx takes them from anyone once
// use-forwarded-headers is on). Behind a PROXY load balancer that hop is the PROXY header's client.

import { parseBasicCredentials } from './access/basic-credentials.ts';
import type { GatewaySettings, LocationModel } from '../config/model.ts';
import { expandVariables, type LocationVars, type RequestVars } from './access/nginx-vars.ts';
import { HOP_BY_HOP_FIELDS } from '../net/hop-by-hop.ts';

export type IncomingHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** What ingress-nginx calls $pass_access_scheme, $best_http_host and $pass_port. */
export interface ForwardedView {
  /** $pass_access_scheme: the scheme the client used, as far as we can trust it. */
  scheme: string;
  /** The scheme for routing decisions (ssl-redirect fires only for exactly `http`). */
  routeScheme: 'http' | 'https';
  /** $best_http_host: the Host header (or the trusted X-Forwarded-Host), port kept. */
  host: string;
  /** $pass_port */
  port: string;
}

export interface ForwardedInput {
  incoming: IncomingHeaders;
  /**
   * Whether the hop that sent the request's headers is trusted (ClientIp.headersTrusted: the PROXY
   * header's client behind a PROXY load balancer, else the TCP peer).
   */
  headersTrusted: boolean;
  settings: GatewaySettings;
  /** The scheme of the client connection to the gateway. */
  scheme: 'http' | 'https';
  /** The gateway listener's port. */
  serverPort: number;
  /** The Host header as received ('' when absent). */
  host: string;
  /** The destination port of an accepted PROXY header (its source is the client). */
  proxyDestinationPort?: number | null;
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

const PORT_DIGITS = /^\d{1,5}$/;

/** $pass_access_scheme, $best_http_host and $pass_port for one request (lua_ingress.rewrite). */
export function forwardedView(input: ForwardedInput): ForwardedView {
  const { settings, incoming } = input;
  let scheme: string = input.scheme;
  let host = input.host;
  let port =
    settings.useProxyProtocol && input.proxyDestinationPort != null
      ? `${input.proxyDestinationPort}`
      : `${input.serverPort}`;
  if (settings.useForwardedHeaders && input.headersTrusted) {
    const proto = single(incoming['x-forwarded-proto']);
    if (proto !== undefined && proto !== '') scheme = proto;
    // A port is digits: `@evil.example` from even a trusted hop would make a redirect's Location
    // (`http://host:@evil.example/`) open evil.example (ingress-nginx copies it as sent).
    const fport = single(incoming['x-forwarded-port']);
    if (fport !== undefined && PORT_DIGITS.test(fport)) port = fport;
    const fhost = single(incoming['x-forwarded-host']);
    if (fhost !== undefined && fhost !== '') {
      const comma = fhost.indexOf(',');
      host = comma < 0 ? fhost : fhost.slice(0, comma);
    }
  }
  if (settings.useProxyProtocol && input.proxyDestinationPort === 443) scheme = 'https';
  return { scheme, routeScheme: scheme === 'http' ? 'http' : 'https', host, port };
}

// Not copied from the client: the hop-by-hop fields, and these request-side ones.
const NOT_COPIED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP_FIELDS,
  // The h2c upgrade's settings (RFC 7540 3.2.1): connection-specific, meaningless on the backend's hop.
  'http2-settings',
  // The gateway answers the client's expectation itself (nginx's proxy module clears Expect on every
  // proxied request, upgrades and error pages included).
  'expect',
  // httpoxy (CVE-2016-5385): a backend's CGI would read it as HTTP_PROXY, its outgoing proxy.
  'proxy',
  // ingress-nginx overwrites it with the client it resolved (PROXY + use-forwarded-headers); keepip
  // resolves the client itself and has no such header: a client's own would pass as the resolved one.
  'x-forwarded-for-proxy-protocol',
  // The gateway's own (nginx's proxy_set_header), set by it or not at all: a client's would be a forgery.
  'host',
  'x-request-id',
  'x-real-ip',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-proto',
  'x-forwarded-scheme',
  'x-scheme',
  'x-original-forwarded-for',
  'x-original-forwarded-host',
]);

// Headers that tell a backend which URL, host or scheme the client "really" asked for. A backend that
// believes them (IIS and Symfony route by X-Original-URL, Spring and others read Forwarded, Rails
// X-Forwarded-Ssl) would serve a path or scheme the router never checked, so they are passed on only
// from a trusted hop, like X-Forwarded-Host.
const FROM_TRUSTED_HOPS_ONLY = new Set([
  'forwarded',
  'x-original-url',
  'x-rewrite-url',
  'x-forwarded-uri',
  'x-forwarded-prefix',
  'x-forwarded-path',
  'x-forwarded-server',
  'x-forwarded-ssl',
  'x-url-scheme',
  'front-end-https',
]);

/** Lower-case header names listed in a Connection header (`close` and `keep-alive` included). */
function connectionTokens(value: string | string[] | undefined): string[] | null {
  if (value === undefined) return null;
  const text = Array.isArray(value) ? value.join(',') : value;
  const tokens: string[] = [];
  for (const t of text.split(',')) {
    const name = t.trim().toLowerCase();
    if (name !== '') tokens.push(name);
  }
  return tokens.length === 0 ? null : tokens;
}

export interface UpstreamHeadersInput extends ForwardedInput {
  /** The resolved client address ($remote_addr). */
  clientAddress: string;
  /** $req_id: see requestIdFor() in request-id.ts. */
  requestId: string;
  /** $namespace, $service_name… of the location, for proxy-set-headers values. */
  location?: LocationVars | null;
  /** The socket peer ($realip_remote_addr), appended by compute-full-forwarded-for. */
  peerAddress?: string;
  /** The source of an accepted PROXY header ($proxy_protocol_addr). */
  proxyProtocolAddress?: string | null;
  /** The gateway's HTTPS listener port (ConnectionInfo.httpsPort). */
  httpsPort?: number | null;
  /** $request_uri, $request_method and $server_name, for variables in proxy-set-headers values. */
  requestUri?: string;
  method?: string;
  serverName?: string;
}

/**
 * proxy-set-headers (ingress-nginx's "custom headers to proxied server", after its own): each value
 * with its nginx variables expanded; an empty result sends no such header, as nginx does.
 */
function setConfiguredHeaders(
  out: Record<string, string | string[]>,
  headers: Readonly<Record<string, string>>,
  input: UpstreamHeadersInput,
  view: ForwardedView,
): void {
  let vars: RequestVars | null = null;
  for (const name in headers) {
    const template = headers[name]!;
    if (template.includes('$')) {
      vars ??= {
        scheme: input.scheme,
        passAccessScheme: view.scheme,
        httpHost: input.host,
        host: input.host.replace(/:\d+$/, '').toLowerCase(),
        requestUri: input.requestUri ?? '',
        method: input.method ?? '',
        remoteAddr: input.clientAddress,
        // $remote_user: the Basic user the client sent, as nginx reads it (verified where auth-type
        // basic guards the location; a client's own elsewhere, as there).
        remoteUser: parseBasicCredentials(input.incoming.authorization)?.user ?? '',
        serverName: input.serverName ?? '',
        headers: input.incoming,
        bestHttpHost: view.host,
        peerAddress: input.peerAddress ?? input.clientAddress,
        proxyProtocolAddr: input.proxyProtocolAddress ?? '',
        serverPort: `${input.serverPort}`,
        reqId: input.requestId,
        location: input.location ?? null,
      };
    }
    const value = vars === null || !template.includes('$') ? template : expandVariables(template, vars);
    if (value === '') delete out[name];
    else out[name] = value;
  }
}

/**
 * $pass_port as lua_ingress.rewrite sets it: the port from forwardedView, except that the HTTPS
 * listener's port is sent as 443, the port clients use in front of it (a pod listening on 8443 is
 * still https://host/ to the backend building URLs).
 */
function passPort(port: string, httpsPort: number | null | undefined): string {
  return httpsPort != null && port === `${httpsPort}` ? '443' : port;
}

/**
 * What a location sets on the upstream request beyond the defaults: upstream-vhost (Host) and
 * x-forwarded-prefix (already resolved by the router). Touches nothing for a location with neither.
 */
export function applyLocationHeaders(
  headers: Record<string, string | string[]>,
  location: LocationModel | null,
  forwardedPrefix: string | null | undefined,
): void {
  if (location === null) return;
  if (location.upstreamVhost !== undefined) headers.host = location.upstreamVhost;
  // connection-proxy-header: the upstream client writes this value instead of its own keep-alive.
  if (location.connectionHeader !== undefined) headers.connection = location.connectionHeader;
  // As nginx's proxy_set_header: an empty value sends no such header, the client's own included.
  if (forwardedPrefix === '') delete headers['x-forwarded-prefix'];
  else if (forwardedPrefix != null) headers['x-forwarded-prefix'] = forwardedPrefix;
}

/**
 * The headers to send upstream (lower-case names). The client's own headers are copied except
 * the ones listed above; the gateway's X-Real-IP / X-Forwarded-* always replace the client's.
 */
export function buildUpstreamHeaders(input: UpstreamHeadersInput): Record<string, string | string[]> {
  const { incoming, settings } = input;
  const out: Record<string, string | string[]> = {};
  const dropped = connectionTokens(incoming.connection);
  const trustedHop = input.headersTrusted && settings.useForwardedHeaders;
  for (const name in incoming) {
    if (NOT_COPIED.has(name)) continue;
    if (dropped?.includes(name)) continue;
    if (!trustedHop && FROM_TRUSTED_HOPS_ONLY.has(name)) continue;
    const value = incoming[name];
    if (value !== undefined) out[name] = value;
  }
  const view = forwardedView(input);
  out.host = view.host;
  // generate-request-id off and none from the client: nginx sends no header for an empty value.
  if (input.requestId !== '') out['x-request-id'] = input.requestId;
  out['x-real-ip'] = input.clientAddress;
  if (settings.useForwardedHeaders && settings.computeFullForwardedFor) {
    // $full_x_forwarded_for: the incoming chain plus the address that connected to us.
    const appended =
      (settings.useProxyProtocol ? input.proxyProtocolAddress : undefined) ??
      input.peerAddress ??
      input.clientAddress;
    const chain = incoming['x-forwarded-for'];
    const text = Array.isArray(chain) ? chain.join(', ') : chain;
    out['x-forwarded-for'] = text === undefined || text === '' ? appended : `${text}, ${appended}`;
  } else {
    out['x-forwarded-for'] = input.clientAddress;
  }
  out['x-forwarded-host'] = view.host;
  out['x-forwarded-port'] = passPort(view.port, input.httpsPort);
  out['x-forwarded-proto'] = view.scheme;
  out['x-forwarded-scheme'] = view.scheme;
  out['x-scheme'] = view.scheme;
  const original = incoming[settings.forwardedForHeader.toLowerCase()];
  if (original !== undefined && original !== '') {
    out['x-original-forwarded-for'] = Array.isArray(original) ? original.join(', ') : original;
  }
  const originalHost = incoming[settings.forwardedHostHeader?.toLowerCase() ?? 'x-forwarded-host'];
  if (originalHost !== undefined && originalHost !== '') {
    out['x-original-forwarded-host'] = Array.isArray(originalHost) ? originalHost.join(', ') : originalHost;
  }
  if (settings.server?.proxyAddOriginalUriHeader === true && input.requestUri !== undefined) {
    out['x-original-uri'] = input.requestUri;
  }
  if (settings.proxySetHeaders !== undefined)
    setConfiguredHeaders(out, settings.proxySetHeaders, input, view);
  return out;
}
