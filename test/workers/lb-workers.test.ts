// keepip lb --workers 2 as a user runs it: both workers accept on the one port (counted by the sockets
// each holds), one /metrics sums them (a target healthy for every worker is 1, not 2), SIGHUP's new
// targets reach every worker, a killed worker is replaced, and SIGTERM stops them all.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { metricSum, scrape, scrapeUntil } from '../helpers/metrics.ts';
import { runKeepip } from '../helpers/process.ts';
import { exchange, startTarget, type TestTarget } from '../lb/helpers.ts';
import { nlbManifest } from '../helpers/nlb-manifest.ts';
import { startLbWorkers } from './helpers.ts';

const stops: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

async function namedTarget(name: string, options: { hold?: boolean } = {}): Promise<TestTarget> {
  // A held target keeps the flow open (answers nothing) until the test closes it.
  const t = await startTarget({ behave: options.hold ? () => {} : (socket) => socket.end(name) });
  stops.push(() => t.close());
  return t;
}

/** TCP sockets a process holds (its fds that are sockets). */
function socketCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;
}

test('--workers takes a count or auto; anything else is a usage error', async () => {
  const result = await runKeepip(['lb', '--listen', '127.0.0.1:0', '--target', '127.0.0.1:1', '--workers=0']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /--workers: .*\[WORKER_COUNT_INVALID\]/);
  assert.match((await runKeepip(['lb', '--help'])).stdout, /--workers N\|auto/);
});

test('two workers share the port, sum their metrics, take SIGHUP targets, survive a kill', async () => {
  const held = await namedTarget('held', { hold: true });
  const b = await namedTarget('b');
  const dir = mkdtempSync(join(tmpdir(), 'keepip-lb-workers-'));
  stops.push(async () => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'service.yaml');
  writeFileSync(file, nlbManifest(held.port));
  const { lb, port, pids } = await startLbWorkers(file, ['--metrics', '127.0.0.1:0']);
  stops.push(() => lb.stop());
  const metricsPort = Number((await lb.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);

  // Hold 24 flows open: each worker's share shows as the sockets it holds (two per flow).
  const before = pids.map(socketCount);
  const clients: net.Socket[] = [];
  for (let i = 0; i < 24; i++) clients.push(net.connect({ host: '127.0.0.1', port }).on('error', () => {}));
  const text = await scrapeUntil(
    '127.0.0.1',
    metricsPort,
    (t) => metricSum(t, 'keepip_lb_flows_active') === 24,
    '24 flows are open',
  );
  assert.equal(metricSum(text, 'keepip_lb_flows_total'), 24, 'the workers summed, each flow once');
  const grew = pids.map((pid, i) => socketCount(pid) - before[i]!);
  assert.ok(
    grew.every((n) => n >= 2),
    `both workers hold flows (socket growth ${grew.join(', ')})`,
  );
  assert.equal(metricSum(text, 'keepip_lb_target_healthy'), 1, 'healthy for every worker: 1, not 2');
  for (const client of clients) client.destroy();

  writeFileSync(file, nlbManifest(b.port));
  lb.child.kill('SIGHUP');
  await lb.waitFor(/reload: web\/edge targets 127\.0\.0\.1:\d+/);
  // Every worker forwards to the new target from the reload line on (20 fresh connections, both workers).
  const answers = await Promise.all(Array.from({ length: 20 }, () => exchange(port, '')));
  assert.deepEqual(new Set(answers.map((a) => a.received.toString())), new Set(['b']));

  process.kill(pids[0]!, 'SIGKILL');
  await lb.waitFor(
    new RegExp(`worker \\d \\(pid ${pids[0]}\\) exited \\(signal SIGKILL\\); starting another`),
  );
  const replacement = Number((await lb.waitFor(/worker \d serving again \(pid (\d+)\)/))[1]);
  assert.notEqual(replacement, pids[0]);
  // The replacement started with the SIGHUP targets.
  const afterKill = await Promise.all(Array.from({ length: 20 }, () => exchange(port, '')));
  assert.deepEqual(new Set(afterKill.map((a) => a.received.toString())), new Set(['b']));
  const restarted = await scrape('127.0.0.1', metricsPort);
  assert.equal(metricSum(restarted, 'keepip_worker_restarts_total'), 1);

  lb.child.kill('SIGTERM');
  assert.equal(await lb.exited(), 0);
  assert.match(lb.output(), /keepip lb: stopped/);
  for (const pid of [pids[1]!, replacement])
    assert.throws(() => process.kill(pid, 0), `worker ${pid} exited`);
});
