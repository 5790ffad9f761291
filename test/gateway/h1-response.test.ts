// The pure upstream response parser: status line, fields, framing decisions, and the chunked decoder.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChunkedDecoder, parseResponseHead } from '../../src/gateway/h1-response.ts';

const head = (...lines: string[]) => lines.join('\r\n');

test('a keep-alive response with Content-Length: fields by lower-case name, repeated ones as arrays', () => {
  const parsed = parseResponseHead(
    head('HTTP/1.1 200 OK', 'Content-Length: 5', 'Set-Cookie: a=1', 'set-cookie: b=2', 'X-Pad:   v  '),
    'GET',
  );
  assert.ok(parsed.ok);
  assert.equal(parsed.head.status, 200);
  assert.equal(parsed.head.statusMessage, 'OK');
  assert.deepEqual(parsed.head.headers, {
    'content-length': '5',
    'set-cookie': ['a=1', 'b=2'],
    'x-pad': 'v',
  });
  assert.deepEqual(parsed.head.framing, { kind: 'length', length: 5 });
  assert.equal(parsed.head.keepAlive, true);
  assert.equal(parsed.head.interim, false);
});

test('framing: chunked, close-delimited, and no body for HEAD, 1xx, 204 and 304', () => {
  const chunked = parseResponseHead(head('HTTP/1.1 200 OK', 'Transfer-Encoding: Chunked'), 'GET');
  assert.ok(chunked.ok);
  assert.deepEqual(chunked.head.framing, { kind: 'chunked' });
  const close = parseResponseHead(head('HTTP/1.1 200 OK', 'Content-Type: text/plain'), 'GET');
  assert.ok(close.ok);
  assert.deepEqual(close.head.framing, { kind: 'close' });
  assert.equal(close.head.keepAlive, false, 'a close-delimited body ends the connection');
  for (const [status, method] of [
    ['200', 'HEAD'],
    ['204', 'GET'],
    ['304', 'GET'],
    ['100', 'GET'],
    ['103', 'GET'],
  ] as const) {
    const parsed = parseResponseHead(head(`HTTP/1.1 ${status} X`, 'Content-Length: 10'), method);
    assert.ok(parsed.ok, status);
    assert.deepEqual(parsed.head.framing, { kind: 'none' }, `${status} ${method}`);
    assert.equal(parsed.head.interim, status.startsWith('1'));
  }
});

test('Connection: close and HTTP/1.0 responses are not kept alive', () => {
  const close = parseResponseHead(
    head('HTTP/1.1 200 OK', 'Content-Length: 0', 'Connection: foo, Close'),
    'GET',
  );
  assert.ok(close.ok);
  assert.equal(close.head.keepAlive, false);
  const old = parseResponseHead(
    head('HTTP/1.0 200 OK', 'Content-Length: 0', 'Connection: keep-alive'),
    'GET',
  );
  assert.ok(old.ok);
  assert.equal(old.head.keepAlive, false);
});

test('an empty reason phrase is accepted', () => {
  for (const line of ['HTTP/1.1 200', 'HTTP/1.1 200 ']) {
    const parsed = parseResponseHead(head(line, 'Content-Length: 0'), 'GET');
    assert.ok(parsed.ok, line);
    assert.equal(parsed.head.statusMessage, '');
  }
});

