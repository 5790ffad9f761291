// Reading a request body whole: memory up to the body's share and the cap across bodies, then an
// unlinked temporary file; every failure leaves nothing held (memory, file, descriptor).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  BodyBuffers,
  type BodyReadResult,
  type BufferedBody,
  readWholeBody,
} from '../../src/gateway/request-body-buffer.ts';

const dir = mkdtempSync(join(tmpdir(), 'keepip-body-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function* pieces(...parts: (Buffer | Error)[]): AsyncGenerator<Buffer> {
  for (const part of parts) {
    if (part instanceof Error) throw part;
    yield part;
  }
}

async function collect(body: BufferedBody): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const chunk of body.chunks()) out.push(chunk);
  return Buffer.concat(out);
}

function value(result: BodyReadResult): BufferedBody {
  assert.ok(result.ok, JSON.stringify(!result.ok && result.error));
  return result.value;
}

const open = () => new AbortController().signal;

test('a body within its share stays in memory, reads the same every time, and is freed on release', async () => {
  const buffers = new BodyBuffers({ tempDir: dir });
  const spills: string[] = [];
  const limits = { maxBytes: 0, memoryBytes: 1024, onSpill: (p: string) => spills.push(p) };
  const body = value(
    await readWholeBody(pieces(Buffer.from('hello '), Buffer.from('world')), limits, buffers, open()),
  );
  assert.equal(body.length, 11);
  assert.equal(buffers.memoryInUse, 11);
  assert.equal((await collect(body)).toString(), 'hello world');
  assert.equal((await collect(body)).toString(), 'hello world', 'a retry reads it again from the start');
  body.release();
  body.release();
  assert.deepEqual([buffers.memoryInUse, buffers.filesOpen, spills], [0, 0, []]);
});

test('past its share the body moves to an unlinked file; release closes it', async () => {
  const buffers = new BodyBuffers({ tempDir: dir });
  const spills: string[] = [];
  const data = Buffer.alloc(200_000);
  for (let i = 0; i < data.length; i += 1) data[i] = i % 253;
  const parts = [data.subarray(0, 100), data.subarray(100, 70_000), data.subarray(70_000)];
  const limits = { maxBytes: 0, memoryBytes: 1000, onSpill: (p: string) => spills.push(p) };
  const body = value(await readWholeBody(pieces(...parts), limits, buffers, open()));
  assert.equal(spills.length, 1);
  assert.ok(spills[0]!.startsWith(join(dir, 'keepip-body-')));
  assert.deepEqual(readdirSync(dir), []);
  assert.deepEqual([buffers.memoryInUse, buffers.filesOpen, buffers.fileBytes], [0, 1, data.length]);
  assert.ok((await collect(body)).equals(data));
  assert.ok((await collect(body)).equals(data));
  body.release();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([buffers.memoryInUse, buffers.filesOpen, buffers.fileBytes], [0, 0, 0]);
});

test('the cap across bodies sends a body to a file even within its own share', async () => {
  const buffers = new BodyBuffers({ tempDir: dir, memoryBytes: 100 });
  const limits = { maxBytes: 0, memoryBytes: 10_000 };
  const first = value(await readWholeBody(pieces(Buffer.alloc(80)), limits, buffers, open()));
  const second = value(await readWholeBody(pieces(Buffer.alloc(80)), limits, buffers, open()));
  assert.deepEqual([buffers.memoryInUse, buffers.filesOpen], [80, 1]);
  first.release();
  second.release();
});

test('more than the limit: CLIENT_BODY_TOO_LARGE with the bytes received, nothing held', async () => {
  const buffers = new BodyBuffers({ tempDir: dir });
  const result = await readWholeBody(
    pieces(Buffer.alloc(600), Buffer.alloc(600)),
    { maxBytes: 1000, memoryBytes: 100 },
    buffers,
    open(),
  );
  assert.deepEqual(!result.ok && result.error, { code: 'CLIENT_BODY_TOO_LARGE', received: 1200 });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([buffers.memoryInUse, buffers.filesOpen, buffers.fileBytes], [0, 0, 0]);
});

test("the engine's body timeout and a closed client end the read; nothing held", async () => {
  const buffers = new BodyBuffers({ tempDir: dir });
  const timeout = Object.assign(new Error('client timed out'), { code: 'CLIENT_BODY_TIMEOUT' });
  const timedOut = await readWholeBody(
    pieces(Buffer.alloc(500), timeout),
    { maxBytes: 0, memoryBytes: 100 },
    buffers,
    open(),
  );
  assert.deepEqual(!timedOut.ok && timedOut.error, { code: 'CLIENT_BODY_TIMEOUT', received: 500 });
  // A source whose next read never settles (a client gone without a word): the abort ends it.
  const closed = new AbortController();
  const never: AsyncIterable<Buffer> = {
    [Symbol.asyncIterator]: () => {
      let sent = false;
      return {
        next: () => {
          if (sent) return new Promise<IteratorResult<Buffer>>(() => {});
          sent = true;
          return Promise.resolve({ value: Buffer.alloc(300), done: false });
        },
      };
    },
  };
  const pending = readWholeBody(never, { maxBytes: 0, memoryBytes: 100 }, buffers, closed.signal);
  // After every microtask: the first chunk is taken and the second read is pending.
  await new Promise((resolve) => setImmediate(resolve));
  closed.abort();
  const result = await pending;
  assert.deepEqual(!result.ok && result.error, { code: 'CLIENT_CLOSED', received: 300 });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([buffers.memoryInUse, buffers.filesOpen, buffers.fileBytes], [0, 0, 0]);
});

test("a temporary directory that does not exist: CLIENT_BODY_BUFFER_FAILED in nginx's words", async () => {
  const buffers = new BodyBuffers({ tempDir: join(dir, 'missing') });
  const result = await readWholeBody(
    pieces(Buffer.alloc(50), Buffer.alloc(100)),
    { maxBytes: 0, memoryBytes: 100 },
    buffers,
    open(),
  );
  assert.ok(!result.ok);
  assert.equal(result.error.code, 'CLIENT_BODY_BUFFER_FAILED');
  assert.match(
    result.error.code === 'CLIENT_BODY_BUFFER_FAILED' ? result.error.message : '',
    /^open\(\) ".*\/missing\/keepip-body-[0-9a-f]{16}" failed \(ENOENT: /,
  );
  assert.deepEqual([buffers.memoryInUse, buffers.filesOpen], [0, 0]);
});
