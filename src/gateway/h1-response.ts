// The upstream side of HTTP/1.1, pure: the response head (status line, header fields, body framing)
// and the chunked transfer coding. Framing decides where one response ends and the next begins on a
// kept-alive connection, so every ambiguous case is an error (the connection is then closed, never
// reused): Content-Length together with Transfer-Encoding, duplicate or malformed Content-Length, any
// transfer coding other than exactly "chunked", obs-fold, whitespace before a colon, bare CR or LF.
import { isOws, trimOws } from '../net/http-field.ts';
import { parseStatusLine } from '../net/http-status-line.ts';

/** Why a response was refused; code is always UPSTREAM_ERROR (502), reason tells the cases apart. */
export interface ResponseError {
  code: 'UPSTREAM_ERROR';
  reason:
    | 'status-line'
    | 'header-syntax'
    | 'header-too-big'
    | 'obs-fold'
    | 'content-length'
    | 'duplicate-content-length'
    | 'length-and-chunked'
    | 'transfer-encoding'
    | 'switching-protocols'
    | 'chunk-syntax'
    | 'chunk-too-big';
  /** nginx's wording for the error log (`upstream sent …`). */
  message: string;
}

export type BodyFraming =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  /** Neither Content-Length nor chunked: the body ends when the upstream closes. */
  | { kind: 'close' };

/** A response head with its fields as a flat list: what the proxy forwards, no object per response. */
export interface ResponseFields {
  status: number;
  statusMessage: string;
  /** Lower-case names and values, alternating, in the order received. */
  fields: string[];
  framing: BodyFraming;
  /** 1xx other than 101: an interim response; the final one follows on the same connection. */
  interim: boolean;
  /** Whether the connection may carry another request after this response. */
  keepAlive: boolean;
}

export interface ResponseHead extends ResponseFields {
  /** Header fields by lower-case name; a repeated field becomes an array, in order. */
  headers: Record<string, string | string[]>;
}

export type HeadResult = { ok: true; head: ResponseHead } | { ok: false; error: ResponseError };
export type FieldsResult = { ok: true; head: ResponseFields } | { ok: false; error: ResponseError };

const fail = (reason: ResponseError['reason'], message: string): { ok: false; error: ResponseError } => ({
  ok: false,
  error: { code: 'UPSTREAM_ERROR', reason, message },
});

// Field values and the reason phrase: HTAB, SP, VCHAR, obs-text (RFC 9110 5.5); CR and LF only as line ends.
const INVALID_HEAD_CHAR = /[^\t\r\n\x20-\x7e\x80-\xff]/;
// RFC 9110 tchar.
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1;

const NO_BODY: BodyFraming = Object.freeze({ kind: 'none' });
const CHUNKED: BodyFraming = Object.freeze({ kind: 'chunked' });
const CLOSE_DELIMITED: BodyFraming = Object.freeze({ kind: 'close' });

/**
 * Names backends send most, by length: a name that matches one (case-insensitively) is that constant,
 * so the usual response costs no lower-casing and no new string per name.
 */
const KNOWN_NAMES: string[][] = [];
for (const name of [
  'accept-ranges',
  'access-control-allow-origin',
  'age',
  'cache-control',
  'connection',
  'content-encoding',
  'content-length',
  'content-type',
  'date',
  'etag',
  'expires',
  'keep-alive',
  'last-modified',
  'location',
  'server',
  'set-cookie',
  'transfer-encoding',
  'vary',
]) {
  const bucket = KNOWN_NAMES[name.length];
  if (bucket === undefined) KNOWN_NAMES[name.length] = [name];
  else bucket.push(name);
}

/** The lower-case name of the token text[start, end): a constant when known. */
function lowerName(text: string, start: number, end: number): string {
  const known = KNOWN_NAMES[end - start];
  if (known !== undefined) {
    for (const name of known) {
      let i = 0;
      // Token characters only here: `| 0x20` lower-cases letters and leaves '-' and digits as they are.
      while (i < name.length && (text.charCodeAt(start + i) | 0x20) === name.charCodeAt(i)) i += 1;
      if (i === name.length) return name;
    }
  }
  return text.slice(start, end).toLowerCase();
}

