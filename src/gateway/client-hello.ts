// The TLS ClientHello, read before any TLS socket exists: the HTTPS listener needs the server name
// first, to choose the host's initial SecureContext (ssl-ciphers, ssl-protocols: a context returned by
// the SNI callback changes the certificate only) and to hand passthrough hosts' connections over raw.
// Pure: bytes in, a verdict out. Call again with all the bytes so far each time more arrive.
//
// The hello may be split over several TLS records (RFC 8446 5.1) and any TCP segments; it is bounded
// (a handshake message of at most 16 KiB, in at most 64 records), so a client cannot make the listener
// buffer more than about 16.3 KiB. Only what routing needs is extracted (server_name, ALPN); every
// length is checked, so hostile bytes give a coded error, never an exception.
/** Registered in src/gateway/errors.ts. */
export type ClientHelloErrorCode = 'TLS_HELLO_NOT_HANDSHAKE' | 'TLS_HELLO_MALFORMED' | 'TLS_HELLO_TOO_BIG';

export interface ClientHelloError {
  code: ClientHelloErrorCode;
  message: string;
}

export interface ClientHello {
  /** server_name (host_name, lower-cased); null when the client sent none. */
  serverName: string | null;
  /** application_layer_protocol_negotiation, in the client's order; empty when absent. */
  alpn: readonly string[];
}

export type ClientHelloRead =
  | { kind: 'incomplete' }
  | { kind: 'hello'; hello: ClientHello }
  | { kind: 'error'; error: ClientHelloError };

/** Largest ClientHello handshake message accepted (header included): 16 KiB, a full TLS record. */
export const MAX_HELLO_BYTES = 16_384;
/** Most records a hello may span: real clients use one, a few when fragmenting on purpose. */
export const MAX_HELLO_RECORDS = 64;
/** The reader decides before it has this many bytes: a listener never buffers more for a hello. */
export const MAX_HELLO_INPUT = MAX_HELLO_BYTES + MAX_HELLO_RECORDS * 5;

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
const MAX_RECORD_PAYLOAD = 16_384;

const INCOMPLETE: ClientHelloRead = Object.freeze({ kind: 'incomplete' });

function failure(code: ClientHelloErrorCode, message: string): ClientHelloRead {
  return { kind: 'error', error: { code, message } };
}

/**
 * The handshake bytes the records carry so far, once they hold the whole ClientHello (a record may
 * still be arriving: its bytes count as they come), or a verdict on the records themselves.
 */
function gatherHandshake(input: Uint8Array): { bytes: Uint8Array } | { read: ClientHelloRead } {
  const parts: Uint8Array[] = [];
  let at = 0;
  let records = 0;
  let total = 0;
  let needed = -1; // the handshake message's length, once its 4-byte header is in
  while (at < input.length) {
    if (input[at] !== RECORD_HANDSHAKE) {
      const what = at === 0 ? 'the first byte' : `record ${records + 1}`;
      return { read: failure('TLS_HELLO_NOT_HANDSHAKE', `${what} is not a TLS handshake record`) };
    }
    // Here the hello needs more than the records so far hold.
    if (records === MAX_HELLO_RECORDS)
      return {
        read: failure('TLS_HELLO_TOO_BIG', `the ClientHello spans more than ${MAX_HELLO_RECORDS} records`),
      };
    if (at + 5 > input.length) break;
    if (input[at + 1] !== 3)
      return { read: failure('TLS_HELLO_MALFORMED', `record version ${input[at + 1]}.${input[at + 2]}`) };
    const length = ((input[at + 3] as number) << 8) | (input[at + 4] as number);
    if (length === 0 || length > MAX_RECORD_PAYLOAD)
      return { read: failure('TLS_HELLO_MALFORMED', `a handshake record of ${length} bytes`) };
    records += 1;
    const end = Math.min(at + 5 + length, input.length);
    parts.push(input.subarray(at + 5, end));
    total += end - at - 5;
    at = end;
    if (needed < 0 && total >= 4) {
      needed = handshakeLength(Buffer.concat(parts, total));
      if (needed > MAX_HELLO_BYTES)
        return {
          read: failure('TLS_HELLO_TOO_BIG', `a ClientHello of ${needed} bytes (at most ${MAX_HELLO_BYTES})`),
        };
    }
    if (needed >= 0 && total >= needed) return { bytes: Buffer.concat(parts, total) };
  }
  return { read: INCOMPLETE };
}

/** The handshake message's total length (4-byte header + body). */
function handshakeLength(head: Uint8Array): number {
  return 4 + (((head[1] as number) << 16) | ((head[2] as number) << 8) | (head[3] as number));
}

/**
 * Reads the ClientHello at the start of `input` (the first bytes of a connection). 'incomplete':
 * call again with these bytes and more; 'error': the connection is not a TLS client we can serve.
 */
