// Child processes for tests: keepip itself, HAProxy, nginx, curl. Every process started here is
// stopped by `stop()` (tests call it in `after`/`t.after`), so no test leaves a server behind.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SEMI_SPACE_FLAG } from '../../src/workers/young-generation.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const keepipBin = fileURLToPath(new URL('../../bin/keepip', import.meta.url));

/**
 * The environment for a child process: ours without NODE_TEST_CONTEXT, which node:test sets in test
 * files and which makes a child `node` behave as a test-runner child (its signal handling included).
 */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

const STOP_GRACE_MS = 30_000;
/**
 * After exit, how long the rest of the output may take to arrive: 'close' comes once stdout and stderr
 * are read to their end, but a grandchild that inherited them (a worker outliving its primary) would
 * hold them open; then `exited()` resolves without the 'close' (what comes later is still read).
 */
const OUTPUT_DRAIN_MS = 10_000;

export interface Running {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved as received. */
  output(): string;
  /** Resolves when the output matches `pattern`; rejects once it ended without it, or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /**
   * Resolves with the exit code or signal once the process has exited and its last output has been read
   * ('exit' alone can come before the last lines are read from the pipes). Sends no signal.
   */
  exited(): Promise<number | string | null>;
  /**
   * Sends SIGTERM and resolves as `exited()` does. SIGKILL only after STOP_GRACE_MS: a bound
   * against a hang, not a timing expectation (a primary draining two workers on a loaded machine has
   * been seen to take more than 3 s, and a test asserting exit code 0 then read 'SIGKILL').
   */
  stop(): Promise<number | string | null>;
}

export function start(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; outputDrainMs?: number } = {},
): Running {
  const child = spawn(command, args, {
    cwd: options.cwd ?? repoRoot,
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  let ended = false;
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    for (const listener of listeners) listener();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exitCode = new Promise<number | string | null>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal));
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const exited = exitCode.then(async (code) => {
    let drain: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      drain = setTimeout(() => {
        // Still open: a grandchild holds them. Read on whatever it writes, without keeping this process alive.
        (child.stdout as Socket | null)?.unref();
        (child.stderr as Socket | null)?.unref();
        resolve();
      }, options.outputDrainMs ?? OUTPUT_DRAIN_MS);
    });
    await Promise.race([closed, late]);
    clearTimeout(drain);
    ended = true;
    for (const listener of listeners) listener();
    return code;
  });
  return {
    child,
    output: () => text,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = text.match(pattern);
          if (match) {
            cleanup();
            resolve(match);
          } else if (ended) {
            cleanup();
            reject(new Error(`${command} exited before printing ${pattern}; output:\n${text}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern} from ${command}; output so far:\n${text}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    exited: () => exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        const result = await exited;
        clearTimeout(timer);
        return result;
      }
      return exited;
    },
  };
}

/**
 * Resolves with the exit code (or signal) once the process exited and its output was read, or with
 * 'still running' after `ms`.
 */
export async function exitWithin(running: Running, ms: number): Promise<number | string | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('still running'), ms);
  });
  try {
    return await Promise.race([running.exited(), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts `bin/keepip` with the same Node that runs the tests, and the young-generation flag a serving
 * command would re-run itself with (src/cli/bounded-heap.ts): the same process, without starting Node
 * twice. test/cli/bounded-heap.test.ts starts it without the flag, to see the re-run.
 */
export function startKeepip(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Running {
  return start(process.execPath, [SEMI_SPACE_FLAG, keepipBin, ...args], options);
}

/**
 * `keepip gateway -f file` on free HTTP, HTTPS and metrics ports of 127.0.0.1, with the ports its
 * start-up lines name; stopped again if it never says them.
 */
export async function startGatewayOnFreePorts(
  file: string,
): Promise<{ gw: Running; http: number; https: number; metrics: number }> {
  const free = '127.0.0.1:0';
  const gw = startKeepip(['gateway', '-f', file, '--http', free, '--https', free, '--metrics', free]);
  try {
    const http = Number((await gw.waitFor(/listening http 127\.0\.0\.1:(\d+)/))[1]);
    const https = Number((await gw.waitFor(/listening https 127\.0\.0\.1:(\d+)/))[1]);
    const metrics = Number((await gw.waitFor(/metrics http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
    return { gw, http, https, metrics };
  } catch (error) {
    await gw.stop();
    throw error;
  }
}

/** Runs `bin/keepip` to completion. */
export function runKeepip(
  args: string[],
  options: { input?: string | Buffer; timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand(process.execPath, [keepipBin, ...args], options);
}

export function runCommand(
  command: string,
  args: string[],
  options: { input?: string | Buffer; timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      {
        cwd: options.cwd ?? repoRoot,
        env: childEnv(options.env),
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        // Killed at the timeout: 124, as timeout(1) says, never an exit code the command could give.
        if (error?.killed)
          resolve({ code: 124, stdout, stderr: `${stderr}\n[killed after ${timeoutMs} ms]` });
        else resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
    // A child may stop reading before the input ends (a size cap): its exit is the result, not EPIPE.
    child.stdin?.on('error', () => {});
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

const searchPath = ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', '/sbin', '/bin'];

/**
 * The path of an external program that interop tests need (haproxy, nginx, curl). `.ci/run` installs
 * them; a missing one is a failed test with a clear message, never a silent skip.
 */
export function requireBinary(name: string): string {
  for (const dir of searchPath) {
    const candidate = `${dir}/${name}`;
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} is not installed; .ci/run installs it (apt-get install ${name})`);
}
