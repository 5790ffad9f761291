// The pure parts of the worker pool: --workers parsing, the restart back-off, where a pipe write is
// cut, and the shared log sink on a file (whole lines, in order, flushed on close).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cgroupCpuLimit, chooseWorkerCount, MAX_WORKERS, parseWorkerCount } from '../../src/workers/count.ts';
import { controllerConfigMap, topologyOf } from '../fixtures/gateway/manifests.ts';
import { restartDelayMs } from '../../src/workers/pool.ts';
import { boundedExecArgv, SEMI_SPACE_MB } from '../../src/workers/young-generation.ts';
import { chunkEnd, createFileLineSink, PIPE_BUF } from '../../src/gateway/file-line-sink.ts';

describe('parseWorkerCount', () => {
  test('auto is the available cores; numbers from 1 to MAX_WORKERS', () => {
    assert.deepEqual(parseWorkerCount('auto', 8), { ok: true, value: 8 });
    assert.deepEqual(parseWorkerCount('auto', 0), { ok: true, value: 1 });
    assert.deepEqual(parseWorkerCount('1', 8), { ok: true, value: 1 });
    assert.deepEqual(parseWorkerCount(' 3 ', 8), { ok: true, value: 3 });
    assert.deepEqual(parseWorkerCount(String(MAX_WORKERS), 8), { ok: true, value: MAX_WORKERS });
  });
  test('anything else is WORKER_COUNT_INVALID', () => {
    for (const text of ['0', String(MAX_WORKERS + 1), 'two', '-1', '1.5', '', 'AUTO']) {
      const result = parseWorkerCount(text, 8);
      assert.equal(result.ok, false, text);
      assert.equal(!result.ok && result.code, 'WORKER_COUNT_INVALID');
    }
  });
});

test('chooseWorkerCount: the flag, else the ConfigMap, else the command default', () => {
  const base = { available: 4, fallback: 'auto' as const };
  assert.deepEqual(chooseWorkerCount({ ...base, flag: 2, configMap: 3 }), { value: 2, from: '--workers' });
  assert.deepEqual(chooseWorkerCount({ ...base, flag: null, configMap: 'auto' }), {
    value: 4,
    from: 'ConfigMap worker-processes',
  });
  assert.deepEqual(chooseWorkerCount({ ...base, flag: null, configMap: undefined }), {
    value: 4,
    from: 'auto',
  });
  assert.deepEqual(chooseWorkerCount({ ...base, fallback: 1, flag: null, configMap: undefined }), {
    value: 1,
    from: 'the default',
  });
});

test('worker-processes in the ConfigMap: auto or 1-1024, anything else a warning and unset', () => {
  const settings = (value: string) => topologyOf([controllerConfigMap({ 'worker-processes': value })]);
  assert.equal(settings('auto').gateway.settings.workerProcesses, 'auto');
  assert.equal(settings('3').gateway.settings.workerProcesses, 3);
  for (const bad of ['0', 'many', '2000']) {
    const t = settings(bad);
    assert.equal(t.gateway.settings.workerProcesses, undefined, bad);
    assert.ok(
      t.issues.some((i) => i.code === 'INVALID_CONFIGMAP_VALUE' && i.field === 'data["worker-processes"]'),
    );
  }
  assert.ok(
    !settings('2').issues.some((i) => i.field === 'data["worker-processes"]'),
    'implemented: no issue',
  );
});

test('cgroupCpuLimit: a CPU quota rounds up to whole workers; no quota is no limit', () => {
  assert.equal(cgroupCpuLimit('max 100000\n', null), null);
  assert.equal(cgroupCpuLimit('150000 100000\n', null), 2);
  assert.equal(cgroupCpuLimit('50000 100000', null), 1);
  assert.equal(cgroupCpuLimit('400000 100000', null), 4);
  assert.equal(cgroupCpuLimit(null, { quota: '-1\n', period: '100000\n' }), null);
  assert.equal(cgroupCpuLimit(null, { quota: '250000\n', period: '100000\n' }), 3);
  assert.equal(cgroupCpuLimit(null, null), null);
  assert.equal(cgroupCpuLimit('garbage', null), null);
});

