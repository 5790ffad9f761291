// Oracle Cloud (OCI) load balancers: a proxy; the PROXY version is "1" or "2".
import type { ProxyProtocolVersion } from '../../config/model.ts';
import { boolAnnotation, type HostedProvider, type LbContext, SVC, warn } from './provider.ts';

const PROXY_KEY = `${SVC}oci-load-balancer-connection-proxy-protocol-version`;

export const oracle: HostedProvider = {
  name: 'oracle',
  annotationPrefixes: [
    `${SVC}oci-load-balancer-`,
    'oci.oraclecloud.com/',
    'oci-network-load-balancer.oraclecloud.com/',
  ],
  keepsClientAddress: false,
  read: (ctx) => ({
    proxyProtocol: proxyVersion(ctx),
    internal: boolAnnotation(ctx, `${SVC}oci-load-balancer-internal`),
  }),
};

function proxyVersion(ctx: LbContext): ProxyProtocolVersion | null {
  const v = ctx.annotations[PROXY_KEY]?.trim();
  if (v === '1') return 'v1';
  if (v === '2') return 'v2';
  if (v !== undefined)
    warn(ctx, 'INVALID_LB_ANNOTATION', PROXY_KEY, `${JSON.stringify(v)} is not "1" or "2"; treated as off`);
  return null;
}
