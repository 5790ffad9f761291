// acl-lookup: how fast is "is this client in the list?" at 1k, 100k and 1M prefixes.
// keepip's CidrSet (pre-parsed address, and from the address string) vs Node's net.BlockList vs a
// linear scan (what nginx's allow lines do), plus the build time of each. In-process, bounded loops,
// deterministic inputs; every structure is cross-checked against the others on a sample of addresses,
// and a disagreement is an error (a fast but wrong set never wins).
// Run alone with `node bench/suites/acl-lookup.ts [--quick]`.
import { BlockList } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type Cidr, cidrContains, formatCidr, makeCidr } from '../../src/net/cidr.ts';
import { CidrSet } from '../../src/net/cidr-set.ts';
import { formatIp, type IpAddress, ipv4, ipv6 } from '../../src/net/ip.ts';
import type { BenchContext, BenchMeasurement, BenchRatio, BenchSuite, SuiteResult } from '../types.ts';

const SIZES = [1_000, 100_000, 1_000_000] as const;
const LOOKUP_TARGET_NS = 300;
const BUILD_TARGET_MS = 200;

interface Plan {
  rounds: number;
  /** Lookups per timed batch for the fast structures. */
  lookups: number;
  /** Wall-clock budget of one sampled measurement (linear scan, BlockList). */
  sampleBudgetMs: number;
  /** BlockList is fed in chunks until this budget is spent (it is far slower to build). */
  blockListBuildBudgetMs: number;
}

function planFor(quick: boolean): Plan {
  return quick
    ? { rounds: 1, lookups: 200_000, sampleBudgetMs: 150, blockListBuildBudgetMs: 1_500 }
    : { rounds: 5, lookups: 1_000_000, sampleBudgetMs: 600, blockListBuildBudgetMs: 8_000 };
}

