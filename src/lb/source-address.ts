// Which address a connection to a target comes from: the NLB's own address (preservation off, rule
// A3), or the client's own address (preservation on, A2). On one machine the second is only possible
// when the client's address is local to it (127.0.0.0/8, ::1, or an interface address): the kernel
// lets us bind to those. For any other client, binding would need IP_TRANSPARENT and routing tricks,
// so keepip falls back to the source address and says so (`preservationFallback`) instead of pretending.
// Pure: the caller supplies what is local.
import { addressFamily } from '../net/ip.ts';

// The loopback test is the first half of what counts as local (balancer.ts adds the interfaces).
export { isLoopbackAddress } from '../net/ip.ts';

export type PreservationFallback = 'client-not-local' | 'family-mismatch';

export interface SourceChoice {
  /** The `localAddress` for net.connect; undefined lets the kernel choose. */
  localAddress: string | undefined;
  /** True when the target will see the client's own address. */
  preserved: boolean;
  /** Set when preservation was asked for but could not be done for this client. */
  preservationFallback: PreservationFallback | null;
  /** Client address equals the target address (rule A8): an NLB's hairpin case, worth reporting. */
  hairpin: boolean;
}

export interface SourceInputs {
  /** The client's address, canonical (IPv4-mapped IPv6 already folded). */
  clientAddress: string;
  /** The target's address, canonical. */
  targetAddress: string;
  sourceAddress: string | null;
  preserveClientIp: boolean;
  isLocalAddress(address: string): boolean;
}

export function chooseSourceAddress(inputs: SourceInputs): SourceChoice {
  const { clientAddress, targetAddress, sourceAddress } = inputs;
  const targetFamily = addressFamily(targetAddress);
  let preservationFallback: PreservationFallback | null = null;
  if (inputs.preserveClientIp) {
    if (addressFamily(clientAddress) !== targetFamily) {
      preservationFallback = 'family-mismatch';
    } else if (!inputs.isLocalAddress(clientAddress)) {
      preservationFallback = 'client-not-local';
    } else {
      return {
        localAddress: clientAddress,
        preserved: true,
        preservationFallback: null,
        hairpin: clientAddress === targetAddress,
      };
    }
  }
  const usable = sourceAddress !== null && addressFamily(sourceAddress) === targetFamily;
  return {
    localAddress: usable ? sourceAddress : undefined,
    preserved: false,
    preservationFallback,
    hairpin: false,
  };
}
