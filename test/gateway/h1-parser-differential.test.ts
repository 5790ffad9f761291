// keepip's HTTP/1.1 request parser (src/gateway/h1-request.ts, driven in-process) against Node's llhttp
// (a node:http server over a real socket, test/helpers/llhttp-peer.ts) on generated and mutated
// requests. Both must agree on accept/reject and, for what they accept, on the framing: method, target,
// version, header list, body bytes, and where the next request starts (requests are pipelined).
// The one allowed kind of disagreement is keepip refusing what llhttp accepts, and only where STRICTER
// lists it with a reason; keepip accepting what llhttp refuses, or framing a request differently, fails.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { RequestParser } from '../../src/gateway/h1-request.ts';
import { ONCE_ONLY_FIELDS } from '../../src/gateway/unique-fields.ts';
import { type LlhttpPeer, type LlhttpResult, startLlhttpPeer } from '../helpers/llhttp-peer.ts';

const MAX_HEADER_BYTES = 16_384; // node:http's maxHeaderSize, the gateway's limit

// ---------------------------------------------------------------------------------------------
// Both parsers reduced to one shape

interface Parsed {
  method: string;
  url: string;
  version: string;
  rawHeaders: string[];
  body: Buffer;
  complete: boolean;
  upgrade: boolean;
}

interface Outcome {
  requests: Parsed[];
  /** clean: between requests at EOF (or after a request that closes the connection); eof: EOF inside a request. */
  end: 'clean' | 'eof' | 'error' | 'upgrade';
  /** keepip's error code, or llhttp's HPE_* code. */
  code: string;
  /** keepip only: offset of the request the outcome ended in (the refused one, for STRICTER). */
  at: number;
}

function keepipOutcome(bytes: Buffer): Outcome {
  const parser = new RequestParser({ maxHeaderBytes: MAX_HEADER_BYTES });
  const requests: Parsed[] = [];
  let current: Parsed | null = null;
  let keepAlive = true;
  let offset = 0;
  let start = 0;
  for (let guard = 0; guard < 100_000; guard++) {
    const step = parser.execute(bytes, offset);
    offset += parser.consumed;
    if (step.kind === 'more') {
      // Only empty lines (and perhaps the CR of one) after the last request: llhttp calls that clean too.
      const idle = current === null && /^(\r\n)*\r?$/.test(bytes.toString('latin1', start));
      return { requests, end: idle ? 'clean' : 'eof', code: '', at: start };
    }
    if (step.kind === 'error') return { requests, end: 'error', code: step.error.code, at: start };
    if (step.kind === 'head') {
      const { method, url, httpVersion, rawHeaders, upgrade } = step.head;
      keepAlive = step.head.keepAlive;
      current = {
        method,
        url,
        version: httpVersion,
        rawHeaders,
        body: Buffer.alloc(0),
        complete: false,
        upgrade,
      };
      requests.push(current);
      if (upgrade) return { requests, end: 'upgrade', code: '', at: start };
    } else if (step.kind === 'body') {
      if (current === null) throw new Error('body without a head');
      current.body = Buffer.concat([current.body, step.chunk]);
    } else {
      if (current === null) throw new Error('end without a head');
      current.complete = true;
      current = null;
      start = offset;
      // The server closes after a request that does not keep the connection: later bytes are never read.
      if (!keepAlive) return { requests, end: 'clean', code: '', at: start };
    }
  }
  throw new Error('keepip parser did not finish');
}

function llhttpOutcome(result: LlhttpResult): Outcome {
  const requests = result.requests.map(
    (r): Parsed => ({
      method: r.method,
      url: r.url,
      version: r.version,
      rawHeaders: r.rawHeaders,
      body: r.body,
      complete: r.kind === 'upgrade' || r.kind === 'connect' ? false : r.complete,
      upgrade: r.kind === 'upgrade' || r.kind === 'connect',
    }),
  );
  const last = requests[requests.length - 1];
  const code = result.error?.code ?? '';
  let end: Outcome['end'] = 'error';
  if (last?.upgrade) end = 'upgrade';
  // llhttp refuses bytes after a request that closes the connection; keepip stops reading there.
  else if (code === '' || code === 'HPE_CLOSED_CONNECTION') end = 'clean';
  else if (code === 'HPE_INVALID_EOF_STATE') end = 'eof';
  return { requests, end, code, at: -1 };
}

// ---------------------------------------------------------------------------------------------
// Comparing

function sameHead(a: Parsed, b: Parsed): boolean {
  return (
    a.method === b.method &&
    a.url === b.url &&
    a.version === b.version &&
    a.upgrade === b.upgrade &&
    a.rawHeaders.length === b.rawHeaders.length &&
    a.rawHeaders.every((v, i) => v === b.rawHeaders[i])
  );
}

function sameRequest(a: Parsed, b: Parsed): boolean {
  return sameHead(a, b) && a.complete === b.complete && a.body.equals(b.body);
}

/** The request offers h2c in an Upgrade field (any token h2c or h2c/<version>). */
function offersH2cUpgrade(p: Parsed): boolean {
  for (let i = 0; i < p.rawHeaders.length; i += 2) {
    if (p.rawHeaders[i]?.toLowerCase() !== 'upgrade') continue;
    for (const token of (p.rawHeaders[i + 1] ?? '').split(',')) {
      const name = token.trim().toLowerCase();
      if (name === 'h2c' || name.startsWith('h2c/')) return true;
    }
  }
  return false;
}

