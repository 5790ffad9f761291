// Google Cloud (GKE) network load balancers: pass-through, no PROXY protocol.
import type { HostedProvider } from './provider.ts';

export const gke: HostedProvider = {
  name: 'gke',
  annotationPrefixes: [
    'cloud.google.com/load-balancer-type',
    'networking.gke.io/',
    'cloud.google.com/l4-rbs',
  ],
  keepsClientAddress: true,
  read: (ctx) => {
    const type =
      ctx.annotations['networking.gke.io/load-balancer-type'] ??
      ctx.annotations['cloud.google.com/load-balancer-type'];
    return { proxyProtocol: null, internal: (type ?? '').toLowerCase() === 'internal' };
  },
};
