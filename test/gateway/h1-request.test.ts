// The strict request parser of keepip's HTTP/1.1 server side: every rejection with the status the
// client gets, the valid edge cases, and split-invariance (any split of a byte stream parses the same).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type RequestHead, RequestParser } from '../../src/gateway/h1-request.ts';
import { bufferWork } from '../helpers/buffer-work.ts';

const MAX = 16_384;

type Event =
  | { kind: 'head'; head: RequestHead }
  | { kind: 'body'; text: string }
  | { kind: 'end' }
  | { kind: 'error'; code: string; status: number };

/** Feeds the parts in order and returns the events, adjacent body pieces merged. */
function parse(parts: readonly Buffer[]): Event[] {
  const parser = new RequestParser({ maxHeaderBytes: MAX });
  const events: Event[] = [];
  for (const part of parts) {
    let offset = 0;
    for (let guard = 0; guard < 100_000; guard++) {
      const step = parser.execute(part, offset);
      offset += parser.consumed;
      if (step.kind === 'more') break;
      if (step.kind === 'error') {
        events.push({ kind: 'error', code: step.error.code, status: step.error.status });
        return events;
      }
      if (step.kind === 'body') {
        const last = events[events.length - 1];
        if (last?.kind === 'body') last.text += step.chunk.toString('latin1');
        else events.push({ kind: 'body', text: step.chunk.toString('latin1') });
      } else if (step.kind === 'head') {
        events.push({ kind: 'head', head: step.head });
        if (step.head.upgrade) return events;
      } else events.push({ kind: 'end' });
    }
  }
  return events;
}

function one(text: string): Event[] {
  return parse([Buffer.from(text, 'latin1')]);
}

/** A short, comparable form of the events. */
function summary(events: Event[]): string[] {
  return events.map((e) =>
    e.kind === 'head'
      ? `head ${e.head.method} ${e.head.url} ${e.head.httpVersion} ${JSON.stringify(e.head.headers)} ${e.head.framing}:${e.head.contentLength} ka=${e.head.keepAlive}`
      : e.kind === 'body'
        ? `body ${e.text}`
        : e.kind === 'error'
          ? `error ${e.code} ${e.status}`
          : 'end',
  );
}

function rejection(text: string): { code: string; status: number } {
  const events = one(text);
  const last = events[events.length - 1];
  assert.equal(last?.kind, 'error', `expected a rejection, got ${summary(events).join(' | ')}`);
  return { code: (last as { code: string }).code, status: (last as { status: number }).status };
}

