// The ingress-nginx annotations and controller ConfigMap keys keepip implements, with their value
// syntax and defaults (ingress-nginx 1.12). Anything else under the ingress-nginx prefix, or any other
// ConfigMap key, is reported by name: never silently ignored.
import { ANNOTATION_RISK_CONFIGMAP_KEYS, applyAnnotationRiskSettings } from './annotation-risk.ts';
import type {
  ConfigIssue,
  GatewaySettings,
  LocationModel,
  MirrorModel,
  ObjectRef,
  Origin,
  SourceRangeModel,
} from '../config/model.ts';
import { ACCESS_ANNOTATIONS, ACCESS_CONFIGMAP_KEYS, applyAccessSettings } from './access-annotations.ts';
import {
  ANNOTATION_INDEX,
  CONFIGMAP_INDEX,
  type CatalogIndex,
  catalogMessage,
  nearestName,
} from './annotation-catalog.ts';
import {
  applyBodyBufferingSettings,
  BODY_BUFFERING_KEYS,
  bodyBufferingFor,
  readBodyBuffering,
} from './body-buffering.ts';
import { annotationField, formatFieldPath } from './field-path.ts';
import { HEADER_CONFIGMAP_KEYS } from './header-settings.ts';
import { applyHttp2Settings, HTTP2_CONFIGMAP_KEYS } from './http2-settings.ts';
import { readServerSettings, SERVER_SETTINGS_KEYS } from './server-settings.ts';
import { MIRROR_ANNOTATIONS, readMirror } from './mirror-annotations.ts';
import { describeOrigin } from './reader.ts';
import { PROXY_SSL_ANNOTATIONS } from './proxy-ssl.ts';
import { ROUTE_ANNOTATIONS, ROUTE_CONFIGMAP_KEYS } from './route-annotations.ts';
import { readServerTlsConfigMap, SERVER_TLS_ANNOTATIONS, SERVER_TLS_CONFIGMAP_KEYS } from './server-tls.ts';
import { applyTlsSessionSettings, TLS_SESSION_CONFIGMAP_KEYS } from './tls-sessions.ts';
import { applyCompressionSettings, COMPRESSION_CONFIGMAP_KEYS } from './compression-settings.ts';
import { applyStreamSettings, STREAM_CONFIGMAP_KEYS } from './stream-settings.ts';
import { applySyslogSettings, SYSLOG_CONFIGMAP_KEYS } from './syslog-settings.ts';
import { applyTracingSettings, TRACING_CONFIGMAP_KEYS } from './tracing-settings.ts';
import { isNginxLogLevel, NGINX_LOG_LEVELS } from '../config/log-levels.ts';
import { TRAFFIC_ANNOTATIONS, TRAFFIC_CONFIGMAP_KEYS } from './traffic-annotations.ts';
import { configMapSource, readBool, readNginxTime, readWhole, type ScalarSource } from './scalar-readers.ts';
import { mappedEntries, parseConfigMapSourceRange, resolveAccessRules } from './source-range.ts';
import {
  isHeaderName,
  parseGoBool,
  parseGoDurationMs,
  parseGoInt,
  isIngressNginxAnnotationSize,
  parseNginxBufferSize,
  parseWrittenBodySize,
  parseUint,
} from './values.ts';
import { parseNginxTimeMs } from '../config/duration.ts';
import { nginxArgument, nginxArguments } from '../config/nginx-token.ts';

export const NGINX_ANNOTATION_PREFIX = 'nginx.ingress.kubernetes.io/';

/** Annotation names (without the prefix) keepip implements. */
export const SUPPORTED_ANNOTATIONS: readonly string[] = [
  'allowlist-source-range',
  'whitelist-source-range',
  'denylist-source-range',
  'rewrite-target',
  'use-regex',
  'ssl-redirect',
  'force-ssl-redirect',
  'app-root',
  'service-upstream',
  'backend-protocol',
  'proxy-body-size',
  'proxy-connect-timeout',
  'proxy-read-timeout',
  'proxy-send-timeout',
  // Rate limits, basic and external auth, satisfy, client certificates: src/k8s/access-annotations.ts.
  ...ACCESS_ANNOTATIONS,
  // Redirects, aliases and what requests and responses carry: src/k8s/route-annotations.ts.
  ...ROUTE_ANNOTATIONS,
  // Canaries: src/k8s/traffic-annotations.ts.
  ...TRAFFIC_ANNOTATIONS,
  // TLS towards HTTPS backends: src/k8s/proxy-ssl.ts.
  ...PROXY_SSL_ANNOTATIONS,
  // What TLS handshakes negotiate per host: src/k8s/server-tls.ts.
  ...SERVER_TLS_ANNOTATIONS,
  // proxy-request-buffering, client-body-buffer-size: src/k8s/body-buffering.ts.
  ...BODY_BUFFERING_KEYS,
  // mirror-target, mirror-host, mirror-request-body: src/k8s/mirror-annotations.ts.
  ...MIRROR_ANNOTATIONS,
];