/** The end of the token that starts at `start` (where the first non-token character is). */
function tokenEnd(text: string, start: number, end: number): number {
  let i = start;
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c >= 128 || TOKEN[c] !== 1) break;
    i += 1;
  }
  return i;
}

function hasToken(value: string, token: string): boolean {
  for (const part of value.split(',')) if (trimOws(part).toLowerCase() === token) return true;
  return false;
}

/** What the fields say about framing and the connection, gathered while they are read. */
interface FramingFields {
  contentLength: string | null;
  transferEncoding: string | null;
  /** Every Connection value, joined with commas (null when none). */
  connection: string | null;
}

/** Notes a framing field; an error for a repeated or invalid one. */
function noteField(
  notes: FramingFields,
  name: string,
  value: string,
): { ok: false; error: ResponseError } | null {
  if (name === 'content-length') {
    if (notes.contentLength !== null) {
      return fail('duplicate-content-length', 'upstream sent duplicate header line: "Content-Length"');
    }
    if (value.length === 0 || value.length > 15) {
      return fail('content-length', `upstream sent invalid "Content-Length" header: "${value}"`);
    }
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c < 0x30 || c > 0x39) {
        return fail('content-length', `upstream sent invalid "Content-Length" header: "${value}"`);
      }
    }
    notes.contentLength = value;
  } else if (name === 'transfer-encoding') {
    if (notes.transferEncoding !== null) {
      return fail('transfer-encoding', 'upstream sent duplicate header line: "Transfer-Encoding"');
    }
    notes.transferEncoding = value;
  } else if (name === 'connection') {
    notes.connection = notes.connection === null ? value : `${notes.connection},${value}`;
  }
  return null;
}

/**
 * The header lines of `text` from `pos` (just past the status line's CRLF), into `fields`; null when
 * they are valid. Lines are what lies between CRLFs: a CR or LF inside one is an error.
 */
function readFields(
  text: string,
  pos: number,
  fields: string[],
  notes: FramingFields,
): { ok: false; error: ResponseError } | null {
  const length = text.length;
  while (pos < length) {
    let end = text.indexOf('\r\n', pos);
    if (end === -1) end = length;
    const cr = text.indexOf('\r', pos);
    const lf = text.indexOf('\n', pos);
    if ((cr !== -1 && cr < end) || (lf !== -1 && lf < end)) {
      return fail('header-syntax', 'upstream sent invalid header (bare CR or LF)');
    }
    if (isOws(text.charCodeAt(pos))) {
      return fail('obs-fold', 'upstream sent invalid header (obsolete line folding)');
    }
    const colon = text.indexOf(':', pos);
    if (colon <= pos || colon >= end) return fail('header-syntax', 'upstream sent invalid header');
    if (tokenEnd(text, pos, colon) !== colon) {
      return fail('header-syntax', `upstream sent invalid header name "${text.slice(pos, colon)}"`);
    }
    const name = lowerName(text, pos, colon);
    let valueStart = colon + 1;
    let valueEnd = end;
    while (valueStart < valueEnd && isOws(text.charCodeAt(valueStart))) valueStart += 1;
    while (valueEnd > valueStart && isOws(text.charCodeAt(valueEnd - 1))) valueEnd -= 1;
    const value = text.slice(valueStart, valueEnd);
    const refused = noteField(notes, name, value);
    if (refused !== null) return refused;
    fields.push(name, value);
    pos = end + 2;
  }
  return null;
}

