// A runtime snapshot: everything the gateway needs to answer requests, compiled once from a Topology
// and never changed afterwards. A reload builds a new one and swaps it in; a request keeps the
// snapshot it started with until it ends. A topology that cannot be served safely is rejected here,
// with the issue that made it so, and the previous snapshot keeps serving (invariant I7).
import { randomBytes } from 'node:crypto';
import type {
  BackendRef,
  ConfigIssue,
  GatewaySettings,
  LocationModel,
  ProxySslModel,
  ServiceModel,
  Topology,
} from '../config/model.ts';
import { externalNamePort, findService, findServicePort } from '../config/lookup.ts';
import { DEFAULT_TLS_SESSIONS, TICKET_KEY_BYTES } from '../k8s/tls-sessions.ts';
import { CidrSet } from '../net/cidr-set.ts';
import { createClientIpResolver } from '../net/client-ip.ts';
import {
  type AccessLogFormatter,
  compileLogFormat,
  describeLogFormat,
  type LogEscape,
} from './access-log.ts';
import { type ClientTimeouts, clientTimeoutsOf } from './client-timeouts.ts';
import { type CompiledRoutes, compileRoutes } from './router.ts';
import { buildCertificateStore, type CertificateStore } from './tls.ts';
import {
  type BalancedUpstream,
  type ConnectionRegistry,
  type PoolSpec,
  tlsKey,
  type UpstreamMember,
  type UpstreamTlsProblem,
  upstreamTlsProblem,
} from './upstream.ts';
import { keepaliveLimitsOf } from './upstream-keepalive.ts';

/** Error codes that ingress-nginx also tolerates: the object or location is served in a safe degraded way. */
const CONTAINED_ERRORS = new Set([
  // Invalid allow/deny lists fail closed: that location answers 503 to everyone.
  'INVALID_SOURCE_RANGE',
  // Unusable auth or limit annotations fail closed: 503 (auth-tls: 403) for that location or host.
  'ACCESS_CONFIG_DENIED',
  // FCGI backends: the location has no backend and answers 503 (gRPC is proxied over HTTP/2).
  'UNSUPPORTED_BACKEND_PROTOCOL',
  // ssl-ciphers / ssl-protocols that cannot be used: the handshakes they apply to are refused.
  'INVALID_TLS_SETTINGS',
  // A rule or path that cannot be routed is skipped; its requests get 404 like any unknown path.
  'INVALID_HOST',
  'INVALID_PATH',
  // An Ingress over the ConfigMap's annotation limits is not served; the others are.
  'ANNOTATION_TOO_RISKY',
  'ANNOTATION_VALUE_BLOCKED',
]);

export type SnapshotErrorCode =
  | 'GATEWAY_CONFIG_INVALID'
  | 'GATEWAY_TRUSTED_CIDRS_INVALID'
  | 'GATEWAY_ROUTES_FAILED';

export interface SnapshotError {
  code: SnapshotErrorCode;
  message: string;
  /** The issues that made the config unusable, each naming file, document and field. */
  issues: readonly ConfigIssue[];
}

export type ClientIpResolution = ReturnType<ReturnType<typeof createClientIpResolver>['resolve']>;