/** Controller ConfigMap keys keepip implements. */
export const SUPPORTED_CONFIGMAP_KEYS: readonly string[] = [
  'use-proxy-protocol',
  'proxy-protocol-header-timeout',
  'proxy-real-ip-cidr',
  'use-forwarded-headers',
  'forwarded-for-header',
  'compute-full-forwarded-for',
  'enable-real-ip',
  'whitelist-source-range',
  'denylist-source-range',
  'block-cidrs',
  'ssl-redirect',
  'http-redirect-code',
  'log-format-upstream',
  'log-format-escape-json',
  'access-log-params',
  'log-format-escape-none',
  'error-log-level',
  'proxy-body-size',
  'proxy-connect-timeout',
  'proxy-read-timeout',
  'proxy-send-timeout',
  'client-header-timeout',
  'large-client-header-buffers',
  'client-header-buffer-size',
  'client-body-timeout',
  'keep-alive',
  'upstream-keepalive-connections',
  'worker-shutdown-timeout',
  'proxy-stream-timeout',
  'max-worker-connections',
  'allow-cross-namespace-resources',
  'upstream-keepalive-timeout',
  'upstream-keepalive-requests',
  'upstream-keepalive-time',
  // keepip never runs snippets, so "false" is exactly its behaviour; "true" is reported.
  'allow-snippet-annotations',
  'service-upstream',
  'proxy-ssl-location-only',
  'enable-access-log-for-default-backend',
  'strict-validate-path-type',
  'forwarded-host-header',
  'worker-processes',
  'ssl-reject-handshake',
  'enable-ocsp',
  ...ACCESS_CONFIGMAP_KEYS,
  // add-headers, proxy-set-headers, global-allowed-response-headers: src/k8s/header-settings.ts.
  ...HEADER_CONFIGMAP_KEYS,
  // disable-access-log, disable-http-access-log: src/k8s/route-annotations.ts.
  ...ROUTE_CONFIGMAP_KEYS,
  // load-balance, upstream-hash-by (+ -subset, -subset-size): src/k8s/traffic-annotations.ts.
  ...TRAFFIC_CONFIGMAP_KEYS,
  // HTTP/2 to clients: src/k8s/http2-settings.ts.
  ...HTTP2_CONFIGMAP_KEYS,
  // ssl-ciphers, ssl-protocols: src/k8s/server-tls.ts.
  ...SERVER_TLS_CONFIGMAP_KEYS,
  // ssl-session-tickets, -timeout, -ticket-key: src/k8s/tls-sessions.ts.
  ...TLS_SESSION_CONFIGMAP_KEYS,
  // use-gzip, gzip-*, enable-brotli, brotli-*: src/k8s/compression-settings.ts.
  ...COMPRESSION_CONFIGMAP_KEYS,
  // enable-syslog, syslog-host, syslog-port: src/k8s/syslog-settings.ts.
  ...SYSLOG_CONFIGMAP_KEYS,
  // enable-opentelemetry, otlp-collector-*, otel-*: src/k8s/tracing-settings.ts.
  ...TRACING_CONFIGMAP_KEYS,
  // log-format-stream, disable-stream-access-log, proxy-stream-next-upstream*: src/k8s/stream-settings.ts.
  ...STREAM_CONFIGMAP_KEYS,
  // proxy-request-buffering, client-body-buffer-size: src/k8s/body-buffering.ts.
  ...BODY_BUFFERING_KEYS,
  // hsts*, force-ssl-redirect, no-tls-redirect-locations, block-*, skip-access-log-urls: src/k8s/server-settings.ts.
  ...SERVER_SETTINGS_KEYS,
  // annotations-risk-level, annotation-value-word-blocklist: src/k8s/annotation-risk.ts.
  ...ANNOTATION_RISK_CONFIGMAP_KEYS,
];

/** ingress-nginx's default log-format-upstream. */
export const DEFAULT_LOG_FORMAT_UPSTREAM =
  '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id';

/** ingress-nginx 1.12 defaults, before any ConfigMap. */
export function defaultGatewaySettings(configMap: ObjectRef | null = null): GatewaySettings {
  return {
    configMap,
    useProxyProtocol: false,
    proxyProtocolHeaderTimeoutMs: 5_000,
    trustedCidrs: ['0.0.0.0/0'],
    trustedCidrsDefaulted: true,
    useForwardedHeaders: false,
    forwardedForHeader: 'X-Forwarded-For',
    computeFullForwardedFor: false,
    enableRealIp: false,
    defaultAllow: null,
    defaultDeny: null,
    blockCidrs: null,
    sslRedirect: true,
    httpRedirectCode: 308,
    logFormatUpstream: DEFAULT_LOG_FORMAT_UPSTREAM,
    logFormatEscapeJson: false,
    logFormatEscapeNone: false,
    proxyBodySizeBytes: NGINX_DEFAULT_BODY_SIZE,
    proxyConnectTimeoutMs: 5_000,
    proxyReadTimeoutMs: 60_000,
    proxySendTimeoutMs: 60_000,
    clientHeaderTimeoutMs: 60_000,
    clientBodyTimeoutMs: 60_000,
    keepAliveTimeoutMs: 75_000,
    workerShutdownTimeoutMs: 240_000,
    proxyStreamTimeoutMs: 600_000,
    maxWorkerConnections: 16_384,
    allowCrossNamespaceResources: false,
    upstreamKeepaliveConnections: 320,
    upstreamKeepaliveTimeoutMs: 60_000,
    upstreamKeepaliveRequests: 10_000,
    upstreamKeepaliveTimeMs: 3_600_000,
    unsupportedKeys: [],
  };
}

/** A whole number as nginx's ngx_atoi reads one word: digits only. */
const DIGITS = /^[0-9]+$/;

/** nginx's own client_max_body_size (1m): ingress-nginx's default, and where it writes none. */
const NGINX_DEFAULT_BODY_SIZE = 1024 ** 2;

/** Timeouts are whole seconds in ingress-nginx; a day is far beyond any sane proxy timeout. */
const MAX_TIMEOUT_SECONDS = 86_400;

/** Node's shortest timer (setTimeout's 0 is 1 ms): a backend deadline of 0 s. */
export const BACKEND_DEADLINE_AT_ONCE_MS = 1;

