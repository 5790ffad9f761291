// pp: PROXY header parse speed, keepip's codec vs proxy-protocol-js on the same inputs (ns/header),
// plus encoding. In-process, bounded loops (fixed iteration counts), the two sides' rounds
// interleaved so both see the same machine noise, medians of several rounds of CPU time (the
// process's user+system time, which a busy shared machine distorts far less than wall time).
// Each system's answer is cross-checked first: a parser that gets the addresses wrong is an error.
// Every timed call consumes the source address and port, so no result can be optimised away.
// Run alone with `node bench/suites/pp.ts [--quick]`.
//
// Before/after the one-pass v1 scanner and the allocation-free encoder (this suite, full run, same
// 2-core shared machine at load average 5-6, CPU ns per call, medians of 7 interleaved rounds):
//   case                      keepip before  keepip after  proxy-protocol-js
//   v1 TCP4                   249.9          119.3         216.0
//   v2 TCP4                   81.9           80.0          110.4  (allocation floor 69.9)
//   v2 TCP4 + TLVs + CRC32C   673.4          789.8 (noise) 116.7  (TLVs not parsed)
//   encode v2 TCP4            449.2          167.5         136.4
// Why the 10x target is out of reach is measured on every run: see the notes.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import {
  authorityTlv,
  awsVpcEndpointIdTlv,
  encodeProxyHeader,
  formatIPv4,
  type InetEndpoint,
  parseProxyHeader,
  uniqueIdTlv,
} from '../../src/proxy-protocol/index.ts';
import type { BenchContext, BenchMeasurement, BenchRatio, BenchSuite, SuiteResult } from '../types.ts';

const V2_TARGET_NS = 150;
const SPEEDUP_TARGET = 10;

// proxy-protocol-js is CommonJS without an ESM entry.
const ppjs = createRequire(import.meta.url)('proxy-protocol-js') as {
  V1ProxyProtocol: { parse(input: string): { source: { ipAddress: string; port: number } } };
  V2ProxyProtocol: {
    parse(input: Uint8Array): {
      proxyAddress: {
        sourceAddress: { address: number[] };
        sourcePort: number;
        destinationAddress: { address: number[] };
      };
    };
  };
  V2ProxyProtocol_build?: never;
};
const ppjsBuild = createRequire(import.meta.url)('proxy-protocol-js') as {
  V2ProxyProtocol: new (command: number, transport: number, address: unknown) => { build(): Uint8Array };
  IPv4ProxyAddress: new (src: unknown, sport: number, dst: unknown, dport: number) => unknown;
  IPv4Address: { createFrom(bytes: number[]): unknown };
  Command: { PROXY: number };
  TransportProtocol: { STREAM: number };
};

interface Case {
  name: string;
  bytes: Buffer;
  /** proxy-protocol-js parses v1 from a string: it gets its natural input, prepared outside the loop. */
  text?: string;
  source: string;
}

function cases(): Case[] {
  const v1 = 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n';
  const endpoints = {
    source: { address: '203.0.113.7', port: 40001 },
    destination: { address: '10.0.0.1', port: 443 },
  };
  return [
    { name: 'v1 TCP4', bytes: Buffer.from(v1, 'latin1'), text: v1, source: '192.168.0.1:56324' },
    { name: 'v2 TCP4', bytes: encodeProxyHeader({ version: 2, ...endpoints }), source: '203.0.113.7:40001' },
    {
      name: 'v2 TCP4 + TLVs + CRC32C',
      bytes: encodeProxyHeader({
        version: 2,
        ...endpoints,
        crc32c: true,
        tlvs: [
          authorityTlv('www.example.com'),
          uniqueIdTlv('3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b'),
          awsVpcEndpointIdTlv('vpce-08d2bf15fac5001c9'),
        ],
      }),
      source: '203.0.113.7:40001',
    },
  ];
}

/** keepip's timed call: parse, then read what a gateway reads (the client address and port). */
function keepipParse(c: Case): () => number {
  const bytes = c.bytes;
  return () => {
    const r = parseProxyHeader(bytes);
    if (r.kind !== 'header') return -1;
    const s = r.header.source as InetEndpoint;
    return s.address.length + s.port + r.consumed;
  };
}

