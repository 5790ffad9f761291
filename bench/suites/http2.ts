// HTTP/2 to clients and gRPC to backends (issue 18): keepip gateway on its TLS listener beside nginx
// `listen … ssl http2` configured as ingress-nginx renders the same Ingresses (same allowlist, same
// access log format, keep-alive 1,000 requests, 128 streams). Two loads with h2load, interleaved
// rounds, medians: HTTP/2 GETs proxied to the 100-byte nginx backend over HTTP/1.1, and gRPC unary
// calls (a POST with one EchoRequest, te: trailers) to a cleartext HTTP/2 gRPC backend — keepip's
// backend-protocol GRPC vs nginx's grpc_pass. req/s, mean latency, CPU µs/req of the hop, RSS.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { grpcRequestFrame } from '../lib/grpc-backend.ts';
import {
  GRPC_HOST,
  GRPC_PATH,
  probeH2,
  startGrpcBackend,
  startKeepipH2,
  startNginxH2,
} from '../lib/h2-systems.ts';
import { h2loadErrors, runH2load } from '../lib/h2load.ts';
import { cpuSeconds, rssBytes } from '../lib/procfs.ts';
import type { Endpoint } from '../lib/ports.ts';
import { interleave, median, tidy } from '../lib/stats.ts';
import type { Managed } from '../lib/supervisor.ts';
import {
  OFFICE_ALLOWLIST,
  ratioOf,
  Started,
  startBackend,
  startTogether,
  versionOf,
} from '../lib/systems.ts';
import { BENCH_HOST } from '../lib/backend.ts';
import type { BenchContext, BenchMeasurement, BenchRatio, BenchSuite, SuiteResult } from '../types.ts';

interface H2Target {
  system: string;
  kind: 'http' | 'grpc';
  at: Endpoint;
  measured: readonly Managed[];
  involved: readonly Managed[];
}

interface Plan {
  clients: number;
  streams: number;
  /** Requests per round: at most 1,000 per connection (keep-alive-requests; h2load does not reconnect). */
  requests: number;
  /** Loads of `requests` before the rounds: Node's JIT needs thousands of requests to settle. */
  warmups: number;
  rounds: number;
}

interface Sample {
  rps: number;
  meanMs: number;
  cpuUs: number;
  rssMb: number;
  errors: string[];
}

function planOf(quick: boolean): Plan {
  return quick
    ? { clients: 8, streams: 10, requests: 8 * 1000, warmups: 1, rounds: 1 }
    : { clients: 16, streams: 10, requests: 16 * 1000, warmups: 3, rounds: 5 };
}

function caseOf(target: H2Target, plan: Plan): string {
  const what = target.kind === 'grpc' ? 'gRPC unary calls' : 'GET, 100-byte body';
  return `${what}, h2load -c${plan.clients} -m${plan.streams}, allowlist of ${OFFICE_ALLOWLIST.length}`;
}

async function measureOnce(
  target: H2Target,
  plan: Plan,
  requests: number,
  dataFile: string,
): Promise<Sample> {
  const failed = (errors: string[]): Sample => ({ rps: NaN, meanMs: NaN, cpuUs: NaN, rssMb: NaN, errors });
  const dead = () =>
    target.involved
      .filter((m) => m.exited() !== null)
      .map((m) => `${m.name} ${m.exited()}: ${m.output().slice(-1000)}`);
  if (dead().length > 0) return failed(dead());
  const before = await probeH2(target.at, target.kind);
  if (before !== null) return failed([`probe before the load: ${before}`]);
  const pids = target.measured.flatMap((m) => m.pids());
  const cpuBefore = cpuSeconds(pids);
  const grpc = target.kind === 'grpc';
  const run = await runH2load({
    url: `https://${target.at.host}:${target.at.port}${grpc ? GRPC_PATH : '/'}`,
    clients: plan.clients,
    streams: plan.streams,
    requests,
    headers: grpc
      ? { ':authority': GRPC_HOST, 'content-type': 'application/grpc', te: 'trailers' }
      : { ':authority': BENCH_HOST },
    ...(grpc ? { dataFile } : {}),
  });
  const cpuAfter = cpuSeconds(pids);
  const rss = rssBytes(target.measured.flatMap((m) => m.pids()));
  if (!run.ok) return failed([run.error, ...dead()]);
  const after = await probeH2(target.at, target.kind);
  const { report } = run;
  return {
    rps: report.requestsPerSecond,
    meanMs: report.meanMs,
    cpuUs: report.succeeded > 0 ? ((cpuAfter - cpuBefore) * 1e6) / report.succeeded : NaN,
    rssMb: rss / (1024 * 1024),
    errors: [
      ...h2loadErrors(report),
      ...(after === null ? [] : [`probe after the load: ${after}`]),
      ...dead(),
    ],
  };
}

