// --worker-watchdog as a user meets it: a worker that is stopped (SIGSTOP: wedged as an endless loop
// would be, but without burning a core) is killed and replaced while the other keeps serving; a reload
// (gateway) or a SIGHUP's new targets (lb) that meets a stopped worker still completes, and the
// replacement serves what it brought; a primary that was itself stopped longer than the watchdog kills
// none of its workers. Every wait is on a line, a counter or an answer; the stops are real signals.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { parseWatchdog, silenceOfTick, watchdogTickMs } from '../../src/workers/watchdog.ts';
import { request } from '../fixtures/gateway/harness.ts';
import { controllerConfigMap, manifestDir, toYaml, webApp } from '../fixtures/gateway/manifests.ts';
import { metricSum, scrape } from '../helpers/metrics.ts';
import { nlbManifest } from '../helpers/nlb-manifest.ts';
import { startHeldBackend } from '../helpers/held-backend.ts';
import { exitWithin, runKeepip } from '../helpers/process.ts';
import { exchange, startTarget } from '../lb/helpers.ts';
import {
  alive,
  startLbWorkers,
  startWorkersGateway,
  untilEveryWorkerServed,
  type WorkersGateway,
  workerLogFormat,
} from './helpers.ts';

const WATCHDOG = '2s';
/** Two workers whose drain bound (10 minutes) no test waits for: the watchdog's 2 s is what acts. */
const TWO_WORKERS_LONG_DRAIN = ['--workers', '2', '--worker-watchdog', WATCHDOG, '--drain-timeout', '10m'];

test('parseWatchdog, the tick and the silence a tick may add', () => {
  assert.deepEqual(parseWatchdog('10s'), { ok: true, value: 10_000 });
  assert.deepEqual(parseWatchdog('1500ms'), { ok: true, value: 1_500 });
  assert.deepEqual(parseWatchdog('3'), { ok: true, value: 3_000 });
  for (const bad of ['999ms', '0', '', 'soon', '-5s', '30d', '25000h'])
    assert.equal(parseWatchdog(bad).ok, false, bad);
  assert.equal(watchdogTickMs(2_000), 500);
  assert.equal(watchdogTickMs(60_000), 1_000, 'at most a second between pings');
  assert.equal(silenceOfTick(480, 500), 480);
  assert.equal(silenceOfTick(30_000, 500), 500, 'a primary blocked 30 s counts one tick');
  assert.equal(silenceOfTick(-3, 500), 0, 'a clock that went back adds nothing');
});

test('--worker-watchdog below 1s or not a duration is a usage error in gateway, lb and controller', async () => {
  // parseWatchdog's cases are above; here each command refuses one, in parallel (a process each).
  const commands = [
    ['gateway', '-f', '/nonexistent.yaml', '--http', '127.0.0.1:0', '--worker-watchdog=500ms'],
    ['lb', '--listen', '127.0.0.1:0', '--target', '127.0.0.1:1', '--worker-watchdog=never'],
    ['controller', '--worker-watchdog=0.5'],
  ];
  const results = await Promise.all(commands.map((command) => runKeepip(command)));
  for (const [i, result] of results.entries()) {
    assert.equal(result.code, 2, commands[i]!.join(' '));
    assert.match(result.stderr, /--worker-watchdog: .*\[WORKER_WATCHDOG_INVALID\]/);
  }
  assert.match((await runKeepip(['gateway', '--help'])).stdout, /--worker-watchdog <D>/);
  assert.match((await runKeepip(['lb', '--help'])).stdout, /--worker-watchdog D/);
});

