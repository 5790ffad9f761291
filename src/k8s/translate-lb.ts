// Services of type LoadBalancer → the cloud load balancer they ask for: provider, PROXY protocol,
// client-IP preservation, target type, health check, and where `keepip up` puts it on 127.0.0.0/8.
import type {
  ConfigIssue,
  HealthCheckModel,
  LbProvider,
  LoadBalancerModel,
  ProxyProtocolVersion,
} from '../config/model.ts';
import { CLIENT_PATHS, type ClientPath } from '../config/client-path.ts';
import { canonicalIp } from '../net/ip.ts';
import { annotationField } from './field-path.ts';
import type { ServiceView } from './objects.ts';
import { describeOrigin } from './reader.ts';
import { sourceRangeModel } from './source-range.ts';
import { compare } from './translate-services.ts';
import { parseGoBool, parseUint } from './values.ts';

const SVC = 'service.beta.kubernetes.io/';
const AWS = `${SVC}aws-load-balancer-`;
export const KEEPIP_ANNOTATION_PREFIX = 'keepip.dev/';
export const LB_SOURCE_ADDRESS_ANNOTATION = 'keepip.dev/lb-source-address';
export const VPC_ENDPOINT_ID_ANNOTATION = 'keepip.dev/vpc-endpoint-id';
export const CLIENT_PATH_ANNOTATION = 'keepip.dev/client-path';
const KEEPIP_ANNOTATIONS = [LB_SOURCE_ADDRESS_ANNOTATION, VPC_ENDPOINT_ID_ANNOTATION, CLIENT_PATH_ANNOTATION];

/**
 * Annotation suffixes after `service.beta.kubernetes.io/aws-load-balancer-` that the AWS Load Balancer
 * Controller (pkg/annotations/constants.go, v2.x) or the legacy in-tree provider (Classic ELB) reads.
 * Anything else with that prefix is most likely a typo and is reported.
 */
export const KNOWN_AWS_ANNOTATIONS: ReadonlySet<string> = new Set([
  // AWS Load Balancer Controller
  'type',
  'nlb-target-type',
  'name',
  'scheme',
  'internal',
  'proxy-protocol',
  'proxy-protocol-per-target-group',
  'ip-address-type',
  'access-log-enabled',
  'access-log-s3-bucket-name',
  'access-log-s3-bucket-prefix',
  'cross-zone-load-balancing-enabled',
  'ssl-cert',
  'ssl-ports',
  'ssl-negotiation-policy',
  'backend-protocol',
  'additional-resource-tags',
  'healthcheck-healthy-threshold',
  'healthcheck-unhealthy-threshold',
  'healthcheck-timeout',
  'healthcheck-interval',
  'healthcheck-protocol',
  'healthcheck-port',
  'healthcheck-path',
  'healthcheck-success-codes',
  'target-group-attributes',
  'subnets',
  'eip-allocations',
  'eip-allocations-discovery-tags',
  'private-ipv4-addresses',
  'ipv6-addresses',
  'alpn-policy',
  'target-node-labels',
  'attributes',
  'security-groups',
  'manage-backend-security-group-rules',
  'inbound-sg-rules-on-private-link-traffic',
  'security-group-prefix-lists',
  'multi-cluster-target-group',
  'enable-prefix-for-ipv6-source-nat',
  'source-nat-ipv6-prefixes',
  'minimum-load-balancer-capacity',
  'enable-icmp-for-path-mtu-discovery',
  'enable-tcp-udp-listener',
  'disable-nlb-sg',
  'quic-enabled-ports',
  'quic-enabled-containers',
  // legacy in-tree provider (Classic ELB) only
  'access-log-emit-interval',
  'connection-draining-enabled',
  'connection-draining-timeout',
  'connection-idle-timeout',
  'extra-security-groups',
]);
/** `aws-load-balancer-listener-attributes.TCP-80` and friends: one annotation per listener. */
const AWS_ANNOTATION_PREFIXES = ['listener-attributes.'];

