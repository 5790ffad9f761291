// Building headers for the load balancer's upstream connections and for test tools. The encoder
// refuses anything the parser would refuse, so keepip never emits a header a receiver must drop.
import type { Result } from '../result.ts';
import { formatIPv6, parseIPv4Into, parseIPv6 } from './address.ts';
import { headerCrc32c } from './crc32c.ts';
import { type PpError, ProxyProtocolError, ppError } from './errors.ts';
import { parseProxyHeader } from './parse.ts';
import { TLV, UNIQUE_ID_MAX } from './tlv.ts';
import type { EncodeSpec, Endpoint, ProxyTransportProtocol, Tlv } from './types.ts';
import { UNIX_PATH_LENGTH, V2_FIXED_LENGTH } from './v2.ts';

export type EncodeResult = Result<Buffer, PpError>;

const FAMILY_BYTE: Readonly<Record<ProxyTransportProtocol, number>> = {
  UNSPEC: 0x00,
  UNKNOWN: 0x00,
  TCP4: 0x11,
  UDP4: 0x12,
  TCP6: 0x21,
  UDP6: 0x22,
  UNIX_STREAM: 0x31,
  UNIX_DGRAM: 0x32,
};

/** Encodes a header; throws ProxyProtocolError (with its `code`) for an invalid spec. */
export function encodeProxyHeader(spec: EncodeSpec): Buffer {
  const result = tryEncodeProxyHeader(spec);
  if (!result.ok) throw new ProxyProtocolError(result.error);
  return result.value;
}

/** Encodes a header; an invalid spec is an error value instead of an exception. */
export function tryEncodeProxyHeader(spec: EncodeSpec): EncodeResult {
  const err = (code: PpError['code'], detail?: string): EncodeResult => ({
    ok: false,
    error: ppError(code, detail),
  });
  if (spec.version !== 1 && spec.version !== 2)
    return err('PP_ENCODE_BAD_SPEC', `version ${String(spec.version)}`);
  const command = spec.command ?? 'PROXY';
  if (command !== 'PROXY' && command !== 'LOCAL')
    return err('PP_ENCODE_BAD_SPEC', `command ${String(command)}`);
  const protocol = spec.protocol ?? inferProtocol(command, spec.source);
  if (protocol === null)
    return err('PP_ENCODE_BAD_ADDRESS', 'no protocol given and none follows from the source');
  if (!(protocol in FAMILY_BYTE)) return err('PP_ENCODE_BAD_SPEC', `protocol ${String(protocol)}`);
  return spec.version === 1 ? encodeV1(spec, command, protocol) : encodeV2(spec, command, protocol);
}

// The address block is built here first (checked before the output's size is known, so the error
// order stays: spec, address, length), then copied into the output. Module scratch, not an
// allocation per header; encoding is synchronous, so no two calls share it at once.
const BLOCK = new Uint8Array(2 * UNIX_PATH_LENGTH);

function inferProtocol(command: string, source: Endpoint | undefined): ProxyTransportProtocol | null {
  if (command === 'LOCAL') return 'UNSPEC';
  if (source === undefined) return null;
  if ('path' in source) return 'UNIX_STREAM';
  if (parseIPv4Into(source.address, BLOCK, 0)) return 'TCP4';
  if (parseIPv6(source.address) !== null) return 'TCP6';
  return null;
}

/** Writes an endpoint's address to BLOCK at `offset` (4 or 16 bytes); returns its port or the error. */
function inetInto(
  endpoint: Endpoint | undefined,
  v6: boolean,
  role: string,
  offset: number,
): number | PpError {
  if (endpoint === undefined || !('address' in endpoint))
    return ppError('PP_ENCODE_BAD_ADDRESS', `${role} missing`);
  let ok: boolean;
  if (v6) {
    const bytes = parseIPv6(endpoint.address);
    ok = bytes !== null;
    if (bytes !== null) BLOCK.set(bytes, offset);
  } else {
    ok = parseIPv4Into(endpoint.address, BLOCK, offset);
  }
  if (!ok) {
    return ppError('PP_ENCODE_BAD_ADDRESS', `${role} "${endpoint.address}" is not IPv${v6 ? 6 : 4}`);
  }
  const port = endpoint.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    return ppError('PP_ENCODE_BAD_PORT', `${role} port ${String(port)}`);
  }
  return port;
}