/** xorshift32: the same lists on every run and machine. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

interface Workload {
  cidrs: Cidr[];
  entries: string[];
  addresses: IpAddress[];
  texts: string[];
}

/** 90 % IPv4 (/8-/32, mostly /16-/32 as real lists), 10 % IPv6; half the probes fall inside an entry. */
function workload(size: number, probes: number): Workload {
  const next = rng(0x9e3779b9 ^ size);
  const cidrs: Cidr[] = new Array(size);
  for (let i = 0; i < size; i++) {
    if (next() % 10 === 0) {
      cidrs[i] = makeCidr(ipv6(0x20010db8, next(), next(), next()), 32 + (next() % 97));
    } else {
      const r = next() % 100;
      const prefix = r < 5 ? 8 + (next() % 8) : r < 40 ? 16 + (next() % 8) : 24 + (next() % 9);
      cidrs[i] = makeCidr(ipv4(next()), prefix);
    }
  }
  const addresses: IpAddress[] = new Array(probes);
  for (let i = 0; i < probes; i++) {
    if (i % 2 === 0) {
      const base = cidrs[next() % size]!.address;
      addresses[i] =
        base.family === 4
          ? ipv4(base.w0 | (next() & 0xff))
          : ipv6(base.w0, base.w1, base.w2, base.w3 | (next() & 0xff));
    } else {
      addresses[i] = next() % 10 === 0 ? ipv6(0x20010db8, next(), next(), next()) : ipv4(next());
    }
  }
  return { cidrs, entries: cidrs.map(formatCidr), addresses, texts: addresses.map(formatIp) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** ns per call of `probe` over `count` calls cycling through `n` inputs; the checksum defeats dead-code elimination. */
function timeLoop(count: number, n: number, probe: (i: number) => boolean): { ns: number; hits: number } {
  let hits = 0;
  const start = process.hrtime.bigint();
  for (let i = 0, j = 0; i < count; i++, j = j + 1 === n ? 0 : j + 1) if (probe(j)) hits++;
  const ns = Number(process.hrtime.bigint() - start) / count;
  return { ns, hits };
}

/** ns per call for slow structures: as many calls as fit in the budget (at least 3). */
function timeSampled(
  budgetMs: number,
  n: number,
  probe: (i: number) => boolean,
): { ns: number; calls: number; hits: number } {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(budgetMs * 1e6));
  const start = process.hrtime.bigint();
  let calls = 0;
  let hits = 0;
  while (calls < 3 || process.hrtime.bigint() < deadline) {
    if (probe(calls % n)) hits++;
    calls++;
    if (calls >= 10_000_000) break;
  }
  return { ns: Number(process.hrtime.bigint() - start) / calls, calls, hits };
}

function linearHas(cidrs: readonly Cidr[], ip: IpAddress): boolean {
  for (let i = 0; i < cidrs.length; i++) if (cidrContains(cidrs[i]!, ip)) return true;
  return false;
}

function buildBlockList(
  cidrs: readonly Cidr[],
  budgetMs: number,
): { list: BlockList; added: number; ms: number; complete: boolean } {
  const list = new BlockList();
  const start = performance.now();
  let added = 0;
  while (added < cidrs.length) {
    const end = Math.min(cidrs.length, added + 10_000);
    for (; added < end; added++) {
      const c = cidrs[added]!;
      list.addSubnet(formatIp(c.address), c.prefix, c.address.family === 4 ? 'ipv4' : 'ipv6');
    }
    if (performance.now() - start > budgetMs) break;
  }
  return { list, added, ms: performance.now() - start, complete: added === cidrs.length };
}

function label(size: number): string {
  return size >= 1_000_000 ? `${size / 1_000_000}M prefixes` : `${size / 1_000}k prefixes`;
}

export async function runAclLookup(ctx: BenchContext): Promise<SuiteResult> {
  const plan = planFor(ctx.quick);
  const measurements: BenchMeasurement[] = [];
  const ratios: BenchRatio[] = [];
  const errors: string[] = [];
  const notes: string[] = [];
  const push = (system: string, metric: string, value: number, size: number) =>
    measurements.push({ system, metric, value: Math.round(value * 10) / 10, case: label(size) });
  const perSize = new Map<number, { set: number; text: number; blockList?: number; linear: number }>();

  for (const size of SIZES) {
    const w = workload(size, 4096);
    ctx.log(`acl-lookup: ${label(size)}: building`);

    const builds: number[] = [];
    const parsedBuilds: number[] = [];
    let set: CidrSet | null = null;
    for (let round = 0; round < Math.min(plan.rounds, 3); round++) {
      let t = performance.now();
      const built = CidrSet.build(w.entries);
      builds.push(performance.now() - t);
      if (!built.ok) {
        errors.push(`CidrSet.build failed at ${label(size)}: ${built.error.message}`);
        break;
      }
      set = built.set;
      t = performance.now();
      CidrSet.fromCidrs(w.cidrs);
      parsedBuilds.push(performance.now() - t);
    }
    if (set === null) continue;
    const setRef = set;
    push('keepip CidrSet', 'build ms (from strings)', median(builds), size);
    push('keepip CidrSet', 'build ms (pre-parsed)', median(parsedBuilds), size);

    const blockList = buildBlockList(w.cidrs, plan.blockListBuildBudgetMs);
    push('net.BlockList', 'build ms', blockList.ms, size);
    if (!blockList.complete) {
      notes.push(
        `net.BlockList at ${label(size)}: build stopped at ${blockList.added} of ${size} entries after ${Math.round(blockList.ms)} ms (budget); its lookups are not reported for this size.`,
      );
    }

    // Cross-check before timing: the three structures must agree on every probe.
    let disagreements = 0;
    for (let i = 0; i < w.addresses.length; i++) {
      const ip = w.addresses[i]!;
      const expected = setRef.has(ip);
      if (setRef.has(w.texts[i]!) !== expected) disagreements++;
      if (i < 64 && linearHas(w.cidrs, ip) !== expected) disagreements++;
      if (
        blockList.complete &&
        blockList.list.check(w.texts[i]!, ip.family === 4 ? 'ipv4' : 'ipv6') !== expected
      )
        disagreements++;
    }
    if (disagreements > 0)
      errors.push(
        `${label(size)}: ${disagreements} disagreements between CidrSet, BlockList and the linear scan`,
      );

    const n = w.addresses.length;
    const setNs: number[] = [];
    const textNs: number[] = [];
    const blockNs: number[] = [];
    const linearNs: number[] = [];
    // Warm-up so every structure is measured with optimised code.
    timeLoop(plan.lookups / 4, n, (i) => setRef.has(w.addresses[i]!));
    timeLoop(plan.lookups / 4, n, (i) => setRef.has(w.texts[i]!));
    for (let round = 0; round < plan.rounds; round++) {
      setNs.push(timeLoop(plan.lookups, n, (i) => setRef.has(w.addresses[i]!)).ns);
      textNs.push(timeLoop(plan.lookups, n, (i) => setRef.has(w.texts[i]!)).ns);
      if (blockList.complete) {
        const families = w.addresses.map((a) => (a.family === 4 ? 'ipv4' : 'ipv6'));
        blockNs.push(
          timeSampled(plan.sampleBudgetMs, n, (i) => blockList.list.check(w.texts[i]!, families[i]!)).ns,
        );
      }
      linearNs.push(timeSampled(plan.sampleBudgetMs, n, (i) => linearHas(w.cidrs, w.addresses[i]!)).ns);
    }
    const result = {
      set: median(setNs),
      text: median(textNs),
      linear: median(linearNs),
      ...(blockNs.length > 0 ? { blockList: median(blockNs) } : {}),
    };
    perSize.set(size, result);
    push('keepip CidrSet', 'ns/lookup (pre-parsed)', result.set, size);
    push('keepip CidrSet', 'ns/lookup (from string)', result.text, size);
    if (result.blockList !== undefined)
      push('net.BlockList', 'ns/lookup (from string)', result.blockList, size);
    push('linear scan', 'ns/lookup (sampled)', result.linear, size);
    if (size === 100_000) {
      ratios.push({
        label: 'CidrSet ns/lookup at 100k (from string) / 300 ns target',
        value: result.text / LOOKUP_TARGET_NS,
        target: '<= 1',
        met: result.text <= LOOKUP_TARGET_NS,
      });
      const build = median(builds);
      ratios.push({
        label: 'CidrSet build ms at 100k (from strings) / 200 ms target',
        value: build / BUILD_TARGET_MS,
        target: '<= 1',
        met: build <= BUILD_TARGET_MS,
      });
    }
    if (result.blockList !== undefined)
      ratios.push({
        label: `net.BlockList / CidrSet ns per lookup, ${label(size)}`,
        value: result.blockList / result.text,
      });
    ratios.push({
      label: `linear scan / CidrSet ns per lookup, ${label(size)}`,
      value: result.linear / result.set,
    });
  }
  const small = perSize.get(1_000);
  const large = perSize.get(1_000_000);
  if (small && large)
    ratios.push({ label: 'CidrSet ns/lookup 1M / 1k (flatness)', value: large.set / small.set });
  notes.push(
    'Lists: 90 % IPv4 (/8-/32), 10 % IPv6 (/32-/128), deterministic; probes: half inside an entry, half random.',
    '"pre-parsed" looks up an IpAddress (the gateway parses the client address once per request); "from string" includes strict parsing, as net.BlockList.check does.',
    `Linear scan and BlockList lookups are sampled for ${plan.sampleBudgetMs} ms per round; CidrSet runs ${plan.lookups} lookups per round; medians of ${plan.rounds} round(s).`,
  );
  return { measurements, ratios, errors, notes };
}

export const suite: BenchSuite = {
  name: 'acl-lookup',
  description:
    "keepip's CIDR set vs net.BlockList vs a linear scan, 1k/100k/1M prefixes (ns/lookup, build ms)",
  run: runAclLookup,
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const result = await runAclLookup({ quick, tmpDir: '', log: (line) => process.stderr.write(`${line}\n`) });
  for (const m of result.measurements)
    console.log(`${m.case.padEnd(14)} ${m.system.padEnd(16)} ${m.metric.padEnd(26)} ${m.value}`);
  for (const r of result.ratios) {
    const met = r.met === undefined ? '' : r.met ? '  met' : '  NOT met';
    console.log(`${r.label}: ${r.value.toFixed(3)}${r.target ? ` (target ${r.target})${met}` : ''}`);
  }
  for (const note of result.notes ?? []) console.log(`note: ${note}`);
  for (const error of result.errors) console.error(`error: ${error}`);
  process.exitCode = result.errors.length > 0 ? 1 : 0;
}