type Provider = Exclude<LbProvider, 'aws-nlb' | 'aws-elb'>;
/** How each non-AWS provider is recognised: any annotation with one of these prefixes. */
const PROVIDER_PREFIXES: readonly [Provider, readonly string[]][] = [
  ['digitalocean', [`${SVC}do-loadbalancer-`]],
  ['hetzner', ['load-balancer.hetzner.cloud/']],
  ['linode', [`${SVC}linode-loadbalancer-`]],
  ['scaleway', [`${SVC}scw-loadbalancer-`]],
  ['openstack', ['loadbalancer.openstack.org/', `${SVC}openstack-internal-load-balancer`]],
  [
    'oracle',
    [`${SVC}oci-load-balancer-`, 'oci.oraclecloud.com/', 'oci-network-load-balancer.oraclecloud.com/'],
  ],
  ['azure', [`${SVC}azure-`]],
  ['gke', ['cloud.google.com/load-balancer-type', 'networking.gke.io/', 'cloud.google.com/l4-rbs']],
  ['metallb', ['metallb.universe.tf/', 'metallb.io/']],
];

interface Ctx {
  svc: ServiceView;
  issues: ConfigIssue[];
  annotations: Readonly<Record<string, string>>;
}

function warn(
  ctx: Ctx,
  code: ConfigIssue['code'],
  key: string | null,
  message: string,
  severity: ConfigIssue['severity'] = 'warning',
): void {
  const field =
    key === null ? null : key.startsWith('spec.') || key.startsWith('status.') ? key : annotationField(key);
  ctx.issues.push({
    severity,
    code,
    message: `${describeOrigin(ctx.svc.origin)}${field ? ` ${field}` : ''}: ${message}`,
    origin: ctx.svc.origin,
    ...(field ? { field } : {}),
  });
}

export interface ProviderChoice {
  provider: LbProvider;
  /** True for NLBs made by the AWS Load Balancer Controller (type external/nlb-ip or the class). */
  awsController: boolean;
}

export function detectProvider(svc: ServiceView, issues: ConfigIssue[] = []): ProviderChoice {
  const ctx: Ctx = { svc, issues, annotations: svc.meta.annotations };
  const keys = Object.keys(svc.meta.annotations);
  const found: Provider[] = PROVIDER_PREFIXES.filter(([, prefixes]) =>
    keys.some((k) => prefixes.some((p) => k.startsWith(p))),
  ).map(([p]) => p);
  const hasAws = keys.some((k) => k.startsWith(AWS));
  const type = svc.meta.annotations[`${AWS}type`];
  let choice: ProviderChoice;
  if (svc.loadBalancerClass === 'service.k8s.aws/nlb') choice = { provider: 'aws-nlb', awsController: true };
  else if (type === 'external' || type === 'nlb-ip') choice = { provider: 'aws-nlb', awsController: true };
  else if (type === 'nlb') choice = { provider: 'aws-nlb', awsController: false };
  else if (hasAws) {
    if (type !== undefined)
      warn(
        ctx,
        'CONFLICTING_LB_ANNOTATIONS',
        `${AWS}type`,
        `unknown load balancer type ${JSON.stringify(type)} (external, nlb or nlb-ip); treated as a Classic ELB`,
      );
    choice = { provider: 'aws-elb', awsController: false };
  } else if (svc.loadBalancerClass?.includes('metallb'))
    choice = { provider: 'metallb', awsController: false };
  else if (found.length > 0) choice = { provider: found[0]!, awsController: false };
  else choice = { provider: 'generic', awsController: false };
  const others = found.filter((p) => p !== choice.provider);
  if (others.length > 0) {
    warn(
      ctx,
      'CONFLICTING_LB_ANNOTATIONS',
      null,
      `annotations of several load balancer providers (${[choice.provider, ...others].join(', ')}); modelled as ${choice.provider}`,
    );
  }
  return choice;
}