/** The request announces a body (a Content-Length other than 0, or a Transfer-Encoding). */
function announcesBody(p: Parsed): boolean {
  for (let i = 0; i < p.rawHeaders.length; i += 2) {
    const name = p.rawHeaders[i]?.toLowerCase();
    if (name === 'transfer-encoding') return true;
    if (name === 'content-length' && Number((p.rawHeaders[i + 1] ?? '').trim()) !== 0) return true;
  }
  return false;
}

/**
 * keepip's intended differences: a request offering h2c (no tunnel: h2c smuggling, docs/gateway.md) or
 * one with a body (not a handshake: its body is framed and forwarded, as nginx does) is an ordinary
 * request, where llhttp stops at it as at an upgrade. Everything before it must agree, and its head;
 * keepip then reads it (and what follows) as HTTP/1.1, which llhttp never does.
 */
function agreeUpToOrdinaryUpgrade(k: Outcome, l: Outcome): boolean | null {
  const last = l.requests[l.requests.length - 1];
  if (l.end !== 'upgrade' || last === undefined) return null;
  if (!offersH2cUpgrade(last) && !announcesBody(last)) return null;
  const at = l.requests.length - 1;
  const mine = k.requests[at];
  if (mine === undefined || mine.upgrade) return false;
  const before = k.requests.slice(0, at).every((r, i) => sameRequest(r, l.requests[i] as Parsed));
  return before && sameHead({ ...mine, upgrade: true }, last);
}

function agree(k: Outcome, l: Outcome): boolean {
  const ordinary = agreeUpToOrdinaryUpgrade(k, l);
  if (ordinary !== null) return ordinary;
  if (k.end !== l.end || k.requests.length !== l.requests.length) return false;
  return k.requests.every((request, i) => {
    const other = l.requests[i] as Parsed;
    // How much of a body was delivered before a refusal is not framing: compare the head only.
    const refusedHere = k.end === 'error' && i === k.requests.length - 1 && !request.complete;
    return refusedHere ? sameHead(request, other) && !other.complete : sameRequest(request, other);
  });
}

/**
 * keepip refused request n after agreeing on everything before it (the requests it completed are
 * llhttp's first ones; a head it took for request n is llhttp's too). 'same-request' when llhttp refused
 * request n as well (perhaps at a later byte), 'further' when llhttp accepted it or read on; null when
 * keepip did not refuse or disagreed before refusing.
 */
function keepipRefusal(k: Outcome, l: Outcome): 'same-request' | 'further' | null {
  if (k.end !== 'error') return null;
  const done = k.requests.filter((r) => r.complete);
  const n = done.length;
  if (l.requests.length < n || !done.every((r, i) => sameRequest(r, l.requests[i] as Parsed))) return null;
  const refused = k.requests[n];
  const theirs = l.requests[n];
  if (refused !== undefined && (theirs === undefined || !sameHead(refused, theirs))) return null;
  const llhttpRefusedIt = l.end === 'error' && l.requests.length <= n + 1 && theirs?.complete !== true;
  return llhttpRefusedIt ? 'same-request' : 'further';
}

// ---------------------------------------------------------------------------------------------
// Where keepip is deliberately stricter than llhttp. Each entry: keepip's code, a test on the refused
// request's bytes (from its first byte to the end of the input), and why.

interface Stricter {
  code: string;
  reason: string;
  applies(request: string): boolean;
}

/** The request line (leading empty lines skipped) and the header lines of the head. */
function headLines(request: string): { line: string; headers: string[] } {
  const text = request.replace(/^(\r\n)+/, '');
  const end = text.indexOf('\r\n\r\n');
  const lines = (end < 0 ? text : text.slice(0, end)).split('\r\n');
  return { line: lines[0] ?? '', headers: lines.slice(1) };
}

function headerValues(request: string, name: string): string[] {
  const prefix = `${name.toLowerCase()}:`;
  return headLines(request)
    .headers.filter((h) => h.toLowerCase().startsWith(prefix))
    .map((h) => h.slice(prefix.length).replace(/^[ \t]+|[ \t]+$/g, ''));
}

/** The body after the head (chunk lines and trailers for a chunked request). */
function bodyOf(request: string): string {
  const text = request.replace(/^(\r\n)+/, '');
  const end = text.indexOf('\r\n\r\n');
  return end < 0 ? '' : text.slice(end + 4);
}

/** A Content-Length or Transfer-Encoding line with a tab in the white space around its value. */
function tabAroundField(request: string, name: string): boolean {
  const prefix = `${name}:`;
  return headLines(request).headers.some(
    (line) => line.toLowerCase().startsWith(prefix) && /^[ \t]*\t|\t[ \t]*$/.test(line.slice(prefix.length)),
  );
}