export interface GatewaySnapshot {
  readonly version: number;
  readonly topology: Topology;
  readonly settings: GatewaySettings;
  readonly routes: CompiledRoutes;
  /** Peers trusted to send PROXY headers and forwarded headers. */
  readonly trusted: CidrSet;
  readonly trustedCidrs: readonly string[];
  /** Where the trusted list came from: --trusted-proxies, the ConfigMap, or the (trust-everyone) default. */
  readonly trustSource: 'flag' | 'configmap' | 'default';
  readonly resolveClientIp: (input: {
    peerAddress: string;
    proxySource: string | null;
    proxied?: boolean;
    headers: Record<string, string | string[] | undefined>;
  }) => ClientIpResolution;
  readonly formatAccessLine: AccessLogFormatter;
  readonly unknownLogVariables: readonly string[];
  readonly certificates: CertificateStore;
  /** The deadlines of new client connections: the ConfigMap's, with SnapshotOptions.clientTimeouts over them. */
  readonly clientTimeouts: ClientTimeouts;
  /** Upstream for a location (or the default backend), by identity; absent means "no backend": 503. */
  upstreamFor(location: LocationModel): BalancedUpstream | undefined;
  /** The canary's upstream of a location that has one (LocationModel.canary). */
  canaryUpstreamFor(location: LocationModel): BalancedUpstream | undefined;
  /** The default-backend annotation's upstream of a location that has one (custom-errors.ts). */
  errorUpstreamFor(location: LocationModel): BalancedUpstream | undefined;
  /** backend-protocol AUTO_HTTP: the HTTPS upstream of the location, for requests that came over TLS. */
  httpsUpstreamFor(location: LocationModel): BalancedUpstream | undefined;
  readonly defaultUpstream: BalancedUpstream | null;
  /** Upstream names with no ready endpoint, for the start-up line. */
  readonly emptyUpstreams: readonly string[];
  /** proxy-ssl-* settings OpenSSL refuses (every request to those backends fails: 502), for the log. */
  readonly upstreamTlsProblems: readonly UpstreamTlsProblem[];
  /** Requests currently being served on this snapshot. */
  inflight: number;
  /**
   * Upgraded connections (WebSockets) admitted on this snapshot. Once it is retired, those still open
   * are closed worker-shutdown-timeout later, as nginx's old workers close theirs: rules a reload
   * tightened reach a tunnel within that bound.
   */
  readonly tunnels: Set<{ destroy(): void }>;
  /** Set when the retirement closed the tunnels still open. */
  readonly tunnelsClosedByReload: boolean;
  /** Releases the pooled connections this snapshot holds once it is retired and idle. */
  retire(): void;
  readonly retired: boolean;
}

export interface SnapshotOptions {
  version: number;
  /** --trusted-proxies: overrides proxy-real-ip-cidr when given. */
  trustedProxies: readonly string[] | null;
  /** `text`: the ConfigMap's log-format-upstream; `json`: keepip's JSON line. */
  logFormat: 'text' | 'json';
  connections: ConnectionRegistry;
  /**
   * Where to connect for an endpoint the manifests name; default: the endpoint itself. `keepip up`
   * uses it when its hops listen on free ports instead of the manifests' ones.
   */
  upstreamAddress?: ((address: string, port: number) => { address: string; port: number }) | undefined;
  /** Client deadlines that override the ConfigMap's (GatewayOptions; tests use short ones). */
  clientTimeouts?: Partial<ClientTimeouts> | undefined;
  /** The key session tickets are sealed with when the ConfigMap names none; default: this process's own. */
  ticketKey?: Buffer | undefined;
}

let processTicketKey: Buffer | null = null;

/** 48 random bytes made once per process: tickets stay readable across reloads. */
export function ownTicketKey(): Buffer {
  processTicketKey ??= randomBytes(TICKET_KEY_BYTES);
  return processTicketKey;
}

/** keepip's JSON access log line (--log-format json): every value a string except the three numbers. */
export const JSON_LOG_FORMAT =
  '{"time":"$time_iso8601","remote_addr":"$remote_addr","realip_remote_addr":"$realip_remote_addr",' +
  '"proxy_protocol_addr":"$proxy_protocol_addr","request":"$request","status":$status,' +
  '"body_bytes_sent":$body_bytes_sent,"request_time":$request_time,"host":"$host",' +
  '"http_referer":"$http_referer","http_user_agent":"$http_user_agent",' +
  '"namespace":"$namespace","ingress_name":"$ingress_name","service_name":"$service_name",' +
  '"proxy_upstream_name":"$proxy_upstream_name","upstream_addr":"$upstream_addr",' +
  '"upstream_status":"$upstream_status","upstream_response_time":"$upstream_response_time",' +
  '"req_id":"$req_id"}';

/** The issues that make a topology unservable (see CONTAINED_ERRORS for those that do not). */
export function blockingIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return issues.filter((issue) => issue.severity === 'error' && !CONTAINED_ERRORS.has(issue.code));
}

/** Where a backend's traffic goes: ready endpoints of the Service port, or its ClusterIP with service-upstream. */
export function resolveBackendTargets(
  services: readonly ServiceModel[],
  backend: BackendRef,
  serviceUpstream: boolean,
): { address: string; port: number }[] {
  const service = findService(services, backend.service);
  if (service === undefined) return [];
  if (service.type === 'ExternalName') return externalNameTarget(service, backend);
  const servicePort = findServicePort(service, backend.port);
  if (servicePort === undefined) return [];
  if (serviceUpstream) {
    if (service.clusterIP === null || service.clusterIP === 'None' || service.clusterIP === '') return [];
    return [{ address: service.clusterIP, port: servicePort.port }];
  }
  const endpoints = service.endpoints[servicePort.name] ?? [];
  return endpoints.filter((e) => e.ready).map((e) => ({ address: e.address, port: e.port }));
}