/** Translates every LoadBalancer Service, numbering them in namespace/name order for loopback defaults. */
export function translateLoadBalancers(
  services: readonly ServiceView[],
  issues: ConfigIssue[],
): LoadBalancerModel[] {
  const lbs = services
    .filter((s) => s.type === 'LoadBalancer')
    .sort((a, b) => compare(`${a.meta.namespace}/${a.meta.name}`, `${b.meta.namespace}/${b.meta.name}`));
  return lbs.map((svc, i) => translateLoadBalancer(svc, i + 1, issues));
}

/** The loopback address `keepip up` gives the N-th load balancer when its status has no IP. */
export function defaultListenAddress(n: number): string {
  return `127.0.10.${n}`;
}
/** The LB's own private address for the N-th load balancer, unless keepip.dev/lb-source-address says. */
export function defaultSourceAddress(n: number): string {
  return `127.0.11.${n}`;
}
const MAX_LOOPBACK_LBS = 254;

export function translateLoadBalancer(svc: ServiceView, n: number, issues: ConfigIssue[]): LoadBalancerModel {
  const ctx: Ctx = { svc, issues, annotations: svc.meta.annotations };
  const { provider, awsController } = detectProvider(svc, issues);
  const a = svc.meta.annotations;

  let settings: ProviderSettings;
  if (provider === 'aws-nlb' || provider === 'aws-elb') {
    checkAwsAnnotations(ctx);
    settings = provider === 'aws-nlb' ? awsNlb(ctx, awsController) : awsElb(ctx);
  } else settings = otherProvider(ctx, provider);

  if (n > MAX_LOOPBACK_LBS) {
    warn(
      ctx,
      'TOO_MANY_LOAD_BALANCERS',
      null,
      `more than ${MAX_LOOPBACK_LBS} load balancers: the default loopback addresses run out`,
      'error',
    );
  }
  let listenAddress = defaultListenAddress(Math.min(n, MAX_LOOPBACK_LBS));
  const statusIp = svc.statusIngress[0]?.ip ?? null;
  if (statusIp !== null && statusIp !== '') {
    const ip = canonicalIp(statusIp);
    if (ip === null)
      warn(
        ctx,
        'MANIFEST_INVALID_FIELD',
        'status.loadBalancer.ingress[0].ip',
        `${JSON.stringify(statusIp)} is not an IP address; using ${listenAddress}`,
        'error',
      );
    else listenAddress = ip;
  }
  let sourceAddress = defaultSourceAddress(Math.min(n, MAX_LOOPBACK_LBS));
  const src = a[LB_SOURCE_ADDRESS_ANNOTATION];
  if (src !== undefined) {
    const ip = canonicalIp(src.trim());
    if (ip === null)
      warn(
        ctx,
        'INVALID_KEEPIP_ANNOTATION',
        LB_SOURCE_ADDRESS_ANNOTATION,
        `${JSON.stringify(src)} is not an IP address; using ${sourceAddress}`,
        'error',
      );
    else sourceAddress = ip;
  }
  let vpcEndpointId: string | null = null;
  const vpce = a[VPC_ENDPOINT_ID_ANNOTATION];
  if (vpce !== undefined) {
    // The TLV carries the id as ASCII; AWS ids are "vpce-" and hex digits.
    if (/^vpce-[0-9a-z]{1,32}$/.test(vpce.trim())) vpcEndpointId = vpce.trim();
    else
      warn(
        ctx,
        'INVALID_KEEPIP_ANNOTATION',
        VPC_ENDPOINT_ID_ANNOTATION,
        `${JSON.stringify(vpce)} is not a VPC endpoint id (vpce-…); ignored`,
      );
  }
  let clientPath: ClientPath | null = null;
  const cp = a[CLIENT_PATH_ANNOTATION];
  if (cp !== undefined) {
    if ((CLIENT_PATHS as readonly string[]).includes(cp.trim())) clientPath = cp.trim() as ClientPath;
    else
      warn(
        ctx,
        'INVALID_KEEPIP_ANNOTATION',
        CLIENT_PATH_ANNOTATION,
        `${JSON.stringify(cp)} is not one of ${CLIENT_PATHS.join(', ')}; ignored`,
      );
  }
  for (const key of Object.keys(a)) {
    if (key.startsWith(KEEPIP_ANNOTATION_PREFIX) && !KEEPIP_ANNOTATIONS.includes(key)) {
      warn(
        ctx,
        'UNKNOWN_KEEPIP_ANNOTATION',
        key,
        `keepip does not know this annotation (known: ${KEEPIP_ANNOTATIONS.join(', ')})`,
      );
    }
  }

  return {
    id: `${svc.meta.namespace}/${svc.meta.name}`,
    service: { namespace: svc.meta.namespace, name: svc.meta.name },
    origin: svc.origin,
    provider,
    scheme: settings.scheme,
    targetType: settings.targetType,
    proxyProtocol: settings.proxyProtocol,
    preserveClientIp: settings.preserveClientIp,
    listenAddress,
    sourceAddress,
    ports: svc.ports,
    externalTrafficPolicy: svc.externalTrafficPolicy,
    healthCheckNodePort: svc.healthCheckNodePort,
    healthCheck: settings.healthCheck,
    loadBalancerSourceRanges: sourceRanges(ctx),
    vpcEndpointId,
    statusHasHostnameOrProxyMode: svc.statusIngress.some(
      (s) => (s.hostname ?? '') !== '' || s.ipMode === 'Proxy',
    ),
    selector: svc.selector,
    clientPath,
    annotations: a,
  };
}

