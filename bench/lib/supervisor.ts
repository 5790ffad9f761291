// Starts the systems under test (nginx, HAProxy, keepip, Node scripts) and stops them by PID. Every
// process is registered so the harness can stop whatever a failed or interrupted suite left behind;
// output is kept as a bounded tail (a server writing an access log to stdout must not fill memory).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { type Endpoint, waitListening } from './ports.ts';
import { processTree, readStat } from './procfs.ts';

const OUTPUT_TAIL_BYTES = 64 * 1024;

export interface StartOptions {
  /** A short name for logs and errors, e.g. "nginx backend". */
  name: string;
  command: string;
  args: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Ready once these are in LISTEN state (checked via /proc, no connection is made). */
  listening?: readonly Endpoint[];
  /** Ready once the output matches this (checked on the bounded tail). */
  readyPattern?: RegExp;
  timeoutMs?: number;
  /** Raise the soft open-files limit in a wrapping shell before exec (for 10,000-connection loads). */
  openFiles?: number;
  /** Keep stdin as a pipe (for line-protocol helpers); otherwise it is /dev/null. */
  stdin?: boolean;
}

export interface Managed {
  name: string;
  pid: number;
  child: ChildProcess;
  /** The last 64 KiB of stdout and stderr, interleaved. */
  output(): string;
  /** The readyPattern match, when one was asked for. */
  ready: RegExpMatchArray | null;
  /** null while running; otherwise how it ended. */
  exited(): string | null;
  /** The pid and its live descendants: the processes whose CPU and memory count for this system. */
  pids(): number[];
  /** SIGTERM, then SIGKILL after `graceMs`; descendants still alive afterwards get SIGKILL too. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Managed>();

let hardLimit: number | null = null;

/** The hard RLIMIT_NOFILE a child can raise its soft limit to (without extra privileges). */
export function hardOpenFilesLimit(): number {
  if (hardLimit === null) {
    try {
      const text = execFileSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
      hardLimit = text === 'unlimited' ? 1_048_576 : Number(text) || 1024;
    } catch {
      hardLimit = 1024;
    }
  }
  return hardLimit;
}

/** Stops every process started through this module that is still running. */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...live].map((managed) => managed.stop()));
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exited with code ${code}`;
}

export async function startProcess(options: StartOptions): Promise<Managed> {
  const [command, args] =
    options.openFiles === undefined
      ? [options.command, options.args]
      : [
          '/bin/sh',
          [
            '-c',
            // Raise the soft limit (up to the hard one), then replace the shell so the pid is the server's.
            `ulimit -Sn ${Math.min(options.openFiles, hardOpenFilesLimit())}; exec "$@"`,
            'sh',
            options.command,
            ...options.args,
          ],
        ];
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const watchers = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    tail += chunk.toString('utf8');
    if (tail.length > OUTPUT_TAIL_BYTES) tail = tail.slice(-OUTPUT_TAIL_BYTES);
    for (const watcher of watchers) watcher();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  let exitText: string | null = null;
  let spawnError: string | null = null;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      spawnError = `${options.name}: cannot start ${options.command}: ${error.message}`;
      exitText ??= spawnError;
      resolve();
    });
    child.once('exit', (code, signal) => {
      exitText = describeExit(code, signal);
      for (const watcher of watchers) watcher();
      resolve();
    });
  });
  // Remember the tree with start times, so a stop never signals a recycled pid.
  let knownTree: { pid: number; start: number }[] = [];
  const pids = () => {
    if (child.pid === undefined) return [];
    const tree = processTree(child.pid);
    knownTree = tree.map((pid) => ({ pid, start: readStat(pid)?.startTicks ?? -1 }));
    return tree;
  };

  let stopping: Promise<void> | null = null;
  const managed: Managed = {
    name: options.name,
    pid: child.pid ?? -1,
    child,
    output: () => tail,
    ready: null,
    exited: () => exitText,
    pids,
    stop(graceMs = 3_000) {
      stopping ??= (async () => {
        if (exitText === null) {
          pids();
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exitedPromise;
          clearTimeout(timer);
        }
        for (const { pid, start } of knownTree) {
          if (pid === child.pid) continue;
          const stat = readStat(pid);
          if (stat !== null && stat.startTicks === start) {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              // already gone
            }
          }
        }
        live.delete(managed);
      })();
      return stopping;
    },
  };
  live.add(managed);

  const timeoutMs = options.timeoutMs ?? 15_000;
  try {
    if (options.readyPattern) {
      const pattern = options.readyPattern;
      managed.ready = await new Promise<RegExpMatchArray>((resolve, reject) => {
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`no line matching ${pattern} after ${timeoutMs} ms`));
        }, timeoutMs);
        const check = () => {
          const match = tail.match(pattern);
          if (match) {
            clearTimeout(timer);
            watchers.delete(check);
            resolve(match);
          } else if (exitText !== null) {
            clearTimeout(timer);
            watchers.delete(check);
            reject(new Error(`${exitText} before printing ${pattern}`));
          }
        };
        watchers.add(check);
        check();
      });
    }
    if (options.listening && options.listening.length > 0) {
      await waitListening(options.listening, () => exitText, timeoutMs);
    }
  } catch (error) {
    await managed.stop();
    await outputEnded(child, 2_000); // 'exit' can come before the last bytes of stderr: the reason why
    const output = tail.trim().split('\n').slice(-30).join('\n');
    throw new Error(`${options.name} did not start: ${(error as Error).message}\n--- output ---\n${output}`);
  }
  return managed;
}

/**
 * Resolves once the child's stdout and stderr are closed (all their bytes read), or after `ms` when a
 * process it left behind still holds them.
 */
function outputEnded(child: ChildProcess, ms: number): Promise<void> {
  const open = [child.stdout, child.stderr].filter((stream) => stream !== null && !stream.closed);
  const closed = Promise.all(open.map((stream) => new Promise((resolve) => stream!.once('close', resolve))));
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([closed.then(() => undefined), bound]).finally(() => clearTimeout(timer));
}
