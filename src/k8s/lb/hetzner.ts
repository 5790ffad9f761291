// Hetzner Cloud's load balancer: a proxy; PROXY v1 behind one annotation.
import { boolAnnotation, type HostedProvider } from './provider.ts';

const HETZNER = 'load-balancer.hetzner.cloud/';

export const hetzner: HostedProvider = {
  name: 'hetzner',
  annotationPrefixes: [HETZNER],
  keepsClientAddress: false,
  read: (ctx) => ({
    proxyProtocol: boolAnnotation(ctx, `${HETZNER}uses-proxyprotocol`) ? 'v1' : null,
    internal: boolAnnotation(ctx, `${HETZNER}disable-public-network`),
  }),
};