/** proxy-protocol-js's timed call on its natural input, reading the same fields it returns. */
function ppjsParse(c: Case): () => number {
  if (c.text !== undefined) {
    const text = c.text;
    return () => {
      const p = ppjs.V1ProxyProtocol.parse(text);
      return p.source.ipAddress.length + p.source.port;
    };
  }
  const bytes = c.bytes;
  return () => {
    const a = ppjs.V2ProxyProtocol.parse(bytes).proxyAddress;
    return a.sourceAddress.address[0]! + a.sourcePort;
  };
}

/**
 * proxy-protocol-js doing the work keepip does: v1 from the bytes a socket delivers (it needs a
 * string), v2 with the address as text (it returns number arrays). Reported, not the headline.
 */
function ppjsComparable(c: Case): () => number {
  const bytes = c.bytes;
  if (c.text !== undefined) {
    return () => {
      const p = ppjs.V1ProxyProtocol.parse(bytes.toString('latin1'));
      return p.source.ipAddress.length + p.source.port;
    };
  }
  return () => {
    const a = ppjs.V2ProxyProtocol.parse(bytes).proxyAddress;
    return (
      a.sourceAddress.address.join('.').length + a.destinationAddress.address.join('.').length + a.sourcePort
    );
  };
}

let keptResult: unknown = null;

/**
 * The floor for any parser with keepip's result shape: the v2 TCP4 result objects and both address
 * strings built from the bytes with no checks at all. Stored in a module variable so that V8's
 * escape analysis cannot remove the allocations.
 */
function allocationFloor(bytes: Buffer): () => number {
  return () => {
    const r = {
      kind: 'header',
      header: {
        version: 2,
        command: 'PROXY',
        protocol: 'TCP4',
        source: { address: formatIPv4(bytes, 16), port: (bytes[24]! << 8) | bytes[25]! },
        destination: { address: formatIPv4(bytes, 20), port: (bytes[26]! << 8) | bytes[27]! },
        tlvs: [],
      },
      consumed: 28,
    };
    keptResult = r;
    return r.header.source.address.length + r.header.source.port;
  };
}

/** The source each parser reports, as "address:port"; used to refuse a fast but wrong result. */
function keepipSource(c: Case): string {
  const r = parseProxyHeader(c.bytes);
  if (r.kind !== 'header' || r.header.source === null || !('address' in r.header.source))
    return `(${r.kind})`;
  return `${r.header.source.address}:${r.header.source.port}`;
}

function ppjsSource(c: Case): string {
  if (c.text !== undefined) {
    const p = ppjs.V1ProxyProtocol.parse(c.text);
    return `${p.source.ipAddress}:${p.source.port}`;
  }
  const p = ppjs.V2ProxyProtocol.parse(c.bytes);
  return `${p.proxyAddress.sourceAddress.address.join('.')}:${p.proxyAddress.sourcePort}`;
}

/** What proxy-protocol-js does with two inputs keepip refuses, found out at run time for the notes. */
function ppjsProbes(): string[] {
  const out: string[] = [];
  try {
    const p = ppjs.V1ProxyProtocol.parse('PROXY TCP4 999.1.1.1 hello 99999 0\r\n');
    out.push(
      `proxy-protocol-js accepts "PROXY TCP4 999.1.1.1 hello 99999 0" (source ${p.source.ipAddress}:${p.source.port}); keepip refuses it (PP_V1_BAD_ADDRESS).`,
    );
  } catch {
    out.push('proxy-protocol-js refuses a v1 line with address 999.1.1.1.');
  }
  const truncated = Buffer.from('0d0a0d0a000d0a515549540a2111000ccb00710f0a000001', 'hex');
  try {
    const p = ppjs.V2ProxyProtocol.parse(truncated);
    out.push(
      `proxy-protocol-js accepts a v2 TCP4 header cut after the addresses (declared 12 address bytes, 8 present; source port ${String(p.proxyAddress.sourcePort)}); keepip waits for the rest ('incomplete').`,
    );
  } catch {
    out.push('proxy-protocol-js refuses a truncated v2 header.');
  }
  return out;
}

let sink = 0;

/** One timed loop: CPU ns per call (user + system time of the process). */
function timeLoop(fn: () => number, iterations: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < iterations; i++) sink += fn();
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / iterations;
}

