// The manifest `keepip lb -f` tests read: an internal AWS NLB Service `web/edge` on TCP 7000 (IP
// targets) and its Endpoints, one address 127.0.0.1 on `endpointPort`.

export interface NlbManifestOptions {
  /** spec.loadBalancerSourceRanges; absent: the field is not written. */
  ranges?: readonly string[];
  /** More metadata.annotations, written as given (`name: value` lines). */
  annotations?: readonly string[];
}

export function nlbManifest(endpointPort: number, options: NlbManifestOptions = {}): string {
  const annotations = (options.annotations ?? []).map((line) => `\n    ${line}`).join('');
  const ranges =
    options.ranges === undefined ? '' : `\n  loadBalancerSourceRanges: [${options.ranges.join(', ')}]`;
  return `
apiVersion: v1
kind: Service
metadata:
  name: edge
  namespace: web
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip${annotations}
spec:
  type: LoadBalancer${ranges}
  ports: [{ name: tcp, port: 7000, targetPort: 7000, protocol: TCP }]
---
apiVersion: v1
kind: Endpoints
metadata: { name: edge, namespace: web }
subsets:
  - addresses: [{ ip: 127.0.0.1 }]
    ports: [{ name: tcp, port: ${endpointPort} }]
`;
}