const STRICTER: Stricter[] = [
  {
    code: 'H1_BAD_CONTENT_LENGTH',
    reason:
      'a tab around the Content-Length value is refused as nginx 1.22 refuses it (400); llhttp reads it as white space',
    applies: (r) => tabAroundField(r, 'content-length'),
  },
  {
    code: 'H1_UNSUPPORTED_TRANSFER_ENCODING',
    reason:
      'a tab around the Transfer-Encoding value is refused as nginx 1.22 refuses it (501); llhttp reads it as white space',
    applies: (r) => tabAroundField(r, 'transfer-encoding'),
  },
  {
    code: 'H1_UNSUPPORTED_VERSION',
    reason:
      'keepip serves HTTP/1.0 and 1.1 only (505); llhttp also reads HTTP/0.9 and HTTP/2.0 request lines',
    applies: (r) => / HTTP\/(0\.9|2\.0)$/.test(headLines(r).line),
  },
  {
    code: 'H1_BAD_REQUEST_LINE',
    reason: 'a request line without a version (HTTP/0.9) is refused; llhttp reads it as HTTP/0.9',
    applies: (r) => headLines(r).line.split(' ').length === 2,
  },
  {
    code: 'H1_BARE_LF',
    reason: 'a request line without a version ended by a bare LF is refused; llhttp reads it as HTTP/0.9',
    applies: (r) => {
      const text = r.replace(/^(\r\n)+/, '');
      const line = text.slice(0, text.indexOf('\n'));
      return !line.includes('\r') && line.split(' ').length === 2;
    },
  },
  {
    code: 'H1_BAD_METHOD',
    reason: 'keepip is not a forward proxy: CONNECT is refused',
    applies: (r) => headLines(r).line.startsWith('CONNECT '),
  },
  {
    code: 'H1_BAD_TARGET',
    reason: 'keepip is not a forward proxy: CONNECT is refused (its target is checked first)',
    applies: (r) => headLines(r).line.startsWith('CONNECT '),
  },
  {
    code: 'H1_BAD_TARGET',
    reason:
      'only origin-form and http/https absolute-form (as nginx 1.22, which answers OPTIONS * with 400); llhttp also takes authority-form, other schemes and *',
    applies: (r) => {
      const target = headLines(r).line.split(' ')[1] ?? '';
      if (target.startsWith('/')) return false;
      return !/^https?:\/\//i.test(target);
    },
  },
  {
    code: 'H1_BAD_TARGET',
    reason: 'exactly one SP between the parts of the request line; llhttp skips repeated spaces',
    applies: (r) => /^[^ ]+ {2}/.test(headLines(r).line),
  },
  {
    code: 'H1_BAD_VERSION',
    reason: 'exactly one SP between the parts of the request line; llhttp skips repeated spaces',
    applies: (r) => /^[^ ]+ [^ ]+ {2}/.test(headLines(r).line),
  },
  {
    code: 'H1_DUPLICATE_HOST',
    reason: 'a second Host header is refused (RFC 9112 3.2: 400); llhttp passes both',
    applies: (r) => headerValues(r, 'host').length > 1,
  },
  {
    code: 'H1_DUPLICATE_HEADER',
    reason:
      'a field nginx takes once only (Expect, Authorization, If-*) sent twice is a 400, as nginx; llhttp passes both',
    applies: (r) => [...ONCE_ONLY_FIELDS].some((name) => headerValues(r, name).length > 1),
  },
  {
    code: 'H1_UNSUPPORTED_TRANSFER_ENCODING',
    reason:
      'Transfer-Encoding must be exactly "chunked", once, in HTTP/1.1; llhttp also takes codings before chunked and HTTP/1.0',
    applies: (r) => {
      const values = headerValues(r, 'transfer-encoding');
      return (
        values.length > 0 &&
        (values.some((v) => v.toLowerCase() !== 'chunked') || / HTTP\/1\.0$/.test(headLines(r).line))
      );
    },
  },
  {
    code: 'H1_BAD_CONTENT_LENGTH',
    reason: 'Content-Length is at most 15 digits (a safe integer); llhttp reads up to 2^64',
    applies: (r) => headerValues(r, 'content-length').some((v) => /^\d{16,}$/.test(v)),
  },
  {
    code: 'H1_BAD_CHUNK',
    reason:
      'chunk sizes are at most 13 hex digits (a safe integer), leading zeros included; llhttp reads up to 2^64',
    applies: (r) => /(^|\r\n)[0-9a-fA-F]{14,}[;\r]/.test(bodyOf(r)),
  },
  {
    code: 'H1_BAD_CHUNK',
    reason: 'a chunk extension without a name (";;", ";=b") is refused (RFC 9112 7.1.1); llhttp skips it',
    applies: (r) => /(^|\r\n)[0-9a-fA-F]+(;[^\r\n]*)?;[;=]/.test(bodyOf(r)),
  },
  {
    code: 'H1_BAD_HEADER',
    reason:
      'a Connection field in the trailers is refused (keepip drops trailers, so it cannot honour it); llhttp closes after Connection: close there',
    applies: (r) => /(^|\r\n)0(;[^\r\n]*)?\r\n([^\r\n]+\r\n)*connection:/i.test(bodyOf(r)),
  },
  {
    code: 'H1_BAD_CHUNK',
    reason: 'a chunk-size line is at most 4 KiB; llhttp allows 16 KiB of extensions',
    applies: (r) => /(^|\r\n)[0-9a-fA-F]+;[^\r\n]{4080,}/.test(bodyOf(r)),
  },
  {
    code: 'H1_HEADER_TOO_LARGE',
    reason:
      'keepip counts every byte of the head (request line, names, separators, CRLFs) against 16 KiB; node counts only the target, names and values',
    // A head or trailer section (text between empty lines) near the limit.
    applies: (r) => r.split('\r\n\r\n').some((section) => section.length > MAX_HEADER_BYTES - 128),
  },
  {
    code: 'H1_BARE_LF',
    reason: 'a bare LF before the request line is refused; llhttp skips any CR and LF there',
    applies: (r) => /^(\r\n)*\n/.test(r),
  },
  {
    code: 'H1_BAD_METHOD',
    reason: 'only CRLF pairs may precede a request line; llhttp skips any CR and LF there',
    applies: (r) => /^(\r\n)*\r(?!\n)/.test(r),
  },
];

