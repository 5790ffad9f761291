// A strict, incremental HTTP/1.1 request parser for the gateway's client side (h1-server.ts). Pure:
// bytes in, steps out; no sockets, no timers. It is deliberately stricter than llhttp wherever the
// two could disagree, because the edge is where request smuggling starts: anything ambiguous is an
// error with the status the client gets, and the connection is then closed.
//   - request line `METHOD SP target SP HTTP/1.x CRLF`, the methods llhttp knows, no CTL/space in the target;
//   - every line ends in CRLF (a bare LF or a bare CR is an error), no obs-fold, no space before ':';
//   - Content-Length digits only, once, never with Transfer-Encoding;
//   - Transfer-Encoding exactly `chunked` (anything else 501), strict chunk sizes, bounded extensions,
//     trailers validated as headers and dropped (keepip re-frames every body it sends upstream).
// One head (request line + headers, or trailers) may take at most `maxHeaderBytes`, and one line of
// it `maxLineBytes`; the gateway gives `headBuffers` instead (client-header-buffer-size and
// large-client-header-buffers, nginx's "1k" and "4 8k" by default), a head then fitting as it fits in
// nginx's buffers (h1-head-buffers.ts): beyond them, 431, or 414 for a request line.

import { type HeadBuffers, type HeadOverflow, headOverflow } from './h1-head-buffers.ts';
import { ONCE_ONLY_FIELDS } from './unique-fields.ts';

export type RequestParseErrorCode =
  | 'H1_BAD_REQUEST_LINE'
  | 'H1_BAD_METHOD'
  | 'H1_TRACE'
  | 'H1_BAD_TARGET'
  | 'H1_BAD_VERSION'
  | 'H1_UNSUPPORTED_VERSION'
  | 'H1_BARE_LF'
  | 'H1_BARE_CR'
  | 'H1_BAD_HEADER'
  | 'H1_OBS_FOLD'
  | 'H1_HEADER_TOO_LARGE'
  | 'H1_REQUEST_LINE_TOO_LONG'
  | 'H1_BAD_CONTENT_LENGTH'
  | 'H1_DUPLICATE_CONTENT_LENGTH'
  | 'H1_CONTENT_LENGTH_WITH_TRANSFER_ENCODING'
  | 'H1_UNSUPPORTED_TRANSFER_ENCODING'
  | 'H1_DUPLICATE_HOST'
  | 'H1_DUPLICATE_HEADER'
  | 'H1_BAD_CHUNK';

export interface RequestParseError {
  code: RequestParseErrorCode;
  /** What the client gets before the connection closes. */
  status: 400 | 405 | 414 | 431 | 501 | 505;
  message: string;
}

export interface RequestHead {
  method: string;
  /** The request target as received (origin-form, absolute-form, or `*` for OPTIONS). */
  url: string;
  /** '1.1' or '1.0'. */
  httpVersion: string;
  /** Lower-case names, combined as node:http combines them (so the pipeline sees the same values). */
  headers: Record<string, string | string[]>;
  /** Names and values as received, alternating. */
  rawHeaders: string[];
  /** Bytes of the head on the wire, leading empty lines and the final CRLF included. */
  headBytes: number;
  /** Body framing: 'none', 'length' (contentLength bytes) or 'chunked'. */
  framing: 'none' | 'length' | 'chunked';
  contentLength: number;
  /** Whether the connection may carry another request after this one (HTTP/1.0 keep-alive, Connection: close). */
  keepAlive: boolean;
  /**
   * Connection: upgrade with an Upgrade header and no body (a WebSocket handshake): the rest of the
   * bytes are a tunnel.
   */
  upgrade: boolean;
  /** Expect: 100-continue (HTTP/1.1 only). */
  expectContinue: boolean;
}

export type ParseStep =
  | { kind: 'more' }
  | { kind: 'head'; head: RequestHead }
  | { kind: 'body'; chunk: Buffer }
  | { kind: 'end' }
  | { kind: 'error'; error: RequestParseError };

export interface RequestParserOptions {
  /** Cap on one head (request line and headers) and on the trailer section. */
  maxHeaderBytes: number;
  /** Cap on one line of a head, CRLF included; absent: none. */
  maxLineBytes?: number;
  /** nginx's header buffers: a head must fit in them as nginx packs it (h1-head-buffers.ts). */
  headBuffers?: HeadBuffers;
}

const OVERFLOWS: Readonly<Record<HeadOverflow, Parameters<typeof fail>>> = {
  'request-line': ['H1_REQUEST_LINE_TOO_LONG', 414, 'request line too long'],
  'header-line': ['H1_HEADER_TOO_LARGE', 431, 'request header field too large'],
  buffers: ['H1_HEADER_TOO_LARGE', 431, 'request header too large'],
};

const MORE: ParseStep = Object.freeze({ kind: 'more' }) as ParseStep;
const END: ParseStep = Object.freeze({ kind: 'end' }) as ParseStep;

