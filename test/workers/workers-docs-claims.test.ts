// docs/gateway.md "Workers (--workers N|auto)", docs/lb.md "Workers", docs/controller.md "Workers" and
// docs/dashboard.md "With workers": the claims no other test checks end to end, met as an operator and an
// outsider meet them (real processes through startKeepip, real sockets on 127.0.0.0/8). Quoted:
//
//  W1 gateway.md: "The count is `--workers`, else the controller ConfigMap's `worker-processes` (`auto`
//     or a number, as ingress-nginx reads it; a bad value is a warning and is ignored), else 1; it is
//     read at start (a changed `worker-processes` takes effect at the next start)."
//  W2 gateway.md: "The primary serves no traffic: it reads the manifests, owns the signals, the file
//     watcher and `/metrics`, and restarts workers." / "Workers are forked with the primary's node
//     flags plus `--max-semi-space-size=8` […] unless a size is set in the node flags or `NODE_OPTIONS`"
//  W3 gateway.md: "A reload is atomic across workers, in two phases: every worker builds and checks the
//     new snapshot (prepare), and only when every one could does each swap it in (commit) […] a worker
//     that cannot prepare aborts the reload everywhere (`reload rejected (worker N (pid …) could not
//     prepare it: …)`, code `WORKER_RELOAD_ABORTED`)." and "`keepip_gateway_config_version` and
//     `keepip_gateway_config_reloads_total` (not the workers' copies, which would count a reload N
//     times)"; controller.md: "a snapshot none can serve changes nothing".
//  W4 gateway.md: "`--access-log FILE` is opened by every worker with `O_APPEND`" and "each worker writes
//     whole lines itself, never through the primary".
//  W5 gateway.md: "Only the primary acts on them (a Ctrl-C reaches the whole process group; workers
//     ignore it)".
//  W6 gateway.md: "A worker that dies within a second of starting is restarted after 100 ms, doubling up
//     to 10 s." and "`/healthz` is 200 while at least one worker serves." (so not while none does) and
//     "`keepip_workers_serving`"; "replaced by one serving the latest committed configuration".
//  W7 lb.md: "SIGTERM/SIGINT stop every worker as one process stops." (SIGTERM: lb-workers.test.ts;
//     the gateway's SIGTERM drain: gateway-workers.test.ts)
//  W8 gateway.md: "A worker whose primary is gone (its IPC channel closes) drains and exits by itself."
//  L1 lb.md: "the `reload: … source ranges` line comes once every worker has the ranges, […] and a
//     worker restarted later starts with them. An invalid list is refused by the primary before any
//     worker sees it."
//
// Found here, fixed (the tests assert the documented / safe behaviour):
//   F1 (W1) keepip gateway with `worker-processes: "two"` runs one process (the documented fallback),
//      but the warning says `using the default auto` (the reader's message, written for the controller,
//      whose default is auto): the operator is told a count that does not run.
//   F2 (W3) the WORKER_RELOAD_ABORTED line carries no code in text mode: `error: reload rejected (worker
//      1 (pid …) could not prepare it: …); still serving config v1`. The code is only in --json output;
//      every other coded error line of the pool ends with `[CODE]` (WORKER_EXITED, WORKER_START_FAILED…).
//   F3 (W4) with --workers and --access-log, the primary opens the access log too (an unused sink) and
//      never reopens it on SIGUSR1: after logrotate moves and deletes the file, the primary holds the
//      deleted file (`/proc/<primary>/fd/N -> access.log.1 (deleted)`) until it exits.
//
// How a worker is made to fail (W3, W6): a preload this file writes, loaded by every keepip process
// through NODE_OPTIONS (`--import`) and acting only in a forked worker (it has an IPC channel). While
// `fail-start` exists in the pod's directory a starting worker notes its slot, pid and time in `starts`
// and exits before keepip's code loads; while `fail-prepare.<slot>` exists, the worker in that slot
// throws on the next `prepare` call (as a worker out of memory or handed something it cannot build
// would), so the primary's check passes and one worker's fails.
//
// Claims of these sections checked elsewhere (not repeated here):
//   --workers N|auto usage, ConfigMap count, both serve, sum, reload to all / invalid to none, kill and
//   replace, SIGTERM drain ............................. test/workers/gateway-workers.test.ts
//   watchdog (stopped worker, stopped primary, reload/SIGHUP meeting a wedge) test/workers/watchdog.test.ts,
//   test/security/watchdog-attack.test.ts; limits once per pod: test/workers/shared-limits.test.ts,
//   test/security/workers-attack.test.ts; /metrics equal to one process, retained counters, a silent
//   worker counted with its last values: test/security/workers-metrics-differential.test.ts,
//   test/workers/metrics-retained.test.ts; whole access-log lines under load:
//   test/workers/access-log.heavy.test.ts; SIGUSR1 reopen: test/workers/log-reopen.test.ts; the
//   single process's semi-space flag: test/cli/bounded-heap.test.ts; lb sum/min/SIGHUP targets/kill:
//   test/workers/lb-workers.test.ts, lb-health.test.ts; controller worker-processes, one watch loop:
//   test/workers/controller-workers.test.ts; dashboard with workers: test/security/dashboard-workers-attack.test.ts.
//
// Every wait is on a line, a file, an answer, a counter or a process's exit; every loop is bounded.
import assert from 'node:assert/strict';
import {
  existsSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SEMI_SPACE_FLAG } from '../../src/workers/young-generation.ts';
