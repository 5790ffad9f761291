// Idle keep-alive connections: RSS of keepip gateway before and after a separate load process opens
// 10,000 connections (from several 127.x source addresses), completes one request on each and leaves
// them open; nginx (ingress-nginx style, same allowlist) alongside. Target: ≤ 100 MB extra for keepip,
// one process or --workers 2 (all three processes counted).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_HOST } from '../lib/backend.ts';
import type { Endpoint } from '../lib/ports.ts';
import { probe } from '../lib/probe.ts';
import { rssBytes } from '../lib/procfs.ts';
import { tidy } from '../lib/stats.ts';
import { type Managed, startProcess } from '../lib/supervisor.ts';
import {
  OFFICE_ALLOWLIST,
  ratioOf,
  Started,
  startBackend,
  startGatewayOrRecord,
  startNginxProxy,
  startTogether,
  versionOf,
} from '../lib/systems.ts';
import type { BenchMeasurement, BenchRatio, BenchSuite, SuiteResult } from '../types.ts';

const IDLE_CLIENT = fileURLToPath(new URL('../lib/idle-client.ts', import.meta.url));
const CONNECTIONS = 10_000;
/** Several source addresses, so no single one comes near the ephemeral port range. */
const SOURCES = ['127.0.1.1', '127.0.1.2', '127.0.1.3', '127.0.1.4'];
const BUDGET_MB = 100;
const WORKERS = 2;

interface IdleOutcome {
  rssBeforeMb: number;
  rssAfterMb: number;
  openSeconds: number;
  errors: string[];
}

