// Long allowlists: nginx scans `allow` lines in order (ingress-nginx renders whitelist-source-range
// into exactly such lines), keepip looks the client up in a CIDR set. Both proxy the same Ingress with
// N rules, the client's own rule last; req/s with 1 rule vs 10,000 (and 100,000 in the full run).
import { join } from 'node:path';
import { allowList } from '../lib/acl-list.ts';
import { compareHttp, type HttpTarget, httpPlan } from '../lib/http-load.ts';
import {
  LOOPBACK,
  ratioOf,
  Started,
  startBackend,
  startGatewayOrRecord,
  startNginxProxy,
  startTogether,
  target,
  versionOf,
} from '../lib/systems.ts';
import type { BenchRatio, BenchSuite, SuiteResult } from '../types.ts';

const CLIENT_RULE = `${LOOPBACK}/32`;
/** nginx's req/s with N rules relative to 1 rule in shared/reference/performance.md. */
const REFERENCE_FLATNESS: Record<number, string> = { 10000: '0.51', 100000: '0.09' };

export const suite: BenchSuite = {
  name: 'acl-nginx',
  description:
    'nginx with N `allow` rules + deny all vs keepip gateway with the same allowlist (client rule last)',
  async run(ctx): Promise<SuiteResult> {
    const started = new Started();
    const errors: string[] = [];
    const counts = ctx.quick ? [1, 10_000] : [1, 10_000, 100_000];
    try {
      const backend = await startBackend(started, ctx.tmpDir);
      const nginxName = `${versionOf('nginx')} L7 proxy (1 worker)`;
      const targets: HttpTarget[] = [];
      const byCount = new Map<number, { nginx: HttpTarget; keepip: HttpTarget | null }>();
      // Every configuration starts at once: a 100,000-line config takes a while to load.
      const pairs = await startTogether(
        counts.map(async (count) => {
          const allow = allowList(count, CLIENT_RULE);
          const scenario = `${count.toLocaleString('en-US')} allow rule${count === 1 ? '' : 's'}, client rule last`;
          const [nginx, keepip] = await startTogether([
            startNginxProxy(started, {
              name: `nginx (${count} rules)`,
              dir: join(ctx.tmpDir, `nginx-${count}`),
              allow,
              upstream: backend.at,
            }),
            startGatewayOrRecord(started, errors, {
              name: `keepip gateway (${count} rules)`,
              dir: join(ctx.tmpDir, `keepip-${count}`),
              allow,
              backend: backend.at,
              timeoutMs: 60_000,
            }),
          ] as const);
          return {
            count,
            nginx: target(nginxName, nginx.at, [nginx.managed], [backend.managed], scenario),
            keepip: keepip
              ? target('keepip gateway', keepip.at, [keepip.managed], [backend.managed], scenario)
              : null,
          };
        }),
      );
      for (const pair of pairs) {
        byCount.set(pair.count, pair);
        targets.push(pair.nginx, ...(pair.keepip ? [pair.keepip] : []));
      }
      const plan = httpPlan(ctx.quick, { durationSeconds: 5 });
      const comparison = await compareHttp(ctx, 'allowlist', targets, plan);
      errors.push(...comparison.errors);

      const rps = (t: HttpTarget | null | undefined) => (t ? comparison.rps.get(t) : undefined);
      const ratios: BenchRatio[] = [];
      const one = byCount.get(1)!;
      for (const count of counts.filter((c) => c > 1)) {
        const pair = byCount.get(count)!;
        const label = count.toLocaleString('en-US');
        const ahead = ratioOf(rps(pair.keepip), rps(pair.nginx));
        if (ahead !== null) {
          ratios.push({
            label: `keepip / nginx req/s, ${label} rules`,
            value: ahead,
            target: '> 1 (keepip ahead)',
            met: ahead > 1,
          });
        }
        const nginxFlat = ratioOf(rps(pair.nginx), rps(one.nginx));
        if (nginxFlat !== null)
          ratios.push({
            label: `nginx req/s, ${label} rules / 1 rule${REFERENCE_FLATNESS[count] ? ` (reference ${REFERENCE_FLATNESS[count]})` : ''}`,
            value: nginxFlat,
          });
        const keepipFlat = ratioOf(rps(pair.keepip), rps(one.keepip));
        if (keepipFlat !== null) {
          ratios.push({
            label: `keepip req/s, ${label} rules / 1 rule`,
            value: keepipFlat,
            target: '>= 0.9 (flat)',
            met: keepipFlat >= 0.9,
          });
        }
      }
      return {
        measurements: comparison.measurements,
        ratios,
        errors,
        notes: [
          `Fillers are distinct /32s in 10.0.0.0/8 and /24s in 11.0.0.0/8; the client's ${CLIENT_RULE} comes last, so nginx walks every line.`,
          `Loads: wrk -t2 -c64, ${plan.rounds} interleaved round(s) of ${plan.durationSeconds} s, median.`,
        ],
      };
    } finally {
      await started.stop();
    }
  },
};