/**
 * proxy-connect/read/send-timeout in ms: 0 s is nginx's timer of 0, which expires at once (504),
 * never "no deadline" (what a timer of 0 is to a Node socket).
 */
const backendDeadlineMs = (ms: number) => (ms === 0 ? BACKEND_DEADLINE_AT_ONCE_MS : ms);

interface Sink {
  origin: Origin | null;
  issues: ConfigIssue[];
}

function push(
  sink: Sink,
  severity: ConfigIssue['severity'],
  code: ConfigIssue['code'],
  field: string,
  message: string,
): void {
  const where = sink.origin ? `${describeOrigin(sink.origin)} ${field}` : field;
  sink.issues.push({
    severity,
    code,
    message: `${where}: ${message}`,
    ...(sink.origin ? { origin: sink.origin } : {}),
    field,
  });
}

const ANNOTATION_CODES = {
  noEffect: 'ANNOTATION_NO_EFFECT',
  refused: 'ANNOTATION_REFUSED',
  unknown: 'UNSUPPORTED_ANNOTATION',
} as const;
const CONFIGMAP_CODES = {
  noEffect: 'CONFIGMAP_KEY_NO_EFFECT',
  refused: 'CONFIGMAP_KEY_REFUSED',
  unknown: 'UNSUPPORTED_CONFIGMAP_KEY',
} as const;

/**
 * Reports a name keepip does not read, by its classification (src/k8s/annotation-catalog.ts): an info
 * when it has no observable effect, a warning with the reason when it is refused, and a warning with
 * the nearest known name when ingress-nginx has no such name either (a typo).
 */
function reportName(
  sink: Sink,
  field: string,
  what: string,
  name: string,
  index: CatalogIndex,
  codes: typeof ANNOTATION_CODES | typeof CONFIGMAP_CODES,
): 'no-effect' | 'refused' | 'unknown' {
  const entry = index.get(name);
  if (entry === undefined) {
    const near = nearestName(name, index);
    const hint = near === null ? '' : `; did you mean "${near}"?`;
    push(sink, 'warning', codes.unknown, field, `${what} is not an ingress-nginx name; ignored${hint}`);
    return 'unknown';
  }
  if (entry.status === 'no-effect') {
    push(sink, 'info', codes.noEffect, field, `${what} ${catalogMessage(entry)}`);
    return 'no-effect';
  }
  // 'implemented' names are read by the parsers; the catalog test keeps both lists equal.
  push(sink, 'warning', codes.refused, field, `${what} ${catalogMessage(entry)}`);
  return 'refused';
}

/**
 * The controller ConfigMap's `data` → gateway settings. `configMap` null means none was found: the
 * defaults apply. Bad values are reported and keep the default, except the address lists, which fail
 * closed (an invalid proxy-real-ip-cidr trusts nobody; an invalid block/allow/deny list answers 503).
 */
export function parseControllerConfigMap(
  data: Readonly<Record<string, string>>,
  configMap: ObjectRef | null,
  origin: Origin | null,
  issues: ConfigIssue[],
): GatewaySettings {
  const s = defaultGatewaySettings(configMap);
  const v = configMapReader(data, { origin, issues });
  const unsupported = reportUnreadKeys(v);
  readClientAddressKeys(v, s);
  s.defaultAllow = v.list('whitelist-source-range', 'as-nginx');
  s.defaultDeny = v.list('denylist-source-range');
  s.blockCidrs = v.list('block-cidrs');
  s.sslRedirect = v.bool('ssl-redirect', s.sslRedirect);
  readRedirectCode(v, s);
  if (data['log-format-upstream'] !== undefined && data['log-format-upstream'].trim() !== '') {
    s.logFormatUpstream = data['log-format-upstream'];
  }
  s.logFormatEscapeJson = v.bool('log-format-escape-json', s.logFormatEscapeJson);
  s.logFormatEscapeNone = v.bool('log-format-escape-none', s.logFormatEscapeNone);
  readErrorLogLevel(v, s);
  readAccessLogParams(v);
  s.serviceUpstream = v.bool('service-upstream', false);
  if (v.bool('proxy-ssl-location-only', false)) s.proxySslLocationOnly = true;
  s.enableAccessLogForDefaultBackend = v.bool('enable-access-log-for-default-backend', false);
  if (!v.bool('strict-validate-path-type', true)) s.strictValidatePathType = false;
  const hostHeader = v.headerName('forwarded-host-header', 'X-Forwarded-Host');
  if (hostHeader !== null) s.forwardedHostHeader = hostHeader;
  readProxyLimitKeys(v, s);
  readWorkerProcesses(v, s);
  applyAccessSettings(data, s, {
    invalid: v.invalid,
    error: (key, message) => push(v.sink, 'error', 'ACCESS_CONFIG_DENIED', v.field(key), message),
    warning: (key, code, message) => push(v.sink, 'warning', code, v.field(key), message),
  });
  applyHttp2Settings(data, s, { invalid: v.invalid });
  const serverTls = readServerTlsConfigMap(data, origin, issues);
  if (serverTls !== undefined) s.serverTls = serverTls;
  applyTlsSessionSettings(data, s, { invalid: v.invalid });
  if (v.bool('ssl-reject-handshake', false)) s.sslRejectHandshake = true;
  if (v.bool('enable-ocsp', false)) s.enableOcsp = true;
  applyCompressionSettings(data, s, { invalid: v.invalid });
  applySyslogSettings(data, s, { invalid: v.invalid });
  applyTracingSettings(data, s, { invalid: v.invalid });
  applyStreamSettings(data, s, { invalid: v.invalid });
  applyBodyBufferingSettings(data, s, { invalid: v.invalid });
  applyAnnotationRiskSettings(data, s, (key, message) =>
    push(v.sink, 'warning', 'INVALID_CONFIGMAP_VALUE', v.field(key), message),
  );
  s.server = readServerSettings(data, {
    invalid: v.invalid,
    failClosed: (key, message) => push(v.sink, 'error', 'INVALID_CONFIGMAP_VALUE', v.field(key), message),
  });
  s.unsupportedKeys = unsupported;
  warnIfTrustingEveryone(v, s);
  return s;
}

