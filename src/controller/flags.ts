// `keepip controller`'s command line: ingress-nginx's controller flags (v1.12 names and defaults),
// `--flag=value` and `--flag value`, so a Deployment keeps its container args when the image changes.
// Flags keepip does not implement are accepted and reported by name with the reason; anything else is
// a usage error. Pure: argv and the environment in, options and warnings out.
import { annotationsPrefixProblem, DEFAULT_ANNOTATIONS_PREFIX } from '../k8s/annotation-prefix.ts';
import { parseWorkerCount } from '../workers/count.ts';

export type FlagKind = 'string' | 'bool' | 'int' | 'duration' | 'float' | 'list';

export interface FlagSpec {
  name: string;
  kind: FlagKind;
  /** ingress-nginx's default as text ('' when none). */
  default: string;
  /** Implemented, or accepted with a warning because keepip has no such thing. */
  implemented: boolean;
  /** What it does in keepip, or why it has no effect. */
  note: string;
}

const impl = (name: string, kind: FlagKind, def: string, note: string): FlagSpec => ({
  name,
  kind,
  default: def,
  implemented: true,
  note,
});
const ignored = (name: string, kind: FlagKind, def: string, note: string): FlagSpec => ({
  name,
  kind,
  default: def,
  implemented: false,
  note,
});

const NO_NGINX = 'keepip runs no nginx process';
const NO_LUA = 'keepip has no Lua/dynamic configuration endpoint';
const METRICS = "keepip's metrics are its own (docs/gateway.md), not nginx's histograms";