describe('h1-request: rejections and the status the client gets', () => {
  const cases: [string, string, string, number][] = [
    ['lower-case version', 'GET / http/1.1\r\n\r\n', 'H1_BAD_VERSION', 400],
    ['HTTP/0.9 request line', 'GET /\r\n\r\n', 'H1_BAD_REQUEST_LINE', 400],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\n\r\n', 'H1_UNSUPPORTED_VERSION', 505],
    ['HTTP/1.2', 'GET / HTTP/1.2\r\n\r\n', 'H1_UNSUPPORTED_VERSION', 505],
    ['method with a slash', 'GE/T / HTTP/1.1\r\n\r\n', 'H1_BAD_METHOD', 400],
    // Methods llhttp refuses (found by the llhttp differential test): keepip must not pass them either.
    ['unknown method', 'FOO / HTTP/1.1\r\n\r\n', 'H1_BAD_METHOD', 400],
    ['lower-case method', 'get / HTTP/1.1\r\n\r\n', 'H1_BAD_METHOD', 400],
    ['RTSP method', 'DESCRIBE / HTTP/1.1\r\n\r\n', 'H1_BAD_METHOD', 400],
    ['two spaces after the method', 'GET  / HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    ['space inside the target', 'GET /a b HTTP/1.1\r\n\r\n', 'H1_BAD_VERSION', 400],
    ['tab inside the target', 'GET /a\tb HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    ['NUL inside the target', 'GET /a\0b HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    ['DEL inside the target', 'GET /a\x7fb HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    ['relative target', 'GET a HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    ['authority-form', 'CONNECT example.com:443 HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    ['CONNECT with a path', 'CONNECT / HTTP/1.1\r\n\r\n', 'H1_BAD_METHOD', 400],
    ['asterisk-form for GET', 'GET * HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    ['asterisk-form for OPTIONS (nginx 1.22: 400)', 'OPTIONS * HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    ['ftp absolute-form', 'GET ftp://x/ HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    // Targets llhttp refuses (found by the llhttp differential test): raw UTF-8, bad authority octets.
    ['raw UTF-8 in the path', 'GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    ['raw UTF-8 in the query', 'GET /?q=\xe9 HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    ['fragment right after the authority', 'GET http://h:80#x HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    ['quote in the authority', 'GET http://h"/ HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    ['brace in the authority', 'GET https://h{/ HTTP/1.1\r\n\r\n', 'H1_BAD_TARGET', 400],
    ['bare LF after the request line', 'GET / HTTP/1.1\nHost: a\r\n\r\n', 'H1_BARE_LF', 400],
    ['bare LF after a header', 'GET / HTTP/1.1\r\nHost: a\n\r\n', 'H1_BARE_LF', 400],
    ['head ending in LF LF', 'GET / HTTP/1.1\r\nHost: a\n\n', 'H1_BARE_LF', 400],
    ['bare CR in a value', 'GET / HTTP/1.1\r\nX: a\rb\r\n\r\n', 'H1_BARE_CR', 400],
    ['bare CR in the request line', 'GET /\r HTTP/1.1\r\n\r\n', 'H1_BARE_CR', 400],
    ['space before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 'H1_BAD_HEADER', 400],
    ['empty field name', 'GET / HTTP/1.1\r\n: a\r\n\r\n', 'H1_BAD_HEADER', 400],
    ['no colon', 'GET / HTTP/1.1\r\nHost a\r\n\r\n', 'H1_BAD_HEADER', 400],
    ['NUL in a value', 'GET / HTTP/1.1\r\nX: a\0b\r\n\r\n', 'H1_BAD_HEADER', 400],
    ['obs-fold (space)', 'GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n', 'H1_OBS_FOLD', 400],
    ['obs-fold (tab)', 'GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n', 'H1_OBS_FOLD', 400],
    [
      'Content-Length with a sign',
      'POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n',
      'H1_BAD_CONTENT_LENGTH',
      400,
    ],
    ['Content-Length list', 'POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n', 'H1_BAD_CONTENT_LENGTH', 400],
    [
      'a tab before Content-Length',
      'POST / HTTP/1.1\r\nContent-Length:\t5\r\n\r\n',
      'H1_BAD_CONTENT_LENGTH',
      400,
    ],
    [
      'a tab after Content-Length',
      'POST / HTTP/1.1\r\nContent-Length: 5\t\r\n\r\n',
      'H1_BAD_CONTENT_LENGTH',
      400,
    ],
    [
      'a tab before Transfer-Encoding (nginx 1.22: 501)',
      'POST / HTTP/1.1\r\nTransfer-Encoding:\tchunked\r\n\r\n',
      'H1_UNSUPPORTED_TRANSFER_ENCODING',
      501,
    ],
    [
      'a tab after Transfer-Encoding',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\t\r\n\r\n',
      'H1_UNSUPPORTED_TRANSFER_ENCODING',
      501,
    ],
    ['Content-Length hex', 'POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n', 'H1_BAD_CONTENT_LENGTH', 400],
    ['Content-Length empty', 'POST / HTTP/1.1\r\nContent-Length:\r\n\r\n', 'H1_BAD_CONTENT_LENGTH', 400],
    [
      'Content-Length too many digits',
      'POST / HTTP/1.1\r\nContent-Length: 1234567890123456\r\n\r\n',
      'H1_BAD_CONTENT_LENGTH',
      400,
    ],
    [
      'two different Content-Length',
      'POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n',
      'H1_DUPLICATE_CONTENT_LENGTH',
      400,
    ],
    [
      'the same Content-Length twice (llhttp refuses it too; found by the llhttp differential test)',
      'POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc',
      'H1_DUPLICATE_CONTENT_LENGTH',
      400,
    ],
    [
      'CL then TE',
      'POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n',
      'H1_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
      400,
    ],
    [
      'TE then CL',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n',
      'H1_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
      400,
    ],
    [
      'TE gzip, chunked',
      'POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
      'H1_UNSUPPORTED_TRANSFER_ENCODING',
      501,
    ],
    [
      'TE identity',
      'POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n',
      'H1_UNSUPPORTED_TRANSFER_ENCODING',
      501,
    ],
    [
      'TE chunked, chunked',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n',
      'H1_UNSUPPORTED_TRANSFER_ENCODING',
      501,
    ],
    [
      'TE twice',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n',
      'H1_UNSUPPORTED_TRANSFER_ENCODING',
      400,
    ],
    [
      'TE in HTTP/1.0',
      'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n',
      'H1_UNSUPPORTED_TRANSFER_ENCODING',
      400,
    ],
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'H1_DUPLICATE_HOST', 400],
    [
      'two Authorization lines (the gateway, an auth service and the backend could read different ones)',
      'GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic YTpi\r\nauthorization: Basic Yzpk\r\n\r\n',
      'H1_DUPLICATE_HEADER',
      400,
    ],
    [
      'two Expect lines',
      'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n',
      'H1_DUPLICATE_HEADER',
      400,
    ],
    [
      'two If-None-Match lines',
      'GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: "a"\r\nIf-None-Match: "b"\r\n\r\n',
      'H1_DUPLICATE_HEADER',
      400,
    ],
    [
      'chunk size not hex',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'H1_BAD_CHUNK',
      400,
    ],
    [
      'chunk size with a sign',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n',
      'H1_BAD_CHUNK',
      400,
    ],
    [
      'chunk size with space',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n',
      'H1_BAD_CHUNK',
      400,
    ],
    [
      'chunk size overflowing',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100000000000000000\r\n',
      'H1_BAD_CHUNK',
      400,
    ],
    [
      'chunk data too long',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n',
      'H1_BAD_CHUNK',
      400,
    ],
    [
      'chunk line bare LF',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n',
      'H1_BARE_LF',
      400,
    ],
    [
      'chunk extension with a CTL',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;a=\x01\r\nab\r\n',
      'H1_BAD_CHUNK',
      400,
    ],
    // Extensions llhttp refuses (found by the llhttp differential test): whitespace, empty or bad names,
    // bad values, unterminated or trailing quotes.
    ...[
      ';',
      '; a=b',
      ';a b',
      ';a =b',
      ';a= b',
      ';a=b ',
      ';a=b=c',
      ';a=\xe9',
      ';a=b;',
      ';a="x"y',
      ';a="x',
      ';"x"',
    ].map((ext): [string, string, string, number] => [
      `chunk extension ${JSON.stringify(ext)}`,
      `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2${ext}\r\nab\r\n`,
      'H1_BAD_CHUNK',
      400,
    ]),
    // Framing fields in the trailers (found by the llhttp differential test: llhttp refuses the first
    // two and closes after the third, where keepip read on).
    [
      'Content-Length in the trailers',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n',
      'H1_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
      400,
    ],
    [
      'Transfer-Encoding in the trailers',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\ntransfer-encoding: chunked\r\n\r\n',
      'H1_UNSUPPORTED_TRANSFER_ENCODING',
      400,
    ],
    [
      'Connection: close in the trailers',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nConnection: close\r\n\r\nGET /next HTTP/1.1\r\n\r\n',
      'H1_BAD_HEADER',
      400,
    ],
    [
      'trailer with obs-fold',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n b\r\n\r\n',
      'H1_OBS_FOLD',
      400,
    ],
    ['control character in a field name', 'GET / HTTP/1.1\r\n\x01: a\r\n\r\n', 'H1_BAD_HEADER', 400],
  ];
  for (const [name, text, code, status] of cases) {
    it(`${name}: ${status} ${code}`, () => {
      assert.deepEqual(rejection(text), { code, status });
    });
  }

  it('a head larger than 16 KiB: 431, whether it ended or not', () => {
    const big = `GET / HTTP/1.1\r\nX: ${'a'.repeat(MAX)}\r\n`;
    assert.deepEqual(rejection(big), { code: 'H1_HEADER_TOO_LARGE', status: 431 });
    assert.deepEqual(rejection(`${big}\r\n`), { code: 'H1_HEADER_TOO_LARGE', status: 431 });
  });

  it('trailers larger than 16 KiB: 431', () => {
    const text = `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ${'a'.repeat(MAX)}\r\n\r\n`;
    assert.deepEqual(rejection(text), { code: 'H1_HEADER_TOO_LARGE', status: 431 });
  });
});

describe('h1-request: a partial head whose method no request can have', () => {
  it('is refused at once, as nginx refuses the first such byte, not held until the header deadline', () => {
    for (const [partial, code] of [
      ['a', 'H1_BAD_METHOD'],
      ['0', 'H1_BAD_METHOD'],
      ['\r\n0b0', 'H1_BAD_METHOD'],
      ['GETX', 'H1_BAD_METHOD'],
      ['get ', 'H1_BAD_METHOD'],
      ['FOO /', 'H1_BAD_METHOD'],
      ['UNSUBSCRIBEX', 'H1_BAD_METHOD'],
      ['GE\t', 'H1_BAD_METHOD'],
      ['\r\r', 'H1_BARE_CR'],
      ['GET\r', 'H1_BARE_CR'],
    ] as const) {
      assert.deepEqual(
        parse([Buffer.from(partial, 'latin1')]),
        [{ kind: 'error', code, status: 400 }],
        partial,
      );
    }
  });

  it('what may still begin a request line waits for more bytes', () => {
    for (const partial of [
      'G',
      'GE',
      'GET',
      'GET ',
      'M-SEA',
      'UNSUBSCRIBE',
      '\r',
      '\r\n',
      '\r\n\r',
      '\r\nPO',
      'GET /x HTTP/1.',
    ]) {
      assert.deepEqual(parse([Buffer.from(partial, 'latin1')]), [], JSON.stringify(partial));
    }
  });

  it('after a pipelined request: the request is served, the bad byte after it refused at once', () => {
    const events = parse([Buffer.from('PUT /p HTTP/1.1\r\nContent-Length: 0\r\nHost: h\r\n\r\na', 'latin1')]);
    assert.deepEqual(
      events.map((e) => e.kind),
      ['head', 'end', 'error'],
    );
  });
});

describe('h1-request: valid requests', () => {
  it('absolute-form, empty values, many headers, node-style combining', () => {
    const many = Array.from({ length: 100 }, (_, i) => `X-${i}: ${i}\r\n`).join('');
    const events = one(
      `GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\nEmpty:\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nCookie: a=1\r\nCookie: b=2\r\nUser-Agent: one\r\nUser-Agent: two\r\n${many}\r\n`,
    );
    assert.equal(events.length, 2);
    const head = (events[0] as { head: RequestHead }).head;
    assert.equal(head.url, 'http://example.com/a?b');
    assert.equal(head.headers.empty, '');
    assert.equal(head.headers['x-forwarded-for'], '1.1.1.1, 2.2.2.2');
    assert.equal(head.headers.cookie, 'a=1; b=2');
    assert.equal(head.headers['user-agent'], 'one');
    assert.equal(head.headers['x-99'], '99');
    assert.equal(head.rawHeaders.length, 2 * 108);
    assert.deepEqual(events[1], { kind: 'end' });
  });

  it('header names that are Object.prototype properties are plain headers', () => {
    const [event] = one('GET / HTTP/1.1\r\nConstructor: a\r\nToString: b\r\n__proto__: c\r\n\r\n');
    const head = (event as { head: RequestHead }).head;
    assert.equal(head.headers.constructor, 'a');
    assert.equal(head.headers.tostring, 'b');
    assert.equal(Object.getPrototypeOf(head.headers), Object.prototype);
  });

  it('leading empty lines, HTTP/1.0 keep-alive and Connection: close', () => {
    assert.deepEqual(summary(one('\r\n\r\nOPTIONS / HTTP/1.1\r\nConnection: close\r\n\r\n')), [
      'head OPTIONS / 1.1 {"connection":"close"} none:0 ka=false',
      'end',
    ]);
    assert.deepEqual(summary(one('GET / HTTP/1.0\r\n\r\n')), ['head GET / 1.0 {} none:0 ka=false', 'end']);
    assert.deepEqual(summary(one('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n')), [
      'head GET / 1.0 {"connection":"Keep-Alive"} none:0 ka=true',
      'end',
    ]);
  });

  it('Content-Length, chunk extensions, trailers, then a pipelined request', () => {
    assert.deepEqual(
      summary(
        one(
          'POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc' +
            'POST /b HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n3;name=value;x\r\nxyz\r\nA\r\n0123456789\r\n0\r\nTrailer-One: 1\r\n\r\n' +
            'GET /c HTTP/1.1\r\n\r\n',
        ),
      ),
      [
        'head POST /a 1.1 {"content-length":"3"} length:3 ka=true',
        'body abc',
        'end',
        'head POST /b 1.1 {"transfer-encoding":"Chunked"} chunked:0 ka=true',
        'body xyz0123456789',
        'end',
        'head GET /c 1.1 {} none:0 ka=true',
        'end',
      ],
    );
  });

  it('upgrade and Expect: 100-continue are reported on the head; another expectation is ignored, as nginx', () => {
    const [upgrade] = one(
      'GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\nrest',
    );
    assert.equal((upgrade as { head: RequestHead }).head.upgrade, true);
    const [cont] = one('POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n');
    assert.equal((cont as { head: RequestHead }).head.expectContinue, true);
    for (const value of ['something', '', '100-continue, foo']) {
      const [other] = one(`POST / HTTP/1.1\r\nExpect: ${value}\r\nContent-Length: 1\r\n\r\n`);
      assert.equal(other?.kind, 'head', value);
      assert.equal((other as { head: RequestHead }).head.expectContinue, false, value);
    }
  });

  it('an expectation in an HTTP/1.0 request is ignored (RFC 9110 10.1.1): no 100 Continue', () => {
    const [cont] = one('POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n');
    assert.equal((cont as { head: RequestHead }).head.expectContinue, false);
  });
});

const PIPELINE = Buffer.from(
  '\r\nPOST /a?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello' +
    'PUT /b HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n4;e=1\r\nwiki\r\n5\r\npedia\r\n0\r\nT: x\r\n\r\n' +
    'GET http://c/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' +
    'DELETE /d HTTP/1.1\r\nX:\r\n\r\n',
  'latin1',
);

describe('h1-request: split invariance', () => {
  const whole = summary(parse([PIPELINE]));

  it('the reference stream parses into four requests', () => {
    assert.equal(whole.filter((e) => e.startsWith('head')).length, 4);
    assert.equal(whole.filter((e) => e === 'end').length, 4);
    assert.ok(!whole.some((e) => e.startsWith('error')));
  });

  it('split at every byte boundary: the same parse', () => {
    for (let at = 0; at <= PIPELINE.length; at++) {
      assert.deepEqual(
        summary(parse([PIPELINE.subarray(0, at), PIPELINE.subarray(at)])),
        whole,
        `split at ${at}`,
      );
    }
  });

  it('property: any split into pieces parses the same', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: PIPELINE.length - 1 }), { maxLength: 12 }),
        (cuts) => {
          const sorted = [...cuts].sort((a, b) => a - b);
          const parts: Buffer[] = [];
          let from = 0;
          for (const cut of sorted) {
            parts.push(PIPELINE.subarray(from, cut));
            from = cut;
          }
          parts.push(PIPELINE.subarray(from));
          assert.deepEqual(summary(parse(parts)), whole);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: random bytes never throw, and every error carries a 4xx/5xx status', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 6 }), (pieces) => {
        const events = parse(pieces.map((p) => Buffer.from(p)));
        for (const e of events) if (e.kind === 'error') assert.ok(e.status >= 400 && e.status < 600);
      }),
      { numRuns: 500 },
    );
  });

  it('property: random bytes after a valid head prefix never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (tail) => {
        parse([Buffer.from('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'), Buffer.from(tail)]);
        parse([Buffer.from('GET / HTTP/1.1\r\n'), Buffer.from(tail)]);
      }),
      { numRuns: 300 },
    );
  });
});