import { request } from '../fixtures/gateway/harness.ts';
import { controllerConfigMap, manifestDir, toYaml, webApp } from '../fixtures/gateway/manifests.ts';
import { type HeldBackend, startHeldBackend } from '../helpers/held-backend.ts';
import { metricSum, scrape } from '../helpers/metrics.ts';
import { nlbManifest } from '../helpers/nlb-manifest.ts';
import { type Running, startKeepip } from '../helpers/process.ts';
import { exchange as lbExchange, startTarget, type TestTarget, until } from '../lb/helpers.ts';
import {
  alive,
  fileLines,
  startLbWorkers,
  startWorkersGateway,
  type StdoutLines,
  untilEveryWorkerServed,
  type WorkersGateway,
  workerLogFormat,
} from './helpers.ts';

/**
 * Acceptable differences from a literal reading of the docs, each with its reason; the test named in
 * `checkedBy` checks that it is still what happens, so the table cannot rot.
 */
const ALLOWED = {
  failedStartsAreNotRestarts: {
    claim: '`keepip_worker_restarts_total{worker}` (the per-worker labels […] to spot a crash loop […])',
    seen: 'a start that fails (WORKER_START_FAILED) is not counted; only a start that serves is (one per recovery)',
    reason:
      'a crash loop of failed starts shows where it matters: keepip_workers_serving below keepip_workers, /healthz 503 when none serves, one WORKER_START_FAILED line per attempt',
    checkedBy: 'W6',
  },
  workerProcessesAtStartOnly: {
    claim:
      '`worker-processes` […] it is read at start (a changed `worker-processes` takes effect at the next start)',
    seen: "a reload with another worker-processes keeps the count (keepip_workers, the same pids); ingress-nginx writes it into nginx.conf and nginx's reload applies it (template/configmap.go, nginx.go awaitWorkersReload)",
    reason:
      'documented (here and in ingress-nginx-compat.md); restarting the pool on a reload would reset every connection the workers hold',
    checkedBy: 'W3',
  },
} as const;

