// The backend's answer to an upgrade, read as it streams (src/gateway/upgrade-answer.ts): 101 switches
// (however the head is split), a refusal ends where its framing says, and bytes after it never reach
// the client; heads that cannot be framed are errors before anything of them is forwarded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AnswerStep, UpgradeAnswer } from '../../src/gateway/upgrade-answer.ts';

/** Feeds `pieces` one by one; returns every step and what was forwarded. */
function feed(
  pieces: string[],
  method = 'GET',
): { steps: AnswerStep['kind'][]; out: string; status: number } {
  const answer = new UpgradeAnswer(method, 16 * 1024);
  const out: Buffer[] = [];
  const steps: AnswerStep['kind'][] = [];
  for (const piece of pieces) {
    const step = answer.feed(Buffer.from(piece, 'latin1'), (bytes) => out.push(Buffer.from(bytes)));
    steps.push(step.kind);
    if (step.kind !== 'more') break;
  }
  return { steps, out: Buffer.concat(out).toString('latin1'), status: answer.status };
}

test('101 switches once its head is complete, with the tunnel bytes after it forwarded', () => {
  const head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';
  const result = feed([
    'HTTP/1.1 1',
    '01 Switching Protocols\r\nUpgrade: websocket\r\nConn',
    'ection: Upgrade\r\n\r\n\x81\x02hi',
  ]);
  assert.deepEqual(result.steps, ['more', 'more', 'switched']);
  assert.equal(result.status, 101);
  assert.equal(result.out, `${head}\x81\x02hi`);
});

test('a 101 to a request that offered no upgrade is an error: nothing forwarded, no tunnel', () => {
  const answer = new UpgradeAnswer('GET', 16 * 1024, false);
  const out: Buffer[] = [];
  const step = answer.feed(
    Buffer.from(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nPRI',
      'latin1',
    ),
    (bytes) => out.push(bytes),
  );
  assert.deepEqual(step, {
    kind: 'error',
    message: 'upstream switched protocols without being offered an upgrade',
  });
  assert.equal(out.length, 0);
});

test('a refusal with Content-Length is done at its last byte; what follows is not forwarded', () => {
  const result = feed([
    'HTTP/1.1 403 Forbidden\r\ncontent-length: 5\r\n\r\nno',
    'pe!GET /smuggled HTTP/1.1\r\n\r\n',
  ]);
  assert.deepEqual(result.steps, ['more', 'done']);
  assert.equal(result.status, 403);
  assert.equal(result.out, 'HTTP/1.1 403 Forbidden\r\ncontent-length: 5\r\n\r\nnope!');
});

test('a chunked refusal is done at its last chunk, forwarded as framed', () => {
  const body = '4\r\nnope\r\n0\r\n\r\n';
  const result = feed([
    `HTTP/1.1 401 Unauthorized\r\ntransfer-encoding: chunked\r\n\r\n4\r\nno`,
    'pe\r\n0\r\n\r\nextra',
  ]);
  assert.deepEqual(result.steps, ['more', 'done']);
  assert.equal(result.out, `HTTP/1.1 401 Unauthorized\r\ntransfer-encoding: chunked\r\n\r\n${body}`);
});

test('no body (204, HEAD) is done at the head; a close-delimited one waits for the close', () => {
  assert.deepEqual(feed(['HTTP/1.1 204 No Content\r\n\r\n']).steps, ['done']);
  assert.deepEqual(feed(['HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n'], 'HEAD').steps, ['done']);
  const open = feed(['HTTP/1.0 400 Bad Request\r\n\r\nsome', ' more']);
  assert.deepEqual(open.steps, ['more', 'more']);
  assert.equal(open.out, 'HTTP/1.0 400 Bad Request\r\n\r\nsome more');
});

test('an interim answer is forwarded and the final one read after it', () => {
  const result = feed(['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n']);
  assert.deepEqual(result.steps, ['done']);
  assert.equal(result.status, 403);
  assert.equal(
    result.out,
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n',
  );
});

test('heads that cannot be framed are errors and nothing of them is forwarded', () => {
  for (const bad of [
    'HTTP/1.1 403 Forbidden\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n',
    'HTTP/1.1 403 Forbidden\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n',
    'NOT HTTP\r\n\r\n',
    `HTTP/1.1 403 Forbidden\r\nx: ${'a'.repeat(17 * 1024)}`,
  ]) {
    const result = feed([bad]);
    assert.deepEqual(result.steps, ['error'], bad.slice(0, 60));
    assert.equal(result.out, '');
  }
});

test('a 101 is read as strictly as any answer: a malformed switch is an error, never a tunnel', () => {
  for (const bad of [
    'HTTP/2.5 101 Switching Protocols\r\n\r\n\x81\x02hi',
    'HTTP/1.1 1010 Switching\r\n\r\n',
    'HTTX/1.1 101 Switching Protocols\r\n\r\n',
    'HTTP/1.1 101 Switching Protocols\r\nUp grade: websocket\r\n\r\n',
    'HTTP/1.1 101 Switching Protocols\r\n folded: line\r\n\r\n',
  ]) {
    const result = feed([bad]);
    assert.deepEqual(result.steps, ['error'], JSON.stringify(bad));
    assert.equal(result.out, '');
    assert.equal(result.status, 0);
  }
});