/** worker-processes: `auto` or 1-1024 processes (src/workers/ runs them); a bad value leaves it unset. */
function readWorkerProcesses(v: ConfigMapReader, s: GatewaySettings): void {
  const text = v.data['worker-processes'];
  if (text === undefined) return;
  // Written as it is (`worker_processes {{ }};`): the one argument nginx's lexer reads.
  const word = nginxArgument(text) ?? '';
  if (word === 'auto') {
    s.workerProcesses = 'auto';
    return;
  }
  const n = DIGITS.test(word) ? parseUint(word, 1024) : null;
  if (n === null || n < 1)
    v.invalid(
      'worker-processes',
      text,
      'auto or a number of processes (1-1024)',
      'of the command (keepip gateway: 1 process; keepip controller: auto, one per core)',
    );
  else s.workerProcesses = n;
}

/** The ConfigMap's values with the parsers every key shares; a bad value is a warning naming the key. */
interface ConfigMapReader {
  data: Readonly<Record<string, string>>;
  sink: Sink;
  field(key: string): string;
  invalid(key: string, value: string, expected: string, kept: string): void;
  bool(key: string, fallback: boolean): boolean;
  /** Whole seconds in [min, MAX_TIMEOUT_SECONDS], as milliseconds. */
  seconds(key: string, fallbackMs: number, min?: number): number;
  /** A whole number in [min, max]; `kept` names the fallback in the warning. */
  whole(
    key: string,
    fallback: number,
    rule: { min?: number; max: number; expected: string; kept: string },
  ): number;
  /** An nginx time (240s, 5m, 1h30m) of at least `minMs`, as milliseconds. */
  time(key: string, fallbackMs: number, kept: string, minMs?: number): number;
  /** A CIDR list; an invalid one is an error and fails closed (the model says so). */
  /** `as-nginx`: IPv4-mapped entries match nobody, as nginx reads them (allow and trust lists). */
  list(key: string, mapped?: 'fold' | 'as-nginx'): SourceRangeModel | null;
  /** A header name, trimmed; null when absent or invalid. */
  headerName(key: string, kept: string): string | null;
}

/** error-log-level: one of nginx's eight levels; anything else keeps notice, with a warning. */
/**
 * access-log-params, nginx's access_log parameters: buffer= and flush= ask for fewer writes, which
 * keepip's access log already makes (one write per event-loop turn, lines never held longer), so they
 * are accepted as they are; gzip and if= change what is written and are warned and ignored.
 */
function readAccessLogParams(v: ConfigMapReader): void {
  const text = v.data['access-log-params']?.trim();
  if (text === undefined || text === '') return;
  for (const param of text.split(/\s+/)) {
    const [name, value] = [param.split('=')[0]!, param.slice(param.indexOf('=') + 1)];
    const valid =
      (name === 'buffer' && param.includes('=') && parseNginxBufferSize(value) !== null) ||
      (name === 'flush' && param.includes('=') && parseNginxTimeMs(value) !== null);
    if (!valid)
      v.invalid(
        'access-log-params',
        param,
        'buffer=<size> or flush=<time> (keepip writes the access log in batches already; gzip and if= are not supported)',
        'of none: the parameter is ignored, lines are written uncompressed',
      );
  }
}

function readErrorLogLevel(v: ConfigMapReader, s: GatewaySettings): void {
  const text = v.data['error-log-level'];
  if (text === undefined || text.trim() === '') return;
  const level = nginxArgument(text) ?? text;
  if (isNginxLogLevel(level)) s.errorLogLevel = level;
  else v.invalid('error-log-level', level, `one of ${Object.keys(NGINX_LOG_LEVELS).join(', ')}`, 'notice');
}

function configMapReader(data: Readonly<Record<string, string>>, sink: Sink): ConfigMapReader {
  const field = (key: string) => formatFieldPath(['data', key]);
  const invalid = (key: string, value: string, expected: string, kept: string) =>
    push(
      sink,
      'warning',
      'INVALID_CONFIGMAP_VALUE',
      field(key),
      `${JSON.stringify(value)} is not ${expected}; using the default ${kept}`,
    );
  const source = configMapSource(data, invalid);
  return {
    data,
    sink,
    field,
    invalid,
    bool: (key, fallback) => readBool(source, key, fallback),
    whole: (key, fallback, rule) => readWhole(source, key, fallback, rule),
    time: (key, fallbackMs, kept, minMs = 0) => readNginxTime(source, key, fallbackMs, { kept, minMs }),
    seconds(key, fallbackMs, min = 0) {
      const expected = `a whole number of seconds (${min}-${MAX_TIMEOUT_SECONDS})`;
      const rule = { min, max: MAX_TIMEOUT_SECONDS, expected, kept: `${fallbackMs / 1000}` };
      const n = readWhole(source, key, null, rule);
      return n === null ? fallbackMs : n * 1000;
    },
    list(key, mapped = 'fold') {
      const model = parseConfigMapSourceRange(data[key], mapped);
      if (model !== null && !model.valid) {
        const message = `${model.error}; fails closed: every location it applies to answers 503`;
        push(sink, 'error', 'INVALID_SOURCE_RANGE', field(key), message);
      }
      if (model?.valid) warnMappedEntries(sink, field(key), model.raw, mapped);
      return model;
    },
    headerName(key, kept) {
      const v = data[key];
      if (v === undefined) return null;
      if (isHeaderName(v.trim())) return v.trim();
      invalid(key, v, 'an HTTP header name', kept);
      return null;
    },
  };
}