test('ambiguous or malformed heads are refused with UPSTREAM_ERROR and a reason', () => {
  const cases: [string, string][] = [
    [head('HTTP/1.1 200 OK', 'Content-Length: 5', 'Transfer-Encoding: chunked'), 'length-and-chunked'],
    [head('HTTP/1.1 200 OK', 'Content-Length: 5', 'Content-Length: 5'), 'duplicate-content-length'],
    [head('HTTP/1.1 200 OK', 'Content-Length: 5, 5'), 'content-length'],
    [head('HTTP/1.1 200 OK', 'Content-Length: +5'), 'content-length'],
    [head('HTTP/1.1 200 OK', 'Content-Length: 0x10'), 'content-length'],
    [head('HTTP/1.1 200 OK', 'Content-Length:'), 'content-length'],
    [head('HTTP/1.1 200 OK', 'Transfer-Encoding: gzip, chunked'), 'transfer-encoding'],
    [
      head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'),
      'transfer-encoding',
    ],
    [head('HTTP/1.0 200 OK', 'Transfer-Encoding: chunked'), 'transfer-encoding'],
    [head('HTTP/1.1 200 OK', 'X-A: 1', ' folded'), 'obs-fold'],
    [head('HTTP/1.1 200 OK', 'X-A : 1'), 'header-syntax'],
    [head('HTTP/1.1 200 OK', 'no colon'), 'header-syntax'],
    [head('HTTP/1.1 200 OK', ': empty name'), 'header-syntax'],
    [head('HTTP/1.1 200 OK', 'X-A: 1\nX-B: 2'), 'header-syntax'],
    [head('HTTP/1.1 200 OK', 'X-A: 1\rX-B: 2'), 'header-syntax'],
    [head('HTTP/1.1 200 OK', 'X-A: a\u0000b'), 'header-syntax'],
    [head('HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket'), 'switching-protocols'],
    ['HTTP/2 200 OK', 'status-line'],
    ['HTTP/1.1 20 OK', 'status-line'],
    ['HTTP/1.1 099 Low', 'status-line'],
    ['ICY 200 OK', 'status-line'],
    ['HTTP/1.1  200 OK', 'status-line'],
  ];
  for (const [text, reason] of cases) {
    const parsed = parseResponseHead(text, 'GET');
    assert.equal(parsed.ok, false, JSON.stringify(text));
    if (!parsed.ok) {
      assert.equal(parsed.error.code, 'UPSTREAM_ERROR');
      assert.equal(parsed.error.reason, reason, JSON.stringify(text));
      assert.match(parsed.error.message, /^upstream sent/);
    }
  }
});

function decodeAll(
  input: string,
  splitEvery: number,
): { body: string; rest: number | null; error: string | null } {
  const decoder = new ChunkedDecoder();
  const bytes = Buffer.from(input, 'latin1');
  let body = '';
  for (let at = 0; at < bytes.length; at += splitEvery) {
    const piece = bytes.subarray(at, Math.min(bytes.length, at + splitEvery));
    const result = decoder.feed(piece, 0, (data) => {
      body += data.toString('latin1');
    });
    if (!result.ok) return { body, rest: null, error: result.error.reason };
    if (result.done) return { body, rest: at + result.rest, error: null };
  }
  return { body, rest: null, error: null };
}

test('chunked: sizes in hex, extensions and trailers dropped, any split of the input gives the same body', () => {
  const input =
    '5;name=value\r\nhello\r\n1A \t;x\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\nNEXT';
  for (const split of [1, 2, 3, 7, 1000]) {
    const out = decodeAll(input, split);
    assert.equal(out.error, null, `split ${split}`);
    assert.equal(out.body, 'helloabcdefghijklmnopqrstuvwxyz');
    assert.equal(out.rest, input.length - 'NEXT'.length, 'the bytes after the body are left alone');
  }
});

test('chunked: malformed codings are refused', () => {
  const cases: [string, string][] = [
    ['\r\n', 'chunk-syntax'],
    ['g\r\n', 'chunk-syntax'],
    ['5\nhello\r\n0\r\n\r\n', 'chunk-syntax'],
    ['5\r\nhelloX\r\n0\r\n\r\n', 'chunk-syntax'],
    ['5\r\nhello\n0\r\n\r\n', 'chunk-syntax'],
    ['5 x\r\nhello\r\n', 'chunk-syntax'],
    ['-5\r\n', 'chunk-syntax'],
    ['5;a\u0000\r\n', 'chunk-syntax'],
    ['0\r\n folded: trailer\r\n\r\n', 'chunk-syntax'],
    ['0\r\nX: 1\n\r\n', 'chunk-syntax'],
    ['0\r\n\r\r', 'chunk-syntax'],
    ['fffffffffffffffff\r\n', 'chunk-too-big'],
    [`1;${'e'.repeat(5000)}\r\n`, 'chunk-syntax'],
  ];
  for (const [input, reason] of cases) {
    assert.equal(decodeAll(input, 3).error, reason, JSON.stringify(input.slice(0, 40)));
  }
});
