// pp: PROXY header parse speed, keepip's codec vs proxy-protocol-js on the same inputs (ns/header),
// plus encoding. In-process, bounded loops (fixed iteration counts), medians of several rounds.
// Each system's answer is cross-checked first: a parser that gets the addresses wrong is an error.
// Run alone with `node bench/suites/pp.ts [--quick]`.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import {
  authorityTlv,
  awsVpcEndpointIdTlv,
  encodeProxyHeader,
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
    parse(input: Uint8Array): { proxyAddress: { sourceAddress: { address: number[] }; sourcePort: number } };
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

function keepipParse(c: Case): () => number {
  const bytes = c.bytes;
  return () => {
    const r = parseProxyHeader(bytes);
    return r.kind === 'header' ? r.consumed : -1;
  };
}

function ppjsParse(c: Case): () => number {
  if (c.text !== undefined) {
    const text = c.text;
    return () => ppjs.V1ProxyProtocol.parse(text).source.port;
  }
  const bytes = c.bytes;
  return () => ppjs.V2ProxyProtocol.parse(bytes).proxyAddress.sourcePort;
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

let sink = 0;

/** Median ns per call over `rounds` timed loops of `iterations` calls, after one warm-up loop. */
function measure(fn: () => number, iterations: number, rounds: number): number {
  for (let i = 0; i < iterations; i++) sink += fn();
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink += fn();
    samples.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

async function runPp(ctx: BenchContext): Promise<SuiteResult> {
  const iterations = ctx.quick ? 200_000 : 1_000_000;
  const rounds = ctx.quick ? 3 : 7;
  // The baseline is an order of magnitude slower; fewer calls keep its loop within the same time.
  const baselineIterations = iterations / 10;
  const measurements: BenchMeasurement[] = [];
  const ratios: BenchRatio[] = [];
  const errors: string[] = [];
  const round1 = (n: number) => Math.round(n * 10) / 10;

  for (const c of cases()) {
    const expected = c.source;
    const ours = keepipSource(c);
    const theirs = ppjsSource(c);
    if (ours !== expected) errors.push(`keepip parsed ${c.name} source as ${ours}, expected ${expected}`);
    if (theirs !== expected)
      errors.push(`proxy-protocol-js parsed ${c.name} source as ${theirs}, expected ${expected}`);
    const k = measure(keepipParse(c), iterations, rounds);
    const b = measure(ppjsParse(c), baselineIterations, rounds);
    ctx.log(`pp: ${c.name}: keepip ${k.toFixed(1)} ns, proxy-protocol-js ${b.toFixed(1)} ns`);
    measurements.push({ system: 'keepip', metric: 'ns/header', value: round1(k), case: c.name });
    measurements.push({ system: 'proxy-protocol-js', metric: 'ns/header', value: round1(b), case: c.name });
    ratios.push({
      label: `proxy-protocol-js / keepip ns/header (${c.name})`,
      value: b / k,
      target: `>= ${SPEEDUP_TARGET}`,
      met: b / k >= SPEEDUP_TARGET,
    });
    if (c.name === 'v2 TCP4') {
      ratios.push({
        label: `keepip ns/header v2 TCP4 / ${V2_TARGET_NS} ns target`,
        value: k / V2_TARGET_NS,
        target: '<= 1',
        met: k <= V2_TARGET_NS,
      });
    }
  }

  // Encoding a v2 TCP4 header, as the load balancer does once per upstream connection.
  const spec = {
    version: 2 as const,
    source: { address: '203.0.113.7', port: 40001 },
    destination: { address: '10.0.0.1', port: 443 },
  };
  const encodeOurs = () => encodeProxyHeader(spec).length;
  const encodeTheirs = () =>
    new ppjsBuild.V2ProxyProtocol(
      ppjsBuild.Command.PROXY,
      ppjsBuild.TransportProtocol.STREAM,
      new ppjsBuild.IPv4ProxyAddress(
        ppjsBuild.IPv4Address.createFrom([203, 0, 113, 7]),
        40001,
        ppjsBuild.IPv4Address.createFrom([10, 0, 0, 1]),
        443,
      ),
    ).build().length;
  if (
    !Buffer.from(encodeProxyHeader(spec)).equals(Buffer.from(new Uint8Array(ppjsBuildBytes(encodeTheirs))))
  ) {
    // Both write the same 28 bytes for this header; anything else means one of them is wrong.
    errors.push('keepip and proxy-protocol-js encode v2 TCP4 differently');
  }
  const ke = measure(encodeOurs, iterations / 2, rounds);
  const be = measure(encodeTheirs, baselineIterations / 2, rounds);
  measurements.push({ system: 'keepip', metric: 'ns/encode', value: round1(ke), case: 'encode v2 TCP4' });
  measurements.push({
    system: 'proxy-protocol-js',
    metric: 'ns/encode',
    value: round1(be),
    case: 'encode v2 TCP4',
  });
  ratios.push({ label: 'proxy-protocol-js / keepip ns/encode (v2 TCP4)', value: be / ke });

  const notes = [
    `Medians of ${rounds} round(s): keepip ${iterations} calls per round, proxy-protocol-js ${baselineIterations}.`,
    'keepip returns address strings and verifies CRC32C, UTF-8 AUTHORITY and TLV bounds; proxy-protocol-js returns v2 addresses as byte arrays and does not parse TLVs or check CRC32C, so the TLV case favours it.',
    'proxy-protocol-js parses v1 from a string (its API); the string is prepared outside the timed loop.',
    `sink ${sink > 0 ? 'ok' : 'empty'}`,
  ];
  return { measurements, ratios, errors, notes };
}

function ppjsBuildBytes(_: () => number): Uint8Array {
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
