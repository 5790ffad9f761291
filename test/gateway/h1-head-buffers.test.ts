// How nginx packs a request head into its buffers (src/gateway/h1-head-buffers.ts), by hand; the same
// against real nginx with random heads: test/security/header-buffers-differential-nginx.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { headOverflow } from '../../src/gateway/h1-head-buffers.ts';
import { RequestParser } from '../../src/gateway/h1-request.ts';

const BUFFERS = { firstBytes: 1024, count: 2, sizeBytes: 512 };
const line = (length: number, name = 'x') => `${name}: ${'v'.repeat(length - name.length - 4)}\r\n`;
const head = (...lines: string[]) => Buffer.from(`GET / HTTP/1.1\r\n${lines.join('')}\r\n`, 'latin1');
const overflow = (b: Buffer) => headOverflow(b, 0, b.length, BUFFERS);

test('a head in the first buffer fits whatever its lines; a line that moves must fit in a large buffer', () => {
  assert.equal(overflow(head(line(900))), null, 'a 900-byte line lies whole in the first 1k');
  assert.equal(overflow(head(line(600), line(600))), 'header-line', 'the second moves: 600 > 512');
  assert.equal(overflow(head(line(600), line(500))), null, 'the second moves and fits');
  // Three lines that each need a new large buffer: two are there.
  assert.equal(overflow(head(line(1000), line(500), line(500), line(500))), 'buffers');
  assert.equal(overflow(head(line(1000), line(500), line(500))), null);
});

test('a request line that does not fit is 414 first, also in a head still arriving past the size cap', () => {
  const long = Buffer.from(`GET /${'p'.repeat(1100)} HTTP/1.1\r\nHost: a\r\n\r\n`, 'latin1');
  assert.equal(overflow(long), 'request-line');
  // A partial head: the lines so far, the last one cut.
  assert.equal(headOverflow(long, 0, 1050, BUFFERS), 'request-line');
  // The second header line, cut: 484 bytes so far may still fit a large buffer, 584 cannot.
  assert.equal(headOverflow(head(line(600), line(600)), 0, 1100, BUFFERS), null);
  assert.equal(headOverflow(head(line(600), line(600)), 0, 1200, BUFFERS), 'header-line');
  const parser = new RequestParser({ maxHeaderBytes: 1024 + 2 * 512, headBuffers: BUFFERS });
  const step = parser.execute(Buffer.from(`GET /${'p'.repeat(2100)}`, 'latin1'), 0);
  assert.deepEqual(step.kind === 'error' && [step.error.code, step.error.status], [
    'H1_REQUEST_LINE_TOO_LONG',
    414,
  ]);
});

test('any bytes, cut anywhere, through the parser with nginx buffers: an answer, never a hang', () => {
  const bytes = fc.array(fc.constantFrom('a', 'b', '\r\n', '\r', '\n', ' ', ':'), { maxLength: 3000 });
  fc.assert(
    fc.property(bytes, fc.integer({ min: 1, max: 64 }), (parts, chunk) => {
      const input = Buffer.from(`GET /${parts.join('')}`, 'latin1');
      const parser = new RequestParser({ maxHeaderBytes: 1024 + 2 * 512, headBuffers: BUFFERS });
      for (let at = 0; at < input.length; at += chunk) {
        const step = parser.execute(input.subarray(at, at + chunk), 0);
        if (step.kind === 'error' || step.kind === 'head') return;
      }
      assert.ok(headOverflow(input, 0, input.length, BUFFERS) !== undefined);
    }),
    { seed: 29, numRuns: 300 },
  );
});
