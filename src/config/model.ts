// The one model every config source produces (manifest files today, the Kubernetes API later) and
// every runtime consumes: `keepip up` instantiates all of it, `keepip gateway` and `keepip lb` their
// part, and the doctor simulates it. Plain, readonly data: no sockets, no classes, JSON-serialisable.
//
// Addresses are strings in canonical form (IPv4 dotted quad, IPv6 RFC 5952, IPv4-mapped IPv6 folded
// to IPv4). CIDRs are normalised ("10.0.0.0/8", host bits masked, bare IPs as /32 or /128).

import type { GatewayIssueCode } from '../gateway/errors.ts';
import type { K8sIssueCode } from '../k8s/errors.ts';
import type { ClientPath } from './client-path.ts';
import type { Http2Settings } from './http2.ts';
import type { RequestMetricsSettings } from './request-metrics.ts';
import type { ServerSettings } from './server-settings.ts';
import type { StreamSettings } from './stream.ts';

/** Where an object came from, so every error and warning can name the file, the document and the field. */
export interface Origin {
  file: string;
  /** 1-based index of the YAML document in the file. */
  document: number;
  kind: string;
  namespace: string;
  name: string;
}

/**
 * Every code a ConfigIssue can carry: the issue codes of the modules that report issues, each from its
 * own table (src/k8s/errors.ts, src/gateway/errors.ts), so an issue code cannot go unregistered.
 */
export type ConfigIssueCode = K8sIssueCode | GatewayIssueCode;

export interface ConfigIssue {
  severity: 'error' | 'warning' | 'info';
  /** Stable code, e.g. UNSUPPORTED_ANNOTATION, INVALID_SOURCE_RANGE, UNKNOWN_LB_ANNOTATION. */
  code: ConfigIssueCode;
  message: string;
  origin?: Origin;
  /** The field path inside the object, e.g. `metadata.annotations["nginx.ingress.kubernetes.io/app-root"]`. */
  field?: string;
}

export interface ObjectRef {
  namespace: string;
  name: string;
}

/** A parsed allow or deny list. An invalid value fails closed: the location answers 503 to everyone. */
export type SourceRangeModel =
  | {
      valid: true;
      cidrs: readonly string[];
      raw: string;
      from: 'annotation' | 'configmap';
      /** No entry can match a client (a ConfigMap list of IPv4-mapped entries, as nginx reads them):
       * the list still restricts, to nobody, where an empty one restricts nothing. */
      matchesNobody?: true;
    }
  | { valid: false; raw: string; error: string; from: 'annotation' | 'configmap' };

// ---------------------------------------------------------------------------------------------
// Load balancer hop (a Service of type LoadBalancer and the cloud LB it asks for)

export type LbProvider =
  | 'aws-nlb'
  | 'aws-elb'
  | 'digitalocean'
  | 'hetzner'
  | 'linode'
  | 'scaleway'
  | 'openstack'
  | 'oracle'
  | 'azure'
  | 'gke'
  | 'metallb'
  | 'generic';

export type ProxyProtocolVersion = 'v1' | 'v2';

export interface HealthCheckModel {
  protocol: 'tcp' | 'http';
  /** 'traffic-port' or a port number, as the AWS annotation allows. */
  port: number | 'traffic-port';
  path: string;
  intervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
}

export interface ServicePortModel {
  name: string;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  port: number;
  /** A number, or a named container port resolved through the endpoints. */
  targetPort: number | string;
  nodePort: number | null;
}

export interface LoadBalancerModel {
  id: string; // "namespace/name" of the Service
  service: ObjectRef;
  origin: Origin;
  provider: LbProvider;
  scheme: 'internal' | 'internet-facing';
  /** instance: to NodePorts through kube-proxy; ip: straight to the pods. */
  targetType: 'instance' | 'ip';
  proxyProtocol: ProxyProtocolVersion | null;
  /** Whether targets see the client's address (AWS preserve_client_ip.enabled and its defaults). */
  preserveClientIp: boolean;
  /**
   * Whether a target that turns unhealthy has its open flows reset (AWS
   * target_health_state.unhealthy.connection_termination.enabled); absent: true, the NLB's default.
   */
  unhealthyConnectionTermination?: boolean;
  /** The address clients connect to (status.loadBalancer.ingress[0].ip, else a documented default). */
  listenAddress: string;
  /** The LB's own private address: what a target sees when the client IP is not preserved. */
  sourceAddress: string;
  ports: readonly ServicePortModel[];
  externalTrafficPolicy: 'Cluster' | 'Local';
  healthCheckNodePort: number | null;
  healthCheck: HealthCheckModel;
  loadBalancerSourceRanges: readonly string[];
  /** Entries of the source ranges that are not CIDRs (left out above): such an LB is never set up. */
  invalidSourceRanges?: readonly string[];
  /** PrivateLink emulation: when set, PROXY v2 headers carry the AWS VPC endpoint id TLV (0xEA). */
  vpcEndpointId: string | null;
  /** True when the status carries a hostname or ipMode: Proxy (in-cluster clients then go through the LB). */
  statusHasHostnameOrProxyMode: boolean;
  /** The selector of the Service: which pods (the gateway, usually) are behind it. */
  selector: Readonly<Record<string, string>>;
  /** Annotation keepip.dev/client-path: how clients reach this LB (the doctor's default for --via); null or absent when not set. */
  clientPath?: ClientPath | null;
  /** The Service's annotations as written, for consumers that need a provider detail the model does not carry. */
  annotations?: Readonly<Record<string, string>>;
}