describe(`keepip gateway --workers 2 --worker-watchdog ${WATCHDOG}`, () => {
  let backend: RunningWhoami;
  let dir: ReturnType<typeof manifestDir>;
  let file: string;
  let gw: WorkersGateway;
  const manifests = (marker: string) =>
    toYaml([
      controllerConfigMap({ 'log-format-upstream': workerLogFormat(marker) }),
      ...webApp(backend.address.port),
    ]);
  const unresponsive = (pid: number) =>
    new RegExp(
      `worker (\\d) \\(pid ${pid}\\) (said nothing for|did not answer prepare within) \\d+ ms: killing it \\[WORKER_UNRESPONSIVE\\]`,
    );

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    dir = manifestDir();
    file = dir.write('web.yaml', manifests('v1'));
    gw = await startWorkersGateway(file, ['--workers', '2', '--worker-watchdog', WATCHDOG]);
  });
  after(async () => {
    for (const pid of gw.pids) if (alive(pid)) process.kill(pid, 'SIGCONT');
    assert.equal(await gw.running.stop(), 0);
    await backend.close();
    dir.remove();
  });

  test('a primary stopped longer than the watchdog kills none of its workers, which served meanwhile', async () => {
    const primary = gw.running.child.pid!;
    process.kill(primary, 'SIGSTOP');
    try {
      // The workers serve without the primary: requests answered while it is stopped (> the watchdog).
      const whileStopped = await untilEveryWorkerServed(gw, gw.pids, 'primary-stopped');
      assert.ok(whileStopped.every((s) => s.status === 200));
      await new Promise((resolve) => setTimeout(resolve, 2_500));
    } finally {
      process.kill(primary, 'SIGCONT');
    }
    // A scrape asks both workers over IPC: once it answers, the primary has run the tick due since the
    // stop and read the workers' answers to its pings.
    const text = await scrape('127.0.0.1', gw.metricsPort);
    assert.equal(metricSum(text, 'keepip_worker_watchdog_kills_total'), 0);
    assert.equal(metricSum(text, 'keepip_workers_serving'), 2);
    assert.doesNotMatch(gw.running.output(), /WORKER_UNRESPONSIVE/);
    assert.ok(gw.pids.every(alive));
  });

  test('a stopped worker is killed and replaced; the other serves throughout', async () => {
    const [victim, survivor] = gw.pids as [number, number];
    process.kill(victim, 'SIGSTOP');
    const killed = await gw.running.waitFor(unresponsive(victim));
    assert.equal(killed[2], 'said nothing for');
    const slot = killed[1]!;
    const again = await gw.running.waitFor(new RegExp(`worker ${slot} serving again \\(pid (\\d+)\\)`));
    const replacement = Number(again[1]);
    assert.ok(!alive(victim), 'the stopped worker is gone');
    const served = await untilEveryWorkerServed(gw, [survivor, replacement], 'replaced');
    assert.ok(served.every((s) => s.status === 200 && s.marker === 'v1'));
    const text = await scrape('127.0.0.1', gw.metricsPort);
    assert.equal(metricSum(text, 'keepip_worker_watchdog_kills_total', { worker: slot }), 1);
    assert.equal(metricSum(text, 'keepip_worker_watchdog_kills_total'), 1, 'the survivor was left alone');
    assert.equal(metricSum(text, 'keepip_worker_restarts_total', { worker: slot }), 1);
    assert.ok(alive(survivor));
    gw.pids = [survivor, replacement];
  });

  test('a reload that meets a stopped worker completes; its replacement serves the new version', async () => {
    const [victim, survivor] = gw.pids as [number, number];
    process.kill(victim, 'SIGSTOP');
    dir.write('web.yaml', manifests('v2'));
    gw.running.child.kill('SIGHUP');
    // Killed at the watchdog or at the prepare's deadline, whichever comes first: either way the
    // reload does not wait for it, and its replacement starts on what the reload committed.
    const killed = await gw.running.waitFor(unresponsive(victim));
    await gw.running.waitFor(/reloaded: config v2 from/);
    const again = await gw.running.waitFor(new RegExp(`worker ${killed[1]} serving again \\(pid (\\d+)\\)`));
    const replacement = Number(again[1]);
    const served = await untilEveryWorkerServed(gw, [survivor, replacement], 'reloaded');
    assert.deepEqual(new Set(served.map((s) => s.marker)), new Set(['v2']), 'every worker serves v2');
    assert.ok(!alive(victim));
    gw.pids = [survivor, replacement];
  });
});