/** Why keepip may refuse this, or null. */
function stricterReason(input: Buffer, k: Outcome): string | null {
  const request = input.toString('latin1', k.at);
  const entry = STRICTER.find((s) => s.code === k.code && s.applies(request));
  return entry ? entry.reason : null;
}

function show(o: Outcome): string {
  const requests = o.requests.map(
    (r) =>
      `${JSON.stringify(`${r.method} ${r.url} HTTP/${r.version}`)} ${JSON.stringify(r.rawHeaders)} body=${JSON.stringify(r.body.toString('latin1').slice(0, 80))}${r.complete ? '' : ' (incomplete)'}${r.upgrade ? ' (upgrade)' : ''}`,
  );
  return `[${requests.join(', ')}] then ${o.end}${o.code ? ` ${o.code}` : ''}`;
}

/**
 * keepip checks a head (or a chunk line) once its end has arrived, llhttp byte by byte: at EOF keepip may
 * still be waiting where llhttp has refused. Completing the line must then make keepip refuse too, at
 * the same request, after the same complete requests.
 */
function refusesOnceComplete(input: Buffer, k: Outcome, l: Outcome): boolean {
  if (k.end !== 'eof' || l.end !== 'error') return false;
  const done = k.requests.filter((r) => r.complete);
  if (!done.every((r, i) => l.requests[i] !== undefined && sameRequest(r, l.requests[i] as Parsed)))
    return false;
  const completed = keepipOutcome(Buffer.concat([input, Buffer.from('\r\n\r\n')]));
  return completed.end === 'error' && completed.requests.filter((r) => r.complete).length === done.length;
}

let peer: LlhttpPeer;

/**
 * Parses `input` with both; throws (with both views) on any disagreement STRICTER does not list.
 * Returns keepip's outcome and whether the two agreed or keepip refused by a listed reason.
 */
async function differential(input: Buffer): Promise<{ verdict: 'agree' | 'stricter'; keepip: Outcome }> {
  const k = keepipOutcome(input);
  const l = llhttpOutcome(await peer.parse(input));
  const refusal = keepipRefusal(k, l);
  if (agree(k, l) || refusal === 'same-request' || refusesOnceComplete(input, k, l)) {
    return { verdict: 'agree', keepip: k };
  }
  const where = `input ${JSON.stringify(input.toString('latin1').slice(0, 600))}\n  keepip: ${show(k)}\n  llhttp: ${show(l)}`;
  if (refusal === 'further') {
    if (stricterReason(input, k) !== null) return { verdict: 'stricter', keepip: k };
    assert.fail(`keepip refuses (${k.code}) what llhttp accepts, and STRICTER does not list it\n${where}`);
  }
  assert.fail(`keepip and llhttp disagree (keepip looser, or a framing difference)\n${where}`);
}

// ---------------------------------------------------------------------------------------------
// Requests from a grammar (strings are latin1: one char per byte)

interface Field {
  name: string;
  sep: string;
  value: string;
}

interface Chunk {
  size: string;
  ext: string;
  data: string;
  end: string;
}

type Body =
  | { kind: 'none' }
  | { kind: 'length'; data: string }
  | { kind: 'chunked'; chunks: Chunk[]; last: string; trailers: Field[] };

interface Message {
  lead: string;
  method: string;
  target: string;
  version: string;
  fields: Field[];
  body: Body;
}

function serialize(m: Message): string {
  const fields = (list: Field[]) => list.map((f) => `${f.name}${f.sep}${f.value}\r\n`).join('');
  let text = `${m.lead}${m.method} ${m.target} ${m.version}\r\n${fields(m.fields)}\r\n`;
  if (m.body.kind === 'length') text += m.body.data;
  if (m.body.kind === 'chunked') {
    for (const c of m.body.chunks) text += `${c.size}${c.ext}\r\n${c.data}${c.end}`;
    text += `${m.body.last}\r\n${fields(m.body.trailers)}\r\n`;
  }
  return text;
}

const chars = (text: string) => fc.constantFrom(...text.split(''));
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const TCHAR = `${ALNUM}!#$%&'*+-.^_\`|~`;
// Origin-form octets both parsers take: pchar, '/', and the printable extras llhttp allows.
const PATH = `${ALNUM}-._~!$&'()*+,;=:@%/"{}|\\^\``;
const HOST = `${ALNUM}-._~!$&'()*+,;=%`;
const latin1 = (codes: number[]) => String.fromCharCode(...codes);
const OBS_TEXT = latin1([0x80, 0xa0, 0xe9, 0xff]);