// ---------------------------------------------------------------------------------------------
// kube-proxy hop

export interface NodeModel {
  name: string;
  /** InternalIP, mapped to a loopback address for `keepip up`. */
  address: string;
}

// ---------------------------------------------------------------------------------------------
// Backends

export interface EndpointModel {
  address: string;
  port: number;
  ready: boolean;
  nodeName: string | null;
}

export interface ServiceModel {
  ref: ObjectRef;
  origin: Origin;
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  clusterIP: string | null;
  ports: readonly ServicePortModel[];
  selector: Readonly<Record<string, string>>;
  /** Endpoints by service port name ('' for an unnamed port). */
  endpoints: Readonly<Record<string, readonly EndpointModel[]>>;
  /**
   * An ExternalName Service's name (trailing dot trimmed) or IP literal: its one upstream member, resolved
   * per new connection. Null or absent: not ExternalName, refused (localhost, invalid) or disabled.
   */
  externalName?: string | null;
}

// ---------------------------------------------------------------------------------------------
// Gateway (the ingress controller): settings from the controller ConfigMap, routes from Ingresses

export interface GatewaySettings {
  configMap: ObjectRef | null;
  useProxyProtocol: boolean;
  proxyProtocolHeaderTimeoutMs: number;
  /** proxy-real-ip-cidr: peers trusted to supply the client address. Default ["0.0.0.0/0"] (trusts everyone, warned). */
  trustedCidrs: readonly string[];
  /** True when trustedCidrs came from the default rather than the ConfigMap. */
  trustedCidrsDefaulted: boolean;
  useForwardedHeaders: boolean;
  forwardedForHeader: string;
  computeFullForwardedFor: boolean;
  enableRealIp: boolean;
  /** ConfigMap whitelist-source-range / denylist-source-range: defaults for locations without annotations. */
  defaultAllow: SourceRangeModel | null;
  defaultDeny: SourceRangeModel | null;
  blockCidrs: SourceRangeModel | null;
  sslRedirect: boolean;
  httpRedirectCode: 301 | 302 | 307 | 308;
  logFormatUpstream: string;
  logFormatEscapeJson: boolean;
  /** log-format-escape-none: values unescaped (control bytes still escaped); wins over escape-json. */
  logFormatEscapeNone: boolean;
  proxyBodySizeBytes: number;
  proxyConnectTimeoutMs: number;
  proxyReadTimeoutMs: number;
  proxySendTimeoutMs: number;
  /** client-header-timeout (nginx client_header_timeout): a request head must arrive within it. Default 60 s. */
  clientHeaderTimeoutMs: number;
  /**
   * large-client-header-buffers (nginx, "4 8k"): an HTTP/1 request line or header line may take one
   * buffer (`sizeBytes`), the whole head `count` of them. Absent: the default, 4 x 8 KiB.
   */
  largeClientHeaderBuffers?: { count: number; sizeBytes: number };
  /**
   * client-header-buffer-size (nginx, 1k): the buffer a head is read into first; a line that fits it
   * needs no large buffer, and the head may take it beside the large ones. Absent: 1 KiB.
   */
  clientHeaderBufferBytes?: number;
  /** client-body-timeout (nginx client_body_timeout): the longest wait between two reads of a request body. Default 60 s. */
  clientBodyTimeoutMs: number;
  /** keep-alive (nginx keepalive_timeout): idle time allowed between two requests; 0 disables keep-alive. Default 75 s. */
  keepAliveTimeoutMs: number;
  /** upstream-keepalive-*: nginx's keepalive, keepalive_timeout, keepalive_requests, keepalive_time (src/gateway/upstream-keepalive.ts). */
  /** allow-cross-namespace-resources: annotations may name Secrets and ConfigMaps of other namespaces. */
  allowCrossNamespaceResources: boolean;
  /** max-worker-connections: client connections one process holds at most (nginx's worker_connections); 0: no limit. */
  maxWorkerConnections: number;
  /** proxy-stream-timeout: tcp-services connections idle this long either way are closed (nginx's stream proxy_timeout). */
  proxyStreamTimeoutMs: number;
  /** worker-shutdown-timeout: how long a shutdown waits for in-flight requests (nginx's worker_shutdown_timeout). */
  workerShutdownTimeoutMs: number;
  upstreamKeepaliveConnections: number;
  upstreamKeepaliveTimeoutMs: number;
  upstreamKeepaliveRequests: number;
  upstreamKeepaliveTimeMs: number;
  /**
   * limit-conn-zone-variable: what rate and connection limits key on, a template of nginx request
   * variables (`$http_x_api_key`); absent: the resolved client address (`$binary_remote_addr`).
   */
  limitKey?: string;
  /** limit-req-status-code / limit-conn-status-code (503 by default): the answer of a rate or connection limit. */
  limitReqStatusCode?: number;
  limitConnStatusCode?: number;
  /** limit-rate / limit-rate-after (KB): defaults of the annotations. */
  limitRateKb?: number;
  limitRateAfterKb?: number;
  /** global-auth-*: external auth for every location without its own auth-url (enable-global-auth, no-auth-locations). */
  globalAuth?: ExternalAuthModel | null;
  /** no-auth-locations: path prefixes exempt from basic and external auth (default "/.well-known/acme-challenge"). */
  noAuthLocations?: string;
  /** use-http2, http2-max-*, keep-alive-requests (src/k8s/http2-settings.ts); absent: the defaults of src/config/http2.ts. */
  http2?: Http2Settings;
  /** log-format-stream, disable-stream-access-log, proxy-stream-next-upstream*: tcp-services (src/config/stream.ts); absent: the defaults. */
  stream?: StreamSettings;
  /** keep-alive-requests (nginx keepalive_requests): requests per HTTP/1.1 connection, then it closes (1000). */
  keepAliveRequests?: number;
  /** hsts*, force-ssl-redirect, no-tls-redirect-locations, block-*, skip-access-log-urls; absent: the defaults of src/config/server-settings.ts. */
  server?: ServerSettings;
  /** service-upstream: the default of the annotation (false). */
  serviceUpstream?: boolean;
  /**
   * proxy-ssl-location-only: proxy-ssl-* apply only to the Ingress's own locations (true), not also as
   * the server's to the host's other locations (false, ingress-nginx's default).
   */
  proxySslLocationOnly?: boolean;
  /** enable-access-log-for-default-backend: log what the controller's own default backend answers (false). */
  enableAccessLogForDefaultBackend?: boolean;
  /** strict-validate-path-type: Exact and Prefix paths limited to ingress-nginx's characters (absent: true). */
  strictValidatePathType?: boolean;
  /** forwarded-host-header: the header X-Original-Forwarded-Host copies (X-Forwarded-Host). */
  forwardedHostHeader?: string;
  /** add-headers: response headers on every response (from the ConfigMap it names; lower-case names). */
  addHeaders?: Readonly<Record<string, string>>;
  /** proxy-set-headers: request headers to every backend (nginx variables in values are expanded). */
  proxySetHeaders?: Readonly<Record<string, string>>;
  /** global-allowed-response-headers: the names a custom-headers ConfigMap may set. */
  allowedResponseHeaders?: readonly string[];
  /** disable-access-log / disable-http-access-log: no access log line at all. */
  disableAccessLog?: boolean;
  /** proxy-redirect-from / -to: defaults of each annotation half alone ("off" absent). */
  proxyRedirectFrom?: string;
  proxyRedirectTo?: string;
  /** proxy-cookie-domain / -path: defaults of the annotations ("off" absent). */
  proxyCookieDomain?: { from: string; to: string };
  proxyCookiePath?: { from: string; to: string };
  /** proxy-http-version: the default of the annotation. */
  proxyHttpVersion?: '1.0' | '1.1';
  /** proxy-request-buffering (default on) and client-body-buffer-size (default 8k): defaults of the annotations. */
  requestBuffering?: boolean;
  clientBodyBufferBytes?: number;
  /** custom-http-errors / disable-proxy-intercept-errors: defaults of the annotations. */
  customHttpErrors?: readonly number[];
  disableProxyInterceptErrors?: boolean;
  /** proxy-next-upstream, -tries, -timeout and retry-non-idempotent: defaults of the annotations. */
  nextUpstream?: NextUpstreamModel;
  /** retry-non-idempotent "true": `non_idempotent` joins every location's conditions, its own too. */
  retryNonIdempotent?: boolean;
  /** load-balance, upstream-hash-by (+ -subset, -subset-size): defaults of the annotations. */
  loadBalance?: 'round_robin' | 'ewma';
  upstreamHashBy?: UpstreamHashByModel;
  /** preserve-trailing-slash / use-port-in-redirects: defaults of the annotations. */
  preserveTrailingSlash?: boolean;
  usePortInRedirects?: boolean;
  /** relative-redirects: the default of the annotation (nginx's absolute_redirect off at http level). */
  relativeRedirects?: boolean;
  /** ssl-ciphers, ssl-protocols: what TLS handshakes negotiate (src/k8s/server-tls.ts); absent: ingress-nginx's defaults. */
  serverTls?: ServerTlsModel;
  /** ssl-session-tickets, -timeout, -ticket-key: how TLS sessions resume (src/k8s/tls-sessions.ts); absent: the defaults. */
  tlsSessions?: TlsSessionModel;
  /** use-gzip, enable-brotli and their keys; absent: responses pass as the backend sent them. */
  compression?: CompressionModel;
  /** error-log-level: lines below it are not written; absent: notice (ingress-nginx's default). */
  errorLogLevel?: NginxLogLevel;
  /** enable-syslog, syslog-host, syslog-port: both logs to this syslog server over UDP; absent: stdout/stderr. */
  syslog?: SyslogTarget;
  /** enable-opentelemetry, otlp-collector-*, otel-*: spans of requests (src/k8s/tracing-settings.ts); absent: the defaults. */
  tracing?: TracingSettings;
  /** ssl-reject-handshake: a TLS handshake for a name no host has (or without one) is refused. */
  sslRejectHandshake?: boolean;
  /** enable-ocsp: the certificate's OCSP response is stapled for clients that ask (src/gateway/ocsp-stapler.ts). */
  enableOcsp?: boolean;
  /** worker-processes: `auto` or a count of serving processes; absent when the ConfigMap does not say (src/workers/). */
  workerProcesses?: number | 'auto';
  /** ConfigMap keys present but not implemented: reported at start-up and on reload. */
  unsupportedKeys: readonly string[];
  /**
   * annotations-risk-level (ingress-nginx 1.12+, default High): an Ingress using an annotation of a
   * higher risk is not served. Absent: the default.
   */
  annotationsRiskLevel?: 'Low' | 'Medium' | 'High' | 'Critical';
  /** annotation-value-word-blocklist: an Ingress whose annotation value contains one is not served. */
  annotationValueWordBlocklist?: readonly string[];
}