/** Keys keepip does not read, reported by their classification; returns those that matter. */
function reportUnreadKeys(v: ConfigMapReader): string[] {
  const unsupported: string[] = [];
  for (const key of Object.keys(v.data)) {
    if (SUPPORTED_CONFIGMAP_KEYS.includes(key)) continue;
    const what = `ConfigMap key "${key}"`;
    const status = reportName(v.sink, v.field(key), what, key, CONFIGMAP_INDEX, CONFIGMAP_CODES);
    if (status !== 'no-effect') unsupported.push(key);
  }
  const snippets = v.data['allow-snippet-annotations'];
  if (snippets !== undefined && parseGoBool(snippets) !== false) {
    unsupported.push('allow-snippet-annotations');
    push(
      v.sink,
      'warning',
      'CONFIGMAP_KEY_REFUSED',
      v.field('allow-snippet-annotations'),
      'ConfigMap key "allow-snippet-annotations" refused: keepip never runs configuration snippets; only "false" is accepted',
    );
  }
  return unsupported;
}

/** Who may tell the gateway the client's address: PROXY protocol, trusted peers, forwarded headers. */
function readClientAddressKeys(v: ConfigMapReader, s: GatewaySettings): void {
  s.useProxyProtocol = v.bool('use-proxy-protocol', s.useProxyProtocol);
  const headerTimeout = v.data['proxy-protocol-header-timeout'];
  if (headerTimeout !== undefined) {
    const ms = parseGoDurationMs(headerTimeout);
    if (ms === null || ms === 0 || ms > MAX_TIMEOUT_SECONDS * 1000)
      v.invalid('proxy-protocol-header-timeout', headerTimeout, 'a positive duration such as "5s"', '5s');
    else s.proxyProtocolHeaderTimeoutMs = ms;
  }
  readTrustedCidrs(v, s);
  s.useForwardedHeaders = v.bool('use-forwarded-headers', s.useForwardedHeaders);
  s.forwardedForHeader = v.headerName('forwarded-for-header', s.forwardedForHeader) ?? s.forwardedForHeader;
  s.computeFullForwardedFor = v.bool('compute-full-forwarded-for', s.computeFullForwardedFor);
  s.enableRealIp = v.bool('enable-real-ip', s.enableRealIp);
}

/** proxy-real-ip-cidr; an invalid list fails closed: no peer is trusted. */
function readTrustedCidrs(v: ConfigMapReader, s: GatewaySettings): void {
  const realIp = v.data['proxy-real-ip-cidr'];
  if (realIp === undefined) return;
  // Present but empty: no peer is trusted, as ingress-nginx writes no set_real_ip_from then (only
  // an absent key means its 0.0.0.0/0 default).
  if (realIp.trim() === '') {
    s.trustedCidrsDefaulted = false;
    s.trustedCidrs = [];
    return;
  }
  const parsed = parseConfigMapSourceRange(realIp, 'as-nginx');
  s.trustedCidrsDefaulted = false;
  if (parsed?.valid) {
    warnMappedEntries(v.sink, v.field('proxy-real-ip-cidr'), realIp, 'as-nginx');
    s.trustedCidrs = parsed.cidrs;
    return;
  }
  s.trustedCidrs = [];
  const why = parsed && !parsed.valid ? parsed.error : 'invalid value';
  push(
    v.sink,
    'error',
    'INVALID_TRUSTED_CIDR',
    v.field('proxy-real-ip-cidr'),
    `${why}; a configuration with it is not served (the gateway does not start; a reload keeps the trust it had, as nginx refuses the configuration), and the doctor reads it as trusting no peer`,
  );
}

function readRedirectCode(v: ConfigMapReader, s: GatewaySettings): void {
  const code = v.data['http-redirect-code'];
  if (code === undefined) return;
  // strconv.Atoi (configmap.go): a sign taken, no white space.
  const n = parseGoInt(code);
  if (n === 301 || n === 302 || n === 307 || n === 308) s.httpRedirectCode = n;
  else v.invalid('http-redirect-code', code, 'one of 301, 302, 307, 308', '308');
}

/** Request body size, the upstream and client deadlines, and the upstream keep-alive pool. */
function readProxyLimitKeys(v: ConfigMapReader, s: GatewaySettings): void {
  const body = v.data['proxy-body-size'];
  if (body !== undefined) {
    const n = parseWrittenBodySize(body);
    if (typeof n === 'number') s.proxyBodySizeBytes = n;
    else v.invalid('proxy-body-size', body, BODY_SIZE_TEXT, "nginx's own 1m");
  }
  s.proxyConnectTimeoutMs = backendDeadlineMs(v.seconds('proxy-connect-timeout', s.proxyConnectTimeoutMs));
  s.proxyReadTimeoutMs = backendDeadlineMs(v.seconds('proxy-read-timeout', s.proxyReadTimeoutMs));
  s.proxySendTimeoutMs = backendDeadlineMs(v.seconds('proxy-send-timeout', s.proxySendTimeoutMs));
  // Client-side deadlines: never 0 (a state without a deadline is a connection that never ends);
  // keep-alive 0 is nginx's "no keep-alive".
  s.clientHeaderTimeoutMs = v.seconds('client-header-timeout', s.clientHeaderTimeoutMs, 1);
  s.clientBodyTimeoutMs = v.seconds('client-body-timeout', s.clientBodyTimeoutMs, 1);
  s.keepAliveTimeoutMs = v.seconds('keep-alive', s.keepAliveTimeoutMs);
  readHeaderBuffers(v, s);
  readUpstreamKeepalive(v, s);
  readProcessLimits(v, s);
  s.allowCrossNamespaceResources = v.bool('allow-cross-namespace-resources', false);
}