describe('h1-request: a message that arrives a byte at a time', () => {
  /** Feeds `text` one byte per call; the events, as parse() reports them. */
  function byteAtATime(parser: RequestParser, text: string): string[] {
    const bytes = Buffer.from(text, 'latin1');
    const kinds: string[] = [];
    for (let i = 0; i < bytes.length; i++) {
      const piece = bytes.subarray(i, i + 1);
      let offset = 0;
      for (;;) {
        const step = parser.execute(piece, offset);
        offset += parser.consumed;
        if (step.kind === 'more') break;
        kinds.push(step.kind === 'error' ? `error ${step.error.code}` : step.kind);
      }
    }
    return kinds;
  }

  it('a head, a chunk line and trailers cost work linear in their size, however they are split', () => {
    const head = `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-Long: ${'v'.repeat(6000)}\r\n${'X-Many: v\r\n'.repeat(800)}\r\n`;
    const chunkLine = `1;${'e'.repeat(4000)}\r\nx\r\n`;
    const trailers = `0\r\nX-Trailer: ${'t'.repeat(6000)}\r\n${'X-More: t\r\n'.repeat(800)}\r\n`;
    for (const [name, before, text, events] of [
      ['head', '', head, ['head']],
      ['chunk line', head, chunkLine, ['body']],
      ['trailers', head + chunkLine, trailers, ['end']],
    ] as const) {
      const parser = new RequestParser({ maxHeaderBytes: MAX });
      if (before !== '') byteAtATime(parser, before);
      let kinds: string[] = [];
      const spent = bufferWork(() => {
        kinds = byteAtATime(parser, text);
      });
      assert.deepEqual(kinds, events, name);
      assert.ok(spent <= 8 * text.length, `${name}: ${spent} bytes searched or copied for ${text.length}`);
    }
  });
});

