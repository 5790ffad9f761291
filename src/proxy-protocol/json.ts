// A header as plain JSON (what `keepip pp decode` prints, what logs and the doctor can show):
// text TLVs as text, binary ones as lower-case hex, bigints as decimal strings.
import { TLV, TLV_NAMES } from './tlv.ts';
import type { ProxyHeader, SslInfo, Tlv } from './types.ts';

export interface TlvJson {
  type: number;
  name: string;
  /** Text for AUTHORITY, NETNS, ALPN (when UTF-8) and the AWS VPC endpoint id; hex otherwise. */
  value: string;
}

export type HeaderJson = Record<string, unknown>;

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

function textOrHex(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return toHex(bytes);
  }
}

export function tlvToJson(tlv: Tlv, header?: ProxyHeader): TlvJson {
  const name = TLV_NAMES[tlv.type] ?? (tlv.type >= 0xe0 && tlv.type <= 0xef ? 'CUSTOM' : 'UNKNOWN');
  let value: string;
  switch (tlv.type) {
    case TLV.AUTHORITY:
    case TLV.NETNS:
      value = textOrHex(tlv.value);
      break;
    case TLV.ALPN:
      value = textOrHex(tlv.value);
      break;
    default:
      value = toHex(tlv.value);
  }
  if (tlv.type === TLV.AWS && header?.awsVpcEndpointId !== undefined && tlv.value[0] === 0x01) {
    value = textOrHex(tlv.value.subarray(1));
  }
  return { type: tlv.type, name, value };
}

function sslToJson(ssl: SslInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {
    client: ssl.client,
    clientSsl: ssl.clientSsl,
    clientCertConn: ssl.clientCertConn,
    clientCertSess: ssl.clientCertSess,
    verify: ssl.verify,
  };
  for (const key of ['version', 'cn', 'cipher', 'sigAlg', 'keyAlg', 'group', 'sigScheme'] as const) {
    if (ssl[key] !== undefined) out[key] = ssl[key];
  }
  if (ssl.clientCert !== undefined) out.clientCert = toHex(ssl.clientCert);
  out.tlvs = ssl.tlvs.map((t) => tlvToJson(t));
  return out;
}

/** The header as JSON; `headerLength` is the number of bytes the header took. */
export function headerToJson(header: ProxyHeader, headerLength: number): HeaderJson {
  const out: HeaderJson = {
    version: header.version,
    command: header.command,
    protocol: header.protocol,
    source: header.source,
    destination: header.destination,
    headerLength,
    tlvs: header.tlvs.map((t) => tlvToJson(t, header)),
  };
  if (header.alpn !== undefined) out.alpn = textOrHex(header.alpn);
  if (header.authority !== undefined) out.authority = header.authority;
  if (header.crc32c !== undefined) out.crc32c = header.crc32c.toString(16).padStart(8, '0');
  if (header.uniqueId !== undefined) out.uniqueId = toHex(header.uniqueId);
  if (header.ssl !== undefined) out.ssl = sslToJson(header.ssl);
  if (header.netns !== undefined) out.netns = header.netns;
  if (header.awsVpcEndpointId !== undefined) out.awsVpcEndpointId = header.awsVpcEndpointId;
  if (header.azureLinkId !== undefined) out.azureLinkId = header.azureLinkId;
  if (header.gcpConnectionId !== undefined) out.gcpConnectionId = header.gcpConnectionId.toString();
  return out;
}
