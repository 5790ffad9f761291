// The annotations of the AWS family (`service.beta.kubernetes.io/aws-load-balancer-*`) that either AWS
// provider reads, and the check that reports the rest.
import { type LbContext, SVC, warn } from './provider.ts';

export const AWS = `${SVC}aws-load-balancer-`;

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

/** Reports every aws-load-balancer-* annotation neither AWS provider reads (most likely a typo). */
export function checkAwsAnnotations(ctx: LbContext): void {
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
