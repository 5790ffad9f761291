// Status syncs are coalesced: while one runs, later requests replace the one waiting.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { latestOnly } from '../../src/controller/latest-only.ts';

it('runs the running task and then only the latest of those pushed meanwhile', async () => {
  const ran: string[] = [];
  const releases: (() => void)[] = [];
  const tasks = latestOnly(
    (arg: string) =>
      new Promise<void>((resolve) => {
        ran.push(arg);
        releases.push(resolve);
      }),
  );
  tasks.push('a');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(ran, ['a']);
  tasks.push('b');
  tasks.push('c');
  tasks.push('d');
  releases[0]!();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(ran, ['a', 'd']);
  releases[1]!();
  await tasks.idle();
  assert.deepEqual(ran, ['a', 'd']);
  tasks.push('e');
  await new Promise((r) => setImmediate(r));
  releases[2]!();
  await tasks.idle();
  assert.deepEqual(ran, ['a', 'd', 'e']);
});

it('a failing task does not stop the next', async () => {
  const ran: string[] = [];
  const tasks = latestOnly(async (arg: string) => {
    ran.push(arg);
    if (arg === 'x') throw new Error('x');
  });
  tasks.push('x');
  await tasks.idle();
  tasks.push('y');
  await tasks.idle();
  assert.deepEqual(ran, ['x', 'y']);
});