/**
 * Medians of `rounds` interleaved rounds of each function (A B C, A B C, ...), after one warm-up
 * loop each, so that a burst of load from a neighbour hits all sides alike.
 */
function measureTogether(fns: Array<{ fn: () => number; iterations: number }>, rounds: number): number[] {
  for (const f of fns) timeLoop(f.fn, f.iterations);
  const samples = fns.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < fns.length; k++) samples[k]!.push(timeLoop(fns[k]!.fn, fns[k]!.iterations));
  }
  return samples.map((s) => {
    s.sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)]!;
  });
}

async function runPp(ctx: BenchContext): Promise<SuiteResult> {
  const iterations = ctx.quick ? 200_000 : 1_000_000;
  const rounds = ctx.quick ? 3 : 7;
  // The baseline is slower per call; fewer calls keep its loop within the same time.
  const baselineIterations = iterations / 5;
  const measurements: BenchMeasurement[] = [];
  const ratios: BenchRatio[] = [];
  const errors: string[] = [];
  const round1 = (n: number) => Math.round(n * 10) / 10;
  let v2Floor = 0;
  let v2Baseline = 0;

  for (const c of cases()) {
    const expected = c.source;
    const ours = keepipSource(c);
    const theirs = ppjsSource(c);
    if (ours !== expected) errors.push(`keepip parsed ${c.name} source as ${ours}, expected ${expected}`);
    if (theirs !== expected)
      errors.push(`proxy-protocol-js parsed ${c.name} source as ${theirs}, expected ${expected}`);
    const withTlvs = c.name.includes('TLV');
    const fns = [
      { fn: keepipParse(c), iterations: withTlvs ? iterations / 5 : iterations },
      { fn: ppjsParse(c), iterations: baselineIterations },
      { fn: ppjsComparable(c), iterations: baselineIterations },
    ];
    if (c.name === 'v2 TCP4') fns.push({ fn: allocationFloor(c.bytes), iterations });
    const [k = 0, b = 0, bc = 0, floor] = measureTogether(fns, rounds);
    ctx.log(
      `pp: ${c.name}: keepip ${k.toFixed(1)} ns, proxy-protocol-js ${b.toFixed(1)} ns (${bc.toFixed(1)} ns doing keepip's work)${floor === undefined ? '' : `, result-allocation floor ${floor.toFixed(1)} ns`}`,
    );
    measurements.push({ system: 'keepip', metric: 'ns/header', value: round1(k), case: c.name });
    measurements.push({ system: 'proxy-protocol-js', metric: 'ns/header', value: round1(b), case: c.name });
    if (!withTlvs) {
      const what = c.text !== undefined ? 'from bytes (+ latin1 decode)' : '+ address strings';
      measurements.push({
        system: `proxy-protocol-js ${what}`,
        metric: 'ns/header',
        value: round1(bc),
        case: c.name,
      });
    }
    ratios.push({
      label: `proxy-protocol-js / keepip ns/header (${c.name})`,
      value: b / k,
      target: `>= ${SPEEDUP_TARGET}`,
      met: b / k >= SPEEDUP_TARGET,
    });
    if (!withTlvs) {
      ratios.push({ label: `proxy-protocol-js doing keepip's work / keepip (${c.name})`, value: bc / k });
    }
    if (c.name === 'v2 TCP4') {
      v2Floor = floor ?? 0;
      v2Baseline = b;
      measurements.push({
        system: 'result-allocation floor',
        metric: 'ns/header',
        value: round1(v2Floor),
        case: c.name,
      });
      ratios.push({
        label: `keepip ns/header v2 TCP4 / ${V2_TARGET_NS} ns target`,
        value: k / V2_TARGET_NS,
        target: '<= 1',
        met: k <= V2_TARGET_NS,
      });
      ratios.push({ label: 'proxy-protocol-js / result-allocation floor (v2 TCP4)', value: b / v2Floor });
    }
  }

  // Encoding a v2 TCP4 header, as the load balancer does once per upstream connection.
  const spec = {
    version: 2 as const,
    source: { address: '203.0.113.7', port: 40001 },
    destination: { address: '10.0.0.1', port: 443 },
  };
  const encodeOurs = () => encodeProxyHeader(spec).length;
  const encodeTheirs = () => ppjsEncode().length;
  if (!Buffer.from(encodeProxyHeader(spec)).equals(Buffer.from(ppjsEncode()))) {
    // Both write the same 28 bytes for this header; anything else means one of them is wrong.
    errors.push('keepip and proxy-protocol-js encode v2 TCP4 differently');
  }
  const [ke = 0, be = 0] = measureTogether(
    [
      { fn: encodeOurs, iterations: iterations / 2 },
      { fn: encodeTheirs, iterations: baselineIterations / 2 },
    ],
    rounds,
  );
  ctx.log(`pp: encode v2 TCP4: keepip ${ke.toFixed(1)} ns, proxy-protocol-js ${be.toFixed(1)} ns`);
  measurements.push({ system: 'keepip', metric: 'ns/encode', value: round1(ke), case: 'encode v2 TCP4' });
  measurements.push({
    system: 'proxy-protocol-js',
    metric: 'ns/encode',
    value: round1(be),
    case: 'encode v2 TCP4',
  });
  ratios.push({ label: 'proxy-protocol-js / keepip ns/encode (v2 TCP4)', value: be / ke });

  const notes = [
    `CPU-time medians of ${rounds} interleaved round(s): keepip ${iterations} calls per round (TLV case ${iterations / 5}), proxy-protocol-js ${baselineIterations}; one warm-up loop each.`,
    'Work done: keepip checks every field (strict dotted quads, ports, lengths, families), returns address strings and, for TLVs, copies every value, verifies CRC32C and decodes AUTHORITY (UTF-8) and the AWS id. proxy-protocol-js v1 is one regex ([^ ]+ for addresses, no range checks) on a string; its v2 returns addresses as number arrays, never checks the declared length against the input, and hands TLVs back as raw bytes (no parsing, no CRC32C), so the TLV case compares unequal work.',
    ...ppjsProbes(),
    'Headline ratios give proxy-protocol-js its best case (v1 string prepared outside the loop, v2 addresses left as arrays); the "doing keepip\'s work" rows add the latin1 decode a socket needs (v1) or the address text (v2).',
    `Why 10x is out of reach for v2: building keepip's result shape alone (objects + two address strings, no checks) costs ${round1(v2Floor)} ns here, proxy-protocol-js ${round1(v2Baseline)} ns, so no parser with this API can be more than ${(v2Baseline / Math.max(v2Floor, 1e-9)).toFixed(1)}x faster.`,
    'Why 10x is out of reach with TLVs: each TLV value is a fresh Uint8Array (~45-55 ns apiece in V8), AUTHORITY and the AWS id are strings (~50 ns each), and CRC32C over the 118-byte header is ~1 ns/byte, while proxy-protocol-js does none of this.',
    `sink ${sink > 0 && keptResult !== null ? 'ok' : 'empty'}`,
  ];
  return { measurements, ratios, errors, notes };
}