interface ProviderSettings {
  scheme: LoadBalancerModel['scheme'];
  targetType: LoadBalancerModel['targetType'];
  proxyProtocol: ProxyProtocolVersion | null;
  preserveClientIp: boolean;
  healthCheck: HealthCheckModel;
}

function checkAwsAnnotations(ctx: Ctx): void {
  for (const key of Object.keys(ctx.annotations)) {
    if (!key.startsWith(AWS)) continue;
    const suffix = key.slice(AWS.length);
    if (KNOWN_AWS_ANNOTATIONS.has(suffix) || AWS_ANNOTATION_PREFIXES.some((p) => suffix.startsWith(p)))
      continue;
    warn(
      ctx,
      'UNKNOWN_LB_ANNOTATION',
      key,
      'not an annotation the AWS Load Balancer Controller or the in-tree AWS provider reads (a typo?); it has no effect',
    );
  }
}

/** `k1=v1,k2=v2` as the controller's stringMap annotations are written. */
function parseStringMap(ctx: Ctx, key: string): Map<string, string> {
  const out = new Map<string, string>();
  const raw = ctx.annotations[key];
  if (raw === undefined) return out;
  for (const part of raw.split(',')) {
    const entry = part.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      warn(ctx, 'INVALID_LB_ANNOTATION', key, `${JSON.stringify(entry)} is not key=value; ignored`);
      continue;
    }
    out.set(entry.slice(0, eq).trim(), entry.slice(eq + 1).trim());
  }
  return out;
}

function attributeBool(ctx: Ctx, attrs: Map<string, string>, name: string, key: string): boolean | null {
  const v = attrs.get(name);
  if (v === undefined) return null;
  if (v === 'true') return true;
  if (v === 'false') return false;
  warn(ctx, 'INVALID_LB_ANNOTATION', key, `${name}=${JSON.stringify(v)} is not true or false; ignored`);
  return null;
}

