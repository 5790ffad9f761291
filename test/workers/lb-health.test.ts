// keepip lb --workers 2: the health checks run once, in the primary, and every worker follows its
// verdict. Each connection that reaches a target is traced to the process that opened it (the
// socket's inode in /proc/net/tcp, found among /proc/<pid>/fd), so the test sees who checked and
// which worker forwarded a flow, without timing: every check comes from the primary; a target
// marked unhealthy gets no flow from either worker, nor from a worker started after the change; it
// gets flows from both again once healthy.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { after, test } from 'node:test';
import { metricSum, scrape, scrapeUntil } from '../helpers/metrics.ts';
import { listenTracked } from '../helpers/net.ts';
import { startKeepip } from '../helpers/process.ts';
import { exchange, until } from '../lb/helpers.ts';

const stops: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

/** The process among `pids` holding the client end of the loopback connection `clientPort` → `serverPort`. */
function ownerOf(clientPort: number, serverPort: number, pids: readonly number[]): number | null {
  let inode: string | null = null;
  for (const row of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = row.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const local = Number.parseInt(fields[1]!.split(':')[1]!, 16);
    const remote = Number.parseInt(fields[2]!.split(':')[1]!, 16);
    if (local === clientPort && remote === serverPort) inode = fields[9]!;
  }
  if (inode === null) return null;
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return pid;
      } catch {}
    }
  }
  return null;
}

interface Target {
  port: number;
  /** Who opened each health check, and each flow, in arrival order (0: not found). */
  checks: number[];
  flows: number[];
  healthy: boolean;
}

/** A target that answers `GET /healthz` with 200 or 503 and anything else with its name. */
async function startTarget(name: string, pids: () => number[]): Promise<Target> {
  const target: Target = { port: 0, checks: [], flows: [], healthy: true };
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', (chunk: Buffer) => {
      // The peer is still connected: it waits for this answer.
      const owner = ownerOf(socket.remotePort ?? 0, target.port, pids()) ?? 0;
      if (chunk.toString('latin1').startsWith('GET /healthz ')) {
        target.checks.push(owner);
        const status = target.healthy ? '200 OK' : '503 Service Unavailable';
        socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      } else {
        target.flows.push(owner);
        socket.end(name);
      }
    });
  });
  const { port, close } = await listenTracked(server);
  target.port = port;
  stops.push(close);
  return target;
}

test('lb --workers 2: one prober in the primary, and both workers follow its verdict', async () => {
  let pids: number[] = [];
  let primary = 0;
  const all = () => [primary, ...pids];
  const a = await startTarget('a', all);
  const b = await startTarget('b', all);
  const lb = startKeepip([
    'lb',
    '--listen',
    '127.0.0.1:0',
    '--target',
    `127.0.0.1:${a.port}`,
    '--target',
    `127.0.0.1:${b.port}`,
    '--algorithm',
    'round-robin',
    '--health-check',
    'http:/healthz',
    '--health-interval',
    '200ms',
    '--health-timeout',
    '10s',
    '--healthy-threshold',
    '2',
    '--unhealthy-threshold',
    '2',
    '--workers',
    '2',
    '--metrics',
    '127.0.0.1:0',
  ]);
  stops.push(() => lb.stop());
  primary = lb.child.pid!;
  const port = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]);
  pids = ((await lb.waitFor(/workers: 2 processes \(pids (\d+), (\d+)\)/)).slice(1, 3) as string[]).map(
    Number,
  );
  const metricsPort = Number((await lb.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);

  // Every check of either target comes from the primary: one prober, one check per interval.
  await until(() => a.checks.length >= 6 && b.checks.length >= 6, 'six checks of each target');
  assert.deepEqual(new Set([...a.checks, ...b.checks]), new Set([primary]), 'checked by the primary only');
  const text = await scrapeUntil(
    '127.0.0.1',
    metricsPort,
    (t) => metricSum(t, 'keepip_lb_health_checks_total', { result: 'passed' }) >= 12,
    'the checks are counted',
  );
  assert.equal(metricSum(text, 'keepip_lb_health_checks_total', { result: 'failed' }), 0);

  /** Flows on fresh connections, 10 at a time, until each of `workers` has forwarded `each` (bounded). */
  const flowsUntil = async (workers: number[], each: number): Promise<string[]> => {
    const answers: string[] = [];
    const before = { a: a.flows.length, b: b.flows.length };
    for (let round = 0; round < 30; round++) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => exchange(port, 'hi')));
      answers.push(...batch.map((x) => x.received.toString()));
      const owners = [...a.flows.slice(before.a), ...b.flows.slice(before.b)];
      if (workers.every((pid) => owners.filter((o) => o === pid).length >= each)) return answers;
    }
    throw new Error(`workers ${workers.join(', ')} did not each forward ${each} flows`);
  };

  // Both targets in rotation for both workers.
  await flowsUntil(pids, 4);
  assert.ok(pids.every((pid) => b.flows.includes(pid)) && pids.every((pid) => a.flows.includes(pid)));

  // b fails its checks: marked unhealthy once, by the primary, and avoided by both workers.
  b.healthy = false;
  await lb.waitFor(
    new RegExp(`target 127\\.0\\.0\\.1:${b.port} unhealthy after 2 failed check\\(s\\): HTTP 503`),
  );
  // The primary sent the change to every worker before it read this scrape, and each worker takes
  // its messages in order: once the workers answered the scrape, they all have it.
  await scrape('127.0.0.1', metricsPort);
  const flowsToB = b.flows.length;
  const answers = await flowsUntil(pids, 4);
  assert.deepEqual(new Set(answers), new Set(['a']), 'no flow to the unhealthy target');
  assert.equal(b.flows.length, flowsToB);
  const lines = lb.output().match(/unhealthy after 2 failed check/g) ?? [];
  assert.equal(lines.length, 1, 'one verdict for the pod, not one per worker');

  // A worker started now gets the current health with its configuration.
  process.kill(pids[0]!, 'SIGKILL');
  const replacement = Number((await lb.waitFor(/worker \d serving again \(pid (\d+)\)/))[1]);
  pids = [pids[1]!, replacement];
  const afterRestart = await flowsUntil([replacement], 6);
  assert.deepEqual(new Set(afterRestart), new Set(['a']), 'the new worker avoids b too');

  // Healthy again: both workers send to b once more.
  b.healthy = true;
  await lb.waitFor(new RegExp(`target 127\\.0\\.0\\.1:${b.port} healthy after 2 passed check\\(s\\)`));
  const since = b.flows.length;
  for (let round = 0; round < 30 && !pids.every((pid) => b.flows.slice(since).includes(pid)); round++)
    await Promise.all(Array.from({ length: 10 }, () => exchange(port, 'hi')));
  assert.ok(
    pids.every((pid) => b.flows.slice(since).includes(pid)),
    'both workers send to b again',
  );
  const healthy = await scrapeUntil(
    '127.0.0.1',
    metricsPort,
    (t) => metricSum(t, 'keepip_lb_target_healthy') === 2,
    'both targets healthy',
  );
  assert.equal(metricSum(healthy, 'keepip_lb_target_healthy'), 2);
});