const PRELOAD = `// workers-docs-claims.test.ts: loaded by every keepip process, acts only in a forked worker.
import { appendFileSync, existsSync } from 'node:fs';
if (process.channel) {
  const dir = process.env.KEEPIP_DOCS_FAULTS;
  let slot = 0;
  process.on('message', (m) => {
    if (!m || !dir) return;
    if (m.kind === 'init') {
      slot = m.slot;
      if (existsSync(dir + '/fail-start')) {
        appendFileSync(dir + '/starts', JSON.stringify({ slot, pid: process.pid, at: Date.now() }) + '\\n');
        process.exit(1);
      }
    } else if (m.kind === 'call' && m.method === 'prepare' && existsSync(dir + '/fail-prepare.' + slot)) {
      Object.defineProperty(m, 'arg', {
        get() {
          throw new Error('injected: this worker cannot build it');
        },
      });
    }
  });
}
`;

const escapeRe = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The file descriptors of `pid` open on `path`, with their open flags (octal, from fdinfo). */
function openOn(pid: number, path: string): { fd: string; flags: number }[] {
  const found: { fd: string; flags: number }[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== path) continue;
    const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    found.push({ fd, flags: Number.parseInt(/flags:\s+(\d+)/.exec(info)?.[1] ?? '0', 8) });
  }
  return found;
}

const O_APPEND = 0o2000;

function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'latin1')
    .split('\0')
    .filter((arg) => arg !== '');
}

/** Sends `name` to `pid`, which may have exited meanwhile. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** A keepip worker (never a process that reused the pid). */
function isWorker(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker-main.ts');
  } catch {
    return false;
  }
}

/** Exited (no such process, or a zombie waiting to be reaped). */
function gone(pid: number): boolean {
  if (!alive(pid)) return true;
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** Every worker pid the pod's lines named. */
function workerPidsNamed(running: Running): number[] {
  const text = running.output();
  return [
    ...new Set([
      ...[...text.matchAll(/processes \(pids ([\d, ]+)\)/g)].flatMap((m) => m[1]!.split(', ').map(Number)),
      ...[...text.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1])),
    ]),
  ];
}

/** Stops a pod whatever its state: SIGCONT/SIGKILL for leftovers, never an orphan worker. */
async function reap(running: Running): Promise<void> {
  await running.stop();
  for (const pid of workerPidsNamed(running)) if (!gone(pid) && isWorker(pid)) signal(pid, 'SIGKILL');
}

function healthz(port: number): Promise<number> {
  return request(port, { path: '/healthz' }).then((r) => r.status);
}