/** Every flag `keepip controller` accepts, in the order docs/controller.md lists them. */
export const FLAGS: readonly FlagSpec[] = [
  impl('kubeconfig', 'string', '', 'kubeconfig file; else $KUBECONFIG, else the in-cluster service account'),
  impl('apiserver-host', 'string', '', 'API server URL (overrides the kubeconfig server)'),
  impl('certificate-authority', 'string', '', 'CA file for --apiserver-host'),
  impl(
    'ingress-class',
    'string',
    'nginx',
    'class name: the legacy annotation, and spec.ingressClassName with --ingress-class-by-name',
  ),
  impl(
    'controller-class',
    'string',
    'k8s.io/ingress-nginx',
    'IngressClass spec.controller this controller serves',
  ),
  impl('watch-ingress-without-class', 'bool', 'false', 'also serve Ingresses without any class'),
  impl(
    'ingress-class-by-name',
    'bool',
    'false',
    'serve spec.ingressClassName == --ingress-class even without an IngressClass',
  ),
  impl('watch-namespace', 'string', '', 'watch one namespace ("" = all)'),
  impl('watch-namespace-selector', 'string', '', 'watch only namespaces with these labels'),
  impl('configmap', 'string', '', 'the controller ConfigMap, namespace/name'),
  impl('tcp-services-configmap', 'string', '', 'TCP services served by the L4 engine, namespace/name'),
  ignored(
    'udp-services-configmap',
    'string',
    '',
    'keepip has no UDP proxy; its entries are reported by name',
  ),
  impl('publish-service', 'string', '', 'Ingress status from this Service, namespace/name'),
  impl('publish-status-address', 'list', '', 'Ingress status from these addresses (comma-separated)'),
  impl('update-status', 'bool', 'true', 'write status.loadBalancer of served Ingresses (leader only)'),
  impl(
    'update-status-on-shutdown',
    'bool',
    'true',
    'clear the status on shutdown when no other controller pod runs',
  ),
  impl('status-update-interval', 'int', '60', 'seconds between status checks (minimum 5)'),
  impl(
    'report-node-internal-ip-address',
    'bool',
    'false',
    'status from nodes: InternalIP instead of ExternalIP',
  ),
  impl('election-id', 'string', 'ingress-nginx-leader', 'name of the coordination.k8s.io/v1 Lease'),
  impl(
    'election-ttl',
    'duration',
    '',
    "lease duration (renew deadline ttl/2, retry ttl/4 as ingress-nginx); unset: client-go's 15s/10s/2s",
  ),
  impl('disable-leader-election', 'bool', 'false', 'act as the leader without a Lease'),
  impl(
    'default-ssl-certificate',
    'string',
    '',
    'Secret for TLS clients without a matching SNI name, namespace/name',
  ),
  impl('default-backend-service', 'string', '', 'catch-all Service (its first port), namespace/name'),
  impl('http-port', 'int', '80', 'HTTP listener port'),
  impl('https-port', 'int', '443', 'HTTPS listener port'),
  impl('healthz-port', 'int', '10254', '/healthz and /metrics'),
  impl('healthz-host', 'string', '', 'address for /healthz and /metrics (default: --bind-address)'),
  impl('health-check-path', 'string', '/healthz', 'the health path on --healthz-port'),
  impl('validating-webhook', 'string', '', 'admission webhook address, [host]:port'),
  impl('validating-webhook-certificate', 'string', '', 'PEM certificate file of the webhook'),
  impl('validating-webhook-key', 'string', '', 'PEM key file of the webhook'),
  impl('enable-metrics', 'bool', 'true', 'serve /metrics on --healthz-port'),
  impl(
    'dashboard',
    'string',
    '',
    "keepip's own: serve the read-only dashboard at ADDR:PORT (docs/dashboard.md)",
  ),
  impl(
    'workers',
    'string',
    '',
    "keepip's own: serving processes sharing the ports, N or auto (default: the ConfigMap's worker-processes, else auto)",
  ),
  impl(
    'shutdown-grace-period',
    'int',
    '0',
    'seconds to keep serving (healthz 503) after SIGTERM before draining',
  ),
  impl('post-shutdown-grace-period', 'int', '10', 'seconds to wait for in-flight requests while draining'),
  impl('disable-sync-events', 'bool', 'false', "do not create 'Sync' Events"),
  impl('version', 'bool', 'false', 'print the version and exit'),
  impl('bind-address', 'string', '0.0.0.0', 'keepip: address of the HTTP and HTTPS listeners'),
  ignored('sync-period', 'duration', '0', 'keepip relies on watches and relists only on 410 Gone'),
  ignored('sync-rate-limit', 'float', '0.3', 'changes are debounced into one swap instead'),
  ignored('profiling', 'bool', 'true', 'no pprof endpoint'),
  ignored('profiler-port', 'int', '10245', 'no pprof endpoint'),
  ignored('profiler-address', 'string', '127.0.0.1', 'no pprof endpoint'),
  ignored('health-check-timeout', 'int', '10', '/healthz answers from memory, no probe to time out'),
  ignored('enable-ssl-passthrough', 'bool', 'false', 'SSL passthrough is not implemented'),
  ignored('ssl-passthrough-proxy-port', 'int', '442', 'SSL passthrough is not implemented'),
  ignored(
    'disable-svc-external-name',
    'bool',
    'false',
    'ExternalName Services have no endpoints in keepip (503)',
  ),
  impl(
    'annotations-prefix',
    'string',
    DEFAULT_ANNOTATIONS_PREFIX,
    'Ingress annotations are read under `<prefix>/` (and those under nginx.ingress.kubernetes.io/ then ignored)',
  ),
  ignored('enable-annotation-validation', 'bool', 'true', 'keepip always validates annotations'),
  ignored('enable-ssl-chain-completion', 'bool', 'false', 'certificates are served as the Secret holds them'),
  ignored('metrics-per-host', 'bool', 'true', METRICS),
  ignored('metrics-per-undefined-host', 'bool', 'false', METRICS),
  ignored('report-status-classes', 'bool', 'false', METRICS),
  ignored('time-buckets', 'list', '', METRICS),
  ignored('length-buckets', 'list', '', METRICS),
  ignored('size-buckets', 'list', '', METRICS),
  ignored('bucket-factor', 'float', '0', METRICS),
  ignored('max-buckets', 'int', '100', METRICS),
  ignored('exclude-socket-metrics', 'list', '', METRICS),
  ignored('monitor-max-batch-size', 'int', '10000', METRICS),
  ignored('default-server-port', 'int', '8181', 'the catch-all is served on the HTTP/HTTPS ports'),
  ignored('disable-catch-all', 'bool', 'false', 'not implemented: catch-all Ingresses are served'),
  ignored(
    'disable-full-test',
    'bool',
    'false',
    'the webhook always checks the Ingress against the whole set',
  ),
  ignored('status-port', 'int', '10246', NO_LUA),
  ignored('stream-port', 'int', '10247', NO_LUA),
  ignored('dynamic-configuration-retries', 'int', '15', NO_LUA),
  ignored('internal-logger-address', 'string', '127.0.0.1:11514', NO_NGINX),
  ignored('deep-inspect', 'bool', 'true', 'keepip never renders annotations into a configuration file'),
  ignored('enable-topology-aware-routing', 'bool', 'false', 'not implemented: every ready endpoint is used'),
  ignored('maxmind-license-key', 'string', '', 'no GeoIP'),
  ignored('maxmind-edition-ids', 'string', 'GeoLite2-City,GeoLite2-ASN', 'no GeoIP'),
  ignored('maxmind-mirror', 'string', '', 'no GeoIP'),
  ignored('maxmind-retries-count', 'int', '1', 'no GeoIP'),
  ignored('maxmind-retries-timeout', 'duration', '0s', 'no GeoIP'),
  // klog's flags, which ingress-nginx registers: keepip's log lines are its own.
  ignored('v', 'int', '0', 'klog verbosity: keepip has one log level'),
  ignored('logtostderr', 'bool', 'true', 'klog: keepip logs to stderr'),
  ignored('alsologtostderr', 'bool', 'false', 'klog: keepip logs to stderr'),
  ignored('stderrthreshold', 'string', '2', 'klog: keepip logs to stderr'),
  ignored('log_dir', 'string', '', 'klog: keepip logs to stderr'),
  ignored('log_file', 'string', '', 'klog: keepip logs to stderr'),
  ignored('log_file_max_size', 'int', '1800', 'klog: keepip logs to stderr'),
  ignored('add_dir_header', 'bool', 'false', 'klog: keepip logs to stderr'),
  ignored('skip_headers', 'bool', 'false', 'klog: keepip logs to stderr'),
  ignored('skip_log_headers', 'bool', 'false', 'klog: keepip logs to stderr'),
  ignored('one_output', 'bool', 'false', 'klog: keepip logs to stderr'),
  ignored('vmodule', 'string', '', 'klog: keepip has one log level'),
  ignored('log_backtrace_at', 'string', '', 'klog: keepip has one log level'),
];

