// How a client reaches the load balancer, which decides whether an AWS LB can keep its address (rule
// A4) and whether in-cluster callers pass the LB at all (K3). Not in the manifests as such: the doctor's
// `--via`, else the LB Service's `keepip.dev/client-path` annotation (LoadBalancerModel.clientPath),
// else `privatelink` when the LB emulates a VPC endpoint, else direct.

export const CLIENT_PATHS = ['direct', 'vpn', 'transit-gateway', 'privatelink', 'in-cluster'] as const;

export type ClientPath = (typeof CLIENT_PATHS)[number];

export function isClientPath(text: string): text is ClientPath {
  return (CLIENT_PATHS as readonly string[]).includes(text);
}

/**
 * A VPN, a transit gateway or PrivateLink: a routed network between the client and the LB, across
 * which an AWS load balancer cannot keep the client's address whatever its attribute says (A4).
 */
export function isRoutedPath(path: ClientPath): boolean {
  return path === 'vpn' || path === 'transit-gateway' || path === 'privatelink';
}