const valueArb = fc.string({
  unit: fc.oneof({ weight: 8, arbitrary: chars(`${ALNUM} -,;=/"()`) }, chars(`\t${OBS_TEXT}`)),
  maxLength: 24,
});
const fieldArb = fc.record({
  name: fc.oneof(
    fc.constantFrom('User-Agent', 'Accept', 'X-Forwarded-For', 'Cookie', 'Content-Type', 'X-Real-IP', 'Via'),
    fc.string({ unit: chars(TCHAR), minLength: 1, maxLength: 10 }),
  ),
  sep: fc.constantFrom(':', ': ', ':\t', ':  '),
  value: valueArb,
});

const originArb = fc
  .tuple(
    fc.string({ unit: chars(PATH), maxLength: 12 }),
    fc.option(fc.string({ unit: chars(`${PATH}?`), maxLength: 8 })),
    fc.option(fc.string({ unit: chars(`${PATH}?#`), maxLength: 6 })),
  )
  .map(
    ([path, query, fragment]) =>
      `/${path}${query === null ? '' : `?${query}`}${fragment === null ? '' : `#${fragment}`}`,
  );
const absoluteArb = fc
  .tuple(
    fc.constantFrom('http', 'https', 'HTTP', 'Https'),
    fc.oneof(
      fc.string({ unit: chars(HOST), minLength: 1, maxLength: 10 }),
      fc.constantFrom('10.0.0.1', '[::1]'),
    ),
    fc.option(fc.integer({ min: 1, max: 65535 })),
    fc.option(originArb),
  )
  .map(([scheme, host, port, path]) => `${scheme}://${host}${port === null ? '' : `:${port}`}${path ?? ''}`);

const chunkArb = fc.record({
  data: fc.string({
    unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
    minLength: 1,
    maxLength: 40,
  }),
  upper: fc.boolean(),
  zeros: fc.integer({ min: 0, max: 2 }),
  ext: fc.constantFrom('', '', ';a', ';a=b', ';name="quoted value"', ';a;b=c', ';x=""'),
});
const bodyArb = (version: string): fc.Arbitrary<Body> =>
  fc.oneof(
    fc.constant<Body>({ kind: 'none' }),
    fc
      .string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 64 })
      .map((data): Body => ({ kind: 'length', data })),
    ...(version === 'HTTP/1.1'
      ? [
          fc
            .record({
              chunks: fc.array(chunkArb, { maxLength: 3 }),
              trailers: fc.array(fieldArb, { maxLength: 2 }),
            })
            .map(
              ({ chunks, trailers }): Body => ({
                kind: 'chunked',
                chunks: chunks.map((c) => {
                  const hex = c.data.length.toString(16);
                  return {
                    size: '0'.repeat(c.zeros) + (c.upper ? hex.toUpperCase() : hex),
                    ext: c.ext,
                    data: c.data,
                    end: '\r\n',
                  };
                }),
                last: '0',
                trailers,
              }),
            ),
        ]
      : []),
  );

/** Inserts `field` at `at` (taken modulo the length + 1). */
function insertField(fields: Field[], at: number, field: Field): Field[] {
  const i = at % (fields.length + 1);
  return [...fields.slice(0, i), field, ...fields.slice(i)];
}

function framingField(body: Body, zeros: number): Field | null {
  if (body.kind === 'length')
    return { name: 'Content-Length', sep: ': ', value: '0'.repeat(zeros) + body.data.length };
  if (body.kind === 'chunked') return { name: 'Transfer-Encoding', sep: ': ', value: 'chunked' };
  return null;
}

const messageArb: fc.Arbitrary<Message> = fc
  .record({
    lead: fc.constantFrom('', '', '', '\r\n'),
    line: fc.oneof(
      {
        weight: 6,
        arbitrary: fc.tuple(
          fc.constantFrom(
            'GET',
            'POST',
            'PUT',
            'DELETE',
            'PATCH',
            'HEAD',
            'PROPFIND',
            'PURGE',
            'QUERY',
            'REPORT',
          ),
          originArb,
        ),
      },
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom('GET', 'POST', 'OPTIONS'), absoluteArb) },
    ),
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0'),
    fields: fc.array(fieldArb, { maxLength: 5 }),
    host: fc.option(fc.constantFrom('a', 'app.example.com', '10.0.0.1:8080')),
    connection: fc.option(
      fc.constantFrom('close', 'keep-alive', 'Keep-Alive', 'x, close', 'close2', 'Upgrade'),
    ),
    upgrade: fc.oneof(
      { weight: 3, arbitrary: fc.constant(null) },
      { weight: 1, arbitrary: fc.constantFrom('websocket', 'h2c', 'websocket, H2C') },
    ),
    expect: fc.oneof(
      { weight: 5, arbitrary: fc.constant(null) },
      { weight: 1, arbitrary: fc.constantFrom('100-continue', 'something') },
    ),
    at: fc.array(fc.nat(), { minLength: 5, maxLength: 5 }),
    zeros: fc.integer({ min: 0, max: 1 }),
  })
  .chain((r) => bodyArb(r.version).map((body) => ({ ...r, body })))
  .map((r) => {
    let fields: Field[] = r.fields;
    const extra: [string, string | null][] = [
      ['Host', r.host],
      ['Connection', r.connection],
      ['Upgrade', r.upgrade],
      ['Expect', r.expect],
    ];
    extra.forEach(([name, value], i) => {
      if (value !== null) fields = insertField(fields, r.at[i] ?? 0, { name, sep: ': ', value });
    });
    const framing = framingField(r.body, r.zeros);
    if (framing !== null) fields = insertField(fields, r.at[4] ?? 0, framing);
    return { lead: r.lead, method: r.line[0], target: r.line[1], version: r.version, fields, body: r.body };
  });