const BY_NAME = new Map(FLAGS.map((f) => [f.name, f]));

export interface ControllerOptions {
  kubeconfig: string | null;
  apiserverHost: string | null;
  certificateAuthority: string | null;
  ingressClass: string;
  controllerClass: string;
  watchIngressWithoutClass: boolean;
  ingressClassByName: boolean;
  watchNamespace: string;
  watchNamespaceSelector: string;
  configMap: string | null;
  tcpServicesConfigMap: string | null;
  udpServicesConfigMap: string | null;
  publishService: string | null;
  publishStatusAddress: string[];
  updateStatus: boolean;
  updateStatusOnShutdown: boolean;
  statusUpdateIntervalMs: number;
  reportNodeInternalIp: boolean;
  electionId: string;
  /** Lease timings, client-go's defaults unless --election-ttl is given. */
  lease: { durationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  disableLeaderElection: boolean;
  defaultSslCertificate: string | null;
  defaultBackendService: string | null;
  /** --annotations-prefix, checked to be a DNS subdomain. */
  annotationsPrefix: string;
  httpPort: number;
  httpsPort: number;
  healthzPort: number;
  healthzHost: string | null;
  healthCheckPath: string;
  validatingWebhook: { host: string; port: number } | null;
  validatingWebhookCertificate: string | null;
  validatingWebhookKey: string | null;
  enableMetrics: boolean;
  /** keepip's own --dashboard ADDR:PORT (not an ingress-nginx flag); null: off. */
  dashboard: string | null;
  /** keepip's own --workers N|auto; null: the ConfigMap's worker-processes, else auto (src/workers/count.ts). */
  workers: number | 'auto' | null;
  shutdownGracePeriodMs: number;
  postShutdownGracePeriodMs: number;
  disableSyncEvents: boolean;
  bindAddress: string;
  podNamespace: string;
  podName: string | null;
}

export type ParsedFlags =
  | { ok: true; options: ControllerOptions; warnings: string[] }
  | { ok: 'help' }
  | { ok: 'version' }
  | { ok: false; error: string };

/** client-go's leaderelection defaults (LeaseDuration 15s, RenewDeadline 10s, RetryPeriod 2s). */
export const CLIENT_GO_LEASE = { durationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** Go's time.ParseDuration for the units flags use (h, m, s, ms, us, ns); null when invalid. */
export function parseGoDuration(text: string): number | null {
  if (text === '0') return 0;
  const units: Record<string, number> = {
    h: 3_600_000,
    m: 60_000,
    s: 1000,
    ms: 1,
    us: 0.001,
    µs: 0.001,
    ns: 1e-6,
  };
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/y;
  let total = 0;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) return null;
    total += Number(m[1]) * units[m[2]!]!;
    at = re.lastIndex;
  }
  return at === 0 ? null : total;
}