function encodeV1(spec: EncodeSpec, command: string, protocol: ProxyTransportProtocol): EncodeResult {
  if ((spec.tlvs !== undefined && spec.tlvs.length > 0) || spec.crc32c === true) {
    return { ok: false, error: ppError('PP_ENCODE_UNSUPPORTED', 'TLVs or CRC32C with v1') };
  }
  if (command === 'LOCAL' || protocol === 'UNKNOWN' || protocol === 'UNSPEC') {
    return { ok: true, value: Buffer.from('PROXY UNKNOWN\r\n', 'latin1') };
  }
  if (protocol !== 'TCP4' && protocol !== 'TCP6') {
    return { ok: false, error: ppError('PP_ENCODE_UNSUPPORTED', `${protocol} with v1`) };
  }
  const v6 = protocol === 'TCP6';
  const sourcePort = inetInto(spec.source, v6, 'source', 0);
  if (typeof sourcePort !== 'number') return { ok: false, error: sourcePort };
  const destinationPort = inetInto(spec.destination, v6, 'destination', 16);
  if (typeof destinationPort !== 'number') return { ok: false, error: destinationPort };
  // IPv4 text that passed the strict parse is already canonical; IPv6 is re-spelled per RFC 5952.
  const source = v6 ? formatIPv6(BLOCK, 0) : (spec.source as { address: string }).address;
  const destination = v6 ? formatIPv6(BLOCK, 16) : (spec.destination as { address: string }).address;
  const line = `PROXY ${protocol} ${source} ${destination} ${sourcePort} ${destinationPort}\r\n`;
  return { ok: true, value: Buffer.from(line, 'latin1') };
}

/** Writes a NUL-padded 108-byte path to BLOCK at `offset`, or returns the error. */
function unixPathInto(endpoint: Endpoint | undefined, role: string, offset: number): PpError | null {
  if (endpoint === undefined || !('path' in endpoint))
    return ppError('PP_ENCODE_BAD_ADDRESS', `${role} path missing`);
  const bytes = Buffer.from(endpoint.path, 'utf8');
  if (bytes.length > UNIX_PATH_LENGTH || bytes.includes(0)) {
    return ppError('PP_ENCODE_BAD_ADDRESS', `${role} path must be at most 108 bytes without NUL`);
  }
  BLOCK.fill(0, offset, offset + UNIX_PATH_LENGTH);
  BLOCK.set(bytes, offset);
  return null;
}

function encodeV2(spec: EncodeSpec, command: string, protocol: ProxyTransportProtocol): EncodeResult {
  const tlvs = spec.tlvs ?? [];
  const withCrc = spec.crc32c === true;
  let tlvLength = withCrc ? 7 : 0;
  for (let i = 0; i < tlvs.length; i++) {
    const tlv = tlvs[i]!;
    if (!Number.isInteger(tlv.type) || tlv.type < 0 || tlv.type > 255) {
      return { ok: false, error: ppError('PP_ENCODE_BAD_TLV', `type ${String(tlv.type)}`) };
    }
    if (!(tlv.value instanceof Uint8Array) || tlv.value.length > 65535) {
      return { ok: false, error: ppError('PP_ENCODE_BAD_TLV', `type 0x${tlv.type.toString(16)} value`) };
    }
    if (withCrc && tlv.type === TLV.CRC32C) {
      return {
        ok: false,
        error: ppError('PP_ENCODE_BAD_TLV', 'a CRC32C TLV given together with crc32c: true'),
      };
    }
    tlvLength += 3 + tlv.value.length;
  }

  // LOCAL carries no address block (as an AWS NLB health check), whatever the family byte says.
  const familyByte = FAMILY_BYTE[protocol];
  let addressLength = 0;
  if (command === 'PROXY' && (familyByte & 0xf0) !== 0) {
    const block = addressBlock(spec, protocol);
    if (typeof block !== 'number') return { ok: false, error: block };
    addressLength = block;
  }
  const length = addressLength + tlvLength;
  if (length > 65535) return { ok: false, error: ppError('PP_ENCODE_TOO_LONG', `${length} bytes`) };

  const out = Buffer.allocUnsafe(V2_FIXED_LENGTH + length);
  out[0] = 0x0d;
  out[1] = 0x0a;
  out[2] = 0x0d;
  out[3] = 0x0a;
  out[4] = 0x00;
  out[5] = 0x0d;
  out[6] = 0x0a;
  out[7] = 0x51;
  out[8] = 0x55;
  out[9] = 0x49;
  out[10] = 0x54;
  out[11] = 0x0a;
  out[12] = command === 'LOCAL' ? 0x20 : 0x21;
  out[13] = familyByte;
  out[14] = length >> 8;
  out[15] = length & 0xff;
  let p = V2_FIXED_LENGTH;
  if (addressLength > 64) {
    out.set(BLOCK.subarray(0, addressLength), p);
  } else {
    for (let i = 0; i < addressLength; i++) out[p + i] = BLOCK[i]!;
  }
  p += addressLength;
  let crcOffset = -1;
  if (withCrc) {
    out[p] = TLV.CRC32C;
    out[p + 1] = 0;
    out[p + 2] = 4;
    crcOffset = p + 3;
    out.fill(0, crcOffset, crcOffset + 4);
    p += 7;
  }
  for (let i = 0; i < tlvs.length; i++) {
    const tlv = tlvs[i]!;
    out[p] = tlv.type;
    out[p + 1] = tlv.value.length >> 8;
    out[p + 2] = tlv.value.length & 0xff;
    out.set(tlv.value, p + 3);
    p += 3 + tlv.value.length;
  }
  if (crcOffset >= 0) out.writeUInt32BE(headerCrc32c(out, out.length, crcOffset), crcOffset);
  if (spec.validate !== false && tlvs.length > 0) {
    const check = parseProxyHeader(out);
    if (check.kind === 'error') {
      return {
        ok: false,
        error: ppError('PP_ENCODE_BAD_TLV', `${check.error.code}: ${check.error.message}`),
      };
    }
  }
  return { ok: true, value: out };
}

