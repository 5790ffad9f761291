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

const PEER_FIX =
  "a broken sender: check the load balancer's PROXY settings, and that nothing else reaches a PROXY listener";
const ENCODE_FIX = 'fix the header spec passed to encodeProxyHeader or `keepip pp encode`';

/**
 * How each code reaches the user (an error value from the parser, or thrown by the encoder) and what
 * they do about it. src/errors.ts joins it with the messages above into the registry behind
 * docs/errors.md. Keyed by PpErrorCode, so the type checker demands a fix for every code.
 */
export const PP_ERROR_FIXES: {
  readonly [C in PpErrorCode]: { readonly kind: 'error' | 'thrown'; readonly fix: string };
} = {
  PP_INCOMPLETE: {
    kind: 'error',
    fix: 'pass the whole header (keepip pp decode reads complete input); on a socket the reader waits for more bytes',
  },
  PP_NOT_PROXY_PROTOCOL: {
    kind: 'error',
    fix: 'the peer sent no PROXY header: enable PROXY protocol on the load balancer, or set use-proxy-protocol: "false"',
  },
  PP_V1_BAD_SIGNATURE: { kind: 'error', fix: PEER_FIX },
  PP_V1_TOO_LONG: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_LINE_END: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_PROTOCOL: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_FIELD_COUNT: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_ADDRESS: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_PORT: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_VERSION: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_COMMAND: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_FAMILY: { kind: 'error', fix: PEER_FIX },
  PP_V2_LENGTH_TOO_SMALL: { kind: 'error', fix: PEER_FIX },
  PP_V2_TLV_TRUNCATED: { kind: 'error', fix: PEER_FIX },
  PP_V2_TLV_OVERFLOW: { kind: 'error', fix: PEER_FIX },
  PP_V2_CRC32C_BAD_LENGTH: { kind: 'error', fix: PEER_FIX },
  PP_V2_CRC32C_MISMATCH: {
    kind: 'error',
    fix: 'the header was altered on the way or the sender computes CRC32C wrongly: check the hop that sends it',
  },
  PP_V2_CRC32C_DUPLICATE: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_AUTHORITY: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_NETNS: { kind: 'error', fix: PEER_FIX },
  PP_V2_UNIQUE_ID_TOO_LONG: { kind: 'error', fix: PEER_FIX },
  PP_V2_SSL_TRUNCATED: { kind: 'error', fix: PEER_FIX },
  PP_V2_SSL_TLV_TRUNCATED: { kind: 'error', fix: PEER_FIX },
  PP_V2_SSL_TLV_OVERFLOW: { kind: 'error', fix: PEER_FIX },
  PP_V2_SSL_BAD_TEXT: { kind: 'error', fix: PEER_FIX },
  PP_ENCODE_BAD_SPEC: {
    kind: 'thrown',
    fix: `${ENCODE_FIX}: version 1 or 2, command PROXY or LOCAL, a known protocol`,
  },
  PP_ENCODE_BAD_ADDRESS: { kind: 'thrown', fix: `${ENCODE_FIX}: addresses of the protocol's family` },
  PP_ENCODE_BAD_PORT: { kind: 'thrown', fix: `${ENCODE_FIX}: ports 0-65535` },
  PP_ENCODE_BAD_TLV: { kind: 'thrown', fix: `${ENCODE_FIX}: TLV types 0-255 with values the parser accepts` },
  PP_ENCODE_TOO_LONG: { kind: 'thrown', fix: `${ENCODE_FIX}: fewer or shorter TLVs` },
  PP_ENCODE_UNSUPPORTED: { kind: 'thrown', fix: 'use version 2 for UDP, UNIX sockets, TLVs or CRC32C' },
};

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