function awsScheme(ctx: Ctx, fallback: LoadBalancerModel['scheme']): LoadBalancerModel['scheme'] {
  const scheme = ctx.annotations[`${AWS}scheme`];
  const internalRaw = ctx.annotations[`${AWS}internal`];
  let fromInternal: LoadBalancerModel['scheme'] | null = null;
  if (internalRaw !== undefined) {
    const b = parseGoBool(internalRaw);
    // The in-tree provider also took a CIDR such as 0.0.0.0/0 to mean "internal".
    fromInternal =
      b === false ? 'internet-facing' : b === true || internalRaw.includes('/') ? 'internal' : null;
    if (fromInternal === null)
      warn(
        ctx,
        'INVALID_LB_ANNOTATION',
        `${AWS}internal`,
        `${JSON.stringify(internalRaw)} is not true or false; ignored`,
      );
  }
  if (scheme !== undefined) {
    if (scheme !== 'internal' && scheme !== 'internet-facing') {
      warn(
        ctx,
        'INVALID_LB_ANNOTATION',
        `${AWS}scheme`,
        `${JSON.stringify(scheme)} is not internal or internet-facing; ignored`,
      );
    } else {
      if (fromInternal !== null && fromInternal !== scheme) {
        warn(
          ctx,
          'CONFLICTING_LB_ANNOTATIONS',
          `${AWS}internal`,
          `says ${fromInternal} but aws-load-balancer-scheme says ${scheme}, which wins`,
        );
      }
      return scheme;
    }
  }
  return fromInternal ?? fallback;
}

/** AWS health-check annotation values, each validated against the target group's limits. */
function awsHealthCheck(ctx: Ctx, defaults: HealthCheckModel): HealthCheckModel {
  const hc: HealthCheckModel = { ...defaults };
  const proto = ctx.annotations[`${AWS}healthcheck-protocol`];
  if (proto !== undefined) {
    const p = proto.trim().toLowerCase();
    if (p === 'tcp' || p === 'http') hc.protocol = p;
    else if (p === 'https') {
      hc.protocol = 'http';
      warn(
        ctx,
        'LB_HEALTHCHECK_HTTPS_AS_HTTP',
        `${AWS}healthcheck-protocol`,
        'HTTPS health checks are modelled as HTTP (keepip lb does not check certificates)',
        'info',
      );
    } else
      warn(
        ctx,
        'INVALID_LB_ANNOTATION',
        `${AWS}healthcheck-protocol`,
        `${JSON.stringify(proto)} is not tcp, http or https; using ${hc.protocol}`,
      );
    // HTTP and TCP have different default timeouts; an explicit protocol picks its own.
    if (
      proto.trim().toLowerCase() !== defaults.protocol &&
      ctx.annotations[`${AWS}healthcheck-timeout`] === undefined
    ) {
      hc.timeoutMs = hc.protocol === 'http' ? 6_000 : 10_000;
    }
  }
  const port = ctx.annotations[`${AWS}healthcheck-port`];
  if (port !== undefined) {
    if (port.trim() === 'traffic-port') hc.port = 'traffic-port';
    else {
      const n = parseUint(port, 65535);
      if (n !== null && n > 0) hc.port = n;
      else
        warn(
          ctx,
          'INVALID_LB_ANNOTATION',
          `${AWS}healthcheck-port`,
          `${JSON.stringify(port)} is not traffic-port or a port number; using ${hc.port}`,
        );
    }
  }
  const path = ctx.annotations[`${AWS}healthcheck-path`];
  if (path !== undefined) {
    if (/^\/[\x21-\x7e]*$/.test(path.trim())) hc.path = path.trim();
    else
      warn(
        ctx,
        'INVALID_LB_ANNOTATION',
        `${AWS}healthcheck-path`,
        `${JSON.stringify(path)} is not a path; using ${hc.path}`,
      );
  }
  const int = (suffix: string, min: number, max: number, apply: (v: number) => void, current: number) => {
    const v = ctx.annotations[`${AWS}${suffix}`];
    if (v === undefined) return;
    const n = parseUint(v, max);
    if (n !== null && n >= min) apply(n);
    else
      warn(
        ctx,
        'INVALID_LB_ANNOTATION',
        `${AWS}${suffix}`,
        `${JSON.stringify(v)} is not a whole number from ${min} to ${max}; using ${current}`,
      );
  };
  int(
    'healthcheck-interval',
    5,
    300,
    (v) => {
      hc.intervalMs = v * 1000;
    },
    hc.intervalMs / 1000,
  );
  int(
    'healthcheck-timeout',
    2,
    120,
    (v) => {
      hc.timeoutMs = v * 1000;
    },
    hc.timeoutMs / 1000,
  );
  int(
    'healthcheck-healthy-threshold',
    2,
    10,
    (v) => {
      hc.healthyThreshold = v;
    },
    hc.healthyThreshold,
  );
  int(
    'healthcheck-unhealthy-threshold',
    2,
    10,
    (v) => {
      hc.unhealthyThreshold = v;
    },
    hc.unhealthyThreshold,
  );
  return hc;
}