const pipelineArb = fc.array(messageArb, { minLength: 1, maxLength: 3 });

// ---------------------------------------------------------------------------------------------
// Mutations: what request smuggling and parser-confusion attempts are made of

type Mutation =
  | { kind: 'field'; which: number; at: number; name: string; value: string }
  | { kind: 'sep' | 'fold' | 'value-byte'; which: number; field: number; text: string }
  | { kind: 'method' | 'target' | 'version' | 'lead' | 'trailer'; which: number; text: string }
  | { kind: 'target-byte'; which: number; at: number; text: string }
  | { kind: 'chunk-size' | 'chunk-ext' | 'chunk-end'; which: number; chunk: number; text: string }
  | { kind: 'huge'; which: number; size: number }
  | { kind: 'bytes'; op: 'lf' | 'cr' | 'insert' | 'delete' | 'truncate'; at: number; text: string };

const BYTES = latin1([
  0x00, 0x01, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x22, 0x23, 0x2c, 0x3a, 0x3b, 0x7f, 0x80, 0xe9, 0xff, 0x30,
  0x61,
]);
const byteArb = chars(BYTES);

const FIELD_VALUES: Record<string, string[]> = {
  'Content-Length': [
    '0',
    '1',
    '5',
    '01',
    ' 7',
    '1,1',
    '1, 1',
    '+1',
    '-1',
    '0x1',
    '',
    '1 2',
    '99999999999999999999',
    '9999999999999999',
    '123456789012345',
  ],
  'Transfer-Encoding': [
    'chunked',
    'Chunked',
    'gzip, chunked',
    'chunked, gzip',
    'chunked,',
    'identity',
    'chunked;q=1',
    'gzip',
    'chunked, chunked',
  ],
  Host: ['a', 'b.example'],
  Connection: ['close', 'keep-alive', 'upgrade', 'Upgrade, keep-alive', 'keep-alive;', 'close, keep-alive'],
  Upgrade: ['websocket', 'h2c'],
  Expect: ['100-continue', 'foo'],
};
const fieldMutationArb = fc
  .constantFrom(...Object.keys(FIELD_VALUES), 'content-length', 'TRANSFER-ENCODING')
  .chain((name) =>
    fc.record({
      kind: fc.constant('field' as const),
      which: fc.nat(),
      at: fc.nat(),
      name: fc.constant(name),
      value: fc.constantFrom(
        ...(FIELD_VALUES[name] ??
          FIELD_VALUES[name === 'content-length' ? 'Content-Length' : 'Transfer-Encoding'] ?? ['']),
      ),
    }),
  );

const pick = <K extends string>(kind: K, values: string[]) =>
  fc.record({ kind: fc.constant(kind), which: fc.nat(), text: fc.constantFrom(...values) });
const inChunk = <K extends string>(kind: K, values: string[]) =>
  fc.record({ kind: fc.constant(kind), which: fc.nat(), chunk: fc.nat(), text: fc.constantFrom(...values) });
