// catchSignals (src/cli/signals.ts), with real signals sent to this process: a listener of the test's
// own, added beside keepip's, says when each one has been delivered, so nothing waits on a clock.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { afterEach, test } from 'node:test';
import { catchSignals } from '../../src/cli/signals.ts';

const NAMES = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const baseline = {
  SIGINT: process.listenerCount('SIGINT'),
  SIGTERM: process.listenerCount('SIGTERM'),
  SIGHUP: process.listenerCount('SIGHUP'),
};

/** Sends `signal` to this process and resolves once it has been delivered to the listeners. */
async function deliver(signal: (typeof NAMES)[number]): Promise<void> {
  const delivered = once(process, signal);
  process.kill(process.pid, signal);
  await delivered;
}

afterEach(() => {
  for (const name of NAMES) assert.equal(process.listenerCount(name), baseline[name], `${name} left caught`);
});

test('a SIGHUP that comes before the reload exists is kept and runs it once; later ones each run it', async () => {
  const signals = catchSignals({ hangups: true });
  await deliver('SIGHUP');
  let reloads = 0;
  signals.onHangup(() => {
    reloads += 1;
  });
  assert.equal(reloads, 1);
  await deliver('SIGHUP');
  await deliver('SIGHUP');
  assert.equal(reloads, 3);
  signals.release();
});

test('the first SIGTERM or SIGINT resolves stopped with its name; a SIGHUP after it reloads nothing', async () => {
  const signals = catchSignals({ hangups: true });
  let reloads = 0;
  signals.onHangup(() => {
    reloads += 1;
  });
  // Kept so that a second stop signal in this test cannot end the test process.
  const guard = () => {};
  process.on('SIGTERM', guard);
  await deliver('SIGTERM');
  assert.equal(await signals.stopped, 'SIGTERM');
  await deliver('SIGHUP');
  assert.equal(reloads, 0);
  // Without onSecondStop, the stop listeners are gone: a second one takes the default action.
  assert.equal(process.listenerCount('SIGTERM'), baseline.SIGTERM + 1);
  assert.equal(process.listenerCount('SIGINT'), baseline.SIGINT);
  process.off('SIGTERM', guard);
  signals.release();
});

test('onSecondStop hears the second stop signal; the first stays the one stopped names', async () => {
  const seconds: string[] = [];
  const signals = catchSignals({ onSecondStop: (signal) => seconds.push(signal) });
  await deliver('SIGINT');
  await deliver('SIGTERM');
  assert.equal(await signals.stopped, 'SIGINT');
  assert.deepEqual(seconds, ['SIGTERM']);
  signals.release();
});

test('without hangups a SIGHUP is not caught (its default action stays)', () => {
  const signals = catchSignals();
  assert.equal(process.listenerCount('SIGHUP'), baseline.SIGHUP);
  assert.equal(process.listenerCount('SIGTERM'), baseline.SIGTERM + 1);
  signals.release();
});