/** TCP to the traffic port, AWS's target-group defaults (interval 10s, timeout 10s, 3/3). */
export function defaultTcpHealthCheck(): HealthCheckModel {
  return {
    protocol: 'tcp',
    port: 'traffic-port',
    path: '/',
    intervalMs: 10_000,
    timeoutMs: 10_000,
    healthyThreshold: 3,
    unhealthyThreshold: 3,
  };
}

/** externalTrafficPolicy Local with node targets: kube-proxy's health check node port, HTTP /healthz. */
function localHealthCheck(svc: ServiceView): HealthCheckModel {
  return {
    protocol: 'http',
    port: svc.healthCheckNodePort ?? 'traffic-port',
    path: '/healthz',
    intervalMs: 10_000,
    timeoutMs: 6_000,
    healthyThreshold: 2,
    unhealthyThreshold: 2,
  };
}

function awsNlb(ctx: Ctx, awsController: boolean): ProviderSettings {
  const a = ctx.annotations;
  const type = a[`${AWS}type`];
  let targetType: LoadBalancerModel['targetType'] = type === 'nlb-ip' ? 'ip' : 'instance';
  const tt = a[`${AWS}nlb-target-type`];
  if (tt !== undefined) {
    if (tt !== 'instance' && tt !== 'ip')
      warn(
        ctx,
        'INVALID_LB_ANNOTATION',
        `${AWS}nlb-target-type`,
        `${JSON.stringify(tt)} is not instance or ip; using ${targetType}`,
      );
    else {
      if (type === 'nlb-ip' && tt !== 'ip')
        warn(
          ctx,
          'CONFLICTING_LB_ANNOTATIONS',
          `${AWS}nlb-target-type`,
          `"${tt}" contradicts aws-load-balancer-type: nlb-ip; the target type stays ip`,
        );
      else targetType = tt;
    }
  }
  // The controller defaults to internal; the in-tree NLB (type nlb) to internet-facing.
  const scheme = awsScheme(ctx, awsController ? 'internal' : 'internet-facing');

  const tgKey = `${AWS}target-group-attributes`;
  const attrs = parseStringMap(ctx, tgKey);
  const ppAttr = attributeBool(ctx, attrs, 'proxy_protocol_v2.enabled', tgKey);
  const preserveAttr = attributeBool(ctx, attrs, 'preserve_client_ip.enabled', tgKey);
  let proxyProtocol: ProxyProtocolVersion | null = ppAttr === true ? 'v2' : null;
  const ppKey = `${AWS}proxy-protocol`;
  const pp = a[ppKey];
  if (pp !== undefined) {
    if (pp.trim() === '*') {
      if (ppAttr === false)
        warn(
          ctx,
          'CONFLICTING_LB_ANNOTATIONS',
          ppKey,
          '"*" enables PROXY protocol v2 but target-group-attributes says proxy_protocol_v2.enabled=false; the proxy-protocol annotation wins (PROXY v2 on)',
        );
      proxyProtocol = 'v2';
    } else {
      warn(
        ctx,
        'CONFLICTING_LB_ANNOTATIONS',
        ppKey,
        `${JSON.stringify(pp)} is not "*", the only value the controller accepts; ignored (PROXY protocol ${proxyProtocol ? 'stays on from target-group-attributes' : 'stays off'})`,
      );
    }
  }
  // Rule A1: instance targets preserve the client address by default, ip targets (TCP/TLS) do not.
  const preserveClientIp = preserveAttr ?? targetType === 'instance';
  const defaults =
    targetType === 'instance' && ctx.svc.externalTrafficPolicy === 'Local'
      ? localHealthCheck(ctx.svc)
      : defaultTcpHealthCheck();
  return { scheme, targetType, proxyProtocol, preserveClientIp, healthCheck: awsHealthCheck(ctx, defaults) };
}