/** How the body is framed (RFC 9112 6.3), or why the fields make it ambiguous. */
function framingOf(
  notes: FramingFields,
  status: number,
  minor: number,
  method: string,
): BodyFraming | { ok: false; error: ResponseError } {
  if (status < 200 || status === 204 || status === 304 || method === 'HEAD') return NO_BODY;
  const { transferEncoding, contentLength } = notes;
  if (transferEncoding !== null) {
    if (contentLength !== null) {
      return fail(
        'length-and-chunked',
        'upstream sent "Content-Length" and "Transfer-Encoding" headers at the same time',
      );
    }
    if (minor === 0 || transferEncoding.toLowerCase() !== 'chunked') {
      return fail('transfer-encoding', `upstream sent unknown "Transfer-Encoding": "${transferEncoding}"`);
    }
    return CHUNKED;
  }
  if (contentLength !== null) return { kind: 'length', length: Number(contentLength) };
  return CLOSE_DELIMITED;
}

/**
 * Parses a response head into a flat field list: `text` is the head in latin1 without its final empty
 * line (everything before the first CRLF CRLF). `method` is the request's (a HEAD response has no
 * body). A 101 is an error unless the request asked for an upgrade (`upgrade`); then it is an interim
 * head without body.
 */
export function parseResponseFields(text: string, method: string, upgrade = false): FieldsResult {
  if (INVALID_HEAD_CHAR.test(text)) return fail('header-syntax', 'upstream sent invalid header');
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd === -1) lineEnd = text.length;
  const statusLine = parseStatusLine(lineEnd === text.length ? text : text.slice(0, lineEnd));
  if (statusLine === null) return fail('status-line', 'upstream sent no valid HTTP/1.0 header');
  const { minor, status } = statusLine;
  const fields: string[] = [];
  const notes: FramingFields = { contentLength: null, transferEncoding: null, connection: null };
  const refused = readFields(text, lineEnd + 2, fields, notes);
  if (refused !== null) return refused;
  if (status === 101 && !upgrade) {
    return fail(
      'switching-protocols',
      'upstream sent "101 Switching Protocols" to a request that asked for no upgrade',
    );
  }
  const framing = framingOf(notes, status, minor, method);
  if ('ok' in framing) return framing;
  const connection = notes.connection;
  const keepAlive =
    minor === 1 &&
    framing.kind !== 'close' &&
    (connection === null || connection === 'keep-alive' || !hasToken(connection, 'close'));
  return {
    ok: true,
    head: { status, statusMessage: statusLine.reason, fields, framing, interim: status < 200, keepAlive },
  };
}

/** Fields by lower-case name, a repeated one as an array in order (the shape undici and node:http give). */
export function fieldsToHeaders(fields: readonly string[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    const value = fields[i + 1] as string;
    const existing = Object.hasOwn(headers, name) ? headers[name] : undefined;
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [existing, value];
  }
  return headers;
}

/** parseResponseFields with the fields also by name (the WebSocket handshake's reading, tests). */
export function parseResponseHead(text: string, method: string, upgrade = false): HeadResult {
  const parsed = parseResponseFields(text, method, upgrade);
  if (!parsed.ok) return parsed;
  return { ok: true, head: { ...parsed.head, headers: fieldsToHeaders(parsed.head.fields) } };
}

// ---------------------------------------------------------------------------------------------
// Chunked transfer coding (RFC 9112 7.1): chunk-size [ chunk-ext ] CRLF chunk-data CRLF ... 0 CRLF
// trailer-section CRLF. Extensions and trailers are checked and dropped.

const SIZE = 0;
const SIZE_WS = 1;
const EXT = 2;
const SIZE_LF = 3;
const DATA = 4;
const DATA_CR = 5;
const DATA_LF = 6;
const TRAILER_START = 7;
const TRAILER = 8;
const TRAILER_LF = 9;
const FINAL_LF = 10;
const DONE = 11;

/** Longest chunk-size line (size, extensions) and trailer section accepted. */
const MAX_LINE_BYTES = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;

export type ChunkedResult =
  /** Everything given was consumed; more is needed. */
  | { ok: true; done: false }
  /** The body ended; bytes from `rest` on are not part of it. */
  | { ok: true; done: true; rest: number }
  | { ok: false; error: ResponseError };

const CHUNK_SYNTAX = fail('chunk-syntax', 'upstream sent invalid chunked response');
const NEED_MORE: ChunkedResult = { ok: true, done: false };

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

