// The machine and software a run was measured on: numbers are only comparable within one run, and a
// table without its machine is not worth keeping.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { toolVersions } from './tools.ts';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  node: string;
  nginx: string;
  haproxy: string;
  wrk: string;
  keepip: string;
  /** 1-minute load average when the run started: other work on a shared machine depresses every number. */
  loadAverage: number;
}

/** The "model name" of the first CPU in /proc/cpuinfo text. */
export function cpuModelFrom(cpuinfo: string): string | null {
  return /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? null;
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function keepipVersion(): string {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const pkg = JSON.parse(read(`${root}package.json`) || '{}') as { version?: string };
  let commit = 'not a git checkout';
  try {
    commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    // Numbers from a working tree with edits belong to no commit: say so.
    const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--', 'src', 'bin'], {
      encoding: 'utf8',
    }).trim();
    if (dirty !== '') commit += ' + uncommitted changes in src/';
  } catch {
    // not a git checkout (e.g. an exported tree): the version alone identifies it
  }
  return `keepip ${pkg.version ?? '?'} (${commit})`;
}

export function describeMachine(): MachineInfo {
  const versions = toolVersions();
  const osRelease = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(read('/etc/os-release'))?.[1] ?? os.type();
  return {
    cpuModel: cpuModelFrom(read('/proc/cpuinfo')) ?? os.cpus()[0]?.model ?? 'unknown CPU',
    cores: os.availableParallelism(),
    memoryGiB: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    kernel: `${os.type()} ${os.release()}`,
    os: osRelease,
    node: `Node.js ${process.version}`,
    nginx: versions.nginx,
    haproxy: versions.haproxy,
    wrk: versions.wrk,
    keepip: keepipVersion(),
    loadAverage: Number(os.loadavg()[0]!.toFixed(2)),
  };
}

export function machineLine(machine: MachineInfo): string {
  return (
    `${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB RAM, ${machine.os}, ${machine.kernel}; ` +
    `${machine.node}, ${machine.nginx}, ${machine.haproxy}, ${machine.wrk}; ${machine.keepip}; ` +
    `load average ${machine.loadAverage} at start`
  );
}