const CR = 0x0d;
const LF = 0x0a;
/** Longest chunk-size line accepted (size, extensions, CRLF). */
const MAX_CHUNK_LINE = 4096;
/** 2^53 - 1 fits in 13 hex digits; more digits are refused rather than rounded. */
const MAX_CHUNK_SIZE_DIGITS = 13;

// RFC 9110 tchar.
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1;
// Field value octets: HTAB, visible ASCII, SP, obs-text. No CTL, no DEL.
const VALUE = new Uint8Array(256);
VALUE[0x09] = 1;
for (let c = 0x20; c <= 0x7e; c++) VALUE[c] = 1;
for (let c = 0x80; c <= 0xff; c++) VALUE[c] = 1;
// Request-target octets: visible ASCII only; no CTL, SP, DEL, and no raw UTF-8 (llhttp refuses it, so
// node:http answered 400; nginx would take it).
const TARGET = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET[c] = 1;
// The authority of an absolute-form target (RFC 3986: unreserved, sub-delims, ':', '@', '[', ']', '%'),
// the octets llhttp takes there; `#`, `"`, `<`, `{` and the like are refused.
const AUTHORITY = new Uint8Array(256);
for (const c of "-._~!$&'()*+,;=:@[]%") AUTHORITY[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) AUTHORITY[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) AUTHORITY[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) AUTHORITY[c] = 1;
// The request methods llhttp parses (node:http's METHODS). nginx takes any upper-case token, but the
// edge must not pass what node:http refuses (test/gateway/h1-parser-differential.test.ts); CONNECT is
// refused further down.
export const METHODS: ReadonlySet<string> = new Set([
  'ACL',
  'BIND',
  'CHECKOUT',
  'CONNECT',
  'COPY',
  'DELETE',
  'GET',
  'HEAD',
  'LINK',
  'LOCK',
  'M-SEARCH',
  'MERGE',
  'MKACTIVITY',
  'MKCALENDAR',
  'MKCOL',
  'MOVE',
  'NOTIFY',
  'OPTIONS',
  'PATCH',
  'POST',
  'PROPFIND',
  'PROPPATCH',
  'PURGE',
  'PUT',
  'QUERY',
  'REBIND',
  'REPORT',
  'SEARCH',
  'SOURCE',
  'SUBSCRIBE',
  'TRACE',
  'UNBIND',
  'UNLINK',
  'UNLOCK',
  'UNSUBSCRIBE',
]);
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[0x41 + c] = 10 + c;
  HEX[0x61 + c] = 10 + c;
}

/** Headers node:http keeps only the first of (IncomingMessage#_addHeaderLine); host is refused instead. */
const FIRST_WINS = new Set([
  'content-type',
  'content-length',
  'user-agent',
  'referer',
  'authorization',
  'proxy-authorization',
  'if-modified-since',
  'if-unmodified-since',
  'from',
  'location',
  'max-forwards',
  'retry-after',
  'etag',
  'last-modified',
  'server',
  'age',
  'expires',
]);

function fail(code: RequestParseErrorCode, status: RequestParseError['status'], message: string): ParseStep {
  return { kind: 'error', error: { code, status, message } };
}

