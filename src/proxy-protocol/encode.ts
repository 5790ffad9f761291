// Building headers for the load balancer's upstream connections and for test tools. The encoder
// refuses anything the parser would refuse, so keepip never emits a header a receiver must drop.
import { formatIPv6, parseIPv4, parseIPv6 } from './address.ts';
import { headerCrc32c } from './crc32c.ts';
import { type PpError, ProxyProtocolError, ppError } from './errors.ts';
import { parseProxyHeader } from './parse.ts';
import { TLV, UNIQUE_ID_MAX } from './tlv.ts';
import type { EncodeSpec, Endpoint, ProxyTransportProtocol, Tlv } from './types.ts';
import { UNIX_PATH_LENGTH, V2_FIXED_LENGTH, V2_SIGNATURE } from './v2.ts';

export type EncodeResult = { ok: true; value: Buffer } | { ok: false; error: PpError };

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

function inferProtocol(command: string, source: Endpoint | undefined): ProxyTransportProtocol | null {
  if (command === 'LOCAL') return 'UNSPEC';
  if (source === undefined) return null;
  if ('path' in source) return 'UNIX_STREAM';
  if (parseIPv4(source.address) !== null) return 'TCP4';
  if (parseIPv6(source.address) !== null) return 'TCP6';
  return null;
}

type Inet = { bytes: Uint8Array; port: number };

function inetEndpoint(endpoint: Endpoint | undefined, v6: boolean, role: string): Inet | PpError {
  if (endpoint === undefined || !('address' in endpoint))
    return ppError('PP_ENCODE_BAD_ADDRESS', `${role} missing`);
  const bytes = v6 ? parseIPv6(endpoint.address) : parseIPv4(endpoint.address);
  if (bytes === null) {
    return ppError('PP_ENCODE_BAD_ADDRESS', `${role} "${endpoint.address}" is not IPv${v6 ? 6 : 4}`);
  }
  const port = endpoint.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    return ppError('PP_ENCODE_BAD_PORT', `${role} port ${String(port)}`);
  }
  return { bytes, port };
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
  const source = inetEndpoint(spec.source, v6, 'source');
  if ('code' in source) return { ok: false, error: source };
  const destination = inetEndpoint(spec.destination, v6, 'destination');
  if ('code' in destination) return { ok: false, error: destination };
  const text = (b: Uint8Array) => (v6 ? formatIPv6(b, 0) : b.join('.'));
  const line = `PROXY ${protocol} ${text(source.bytes)} ${text(destination.bytes)} ${source.port} ${destination.port}\r\n`;
  return { ok: true, value: Buffer.from(line, 'latin1') };
}

function unixPathBytes(endpoint: Endpoint | undefined, role: string): Uint8Array | PpError {
  if (endpoint === undefined || !('path' in endpoint))
    return ppError('PP_ENCODE_BAD_ADDRESS', `${role} path missing`);
  const bytes = Buffer.from(endpoint.path, 'utf8');
  if (bytes.length > UNIX_PATH_LENGTH || bytes.includes(0)) {
    return ppError('PP_ENCODE_BAD_ADDRESS', `${role} path must be at most 108 bytes without NUL`);
  }
  return bytes;
}

function encodeV2(spec: EncodeSpec, command: string, protocol: ProxyTransportProtocol): EncodeResult {
  const tlvs = spec.tlvs ?? [];
  const withCrc = spec.crc32c === true;
  let tlvLength = withCrc ? 7 : 0;
  for (const tlv of tlvs) {
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
  let address: Uint8Array = new Uint8Array(0);
  if (command === 'PROXY' && (familyByte & 0xf0) !== 0) {
    const block = addressBlock(spec, protocol);
    if ('code' in block) return { ok: false, error: block };
    address = block;
  }
  const length = address.length + tlvLength;
  if (length > 65535) return { ok: false, error: ppError('PP_ENCODE_TOO_LONG', `${length} bytes`) };

  const out = Buffer.allocUnsafe(V2_FIXED_LENGTH + length);
  for (let i = 0; i < 12; i++) out[i] = V2_SIGNATURE[i]!;
  out[12] = command === 'LOCAL' ? 0x20 : 0x21;
  out[13] = familyByte;
  out[14] = length >> 8;
  out[15] = length & 0xff;
  out.set(address, V2_FIXED_LENGTH);
  let p = V2_FIXED_LENGTH + address.length;
  let crcOffset = -1;
  if (withCrc) {
    out[p] = TLV.CRC32C;
    out[p + 1] = 0;
    out[p + 2] = 4;
    crcOffset = p + 3;
    out.fill(0, crcOffset, crcOffset + 4);
    p += 7;
  }
  for (const tlv of tlvs) {
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

function addressBlock(spec: EncodeSpec, protocol: ProxyTransportProtocol): Uint8Array | PpError {
  if (protocol === 'UNIX_STREAM' || protocol === 'UNIX_DGRAM') {
    const source = unixPathBytes(spec.source, 'source');
    if ('code' in source) return source;
    const destination = unixPathBytes(spec.destination, 'destination');
    if ('code' in destination) return destination;
    const block = new Uint8Array(2 * UNIX_PATH_LENGTH); // zero-filled: NUL padding
    block.set(source, 0);
    block.set(destination, UNIX_PATH_LENGTH);
    return block;
  }
  const v6 = protocol === 'TCP6' || protocol === 'UDP6';
  const source = inetEndpoint(spec.source, v6, 'source');
  if ('code' in source) return source;
  const destination = inetEndpoint(spec.destination, v6, 'destination');
  if ('code' in destination) return destination;
  const size = v6 ? 16 : 4;
  const block = new Uint8Array(2 * size + 4); // 2 addresses, 2 ports
  block.set(source.bytes, 0);
  block.set(destination.bytes, size);
  block[2 * size] = source.port >> 8;
  block[2 * size + 1] = source.port & 0xff;
  block[2 * size + 2] = destination.port >> 8;
  block[2 * size + 3] = destination.port & 0xff;
  return block;
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
