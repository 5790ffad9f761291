// Azure's load balancer: pass-through; PROXY v2 only for Private Link Service traffic.
import { boolAnnotation, type HostedProvider, SVC } from './provider.ts';

export const azure: HostedProvider = {
  name: 'azure',
  annotationPrefixes: [`${SVC}azure-`],
  keepsClientAddress: true,
  read: (ctx) => ({
    proxyProtocol: boolAnnotation(ctx, `${SVC}azure-pls-proxy-protocol`) ? 'v2' : null,
    internal: boolAnnotation(ctx, `${SVC}azure-load-balancer-internal`),
  }),
};