async function waitForOutput(
  managed: Managed,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = managed.output().match(pattern);
    if (match) return match;
    if (managed.exited() !== null)
      throw new Error(`${managed.name} ${managed.exited()}: ${managed.output().slice(-500)}`);
    if (Date.now() > deadline) throw new Error(`${managed.name}: no ${pattern} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function measureIdle(server: Managed, at: Endpoint, started: Started): Promise<IdleOutcome> {
  const errors: string[] = [];
  const wrong = await probe({ host: at.host, port: at.port, hostHeader: BENCH_HOST });
  if (wrong !== null)
    return {
      rssBeforeMb: Number.NaN,
      rssAfterMb: Number.NaN,
      openSeconds: Number.NaN,
      errors: [`probe: ${wrong}`],
    };
  await new Promise((resolve) => setTimeout(resolve, 500));
  const rssBefore = rssBytes(server.pids());
  const client = started.add(
    await startProcess({
      name: 'idle-connection client',
      command: process.execPath,
      args: [
        IDLE_CLIENT,
        '--target',
        `${at.host}:${at.port}`,
        '--host',
        BENCH_HOST,
        '--count',
        String(CONNECTIONS),
        '--sources',
        SOURCES.join(','),
      ],
      stdin: true,
      openFiles: CONNECTIONS + 1024,
      readyPattern: /^\{"event":"ready".*\}$/m,
      timeoutMs: 90_000,
    }),
  );
  try {
    const ready = JSON.parse(client.ready![0]) as {
      opened: number;
      ok: number;
      failed: number;
      errors: string[];
      ms: number;
    };
    if (ready.failed > 0)
      errors.push(`${ready.failed} of ${CONNECTIONS} requests failed: ${ready.errors.join('; ')}`);
    // Let the server settle (buffers released, timers armed) before reading its memory.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const rssAfter = rssBytes(server.pids());
    client.child.stdin?.write('check\n');
    const check = await waitForOutput(client, /^\{"event":"check","open":(\d+)\}$/m, 5_000);
    const open = Number(check[1]);
    if (open < CONNECTIONS) {
      errors.push(
        `only ${open} of ${CONNECTIONS} connections were still open when memory was read (the server closed the rest)`,
      );
    }
    if (server.exited() !== null) errors.push(`${server.name} ${server.exited()}`);
    return {
      rssBeforeMb: rssBefore / 2 ** 20,
      rssAfterMb: rssAfter / 2 ** 20,
      openSeconds: ready.ms / 1000,
      errors,
    };
  } finally {
    client.child.stdin?.end();
    await client.stop();
  }
}

export const suite: BenchSuite = {
  name: 'idle',
  description: `RSS with ${CONNECTIONS.toLocaleString('en-US')} idle keep-alive connections: keepip gateway vs nginx`,
  async run(ctx): Promise<SuiteResult> {
    const started = new Started();
    const errors: string[] = [];
    const measurements: BenchMeasurement[] = [];
    const extra = new Map<string, number>();
    const scenario = `${CONNECTIONS.toLocaleString('en-US')} idle keep-alive connections, 1 request each`;
    try {
      const backend = await startBackend(started, ctx.tmpDir);
      const allow = [...OFFICE_ALLOWLIST, ...SOURCES.map((source) => `${source}/32`)];
      const systems: { name: string; managed: Managed; at: Endpoint }[] = [];
      const [keepip, keepip2, nginx] = await startTogether([
        startGatewayOrRecord(started, errors, {
          dir: join(ctx.tmpDir, 'keepip'),
          allow,
          backend: backend.at,
          openFiles: CONNECTIONS * 2 + 1024,
        }),
        startGatewayOrRecord(started, errors, {
          name: `keepip gateway --workers ${WORKERS}`,
          dir: join(ctx.tmpDir, 'keepip-workers'),
          allow,
          backend: backend.at,
          openFiles: CONNECTIONS * 2 + 1024,
          workers: WORKERS,
        }),
        startNginxProxy(started, {
          name: 'nginx L7 proxy',
          dir: join(ctx.tmpDir, 'nginx-proxy'),
          allow,
          upstream: backend.at,
          workerConnections: CONNECTIONS + 2_000,
        }),
      ] as const);
      if (keepip) systems.push({ name: 'keepip gateway', ...keepip });
      // Every process of it: the primary and both workers, each holding its share of the connections.
      if (keepip2) systems.push({ name: `keepip gateway --workers ${WORKERS}`, ...keepip2 });
      systems.push({ name: `${versionOf('nginx')} L7 proxy (1 worker)`, ...nginx });
      for (const system of systems) {
        ctx.log(`opening ${CONNECTIONS} idle connections to ${system.name}`);
        const outcome = await measureIdle(system.managed, system.at, started);
        errors.push(...outcome.errors.map((e) => `${system.name}: ${e}`));
        if (outcome.errors.length > 0) continue;
        const delta = outcome.rssAfterMb - outcome.rssBeforeMb;
        extra.set(system.name, delta);
        ctx.log(`${system.name}: RSS ${tidy(outcome.rssBeforeMb)} -> ${tidy(outcome.rssAfterMb)} MB`);
        const add = (metric: string, value: number) =>
          measurements.push({ system: system.name, metric, value: tidy(value), case: scenario });
        add('RSS MB before', outcome.rssBeforeMb);
        add('RSS MB with idle', outcome.rssAfterMb);
        add('extra RSS MB', delta);
        add('KB per connection', (delta * 1024) / CONNECTIONS);
        add('open s', outcome.openSeconds);
      }
      const ratios: BenchRatio[] = [];
      const keepipExtra = extra.get('keepip gateway');
      const budget = ratioOf(keepipExtra, BUDGET_MB);
      if (budget !== null) {
        ratios.push({
          label: `keepip extra RSS / ${BUDGET_MB} MB budget`,
          value: budget,
          target: '<= 1',
          met: budget <= 1,
        });
      }
      const workersBudget = ratioOf(extra.get(`keepip gateway --workers ${WORKERS}`), BUDGET_MB);
      if (workersBudget !== null) {
        ratios.push({
          label: `keepip --workers ${WORKERS} extra RSS (all processes) / ${BUDGET_MB} MB budget`,
          value: workersBudget,
          target: '<= 1',
          met: workersBudget <= 1,
        });
      }
      const vsNginx = ratioOf(keepipExtra, extra.get(`${versionOf('nginx')} L7 proxy (1 worker)`));
      if (vsNginx !== null) ratios.push({ label: 'keepip / nginx extra RSS', value: vsNginx });
      return {
        measurements,
        ratios,
        errors,
        notes: [
          `The load process opens the connections from ${SOURCES.join(', ')} (256 at a time), one GET each, then holds them.`,
          'RSS is read 1 s after the last connection is open, and counts only if every connection is still open then.',
        ],
      };
    } finally {
      await started.stop();
    }
  },
};
