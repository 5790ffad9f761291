// v2 TLVs: bounds, CRC32C, the known types decoded into header fields. Pure; reads nothing outside
// [start, end) of the header, so a TLV can never reach into the application's bytes.
import { isUtf8 } from 'node:buffer';
import { headerCrc32c } from './crc32c.ts';
import { type PpError, ppError } from './errors.ts';
import type { ProxyHeader, SslInfo, Tlv } from './types.ts';

export const TLV = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
  GCP: 0xe0,
  AWS: 0xea,
  AZURE: 0xee,
} as const;

export const SSL_SUBTLV = {
  VERSION: 0x21,
  CN: 0x22,
  CIPHER: 0x23,
  SIG_ALG: 0x24,
  KEY_ALG: 0x25,
  GROUP: 0x26,
  SIG_SCHEME: 0x27,
  CLIENT_CERT: 0x28,
} as const;

export const TLV_NAMES: Readonly<Record<number, string>> = {
  1: 'ALPN',
  2: 'AUTHORITY',
  3: 'CRC32C',
  4: 'NOOP',
  5: 'UNIQUE_ID',
  32: 'SSL',
  33: 'SSL_VERSION',
  34: 'SSL_CN',
  35: 'SSL_CIPHER',
  36: 'SSL_SIG_ALG',
  37: 'SSL_KEY_ALG',
  38: 'SSL_GROUP',
  39: 'SSL_SIG_SCHEME',
  40: 'SSL_CLIENT_CERT',
  48: 'NETNS',
  224: 'GCP',
  234: 'AWS',
  238: 'AZURE',
};

export const UNIQUE_ID_MAX = 128;

/** UTF-8 text of bytes[start, end), or null when they are not valid UTF-8. */
function utf8Text(bytes: Uint8Array, start: number, end: number): string | null {
  let ascii = true;
  for (let i = start; i < end; i++) {
    if (bytes[i]! > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    // Node's latin1 slice is one native call; the loop is for plain Uint8Arrays.
    if (Buffer.isBuffer(bytes)) return bytes.toString('latin1', start, end);
    let out = '';
    for (let i = start; i < end; i++) out += String.fromCharCode(bytes[i]!);
    return out;
  }
  const view = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start);
  return isUtf8(view) ? view.toString('utf8') : null;
}

/** UTF-8 text or null when the bytes are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  return utf8Text(bytes, 0, bytes.length);
}

/** A plain Uint8Array copy, whether the input is a Buffer or not (so results compare equal). */
function copy(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const length = end - start;
  const out = new Uint8Array(length);
  if (length <= 64) {
    for (let i = 0; i < length; i++) out[i] = bytes[start + i]!;
  } else {
    out.set(bytes.subarray(start, end));
  }
  return out;
}

/**
 * Parses the TLVs in header[start, end) where `end` is the end of the whole header (they must fill
 * it exactly), verifies CRC32C over header[0, end) and sets `fields.tlvs` and the decoded fields.
 * Returns null, or the error (then `fields` is half filled and must be dropped).
 */