function hasToken(list: string, token: string): boolean {
  for (const part of list.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

/**
 * Whether an Upgrade value offers h2c (RFC 7540 3.2, any version suffix). keepip never switches a
 * connection to cleartext HTTP/2 (h2c smuggling: requests inside such a tunnel pass no location), so
 * such a request is an ordinary one: its body is read and forwarded, and its Upgrade, a hop-by-hop
 * field, goes no further.
 */
export function offersH2c(value: string | string[] | undefined): boolean {
  if (value === undefined) return false;
  for (const token of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const name = token.trim().toLowerCase();
    if (name === 'h2c' || name.startsWith('h2c/')) return true;
  }
  return false;
}

function isDigits(value: string): boolean {
  if (value.length === 0 || value.length > 15) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * Header names clients send most, by length: a name that matches one (case-insensitively) is lower-cased
 * to that constant, so it costs no new string and the header object's key needs no string-table lookup.
 */
const KNOWN_NAMES: string[][] = [];
for (const name of [
  'accept',
  'accept-encoding',
  'accept-language',
  'authorization',
  'cache-control',
  'connection',
  'content-length',
  'content-type',
  'cookie',
  'host',
  'if-modified-since',
  'if-none-match',
  'origin',
  'referer',
  'sec-fetch-dest',
  'sec-fetch-mode',
  'sec-fetch-site',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-real-ip',
  'x-request-id',
]) {
  const bucket = KNOWN_NAMES[name.length];
  if (bucket === undefined) KNOWN_NAMES[name.length] = [name];
  else bucket.push(name);
}

/** The lower-case form of the token name [start, end): a constant when known, else lower-cased `raw`. */
function lowerName(buf: Buffer, start: number, end: number, raw: string): string {
  const known = KNOWN_NAMES[end - start];
  if (known !== undefined) {
    for (const name of known) {
      let i = 0;
      // Token bytes only: `| 0x20` lower-cases letters and leaves '-' and digits as they are.
      while (i < name.length && ((buf[start + i] as number) | 0x20) === name.charCodeAt(i)) i++;
      if (i === name.length) return name;
    }
  }
  return raw.toLowerCase();
}

/** The method at [start, end): the usual ones as constants (no string made), others as read. */
function methodAt(buf: Buffer, start: number, end: number): string {
  const length = end - start;
  const first = buf[start];
  if (length === 3 && first === 0x47 && buf[start + 1] === 0x45 && buf[start + 2] === 0x54) return 'GET';
  if (length === 4 && first === 0x50 && buf[start + 1] === 0x4f && buf[start + 2] === 0x53) {
    if (buf[start + 3] === 0x54) return 'POST';
  }
  if (length === 4 && first === 0x48 && buf[start + 1] === 0x45 && buf[start + 2] === 0x41) {
    if (buf[start + 3] === 0x44) return 'HEAD';
  }
  return buf.toString('latin1', start, end);
}

/**
 * Validates one header line [start, end) (CRLF excluded); returns [name as received, value, lower-case
 * name] or an error step.
 */
function headerLine(buf: Buffer, start: number, end: number): [string, string, string] | ParseStep {
  const first = buf[start] as number;
  if (first === 0x20 || first === 0x09) return fail('H1_OBS_FOLD', 400, 'obsolete line folding');
  let colon = start;
  while (colon < end && TOKEN[buf[colon] as number] === 1) colon++;
  if (colon === start || colon === end || buf[colon] !== 0x3a) {
    return fail('H1_BAD_HEADER', 400, 'invalid header field name');
  }
  let tab = false;
  let valueStart = colon + 1;
  for (; valueStart < end && (buf[valueStart] === 0x20 || buf[valueStart] === 0x09); valueStart++)
    tab ||= buf[valueStart] === 0x09;
  let valueEnd = end;
  for (; valueEnd > valueStart && (buf[valueEnd - 1] === 0x20 || buf[valueEnd - 1] === 0x09); valueEnd--)
    tab ||= buf[valueEnd - 1] === 0x09;
  for (let i = valueStart; i < valueEnd; i++) {
    const c = buf[i] as number;
    if (VALUE[c] !== 1) return fail(c === CR ? 'H1_BARE_CR' : 'H1_BAD_HEADER', 400, 'invalid header value');
  }
  const raw = buf.toString('latin1', start, colon);
  const lower = lowerName(buf, start, colon, raw);
  if (tab) {
    const refused = tabAroundFraming(lower);
    if (refused !== null) return refused;
  }
  return [raw, buf.toString('latin1', valueStart, valueEnd), lower];
}

/**
 * A tab around Content-Length or Transfer-Encoding: RFC 9110 lets it be white space, nginx keeps it in
 * the value (400 / 501), and a hop that ignores such a field frames the body otherwise (TE.TE, CL.CL
 * smuggling). Refused, as nginx does; a tab around any other field is white space.
 */
function tabAroundFraming(lowerName: string): ParseStep | null {
  if (lowerName === 'content-length')
    return fail('H1_BAD_CONTENT_LENGTH', 400, 'invalid Content-Length (a tab around the value)');
  if (lowerName === 'transfer-encoding')
    return fail(
      'H1_UNSUPPORTED_TRANSFER_ENCODING',
      501,
      'unknown Transfer-Encoding (a tab around the value)',
    );
  return null;
}

/**
 * Trailer fields that would change the framing or the connection: llhttp refuses Content-Length and
 * Transfer-Encoding there and closes on a Connection: close trailer. keepip drops trailers, so it
 * refuses all three rather than read a next request llhttp would not.
 */
function framingTrailer(name: string): ParseStep | null {
  if (name === 'content-length')
    return fail('H1_CONTENT_LENGTH_WITH_TRANSFER_ENCODING', 400, 'Content-Length in the trailers');
  if (name === 'transfer-encoding')
    return fail('H1_UNSUPPORTED_TRANSFER_ENCODING', 400, 'Transfer-Encoding in the trailers');
  if (name === 'connection') return fail('H1_BAD_HEADER', 400, 'Connection in the trailers');
  return null;
}

/**
 * Chunk extensions [i, end), strictly RFC 9112 7.1.1 without whitespace (llhttp refuses BWS too):
 * *( ";" token [ "=" ( token / quoted-string ) ] ). An empty value after "=" passes, as llhttp lets it.
 */
function validChunkExtensions(buf: Buffer, i: number, end: number): boolean {
  while (i < end) {
    if (buf[i] !== 0x3b) return false;
    const nameStart = ++i;
    while (i < end && TOKEN[buf[i] as number] === 1) i++;
    if (i === nameStart) return false;
    if (i === end || buf[i] !== 0x3d) continue;
    i++;
    if (buf[i] !== 0x22) {
      while (i < end && TOKEN[buf[i] as number] === 1) i++;
      continue;
    }
    // quoted-string: qdtext (VALUE without DQUOTE and backslash) or a quoted-pair (backslash + VALUE).
    for (i++; ; i++) {
      if (i >= end) return false;
      const c = buf[i] as number;
      if (c === 0x22) break;
      if (c === 0x5c) i++;
      if (i >= end || VALUE[buf[i] as number] !== 1) return false;
    }
    i++;
  }
  return true;
}

/** The authority from `start` up to the path or query: AUTHORITY octets only. */
function validAuthority(url: string, start: number): boolean {
  for (let i = start; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 0x2f || c === 0x3f) return true;
    if (AUTHORITY[c] !== 1) return false;
  }
  return true;
}

/** Parses a complete head [start, end) (end just past the final CRLF). */
type Failure = ParseStep & { kind: 'error' };

function isFailure(value: object): value is Failure {
  return (value as { kind?: unknown }).kind === 'error';
}

/** `HTTP/1.x` at `i`, ending at `lineEnd`: the version, or a 400 / 505. */
function parseVersion(buf: Buffer, i: number, lineEnd: number): '1.0' | '1.1' | Failure {
  if (
    lineEnd - i !== 8 ||
    buf[i] !== 0x48 ||
    buf[i + 1] !== 0x54 ||
    buf[i + 2] !== 0x54 ||
    buf[i + 3] !== 0x50 ||
    buf[i + 4] !== 0x2f ||
    buf[i + 6] !== 0x2e
  ) {
    return fail('H1_BAD_VERSION', 400, 'invalid HTTP version') as Failure;
  }
  const major = (buf[i + 5] as number) - 0x30;
  const minor = (buf[i + 7] as number) - 0x30;
  if (major < 0 || major > 9 || minor < 0 || minor > 9) {
    return fail('H1_BAD_VERSION', 400, 'invalid HTTP version') as Failure;
  }
  if (major !== 1 || minor > 1)
    return fail('H1_UNSUPPORTED_VERSION', 505, 'HTTP version not supported') as Failure;
  return minor === 1 ? '1.1' : '1.0';
}

/**
 * absolute-form as nginx takes it (http/https scheme only); as nginx 1.22, no asterisk-form (`OPTIONS *`
 * is a 400) and no authority-form.
 */
function targetFormError(url: string, method: string): Failure | null {
  if (url.charCodeAt(0) !== 0x2f) {
    const lower = url.slice(0, 8).toLowerCase();
    const authority = lower.startsWith('http://') ? 7 : lower.startsWith('https://') ? 8 : -1;
    if (authority === -1) return fail('H1_BAD_TARGET', 400, 'invalid request target') as Failure;
    if (!validAuthority(url, authority)) {
      return fail('H1_BAD_TARGET', 400, 'invalid authority in the request target') as Failure;
    }
  }
  if (method === 'CONNECT') return fail('H1_BAD_METHOD', 400, 'CONNECT is not served') as Failure;
  // As nginx, whatever the configuration: a backend that echoes TRACE would show the client the
  // HttpOnly cookies and the headers the gateway adds (cross-site tracing).
  if (method === 'TRACE') return fail('H1_TRACE', 405, 'client sent TRACE method') as Failure;
  return null;
}

interface RequestLine {
  method: string;
  url: string;
  httpVersion: '1.0' | '1.1';
  /** Index of the CR that ends the line. */
  lineEnd: number;
}

/** Every prefix of a method in METHODS ('' included): what a partial request line may start with. */
const METHOD_PREFIXES: ReadonlySet<string> = new Set(
  [...METHODS].flatMap((method) => Array.from({ length: method.length + 1 }, (_, n) => method.slice(0, n))),
);
const LONGEST_METHOD = Math.max(...[...METHODS].map((method) => method.length));

/**
 * The refusal of a partial head whose method is already wrong (`a`, `0`, `GETX`, `get `), at once, as
 * nginx refuses the first byte that no method can have, rather than holding the connection until the
 * header deadline. Null while the bytes so far may still begin a request line parseRequestLine takes.
 * Looks at most at LONGEST_METHOD + 1 bytes, so a client that dribbles its head pays nothing per read.
 */
function partialMethodRefusal(buf: Buffer, start: number): Failure | null {
  const end = Math.min(buf.length, start + LONGEST_METHOD + 1);
  let i = start;
  while (i < end && TOKEN[buf[i] as number] === 1) i++;
  if (i === buf.length) {
    // The bytes so far are all of the method: fine while some method starts with them.
    return METHOD_PREFIXES.has(buf.toString('latin1', start, i))
      ? null
      : (fail('H1_BAD_METHOD', 400, 'invalid method') as Failure);
  }
  // A lone CR may begin the CRLF of an empty line before the request line (skipped, RFC 9112 2.2).
  if (i === start && buf[i] === CR && i + 1 === buf.length) return null;
  if (i === start || buf[i] !== 0x20) {
    return fail(buf[i] === CR ? 'H1_BARE_CR' : 'H1_BAD_METHOD', 400, 'invalid method') as Failure;
  }
  return METHODS.has(methodAt(buf, start, i))
    ? null
    : (fail('H1_BAD_METHOD', 400, 'unknown method') as Failure);
}

/** Request line: METHOD SP target SP HTTP/1.x */
function parseRequestLine(buf: Buffer, start: number): RequestLine | Failure {
  const lineEnd = buf.indexOf(LF, start) - 1;
  let i = start;
  while (i < lineEnd && TOKEN[buf[i] as number] === 1) i++;
  if (i === start) return fail('H1_BAD_METHOD', 400, 'invalid method') as Failure;
  if (buf[i] !== 0x20) {
    return fail(buf[i] === CR ? 'H1_BARE_CR' : 'H1_BAD_METHOD', 400, 'invalid method') as Failure;
  }
  const method = methodAt(buf, start, i);
  if (!METHODS.has(method)) return fail('H1_BAD_METHOD', 400, 'unknown method') as Failure;
  const targetStart = ++i;
  while (i < lineEnd && TARGET[buf[i] as number] === 1) i++;
  if (i === lineEnd)
    return fail('H1_BAD_REQUEST_LINE', 400, 'request line without an HTTP version') as Failure;
  if (i === targetStart || buf[i] !== 0x20) {
    return fail(buf[i] === CR ? 'H1_BARE_CR' : 'H1_BAD_TARGET', 400, 'invalid request target') as Failure;
  }
  const url = buf.toString('latin1', targetStart, i);
  const httpVersion = parseVersion(buf, i + 1, lineEnd);
  if (typeof httpVersion !== 'string') return httpVersion;
  return targetFormError(url, method) ?? { method, url, httpVersion, lineEnd };
}

/** What the header section says, for framing and the connection. */
interface HeaderFields {
  headers: Record<string, string | string[]>;
  rawHeaders: string[];
  contentLength: number;
  transferEncoding: string | null;
  connection: string;
  upgrade: boolean;
  expect: string | null;
}

/** Notes a field that framing or the connection depends on; a failure for a repeated or invalid one. */
function noteField(fields: HeaderFields, name: string, value: string): Failure | null {
  if (ONCE_ONLY_FIELDS.has(name) && Object.hasOwn(fields.headers, name)) {
    return fail('H1_DUPLICATE_HEADER', 400, `duplicate ${name} header`) as Failure;
  }
  switch (name) {
    case 'content-length':
      if (!isDigits(value)) return fail('H1_BAD_CONTENT_LENGTH', 400, 'invalid Content-Length') as Failure;
      // Repeated even with the same value: llhttp (and nginx) refuse that too.
      if (fields.contentLength !== -1) {
        return fail('H1_DUPLICATE_CONTENT_LENGTH', 400, 'repeated Content-Length') as Failure;
      }
      fields.contentLength = Number(value);
      break;
    case 'transfer-encoding':
      if (fields.transferEncoding !== null) {
        return fail('H1_UNSUPPORTED_TRANSFER_ENCODING', 400, 'repeated Transfer-Encoding') as Failure;
      }
      fields.transferEncoding = value.toLowerCase();
      break;
    case 'host':
      if (fields.headers.host !== undefined)
        return fail('H1_DUPLICATE_HOST', 400, 'duplicate Host header') as Failure;
      break;
    case 'connection':
      fields.connection = fields.connection === '' ? value : `${fields.connection}, ${value}`;
      break;
    case 'upgrade':
      fields.upgrade = true;
      break;
    case 'expect':
      fields.expect = value.toLowerCase();
      break;
  }
  return null;
}

/** Adds a field as node:http does: own properties only (a `__proto__` header meets no prototype). */
function addField(headers: Record<string, string | string[]>, name: string, value: string): void {
  const previous = Object.hasOwn(headers, name) ? headers[name] : undefined;
  if (previous === undefined) {
    headers[name] = name === 'set-cookie' ? [value] : value;
  } else if (name === 'set-cookie') {
    (previous as string[]).push(value);
  } else if (!FIRST_WINS.has(name)) {
    headers[name] = `${previous}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
}

/** The header lines from `lineStart` up to the blank line before `end`. */
function parseHeaderLines(
  buf: Buffer,
  lineStart: number,
  end: number,
  maxLine: number,
): HeaderFields | Failure {
  const fields: HeaderFields = {
    headers: {},
    rawHeaders: [],
    contentLength: -1,
    transferEncoding: null,
    connection: '',
    upgrade: false,
    expect: null,
  };
  while (lineStart < end - 2) {
    const lf = buf.indexOf(LF, lineStart);
    if (lf + 1 - lineStart > maxLine)
      return fail('H1_HEADER_TOO_LARGE', 431, 'request header field too large') as Failure;
    const parsed = headerLine(buf, lineStart, lf - 1);
    lineStart = lf + 1;
    if (!Array.isArray(parsed)) return parsed as Failure;
    const [rawName, value, name] = parsed;
    fields.rawHeaders.push(rawName, value);
    const refused = noteField(fields, name, value);
    if (refused !== null) return refused;
    addField(fields.headers, name, value);
  }
  return fields;
}

/** How the body is framed: Transfer-Encoding chunked (HTTP/1.1 only, never with Content-Length), a length, or none. */
function framingOf(fields: HeaderFields, httpVersion: '1.0' | '1.1'): RequestHead['framing'] | Failure {
  if (fields.transferEncoding === null) return fields.contentLength > 0 ? 'length' : 'none';
  if (fields.contentLength !== -1) {
    return fail(
      'H1_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
      400,
      'Content-Length with Transfer-Encoding',
    ) as Failure;
  }
  if (httpVersion === '1.0') {
    return fail(
      'H1_UNSUPPORTED_TRANSFER_ENCODING',
      400,
      'Transfer-Encoding in an HTTP/1.0 request',
    ) as Failure;
  }
  if (fields.transferEncoding !== 'chunked') {
    return fail('H1_UNSUPPORTED_TRANSFER_ENCODING', 501, 'unknown Transfer-Encoding') as Failure;
  }
  return 'chunked';
}

function parseHead(buf: Buffer, start: number, end: number, headBytes: number, maxLine: number): ParseStep {
  const line = parseRequestLine(buf, start);
  if (isFailure(line)) return line;
  if (line.lineEnd + 2 - start > maxLine)
    return fail('H1_REQUEST_LINE_TOO_LONG', 414, 'request line too long') as Failure;
  const fields = parseHeaderLines(buf, line.lineEnd + 2, end, maxLine);
  if (isFailure(fields)) return fields;
  const framing = framingOf(fields, line.httpVersion);
  if (typeof framing !== 'string') return framing;
  const { connection } = fields;
  // RFC 9110 10.1.1: an expectation in an HTTP/1.0 request is ignored (no 100 Continue), as nginx. Any
  // other than exactly 100-continue is ignored too, as nginx does (ngx_http_test_expect) where node:http
  // answers 417; Expect is never passed on (upstream-headers).
  const expect = line.httpVersion === '1.1' ? fields.expect : null;
  const keepAlive =
    line.httpVersion === '1.1' ? !hasToken(connection, 'close') : hasToken(connection, 'keep-alive');
  return {
    kind: 'head',
    head: {
      method: line.method,
      url: line.url,
      httpVersion: line.httpVersion,
      headers: fields.headers,
      rawHeaders: fields.rawHeaders,
      headBytes,
      framing,
      contentLength: fields.contentLength === -1 ? 0 : fields.contentLength,
      keepAlive,
      // A request with a body is not a handshake (RFC 6455's is a GET): it is served as an ordinary
      // request, its body framed and forwarded, so a backend that ignores the Upgrade and reads the
      // body answers at once (holding the body for a 101 that never comes hung it until the timeout).
      upgrade:
        fields.upgrade &&
        framing === 'none' &&
        connection !== '' &&
        hasToken(connection, 'upgrade') &&
        !offersH2c(fields.headers.upgrade),
      expectContinue: expect === '100-continue',
    },
  };
}

const enum_HEAD = 0;
const enum_LENGTH = 1;
const enum_CHUNK_SIZE = 2;
const enum_CHUNK_DATA = 3;
const enum_CHUNK_CRLF = 4;
const enum_TRAILERS = 5;
const enum_FAILED = 6;
/** The message ended with bytes already consumed: the next execute() reports 'end' without input. */
const enum_END = 7;

/**
 * Feeds bytes, takes steps. `execute(buf, offset)` looks at buf from offset and returns one step plus
 * how many bytes it consumed (`consumed`); the caller calls again with the rest until it gets 'more'.
 * Bytes that cannot be decided yet (a partial head, chunk-size line or CRLF) are kept inside the
 * parser and count as consumed. After 'end' the parser expects the next request's head.
 */
export class RequestParser {
  /** Bytes consumed by the last execute() call. */
  consumed = 0;
  readonly #maxHeaderBytes: number;
  readonly #maxLineBytes: number;
  readonly #headBuffers: HeadBuffers | undefined;
  #state = enum_HEAD;
  /**
   * Partial head / chunk line / trailers carried between execute() calls: bytes [0, #held) of
   * #pending, which has room to grow (null when nothing is held). A slow client splits its bytes as it
   * likes: each byte is copied into it once and searched for LF once, never again on every read.
   */
  #pending: Buffer | null = null;
  #held = 0;
  /** In the held bytes: where the head starts after leading empty lines, and where its last line starts. */
  #headStart = 0;
  #lineStart = 0;
  #remaining = 0;
  /** The chunked body bytes the current request's chunk-size lines have announced so far. */
  announced = 0;

  constructor(options: RequestParserOptions) {
    this.#maxHeaderBytes = options.maxHeaderBytes;
    this.#maxLineBytes = options.maxLineBytes ?? Number.POSITIVE_INFINITY;
    this.#headBuffers = options.headBuffers;
  }

  /** True while part of a head, chunk line or trailer section is held between calls. */
  get holdsPartial(): boolean {
    return this.#pending !== null;
  }

  /** The part of a request head held so far (after leading empty lines), or undefined: what a timed-out client sent. */
  get heldHead(): Buffer | undefined {
    if (this.#state !== enum_HEAD || this.#pending === null) return undefined;
    return this.#pending.subarray(this.#headStart, this.#held);
  }

  /** True between requests (the next byte starts a request line). */
  get betweenRequests(): boolean {
    return this.#state === enum_HEAD && this.#pending === null;
  }

  execute(input: Buffer, offset: number): ParseStep {
    this.consumed = 0;
    if (this.#state === enum_END) {
      this.#state = enum_HEAD;
      return END;
    }
    if (offset >= input.length) return MORE;
    switch (this.#state) {
      case enum_HEAD:
        return this.#head(input, offset);
      case enum_LENGTH: {
        const take = Math.min(this.#remaining, input.length - offset);
        this.#remaining -= take;
        this.consumed = take;
        if (this.#remaining === 0) this.#state = enum_END;
        return { kind: 'body', chunk: input.subarray(offset, offset + take) };
      }
      case enum_CHUNK_SIZE:
        return this.#chunkSize(input, offset);
      case enum_CHUNK_DATA: {
        const take = Math.min(this.#remaining, input.length - offset);
        this.#remaining -= take;
        this.consumed = take;
        if (this.#remaining === 0) this.#state = enum_CHUNK_CRLF;
        return { kind: 'body', chunk: input.subarray(offset, offset + take) };
      }
      case enum_CHUNK_CRLF:
        return this.#chunkCrlf(input, offset);
      case enum_TRAILERS:
        return this.#trailers(input, offset);
      default:
        return fail('H1_BAD_REQUEST_LINE', 400, 'parser failed earlier');
    }
  }

  #error(step: ParseStep): ParseStep {
    this.#state = enum_FAILED;
    this.#release();
    return step;
  }

  /** Held bytes followed by the new ones (the held bytes first, when there are any). */
  #join(input: Buffer, offset: number): Buffer {
    const pending = this.#pending;
    if (pending === null) return offset === 0 ? input : input.subarray(offset);
    const length = this.#held + input.length - offset;
    let target = pending;
    if (length > pending.length) {
      target = Buffer.allocUnsafe(this.#capacity(length, 2 * pending.length));
      pending.copy(target, 0, 0, this.#held);
      this.#pending = target;
    }
    input.copy(target, this.#held, offset);
    return target.subarray(0, length);
  }

  /** Keeps `buf`, which #join returned, for the next call: it is in #pending already, or copied there. */
  #hold(buf: Buffer, input: Buffer, offset: number): ParseStep {
    if (this.#pending === null) {
      this.#pending = Buffer.allocUnsafe(this.#capacity(buf.length, Math.max(2 * buf.length, 256)));
      buf.copy(this.#pending);
    }
    this.#held = buf.length;
    this.consumed = input.length - offset;
    return MORE;
  }

  /** Room for `length` held bytes, `wanted` when that is more but never beyond what a head may take. */
  #capacity(length: number, wanted: number): number {
    return Math.max(length, Math.min(wanted, this.#maxHeaderBytes));
  }

  #release(): void {
    this.#pending = null;
    this.#held = 0;
    this.#headStart = 0;
    this.#lineStart = 0;
  }

  /**
   * Finds the end of a head (or trailers) starting at `start`: the index just past the empty line, -1
   * when more bytes are needed, or an error step (bare LF). The search resumes where the calls before
   * left it: the held bytes after #lineStart hold no LF. A bare CR is caught when the lines are validated.
   */
  #findHeadEnd(buf: Buffer, start: number): number | ParseStep {
    let lineStart = Math.max(start, this.#lineStart);
    let from = Math.max(lineStart, this.#held);
    for (;;) {
      const lf = buf.indexOf(LF, from);
      if (lf === -1) {
        this.#lineStart = lineStart;
        return -1;
      }
      if (lf === start || buf[lf - 1] !== CR) return fail('H1_BARE_LF', 400, 'line ends in a bare LF');
      if (lf - 1 === lineStart) return lf + 1;
      lineStart = lf + 1;
      from = lineStart;
    }
  }

  /** A head past the size cap, once: the line that overflows nginx's buffers first decides (414 for the request line). */
  #tooLarge(buf: Buffer, start: number, end: number): ParseStep {
    const overflow = this.#headBuffers && headOverflow(buf, start, end, this.#headBuffers);
    return fail(...OVERFLOWS[overflow || 'buffers']);
  }

  #head(input: Buffer, offset: number): ParseStep {
    const held = this.#held;
    const buf = this.#join(input, offset);
    // Leading empty lines before a request line are skipped (RFC 9112 2.2), within the size cap.
    let start = this.#headStart;
    while (start + 1 < buf.length && buf[start] === CR && buf[start + 1] === LF) start += 2;
    if (start < buf.length && buf[start] === LF) return this.#error(fail('H1_BARE_LF', 400, 'bare LF'));
    const found = this.#findHeadEnd(buf, start);
    if (typeof found !== 'number') return this.#error(found);
    if (found === -1) {
      if (buf.length > this.#maxHeaderBytes) return this.#error(this.#tooLarge(buf, start, buf.length));
      const refused = partialMethodRefusal(buf, start);
      if (refused !== null) return this.#error(refused);
      this.#headStart = start;
      return this.#hold(buf, input, offset);
    }
    if (found > this.#maxHeaderBytes) return this.#error(this.#tooLarge(buf, start, found));
    this.#release();
    this.consumed = found - held;
    const overflow = this.#headBuffers && headOverflow(buf, start, found, this.#headBuffers);
    if (overflow) return this.#error(fail(...OVERFLOWS[overflow]));
    const step = parseHead(buf, start, found, found, this.#maxLineBytes);
    if (step.kind !== 'head') return this.#error(step);
    const head = step.head;
    // Per request: the last chunked body's count must not meet the next request's limit.
    this.announced = 0;
    if (head.upgrade) {
      // The rest of the connection is a tunnel (or more requests, if the upstream refuses): not ours to parse.
      this.#state = enum_FAILED;
    } else if (head.framing === 'length') {
      this.#state = enum_LENGTH;
      this.#remaining = head.contentLength;
    } else if (head.framing === 'chunked') {
      this.#state = enum_CHUNK_SIZE;
    } else {
      this.#state = enum_END;
    }
    return step;
  }

  #chunkSize(input: Buffer, offset: number): ParseStep {
    const held = this.#held;
    const buf = this.#join(input, offset);
    // The held bytes hold no LF: they were searched when they came.
    const lf = buf.indexOf(LF, held);
    if (lf === -1) {
      if (buf.length > MAX_CHUNK_LINE) return this.#error(fail('H1_BAD_CHUNK', 400, 'chunk line too long'));
      return this.#hold(buf, input, offset);
    }
    if (lf + 1 > MAX_CHUNK_LINE) return this.#error(fail('H1_BAD_CHUNK', 400, 'chunk line too long'));
    if (lf === 0 || buf[lf - 1] !== CR) return this.#error(fail('H1_BARE_LF', 400, 'bare LF in chunk line'));
    const lineEnd = lf - 1;
    let i = 0;
    let size = 0;
    while (i < lineEnd && HEX[buf[i] as number] !== -1) {
      size = size * 16 + (HEX[buf[i] as number] as number);
      i++;
    }
    if (i === 0 || i > MAX_CHUNK_SIZE_DIGITS)
      return this.#error(fail('H1_BAD_CHUNK', 400, 'invalid chunk size'));
    if (i < lineEnd) {
      if (buf[i] !== 0x3b) return this.#error(fail('H1_BAD_CHUNK', 400, 'invalid chunk size'));
      if (!validChunkExtensions(buf, i, lineEnd))
        return this.#error(fail('H1_BAD_CHUNK', 400, 'invalid chunk extension'));
    }
    this.#release();
    this.consumed = lf + 1 - held;
    if (size === 0) {
      this.#state = enum_TRAILERS;
      return this.#continue(input, offset);
    }
    this.#state = enum_CHUNK_DATA;
    this.#remaining = size;
    this.announced += size;
    return this.#continue(input, offset);
  }

  /** Continues with the bytes after what this call consumed so far, adding up `consumed`. */
  #continue(input: Buffer, offset: number): ParseStep {
    const used = this.consumed;
    const step = this.execute(input, offset + used);
    this.consumed += used;
    return step;
  }

  #chunkCrlf(input: Buffer, offset: number): ParseStep {
    const held = this.#held;
    const buf = this.#join(input, offset);
    if (buf.length < 2) {
      if (buf[0] !== CR) return this.#error(fail('H1_BAD_CHUNK', 400, 'chunk data not followed by CRLF'));
      return this.#hold(buf, input, offset);
    }
    if (buf[0] !== CR || buf[1] !== LF) {
      return this.#error(fail('H1_BAD_CHUNK', 400, 'chunk data not followed by CRLF'));
    }
    this.#release();
    this.consumed = 2 - held;
    this.#state = enum_CHUNK_SIZE;
    return this.#continue(input, offset);
  }

  #trailers(input: Buffer, offset: number): ParseStep {
    const held = this.#held;
    const buf = this.#join(input, offset);
    let end: number;
    if (buf.length >= 2 && buf[0] === CR && buf[1] === LF) {
      end = 2;
    } else {
      if (buf[0] === LF) return this.#error(fail('H1_BARE_LF', 400, 'bare LF in trailers'));
      const found = this.#findHeadEnd(buf, 0);
      if (typeof found !== 'number') return this.#error(found);
      end = found;
      if (found === -1) {
        if (buf.length > this.#maxHeaderBytes) {
          return this.#error(fail('H1_HEADER_TOO_LARGE', 431, 'trailers too large'));
        }
        return this.#hold(buf, input, offset);
      }
      if (found > this.#maxHeaderBytes)
        return this.#error(fail('H1_HEADER_TOO_LARGE', 431, 'trailers too large'));
      let lineStart = 0;
      while (lineStart < found - 2) {
        const lf = buf.indexOf(LF, lineStart);
        const parsed = headerLine(buf, lineStart, lf - 1);
        if (!Array.isArray(parsed)) return this.#error(parsed);
        const refused = framingTrailer(parsed[2]);
        if (refused !== null) return this.#error(refused);
        lineStart = lf + 1;
      }
    }
    this.#release();
    this.consumed = end - held;
    this.#state = enum_HEAD;
    return END;
  }
}
