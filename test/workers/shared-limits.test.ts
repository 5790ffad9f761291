// keepip gateway --workers 2 counts limit-rpm, limit-rps and limit-connections once for the pod, in the
// primary, as nginx's workers share their limit_req / limit_conn zones: one client spread over many
// connections (so that both workers serve it, named by $pid in the access log) gets what one process
// would give it, not twice that. A stalled primary refuses limited requests (503,
// WORKER_LIMITER_UNAVAILABLE) while unlimited ones are served without it; a slot granted too late is
// freed; a killed worker's slots are freed. Processes are real; every wait is on a line or the backend.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  manifestDir,
  serviceWithEndpoints,
  toYaml,
} from '../fixtures/gateway/manifests.ts';
import { type HeldBackend, startHeldBackend } from '../helpers/held-backend.ts';
import { metricSum, scrape } from '../helpers/metrics.ts';
import type { Running } from '../helpers/process.ts';
import {
  parseServed,
  type ServedLine,
  startWorkersGateway,
  type WorkersGateway,
  workerLogFormat,
} from './helpers.ts';

const text = (gw: { running: Running }) => gw.running.output();

describe('keepip gateway --workers 2: one count of the limits for the pod', () => {
  let free: HeldBackend;
  let conn: HeldBackend;
  let stall: HeldBackend;
  let dir: ReturnType<typeof manifestDir>;
  let gw: WorkersGateway;
  let sent = 0;

  before(async () => {
    free = await startHeldBackend({ hold: () => false });
    conn = await startHeldBackend({ hold: (url) => url.includes('hold') });
    stall = await startHeldBackend({ hold: () => false });
    dir = manifestDir();
    const route = (host: string, service: string, annotations: Record<string, string>) =>
      ingress({ name: host, host, paths: [{ path: '/', service, port: 80 }], annotations });
    const file = dir.write(
      'limits.yaml',
      toYaml([
        controllerConfigMap({ 'log-format-upstream': workerLogFormat('m') }),
        ...serviceWithEndpoints({ name: 'free', ports: [free.port] }),
        ...serviceWithEndpoints({ name: 'conn', ports: [conn.port] }),
        ...serviceWithEndpoints({ name: 'stall', ports: [stall.port] }),
        route('free', 'free', {}),
        // A bucket that leaks one request a minute: 1 + 10 pass, whatever the test's pace.
        route('rpm', 'free', { 'limit-rpm': '1', 'limit-burst-multiplier': '10' }),
        route('rps', 'free', { 'limit-rps': '1', 'limit-burst-multiplier': '20' }),
        route('conn', 'conn', { 'limit-connections': '2' }),
        route('stall', 'stall', { 'limit-connections': '1' }),
      ]),
    );
    gw = await startWorkersGateway(file, ['--workers', '2']);
  });
  after(async () => {
    try {
      if (gw !== undefined) process.kill(gw.running.child.pid!, 'SIGCONT');
    } catch {}
    for (const backend of [free, conn, stall]) backend?.release();
    assert.equal(await gw?.running.stop(), 0);
    for (const backend of [free, conn, stall]) await backend?.close();
    dir?.remove();
  });

  /** The access log line of one request sent on a fresh connection. */
  const served = async (host: string, path: string): Promise<ServedLine> => {
    await request(gw.port, { host, path });
    const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const [line] = await gw.waitForLines(new RegExp(` "GET ${escaped} HTTP`), 1);
    const parsed = parseServed(line ?? '');
    assert.ok(parsed !== null, `a log line for ${path}: ${line}`);
    return parsed;
  };

  /**
   * Requests to `host` from one client, 10 at a time on fresh connections, until each worker has
   * served at least `each` of them (more than the limit admits, so that workers counting on their
   * own would admit the limit twice); at most 40 rounds.
   */
  const spread = async (host: string, each: number): Promise<ServedLine[]> => {
    const lines: ServedLine[] = [];
    for (let round = 0; round < 40; round++) {
      const batch = Array.from({ length: 10 }, () => `/${host}-${++sent}`);
      lines.push(...(await Promise.all(batch.map((path) => served(host, path)))));
      const per = gw.pids.map((pid) => lines.filter((l) => l.pid === pid).length);
      if (per.every((n) => n >= each)) return lines;
    }
    throw new Error(`the workers did not both serve ${each} requests: ${JSON.stringify(lines)}`);
  };

  test('limit-rpm with burst: exactly 1 + burst admitted over both workers (±0)', async () => {
    const lines = await spread('rpm', 12);
    const admitted = lines.filter((l) => l.status === 200).length;
    assert.equal(admitted, 11, `admitted ${admitted} of ${lines.length}`);
    assert.ok(lines.every((l) => l.status === 200 || l.status === 503));
    const text = await scrape('127.0.0.1', gw.metricsPort);
    assert.equal(metricSum(text, 'keepip_gateway_denials_total', { rule: 'limit-rpm' }), lines.length - 11);
  });

  test('limit-rps with burst: 1 + burst, plus only what the bucket leaked meanwhile (1 a second)', async () => {
    const started = performance.now();
    const lines = await spread('rps', 22);
    const seconds = (performance.now() - started) / 1000;
    const admitted = lines.filter((l) => l.status === 200).length;
    assert.ok(
      admitted >= 21 && admitted <= 21 + Math.ceil(seconds),
      `admitted ${admitted} of ${lines.length} in ${seconds.toFixed(1)} s`,
    );
  });

  test('limit-connections: the pod holds 2; a killed worker frees its slots', async () => {
    // Their workers are killed below: the clients see a reset.
    const held = ['/hold-1', '/hold-2'].map((path) =>
      request(gw.port, { host: 'conn', path }).catch(() => null),
    );
    await conn.arrived(/hold-1/);
    await conn.arrived(/hold-2/);
    // Both workers refuse a third while two are in progress anywhere in the pod.
    const refused = await spread('conn', 2);
    assert.ok(
      refused.every((l) => l.status === 503),
      JSON.stringify(refused),
    );
    const [a, b] = gw.pids as [number, number];
    for (const pid of [a, b]) process.kill(pid, 'SIGKILL');
    for (const pid of [a, b])
      await gw.running.waitFor(new RegExp(`worker \\d \\(pid ${pid}\\) exited \\(signal SIGKILL\\)`));
    await gw.running.waitFor(/serving again[\s\S]*serving again/);
    await Promise.all(held);
    // The dead workers' two slots are free: two new requests are in progress at once.
    const next = [
      request(gw.port, { host: 'conn', path: '/hold-3' }),
      request(gw.port, { host: 'conn', path: '/hold-4' }),
    ];
    await conn.arrived(/hold-3/);
    await conn.arrived(/hold-4/);
    conn.release();
    assert.deepEqual(
      (await Promise.all(next)).map((r) => r.status),
      [200, 200],
    );
    // Ended requests free theirs: three more one after the other, each admitted.
    for (let i = 0; i < 3; i++)
      assert.equal((await request(gw.port, { host: 'conn', path: `/after-${i}` })).status, 200);
    gw.pids = [...text(gw).matchAll(/worker \d serving again \(pid (\d+)\)/g)].map((m) => Number(m[1]));
  });

  test('a stalled primary: limited requests refused (503, coded, logged), unlimited ones served', async () => {
    const primary = gw.running.child.pid!;
    process.kill(primary, 'SIGSTOP');
    try {
      assert.equal((await request(gw.port, { host: 'free', path: '/while-stopped' })).status, 200);
      const refused = await request(gw.port, { host: 'stall', path: '/hold-late' });
      assert.equal(refused.status, 503);
      await gw.running.waitFor(
        /limits of zone "default\/stall" not checked: the primary did not answer within 1000 ms \[WORKER_LIMITER_UNAVAILABLE\]/,
      );
    } finally {
      process.kill(primary, 'SIGCONT');
    }
    assert.ok(
      !stall.urls.some((u) => u.includes('hold-late')),
      'the refused request never reached the backend',
    );
    // The primary granted the late check its slot, then took the worker's release: the zone's one
    // slot is free again (a worker asking before that release arrived is refused and tries again).
    let admitted = false;
    for (let i = 0; i < 20 && !admitted; i++) {
      admitted = (await request(gw.port, { host: 'stall', path: `/after-${i}` })).status === 200;
    }
    assert.ok(admitted, 'the slot the late grant took was freed');
    const text = await scrape('127.0.0.1', gw.metricsPort);
    assert.ok(metricSum(text, 'keepip_gateway_denials_total', { rule: 'limiter-unavailable' }) >= 1);
  });
});
