// MetalLB: pass-through (the packets reach a node unchanged), no PROXY protocol.
import type { HostedProvider } from './provider.ts';

export const metallb: HostedProvider = {
  name: 'metallb',
  annotationPrefixes: ['metallb.universe.tf/', 'metallb.io/'],
  recognisesClass: (loadBalancerClass) => loadBalancerClass.includes('metallb'),
  keepsClientAddress: true,
  read: () => ({ proxyProtocol: null, internal: false }),
};
