// The upstream side of HTTP/1.1, pure: the response head (status line, header fields, body framing)
// and the chunked transfer coding. Framing decides where one response ends and the next begins on a
// kept-alive connection, so every ambiguous case is an error (the connection is then closed, never
// reused): Content-Length together with Transfer-Encoding, duplicate or malformed Content-Length, any
// transfer coding other than exactly "chunked", obs-fold, whitespace before a colon, bare CR or LF.
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

export interface ResponseHead {
  status: number;
  statusMessage: string;
  /** Header fields by lower-case name; a repeated field becomes an array, in order. */
  headers: Record<string, string | string[]>;
  framing: BodyFraming;
  /** 1xx other than 101: an interim response; the final one follows on the same connection. */
  interim: boolean;
  /** Whether the connection may carry another request after this response. */
  keepAlive: boolean;
}

export type HeadResult = { ok: true; head: ResponseHead } | { ok: false; error: ResponseError };

const fail = (reason: ResponseError['reason'], message: string): { ok: false; error: ResponseError } => ({
  ok: false,
  error: { code: 'UPSTREAM_ERROR', reason, message },
});

// Field values and the reason phrase: HTAB, SP, VCHAR, obs-text (RFC 9110 5.5); CR and LF only as line ends.
const INVALID_HEAD_CHAR = /[^\t\r\n\x20-\x7e\x80-\xff]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DIGITS = /^[0-9]+$/;

function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value.charCodeAt(start) === 0x20 || value.charCodeAt(start) === 0x09)) start += 1;
  while (end > start && (value.charCodeAt(end - 1) === 0x20 || value.charCodeAt(end - 1) === 0x09)) end -= 1;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

function hasToken(value: string | string[], token: string): boolean {
  const text = Array.isArray(value) ? value.join(',') : value;
  for (const part of text.split(',')) if (trimOws(part).toLowerCase() === token) return true;
  return false;
}

/**
 * Parses a response head: `text` is the head in latin1 without its final empty line (everything
 * before the first CRLF CRLF). `method` is the request's (a HEAD response has no body). A 101 is an
 * error unless the request asked for an upgrade (`upgrade`); then it is an interim head without body.
 */
export function parseResponseHead(text: string, method: string, upgrade = false): HeadResult {
  if (INVALID_HEAD_CHAR.test(text)) return fail('header-syntax', 'upstream sent invalid header');
  const lines = text.split('\r\n');
  const statusLine = parseStatusLine(lines[0] as string);
  if (statusLine === null) return fail('status-line', 'upstream sent no valid HTTP/1.0 header');
  const { minor, status } = statusLine;
  const headers: Record<string, string | string[]> = {};
  let contentLength: string | null = null;
  let transferEncoding: string | null = null;
  let connection: string | string[] | null = null;
  for (let i = 1; i < lines.length; i += 1) {
    const line = lines[i] as string;
    if (line.includes('\r') || line.includes('\n')) {
      return fail('header-syntax', 'upstream sent invalid header (bare CR or LF)');
    }
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) {
      return fail('obs-fold', 'upstream sent invalid header (obsolete line folding)');
    }
    const colon = line.indexOf(':');
    if (colon <= 0) return fail('header-syntax', 'upstream sent invalid header');
    const rawName = line.slice(0, colon);
    if (!TOKEN.test(rawName)) return fail('header-syntax', `upstream sent invalid header name "${rawName}"`);
    const name = rawName.toLowerCase();
    const value = trimOws(line.slice(colon + 1));
    if (name === 'content-length') {
      if (contentLength !== null) {
        return fail('duplicate-content-length', 'upstream sent duplicate header line: "Content-Length"');
      }
      if (!DIGITS.test(value) || value.length > 15) {
        return fail('content-length', `upstream sent invalid "Content-Length" header: "${value}"`);
      }
      contentLength = value;
    } else if (name === 'transfer-encoding') {
      if (transferEncoding !== null) {
        return fail('transfer-encoding', 'upstream sent duplicate header line: "Transfer-Encoding"');
      }
      transferEncoding = value;
    } else if (name === 'connection') {
      connection =
        connection === null ? value : [...(Array.isArray(connection) ? connection : [connection]), value];
    }
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [existing, value];
  }
  const statusMessage = statusLine.reason;
  if (status === 101 && !upgrade) {
    return fail(
      'switching-protocols',
      'upstream sent "101 Switching Protocols" to a request that asked for no upgrade',
    );
  }
  const interim = status < 200;
  let framing: BodyFraming;
  if (interim || status === 204 || status === 304 || method === 'HEAD') {
    framing = { kind: 'none' };
  } else if (transferEncoding !== null) {
    if (contentLength !== null) {
      return fail(
        'length-and-chunked',
        'upstream sent "Content-Length" and "Transfer-Encoding" headers at the same time',
      );
    }
    if (minor === 0 || transferEncoding.toLowerCase() !== 'chunked') {
      return fail('transfer-encoding', `upstream sent unknown "Transfer-Encoding": "${transferEncoding}"`);
    }
    framing = { kind: 'chunked' };
  } else if (contentLength !== null) {
    framing = { kind: 'length', length: Number(contentLength) };
  } else {
    framing = { kind: 'close' };
  }
  const keepAlive =
    minor === 1 && framing.kind !== 'close' && (connection === null || !hasToken(connection, 'close'));
  return { ok: true, head: { status, statusMessage, headers, framing, interim, keepAlive } };
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
