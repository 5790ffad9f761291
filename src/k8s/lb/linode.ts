// Linode (Akamai) NodeBalancers: a proxy; the PROXY version is written out (none, v1, v2).
import { type HostedProvider, type LbContext, SVC, warn } from './provider.ts';

const PROXY_KEY = `${SVC}linode-loadbalancer-default-proxy-protocol`;

export const linode: HostedProvider = {
  name: 'linode',
  annotationPrefixes: [`${SVC}linode-loadbalancer-`],
  keepsClientAddress: false,
  read: (ctx) => ({ proxyProtocol: proxyVersion(ctx), internal: false }),
};

function proxyVersion(ctx: LbContext): 'v1' | 'v2' | null {
  const v = ctx.annotations[PROXY_KEY];
  if (v === 'v1' || v === 'v2') return v;
  if (v !== undefined && v !== 'none')
    warn(
      ctx,
      'INVALID_LB_ANNOTATION',
      PROXY_KEY,
      `${JSON.stringify(v)} is not none, v1 or v2; treated as none`,
    );
  return null;
}
