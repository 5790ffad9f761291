// Every way a PROXY header can be refused, as stable codes. Parsing reports them as values;
// encoding throws ProxyProtocolError (an invalid spec is the caller's mistake, not network input).

export const PP_ERROR_MESSAGES = {
  PP_INCOMPLETE: 'the input ended before the header was complete',
  PP_NOT_PROXY_PROTOCOL: 'the input starts with neither "PROXY " (v1) nor the v2 signature',
  PP_V1_BAD_SIGNATURE: 'v1: "PROXY" must be followed by exactly one space',
  PP_V1_TOO_LONG: 'v1: no CRLF within 107 bytes',
  PP_V1_BAD_LINE_END: 'v1: a line must end with CRLF; a lone CR or LF is not a line end',
  PP_V1_BAD_PROTOCOL: 'v1: the protocol must be TCP4, TCP6 or UNKNOWN after a single space',
  PP_V1_BAD_FIELD_COUNT: 'v1: TCP4/TCP6 need exactly: source, destination, source port, destination port',
  PP_V1_BAD_ADDRESS: 'v1: an address is not valid for the protocol',
  PP_V1_BAD_PORT: 'v1: a port must be 0-65535 in decimal without sign or leading zeros',
  PP_V2_BAD_VERSION: 'v2: the version nibble must be 2',
  PP_V2_BAD_COMMAND: 'v2: the command must be LOCAL (0) or PROXY (1)',
  PP_V2_BAD_FAMILY: 'v2: unknown address family/transport byte',
  PP_V2_LENGTH_TOO_SMALL: 'v2: the length is too small for the address family',
  PP_V2_TLV_TRUNCATED: 'v2: bytes left after the address block are too few for a TLV header',
  PP_V2_TLV_OVERFLOW: 'v2: a TLV runs past the end of the header',
  PP_V2_CRC32C_BAD_LENGTH: 'v2: the CRC32C TLV must carry exactly 4 bytes',
  PP_V2_CRC32C_MISMATCH: 'v2: the CRC32C checksum does not match the header',
  PP_V2_CRC32C_DUPLICATE: 'v2: more than one CRC32C TLV',
  PP_V2_BAD_AUTHORITY: 'v2: the AUTHORITY TLV is not valid UTF-8',
  PP_V2_BAD_NETNS: 'v2: the NETNS TLV is not valid UTF-8',
  PP_V2_UNIQUE_ID_TOO_LONG: 'v2: the UNIQUE_ID TLV is longer than 128 bytes',
  PP_V2_SSL_TRUNCATED: 'v2: the SSL TLV is shorter than its 5-byte client/verify prefix',
  PP_V2_SSL_TLV_TRUNCATED: 'v2: bytes left in the SSL TLV are too few for a sub-TLV header',
  PP_V2_SSL_TLV_OVERFLOW: 'v2: an SSL sub-TLV runs past the end of the SSL TLV',
  PP_V2_SSL_BAD_TEXT: 'v2: an SSL text sub-TLV (version, CN, cipher, algorithms, group) is not valid UTF-8',
  PP_ENCODE_BAD_SPEC: 'encode: the header spec is invalid',
  PP_ENCODE_BAD_ADDRESS: 'encode: an address is missing or not valid for the protocol',
  PP_ENCODE_BAD_PORT: 'encode: a port must be an integer 0-65535',
  PP_ENCODE_BAD_TLV: 'encode: a TLV is invalid',
  PP_ENCODE_TOO_LONG: 'encode: the v2 header would exceed 65535 bytes after the fixed 16',
  PP_ENCODE_UNSUPPORTED: 'encode: v1 carries only TCP4, TCP6 or UNKNOWN and no TLVs',
} as const;

export type PpErrorCode = keyof typeof PP_ERROR_MESSAGES;

export interface PpError {
  code: PpErrorCode;
  message: string;
}

/** A codec error; `detail` adds the specifics (which field, which offset) to the fixed message. */
export function ppError(code: PpErrorCode, detail?: string): PpError {
  const base = PP_ERROR_MESSAGES[code];
  return { code, message: detail === undefined ? base : `${base} (${detail})` };
}

/** Thrown by the encoder for an invalid spec; carries the same stable code as the value errors. */
export class ProxyProtocolError extends Error {
  readonly code: PpErrorCode;
  constructor(error: PpError) {
    super(error.message);
    this.name = 'ProxyProtocolError';
    this.code = error.code;
  }
}
