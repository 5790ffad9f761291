// L4: keepip lb vs HAProxy `mode tcp` (one process, nbthread 1) vs no proxy at all, in the same run.
// Bulk MB/s over one connection in each direction (bounded bytes: 2 GiB full, 256 MiB quick), and
// new connections per second (bounded count), medians of interleaved rounds, CPU seconds of the proxy
// process, and ratios. Both proxies dial the target from the same source address and send no PROXY
// header in the bulk case (one header per connection does not show in MB/s); the connection case sends
// PROXY v2 from both, as an NLB in front of a gateway would.
//
// The load runs in separate Node processes (this file with --role): a target process (sink, source,
// banner ports) and one client process per measurement, so the proxies' CPU is measured alone.
//   node bench/suites/l4.ts [--quick]            the suite on its own, a table on stdout
//   node bench/suites/l4.ts --role target|bulk|conns ...   the load processes
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { haproxyTcpConfig, startHaproxy } from '../lib/haproxy.ts';
import { startKeepipLb } from '../lib/keepip.ts';
import { cpuSeconds } from '../lib/procfs.ts';
import type { Endpoint } from '../lib/ports.ts';
import { interleave, median, tidy } from '../lib/stats.ts';
import { type Managed, startProcess } from '../lib/supervisor.ts';
import { requireTool } from '../lib/tools.ts';
import { endpoint, Started, versionOf } from '../lib/systems.ts';
import type { BenchMeasurement, BenchRatio, BenchSuite, SuiteResult } from '../types.ts';

const SELF = fileURLToPath(import.meta.url);
const MIB = 1024 * 1024;
const SOURCE_ADDRESS = { keepip: '127.0.0.5', haproxy: '127.0.0.6' } as const;
const CHUNK = 1 * MIB;

interface Sizes {
  rounds: number;
  bulkBytes: number;
  connections: number;
  concurrency: number;
}
const SIZES: Record<'quick' | 'full', Sizes> = {
  quick: { rounds: 2, bulkBytes: 256 * MIB, connections: 2_000, concurrency: 32 },
  full: { rounds: 5, bulkBytes: 2048 * MIB, connections: 10_000, concurrency: 32 },
};

type Direction = 'upload' | 'download';
interface System {
  name: string;
  /** Where the client connects for the sink, source and banner targets. */
  sink: Endpoint;
  source: Endpoint;
  /** null: this system is measured in bulk only. */
  banner: Endpoint | null;
  /** "ok" kept open until the client closes (the client closes first); null: bulk only. */
  reply: Endpoint | null;
  /** The proxy processes whose CPU counts (none for direct). */
  processes: Managed[];
}