function isFieldByte(byte: number): boolean {
  return byte === 0x09 || (byte >= 0x20 && byte !== 0x7f);
}

/** Incremental decoder: feed() the bytes after the head as they come; data slices go to onData. */
export class ChunkedDecoder {
  #state = SIZE;
  #size = 0;
  #digits = 0;
  #lineBytes = 0;
  #trailerBytes = 0;

  get done(): boolean {
    return this.#state === DONE;
  }

  feed(buf: Buffer, start: number, onData: (chunk: Buffer) => void): ChunkedResult {
    let i = start;
    const end = buf.length;
    while (i < end) {
      const state = this.#state;
      if (state === DATA) {
        const take = Math.min(this.#size, end - i);
        onData(buf.subarray(i, i + take));
        i += take;
        this.#size -= take;
        if (this.#size === 0) this.#state = DATA_CR;
        continue;
      }
      const byte = buf[i] as number;
      i += 1;
      switch (state) {
        case SIZE: {
          const digit = hexValue(byte);
          if (digit >= 0) {
            // 2^52: far beyond any real chunk, and still exact in a double.
            if (this.#size >= 2 ** 48) return fail('chunk-too-big', 'upstream sent too big chunk size');
            this.#size = this.#size * 16 + digit;
            this.#digits += 1;
          } else if (this.#digits === 0) {
            return CHUNK_SYNTAX;
          } else if (byte === 0x0d) {
            this.#state = SIZE_LF;
          } else if (byte === 0x3b) {
            this.#state = EXT;
          } else if (byte === 0x20 || byte === 0x09) {
            this.#state = SIZE_WS;
          } else {
            return CHUNK_SYNTAX;
          }
          break;
        }
        case SIZE_WS:
          // BWS is allowed only before an extension.
          if (byte === 0x3b) this.#state = EXT;
          else if (byte !== 0x20 && byte !== 0x09) return CHUNK_SYNTAX;
          break;
        case EXT:
          if (byte === 0x0d) this.#state = SIZE_LF;
          else if (!isFieldByte(byte)) return CHUNK_SYNTAX;
          break;
        case SIZE_LF:
          if (byte !== 0x0a) return CHUNK_SYNTAX;
          this.#digits = 0;
          this.#lineBytes = 0;
          this.#state = this.#size === 0 ? TRAILER_START : DATA;
          continue;
        case DATA_CR:
          if (byte !== 0x0d) return CHUNK_SYNTAX;
          this.#state = DATA_LF;
          break;
        case DATA_LF:
          if (byte !== 0x0a) return CHUNK_SYNTAX;
          this.#state = SIZE;
          this.#lineBytes = 0;
          continue;
        case TRAILER_START:
          if (byte === 0x0d) {
            this.#state = FINAL_LF;
          } else if (isFieldByte(byte) && byte !== 0x20 && byte !== 0x09) {
            this.#state = TRAILER;
          } else {
            return CHUNK_SYNTAX;
          }
          break;
        case TRAILER:
          if (byte === 0x0d) this.#state = TRAILER_LF;
          else if (!isFieldByte(byte)) return CHUNK_SYNTAX;
          break;
        case TRAILER_LF:
          if (byte !== 0x0a) return CHUNK_SYNTAX;
          this.#state = TRAILER_START;
          break;
        case FINAL_LF:
          if (byte !== 0x0a) return CHUNK_SYNTAX;
          this.#state = DONE;
          return { ok: true, done: true, rest: i };
        default:
          return { ok: true, done: true, rest: i - 1 };
      }
      if (this.#state >= TRAILER_START) {
        this.#trailerBytes += 1;
        if (this.#trailerBytes > MAX_TRAILER_BYTES)
          return fail('header-too-big', 'upstream sent too big trailer');
      } else {
        this.#lineBytes += 1;
        if (this.#lineBytes > MAX_LINE_BYTES)
          return fail('chunk-syntax', 'upstream sent too long chunk line');
      }
    }
    return NEED_MORE;
  }
}
