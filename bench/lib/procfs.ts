// CPU time and resident memory of benchmarked processes, read from /proc. A server's cost is the sum
// over its process tree (nginx: master + worker), sampled before and after a load.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** user + system CPU time in clock ticks. */
  cpuTicks: number;
  /** Start time after boot in clock ticks: tells a live process from a recycled pid. */
  startTicks: number;
}

/** Parses /proc/<pid>/stat. The command name sits in parentheses and may itself contain spaces or ")". */
export function parseStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open === -1 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  // After ")": state(3) ppid(4) ... utime(14) stime(15) ... starttime(22); index 0 here is field 3.
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const ppid = Number(rest[1]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  const start = Number(rest[19]);
  if (![pid, ppid, utime, stime, start].every(Number.isFinite)) return null;
  return { pid, comm: text.slice(open + 1, close), ppid, cpuTicks: utime + stime, startTicks: start };
}

/** VmRSS from /proc/<pid>/status, in bytes (null when absent, e.g. for a zombie). */
export function parseRssBytes(statusText: string): number | null {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(statusText);
  return match ? Number(match[1]) * 1024 : null;
}

export function readStat(pid: number): ProcStat | null {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

let ticksPerSecond: number | null = null;

/** USER_HZ, almost always 100. */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === null) {
    try {
      const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      ticksPerSecond = Number.isFinite(value) && value > 0 ? value : 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** The pid and all its live descendants (children first found by scanning every /proc/<n>/stat). */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === null) continue;
    const list = children.get(stat.ppid);
    if (list) list.push(stat.pid);
    else children.set(stat.ppid, [stat.pid]);
  }
  if (readStat(rootPid) === null) return [];
  const result: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    result.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return result;
}

/** CPU seconds (user + system) used so far by the given processes together. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) ticks += readStat(pid)?.cpuTicks ?? 0;
  return ticks / clockTicksPerSecond();
}

/** Resident memory of the given processes together, in bytes. */
export function rssBytes(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += parseRssBytes(readFileSync(`/proc/${pid}/status`, 'utf8')) ?? 0;
    } catch {
      // gone: counts as zero
    }
  }
  return total;
}