export const suite: BenchSuite = {
  name: 'l4',
  description:
    'L4 TCP: keepip lb vs HAProxy mode tcp (nbthread 1) vs direct, bulk MB/s and new connections/s',
  async run(ctx): Promise<SuiteResult> {
    const sizes = ctx.quick ? SIZES.quick : SIZES.full;
    const started = new Started();
    const errors: string[] = [];
    const measurements: BenchMeasurement[] = [];
    const ratios: BenchRatio[] = [];
    const notes: string[] = [];
    try {
      const target = await startTargets(started);
      const haproxyName = `${versionOf('haproxy').replace(/-.*/, '')} mode tcp`;
      const systems: System[] = [{ name: 'direct', ...target, processes: [] }];
      const viaHaproxy = async (to: Endpoint, label: string, sendProxy?: 'v2') => {
        const at = await endpoint();
        const managed = started.add(
          await startHaproxy(`HAProxy ${label}`, join(ctx.tmpDir, `haproxy-${label}`), {
            listen: at,
            target: to,
            sourceAddress: SOURCE_ADDRESS.haproxy,
            ...(sendProxy ? { sendProxy } : {}),
          }),
        );
        return { at, managed };
      };
      const viaKeepip = async (to: Endpoint, label: string, proxyProtocol: 'v2' | null) => {
        const at = await endpoint();
        const managed = started.add(
          await startKeepipLb({
            name: `keepip lb ${label}`,
            listen: at,
            target: to,
            proxyProtocol,
            sourceAddress: SOURCE_ADDRESS.keepip,
          }),
        );
        return { at, managed };
      };
      const hSink = await viaHaproxy(target.sink, 'sink');
      const hSource = await viaHaproxy(target.source, 'source');
      const hBanner = await viaHaproxy(target.banner, 'banner', 'v2');
      const hReply = await viaHaproxy(target.reply, 'reply', 'v2');
      systems.push({
        name: haproxyName,
        sink: hSink.at,
        source: hSource.at,
        banner: hBanner.at,
        reply: hReply.at,
        processes: [hSink.managed, hSource.managed, hBanner.managed, hReply.managed],
      });
      // For reading the bulk numbers: HAProxy's default 16 KiB buffers against keepip's 64 KiB reads.
      const bigBuffers = `${haproxyName}, tune.bufsize 65536`;
      const viaHaproxyBig = async (to: Endpoint, label: string) => {
        const at = await endpoint();
        const dir = join(ctx.tmpDir, `haproxy-big-${label}`);
        mkdirSync(dir, { recursive: true });
        const config = haproxyTcpConfig({
          listen: at,
          target: to,
          sourceAddress: SOURCE_ADDRESS.haproxy,
        }).replace(/^global\n/, 'global\n  tune.bufsize 65536\n');
        writeFileSync(join(dir, 'haproxy.cfg'), config);
        const managed = started.add(
          await startProcess({
            name: `HAProxy 64k ${label}`,
            command: requireTool('haproxy'),
            args: ['-db', '-f', join(dir, 'haproxy.cfg')],
            listening: [at],
          }),
        );
        return { at, managed };
      };
      const bSink = await viaHaproxyBig(target.sink, 'sink');
      const bSource = await viaHaproxyBig(target.source, 'source');
      systems.push({
        name: bigBuffers,
        sink: bSink.at,
        source: bSource.at,
        banner: null,
        reply: null,
        processes: [bSink.managed, bSource.managed],
      });
      let keepip: System | null = null;
      try {
        const kSink = await viaKeepip(target.sink, 'sink', null);
        const kSource = await viaKeepip(target.source, 'source', null);
        const kBanner = await viaKeepip(target.banner, 'banner', 'v2');
        const kReply = await viaKeepip(target.reply, 'reply', 'v2');
        keepip = {
          name: 'keepip lb',
          sink: kSink.at,
          source: kSource.at,
          banner: kBanner.at,
          reply: kReply.at,
          processes: [kSink.managed, kSource.managed, kBanner.managed, kReply.managed],
        };
        systems.push(keepip);
      } catch (error) {
        errors.push(`keepip lb did not start: ${(error as Error).message}`);
      }

      // Bulk: one connection, interleaved and rotated rounds (direct, HAProxy, keepip, then HAProxy, ...).
      for (const direction of ['upload', 'download'] as const) {
        const mbps = new Map<string, number[]>();
        const cpuPerGiB = new Map<string, number[]>();
        await interleave(sizes.rounds, systems, async (system, round) => {
          const at = direction === 'upload' ? system.sink : system.source;
          const pids = system.processes.flatMap((p) => p.pids());
          const cpuBefore = cpuSeconds(pids);
          const result = await runClient([
            '--role',
            'bulk',
            '--direction',
            direction,
            '--bytes',
            String(sizes.bulkBytes),
            '--port',
            String(at.port),
            '--local',
            `127.0.60.${round + 1}`,
          ]);
          const cpu = cpuSeconds(pids) - cpuBefore;
          if (!result.ok) {
            errors.push(`${system.name} bulk ${direction} round ${round + 1}: ${result.error}`);
            return;
          }
          push(mbps, system.name, result.mbps);
          if (system.processes.length > 0) push(cpuPerGiB, system.name, cpu / (sizes.bulkBytes / 1024 / MIB));
          ctx.log(`l4 bulk ${direction} ${system.name}: ${result.mbps.toFixed(0)} MB/s`);
        });
        const scenario = `bulk ${direction}, 1 connection, ${sizes.bulkBytes / MIB} MiB`;
        for (const [system, values] of mbps) {
          measurements.push({ system, metric: 'MB/s', value: tidy(median(values)), case: scenario });
        }
        for (const [system, values] of cpuPerGiB) {
          measurements.push({
            system,
            metric: 'proxy CPU-s/GiB',
            value: tidy(median(values)),
            case: scenario,
          });
        }
        const k = mbps.get('keepip lb');
        const h = mbps.get(haproxyName);
        const way = direction === 'upload' ? 'client -> target' : 'target -> client';
        if (k && h && k.length > 0 && h.length > 0) {
          const value = median(k) / median(h);
          ratios.push({
            label: `keepip lb / HAProxy bulk MB/s (${direction}, ${way})`,
            value: tidy(value),
            target: '>= 0.8',
            met: value >= 0.8,
          });
        }
        const b = mbps.get(bigBuffers);
        if (k && b && k.length > 0 && b.length > 0) {
          ratios.push({
            label: `keepip lb / HAProxy with 64 KiB buffers bulk MB/s (${direction}, ${way})`,
            value: tidy(median(k) / median(b)),
          });
        }
      }

      // New connections per second, PROXY v2 from the proxies: connect, read "ok", then either the target
      // closes (banner) or the client does (reply: the proxy's side towards the target is the one left in
      // TIME_WAIT, on its source address).
      for (const kind of ['banner', 'reply'] as const) {
        const found = await measureConnections(systems, kind, sizes, errors, ctx.log);
        measurements.push(...found.measurements);
        const k = found.rates.get('keepip lb');
        const h = found.rates.get(haproxyName);
        if (k && h && k.length > 0 && h.length > 0) {
          const label = kind === 'banner' ? '' : ', client closes first';
          ratios.push({
            label: `keepip lb / HAProxy new connections/s${label}`,
            value: tidy(median(k) / median(h)),
          });
        }
      }
      notes.push(
        'Client, target and proxies share the machine; the load processes are Node (onread into a reused buffer). Compare ratios, not absolute numbers.',
      );
      if (keepip === null) notes.push('keepip lb could not be measured (see errors).');
    } finally {
      await started.stop();
    }
    return { measurements, ratios, errors, notes };
  },
};

