// `keepip controller`'s command line: ingress-nginx's controller flags (v1.12 names and defaults),
// `--flag=value` and `--flag value`, so a Deployment keeps its container args when the image changes.
// Flags keepip does not implement are accepted and reported by name with the reason; anything else is
// a usage error. Pure: argv and the environment in, options and warnings out.
import type { RequestMetricsSettings } from '../config/request-metrics.ts';
import { annotationsPrefixProblem, DEFAULT_ANNOTATIONS_PREFIX } from '../k8s/annotation-prefix.ts';
import { parseWorkerCount } from '../workers/count.ts';
import { DEFAULT_WATCHDOG_MS, parseWatchdog } from '../workers/watchdog.ts';
import { requestMetricsFlags } from './metrics-flags.ts';

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

/** Implemented, or accepted with a warning naming the reason (docs/controller.md's "status in keepip"). */
type FlagStatus = 'implemented' | 'no effect';

/** A flag: name, kind, ingress-nginx's default as text ('' when none), status, what it does or why not. */
type FlagRow = readonly [name: string, kind: FlagKind, defaultText: string, status: FlagStatus, note: string];

const NO_NGINX = 'keepip runs no nginx process';
const NO_LUA = 'keepip has no Lua/dynamic configuration endpoint';
const METRICS = 'native histograms are not exported (prom-client has none); the classic buckets are';