export type PathType = 'Exact' | 'Prefix' | 'ImplementationSpecific';

/**
 * How a path is served: ingress-nginx serves an ImplementationSpecific path, and one without a pathType,
 * as Prefix (SetDefaultNGINXPathType runs on every Ingress before a location is made).
 */
export type ServedPathType = Exclude<PathType, 'ImplementationSpecific'>;

/**
 * ingress-nginx's $proxy_upstream_name of the default server's backend: --default-backend-service's,
 * or the 404 of a location without one.
 */
export const DEFAULT_UPSTREAM_NAME = 'upstream-default-backend';

export interface BackendRef {
  service: ObjectRef;
  /** Service port by number or name. */
  port: number | string;
  /** ingress-nginx's $proxy_upstream_name: `<namespace>-<service>-<port>`. */
  upstreamName: string;
}

/**
 * mirror-target and its companions (src/k8s/mirror-annotations.ts): where a copy of each request of a
 * location goes. The scheme and authority are written out in the annotation (never from a variable);
 * the rest of the target and the Host may hold nginx variables, expanded per request.
 */
export interface MirrorModel {
  /** mirror-target as written, e.g. `https://test.env.com$request_uri`. */
  target: string;
  /** `scheme://authority` of the target, literal: the expanded target must still start with it. */
  origin: string;
  scheme: 'http' | 'https';
  /** The host name or IP to connect to (an IPv6 address without brackets). */
  hostname: string;
  port: number;
  /** The Host header: mirror-host, else the target's host name (without its port), as ingress-nginx. */
  host: string;
  /** mirror-request-body: the body goes to the mirror too (on, the default). */
  requestBody: boolean;
}

