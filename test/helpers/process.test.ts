// The child-process helper other tests lean on: what a process printed before it exited is all there
// once `exited()` or `stop()` resolves, and a line printed just before the exit is still found by
// `waitFor` ('exit' can come before the pipes are read to their end).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { start } from './process.ts';

// Far more than a pipe holds (64 KiB): the child blocks on the pipe, so the tail is still unread when
// it exits. The last line comes after the bulk, on the same pipe (two pipes are read in no set order).
const LINES = 20_000;
const script = `
const line = 'x'.repeat(60) + '\\n';
for (let i = 0; i < ${LINES}; i++) process.stdout.write(line);
process.stdout.write('last words\\n');
process.exitCode = 3;
`;

test('exited() resolves with the exit code after every byte the process wrote', async () => {
  const child = start(process.execPath, ['-e', script]);
  assert.equal(await child.exited(), 3);
  assert.equal(child.output().length, LINES * 61 + 'last words\n'.length);
  assert.match(child.output(), /last words\n$/);
});

test('waitFor finds a line printed just before the exit; stop() after the exit gives its code', async () => {
  const child = start(process.execPath, ['-e', script]);
  assert.equal((await child.waitFor(/last words/))[0], 'last words');
  await child.exited();
  assert.equal(await child.stop(), 3);
});

test('waitFor rejects once the process ended without the pattern, naming what it printed', async () => {
  const child = start(process.execPath, ['-e', 'console.log("only this")']);
  await assert.rejects(
    child.waitFor(/never printed/),
    /exited before printing \/never printed\/;.*only this/s,
  );
});

test('exited() is bounded when a grandchild holds the pipes after the process exited', async () => {
  // The shell exits at once; the sleep it leaves behind keeps stdout open (no 'close' until it ends).
  const child = start('/bin/sh', ['-c', 'sleep 60 & echo "orphan $!"'], { outputDrainMs: 200 });
  try {
    assert.equal(await child.exited(), 0);
    assert.match(child.output(), /^orphan \d+\n$/);
  } finally {
    const orphan = Number(child.output().match(/orphan (\d+)/)?.[1]);
    if (orphan > 0) process.kill(orphan, 'SIGKILL');
  }
});