/**
 * An ExternalName Service's one member, as ingress-nginx's externalNamePorts: the port named or numbered
 * by the Ingress, its targetPort when that is a number (else its port), and without such a port on the
 * Service, the Ingress's port number. A port name the Service does not have: no member.
 */
function externalNameTarget(service: ServiceModel, backend: BackendRef): { address: string; port: number }[] {
  const address = service.externalName;
  if (address === null || address === undefined) return [];
  const servicePort = findServicePort(service, backend.port);
  if (servicePort !== undefined) return [{ address, port: externalNamePort(servicePort) }];
  return typeof backend.port === 'number' ? [{ address, port: backend.port }] : [];
}

type SnapshotStep<T> = { ok: true; value: T } | { ok: false; error: SnapshotError };

function refused(
  code: SnapshotError['code'],
  message: string,
  issues: ConfigIssue[] = [],
): { ok: false; error: SnapshotError } {
  return { ok: false, error: { code, message, issues } };
}

/** Who may hand over a client address: --trusted-proxies, else proxy-real-ip-cidr (or its default). */
function trustOf(
  settings: GatewaySettings,
  options: SnapshotOptions,
): SnapshotStep<{
  trusted: CidrSet;
  trustedCidrs: readonly string[];
  trustSource: GatewaySnapshot['trustSource'];
}> {
  const trustedCidrs = options.trustedProxies ?? settings.trustedCidrs;
  const trustSource =
    options.trustedProxies !== null ? 'flag' : settings.trustedCidrsDefaulted ? 'default' : 'configmap';
  const built = CidrSet.build(trustedCidrs);
  if (!built.ok) {
    const what = trustSource === 'flag' ? '--trusted-proxies' : 'proxy-real-ip-cidr';
    return refused('GATEWAY_TRUSTED_CIDRS_INVALID', `trusted proxies (${what}): ${built.error.message}`);
  }
  return { ok: true, value: { trusted: built.set, trustedCidrs, trustSource } };
}

function routesOf(topology: Topology): SnapshotStep<CompiledRoutes> {
  try {
    return { ok: true, value: compileRoutes(topology.gateway) };
  } catch (error) {
    return refused('GATEWAY_ROUTES_FAILED', `routes: ${(error as Error).message}`);
  }
}

/** The access log line: the ConfigMap's log-format-upstream (or keepip's JSON line), compiled once. */
function accessLogOf(settings: GatewaySettings, options: SnapshotOptions) {
  const format = options.logFormat === 'json' ? JSON_LOG_FORMAT : settings.logFormatUpstream;
  return {
    formatAccessLine: compileLogFormat(format, { escape: accessLogEscape(settings, options) }),
    unknownLogVariables: describeLogFormat(format).unknown,
  };
}

/** As ingress-nginx's template: escape-none wins over escape-json; keepip's own JSON line is JSON. */
export function accessLogEscape(
  settings: GatewaySettings,
  options: Pick<SnapshotOptions, 'logFormat'>,
): LogEscape {
  if (options.logFormat === 'json') return 'json';
  if (settings.logFormatEscapeNone) return 'none';
  return settings.logFormatEscapeJson ? 'json' : 'default';
}

/** proxy-ssl-protocols / -ciphers OpenSSL refuses, each distinct setting checked once per snapshot. */
function upstreamTlsChecker(): { check(tls: ProxySslModel): void; found(): UpstreamTlsProblem[] } {
  const checked = new Map<string, UpstreamTlsProblem | null>();
  return {
    check(tls) {
      const settings = `${tls.secret}|${tls.protocols.join(' ')}|${tls.ciphers}`;
      if (!checked.has(settings)) checked.set(settings, upstreamTlsProblem(tls));
    },
    found: () => [...checked.values()].filter((p) => p !== null),
  };
}

/**
 * Keyed by the Service itself, not its upstream name: two Services can share one (shop/api-v1 and
 * shop-api/v1 are both shop-api-v1-80), and neither may get the other's endpoints.
 */