export function parseTlvs(
  header: Uint8Array,
  start: number,
  end: number,
  fields: ProxyHeader,
): PpError | null {
  const tlvs: Tlv[] = [];
  fields.tlvs = tlvs;
  let crcOffset = -1;
  let p = start;
  while (p < end) {
    if (end - p < 3) return ppError('PP_V2_TLV_TRUNCATED', `${end - p} byte(s) at offset ${p}`);
    const type = header[p]!;
    const length = (header[p + 1]! << 8) | header[p + 2]!;
    const v = p + 3;
    if (v + length > end) {
      return ppError('PP_V2_TLV_OVERFLOW', `type 0x${hex2(type)} needs ${length} bytes, ${end - v} left`);
    }
    const value = copy(header, v, v + length);
    tlvs.push({ type, value });
    switch (type) {
      case TLV.ALPN:
        fields.alpn ??= value;
        break;
      case TLV.AUTHORITY: {
        const text = utf8Text(header, v, v + length);
        if (text === null) return ppError('PP_V2_BAD_AUTHORITY');
        fields.authority ??= text;
        break;
      }
      case TLV.CRC32C:
        if (length !== 4) return ppError('PP_V2_CRC32C_BAD_LENGTH', `length ${length}`);
        if (crcOffset >= 0) return ppError('PP_V2_CRC32C_DUPLICATE');
        crcOffset = v;
        break;
      case TLV.UNIQUE_ID:
        if (length > UNIQUE_ID_MAX) return ppError('PP_V2_UNIQUE_ID_TOO_LONG', `length ${length}`);
        fields.uniqueId ??= value;
        break;
      case TLV.SSL: {
        const ssl = parseSsl(value);
        if (!('tlvs' in ssl)) return ssl;
        fields.ssl ??= ssl;
        break;
      }
      case TLV.NETNS: {
        const text = utf8Text(header, v, v + length);
        if (text === null) return ppError('PP_V2_BAD_NETNS');
        fields.netns ??= text;
        break;
      }
      // 0xE0-0xEF is the custom range: another vendor may use the same type for something else,
      // so a value that does not fit the cloud's layout is kept as a plain TLV, not refused.
      case TLV.GCP:
        if (length === 8 && fields.gcpConnectionId === undefined) {
          fields.gcpConnectionId = new DataView(value.buffer, value.byteOffset, 8).getBigUint64(0, false);
        }
        break;
      case TLV.AWS:
        if (
          length > 1 &&
          value[0] === 0x01 &&
          fields.awsVpcEndpointId === undefined &&
          isPrintable(value, 1)
        ) {
          fields.awsVpcEndpointId = utf8Text(header, v + 1, v + length) ?? '';
        }
        break;
      case TLV.AZURE:
        if (length === 5 && value[0] === 0x01 && fields.azureLinkId === undefined) {
          fields.azureLinkId = (value[1]! | (value[2]! << 8) | (value[3]! << 16) | (value[4]! << 24)) >>> 0;
        }
        break;
      default:
        break; // NOOP and unknown types: kept in `tlvs`, otherwise ignored
    }
    p = v + length;
  }
  if (crcOffset >= 0) {
    const expected = (header[crcOffset]! << 24) | (header[crcOffset + 1]! << 16);
    const stored = (expected | (header[crcOffset + 2]! << 8) | header[crcOffset + 3]!) >>> 0;
    const actual = headerCrc32c(header, end, crcOffset);
    if (stored !== actual) {
      return ppError('PP_V2_CRC32C_MISMATCH', `header says 0x${hex8(stored)}, bytes give 0x${hex8(actual)}`);
    }
    fields.crc32c = stored;
  }
  return null;
}

const SSL_TEXT_FIELDS: Readonly<Record<number, keyof SslInfo>> = {
  [SSL_SUBTLV.VERSION]: 'version',
  [SSL_SUBTLV.CN]: 'cn',
  [SSL_SUBTLV.CIPHER]: 'cipher',
  [SSL_SUBTLV.SIG_ALG]: 'sigAlg',
  [SSL_SUBTLV.KEY_ALG]: 'keyAlg',
  [SSL_SUBTLV.GROUP]: 'group',
  [SSL_SUBTLV.SIG_SCHEME]: 'sigScheme',
};

/** The SSL TLV value: client (1 byte), verify (4 bytes BE), then sub-TLVs filling the rest exactly. */
export function parseSsl(value: Uint8Array): SslInfo | PpError {
  const end = value.length;
  if (end < 5) return ppError('PP_V2_SSL_TRUNCATED', `length ${end}`);
  const client = value[0]!;
  const verify = ((value[1]! << 24) | (value[2]! << 16) | (value[3]! << 8) | value[4]!) >>> 0;
  const tlvs: Tlv[] = [];
  const ssl: SslInfo = {
    client,
    clientSsl: (client & 0x01) !== 0,
    clientCertConn: (client & 0x02) !== 0,
    clientCertSess: (client & 0x04) !== 0,
    verify,
    tlvs,
  };
  let p = 5;
  while (p < end) {
    if (end - p < 3) return ppError('PP_V2_SSL_TLV_TRUNCATED', `${end - p} byte(s) left`);
    const type = value[p]!;
    const length = (value[p + 1]! << 8) | value[p + 2]!;
    const v = p + 3;
    if (v + length > end) {
      return ppError('PP_V2_SSL_TLV_OVERFLOW', `type 0x${hex2(type)} needs ${length} bytes, ${end - v} left`);
    }
    const sub = copy(value, v, v + length);
    tlvs.push({ type, value: sub });
    const field = SSL_TEXT_FIELDS[type];
    if (field !== undefined) {
      const text = decodeUtf8(sub);
      if (text === null) return ppError('PP_V2_SSL_BAD_TEXT', `sub-TLV 0x${hex2(type)}`);
      (ssl as unknown as Record<string, string>)[field] ??= text;
    } else if (type === SSL_SUBTLV.CLIENT_CERT) {
      ssl.clientCert ??= sub;
    }
    p = v + length;
  }
  return ssl;
}

function isPrintable(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}
