// The data the codec produces and consumes. Plain objects: no classes, no sockets.
import type { PpError } from './errors.ts';

export type ProxyCommand = 'PROXY' | 'LOCAL';

export type ProxyTransportProtocol =
  | 'TCP4'
  | 'TCP6'
  | 'UDP4'
  | 'UDP6'
  | 'UNIX_STREAM'
  | 'UNIX_DGRAM'
  | 'UNSPEC'
  | 'UNKNOWN';

export interface InetEndpoint {
  /** Dotted decimal for IPv4; RFC 5952 text for IPv6 (IPv4-mapped as ::ffff:a.b.c.d, never folded). */
  address: string;
  port: number;
}

export interface UnixEndpoint {
  path: string;
}

export type Endpoint = InetEndpoint | UnixEndpoint;

export interface Tlv {
  type: number;
  /** A copy of the value bytes (never a view into the caller's buffer). */
  value: Uint8Array;
}

export interface SslInfo {
  /** Client flags: 0x01 SSL, 0x02 CERT_CONN, 0x04 CERT_SESS. */
  client: number;
  clientSsl: boolean;
  clientCertConn: boolean;
  clientCertSess: boolean;
  /** 0 when the client certificate was verified successfully. */
  verify: number;
  version?: string;
  cn?: string;
  cipher?: string;
  sigAlg?: string;
  keyAlg?: string;
  group?: string;
  sigScheme?: string;
  /** DER bytes of the client certificate (sub-TLV 0x28). */
  clientCert?: Uint8Array;
  /** Every sub-TLV, known or not, in order. */
  tlvs: Tlv[];
}

export interface ProxyHeader {
  version: 1 | 2;
  command: ProxyCommand;
  protocol: ProxyTransportProtocol;
  /** null when the header carries no usable address: LOCAL, UNSPEC, v1 UNKNOWN. */
  source: Endpoint | null;
  destination: Endpoint | null;
  /** Every TLV in order, including NOOP and unknown types (v2 only; [] for v1). */
  tlvs: Tlv[];
  alpn?: Uint8Array;
  authority?: string;
  /** The verified checksum, when the header carried a CRC32C TLV. */
  crc32c?: number;
  uniqueId?: Uint8Array;
  ssl?: SslInfo;
  netns?: string;
  /** AWS (0xEA) subtype 0x01. */
  awsVpcEndpointId?: string;
  /** Azure Private Link (0xEE) subtype 0x01, a 32-bit little-endian LINKID. */
  azureLinkId?: number;
  /** GCP Private Service Connect (0xE0), a 64-bit big-endian connection id. */
  gcpConnectionId?: bigint;
}

export type ParseResult =
  /** More bytes could still make a valid header. `need` is the total size once it is known (v2). */
  | { kind: 'incomplete'; need?: number }
  | { kind: 'header'; header: ProxyHeader; consumed: number }
  | { kind: 'error'; error: PpError };

export interface EncodeSpec {
  version: 1 | 2;
  /** Default PROXY. v1 has no LOCAL: it is written as "PROXY UNKNOWN". */
  command?: ProxyCommand;
  /** Default: UNSPEC for LOCAL, otherwise inferred from the source (IPv4 TCP4, IPv6 TCP6, path UNIX_STREAM). */
  protocol?: ProxyTransportProtocol;
  source?: Endpoint;
  destination?: Endpoint;
  /** v2 only, written in order after the address block. */
  tlvs?: Tlv[];
  /** v2 only: add a CRC32C TLV (first, before the others) and fill it in. */
  crc32c?: boolean;
  /**
   * Default true: refuse to emit a header our own parser would reject (bad UNIQUE_ID length,
   * non-UTF-8 AUTHORITY, ...). false lets test tools craft deliberately broken TLVs.
   */
  validate?: boolean;
}