/** Warm-up, interleaved rounds, medians: req/s by target (absent when it failed) and CPU µs/req. */
async function compare(ctx: BenchContext, targets: readonly H2Target[], plan: Plan, dataFile: string) {
  const errors: string[] = [];
  const measurements: BenchMeasurement[] = [];
  const rps = new Map<H2Target, number>();
  const cpu = new Map<H2Target, number>();
  const healthy: H2Target[] = [];
  for (const target of targets) {
    ctx.log(
      `warm-up ${target.system} (${caseOf(target, plan)}), ${plan.warmups} × ${plan.requests} requests`,
    );
    const failures: string[] = [];
    for (let i = 0; i < plan.warmups && failures.length === 0; i++)
      failures.push(...(await measureOnce(target, plan, plan.requests, dataFile)).errors);
    if (failures.length > 0) errors.push(...failures.map((e) => `${target.system} warm-up: ${e}`));
    else healthy.push(target);
  }
  const samples = await interleave(plan.rounds, healthy, async (target, round) => {
    const sample = await measureOnce(target, plan, plan.requests, dataFile);
    ctx.log(
      `round ${round + 1}/${plan.rounds} ${target.system}: ${Math.round(sample.rps)} req/s, mean ${tidy(sample.meanMs)} ms, ` +
        `${tidy(sample.cpuUs)} µs CPU/req${sample.errors.length > 0 ? `, ERRORS: ${sample.errors.join('; ')}` : ''}`,
    );
    return sample;
  });
  for (const [target, list] of samples) {
    const failures = list.flatMap((s, i) => s.errors.map((e) => `${target.system} round ${i + 1}: ${e}`));
    errors.push(...failures);
    if (failures.length > 0) continue;
    const add = (metric: string, values: number[]) => {
      const value = median(values);
      if (Number.isFinite(value))
        measurements.push({ system: target.system, metric, value: tidy(value), case: caseOf(target, plan) });
      return value;
    };
    rps.set(
      target,
      add(
        'req/s',
        list.map((s) => s.rps),
      ),
    );
    add(
      'mean ms',
      list.map((s) => s.meanMs),
    );
    cpu.set(
      target,
      add(
        'CPU µs/req',
        list.map((s) => s.cpuUs),
      ),
    );
    add(
      'RSS MB',
      list.map((s) => s.rssMb),
    );
  }
  return { errors, measurements, rps, cpu };
}

export const suite: BenchSuite = {
  name: 'http2',
  description:
    'HTTP/2 on the TLS listener and gRPC unary calls: keepip gateway vs nginx listen ssl http2 / grpc_pass, same allowlist and access log (h2load)',
  async run(ctx): Promise<SuiteResult> {
    const started = new Started();
    try {
      const [httpBackend, grpcBackend] = await startTogether([
        startBackend(started, ctx.tmpDir),
        startGrpcBackend(started),
      ] as const);
      const systems = { allow: OFFICE_ALLOWLIST, httpBackend: httpBackend.at, grpcBackend: grpcBackend.at };
      const [nginx, keepip] = await startTogether([
        startNginxH2(started, { dir: join(ctx.tmpDir, 'nginx-h2'), ...systems }),
        startKeepipH2(started, { dir: join(ctx.tmpDir, 'keepip'), ...systems }),
      ] as const);
      const dataFile = join(ctx.tmpDir, 'grpc-request.bin');
      writeFileSync(dataFile, grpcRequestFrame('keepip bench'));
      const ngx = versionOf('nginx');
      const target = (
        system: string,
        kind: 'http' | 'grpc',
        at: Managed & object,
        endpoint: Endpoint,
        backend: Managed,
      ) => ({ system, kind, at: endpoint, measured: [at], involved: [at, backend] }) satisfies H2Target;
      const plan = planOf(ctx.quick);
      const http = [
        target('keepip gateway (HTTP/2)', 'http', keepip.managed, keepip.at, httpBackend.managed),
        target(`${ngx} listen ssl http2 (1 worker)`, 'http', nginx.managed, nginx.at, httpBackend.managed),
      ];
      const grpc = [
        target(
          'keepip gateway (backend-protocol GRPC)',
          'grpc',
          keepip.managed,
          keepip.at,
          grpcBackend.managed,
        ),
        target(`${ngx} grpc_pass (1 worker)`, 'grpc', nginx.managed, nginx.at, grpcBackend.managed),
      ];
      const h = await compare(ctx, http, plan, dataFile);
      const g = await compare(ctx, grpc, plan, dataFile);
      const ratios: BenchRatio[] = [];
      const push = (label: string, value: number | null, goal?: number) => {
        if (value === null) return;
        ratios.push({ label, value, ...(goal ? { target: `>= ${goal}`, met: value >= goal } : {}) });
      };
      push(
        'keepip / nginx HTTP/2 req/s (h2load, same ACL and access log)',
        ratioOf(h.rps.get(http[0]!), h.rps.get(http[1]!)),
        0.5,
      );
      push(
        'keepip / nginx gRPC unary calls/s (GRPC backend vs grpc_pass)',
        ratioOf(g.rps.get(grpc[0]!), g.rps.get(grpc[1]!)),
        0.5,
      );
      push('keepip / nginx CPU per HTTP/2 request', ratioOf(h.cpu.get(http[0]!), h.cpu.get(http[1]!)));
      push('keepip / nginx CPU per gRPC call', ratioOf(g.cpu.get(grpc[0]!), g.cpu.get(grpc[1]!)));
      return {
        measurements: [...h.measurements, ...g.measurements],
        ratios,
        errors: [...h.errors, ...g.errors],
        notes: [
          'h2load does not reconnect after GOAWAY: each round sends at most 1,000 requests per connection (keep-alive-requests, as ingress-nginx), TLS handshakes included.',
          'The gRPC backend is node:http2 answering a fixed EchoReply with grpc-status 0; nginx grpc_pass uses one backend connection per call in flight, keepip multiplexes calls on HTTP/2 sessions.',
          'CPU µs/req and RSS are of the proxy only (nginx master + worker; the keepip process).',
        ],
      };
    } finally {
      await started.stop();
    }
  },
};