/** upstream-keepalive-connections, -timeout, -requests, -time: how backend connections are reused. */
function readUpstreamKeepalive(v: ConfigMapReader, s: GatewaySettings): void {
  s.upstreamKeepaliveConnections = v.whole('upstream-keepalive-connections', s.upstreamKeepaliveConnections, {
    max: 1_000_000,
    expected: 'a whole number',
    kept: '320',
  });
  s.upstreamKeepaliveTimeoutMs = v.seconds('upstream-keepalive-timeout', s.upstreamKeepaliveTimeoutMs, 1);
  s.upstreamKeepaliveRequests = v.whole('upstream-keepalive-requests', s.upstreamKeepaliveRequests, {
    min: 1,
    max: 1_000_000_000,
    expected: 'a whole number from 1',
    kept: '10000',
  });
  s.upstreamKeepaliveTimeMs = v.time('upstream-keepalive-time', s.upstreamKeepaliveTimeMs, '1h', 1);
}

/** worker-shutdown-timeout, max-worker-connections (per process), proxy-stream-timeout (tcp-services). */
function readProcessLimits(v: ConfigMapReader, s: GatewaySettings): void {
  s.workerShutdownTimeoutMs = v.time('worker-shutdown-timeout', s.workerShutdownTimeoutMs, '240s');
  s.maxWorkerConnections = v.whole('max-worker-connections', s.maxWorkerConnections, {
    max: 10_000_000,
    expected: 'a whole number (0: no limit)',
    kept: '16384',
  });
  s.proxyStreamTimeoutMs = v.time('proxy-stream-timeout', s.proxyStreamTimeoutMs, '600s', 1);
}

/**
 * large-client-header-buffers "<count> <size>" (nginx: 4 8k): 1-64 buffers of 512 bytes to 1 MiB; and
 * client-header-buffer-size (nginx: 1k), the first buffer, 1 KiB to 1 MiB. Both as nginx reads the
 * arguments ingress-nginx writes (ngx_parse_size: no b, no g).
 */
function readHeaderBuffers(v: ConfigMapReader, s: GatewaySettings): void {
  readLargeClientHeaderBuffers(v, s);
  const first = v.data['client-header-buffer-size'];
  if (first === undefined) return;
  const words = nginxArguments(first);
  const bytes = words?.length === 1 ? parseNginxBufferSize(words[0]!) : null;
  if (bytes === null || bytes < 1024 || bytes > 1 << 20)
    v.invalid('client-header-buffer-size', first, 'a size from 1k to 1m, such as "1k"', '1k');
  else s.clientHeaderBufferBytes = bytes;
}

function readLargeClientHeaderBuffers(v: ConfigMapReader, s: GatewaySettings): void {
  const text = v.data['large-client-header-buffers'];
  if (text === undefined) return;
  const [countText, sizeText, extra] = nginxArguments(text) ?? [];
  const count = countText !== undefined && DIGITS.test(countText) ? parseUint(countText, 64) : null;
  const size = sizeText === undefined ? null : parseNginxBufferSize(sizeText);
  // nginx's least size is connection_pool_size (512 on 64-bit systems).
  if (extra !== undefined || count === null || count < 1 || size === null || size < 512 || size > 1 << 20)
    v.invalid(
      'large-client-header-buffers',
      text,
      'a count (1-64) and a size (512-1m), such as "4 8k"',
      '4 8k',
    );
  else s.largeClientHeaderBuffers = { count, sizeBytes: size };
}

/**
 * One warning per IPv4-mapped entry of a list (SOURCE_RANGE_MAPPED_ENTRY), saying what it does: in a
 * ConfigMap allow or trust list nothing (nginx's reading); in a ConfigMap deny list, or an annotation
 * (ingress-nginx's Go prints it as IPv4), the IPv4 range. An annotation's single address is left alone:
 * it is that address either way.
 */
function warnMappedEntries(
  sink: Sink,
  field: string,
  raw: string,
  mapped: 'fold' | 'as-nginx' | 'annotation',
): void {
  for (const { entry, ipv4 } of mappedEntries(raw)) {
    if (mapped === 'annotation' && ipv4.endsWith('/32')) continue;
    const every = ipv4 === '0.0.0.0/0' ? ': every IPv4 client' : '';
    const message =
      mapped === 'as-nginx'
        ? `"${entry}" is IPv6 as nginx reads a ConfigMap list (ingress-nginx passes it as written): it matches no IPv4 client, so it lets nobody in; write ${ipv4} if that range is meant`
        : mapped === 'fold'
          ? `"${entry}" is read as the IPv4 range ${ipv4}${every} (nginx, which ingress-nginx passes the ConfigMap list to as written, would match no IPv4 client with it: keepip denies more, never less); write ${ipv4}`
          : `"${entry}" is the IPv4 range ${ipv4}${every}, as ingress-nginx reads it (Go prints an IPv4-mapped prefix as IPv4); write ${ipv4} to say so`;
    push(sink, 'warning', 'SOURCE_RANGE_MAPPED_ENTRY', field, message);
  }
}

