// Measures HTTP systems under the same wrk load, interleaved, with the cost of the measured hop(s):
// CPU time from /proc before/after each load divided by the requests served, and RSS after it.
import type { BenchContext, BenchMeasurement } from '../types.ts';
import { probe } from './probe.ts';
import { cpuSeconds, rssBytes } from './procfs.ts';
import { interleave, median, tidy } from './stats.ts';
import type { Managed } from './supervisor.ts';
import { runWrk } from './wrk.ts';
import { wrkErrors } from './wrk-parse.ts';

export interface HttpTarget {
  /** As reported, e.g. "keepip gateway", "nginx 1.22.1 L7 proxy". */
  system: string;
  /** The case column for this target, when it differs from the comparison's scenario. */
  scenario?: string;
  host: string;
  port: number;
  path: string;
  hostHeader: string;
  /** The backend's exact body, verified by a probe before the loads. */
  expectBody: string;
  /** The hop(s) whose CPU and memory are this system's cost (not the backend's). */
  measured: readonly Managed[];
  /** Every process the path needs (measured ones and the backend): each must survive every load. */
  involved: readonly Managed[];
}

export interface LoadPlan {
  warmupSeconds: number;
  rounds: number;
  durationSeconds: number;
  threads: number;
  connections: number;
}

/** The loads of gateway-style suites: wrk -t2 -c64; quick: 1 round of 1 s (a smoke check), full: median of 3 × 10 s. */
export function httpPlan(quick: boolean, full: Partial<LoadPlan> = {}): LoadPlan {
  return quick
    ? { warmupSeconds: 1, rounds: 1, durationSeconds: 1, threads: 2, connections: 64 }
    : { warmupSeconds: 2, rounds: 3, durationSeconds: 10, threads: 2, connections: 64, ...full };
}

export interface LoadSample {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU µs per request in the measured hop(s); NaN when nothing could be measured. */
  cpuUsPerRequest: number;
  rssMb: number;
  errors: string[];
}

function dead(target: HttpTarget): string[] {
  return target.involved
    .filter((managed) => managed.exited() !== null)
    .map((managed) => `${managed.name} ${managed.exited()}; last output:\n${managed.output().slice(-2000)}`);
}

export async function measureOnce(target: HttpTarget, plan: LoadPlan, seconds: number): Promise<LoadSample> {
  const failed = (errors: string[]): LoadSample => ({
    requestsPerSecond: Number.NaN,
    p50Ms: Number.NaN,
    p99Ms: Number.NaN,
    cpuUsPerRequest: Number.NaN,
    rssMb: Number.NaN,
    errors,
  });
  const before = dead(target);
  if (before.length > 0) return failed(before);
  const check = () =>
    probe({
      host: target.host,
      port: target.port,
      path: target.path,
      hostHeader: target.hostHeader,
      expectBody: target.expectBody,
    });
  const wrong = await check();
  if (wrong !== null) return failed([`probe before the load: ${wrong}`]);
  const pids = target.measured.flatMap((managed) => managed.pids());
  const cpuBefore = cpuSeconds(pids);
  const run = await runWrk({
    url: `http://${target.host}:${target.port}${target.path}`,
    threads: plan.threads,
    connections: plan.connections,
    durationSeconds: seconds,
    // Capitalised: wrk adds its own Host header unless one named exactly "Host" is given.
    headers: { Host: target.hostHeader },
  });
  const cpuAfter = cpuSeconds(pids);
  const rss = rssBytes(target.measured.flatMap((managed) => managed.pids()));
  if (!run.ok) return failed([run.error, ...dead(target)]);
  // wrk counts 3xx as success: the body is checked again after the load.
  const wrongAfter = await check();
  const errors = [
    ...wrkErrors(run.report),
    ...(wrongAfter === null ? [] : [`probe after the load: ${wrongAfter}`]),
    ...dead(target),
  ];
  const { report } = run;
  return {
    requestsPerSecond: report.requestsPerSecond,
    p50Ms: report.latencyMs.p50,
    p99Ms: report.latencyMs.p99,
    cpuUsPerRequest: report.requests > 0 ? ((cpuAfter - cpuBefore) * 1e6) / report.requests : Number.NaN,
    rssMb: rss / (1024 * 1024),
    errors,
  };
}

export interface ComparisonResult {
  measurements: BenchMeasurement[];
  errors: string[];
  /** Median req/s by target (absent when the target failed). */
  rps: Map<HttpTarget, number>;
  /** Median CPU µs/request by target. */
  cpu: Map<HttpTarget, number>;
}

/** Warms every target, runs interleaved rounds, and reports medians per system. */
export async function compareHttp(
  ctx: BenchContext,
  scenario: string,
  targets: readonly HttpTarget[],
  plan: LoadPlan,
): Promise<ComparisonResult> {
  const errors: string[] = [];
  const healthy = new Set<HttpTarget>();
  const caseOf = (target: HttpTarget) => target.scenario ?? scenario;
  for (const target of targets) {
    ctx.log(`warm-up ${target.system} (${caseOf(target)}), ${plan.warmupSeconds}s`);
    const sample = await measureOnce(target, plan, plan.warmupSeconds);
    if (sample.errors.length > 0) {
      errors.push(...sample.errors.map((e) => `${target.system} (${caseOf(target)}) warm-up: ${e}`));
    } else {
      healthy.add(target);
    }
  }
  const systems = targets.filter((target) => healthy.has(target));
  const samples = await interleave(plan.rounds, systems, async (target, round) => {
    const sample = await measureOnce(target, plan, plan.durationSeconds);
    ctx.log(
      `round ${round + 1}/${plan.rounds} ${target.system} (${caseOf(target)}): ${Math.round(sample.requestsPerSecond)} req/s, ` +
        `p99 ${tidy(sample.p99Ms)} ms, ${tidy(sample.cpuUsPerRequest)} µs CPU/req` +
        (sample.errors.length > 0 ? `, ERRORS: ${sample.errors.join('; ')}` : ''),
    );
    return sample;
  });
  const measurements: BenchMeasurement[] = [];
  const rps = new Map<HttpTarget, number>();
  const cpu = new Map<HttpTarget, number>();
  for (const [target, list] of samples) {
    const failures = list.flatMap((sample, i) =>
      sample.errors.map((e) => `${target.system} (${caseOf(target)}) round ${i + 1}: ${e}`),
    );
    errors.push(...failures);
    if (failures.length > 0) continue;
    const add = (metric: string, values: number[]) => {
      const value = median(values);
      if (Number.isFinite(value))
        measurements.push({ system: target.system, metric, value: tidy(value), case: caseOf(target) });
      return value;
    };
    rps.set(
      target,
      add(
        'req/s',
        list.map((s) => s.requestsPerSecond),
      ),
    );
    add(
      'p50 ms',
      list.map((s) => s.p50Ms),
    );
    add(
      'p99 ms',
      list.map((s) => s.p99Ms),
    );
    cpu.set(
      target,
      add(
        'CPU µs/req',
        list.map((s) => s.cpuUsPerRequest),
      ),
    );
    add(
      'RSS MB',
      list.map((s) => s.rssMb),
    );
  }
  return { measurements, errors, rps, cpu };
}