/** Resolves when a connection to the port is refused (no worker accepts); bounded. */
async function untilRefused(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.7' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
    });
    if (refused) return;
    if (Date.now() > deadline) throw new Error(`port ${port} still accepts connections`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('docs: workers (gateway, lb, controller)', { concurrency: true }, () => {
  describe('keepip gateway, worker-processes 2 from the ConfigMap, --access-log FILE, a preload that can fail a worker', {
    concurrency: false,
  }, () => {
    let backend: HeldBackend;
    let dir: ReturnType<typeof manifestDir>;
    let file: string;
    let accessLog: string;
    let log: StdoutLines;
    let gw: WorkersGateway;
    const manifests = (marker: string, count: string) =>
      toYaml([
        controllerConfigMap({ 'worker-processes': count, 'log-format-upstream': workerLogFormat(marker) }),
        ...webApp(backend.port),
      ]);

    before(async () => {
      backend = await startHeldBackend({ hold: (url) => url.includes('hold') });
      dir = manifestDir();
      file = dir.write('web.yaml', manifests('v1', '2'));
      accessLog = join(dir.dir, 'access.log');
      const preload = dir.write('preload.mjs', PRELOAD);
      const env = {
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${preload}`.trim(),
        KEEPIP_DOCS_FAULTS: dir.dir,
      };
      gw = await startWorkersGateway(file, ['--access-log', accessLog], { env });
      log = fileLines(accessLog);
    });
    after(async () => {
      if (gw !== undefined) await reap(gw.running);
      await backend?.close();
      dir?.remove();
    });

    const served = (tag: string, pids = gw.pids) =>
      untilEveryWorkerServed({ ...log, port: gw.port }, pids, tag);

    test('W2: the workers serve (never the primary), each forked with the bounded young generation', async () => {
      assert.equal(gw.pids.length, 2);
      const lines = await served('who');
      assert.ok(lines.every((s) => s.status === 200 && s.marker === 'v1'));
      assert.deepEqual(new Set(lines.map((s) => s.pid)), new Set(gw.pids), 'only the workers served');
      assert.ok(!gw.pids.includes(gw.running.child.pid!));
      for (const pid of gw.pids)
        assert.ok(cmdline(pid).includes(SEMI_SPACE_FLAG), `worker ${pid}: ${cmdline(pid).join(' ')}`);
    });

    test('W4: every worker appends the access log itself (O_APPEND); after logrotate and SIGUSR1 no process of the pod holds the old file', async () => {
      const primary = gw.running.child.pid!;
      for (const pid of gw.pids) {
        const fds = openOn(pid, accessLog);
        assert.equal(fds.length, 1, `worker ${pid} holds the access log once`);
        assert.ok(
          (fds[0]!.flags & O_APPEND) !== 0,
          `worker ${pid}: O_APPEND (flags ${fds[0]!.flags.toString(8)})`,
        );
      }
      // logrotate: the file moved away, SIGUSR1; the moved file is then compressed or deleted, and its
      // space is freed only when no process holds it.
      const rotated = `${accessLog}.1`;
      renameSync(accessLog, rotated);
      gw.running.child.kill('SIGUSR1');
      await gw.running.waitFor(/SIGUSR1: access log .* reopened/);
      await served('rotated');
      for (const pid of gw.pids)
        await until(() => openOn(pid, rotated).length === 0, `worker ${pid} lets go of ${rotated}`);
      assert.deepEqual(
        openOn(primary, rotated),
        [],
        `the primary (pid ${primary}) still holds the rotated access log: it opened --access-log and never writes or reopens it`,
      );
    });

    test('W3: a worker that cannot prepare aborts the reload everywhere (WORKER_RELOAD_ABORTED), counted once; the next reload reaches all', async () => {
      const [one] = gw.pids as [number, number];
      writeFileSync(join(dir.dir, 'fail-prepare.1'), '');
      // A changed worker-processes too (W1): read at start only.
      dir.write('web.yaml', manifests('v2', '3'));
      const rejected = await gw.running.waitFor(/reload rejected \((.*)\); still serving config v(\d+)(.*)/);
      assert.match(
        rejected[1]!,
        new RegExp(`^worker 1 \\(pid ${one}\\) could not prepare it: injected: this worker cannot build it$`),
      );
      assert.equal(rejected[2], '1');
      // No worker switched: the one that prepared aborted too.
      const kept = await served('aborted');
      assert.deepEqual(new Set(kept.map((s) => s.marker)), new Set(['v1']), 'every worker still serves v1');
      const text = await scrape('127.0.0.1', gw.metricsPort);
      assert.equal(metricSum(text, 'keepip_gateway_config_version'), 1);
      assert.equal(metricSum(text, 'keepip_gateway_config_reloads_total', { result: 'rejected' }), 1);
      assert.equal(metricSum(text, 'keepip_gateway_config_reloads_total', { result: 'applied' }), 1);
      assert.equal(metricSum(text, 'nginx_ingress_controller_config_last_reload_successful'), 0);
      assert.equal(metricSum(text, 'nginx_ingress_controller_errors'), 1);

      rmSync(join(dir.dir, 'fail-prepare.1'));
      gw.running.child.kill('SIGHUP');
      await gw.running.waitFor(/reloaded: config v2 from/);
      const now = await served('applied');
      assert.deepEqual(new Set(now.map((s) => s.marker)), new Set(['v2']), 'every worker serves v2');
      const applied = await scrape('127.0.0.1', gw.metricsPort);
      assert.equal(metricSum(applied, 'keepip_gateway_config_version'), 2);
      assert.equal(metricSum(applied, 'keepip_gateway_config_reloads_total', { result: 'applied' }), 2);
      // W1, ALLOWED.workerProcessesAtStartOnly: worker-processes 3 in the reloaded ConfigMap changes
      // nothing until the next start.
      assert.equal(ALLOWED.workerProcessesAtStartOnly.checkedBy, 'W3');
      assert.equal(metricSum(applied, 'keepip_workers'), 2);
      assert.equal(metricSum(applied, 'keepip_workers_serving'), 2);
      assert.deepEqual(new Set(now.map((s) => s.pid)), new Set(gw.pids), 'the same two workers');
      // The code the doc names (docs/errors.md), on the line as every other coded error line has it.
      assert.match(rejected[0]!, /\[WORKER_RELOAD_ABORTED\]/, `the line has no code: ${rejected[0]}`);
    });

    test('W5: SIGINT, SIGTERM and SIGHUP sent to a worker are ignored (only the primary acts on signals)', async () => {
      for (const pid of gw.pids)
        for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) signal(pid, name);
      // A worker serving after the signals has received them (a signal is delivered before the process
      // runs again) and lived: the default action of any of the three would have ended it.
      const after = await served('signalled');
      assert.ok(after.every((s) => s.status === 200));
      assert.ok(gw.pids.every((pid) => alive(pid)));
    });

    test('W6: workers that cannot start: retried with a growing delay, /healthz 503 while none serves, the latest committed config once one can', async () => {
      const victims = [...gw.pids];
      const startsFile = join(dir.dir, 'starts');
      writeFileSync(join(dir.dir, 'fail-start'), '');
      for (const pid of victims) signal(pid, 'SIGKILL');
      for (const pid of victims)
        await gw.running.waitFor(
          new RegExp(`error: worker \\d \\(pid ${pid}\\) exited \\(signal SIGKILL\\); starting another`),
        );
      // Both slots have exited and none can start: nothing serves.
      const starts = () =>
        existsSync(startsFile)
          ? readFileSync(startsFile, 'utf8')
              .split('\n')
              .filter((l) => l !== '')
              .map((l) => JSON.parse(l) as { slot: number; pid: number; at: number })
          : [];
      await until(
        () => [1, 2].every((slot) => starts().filter((s) => s.slot === slot).length >= 3),
        'three failed starts in each slot',
      );
      assert.equal(await healthz(gw.metricsPort), 503, '/healthz while no worker serves');
      const down = await scrape('127.0.0.1', gw.metricsPort);
      assert.equal(metricSum(down, 'keepip_workers_serving'), 0);
      assert.equal(metricSum(down, 'keepip_workers'), 2);
      assert.match(
        gw.running.output(),
        /worker \d could not start: .*; trying again \[WORKER_START_FAILED\]/,
      );
      rmSync(join(dir.dir, 'fail-start'));
      // The delay between two failed starts of a slot: at least 100 ms, then at least 200 ms (a lower
      // bound: a timer never fires early; each time is taken in the worker, after its fork).
      for (const slot of [1, 2]) {
        const at = starts()
          .filter((s) => s.slot === slot)
          .map((s) => s.at);
        assert.ok(at[1]! - at[0]! >= 100, `slot ${slot}: second start ${at[1]! - at[0]!} ms after the first`);
        assert.ok(at[2]! - at[1]! >= 200, `slot ${slot}: third start ${at[2]! - at[1]!} ms after the second`);
      }
      const again = await Promise.all(
        [1, 2].map(async (slot) =>
          Number((await gw.running.waitFor(new RegExp(`worker ${slot} serving again \\(pid (\\d+)\\)`)))[1]),
        ),
      );
      gw.pids = again;
      const lines = await served('recovered');
      assert.deepEqual(
        new Set(lines.map((s) => s.marker)),
        new Set(['v2']),
        'the replacements serve the committed v2',
      );
      assert.equal(await healthz(gw.metricsPort), 200);
      const up = await scrape('127.0.0.1', gw.metricsPort);
      assert.equal(metricSum(up, 'keepip_workers_serving'), 2);
      // ALLOWED.failedStartsAreNotRestarts: one restart per slot, however many starts failed.
      assert.equal(ALLOWED.failedStartsAreNotRestarts.checkedBy, 'W6');
      assert.equal(metricSum(up, 'keepip_worker_restarts_total', { worker: '1' }), 1);
      assert.equal(metricSum(up, 'keepip_worker_restarts_total', { worker: '2' }), 1);
    });

    test('W8: a primary that is killed: its workers drain by themselves (stop accepting, finish and log the request in flight) and exit', async () => {
      const pending = request(gw.port, { host: 'web.example.com', path: '/hold-orphan' });
      await backend.arrived(/hold-orphan/);
      gw.running.child.kill('SIGKILL');
      await untilRefused(gw.port);
      backend.release();
      assert.equal((await pending).status, 200);
      await log.waitForLines(/ 200 v2 "GET \/hold-orphan HTTP\/1\.1"$/, 1);
      for (const pid of gw.pids) await until(() => gone(pid), `worker ${pid} exited`);
    });
  });

  test('W1: a bad worker-processes is a warning and is ignored: one process, and the warning says so', async () => {
    const dir = manifestDir();
    const file = dir.write(
      'web.yaml',
      toYaml([controllerConfigMap({ 'worker-processes': 'two' }), ...webApp(9)]),
    );
    const gw = startKeepip(['gateway', '-f', file, '--http', '127.0.0.1:0']);
    try {
      const [warning] = await gw.waitFor(/warning: .*worker-processes.*\[INVALID_CONFIGMAP_VALUE\]/);
      // The start-up lines are out (the warnings follow them): no workers line, one process serves.
      assert.doesNotMatch(gw.output(), /workers: \d+ processes/);
      // What the operator is told must be what runs: keepip gateway falls back to 1, not auto.
      assert.doesNotMatch(
        warning,
        /using the default auto/,
        `the warning names a count that does not run: ${warning}`,
      );
      assert.match(warning, /keepip gateway: 1 process/);
    } finally {
      assert.equal(await gw.stop(), 0);
      dir.remove();
    }
  });

  describe('keepip lb --workers 2 -f: loadBalancerSourceRanges over SIGHUP and a restart', {
    concurrency: false,
  }, () => {
    const LISTED = '127.0.0.2';
    const REMOVED = '127.0.0.3';
    let target: TestTarget;
    let dir: ReturnType<typeof manifestDir>;
    let file: string;
    let lb: Running;
    let port: number;
    let pids: number[];

    before(async () => {
      target = await startTarget({ behave: (socket) => socket.end('ok') });
      dir = manifestDir();
      file = dir.write('edge.yaml', nlbManifest(target.port, { ranges: [`${LISTED}/32`, `${REMOVED}/32`] }));
      ({ lb, port, pids } = await startLbWorkers(file));
    });
    after(async () => {
      if (lb !== undefined) await reap(lb);
      await target?.close();
      dir?.remove();
    });

    const flows = (from: string, count: number) =>
      Promise.all(
        Array.from({ length: count }, () =>
          lbExchange(port, 'hi', { localAddress: from }).then(
            (r) => r.received.toString(),
            () => 'reset',
          ),
        ),
      );
    /** The worker slots that logged refusing `from` so far. */
    const refusedBy = (from: string) =>
      new Set(
        [
          ...lb
            .output()
            .matchAll(
              new RegExp(`worker (\\d): web/edge: client ${escapeRe(from)} is outside the allowed`, 'g'),
            ),
        ].map((m) => Number(m[1])),
      );
    /** Flows from `from` until every slot in `slots` has refused one; every flow must be refused. */
    async function refusedByEvery(from: string, slots: number[]): Promise<void> {
      for (let round = 0; round < 20 && !slots.every((s) => refusedBy(from).has(s)); round++) {
        const before = target.accepted.length;
        assert.deepEqual(new Set(await flows(from, 10)), new Set(['reset']), `${from}: reset`);
        assert.equal(target.accepted.length, before, `${from}: nothing reached the target`);
        await lb.waitFor(new RegExp(`client ${escapeRe(from)} is outside the allowed source ranges`));
      }
      assert.deepEqual([...refusedBy(from)].sort(), slots, `every worker refused ${from}`);
    }

    test('L1: once the source ranges line is out every worker refuses the removed address; an invalid list changes nothing; a restarted worker starts with the ranges', async () => {
      assert.deepEqual(new Set(await flows(REMOVED, 10)), new Set(['ok']));
      writeFileSync(file, nlbManifest(target.port, { ranges: [`${LISTED}/32`] }));
      lb.child.kill('SIGHUP');
      await lb.waitFor(new RegExp(`reload: web/edge source ranges ${escapeRe(LISTED)}/32`));
      await refusedByEvery(REMOVED, [1, 2]);
      assert.deepEqual(new Set(await flows(LISTED, 10)), new Set(['ok']));

      writeFileSync(file, nlbManifest(target.port, { ranges: [`${REMOVED}/32`, '10.0.0.0/33'] }));
      lb.child.kill('SIGHUP');
      await lb.waitFor(
        /error: .*loadBalancerSourceRanges\[1\]: "10\.0\.0\.0\/33" is not a CIDR[\s\S]*reload: the manifests have errors; keeping the running targets and source ranges/,
      );
      assert.deepEqual(new Set(await flows(LISTED, 10)), new Set(['ok']), 'the listed address still served');
      const reached = target.accepted.length;
      assert.deepEqual(
        new Set(await flows(REMOVED, 10)),
        new Set(['reset']),
        'the invalid list opened nothing',
      );
      assert.equal(target.accepted.length, reached, 'no flow of the removed address reached the target');

      // A restarted worker: the ranges of the last good SIGHUP, not the start's.
      const [victim] = pids as [number, number];
      signal(victim, 'SIGKILL');
      const exited = await lb.waitFor(
        new RegExp(`worker (\\d) \\(pid ${victim}\\) exited \\(signal SIGKILL\\)`),
      );
      const slot = Number(exited[1]);
      const replacement = Number(
        (await lb.waitFor(new RegExp(`worker ${slot} serving again \\(pid (\\d+)\\)`)))[1],
      );
      pids = pids.map((pid) => (pid === victim ? replacement : pid));
      const before = [
        ...lb
          .output()
          .matchAll(new RegExp(`worker ${slot}: web/edge: client ${escapeRe(REMOVED)} is outside`, 'g')),
      ].length;
      for (let round = 0; round < 20; round++) {
        const seen = [
          ...lb
            .output()
            .matchAll(new RegExp(`worker ${slot}: web/edge: client ${escapeRe(REMOVED)} is outside`, 'g')),
        ].length;
        if (seen > before) break;
        assert.deepEqual(new Set(await flows(REMOVED, 10)), new Set(['reset']), 'reset after the restart');
        // A worker logs before it resets (stdout is a pipe, written synchronously): the line is on its
        // way; give it a moment before the next round (pacing only: the assertion below is positive).
        await lb
          .waitFor(
            new RegExp(
              `(?:[\\s\\S]*?worker ${slot}: web/edge: client ${escapeRe(REMOVED)} is outside){${before + 1}}`,
            ),
            1_000,
          )
          .catch(() => {});
      }
      assert.ok(
        [
          ...lb
            .output()
            .matchAll(new RegExp(`worker ${slot}: web/edge: client ${escapeRe(REMOVED)} is outside`, 'g')),
        ].length > before,
        `the replacement in slot ${slot} refused ${REMOVED}`,
      );
      assert.deepEqual(new Set(await flows(LISTED, 10)), new Set(['ok']));
    });

    test('W7: SIGINT stops the primary and every worker, exit code 0', async () => {
      lb.child.kill('SIGINT');
      assert.equal(await lb.exited(), 0);
      for (const pid of pids) await until(() => gone(pid), `worker ${pid} exited`);
    });
  });
});
