// The codes src/lb/ reports: its config checks (LbConfigError), the plan built from manifests
// (PlanProblem) and startLoadBalancer's refusal. src/errors.ts merges this table into the registry
// behind docs/errors.md; test/errors.test.ts holds LbConfigError and PlanProblem codes to it.
import type { CodeTable } from '../error-table.ts';

export const LB_CODES = {
  LB_BAD_LISTEN_ADDRESS: {
    kind: 'error',
    summary: 'the listen address is not IP:PORT',
    fix: 'pass --listen IP:PORT',
  },
  LB_BAD_TARGET: {
    kind: 'error',
    summary: 'a target is not IP:PORT with a port 1-65535',
    fix: 'pass --target IP:PORT',
  },
  LB_BAD_SOURCE_ADDRESS: {
    kind: 'error',
    summary: 'the source address for target connections is not an IP address',
    fix: 'pass an address local to this machine',
  },
  LB_BAD_ALGORITHM: {
    kind: 'error',
    summary: 'the target selection algorithm is unknown',
    fix: 'use flow-hash, round-robin or least-conn',
  },
  LB_BAD_PROXY_PROTOCOL: {
    kind: 'error',
    summary: 'the PROXY protocol setting is neither v1, v2 nor off',
    fix: 'use v1 or v2, or leave PROXY protocol off',
  },
  LB_TLVS_NEED_V2: {
    kind: 'error',
    summary: 'TLVs (unique id, CRC32C, VPC endpoint id) were asked for without PROXY v2',
    fix: 'enable PROXY v2 or drop the TLV options',
  },
  LB_BAD_VPC_ENDPOINT_ID: {
    kind: 'error',
    summary: 'the VPC endpoint id TLV value is not 1-255 printable ASCII characters',
    fix: 'pass an id of the form vpce-0123abcd',
  },
  LB_BAD_HEALTH_CHECK: {
    kind: 'error',
    summary: 'the health check settings are out of range (port, path, interval, thresholds)',
    fix: 'correct the setting the message names',
  },
  LB_BAD_TIMEOUT: {
    kind: 'error',
    summary:
      "the idle timeout or deregistration delay is not a number of milliseconds from 0 to 2147483647 (24.8 days, setTimeout's longest: a longer delay would fire at once)",
    fix: 'pass a duration from 0 to 24 days',
  },
  LB_BAD_SOURCE_RANGE: {
    kind: 'error',
    summary: 'an allowed source range (loadBalancerSourceRanges) is not a CIDR or IP address',
    fix: 'correct the range the message names',
  },
  LB_CONFIG_INVALID: {
    kind: 'thrown',
    summary: 'startLoadBalancer was given a config that validateLbConfig refuses; nothing listens',
    fix: 'validate first and fix the LB_* errors it carries',
  },
  LB_NO_LOAD_BALANCER: {
    kind: 'error',
    summary: 'keepip lb -f: the manifests hold no Service of type LoadBalancer',
    fix: 'add one, or pass --listen and --target',
  },
  LB_SERVICE_NOT_FOUND: {
    kind: 'error',
    summary: 'keepip lb --service names no LoadBalancer Service in the manifests',
    fix: 'pass namespace/name of an existing LoadBalancer Service',
  },
  LB_NO_TCP_PORT: {
    kind: 'error',
    summary: 'the LoadBalancer Service has no TCP port to listen on',
    fix: 'add a TCP port to the Service',
  },
  LB_NO_TARGETS: {
    kind: 'error',
    summary:
      'a listener has no targets: no node address with a nodePort (instance targets) or no ready endpoint (ip targets)',
    fix: 'add Nodes or EndpointSlices to the manifests, or pass --target',
  },
  LB_LISTEN_AMBIGUOUS: {
    kind: 'error',
    summary: '--listen names one address but the manifests describe several listeners',
    fix: 'pick one with --service, or drop --listen',
  },
} as const satisfies CodeTable;

export type LbCode = keyof typeof LB_CODES;