function balancedKey(backend: BackendRef, settings: string, tls: ProxySslModel | undefined): string {
  const tlsPart = tls === undefined ? '' : tlsKey(tls);
  return `${backend.service.namespace}/${backend.service.name}:${backend.port}|${settings}|${tlsPart}`;
}

/**
 * The snapshot's upstreams: one per (Service and port, protocol, connect timeout, service-upstream), their
 * members acquired from the shared connection registry (and listed in `acquired`, to release on retire).
 */
function upstreamsOf(topology: Topology, options: SnapshotOptions) {
  const acquired: PoolSpec[] = [];
  const cursors = new Map<string, { value: number }>();
  const balanced = new Map<string, BalancedUpstream>();
  const byLocation = new Map<LocationModel, BalancedUpstream>();
  const byCanary = new Map<LocationModel, BalancedUpstream>();
  const byDefaultBackend = new Map<LocationModel, BalancedUpstream>();
  const byAutoHttps = new Map<LocationModel, BalancedUpstream>();
  const empty = new Set<string>();
  const tlsProblems = upstreamTlsChecker();
  const upstreamOf = (
    backend: BackendRef,
    protocol: LocationModel['backendProtocol'],
    connectTimeoutMs: number,
    serviceUpstream: boolean,
    tls?: ProxySslModel,
  ): BalancedUpstream => {
    // proxy-ssl-*: only HTTPS backends speak TLS with these settings; other settings, other pools.
    const withTls = protocol === 'HTTPS' ? tls : undefined;
    if (withTls !== undefined) tlsProblems.check(withTls);
    const key = balancedKey(backend, `${protocol}|${connectTimeoutMs}|${serviceUpstream}`, withTls);
    const existing = balanced.get(key);
    if (existing !== undefined) return existing;
    const cursor = cursors.get(backend.upstreamName) ?? { value: 0 }; // shared by its pools
    cursors.set(backend.upstreamName, cursor);
    const members: UpstreamMember[] = [];
    for (const named of resolveBackendTargets(topology.services, backend, serviceUpstream)) {
      const target = options.upstreamAddress?.(named.address, named.port) ?? named;
      const spec: PoolSpec = { protocol, address: target.address, port: target.port, connectTimeoutMs };
      if (withTls !== undefined) spec.tls = withTls;
      if (protocol === 'HTTPS') spec.keepalive = keepaliveLimitsOf(topology.gateway.settings);
      acquired.push(spec);
      members.push(options.connections.acquire(spec));
    }
    if (members.length === 0) empty.add(backend.upstreamName);
    const upstream: BalancedUpstream = { name: backend.upstreamName, members, cursor };
    balanced.set(key, upstream);
    return upstream;
  };
  for (const vhost of topology.gateway.virtualHosts) {
    for (const l of vhost.locations) {
      // default-backend: spoken to in plain HTTP, as ingress-nginx's custom default backend; also
      // where the location has no backend of its own (a host's root, a Service not found).
      if (l.defaultBackend !== undefined)
        byDefaultBackend.set(l, upstreamOf(l.defaultBackend, 'HTTP', l.proxyConnectTimeoutMs, false));
      if (l.backend === null) continue;
      byLocation.set(
        l,
        upstreamOf(l.backend, l.backendProtocol, l.proxyConnectTimeoutMs, l.serviceUpstream, l.proxySsl),
      );
      // AUTO_HTTP: the same backend in HTTPS too, for requests that came over TLS.
      if (l.autoHttp === true)
        byAutoHttps.set(
          l,
          upstreamOf(l.backend, 'HTTPS', l.proxyConnectTimeoutMs, l.serviceUpstream, l.proxySsl),
        );
      // canary: the alternative backend, spoken to as the main one, its proxy-ssl-* included (as
      // ingress-nginx's balancer picks it inside the main location): src/gateway/canary.ts.
      if (l.canary !== undefined)
        byCanary.set(
          l,
          upstreamOf(
            l.canary.backend,
            l.backendProtocol,
            l.proxyConnectTimeoutMs,
            l.serviceUpstream,
            l.proxySsl,
          ),
        );
    }
  }
  const defaultBackend = topology.gateway.defaultBackend;
  const defaultUpstream =
    defaultBackend === null
      ? null
      : upstreamOf(defaultBackend, 'HTTP', topology.gateway.settings.proxyConnectTimeoutMs, false);
  return {
    acquired,
    byLocation,
    byCanary,
    byDefaultBackend,
    byAutoHttps,
    defaultUpstream,
    emptyUpstreams: [...empty].sort(),
    upstreamTlsProblems: tlsProblems.found(),
  };
}