describe('large-client-header-buffers: one line of a head fits one buffer', () => {
  const parseWith = (text: string) => {
    const parser = new RequestParser({ maxHeaderBytes: 400, maxLineBytes: 100 });
    const step = parser.execute(Buffer.from(text, 'latin1'), 0);
    return step.kind === 'error' ? `${step.error.status} ${step.error.code}` : step.kind;
  };
  it('a request line over one buffer is 414, a header line over it 431; lines that fit pass', () => {
    // "GET /aaa… HTTP/1.1\r\n": 16 bytes around the a's.
    assert.equal(parseWith(`GET /${'a'.repeat(84)} HTTP/1.1\r\nHost: x\r\n\r\n`), 'head');
    assert.equal(
      parseWith(`GET /${'a'.repeat(85)} HTTP/1.1\r\nHost: x\r\n\r\n`),
      '414 H1_REQUEST_LINE_TOO_LONG',
    );
    // "X: …\r\n": 5 bytes around the value.
    assert.equal(parseWith(`GET / HTTP/1.1\r\nX: ${'v'.repeat(95)}\r\n\r\n`), 'head');
    assert.equal(parseWith(`GET / HTTP/1.1\r\nX: ${'v'.repeat(96)}\r\n\r\n`), '431 H1_HEADER_TOO_LARGE');
    // Lines that each fit, over the whole head's limit.
    const many = Array.from({ length: 5 }, (_, i) => `X${i}: ${'v'.repeat(90)}\r\n`).join('');
    assert.equal(parseWith(`GET / HTTP/1.1\r\n${many}\r\n`), '431 H1_HEADER_TOO_LARGE');
  });
});

it('the announced chunked body size counts per request: chunk sizes add up, the next head starts again at 0', () => {
  const parser = new RequestParser({ maxHeaderBytes: MAX });
  const seen: number[] = [];
  const wire = Buffer.from(
    'POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n20\r\n' +
      `${'x'.repeat(32)}\r\n0\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nab`,
    'latin1',
  );
  let offset = 0;
  for (let guard = 0; guard < 1_000; guard++) {
    const step = parser.execute(wire, offset);
    offset += parser.consumed;
    if (step.kind === 'head' || step.kind === 'end') seen.push(parser.announced);
    if (step.kind === 'more' || step.kind === 'error') break;
  }
  // The first head, its end (16 + 32 announced), the second head (0 again).
  assert.deepEqual(seen, [0, 48, 0]);
  assert.equal(parser.announced, 0);
});