// biome-ignore format: a table, one flag a row
const ROWS: readonly FlagRow[] = [
  ['kubeconfig',                      'string',   '',                           'implemented', 'kubeconfig file; else $KUBECONFIG, else the in-cluster service account'],
  ['apiserver-host',                  'string',   '',                           'implemented', 'API server URL (overrides the kubeconfig server)'],
  ['certificate-authority',           'string',   '',                           'implemented', 'CA file for --apiserver-host'],
  ['ingress-class',                   'string',   'nginx',                      'implemented', 'class name: the legacy annotation, and spec.ingressClassName with --ingress-class-by-name'],
  ['controller-class',                'string',   'k8s.io/ingress-nginx',       'implemented', 'IngressClass spec.controller this controller serves'],
  ['watch-ingress-without-class',     'bool',     'false',                      'implemented', 'also serve Ingresses without any class'],
  ['ingress-class-by-name',           'bool',     'false',                      'implemented', 'serve spec.ingressClassName == --ingress-class even without an IngressClass'],
  ['watch-namespace',                 'string',   '',                           'implemented', 'watch one namespace ("" = all)'],
  ['watch-namespace-selector',        'string',   '',                           'implemented', 'watch only namespaces with these labels (not with --watch-namespace: a usage error, as ingress-nginx)'],
  ['configmap',                       'string',   '',                           'implemented', 'the controller ConfigMap, namespace/name'],
  ['tcp-services-configmap',          'string',   '',                           'implemented', "TCP services (nginx's stream proxy: next endpoint on a failed connect, a connection log), namespace/name"],
  ['udp-services-configmap',          'string',   '',                           'implemented', "UDP services (nginx's stream proxy: a session per client, proxy-stream-responses), namespace/name"],
  ['publish-service',                 'string',   '',                           'implemented', 'Ingress status from this Service, namespace/name'],
  ['publish-status-address',          'list',     '',                           'implemented', 'Ingress status from these addresses (comma-separated; not with --publish-service: a usage error, as ingress-nginx)'],
  ['update-status',                   'bool',     'true',                       'implemented', 'write status.loadBalancer of served Ingresses (leader only)'],
  ['update-status-on-shutdown',       'bool',     'true',                       'implemented', 'clear the status on shutdown when no other controller pod runs'],
  ['status-update-interval',          'int',      '60',                         'implemented', 'seconds between status checks (minimum 5)'],
  ['report-node-internal-ip-address', 'bool',     'false',                      'implemented', 'status from nodes: InternalIP instead of ExternalIP'],
  ['election-id',                     'string',   'ingress-controller-leader',  'implemented', 'name of the coordination.k8s.io/v1 Lease'],
  ['election-ttl',                    'duration', '',                           'implemented', "lease duration (renew deadline ttl/2, retry ttl/4 as ingress-nginx); unset: client-go's 15s/10s/2s"],
  ['disable-leader-election',         'bool',     'false',                      'implemented', 'act as the leader without a Lease'],
  ['default-ssl-certificate',         'string',   '',                           'implemented', 'Secret for TLS clients without a matching SNI name, namespace/name'],
  ['default-backend-service',         'string',   '',                           'implemented', 'catch-all Service (its first port), namespace/name'],
  ['http-port',                       'int',      '80',                         'implemented', 'HTTP listener port'],
  ['https-port',                      'int',      '443',                        'implemented', 'HTTPS listener port'],
  ['healthz-port',                    'int',      '10254',                      'implemented', '/healthz and /metrics'],
  ['healthz-host',                    'string',   '',                           'implemented', 'address for /healthz and /metrics (default: --bind-address)'],
  ['health-check-path',               'string',   '/healthz',                   'implemented', 'the health path on --healthz-port'],
  ['validating-webhook',              'string',   '',                           'implemented', 'admission webhook address, [host]:port'],
  ['validating-webhook-certificate',  'string',   '',                           'implemented', 'PEM certificate file of the webhook'],
  ['validating-webhook-key',          'string',   '',                           'implemented', 'PEM key file of the webhook'],
  ['enable-metrics',                  'bool',     'false',                      'implemented', 'serve /metrics on --healthz-port'],
  ['dashboard',                       'string',   '',                           'implemented', "keepip's own: serve the read-only dashboard at ADDR:PORT (docs/dashboard.md)"],
  ['workers',                         'string',   '',                           'implemented', "keepip's own: serving processes sharing the ports, N or auto (default: the ConfigMap's worker-processes, else auto)"],
  ['worker-watchdog',                 'string',   '10s',                        'implemented', "keepip's own: a worker silent this long is killed and replaced (10s, 1500ms; at least 1s)"],
  ['shutdown-grace-period',           'int',      '0',                          'implemented', 'seconds to keep serving (healthz 500) after SIGTERM before draining'],
  ['post-shutdown-grace-period',      'int',      '10',                         'implemented', 'seconds to wait before exiting once in-flight requests are drained'],
  ['disable-sync-events',             'bool',     'false',                      'implemented', "do not create 'Sync' Events"],
  ['version',                         'bool',     'false',                      'implemented', 'print the version and exit'],
  ['bind-address',                    'string',   '0.0.0.0',                    'implemented', 'keepip: address of the HTTP and HTTPS listeners'],
  ['sync-period',                     'duration', '0',                          'no effect',   'keepip relies on watches and relists only on 410 Gone'],
  ['sync-rate-limit',                 'float',    '0.3',                        'no effect',   'changes are debounced into one swap instead'],
  ['profiling',                       'bool',     'true',                       'no effect',   'no pprof endpoint'],
  ['profiler-port',                   'int',      '10245',                      'no effect',   'no pprof endpoint'],
  ['profiler-address',                'string',   '127.0.0.1',                  'no effect',   'no pprof endpoint'],
  ['health-check-timeout',            'int',      '10',                         'no effect',   '/healthz answers from memory, no probe to time out'],
  ['enable-ssl-passthrough',          'bool',     'false',                      'implemented', 'honour ssl-passthrough: TLS for those hosts goes unread to the backend of their "/" path, under its source-address rules'],
  ['ssl-passthrough-proxy-port',      'int',      '442',                        'no effect',   'keepip hands TLS it does not pass through to its own TLS listener in-process: no internal proxy port'],
  ['disable-svc-external-name',       'bool',     'false',                      'implemented', 'ExternalName Services get no endpoint (503): Ingress authors cannot proxy to arbitrary hosts'],
  ['annotations-prefix',              'string',   DEFAULT_ANNOTATIONS_PREFIX,   'implemented', 'Ingress annotations are read under `<prefix>/` (and those under nginx.ingress.kubernetes.io/ then ignored)'],
  ['enable-annotation-validation',    'bool',     'true',                       'no effect',   'keepip always validates annotations'],
  ['enable-ssl-chain-completion',     'bool',     'false',                      'no effect',   'certificates are served as the Secret holds them'],
  ['metrics-per-host',                'bool',     'true',                       'implemented', 'a `host` label on nginx_ingress_controller_* request metrics; hosts no Ingress names are left out'],
  ['metrics-per-undefined-host',      'bool',     'false',                      'implemented', 'request metrics for hosts no Ingress names too (needs --metrics-per-host)'],
  ['report-status-classes',           'bool',     'false',                      'implemented', 'the `status` label of request metrics as 2xx, 4xx…'],
  ['time-buckets',                    'list',     '',                           'implemented', 'buckets (seconds) of request_, response_, connect_ and header_duration_seconds; default Prometheus\'s'],
  ['length-buckets',                  'list',     '',                           'implemented', 'buckets (bytes) of request_size and response_size; default 10, 20 … 100'],
  ['size-buckets',                    'list',     '',                           'implemented', 'buckets (bytes) of bytes_sent; default 10, 100 … 10^7'],
  ['bucket-factor',                   'float',    '0',                          'no effect',   METRICS],
  ['max-buckets',                     'int',      '100',                        'no effect',   METRICS],
  ['exclude-socket-metrics',          'list',     '',                           'implemented', 'request metrics neither counted nor exported (names with or without nginx_ingress_controller_)'],
  ['monitor-max-batch-size',          'int',      '10000',                      'no effect',   'requests are counted in the serving process: no batches sent to a collector'],
  ['default-server-port',             'int',      '8181',                       'no effect',   'the catch-all is served on the HTTP/HTTPS ports'],
  ['disable-catch-all',               'bool',     'false',                      'implemented', 'Ingresses with a spec.defaultBackend are ignored (not served, no status or events) and refused by the admission webhook'],
  ['disable-full-test',               'bool',     'false',                      'no effect',   'the webhook always checks the Ingress against the whole set'],
  ['status-port',                     'int',      '10246',                      'no effect',   NO_LUA],
  ['stream-port',                     'int',      '10247',                      'no effect',   NO_LUA],
  ['dynamic-configuration-retries',   'int',      '15',                         'no effect',   NO_LUA],
  ['internal-logger-address',         'string',   '127.0.0.1:11514',            'no effect',   NO_NGINX],
  ['deep-inspect',                    'bool',     'true',                       'no effect',   'keepip never renders annotations into a configuration file'],
  ['enable-topology-aware-routing',   'bool',     'false',                      'implemented', "Services with topology-mode Auto or trafficDistribution PreferClose: the endpoints hinted for the zone of the controller's node"],
  ['maxmind-license-key',             'string',   '',                           'no effect',   'no GeoIP'],
  ['maxmind-edition-ids',             'string',   'GeoLite2-City,GeoLite2-ASN', 'no effect',   'no GeoIP'],
  ['maxmind-mirror',                  'string',   '',                           'no effect',   'no GeoIP'],
  ['maxmind-retries-count',           'int',      '1',                          'no effect',   'no GeoIP'],
  ['maxmind-retries-timeout',         'duration', '0s',                         'no effect',   'no GeoIP'],
  // klog's flags, which ingress-nginx registers: keepip's log lines are its own.
  ['v',                               'int',      '0',                          'no effect',   'klog verbosity: keepip has one log level'],
  ['logtostderr',                     'bool',     'true',                       'no effect',   'klog: keepip logs to stderr'],
  ['alsologtostderr',                 'bool',     'false',                      'no effect',   'klog: keepip logs to stderr'],
  ['stderrthreshold',                 'string',   '2',                          'no effect',   'klog: keepip logs to stderr'],
  ['log_dir',                         'string',   '',                           'no effect',   'klog: keepip logs to stderr'],
  ['log_file',                        'string',   '',                           'no effect',   'klog: keepip logs to stderr'],
  ['log_file_max_size',               'int',      '1800',                       'no effect',   'klog: keepip logs to stderr'],
  ['add_dir_header',                  'bool',     'false',                      'no effect',   'klog: keepip logs to stderr'],
  ['skip_headers',                    'bool',     'false',                      'no effect',   'klog: keepip logs to stderr'],
  ['skip_log_headers',                'bool',     'false',                      'no effect',   'klog: keepip logs to stderr'],
  ['one_output',                      'bool',     'false',                      'no effect',   'klog: keepip logs to stderr'],
  ['vmodule',                         'string',   '',                           'no effect',   'klog: keepip has one log level'],
  ['log_backtrace_at',                'string',   '',                           'no effect',   'klog: keepip has one log level'],
];

