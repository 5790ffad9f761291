// A load balancer no provider annotation names (kube-vip, a bare-metal balancer, a cloud keepip does
// not know): modelled as pass-through, with no PROXY protocol.
import type { HostedProvider } from './provider.ts';

export const generic: HostedProvider = {
  name: 'generic',
  annotationPrefixes: [],
  keepsClientAddress: true,
  read: () => ({ proxyProtocol: null, internal: false }),
};
