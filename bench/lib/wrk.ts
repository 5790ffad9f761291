// Runs wrk against one URL, bounded in time, and returns its parsed report.
import { execFile } from 'node:child_process';
import { requireTool } from './tools.ts';
import { parseWrkOutput, type WrkReport } from './wrk-parse.ts';

export interface WrkOptions {
  url: string;
  threads: number;
  connections: number;
  durationSeconds: number;
  /** Extra request headers, e.g. { host: 'bench.keepip.test' }. */
  headers?: Record<string, string>;
  /** Per-request timeout; a request slower than this is a wrk "timeout" error. */
  timeoutSeconds?: number;
}

export type WrkRun = { ok: true; report: WrkReport; output: string } | { ok: false; error: string };

export function runWrk(options: WrkOptions): Promise<WrkRun> {
  const args = [
    '--latency',
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${Math.max(1, Math.round(options.durationSeconds))}s`,
    `--timeout`,
    `${options.timeoutSeconds ?? 2}s`,
  ];
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}: ${value}`);
  args.push(options.url);
  return new Promise((resolve) => {
    execFile(
      requireTool('wrk'),
      args,
      // wrk stops itself after -d; the kill timer only guards against a hung wrk.
      { timeout: (options.durationSeconds + 20) * 1000, maxBuffer: 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) {
          resolve({ ok: false, error: `wrk ${args.join(' ')} failed: ${error.message}\n${stderr}${stdout}` });
          return;
        }
        const parsed = parseWrkOutput(stdout);
        resolve(
          parsed.ok
            ? { ok: true, report: parsed.report, output: stdout }
            : { ok: false, error: `${parsed.error.code}: ${parsed.error.message}` },
        );
      },
    );
  });
}