function ppjsEncode(): Uint8Array {
  return new ppjsBuild.V2ProxyProtocol(
    ppjsBuild.Command.PROXY,
    ppjsBuild.TransportProtocol.STREAM,
    new ppjsBuild.IPv4ProxyAddress(
      ppjsBuild.IPv4Address.createFrom([203, 0, 113, 7]),
      40001,
      ppjsBuild.IPv4Address.createFrom([10, 0, 0, 1]),
      443,
    ),
  ).build();
}

export const suite: BenchSuite = {
  name: 'pp',
  description:
    "keepip's PROXY codec vs proxy-protocol-js: ns/header for v1 TCP4, v2 TCP4, v2 + TLVs + CRC32C",
  run: runPp,
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const result = await runPp({ quick, tmpDir: '', log: (line) => process.stderr.write(`${line}\n`) });
  for (const m of result.measurements) {
    console.log(`${m.case.padEnd(26)} ${m.system.padEnd(18)} ${m.metric.padEnd(10)} ${m.value}`);
  }
  for (const r of result.ratios) {
    const met = r.met === undefined ? '' : r.met ? '  met' : '  NOT met';
    console.log(`${r.label}: ${r.value.toFixed(2)}${r.target ? ` (target ${r.target})${met}` : ''}`);
  }
  for (const note of result.notes ?? []) console.log(`note: ${note}`);
  for (const error of result.errors) console.error(`error: ${error}`);
  process.exitCode = result.errors.length > 0 ? 1 : 0;
}