const BOOL_TEXT: Record<string, boolean> = {
  '1': true,
  t: true,
  T: true,
  true: true,
  TRUE: true,
  True: true,
  '0': false,
  f: false,
  F: false,
  false: false,
  FALSE: false,
  False: false,
};

/** Splits argv into raw flag values (last one wins, as pflag). Unknown flags are usage errors. */
function scan(
  argv: readonly string[],
): { ok: true; values: Map<string, string> } | { ok: false; error: string } {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') return { ok: true, values: new Map([['help', 'true']]) };
    const m = /^--?([A-Za-z0-9_-]+)(?:=([\s\S]*))?$/.exec(arg);
    if (!m) return { ok: false, error: `unexpected argument "${arg}" (flags only)` };
    const name = m[1]!;
    const spec = BY_NAME.get(name);
    if (!spec) return { ok: false, error: `unknown flag --${name}` };
    if (m[2] !== undefined) {
      values.set(name, m[2]);
    } else if (spec.kind === 'bool') {
      // `--flag` alone is true; `--flag false` is accepted too (no positional arguments exist).
      const next = argv[i + 1];
      if (next !== undefined && next in BOOL_TEXT) {
        values.set(name, next);
        i++;
      } else values.set(name, 'true');
    } else {
      const next = argv[i + 1];
      if (next === undefined) return { ok: false, error: `flag --${name} needs a value` };
      values.set(name, next);
      i++;
    }
  }
  return { ok: true, values };
}

/** `$(POD_NAMESPACE)` and `$POD_NAME` in values, expanded from the environment as the kubelet/ingress-nginx do. */
export function expandEnv(text: string, env: Readonly<Record<string, string | undefined>>): string {
  return text.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, a, b) => {
    const value = env[(a ?? b) as string];
    return value ?? whole;
  });
}

const REF = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/;

/** Typed reads of the raw flag values; problems collect in `errors`. */
function valueReader(
  raw: ReadonlyMap<string, string>,
  env: Readonly<Record<string, string | undefined>>,
  errors: string[],
) {
  const text = (name: string): string => expandEnv(raw.get(name) ?? BY_NAME.get(name)!.default, env);
  const optional = (name: string): string | null => (text(name) === '' ? null : text(name));
  return {
    text,
    optional,
    bool(name: string): boolean {
      const value = BOOL_TEXT[text(name)];
      if (value === undefined) errors.push(`--${name}: "${text(name)}" is not a boolean`);
      return value ?? false;
    },
    int(name: string, min: number, max: number): number {
      const t = text(name);
      const n = Number(t);
      if (!/^-?\d+$/.test(t) || n < min || n > max)
        errors.push(`--${name}: "${t}" is not an integer ${min}-${max}`);
      return n;
    },
    ref(name: string): string | null {
      const value = optional(name);
      if (value !== null && !REF.test(value)) errors.push(`--${name}: "${value}" is not namespace/name`);
      return value;
    },
  };
}

type ValueReader = ReturnType<typeof valueReader>;

/** --election-ttl: unset keeps client-go's timings; given, ingress-nginx's split (ttl, ttl/2, ttl/4). */
function leaseTimings(v: ValueReader, errors: string[]): ControllerOptions['lease'] {
  const ttlText = v.optional('election-ttl');
  if (ttlText === null) return CLIENT_GO_LEASE;
  const ttl = parseGoDuration(ttlText);
  if (ttl !== null && ttl > 0) return { durationMs: ttl, renewDeadlineMs: ttl / 2, retryPeriodMs: ttl / 4 };
  errors.push(`--election-ttl: "${ttlText}" is not a positive duration`);
  return CLIENT_GO_LEASE;
}

function webhookAddress(v: ValueReader, errors: string[]): ControllerOptions['validatingWebhook'] {
  const text = v.optional('validating-webhook');
  if (text === null) return null;
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  if (m && Number(m[3]) <= 65535) return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
  errors.push(`--validating-webhook: "${text}" is not [host]:port`);
  return null;
}

