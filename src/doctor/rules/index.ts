// Every rule the doctor runs, in the order findings are listed (within one severity).
import { rule as accessKeyedOnSharedAddress } from './access-keyed-on-shared-address.ts';
import { rule as clientIpLostAtKubeProxy } from './client-ip-lost-at-kube-proxy.ts';
import { rule as clientIpLostAtLb } from './client-ip-lost-at-lb.ts';
import { rule as clientViaTransitGateway } from './client-via-transit-gateway.ts';
import { rule as forwardedHeadersSpoofable } from './forwarded-headers-spoofable.ts';
import { rule as hairpinTimeout } from './hairpin-timeout.ts';
import { rule as healthCheckCannotSpeakProxy } from './health-check-cannot-speak-proxy.ts';
import { rule as inClusterBypass } from './in-cluster-bypass.ts';
import { rule as invalidSourceRange } from './invalid-source-range.ts';
import { rule as peerNotTrusted } from './peer-not-trusted.ts';
import { rule as proxyProtocolExpectedNotSent } from './proxy-protocol-expected-not-sent.ts';
import { rule as proxyProtocolSentNotExpected } from './proxy-protocol-sent-not-expected.ts';
import { rule as proxyProtocolTrustsEveryone } from './proxy-protocol-trusts-everyone.ts';
import { rule as sslPassthroughBackendSeesGateway } from './ssl-passthrough-backend-sees-gateway.ts';
import { rule as sslPassthroughFlagUnknown } from './ssl-passthrough-flag-unknown.ts';
import { rule as sslPassthroughNotEnabled } from './ssl-passthrough-not-enabled.ts';
import { rule as streamServiceNotExposed } from './stream-service-not-exposed.ts';
import { rule as tcpServiceClientNotBelieved } from './tcp-service-client-not-believed.ts';
import { rule as tcpServiceProxyProtocolMismatch } from './tcp-service-proxy-protocol-mismatch.ts';
import type { Rule } from './types.ts';

export type { Rule, RuleContext } from './types.ts';

export const RULES: readonly Rule[] = [
  clientIpLostAtLb,
  clientViaTransitGateway,
  clientIpLostAtKubeProxy,
  proxyProtocolSentNotExpected,
  proxyProtocolExpectedNotSent,
  peerNotTrusted,
  proxyProtocolTrustsEveryone,
  forwardedHeadersSpoofable,
  healthCheckCannotSpeakProxy,
  invalidSourceRange,
  accessKeyedOnSharedAddress,
  inClusterBypass,
  hairpinTimeout,
  sslPassthroughNotEnabled,
  sslPassthroughFlagUnknown,
  sslPassthroughBackendSeesGateway,
  tcpServiceProxyProtocolMismatch,
  tcpServiceClientNotBelieved,
  streamServiceNotExposed,
];
