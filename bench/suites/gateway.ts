// The gateway hop: keepip gateway (no PROXY, allowlist) beside nginx as ingress-nginx renders the same
// Ingress (same allowlist, upstream keep-alive), a naive Node proxy with the same list, and the backend
// direct (nginx, its own process). Two cases, each interleaved on its own: one process against one
// nginx worker, then keepip --workers 2 against nginx worker_processes 2 (listen … reuseport, as
// ingress-nginx renders it). wrk -t2 -c64, 100-byte responses; req/s, p50/p99, CPU µs/req of the
// hop (every process of it: nginx master + workers, keepip primary + workers), RSS.
import { join } from 'node:path';
import { type ComparisonResult, compareHttp, type HttpTarget, httpPlan } from '../lib/http-load.ts';
import type { Endpoint } from '../lib/ports.ts';
import type { Managed } from '../lib/supervisor.ts';
import {
  OFFICE_ALLOWLIST,
  ratioOf,
  Started,
  startBackend,
  startGatewayOrRecord,
  startNaive,
  startNginxProxy,
  startTogether,
  target,
  versionOf,
} from '../lib/systems.ts';
import type { BenchContext, BenchMeasurement, BenchRatio, BenchSuite, SuiteResult } from '../types.ts';

const WORKERS = 2;

type Backend = { managed: Managed; at: Endpoint };
type Ratio = (label: string, value: number | null, target?: string, met?: (v: number) => boolean) => void;

/** The systems of both cases, started together. */
async function startSystems(ctx: BenchContext, started: Started, errors: string[], backend: Backend) {
  const allow = [...OFFICE_ALLOWLIST];
  const [nginx, nginx2, naive, keepip, keepip2] = await startTogether([
    startNginxProxy(started, {
      name: 'nginx L7 proxy',
      dir: join(ctx.tmpDir, 'nginx-proxy'),
      allow,
      upstream: backend.at,
    }),
    startNginxProxy(started, {
      name: `nginx L7 proxy, ${WORKERS} workers`,
      dir: join(ctx.tmpDir, 'nginx-proxy-workers'),
      allow,
      upstream: backend.at,
      workerProcesses: WORKERS,
    }),
    startNaive(started, { dir: ctx.tmpDir, allow, upstream: backend.at }),
    startGatewayOrRecord(started, errors, { dir: join(ctx.tmpDir, 'keepip'), allow, backend: backend.at }),
    startGatewayOrRecord(started, errors, {
      name: `keepip gateway --workers ${WORKERS}`,
      dir: join(ctx.tmpDir, 'keepip-workers'),
      allow,
      backend: backend.at,
      workers: WORKERS,
    }),
  ] as const);
  return { allow, nginx, nginx2, naive, keepip, keepip2 };
}

export const suite: BenchSuite = {
  name: 'gateway',
  description: `gateway hop: keepip gateway vs nginx L7 proxy vs naive Node proxy, same allowlist, 1 process and ${WORKERS} workers (wrk -t2 -c64)`,
  async run(ctx): Promise<SuiteResult> {
    const started = new Started();
    const errors: string[] = [];
    try {
      const backend = await startBackend(started, ctx.tmpDir);
      const s = await startSystems(ctx, started, errors, backend);
      const ngx = `${versionOf('nginx')} L7 proxy`;
      const one = {
        direct: target(
          `backend direct (${versionOf('nginx')} return 200)`,
          backend.at,
          [backend.managed],
          [],
        ),
        keepip: s.keepip
          ? target('keepip gateway', s.keepip.at, [s.keepip.managed], [backend.managed])
          : null,
        nginx: target(`${ngx} (1 worker)`, s.nginx.at, [s.nginx.managed], [backend.managed]),
        naive: target(
          'naive Node proxy (http.request + Agent)',
          s.naive.at,
          [s.naive.managed],
          [backend.managed],
        ),
      };
      const two = {
        keepip: s.keepip2
          ? target(
              `keepip gateway --workers ${WORKERS}`,
              s.keepip2.at,
              [s.keepip2.managed],
              [backend.managed],
            )
          : null,
        nginx: target(
          `${ngx} (worker_processes ${WORKERS})`,
          s.nginx2.at,
          [s.nginx2.managed],
          [backend.managed],
        ),
      };
      const plan = httpPlan(ctx.quick);
      const body = `wrk -t2 -c64 keep-alive, 100-byte body`;
      const first = await compareHttp(
        ctx,
        `allowlist of ${s.allow.length}, ${body}`,
        [one.direct, ...(one.keepip ? [one.keepip] : []), one.nginx, one.naive],
        plan,
      );
      const second = await compareHttp(
        ctx,
        `allowlist of ${s.allow.length}, ${WORKERS} workers each, backend in its own process, ${body}`,
        [...(two.keepip ? [two.keepip] : []), two.nginx],
        plan,
      );
      errors.push(...first.errors, ...second.errors);
      const measurements: BenchMeasurement[] = [...first.measurements, ...second.measurements];
      return { measurements, ratios: ratiosOf(first, second, one, two), errors, notes: NOTES };
    } finally {
      await started.stop();
    }
  },
};