/** Rounds of `sizes.connections` connections to each system's `kind` endpoint: rates and proxy CPU. */
async function measureConnections(
  systems: System[],
  kind: 'banner' | 'reply',
  sizes: Sizes,
  errors: string[],
  log: (line: string) => void,
): Promise<{ rates: Map<string, number[]>; measurements: BenchMeasurement[] }> {
  const rates = new Map<string, number[]>();
  const cpuPerK = new Map<string, number[]>();
  const measured = systems.filter((system) => system[kind] !== null);
  await interleave(sizes.rounds, measured, async (system, round) => {
    const at = system[kind]!;
    const pids = system.processes.flatMap((p) => p.pids());
    const cpuBefore = cpuSeconds(pids);
    const result = await runClient([
      '--role',
      'conns',
      '--count',
      String(sizes.connections),
      '--concurrency',
      String(sizes.concurrency),
      '--port',
      String(at.port),
      // A client that closes first holds a TIME_WAIT per connection: bound to one address (port 0) it
      // would itself slow down as they pile up (bind() scans for a port none holds) and fail in later
      // rounds, whatever it measures; unbound, connect() picks by the four-tuple.
      '--local',
      kind === 'banner' ? `127.0.61.${round + 1}` : '',
      ...(kind === 'reply' ? ['--client-closes'] : []),
    ]);
    const cpu = cpuSeconds(pids) - cpuBefore;
    if (!result.ok) {
      errors.push(`${system.name} connections (${kind}) round ${round + 1}: ${result.error}`);
      return;
    }
    push(rates, system.name, result.perSecond);
    if (system.processes.length > 0) push(cpuPerK, system.name, (cpu / sizes.connections) * 1e6);
    log(`l4 connections (${kind}) ${system.name}: ${result.perSecond.toFixed(0)}/s`);
  });
  const closing = kind === 'banner' ? 'banner + close' : '"ok", the client closes first';
  const scenario = `${sizes.connections} connections, ${sizes.concurrency} at a time, ${closing} (proxies send PROXY v2)`;
  const measurements: BenchMeasurement[] = [];
  for (const [system, values] of rates) {
    measurements.push({ system, metric: 'connections/s', value: tidy(median(values)), case: scenario });
  }
  for (const [system, values] of cpuPerK) {
    measurements.push({
      system,
      metric: 'proxy CPU µs/connection',
      value: tidy(median(values)),
      case: scenario,
    });
  }
  return { rates, measurements };
}