const inField = <K extends string>(kind: K, text: fc.Arbitrary<string>) =>
  fc.record({ kind: fc.constant(kind), which: fc.nat(), field: fc.nat(), text });

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fieldMutationArb },
  inField('sep', fc.constantFrom(' : ', '\t:', ' :', '::', ':\r\n ', '\x00:')),
  inField('fold', fc.constantFrom('\r\n x', '\r\n\tx', '\r\n ')),
  inField('value-byte', byteArb),
  pick('method', [
    'get',
    'Get',
    'FOO',
    'GETX',
    'G ET',
    'GET/',
    'GE\x00T',
    '',
    'CONNECT',
    'PRI',
    'M-SEARCH',
    'DESCRIBE',
    'PROPFIND',
    'ACL',
    'SOURCE',
    'LINK',
  ]),
  pick('target', [
    'http://h#x',
    'ftp://h/',
    'http:/h',
    'HTTP://h/',
    'http://[::1]:80/x',
    'http://h:80#',
    'example.com:443',
    '*',
    '*x',
    'http://u@h/',
    'http://h\\/',
    'http://h{/',
    'http://',
    'https://h?#',
    '/a#b#c',
    '/#',
    '/a b',
    '/\xe9',
    '//x',
    '?x',
    'http://h/\xe9',
    'http://h"/',
    '/a\x7f',
    'a',
    '',
    'https://h:443?q',
    ' /',
  ]),
  fc.record({ kind: fc.constant('target-byte' as const), which: fc.nat(), at: fc.nat(), text: byteArb }),
  pick('version', [
    'HTTP/1.2',
    'HTTP/2.0',
    'HTTP/0.9',
    'http/1.1',
    'HTTP/1.10',
    'HTTP/1',
    'HTTP/ 1.1',
    'HTTP/1.1 ',
    'HTTP/11',
    'HTTP/3.0',
    'HTTPS/1.1',
    'HTTP/1.x',
    'HTTP/1.0',
  ]),
  pick('lead', ['\n', '\r\n', '\r\r\n', ' ', '\r\n\r\n', '\r', '\t']),
  pick('trailer', [
    'Content-Length: 5',
    'Transfer-Encoding: chunked',
    'Connection: close',
    'Host: x',
    'X-T: 1',
    'Bad Name: x',
    'X : y',
    'X: a\x00b',
    ' X: y',
  ]),
  inChunk('chunk-size', [
    '',
    'x',
    '-1',
    '0x5',
    ' 5',
    '5 ',
    '+5',
    'fffffffffffffffff',
    '0000000000000005',
    '00000000000005',
    '5\t',
    'FFFFFFFFFFFFF',
    '0',
    'A',
    'a',
  ]),
  inChunk('chunk-ext', [
    ';',
    '; a',
    ';a',
    ';a=b',
    ';a="x y"',
    ';a=b c',
    ';a = b',
    ';a="unterminated',
    ';a="\\""',
    ';a=\xe9',
    ';a="\xe9"',
    ';a;b',
    ';a;',
    ' ;a',
    ';a="x"y',
    ';a=b=c',
    ';a=""',
    ';a=',
    ';a=b\t',
    ';a="\\\x01"',
    ';a="\x7f"',
    `;${'x'.repeat(5000)}`,
    ';a="b;c"',
    ';a=b;;c',
    ';"x"',
  ]),
  inChunk('chunk-end', ['', '\n', '\r', 'X\r\n', '\r\r\n', '\r\n\r\n', ' \r\n']),
  fc.record({
    kind: fc.constant('huge' as const),
    which: fc.nat(),
    size: fc.integer({ min: 16_250, max: 16_420 }),
  }),
  fc.record({
    kind: fc.constant('bytes' as const),
    op: fc.constantFrom('lf', 'cr', 'insert', 'delete', 'truncate'),
    at: fc.nat(),
    text: byteArb,
  }),
);

/** A chunked body to mutate: the message's own, or one made for it (TE: chunked replaces Content-Length). */
function chunked(m: Message): Message & { body: Extract<Body, { kind: 'chunked' }> } {
  if (m.body.kind === 'chunked') return m as Message & { body: Extract<Body, { kind: 'chunked' }> };
  const fields = m.fields.filter((f) => f.name !== 'Content-Length');
  const chunks = [{ size: '5', ext: '', data: 'hello', end: '\r\n' }];
  return {
    ...m,
    fields: [...fields, { name: 'Transfer-Encoding', sep: ': ', value: 'chunked' }],
    body: { kind: 'chunked', chunks, last: '0', trailers: [] },
  };
}

function mutateChunk(
  m: Message,
  kind: 'chunk-size' | 'chunk-ext' | 'chunk-end',
  index: number,
  text: string,
): Message {
  const c = chunked(m);
  const chunks =
    c.body.chunks.length > 0 || kind !== 'chunk-end'
      ? [...c.body.chunks]
      : [{ size: '1', ext: '', data: 'x', end: '\r\n' }];
  const i = index % (chunks.length + (kind === 'chunk-end' ? 0 : 1));
  let last = c.body.last;
  if (i === chunks.length) {
    last = kind === 'chunk-size' ? text : `${last}${text}`; // the last chunk ("0"): its size or its extension
  } else {
    const chunk = chunks[i] as Chunk;
    chunks[i] =
      kind === 'chunk-size'
        ? { ...chunk, size: text }
        : kind === 'chunk-ext'
          ? { ...chunk, ext: text }
          : { ...chunk, end: text };
  }
  return { ...c, body: { ...c.body, chunks, last } };
}

function mutateField(m: Message, kind: 'sep' | 'fold' | 'value-byte', index: number, text: string): Message {
  const fields = m.fields.length > 0 ? [...m.fields] : [{ name: 'X', sep: ': ', value: 'y' }];
  const i = index % fields.length;
  const field = fields[i] as Field;
  if (kind === 'sep') fields[i] = { ...field, sep: text };
  else if (kind === 'fold') fields[i] = { ...field, value: `${field.value}${text}` };
  else fields[i] = { ...field, value: `${field.value.slice(0, 1)}${text}${field.value.slice(1)}` };
  return { ...m, fields };
}