/** The default proxy-real-ip-cidr (0.0.0.0/0) with anything that reads a client address from a peer. */
function warnIfTrustingEveryone(v: ConfigMapReader, s: GatewaySettings): void {
  if (!s.trustedCidrsDefaulted || !(s.useProxyProtocol || s.useForwardedHeaders || s.enableRealIp)) return;
  push(
    v.sink,
    'warning',
    'TRUSTS_EVERYONE',
    v.field('proxy-real-ip-cidr'),
    "proxy-real-ip-cidr is not set, so the default 0.0.0.0/0 trusts every peer to supply the client address; anyone who reaches the gateway directly can forge it. Set it to the load balancer's addresses",
  );
}

/** What one Ingress's annotations say for its locations. Null fields were not set (defaults apply). */
export interface IngressAnnotations {
  allow: SourceRangeModel | null;
  deny: SourceRangeModel | null;
  rewriteTarget: string | null;
  useRegex: boolean;
  appRoot: string | null;
  sslRedirect: boolean | null;
  /** Null when the annotation is absent: the ConfigMap's force-ssl-redirect decides. */
  forceSslRedirect: boolean | null;
  serviceUpstream: boolean;
  backendProtocol: LocationModel['backendProtocol'];
  /** A backend-protocol keepip cannot speak (FCGI): the locations get no backend (503). */
  backendRefused: boolean;
  /** backend-protocol AUTO_HTTP: the client's scheme towards the backend. */
  autoHttp?: true;
  proxyBodySizeBytes: number;
  proxyConnectTimeoutMs: number;
  proxyReadTimeoutMs: number;
  proxySendTimeoutMs: number;
  /** proxy-request-buffering and client-body-buffer-size over the ConfigMap's, as the location writes them. */
  bodyBuffering: Pick<LocationModel, 'requestBuffering' | 'clientBodyBufferBytes'>;
  /** mirror-target and its companions; null: no mirror. */
  mirror: MirrorModel | null;
}

const REWRITE_TARGET = /^\/?[-._~a-zA-Z0-9/:$]*$/;
// ingress-nginx's RegexPathWithCapture, then url.ParseRequestURI and not absolute: a path. `$` is
// refused (nginx's `return` would expand it as a variable; keepip sends values as written).
const APP_ROOT = /^\/[-._~a-zA-Z0-9/:]*$/;

/** Parses the ingress-nginx annotations of one Ingress; reports unsupported and invalid ones. */
export function parseIngressAnnotations(
  annotations: Readonly<Record<string, string>>,
  settings: GatewaySettings,
  origin: Origin,
  issues: ConfigIssue[],
): IngressAnnotations {
  const a = annotationReader(annotations, { origin, issues });
  reportUnreadAnnotations(a);
  const access = accessRules(a, settings);
  const rewriteTarget = a.matching('rewrite-target', REWRITE_TARGET, REWRITE_TARGET_TEXT, 'no rewrite');
  const appRoot = a.matching('app-root', APP_ROOT, APP_ROOT_TEXT, 'no app-root redirect');
  const backend = backendProtocol(a);
  const proxyBodySizeBytes = proxyBodySize(a, settings.proxyBodySizeBytes);
  return {
    allow: access.allow,
    deny: access.deny,
    rewriteTarget,
    useRegex: a.bool('use-regex', false) ?? false,
    appRoot,
    sslRedirect: a.bool('ssl-redirect', null),
    forceSslRedirect: a.bool('force-ssl-redirect', null),
    serviceUpstream: a.bool('service-upstream', settings.serviceUpstream ?? false) ?? false,
    backendProtocol: backend.protocol,
    backendRefused: backend.refused,
    ...(backend.autoHttp ? { autoHttp: true as const } : {}),
    proxyBodySizeBytes,
    proxyConnectTimeoutMs: backendDeadlineMs(
      a.seconds('proxy-connect-timeout', settings.proxyConnectTimeoutMs),
    ),
    proxyReadTimeoutMs: backendDeadlineMs(a.seconds('proxy-read-timeout', settings.proxyReadTimeoutMs)),
    proxySendTimeoutMs: backendDeadlineMs(a.seconds('proxy-send-timeout', settings.proxySendTimeoutMs)),
    bodyBuffering: bodyBufferingFor(
      readBodyBuffering(
        a.get,
        { invalid: a.invalid },
        { buffering: 'the ConfigMap value', size: 'the ConfigMap value' },
        'annotation',
      ),
      settings,
    ),
    mirror: readMirror(a.get, { invalid: a.invalid }),
  };
}

const REWRITE_TARGET_TEXT = 'a safe rewrite target (^/?[-._~a-zA-Z0-9/:$]*$)';
const APP_ROOT_TEXT = 'an absolute path made of [-._~a-zA-Z0-9/:]';

/** One Ingress's ingress-nginx annotations by short name, with the parsers they share. */
interface AnnotationReader {
  annotations: Readonly<Record<string, string>>;
  sink: Sink;
  get(name: string): string | undefined;
  invalid(name: string, value: string, expected: string, kept: string): void;
  bool(name: string, fallback: boolean | null): boolean | null;
  seconds(name: string, fallbackMs: number): number;
  /** The value when it matches `pattern`, else null (an issue naming `expected` and what applies). */
  matching(name: string, pattern: RegExp, expected: string, kept: string): string | null;
}

