// DigitalOcean's load balancer: a proxy; PROXY v1 behind one annotation.
import { boolAnnotation, type HostedProvider, SVC } from './provider.ts';

export const digitalocean: HostedProvider = {
  name: 'digitalocean',
  annotationPrefixes: [`${SVC}do-loadbalancer-`],
  keepsClientAddress: false,
  read: (ctx) => ({
    proxyProtocol: boolAnnotation(ctx, `${SVC}do-loadbalancer-enable-proxy-protocol`) ? 'v1' : null,
    internal: false,
  }),
};
