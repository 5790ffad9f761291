// Scaleway's load balancer: a proxy; PROXY v1 or v2, each behind its own annotation.
import type { ProxyProtocolVersion } from '../../config/model.ts';
import { type HostedProvider, type LbContext, SVC, warn } from './provider.ts';

export const scaleway: HostedProvider = {
  name: 'scaleway',
  annotationPrefixes: [`${SVC}scw-loadbalancer-`],
  keepsClientAddress: false,
  read: (ctx) => ({ proxyProtocol: proxyVersion(ctx), internal: false }),
};

// The value is "*" / "true" for every port or a list of ports; keepip models the LB as a whole.
function proxyVersion(ctx: LbContext): ProxyProtocolVersion | null {
  let proxyProtocol: ProxyProtocolVersion | null = null;
  for (const version of ['v1', 'v2'] as const) {
    const key = `${SVC}scw-loadbalancer-proxy-protocol-${version}`;
    const v = ctx.annotations[key];
    if (v === undefined || v.trim() === '' || v.trim() === 'false') continue;
    if (proxyProtocol !== null && proxyProtocol !== version)
      warn(ctx, 'CONFLICTING_LB_ANNOTATIONS', key, 'both PROXY v1 and v2 are enabled; v2 wins');
    proxyProtocol = version;
  }
  return proxyProtocol;
}
