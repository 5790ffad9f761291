// The gateway hop: keepip gateway (no PROXY, allowlist) beside nginx as ingress-nginx renders the same
// Ingress (one worker, same allowlist, upstream keep-alive), a naive Node proxy with the same list, and
// the backend direct. wrk -t2 -c64, 100-byte responses; req/s, p50/p99, CPU µs/req of the hop, RSS.
import { join } from 'node:path';
import { compareHttp, type HttpTarget, httpPlan } from '../lib/http-load.ts';
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
import type { BenchRatio, BenchSuite, SuiteResult } from '../types.ts';

export const suite: BenchSuite = {
  name: 'gateway',
  description:
    'gateway hop: keepip gateway vs nginx L7 proxy vs naive Node proxy, same allowlist (wrk -t2 -c64)',
  async run(ctx): Promise<SuiteResult> {
    const started = new Started();
    const errors: string[] = [];
    try {
      const backend = await startBackend(started, ctx.tmpDir);
      const allow = [...OFFICE_ALLOWLIST];
      const [nginx, naive, keepip] = await startTogether([
        startNginxProxy(started, {
          name: 'nginx L7 proxy',
          dir: join(ctx.tmpDir, 'nginx-proxy'),
          allow,
          upstream: backend.at,
        }),
        startNaive(started, { dir: ctx.tmpDir, allow, upstream: backend.at }),
        startGatewayOrRecord(started, errors, {
          dir: join(ctx.tmpDir, 'keepip'),
          allow,
          backend: backend.at,
        }),
      ] as const);
      const nginxName = `${versionOf('nginx')} L7 proxy (1 worker)`;
      const targets: HttpTarget[] = [
        target(`backend direct (${versionOf('nginx')} return 200)`, backend.at, [backend.managed], []),
        ...(keepip ? [target('keepip gateway', keepip.at, [keepip.managed], [backend.managed])] : []),
        target(nginxName, nginx.at, [nginx.managed], [backend.managed]),
        target('naive Node proxy (http.request + Agent)', naive.at, [naive.managed], [backend.managed]),
      ];
      const scenario = `allowlist of ${allow.length}, wrk -t2 -c64 keep-alive, 100-byte body`;
      const comparison = await compareHttp(ctx, scenario, targets, httpPlan(ctx.quick));
      errors.push(...comparison.errors);

      const [direct, gateway, ngx, node] = [
        targets[0],
        keepip ? targets[1] : undefined,
        targets.at(-2),
        targets.at(-1),
      ];
      const rps = (t: HttpTarget | undefined) => (t ? comparison.rps.get(t) : undefined);
      const cpu = (t: HttpTarget | undefined) => (t ? comparison.cpu.get(t) : undefined);
      const ratios: BenchRatio[] = [];
      const push = (label: string, value: number | null, target?: string, met?: (v: number) => boolean) => {
        if (value === null) return;
        ratios.push({ label, value, ...(target ? { target } : {}), ...(met ? { met: met(value) } : {}) });
      };
      push(
        'keepip / nginx req/s (1 process vs 1 worker)',
        ratioOf(rps(gateway), rps(ngx)),
        '>= 0.5',
        (v) => v >= 0.5,
      );
      push(
        'keepip gateway CPU µs/req / 20 µs budget',
        ratioOf(cpu(gateway), 20),
        '<= 1 (≤ 20 µs)',
        (v) => v <= 1,
      );
      push('keepip / nginx CPU per request', ratioOf(cpu(gateway), cpu(ngx)));
      push('keepip / naive Node proxy req/s', ratioOf(rps(gateway), rps(node)), '> 1', (v) => v > 1);
      push('naive Node proxy / nginx req/s (reference 0.17-0.19)', ratioOf(rps(node), rps(ngx)));
      push('nginx L7 proxy / backend direct req/s', ratioOf(rps(ngx), rps(direct)));
      return {
        measurements: comparison.measurements,
        ratios,
        errors,
        notes: [
          'CPU µs/req and RSS are of the hop under test only (backend direct: of the backend itself).',
          'nginx writes the ingress-nginx access log format unbuffered (ingress-nginx default); keepip writes its access log to a file.',
        ],
      };
    } finally {
      await started.stop();
    }
  },
};