/** Fills BLOCK with the address block (addresses, then ports); returns its length or the error. */
function addressBlock(spec: EncodeSpec, protocol: ProxyTransportProtocol): number | PpError {
  if (protocol === 'UNIX_STREAM' || protocol === 'UNIX_DGRAM') {
    const source = unixPathInto(spec.source, 'source', 0);
    if (source !== null) return source;
    const destination = unixPathInto(spec.destination, 'destination', UNIX_PATH_LENGTH);
    if (destination !== null) return destination;
    return 2 * UNIX_PATH_LENGTH;
  }
  const v6 = protocol === 'TCP6' || protocol === 'UDP6';
  const size = v6 ? 16 : 4;
  const sourcePort = inetInto(spec.source, v6, 'source', 0);
  if (typeof sourcePort !== 'number') return sourcePort;
  const destinationPort = inetInto(spec.destination, v6, 'destination', size);
  if (typeof destinationPort !== 'number') return destinationPort;
  BLOCK[2 * size] = sourcePort >> 8;
  BLOCK[2 * size + 1] = sourcePort & 0xff;
  BLOCK[2 * size + 2] = destinationPort >> 8;
  BLOCK[2 * size + 3] = destinationPort & 0xff;
  return 2 * size + 4;
}

// Helpers for the TLVs senders commonly add.

const utf8 = new TextEncoder();

export function authorityTlv(host: string): Tlv {
  return { type: TLV.AUTHORITY, value: utf8.encode(host) };
}

export function alpnTlv(protocol: string | Uint8Array): Tlv {
  return { type: TLV.ALPN, value: typeof protocol === 'string' ? utf8.encode(protocol) : protocol };
}

/** At most 128 bytes (checked when the header is encoded). */
export function uniqueIdTlv(id: string | Uint8Array): Tlv {
  if ((typeof id === 'string' ? utf8.encode(id).length : id.length) > UNIQUE_ID_MAX) {
    throw new ProxyProtocolError(
      ppError('PP_ENCODE_BAD_TLV', `UNIQUE_ID longer than ${UNIQUE_ID_MAX} bytes`),
    );
  }
  return { type: TLV.UNIQUE_ID, value: typeof id === 'string' ? utf8.encode(id) : id };
}

export function noopTlv(padding: number): Tlv {
  return { type: TLV.NOOP, value: new Uint8Array(padding) };
}

export function netnsTlv(name: string): Tlv {
  return { type: TLV.NETNS, value: utf8.encode(name) };
}

/** AWS 0xEA subtype 0x01: the VPC endpoint id, e.g. "vpce-08d2bf15fac5001c9". */
export function awsVpcEndpointIdTlv(id: string): Tlv {
  const value = new Uint8Array(1 + id.length);
  value[0] = 0x01;
  for (let i = 0; i < id.length; i++) value[i + 1] = id.charCodeAt(i) & 0xff;
  return { type: TLV.AWS, value };
}

/** Azure 0xEE subtype 0x01: the Private Link LINKID, 32-bit little-endian. */
export function azureLinkIdTlv(linkId: number): Tlv {
  const value = new Uint8Array(5);
  value[0] = 0x01;
  new DataView(value.buffer).setUint32(1, linkId >>> 0, true);
  return { type: TLV.AZURE, value };
}

/** GCP 0xE0: the Private Service Connect connection id, 64-bit big-endian. */
export function gcpConnectionIdTlv(id: bigint): Tlv {
  const value = new Uint8Array(8);
  new DataView(value.buffer).setBigUint64(0, BigInt.asUintN(64, id), false);
  return { type: TLV.GCP, value };
}

/** The SSL TLV: client flags, verify result, then sub-TLVs (0x21 VERSION, 0x22 CN, ...). */
export function sslTlv(ssl: { client: number; verify: number; tlvs?: Tlv[] }): Tlv {
  const subs = ssl.tlvs ?? [];
  const value = new Uint8Array(5 + subs.reduce((n, t) => n + 3 + t.value.length, 0));
  value[0] = ssl.client & 0xff;
  new DataView(value.buffer).setUint32(1, ssl.verify >>> 0, false);
  let p = 5;
  for (const sub of subs) {
    value[p] = sub.type;
    value[p + 1] = sub.value.length >> 8;
    value[p + 2] = sub.value.length & 0xff;
    value.set(sub.value, p + 3);
    p += 3 + sub.value.length;
  }
  return { type: TLV.SSL, value };
}
