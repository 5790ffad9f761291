// The PROXY protocol module's public surface. Everything but reader.ts is pure; reader.ts is the
// one socket edge (pure modules that must not touch node:net can import the codec files directly).
export { DEC, formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './address.ts';
export { crc32c, headerCrc32c } from './crc32c.ts';
export {
  type EncodeResult,
  alpnTlv,
  authorityTlv,
  awsVpcEndpointIdTlv,
  azureLinkIdTlv,
  encodeProxyHeader,
  gcpConnectionIdTlv,
  netnsTlv,
  noopTlv,
  sslTlv,
  tryEncodeProxyHeader,
  uniqueIdTlv,
} from './encode.ts';
export { PP_ERROR_MESSAGES, type PpError, type PpErrorCode, ProxyProtocolError, ppError } from './errors.ts';
export { type HeaderJson, headerToJson, type TlvJson, tlvToJson, toHex } from './json.ts';
export { ProxyHeaderParser, parseCompleteProxyHeader, parseProxyHeader } from './parse.ts';
export { parseSsl, parseTlvs, SSL_SUBTLV, TLV, TLV_NAMES, UNIQUE_ID_MAX } from './tlv.ts';
export type {
  EncodeSpec,
  Endpoint,
  InetEndpoint,
  ParseResult,
  ProxyCommand,
  ProxyHeader,
  ProxyTransportProtocol,
  SslInfo,
  Tlv,
  UnixEndpoint,
} from './types.ts';
export {
  type AcceptEvent,
  acceptProxyProtocol,
  createProxyReaderStats,
  DEFAULT_MAX_HEADER_BYTES,
  foldMappedIPv4,
  getProxyInfo,
  type ProxyInfo,
  type ProxyReaderOptions,
  type ProxyReaderStats,
  type ProxyServer,
  REJECT_REASONS,
  type ReadOutcome,
  type RejectEvent,
  type RejectReason,
  readProxyHeader,
} from './reader.ts';
export { V1_MAX_LENGTH } from './v1.ts';
export { V2_ADDRESS_LENGTH, V2_FIXED_LENGTH, V2_PROTOCOL_BY_BYTE, V2_SIGNATURE } from './v2.ts';