export type TraceSampler = 'AlwaysOn' | 'AlwaysOff' | 'TraceIdRatioBased';

/** The controller ConfigMap's OpenTelemetry keys, as ingress-nginx writes them into its module's config. */
export interface TracingSettings {
  /** enable-opentelemetry: every location traces unless its Ingress says otherwise. */
  enabled: boolean;
  /** opentelemetry-trust-incoming-span: a request's traceparent is the span's parent. */
  trustIncomingSpan: boolean;
  /** opentelemetry-operation-name: the span name; '' names it after the location. */
  operationName: string;
  /** otlp-collector-host / -port: where spans go over OTLP/gRPC; null host: nowhere (context is still propagated). */
  collector: { host: string; port: number } | null;
  serviceName: string;
  sampler: TraceSampler;
  samplerRatio: number;
  samplerParentBased: boolean;
  maxQueueSize: number;
  scheduleDelayMs: number;
  maxExportBatchSize: number;
}

/** An Ingress's enable-opentelemetry (only when set), with its trust and operation name when given. */
export interface LocationTracing {
  enabled: boolean;
  trustIncomingSpan?: boolean;
  operationName?: string;
}

export interface LocationModel {
  ingress: ObjectRef;
  ingressOrigin: Origin;
  /** Ingress creationTimestamp, ISO string or null: older Ingresses win merges. */
  createdAt: string | null;
  path: string;
  pathType: ServedPathType;
  /** Set when use-regex (or a rewrite on the host) makes this path a case-insensitive regex anchored at the start. */
  regex: string | null;
  backend: BackendRef | null;
  /**
   * ingress-nginx's root location of a host none of whose rules covers "/" (IsDefBackend): it carries
   * the annotations of the Ingress that created the host (its allowlist too), and an admitted request
   * gets the default backend's answer (--default-backend-service, or 404). Absent: an ordinary one.
   */
  defaultBackendRoot?: true;
  allow: SourceRangeModel | null;
  deny: SourceRangeModel | null;
  rewriteTarget: string | null;
  appRoot: string | null;
  sslRedirect: boolean;
  forceSslRedirect: boolean;
  serviceUpstream: boolean;
  /** GRPC / GRPCS: HTTP/2 to the backend, cleartext or TLS (src/gateway/grpc-proxy.ts). */
  backendProtocol: 'HTTP' | 'HTTPS' | 'GRPC' | 'GRPCS';
  proxyBodySizeBytes: number;
  proxyConnectTimeoutMs: number;
  proxyReadTimeoutMs: number;
  proxySendTimeoutMs: number;
  /** Rate limits, basic and external auth, satisfy (src/k8s/access-annotations.ts); absent: none. */
  access?: LocationAccessModel;
  /** permanent-redirect / temporal-redirect: answered before anything else of the location; absent: none. */
  redirect?: RedirectModel;
  /** enable-cors and cors-*: absent when CORS is off. */
  cors?: CorsModel;
  /** upstream-vhost: the Host header sent to the backend instead of the client's. */
  upstreamVhost?: string;
  /** x-forwarded-prefix: sent as X-Forwarded-Prefix when the location rewrites (`$N` are its captures). */
  xForwardedPrefix?: string;
  /** custom-headers: response headers of this location (lower-case names), replacing the backend's. */
  customHeaders?: Readonly<Record<string, string>>;
  /** enable-access-log: "false" (only then set): this location's requests get no access log line. */
  accessLog?: false;
  /** enable-opentelemetry and its two companions on the Ingress; absent: the ConfigMap decides. */
  tracing?: LocationTracing;
  /** A canary Ingress's backend for the same host and path (src/k8s/traffic-annotations.ts); absent: none. */
  canary?: CanaryModel;
  /** Sticky sessions of the location's upstream (the Ingresses that proxy to it with affinity: cookie). */
  affinity?: AffinityModel;
  /** This location's Ingress asked for the affinity: it sets the cookie (others only honour it). */
  setsAffinityCookie?: true;
  /** preserve-trailing-slash: the ssl-redirect Location keeps a final `/`. */
  preserveTrailingSlash?: true;
  /** use-port-in-redirects: the ssl-redirect Location names the HTTPS port (443). */
  usePortInRedirects?: true;
  /** relative-redirects (annotation, else ConfigMap): nginx's absolute_redirect off in this location. */
  relativeRedirects?: true;
  /** connection-proxy-header: the Connection header sent to the backend (`close` or `keep-alive`). */
  connectionHeader?: 'close' | 'keep-alive';
  /** upstream-hash-by (+ -subset, -subset-size), or the ConfigMap's: consistent hashing on a request value. */
  upstreamHashBy?: UpstreamHashByModel;
  /** load-balance (or the ConfigMap's): ewma; absent is round robin. */
  loadBalance?: 'ewma';
  /** proxy-next-upstream, -tries, -timeout (or the ConfigMap's); absent: ingress-nginx's defaults. */
  nextUpstream?: NextUpstreamModel;
  /** default-backend: answers when the location has no endpoint (and the errors, see errorsToDefaultBackend). */
  defaultBackend?: BackendRef;
  /**
   * The Ingress's own custom-http-errors beside default-backend: its error pages come from
   * default-backend while it has endpoints (ingress-nginx's DefaultBackendUpstreamName). Absent: from
   * the catch-all default backend, as the ConfigMap's codes' server-wide error_page sends them.
   */
  errorsToDefaultBackend?: true;
  /** custom-http-errors (or the ConfigMap's): these statuses are answered by the error backend. */
  customHttpErrors?: readonly number[];
  /** disable-proxy-intercept-errors: only the gateway's own errors go to the error backend. */
  disableProxyInterceptErrors?: true;
  /** proxy-redirect-from / -to: the backend's Location and Refresh URLs starting with `from` start with `to`. */
  proxyRedirect?: { from: string; to: string };
  /** proxy-cookie-domain / proxy-cookie-path: the backend's Set-Cookie Domain equal to / Path starting with `from`. */
  proxyCookieDomain?: { from: string; to: string };
  proxyCookiePath?: { from: string; to: string };
  /** proxy-http-version "1.0" (or the ConfigMap's): HTTP/1.0 to plain-HTTP backends; absent is 1.1. */
  proxyHttpVersion?: '1.0';
  /** proxy-request-buffering "off" (or the ConfigMap's): the body streams to the backend as it arrives; absent: read whole first (on). */
  requestBuffering?: false;
  /** client-body-buffer-size (or the ConfigMap's) when not 8k: the part of a buffered body kept in memory. */
  clientBodyBufferBytes?: number;
  /** proxy-ssl-*: TLS towards an HTTPS backend (client certificate, verification, SNI, versions). */
  proxySsl?: ProxySslModel;
  /** backend-protocol AUTO_HTTP (backendProtocol HTTP): requests that came over TLS go to the backend in HTTPS. */
  autoHttp?: true;
  /** mirror-target / mirror-host / mirror-request-body: a copy of each proxied request (src/gateway/mirror.ts). */
  mirror?: MirrorModel;
}

