// PROXY protocol v2: 12-byte signature, version/command, family/transport, 16-bit length, address
// block, TLVs. Never reads past 16 + length, whatever follows in the buffer.
import { DEC, DEC_DOT, formatIPv6 } from './address.ts';
import { type PpError, ppError } from './errors.ts';
import { parseTlvs } from './tlv.ts';
import type { Endpoint, ParseResult, ProxyHeader, ProxyTransportProtocol } from './types.ts';

export const V2_SIGNATURE: readonly number[] = [
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
];
export const V2_FIXED_LENGTH = 16;
/** Address block size by family nibble: UNSPEC, INET, INET6, UNIX. */
export const V2_ADDRESS_LENGTH: readonly number[] = [0, 12, 36, 216];
export const UNIX_PATH_LENGTH = 108;

/** The protocol name by family/transport byte, for the seven values the spec defines. */
export const V2_PROTOCOL_BY_BYTE: Readonly<Record<number, ProxyTransportProtocol>> = {
  0: 'UNSPEC',
  17: 'TCP4',
  18: 'UDP4',
  33: 'TCP6',
  34: 'UDP6',
  49: 'UNIX_STREAM',
  50: 'UNIX_DGRAM',
};

/** A switch, not a lookup table: monomorphic and inlined on the hot path. */
function protocolOf(familyByte: number): ProxyTransportProtocol | undefined {
  switch (familyByte) {
    case 0x11:
      return 'TCP4';
    case 0x21:
      return 'TCP6';
    case 0x12:
      return 'UDP4';
    case 0x22:
      return 'UDP6';
    case 0x31:
      return 'UNIX_STREAM';
    case 0x32:
      return 'UNIX_DGRAM';
    case 0x00:
      return 'UNSPEC';
    default:
      return undefined;
  }
}

const INCOMPLETE: ParseResult = Object.freeze({ kind: 'incomplete' });

function fail(error: PpError): ParseResult {
  return { kind: 'error', error };
}

/** Parses a v2 header at the start of `input`; `input[0]` is known to be 0x0D. */
export function parseV2(input: Uint8Array): ParseResult {
  const len = input.length;
  if (len >= 12) {
    // Unrolled: this is the hot path of every accepted connection.
    if (
      input[1] !== 0x0a ||
      input[2] !== 0x0d ||
      input[3] !== 0x0a ||
      input[4] !== 0x00 ||
      input[5] !== 0x0d ||
      input[6] !== 0x0a ||
      input[7] !== 0x51 ||
      input[8] !== 0x55 ||
      input[9] !== 0x49 ||
      input[10] !== 0x54 ||
      input[11] !== 0x0a
    ) {
      return fail(ppError('PP_NOT_PROXY_PROTOCOL'));
    }
  } else {
    for (let i = 0; i < len; i++) {
      if (input[i] !== V2_SIGNATURE[i]) return fail(ppError('PP_NOT_PROXY_PROTOCOL'));
    }
  }
  if (len < 13) return INCOMPLETE;
  const versionCommand = input[12]!;
  if (versionCommand >> 4 !== 2)
    return fail(ppError('PP_V2_BAD_VERSION', `0x${versionCommand.toString(16)}`));
  const command = versionCommand & 0x0f;
  if (command > 1) return fail(ppError('PP_V2_BAD_COMMAND', `0x${command.toString(16)}`));
  if (len < 14) return INCOMPLETE;
  const familyByte = input[13]!;
  const family = familyByte >> 4;
  if (family > 3 || (familyByte & 0x0f) > 2) {
    return fail(ppError('PP_V2_BAD_FAMILY', `0x${familyByte.toString(16).padStart(2, '0')}`));
  }
  const named = protocolOf(familyByte);
  // PROXY needs one of the seven defined combinations; for LOCAL the family is ignored (spec), as
  // long as both nibbles are in range.
  if (command === 1 && named === undefined) {
    return fail(ppError('PP_V2_BAD_FAMILY', `0x${familyByte.toString(16).padStart(2, '0')} with PROXY`));
  }
  if (len < 16) return INCOMPLETE;
  const length = (input[14]! << 8) | input[15]!;
  const addressLength = family === 1 ? 12 : family === 2 ? 36 : family === 3 ? 216 : 0;
  if (command === 1 && length < addressLength) {
    return fail(ppError('PP_V2_LENGTH_TOO_SMALL', `length ${length}, family needs ${addressLength}`));
  }
  const total = V2_FIXED_LENGTH + length;
  if (len < total) return { kind: 'incomplete', need: total };
  const protocol = named ?? 'UNSPEC';

  if (command === 0) return parseLocal(input, protocol, addressLength, length, total);

  let source: Endpoint | null = null;
  let destination: Endpoint | null = null;
  if (family === 1) {
    source = {
      address: DEC_DOT[input[16]!]! + DEC_DOT[input[17]!]! + DEC_DOT[input[18]!]! + DEC[input[19]!]!,
      port: (input[24]! << 8) | input[25]!,
    };
    destination = {
      address: DEC_DOT[input[20]!]! + DEC_DOT[input[21]!]! + DEC_DOT[input[22]!]! + DEC[input[23]!]!,
      port: (input[26]! << 8) | input[27]!,
    };
  } else if (family === 2) {
    source = { address: formatIPv6(input, 16), port: (input[48]! << 8) | input[49]! };
    destination = { address: formatIPv6(input, 32), port: (input[50]! << 8) | input[51]! };
  } else if (family === 3) {
    source = { path: unixPath(input, 16) };
    destination = { path: unixPath(input, 16 + UNIX_PATH_LENGTH) };
  }
  const tlvStart = V2_FIXED_LENGTH + addressLength;
  if (tlvStart === total) {
    return {
      kind: 'header',
      header: { version: 2, command: 'PROXY', protocol, source, destination, tlvs: [] },
      consumed: total,
    };
  }
  const header: ProxyHeader = { version: 2, command: 'PROXY', protocol, source, destination, tlvs: [] };
  const error = parseTlvs(input, tlvStart, total, header);
  if (error !== null) return fail(error);
  return { kind: 'header', header, consumed: total };
}

/**
 * LOCAL: the addresses are never used (sozu advisory), but the TLVs are checked. Senders differ:
 * an AWS NLB health check declares family 0x11 yet puts its TLVs right after byte 16, others send
 * an address block first. Try TLVs at 16 first, then after the declared address block.
 */
function parseLocal(
  input: Uint8Array,
  protocol: ProxyTransportProtocol,
  addressLength: number,
  length: number,
  total: number,
): ParseResult {
  const local = (): ProxyHeader => ({
    version: 2,
    command: 'LOCAL',
    protocol,
    source: null,
    destination: null,
    tlvs: [],
  });
  let header = local();
  let error = parseTlvs(input, V2_FIXED_LENGTH, total, header);
  if (error !== null && addressLength > 0 && length >= addressLength) {
    const second = local();
    if (parseTlvs(input, V2_FIXED_LENGTH + addressLength, total, second) === null) {
      header = second;
      error = null;
    }
  }
  if (error !== null) return fail(error);
  return { kind: 'header', header, consumed: total };
}

const pathDecoder = new TextDecoder('utf-8');

/** A NUL-padded 108-byte path; a path that fills all 108 bytes has no NUL. */
function unixPath(input: Uint8Array, offset: number): string {
  let end = offset;
  const limit = offset + UNIX_PATH_LENGTH;
  while (end < limit && input[end] !== 0) end++;
  return pathDecoder.decode(input.subarray(offset, end));
}
