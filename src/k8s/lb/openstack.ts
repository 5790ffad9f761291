// OpenStack Octavia (cloud-provider-openstack): a proxy; PROXY v1 or v2 (`true` means v1).
import type { ProxyProtocolVersion } from '../../config/model.ts';
import { parseGoBool } from '../values.ts';
import { boolAnnotation, type HostedProvider, type LbContext, SVC, warn } from './provider.ts';

const PROXY_KEY = 'loadbalancer.openstack.org/proxy-protocol';

export const openstack: HostedProvider = {
  name: 'openstack',
  annotationPrefixes: ['loadbalancer.openstack.org/', `${SVC}openstack-internal-load-balancer`],
  keepsClientAddress: false,
  read: (ctx) => ({
    proxyProtocol: proxyVersion(ctx),
    internal: boolAnnotation(ctx, `${SVC}openstack-internal-load-balancer`),
  }),
};

function proxyVersion(ctx: LbContext): ProxyProtocolVersion | null {
  const v = ctx.annotations[PROXY_KEY]?.trim();
  if (v === 'v1' || v === 'v2') return v;
  if (v !== undefined && parseGoBool(v) === true) return 'v1';
  if (v !== undefined && parseGoBool(v) !== false)
    warn(
      ctx,
      'INVALID_LB_ANNOTATION',
      PROXY_KEY,
      `${JSON.stringify(v)} is not v1, v2, true or false; treated as off`,
    );
  return null;
}