/** proxy-ssl-secret and its companions (src/k8s/proxy-ssl.ts). */
export interface ProxySslModel {
  /** "namespace/name" of the Secret. */
  secret: string;
  /** ca.crt: the CAs a verified backend certificate must chain to. */
  caPem: string;
  /** tls.crt / tls.key: the client certificate, when the Secret has both. */
  certPem: string | null;
  keyPem: string | null;
  /** proxy-ssl-verify on. */
  verify: boolean;
  verifyDepth: number;
  /** proxy-ssl-name: the name verified (and sent by SNI); null: nginx's $proxy_host (upstream_balancer). */
  name: string | null;
  /** proxy-ssl-server-name on: send SNI. */
  serverName: boolean;
  /** TLSv1.2, TLSv1.3. */
  protocols: readonly string[];
  /** OpenSSL cipher list (DEFAULT). */
  ciphers: string;
}

/**
 * ssl-ciphers and ssl-protocols (ConfigMap), ssl-ciphers and ssl-prefer-server-ciphers (annotations, per
 * host): what a TLS handshake with the gateway may negotiate (src/gateway/tls.ts).
 */
export interface ServerTlsModel {
  /** OpenSSL cipher list for TLS 1.2 and older; TLS 1.3 suites stay the defaults unless `TLS_*` names are listed. */
  ciphers: string;
  /** The versions offered, among TLSv1, TLSv1.1, TLSv1.2, TLSv1.3. */
  protocols: readonly string[];
  /** ssl_prefer_server_ciphers: the server's order wins (ingress-nginx: on). */
  preferServerCiphers: boolean;
  /** ssl-ecdh-curve: the key exchange groups, colon-separated; absent: OpenSSL's (nginx's `auto`). */
  ecdhCurve?: string;
  /** ssl-dh-param: the DH parameters (PEM) of the DHE suites; absent: no DHE, as nginx without ssl_dhparam. */
  dhParam?: string;
  /** Why the cipher list or the versions cannot be used: the handshakes they apply to are refused, never widened. */
  invalidCiphers?: string;
  invalidProtocols?: string;
  invalidEcdhCurve?: string;
}