function push(map: Map<string, number[]>, key: string, value: number): void {
  const list = map.get(key) ?? [];
  list.push(value);
  map.set(key, list);
}

async function startTargets(
  started: Started,
): Promise<{ sink: Endpoint; source: Endpoint; banner: Endpoint; reply: Endpoint }> {
  const [sink, source, banner, reply] = [
    await endpoint(),
    await endpoint(),
    await endpoint(),
    await endpoint(),
  ];
  started.add(
    await startProcess({
      name: 'l4 target',
      command: process.execPath,
      args: [SELF, '--role', 'target', '--ports', `${sink.port},${source.port},${banner.port},${reply.port}`],
      listening: [sink, source, banner, reply],
      openFiles: 16_384,
    }),
  );
  return { sink, source, banner, reply };
}

type ClientResult =
  | { ok: true; mbps: number; perSecond: number }
  | { ok: false; error: string; mbps?: undefined; perSecond?: undefined };

function runClient(args: string[]): Promise<ClientResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SELF, ...args],
      { timeout: 300_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) {
          resolve({ ok: false, error: `${error.message} ${stderr}`.trim() });
          return;
        }
        try {
          resolve(JSON.parse(stdout) as ClientResult);
        } catch {
          resolve({ ok: false, error: `unreadable client output: ${stdout} ${stderr}` });
        }
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Load processes

/**
 * sink: counts bytes until FIN, answers the count. source: sends the number of bytes asked for. banner:
 * "ok" and close. reply: "ok", then closes once the client has.
 */
function serveTargets(ports: number[]): void {
  const chunk = Buffer.alloc(CHUNK, 0x5a);
  const [sinkPort, sourcePort, bannerPort, replyPort] = ports;
  const sink = net.createServer({ allowHalfOpen: true }, (socket) => {
    let bytes = 0;
    socket.on('data', (data: Buffer) => {
      bytes += data.length;
    });
    socket.on('end', () => socket.end(`${bytes}\n`));
    socket.on('error', () => {});
  });
  const source = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.once('data', (data: Buffer) => {
      let left = Number(data.toString().trim());
      const pump = () => {
        while (left > 0) {
          const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= piece.length;
          if (!socket.write(piece)) {
            socket.once('drain', pump);
            return;
          }
        }
        socket.end();
      };
      pump();
    });
    socket.on('error', () => {});
  });
  // With PROXY v2 from the proxies the header arrives first; the banner target does not read at all.
  const banner = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.resume();
    socket.end('ok');
  });
  const reply = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    socket.resume();
    socket.on('end', () => socket.end());
    socket.write('ok');
  });
  reply.listen(replyPort, '127.0.0.1');
  sink.listen(sinkPort, '127.0.0.1');
  source.listen(sourcePort, '127.0.0.1');
  banner.listen(bannerPort, '127.0.0.1', () => process.stdout.write('l4 targets ready\n'));
}