export function parseControllerFlags(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParsedFlags {
  const scanned = scan(argv);
  if (!scanned.ok) return scanned;
  const raw = scanned.values;
  if (raw.has('help')) return { ok: 'help' };
  const errors: string[] = [];
  const warnings: string[] = [];
  const v = valueReader(raw, env, errors);
  // Ignored flags are warned about by name; their values are still checked, so a typo is caught.
  for (const name of raw.keys()) {
    const spec = BY_NAME.get(name)!;
    if (spec.implemented) continue;
    warnings.push(`flag --${name} is accepted but has no effect: ${spec.note}`);
    if (spec.kind === 'bool') v.bool(name);
    else if (spec.kind === 'duration' && parseGoDuration(v.text(name)) === null)
      errors.push(`--${name}: "${v.text(name)}" is not a duration`);
  }
  if (v.bool('version')) return { ok: 'version' };
  const options = buildOptions(v, env, errors);
  if (options.validatingWebhook && (!options.validatingWebhookCertificate || !options.validatingWebhookKey))
    errors.push('--validating-webhook needs --validating-webhook-certificate and --validating-webhook-key');
  if (errors.length > 0) return { ok: false, error: errors.join('; ') };
  return { ok: true, options, warnings };
}

function annotationsPrefixFlag(prefix: string, errors: string[]): string {
  const problem = annotationsPrefixProblem(prefix);
  if (problem !== null) errors.push(`--annotations-prefix: ${problem}`);
  return prefix;
}

function buildOptions(
  v: ValueReader,
  env: Readonly<Record<string, string | undefined>>,
  errors: string[],
): ControllerOptions {
  const { text, optional, bool, int, ref } = v;
  const podNamespace = env.POD_NAMESPACE ?? 'default';
  const lease = leaseTimings(v, errors);
  const validatingWebhook = webhookAddress(v, errors);
  const options: ControllerOptions = {
    kubeconfig: optional('kubeconfig'),
    apiserverHost: optional('apiserver-host'),
    certificateAuthority: optional('certificate-authority'),
    ingressClass: text('ingress-class'),
    controllerClass: text('controller-class'),
    watchIngressWithoutClass: bool('watch-ingress-without-class'),
    ingressClassByName: bool('ingress-class-by-name'),
    watchNamespace: text('watch-namespace'),
    watchNamespaceSelector: text('watch-namespace-selector'),
    configMap: ref('configmap'),
    tcpServicesConfigMap: ref('tcp-services-configmap'),
    udpServicesConfigMap: ref('udp-services-configmap'),
    publishService: ref('publish-service'),
    publishStatusAddress: text('publish-status-address')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
    updateStatus: bool('update-status'),
    updateStatusOnShutdown: bool('update-status-on-shutdown'),
    statusUpdateIntervalMs: Math.max(5, int('status-update-interval', 1, 86_400)) * 1000,
    reportNodeInternalIp: bool('report-node-internal-ip-address'),
    electionId: text('election-id'),
    lease,
    disableLeaderElection: bool('disable-leader-election'),
    defaultSslCertificate: ref('default-ssl-certificate'),
    defaultBackendService: ref('default-backend-service'),
    annotationsPrefix: annotationsPrefixFlag(text('annotations-prefix'), errors),
    httpPort: int('http-port', 0, 65535),
    httpsPort: int('https-port', 0, 65535),
    healthzPort: int('healthz-port', 0, 65535),
    healthzHost: optional('healthz-host'),
    healthCheckPath: text('health-check-path'),
    validatingWebhook,
    validatingWebhookCertificate: optional('validating-webhook-certificate'),
    validatingWebhookKey: optional('validating-webhook-key'),
    enableMetrics: bool('enable-metrics'),
    dashboard: optional('dashboard'),
    workers: workersFlag(optional('workers'), errors),
    shutdownGracePeriodMs: int('shutdown-grace-period', 0, 86_400) * 1000,
    postShutdownGracePeriodMs: int('post-shutdown-grace-period', 0, 86_400) * 1000,
    disableSyncEvents: bool('disable-sync-events'),
    bindAddress: text('bind-address'),
    podNamespace,
    podName: env.POD_NAME ?? null,
  };
  return options;
}

/** --workers: a count or auto; null when not given. */
function workersFlag(text: string | null, errors: string[]): number | 'auto' | null {
  if (text === null) return null;
  if (text.trim() === 'auto') return 'auto';
  const parsed = parseWorkerCount(text, 1);
  if (parsed.ok) return parsed.value;
  errors.push(`--workers: ${parsed.error} [${parsed.code}]`);
  return null;
}