/** nginx's log levels (error_log's), most severe first. */
export type NginxLogLevel = 'emerg' | 'alert' | 'crit' | 'error' | 'warn' | 'notice' | 'info' | 'debug';

/** A syslog server: an IP address (canonical) or a lower-case DNS name, and a UDP port. */
export interface SyslogTarget {
  host: string;
  port: number;
}

/** use-gzip / enable-brotli and their keys (src/k8s/compression-settings.ts); absent: no compression. */
export interface CompressionModel {
  gzip: CompressionCodecModel | null;
  brotli: CompressionCodecModel | null;
  /** gzip-disable: nginx map entries (`~*regex`) on the User-Agent; a match gets no compression. */
  disable: readonly string[];
}

export interface CompressionCodecModel {
  level: number;
  /** Responses with a smaller Content-Length are sent as they are. */
  minLength: number;
  /** MIME types without parameters, lower case; `*` is any. text/html is always compressed. */
  types: readonly string[];
}

/** TLS session resumption, as the ConfigMap's ssl-session-* keys set it (ingress-nginx's defaults: a 10m cache, no tickets, 10m). */
export interface TlsSessionModel {
  /** ssl-session-tickets: issue session tickets (default false, as ingress-nginx). */
  tickets: boolean;
  /** ssl-session-timeout: how long a session may be resumed (the ticket lifetime), in seconds (default 600). */
  timeoutSeconds: number;
  /** ssl-session-ticket-key: the 48-byte key every ticket is sealed with, base64; null: the gateway's random one. */
  ticketKey: string | null;
  /** ssl-session-cache: TLS 1.2 sessions kept by id (default true). */
  cache: boolean;
  /** ssl-session-cache-size: at most this many bytes of session data (default 10m). */
  cacheSizeBytes: number;
}

/** enable-cors with its cors-* values, defaults applied (ingress-nginx's cors parser). */
export interface CorsModel {
  /** `['*']`: every origin; otherwise origins (`scheme://host[:port]`, one `*.` label wildcard, or `null`). */
  allowOrigin: readonly string[];
  allowMethods: string;
  allowHeaders: string;
  allowCredentials: boolean;
  /** '' when not set. */
  exposeHeaders: string;
  maxAge: number;
}