const NOTES = [
  'CPU µs/req and RSS are of the hop under test only, every process of it (backend direct: of the backend itself).',
  'nginx writes the ingress-nginx access log format unbuffered (ingress-nginx default); keepip writes its access log to a file (with workers, each worker appends whole lines).',
  `The ${WORKERS}-worker case runs on its own, interleaved between its two systems; the 1-process figures it is compared with come from the first case of the same run.`,
];

function ratiosOf(
  first: ComparisonResult,
  second: ComparisonResult,
  one: Record<'direct' | 'nginx' | 'naive', HttpTarget> & { keepip: HttpTarget | null },
  two: { keepip: HttpTarget | null; nginx: HttpTarget },
): BenchRatio[] {
  const rps = (c: ComparisonResult, t: HttpTarget | null) => (t ? c.rps.get(t) : undefined);
  const cpu = (c: ComparisonResult, t: HttpTarget | null) => (t ? c.cpu.get(t) : undefined);
  const ratios: BenchRatio[] = [];
  const push: Ratio = (label, value, target, met) => {
    if (value === null) return;
    ratios.push({ label, value, ...(target ? { target } : {}), ...(met ? { met: met(value) } : {}) });
  };
  const k1 = rps(first, one.keepip);
  push(
    'keepip / nginx req/s (1 process vs 1 worker)',
    ratioOf(k1, rps(first, one.nginx)),
    '>= 0.7',
    (v) => v >= 0.7,
  );
  push(
    'keepip / nginx CPU per request (1 process vs 1 worker)',
    ratioOf(cpu(first, one.keepip), cpu(first, one.nginx)),
    '<= 1.4',
    (v) => v <= 1.4,
  );
  push(
    'keepip gateway CPU µs/req / 20 µs budget',
    ratioOf(cpu(first, one.keepip), 20),
    '<= 1 (≤ 20 µs)',
    (v) => v <= 1,
  );
  const k2 = rps(second, two.keepip);
  push(
    `keepip / nginx req/s (${WORKERS} workers each)`,
    ratioOf(k2, rps(second, two.nginx)),
    '>= 0.75',
    (v) => v >= 0.75,
  );
  push(`keepip ${WORKERS} workers / keepip 1 process req/s`, ratioOf(k2, k1), '>= 1.3', (v) => v >= 1.3);
  push(
    `keepip / nginx CPU per request (${WORKERS} workers each)`,
    ratioOf(cpu(second, two.keepip), cpu(second, two.nginx)),
  );
  push(
    `nginx ${WORKERS} workers / nginx 1 worker req/s`,
    ratioOf(rps(second, two.nginx), rps(first, one.nginx)),
  );
  push('keepip / naive Node proxy req/s', ratioOf(k1, rps(first, one.naive)), '> 1', (v) => v > 1);
  push(
    'naive Node proxy / nginx req/s (reference 0.17-0.19)',
    ratioOf(rps(first, one.naive), rps(first, one.nginx)),
  );
  push('nginx L7 proxy / backend direct req/s', ratioOf(rps(first, one.nginx), rps(first, one.direct)));
  return ratios;
}