export function readClientHello(input: Uint8Array): ClientHelloRead {
  if (input.length === 0) return INCOMPLETE;
  const gathered = gatherHandshake(input);
  if ('read' in gathered) return gathered.read;
  const { bytes } = gathered;
  if (bytes[0] !== HANDSHAKE_CLIENT_HELLO)
    return failure('TLS_HELLO_NOT_HANDSHAKE', `handshake message type ${bytes[0]}, not a ClientHello`);
  const length = handshakeLength(bytes);
  const parsed = parseHello(bytes.subarray(4, length));
  if ('error' in parsed) return { kind: 'error', error: parsed.error };
  return { kind: 'hello', hello: parsed };
}

/** A bounds-checked cursor over the hello body. */
class Reader {
  readonly #bytes: Uint8Array;
  #at = 0;
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  get left(): number {
    return this.#bytes.length - this.#at;
  }
  /** An unsigned integer of `size` bytes, or -1 past the end. */
  uint(size: 1 | 2 | 3): number {
    if (this.left < size) return -1;
    let value = 0;
    for (let i = 0; i < size; i++) value = value * 256 + (this.#bytes[this.#at + i] as number);
    this.#at += size;
    return value;
  }
  /** The next `length` bytes, or null past the end. */
  take(length: number): Uint8Array | null {
    if (length < 0 || this.left < length) return null;
    const out = this.#bytes.subarray(this.#at, this.#at + length);
    this.#at += length;
    return out;
  }
  /** A vector with a `size`-byte length prefix, or null when it does not fit. */
  vector(size: 1 | 2): Uint8Array | null {
    return this.take(this.uint(size));
  }
}

type Parsed = { serverName: string | null; alpn: string[] } | { error: ClientHelloError };

const malformed = (message: string): { error: ClientHelloError } => ({
  error: { code: 'TLS_HELLO_MALFORMED', message },
});

/** legacy_version, random, session id, cipher suites, compression methods, then the extensions. */
function parseHello(body: Uint8Array): Parsed {
  const r = new Reader(body);
  if (r.uint(2) < 0 || r.take(32) === null) return malformed('the ClientHello ends inside its random');
  const session = r.vector(1);
  if (session === null || session.length > 32) return malformed('a bad legacy_session_id');
  const suites = r.vector(2);
  if (suites === null || suites.length < 2 || suites.length % 2 !== 0)
    return malformed('a bad cipher_suites list');
  const compression = r.vector(1);
  if (compression === null || compression.length < 1) return malformed('a bad compression_methods list');
  if (r.left === 0) return { serverName: null, alpn: [] }; // no extensions at all (TLS 1.2 allows it)
  const extensions = r.vector(2);
  if (extensions === null || r.left !== 0) return malformed('the extensions do not fill the ClientHello');
  return parseExtensions(extensions);
}

function parseExtensions(bytes: Uint8Array): Parsed {
  const r = new Reader(bytes);
  const seen = new Set<number>();
  let serverName: string | null = null;
  let alpn: string[] = [];
  while (r.left > 0) {
    const type = r.uint(2);
    const data = r.vector(2);
    if (type < 0 || data === null) return malformed('an extension runs past the end of the ClientHello');
    if (seen.has(type)) return malformed(`extension ${type} appears twice`);
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const name = parseServerName(data);
      if (typeof name !== 'string') return name;
      serverName = name;
    } else if (type === EXT_ALPN) {
      const protocols = parseAlpn(data);
      if (!Array.isArray(protocols)) return protocols;
      alpn = protocols;
    }
  }
  return { serverName, alpn };
}

/** RFC 6066 3: one host_name, visible ASCII, at most 255 bytes; lower-cased (names are case-insensitive). */
function parseServerName(data: Uint8Array): string | { error: ClientHelloError } {
  const r = new Reader(data);
  const list = r.vector(2);
  if (list === null || r.left !== 0 || list.length === 0) return malformed('a bad server_name list');
  const names = new Reader(list);
  let host: string | null = null;
  while (names.left > 0) {
    const type = names.uint(1);
    const name = names.vector(2);
    if (name === null) return malformed('a server_name entry runs past its list');
    // No other name type is defined. Refused, as OpenSSL (the terminating side) refuses it: skipping it
    // as Go's crypto/tls does would route by one entry where nginx's ssl_preread reads none.
    if (type !== 0) return malformed(`a server_name entry of type ${type}, not host_name`);
    if (host !== null) return malformed('two host_name entries in server_name');
    if (name.length === 0 || name.length > 255) return malformed(`a host_name of ${name.length} bytes`);
    for (const byte of name)
      if (byte < 0x21 || byte > 0x7e) return malformed('a host_name with a byte outside visible ASCII');
    host = Buffer.from(name).toString('latin1').toLowerCase();
  }
  if (host === null) return malformed('server_name without a host_name');
  return host;
}

/** RFC 7301 3.1: a non-empty list of non-empty protocol names. */
function parseAlpn(data: Uint8Array): string[] | { error: ClientHelloError } {
  const r = new Reader(data);
  const list = r.vector(2);
  if (list === null || r.left !== 0 || list.length === 0) return malformed('a bad ALPN list');
  const protocols = new Reader(list);
  const out: string[] = [];
  while (protocols.left > 0) {
    const name = protocols.vector(1);
    if (name === null || name.length === 0) return malformed('a bad ALPN protocol name');
    out.push(Buffer.from(name).toString('latin1'));
  }
  return out;
}