function awsElb(ctx: Ctx): ProviderSettings {
  const pp = ctx.annotations[`${AWS}proxy-protocol`];
  let proxyProtocol: ProxyProtocolVersion | null = null;
  if (pp !== undefined) {
    // A Classic ELB speaks PROXY v1 only.
    if (pp.trim() === '*') proxyProtocol = 'v1';
    else
      warn(
        ctx,
        'CONFLICTING_LB_ANNOTATIONS',
        `${AWS}proxy-protocol`,
        `${JSON.stringify(pp)} is not "*"; ignored (PROXY protocol stays off)`,
      );
  }
  for (const suffix of ['nlb-target-type', 'target-group-attributes']) {
    if (ctx.annotations[`${AWS}${suffix}`] !== undefined) {
      warn(
        ctx,
        'CONFLICTING_LB_ANNOTATIONS',
        `${AWS}${suffix}`,
        'an NLB annotation on a Service without aws-load-balancer-type (external, nlb or nlb-ip): the in-tree provider makes a Classic ELB, which ignores it',
      );
    }
  }
  // In-tree Classic ELB health-check defaults: TCP to the node port every 10s, timeout 5s, 2/6.
  const defaults: HealthCheckModel =
    ctx.svc.externalTrafficPolicy === 'Local'
      ? localHealthCheck(ctx.svc)
      : {
          protocol: 'tcp',
          port: 'traffic-port',
          path: '/',
          intervalMs: 10_000,
          timeoutMs: 5_000,
          healthyThreshold: 2,
          unhealthyThreshold: 6,
        };
  return {
    scheme: awsScheme(ctx, 'internet-facing'),
    targetType: 'instance',
    proxyProtocol,
    // A Classic ELB is a proxy: targets always see its address.
    preserveClientIp: false,
    healthCheck: awsHealthCheck(ctx, defaults),
  };
}