/** Every flag `keepip controller` accepts, in the order docs/controller.md lists them. */
export const FLAGS: readonly FlagSpec[] = ROWS.map(([name, kind, defaultText, status, note]) => ({
  name,
  kind,
  default: defaultText,
  implemented: status === 'implemented',
  note,
}));

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
  /** --disable-catch-all: Ingresses with a spec.defaultBackend are not served. */
  disableCatchAll: boolean;
  /** --disable-svc-external-name: ExternalName Services have no endpoint (503). */
  disableServiceExternalName: boolean;
  /** --enable-topology-aware-routing: zone hints of EndpointSlices count (src/controller/zone.ts). */
  enableTopologyAwareRouting: boolean;
  /** --annotations-prefix, checked to be a DNS subdomain. */
  annotationsPrefix: string;
  /** --enable-ssl-passthrough: the ssl-passthrough annotation takes effect. */
  enableSslPassthrough: boolean;
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
  /** keepip's own --worker-watchdog (src/workers/watchdog.ts). */
  workerWatchdogMs: number;
  shutdownGracePeriodMs: number;
  postShutdownGracePeriodMs: number;
  disableSyncEvents: boolean;
  bindAddress: string;
  podNamespace: string;
  podName: string | null;
  /** --metrics-per-host and the other request metrics flags, with the controller's labels. */
  requestMetrics: RequestMetricsSettings;
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
  const options = buildOptions(v, env, errors, warnings);
  exclusive(options, errors);
  if (options.validatingWebhook && (!options.validatingWebhookCertificate || !options.validatingWebhookKey))
    errors.push('--validating-webhook needs --validating-webhook-certificate and --validating-webhook-key');
  if (errors.length > 0) return { ok: false, error: errors.join('; ') };
  return { ok: true, options, warnings };
}

