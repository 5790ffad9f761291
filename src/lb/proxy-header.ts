// The PROXY header a target group sends: one per client connection (PROXY, the client's address and
// the listener address it reached) and one per health check (LOCAL, as an NLB's checks do, rule A6).
// Encoding is the codec's (src/proxy-protocol); this module only decides what goes in. Pure.
import { awsVpcEndpointIdTlv, tryEncodeProxyHeader, uniqueIdTlv } from '../proxy-protocol/encode.ts';
import { addressFamily } from '../net/ip.ts';
import type { PpError } from '../proxy-protocol/errors.ts';
import type { Result } from '../result.ts';
import type { EncodeSpec, Tlv } from '../proxy-protocol/types.ts';
import type { LbTlvOptions } from './config.ts';

export interface FlowEndpoints {
  client: { address: string; port: number };
  /** The listener address the client connected to. */
  listener: { address: string; port: number };
}

export type HeaderResult = Result<Buffer, PpError>;

export interface HeaderBuilder {
  readonly version: 1 | 2;
  forFlow(flow: FlowEndpoints): HeaderResult;
  /** The header that opens a health-check connection. */
  local(): Buffer;
}

export const UNIQUE_ID_BYTES = 16;

export function createHeaderBuilder(
  version: 'v1' | 'v2',
  tlvOptions: LbTlvOptions = {},
  randomId: () => Uint8Array,
): HeaderBuilder {
  const v = version === 'v1' ? 1 : 2;
  const fixedTlvs: Tlv[] =
    v === 2 && tlvOptions.awsVpcEndpointId !== undefined
      ? [awsVpcEndpointIdTlv(tlvOptions.awsVpcEndpointId)]
      : [];
  const crc32c = v === 2 && tlvOptions.crc32c === true;
  const uniqueId = v === 2 && tlvOptions.uniqueId === true;
  const local = tryEncodeProxyHeader({ version: v, command: 'LOCAL', tlvs: fixedTlvs, crc32c });
  if (!local.ok) throw new Error(`LOCAL header cannot be encoded: ${local.error.message}`); // config was validated
  return {
    version: v,
    forFlow({ client, listener }) {
      const spec: EncodeSpec = { version: v, command: 'PROXY', crc32c };
      // A dual-stack listener can see an IPv4 client on an IPv6 socket address (or the reverse);
      // one header carries one family, so write both in IPv6 then.
      if (addressFamily(client.address) === addressFamily(listener.address)) {
        spec.protocol = addressFamily(client.address) === 6 ? 'TCP6' : 'TCP4';
        spec.source = client;
        spec.destination = listener;
      } else {
        spec.protocol = 'TCP6';
        spec.source = { address: asIpv6(client.address), port: client.port };
        spec.destination = { address: asIpv6(listener.address), port: listener.port };
      }
      if (uniqueId) spec.tlvs = [...fixedTlvs, uniqueIdTlv(randomId())];
      else if (fixedTlvs.length > 0) spec.tlvs = fixedTlvs;
      return tryEncodeProxyHeader(spec);
    },
    local: () => local.value,
  };
}

function asIpv6(address: string): string {
  return addressFamily(address) === 6 ? address : `::ffff:${address}`;
}
