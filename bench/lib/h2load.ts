// Runs h2load (Debian's nghttp2-client) against one URL over TLS + ALPN h2, a fixed number of
// requests spread over a fixed number of connections, and parses its report. h2load does not open a
// new connection after a GOAWAY, so a load keeps each connection within the server's
// keep-alive-requests (ingress-nginx's 1,000): `requests` must be at most 1,000 × `clients`.
import { execFile } from 'node:child_process';
import { findTool } from './tools.ts';

export interface H2loadOptions {
  url: string;
  clients: number;
  /** Streams in flight per connection (-m). */
  streams: number;
  requests: number;
  /** Extra headers, e.g. { ':authority': 'bench.keepip.test' }. */
  headers?: Record<string, string>;
  /** A file whose bytes are every request's body (POST). */
  dataFile?: string;
  timeoutSeconds?: number;
}

export interface H2loadReport {
  seconds: number;
  requestsPerSecond: number;
  total: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
  statusOther: number;
  /** Mean time for request, ms. */
  meanMs: number;
  protocol: string;
}

export type H2loadRun = { ok: true; report: H2loadReport } | { ok: false; error: string };

function duration(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'ms' ? n / 1000 : unit === 'us' ? n / 1e6 : unit === 'm' ? n * 60 : n;
}

/** Parses h2load's text report; null when a line it must have is missing. */
export function parseH2load(text: string): H2loadReport | null {
  const finished = /finished in ([\d.]+)(ms|us|s|m), ([\d.]+) req\/s/.exec(text);
  const requests =
    /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      text,
    );
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  if (finished === null || requests === null || codes === null) return null;
  const mean = /time for request:\s+\S+\s+\S+\s+([\d.]+)(ms|us|s)/.exec(text);
  return {
    seconds: duration(finished[1] as string, finished[2] as string),
    requestsPerSecond: Number(finished[3]),
    total: Number(requests[1]),
    succeeded: Number(requests[2]),
    failed: Number(requests[3]),
    errored: Number(requests[4]),
    timeout: Number(requests[5]),
    status2xx: Number(codes[1]),
    statusOther: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
    meanMs: mean === null ? Number.NaN : duration(mean[1] as string, mean[2] as string) * 1000,
    protocol: /Application protocol: (\S+)/.exec(text)?.[1] ?? '',
  };
}

/** What went wrong in a load, as error lines (none: every request answered 2xx over h2). */
export function h2loadErrors(report: H2loadReport): string[] {
  const errors: string[] = [];
  if (report.protocol !== 'h2') errors.push(`h2load negotiated ${report.protocol || 'nothing'}, not h2`);
  if (report.failed + report.errored + report.timeout > 0)
    errors.push(`h2load: ${report.failed} failed, ${report.errored} errored, ${report.timeout} timed out`);
  if (report.statusOther > 0) errors.push(`h2load: ${report.statusOther} responses were not 2xx`);
  if (report.succeeded !== report.total)
    errors.push(`h2load: ${report.succeeded} of ${report.total} succeeded`);
  return errors;
}

export function runH2load(options: H2loadOptions): Promise<H2loadRun> {
  const tool = findTool('h2load');
  if (tool === null)
    return Promise.resolve({
      ok: false,
      error: 'BENCH_TOOL_MISSING: h2load is not installed (apt-get install -y nghttp2-client)',
    });
  const args = [
    '-t1',
    `-c${options.clients}`,
    `-m${options.streams}`,
    `-n${options.requests}`,
    ...(options.dataFile ? ['-d', options.dataFile] : []),
  ];
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}: ${value}`);
  args.push(options.url);
  return new Promise((resolve) => {
    execFile(
      tool,
      args,
      { timeout: (options.timeoutSeconds ?? 120) * 1000, maxBuffer: 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const report = parseH2load(stdout);
        if (error || report === null) {
          resolve({
            ok: false,
            error: `h2load ${args.join(' ')} failed: ${error?.message ?? 'no report'}\n${stderr}${stdout}`,
          });
          return;
        }
        resolve({ ok: true, report });
      },
    );
  });
}