/** Pairs ingress-nginx refuses to start with (pkg/flags): each answers the same question its own way. */
function exclusive(o: ControllerOptions, errors: string[]): void {
  if (o.publishService !== null && o.publishStatusAddress.length > 0)
    errors.push('flags --publish-service and --publish-status-address are mutually exclusive');
  if (o.watchNamespace !== '' && o.watchNamespaceSelector !== '')
    errors.push('flags --watch-namespace and --watch-namespace-selector are mutually exclusive');
}

function annotationsPrefixFlag(prefix: string, errors: string[]): string {
  const problem = annotationsPrefixProblem(prefix);
  if (problem !== null) errors.push(`--annotations-prefix: ${problem}`);
  return prefix;
}

/** ingress-nginx takes any integer and raises one below 5 to 5, with a warning. As milliseconds. */
function statusInterval(seconds: number, warnings: string[]): number {
  if (seconds < 5)
    warnings.push(`--status-update-interval ${seconds} is too low: 5 seconds instead, as ingress-nginx`);
  return Math.min(Math.max(5, seconds), 86_400) * 1000;
}

function buildOptions(
  v: ValueReader,
  env: Readonly<Record<string, string | undefined>>,
  errors: string[],
  warnings: string[],
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
    statusUpdateIntervalMs: statusInterval(int('status-update-interval', -(2 ** 31), 2 ** 31 - 1), warnings),
    reportNodeInternalIp: bool('report-node-internal-ip-address'),
    electionId: text('election-id'),
    lease,
    disableLeaderElection: bool('disable-leader-election'),
    defaultSslCertificate: ref('default-ssl-certificate'),
    defaultBackendService: ref('default-backend-service'),
    disableCatchAll: bool('disable-catch-all'),
    disableServiceExternalName: bool('disable-svc-external-name'),
    enableTopologyAwareRouting: bool('enable-topology-aware-routing'),
    annotationsPrefix: annotationsPrefixFlag(text('annotations-prefix'), errors),
    enableSslPassthrough: bool('enable-ssl-passthrough'),
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
    workerWatchdogMs: watchdogFlag(text('worker-watchdog'), errors),
    shutdownGracePeriodMs: int('shutdown-grace-period', 0, 86_400) * 1000,
    postShutdownGracePeriodMs: int('post-shutdown-grace-period', 0, 86_400) * 1000,
    disableSyncEvents: bool('disable-sync-events'),
    bindAddress: text('bind-address'),
    podNamespace,
    podName: env.POD_NAME ?? null,
    requestMetrics: requestMetricsFlags(
      v,
      env,
      { controllerClass: text('controller-class'), podNamespace },
      errors,
    ),
  };
  return options;
}

/** --worker-watchdog: a duration of at least 1s. */
function watchdogFlag(text: string, errors: string[]): number {
  const parsed = parseWatchdog(text);
  if (parsed.ok) return parsed.value;
  errors.push(`--worker-watchdog: ${parsed.error} [${parsed.code}]`);
  return DEFAULT_WATCHDOG_MS;
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
