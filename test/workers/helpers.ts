// keepip gateway with --workers as a user runs it, for the worker tests: start-up lines read for the
// ports and the workers' pids, the access log (stdout, kept apart from stderr) parsed into lines, and
// requests sent on fresh connections until every worker has served (each new connection lands on a
// worker chosen by the kernel's SO_REUSEPORT hash, so a few tries reach them all).
import { readFileSync } from 'node:fs';
import { request } from '../fixtures/gateway/harness.ts';
import { type Running, startKeepip } from '../helpers/process.ts';

export interface StdoutLines {
  /** Complete stdout lines so far (the access log when no --access-log is given). */
  stdoutLines(): string[];
  /** Resolves once stdout has `count` lines matching `pattern`. */
  waitForLines(pattern: RegExp, count: number, timeoutMs?: number): Promise<string[]>;
}

export interface WorkersGateway extends StdoutLines {
  running: Running;
  port: number;
  metricsPort: number;
  pids: number[];
}

/** A process's stdout kept apart from its stderr, as lines. */
export function stdoutOf(running: Running): StdoutLines {
  let stdout = '';
  const waiters = new Set<() => void>();
  running.child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    for (const waiter of [...waiters]) waiter();
  });
  const lines = () => stdout.split('\n').slice(0, -1);
  return {
    stdoutLines: lines,
    waitForLines(pattern, count, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines().filter((line) => pattern.test(line));
          if (found.length < count) return;
          done();
          resolve(found);
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new Error(`timed out waiting for ${count} lines ${pattern}; stdout:\n${stdout.slice(-4000)}`),
          );
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** The worker pids of a `workers: N processes (pids …)` start-up line. */
export async function workerPids(running: Running): Promise<number[]> {
  const text = (await running.waitFor(/workers: \d+ processes \(pids ([\d, ]+)\)/))[1] ?? '';
  return text.split(', ').map(Number);
}

export async function startWorkersGateway(
  file: string,
  extra: string[] = [],
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<WorkersGateway> {
  const running = startKeepip(
    ['gateway', '-f', file, '--http', '127.0.0.1:0', '--metrics', '127.0.0.1:0', ...extra],
    options,
  );
  const stdout = stdoutOf(running);
  try {
    const port = Number((await running.waitFor(/listening http 127\.0\.0\.1:(\d+)/))[1]);
    const metricsPort = Number((await running.waitFor(/metrics http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
    return { running, port, metricsPort, pids: await workerPids(running), ...stdout };
  } catch (error) {
    await running.stop();
    throw error;
  }
}

/** An access log line of the format WORKER_LOG_FORMAT: pid, status, the config marker, the path. */
export interface ServedLine {
  pid: number;
  status: number;
  marker: string;
  path: string;
}

/** log-format-upstream for these tests: who served (nginx's $pid), what it answered, on which config. */
export function workerLogFormat(marker: string): string {
  return `$pid $status ${marker} "$request"`;
}

export function parseServed(line: string): ServedLine | null {
  const match = /^(\d+) (\d{3}) (\S+) "GET (\S+) HTTP\/1\.1"$/.exec(line);
  if (match === null) return null;
  return { pid: Number(match[1]), status: Number(match[2]), marker: match[3]!, path: match[4]! };
}

/**
 * Sends GETs on fresh connections, `batch` at a time, until every pid in `pids` has served one of
 * them (at most `maxBatches` batches); returns the lines of every request sent.
 */
export async function untilEveryWorkerServed(
  gateway: StdoutLines & { port: number },
  pids: readonly number[],
  tag: string,
  options: { host?: string; batch?: number; maxBatches?: number } = {},
): Promise<ServedLine[]> {
  const batch = options.batch ?? 10;
  const served: ServedLine[] = [];
  for (let round = 0; round < (options.maxBatches ?? 30); round++) {
    const paths = Array.from({ length: batch }, (_, i) => `/${tag}-${round}-${i}`);
    await Promise.all(
      paths.map((path) => request(gateway.port, { host: options.host ?? 'web.example.com', path })),
    );
    for (const path of paths) {
      const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const [line] = await gateway.waitForLines(new RegExp(` "GET ${escaped} HTTP`), 1);
      const parsed = parseServed(line ?? '');
      if (parsed !== null) served.push(parsed);
    }
    const seen = new Set(served.map((s) => s.pid));
    if (pids.every((pid) => seen.has(pid))) return served;
  }
  throw new Error(`not every worker of ${pids.join(', ')} served; lines:\n${JSON.stringify(served)}`);
}

/** `keepip lb -f file --listen 127.0.0.1:0 --workers 2` and `extra`, once it names its port and workers. */
export async function startLbWorkers(
  file: string,
  extra: string[] = [],
): Promise<{ lb: Running; port: number; pids: number[] }> {
  const lb = startKeepip(['lb', '-f', file, '--listen', '127.0.0.1:0', '--workers', '2', ...extra]);
  try {
    const port = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+) \(web\/edge\)/))[1]);
    const pids = (await lb.waitFor(/workers: 2 processes \(pids (\d+), (\d+)\)/)).slice(1, 3).map(Number);
    return { lb, port, pids };
  } catch (error) {
    await lb.stop();
    throw error;
  }
}

/** Whether a process with `pid` exists (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The lines of a log file (--access-log), read again until they are there, as StdoutLines. */
export function fileLines(path: string): StdoutLines {
  const lines = () => {
    try {
      return readFileSync(path, 'utf8').split('\n').slice(0, -1);
    } catch {
      return [];
    }
  };
  return {
    stdoutLines: lines,
    async waitForLines(pattern, count, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines().filter((line) => pattern.test(line));
        if (found.length >= count) return found;
        if (Date.now() > deadline)
          throw new Error(
            `timed out waiting for ${count} lines ${pattern} in ${path}:\n${lines().join('\n')}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
  };
}
