// The whole chain: keepip lb (PROXY v2, SNAT source address) -> keepip gateway (use-proxy-protocol,
// trusted 127.0.0.0/8, allowlist) vs the seed's chain, HAProxy (mode tcp, send-proxy-v2, nbthread 1)
// -> nginx (listen proxy_protocol, realip, same allowlist). The allowlist admits only the real client
// (127.0.0.1), not the balancers' source addresses, so a chain that loses the client IP answers 403
// and fails the run instead of looking fast.
import { join } from 'node:path';
import { startHaproxy } from '../lib/haproxy.ts';
import { compareHttp, type HttpTarget, httpPlan } from '../lib/http-load.ts';
import { startKeepipLb } from '../lib/keepip.ts';
import {
  endpoint,
  OFFICE_ALLOWLIST,
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

const TRUSTED = '127.0.0.0/8';
const LB_SOURCE = { keepip: '127.0.0.5', haproxy: '127.0.0.6' } as const;

export const suite: BenchSuite = {
  name: 'chain',
  description:
    'full chain: keepip lb -> keepip gateway vs HAProxy send-proxy-v2 -> nginx proxy_protocol + realip',
  async run(ctx): Promise<SuiteResult> {
    const started = new Started();
    const errors: string[] = [];
    try {
      const backend = await startBackend(started, ctx.tmpDir);
      const allow = [...OFFICE_ALLOWLIST];
      // The two chains are independent: start them at the same time.
      const startSeed = async (): Promise<HttpTarget> => {
        const nginx = await startNginxProxy(started, {
          name: 'nginx proxy_protocol + realip',
          dir: join(ctx.tmpDir, 'nginx-pp'),
          allow,
          upstream: backend.at,
          proxyProtocolFrom: TRUSTED,
        });
        const haproxyAt = await endpoint();
        const haproxy = started.add(
          await startHaproxy('HAProxy send-proxy-v2', join(ctx.tmpDir, 'haproxy'), {
            listen: haproxyAt,
            target: nginx.at,
            sendProxy: 'v2',
            sourceAddress: LB_SOURCE.haproxy,
          }),
        );
        return target(
          `${versionOf('haproxy').replace(/-.*/, '')} send-proxy-v2 -> ${versionOf('nginx')} proxy_protocol`,
          haproxyAt,
          [haproxy, nginx.managed],
          [backend.managed],
        );
      };
      const startKeepip = async (): Promise<HttpTarget | null> => {
        const gateway = await startGatewayOrRecord(started, errors, {
          dir: join(ctx.tmpDir, 'keepip'),
          allow,
          backend: backend.at,
          useProxyProtocol: true,
          trustedCidrs: [TRUSTED],
        });
        if (!gateway) return null;
        const lbAt = await endpoint();
        try {
          const lb = started.add(
            await startKeepipLb({
              name: 'keepip lb',
              listen: lbAt,
              target: gateway.at,
              proxyProtocol: 'v2',
              sourceAddress: LB_SOURCE.keepip,
            }),
          );
          return target(
            'keepip lb (PROXY v2) -> keepip gateway',
            lbAt,
            [lb, gateway.managed],
            [backend.managed],
          );
        } catch (error) {
          errors.push((error as Error).message);
          return null;
        }
      };
      const [seed, chain] = await startTogether([startSeed(), startKeepip()] as const);
      const targets: HttpTarget[] = chain ? [chain, seed] : [seed];
      const scenario = `allowlist of ${allow.length} (client only), wrk -t2 -c64 keep-alive, 100-byte body`;
      const comparison = await compareHttp(ctx, scenario, targets, httpPlan(ctx.quick));
      errors.push(...comparison.errors);
      const ratios: BenchRatio[] = [];
      const speed = ratioOf(chain ? comparison.rps.get(chain) : undefined, comparison.rps.get(seed));
      if (speed !== null) {
        ratios.push({
          label: "keepip chain / seed's chain req/s",
          value: speed,
          target: '>= 0.5',
          met: speed >= 0.5,
        });
      }
      const cpu = ratioOf(chain ? comparison.cpu.get(chain) : undefined, comparison.cpu.get(seed));
      if (cpu !== null)
        ratios.push({ label: "keepip chain / seed's chain CPU per request (both hops)", value: cpu });
      return {
        measurements: comparison.measurements,
        ratios,
        errors,
        notes: [
          'CPU µs/req and RSS are summed over both hops (balancer + gateway/nginx), not the backend.',
          `The balancers dial from ${LB_SOURCE.keepip} (keepip lb) and ${LB_SOURCE.haproxy} (HAProxy); only 127.0.0.1 is allowed.`,
        ],
      };
    } finally {
      await started.stop();
    }
  },
};