function mutateMessage(m: Message, u: Exclude<Mutation, { kind: 'bytes' }>): Message {
  switch (u.kind) {
    case 'field':
      return { ...m, fields: insertField(m.fields, u.at, { name: u.name, sep: ': ', value: u.value }) };
    case 'sep':
    case 'fold':
    case 'value-byte':
      return mutateField(m, u.kind, u.field, u.text);
    case 'method':
      return { ...m, method: u.text };
    case 'target':
      return { ...m, target: u.text };
    case 'target-byte': {
      const i = u.at % (m.target.length + 1);
      return { ...m, target: `${m.target.slice(0, i)}${u.text}${m.target.slice(i)}` };
    }
    case 'version':
      return { ...m, version: u.text };
    case 'lead':
      return { ...m, lead: u.text };
    case 'trailer': {
      const c = chunked(m);
      const [name = '', value = ''] = u.text.split(/:(.*)/s);
      return { ...c, body: { ...c.body, trailers: [...c.body.trailers, { name, sep: ':', value }] } };
    }
    case 'chunk-size':
    case 'chunk-ext':
    case 'chunk-end':
      return mutateChunk(m, u.kind, u.chunk, u.text);
    case 'huge':
      return { ...m, fields: [...m.fields, { name: 'X-Big', sep: ': ', value: 'a'.repeat(u.size) }] };
  }
}

/** Byte-level: the n-th CRLF becomes a bare LF or CR, or a byte is inserted, deleted, or the input cut. */
function mutateBytes(text: string, u: Extract<Mutation, { kind: 'bytes' }>): string {
  if (u.op === 'lf' || u.op === 'cr') {
    const ends = [...text.matchAll(/\r\n/g)].map((match) => match.index);
    if (ends.length === 0) return text;
    const i = ends[u.at % ends.length] as number;
    return `${text.slice(0, i)}${u.op === 'lf' ? '\n' : '\r'}${text.slice(i + 2)}`;
  }
  const i = u.at % (text.length + 1);
  if (u.op === 'insert') return `${text.slice(0, i)}${u.text}${text.slice(i)}`;
  if (u.op === 'delete') return `${text.slice(0, i)}${text.slice(i + 1)}`;
  return text.slice(0, i);
}

function mutatedInput(messages: Message[], mutations: Mutation[]): Buffer {
  const list = [...messages];
  for (const u of mutations) {
    if (u.kind === 'bytes') continue;
    const i = u.which % list.length;
    list[i] = mutateMessage(list[i] as Message, u);
  }
  let text = list.map(serialize).join('');
  for (const u of mutations) if (u.kind === 'bytes') text = mutateBytes(text, u);
  return Buffer.from(text, 'latin1');
}

function inputOf(messages: Message[]): Buffer {
  return Buffer.from(messages.map(serialize).join(''), 'latin1');
}

// ---------------------------------------------------------------------------------------------

describe('h1 parser vs llhttp (differential)', () => {
  before(async () => {
    peer = await startLlhttpPeer();
  });
  after(() => peer.close());

  it('regressions: where keepip was looser than llhttp, and the classic smuggling shapes', async () => {
    const chunked = 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n';
    const next = 'GET /next HTTP/1.1\r\n\r\n';
    const examples = [
      // Found by this test and fixed in h1-request.ts: keepip accepted these, llhttp refuses them.
      'FOO / HTTP/1.1\r\n\r\n',
      'get / HTTP/1.1\r\n\r\n',
      'DESCRIBE / HTTP/1.1\r\n\r\n',
      'GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n',
      'GET http://h#x HTTP/1.1\r\n\r\n',
      'GET http://h:80# HTTP/1.1\r\n\r\n',
      'GET http://h"/ HTTP/1.1\r\n\r\n',
      ...['5;', '5; a=b', '5;a b', '5;a=b=c', '5;a="x"y', '5;a="x', '5;a=b;'].map(
        (line) => `${chunked}${line}\r\nhello\r\n0\r\n\r\n`,
      ),
      'POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx',
      `${chunked}0\r\nContent-Length: 5\r\n\r\n`,
      `${chunked}0\r\nTransfer-Encoding: chunked\r\n\r\n`,
      `${chunked}0\r\nConnection: close\r\n\r\n${next}`,
      // Request smuggling shapes: both refuse, or both frame alike.
      `POST / HTTP/1.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG${next}`,
      `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n`,
      `POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello${next}`,
      `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n`,
      `POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`,
      `POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello${next}`,
      `GET / HTTP/1.1\nHost: a\r\n\r\n${next}`,
      `${chunked}fffffffffffffffff\r\n`,
      `${chunked}5\r\nhelloXX0\r\n\r\n${next}`,
      `POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello${next}`,
      `${chunked}5;a="b;c"\r\nhello\r\n0\r\nT: x\r\n\r\n${next}`,
    ];
    for (const example of examples) await differential(Buffer.from(example, 'latin1'));
  });

  it('valid pipelines from the grammar: both accept them and frame them alike', async () => {
    await fc.assert(
      fc.asyncProperty(pipelineArb, async (messages) => {
        const { verdict, keepip } = await differential(inputOf(messages));
        assert.equal(verdict, 'agree');
        assert.notEqual(keepip.end, 'error', `keepip refused a valid request (${keepip.code})`);
      }),
      { numRuns: 250 },
    );
  });

  it('mutated pipelines: keepip never accepts what llhttp refuses, never frames differently', async () => {
    await fc.assert(
      fc.asyncProperty(
        pipelineArb,
        fc.array(mutationArb, { minLength: 1, maxLength: 2 }),
        async (messages, mutations) => {
          await differential(mutatedInput(messages, mutations));
        },
      ),
      { numRuns: 800 },
    );
  });
});