/** canary and canary-*: the alternative backend of a location and when a request goes there. */
export interface CanaryModel {
  /** The canary Ingress. */
  ingress: ObjectRef;
  backend: BackendRef;
  /** canary-by-header: `always` / `never`, or canary-by-header-value / -pattern. */
  header: string | null;
  headerValue: string | null;
  headerPattern: string | null;
  /**
   * canary-by-header-pattern can backtrack without bound: it is never run, and a header matches it
   * never (the cookie and the weight decide then, as after ingress-nginx's no-match).
   */
  headerPatternRefused?: true;
  /** canary-by-cookie: `always` / `never`. */
  cookie: string | null;
  /** canary-weight out of canary-weight-total (100 unless more). */
  weight: number;
  weightTotal: number;
  /** The canary Ingress's affinity-canary-behavior is legacy: the canary is not sticky. */
  legacyAffinity?: true;
}

/** affinity: cookie and session-cookie-*: sticky sessions on the location's upstream. */
export interface AffinityModel {
  /** balanced (default) or persistent. */
  mode: 'balanced' | 'persistent';
  cookieName: string;
  /** session-cookie-expires / -max-age: seconds; null when not set. */
  expires: number | null;
  maxAge: number | null;
  /** session-cookie-path: null means the location's path. */
  path: string | null;
  domain: string | null;
  /** session-cookie-secure: true always; false only on plain HTTP (HTTPS requests get Secure anyway). */
  secure: boolean;
  sameSite: string | null;
  conditionalSameSiteNone: boolean;
  changeOnFailure: boolean;
}

/** proxy-next-upstream, -tries, -timeout: when a request goes on to the next endpoint. */
export interface NextUpstreamModel {
  /** nginx's conditions: error, timeout, invalid_header, http_500…, non_idempotent, off. */
  conditions: readonly string[];
  /** Endpoints tried in all, the first included; 0: no limit. */
  tries: number;
  /** No further try once this long has passed since the first (0: no limit). */
  timeoutMs: number;
}

/** upstream-hash-by: nginx variables whose value picks the endpoint; with a subset, a group of them. */
export interface UpstreamHashByModel {
  /** e.g. `$request_uri`, `$remote_addr$http_x_user`. */
  by: string;
  /** upstream-hash-by-subset-size (default 3) when upstream-hash-by-subset is true; null otherwise. */
  subsetSize: number | null;
}

/** A redirect a location answers instead of proxying (nginx's `return <code> <url>`). */
export interface RedirectModel {
  /** An absolute URL, or (permanent-redirect) a path nginx makes absolute unless `relative`. */
  url: string;
  /** relative-redirects (annotation, else ConfigMap): nginx's absolute_redirect off. */
  relative?: true;
  /** 300-308 (permanent-redirect-code, default 301) or 300-307 (temporal-redirect-code, default 302). */
  code: number;
}

// ---------------------------------------------------------------------------------------------
// Who may reach a location beyond its source ranges: rate and connection limits, basic auth,
// external auth, `satisfy`, client certificates (ingress-nginx's access-control annotations).

/** limit-rps / limit-rpm / limit-connections of one Ingress. */
export interface RateLimitModel {
  /** Counted per Ingress (namespace/name) and client address, shared by its locations, as ingress-nginx's zones. */
  zone: string;
  rps: number;
  rpm: number;
  connections: number;
  /** limit-burst-multiplier (default 5): burst = limit × multiplier. */
  burstMultiplier: number;
  /** limit-allowlist (alias limit-whitelist): clients never limited. */
  exempt: SourceRangeModel | null;
}

/** One user of an htpasswd file (auth-file) or an auth-map Secret: the hash as written. */
export interface HtpasswdEntry {
  user: string;
  hash: string;
}

export interface BasicAuthModel {
  realm: string;
  /** The Secret, "namespace/name". */
  secret: string;
  secretType: 'auth-file' | 'auth-map';
  users: readonly HtpasswdEntry[];
}

/** auth-url and its companions, or the ConfigMap's global-auth-* keys. URLs may hold nginx variables. */
export interface ExternalAuthModel {
  url: string;
  method: string | null;
  signin: string | null;
  signinRedirectParam: string | null;
  responseHeaders: readonly string[];
  requestRedirect: string | null;
  cacheKey: string | null;
  /** auth-cache-duration entries, e.g. "200 202 401 5m". */
  cacheDurations: readonly string[];
  /** auth-proxy-set-headers: headers (from a ConfigMap) sent to the auth service. */
  proxySetHeaders: Readonly<Record<string, string>>;
  alwaysSetCookie: boolean;
  /** auth-keepalive, when the Ingress sets it (else keepip's own pool: 64 idle, 60 s, no request limit). */
  keepalive?: AuthKeepaliveModel;
  /** True when it comes from the ConfigMap's global-auth-url. */
  global: boolean;
}