test('restartDelayMs: at once after a worker that ran a while, then doubling from 100 ms to 10 s', () => {
  assert.deepEqual([0, 1, 2, 3, 7, 8, 20].map(restartDelayMs), [0, 100, 200, 400, 6_400, 10_000, 10_000]);
});

test('boundedExecArgv: serving processes get a bounded young generation unless the operator chose one', () => {
  const bound = `--max-semi-space-size=${SEMI_SPACE_MB}`;
  assert.deepEqual(boundedExecArgv([], undefined), [bound]);
  assert.deepEqual(boundedExecArgv(['--enable-source-maps'], ''), ['--enable-source-maps', bound]);
  assert.deepEqual(boundedExecArgv(['--max-semi-space-size=32'], undefined), ['--max-semi-space-size=32']);
  assert.deepEqual(boundedExecArgv(['--max_semi_space_size', '2'], undefined), [
    '--max_semi_space_size',
    '2',
  ]);
  assert.deepEqual(boundedExecArgv([], '--max-old-space-size=512 --max-semi-space-size=16'), []);
});

describe('chunkEnd: a pipe write ends at a line end within PIPE_BUF bytes', () => {
  const lines = (sizes: number[]) => Buffer.from(sizes.map((n) => `${'a'.repeat(n - 1)}\n`).join(''));
  test('a batch within PIPE_BUF goes whole', () => {
    const bytes = lines([100, 200]);
    assert.equal(chunkEnd(bytes, 0), bytes.length);
  });
  test('a larger batch is cut after the last whole line that fits', () => {
    const bytes = lines([3000, 1000, 500]);
    assert.equal(chunkEnd(bytes, 0), 4000);
    assert.equal(chunkEnd(bytes, 4000), 4500);
    const exact = lines([PIPE_BUF, 10]);
    assert.equal(chunkEnd(exact, 0), PIPE_BUF);
  });
  test('a line longer than PIPE_BUF goes alone', () => {
    const bytes = lines([10, PIPE_BUF * 2, 10]);
    assert.equal(chunkEnd(bytes, 0), 10);
    assert.equal(chunkEnd(bytes, 10), 10 + PIPE_BUF * 2);
  });
});

test('createFileLineSink: two sinks appending to one file keep every line whole and in its order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-sink-'));
  try {
    const path = join(dir, 'access.log');
    const a = createFileLineSink({ path });
    const b = createFileLineSink({ path });
    for (let i = 0; i < 2_000; i++) {
      a.write(`a ${i} ${'x'.repeat(i % 300)}`);
      b.write(`b ${i} ${'y'.repeat(i % 500)}`);
    }
    await Promise.all([a.close(), b.close()]);
    const written = readFileSync(path, 'utf8').split('\n').slice(0, -1);
    assert.equal(written.length, 4_000);
    for (const who of ['a', 'b']) {
      const mine = written.filter((line) => line.startsWith(`${who} `));
      const pad = who === 'a' ? 'x' : 'y';
      const mod = who === 'a' ? 300 : 500;
      assert.deepEqual(
        mine,
        Array.from({ length: 2_000 }, (_, i) => `${who} ${i} ${pad.repeat(i % mod)}`),
      );
    }
    assert.equal(a.dropped + b.dropped, 0);
    a.write('after close');
    assert.equal(a.dropped, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('createFileLineSink: a regular file gets each turn of lines at the end of that turn, with no flush', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-sink-'));
  try {
    const path = join(dir, 'access.log');
    const sink = createFileLineSink({ path });
    sink.write('first');
    sink.write('second');
    assert.equal(readFileSync(path, 'utf8'), '', 'lines of one turn leave together, after it');
    // The sink's turn-end write was queued before this one: by now it has run, and written.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(readFileSync(path, 'utf8'), 'first\nsecond\n');
    sink.write('third');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(readFileSync(path, 'utf8'), 'first\nsecond\nthird\n');
    await sink.close();
    assert.equal(sink.dropped, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