function annotationReader(annotations: Readonly<Record<string, string>>, sink: Sink): AnnotationReader {
  const get = (name: string): string | undefined => annotations[NGINX_ANNOTATION_PREFIX + name];
  const invalid = (name: string, value: string, expected: string, kept: string) =>
    push(
      sink,
      'warning',
      'INVALID_ANNOTATION_VALUE',
      annotationField(NGINX_ANNOTATION_PREFIX + name),
      `${JSON.stringify(value)} is not ${expected}; ignored, ${kept} applies`,
    );
  const source: ScalarSource = { get, invalid };
  return {
    annotations,
    sink,
    get,
    invalid,
    bool: (name, fallback) => readBool(source, name, fallback, { expected: 'a boolean ("true" or "false")' }),
    seconds(name, fallbackMs) {
      const expected = `a whole number of seconds (0-${MAX_TIMEOUT_SECONDS})`;
      const rule = { max: MAX_TIMEOUT_SECONDS, expected, kept: `${fallbackMs / 1000}s` };
      const n = readWhole(source, name, null, rule);
      return n === null ? fallbackMs : n * 1000;
    },
    matching(name, pattern, expected, kept) {
      const v = get(name);
      if (v === undefined) return null;
      if (pattern.test(v)) return v;
      invalid(name, v, expected, kept);
      return null;
    },
  };
}

function reportUnreadAnnotations(a: AnnotationReader): void {
  for (const key of Object.keys(a.annotations)) {
    if (!key.startsWith(NGINX_ANNOTATION_PREFIX)) continue;
    const name = key.slice(NGINX_ANNOTATION_PREFIX.length);
    if (SUPPORTED_ANNOTATIONS.includes(name)) continue;
    reportName(a.sink, annotationField(key), `annotation "${key}"`, name, ANNOTATION_INDEX, ANNOTATION_CODES);
  }
}

/** The allow and deny lists (annotation, else ConfigMap); an invalid annotation fails closed: 503. */
function accessRules(a: AnnotationReader, settings: GatewaySettings): ReturnType<typeof resolveAccessRules> {
  const access = resolveAccessRules(
    { ...a.annotations },
    { allow: settings.defaultAllow, deny: settings.defaultDeny },
  );
  for (const [which, model] of [
    ['allow', access.allow],
    ['deny', access.deny],
  ] as const) {
    if (model?.from !== 'annotation') continue;
    const key =
      which === 'deny'
        ? 'denylist-source-range'
        : a.get('allowlist-source-range') !== undefined && a.get('allowlist-source-range')!.trim() !== ''
          ? 'allowlist-source-range'
          : 'whitelist-source-range';
    const field = annotationField(NGINX_ANNOTATION_PREFIX + key);
    if (model.valid) warnMappedEntries(a.sink, field, model.raw, 'annotation');
    else
      push(
        a.sink,
        'error',
        'INVALID_SOURCE_RANGE',
        field,
        `${model.error}; the Ingress is served but its locations fail closed: 503 for everyone`,
      );
  }
  return access;
}

/**
 * backend-protocol; AUTO_HTTP is HTTP with `autoHttp` (HTTPS for requests that came over TLS, as
 * ingress-nginx's `$scheme://`); FCGI, which keepip cannot speak, leaves the locations without a backend.
 */
function backendProtocol(a: AnnotationReader): {
  protocol: LocationModel['backendProtocol'];
  refused: boolean;
  autoHttp?: true;
} {
  const bp = a.get('backend-protocol');
  if (bp === undefined) return { protocol: 'HTTP', refused: false };
  const upper = bp.trim().toUpperCase();
  if (upper === 'HTTP' || upper === 'HTTPS' || upper === 'GRPC' || upper === 'GRPCS')
    return { protocol: upper, refused: false };
  if (upper === 'AUTO_HTTP') return { protocol: 'HTTP', refused: false, autoHttp: true };
  if (upper === 'FCGI') {
    push(
      a.sink,
      'error',
      'UNSUPPORTED_BACKEND_PROTOCOL',
      annotationField(`${NGINX_ANNOTATION_PREFIX}backend-protocol`),
      `backend protocol ${upper} is not supported by keepip (HTTP, HTTPS, AUTO_HTTP, GRPC or GRPCS); this Ingress's locations answer 503 instead of speaking the wrong protocol`,
    );
    return { protocol: 'HTTP', refused: true };
  }
  a.invalid('backend-protocol', bp, 'HTTP, HTTPS, AUTO_HTTP, GRPC or GRPCS', 'HTTP');
  return { protocol: 'HTTP', refused: false };
}

/** What ingress-nginx writes as client_max_body_size (parseWrittenBodySize). */
const BODY_SIZE_TEXT =
  'a size ingress-nginx writes as client_max_body_size, such as "8m" (digits and an optional k, m or g; 0: no limit)';

/**
 * The annotation as ingress-nginx has it: refused by its validator (a tab, a letter), the
 * ConfigMap's size applies; taken but not written by its template ("0b", "1 m"), nginx's own 1m.
 */
function proxyBodySize(a: AnnotationReader, fallback: number): number {
  const body = a.get('proxy-body-size');
  if (body === undefined) return fallback;
  const n = isIngressNginxAnnotationSize(body) ? parseWrittenBodySize(body) : null;
  if (typeof n === 'number') return n;
  if (n === null) {
    a.invalid('proxy-body-size', body, BODY_SIZE_TEXT, 'the ConfigMap value');
    return fallback;
  }
  a.invalid('proxy-body-size', body, BODY_SIZE_TEXT, "nginx's own 1m (ingress-nginx writes no line for it)");
  return NGINX_DEFAULT_BODY_SIZE;
}