function bulkClient(port: number, direction: Direction, total: number, localAddress: string): void {
  const chunk = Buffer.alloc(CHUNK, 0x5a);
  const readBuffer = Buffer.allocUnsafe(256 * 1024);
  let received = 0;
  let reply = '';
  const started = process.hrtime.bigint();
  const finish = (error?: string) => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const moved = direction === 'upload' ? Number(reply.trim()) : received;
    if (error === undefined && moved !== total) error = `moved ${moved} of ${total} bytes`;
    process.stdout.write(
      JSON.stringify(
        error === undefined ? { ok: true, mbps: total / 1e6 / seconds, perSecond: 0 } : { ok: false, error },
      ),
    );
  };
  const socket = net.connect({
    host: '127.0.0.1',
    port,
    localAddress,
    allowHalfOpen: true,
    onread: {
      buffer: readBuffer,
      callback(n: number, buf: Uint8Array) {
        if (direction === 'download') received += n;
        else reply += Buffer.from(buf.subarray(0, n)).toString();
        return true;
      },
    },
  });
  socket.on('error', (error) => finish(error.message));
  socket.on('end', () => socket.end());
  socket.on('close', (hadError) => {
    if (!hadError) finish();
  });
  socket.on('connect', () => {
    if (direction === 'download') {
      socket.write(`${total}\n`);
      return;
    }
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const piece = total - sent >= chunk.length ? chunk : chunk.subarray(0, total - sent);
        sent += piece.length;
        if (!socket.write(piece)) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    pump();
  });
}

function connectionsClient(
  port: number,
  count: number,
  concurrency: number,
  localAddress: string,
  clientCloses: boolean,
): void {
  let started = 0;
  let done = 0;
  let failed = 0;
  let firstError = '';
  const t0 = process.hrtime.bigint();
  const next = () => {
    if (started >= count) return;
    started++;
    let got = '';
    const socket = net.connect({ host: '127.0.0.1', port, ...(localAddress === '' ? {} : { localAddress }) });
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      got += d;
      if (clientCloses && got === 'ok') socket.end();
    });
    socket.on('error', (error) => {
      failed++;
      firstError ||= error.message;
    });
    socket.on('close', () => {
      if (got !== 'ok' && firstError === '') firstError = `unexpected answer ${JSON.stringify(got)}`;
      if (got !== 'ok') failed++;
      done++;
      if (done === count) {
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        process.stdout.write(
          JSON.stringify(
            failed === 0
              ? { ok: true, mbps: 0, perSecond: count / seconds }
              : { ok: false, error: `${failed} of ${count} connections failed: ${firstError}` },
          ),
        );
      } else next();
    });
  };
  for (let i = 0; i < concurrency; i++) next();
}

function printTable(result: SuiteResult): void {
  const lines = ['| system | metric | value | case |', '|---|---|---:|---|'];
  for (const m of result.measurements) lines.push(`| ${m.system} | ${m.metric} | ${m.value} | ${m.case} |`);
  lines.push('', '| ratio | value | target | met |', '|---|---:|---|---|');
  for (const r of result.ratios)
    lines.push(`| ${r.label} | ${r.value} | ${r.target ?? ''} | ${r.met ?? ''} |`);
  for (const e of result.errors) lines.push(`ERROR: ${e}`);
  for (const n of result.notes ?? []) lines.push(`note: ${n}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] === SELF) {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' },
      quick: { type: 'boolean' },
      ports: { type: 'string' },
      port: { type: 'string' },
      direction: { type: 'string' },
      bytes: { type: 'string' },
      count: { type: 'string' },
      concurrency: { type: 'string' },
      local: { type: 'string' },
      'client-closes': { type: 'boolean' },
    },
  });
  const local = values.local ?? '127.0.0.1';
  if (values.role === 'target') serveTargets((values.ports ?? '').split(',').map(Number));
  else if (values.role === 'bulk') {
    bulkClient(
      Number(values.port),
      values.direction === 'download' ? 'download' : 'upload',
      Number(values.bytes),
      local,
    );
  } else if (values.role === 'conns') {
    connectionsClient(
      Number(values.port),
      Number(values.count),
      Number(values.concurrency),
      local,
      values['client-closes'] === true,
    );
  } else {
    const tmpDir = mkdtempSync(join(tmpdir(), 'keepip-bench-l4-'));
    try {
      const result = await suite.run({
        quick: values.quick === true,
        tmpDir,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      printTable(result);
      process.exitCode = result.errors.length > 0 ? 1 : 0;
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  }
}