/** auth-keepalive and its companions: the connections kept to the auth service, as nginx's upstream keepalive. */
export interface AuthKeepaliveModel {
  /** auth-keepalive: idle connections kept. */
  connections: number;
  /** auth-keepalive-requests: subrequests one connection carries before it is closed. */
  requests: number;
  /** auth-keepalive-timeout: how long an idle connection is kept. */
  timeoutMs: number;
}

export interface LocationAccessModel {
  rateLimit: RateLimitModel | null;
  basicAuth: BasicAuthModel | null;
  externalAuth: ExternalAuthModel | null;
  /** satisfy: with `any`, an allowlist match or a passed auth is enough. */
  satisfy: 'all' | 'any';
  /** Why the location fails closed (503), as ingress-nginx denies a location whose auth cannot be configured. */
  denied: { annotation: string; reason: string } | null;
  /** limit-rate / limit-rate-after (KB in the annotations): response bandwidth per request. */
  bandwidth?: { rateBytes: number; afterBytes: number } | null;
}

/** auth-tls-* of a host (server level in ingress-nginx: the first Ingress of the host that sets it). */
export interface ClientCertificateModel {
  ingress: ObjectRef;
  /** The CA Secret, "namespace/name". */
  secret: string;
  /** PEM of ca.crt; null with `error` set. */
  caPem: string | null;
  /** PEM of the Secret's ca.crl (nginx's ssl_crl): revoked client certificates are refused; null: none. */
  crlPem: string | null;
  verifyClient: 'on' | 'off' | 'optional' | 'optional_no_ca';
  verifyDepth: number;
  errorPage: string | null;
  passCertificate: boolean;
  /** auth-tls-match-cn: a regex ("CN=…") matched against the subject DN. */
  matchCn: string | null;
  /** The Secret cannot be used: every request to the host answers 403 (ingress-nginx's AuthTLSError). */
  error: string | null;
}

export interface TlsCertificateModel {
  secret: ObjectRef;
  hosts: readonly string[];
  certPem: string;
  keyPem: string;
}

export interface VirtualHostModel {
  /** Exact name, a single leading wildcard label (`*.example.com`), or '' for rules without a host. */
  host: string;
  tls: TlsCertificateModel | null;
  /** Sorted in ingress-nginx priority order: Exact, then Prefix by length; regex paths in order. */
  locations: readonly LocationModel[];
  /** auth-tls-*: client certificates asked for on this host (by SNI). */
  clientCertificate?: ClientCertificateModel | null;
  /** server-alias: more names served by this host (exact, `*.suffix` or `~regex`); absent: none. */
  aliases?: readonly string[];
  /** from-to-www-redirect: the other name (with or without `www.`), answered by a redirect to this host. */
  redirectFrom?: string;
  /** ssl-ciphers / ssl-prefer-server-ciphers of the first Ingress of the host that sets them, over the ConfigMap's. */
  serverTls?: ServerTlsModel;
  /**
   * ssl-passthrough (only with --enable-ssl-passthrough): TLS connections whose SNI is this host go,
   * unread, to the backend of its "/" location (src/gateway/passthrough.ts), under that location's
   * source-address rules.
   */
  sslPassthrough?: true;
}

export interface GatewayModel {
  ingressClass: string;
  settings: GatewaySettings;
  virtualHosts: readonly VirtualHostModel[];
  /** spec.defaultBackend of an Ingress, if any; otherwise 404. */
  defaultBackend: BackendRef | null;
  /** The controller's own Service(s) (the LoadBalancer Service whose selector matches the controller). */
  controllerServices: readonly ObjectRef[];
  /**
   * --default-ssl-certificate's Secret (the controller): served to names without a certificate of
   * their own. Absent: the generated one. Part of the snapshot, so a renewed Secret is a reload.
   */
  defaultCertificate?: DefaultCertificateModel;
  /** The controller's request metrics flags (src/config/request-metrics.ts); absent: ingress-nginx's defaults, no controller labels. */
  requestMetrics?: RequestMetricsSettings;
  /**
   * Ingresses of the class left out whole by the ConfigMap's annotation limits (annotations-risk-level,
   * annotation-value-word-blocklist), with the hosts they name: what explains a 404 there. Absent: none.
   */
  refusedIngresses?: readonly RefusedIngress[];
}

export interface RefusedIngress {
  ingress: ObjectRef;
  /** Their rules' hosts as written ('' for a rule without one). */
  hosts: readonly string[];
  /** The first reason: the code and the annotation it names. */
  code: 'ANNOTATION_TOO_RISKY' | 'ANNOTATION_VALUE_BLOCKED';
  annotation: string;
}

export type DefaultCertificateModel = Pick<TlsCertificateModel, 'secret' | 'certPem' | 'keyPem'>;

// ---------------------------------------------------------------------------------------------
// The whole thing

export interface Topology {
  loadBalancers: readonly LoadBalancerModel[];
  nodes: readonly NodeModel[];
  services: readonly ServiceModel[];
  gateway: GatewayModel;
  issues: readonly ConfigIssue[];
}