export function buildSnapshot(
  topology: Topology,
  options: SnapshotOptions,
): { ok: true; snapshot: GatewaySnapshot } | { ok: false; error: SnapshotError } {
  const blocking = blockingIssues(topology.issues);
  if (blocking.length > 0) {
    const count = `${blocking.length} error${blocking.length === 1 ? '' : 's'}`;
    return refused('GATEWAY_CONFIG_INVALID', `${count} in the configuration`, blocking);
  }
  const settings = topology.gateway.settings;
  const trust = trustOf(settings, options);
  if (!trust.ok) return trust;
  const routes = routesOf(topology);
  if (!routes.ok) return routes;
  const { trusted, trustedCidrs, trustSource } = trust.value;
  const resolver = createClientIpResolver({ ...settings, trusted }); // the ConfigMap's switches, by name
  const upstreams = upstreamsOf(topology, options);
  let retired = false;
  let released = false;
  const snapshot: GatewaySnapshot = {
    version: options.version,
    topology,
    settings,
    routes: routes.value,
    trusted,
    trustedCidrs,
    trustSource,
    resolveClientIp: (input) => resolver.resolve(input),
    ...accessLogOf(settings, options),
    certificates: buildCertificateStore(
      topology.gateway.virtualHosts,
      settings.serverTls,
      topology.gateway.defaultCertificate,
      {
        model: settings.tlsSessions ?? DEFAULT_TLS_SESSIONS,
        gatewayKey: options.ticketKey ?? ownTicketKey(),
      },
    ),
    clientTimeouts: clientTimeoutsOf(settings, options.clientTimeouts),
    upstreamFor: (location) => upstreams.byLocation.get(location),
    canaryUpstreamFor: (location) => upstreams.byCanary.get(location),
    errorUpstreamFor: (location) => upstreams.byDefaultBackend.get(location),
    httpsUpstreamFor: (location) => upstreams.byAutoHttps.get(location),
    defaultUpstream: upstreams.defaultUpstream,
    emptyUpstreams: upstreams.emptyUpstreams,
    upstreamTlsProblems: upstreams.upstreamTlsProblems,
    inflight: 0,
    tunnels: new Set(),
    tunnelsClosedByReload: false,
    get retired() {
      return retired;
    },
    retire() {
      if (!retired) closeTunnelsLater(snapshot);
      retired = true;
      if (released || snapshot.inflight > 0) return;
      released = true;
      for (const spec of upstreams.acquired) options.connections.release(spec);
    },
  };
  return { ok: true, snapshot };
}

const tunnelClosing = new WeakSet<GatewaySnapshot>();

/** Once `snapshot` is retired: its tunnels still open after worker-shutdown-timeout are closed (once). */
function closeTunnelsLater(snapshot: GatewaySnapshot): void {
  if (snapshot.tunnels.size === 0 || tunnelClosing.has(snapshot)) return;
  tunnelClosing.add(snapshot);
  const timer = setTimeout(() => {
    (snapshot as { tunnelsClosedByReload: boolean }).tunnelsClosedByReload = true;
    for (const tunnel of snapshot.tunnels) tunnel.destroy();
  }, snapshot.settings.workerShutdownTimeoutMs);
  timer.unref();
}

/**
 * An upgraded connection admitted on `snapshot`, held until it closes: one admitted after the
 * snapshot's retirement (its access stage answered late) gets the same bound, and one admitted after
 * that bound ran out is closed at once.
 */
export function holdTunnel(
  snapshot: GatewaySnapshot,
  socket: { destroy(): void; once(event: 'close', listener: () => void): unknown },
): void {
  snapshot.tunnels.add(socket);
  socket.once('close', () => snapshot.tunnels.delete(socket));
  if (snapshot.tunnelsClosedByReload) socket.destroy();
  else if (snapshot.retired) closeTunnelsLater(snapshot);
}

/** Called when a request on `snapshot` ends: the last request on a retired snapshot releases its pools. */
export function requestEnded(snapshot: GatewaySnapshot): void {
  snapshot.inflight -= 1;
  if (snapshot.retired && snapshot.inflight === 0) snapshot.retire();
}