function otherProvider(ctx: Ctx, provider: Provider): ProviderSettings {
  const a = ctx.annotations;
  let proxyProtocol: ProxyProtocolVersion | null = null;
  let internal = false;
  const boolAnnotation = (key: string): boolean => {
    const v = a[key];
    if (v === undefined) return false;
    const b = parseGoBool(v);
    if (b === null)
      warn(ctx, 'INVALID_LB_ANNOTATION', key, `${JSON.stringify(v)} is not true or false; treated as false`);
    return b === true;
  };
  switch (provider) {
    case 'digitalocean':
      if (boolAnnotation(`${SVC}do-loadbalancer-enable-proxy-protocol`)) proxyProtocol = 'v1';
      break;
    case 'hetzner':
      if (boolAnnotation('load-balancer.hetzner.cloud/uses-proxyprotocol')) proxyProtocol = 'v1';
      internal = boolAnnotation('load-balancer.hetzner.cloud/disable-public-network');
      break;
    case 'linode': {
      const key = `${SVC}linode-loadbalancer-default-proxy-protocol`;
      const v = a[key];
      if (v === 'v1' || v === 'v2') proxyProtocol = v;
      else if (v !== undefined && v !== 'none')
        warn(
          ctx,
          'INVALID_LB_ANNOTATION',
          key,
          `${JSON.stringify(v)} is not none, v1 or v2; treated as none`,
        );
      break;
    }
    case 'scaleway':
      // The value is "*" / "true" for every port or a list of ports; keepip models the LB as a whole.
      for (const [suffix, version] of [
        ['v1', 'v1'],
        ['v2', 'v2'],
      ] as const) {
        const v = a[`${SVC}scw-loadbalancer-proxy-protocol-${suffix}`];
        if (v !== undefined && v.trim() !== '' && v.trim() !== 'false') {
          if (proxyProtocol !== null && proxyProtocol !== version) {
            warn(
              ctx,
              'CONFLICTING_LB_ANNOTATIONS',
              `${SVC}scw-loadbalancer-proxy-protocol-${suffix}`,
              'both PROXY v1 and v2 are enabled; v2 wins',
            );
          }
          proxyProtocol = version;
        }
      }
      break;
    case 'openstack': {
      const key = 'loadbalancer.openstack.org/proxy-protocol';
      const v = a[key]?.trim();
      if (v === 'v1' || v === 'v2') proxyProtocol = v;
      else if (v !== undefined && parseGoBool(v) === true) proxyProtocol = 'v1';
      else if (v !== undefined && parseGoBool(v) !== false)
        warn(
          ctx,
          'INVALID_LB_ANNOTATION',
          key,
          `${JSON.stringify(v)} is not v1, v2, true or false; treated as off`,
        );
      internal = boolAnnotation(`${SVC}openstack-internal-load-balancer`);
      break;
    }
    case 'oracle': {
      const key = `${SVC}oci-load-balancer-connection-proxy-protocol-version`;
      const v = a[key]?.trim();
      if (v === '1') proxyProtocol = 'v1';
      else if (v === '2') proxyProtocol = 'v2';
      else if (v !== undefined)
        warn(ctx, 'INVALID_LB_ANNOTATION', key, `${JSON.stringify(v)} is not "1" or "2"; treated as off`);
      internal = boolAnnotation(`${SVC}oci-load-balancer-internal`);
      break;
    }
    case 'azure':
      // Private Link Service traffic only; the Azure load balancer itself is pass-through.
      if (boolAnnotation(`${SVC}azure-pls-proxy-protocol`)) proxyProtocol = 'v2';
      internal = boolAnnotation(`${SVC}azure-load-balancer-internal`);
      break;
    case 'gke':
      internal = ['internal'].includes(
        (
          a['networking.gke.io/load-balancer-type'] ??
          a['cloud.google.com/load-balancer-type'] ??
          ''
        ).toLowerCase(),
      );
      break;
    case 'metallb':
    case 'generic':
      break;
  }
  // Pass-through load balancers keep the client address; proxies (the rest) replace it with their own.
  const passThrough =
    provider === 'gke' || provider === 'metallb' || provider === 'generic' || provider === 'azure';
  return {
    scheme: internal ? 'internal' : 'internet-facing',
    targetType: 'instance',
    proxyProtocol,
    preserveClientIp: passThrough,
    healthCheck:
      ctx.svc.externalTrafficPolicy === 'Local' ? localHealthCheck(ctx.svc) : defaultTcpHealthCheck(),
  };
}

function sourceRanges(ctx: Ctx): string[] {
  const key = `${SVC}load-balancer-source-ranges`;
  const fromSpec = ctx.svc.loadBalancerSourceRanges.length > 0;
  const entries = fromSpec
    ? ctx.svc.loadBalancerSourceRanges
    : (ctx.annotations[key] ?? '').split(',').filter((s) => s.trim() !== '');
  if (fromSpec && ctx.annotations[key] !== undefined) {
    warn(ctx, 'CONFLICTING_LB_ANNOTATIONS', key, 'spec.loadBalancerSourceRanges is also set and wins');
  }
  const out: string[] = [];
  entries.forEach((entry, i) => {
    const parsed = sourceRangeModel(entry, 'annotation');
    if (parsed.valid) out.push(...parsed.cidrs);
    else {
      const field = fromSpec ? `spec.loadBalancerSourceRanges[${i}]` : key;
      warn(
        ctx,
        'INVALID_LB_SOURCE_RANGE',
        field,
        `${JSON.stringify(entry)} is not a CIDR; entry dropped${out.length === 0 && i === entries.length - 1 ? ' and no valid entry remains: the load balancer is open to everyone' : ''}`,
        'error',
      );
    }
  });
  return [...new Set(out)];
}