test('keepip gateway --workers 2: SIGTERM with a stopped worker ends at the watchdog, not at a 10-minute drain bound', async () => {
  const backend = await startWhoami({ host: '127.0.0.1', port: 0 });
  const dir = manifestDir();
  const file = dir.write('web.yaml', toYaml(webApp(backend.address.port)));
  const gw = await startWorkersGateway(file, TWO_WORKERS_LONG_DRAIN);
  const [victim, other] = gw.pids as [number, number];
  try {
    process.kill(victim, 'SIGSTOP');
    gw.running.child.kill('SIGTERM');
    // Without the watchdog during the stop, the stopped worker held the stop (and the line below)
    // until the drain bound killed it: 10 minutes here, 245 s with worker-shutdown-timeout's default.
    assert.equal(await exitWithin(gw.running, 60_000), 0, gw.running.output());
    const output = gw.running.output();
    const order = [
      output.indexOf('SIGTERM: stopping, closing the listeners'),
      output.search(
        new RegExp(`\\(pid ${victim}\\) said nothing for \\d+ ms: killing it \\[WORKER_UNRESPONSIVE\\]`),
      ),
      output.indexOf('SIGTERM: stopped accepting, draining in-flight requests'),
      output.search(/: stopped$/m),
    ];
    assert.ok(
      order.every((at) => at >= 0),
      output,
    );
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
      `stopping, the kill, stopped accepting, stopped:\n${output}`,
    );
    assert.doesNotMatch(output, /WORKER_EXITED|serving again/, 'no restart during the stop');
    assert.ok(!alive(victim) && !alive(other), 'no worker is left behind');
  } finally {
    for (const pid of gw.pids) if (alive(pid)) process.kill(pid, 'SIGCONT');
    await gw.running.stop();
    await backend.close();
    dir.remove();
  }
});

test('keepip gateway --workers 2: a drain longer than the watchdog is not a wedge; the held request completes, nobody is killed', async () => {
  const held = await startHeldBackend({ hold: (url) => url.includes('hold') });
  const dir = manifestDir();
  const file = dir.write('web.yaml', toYaml(webApp(held.port)));
  const gw = await startWorkersGateway(file, TWO_WORKERS_LONG_DRAIN);
  try {
    const pending = request(gw.port, { host: 'web.example.com', path: '/hold' });
    await held.arrived(/hold/);
    gw.running.child.kill('SIGTERM');
    await gw.running.waitFor(/SIGTERM: stopped accepting, draining/);
    // Twice the watchdog's bound while one worker drains a request it cannot finish yet: it answers the
    // primary's pings meanwhile, so it is not taken for wedged (the watchdog now runs during the stop).
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    held.release();
    assert.equal((await pending).status, 200);
    assert.equal(await gw.running.exited(), 0);
    assert.doesNotMatch(gw.running.output(), /WORKER_UNRESPONSIVE/);
  } finally {
    await gw.running.stop();
    await held.close();
    dir.remove();
  }
});

test('keepip lb --workers 2: a SIGHUP that meets a stopped worker completes; the replacement takes the targets', async () => {
  const a = await startTarget({ behave: (socket) => socket.end('a') });
  const b = await startTarget({ behave: (socket) => socket.end('b') });
  const dir = mkdtempSync(join(tmpdir(), 'keepip-lb-watchdog-'));
  const file = join(dir, 'service.yaml');
  writeFileSync(file, nlbManifest(a.port));
  const { lb, port, pids } = await startLbWorkers(file, ['--worker-watchdog', WATCHDOG]);
  try {
    // The hangup comes as soon as the start-up lines are out (before the metrics listener and the
    // signal loop): it must be kept for the reload, not end the process by the default action.
    process.kill(pids[0]!, 'SIGSTOP');
    writeFileSync(file, nlbManifest(b.port));
    lb.child.kill('SIGHUP');
    await lb.waitFor(new RegExp(`worker \\d \\(pid ${pids[0]}\\) said nothing for 2000 ms: killing it`));
    await lb.waitFor(/reload: web\/edge targets 127\.0\.0\.1:\d+/);
    await lb.waitFor(/worker \d serving again \(pid \d+\)/);
    // 20 fresh connections: both workers (the survivor and the replacement) forward to the new target.
    const answers = await Promise.all(Array.from({ length: 20 }, () => exchange(port, '')));
    assert.deepEqual(new Set(answers.map((r) => r.received.toString())), new Set(['b']));
  } finally {
    // A stopped worker left behind would outlive its primary (and hold this test's pipes open).
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGCONT');
    assert.equal(await lb.stop(), 0);
    await Promise.all([a.close(), b.close()]);
    rmSync(dir, { recursive: true, force: true });
  }
});
